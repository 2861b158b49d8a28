/* Traffic statistics per pool: averages over stats_period, the log_stats line, and the SHOW views made of them. */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "list.h"
#include "log.h"
#include "pool.h"
#include "runtime.h"
#include "view.h"

#define USEC 1000000LL

static struct event *g_tick;
/* the console's counters at the last two ticks */
static struct stats_counters g_console_newer, g_console_older;
/* when the two snapshots of every pool were taken (microseconds of rt_now()) */
static long long g_old_stamp, g_new_stamp;

static long long now_usec(void)
{
	return (long long)(rt_now() * 1e6);
}

/* ---- the stats_period tick ---- */

static void arm(void)
{
	double period = rt.cfg->stats_period > 0 ? rt.cfg->stats_period : 1;	/* 0 would spin the loop */
	struct timeval tv = { (time_t)period, (suseconds_t)((period - (double)(time_t)period) * 1e6) };

	if (event_add(g_tick, &tv) < 0)
		log_warning("stats: could not arm the stats_period timer");
}

/* Every stats_period: the pools' snapshots move on, and the log_stats line tells the rates since the last one. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct stats_counters cur = { 0 }, old = { 0 }, avg;

	(void)fd;
	(void)what;
	(void)arg;
	g_old_stamp = g_new_stamp;
	g_new_stamp = now_usec();
	g_console_older = g_console_newer;
	g_console_newer = *stats_console();
	stats_add(&cur, stats_console());
	stats_add(&old, &g_console_older);
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		struct pool *pool = container_of(it, struct pool, head);
		pool->stats_older = pool->stats_newer;
		pool->stats_newer = pool->stats;
		stats_add(&cur, &pool->stats);
		stats_add(&old, &pool->stats_older);
	}
	if (rt.cfg->log_stats) {
		stats_average(&avg, &cur, &old, g_new_stamp - g_old_stamp);
		/* PgBouncer's wording: operators' log searches and alerts expect it */
		log_info("stats: %llu xacts/s, %llu queries/s, %llu client parses/s, %llu server parses/s, %llu binds/s, "
			 "%llu client logins/s, in %llu B/s, out %llu B/s, xact %llu us, query %llu us, wait %llu us",
			 avg.xact_count, avg.query_count, avg.client_parse_count, avg.server_parse_count, avg.bind_count,
			 avg.client_login_count, avg.bytes_received, avg.bytes_sent, avg.xact_time, avg.query_time,
			 avg.wait_time);
	}
	arm();
}

bool stats_start(struct event_base *base)
{
	g_new_stamp = now_usec();
	g_old_stamp = g_new_stamp - USEC;	/* as PgBouncer: the first averages span one second */
	g_tick = event_new(base, -1, 0, on_tick, NULL);
	if (!g_tick)
		return false;
	arm();
	return true;
}

void stats_stop(void)
{
	if (g_tick)
		event_free(g_tick);
	g_tick = NULL;
}

/* ---- the views: one row per database, its pools summed, in name order (PgBouncer's pool order), the console's
 * included ---- */

struct db_stats {
	const char *name;
	struct stats_counters cur, old;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct db_stats *)a)->name, ((const struct db_stats *)b)->name);
}

/* The databases' sums (current and at the older snapshot), the console's first, sorted; NULL with *n = 0 when out
 * of memory (*failed then). */
static struct db_stats *per_database(int *n, bool *failed)
{
	struct db_stats *dbs = malloc(8 * sizeof(*dbs));
	int cap = 8;

	*n = 0;
	*failed = !dbs;
	if (!dbs)
		return NULL;
	memset(&dbs[0], 0, sizeof(dbs[0]));
	dbs[0].name = STATS_CONSOLE_DB;
	dbs[0].cur = *stats_console();
	dbs[0].old = g_console_older;
	*n = 1;
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *pool = container_of(it, struct pool, head);
		int i;
		for (i = 0; i < *n && strcmp(dbs[i].name, pool->db_name) != 0; i++)
			;
		if (i == *n) {
			if (*n == cap) {
				struct db_stats *more = realloc(dbs, (size_t)cap * 2 * sizeof(*dbs));
				if (!more) {
					free(dbs);
					*n = 0;
					*failed = true;
					return NULL;
				}
				dbs = more;
				cap *= 2;
			}
			memset(&dbs[i], 0, sizeof(dbs[i]));
			dbs[i].name = pool->db_name;
			(*n)++;
		}
		stats_add(&dbs[i].cur, &pool->stats);
		stats_add(&dbs[i].old, &pool->stats_older);
	}
	if (*n > 1)
		qsort(dbs, (size_t)*n, sizeof(*dbs), by_name);
	return dbs;
}

/* Averages as SHOW computes them: from the older snapshot to now. */
static void average_now(struct stats_counters *avg, const struct stats_counters *cur, const struct stats_counters *old)
{
	stats_average(avg, cur, old, now_usec() - g_old_stamp);
}

/* The rows of a per-database view: row(v, name, cur, avg) for each database. */
static struct view *fill(struct view *v,
			 void (*row)(struct view *v, const char *name, const struct stats_counters *cur,
				     const struct stats_counters *avg))
{
	struct stats_counters avg;
	struct db_stats *dbs;
	bool failed;
	int n;

	if (!v)
		return NULL;
	dbs = per_database(&n, &failed);
	v->failed = v->failed || failed;
	for (int i = 0; i < n; i++) {
		average_now(&avg, &dbs[i].cur, &dbs[i].old);
		row(v, dbs[i].name, &dbs[i].cur, &avg);
	}
	free(dbs);
	return v;
}

static void row_stats(struct view *v, const char *name, const struct stats_counters *t, const struct stats_counters *a)
{
	view_row(v, name, t->server_assignment_count, t->xact_count, t->query_count, t->bytes_received, t->bytes_sent,
		 t->xact_time, t->query_time, t->wait_time, t->client_parse_count, t->server_parse_count, t->bind_count,
		 t->client_login_count, a->server_assignment_count, a->xact_count, a->query_count, a->bytes_received,
		 a->bytes_sent, a->xact_time, a->query_time, a->wait_time, a->client_parse_count, a->server_parse_count,
		 a->bind_count, a->client_login_count);
}

/* STATS_TOTALS and STATS_AVERAGES have the same columns, of one kind each */
static void row_counters(struct view *v, const char *name, const struct stats_counters *c)
{
	view_row(v, name, c->server_assignment_count, c->xact_count, c->query_count, c->bytes_received, c->bytes_sent,
		 c->xact_time, c->query_time, c->wait_time, c->client_parse_count, c->server_parse_count, c->bind_count,
		 c->client_login_count);
}

static void row_totals(struct view *v, const char *name, const struct stats_counters *t, const struct stats_counters *a)
{
	(void)a;
	row_counters(v, name, t);
}

static void row_averages(struct view *v, const char *name, const struct stats_counters *t,
			 const struct stats_counters *a)
{
	(void)t;
	row_counters(v, name, a);
}

struct view *stats_view_stats(void)
{
	return fill(view_new("sNNNNNNNNNNNNNNNNNNNNNNNN", "database", "total_server_assignment_count",
			     "total_xact_count", "total_query_count", "total_received", "total_sent", "total_xact_time",
			     "total_query_time", "total_wait_time", "total_client_parse_count",
			     "total_server_parse_count", "total_bind_count", "total_client_login_count",
			     "avg_server_assignment_count", "avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
			     "avg_xact_time", "avg_query_time", "avg_wait_time", "avg_client_parse_count",
			     "avg_server_parse_count", "avg_bind_count", "avg_client_login_count"),
		    row_stats);
}

struct view *stats_view_totals(void)
{
	return fill(view_new("sNNNNNNNNNNNN", "database", "server_assignment_count", "xact_count", "query_count",
			     "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time", "client_parse_count",
			     "server_parse_count", "bind_count", "client_login_count"),
		    row_totals);
}

struct view *stats_view_averages(void)
{
	return fill(view_new("sNNNNNNNNNNNN", "database", "server_assignment_count", "xact_count", "query_count",
			     "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
			     "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count",
			     "avg_client_login_count"),
		    row_averages);
}

/* SHOW TOTALS: every pool summed, one name-value row per counter, totals then averages. */
struct view *stats_view_totals_list(void)
{
	struct view *v = view_new("sN", "name", "value");
	struct stats_counters t = *stats_console(), old = g_console_older, a;

	if (!v)
		return NULL;
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *pool = container_of(it, struct pool, head);
		stats_add(&t, &pool->stats);
		stats_add(&old, &pool->stats_older);
	}
	average_now(&a, &t, &old);
	/* PgBouncer names these after its own fields: total_client_bytes is what SHOW STATS calls total_received */
	view_row(v, "total_server_assignment_count", t.server_assignment_count);
	view_row(v, "total_xact_count", t.xact_count);
	view_row(v, "total_query_count", t.query_count);
	view_row(v, "total_client_bytes", t.bytes_received);
	view_row(v, "total_server_bytes", t.bytes_sent);
	view_row(v, "total_xact_time", t.xact_time);
	view_row(v, "total_query_time", t.query_time);
	view_row(v, "total_wait_time", t.wait_time);
	view_row(v, "total_ps_client_parse_count", t.client_parse_count);
	view_row(v, "total_ps_server_parse_count", t.server_parse_count);
	view_row(v, "total_ps_bind_count", t.bind_count);
	view_row(v, "total_client_login_count", t.client_login_count);
	view_row(v, "avg_server_assignment_count", a.server_assignment_count);
	view_row(v, "avg_xact_count", a.xact_count);
	view_row(v, "avg_query_count", a.query_count);
	view_row(v, "avg_client_bytes", a.bytes_received);
	view_row(v, "avg_server_bytes", a.bytes_sent);
	view_row(v, "avg_xact_time", a.xact_time);
	view_row(v, "avg_query_time", a.query_time);
	view_row(v, "avg_wait_time", a.wait_time);
	view_row(v, "avg_ps_client_parse_count", a.client_parse_count);
	view_row(v, "avg_ps_server_parse_count", a.server_parse_count);
	view_row(v, "avg_ps_bind_count", a.bind_count);
	view_row(v, "avg_client_login_count", a.client_login_count);
	return v;
}
