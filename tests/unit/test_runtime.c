/* Unit tests of runtime.c: the deferred reap, the shutdown check, the clock. */
#include <event2/event.h>

#include "log.h"
#include "runtime.h"
#include "unit.h"

static int reaps;
static int in_use = 1;

static void count_reap(void)
{
	reaps++;
}

static int servers_in_use(void)
{
	return in_use;
}

int main(void)
{
	static const struct rt_hooks hooks = { .reap = count_reap, .servers_in_use = servers_in_use };
	struct event_base *base = event_base_new();
	double a, b;

	log_setup(0, true);
	rt_schedule_reap();
	UNIT_EQ_INT(reaps, 0, "reap: nothing scheduled before the loop's services start");
	UNIT_CHECK(base && rt_start(base, &hooks), "start");
	UNIT_CHECK(rt.base == base, "start: the loop is the runtime's");

	rt_schedule_reap();
	rt_schedule_reap();
	UNIT_EQ_INT(reaps, 0, "reap: deferred until the callbacks return");
	event_base_loop(base, EVLOOP_NONBLOCK);
	UNIT_EQ_INT(reaps, 1, "reap: once per loop turn, however often it was asked");
	rt_reap_now();
	UNIT_EQ_INT(reaps, 2, "reap: at once when asked so");

	rt.shutdown = SHUTDOWN_NONE;
	rt_check_shutdown();
	UNIT_CHECK(!event_base_got_break(base), "shutdown: nothing asked, the loop goes on");
	rt.shutdown = SHUTDOWN_WAIT_SERVERS;
	rt_check_shutdown();
	UNIT_CHECK(!event_base_got_break(base), "shutdown (SIGINT): goes on while a server is in use");
	in_use = 0;
	rt_check_shutdown();
	UNIT_CHECK(event_base_got_break(base), "shutdown (SIGINT): the loop ends once no server is in use");

	a = rt_now();
	b = rt_now();
	UNIT_CHECK(a > 0 && b >= a, "clock: monotonic seconds");

	rt_stop();
	event_base_free(base);
	return unit_done();
}
