/* Traffic statistics, the counting side: PgBouncer's counters and what adds to them (no pool, no loop). */
#include "stats_count.h"

#include <string.h>

#include "proto.h"

#define USEC 1000000LL

/* the console's counters, as a pool's */
static struct stats_counters g_console;

struct stats_counters *stats_console(void)
{
	return &g_console;
}

void stats_request_done(struct stats_counters *st, struct stats_request *r, char status, double now)
{
	if (r->counted) {
		st->query_time += stats_usec(r->query_start, now);
		r->query_start = 0;
		r->counted = false;
	}
	if (status == PROTO_TXN_IDLE && r->xact_start) {
		st->xact_time += stats_usec(r->xact_start, now);
		r->xact_start = 0;
	}
}

static struct stats_wait_histogram g_waits = {
	.bounds = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60 },
};

void stats_wait_observe(double since, double now)
{
	double secs = now > since ? now - since : 0;

	g_waits.count++;
	g_waits.sum += secs;
	for (int i = 0; i < STATS_WAIT_BUCKETS; i++)
		if (secs <= g_waits.bounds[i])
			g_waits.le[i]++;
}

const struct stats_wait_histogram *stats_wait_histogram(void)
{
	return &g_waits;
}

void stats_add(struct stats_counters *sum, const struct stats_counters *add)
{
	sum->server_assignment_count += add->server_assignment_count;
	sum->xact_count += add->xact_count;
	sum->query_count += add->query_count;
	sum->bytes_received += add->bytes_received;
	sum->bytes_sent += add->bytes_sent;
	sum->xact_time += add->xact_time;
	sum->query_time += add->query_time;
	sum->wait_time += add->wait_time;
	sum->client_parse_count += add->client_parse_count;
	sum->server_parse_count += add->server_parse_count;
	sum->bind_count += add->bind_count;
	sum->client_login_count += add->client_login_count;
}

void stats_console_login(void)
{
	g_console.client_login_count++;
}

void stats_console_command(struct stats_request *r)
{
	if (r->counted)
		return;
	r->counted = true;
	g_console.query_count++;
	g_console.xact_count++;
}

/* delta per second over dur_usec (128 bits: a byte count times a million overflows 64 past 18 TB) */
static unsigned long long per_second(unsigned long long cur, unsigned long long old, long long dur_usec)
{
	return (unsigned long long)((unsigned __int128)(cur - old) * USEC / (unsigned long long)dur_usec);
}

/* delta of a time per delta of a count (0 when nothing was counted) */
static unsigned long long per_event(unsigned long long cur_time, unsigned long long old_time, unsigned long long events)
{
	return events ? (cur_time - old_time) / events : 0;
}

void stats_average(struct stats_counters *avg, const struct stats_counters *cur, const struct stats_counters *old,
		   long long dur_usec)
{
	memset(avg, 0, sizeof(*avg));
	if (dur_usec <= 0)
		return;
	avg->server_assignment_count = per_second(cur->server_assignment_count, old->server_assignment_count, dur_usec);
	avg->xact_count = per_second(cur->xact_count, old->xact_count, dur_usec);
	avg->query_count = per_second(cur->query_count, old->query_count, dur_usec);
	avg->bytes_received = per_second(cur->bytes_received, old->bytes_received, dur_usec);
	avg->bytes_sent = per_second(cur->bytes_sent, old->bytes_sent, dur_usec);
	avg->xact_time = per_event(cur->xact_time, old->xact_time, cur->xact_count - old->xact_count);
	avg->query_time = per_event(cur->query_time, old->query_time, cur->query_count - old->query_count);
	/* the wait of the clients that got a server in the period */
	avg->wait_time = per_event(cur->wait_time, old->wait_time,
				   cur->server_assignment_count - old->server_assignment_count);
	avg->client_parse_count = per_second(cur->client_parse_count, old->client_parse_count, dur_usec);
	avg->server_parse_count = per_second(cur->server_parse_count, old->server_parse_count, dur_usec);
	avg->bind_count = per_second(cur->bind_count, old->bind_count, dur_usec);
	avg->client_login_count = per_second(cur->client_login_count, old->client_login_count, dur_usec);
}
