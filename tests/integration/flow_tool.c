/* flow_tool: clients that push the pooler's flow control (floods, full buffers, pipelines, stalled backends). */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/*
 * flow_tool waitfull CONNSTR KIND SIZE
 *     A holds the pool's only server in a transaction; B sends a SIZE-byte request of KIND (query: one
 *     Query; parse: one Parse/Bind/Execute/Sync; pipeline: Queries of "select 1" adding up to SIZE);
 *     A commits. -> "served S" (seconds from A's COMMIT to B's complete answer) | "stuck S"
 * flow_tool noread CONNSTR KIND SECONDS HOLD
 *     logs in, then sends KIND messages (sync | close | query | extended) for SECONDS without reading a
 *     byte -> "flooded BYTES"; keeps the connection HOLD seconds, then exits
 * flow_tool sslflood HOST PORT SECONDS
 *     SSLRequests without reading, before any startup packet -> "closed BYTES" | "open BYTES"
 * flow_tool sslagain HOST PORT
 *     an SSLRequest, its answer read, then a second one -> "first N", "second <error message>"
 * flow_tool pipeline CONNSTR CLIENTS QUERIES SYNCS
 *     CLIENTS processes, each sends QUERIES queries in libpq pipeline mode with SYNCS Syncs spread over
 *     them (the last one at the end) and checks every answer -> "ok CLIENTS" | "FAIL ..."
 * flow_tool stopbig CONNSTR DIR SIZE
 *     a SIZE-byte message up (query text) or down (result) inside a transaction, with the backend stopped
 *     (SIGSTOP) for a second in the middle of it -> "ok S" | "FAIL ..."
 * Every wait is bounded (60 s unless said); exit status 0, 1 on a failed check, 2 on usage errors.
 */

#define LIMIT_S 60.0

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, const char *detail)
{
	printf("FAIL %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	fflush(stdout);
	exit(1);
}

static PGconn *login(const char *connstr)
{
	PGconn *pg = PQconnectdb(connstr);

	if (PQstatus(pg) != CONNECTION_OK)
		fail("login", PQerrorMessage(pg));
	return pg;
}

static void exec_ok(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail(sql, PQerrorMessage(pg));
	PQclear(r);
}

/* ---- raw protocol on a logged-in socket ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			fail("out of memory", NULL);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void put32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };
	put(b, x, 4);
}

static void put16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = { v >> 8, v };
	put(b, x, 2);
}

/* A message with a body of len bytes from data (the type byte, length, body). */
static void put_msg(struct buf *b, char type, const void *data, size_t len)
{
	put(b, &type, 1);
	put32(b, (uint32_t)len + 4);
	put(b, data, len);
}

static void put_query(struct buf *b, const char *sql, size_t len)
{
	put(b, "Q", 1);
	put32(b, (uint32_t)len + 5);
	put(b, sql, len);
	put(b, "", 1);
}

/* Parse (unnamed, text), Bind, Execute, Sync. */
static void put_extended(struct buf *b, const char *sql, size_t len)
{
	struct buf body = { 0 };

	put(&body, "", 1);
	put(&body, sql, len);
	put(&body, "", 1);
	put16(&body, 0);
	put_msg(b, 'P', body.p, body.len);
	put_msg(b, 'B', "\0\0\0\0\0\0\0", 8);	/* portal, statement, 0 formats, 0 params, 0 result formats */
	put_msg(b, 'E', "\0\0\0\0\0", 5);	/* portal "", no row limit */
	put_msg(b, 'S', NULL, 0);
	free(body.p);
}

/* Write all of it by the deadline (the socket is non-blocking). False on timeout or error. */
static bool write_all(int fd, const uint8_t *p, size_t len, double deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return false;
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		int ms = (int)((deadline - now_s()) * 1000);
		if (ms <= 0)
			return false;
		poll(&pf, 1, ms > 200 ? 200 : ms);
	}
	return true;
}

/* Write until it is all out or the deadline passes; bytes written. */
static size_t write_some(int fd, const uint8_t *p, size_t len, double deadline)
{
	size_t done = 0;

	while (done < len && now_s() < deadline) {
		ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			break;
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		poll(&pf, 1, 50);
	}
	return done;
}

/* Some bytes by the deadline (the socket is non-blocking): their count, 0 at EOF, -1 on error or timeout. */
static ssize_t recv_by(int fd, void *buf, size_t len, double deadline)
{
	for (;;) {
		ssize_t n = recv(fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int ms = (int)((deadline - now_s()) * 1000);
		if (ms <= 0)
			return -1;
		poll(&pf, 1, ms > 200 ? 200 : ms);
	}
}

struct reply {
	int ready;		/* ReadyForQuery messages seen */
	int errors;
	long long data_bytes;	/* DataRow bytes */
	char first_value[64];	/* the first column of the first DataRow */
	char error[256];
};

/*
 * Read messages until want_ready ReadyForQuery have come, by the deadline. on_bytes (if set) is
 * called with the running byte count after each read. False on timeout, EOF or error.
 */
static bool read_replies(int fd, int want_ready, struct reply *r, double deadline,
			 void (*on_bytes)(long long total, void *arg), void *arg)
{
	static uint8_t in[1 << 16];
	static size_t have;
	long long total = 0;

	while (r->ready < want_ready) {
		/* whole messages in the buffer */
		size_t off = 0;
		while (have - off >= 5) {
			uint32_t len = ((uint32_t)in[off + 1] << 24) | ((uint32_t)in[off + 2] << 16) |
				       ((uint32_t)in[off + 3] << 8) | in[off + 4];
			char type = (char)in[off];
			size_t whole = (size_t)len + 1;
			size_t body_have = have - off - 5;

			if (type == 'D') {
				/* DataRow bodies can be larger than the buffer: count them as they stream */
				if (body_have < 6)
					break;
				if (!r->first_value[0] && r->data_bytes == 0) {
					int32_t vlen = (int32_t)(((uint32_t)in[off + 7] << 24) | ((uint32_t)in[off + 8] << 16) |
								 ((uint32_t)in[off + 9] << 8) | in[off + 10]);
					size_t n = vlen > 0 ? (size_t)vlen : 0;
					if (n > sizeof(r->first_value) - 1)
						n = sizeof(r->first_value) - 1;
					if (body_have - 6 < n)
						break;
					memcpy(r->first_value, in + off + 11, n);
					r->first_value[n] = 0;
				}
				r->data_bytes += len - 4;
				if (whole > have - off) {
					/* skip the rest of this row as it arrives */
					size_t rest = whole - (have - off);
					have = off;
					while (rest > 0) {
						ssize_t n = recv_by(fd, in, rest < sizeof(in) ? rest : sizeof(in), deadline);
						if (n <= 0)
							return false;
						rest -= (size_t)n;
						total += n;
						if (on_bytes)
							on_bytes(total, arg);
					}
					off = have;
					break;
				}
				off += whole;
				continue;
			}
			if (whole > have - off) {
				if (whole > sizeof(in))
					return false;	/* no other message of these tests is that large */
				break;
			}
			if (type == 'Z')
				r->ready++;
			if (type == 'E') {
				const uint8_t *f = in + off + 5, *end = in + off + whole;
				r->errors++;
				while (f < end && *f) {
					if (*f == 'M') {
						snprintf(r->error, sizeof(r->error), "%s", (const char *)f + 1);
						break;
					}
					f += strlen((const char *)f) + 1;
				}
			}
			off += whole;
			if (r->ready >= want_ready)
				break;
		}
		memmove(in, in + off, have - off);
		have -= off;
		if (r->ready >= want_ready)
			break;
		ssize_t n = recv_by(fd, in + have, sizeof(in) - have, deadline);
		if (n <= 0)
			return false;
		have += (size_t)n;
		total += n;
		if (on_bytes)
			on_bytes(total, arg);
	}
	return true;
}

static int raw_fd(PGconn *pg)
{
	int fd = PQsocket(pg);

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* "SELECT length('xxx…')" of about size bytes. */
static char *big_query(size_t size, size_t *len)
{
	const char *head = "SELECT length('", *tail = "')";
	size_t fill = size > 32 ? size - 32 : 1;
	char *q = malloc(fill + 64);

	if (!q)
		fail("out of memory", NULL);
	*len = (size_t)sprintf(q, "%s", head);
	memset(q + *len, 'x', fill);
	*len += fill;
	*len += (size_t)sprintf(q + *len, "%s", tail);
	return q;
}

/* ---- waitfull ---- */

static int cmd_waitfull(const char *connstr, const char *kind, size_t size)
{
	PGconn *a = login(connstr), *b = login(connstr);
	struct buf req = { 0 };
	struct reply r = { 0 };
	int want = 1, fd;
	double committed;
	size_t qlen;
	char *q = big_query(size, &qlen);

	exec_ok(a, "BEGIN");
	exec_ok(a, "SELECT 1");
	if (strcmp(kind, "query") == 0) {
		put_query(&req, q, qlen);
	} else if (strcmp(kind, "parse") == 0) {
		put_extended(&req, q, qlen);
	} else if (strcmp(kind, "pipeline") == 0) {
		static const char one[] = "select 1";
		want = 0;
		while (req.len < size) {
			put_query(&req, one, sizeof(one) - 1);
			want++;
		}
	} else {
		fprintf(stderr, "flow_tool: unknown kind %s\n", kind);
		return 2;
	}
	fd = raw_fd(b);
	/* B sends what the pooler takes while it waits for the server A holds (a large request fills the
	 * buffers and the rest waits), A commits, then B sends the rest */
	size_t done = write_some(fd, req.p, req.len, now_s() + 0.3);
	usleep(300 * 1000);
	exec_ok(a, "COMMIT");
	committed = now_s();
	if (!write_all(fd, req.p + done, req.len - done, committed + 20))
		fail("B could not send the rest of its request", NULL);
	if (!read_replies(fd, want, &r, committed + 20, NULL, NULL)) {
		printf("stuck %.3f\n", now_s() - committed);
		return 1;
	}
	if (r.errors)
		fail("B got an error", r.error);
	printf("served %.3f\n", now_s() - committed);
	PQfinish(a);
	PQfinish(b);
	free(q);
	free(req.p);
	return 0;
}

/* ---- noread ---- */

static int cmd_noread(const char *connstr, const char *kind, double seconds, double hold)
{
	PGconn *pg = login(connstr);
	struct buf chunk = { 0 };
	long long sent = 0;
	double end;
	int fd;

	if (strcmp(kind, "sync") == 0) {
		for (int i = 0; i < 1024; i++)
			put_msg(&chunk, 'S', NULL, 0);
	} else if (strcmp(kind, "close") == 0) {
		for (int i = 0; i < 512; i++)
			put_msg(&chunk, 'C', "Sgone\0", 6);
	} else if (strcmp(kind, "query") == 0) {
		static const char q[] = "SELECT repeat('x', 8000)";
		for (int i = 0; i < 16; i++)
			put_query(&chunk, q, sizeof(q) - 1);
	} else if (strcmp(kind, "extended") == 0) {
		static const char q[] = "SELECT repeat('x', 8000)";
		for (int i = 0; i < 16; i++)
			put_extended(&chunk, q, sizeof(q) - 1);
	} else {
		fprintf(stderr, "flow_tool: unknown kind %s\n", kind);
		return 2;
	}
	fd = raw_fd(pg);
	end = now_s() + seconds;
	while (now_s() < end) {
		ssize_t n = send(fd, chunk.p, chunk.len, MSG_NOSIGNAL);
		if (n > 0) {
			sent += n;
			/* whole messages only: finish a partly sent chunk before the next round */
			if ((size_t)n < chunk.len && !write_all(fd, chunk.p + n, chunk.len - (size_t)n, end))
				break;
			sent += (long long)chunk.len - n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			break;
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		poll(&pf, 1, 100);
	}
	printf("flooded %lld\n", sent);
	fflush(stdout);
	usleep((useconds_t)(hold * 1e6));
	return 0;
}

/* ---- sslflood ---- */

static int cmd_sslflood(const char *host, int port, double seconds)
{
	static const uint8_t req[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	uint8_t chunk[8 * 512];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	long long sent = 0;
	double end;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	for (size_t i = 0; i < sizeof(chunk); i += 8)
		memcpy(chunk + i, req, 8);
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail("connect", strerror(errno));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	end = now_s() + seconds;
	while (now_s() < end) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
		if (n > 0) {
			sent += n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			break;
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		poll(&pf, 1, 100);
	}
	/* what the pooler answered before it closed: 'N', then the error that says why */
	char reply[4096], *why = NULL;
	size_t got = 0;
	bool closed = false;
	double until = now_s() + 5;
	while (got < sizeof(reply) - 1 && now_s() < until) {
		ssize_t n = recv(fd, reply + got, sizeof(reply) - 1 - got, 0);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			closed = true;
			break;
		}
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		poll(&pf, 1, 100);
	}
	for (size_t i = 0; i + 1 < got; i++)
		if (reply[i] == 'M' && i > 0 && reply[i - 1] == 0) {
			why = reply + i + 1;
			break;
		}
	reply[got] = 0;
	printf("%s %lld%s%s\n", closed ? "closed" : "open", sent, why ? " " : "", why ? why : "");
	return 0;
}

/* ---- sslagain: a second SSLRequest after the first one's answer ---- */

static int cmd_sslagain(const char *host, int port)
{
	static const uint8_t req[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char reply[1024];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, host, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail("connect", strerror(errno));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (!write_all(fd, req, sizeof(req), now_s() + 10) || recv_by(fd, reply, 1, now_s() + 10) != 1)
		fail("no answer to the first SSLRequest", NULL);
	printf("first %c\n", reply[0]);
	if (!write_all(fd, req, sizeof(req), now_s() + 10))
		fail("the second SSLRequest could not be sent", NULL);
	while (got < sizeof(reply) - 1 && (n = recv_by(fd, reply + got, sizeof(reply) - 1 - got, now_s() + 10)) > 0)
		got += (size_t)n;
	reply[got] = 0;
	for (size_t i = 1; i < got; i++)
		if (reply[i] == 'M' && reply[i - 1] == 0) {
			printf("second %s\n", reply + i + 1);
			return 0;
		}
	printf("second %s\n", got ? "answered without an error" : "no answer");
	return 0;
}

/* ---- pipeline ---- */

static bool pipeline_client(const char *connstr, int queries, int syncs, char *err, size_t errlen)
{
	PGconn *pg = PQconnectdb(connstr);
	int every = syncs > 0 ? (queries + syncs - 1) / syncs : queries;
	int sent = 0, got = 0, synced = 0, want_syncs = 0;
	double deadline = now_s() + LIMIT_S;

	if (PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, errlen, "login: %s", PQerrorMessage(pg));
		return false;
	}
	if (!PQenterPipelineMode(pg) || PQsetnonblocking(pg, 1) != 0) {
		snprintf(err, errlen, "pipeline mode: %s", PQerrorMessage(pg));
		return false;
	}
	while ((got < queries || synced < want_syncs) && now_s() < deadline) {
		if (sent < queries) {
			char v[16];
			const char *vals[1] = { v };
			snprintf(v, sizeof(v), "%d", sent);
			if (!PQsendQueryParams(pg, "SELECT $1::int", 1, NULL, vals, NULL, NULL, 0)) {
				snprintf(err, errlen, "send: %s", PQerrorMessage(pg));
				return false;
			}
			sent++;
			if (sent % every == 0 || sent == queries) {
				if (!PQpipelineSync(pg)) {
					snprintf(err, errlen, "sync: %s", PQerrorMessage(pg));
					return false;
				}
				want_syncs++;
			}
		}
		int fl = PQflush(pg);
		if (fl < 0) {
			snprintf(err, errlen, "flush: %s", PQerrorMessage(pg));
			return false;
		}
		if (sent < queries && fl == 0)
			continue;
		/* read what has come (also while our output waits, so neither side can fill up) */
		struct pollfd pf = { .fd = PQsocket(pg), .events = POLLIN | (fl ? POLLOUT : 0) };
		poll(&pf, 1, 200);
		if (!PQconsumeInput(pg)) {
			snprintf(err, errlen, "read: %s", PQerrorMessage(pg));
			return false;
		}
		int nulls = 0;
		while (!PQisBusy(pg) && nulls < 2) {
			PGresult *r = PQgetResult(pg);
			if (!r) {
				nulls++;	/* the end of one query's results; a second one: nothing more yet */
				continue;
			}
			nulls = 0;
			switch (PQresultStatus(r)) {
			case PGRES_TUPLES_OK:
				if (PQntuples(r) != 1 || atoi(PQgetvalue(r, 0, 0)) != got) {
					snprintf(err, errlen, "query %d answered %s", got,
						 PQntuples(r) ? PQgetvalue(r, 0, 0) : "nothing");
					return false;
				}
				got++;
				break;
			case PGRES_PIPELINE_SYNC:
				synced++;
				break;
			default:
				snprintf(err, errlen, "query %d: %s %s", got, PQresStatus(PQresultStatus(r)),
					 PQresultErrorMessage(r));
				return false;
			}
			PQclear(r);
		}
	}
	if (got < queries || synced < want_syncs) {
		snprintf(err, errlen, "timed out: %d of %d answers, %d of %d syncs", got, queries, synced, want_syncs);
		return false;
	}
	PQfinish(pg);
	return true;
}

static int cmd_pipeline(const char *connstr, int clients, int queries, int syncs)
{
	int failed = 0;

	fflush(stdout);
	for (int i = 0; i < clients; i++) {
		if (fork() == 0) {
			char err[512];
			alarm((unsigned)LIMIT_S + 10);
			if (!pipeline_client(connstr, queries, syncs, err, sizeof(err))) {
				printf("FAIL client %d: %s\n", i, err);
				fflush(stdout);
				_exit(1);
			}
			_exit(0);
		}
	}
	for (int i = 0; i < clients; i++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	if (failed) {
		printf("FAIL %d of %d clients\n", failed, clients);
		return 1;
	}
	printf("ok %d\n", clients);
	return 0;
}

/* ---- stopbig ---- */

struct stopper {
	pid_t backend;
	long long at;		/* stop once this many bytes went (up) or came (down) */
	bool stopped;
	double stopped_at;
};

/* The backend continues a second after it was stopped (from a child, so our own waits stay simple). */
static void continue_later(struct stopper *st)
{
	if (fork() == 0) {
		usleep(1000 * 1000);
		kill(st->backend, SIGCONT);
		_exit(0);
	}
}

static void maybe_stop(long long total, void *arg)
{
	struct stopper *st = arg;

	if (!st->stopped && total >= st->at) {
		if (kill(st->backend, SIGSTOP) < 0)
			fail("SIGSTOP the backend", strerror(errno));
		st->stopped = true;
		st->stopped_at = now_s();
		continue_later(st);
	}
}

static int cmd_stopbig(const char *connstr, const char *dir, size_t size)
{
	PGconn *pg = login(connstr);
	struct buf req = { 0 };
	struct reply r = { 0 };
	struct stopper st = { 0 };
	double start, deadline;
	int fd;

	exec_ok(pg, "BEGIN");
	PGresult *res = PQexec(pg, "SELECT pg_backend_pid()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail("pg_backend_pid", PQerrorMessage(pg));
	st.backend = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	st.at = (long long)size / 2;
	fd = raw_fd(pg);
	start = now_s();
	deadline = start + LIMIT_S;
	if (strcmp(dir, "up") == 0) {
		size_t qlen;
		char *q = big_query(size, &qlen);
		put_query(&req, q, qlen);
		free(q);
		/* the first half, then the stop, then the rest while the backend is stopped */
		if (!write_all(fd, req.p, (size_t)st.at, deadline))
			fail("sending the first half", NULL);
		maybe_stop(st.at, &st);
		if (!write_all(fd, req.p + st.at, req.len - (size_t)st.at, deadline))
			fail("sending the second half", NULL);
		if (!read_replies(fd, 1, &r, deadline, NULL, NULL))
			fail("no answer to the large query", NULL);
		if (r.errors)
			fail("large query", r.error);
		if ((size_t)atoll(r.first_value) != qlen - strlen("SELECT length('')"))
			fail("the server counted another length", r.first_value);
	} else if (strcmp(dir, "down") == 0) {
		char q[128];
		snprintf(q, sizeof(q), "SELECT repeat('x', %zu)", size);
		put_query(&req, q, strlen(q));
		if (!write_all(fd, req.p, req.len, deadline))
			fail("sending the query", NULL);
		st.at = (long long)size / 2;
		/* the stop is armed from the byte count; the backend goes on a second later */
		if (!read_replies(fd, 1, &r, deadline, maybe_stop, &st))
			fail("no complete answer to the large result", NULL);
		if (!st.stopped)
			fail("the result ended before the backend could be stopped", NULL);
		if (r.errors)
			fail("large result", r.error);
		if (r.data_bytes < (long long)size)
			fail("the result came short", NULL);
	} else {
		fprintf(stderr, "flow_tool: direction is up or down\n");
		return 2;
	}
	if (!st.stopped)
		fail("the backend was never stopped", NULL);
	free(req.p);
	req = (struct buf){ 0 };
	put_query(&req, "COMMIT", 6);
	memset(&r, 0, sizeof(r));
	if (!write_all(fd, req.p, req.len, deadline) || !read_replies(fd, 1, &r, deadline, NULL, NULL) || r.errors)
		fail("COMMIT", r.error);
	printf("ok %.3f\n", now_s() - start);
	free(req.p);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && strcmp(argv[1], "waitfull") == 0)
		return cmd_waitfull(argv[2], argv[3], (size_t)atoll(argv[4]));
	if (argc == 6 && strcmp(argv[1], "noread") == 0)
		return cmd_noread(argv[2], argv[3], atof(argv[4]), atof(argv[5]));
	if (argc == 5 && strcmp(argv[1], "sslflood") == 0)
		return cmd_sslflood(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc == 4 && strcmp(argv[1], "sslagain") == 0)
		return cmd_sslagain(argv[2], atoi(argv[3]));
	if (argc == 6 && strcmp(argv[1], "pipeline") == 0)
		return cmd_pipeline(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc == 5 && strcmp(argv[1], "stopbig") == 0)
		return cmd_stopbig(argv[2], argv[3], (size_t)atoll(argv[4]));
	fprintf(stderr, "usage: see the comment at the top of flow_tool.c\n");
	return 2;
}
