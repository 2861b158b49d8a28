/* Traffic statistics, the counting side: PgBouncer's counters and what adds to them (no pool, no loop). */
#ifndef MB_STATS_COUNT_H
#define MB_STATS_COUNT_H

#include <stdbool.h>
#include <stdint.h>

/* PgBouncer's counters, summed per database by the SHOW commands; times in microseconds. */
struct stats_counters {
	unsigned long long server_assignment_count;	/* a server linked to a client */
	unsigned long long xact_count;		/* transactions (a query that began outside one starts one) */
	unsigned long long query_count;		/* requests: from a client's message to the ReadyForQuery that
						 * answers its last request in flight */
	unsigned long long bytes_received;	/* bytes of client messages taken after login */
	unsigned long long bytes_sent;		/* bytes of server messages taken after login */
	unsigned long long xact_time;		/* first message of a transaction to its closing ReadyForQuery */
	unsigned long long query_time;		/* first message of a query to its last ReadyForQuery */
	unsigned long long wait_time;		/* clients queued for a server (or for the first login's welcome) */
	unsigned long long client_parse_count;	/* named Parse messages from clients (prepared statement relay) */
	unsigned long long server_parse_count;	/* Parse messages sent to servers by that relay */
	unsigned long long bind_count;		/* Binds of named statements relayed */
	unsigned long long client_login_count;	/* successful client logins */
};

/* Where a client's request stands: when its query and transaction began (0: none running). */
struct stats_request {
	double query_start;
	double xact_start;
	bool counted;		/* the query has been counted (its first message was taken) */
};

/* Microseconds between two rt_now() readings (never negative). */
static inline unsigned long long stats_usec(double from, double to)
{
	return to > from ? (unsigned long long)((to - from) * 1e6) : 0;
}

/* A client message arrives at now: a request that is not running yet begins. */
static inline void stats_request_arrived(struct stats_request *r, double now)
{
	if (!r->query_start)
		r->query_start = now;
}

/* The message was taken (relayed or answered) for the pool st: its bytes; the query's and transaction's count. */
static inline void stats_request_taken(struct stats_counters *st, struct stats_request *r, uint32_t len)
{
	st->bytes_received += len;
	if (r->counted)
		return;
	r->counted = true;
	st->query_count++;
	if (!r->xact_start) {
		r->xact_start = r->query_start;
		st->xact_count++;
	}
}

/* The ReadyForQuery answering the last request in flight, with transaction status status ('I' ends the
 * transaction), at now. */
void stats_request_done(struct stats_counters *st, struct stats_request *r, char status, double now);

/* Averages of the counters between old (taken dur_usec ago) and cur, as PgBouncer computes them: counts and bytes
 * per second, times per query, per transaction and per server assignment. */
void stats_average(struct stats_counters *avg, const struct stats_counters *cur, const struct stats_counters *old,
		   long long dur_usec);
/* sum += add, field by field. */
void stats_add(struct stats_counters *sum, const struct stats_counters *add);

/* The admin console's database has no pool; PgBouncer lists it in SHOW STATS all the same, as "pgbouncer". What
 * it counts there: a console login, and for each console client its first command (PgBouncer never ends a console
 * client's query, so later commands add nothing). */
#define STATS_CONSOLE_DB "pgbouncer"
void stats_console_login(void);
void stats_console_command(struct stats_request *r);
/* The console's counters (the tick and the SHOW views read them). */
struct stats_counters *stats_console(void);

/* Client waits for a server (moonbouncer_client_wait_seconds): a histogram over every pool. */
#define STATS_WAIT_BUCKETS 11
struct stats_wait_histogram {
	double bounds[STATS_WAIT_BUCKETS];	/* upper bounds in seconds; +Inf is count */
	unsigned long long le[STATS_WAIT_BUCKETS];	/* waits <= each bound */
	unsigned long long count;
	double sum;
};
/* A client waited from since to now for a server (or for its pool's first login). */
void stats_wait_observe(double since, double now);
const struct stats_wait_histogram *stats_wait_histogram(void);

#endif
