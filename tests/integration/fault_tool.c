/* fault_tool: libpq clients that keep a pooler busy while PostgreSQL fails, and check every answer is theirs. */
#include <ctype.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * fault_tool load CONNSTR CLIENTS STOPFILE [HANG_SEC]
 *     CLIENTS threads, each with its own connection, run transactions until STOPFILE exists: by turns a simple
 *     Query, a BEGIN / SELECT / COMMIT block and an extended-protocol Query with a parameter. Every statement
 *     carries the client's own marker ("c<client>-<n>") and must return it; an answer with any other text is a
 *     mix-up. A failed statement is counted by its SQLSTATE and text, the connection is closed and made anew.
 *     Prints "started" once every client has had an answer. Once STOPFILE exists each client ends at its next
 *     answer, and the tool prints:
 *       clients N / ok N / errors N / mixups N / hung N
 *       recovered N       clients answered after STOPFILE appeared (every client came back after the faults)
 *       recover_max S     longest time from a client's first failure to its next answer
 *       error N TEXT      each kind of failure: "SQLSTATE message", or "conn <libpq message>" without one
 *       mixup cI: expected X, got Y (the first few)
 *     A client not answered within HANG_SEC (default 30) after STOPFILE appeared is given up: "hung" counts
 *     those that were still inside a statement then.
 *
 * fault_tool stream CONNSTR KIND MARKER GOFILE
 *     KIND result: a large result in single-row mode; copyout: COPY ... TO STDOUT; copyin: COPY fault_copy
 *     FROM STDIN (a table "fault_copy (t text)"). The statement text holds MARKER (for pg_stat_activity). After
 *     the first rows it prints "streaming" and stops reading (or writing) until GOFILE exists, then goes on.
 *     Prints "rows N" (rows read, each checked to carry MARKER; "foreign N" counts those that do not) and
 *     "end ok" or "end ERROR <SQLSTATE> <message>".
 * Exit status: 0, or 2 on a usage error.
 */

#define MAX_CLIENTS 64
#define MAX_KINDS 24
#define MAX_MIXUPS 5

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* "SQLSTATE primary message" of an ErrorResponse, or libpq's own first line when there is no SQLSTATE. */
static void error_text(const PGresult *res, const PGconn *pg, char *out, size_t len)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *raw, *p;

	if (state && msg) {
		snprintf(out, len, "%s %s", state, msg);
		return;
	}
	raw = res ? PQresultErrorMessage(res) : "";
	if (raw[0] == '\0')
		raw = PQerrorMessage(pg);
	/* a failed login: "connection to server at ... failed: FATAL:  53300: text" in verbose form */
	for (p = raw; (p = strstr(p, ":  ")) != NULL; p++) {
		const char *s = p + 3;
		int i;

		for (i = 0; i < 5 && (isdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])); i++)
			;
		if (i == 5 && s[5] == ':' && s[6] == ' ') {
			snprintf(out, len, "%.5s %.*s", s, (int)strcspn(s + 7, "\n"), s + 7);
			return;
		}
	}
	/* without the connection's address and port, so that failures of all clients count as one kind */
	p = strstr(raw, "failed: ");
	if (p)
		raw = p + 8;
	snprintf(out, len, "conn %.*s", (int)strcspn(raw, "\n"), raw);
}

/* ---------------------------------------------------------------- load */

struct kind {
	char text[200];
	long count;
};

struct client {
	int id;
	pthread_t thread;
	PGconn *pg;
	long seq;
	long ok;
	bool answered;	  /* the last statement was answered */
	bool final;	  /* answered after the stop */
	double failed_at; /* first failure since the last answer, 0 when none */
	double recover_max;
	atomic_bool busy; /* inside a statement */
	atomic_bool done;
};

static const char *g_connstr;
static atomic_bool g_stop, g_abort;
static atomic_int g_started;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kind g_kinds[MAX_KINDS];
static int g_nkinds;
static long g_errors, g_mixups, g_other;
static char g_mixup_text[MAX_MIXUPS][256];
static struct client g_clients[MAX_CLIENTS];

static void count_error(struct client *c, const char *text)
{
	pthread_mutex_lock(&g_lock);
	g_errors++;
	int i;
	for (i = 0; i < g_nkinds; i++)
		if (strcmp(g_kinds[i].text, text) == 0)
			break;
	if (i == g_nkinds && g_nkinds < MAX_KINDS)
		snprintf(g_kinds[g_nkinds++].text, sizeof(g_kinds[0].text), "%s", text);
	if (i < g_nkinds)
		g_kinds[i].count++;
	else
		g_other++;
	pthread_mutex_unlock(&g_lock);
	c->answered = false;
	if (c->failed_at == 0)
		c->failed_at = now_sec();
}

static void count_answer(struct client *c, const char *expected, const char *got)
{
	if (strcmp(expected, got) != 0) {
		pthread_mutex_lock(&g_lock);
		if (g_mixups < MAX_MIXUPS)
			snprintf(g_mixup_text[g_mixups], sizeof(g_mixup_text[0]),
				 "c%d: expected %s, got %.100s", c->id, expected, got);
		g_mixups++;
		pthread_mutex_unlock(&g_lock);
		return;
	}
	if (!c->answered && c->ok == 0)
		atomic_fetch_add(&g_started, 1);
	c->ok++;
	c->answered = true;
	if (atomic_load(&g_stop))
		c->final = true;
	if (c->failed_at != 0) {
		double took = now_sec() - c->failed_at;

		if (took > c->recover_max)
			c->recover_max = took;
		c->failed_at = 0;
	}
}

/* Of the results of one statement, the first failure, else the last result. */
static void keep_first_error(PGresult **kept, PGresult *res)
{
	if (*kept == NULL || PQresultStatus(*kept) != PGRES_FATAL_ERROR) {
		PQclear(*kept);
		*kept = res;
	} else {
		PQclear(res);
	}
}

/*
 * Run one statement and keep its first failure: after an ErrorResponse and a lost connection PQexec returns only
 * libpq's "server closed the connection unexpectedly", without the SQLSTATE that came before it.
 */
static PGresult *run(PGconn *pg, const char *sql, const char *param)
{
	PGresult *res, *kept = NULL;
	int sent = param ? PQsendQueryParams(pg, sql, 1, NULL, &param, NULL, NULL, 0) : PQsendQuery(pg, sql);

	if (!sent)
		return NULL;
	while ((res = PQgetResult(pg)) != NULL) {
		keep_first_error(&kept, res);
		if (PQstatus(pg) == CONNECTION_BAD)
			break;
	}
	return kept;
}

/* A result that should be one row holding MARKER; false when the statement failed (counted). */
static bool check_result(struct client *c, PGresult *res, const char *marker)
{
	char text[256];

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) >= 1) {
		count_answer(c, marker, PQgetvalue(res, 0, 0));
		PQclear(res);
		return true;
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		snprintf(text, sizeof(text), "%d rows", PQntuples(res));
		count_answer(c, marker, text);
		PQclear(res);
		return true;
	}
	error_text(res, c->pg, text, sizeof(text));
	PQclear(res);
	count_error(c, text);
	return false;
}

static bool exec_ok(struct client *c, const char *sql)
{
	char text[256];
	PGresult *res = run(c->pg, sql, NULL);

	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		return true;
	}
	error_text(res, c->pg, text, sizeof(text));
	PQclear(res);
	count_error(c, text);
	return false;
}

static void one_transaction(struct client *c)
{
	char marker[64], sql[256];
	bool ok = true;

	c->seq++;
	snprintf(marker, sizeof(marker), "c%d-%ld", c->id, c->seq);
	atomic_store(&c->busy, true);
	switch (c->seq % 3) {
	case 0:
		snprintf(sql, sizeof(sql), "SELECT '%s'::text /*load*/ FROM pg_sleep(0.002)", marker);
		ok = check_result(c, run(c->pg, sql, NULL), marker);
		break;
	case 1:
		ok = exec_ok(c, "BEGIN");
		if (ok) {
			snprintf(sql, sizeof(sql), "SELECT '%s'::text /*load*/, pg_backend_pid()", marker);
			ok = check_result(c, run(c->pg, sql, NULL), marker);
		}
		if (ok)
			ok = exec_ok(c, "COMMIT");
		break;
	default:
		ok = check_result(c, run(c->pg, "SELECT $1::text /*load*/", marker), marker);
		break;
	}
	atomic_store(&c->busy, false);
	if (!ok && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		PQclear(PQexec(c->pg, "ROLLBACK"));
	if (PQstatus(c->pg) != CONNECTION_OK) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
}

/* PostgreSQL's WARNINGs before it ends a session (57P02) are expected here: not printed */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void *load_client(void *arg)
{
	struct client *c = arg;
	char text[256];

	while (!c->final && !atomic_load(&g_abort)) {
		if (c->pg == NULL) {
			atomic_store(&c->busy, true);
			c->pg = PQconnectdb(g_connstr);
			atomic_store(&c->busy, false);
			if (PQstatus(c->pg) != CONNECTION_OK) {
				error_text(NULL, c->pg, text, sizeof(text));
				count_error(c, text);
				PQfinish(c->pg);
				c->pg = NULL;
				sleep_ms(50);
				continue;
			}
			PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE);
			PQsetNoticeProcessor(c->pg, quiet, NULL);
		}
		one_transaction(c);
	}
	if (c->pg)
		PQfinish(c->pg);
	atomic_store(&c->done, true);
	return NULL;
}

static int cmd_load(const char *connstr, int n, const char *stopfile, double hang_sec)
{
	long ok = 0;
	int recovered = 0, hung = 0;
	double recover_max = 0, deadline;
	bool said_started = false;

	if (n < 1 || n > MAX_CLIENTS) {
		fprintf(stderr, "fault_tool: 1..%d clients\n", MAX_CLIENTS);
		return 2;
	}
	g_connstr = connstr;
	for (int i = 0; i < n; i++) {
		g_clients[i].id = i + 1;
		pthread_create(&g_clients[i].thread, NULL, load_client, &g_clients[i]);
	}
	while (access(stopfile, F_OK) != 0) {
		if (!said_started && atomic_load(&g_started) == n) {
			printf("started\n");
			fflush(stdout);
			said_started = true;
		}
		sleep_ms(20);
	}
	atomic_store(&g_stop, true);
	deadline = now_sec() + hang_sec;
	for (int i = 0; i < n; i++)
		while (!atomic_load(&g_clients[i].done) && now_sec() < deadline)
			sleep_ms(20);
	atomic_store(&g_abort, true);
	for (int i = 0; i < n; i++)
		while (!atomic_load(&g_clients[i].done) && now_sec() < deadline + 2)
			sleep_ms(20);
	pthread_mutex_lock(&g_lock);
	for (int i = 0; i < n; i++) {
		struct client *c = &g_clients[i];

		if (!atomic_load(&c->done)) {
			hung++;
			printf("hung c%d (%s)\n", c->id,
			       atomic_load(&c->busy) ? "inside a statement" : "between");
			continue;
		}
		pthread_join(c->thread, NULL);
		ok += c->ok;
		if (c->final)
			recovered++;
		if (c->recover_max > recover_max)
			recover_max = c->recover_max;
	}
	printf("clients %d\nok %ld\nerrors %ld\nmixups %ld\nhung %d\nrecovered %d\nrecover_max %.2f\n", n, ok,
	       g_errors, g_mixups, hung, recovered, recover_max);
	for (int i = 0; i < g_nkinds; i++)
		printf("error %ld %s\n", g_kinds[i].count, g_kinds[i].text);
	if (g_other)
		printf("error %ld (other kinds)\n", g_other);
	for (long i = 0; i < g_mixups && i < MAX_MIXUPS; i++)
		printf("mixup %s\n", g_mixup_text[i]);
	fflush(stdout);
	_exit(0); /* hung threads cannot be joined */
}

/* ---------------------------------------------------------------- stream */

static long g_rows, g_foreign;
static bool g_paused;

static void wait_go(const char *gofile)
{
	double deadline = now_sec() + 30;

	printf("streaming\n");
	fflush(stdout);
	while (access(gofile, F_OK) != 0 && now_sec() < deadline)
		sleep_ms(10);
	g_paused = true;
}

static void count_row(const char *row, const char *marker, const char *gofile)
{
	g_rows++;
	if (strncmp(row, marker, strlen(marker)) != 0)
		g_foreign++;
	if (g_rows == 100 && !g_paused)
		wait_go(gofile);
}

static void print_end(PGconn *pg, PGresult *res)
{
	char text[256];

	printf("rows %ld\nforeign %ld\n", g_rows, g_foreign);
	if (res && (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK ||
		    PQresultStatus(res) == PGRES_SINGLE_TUPLE)) {
		printf("end ok\n");
		return;
	}
	error_text(res, pg, text, sizeof(text));
	printf("end ERROR %s\n", text);
}

static int cmd_stream(const char *connstr, const char *kind, const char *marker, const char *gofile)
{
	PGconn *pg = PQconnectdb(connstr);
	PGresult *res, *last = NULL;
	char sql[512], *buf;
	int n;

	if (PQstatus(pg) != CONNECTION_OK) {
		printf("connect failed: %s", PQerrorMessage(pg));
		return 1;
	}
	PQsetErrorVerbosity(pg, PQERRORS_VERBOSE);
	if (strcmp(kind, "result") == 0) {
		snprintf(sql, sizeof(sql), "SELECT '%s-' || i FROM generate_series(1, 3000000) i", marker);
		if (!PQsendQuery(pg, sql) || !PQsetSingleRowMode(pg)) {
			print_end(pg, NULL);
			return 1;
		}
		while ((res = PQgetResult(pg)) != NULL) {
			if (PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
				count_row(PQgetvalue(res, 0, 0), marker, gofile);
				PQclear(res);
				continue;
			}
			keep_first_error(&last, res);
		}
	} else if (strcmp(kind, "copyout") == 0) {
		snprintf(sql, sizeof(sql),
			 "COPY (SELECT '%s-' || i FROM generate_series(1, 3000000) i) TO STDOUT", marker);
		res = PQexec(pg, sql);
		if (PQresultStatus(res) != PGRES_COPY_OUT) {
			print_end(pg, res);
			return 1;
		}
		PQclear(res);
		while ((n = PQgetCopyData(pg, &buf, 0)) > 0) {
			count_row(buf, marker, gofile);
			PQfreemem(buf);
		}
		while ((res = PQgetResult(pg)) != NULL) {
			keep_first_error(&last, res);
		}
	} else if (strcmp(kind, "copyin") == 0) {
		char row[128];

		snprintf(sql, sizeof(sql), "COPY fault_copy FROM STDIN /* %s */", marker);
		res = PQexec(pg, sql);
		if (PQresultStatus(res) != PGRES_COPY_IN) {
			print_end(pg, res);
			return 1;
		}
		PQclear(res);
		for (long i = 1; i <= 3000000; i++) {
			n = snprintf(row, sizeof(row), "%s-%ld\n", marker, i);
			if (PQputCopyData(pg, row, n) != 1)
				break;
			if (i == 1000)
				wait_go(gofile);
			if (PQstatus(pg) != CONNECTION_OK)
				break;
			/* once the server is gone libpq notices only when it reads: look now and then */
			if (g_paused && i % 1000 == 0) {
				PQconsumeInput(pg);
				if (PQstatus(pg) != CONNECTION_OK || !PQisBusy(pg))
					break;
			}
		}
		PQputCopyEnd(pg, NULL);
		while ((res = PQgetResult(pg)) != NULL) {
			bool still_copying = PQresultStatus(res) == PGRES_COPY_IN;

			keep_first_error(&last, res);
			if (still_copying)
				break; /* the server never answered: libpq would wait forever for more data */
		}
	} else {
		fprintf(stderr, "fault_tool: unknown stream kind %s\n", kind);
		return 2;
	}
	print_end(pg, last);
	PQclear(last);
	PQfinish(pg);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 5 && strcmp(argv[1], "load") == 0)
		return cmd_load(argv[2], atoi(argv[3]), argv[4], argc > 5 ? atof(argv[5]) : 30);
	if (argc == 6 && strcmp(argv[1], "stream") == 0)
		return cmd_stream(argv[2], argv[3], argv[4], argv[5]);
	fprintf(stderr,
		"usage: fault_tool load CONNSTR CLIENTS STOPFILE [HANG_SEC] | stream CONNSTR KIND MARKER GOFILE\n");
	return 2;
}
