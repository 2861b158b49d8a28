/* Process-wide state and the loop's services: the clock, the deferred reap, the shutdown check. */
#include "runtime.h"

#include "clock.h"
#include "log.h"

struct runtime rt;

static struct rt_hooks hooks;
static struct event *reap_ev;

/*
 * A fresh read, not a time cached per loop iteration: hooks run Lua inside
 * the loop's callbacks, so one iteration can last up to policy_timeout for
 * every hook it runs. A cached time would count that against query_timeout,
 * the idle timeouts and server_lifetime of whatever the iteration handles
 * later, and a server released and taken again in one iteration would look
 * idle for 0 s and skip the check server_check_delay = 0 asks for. The read
 * costs about 50 ns (vDSO).
 */
double rt_now(void)
{
	return clock_now();
}

void rt_check_shutdown(void)
{
	static bool said;

	if (said)
		return;
	if (rt.shutdown == SHUTDOWN_WAIT_SERVERS && hooks.servers_in_use && hooks.servers_in_use() == 0) {
		log_info("server connections dropped, exiting");
		said = true;
		event_base_loopbreak(rt.base);
	} else if (rt.shutdown == SHUTDOWN_WAIT_CLIENTS && rt.n_clients == 0) {
		log_info("client connections dropped, exiting");
		said = true;
		event_base_loopbreak(rt.base);
	}
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	rt_reap_now();
}

void rt_reap_now(void)
{
	if (hooks.reap)
		hooks.reap();
}

void rt_schedule_reap(void)
{
	if (reap_ev)
		event_active(reap_ev, 0, 0);
}

bool rt_start(struct event_base *base, const struct rt_hooks *h)
{
	rt.base = base;
	hooks = *h;
	reap_ev = event_new(base, -1, 0, on_reap, NULL);
	return reap_ev != NULL;
}

void rt_stop(void)
{
	if (reap_ev)
		event_free(reap_ev);
	reap_ev = NULL;
}
