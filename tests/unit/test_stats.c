/* Unit tests for core/stats.c: PgBouncer's averages, what counts as a query and a transaction, the counts the
 * link makes (assignments, waits, query and transaction ends), and the per-database rows of the SHOW views. */
#include "unit.h"

#include "client.h"
#include "config.h"
#include "link.h"
#include "pool.h"
#include "runtime.h"
#include "server.h"
#include "stats.h"
#include "view.h"

static void test_average(void)
{
	struct stats_counters old = { 0 }, cur = { 0 }, avg;

	old.xact_count = 100;
	old.query_count = 300;
	old.xact_time = 1000;
	old.query_time = 600;
	old.server_assignment_count = 10;
	old.wait_time = 50;
	cur = old;
	cur.xact_count += 20;		/* over 2 s: 10 per second */
	cur.query_count += 61;		/* 30.5 per second: rounded down */
	cur.bytes_received = 4000;
	cur.bytes_sent = 3;		/* 1.5 per second */
	cur.xact_time += 20 * 700;	/* 700 us per transaction */
	cur.query_time += 61 * 200 + 60;	/* 200.98 us per query: rounded down */
	cur.server_assignment_count += 4;
	cur.wait_time += 4 * 25;
	cur.client_parse_count = 2;
	cur.server_parse_count = 4;
	cur.bind_count = 6;
	cur.client_login_count = 8;
	stats_average(&avg, &cur, &old, 2000000);
	UNIT_EQ_INT(avg.xact_count, 10, "transactions per second");
	UNIT_EQ_INT(avg.query_count, 30, "queries per second, rounded down");
	UNIT_EQ_INT(avg.bytes_received, 2000, "bytes received per second");
	UNIT_EQ_INT(avg.bytes_sent, 1, "bytes sent per second, rounded down");
	UNIT_EQ_INT(avg.xact_time, 700, "transaction time: per transaction of the period");
	UNIT_EQ_INT(avg.query_time, 200, "query time: per query of the period, rounded down");
	UNIT_EQ_INT(avg.server_assignment_count, 2, "server assignments per second");
	UNIT_EQ_INT(avg.wait_time, 25, "wait time: per server assignment of the period");
	UNIT_CHECK(avg.client_parse_count == 1 && avg.server_parse_count == 2 && avg.bind_count == 3 &&
			   avg.client_login_count == 4,
		   "parses, binds and logins per second");

	cur = old;
	cur.xact_time += 5000;		/* time with no transaction ended in the period */
	stats_average(&avg, &cur, &old, 1000000);
	UNIT_CHECK(avg.xact_time == 0 && avg.query_time == 0 && avg.wait_time == 0 && avg.xact_count == 0,
		   "no transaction, query or assignment in the period: no average time");

	cur.xact_count = old.xact_count + 5;
	stats_average(&avg, &cur, &old, 0);
	UNIT_CHECK(avg.xact_count == 0 && avg.xact_time == 0, "an empty period gives zeros, no division by zero");

	memset(&old, 0, sizeof(old));
	memset(&cur, 0, sizeof(cur));
	cur.bytes_sent = 40ULL << 40;	/* 40 TiB: a million times that overflows 64 bits */
	stats_average(&avg, &cur, &old, 4000000);
	UNIT_CHECK(avg.bytes_sent == (10ULL << 40), "large byte counts do not overflow");
}

/* What PgBouncer counts as queries and transactions: a query runs from a client's message to the ReadyForQuery
 * that answers its last request; a transaction from its first query to the ReadyForQuery that says idle. */
static void test_request(void)
{
	struct stats_counters st = { 0 };
	struct stats_request r = { 0 };

	/* BEGIN; SELECT; COMMIT as three Queries */
	stats_request_arrived(&r, 10.0);
	stats_request_taken(&st, &r, 11);
	stats_request_done(&st, &r, PROTO_TXN_BLOCK, 10.001);
	stats_request_arrived(&r, 10.002);
	stats_request_taken(&st, &r, 20);
	stats_request_done(&st, &r, PROTO_TXN_BLOCK, 10.005);
	stats_request_arrived(&r, 10.006);
	stats_request_taken(&st, &r, 12);
	stats_request_done(&st, &r, PROTO_TXN_IDLE, 10.010);
	UNIT_EQ_INT(st.query_count, 3, "three Queries: three queries");
	UNIT_EQ_INT(st.xact_count, 1, "in one transaction");
	UNIT_EQ_INT(st.bytes_received, 43, "their bytes");
	UNIT_CHECK(st.query_time >= 7990 && st.query_time <= 8010, "query time: 1 + 3 + 4 ms");
	UNIT_CHECK(st.xact_time >= 9990 && st.xact_time <= 10010, "transaction time: BEGIN to the idle answer, 10 ms");
	UNIT_CHECK(!r.counted && r.query_start == 0 && r.xact_start == 0, "nothing runs afterwards");

	/* Parse, Bind, Describe, Execute, Sync: one query that waited 5 ms before its first message was taken */
	memset(&st, 0, sizeof(st));
	stats_request_arrived(&r, 20.0);
	stats_request_arrived(&r, 20.005);	/* asked again once a server is linked */
	for (int i = 0; i < 5; i++) {
		if (i)
			stats_request_arrived(&r, 20.006);
		stats_request_taken(&st, &r, 10);
	}
	stats_request_done(&st, &r, PROTO_TXN_IDLE, 20.008);
	UNIT_CHECK(st.query_count == 1 && st.xact_count == 1, "an extended-protocol batch: one query, one transaction");
	UNIT_EQ_INT(st.bytes_received, 50, "every message's bytes");
	UNIT_CHECK(st.query_time >= 7990 && st.query_time <= 8010, "its time counts from the first arrival");

	/* a ReadyForQuery with nothing counted (a message still waiting) ends nothing */
	memset(&st, 0, sizeof(st));
	stats_request_arrived(&r, 30.0);
	stats_request_done(&st, &r, PROTO_TXN_IDLE, 30.5);
	UNIT_CHECK(st.query_time == 0 && r.query_start == 30.0, "a message not taken yet keeps its arrival time");
	stats_request_taken(&st, &r, 5);
	stats_request_done(&st, &r, PROTO_TXN_IDLE, 31.0);
	UNIT_CHECK(st.query_count == 1 && st.query_time >= 999000 && st.query_time <= 1001000,
		   "then it counts from its arrival");
}

static struct config g_cfg;

static void init_pool(struct pool *p, char *db, char *user)
{
	memset(p, 0, sizeof(*p));
	p->db_name = db;
	p->user_name = user;
	pool_init_lists(p);
}

static void fake_ready(struct server *s)
{
	(void)s;
}

static void fake_gone(struct pool *pool)
{
	(void)pool;
}

static void fake_login_failed(struct pool *pool, const char *sqlstate, const char *message, bool retry)
{
	(void)pool;
	(void)sqlstate;
	(void)message;
	(void)retry;
}

static const struct server_pool_events fake_events = {
	.ready = fake_ready,
	.gone = fake_gone,
	.login_failed = fake_login_failed,
};

/* The link counts assignments and waits when it hands a server over, and ends queries on the last answer. */
static void test_link_counts(void)
{
	struct pool p;
	struct client c;
	struct server s;
	double before;

	rt.cfg = &g_cfg;
	init_pool(&p, "db", "user");
	p.server_events = &fake_events;
	memset(&c, 0, sizeof(c));
	sbuf_init(&c.sb, NULL, &c);
	c.pool = &p;
	c.pool_mode = POOL_MODE_TRANSACTION;
	c.state = CL_CLOSED;
	list_init(&c.head);
	client_change_state(&c, CL_WAITING);
	c.request_time = rt_now() - 0.25;	/* queued a quarter of a second ago */
	memset(&s, 0, sizeof(s));
	sbuf_init(&s.sb, NULL, &s);
	s.pool = &p;
	s.state = SV_CLOSED;
	list_init(&s.head);
	s.txn_status = PROTO_TXN_IDLE;
	server_change_state(&s, SV_IDLE);

	before = rt_now();
	stats_request_arrived(&c.stats, before);
	link_hand_over(&s, &c);
	UNIT_EQ_INT(p.stats.server_assignment_count, 1, "a hand-over is a server assignment");
	UNIT_CHECK(p.stats.wait_time >= 250000 && p.stats.wait_time < 250000 + 60 * 1000000ULL,
		   "the queued client's wait is counted (at least 250 ms)");

	/* two pipelined Queries: one query until the second answer */
	stats_request_taken(&p.stats, &c.stats, 20);
	link_request_msg(&s, FE_QUERY);
	stats_request_taken(&p.stats, &c.stats, 20);
	link_request_msg(&s, FE_QUERY);
	link_ready(&s, PROTO_TXN_BLOCK);
	UNIT_CHECK(c.stats.counted, "an answer with another owed ends no query");
	link_ready(&s, PROTO_TXN_IDLE);
	UNIT_CHECK(!c.stats.counted && c.stats.xact_start == 0, "the last answer ends the query and the transaction");
	UNIT_CHECK(p.stats.query_count == 1 && p.stats.xact_count == 1, "pipelined Queries: one query, as PgBouncer");

	/* an idle client that was not queued adds no wait */
	link_detach(&s);
	client_change_state(&c, CL_ACTIVE);
	p.stats.wait_time = 0;
	link_hand_over(&s, &c);
	UNIT_CHECK(p.stats.server_assignment_count == 2 && p.stats.wait_time == 0,
		   "a server for a client that did not wait: an assignment, no wait");
	link_detach(&s);
}

static const char *cell(const struct view *v, int row, const char *col)
{
	int i = view_col(v, col);
	return i >= 0 && row < v->nrows ? view_cell(v, row, i) : "(none)";
}

/* One row per database, its pools summed, in name order; the console's database among them. */
static void test_views(void)
{
	struct pool a1, a2, b;
	struct stats_request console_client = { 0 };
	struct view *v;

	init_pool(&b, "zeta", "u1");
	init_pool(&a1, "alpha", "u1");
	init_pool(&a2, "alpha", "u2");
	b.stats.xact_count = 7;
	a1.stats.xact_count = 3;
	a2.stats.xact_count = 4;
	a1.stats.bytes_received = 100;
	a2.stats.bytes_sent = 5000;
	a2.stats.client_parse_count = 9;
	b.stats.client_login_count = 2;
	list_append(pool_list(), &b.head);
	list_append(pool_list(), &a1.head);
	list_append(pool_list(), &a2.head);
	/* a console client logs in and runs two commands: one query and one transaction, as PgBouncer counts */
	stats_console_login();
	stats_console_command(&console_client);
	stats_console_command(&console_client);

	v = stats_view_totals();
	UNIT_CHECK(v && !v->failed && v->nrows == 3, "STATS_TOTALS: a row per database, the console's included");
	if (v && v->nrows == 3) {
		UNIT_EQ_STR(cell(v, 0, "database"), "alpha", "in name order");
		UNIT_EQ_STR(cell(v, 0, "xact_count"), "7", "the database's pools are summed");
		UNIT_EQ_STR(cell(v, 0, "bytes_received"), "100", "bytes received");
		UNIT_EQ_STR(cell(v, 0, "bytes_sent"), "5000", "bytes sent");
		UNIT_EQ_STR(cell(v, 0, "client_parse_count"), "9", "client parses");
		UNIT_EQ_STR(cell(v, 1, "database"), "pgbouncer", "the console's database");
		UNIT_CHECK(strcmp(cell(v, 1, "client_login_count"), "1") == 0 && strcmp(cell(v, 1, "query_count"), "1") == 0 &&
				   strcmp(cell(v, 1, "xact_count"), "1") == 0,
			   "the console: its login, and its client's first command as a query and a transaction");
		UNIT_EQ_STR(cell(v, 2, "database"), "zeta", "then the next database");
		UNIT_EQ_STR(cell(v, 2, "client_login_count"), "2", "logins");
	}
	view_free(v);

	v = stats_view_stats();
	UNIT_CHECK(v && v->ncols == 25 && v->nrows == 3, "STATS: 25 columns, a row per database");
	if (v && v->nrows == 3) {
		UNIT_EQ_STR(cell(v, 0, "total_xact_count"), "7", "STATS: totals");
		UNIT_EQ_STR(cell(v, 0, "total_sent"), "5000", "STATS: total_sent");
	}
	view_free(v);

	v = stats_view_averages();
	UNIT_CHECK(v && v->ncols == 13 && v->nrows == 3, "STATS_AVERAGES: a row per database");
	view_free(v);

	v = stats_view_totals_list();
	UNIT_CHECK(v && v->nrows == 24, "TOTALS: 12 totals and 12 averages");
	if (v && v->nrows == 24) {
		UNIT_EQ_STR(view_cell(v, 1, 0), "total_xact_count", "TOTALS: PgBouncer's row names");
		UNIT_EQ_STR(view_cell(v, 1, 1), "15", "TOTALS: every pool summed, and the console");
		UNIT_EQ_STR(view_cell(v, 3, 0), "total_client_bytes", "TOTALS: bytes received as total_client_bytes");
		UNIT_EQ_STR(view_cell(v, 4, 1), "5000", "TOTALS: bytes sent as total_server_bytes");
		UNIT_EQ_STR(view_cell(v, 12, 0), "avg_server_assignment_count", "TOTALS: then the averages");
	}
	view_free(v);

	list_remove(&a1.head);
	list_remove(&a2.head);
	list_remove(&b.head);
	v = stats_view_totals();
	UNIT_CHECK(v && v->nrows == 1 && strcmp(cell(v, 0, "database"), "pgbouncer") == 0,
		   "no pool: the console's row alone, as in PgBouncer");
	view_free(v);
}

int main(void)
{
	test_average();
	test_request();
	test_link_counts();
	test_views();
	return unit_done();
}
