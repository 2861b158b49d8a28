/* Unit tests for core/link.c: events in (messages sent, ReadyForQuery answers, a delivered end of transaction,
 * a client going), actions out (relay, pause, release, unlink, admission), on connections without sockets. */
#include "unit.h"

#include "client.h"
#include "config.h"
#include "link.h"
#include "policy.h"
#include "pool.h"
#include "runtime.h"
#include "server.h"
#include "tenant.h"

/* What the pool heard from its servers. */
static struct server *g_ready[8];
static int g_n_ready;
static int g_n_gone;

static void fake_ready(struct server *s)
{
	if (g_n_ready < 8)
		g_ready[g_n_ready] = s;
	g_n_ready++;
}

static void fake_gone(struct pool *pool)
{
	(void)pool;
	g_n_gone++;
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

static struct config g_cfg;
static struct pool g_pool;

static void setup_pool(void)
{
	rt.cfg = &g_cfg;
	memset(&g_pool, 0, sizeof(g_pool));
	g_pool.db_name = "db";
	g_pool.user_name = "user";
	g_pool.server_events = &fake_events;
	list_init(&g_pool.login_servers);
	list_init(&g_pool.idle_servers);
	list_init(&g_pool.active_servers);
	list_init(&g_pool.used_servers);
	list_init(&g_pool.closing_servers);
	list_init(&g_pool.welcome_clients);
	list_init(&g_pool.active_clients);
	list_init(&g_pool.waiting_clients);
	g_n_ready = g_n_gone = 0;
}

static void new_client(struct client *c, enum pool_mode mode)
{
	memset(c, 0, sizeof(*c));
	sbuf_init(&c->sb, NULL, c);	/* no socket: sending and resuming do nothing */
	c->pool = &g_pool;
	c->pool_mode = mode;
	c->state = CL_CLOSED;
	list_init(&c->head);
	client_change_state(c, CL_WAITING);
}

static void new_server(struct server *s)
{
	memset(s, 0, sizeof(*s));
	sbuf_init(&s->sb, NULL, s);
	s->pool = &g_pool;
	s->state = SV_CLOSED;
	list_init(&s->head);
	s->txn_status = PROTO_TXN_IDLE;
	server_change_state(s, SV_IDLE);
}

static void test_hand_over_and_detach(void)
{
	struct client c;
	struct server s;

	setup_pool();
	new_client(&c, POOL_MODE_TRANSACTION);
	new_server(&s);
	s.pending_ready = 3;	/* left from before: a new link starts with nothing owed */
	link_hand_over(&s, &c);
	UNIT_CHECK(s.client == &c && c.server == &s, "hand-over: each side knows the other");
	UNIT_CHECK(c.sb.peer == &s.sb && s.sb.peer == &c.sb, "hand-over: each socket relays to the other");
	UNIT_CHECK(s.state == SV_ACTIVE && g_pool.n_active == 1 && s.used, "hand-over: the server is active");
	UNIT_CHECK(s.phase == PHASE_RELAY, "nothing to apply: relay starts at once");
	UNIT_CHECK(c.state == CL_ACTIVE, "the waiting client is active");
	UNIT_CHECK(s.pending_ready == 0 && !s.batch_open && link_between_transactions(&s),
		   "a new link owes nothing and is between transactions");
	link_detach(&s);
	UNIT_CHECK(s.client == NULL && c.server == NULL, "detach: each side forgets the other");
	UNIT_CHECK(c.sb.peer == NULL && s.sb.peer == NULL, "detach: no socket relays to the other");
	link_detach(&s);
	UNIT_CHECK(s.client == NULL, "detach of an unlinked server: nothing happens");
}

static void test_request_accounting(void)
{
	struct client c;
	struct server s;

	setup_pool();
	new_client(&c, POOL_MODE_TRANSACTION);
	new_server(&s);
	link_hand_over(&s, &c);

	/* an extended-protocol batch: open until its Sync, answered by one ReadyForQuery */
	link_batch_msg(&s, FE_PARSE);
	link_request_msg(&s, FE_PARSE);
	link_batch_msg(&s, FE_BIND);
	link_batch_msg(&s, FE_EXECUTE);
	UNIT_CHECK(s.batch_open && s.pending_ready == 0, "Parse, Bind, Execute: a batch is open, no answer owed yet");
	UNIT_CHECK(!link_between_transactions(&s) && link_idle(&s), "an open batch is not between transactions");
	link_batch_msg(&s, FE_SYNC);
	link_request_msg(&s, FE_SYNC);
	UNIT_CHECK(!s.batch_open && s.pending_ready == 1, "Sync: the batch closes, one ReadyForQuery owed");
	UNIT_CHECK(!link_idle(&s), "a request runs: not idle");
	UNIT_CHECK(link_ready(&s, PROTO_TXN_IDLE), "its ReadyForQuery is the last one owed");
	UNIT_CHECK(link_between_transactions(&s), "then the server is between transactions");
	UNIT_EQ_INT(link_ready_relay(&s), SBUF_FORWARD_PAUSE, "transaction mode: relayed, then the server goes");

	/* a pipeline: two Queries, the first opens a transaction */
	link_request_msg(&s, FE_QUERY);
	link_request_msg(&s, FE_QUERY);
	UNIT_EQ_INT(s.pending_ready, 2, "two Queries: two ReadyForQuery answers owed");
	UNIT_CHECK(!link_ready(&s, PROTO_TXN_BLOCK), "the first answer is not the last");
	UNIT_CHECK(s.txn_status == PROTO_TXN_BLOCK && s.xact_start > 0, "a transaction began: its start is noted");
	UNIT_EQ_INT(link_ready_relay(&s), SBUF_FORWARD, "answers still owed: relayed, the server stays");
	UNIT_CHECK(link_ready(&s, PROTO_TXN_BLOCK), "the second answer is the last");
	UNIT_EQ_INT(link_ready_relay(&s), SBUF_FORWARD, "inside a transaction block: relayed, the server stays");
	link_forwarded(&s);
	UNIT_CHECK(s.client == &c, "delivered inside a transaction: still linked");

	/* a FunctionCall may be anything: the server is reset before another client gets it */
	s.dirty = false;
	link_request_msg(&s, FE_FUNCTION_CALL);
	UNIT_CHECK(s.dirty && s.pending_ready == 1, "FunctionCall: one answer owed, the session counts as changed");
	link_request_sent(&s);
	UNIT_EQ_INT(s.pending_ready, 2, "a request sent in the client's stead is owed an answer too");
}

static void test_transaction_end_releases(void)
{
	struct client c;
	struct server s;

	setup_pool();
	new_client(&c, POOL_MODE_TRANSACTION);
	new_server(&s);
	link_hand_over(&s, &c);
	c.began = true;
	link_request_msg(&s, FE_QUERY);
	link_ready(&s, PROTO_TXN_IDLE);
	UNIT_EQ_INT(link_ready_relay(&s), SBUF_FORWARD_PAUSE, "a transaction's last answer pauses the server");
	link_forwarded(&s);
	UNIT_CHECK(s.client == NULL && c.server == NULL, "once delivered: unlinked");
	UNIT_CHECK(!c.began, "the client's next statement begins a new transaction");
	UNIT_CHECK(g_n_ready == 1 && g_ready[0] == &s && s.phase == PHASE_IDLE,
		   "the server goes back to its pool, clean: no reset");

	/* session mode keeps its server */
	setup_pool();
	new_client(&c, POOL_MODE_SESSION);
	new_server(&s);
	link_hand_over(&s, &c);
	link_request_msg(&s, FE_QUERY);
	link_ready(&s, PROTO_TXN_IDLE);
	UNIT_EQ_INT(link_ready_relay(&s), SBUF_FORWARD, "session mode: the server stays with its client");
}

static void test_client_gone(void)
{
	struct client c;
	struct server s;

	setup_pool();
	new_client(&c, POOL_MODE_TRANSACTION);
	new_server(&s);
	link_hand_over(&s, &c);
	link_client_gone(&c);
	UNIT_CHECK(s.client == NULL && c.server == NULL, "a client going unlinks its server");
	UNIT_CHECK(g_n_ready == 1 && g_ready[0] == &s, "between transactions: the server serves others");

	setup_pool();
	new_client(&c, POOL_MODE_TRANSACTION);
	new_server(&s);
	link_hand_over(&s, &c);
	link_request_msg(&s, FE_QUERY);
	link_client_gone(&c);
	UNIT_CHECK(g_n_ready == 0 && s.state == SV_CLOSED && g_n_gone == 1,
		   "a request running: the server cannot serve another and closes");
}

static void test_tenant_admission(void)
{
	struct client c1, c2;
	struct server s;
	struct tenant *t;

	setup_pool();
	t = tenant_get("acme");
	if (!UNIT_CHECK(t != NULL, "tenant"))
		return;
	t->limits_generation = policy_generation();	/* limits as set here, not from a policy */
	t->max_active = 1;
	t->max_clients = -1;
	t->rate = 0;
	new_client(&c1, POOL_MODE_TRANSACTION);
	new_client(&c2, POOL_MODE_TRANSACTION);
	client_change_state(&c1, CL_ACTIVE);
	client_change_state(&c2, CL_ACTIVE);
	c1.tenant = c2.tenant = t;
	UNIT_CHECK(link_admit(&c1) && c1.tenant_active && t->n_active == 1, "the first transaction starts");
	UNIT_CHECK(!link_admit(&c2) && c2.state == CL_TENANT_WAIT, "max_active = 1: the second waits");
	UNIT_CHECK(link_admit(&c1), "a client holding a slot goes on");

	new_server(&s);
	link_hand_over(&s, &c1);
	link_request_msg(&s, FE_QUERY);
	link_ready(&s, PROTO_TXN_IDLE);
	link_forwarded(&s);
	UNIT_CHECK(!c1.tenant_active, "the first transaction's end frees its slot");
	UNIT_CHECK(c2.state == CL_ACTIVE && c2.tenant_active && t->n_active == 1, "... and the waiter is admitted");
	link_client_gone(&c2);
	UNIT_CHECK(!c2.tenant_active && t->n_active == 0, "a client going frees its slot");
	tenant_free_all();
}

int main(void)
{
	test_hand_over_and_detach();
	test_request_accounting();
	test_transaction_end_releases();
	test_client_gone();
	test_tenant_admission();
	return unit_done();
}
