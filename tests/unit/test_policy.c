/* Unit tests of the policy engine: loading, merged decisions, budgets, reloads, ctx, counters and limits. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "params.h"
#include "policy.h"
#include "unit.h"

static char root[PATH_MAX];

/* Sleep the whole time: the engine's watchdog timer (SIGALRM) may interrupt a sleep. */
static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* The source tree: the current directory (make runs tests from there), else two levels above the binary. */
static void find_root(void)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (access("lua/moonbouncer/dispatcher.lua", R_OK) == 0 && getcwd(root, sizeof(root)) != NULL)
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		strcat(exe, "/../..");
		if (realpath(exe, root) != NULL)
			return;
	}
	fprintf(stderr, "cannot find the source tree\n");
	exit(2);
}

static void add_db(struct config *cfg, const char *name, const char *dbname, int port)
{
	struct db_entry *db = &cfg->dbs[cfg->n_dbs++];

	memset(db, 0, sizeof(*db));
	db->name = strdup(name);
	db->dbname = dbname ? strdup(dbname) : NULL;
	db->port = port;
	db->pool_size = -1;
	db->pool_mode = POOL_MODE_UNSET;
}

/* A config with four [databases] entries and policy_dir = tests/unit/policies/<set> (NULL: none). */
static struct config *make_config(const char *set)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char path[PATH_MAX + 64];

	if (set != NULL) {
		snprintf(path, sizeof(path), "%s/tests/unit/policies/%s", root, set);
		cfg->policy_dir = strdup(path);
	}
	cfg->policy_timeout = 0.05;
	cfg->policy_max_memory = 64 << 20;
	cfg->policy_max_query_length = 65536;
	cfg->dbs = calloc(4, sizeof(*cfg->dbs));
	add_db(cfg, "db_a", "real_a", 5432);
	add_db(cfg, "db_a2", NULL, 5433);
	add_db(cfg, "replica", NULL, 5432);
	add_db(cfg, "*", NULL, 5432);
	return cfg;
}

static void free_config(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		free(cfg->dbs[i].name);
		free(cfg->dbs[i].dbname);
	}
	free(cfg->dbs);
	free(cfg->policy_dir);
	free(cfg->policy_file);
	free(cfg);
}

static struct policy_client client(unsigned long long id, const char *user)
{
	struct policy_client c = {
		.id = id,
		.user = user,
		.database = "app",
		.application_name = "psql",
		.addr = "10.0.0.7",
		.port = 41000,
		.tls = true,
		.pool_mode = "session",
	};

	return c;
}

static struct policy_query query(const char *kind, const char *sql)
{
	static const char *kinds[1];
	struct policy_query q = {
		.kind = kind,
		.kinds = kinds,
		.n_kinds = 1,
		.protocol = "simple",
		.sql = sql,
		.sql_len = strlen(sql),
	};

	kinds[0] = kind;
	return q;
}

/* on_query for (kind, sql) by client 1; the reject message (or "" / "<result N>") for the checks. */
static enum policy_result run_query(const char *kind, const char *sql, struct policy_decision *d)
{
	struct policy_client c = client(1, "app");
	struct policy_query q = query(kind, sql);

	return policy_on_query(&c, &q, d);
}

static bool contains(const char *s, const char *part)
{
	return s != NULL && strstr(s, part) != NULL;
}

/* Reader of the log FIFO: lets writes block for a while, then drains until EOF. */
static void *drain_fifo(void *arg)
{
	char buf[65536];
	int fd = open(arg, O_RDONLY);

	sleep_s(0.2);
	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
	if (fd >= 0)
		close(fd);
	return NULL;
}

/*
 * A call during which the process is held up (here: a log write into a full
 * FIFO) has spent wall time but hardly any CPU: it must not count as a
 * timeout, as on an overloaded host that deschedules the proxy.
 */
static void test_descheduled(void)
{
	char path[64] = "/tmp/mb_test_policy_fifo_XXXXXX";
	char block[4096];
	struct policy_decision d;
	pthread_t th;
	double t0, el;
	int fill;

	if (mkdtemp(path) == NULL)
		abort();
	strcat(path, "/log");
	if (mkfifo(path, 0600) != 0 || pthread_create(&th, NULL, drain_fifo, path) != 0)
		abort();
	fill = open(path, O_WRONLY);
	if (fill < 0 || fcntl(fill, F_SETFL, O_NONBLOCK) != 0)
		abort();
	memset(block, 'x', sizeof(block));
	while (write(fill, block, sizeof(block)) > 0)
		;
	if (!log_open_file(path))
		abort();
	t0 = clock_now();
	UNIT_EQ_INT(run_query("select", "stall", &d), POLICY_DECIDED, "descheduled: no timeout");
	el = clock_now() - t0;
	printf("# held up for %.3f s\n", el);
	UNIT_CHECK(el > 0.1, "descheduled: the call was held up past policy_timeout");
	UNIT_EQ_STR(d.message, "survived", "descheduled: the call completed");
	policy_decision_clear(&d);
	if (!log_open_file(NULL))
		abort();
	close(fill);
	pthread_join(th, NULL);
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}

static void test_idle(void)
{
	struct config *cfg = make_config(NULL);
	struct policy_client c = client(1, "banned");
	struct policy_decision d;
	struct tenant_limits lim;
	struct policy_stats st;
	const char *kinds[] = { "select" };
	char err[256] = "";

	UNIT_CHECK(policy_load(cfg, err, sizeof(err)), "idle: no policy configured loads");
	UNIT_CHECK(!policy_active(), "idle: no Lua state");
	UNIT_CHECK(!policy_wants_connect() && !policy_wants_query(kinds, 1) && !policy_wants_begin() &&
			   !policy_wants_disconnect() && !policy_wants_limits(),
		   "idle: no hook wanted");
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_PASS, "idle: on_connect passes");
	UNIT_EQ_INT(policy_limits("acme", &lim), POLICY_PASS, "idle: no limits");
	UNIT_EQ_INT(lim.max_active, -1, "idle: max_active unlimited");
	policy_on_disconnect(&c);
	policy_get_stats(&st);
	UNIT_EQ_INT(st.heap_bytes, 0, "idle: no heap");
	UNIT_EQ_INT(st.calls, 0, "idle: no calls");
	free_config(cfg);
}

static void test_load_errors(void)
{
	struct config *cfg = make_config("does-not-exist");
	char err[512] = "";

	UNIT_CHECK(!policy_load(cfg, err, sizeof(err)), "missing policy_dir fails the load");
	UNIT_CHECK(contains(err, "does-not-exist"), "the error names the directory");
	UNIT_CHECK(!policy_active(), "a failed start-up load leaves the engine idle");
	free_config(cfg);

	cfg = make_config("chain");
	policy_set_runtime_dir("/nonexistent");
	UNIT_CHECK(!policy_load(cfg, err, sizeof(err)), "no runtime: load fails");
	UNIT_CHECK(contains(err, "/nonexistent/lua"), "no runtime: the error says where it looked");
	policy_set_runtime_dir(root);
	free_config(cfg);

	cfg = make_config("broken");
	UNIT_CHECK(!policy_load(cfg, err, sizeof(err)), "syntax error fails the load");
	UNIT_CHECK(contains(err, "broken/10-syntax.lua:4:"), "syntax error: file:line");
	UNIT_CHECK(!policy_active(), "syntax error at start-up: engine idle");
	free_config(cfg);
}

/* A copy of the runtime in a temporary directory whose dispatcher ends with extra (Lua code before "return D"). */
static bool runtime_copy(char *dir, size_t dirlen, const char *extra)
{
	char cmd[4 * PATH_MAX + 256];
	FILE *f;

	snprintf(dir, dirlen, "/tmp/mb-unit-runtime.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return false;
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/lua' && cp -r '%s/lua/moonbouncer' '%s/lua/' && "
		 "sed -i '$d' '%s/lua/moonbouncer/dispatcher.lua'", dir, root, dir, dir);
	if (system(cmd) != 0)
		return false;
	snprintf(cmd, sizeof(cmd), "%s/lua/moonbouncer/dispatcher.lua", dir);
	f = fopen(cmd, "a");
	if (f == NULL)
		return false;
	fprintf(f, "%s\nreturn D\n", extra);
	return fclose(f) == 0;
}

static void runtime_remove(const char *dir)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}

/* The dispatcher's schema and the fields the core takes must agree, or the runtime does not load. */
static void test_schema_agreement(void)
{
	static const struct {
		const char *extra, *want, *name;
	} cases[] = {
		{ "", NULL, "schema: the unchanged runtime loads" },
		{ "D.DECISION_SCHEMA.priority = { hooks = { 'on_connect' }, check = function() end }",
		  "DECISION_SCHEMA has the field priority, which the core does not take",
		  "schema: a decision field the core does not take is refused" },
		{ "D.DECISION_SCHEMA.tenant = nil", "DECISION_SCHEMA lacks fields",
		  "schema: a decision field the core takes and the schema lacks is refused" },
		{ "D.LIMIT_FIELDS.burst = 'number'", "LIMIT_FIELDS has the field burst",
		  "schema: a limits field the core does not take is refused" },
	};
	struct config *cfg = make_config("chain");
	char dir[PATH_MAX], err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool loaded;

		if (!UNIT_CHECK(runtime_copy(dir, sizeof(dir), cases[i].extra), "schema: runtime copied"))
			continue;
		policy_set_runtime_dir(dir);
		err[0] = '\0';
		loaded = policy_load(cfg, err, sizeof(err));
		if (cases[i].want == NULL) {
			UNIT_CHECK(loaded, cases[i].name);
		} else {
			UNIT_CHECK(!loaded && contains(err, cases[i].want), cases[i].name);
			if (!contains(err, cases[i].want))
				printf("# %s\n", err);
		}
		policy_shutdown();
		runtime_remove(dir);
	}
	policy_set_runtime_dir(root);
	free_config(cfg);
}

static void format_test_addr(const struct policy_client *v, char *buf, size_t len)
{
	(void)v;
	snprintf(buf, len, "192.0.2.9");
}

static void test_connect(void)
{
	struct policy_client c;
	struct policy_decision d;
	struct param_set params = { 0 };
	char path[] = "/tmp/mb_test_policy_log_XXXXXX";
	char buf[4096];
	FILE *f;
	size_t n;
	int fd;

	c = client(1, "banned");
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_DECIDED, "connect: reject decided");
	UNIT_CHECK(d.reject, "connect: reject");
	UNIT_EQ_STR(d.message, "banned user", "connect: reject message");
	UNIT_EQ_STR(d.sqlstate, "28000", "connect: the policy's sqlstate");
	policy_decision_clear(&d);

	/* a client's ctx lives until disconnect: the same id then starts afresh */
	policy_on_disconnect(&c);
	c = client(1, "nobody");
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_DECIDED, "connect: reject without sqlstate");
	UNIT_EQ_STR(d.sqlstate, "42501", "connect: default sqlstate 42501");
	policy_decision_clear(&d);

	c = client(12, "alice");
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_DECIDED, "connect: merged decision");
	UNIT_CHECK(!d.reject, "connect: merged, no reject");
	UNIT_EQ_STR(d.route, "db_a2", "connect: the later file's route wins");
	UNIT_EQ_STR(d.user, "alice_srv", "connect: user from the first file");
	UNIT_EQ_STR(d.tenant, "acme", "connect: tenant from the first file");
	UNIT_EQ_INT(d.pool_mode, POOL_MODE_TRANSACTION, "connect: pool_mode from the second file");
	UNIT_EQ_STR(d.error, "", "connect: no error");
	policy_decision_clear(&d);

	c = client(13, "bob");
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_PASS, "connect: nil passes");
	UNIT_CHECK(d.message == NULL && d.route == NULL && d.pool_mode == POOL_MODE_UNSET,
		   "connect: pass is empty");
	policy_decision_clear(&d);

	c = client(2, "dbs");
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_DECIDED, "host: databases()");
	UNIT_EQ_STR(d.message, "*=*:5432,db_a2=db_a2:5433,db_a=real_a:5432,replica=replica:5432",
		    "host: databases() maps every [databases] entry");
	policy_decision_clear(&d);

	c = client(3, "view");
	if (!params_set(&params, "search_path", "public, app", false))
		abort();
	c.params = &params;
	c.in_transaction = true;
	c.tenant = "t1";
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_DECIDED, "client view");
	UNIT_EQ_STR(d.message,
		    "search_path=public, app app=psql addr=10.0.0.7:41000 tls=true tx=true "
		    "mode=session tenant=t1",
		    "client view: every field");
	policy_decision_clear(&d);
	/* each call sees the core's values of that moment; the address may be made only when read */
	if (!params_set(&params, "search_path", "other", false))
		abort();
	c.in_transaction = false;
	c.tenant = NULL;
	c.pool_mode = "transaction";
	c.addr = NULL;
	c.format_addr = format_test_addr;
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_DECIDED, "client view again");
	UNIT_EQ_STR(d.message,
		    "search_path=other app=psql addr=192.0.2.9:41000 tls=true tx=false "
		    "mode=transaction tenant=nil",
		    "client view: the next call follows the core's values, addr formatted on access");
	policy_decision_clear(&d);
	params_clear(&params);
	policy_on_disconnect(&c);

	c = client(4, "clock");
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_DECIDED, "host: now()");
	UNIT_CHECK(d.message && atof(d.message) > clock_now() - 1 && atof(d.message) <= clock_now() + 0.001,
		   "host: now() is monotonic");
	policy_decision_clear(&d);

	fd = mkstemp(path);
	close(fd);
	if (!log_open_file(path))
		abort();
	c = client(5, "logger");
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_PASS, "host: log() returns nothing");
	if (!log_open_file(NULL))
		abort();
	f = fopen(path, "r");
	n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	unlink(path);
	UNIT_CHECK(contains(buf, "LOG policy: hello from logger"), "host: log(level, msg) reaches the log");
	UNIT_CHECK(contains(buf, "policy: plain message"), "host: log(msg) logs at info");
	for (unsigned long long id = 1; id <= 13; id++) {
		c = client(id, NULL);
		policy_on_disconnect(&c);
	}
}

static void test_query(void)
{
	struct policy_client c = client(1, "app");
	struct policy_query q;
	struct policy_decision d;
	struct policy_stats st1, st2;
	const char *kinds2[] = { "select", "select" };
	const char *insert[] = { "insert" };
	const char *mixed[] = { "insert", "set" };

	UNIT_CHECK(policy_wants_query(kinds2, 1), "prefilter: select wanted");
	UNIT_CHECK(!policy_wants_query(insert, 1), "prefilter: insert not wanted");
	UNIT_CHECK(policy_wants_query(mixed, 2), "prefilter: any wanted kind counts");
	UNIT_CHECK(policy_wants_begin() && policy_wants_limits(), "wants: hooks present");
	UNIT_CHECK(policy_wants_disconnect(), "wants: disconnect whenever active (forgets the client)");

	UNIT_EQ_INT(run_query("drop", "drop table t", &d), POLICY_DECIDED, "query: reject");
	UNIT_EQ_STR(d.message, "drop is not allowed", "query: reject message");
	UNIT_EQ_STR(d.sqlstate, "0A000", "query: default sqlstate 0A000");
	policy_decision_clear(&d);

	UNIT_EQ_INT(run_query("listen", "listen x", &d), POLICY_DECIDED, "query: reject with sqlstate");
	UNIT_EQ_STR(d.sqlstate, "0A001", "query: the policy's sqlstate");
	policy_decision_clear(&d);

	UNIT_EQ_INT(run_query("select", "select 1", &d), POLICY_DECIDED, "query: rewrite");
	UNIT_CHECK(!d.reject, "query: rewrite is no reject");
	UNIT_EQ_STR(d.rewrite, "select 2", "query: rewrite text");
	UNIT_EQ_INT(d.rewrite_len, 8, "query: rewrite length");
	policy_decision_clear(&d);

	UNIT_EQ_INT(run_query("set", "set search_path = app; set work_mem = 64", &d), POLICY_DECIDED,
		    "query: track");
	UNIT_EQ_INT(d.n_track, 2, "track: two entries");
	if (d.n_track == 2) {
		UNIT_EQ_STR(d.track[0].name, "search_path", "track: name");
		UNIT_EQ_STR(d.track[0].value, "app", "track: value");
		UNIT_EQ_STR(d.track[1].value, "64", "track: a number value as text");
		UNIT_CHECK(!d.track[0].reset && !d.track[0].reset_all, "track: a SET is no reset");
	}
	policy_decision_clear(&d);

	UNIT_EQ_INT(run_query("reset", "reset search_path; reset all", &d), POLICY_DECIDED,
		    "query: track resets");
	UNIT_EQ_INT(d.n_track, 2, "track resets: two entries");
	if (d.n_track == 2) {
		UNIT_CHECK(d.track[0].reset && !d.track[0].reset_all, "track: reset name");
		UNIT_EQ_STR(d.track[0].name, "search_path", "track: reset's name");
		UNIT_CHECK(d.track[1].reset_all && d.track[1].name == NULL,
			   "track: reset = true is reset_all");
	}
	policy_decision_clear(&d);

	q = query("select", "select kinds");
	q.kinds = kinds2;
	q.n_kinds = 2;
	q.protocol = "extended";
	q.name = "s1";
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "q fields");
	UNIT_EQ_STR(d.message, "select,select extended s1", "q: kinds, protocol and name");
	policy_decision_clear(&d);

	/* the kinds array is reused: a shorter one must not keep old entries */
	q.n_kinds = 1;
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "q fields again");
	UNIT_EQ_STR(d.message, "select extended s1", "q: kinds shrink between calls");
	policy_decision_clear(&d);
	q.n_kinds = 0;
	q.kinds = NULL;
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "q without kinds");
	UNIT_EQ_STR(d.message, "select extended s1", "q: kinds defaults to { kind }");
	policy_decision_clear(&d);

	UNIT_EQ_INT(run_query("select", "select helper", &d), POLICY_DECIDED,
		    "module from policy_dir/policies");
	UNIT_EQ_STR(d.message, "hello from testmod", "require of the operator's module");
	policy_decision_clear(&d);

	policy_get_stats(&st1);
	UNIT_EQ_INT(run_query("insert", "insert into t values (1)", &d), POLICY_PASS,
		    "prefilter: insert passes");
	policy_get_stats(&st2);
	UNIT_EQ_INT(st2.calls, st1.calls, "prefilter: insert never enters Lua");
	UNIT_EQ_INT(run_query("select", "select 42", &d), POLICY_PASS, "query: nil passes");
	policy_get_stats(&st2);
	UNIT_EQ_INT(st2.calls, st1.calls + 1, "query: a wanted kind enters Lua");

	q = query("select", "select len 0123456789");
	q.truncated = true;
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "q.truncated from the core");
	UNIT_EQ_STR(d.message, "len=21 truncated=true", "q.truncated passed through");
	policy_decision_clear(&d);

	UNIT_EQ_INT(run_query("select", "select counter set", &d), POLICY_DECIDED, "counters: set");
	UNIT_EQ_STR(d.message, "set=5 get=5", "counters: set then get");
	policy_decision_clear(&d);
	sleep_s(0.12);
	UNIT_EQ_INT(run_query("select", "select counter get", &d), POLICY_DECIDED, "counters: get after ttl");
	UNIT_EQ_STR(d.message, "get=0", "counters: an expired counter reads 0");
	policy_decision_clear(&d);
}

static void test_begin(void)
{
	struct policy_client c = client(7, "alice");
	struct policy_query q = query("select", "select * from t");
	struct policy_decision d;

	c.tenant = "acme";
	UNIT_EQ_INT(policy_on_transaction_begin(&c, &q, &d), POLICY_DECIDED, "begin: route");
	UNIT_EQ_STR(d.route, "replica", "begin: route to the replica");
	policy_decision_clear(&d);
	c.tenant = NULL;
	UNIT_EQ_INT(policy_on_transaction_begin(&c, &q, &d), POLICY_PASS, "begin: pass");
	policy_on_disconnect(&c);
}

static void test_truncation(struct config *cfg)
{
	struct policy_decision d;
	char err[512];

	cfg->policy_max_query_length = 16;
	UNIT_CHECK(policy_reload(cfg, err, sizeof(err)), "reload with policy_max_query_length 16");
	UNIT_EQ_INT(run_query("select", "select len 0123456789012345", &d), POLICY_DECIDED,
		    "truncated: decided");
	UNIT_EQ_STR(d.message, "len=16 truncated=true", "truncated: a 16-byte prefix and q.truncated");
	policy_decision_clear(&d);
	UNIT_EQ_INT(run_query("select", "select rewrite 0123456789", &d), POLICY_ERROR,
		    "truncated: rewrite is a failure");
	UNIT_CHECK(contains(d.error, "truncated"), "truncated: the error says why");
	UNIT_CHECK(d.rewrite == NULL, "truncated: no rewrite handed out");
	policy_decision_clear(&d);
	cfg->policy_max_query_length = 65536;
	UNIT_CHECK(policy_reload(cfg, err, sizeof(err)), "reload with the default budget");
	UNIT_EQ_INT(run_query("select", "select len 0123456789012345", &d), POLICY_DECIDED, "untruncated");
	UNIT_EQ_STR(d.message, "len=27 truncated=false", "untruncated: the whole text");
	policy_decision_clear(&d);
}

static void test_reload(struct config *cfg)
{
	struct config *broken = make_config("broken");
	struct policy_client c = client(100, "app");
	struct policy_client c2 = client(101, "app");
	struct policy_client alice = client(102, "alice");
	struct policy_query q = query("show", "show x");
	struct policy_decision d;
	struct policy_stats st;
	unsigned gen;
	char err[512] = "";

	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "ctx: first call");
	UNIT_CHECK(contains(d.message, "n=1 shows=1 "), "ctx: a new ctx, counter 1");
	policy_decision_clear(&d);
	gen = policy_generation();
	UNIT_CHECK(policy_reload(cfg, err, sizeof(err)), "reload of the same files");
	UNIT_EQ_INT(policy_generation(), gen + 1, "reload: a new generation");
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "ctx: after reload");
	UNIT_EQ_STR(d.error, "", "ctx: after reload no error");
	UNIT_CHECK(contains(d.message, "n=2 shows=2 "), "ctx and counters survive a reload");
	policy_decision_clear(&d);
	UNIT_EQ_INT(policy_on_query(&c2, &q, &d), POLICY_DECIDED, "ctx: other client");
	UNIT_CHECK(contains(d.message, "n=1 shows=3 "), "ctx: per client, counters shared");
	policy_decision_clear(&d);

	/* modules are loaded fresh by every generation: testmod counted its loads */
	{
		int loads_before = 0, loads_after = 0;
		const char *p;

		UNIT_EQ_INT(policy_on_query(&c2, &q, &d), POLICY_DECIDED, "modules: before reload");
		p = d.message ? strstr(d.message, "loads=") : NULL;
		loads_before = p ? atoi(p + 6) : -1;
		policy_decision_clear(&d);
		UNIT_CHECK(policy_reload(cfg, err, sizeof(err)), "reload again");
		UNIT_EQ_INT(policy_on_query(&c2, &q, &d), POLICY_DECIDED, "modules: after reload");
		p = d.message ? strstr(d.message, "loads=") : NULL;
		loads_after = p ? atoi(p + 6) : -1;
		policy_decision_clear(&d);
		UNIT_EQ_INT(loads_after, loads_before + 1,
			    "modules: a reload loads policies.* modules again");
	}

	policy_on_disconnect(&c);
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "ctx: after disconnect");
	UNIT_CHECK(contains(d.message, "n=1 "), "disconnect forgets the ctx");
	policy_decision_clear(&d);

	gen = policy_generation();
	UNIT_CHECK(!policy_reload(broken, err, sizeof(err)), "reload with a syntax error fails");
	UNIT_CHECK(contains(err, "10-syntax.lua:4:"), "reload error: file:line");
	UNIT_EQ_INT(policy_generation(), gen, "failed reload: same generation");
	UNIT_CHECK(policy_active() && policy_wants_begin(), "failed reload: old set still in force");
	UNIT_EQ_INT(policy_on_connect(&alice, &d), POLICY_DECIDED, "failed reload: old decisions");
	UNIT_EQ_STR(d.route, "db_a2", "failed reload: old route");
	policy_decision_clear(&d);
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "failed reload: ctx kept");
	UNIT_CHECK(contains(d.message, "n=2 "), "failed reload: ctx still there");
	policy_decision_clear(&d);
	policy_get_stats(&st);
	UNIT_CHECK(st.reload_failures >= 1, "failed reload counted");
	UNIT_CHECK(contains(st.last_error, "10-syntax.lua:4:"), "failed reload: last_error");
	UNIT_EQ_INT(st.n_files, 2, "stats: two files in force");
	policy_on_disconnect(&c);
	policy_on_disconnect(&c2);
	free_config(broken);
}

static void test_limits(struct config *cfg)
{
	struct tenant_limits lim;
	struct policy_stats st1, st2;
	char err[512];

	UNIT_EQ_INT(policy_limits("acme", &lim), POLICY_DECIDED, "limits: acme");
	UNIT_EQ_INT(lim.max_clients, 2, "limits: max_clients");
	UNIT_EQ_INT(lim.max_active, 1, "limits: max_active");
	UNIT_CHECK(lim.rate == 10, "limits: rate");
	policy_get_stats(&st1);
	UNIT_EQ_INT(policy_limits("acme", &lim), POLICY_DECIDED, "limits: acme again");
	UNIT_EQ_INT(lim.max_active, 1, "limits: cached value");
	policy_get_stats(&st2);
	UNIT_EQ_INT(st2.calls, st1.calls, "limits: once per tenant and generation");

	UNIT_EQ_INT(policy_limits("other", &lim), POLICY_PASS, "limits: nil is no limit");
	UNIT_CHECK(lim.max_clients == -1 && lim.max_active == -1 && lim.rate == -1,
		   "limits: unlimited is -1");

	policy_get_stats(&st1);
	UNIT_EQ_INT(policy_limits("bad", &lim), POLICY_ERROR, "limits: malformed is a failure");
	UNIT_EQ_INT(lim.max_clients, -1, "limits: failure leaves no limit");
	UNIT_EQ_INT(policy_limits("bad", &lim), POLICY_ERROR, "limits: failure cached");
	policy_get_stats(&st2);
	UNIT_EQ_INT(st2.failures, st1.failures + 1, "limits: failure counted once");
	UNIT_CHECK(contains(st2.last_error, "10-connect.lua"), "limits: failure names the file");

	UNIT_CHECK(policy_reload(cfg, err, sizeof(err)), "limits: reload");
	policy_get_stats(&st1);
	UNIT_EQ_INT(policy_limits("acme", &lim), POLICY_DECIDED, "limits: after reload");
	policy_get_stats(&st2);
	UNIT_EQ_INT(st2.calls, st1.calls + 1, "limits: asked again after a reload");
}

/* Reloads that drop every policy and bring them back: the engine idles, the counters stay. */
static void test_idle_reload(struct config *chain)
{
	struct config *none = make_config(NULL);
	struct policy_client c = client(300, "app");
	struct policy_query q = query("show", "show x");
	struct policy_decision d;
	char err[512] = "";
	int before = -1, after = -1;
	const char *p;

	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "idle reload: before");
	p = d.message ? strstr(d.message, "shows=") : NULL;
	before = p ? atoi(p + 6) : -1;
	policy_decision_clear(&d);
	UNIT_CHECK(policy_reload(none, err, sizeof(err)), "reload without policies");
	UNIT_CHECK(!policy_active() && !policy_wants_disconnect(), "reload without policies: idle");
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_PASS, "idle: statements pass");
	UNIT_CHECK(policy_reload(chain, err, sizeof(err)), "reload with the policies again");
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_DECIDED, "idle reload: after");
	p = d.message ? strstr(d.message, "shows=") : NULL;
	after = p ? atoi(p + 6) : -1;
	UNIT_CHECK(contains(d.message, "n=1 "), "idle reload: a new Lua state, a new ctx");
	policy_decision_clear(&d);
	UNIT_EQ_INT(after, before + 1, "idle reload: the counters survived");
	policy_on_disconnect(&c);
	free_config(none);
}

static void test_budgets(void)
{
	struct config *cfg = make_config("budget");
	struct policy_decision d;
	struct policy_stats st;
	size_t big_len = 32u << 20;
	char *big = malloc(big_len + 1);
	struct policy_client c = client(9, "app");
	struct policy_query q;
	char err[512] = "";
	double t0, el;

	cfg->policy_max_memory = 16 << 20;
	cfg->policy_max_query_length = 0; /* no limit: the whole text reaches q.sql */
	UNIT_CHECK(policy_load(cfg, err, sizeof(err)), "budget policies load");
	if (err[0])
		printf("# %s\n", err);

	UNIT_EQ_INT(run_query("select", "raise", &d), POLICY_ERROR, "error: a raising hook");
	UNIT_CHECK(contains(d.error, "budget/10-budget.lua:14: boom"), "error: file:line: message");
	UNIT_CHECK(!contains(d.error, "traceback"), "error: no traceback");
	policy_decision_clear(&d);

	UNIT_EQ_INT(run_query("select", "bad decision", &d), POLICY_ERROR, "error: a malformed decision");
	UNIT_CHECK(contains(d.error, "reject must be a non-empty string"),
		   "error: malformed decision explained");
	policy_decision_clear(&d);

	UNIT_EQ_INT(run_query("select", "recurse", &d), POLICY_ERROR, "error: endless recursion");
	UNIT_CHECK(contains(d.error, "stack overflow"), "error: stack overflow reported");
	policy_decision_clear(&d);
	UNIT_EQ_INT(run_query("select", "ok", &d), POLICY_DECIDED, "error: the next call works");
	policy_decision_clear(&d);

	t0 = clock_now();
	UNIT_EQ_INT(run_query("select", "loop", &d), POLICY_TIMEOUT, "timeout: endless loop");
	el = clock_now() - t0;
	printf("# endless loop stopped after %.3f s\n", el);
	/* on a busy host the call gets only part of the CPU: up to 20 x policy_timeout of wall clock */
	UNIT_CHECK(el >= 0.05 && el < 1.5, "timeout: stopped after about policy_timeout");
	UNIT_CHECK(contains(d.error, "budget/10-budget.lua:16: policy budget exceeded"),
		   "timeout: where it ran");
	printf("# %s\n", d.error);
	policy_decision_clear(&d);
	UNIT_EQ_INT(run_query("select", "ok", &d), POLICY_DECIDED, "timeout: the next call works");
	UNIT_EQ_STR(d.message, "still works", "timeout: the next call decides");
	policy_decision_clear(&d);

	t0 = clock_now();
	UNIT_EQ_INT(run_query("select", "pcall loop", &d), POLICY_TIMEOUT, "timeout: a loop inside pcall");
	UNIT_CHECK(clock_now() - t0 < 1.5, "timeout: pcall cannot swallow it");
	policy_decision_clear(&d);
	UNIT_EQ_INT(run_query("select", "ok", &d), POLICY_DECIDED, "timeout: works after the pcall loop");
	policy_decision_clear(&d);

	test_descheduled();

	/* under ASan large allocations are slow: give the memory checks time enough to hit the heap limit */
	cfg->policy_timeout = 5;
	UNIT_CHECK(policy_reload(cfg, err, sizeof(err)), "reload with a longer policy_timeout");
	for (int i = 0; i < 3; i++) {
		t0 = clock_now();
		UNIT_EQ_INT(run_query("select", "alloc", &d), POLICY_MEMORY, "memory: unbounded allocation");
		printf("# allocation stopped after %.3f s\n", clock_now() - t0);
		UNIT_CHECK(contains(d.error, "policy_max_memory"), "memory: the error says which budget");
		if (i == 0)
			printf("# %s\n", d.error);
		policy_decision_clear(&d);
		policy_get_stats(&st);
		UNIT_CHECK(st.heap_bytes < (size_t)cfg->policy_max_memory,
			   "memory: heap back under the limit");
		UNIT_EQ_INT(run_query("select", "ok", &d), POLICY_DECIDED, "memory: the next call works");
		policy_decision_clear(&d);
	}

	/* q.sql is materialised only on access: 32 MB of text cannot fit a 16 MB heap */
	memset(big, 'x', big_len);
	big[big_len] = '\0';
	q = query("insert", big);
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_PASS, "lazy sql: not read, not copied");
	q = query("select", big);
	UNIT_EQ_INT(policy_on_query(&c, &q, &d), POLICY_MEMORY, "lazy sql: read, too big for the heap");
	policy_decision_clear(&d);
	UNIT_EQ_INT(run_query("select", "ok", &d), POLICY_DECIDED, "lazy sql: state still usable");
	policy_decision_clear(&d);

	policy_get_stats(&st);
	UNIT_CHECK(st.timeouts == 2, "stats: timeouts");
	UNIT_CHECK(st.memory_errors == 4, "stats: memory errors");
	UNIT_CHECK(st.failures >= 9, "stats: failures include every kind");
	printf("# heap in use: %zu bytes\n", st.heap_bytes);
	policy_on_disconnect(&c);
	free(big);
	free_config(cfg);
}

/*
 * Pattern functions run in C, where the count hook never fires: a pattern
 * that backtracks without end must still stop at policy_timeout, reached
 * through the string metatable (q.sql:find), the sandbox's string table, in
 * pcall, gsub and gmatch; and the functions must give Lua's own answers.
 */
/* what LuaJIT's own functions answer to the "patterns" query of 10-budget.lua */
#define PATTERN_ANSWERS \
	"5 23 tenant acme | nil | SET app.tenant = 'acme' | (a(b)c) | 9 10 | nil | x | nil | SET app.tenant = 'acme'; select (a(b)c) from t -- x 9 | <SET> <app>.<tenant> = 'acme'; select (a(b)c) from t -- x 3 | SET app.tenant = 'acme'; SELECT (a(b)c) from t -- x 11 | SET app.tenant = 'acme'; select (A(B)C) from T -- X 11 | -- 2 | tenant 'acme'; | SET | app | tenant | acme | select | a | b | c | from | t | x | false unfinished capture | false malformed pattern (missing ']') | false malformed pattern (ends with '%') |"

static void test_patterns(void)
{
	static const char *const runaway[] = {
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"pattern aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"gsub aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"gmatch aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	static const char *const where[] = { "budget/10-budget.lua:43: policy budget exceeded",
					     "budget/10-budget.lua:45: policy budget exceeded", /* in pcall */
					     "budget/10-budget.lua:48: policy budget exceeded",
					     "budget/10-budget.lua:50: policy budget exceeded" };
	static const char *const fn[] = { "in string.find", "in string.match", "in string.gsub", "in string.gmatch" };
	struct config *cfg = make_config("budget");
	struct policy_decision d;
	struct policy_stats st0, st;
	char err[512] = "";
	char name[160];

	UNIT_CHECK(policy_load(cfg, err, sizeof(err)), "patterns: budget policies load");
	policy_get_stats(&st0);
	for (size_t i = 0; i < sizeof(runaway) / sizeof(runaway[0]); i++) {
		double t0 = clock_now(), el;

		snprintf(name, sizeof(name), "patterns: %s stops at policy_timeout", fn[i]);
		UNIT_EQ_INT(run_query("select", runaway[i], &d), POLICY_TIMEOUT, name);
		el = clock_now() - t0;
		printf("# %s stopped after %.3f s: %s\n", fn[i], el, d.error);
		snprintf(name, sizeof(name), "patterns: %s stopped in time", fn[i]);
		UNIT_CHECK(el < 1.5, name);
		snprintf(name, sizeof(name), "patterns: %s: file:line and the function", fn[i]);
		UNIT_CHECK(contains(d.error, where[i]) && contains(d.error, fn[i]), name);
		policy_decision_clear(&d);
		snprintf(name, sizeof(name), "patterns: the call after %s works", fn[i]);
		UNIT_EQ_INT(run_query("select", "ok", &d), POLICY_DECIDED, name);
		policy_decision_clear(&d);
	}
	policy_get_stats(&st);
	UNIT_EQ_INT(st.timeouts - st0.timeouts, 4, "patterns: each one counted as a timeout");

	UNIT_EQ_INT(run_query("select", "patterns", &d), POLICY_DECIDED, "patterns: the answers");
	UNIT_EQ_STR(d.message, PATTERN_ANSWERS, "patterns: the same answers as Lua's own functions");
	policy_decision_clear(&d);
	free_config(cfg);
}

static void test_ready_policy(void)
{
	struct config *cfg = make_config("ready");
	struct policy_client c = client(20, "acme");
	struct policy_decision d;
	struct tenant_limits lim;
	char err[512] = "";

	UNIT_CHECK(policy_load(cfg, err, sizeof(err)), "ready policy from policies/ loads");
	if (err[0])
		printf("# %s\n", err);
	UNIT_EQ_INT(policy_on_connect(&c, &d), POLICY_DECIDED, "tenant_limits: on_connect");
	UNIT_EQ_STR(d.tenant, "acme", "tenant_limits: tenant from the user");
	policy_decision_clear(&d);
	UNIT_EQ_INT(policy_limits("acme", &lim), POLICY_DECIDED, "tenant_limits: acme");
	UNIT_CHECK(lim.max_clients == 200 && lim.max_active == 5 && lim.rate == 50,
		   "tenant_limits: acme's limits");
	UNIT_EQ_INT(policy_limits("zzz", &lim), POLICY_DECIDED, "tenant_limits: other");
	UNIT_CHECK(lim.max_clients == -1 && lim.max_active == 2 && lim.rate == -1,
		   "tenant_limits: the * entry");
	policy_on_disconnect(&c);
	free_config(cfg);
}

int main(void)
{
	struct config *chain;
	char err[512] = "";

	find_root();
	log_setup(0, true);
	policy_set_runtime_dir(root);

	test_idle();
	test_load_errors();
	test_schema_agreement();

	chain = make_config("chain");
	UNIT_CHECK(policy_load(chain, err, sizeof(err)), "two policy files load");
	if (err[0])
		printf("# %s\n", err);
	UNIT_CHECK(policy_active(), "loaded: engine active");
	UNIT_CHECK(policy_wants_connect(), "loaded: wants on_connect");
	test_connect();
	test_query();
	test_begin();
	test_truncation(chain);
	test_reload(chain);
	test_limits(chain);
	test_idle_reload(chain);
	free_config(chain);

	test_budgets();
	test_patterns();
	test_ready_policy();

	policy_shutdown();
	UNIT_CHECK(!policy_active(), "shutdown: idle");
	policy_set_runtime_dir(NULL);
	return unit_done();
}
