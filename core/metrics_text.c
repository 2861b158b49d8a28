/* The /metrics page: the SHOW tables in the Prometheus text exposition format (0.0.4). */
#include "metrics_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "policy.h"
#include "sbuf.h"
#include "stats_count.h"
#include "view.h"
#include "views.h"

#define MAX_LABELS 6

/* A metric read from one column of a table: a sample per row, labelled by the table's label columns. */
struct column_metric {
	const char *column;
	const char *alt_column; /* read when column is absent (another release's name), or NULL */
	const char *name;	/* after the table's prefix */
	const char *type;	/* "gauge" or "counter" */
	bool micros;		/* the column counts microseconds, the metric seconds */
	const char *help;
};

struct table_metrics {
	const char *view;		/* the SHOW name */
	const char *prefix;		/* of every metric's name */
	const char *labels[MAX_LABELS]; /* columns, each a label of the same name; NULL-terminated */
	const struct column_metric *metrics;
	size_t n_metrics;
};

static const struct column_metric database_metrics[] = {
	{ "pool_size", NULL, "pool_size", "gauge", false,
	  "Server connections a pool of this database may open" },
	{ "reserve_pool_size", "reserve_pool", "reserve_pool", "gauge", false,
	  "Additional server connections a pool of this database may open when clients wait" },
	{ "max_connections", NULL, "max_connections", "gauge", false,
	  "Server connections allowed to this database in all (0: no limit)" },
	{ "current_connections", NULL, "current_connections", "gauge", false,
	  "Server connections open to this database" },
	{ "paused", NULL, "paused", "gauge", false, "1 while this database is paused, else 0" },
	{ "disabled", NULL, "disabled", "gauge", false, "1 while this database is disabled, else 0" },
};

static const struct column_metric stats_metrics[] = {
	{ "query_count", NULL, "queries_pooled_total", "counter", false,
	  "SQL queries run through the pooler" },
	{ "query_time", NULL, "queries_duration_seconds_total", "counter", true,
	  "Seconds server connections spent running queries" },
	{ "bytes_received", NULL, "received_bytes_total", "counter", false, "Bytes received from clients" },
	/* a column of PgBouncer before 1.8 (1.25's table has none): no metric, as with the exporter */
	{ "requests", NULL, "queries_total", "counter", false, "SQL requests run through the pooler" },
	{ "bytes_sent", NULL, "sent_bytes_total", "counter", false, "Bytes sent to clients" },
	{ "wait_time", NULL, "client_wait_seconds_total", "counter", true,
	  "Seconds clients spent waiting for a server connection" },
	{ "xact_count", NULL, "sql_transactions_pooled_total", "counter", false,
	  "SQL transactions run through the pooler" },
	{ "xact_time", NULL, "server_in_transaction_seconds_total", "counter", true,
	  "Seconds server connections spent in a transaction, running queries or idle in it" },
	{ "client_parse_count", NULL, "client_parses_total", "counter", false,
	  "Parse messages of prepared statements received from clients" },
	{ "server_parse_count", NULL, "server_parses_total", "counter", false,
	  "Parse messages of prepared statements sent to servers" },
	{ "bind_count", NULL, "binds_total", "counter", false, "Bind messages of prepared statements" },
	{ "server_assignment_count", NULL, "server_assignments_total", "counter", false,
	  "Times a server connection was handed to a client" },
};

static const struct column_metric pool_metrics[] = {
	{ "cl_active", NULL, "client_active_connections", "gauge", false,
	  "Client connections linked to a server connection or idle between transactions" },
	{ "cl_active_cancel_req", NULL, "client_active_cancel_connections", "gauge", false,
	  "Cancel requests forwarded to a server, awaiting its answer" },
	{ "cl_waiting", NULL, "client_waiting_connections", "gauge", false,
	  "Client connections waiting for a server connection" },
	{ "cl_waiting_cancel_req", NULL, "client_waiting_cancel_connections", "gauge", false,
	  "Cancel requests not yet forwarded to a server" },
	{ "sv_active", NULL, "server_active_connections", "gauge", false,
	  "Server connections linked to a client connection" },
	{ "sv_active_cancel", NULL, "server_active_cancel_connections", "gauge", false,
	  "Server connections forwarding a cancel request" },
	{ "sv_being_canceled", NULL, "server_being_canceled_connections", "gauge", false,
	  "Server connections kept out of the pool until the cancel requests sent for them complete" },
	{ "sv_idle", NULL, "server_idle_connections", "gauge", false,
	  "Server connections idle and ready for a client" },
	{ "sv_used", NULL, "server_used_connections", "gauge", false,
	  "Server connections idle for longer than server_check_delay, to be checked before reuse" },
	{ "sv_tested", NULL, "server_testing_connections", "gauge", false,
	  "Server connections running server_reset_query or server_check_query" },
	{ "sv_login", NULL, "server_login_connections", "gauge", false, "Server connections logging in" },
	{ "maxwait", NULL, "client_maxwait_seconds", "gauge", false,
	  "Seconds the oldest waiting client of the pool has waited" },
};

static const struct column_metric tenant_metrics[] = {
	{ "clients", NULL, "clients", "gauge", false, "Client connections of the tenant" },
	{ "active", NULL, "active", "gauge", false, "The tenant's transactions holding a server connection" },
	{ "waiting", NULL, "waiting", "gauge", false, "The tenant's clients waiting for their turn" },
	{ "max_clients", NULL, "max_clients", "gauge", false, "The tenant's max_clients limit (-1: none)" },
	{ "max_active", NULL, "max_active", "gauge", false, "The tenant's max_active limit (-1: none)" },
	{ "rejections", NULL, "rejections_total", "counter", false, "Clients of the tenant refused at max_clients" },
	{ "active_waits", NULL, "active_waits_total", "counter", false,
	  "Transactions of the tenant that waited for a max_active slot" },
	{ "rate_waits", NULL, "rate_waits_total", "counter", false,
	  "Transactions of the tenant that waited for a rate token" },
};

static const struct table_metrics tables[] = {
	{ "DATABASES",
	  "pgbouncer_databases_",
	  { "name", "host", "port", "database", "force_user", "pool_mode" },
	  database_metrics,
	  sizeof(database_metrics) / sizeof(database_metrics[0]) },
	{ "STATS_TOTALS",
	  "pgbouncer_stats_",
	  { "database" },
	  stats_metrics,
	  sizeof(stats_metrics) / sizeof(stats_metrics[0]) },
	{ "POOLS",
	  "pgbouncer_pools_",
	  { "database", "user" },
	  pool_metrics,
	  sizeof(pool_metrics) / sizeof(pool_metrics[0]) },
	{ "TENANTS",
	  "moonbouncer_tenant_",
	  { "tenant" },
	  tenant_metrics,
	  sizeof(tenant_metrics) / sizeof(tenant_metrics[0]) },
};

/* SHOW LISTS rows and the metric each one is. */
static const struct {
	const char *list, *name, *help;
} lists[] = {
	{ "databases", "pgbouncer_databases", "Databases the pooler knows" },
	{ "users", "pgbouncer_users", "Users the pooler knows" },
	{ "pools", "pgbouncer_pools", "Pools (database and user pairs)" },
	{ "free_clients", "pgbouncer_free_clients", "Client slots allocated and unused" },
	{ "used_clients", "pgbouncer_used_clients", "Client connections" },
	{ "login_clients", "pgbouncer_login_clients", "Client connections logging in" },
	{ "free_servers", "pgbouncer_free_servers", "Server slots allocated and unused" },
	{ "used_servers", "pgbouncer_used_servers", "Server connections" },
	{ "dns_names", "pgbouncer_cached_dns_names", "Host names in the DNS cache" },
	{ "dns_zones", "pgbouncer_cached_dns_zones", "DNS zones in the cache" },
	{ "dns_queries", "pgbouncer_in_flight_dns_queries", "DNS queries in flight" },
};

/* SHOW CONFIG keys and the metric each one is. */
static const struct {
	const char *key, *name, *help;
} config_keys[] = {
	{ "max_client_conn", "pgbouncer_config_max_client_connections", "The max_client_conn setting" },
	{ "max_user_connections", "pgbouncer_config_max_user_connections",
	  "The max_user_connections setting (0: no limit)" },
};

struct out {
	struct evbuffer *buf;
	bool failed; /* out of memory */
	bool up;     /* every table was built and read */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(o->buf, fmt, ap) < 0)
		o->failed = true;
	va_end(ap);
}

static void put_header(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Is s well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF)? */
static bool utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s, n, min;
		uint32_t cp;

		if (c < 0x80) {
			s++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1, min = 0x80, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, min = 0x800, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, min = 0x10000, cp = c & 0x07;
		} else {
			return false;
		}
		for (unsigned i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

/* A label value, escaped as the format asks; NULL is empty, and a value that is not UTF-8 "<invalid>". */
static void put_label_value(struct out *o, const char *v)
{
	if (!v)
		return;
	if (!utf8_valid((const unsigned char *)v)) {
		put(o, "<invalid>");
		return;
	}
	for (const char *p = v; *p;) {
		size_t plain = strcspn(p, "\\\"\n");

		if (plain > 0 && evbuffer_add(o->buf, p, plain) < 0)
			o->failed = true;
		p += plain;
		if (*p == '\0')
			break;
		put(o, "%s", *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n");
		p++;
	}
}

static void put_labels(struct out *o, const char *const *names, const char *const *values, int n)
{
	if (n == 0)
		return;
	put(o, "{");
	for (int i = 0; i < n; i++) {
		put(o, "%s%s=\"", i ? "," : "", names[i]);
		put_label_value(o, values[i]);
		put(o, "\"");
	}
	put(o, "}");
}

static bool is_integer(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0' || strlen(s) > 40)
		return false;
	return strspn(s, "0123456789") == strlen(s);
}

static void format_double(double d, char *buf, size_t len)
{
	if (isnan(d))
		snprintf(buf, len, "NaN");
	else if (isinf(d))
		snprintf(buf, len, "%s", d > 0 ? "+Inf" : "-Inf");
	else {
		snprintf(buf, len, "%.15g", d);
		if (strtod(buf, NULL) != d)
			snprintf(buf, len, "%.17g", d);
	}
}

/* An integer count of microseconds as seconds, exactly: "1234567" is "1.234567", "-5" is "-0.000005". */
static void format_micros(const char *cell, char *buf, size_t len)
{
	const char *sign = *cell == '-' ? "-" : "";
	const char *digits = cell + strlen(sign);
	size_t n = strlen(digits), whole = n > 6 ? n - 6 : 0;
	char frac[7];
	int flen;

	/* the last six digits, zero-padded on the left, without their trailing zeros */
	snprintf(frac, sizeof(frac), "%.*s%s", (int)(6 - (n - whole)), "000000", digits + whole);
	for (flen = 6; flen > 0 && frac[flen - 1] == '0'; flen--)
		;
	frac[flen] = '\0';
	if (whole == 0)
		snprintf(buf, len, "%s0%s%s", flen ? sign : "", flen ? "." : "", frac);
	else
		snprintf(buf, len, "%s%.*s%s%s", sign, (int)whole, digits, flen ? "." : "", frac);
}

/* A sample's value from a cell: NULL is NaN. False when the cell holds no number (no sample then). */
static bool format_value(const char *cell, bool micros, char *buf, size_t len)
{
	char *end;
	double d;

	if (!cell) {
		snprintf(buf, len, "NaN");
		return true;
	}
	if (is_integer(cell)) {
		if (micros)
			format_micros(cell, buf, len);
		else
			snprintf(buf, len, "%s", cell);
		return true;
	}
	d = strtod(cell, &end);
	if (end == cell || *end != '\0')
		return false;
	format_double(micros ? d / 1e6 : d, buf, len);
	return true;
}

static void render_table(struct out *o, const struct table_metrics *t, const struct view *v)
{
	int label_cols[MAX_LABELS], n_labels = 0;
	const char *values[MAX_LABELS];

	while (n_labels < MAX_LABELS && t->labels[n_labels]) {
		label_cols[n_labels] = view_col(v, t->labels[n_labels]);
		n_labels++;
	}
	for (size_t m = 0; m < t->n_metrics; m++) {
		const struct column_metric *cm = &t->metrics[m];
		int col = view_col(v, cm->column);
		bool header = false;

		if (col < 0 && cm->alt_column)
			col = view_col(v, cm->alt_column);
		if (col < 0)
			continue;
		for (int r = 0; r < v->nrows; r++) {
			char value[64];

			if (!format_value(view_cell(v, r, col), cm->micros, value, sizeof(value)))
				continue;
			if (!header) {
				char name[128];

				snprintf(name, sizeof(name), "%s%s", t->prefix, cm->name);
				put_header(o, name, cm->type, cm->help);
				header = true;
			}
			for (int i = 0; i < n_labels; i++)
				values[i] = label_cols[i] >= 0 ? view_cell(v, r, label_cols[i]) : NULL;
			put(o, "%s%s", t->prefix, cm->name);
			put_labels(o, t->labels, values, n_labels);
			put(o, " %s\n", value);
		}
	}
}

static void render_version(struct out *o, const struct view *v)
{
	static const char *const label[] = { "version" };

	if (v->ncols != 1 || view_col(v, "version") != 0) {
		o->up = false;
		return;
	}
	if (v->nrows == 0)
		return;
	put_header(o, "pgbouncer_version_info", "gauge", "The version the pooler reports, as a label");
	for (int r = 0; r < v->nrows; r++) {
		const char *value[] = { view_cell(v, r, 0) };

		put(o, "pgbouncer_version_info");
		put_labels(o, label, value, 1);
		put(o, " 1\n");
	}
}

/* A table of name and value rows (SHOW LISTS, SHOW CONFIG): the rows it knows, each one a gauge. */
static void render_rows(struct out *o, const struct view *v, const char *key_col, const char *value_col,
			const char *key, const char *name, const char *help)
{
	int kc = view_col(v, key_col), vc = view_col(v, value_col);

	if (kc < 0 || vc < 0) {
		o->up = false;
		return;
	}
	for (int r = 0; r < v->nrows; r++) {
		const char *k = view_cell(v, r, kc), *cell = view_cell(v, r, vc);
		char value[64];

		if (!k || strcmp(k, key) != 0)
			continue;
		if (!cell || !format_value(cell, false, value, sizeof(value))) {
			o->up = false;
			return;
		}
		put_header(o, name, "gauge", help);
		put(o, "%s %s\n", name, value);
		return;
	}
}

static const struct view *client_view; /* for cmp_clients: qsort has no argument */
static int client_cols[4];

/* A client's label value as it is shown: values that are not UTF-8 are all one "<invalid>". */
static const char *client_label(int row, int i)
{
	const char *v = client_cols[i] >= 0 ? view_cell(client_view, row, client_cols[i]) : NULL;

	if (!v)
		return "";
	return utf8_valid((const unsigned char *)v) ? v : "<invalid>";
}

static int cmp_clients(const void *a, const void *b)
{
	int ra = *(const int *)a, rb = *(const int *)b;

	for (int i = 0; i < 4; i++) {
		int c = strcmp(client_label(ra, i), client_label(rb, i));

		if (c)
			return c;
	}
	return 0;
}

/* pgbouncer_client_connections: SHOW CLIENTS counted by database, user, application_name and state. */
static void render_clients(struct out *o, const struct view *v)
{
	static const char *const labels[] = { "database", "user", "application_name", "state" };
	int *rows;

	for (int i = 0; i < 4; i++)
		client_cols[i] = view_col(v, labels[i]);
	if (client_cols[0] < 0 || client_cols[1] < 0 || client_cols[3] < 0) {
		o->up = false;
		return;
	}
	if (v->nrows == 0)
		return;
	rows = malloc((size_t)v->nrows * sizeof(*rows));
	if (!rows) {
		o->failed = true;
		return;
	}
	for (int r = 0; r < v->nrows; r++)
		rows[r] = r;
	client_view = v;
	qsort(rows, (size_t)v->nrows, sizeof(*rows), cmp_clients);
	put_header(o, "pgbouncer_client_connections", "gauge",
		   "Client connections by database, user, application_name and state");
	for (int r = 0, n; r < v->nrows; r += n) {
		const char *values[4];

		for (n = 1; r + n < v->nrows && cmp_clients(&rows[r], &rows[r + n]) == 0; n++)
			;
		for (int i = 0; i < 4; i++)
			values[i] = client_label(rows[r], i);
		put(o, "pgbouncer_client_connections");
		put_labels(o, labels, values, 4);
		put(o, " %d\n", n);
	}
	client_view = NULL;
	free(rows);
}

static void put_counter(struct out *o, const char *name, const char *help, unsigned long long value)
{
	put_header(o, name, "counter", help);
	put(o, "%s %llu\n", name, value);
}

static void put_gauge(struct out *o, const char *name, const char *help, unsigned long long value)
{
	put_header(o, name, "gauge", help);
	put(o, "%s %llu\n", name, value);
}

/* moonbouncer's own: the policy engine's counters. */
static void render_policy(struct out *o)
{
	struct policy_stats st;

	policy_get_stats(&st);
	put_counter(o, "moonbouncer_policy_calls_total", "Policy hook calls that ran Lua", st.calls);
	put_counter(o, "moonbouncer_policy_failures_total",
		    "Policy hook calls that failed (errors, timeouts and memory errors)", st.failures);
	put_counter(o, "moonbouncer_policy_timeouts_total", "Policy hook calls stopped by policy_timeout",
		    st.timeouts);
	put_counter(o, "moonbouncer_policy_memory_errors_total",
		    "Policy hook calls stopped by policy_max_memory", st.memory_errors);
	put_counter(o, "moonbouncer_policy_reloads_total",
		    "Successful loads of the policy files, the one at start-up included", st.reloads);
	put_counter(o, "moonbouncer_policy_reload_failures_total",
		    "Reloads of the policy files that failed (the previous set stayed in force)",
		    st.reload_failures);
	put_gauge(o, "moonbouncer_policy_heap_bytes", "Bytes of Lua heap the policies use", st.heap_bytes);
	put_gauge(o, "moonbouncer_policy_files", "Policy files in force", (unsigned long long)st.n_files);
}

/* moonbouncer's own: how long clients waited for a server, and flow-control stops. */
static void render_waits_and_flow(struct out *o)
{
	const struct stats_wait_histogram *h = stats_wait_histogram();
	const struct sbuf_counters *fc = sbuf_counters();
	char bound[32], sum[32];

	put_header(o, "moonbouncer_client_wait_seconds", "histogram",
		   "Seconds each client waited for a server connection (or its pool's first login)");
	for (int i = 0; i < STATS_WAIT_BUCKETS; i++) {
		format_double(h->bounds[i], bound, sizeof(bound));
		put(o, "moonbouncer_client_wait_seconds_bucket{le=\"%s\"} %llu\n", bound, h->le[i]);
	}
	put(o, "moonbouncer_client_wait_seconds_bucket{le=\"+Inf\"} %llu\n", h->count);
	format_double(h->sum, sum, sizeof(sum));
	put(o, "moonbouncer_client_wait_seconds_sum %s\n", sum);
	put(o, "moonbouncer_client_wait_seconds_count %llu\n", h->count);
	put_counter(o, "moonbouncer_flow_control_relay_blocked_total",
		    "Times relayed bytes stopped because the receiving socket would take no more", fc->relay_blocked);
	put_counter(o, "moonbouncer_flow_control_output_full_total",
		    "Times a socket's input stopped until the pooler's own output to it drained", fc->output_full);
}

/* The named view, or NULL (and the scrape is not up) when it cannot be built. */
static struct view *build(struct out *o, const char *name)
{
	char err[256];
	struct view *v = views_build(name, err, sizeof(err));

	if (v && v->failed) {
		view_free(v);
		v = NULL;
	}
	if (!v)
		o->up = false;
	return v;
}

bool metrics_text_render(struct evbuffer *out)
{
	struct out o = { .buf = out, .failed = false, .up = true };
	struct view *v;

	if ((v = build(&o, "VERSION"))) {
		render_version(&o, v);
		view_free(v);
	}
	if ((v = build(&o, "LISTS"))) {
		for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
			render_rows(&o, v, "list", "items", lists[i].list, lists[i].name, lists[i].help);
		view_free(v);
	}
	if ((v = build(&o, "CONFIG"))) {
		for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
			render_rows(&o, v, "key", "value", config_keys[i].key, config_keys[i].name,
				    config_keys[i].help);
		view_free(v);
	}
	if ((v = build(&o, "CLIENTS"))) {
		render_clients(&o, v);
		view_free(v);
	}
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if ((v = build(&o, tables[i].view))) {
			render_table(&o, &tables[i], v);
			view_free(v);
		}
	}
	render_policy(&o);
	render_waits_and_flow(&o);
	put_gauge(&o, "pgbouncer_up", "1 if every table of this scrape could be read, else 0", o.up ? 1 : 0);
	return !o.failed;
}
