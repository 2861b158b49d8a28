/* Unit tests for core/metrics_text.c: the exposition of known tables, labels escaped, seconds, pgbouncer_up. */
#include "unit.h"

#include <strings.h>

#include <event2/buffer.h>

#include "metrics_text.h"
#include "view.h"
#include "views.h"

static const char *missing_view; /* views_build says no to this one */

/* The tables of a small pooler: this test's own views_build, in place of the live bookkeeping. */
struct view *views_build(const char *name, char *err, size_t errlen)
{
	struct view *v = NULL;

	if (missing_view && strcasecmp(name, missing_view) == 0) {
		snprintf(err, errlen, "no such view");
		return NULL;
	}
	if (strcasecmp(name, "VERSION") == 0) {
		v = view_new("s", "version");
		view_row(v, "PgBouncer 1.25.2");
	} else if (strcasecmp(name, "LISTS") == 0) {
		v = view_new("si", "list", "items");
		view_row(v, "databases", 2);
		view_row(v, "peers", 0);
		view_row(v, "used_clients", 4);
		view_row(v, "dns_queries", 0);
	} else if (strcasecmp(name, "CONFIG") == 0) {
		v = view_new("ssss", "key", "value", "default", "changeable");
		view_row(v, "listen_port", "6432", "6432", "no");
		view_row(v, "max_client_conn", "100", "100", "yes");
		view_row(v, "max_user_connections", "0", "0", "yes");
	} else if (strcasecmp(name, "CLIENTS") == 0) {
		v = view_new("sssss", "type", "user", "database", "state", "application_name");
		view_row(v, "C", "app", "db", "active", "psql");
		view_row(v, "C", "app", "db", "waiting", "psql");
		view_row(v, "C", "app", "db", "active", "psql");
		view_row(v, "C", "app", "db", "active", "say \"hi\"\\\n");
		view_row(v, "C", "app", "db", "active", "bad \xff byte");
		view_row(v, "C", "app", "db", "active", "another \xc3 bad one");
		view_row(v, "C", "other", "db", "active", NULL);
	} else if (strcasecmp(name, "DATABASES") == 0) {
		v = view_new("ssissiiisiiii", "name", "host", "port", "database", "force_user", "pool_size",
			     "reserve_pool_size", "max_connections", "pool_mode", "current_connections",
			     "paused", "disabled", "min_pool_size");
		view_row(v, "db", "127.0.0.1", 5432, "postgres", NULL, 20, 0, 0, NULL, 1, 0, 0, 0);
	} else if (strcasecmp(name, "STATS_TOTALS") == 0) {
		v = view_new("sqqqq", "database", "xact_count", "query_time", "wait_time", "xact_time");
		view_row(v, "db", 7LL, 1234567LL, 5LL, 2000000LL);
	} else if (strcasecmp(name, "POOLS") == 0) {
		v = view_new("ssiiis", "database", "user", "cl_active", "sv_active", "maxwait", "pool_mode");
		view_row(v, "db", "app", 3, 1, 2, "transaction");
	} else if (strcasecmp(name, "TENANTS") == 0) {
		v = view_new("siN", "tenant", "clients", "rejections");
		view_row(v, "acme", 2, 1ULL);
	} else {
		snprintf(err, errlen, "no such view");
	}
	return v;
}

static char *scrape(void)
{
	struct evbuffer *buf = evbuffer_new();
	size_t len;
	char *text;
	bool ok = metrics_text_render(buf);

	UNIT_CHECK(ok, "the scrape is computed");
	len = evbuffer_get_length(buf);
	text = malloc(len + 1);
	evbuffer_remove(buf, text, len);
	text[len] = '\0';
	evbuffer_free(buf);
	return text;
}

/* Is line one whole line of text? */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define EXPECT_LINE(text, line)                                    \
	do {                                                       \
		if (!UNIT_CHECK(has_line((text), (line)), (line))) \
			printf("#   in:\n%s", (text));             \
	} while (0)

static void test_all_tables(void)
{
	char *t = scrape();

	EXPECT_LINE(t, "pgbouncer_up 1");
	EXPECT_LINE(t, "# TYPE pgbouncer_up gauge");
	EXPECT_LINE(t, "moonbouncer_tenant_clients{tenant=\"acme\"} 2");
	EXPECT_LINE(t, "# TYPE moonbouncer_tenant_rejections_total counter");
	EXPECT_LINE(t, "moonbouncer_tenant_rejections_total{tenant=\"acme\"} 1");
	EXPECT_LINE(t, "# TYPE moonbouncer_client_wait_seconds histogram");
	EXPECT_LINE(t, "moonbouncer_client_wait_seconds_bucket{le=\"+Inf\"} 0");
	EXPECT_LINE(t, "moonbouncer_client_wait_seconds_count 0");
	EXPECT_LINE(t, "# TYPE moonbouncer_flow_control_output_full_total counter");
	EXPECT_LINE(t, "pgbouncer_version_info{version=\"PgBouncer 1.25.2\"} 1");
	EXPECT_LINE(t, "pgbouncer_databases 2");
	EXPECT_LINE(t, "pgbouncer_used_clients 4");
	EXPECT_LINE(t, "pgbouncer_in_flight_dns_queries 0");
	UNIT_CHECK(!strstr(t, "peers"), "a list the exporter does not know is left out");
	EXPECT_LINE(t, "pgbouncer_config_max_client_connections 100");
	EXPECT_LINE(t, "pgbouncer_config_max_user_connections 0");
	EXPECT_LINE(t, "# TYPE pgbouncer_client_connections gauge");
	EXPECT_LINE(t, "pgbouncer_client_connections{database=\"db\",user=\"app\",application_name=\"psql\","
		       "state=\"active\"} 2");
	EXPECT_LINE(t, "pgbouncer_client_connections{database=\"db\",user=\"app\",application_name=\"psql\","
		       "state=\"waiting\"} 1");
	EXPECT_LINE(t, "pgbouncer_client_connections{database=\"db\",user=\"app\","
		       "application_name=\"say \\\"hi\\\"\\\\\\n\",state=\"active\"} 1");
	EXPECT_LINE(
		t, "pgbouncer_client_connections{database=\"db\",user=\"app\",application_name=\"<invalid>\","
		   "state=\"active\"} 2");
	EXPECT_LINE(t, "pgbouncer_client_connections{database=\"db\",user=\"other\",application_name=\"\","
		       "state=\"active\"} 1");
	EXPECT_LINE(t, "pgbouncer_databases_pool_size{name=\"db\",host=\"127.0.0.1\",port=\"5432\","
		       "database=\"postgres\",force_user=\"\",pool_mode=\"\"} 20");
	EXPECT_LINE(t, "pgbouncer_databases_reserve_pool{name=\"db\",host=\"127.0.0.1\",port=\"5432\","
		       "database=\"postgres\",force_user=\"\",pool_mode=\"\"} 0");
	UNIT_CHECK(!strstr(t, "min_pool_size"), "a column the exporter does not read is left out");
	EXPECT_LINE(t, "# TYPE pgbouncer_stats_sql_transactions_pooled_total counter");
	EXPECT_LINE(t, "pgbouncer_stats_sql_transactions_pooled_total{database=\"db\"} 7");
	EXPECT_LINE(t, "pgbouncer_stats_queries_duration_seconds_total{database=\"db\"} 1.234567");
	EXPECT_LINE(t, "pgbouncer_stats_client_wait_seconds_total{database=\"db\"} 0.000005");
	EXPECT_LINE(t, "pgbouncer_stats_server_in_transaction_seconds_total{database=\"db\"} 2");
	UNIT_CHECK(!strstr(t, "pgbouncer_stats_binds_total"), "a column the table lacks makes no metric");
	EXPECT_LINE(t, "pgbouncer_pools_client_active_connections{database=\"db\",user=\"app\"} 3");
	EXPECT_LINE(t, "pgbouncer_pools_server_active_connections{database=\"db\",user=\"app\"} 1");
	EXPECT_LINE(t, "pgbouncer_pools_client_maxwait_seconds{database=\"db\",user=\"app\"} 2");
	EXPECT_LINE(t, "# TYPE moonbouncer_policy_reloads_total counter");
	EXPECT_LINE(t, "moonbouncer_policy_files 0");
	free(t);
}

/* Every sample's family has its HELP and TYPE before it, once. */
static void test_headers(void)
{
	char *t = scrape(), *save = NULL;
	char seen[64][128];
	int n_seen = 0;
	bool ok = true;

	for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];

		if (strncmp(line, "# TYPE ", 7) == 0) {
			sscanf(line + 7, "%127s", name);
			for (int i = 0; i < n_seen; i++)
				if (strcmp(seen[i], name) == 0)
					ok = UNIT_CHECK(false, "a family has one TYPE line");
			if (n_seen < 64)
				snprintf(seen[n_seen++], sizeof(seen[0]), "%s", name);
		} else if (line[0] != '#') {
			size_t len = strcspn(line, "{ "), fam = n_seen > 0 ? strlen(seen[n_seen - 1]) : 0;
			/* a histogram's samples are its name with _bucket, _sum or _count */
			bool suffix = (len - fam == 7 && strncmp(line + fam, "_bucket", 7) == 0) ||
				      (len - fam == 4 && strncmp(line + fam, "_sum", 4) == 0) ||
				      (len - fam == 6 && strncmp(line + fam, "_count", 6) == 0);

			ok = ok && n_seen > 0 && (fam == len || suffix) && strncmp(seen[n_seen - 1], line, fam) == 0;
		}
	}
	UNIT_CHECK(ok, "every sample follows its own family's TYPE line");
	free(t);
}

static void test_missing_table(void)
{
	char *t;

	missing_view = "POOLS";
	t = scrape();
	EXPECT_LINE(t, "pgbouncer_up 0");
	UNIT_CHECK(!strstr(t, "pgbouncer_pools_"), "no pool metric without SHOW POOLS");
	EXPECT_LINE(t, "pgbouncer_databases 2");
	free(t);
	missing_view = NULL;
}

int main(void)
{
	test_all_tables();
	test_headers();
	test_missing_table();
	return unit_done();
}
