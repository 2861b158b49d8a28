/* txn_tool: a scripted multi-connection libpq client for the transaction-pooling integration tests. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * txn_tool script [FILE]      one command per line (below, from FILE or stdin); one line per fact, "NAME: ..."
 * txn_tool blackhole PORT SEC  listen on 127.0.0.1:PORT, accept and never answer (print "listening")
 *
 * Script commands (SQL and connection strings are the rest of the line):
 *   open NAME CONNSTR     log in                     -> "NAME: connected" | "NAME: ERROR <state> <msg>"
 *   q NAME SQL            simple Query, wait         -> rows "NAME: a|b", tags "NAME: <tag>", errors
 *   x NAME SQL            the same, extended protocol (unnamed statement, no parameters)
 *   prep NAME STMT SQL    Parse a named statement (no parameters), wait -> "NAME: prepared" | errors
 *   xp NAME STMT          Bind and Execute the named statement STMT, wait -> as q
 *   send NAME SQL         simple Query, do not wait
 *   wait NAME [SEC]       results of the last send (SEC, default 30, at most) -> as q, or "NAME: TIMEOUT"
 *   pipeline NAME A ;; B ;; SYNC ;; C ;; SYNC   pipeline mode: each part a query or a Sync
 *                         -> results as q, "NAME: aborted" (PIPELINE_ABORTED), "NAME: sync"
 *   cancel NAME           PQcancel through the connection's cancel key -> "NAME: cancel sent"
 *   ps NAME PARAM         -> "NAME: PARAM=<PQparameterStatus>"
 *   txn NAME              -> "NAME: txn idle|active|intrans|inerror|unknown"
 *   elapsed NAME          -> "NAME: elapsed S" since the last q/x/send/pipeline started
 *   closed NAME SEC       wait up to SEC for the other side to close the idle connection
 *                         -> "NAME: closed S <severity> <state> <msg>" (S since the connection was last
 *                            used) | "NAME: open S"
 *   close NAME            Terminate and close
 *   stall NAME HOST PORT USER DB SEC   raw login that never answers the password request
 *                         -> "NAME: closed S ERROR <state> <msg>" | "NAME: open S"
 *   env VAR VALUE, unenv VAR   set the environment for later opens (PGDATESTYLE, PGTZ, ...)
 *   sleep SEC, echo TEXT, time (-> "time S": seconds since the script started)
 * Exit status: 0, or 2 on a script or usage error.
 */

#define MAX_CONNS 256

struct conn {
	char name[32];
	PGconn *pg;
	double started;	  /* last q/x/send/pipeline */
	double last_used; /* last command that finished on it */
	char async_err[512];
};

static struct conn g_conns[MAX_CONNS];
static int g_nconns;
static double g_start;

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "txn_tool: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

static struct conn *find_conn(const char *name, bool create)
{
	for (int i = 0; i < g_nconns; i++)
		if (strcmp(g_conns[i].name, name) == 0)
			return &g_conns[i];
	if (!create)
		die("no connection named %s", name);
	if (g_nconns == MAX_CONNS)
		die("too many connections (%s)", name);
	snprintf(g_conns[g_nconns].name, sizeof(g_conns[g_nconns].name), "%s", name);
	return &g_conns[g_nconns++];
}

static struct conn *need_open(const char *name)
{
	struct conn *c = find_conn(name, false);

	if (c->pg == NULL)
		die("connection %s is not open", name);
	return c;
}

/* First line of a message, without a trailing newline. */
static int line_len(const char *s)
{
	return (int)strcspn(s, "\n");
}

/* An ErrorResponse that arrives while no query runs (a FATAL from the pooler) comes here as a notice. */
static void on_notice(void *arg, const PGresult *res)
{
	struct conn *c = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (sev == NULL)
		sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "ERROR") == 0 || strcmp(sev, "PANIC") == 0))
		snprintf(c->async_err, sizeof(c->async_err), "%s %s %s", sev, state ? state : "-----",
			 msg ? msg : "");
}

/* The SQLSTATE and primary message of a failed login (libpq reports them only in verbose form). */
static void print_login_error(const struct conn *c, const char *msg)
{
	const char *p, *text = msg;
	char state[6] = "-----";

	for (p = msg; (p = strstr(p, ":  ")) != NULL; p++) {
		const char *s = p + 3;
		int i;

		for (i = 0; i < 5 && (isdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])); i++)
			;
		if (i == 5 && s[5] == ':' && s[6] == ' ') {
			memcpy(state, s, 5);
			text = s + 7;
			break;
		}
	}
	printf("%s: ERROR %s %.*s\n", c->name, state, line_len(text), text);
}

static void cmd_open(const char *name, const char *connstr)
{
	struct conn *c = find_conn(name, true);
	const char *keys[] = { "dbname", NULL };
	const char *vals[] = { connstr, NULL };
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double deadline = now_sec() + 30;

	if (c->pg)
		PQfinish(c->pg);
	c->async_err[0] = 0;
	c->pg = PQconnectStartParams(keys, vals, 1);
	if (c->pg == NULL)
		die("out of memory opening %s", name);
	PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE);
	while (PQstatus(c->pg) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = { .fd = PQsocket(c->pg),
				      .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		int left = (int)((deadline - now_sec()) * 1000);

		if (left <= 0)
			break;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		st = PQconnectPoll(c->pg);
	}
	if (PQstatus(c->pg) != CONNECTION_OK) {
		if (st != PGRES_POLLING_FAILED && PQstatus(c->pg) != CONNECTION_BAD)
			printf("%s: ERROR ----- timeout while connecting\n", name);
		else
			print_login_error(c, PQerrorMessage(c->pg));
		PQfinish(c->pg);
		c->pg = NULL;
		return;
	}
	PQsetErrorVerbosity(c->pg, PQERRORS_DEFAULT);
	PQsetNoticeReceiver(c->pg, on_notice, c);
	c->last_used = now_sec();
	printf("%s: connected\n", name);
}

static void print_result(struct conn *c, const PGresult *res)
{
	const char *state, *msg;
	int r, f;

	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_SINGLE_TUPLE:
		for (r = 0; r < PQntuples(res); r++) {
			printf("%s: ", c->name);
			for (f = 0; f < PQnfields(res); f++)
				printf("%s%s", f ? "|" : "",
				       PQgetisnull(res, r, f) ? "NULL" : PQgetvalue(res, r, f));
			printf("\n");
		}
		break;
	case PGRES_COMMAND_OK:
		printf("%s: %s\n", c->name, PQcmdStatus((PGresult *)res));
		break;
	case PGRES_EMPTY_QUERY:
		printf("%s: empty\n", c->name);
		break;
	case PGRES_PIPELINE_SYNC:
		printf("%s: sync\n", c->name);
		break;
	case PGRES_PIPELINE_ABORTED:
		printf("%s: aborted\n", c->name);
		break;
	default:
		on_notice(c, res); /* a FATAL ends the connection: remember it for "closed" */
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		if (msg == NULL)
			msg = PQresultErrorMessage(res);
		if (msg == NULL || !msg[0])
			msg = PQerrorMessage(c->pg);
		printf("%s: ERROR %s %.*s\n", c->name, state ? state : "-----", line_len(msg), msg);
	}
}

/* Wait until a result is ready (or the deadline passes); false on timeout or a broken connection. */
static bool wait_ready(struct conn *c, double deadline)
{
	while (PQisBusy(c->pg)) {
		struct pollfd pfd = { .fd = PQsocket(c->pg), .events = POLLIN };
		int left = (int)((deadline - now_sec()) * 1000);

		if (left <= 0)
			return false;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (!PQconsumeInput(c->pg))
			return true; /* PQgetResult reports the broken connection */
	}
	return true;
}

/* Print every result of the request at hand; in pipeline mode up to and including the sync number n_syncs. */
static void collect(struct conn *c, int n_syncs, double secs)
{
	double deadline = now_sec() + secs;
	int nulls = 0;

	for (;;) {
		PGresult *res;

		if (!wait_ready(c, deadline)) {
			printf("%s: TIMEOUT\n", c->name);
			break;
		}
		res = PQgetResult(c->pg);
		if (res == NULL) {
			if (n_syncs == 0 || PQstatus(c->pg) == CONNECTION_BAD || ++nulls > 1000)
				break;
			continue; /* pipeline: NULL ends one query's results */
		}
		print_result(c, res);
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC && --n_syncs == 0) {
			PQclear(res);
			break;
		}
		PQclear(res);
	}
	if (PQstatus(c->pg) == CONNECTION_BAD)
		printf("%s: connection lost: %.*s\n", c->name, line_len(PQerrorMessage(c->pg)),
		       PQerrorMessage(c->pg));
	c->last_used = now_sec();
}

static void cmd_query(const char *name, const char *sql, bool extended, bool wait)
{
	struct conn *c = need_open(name);
	int ok;

	c->started = c->last_used = now_sec();
	if (extended)
		ok = PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
	else
		ok = PQsendQuery(c->pg, sql);
	if (!ok) {
		printf("%s: ERROR ----- send failed: %.*s\n", name, line_len(PQerrorMessage(c->pg)),
		       PQerrorMessage(c->pg));
		return;
	}
	if (wait)
		collect(c, 0, 30);
}

/* A protocol-level named statement: Parse it (prep) or Bind and Execute it (xp). */
static void cmd_prepared(const char *name, const char *stmt, const char *sql)
{
	struct conn *c = need_open(name);
	PGresult *res;
	int ok;

	c->started = c->last_used = now_sec();
	if (sql)
		ok = PQsendPrepare(c->pg, stmt, sql, 0, NULL);
	else
		ok = PQsendQueryPrepared(c->pg, stmt, 0, NULL, NULL, NULL, 0);
	if (!ok) {
		printf("%s: ERROR ----- send failed: %.*s\n", name, line_len(PQerrorMessage(c->pg)),
		       PQerrorMessage(c->pg));
		return;
	}
	if (!sql) {
		collect(c, 0, 30);
		return;
	}
	/* a Parse's result is a bare COMMAND_OK with no tag: name it */
	if (!wait_ready(c, now_sec() + 30)) {
		printf("%s: TIMEOUT\n", name);
		return;
	}
	while ((res = PQgetResult(c->pg)) != NULL) {
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			printf("%s: prepared\n", name);
		else
			print_result(c, res);
		PQclear(res);
		if (!wait_ready(c, now_sec() + 30)) {
			printf("%s: TIMEOUT\n", name);
			return;
		}
	}
	c->last_used = now_sec();
}

static void cmd_pipeline(const char *name, char *spec)
{
	struct conn *c = need_open(name);
	int n_syncs = 0;
	char *part = spec;

	c->started = now_sec();
	if (!PQenterPipelineMode(c->pg)) {
		printf("%s: ERROR ----- cannot enter pipeline mode\n", name);
		return;
	}
	while (part) {
		char *sep = strstr(part, ";;");
		char *end;

		if (sep)
			*sep = 0;
		while (isspace((unsigned char)*part))
			part++;
		end = part + strlen(part);
		while (end > part && isspace((unsigned char)end[-1]))
			*--end = 0;
		if (strcmp(part, "SYNC") == 0) {
			if (!PQpipelineSync(c->pg))
				printf("%s: ERROR ----- sync failed\n", name);
			n_syncs++;
		} else if (*part && !PQsendQueryParams(c->pg, part, 0, NULL, NULL, NULL, NULL, 0)) {
			printf("%s: ERROR ----- send failed: %.*s\n", name, line_len(PQerrorMessage(c->pg)),
			       PQerrorMessage(c->pg));
		}
		part = sep ? sep + 2 : NULL;
	}
	if (n_syncs == 0)
		die("pipeline for %s has no SYNC", name);
	collect(c, n_syncs, 30);
	if (PQstatus(c->pg) == CONNECTION_OK && !PQexitPipelineMode(c->pg))
		printf("%s: ERROR ----- cannot leave pipeline mode: %.*s\n", name,
		       line_len(PQerrorMessage(c->pg)), PQerrorMessage(c->pg));
}

static void cmd_cancel(const char *name)
{
	struct conn *c = need_open(name);
	PGcancel *cancel = PQgetCancel(c->pg);
	char err[256];

	if (cancel == NULL || !PQcancel(cancel, err, sizeof(err)))
		printf("%s: cancel failed: %s\n", name, cancel ? err : "no cancel object");
	else
		printf("%s: cancel sent\n", name);
	if (cancel)
		PQfreeCancel(cancel);
}

static void cmd_closed(const char *name, double secs)
{
	struct conn *c = need_open(name);
	double deadline = now_sec() + secs;

	while (PQstatus(c->pg) == CONNECTION_OK) {
		struct pollfd pfd = { .fd = PQsocket(c->pg), .events = POLLIN };
		int left = (int)((deadline - now_sec()) * 1000);
		char byte;
		int ok;

		if (left <= 0) {
			printf("%s: open %.2f\n", name, now_sec() - c->last_used);
			return;
		}
		if (poll(&pfd, 1, left) <= 0)
			continue;
		ok = PQconsumeInput(c->pg);
		PQfreemem(PQnotifies(c->pg)); /* parses what arrived: an ErrorResponse goes to on_notice */
		if (!ok || recv(PQsocket(c->pg), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
			break;
	}
	printf("%s: closed %.2f %s\n", name, now_sec() - c->last_used, c->async_err[0] ? c->async_err : "-");
	PQfinish(c->pg);
	c->pg = NULL;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void cmd_stall(const char *name, const char *host, int port, const char *user, const char *db,
		      double secs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	uint8_t pkt[512], reply[8192];
	size_t len = 8, got = 0, pos = 0;
	double start = now_sec(), deadline = start + secs;
	bool closed = false;
	int fd;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad IPv4 address %s", host);
	len += (size_t)snprintf((char *)pkt + len, sizeof(pkt) - len - 1, "user%c%s%cdatabase%c%s%c", 0, user,
				0, 0, db, 0);
	pkt[len++] = 0;
	put_u32(pkt, (uint32_t)len);
	put_u32(pkt + 4, 196608);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    send(fd, pkt, len, MSG_NOSIGNAL) != (ssize_t)len) {
		printf("%s: ERROR ----- connect: %s\n", name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	while (got < sizeof(reply)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int left = (int)((deadline - now_sec()) * 1000);
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			break;
		n = recv(fd, reply + got, sizeof(reply) - got, 0);
		if (n <= 0) {
			closed = true;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (!closed) {
		printf("%s: open %.2f\n", name, now_sec() - start);
		return;
	}
	printf("%s: closed %.2f", name, now_sec() - start);
	/* the last ErrorResponse, if any */
	while (pos + 5 <= got) {
		uint32_t mlen = (uint32_t)reply[pos + 1] << 24 | (uint32_t)reply[pos + 2] << 16 |
				(uint32_t)reply[pos + 3] << 8 | reply[pos + 4];

		if (mlen < 4 || pos + 1 + mlen > got)
			break;
		if (reply[pos] == 'E') {
			const char *state = "-----", *msg = "";
			size_t p = pos + 5, end = pos + 1 + mlen;

			while (p < end && reply[p] != 0) {
				char code = (char)reply[p++];
				const char *val = (const char *)reply + p;

				if (code == 'C')
					state = val;
				else if (code == 'M')
					msg = val;
				p += strnlen(val, end - p) + 1;
			}
			printf(" ERROR %s %s", state, msg);
		}
		pos += 1 + mlen;
	}
	printf("\n");
}

/* Split off the next whitespace-separated word of *line. */
static char *word(char **line)
{
	char *p = *line, *w;

	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return NULL;
	w = p;
	while (*p && !isspace((unsigned char)*p))
		p++;
	if (*p)
		*p++ = 0;
	while (isspace((unsigned char)*p))
		p++;
	*line = p;
	return w;
}

static char *need_word(char **line, const char *what)
{
	char *w = word(line);

	if (!w)
		die("missing %s", what);
	return w;
}

static void run_line(char *line)
{
	char *cmd, *name;

	line[strcspn(line, "\n")] = 0;
	cmd = word(&line);
	if (!cmd || cmd[0] == '#')
		return;
	if (strcmp(cmd, "sleep") == 0) {
		double s = atof(need_word(&line, "seconds"));

		usleep((useconds_t)(s * 1e6));
		return;
	}
	if (strcmp(cmd, "time") == 0) {
		printf("time %.2f\n", now_sec() - g_start);
		return;
	}
	if (strcmp(cmd, "echo") == 0) {
		printf("%s\n", line);
		return;
	}
	name = need_word(&line, "connection name");
	if (strcmp(cmd, "env") == 0) {
		setenv(name, line, 1);
		return;
	}
	if (strcmp(cmd, "unenv") == 0) {
		unsetenv(name);
		return;
	}
	if (strcmp(cmd, "open") == 0)
		cmd_open(name, line);
	else if (strcmp(cmd, "q") == 0)
		cmd_query(name, line, false, true);
	else if (strcmp(cmd, "x") == 0)
		cmd_query(name, line, true, true);
	else if (strcmp(cmd, "send") == 0)
		cmd_query(name, line, false, false);
	else if (strcmp(cmd, "prep") == 0) {
		const char *stmt = need_word(&line, "statement name");

		cmd_prepared(name, stmt, line);
	} else if (strcmp(cmd, "xp") == 0)
		cmd_prepared(name, need_word(&line, "statement name"), NULL);
	else if (strcmp(cmd, "wait") == 0) {
		const char *secs = word(&line);

		collect(need_open(name), 0, secs ? atof(secs) : 30);
	} else if (strcmp(cmd, "pipeline") == 0)
		cmd_pipeline(name, line);
	else if (strcmp(cmd, "cancel") == 0)
		cmd_cancel(name);
	else if (strcmp(cmd, "ps") == 0) {
		const char *v = PQparameterStatus(need_open(name)->pg, line);

		printf("%s: %s=%s\n", name, line, v ? v : "(none)");
	} else if (strcmp(cmd, "txn") == 0) {
		static const char *const names[] = { "idle", "active", "intrans", "inerror", "unknown" };
		PGTransactionStatusType t = PQtransactionStatus(need_open(name)->pg);

		printf("%s: txn %s\n", name, names[t <= PQTRANS_UNKNOWN ? t : PQTRANS_UNKNOWN]);
	} else if (strcmp(cmd, "elapsed") == 0)
		printf("%s: elapsed %.2f\n", name, now_sec() - need_open(name)->started);
	else if (strcmp(cmd, "closed") == 0)
		cmd_closed(name, atof(need_word(&line, "seconds")));
	else if (strcmp(cmd, "close") == 0) {
		struct conn *c = need_open(name);

		PQfinish(c->pg);
		c->pg = NULL;
	} else if (strcmp(cmd, "stall") == 0) {
		const char *host = need_word(&line, "host");
		int port = atoi(need_word(&line, "port"));
		const char *user = need_word(&line, "user");
		const char *db = need_word(&line, "database");

		cmd_stall(name, host, port, user, db, atof(need_word(&line, "seconds")));
	} else
		die("unknown command %s", cmd);
}

/* Accept connections and never answer: a server that hangs during connect/login. */
static int blackhole(int port, double secs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	double deadline = now_sec() + secs;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	int held[256], n_held = 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0)
		die("cannot listen: %s", strerror(errno));
	printf("listening\n");
	while (now_sec() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 100) > 0) {
			int c = accept(fd, NULL, NULL);

			if (c >= 0 && n_held < 256)
				held[n_held++] = c;
			else if (c >= 0)
				close(c);
		}
	}
	for (int i = 0; i < n_held; i++)
		close(held[i]);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	char line[65536];
	FILE *in;

	setvbuf(stdout, NULL, _IOLBF, 0);
	g_start = now_sec();
	if (argc == 4 && strcmp(argv[1], "blackhole") == 0)
		return blackhole(atoi(argv[2]), atof(argv[3]));
	if ((argc != 2 && argc != 3) || strcmp(argv[1], "script") != 0) {
		fprintf(stderr, "usage: txn_tool script [FILE] | txn_tool blackhole PORT SECONDS\n");
		return 2;
	}
	in = argc == 3 ? fopen(argv[2], "r") : stdin;
	if (in == NULL)
		die("cannot open %s", argv[2]);
	while (fgets(line, sizeof(line), in))
		run_line(line);
	for (int i = 0; i < g_nconns; i++)
		if (g_conns[i].pg)
			PQfinish(g_conns[i].pg);
	return 0;
}
