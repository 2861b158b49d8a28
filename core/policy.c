/* Lua policy engine: the Lua state, policy generations, hook calls under budgets, and the host module. */
#include "policy.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <luajit.h>

#include "clock.h"
#include "errbuf.h"
#include "hash.h"
#include "log.h"
#include "params.h"
#include "policy_pattern.h"

#ifndef MB_DATADIR
#define MB_DATADIR "/usr/local/share/moonbouncer"
#endif

/* VM instructions between two clock checks once a call is overdue */
#define HOOK_COUNT 1000
/* seconds a whole load or reload may run */
#define LOAD_TIMEOUT 2.0
/* full collection after a call once the heap passes this share of the limit */
#define GC_TRIGGER 0.75
/* after a refusal: room for the error handlers */
#define MEM_GRACE (256u * 1024)
/* a call the OS keeps descheduled still ends at this many times policy_timeout */
#define DESCHEDULED_CAP 20
/* moonbouncer.counter_*: keys and key length */
#define COUNTER_MAX_KEYS 65536
#define COUNTER_MAX_KEY_LEN 255
/* tenants whose limits are cached per generation */
#define LIMITS_CACHE_MAX 4096
/* the dispatcher's D.BUDGET_MARK: its sandbox re-raises errors carrying it, so policies cannot catch them */
#define BUDGET_MARK "policy budget exceeded"

enum hook {
	HOOK_CONNECT,
	HOOK_QUERY,
	HOOK_BEGIN,
	HOOK_DISCONNECT,
	HOOK_LIMITS,
};

/* clang-format off */
static const char *const hook_names[] = {
	[HOOK_CONNECT] = "on_connect",
	[HOOK_QUERY] = "on_query",
	[HOOK_BEGIN] = "on_transaction_begin",
	[HOOK_DISCONNECT] = "on_disconnect",
	[HOOK_LIMITS] = "limits",
};
/* clang-format on */

/* A small string-keyed hash table with chaining: the counters and the limits cache. */
struct sentry {
	struct sentry *next;
	uint32_t hash;
	size_t len;
	double value;
	double expires;		/* monotonic seconds, 0 = never */
	enum policy_result res; /* limits cache */
	struct tenant_limits lim;
	char key[];
};

struct smap {
	struct sentry **buckets;
	size_t n_buckets; /* power of two */
	size_t n;
	size_t max;
};

/* Budgets of the calls; 0 disables one. */
struct policy_budget {
	double timeout;		 /* seconds of wall clock per hook call */
	size_t max_memory;	 /* bytes of Lua heap */
	size_t max_query_length; /* bytes of q.sql; longer: prefix + q.truncated */
};

/* The engine: one Lua state with the runtime loaded and the generation in force. */
struct engine {
	lua_State *L;

	/* heap accounting (lua_Alloc) */
	size_t heap;
	size_t heap_limit; /* 0 = unlimited */
	size_t heap_after_gc;
	bool enforce;	  /* refuse growth past heap_limit */
	bool mem_refused; /* the allocator refused during the current call */

	/* wall clock budget (count hook) */
	bool armed;
	double deadline;
	double timeout; /* of the current call */
	double started;
	double wall_mark; /* past the deadline: when the thread's CPU time was last read */
	double cpu_mark;  /* and that CPU time; < 0 before the first reading */
	bool timed_out;
	bool escalated;
	char where[200]; /* the position the timeout interrupted */
	const char *what; /* the library function it interrupted ("string.find"), or NULL */

	/* registry references */
	int ref_dispatcher;
	int ref_gen;
	int ref_host;
	int ref_ctx_store; /* the dispatcher's client.ctx tables, by client id */
	int ref_keys;	   /* the client table's field names, interned once (enum client_key) */
	int ref_q[2];	 /* on_query, on_transaction_begin */
	int ref_client_mt;
	int ref_dbs;
	int ref_dbs_prev; /* the map before a reload, put back if the reload fails */

	/* valid during one call */
	const struct policy_client *cur_client;
	const struct policy_query *cur_query;
	size_t cur_sql_len;

	/* mirror of the generation in force, for the cheap checks */
	bool has[HOOK_LIMITS + 1];
	bool all_kinds;
	char **kinds; /* sorted */
	int n_kinds;
	int n_files;
};

static struct engine E = { .ref_dispatcher = LUA_NOREF };
static struct smap counters = { .max = COUNTER_MAX_KEYS };
static struct smap limits_cache = { .max = LIMITS_CACHE_MAX };
static struct policy_stats stats;
static unsigned generation;
static char *runtime_override;
static struct policy_budget budget;

/* ---------------------------------------------------------------------------------------------- */
/* string hash table */

static struct sentry **smap_slot(struct smap *m, const char *key, size_t len, uint32_t h)
{
	struct sentry **pp = &m->buckets[h & (m->n_buckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
			return pp;
	return pp;
}

static struct sentry *smap_get(struct smap *m, const char *key, size_t len)
{
	if (m->n_buckets == 0)
		return NULL;
	return *smap_slot(m, key, len, hash_bytes(key, len));
}

static void smap_unlink(struct smap *m, struct sentry **pp)
{
	struct sentry *e = *pp;

	*pp = e->next;
	free(e);
	m->n--;
}

static void smap_delete(struct smap *m, const char *key, size_t len)
{
	struct sentry **pp;

	if (m->n_buckets == 0)
		return;
	pp = smap_slot(m, key, len, hash_bytes(key, len));
	if (*pp != NULL)
		smap_unlink(m, pp);
}

/* Drop entries whose expiry has passed. */
static void smap_purge(struct smap *m, double now)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct sentry **pp = &m->buckets[i];

		while (*pp != NULL) {
			if ((*pp)->expires != 0 && (*pp)->expires <= now)
				smap_unlink(m, pp);
			else
				pp = &(*pp)->next;
		}
	}
}

static void smap_clear(struct smap *m)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		while (m->buckets[i] != NULL)
			smap_unlink(m, &m->buckets[i]);
	}
	free(m->buckets);
	m->buckets = NULL;
	m->n_buckets = 0;
	m->n = 0;
}

static bool smap_grow(struct smap *m)
{
	size_t nb = m->n_buckets ? m->n_buckets * 2 : 64;
	struct sentry **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return false;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct sentry *e = m->buckets[i];

		while (e != NULL) {
			struct sentry *next = e->next;

			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = nb;
	return true;
}

/* Find or create the entry for key; NULL when the table is full (after purging) or out of memory. */
static struct sentry *smap_put(struct smap *m, const char *key, size_t len, double now, bool *created)
{
	struct sentry **pp, *e;
	uint32_t h = hash_bytes(key, len);

	*created = false;
	if (m->n_buckets == 0 && !smap_grow(m))
		return NULL;
	pp = smap_slot(m, key, len, h);
	if (*pp != NULL)
		return *pp;
	if (m->n >= m->max) {
		smap_purge(m, now);
		if (m->n >= m->max)
			return NULL;
	}
	if (m->n >= m->n_buckets)
		(void)smap_grow(m);	/* a longer chain will do if it cannot */
	pp = smap_slot(m, key, len, h); /* purge and growth moved entries */
	e = calloc(1, sizeof(*e) + len + 1);
	if (e == NULL)
		return NULL;
	e->hash = h;
	e->len = len;
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	*pp = e;
	m->n++;
	*created = true;
	return e;
}

/* ---------------------------------------------------------------------------------------------- */
/* budgets: allocator and count hook */

/* policy_timeout, policy_max_memory, policy_max_query_length; 0 (or less) means no limit. */
static struct policy_budget budget_from_config(const struct config *cfg)
{
	struct policy_budget b = {
		.timeout = cfg->policy_timeout > 0 ? cfg->policy_timeout : 0,
		.max_memory = cfg->policy_max_memory > 0 ? (size_t)cfg->policy_max_memory : 0,
		.max_query_length =
			cfg->policy_max_query_length > 0 ? (size_t)cfg->policy_max_query_length : 0,
	};

	return b;
}

/* lua_Alloc: counts the heap and refuses growth past the limit while enforcing (Lua then raises). */
static void *engine_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	void *p;

	(void)ud;
	if (ptr == NULL)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		E.heap -= osize;
		return NULL;
	}
	if (nsize > osize && E.enforce && E.heap_limit != 0 &&
	    E.heap - osize + nsize > E.heap_limit + (E.mem_refused ? MEM_GRACE : 0)) {
		E.mem_refused = true;
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (p == NULL) {
		if (nsize <= osize)
			return ptr; /* a shrink must not fail: keep the larger block */
		return NULL;
	}
	E.heap = E.heap - osize + nsize;
	return p;
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The wall clock passed the deadline; was it the policy? Time the process
 * spent descheduled (an overloaded host) does not count: from the thread's CPU
 * time over the following quarter budget, estimate the CPU the call has used
 * and stop it once that reaches the budget (or at DESCHEDULED_CAP budgets).
 */
static bool overrun(double now)
{
	double cpu = thread_cpu();

	if (now - E.started >= E.timeout * DESCHEDULED_CAP)
		return true;
	if (E.cpu_mark < 0) {
		E.cpu_mark = cpu;
		E.wall_mark = now;
	} else {
		double share = (cpu - E.cpu_mark) / (now - E.wall_mark);

		if (share * (E.wall_mark - E.started) + (cpu - E.cpu_mark) >= E.timeout)
			return true;
	}
	E.deadline = now + E.timeout / 4;
	return false;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	double now;

	if (!E.armed)
		return;
	if (!E.timed_out) {
		now = clock_now();
		if (now < E.deadline || !overrun(now))
			return;
		E.timed_out = true;
		E.where[0] = '\0';
		if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
			snprintf(E.where, sizeof(E.where),
				 "%s:%d: ", ar->source[0] == '@' ? ar->source + 1 : ar->short_src,
				 ar->currentline);
	}
	if (!E.escalated) {
		/* from now on every instruction raises, until the call has unwound */
		E.escalated = true;
		lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
	}
	lua_pushfstring(L, "%s: the call ran longer than policy_timeout", BUDGET_MARK);
	lua_error(L);
}

/*
 * Watchdog. A count hook slows every VM instruction (LuaJIT then dispatches
 * each one through C), so calls run without one: a one-shot CLOCK_MONOTONIC
 * timer delivers SIGALRM at the deadline of the call in progress, and the
 * handler sets the hook (lua_sethook is safe in a signal handler; luajit's own
 * SIGINT handling does the same). The timer is re-armed lazily: a call sets it
 * only when none is pending for an earlier time, so a busy proxy makes about
 * one timer_settime per policy_timeout and an idle one none. Where no timer
 * can be made, every call runs with the hook.
 */
static timer_t wd_timer;
static bool wd_created; /* in this process: timers do not survive fork() */
static bool wd_failed;
static bool wd_installed;
static volatile sig_atomic_t wd_in_call;
static volatile sig_atomic_t wd_pending;
static volatile sig_atomic_t wd_hooked;
static _Atomic long long wd_deadline; /* CLOCK_MONOTONIC nanoseconds */
static _Atomic long long wd_timer_at;
static _Atomic long long wd_period; /* policy_timeout of the call */

static long long to_ns(double t)
{
	return (long long)(t * 1e9);
}

static void wd_set(long long at)
{
	struct itimerspec its = { .it_value = { .tv_sec = at / 1000000000, .tv_nsec = at % 1000000000 } };

	atomic_store_explicit(&wd_timer_at, at, memory_order_relaxed);
	timer_settime(wd_timer, TIMER_ABSTIME, &its, NULL);
}

static void wd_signal(int sig)
{
	int saved = errno;
	long long now = clock_now_ns(), deadline = atomic_load_explicit(&wd_deadline, memory_order_relaxed);

	(void)sig;
	if (!wd_in_call) {
		wd_pending = 0;
	} else if (now < deadline) {
		wd_set(deadline); /* armed by an earlier call: wait for this one's deadline */
	} else {
		/* overdue: set the hook, and set it again a budget later should the call still run */
		wd_hooked = 1;
		lua_sethook(E.L, count_hook, LUA_MASKCOUNT, E.escalated ? 1 : HOOK_COUNT);
		wd_set(now + atomic_load_explicit(&wd_period, memory_order_relaxed));
	}
	errno = saved;
}

static void wd_after_fork(void)
{
	wd_created = false;
	wd_pending = 0;
}

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static bool wd_create(void)
{
	/* to this thread: the one that runs the calls, whatever other threads the process has */
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGALRM };

	if (!wd_installed) {
		struct sigaction sa = { .sa_handler = wd_signal, .sa_flags = SA_RESTART };

		sigemptyset(&sa.sa_mask);
		/* the handler stays for the life of the process: it ignores ticks outside a call */
		if (sigaction(SIGALRM, &sa, NULL) != 0 || pthread_atfork(NULL, NULL, wd_after_fork) != 0)
			return false;
		wd_installed = true;
	}
	sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &wd_timer) != 0)
		return false;
	wd_created = true;
	return true;
}

static void arm(double timeout)
{
	E.timed_out = false;
	E.what = NULL;
	E.mem_refused = false;
	E.timeout = timeout;
	E.armed = timeout > 0;
	E.started = clock_now();
	E.deadline = E.started + timeout;
	E.cpu_mark = -1;
	E.enforce = true;
	if (!E.armed)
		return;
	if (!wd_created && !wd_failed && !wd_create()) {
		wd_failed = true;
		log_warning("policy: no watchdog timer (%s): policy calls run with a count hook",
			    strerror(errno));
	}
	if (wd_failed) {
		wd_hooked = 1;
		lua_sethook(E.L, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
		return;
	}
	atomic_store_explicit(&wd_deadline, to_ns(E.deadline), memory_order_relaxed);
	atomic_store_explicit(&wd_period, to_ns(timeout > 0.001 ? timeout : 0.001), memory_order_relaxed);
	wd_in_call = 1;
	if (!wd_pending || atomic_load_explicit(&wd_timer_at, memory_order_relaxed) > to_ns(E.deadline)) {
		wd_pending = 1;
		wd_set(to_ns(E.deadline));
	}
}

static void disarm(void)
{
	wd_in_call = 0; /* first: a tick from now on leaves the hook alone */
	E.armed = false;
	E.enforce = false;
	if (wd_hooked) {
		wd_hooked = 0;
		E.escalated = false;
		lua_sethook(E.L, NULL, 0, 0);
	}
}

/*
 * The budget inside a pattern match (policy_pattern.c), where no count hook
 * runs: once the watchdog found the call overdue (or without a watchdog,
 * by the clock), stop it as the count hook would, at the caller's line.
 */
static void pattern_budget(lua_State *L, const char *fn)
{
	lua_Debug ar;
	double now;

	if (!E.armed)
		return;
	if (!E.timed_out) {
		if (!wd_hooked && !wd_failed)
			return;
		now = clock_now();
		if (now < E.deadline || !overrun(now))
			return;
		E.timed_out = true;
		E.what = fn;
		E.where[0] = '\0';
		/* the nearest Lua line: the caller, or the one that handed the function to pcall */
		for (int level = 1; level < 8 && lua_getstack(L, level, &ar); level++) {
			if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 &&
			    strstr(ar.source, "/moonbouncer/dispatcher.lua") == NULL) {
				snprintf(E.where, sizeof(E.where), "%s:%d: ",
					 ar.source[0] == '@' ? ar.source + 1 : ar.short_src, ar.currentline);
				break;
			}
		}
	}
	lua_pushfstring(L, "%s: %s ran longer than policy_timeout", BUDGET_MARK, fn);
	lua_error(L);
}

/* Collect garbage outside the budget after a refusal, or when the heap nears the limit. */
static void after_call_gc(void)
{
	if (E.heap_limit == 0)
		return;
	if (E.mem_refused || (E.heap > (size_t)((double)E.heap_limit * GC_TRIGGER) &&
			      E.heap > E.heap_after_gc + E.heap_limit / 8)) {
		lua_gc(E.L, LUA_GCCOLLECT, 0);
		E.heap_after_gc = E.heap;
	}
}

/*
 * Run fn(ud) protected, under the budgets. Returns POLICY_PASS when it ran
 * through (fn reports its own outcome through ud), else the failure with the
 * message in err.
 */
static enum policy_result run_protected(lua_CFunction fn, void *ud, double timeout, char *err, size_t errlen)
{
	enum policy_result res = POLICY_PASS;
	int status;

	arm(timeout);
	status = lua_cpcall(E.L, fn, ud);
	disarm();
	if (E.timed_out) {
		res = POLICY_TIMEOUT;
		errbuf_set(err, errlen, "%s%s: the call ran longer than policy_timeout (%g s)%s%s", E.where,
			BUDGET_MARK, E.timeout, E.what ? ", in " : "", E.what ? E.what : "");
	} else if (status == LUA_ERRMEM || (status != 0 && E.mem_refused)) {
		res = POLICY_MEMORY;
		errbuf_set(err, errlen, "%s: the Lua heap would grow past policy_max_memory, %zu bytes",
			BUDGET_MARK, E.heap_limit);
	} else if (status != 0) {
		const char *msg = lua_tostring(E.L, -1);

		res = POLICY_ERROR;
		errbuf_set(err, errlen, "%s", msg ? msg : "(error object is not a string)");
	}
	lua_settop(E.L, 0);
	after_call_gc();
	return res;
}

/* ---------------------------------------------------------------------------------------------- */
/* the host module: package.loaded.moonbouncer */

static int host_log(lua_State *L)
{
	const char *level = "info", *msg;
	enum log_level lv;

	if (lua_gettop(L) >= 2) {
		level = luaL_checkstring(L, 1);
		msg = lua_tostring(L, 2);
		if (lua_type(L, 2) != LUA_TSTRING)
			return luaL_error(L, "log: message must be a string, got %s", luaL_typename(L, 2));
	} else {
		if (lua_type(L, 1) != LUA_TSTRING)
			return luaL_error(L, "log: message must be a string, got %s", luaL_typename(L, 1));
		msg = lua_tostring(L, 1);
	}
	if (strcmp(level, "error") == 0)
		lv = LOG_LEVEL_ERROR;
	else if (strcmp(level, "warning") == 0)
		lv = LOG_LEVEL_WARNING;
	else if (strcmp(level, "info") == 0)
		lv = LOG_LEVEL_INFO;
	else if (strcmp(level, "debug") == 0)
		lv = LOG_LEVEL_DEBUG;
	else
		return luaL_error(L, "log: unknown level '%s' (debug, info, warning, error)", level);
	if (log_enabled(lv))
		log_msg(lv, "policy: %s", msg);
	return 0;
}

static int host_now(lua_State *L)
{
	lua_pushnumber(L, clock_now());
	return 1;
}

/* A copy of the [databases] map built at load time: policies may change theirs freely. */
static int host_databases(lua_State *L)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_dbs);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, -3) != 0) {
		lua_newtable(L);
		lua_pushnil(L);
		while (lua_next(L, -3) != 0) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -4);
		}
		lua_remove(L, -2);
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
	return 1;
}

/* Counter key: a string of 1 to COUNTER_MAX_KEY_LEN bytes. */
static const char *check_key(lua_State *L, size_t *len)
{
	const char *key = lua_tolstring(L, 1, len);

	if (lua_type(L, 1) != LUA_TSTRING || *len == 0 || *len > COUNTER_MAX_KEY_LEN)
		luaL_error(L, "counter key must be a string of 1 to %d bytes", COUNTER_MAX_KEY_LEN);
	return key;
}

/* TTL argument: nil or <= 0 = no expiry, else seconds from now. */
static double check_ttl(lua_State *L, int idx, double now)
{
	double ttl;

	if (lua_isnoneornil(L, idx))
		return 0;
	if (lua_type(L, idx) != LUA_TNUMBER)
		luaL_error(L, "counter ttl must be a number of seconds, got %s", luaL_typename(L, idx));
	ttl = lua_tonumber(L, idx);
	if (isnan(ttl))
		luaL_error(L, "counter ttl must be a number of seconds, got nan");
	return ttl > 0 ? now + ttl : 0;
}

static double check_number(lua_State *L, int idx, const char *fn, const char *what)
{
	if (lua_type(L, idx) != LUA_TNUMBER)
		luaL_error(L, "%s: %s must be a number, got %s", fn, what, luaL_typename(L, idx));
	return lua_tonumber(L, idx);
}

/* The live entry for key, dropping it if it has expired. */
static struct sentry *counter_live(const char *key, size_t len, double now)
{
	struct sentry *e = smap_get(&counters, key, len);

	if (e != NULL && e->expires != 0 && e->expires <= now) {
		smap_delete(&counters, key, len);
		e = NULL;
	}
	return e;
}

static struct sentry *counter_create(lua_State *L, const char *key, size_t len, double now)
{
	bool created;
	struct sentry *e = smap_put(&counters, key, len, now, &created);

	if (e == NULL)
		luaL_error(L, "cannot store counter '%s': the counter table is full (%d keys)", key,
			   COUNTER_MAX_KEYS);
	return e;
}

/* counter_get(key) -> value, 0 when absent or expired */
static int counter_get(lua_State *L)
{
	size_t len;
	const char *key = check_key(L, &len);
	struct sentry *e = counter_live(key, len, clock_now());

	lua_pushnumber(L, e ? e->value : 0);
	return 1;
}

/* counter_set(key, value, ttl) -> value */
static int counter_set(lua_State *L)
{
	size_t len;
	const char *key = check_key(L, &len);
	double value = check_number(L, 2, "counter_set", "value");
	double now = clock_now();
	double expires = check_ttl(L, 3, now);
	struct sentry *e = counter_create(L, key, len, now);

	e->value = value;
	e->expires = expires;
	lua_pushnumber(L, value);
	return 1;
}

/* counter_incr(key, delta = 1, ttl) -> new value; ttl counts from the key's creation */
static int counter_incr(lua_State *L)
{
	size_t len;
	const char *key = check_key(L, &len);
	double delta = lua_isnoneornil(L, 2) ? 1 : check_number(L, 2, "counter_incr", "delta");
	double now = clock_now();
	double expires = check_ttl(L, 3, now);
	struct sentry *e = counter_live(key, len, now);

	if (e == NULL) {
		e = counter_create(L, key, len, now);
		e->value = 0;
		e->expires = expires;
	}
	e->value += delta;
	lua_pushnumber(L, e->value);
	return 1;
}

static int counter_delete(lua_State *L)
{
	size_t len;
	const char *key = check_key(L, &len);

	smap_delete(&counters, key, len);
	return 0;
}

/* Push the host module table (the API testing.lua fakes). */
static void push_host(lua_State *L)
{
	static const luaL_Reg host_fns[] = {
		{ "log", host_log },
		{ "now", host_now },
		{ "databases", host_databases },
		{ "counter_get", counter_get },
		{ "counter_set", counter_set },
		{ "counter_incr", counter_incr },
		{ "counter_delete", counter_delete },
		{ NULL, NULL },
	};

	lua_createtable(L, 0, 8);
	for (const luaL_Reg *r = host_fns; r->name; r++) {
		lua_pushcfunction(L, r->func);
		lua_setfield(L, -2, r->name);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* client and q objects */

static void set_str_field(lua_State *L, int idx, const char *name, const char *value)
{
	if (value == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, value);
	lua_setfield(L, idx, name);
}

/*
 * Field names of client tables, interned once at start: lua_setfield would
 * hash each name again on every call.
 */
enum client_key {
	CK_ID = 1, CK_USER, CK_DATABASE, CK_APPLICATION_NAME, CK_ADDR, CK_PORT, CK_TLS, CK_IN_TRANSACTION,
	CK_TENANT, CK_POOL_MODE,
	QK_KIND, QK_PROTOCOL, QK_NAME, QK_TRUNCATED, QK_SQL, QK_KINDS, /* q tables */
	CK_COUNT
};
static const char *const client_keys[CK_COUNT] = {
	[CK_ID] = "id", [CK_USER] = "user", [CK_DATABASE] = "database",
	[CK_APPLICATION_NAME] = "application_name", [CK_ADDR] = "addr", [CK_PORT] = "port", [CK_TLS] = "tls",
	[CK_IN_TRANSACTION] = "in_transaction", [CK_TENANT] = "tenant", [CK_POOL_MODE] = "pool_mode",
	[QK_KIND] = "kind", [QK_PROTOCOL] = "protocol", [QK_NAME] = "name", [QK_TRUNCATED] = "truncated",
	[QK_SQL] = "sql", [QK_KINDS] = "kinds",
};

/*
 * __index of client tables: params, and addr when the core left it to
 * format_addr, are built from the current call's client on first access
 * (formatting an address costs more than a whole hook call).
 */
static int client_index(lua_State *L)
{
	const struct policy_client *c = E.cur_client;
	const char *key = lua_tostring(L, 2);
	bool params;

	if (c == NULL || key == NULL)
		return 0;
	params = strcmp(key, "params") == 0;
	if (!params && (strcmp(key, "addr") != 0 || c->addr != NULL || c->format_addr == NULL))
		return 0;
	lua_getfield(L, 1, "id");
	if (lua_tonumber(L, -1) != (lua_Number)c->id)
		return 0;	/* a table kept past its call */
	if (params) {
		lua_createtable(L, 0, c->params ? c->params->n : 0);
		for (int i = 0; c->params && i < c->params->n; i++) {
			lua_pushstring(L, c->params->items[i].value);
			lua_setfield(L, -2, c->params->items[i].name);
		}
	} else {
		char addr[64] = "";
		c->format_addr(c, addr, sizeof(addr));
		lua_pushstring(L, addr);
	}
	lua_pushvalue(L, 2);
	lua_pushvalue(L, -2);
	lua_rawset(L, 1);
	return 1;
}

/* t[key] = the value on top of the stack (popped); keys is the index of the interned names. */
static void set_key(lua_State *L, int t, int keys, enum client_key key)
{
	lua_rawgeti(L, keys, key);
	lua_insert(L, -2);
	lua_rawset(L, t);
}

/* t[key] = value, or nil for NULL (a reused table must lose the previous call's value). */
static void set_key_value(lua_State *L, int t, int keys, enum client_key key, const char *value)
{
	if (value == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, value);
	set_key(L, t, keys, key);
}

static void set_key_str(lua_State *L, int t, int keys, enum client_key key, const char *value)
{
	if (value == NULL)
		return;	/* a fresh table: absent is nil */
	lua_pushstring(L, value);
	set_key(L, t, keys, key);
}

/*
 * Push a new client table with this call's values. It is not kept: a client
 * has Lua objects only while a hook runs (its ctx tables live in the
 * dispatcher's store), so idle clients cost the engine nothing.
 */
static void push_client(lua_State *L, const struct policy_client *c)
{
	int t, keys;

	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_keys);
	keys = lua_gettop(L);
	lua_createtable(L, 0, 12);
	t = lua_gettop(L);
	lua_pushnumber(L, (lua_Number)c->id);
	set_key(L, t, keys, CK_ID);
	set_key_str(L, t, keys, CK_USER, c->user);
	set_key_str(L, t, keys, CK_DATABASE, c->database);
	set_key_str(L, t, keys, CK_APPLICATION_NAME, c->application_name);
	set_key_str(L, t, keys, CK_ADDR, c->addr);	/* NULL: made by client_index when read */
	lua_pushinteger(L, c->port);
	set_key(L, t, keys, CK_PORT);
	lua_pushboolean(L, c->tls);
	set_key(L, t, keys, CK_TLS);
	lua_pushboolean(L, c->in_transaction);
	set_key(L, t, keys, CK_IN_TRANSACTION);
	set_key_str(L, t, keys, CK_TENANT, c->tenant);
	set_key_str(L, t, keys, CK_POOL_MODE, c->pool_mode);
	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_client_mt);	/* params: built on first access */
	lua_setmetatable(L, t);
	lua_remove(L, keys);
}

/* __index of q tables: q.sql becomes a Lua string on first access, during the call only. */
static int q_index(lua_State *L)
{
	const char *key = lua_tostring(L, 2);

	if (E.cur_query == NULL || key == NULL || strcmp(key, "sql") != 0)
		return 0;
	lua_pushlstring(L, E.cur_query->sql ? E.cur_query->sql : "", E.cur_sql_len);
	lua_pushliteral(L, "sql");
	lua_pushvalue(L, -2);
	lua_rawset(L, 1);
	return 1;
}

static void push_q(lua_State *L, int which, const struct policy_query *q, bool truncated)
{
	int t, kt, old_n, new_n, keys;

	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_keys);
	keys = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_q[which]);
	t = lua_gettop(L);
	set_key_value(L, t, keys, QK_KIND, q->kind);
	set_key_value(L, t, keys, QK_PROTOCOL, q->protocol);
	set_key_value(L, t, keys, QK_NAME, q->name);
	lua_pushboolean(L, truncated);
	set_key(L, t, keys, QK_TRUNCATED);
	lua_pushnil(L);
	set_key(L, t, keys, QK_SQL);
	lua_rawgeti(L, keys, QK_KINDS);
	lua_rawget(L, t);
	kt = lua_gettop(L);
	old_n = (int)lua_objlen(L, kt);
	for (int i = 0; i < q->n_kinds; i++) {
		lua_pushstring(L, q->kinds[i]);
		lua_rawseti(L, kt, i + 1);
	}
	new_n = q->n_kinds;
	if (new_n == 0 && q->kind != NULL) {
		lua_pushstring(L, q->kind);
		lua_rawseti(L, kt, ++new_n);
	}
	for (int i = new_n + 1; i <= old_n; i++) {
		lua_pushnil(L);
		lua_rawseti(L, kt, i);
	}
	lua_pop(L, 1);
	lua_remove(L, keys);
}

/* ---------------------------------------------------------------------------------------------- */
/* decisions */

/* A Lua string field of the table at idx as a malloc'ed C string; false with a message on a bad value. */
static bool dup_field(lua_State *L, int idx, const char *field, char **dst, size_t *len_out, char *err,
		      size_t errlen)
{
	size_t len;
	const char *s;

	lua_getfield(L, idx, field);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return true;
	}
	if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
		errbuf_set(err, errlen, "malformed decision: %s must be a string", field);
		lua_pop(L, 1);
		return false;
	}
	s = lua_tolstring(L, -1, &len);
	if (memchr(s, '\0', len) != NULL) {
		errbuf_set(err, errlen, "malformed decision: %s contains a zero byte", field);
		lua_pop(L, 1);
		return false;
	}
	*dst = malloc(len + 1);
	if (*dst == NULL) {
		errbuf_set(err, errlen, "out of memory");
		lua_pop(L, 1);
		return false;
	}
	memcpy(*dst, s, len + 1);
	if (len_out)
		*len_out = len;
	lua_pop(L, 1);
	return true;
}

static bool take_track(lua_State *L, int idx, struct policy_decision *out, char *err, size_t errlen)
{
	int n;

	lua_getfield(L, idx, "track");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return true;
	}
	if (!lua_istable(L, -1)) {
		errbuf_set(err, errlen, "malformed decision: track must be an array");
		return false;
	}
	n = (int)lua_objlen(L, -1);
	if (n == 0) {
		lua_pop(L, 1);
		return true;
	}
	out->track = calloc((size_t)n, sizeof(*out->track));
	if (out->track == NULL) {
		errbuf_set(err, errlen, "out of memory");
		return false;
	}
	for (int i = 1; i <= n; i++) {
		struct policy_track *tr = &out->track[out->n_track];
		int e;

		lua_rawgeti(L, -1, i);
		e = lua_gettop(L);
		if (!lua_istable(L, e)) {
			errbuf_set(err, errlen, "malformed decision: track[%d] must be a table", i);
			return false;
		}
		out->n_track++;
		lua_getfield(L, e, "reset");
		if (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
			tr->reset_all = true;
		} else if (!lua_isnil(L, -1)) {
			tr->reset = true;
			if (!dup_field(L, e, "reset", &tr->name, NULL, err, errlen))
				return false;
		} else if (!dup_field(L, e, "name", &tr->name, NULL, err, errlen) ||
			   !dup_field(L, e, "value", &tr->value, NULL, err, errlen)) {
			return false;
		}
		lua_pop(L, 1);
		if (!tr->reset_all && (tr->name == NULL || !params_name_ok(tr->name))) {
			errbuf_set(err, errlen,
				"malformed decision: track[%d] needs a parameter name of letters, "
				"digits, '_' and '.'",
				i);
			return false;
		}
		if (!tr->reset && !tr->reset_all && tr->value == NULL) {
			errbuf_set(err, errlen, "malformed decision: track[%d] has no value", i);
			return false;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return true;
}

/* Copy the decision table at idx into out (the dispatcher checked it; C checks what C relies on). */
static bool take_decision(lua_State *L, int idx, enum hook hook, bool truncated, struct policy_decision *out,
			  char *err, size_t errlen)
{
	char *sqlstate = NULL, *pool_mode = NULL;
	bool ok;

	if (!lua_istable(L, idx)) {
		errbuf_set(err, errlen, "malformed decision: %s returned a %s", hook_names[hook],
			luaL_typename(L, idx));
		return false;
	}
	ok = dup_field(L, idx, "reject", &out->message, NULL, err, errlen) &&
	     dup_field(L, idx, "sqlstate", &sqlstate, NULL, err, errlen) &&
	     dup_field(L, idx, "rewrite", &out->rewrite, &out->rewrite_len, err, errlen) &&
	     dup_field(L, idx, "route", &out->route, NULL, err, errlen) &&
	     dup_field(L, idx, "user", &out->user, NULL, err, errlen) &&
	     dup_field(L, idx, "pool_mode", &pool_mode, NULL, err, errlen) &&
	     dup_field(L, idx, "tenant", &out->tenant, NULL, err, errlen) &&
	     take_track(L, idx, out, err, errlen);
	if (ok && out->message != NULL) {
		out->reject = true;
		if (sqlstate == NULL) {
			strcpy(out->sqlstate, hook == HOOK_CONNECT ? "42501" : "0A000");
		} else if (strlen(sqlstate) == 5 &&
			   strspn(sqlstate, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5) {
			strcpy(out->sqlstate, sqlstate);
		} else {
			errbuf_set(err, errlen, "malformed decision: sqlstate must be 5 characters of 0-9/A-Z");
			ok = false;
		}
	}
	if (ok && pool_mode != NULL && !config_pool_mode_parse(pool_mode, &out->pool_mode)) {
		errbuf_set(err, errlen, "malformed decision: pool_mode must be session, transaction or statement");
		ok = false;
	}
	if (ok && out->rewrite != NULL && truncated) {
		errbuf_set(err, errlen, "malformed decision: rewrite of a truncated statement (q.truncated)");
		ok = false;
	}
	free(sqlstate);
	free(pool_mode);
	return ok;
}

static bool is_empty(const struct policy_decision *d)
{
	return !d->reject && d->rewrite == NULL && d->route == NULL && d->user == NULL &&
	       d->pool_mode == POOL_MODE_UNSET && d->tenant == NULL && d->n_track == 0;
}

void policy_decision_clear(struct policy_decision *d)
{
	free(d->message);
	free(d->rewrite);
	free(d->route);
	free(d->user);
	free(d->tenant);
	for (int i = 0; i < d->n_track; i++) {
		free(d->track[i].name);
		free(d->track[i].value);
	}
	free(d->track);
	memset(d, 0, sizeof(*d));
	d->pool_mode = POOL_MODE_UNSET;
}

/* ---------------------------------------------------------------------------------------------- */
/* hook calls */

struct call {
	enum hook hook;
	const struct policy_client *c;
	const struct policy_query *q;
	bool truncated;
	const char *tenant;
	struct policy_decision *out;
	struct tenant_limits *limits;
	bool decided;
	bool failed; /* the dispatcher reported an error (err) */
	char err[256];
};

/* A non-nil result at idx is an error message: its text into err. */
static bool take_error(lua_State *L, int idx, char *err, size_t errlen)
{
	if (lua_isnil(L, idx))
		return false;
	if (lua_type(L, idx) == LUA_TSTRING)
		errbuf_set(err, errlen, "%s", lua_tostring(L, idx));
	else
		errbuf_set(err, errlen, "(error value is a %s)", luaL_typename(L, idx));
	return true;
}

static bool take_limit(lua_State *L, int idx, const char *field, double *v, char *err, size_t errlen)
{
	lua_getfield(L, idx, field);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return true;
	}
	if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0) || isinf(lua_tonumber(L, -1))) {
		errbuf_set(err, errlen, "malformed limits: %s must be a non-negative number", field);
		return false;
	}
	*v = lua_tonumber(L, -1);
	lua_pop(L, 1);
	return true;
}

/* Protected body of every hook call: ud is a struct call. */
static int call_body(lua_State *L)
{
	struct call *k = lua_touserdata(L, 1);
	int base, nargs = 2;

	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_gen);
	lua_getfield(L, -1, hook_names[k->hook]);
	lua_pushvalue(L, -2);
	if (k->hook == HOOK_LIMITS) {
		lua_pushstring(L, k->tenant);
	} else {
		push_client(L, k->c);
		if (k->hook == HOOK_QUERY || k->hook == HOOK_BEGIN) {
			push_q(L, k->hook == HOOK_QUERY ? 0 : 1, k->q, k->truncated);
			nargs = 3;
		}
	}
	base = lua_gettop(L) - nargs;
	lua_call(L, nargs, 2);
	if (nargs == 3) {
		/* do not keep a copy of the text past the call */
		lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_q[k->hook == HOOK_QUERY ? 0 : 1]);
		lua_pushnil(L);
		lua_setfield(L, -2, "sql");
		lua_pop(L, 1);
	}
	/* results at base, base + 1 */
	k->failed = take_error(L, base + 1, k->err, sizeof(k->err));
	if (k->hook == HOOK_DISCONNECT) {
		if (!k->failed)
			k->failed = take_error(L, base, k->err, sizeof(k->err));
		return 0;
	}
	if (lua_isnil(L, base) || (lua_type(L, base) == LUA_TBOOLEAN && !lua_toboolean(L, base)))
		return 0;
	if (k->hook == HOOK_LIMITS) {
		double mc = -1, ma = -1, rate = -1;

		if (!lua_istable(L, base)) {
			errbuf_set(k->err, sizeof(k->err), "malformed limits: limits returned a %s",
				luaL_typename(L, base));
			k->failed = true;
			return 0;
		}
		if (!take_limit(L, base, "max_clients", &mc, k->err, sizeof(k->err)) ||
		    !take_limit(L, base, "max_active", &ma, k->err, sizeof(k->err)) ||
		    !take_limit(L, base, "rate", &rate, k->err, sizeof(k->err))) {
			k->failed = true;
			return 0;
		}
		k->limits->max_clients = mc > INT_MAX ? INT_MAX : (int)mc;
		k->limits->max_active = ma > INT_MAX ? INT_MAX : (int)ma;
		k->limits->rate = rate;
		k->decided = true;
		return 0;
	}
	if (!take_decision(L, base, k->hook, k->truncated, k->out, k->err, sizeof(k->err))) {
		k->failed = true;
		policy_decision_clear(k->out);
		return 0;
	}
	k->decided = !is_empty(k->out);
	return 0;
}

/* Failures of on_connect/on_query/on_transaction_begin are logged by the core, which knows the client. */
static void count_failure(enum policy_result res, enum hook hook, const char *msg)
{
	stats.failures++;
	if (res == POLICY_TIMEOUT)
		stats.timeouts++;
	else if (res == POLICY_MEMORY)
		stats.memory_errors++;
	snprintf(stats.last_error, sizeof(stats.last_error), "%s", msg);
	if (hook == HOOK_DISCONNECT || hook == HOOK_LIMITS)
		log_warning("policy %s failed: %s", hook_names[hook], msg);
}

/* One hook call; the outcome as the public result, with out (or k->limits) filled. */
static enum policy_result call_hook(struct call *k)
{
	enum policy_result res;
	char err[256];

	stats.calls++;
	E.cur_client = k->c;
	E.cur_query = k->q;
	res = run_protected(call_body, k, budget.timeout, err, sizeof(err));
	E.cur_client = NULL;
	E.cur_query = NULL;
	if (res == POLICY_PASS && E.mem_refused) {
		/* the dispatcher caught the memory error; its message names the file */
		res = POLICY_MEMORY;
		if (k->failed)
			errbuf_set(err, sizeof(err), "%s (%s: policy_max_memory is %zu bytes)", k->err,
				BUDGET_MARK, E.heap_limit);
		else
			errbuf_set(err, sizeof(err),
				"%s: the Lua heap would grow past policy_max_memory, %zu bytes", BUDGET_MARK,
				E.heap_limit);
	}
	if (res != POLICY_PASS) {
		if (k->out) {
			policy_decision_clear(k->out);
			snprintf(k->out->error, sizeof(k->out->error), "%s", err);
		}
		count_failure(res, k->hook, err);
		return res;
	}
	if (k->failed) {
		/* what the policies that did not fail decided stays in out, for policy_failure=open */
		if (k->out)
			snprintf(k->out->error, sizeof(k->out->error), "%s", k->err);
		count_failure(POLICY_ERROR, k->hook, k->err);
		return POLICY_ERROR;
	}
	return k->decided ? POLICY_DECIDED : POLICY_PASS;
}

static void init_out(struct policy_decision *out)
{
	memset(out, 0, sizeof(*out));
	out->pool_mode = POOL_MODE_UNSET;
}

enum policy_result policy_on_connect(const struct policy_client *c, struct policy_decision *out)
{
	struct call k = { .hook = HOOK_CONNECT, .c = c, .out = out };

	init_out(out);
	if (E.L == NULL || !E.has[HOOK_CONNECT])
		return POLICY_PASS;
	return call_hook(&k);
}

static enum policy_result query_hook(enum hook hook, const struct policy_client *c,
				     const struct policy_query *q, struct policy_decision *out)
{
	struct call k = { .hook = hook, .c = c, .q = q, .out = out, .truncated = q->truncated };

	init_out(out);
	if (E.L == NULL || !E.has[hook])
		return POLICY_PASS;
	if (hook == HOOK_QUERY &&
	    !policy_wants_query(q->n_kinds > 0 ? q->kinds : &q->kind, q->n_kinds > 0 ? q->n_kinds : 1))
		return POLICY_PASS;
	E.cur_sql_len = q->sql_len;
	if (budget.max_query_length != 0 && q->sql_len > budget.max_query_length) {
		E.cur_sql_len = budget.max_query_length;
		k.truncated = true;
	}
	return call_hook(&k);
}

enum policy_result policy_on_query(const struct policy_client *c, const struct policy_query *q,
				   struct policy_decision *out)
{
	return query_hook(HOOK_QUERY, c, q, out);
}

enum policy_result policy_on_transaction_begin(const struct policy_client *c, const struct policy_query *q,
					       struct policy_decision *out)
{
	return query_hook(HOOK_BEGIN, c, q, out);
}

/* Protected: drop a client's table and its ctx. */
static int forget_body(lua_State *L)
{
	const struct policy_client *c = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_dispatcher);
	lua_getfield(L, -1, "forget");
	lua_pushnumber(L, (lua_Number)c->id);
	lua_call(L, 1, 0);
	return 0;
}

void policy_on_disconnect(const struct policy_client *c)
{
	char err[256];
	bool known;

	if (E.L == NULL)
		return;
	/* only a client some policy kept a ctx for has anything to forget */
	lua_rawgeti(E.L, LUA_REGISTRYINDEX, E.ref_ctx_store);
	lua_pushnumber(E.L, (lua_Number)c->id);
	lua_rawget(E.L, -2);
	known = !lua_isnil(E.L, -1);
	lua_settop(E.L, 0);
	if (E.has[HOOK_DISCONNECT]) {
		struct call k = { .hook = HOOK_DISCONNECT, .c = c };

		(void)call_hook(&k);
		known = true;
	}
	if (!known)
		return;
	if (run_protected(forget_body, (void *)c, LOAD_TIMEOUT, err, sizeof(err)) != POLICY_PASS)
		log_warning("policy: could not forget client %llu: %s", c->id, err);
}

enum policy_result policy_limits(const char *tenant, struct tenant_limits *out)
{
	struct call k = { .hook = HOOK_LIMITS, .tenant = tenant, .limits = out };
	enum policy_result res;
	struct sentry *e;
	bool created;
	size_t len;

	out->max_clients = -1;
	out->max_active = -1;
	out->rate = -1;
	if (E.L == NULL || !E.has[HOOK_LIMITS] || tenant == NULL)
		return POLICY_PASS;
	len = strlen(tenant);
	e = smap_get(&limits_cache, tenant, len);
	if (e != NULL) {
		*out = e->lim;
		return e->res;
	}
	res = call_hook(&k);
	if (res != POLICY_DECIDED) {
		out->max_clients = -1;
		out->max_active = -1;
		out->rate = -1;
	}
	if (limits_cache.n >= limits_cache.max)
		smap_clear(&limits_cache);
	e = smap_put(&limits_cache, tenant, len, 0, &created);
	if (e != NULL) {
		e->res = res;
		e->lim = *out;
	}
	return res;
}

/* ---------------------------------------------------------------------------------------------- */
/* cheap checks */

bool policy_active(void)
{
	return E.L != NULL;
}

bool policy_wants_connect(void)
{
	return E.L != NULL && E.has[HOOK_CONNECT];
}

bool policy_wants_begin(void)
{
	return E.L != NULL && E.has[HOOK_BEGIN];
}

bool policy_wants_disconnect(void)
{
	return E.L != NULL; /* with or without the hook: the client's Lua objects must go */
}

bool policy_wants_limits(void)
{
	return E.L != NULL && E.has[HOOK_LIMITS];
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool policy_wants_query(const char *const *kinds, int n_kinds)
{
	if (E.L == NULL || !E.has[HOOK_QUERY])
		return false;
	if (E.all_kinds)
		return true;
	for (int i = 0; i < n_kinds; i++) {
		if (kinds[i] != NULL &&
		    bsearch(&kinds[i], E.kinds, (size_t)E.n_kinds, sizeof(*E.kinds), cmp_str))
			return true;
	}
	return false;
}

unsigned policy_generation(void)
{
	return generation;
}

/* ---------------------------------------------------------------------------------------------- */
/* runtime location and policy files */

static bool runtime_at(const char *dir)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/lua/moonbouncer/dispatcher.lua", dir);

	return n > 0 && (size_t)n < sizeof(path) && access(path, R_OK) == 0;
}

/* The directory holding lua/ and policies/: beside the executable, else MB_DATADIR. */
static bool find_runtime(char *out, size_t outlen, char *err, size_t errlen)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (runtime_override != NULL) {
		snprintf(out, outlen, "%s", runtime_override);
		if (runtime_at(out))
			return true;
		errbuf_set(err, errlen, "no Lua runtime in %s/lua", out);
		return false;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (runtime_at(exe)) {
				snprintf(out, outlen, "%s", exe);
				return true;
			}
		}
	} else {
		snprintf(exe, sizeof(exe), "(unknown: %s)", strerror(errno));
	}
	if (runtime_at(MB_DATADIR)) {
		snprintf(out, outlen, "%s", MB_DATADIR);
		return true;
	}
	errbuf_set(err, errlen, "cannot find the Lua runtime: no lua/moonbouncer/dispatcher.lua in %s or %s",
		exe, MB_DATADIR);
	return false;
}

struct file_list {
	char **paths;
	int n;
	int cap;
};

static void files_free(struct file_list *fl)
{
	for (int i = 0; i < fl->n; i++)
		free(fl->paths[i]);
	free(fl->paths);
	memset(fl, 0, sizeof(*fl));
}

static bool files_add(struct file_list *fl, const char *dir, const char *name)
{
	char *p;

	if (fl->n == fl->cap) {
		int cap = fl->cap ? fl->cap * 2 : 8;
		char **np = realloc(fl->paths, (size_t)cap * sizeof(*np));

		if (np == NULL)
			return false;
		fl->paths = np;
		fl->cap = cap;
	}
	if (dir != NULL) {
		size_t len = strlen(dir) + strlen(name) + 2;

		p = malloc(len);
		if (p != NULL)
			snprintf(p, len, "%s/%s", dir, name);
	} else {
		p = strdup(name);
	}
	if (p == NULL)
		return false;
	fl->paths[fl->n++] = p;
	return true;
}

/* policy_file, then policy_dir's *.lua (not hidden, regular files) in name order. */
static bool list_policy_files(const struct config *cfg, struct file_list *fl, char *err, size_t errlen)
{
	DIR *d;
	struct dirent *de;
	int first;

	if (cfg->policy_file != NULL && cfg->policy_file[0] != '\0' && !files_add(fl, NULL, cfg->policy_file))
		goto oom;
	if (cfg->policy_dir == NULL || cfg->policy_dir[0] == '\0')
		return true;
	d = opendir(cfg->policy_dir);
	if (d == NULL) {
		errbuf_set(err, errlen, "policy_dir %s: %s", cfg->policy_dir, strerror(errno));
		return false;
	}
	first = fl->n;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char path[PATH_MAX];
		struct stat st;

		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".lua") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cfg->policy_dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (!files_add(fl, cfg->policy_dir, de->d_name)) {
			closedir(d);
			goto oom;
		}
	}
	closedir(d);
	qsort(fl->paths + first, (size_t)(fl->n - first), sizeof(*fl->paths), cmp_str);
	return true;
oom:
	errbuf_set(err, errlen, "out of memory");
	return false;
}

/* ---------------------------------------------------------------------------------------------- */
/* state and generations */

struct setup_args {
	const char *root;
};

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
	lua_pushcfunction(L, fn);
	lua_pushstring(L, name);
	lua_call(L, 1, 0);
}

static int new_ref(lua_State *L)
{
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Protected: libraries (no jit, no ffi), the host module, the dispatcher, object tables. */
static int setup_body(lua_State *L)
{
	struct setup_args *a = lua_touserdata(L, 1);

	open_lib(L, "", luaopen_base);
	open_lib(L, LUA_LOADLIBNAME, luaopen_package);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_IOLIBNAME, luaopen_io);
	open_lib(L, LUA_OSLIBNAME, luaopen_os);
	open_lib(L, LUA_DBLIBNAME, luaopen_debug);
	open_lib(L, LUA_BITLIBNAME, luaopen_bit);

	/* the runtime comes from <root>/lua only; no C modules */
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", a->root, a->root);
	lua_setfield(L, -2, "path");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "cpath");
	lua_pushnil(L);
	lua_setfield(L, -2, "loadlib");
	lua_getfield(L, -1, "loaders");
	for (int i = (int)lua_objlen(L, -1); i > 2; i--) {
		lua_pushnil(L);
		lua_rawseti(L, -2, i);
	}
	lua_pop(L, 1);

	lua_getfield(L, -1, "loaded");
	push_host(L);
	lua_pushvalue(L, -1);
	E.ref_host = new_ref(L);
	lua_setfield(L, -2, "moonbouncer");
	lua_pop(L, 2);

	lua_getglobal(L, "require");
	lua_pushliteral(L, "moonbouncer.dispatcher");
	lua_call(L, 1, 1);
	if (!lua_istable(L, -1))
		return luaL_error(L, "moonbouncer.dispatcher did not return a table");
	E.ref_dispatcher = new_ref(L);

	/* after the runtime took its own locals: policies get pattern functions under the budget, also
	 * through the string metatable (q.sql:find) */
	lua_getglobal(L, LUA_STRLIBNAME);
	policy_pattern_install(L, pattern_budget);
	lua_pop(L, 1);

	lua_pushboolean(L, 0);
	E.ref_gen = new_ref(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_dispatcher);
	lua_getfield(L, -1, "ctx_store");
	lua_remove(L, -2);
	lua_call(L, 0, 1);
	if (!lua_istable(L, -1))
		return luaL_error(L, "moonbouncer.dispatcher.ctx_store() did not return a table");
	E.ref_ctx_store = new_ref(L);
	lua_createtable(L, CK_COUNT - 1, 0);
	for (int i = 1; i < CK_COUNT; i++) {
		lua_pushstring(L, client_keys[i]);
		lua_rawseti(L, -2, i);
	}
	E.ref_keys = new_ref(L);
	lua_newtable(L);
	E.ref_dbs = new_ref(L);
	lua_newtable(L);
	E.ref_dbs_prev = new_ref(L);

	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, client_index);
	lua_setfield(L, -2, "__index");
	E.ref_client_mt = new_ref(L);

	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, q_index);
	lua_setfield(L, -2, "__index");
	for (int i = 0; i < 2; i++) {
		lua_createtable(L, 0, 8);
		lua_newtable(L);
		lua_setfield(L, -2, "kinds");
		lua_pushvalue(L, -2);
		lua_setmetatable(L, -2);
		E.ref_q[i] = new_ref(L);
	}
	return 0;
}

struct load_args {
	const struct config *cfg;
	const char *root;
	struct file_list *files;
	/* the new mirror, handed over on success */
	bool has[HOOK_LIMITS + 1];
	bool all_kinds;
	char **kinds;
	int n_kinds;
	char err[512];
	bool failed;
};

static void free_kinds(char **kinds, int n)
{
	for (int i = 0; i < n; i++)
		free(kinds[i]);
	free(kinds);
}

/* name -> { name, host, port, dbname, user, pool_mode, pool_size } of every [databases] entry ("*" too). */
static void push_databases(lua_State *L, const struct config *cfg)
{
	lua_createtable(L, 0, (int)cfg->n_dbs);
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		const struct db_entry *db = &cfg->dbs[i];
		int t;

		lua_createtable(L, 0, 7);
		t = lua_gettop(L);
		set_str_field(L, t, "name", db->name);
		set_str_field(L, t, "host", db->host);
		lua_pushinteger(L, db->port);
		lua_setfield(L, t, "port");
		set_str_field(L, t, "dbname", db->dbname ? db->dbname : db->name);
		set_str_field(L, t, "user", db->user);
		set_str_field(L, t, "pool_mode", config_pool_mode_name(db->pool_mode));
		if (db->pool_size >= 0) {
			lua_pushinteger(L, db->pool_size);
			lua_setfield(L, t, "pool_size");
		}
		lua_setfield(L, -2, db->name);
	}
}

/* Protected: set databases(), call D.load(paths, opts) and, if it worked, make the result current. */
static int load_body(lua_State *L)
{
	struct load_args *a = lua_touserdata(L, 1);
	const struct config *cfg = a->cfg;
	int d, gen, np = 1;

	push_databases(L, cfg);
	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_dbs);
	lua_rawseti(L, LUA_REGISTRYINDEX, E.ref_dbs_prev);
	lua_rawseti(L, LUA_REGISTRYINDEX, E.ref_dbs); /* policies may call databases() while loading */

	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_dispatcher);
	d = lua_gettop(L);
	lua_getfield(L, d, "load");
	lua_createtable(L, a->files->n, 0);
	for (int i = 0; i < a->files->n; i++) {
		lua_pushstring(L, a->files->paths[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_createtable(L, 0, 3);
	lua_rawgeti(L, LUA_REGISTRYINDEX, E.ref_host);
	lua_setfield(L, -2, "host");
	/* require "policies.x": the runtime's policies/x.lua, then <policy_dir>/policies/x.lua, then beside
	 * policy_file */
	lua_createtable(L, 3, 0);
	lua_pushfstring(L, "%s/?.lua", a->root);
	lua_rawseti(L, -2, np++);
	if (cfg->policy_dir != NULL && cfg->policy_dir[0] != '\0') {
		lua_pushfstring(L, "%s/?.lua", cfg->policy_dir);
		lua_rawseti(L, -2, np++);
	}
	if (cfg->policy_file != NULL && cfg->policy_file[0] != '\0') {
		const char *slash = strrchr(cfg->policy_file, '/');

		if (slash == NULL) {
			lua_pushliteral(L, "./?.lua");
		} else {
			lua_pushlstring(L, cfg->policy_file, (size_t)(slash - cfg->policy_file));
			lua_pushfstring(L, "%s/?.lua", lua_tostring(L, -1));
			lua_remove(L, -2);
		}
		lua_rawseti(L, -2, np++);
	}
	lua_setfield(L, -2, "searcher_paths");
	lua_getfield(L, d, "ctx_store");
	lua_call(L, 0, 1);
	lua_setfield(L, -2, "ctx_store");
	lua_call(L, 2, 2);
	if (!lua_istable(L, -2)) {
		snprintf(a->err, sizeof(a->err), "%s",
			 lua_isstring(L, -1) ? lua_tostring(L, -1) : "moonbouncer.dispatcher: load failed");
		a->failed = true;
		return 0;
	}
	lua_pop(L, 1);
	gen = lua_gettop(L);

	/* the mirror for the cheap checks */
	lua_getfield(L, gen, "has");
	for (int h = 0; h <= HOOK_LIMITS; h++) {
		lua_getfield(L, -1, hook_names[h]);
		a->has[h] = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	lua_getfield(L, gen, "all_kinds");
	a->all_kinds = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, gen, "kinds");
	if (lua_istable(L, -1)) {
		int cap = 0;

		lua_pushnil(L);
		while (lua_next(L, -2) != 0) {
			lua_pop(L, 1);
			if (lua_type(L, -1) != LUA_TSTRING)
				continue;
			if (a->n_kinds == cap) {
				char **nk;

				cap = cap ? cap * 2 : 16;
				nk = realloc(a->kinds, (size_t)cap * sizeof(*nk));
				if (nk == NULL)
					return luaL_error(L, "out of memory");
				a->kinds = nk;
			}
			a->kinds[a->n_kinds] = strdup(lua_tostring(L, -1));
			if (a->kinds[a->n_kinds] == NULL)
				return luaL_error(L, "out of memory");
			a->n_kinds++;
		}
	}
	lua_pop(L, 1);
	if (a->n_kinds > 1)
		qsort(a->kinds, (size_t)a->n_kinds, sizeof(*a->kinds), cmp_str);

	/* nothing can fail past this point */
	lua_pushvalue(L, gen);
	lua_rawseti(L, LUA_REGISTRYINDEX, E.ref_gen);
	return 0;
}

/* Load the files into the running state; on success the new generation and its mirror are in force. */
static bool load_generation(const struct config *cfg, const char *root, struct file_list *files, char *err,
			    size_t errlen)
{
	struct load_args a = { .cfg = cfg, .root = root, .files = files };
	char perr[256];
	enum policy_result res;

	res = run_protected(load_body, &a, budget.timeout > 0 ? LOAD_TIMEOUT : 0, perr, sizeof(perr));
	if (res != POLICY_PASS || a.failed) {
		if (res == POLICY_TIMEOUT)
			errbuf_set(err, errlen, "loading the policies took longer than %g s: %s", LOAD_TIMEOUT,
				perr);
		else
			errbuf_set(err, errlen, "%s", res != POLICY_PASS ? perr : a.err);
		free_kinds(a.kinds, a.n_kinds);
		/* the config in force is still the old one (no allocation: both keys exist) */
		lua_rawgeti(E.L, LUA_REGISTRYINDEX, E.ref_dbs_prev);
		lua_rawseti(E.L, LUA_REGISTRYINDEX, E.ref_dbs);
		lua_gc(E.L, LUA_GCCOLLECT, 0); /* the half-loaded generation */
		return false;
	}
	memcpy(E.has, a.has, sizeof(E.has));
	E.all_kinds = a.all_kinds;
	free_kinds(E.kinds, E.n_kinds);
	E.kinds = a.kinds;
	E.n_kinds = a.n_kinds;
	E.n_files = files->n;
	smap_clear(&limits_cache);
	generation++;
	lua_gc(E.L, LUA_GCCOLLECT, 0); /* the old generation */
	E.heap_after_gc = E.heap;
	return true;
}

static void close_state(void)
{
	if (E.L != NULL) {
		E.armed = false;
		E.enforce = false;
		lua_close(E.L);
	}
	free_kinds(E.kinds, E.n_kinds);
	memset(&E, 0, sizeof(E));
	E.ref_dispatcher = LUA_NOREF;
	smap_clear(&limits_cache);
}

static bool open_state(const char *root, char *err, size_t errlen)
{
	struct setup_args a = { .root = root };
	char perr[256];

	E.heap_limit = budget.max_memory;
	E.L = lua_newstate(engine_alloc, NULL);
	if (E.L == NULL) {
		errbuf_set(err, errlen, "cannot create a Lua state");
		return false;
	}
	/* count hooks do not run inside compiled traces: interpret only */
	luaJIT_setmode(E.L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
	if (run_protected(setup_body, &a, budget.timeout > 0 ? LOAD_TIMEOUT : 0, perr, sizeof(perr)) !=
	    POLICY_PASS) {
		errbuf_set(err, errlen, "loading the Lua runtime from %s/lua: %s", root, perr);
		close_state();
		return false;
	}
	return true;
}

/* Shared by load and reload: fresh state when asked (or none yet), else a new generation in place. */
static bool load_policies(const struct config *cfg, bool fresh, char *err, size_t errlen)
{
	struct file_list files = { 0 };
	char root[PATH_MAX];
	bool ok = false;

	budget = budget_from_config(cfg);
	if (!list_policy_files(cfg, &files, err, errlen))
		goto out;
	if (files.n == 0) {
		if (E.L != NULL)
			log_info("policy: no policy files configured, policies off");
		close_state();
		ok = true;
		goto out;
	}
	if (!find_runtime(root, sizeof(root), err, errlen))
		goto out;
	if (fresh)
		close_state();
	if (E.L == NULL && !open_state(root, err, errlen))
		goto out;
	E.heap_limit = budget.max_memory;
	if (!load_generation(cfg, root, &files, err, errlen)) {
		if (fresh)
			close_state();
		goto out;
	}
	log_info("policy: loaded %d file%s (generation %u)", files.n, files.n == 1 ? "" : "s", generation);
	ok = true;
out:
	files_free(&files);
	if (ok) {
		stats.reloads++;
	} else {
		stats.reload_failures++;
		if (err != NULL && errlen > 0)
			snprintf(stats.last_error, sizeof(stats.last_error), "%s", err);
	}
	return ok;
}

bool policy_load(const struct config *cfg, char *err, size_t errlen)
{
	return load_policies(cfg, true, err, errlen);
}

bool policy_reload(const struct config *cfg, char *err, size_t errlen)
{
	return load_policies(cfg, false, err, errlen);
}

void policy_shutdown(void)
{
	close_state();
	smap_clear(&counters);
	if (wd_created) {
		timer_delete(wd_timer);
		wd_created = false;
		wd_pending = 0;
	}
}

void policy_set_runtime_dir(const char *dir)
{
	free(runtime_override);
	runtime_override = dir ? strdup(dir) : NULL;
}

void policy_get_stats(struct policy_stats *st)
{
	*st = stats;
	st->heap_bytes = E.L ? E.heap : 0;
	st->n_files = E.L ? E.n_files : 0;
	st->generation = generation;
}
