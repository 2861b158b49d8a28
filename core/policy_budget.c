/* Budgets of policy calls: the heap-counting allocator, the watchdog and count hook that stop long calls. */
#include "policy_budget.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "clock.h"
#include "errbuf.h"
#include "log.h"

/* VM instructions between two clock checks once a call is overdue */
#define HOOK_COUNT 1000
/* full collection after a call once the heap passes this share of the limit */
#define GC_TRIGGER 0.75
/* after a refusal: room for the error handlers */
#define MEM_GRACE (256u * 1024)
/* a call the OS keeps descheduled still ends at this many times policy_timeout */
#define DESCHEDULED_CAP 20

/* The budget state of the engine's Lua state (one at a time). */
static struct {
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
	char where[200];  /* the position the timeout interrupted */
	const char *what; /* the library function it interrupted ("string.find"), or NULL */
} B;

struct policy_budget policy_budget_from_config(const struct config *cfg)
{
	struct policy_budget b = {
		.timeout = cfg->policy_timeout > 0 ? cfg->policy_timeout : 0,
		.max_memory = cfg->policy_max_memory > 0 ? (size_t)cfg->policy_max_memory : 0,
		.max_query_length =
			cfg->policy_max_query_length > 0 ? (size_t)cfg->policy_max_query_length : 0,
	};

	return b;
}

/* Lua raises when it is refused. */
void *policy_budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	void *p;

	(void)ud;
	if (ptr == NULL)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		B.heap -= osize;
		return NULL;
	}
	if (nsize > osize && B.enforce && B.heap_limit != 0 &&
	    B.heap - osize + nsize > B.heap_limit + (B.mem_refused ? MEM_GRACE : 0)) {
		B.mem_refused = true;
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (p == NULL) {
		if (nsize <= osize)
			return ptr; /* a shrink must not fail: keep the larger block */
		return NULL;
	}
	B.heap = B.heap - osize + nsize;
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

	if (now - B.started >= B.timeout * DESCHEDULED_CAP)
		return true;
	if (B.cpu_mark < 0) {
		B.cpu_mark = cpu;
		B.wall_mark = now;
	} else {
		double share = (cpu - B.cpu_mark) / (now - B.wall_mark);

		if (share * (B.wall_mark - B.started) + (cpu - B.cpu_mark) >= B.timeout)
			return true;
	}
	B.deadline = now + B.timeout / 4;
	return false;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	double now;

	if (!B.armed)
		return;
	if (!B.timed_out) {
		now = clock_now();
		if (now < B.deadline || !overrun(now))
			return;
		B.timed_out = true;
		B.where[0] = '\0';
		if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
			snprintf(B.where, sizeof(B.where),
				 "%s:%d: ", ar->source[0] == '@' ? ar->source + 1 : ar->short_src,
				 ar->currentline);
	}
	if (!B.escalated) {
		/* from now on every instruction raises, until the call has unwound */
		B.escalated = true;
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
		lua_sethook(eng.L, count_hook, LUA_MASKCOUNT, B.escalated ? 1 : HOOK_COUNT);
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
	B.timed_out = false;
	B.what = NULL;
	B.mem_refused = false;
	B.timeout = timeout;
	B.armed = timeout > 0;
	B.started = clock_now();
	B.deadline = B.started + timeout;
	B.cpu_mark = -1;
	B.enforce = true;
	if (!B.armed)
		return;
	if (!wd_created && !wd_failed && !wd_create()) {
		wd_failed = true;
		log_warning("policy: no watchdog timer (%s): policy calls run with a count hook",
			    strerror(errno));
	}
	if (wd_failed) {
		wd_hooked = 1;
		lua_sethook(eng.L, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
		return;
	}
	atomic_store_explicit(&wd_deadline, to_ns(B.deadline), memory_order_relaxed);
	atomic_store_explicit(&wd_period, to_ns(timeout > 0.001 ? timeout : 0.001), memory_order_relaxed);
	wd_in_call = 1;
	if (!wd_pending || atomic_load_explicit(&wd_timer_at, memory_order_relaxed) > to_ns(B.deadline)) {
		wd_pending = 1;
		wd_set(to_ns(B.deadline));
	}
}

static void disarm(void)
{
	wd_in_call = 0; /* first: a tick from now on leaves the hook alone */
	B.armed = false;
	B.enforce = false;
	if (wd_hooked) {
		wd_hooked = 0;
		B.escalated = false;
		lua_sethook(eng.L, NULL, 0, 0);
	}
}

/*
 * The budget inside a pattern match (policy_pattern.c), where no count hook
 * runs: once the watchdog found the call overdue (or without a watchdog,
 * by the clock), stop it as the count hook would, at the caller's line.
 */
void policy_budget_pattern(lua_State *L, const char *fn)
{
	lua_Debug ar;
	double now;

	if (!B.armed)
		return;
	if (!B.timed_out) {
		if (!wd_hooked && !wd_failed)
			return;
		now = clock_now();
		if (now < B.deadline || !overrun(now))
			return;
		B.timed_out = true;
		B.what = fn;
		B.where[0] = '\0';
		/* the nearest Lua line: the caller, or the one that handed the function to pcall */
		for (int level = 1; level < 8 && lua_getstack(L, level, &ar); level++) {
			if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 &&
			    strstr(ar.source, "/moonbouncer/dispatcher.lua") == NULL) {
				snprintf(B.where, sizeof(B.where),
					 "%s:%d: ", ar.source[0] == '@' ? ar.source + 1 : ar.short_src,
					 ar.currentline);
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
	if (B.heap_limit == 0)
		return;
	if (B.mem_refused || (B.heap > (size_t)((double)B.heap_limit * GC_TRIGGER) &&
			      B.heap > B.heap_after_gc + B.heap_limit / 8)) {
		lua_gc(eng.L, LUA_GCCOLLECT, 0);
		B.heap_after_gc = B.heap;
	}
}

enum policy_result policy_budget_run(lua_CFunction fn, void *ud, double timeout, char *err, size_t errlen)
{
	enum policy_result res = POLICY_PASS;
	int status;

	arm(timeout);
	status = lua_cpcall(eng.L, fn, ud);
	disarm();
	if (B.timed_out) {
		res = POLICY_TIMEOUT;
		errbuf_set(err, errlen, "%s%s: the call ran longer than policy_timeout (%g s)%s%s", B.where,
			   BUDGET_MARK, B.timeout, B.what ? ", in " : "", B.what ? B.what : "");
	} else if (status == LUA_ERRMEM || (status != 0 && B.mem_refused)) {
		res = POLICY_MEMORY;
		errbuf_set(err, errlen, "%s: the Lua heap would grow past policy_max_memory, %zu bytes",
			   BUDGET_MARK, B.heap_limit);
	} else if (status != 0) {
		const char *msg = lua_tostring(eng.L, -1);

		res = POLICY_ERROR;
		errbuf_set(err, errlen, "%s", msg ? msg : "(error object is not a string)");
	}
	lua_settop(eng.L, 0);
	after_call_gc();
	return res;
}

void policy_budget_shutdown(void)
{
	if (wd_created) {
		timer_delete(wd_timer);
		wd_created = false;
		wd_pending = 0;
	}
}

void policy_budget_set_heap_limit(size_t bytes)
{
	B.heap_limit = bytes;
}

size_t policy_budget_heap_limit(void)
{
	return B.heap_limit;
}

size_t policy_budget_heap(void)
{
	return B.heap;
}

bool policy_budget_memory_refused(void)
{
	return B.mem_refused;
}

void policy_budget_collected(void)
{
	B.heap_after_gc = B.heap;
}

void policy_budget_close(lua_State *L)
{
	B.armed = false;
	B.enforce = false;
	lua_close(L);
	B.heap = 0;
	B.heap_after_gc = 0;
	B.escalated = false;
}
