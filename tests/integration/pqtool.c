/* pqtool: a small libpq client with the subcommands the integration tests drive the pooler with. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/*
 * Output conventions (one line per fact, easy to compare in shell):
 *   errors, from connecting or from a statement:  ERROR <SQLSTATE> <primary message>
 *   (SQLSTATE "-----" when libpq reported a failure without one, e.g. connection refused)
 * Exit status: 0 success, 1 the server/pooler reported an error, 2 usage or local failure.
 */

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pqtool COMMAND ARGS\n"
		"  connect CONNSTR                 log in, print OK\n"
		"  query CONNSTR SQL...            run each statement, print rows tab-separated\n"
		"  backend-pid CONNSTR             print pg_backend_pid() of the server session\n"
		"  columns CONNSTR SQL             run SQL (simple protocol), print its columns on one line as\n"
		"                                  name:type (text, int4, int8, numeric, bytea or the OID)\n"
		"  cancel CONNSTR [DELAY]          SELECT pg_sleep(60), PQcancel after DELAY s (1);\n"
		"                                  print SQLSTATE and seconds until the query ended\n"
		"  params CONNSTR NAME...          print NAME, current_setting(NAME), PQparameterStatus\n"
		"  hold CONNSTR SECONDS            log in, print 'connected', stay idle; print 'closed'\n"
		"                                  if the other side closes, else 'done' at the end\n"
		"  raw HOST PORT DATA...           send bytes (hex, or random:N) on a TCP connection,\n"
		"                                  print what comes back (ERROR/AUTH/BYTE/ROW/CLOSED/TIMEOUT);\n"
		"                                  after a StartupMessage, waits for one ReadyForQuery more\n"
		"                                  per Query or Sync sent with it\n"
		"  sasl-first HOST PORT USER DB    start a SCRAM login; print the shape of the server's first\n"
		"                                  message: 'SASL r=<nonce length> s=<salt length> i=<iterations>'\n"
		"                                  (or the error / other authentication request)\n"
		"  idle HOST|SOCKET PORT N SECONDS open N connections (TCP, or to a unix socket file) that\n"
		"                                  send nothing; print 'opened N', hold them SECONDS, then\n"
		"                                  'closed K' (K closed by the other side)\n");
	exit(2);
}

/* Primary message of a libpq error text: first line, "SEVERITY:  " and "SQLSTATE: " prefixes removed. */
static void print_conn_error(const char *msg)
{
	const char *p, *sqlstate = NULL, *text = msg;
	char state[6] = "-----";
	size_t n;

	/* verbose form: "... failed: FATAL:  28P01: password authentication failed ..." */
	for (p = msg; (p = strstr(p, ":  ")) != NULL; p++) {
		const char *c = p + 3;
		int i;

		for (i = 0; i < 5 && (isdigit((unsigned char)c[i]) || isupper((unsigned char)c[i])); i++)
			;
		if (i == 5 && c[5] == ':' && c[6] == ' ') {
			sqlstate = c;
			text = c + 7;
			break;
		}
	}
	if (sqlstate != NULL)
		memcpy(state, sqlstate, 5);
	n = strcspn(text, "\n");
	printf("ERROR %s %.*s\n", state, (int)n, text);
}

/* Log in with verbose errors so that a failed login still tells us the SQLSTATE. */
static PGconn *connect_verbose(const char *connstr)
{
	const char *keys[] = { "dbname", NULL };
	const char *vals[] = { connstr, NULL };
	PGconn *conn = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double deadline = now_sec() + 30;

	if (conn == NULL) {
		printf("ERROR ----- out of memory\n");
		exit(2);
	}
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	if (PQstatus(conn) == CONNECTION_BAD)
		goto bad;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = { .fd = PQsocket(conn),
				      .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		int left = (int)((deadline - now_sec()) * 1000);

		if (left <= 0) {
			printf("ERROR ----- timeout while connecting\n");
			exit(1);
		}
		if (poll(&pfd, 1, left) < 0 && errno != EINTR) {
			perror("poll");
			exit(2);
		}
		st = PQconnectPoll(conn);
	}
	if (st == PGRES_POLLING_OK && PQstatus(conn) == CONNECTION_OK) {
		PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
		return conn;
	}
bad:
	print_conn_error(PQerrorMessage(conn));
	PQfinish(conn);
	exit(1);
}

static void print_result_error(const PGresult *res, PGconn *conn)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (msg == NULL) {
		msg = PQerrorMessage(conn);
	}
	printf("ERROR %s %.*s\n", state ? state : "-----", (int)strcspn(msg, "\n"), msg);
}

/* Run one statement, print its rows; false on error. */
static bool run_sql(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = true;
	int r, c;

	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		for (r = 0; r < PQntuples(res); r++) {
			for (c = 0; c < PQnfields(res); c++)
				printf("%s%s", c ? "\t" : "",
				       PQgetisnull(res, r, c) ? "NULL" : PQgetvalue(res, r, c));
			printf("\n");
		}
		break;
	case PGRES_COMMAND_OK:
	case PGRES_EMPTY_QUERY:
		break;
	default:
		print_result_error(res, conn);
		ok = false;
	}
	PQclear(res);
	return ok;
}

static int cmd_query(int argc, char **argv)
{
	PGconn *conn;
	int i, rc = 0;

	if (argc < 1)
		usage();
	conn = connect_verbose(argv[0]);
	for (i = 1; i < argc; i++) {
		if (!run_sql(conn, argv[i])) {
			rc = 1;
			break;
		}
	}
	PQfinish(conn);
	return rc;
}

static int cmd_columns(int argc, char **argv)
{
	PGconn *conn;
	PGresult *res;
	int rc = 0;

	if (argc != 2)
		usage();
	conn = connect_verbose(argv[0]);
	res = PQexec(conn, argv[1]);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		printf("ERROR %s %s\n", state ? state : "-----", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
								   ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
								   : PQerrorMessage(conn));
		rc = 1;
	} else {
		for (int i = 0; i < PQnfields(res); i++) {
			Oid t = PQftype(res, i);
			const char *name = t == 25 ? "text" : t == 23 ? "int4" : t == 20 ? "int8" : t == 1700 ? "numeric"
					 : t == 17 ? "bytea" : NULL;
			if (name)
				printf("%s%s:%s", i ? " " : "", PQfname(res, i), name);
			else
				printf("%s%s:%u", i ? " " : "", PQfname(res, i), (unsigned)t);
		}
		printf("\n");
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int cmd_connect(int argc, char **argv)
{
	PGconn *conn;

	if (argc != 1)
		usage();
	conn = connect_verbose(argv[0]);
	printf("OK\n");
	PQfinish(conn);
	return 0;
}

static int cmd_backend_pid(int argc, char **argv)
{
	char *sql = "SELECT pg_backend_pid()";
	char *args[] = { argv[0], sql };

	if (argc != 1)
		usage();
	return cmd_query(2, args);
}

static int cmd_cancel(int argc, char **argv)
{
	double delay = argc > 1 ? atof(argv[1]) : 1.0;
	double start, deadline;
	PGconn *conn;
	PGcancel *cancel;
	PGresult *res;
	char errbuf[256];
	const char *state = NULL;
	char state_copy[8] = "-----";
	bool done = false;

	if (argc < 1 || argc > 2)
		usage();
	conn = connect_verbose(argv[0]);
	start = now_sec();
	if (!PQsendQuery(conn, "SELECT pg_sleep(60)")) {
		printf("ERROR ----- send failed: %s", PQerrorMessage(conn));
		return 1;
	}
	usleep((useconds_t)(delay * 1e6));
	cancel = PQgetCancel(conn);
	if (cancel == NULL || !PQcancel(cancel, errbuf, sizeof(errbuf))) {
		printf("CANCELFAIL %s\n", cancel ? errbuf : "no cancel object");
		return 1;
	}
	PQfreeCancel(cancel);
	/* wait for the query to end, at most 15 s more */
	deadline = now_sec() + 15;
	while (!done) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
		int left = (int)((deadline - now_sec()) * 1000);

		if (left <= 0) {
			printf("TIMEOUT %.2f\n", now_sec() - start);
			PQfinish(conn);
			return 1;
		}
		if (!PQisBusy(conn)) {
			while ((res = PQgetResult(conn)) != NULL) {
				const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

				if (s != NULL && state == NULL) {
					snprintf(state_copy, sizeof(state_copy), "%s", s);
					state = state_copy;
				}
				PQclear(res);
			}
			done = true;
			break;
		}
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(conn)) {
			printf("ERROR ----- connection lost: %.*s\n",
			       (int)strcspn(PQerrorMessage(conn), "\n"), PQerrorMessage(conn));
			PQfinish(conn);
			return 1;
		}
	}
	printf("%s %.2f\n", state_copy, now_sec() - start);
	PQfinish(conn);
	return 0;
}

static int cmd_params(int argc, char **argv)
{
	PGconn *conn;
	int i;

	if (argc < 2)
		usage();
	conn = connect_verbose(argv[0]);
	for (i = 1; i < argc; i++) {
		const char *values[1] = { argv[i] };
		PGresult *res =
			PQexecParams(conn, "SELECT current_setting($1)", 1, NULL, values, NULL, NULL, 0);
		const char *status = PQparameterStatus(conn, argv[i]);

		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			print_result_error(res, conn);
			PQclear(res);
			PQfinish(conn);
			return 1;
		}
		printf("%s\t%s\t%s\n", argv[i], PQgetvalue(res, 0, 0), status ? status : "(none)");
		PQclear(res);
	}
	PQfinish(conn);
	return 0;
}

static int cmd_hold(int argc, char **argv)
{
	PGconn *conn;
	double deadline;

	if (argc != 2)
		usage();
	conn = connect_verbose(argv[0]);
	if (!run_sql(conn, "SELECT 1")) {
		PQfinish(conn);
		return 1;
	}
	printf("connected\n");
	fflush(stdout);
	deadline = now_sec() + atof(argv[1]);
	for (;;) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
		int left = (int)((deadline - now_sec()) * 1000);

		if (left <= 0)
			break;
		if (poll(&pfd, 1, left) > 0) {
			char buf[1];

			/* readable: either a message (ParameterStatus, notice) or EOF */
			if (!PQconsumeInput(conn) ||
			    recv(PQsocket(conn), buf, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
				printf("closed\n");
				PQfinish(conn);
				return 0;
			}
		}
	}
	printf("done\n");
	PQfinish(conn);
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Append the bytes of one DATA argument (hex digits, or random:N) to buf. */
static void add_data(const char *arg, uint8_t **buf, size_t *len)
{
	size_t n, i;

	if (strncmp(arg, "random:", 7) == 0) {
		n = strtoul(arg + 7, NULL, 10);
		*buf = realloc(*buf, *len + n);
		if (*buf == NULL)
			exit(2);
		srand((unsigned)getpid() ^ (unsigned)time(NULL));
		for (i = 0; i < n; i++)
			(*buf)[*len + i] = (uint8_t)(rand() >> 7);
		*len += n;
		return;
	}
	n = strlen(arg);
	if (n % 2 != 0) {
		fprintf(stderr, "pqtool raw: odd number of hex digits in %s\n", arg);
		exit(2);
	}
	*buf = realloc(*buf, *len + n / 2);
	if (*buf == NULL)
		exit(2);
	for (i = 0; i < n; i += 2) {
		int hi = hexval(arg[i]), lo = hexval(arg[i + 1]);

		if (hi < 0 || lo < 0) {
			fprintf(stderr, "pqtool raw: bad hex in %s\n", arg);
			exit(2);
		}
		(*buf)[*len + i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*len += n / 2;
}

/*
 * Describe the reply: each complete message as one line, then CLOSED (the peer closed), OPEN (the reply
 * was complete and the connection still open) or TIMEOUT (nothing conclusive within 5 s).
 */
static int describe_reply(const uint8_t *r, size_t n, bool closed, bool complete)
{
	size_t pos = 0;
	int rc = 0;

	while (pos + 5 <= n) {
		uint8_t type = r[pos];
		uint32_t len = (uint32_t)r[pos + 1] << 24 | (uint32_t)r[pos + 2] << 16 |
			       (uint32_t)r[pos + 3] << 8 | r[pos + 4];

		if (len < 4 || pos + 1 + len > n)
			break;
		if (type == 'E' || type == 'N') {
			const char *state = "-----", *msg = "";
			size_t p = pos + 5, end = pos + 1 + len;

			while (p < end && r[p] != 0) {
				char code = (char)r[p++];
				const char *val = (const char *)r + p;
				size_t vl = strnlen(val, end - p);

				if (code == 'C')
					state = val;
				else if (code == 'M')
					msg = val;
				p += vl + 1;
			}
			printf("%s %s %s\n", type == 'E' ? "ERROR" : "NOTICE", state, msg);
		} else if (type == 'D' && len >= 10) {
			/* DataRow: the first column as text (NULL shown as such) */
			int32_t cl = (int32_t)((uint32_t)r[pos + 7] << 24 | (uint32_t)r[pos + 8] << 16 |
					       (uint32_t)r[pos + 9] << 8 | r[pos + 10]);
			if (cl < 0)
				printf("ROW NULL\n");
			else if ((size_t)cl <= len - 10)
				printf("ROW %.*s\n", (int)cl, (const char *)r + pos + 11);
			else
				printf("MSG D %u\n", (unsigned)len);
		} else if (type == 'R' && len >= 8) {
			printf("AUTH %u\n", (unsigned)(r[pos + 5] << 24 | r[pos + 6] << 16 | r[pos + 7] << 8 |
						       r[pos + 8]));
		} else {
			printf("MSG %c %u\n", isprint(type) ? type : '?', (unsigned)len);
		}
		pos += 1 + len;
	}
	if (pos < n) {
		/* a one-byte answer to SSLRequest/GSSENCRequest, or a partial message */
		if (n - pos == 1)
			printf("BYTE %c\n", isprint(r[pos]) ? r[pos] : '?');
		else
			printf("PARTIAL %zu\n", n - pos);
	}
	printf("%s\n", closed ? "CLOSED" : complete ? "OPEN" : "TIMEOUT");
	return rc;
}

/* True once the reply needs no more waiting: an error, ReadyForQuery, or a request for a password. */
static int want_ready = 1;	/* ReadyForQuery messages that end a reply: 1 + the Queries and Syncs sent */

static bool reply_complete(const uint8_t *r, size_t n, bool one_byte_answer)
{
	size_t pos = 0;
	int ready = 0;

	if (one_byte_answer && n >= 1)
		return true;
	while (pos + 5 <= n) {
		uint32_t len = (uint32_t)r[pos + 1] << 24 | (uint32_t)r[pos + 2] << 16 |
			       (uint32_t)r[pos + 3] << 8 | r[pos + 4];

		if (len < 4 || pos + 1 + len > n)
			return false;
		if (r[pos] == 'E' || (r[pos] == 'Z' && ++ready >= want_ready))
			return true;
		if (r[pos] == 'R' && len >= 8 && (r[pos + 5] | r[pos + 6] | r[pos + 7] | r[pos + 8]) != 0)
			return true;
		pos += 1 + len;
	}
	return false;
}

/* A TCP connection to HOST PORT; -2 when the name does not resolve, -1 (said as ERROR) when it refuses. */
static int connect_tcp(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int fd;

	if (getaddrinfo(host, port, &hints, &ai) != 0) {
		fprintf(stderr, "pqtool: cannot resolve %s\n", host);
		return -2;
	}
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		printf("ERROR ----- connect: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int cmd_raw(int argc, char **argv)
{
	uint8_t *out = NULL, reply[65536];
	size_t out_len = 0, got = 0, sent = 0;
	double deadline;
	bool closed = false, one_byte_answer;
	int fd, i;

	if (argc < 3)
		usage();
	for (i = 2; i < argc; i++)
		add_data(argv[i], &out, &out_len);
	fd = connect_tcp(argv[0], argv[1]);
	if (fd < 0)
		return -fd;
	/* a peer that rejects early may close before everything is written: that is fine */
	while (sent < out_len) {
		ssize_t w = send(fd, out + sent, out_len - sent, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		sent += (size_t)w;
	}
	/* SSLRequest and GSSENCRequest are answered with a single byte */
	/* after a v3 StartupMessage, each Query and Sync sent adds a ReadyForQuery to wait for */
	if (out_len >= 8 && out[4] == 0 && out[5] == 3 && out[6] == 0 && out[7] == 0) {
		size_t pos = (size_t)out[0] << 24 | (size_t)out[1] << 16 | (size_t)out[2] << 8 | out[3];

		while (pos + 5 <= out_len) {
			size_t len = (size_t)out[pos + 1] << 24 | (size_t)out[pos + 2] << 16 |
				     (size_t)out[pos + 3] << 8 | out[pos + 4];

			if (out[pos] == 'Q' || out[pos] == 'S')
				want_ready++;
			if (len < 4)
				break;
			pos += 1 + len;
		}
	}
	one_byte_answer = out_len == 8 && out[4] == 0x04 && out[5] == 0xd2 && out[6] == 0x16 &&
			  (out[7] == 0x2f || out[7] == 0x30);
	deadline = now_sec() + 5;
	while (got < sizeof(reply) && !reply_complete(reply, got, one_byte_answer)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int left = (int)((deadline - now_sec()) * 1000);
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			break;
		r = recv(fd, reply + got, sizeof(reply) - got, 0);
		if (r <= 0) {
			closed = true;
			break;
		}
		got += (size_t)r;
	}
	if (!closed && reply_complete(reply, got, one_byte_answer)) {
		/* complete; did the peer also close? give it a moment */
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 200) > 0 && recv(fd, reply + got, sizeof(reply) - got, MSG_PEEK) == 0)
			closed = true;
	}
	close(fd);
	free(out);
	return describe_reply(reply, got, closed, reply_complete(reply, got, one_byte_answer));
}

/* One whole message from a blocking socket into buf (type, then body); false on EOF or a huge message. */
static bool read_msg(int fd, uint8_t *type, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t head[5];
	size_t got = 0, want;

	while (got < 5) {
		ssize_t r = recv(fd, head + got, 5 - got, 0);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	want = ((size_t)head[1] << 24 | (size_t)head[2] << 16 | (size_t)head[3] << 8 | head[4]) - 4;
	if (want > cap)
		return false;
	for (got = 0; got < want;) {
		ssize_t r = recv(fd, buf + got, want - got, 0);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	*type = head[0];
	*len = want;
	return true;
}

/* The next authentication request's code (its data in buf/len), or -1 after printing an error or EOF. */
static long next_auth(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t type;

	while (read_msg(fd, &type, buf, cap, len)) {
		if (type == 'E') {
			const char *state = "-----", *msg = "";
			for (size_t p = 0; p < *len && buf[p];) {
				char code = (char)buf[p++];
				const char *val = (const char *)buf + p;
				if (code == 'C')
					state = val;
				else if (code == 'M')
					msg = val;
				p += strnlen(val, *len - p) + 1;
			}
			printf("ERROR %s %s\n", state, msg);
			return -1;
		}
		if (type == 'R' && *len >= 4)
			return (long)((uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3]);
	}
	printf("CLOSED\n");
	return -1;
}

static int cmd_sasl_first(int argc, char **argv)
{
	static const char nonce[] = "n,,n=,r=pqtoolpqtoolpqtoolpqtool";
	uint8_t out[1024], buf[8192];
	size_t n = 0, len;
	long code;
	int fd;
	struct timeval tv = { 10, 0 };

	if (argc != 4)
		usage();
	/* StartupMessage: protocol 3.0, user, database */
	n = 8;
	out[4] = 0, out[5] = 3, out[6] = 0, out[7] = 0;
	n += (size_t)sprintf((char *)out + n, "user") + 1;
	n += (size_t)sprintf((char *)out + n, "%.200s", argv[2]) + 1;
	n += (size_t)sprintf((char *)out + n, "database") + 1;
	n += (size_t)sprintf((char *)out + n, "%.200s", argv[3]) + 1;
	out[n++] = 0;
	out[0] = 0, out[1] = 0, out[2] = (uint8_t)(n >> 8), out[3] = (uint8_t)n;
	fd = connect_tcp(argv[0], argv[1]);
	if (fd < 0)
		return -fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, out, n, MSG_NOSIGNAL) != (ssize_t)n || (code = next_auth(fd, buf, sizeof(buf), &len)) < 0) {
		close(fd);
		return 1;
	}
	if (code != 10) {
		printf("AUTH %ld\n", code);
		close(fd);
		return 1;
	}
	/* SASLInitialResponse: mechanism, length, client-first-message */
	n = 5;
	out[0] = 'p';
	n += (size_t)sprintf((char *)out + n, "SCRAM-SHA-256") + 1;
	out[n++] = 0, out[n++] = 0, out[n++] = 0, out[n++] = (uint8_t)(sizeof(nonce) - 1);
	memcpy(out + n, nonce, sizeof(nonce) - 1);
	n += sizeof(nonce) - 1;
	out[1] = 0, out[2] = 0, out[3] = (uint8_t)((n - 1) >> 8), out[4] = (uint8_t)(n - 1);
	if (send(fd, out, n, MSG_NOSIGNAL) != (ssize_t)n || (code = next_auth(fd, buf, sizeof(buf) - 1, &len)) < 0) {
		close(fd);
		return 1;
	}
	close(fd);
	if (code != 11) {
		printf("AUTH %ld\n", code);
		return 1;
	}
	buf[len] = 0;
	{
		/* r=<nonce>,s=<salt>,i=<iterations> */
		const char *msg = (const char *)buf + 4, *s = strstr(msg, ",s="), *i = strstr(msg, ",i=");
		if (strncmp(msg, "r=", 2) != 0 || !s || !i || i < s) {
			printf("BAD %s\n", msg);
			return 1;
		}
		printf("SASL r=%d s=%d i=%s\n", (int)(s - msg - 2), (int)(i - s - 3), i + 3);
	}
	return 0;
}

static int idle_connect(const char *target, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	int fd;

	if (target[0] == '/') {
		struct sockaddr_un un = { .sun_family = AF_UNIX };

		snprintf(un.sun_path, sizeof(un.sun_path), "%s", target);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
			close(fd);
			fd = -1;
		}
		return fd;
	}
	if (getaddrinfo(target, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int cmd_idle(int argc, char **argv)
{
	int n, opened = 0, closed = 0, *fds;
	double secs, end;

	if (argc < 4)
		usage();
	n = atoi(argv[2]);
	secs = atof(argv[3]);
	fds = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
	for (int i = 0; i < n; i++) {
		fds[i] = idle_connect(argv[0], argv[1]);
		if (fds[i] >= 0)
			opened++;
	}
	printf("opened %d\n", opened);
	end = now_sec() + secs;
	while (now_sec() < end)
		usleep(100000);
	for (int i = 0; i < n; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
		char b[256];

		if (fds[i] < 0)
			continue;
		if (poll(&pfd, 1, 0) > 0 && (recv(fds[i], b, sizeof(b), MSG_DONTWAIT) >= 0 || errno != EAGAIN))
			closed++;
		close(fds[i]);
	}
	free(fds);
	printf("closed %d\n", closed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "connect") == 0)
		return cmd_connect(argc - 2, argv + 2);
	if (strcmp(argv[1], "query") == 0)
		return cmd_query(argc - 2, argv + 2);
	if (strcmp(argv[1], "columns") == 0)
		return cmd_columns(argc - 2, argv + 2);
	if (strcmp(argv[1], "backend-pid") == 0)
		return cmd_backend_pid(argc - 2, argv + 2);
	if (strcmp(argv[1], "cancel") == 0)
		return cmd_cancel(argc - 2, argv + 2);
	if (strcmp(argv[1], "params") == 0)
		return cmd_params(argc - 2, argv + 2);
	if (strcmp(argv[1], "hold") == 0)
		return cmd_hold(argc - 2, argv + 2);
	if (strcmp(argv[1], "sasl-first") == 0)
		return cmd_sasl_first(argc - 2, argv + 2);
	if (strcmp(argv[1], "raw") == 0)
		return cmd_raw(argc - 2, argv + 2);
	if (strcmp(argv[1], "idle") == 0)
		return cmd_idle(argc - 2, argv + 2);
	usage();
	return 2;
}
