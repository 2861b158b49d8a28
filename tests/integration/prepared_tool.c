/* prepared_tool: libpq clients that exercise named prepared statements through the pooler. */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Commands (exit status: 0 all checks held, 1 a wrong result or an unexpected error, 2 usage/connection):
 *   mix CONNSTR CLIENT ITERATIONS
 *       PQprepare/PQexecPrepared/PQdescribePrepared with names that other clients reuse for other
 *       texts ("q", "S_1", "typ"), texts that other clients use under other names, transactions that
 *       commit and roll back inserts into prep_mix(client, v). Prints one summary line.
 *   rotate CONNSTR PREFIX NSTMT ROUNDS OFFSET
 *       prepares PREFIXs<i> = "SELECT $1::int + <i> AS r<i>" for i < NSTMT, runs them in rotation
 *       ROUNDS times; after each one counts the server's MB_ statements through the pooler.
 *       Prints "... mb_max N mb_min N backends N".
 *   flood CONNSTR PREFIX N SQL
 *       logs in, sends N Parses of SQL named PREFIX<i> and one Sync while reading the answers, then Binds
 *       PREFIX0. Prints "parsed N errors N first SQLSTATE:message seconds S" and "bind0 <transcript>".
 *   script CONNSTR STEP...
 *       logs in with libpq, then speaks the protocol itself. Steps (words are separate arguments):
 *         P NAME SQL TYPES   Parse (TYPES "-" or OIDs "23,25"; SQL "@pad:N:text" appends an N-byte comment)
 *         B STMT VALUES      Bind unnamed portal (VALUES "-" or "1,abc")    BP PORTAL STMT VALUES
 *         E                  Execute unnamed portal, all rows               EP PORTAL MAXROWS
 *         D STMT  DP PORTAL  Describe     C STMT  CP PORTAL  Close     S Sync     H Flush
 *         Q SQL              simple Query
 *         W                  send what is queued, wait for every ReadyForQuery due
 *         R N                send what is queued, read N messages
 *         SLEEP MS           MARK TEXT (print TEXT)
 *         QUIT               send what is queued and drop the connection without reading or Terminate
 *       and prints each message that comes back on a line: 1 2 3 n s I (ParseComplete, BindComplete,
 *       CloseComplete, NoData, PortalSuspended, EmptyQuery), T:col,col  t:oid,oid  D:val,val
 *       C:tag  E:SQLSTATE:message  Z:status, and S:name=value (ParameterStatus) with $PREPARED_TOOL_STATUS
 *       set; TIMEOUT (no answer within $PREPARED_TOOL_TIMEOUT seconds, default 20) or CLOSED end it with
 *       status 2.
 */

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: prepared_tool mix CONNSTR CLIENT ITERATIONS\n"
			"       prepared_tool rotate CONNSTR PREFIX NSTMT ROUNDS OFFSET\n"
			"       prepared_tool flood CONNSTR PREFIX N SQL\n"
			"       prepared_tool script CONNSTR STEP...\n");
	exit(2);
}

static PGconn *connect_or_die(const char *connstr)
{
	PGconn *conn = PQconnectdb(connstr);

	if (PQstatus(conn) != CONNECTION_OK) {
		printf("ERROR connect: %s\n", PQerrorMessage(conn));
		exit(2);
	}
	return conn;
}

static int failures;

static void mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mismatch(const char *fmt, ...)
{
	va_list ap;

	failures++;
	if (failures > 20)
		return;
	printf("MISMATCH ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static bool result_ok(PGresult *res, ExecStatusType want, const char *what)
{
	if (PQresultStatus(res) == want)
		return true;
	mismatch("%s: %s %s %s", what, PQresStatus(PQresultStatus(res)),
		 PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "",
		 PQresultErrorMessage(res));
	return false;
}

static void exec_simple(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);

	result_ok(res, PGRES_COMMAND_OK, sql);
	PQclear(res);
}

static long pids[64];
static int npids;

static void note_backend(PGconn *conn)
{
	PGresult *res = PQexec(conn, "SELECT pg_backend_pid()");

	if (result_ok(res, PGRES_TUPLES_OK, "pg_backend_pid")) {
		long pid = atol(PQgetvalue(res, 0, 0));
		int i;

		for (i = 0; i < npids && pids[i] != pid; i++)
			;
		if (i == npids && npids < 64)
			pids[npids++] = pid;
	}
	PQclear(res);
}

/* ---------------------------------------------------------------- mix */

enum kind { K_ADD1, K_CATX, K_OWN, K_DOUBLE, K_MINUS1, K_TIMES3, K_PREFIXC, K_TYPEOF, K_TWO, K_ROWS, K_INS };

struct def {
	char name[32];
	char text[128];
	enum kind kind;
	int nparams;
	Oid types[2];	/* 0: let the server infer */
	Oid param_type;	/* what Describe must report for $1 */
	Oid result_type;
};

#define NDEFS 9

/* One statement: its name and text, what it computes, and the type of $1 and of the result. */
static void def(struct def *d, const char *name, const char *text, enum kind kind, Oid type, int nparams)
{
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->text, sizeof(d->text), "%s", text);
	d->kind = kind;
	d->param_type = d->result_type = type;
	d->nparams = nparams;
}

static void mix_defs(struct def *d, int k)
{
	static const Oid typeof_oids[] = { 23, 20, 25, 1700 };
	static const char *const add1 = "SELECT $1::int + 1", *const catx = "SELECT $1::text || 'x'";
	char name[32], text[128];
	int i = 0;

	memset(d, 0, NDEFS * sizeof(*d));
	/* the same name, a different text depending on the client */
	if (k % 2)
		def(&d[i++], "q", catx, K_CATX, 25, 1);
	else
		def(&d[i++], "q", add1, K_ADD1, 23, 1);
	/* a text of this client only, under a name all clients use */
	snprintf(text, sizeof(text), "SELECT $1::int * 1000 + %d", k);
	def(&d[i++], "own", text, K_OWN, 23, 1);
	/* one text under a name of each client */
	snprintf(name, sizeof(name), "shared_%d", k);
	def(&d[i++], name, "SELECT $1::int * 2", K_DOUBLE, 23, 1);
	/* a driver-style name with three meanings */
	if (k % 3 == 0)
		def(&d[i++], "S_1", "SELECT $1::int - 1", K_MINUS1, 23, 1);
	else if (k % 3 == 1)
		def(&d[i++], "S_1", "SELECT $1::int * 3", K_TIMES3, 23, 1);
	else
		def(&d[i++], "S_1", "SELECT 'c' || $1::text", K_PREFIXC, 25, 1);
	/* one text, four parameter types: four statements */
	def(&d[i], "typ", "SELECT pg_typeof($1)::text", K_TYPEOF, typeof_oids[k % 4], 1);
	d[i].types[0] = typeof_oids[k % 4];
	d[i++].result_type = 25;
	def(&d[i++], "two", "SELECT $1::int + $2::int", K_TWO, 23, 2);
	def(&d[i++], "rows", "SELECT g FROM generate_series(1, $1::int) g", K_ROWS, 23, 1);
	/* the same text as "q" of the other parity, under a name of its own */
	if (k % 2)
		def(&d[i++], "other_q", add1, K_ADD1, 23, 1);
	else
		def(&d[i++], "other_q", catx, K_CATX, 25, 1);
	def(&d[i], "ins", "INSERT INTO prep_mix(client, v) VALUES ($1::int, $2::int)", K_INS, 23, 2);
	d[i].result_type = 0;	/* no result column */
}

static const char *typeof_name(Oid oid)
{
	switch (oid) {
	case 23: return "integer";
	case 20: return "bigint";
	case 25: return "text";
	default: return "numeric";
	}
}

/* Run d with value v, check the result. Returns true when a row was inserted. */
static bool mix_run(PGconn *conn, int k, const struct def *d, int v, long *checks)
{
	char a[32], b[32], want[64];
	const char *vals[2] = { a, b };
	PGresult *res;
	bool inserted = false;

	snprintf(a, sizeof(a), "%d", d->kind == K_ROWS ? v % 5 + 1 : v);
	snprintf(b, sizeof(b), "%d", d->kind == K_INS ? v : k);
	if (d->kind == K_INS)
		snprintf(a, sizeof(a), "%d", k);
	res = PQexecPrepared(conn, d->name, d->nparams, vals, NULL, NULL, 0);
	if (d->kind == K_INS) {
		if (result_ok(res, PGRES_COMMAND_OK, d->name)) {
			if (strcmp(PQcmdStatus(res), "INSERT 0 1") != 0)
				mismatch("client %d %s: tag %s", k, d->name, PQcmdStatus(res));
			inserted = true;
		}
		PQclear(res);
		(*checks)++;
		return inserted;
	}
	if (!result_ok(res, PGRES_TUPLES_OK, d->name)) {
		PQclear(res);
		return false;
	}
	switch (d->kind) {
	case K_ADD1: snprintf(want, sizeof(want), "%d", v + 1); break;
	case K_CATX: snprintf(want, sizeof(want), "%dx", v); break;
	case K_OWN: snprintf(want, sizeof(want), "%d", v * 1000 + k); break;
	case K_DOUBLE: snprintf(want, sizeof(want), "%d", v * 2); break;
	case K_MINUS1: snprintf(want, sizeof(want), "%d", v - 1); break;
	case K_TIMES3: snprintf(want, sizeof(want), "%d", v * 3); break;
	case K_PREFIXC: snprintf(want, sizeof(want), "c%d", v); break;
	case K_TYPEOF: snprintf(want, sizeof(want), "%s", typeof_name(d->types[0])); break;
	case K_TWO: snprintf(want, sizeof(want), "%d", v + k); break;
	case K_ROWS: snprintf(want, sizeof(want), "%d", v % 5 + 1); break;
	default: want[0] = 0;
	}
	if (d->kind == K_ROWS) {
		int n = PQntuples(res), r;
		char got[32];

		snprintf(got, sizeof(got), "%d", n);
		if (strcmp(got, want) != 0)
			mismatch("client %d %s(%s): %s rows, expected %s", k, d->name, a, got, want);
		for (r = 0; r < n; r++)
			if (atoi(PQgetvalue(res, r, 0)) != r + 1)
				mismatch("client %d %s: row %d is %s", k, d->name, r, PQgetvalue(res, r, 0));
	} else if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		mismatch("client %d %s(%s): %d rows %d columns", k, d->name, a, PQntuples(res), PQnfields(res));
	} else if (strcmp(PQgetvalue(res, 0, 0), want) != 0) {
		mismatch("client %d %s(%s) [%s]: got '%s', expected '%s'", k, d->name, a, d->text,
			 PQgetvalue(res, 0, 0), want);
	} else if (PQftype(res, 0) != d->result_type) {
		mismatch("client %d %s: result type %u, expected %u", k, d->name, PQftype(res, 0), d->result_type);
	}
	(*checks)++;
	PQclear(res);
	return false;
}

static void mix_describe(PGconn *conn, int k, const struct def *d, long *checks)
{
	PGresult *res = PQdescribePrepared(conn, d->name);

	if (result_ok(res, PGRES_COMMAND_OK, "describe")) {
		if (PQnparams(res) != d->nparams || PQparamtype(res, 0) != d->param_type)
			mismatch("client %d describe %s: %d params, $1 type %u; expected %d, %u", k, d->name,
				 PQnparams(res), PQparamtype(res, 0), d->nparams, d->param_type);
		else if (d->kind != K_INS && (PQnfields(res) != 1 || PQftype(res, 0) != d->result_type))
			mismatch("client %d describe %s: %d columns, type %u; expected 1, %u", k, d->name,
				 PQnfields(res), PQnfields(res) ? PQftype(res, 0) : 0, d->result_type);
		else if (d->kind == K_INS && PQnfields(res) != 0)
			mismatch("client %d describe %s: %d columns for an INSERT", k, d->name, PQnfields(res));
		(*checks)++;
	}
	PQclear(res);
}

static int cmd_mix(int argc, char **argv)
{
	struct def defs[NDEFS];
	PGconn *conn;
	int k, iters, i, j;
	long checks = 0, committed = 0;
	unsigned seed;

	if (argc != 3)
		usage();
	k = atoi(argv[1]);
	iters = atoi(argv[2]);
	seed = 7919u * (unsigned)k + 17;
	conn = connect_or_die(argv[0]);
	mix_defs(defs, k);
	for (i = 0; i < NDEFS; i++) {
		PGresult *res = PQprepare(conn, defs[i].name, defs[i].text, defs[i].nparams,
					  defs[i].types[0] ? defs[i].types : NULL);
		result_ok(res, PGRES_COMMAND_OK, defs[i].name);
		PQclear(res);
	}
	for (i = 0; i < iters && failures == 0; i++) {
		int v = i * 7 + k, r = rand_r(&seed) % 10;

		if (r < 5) {
			mix_run(conn, k, &defs[rand_r(&seed) % (NDEFS - 1)], v, &checks);
		} else if (r < 8) {
			int ins = 0;
			exec_simple(conn, "BEGIN");
			for (j = 0; j < 3; j++)
				ins += mix_run(conn, k, &defs[rand_r(&seed) % NDEFS], v + j, &checks);
			if (!ins)
				ins += mix_run(conn, k, &defs[NDEFS - 1], v, &checks);
			exec_simple(conn, "COMMIT");
			committed += ins;
		} else if (r < 9) {
			exec_simple(conn, "BEGIN");
			mix_run(conn, k, &defs[NDEFS - 1], -v, &checks);
			mix_run(conn, k, &defs[rand_r(&seed) % (NDEFS - 1)], v, &checks);
			exec_simple(conn, "ROLLBACK");
		} else {
			mix_describe(conn, k, &defs[rand_r(&seed) % NDEFS], &checks);
		}
		if (i % 25 == 0)
			note_backend(conn);
	}
	/* rows committed: the shell compares them with the table */
	printf("client %d: %ld checks, %ld committed, %d backends, %d mismatches\n", k, checks, committed, npids,
	       failures);
	PQfinish(conn);
	return failures ? 1 : 0;
}

/* ---------------------------------------------------------------- rotate */

static int cmd_rotate(int argc, char **argv)
{
	PGconn *conn;
	const char *prefix;
	int n, rounds, offset, i, r, j, mb_max = -1, mb_min = 1 << 30;
	long checks = 0;

	if (argc != 5)
		usage();
	prefix = argv[1];
	n = atoi(argv[2]);
	rounds = atoi(argv[3]);
	offset = atoi(argv[4]);
	conn = connect_or_die(argv[0]);
	for (i = 0; i < n; i++) {
		char name[64], text[128];
		PGresult *res;

		snprintf(name, sizeof(name), "%ss%d", prefix, i);
		snprintf(text, sizeof(text), "SELECT $1::int + %d AS r%d", i, i);
		res = PQprepare(conn, name, text, 0, NULL);
		result_ok(res, PGRES_COMMAND_OK, name);
		PQclear(res);
	}
	for (r = 0; r < rounds && failures == 0; r++) {
		for (j = 0; j < n && failures == 0; j++) {
			char name[64], val[32], want[32], col[32];
			const char *vals[1] = { val };
			PGresult *res;
			int cnt;

			i = (j * (offset % 2 ? 1 : n - 1) + offset + r) % n;
			snprintf(name, sizeof(name), "%ss%d", prefix, i);
			snprintf(val, sizeof(val), "%d", r * 100 + j);
			snprintf(want, sizeof(want), "%d", r * 100 + j + i);
			snprintf(col, sizeof(col), "r%d", i);
			if (j % 7 == 3) {
				res = PQdescribePrepared(conn, name);
				if (result_ok(res, PGRES_COMMAND_OK, "describe") &&
				    (PQnparams(res) != 1 || PQnfields(res) != 1 || strcmp(PQfname(res, 0), col) != 0))
					mismatch("describe %s: %d params, %d columns, first '%s'; expected column %s",
						 name, PQnparams(res), PQnfields(res),
						 PQnfields(res) ? PQfname(res, 0) : "", col);
				PQclear(res);
				checks++;
			}
			res = PQexecPrepared(conn, name, 1, vals, NULL, NULL, 0);
			if (result_ok(res, PGRES_TUPLES_OK, name)) {
				if (strcmp(PQgetvalue(res, 0, 0), want) != 0 || strcmp(PQfname(res, 0), col) != 0)
					mismatch("%s(%s): got %s='%s', expected %s='%s'", name, val, PQfname(res, 0),
						 PQgetvalue(res, 0, 0), col, want);
				checks++;
			}
			PQclear(res);
			res = PQexec(conn, "SELECT (SELECT count(*) FROM pg_prepared_statements"
					   " WHERE name LIKE 'MB\\_%'), pg_backend_pid()");
			if (result_ok(res, PGRES_TUPLES_OK, "count")) {
				long pid = atol(PQgetvalue(res, 0, 1));
				int p;

				cnt = atoi(PQgetvalue(res, 0, 0));
				if (cnt > mb_max)
					mb_max = cnt;
				if (cnt < mb_min)
					mb_min = cnt;
				for (p = 0; p < npids && pids[p] != pid; p++)
					;
				if (p == npids && npids < 64)
					pids[npids++] = pid;
			}
			PQclear(res);
		}
	}
	printf("rotate %s: %ld checks, mb_max %d, mb_min %d, backends %d, mismatches %d\n", prefix, checks, mb_max,
	       mb_min, npids, failures);
	PQfinish(conn);
	return failures ? 1 : 0;
}

/* ---------------------------------------------------------------- script */

struct buf {
	uint8_t *data;
	size_t len, cap, off;
};

static void buf_reserve(struct buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	while (b->len + more > b->cap)
		b->cap = b->cap ? b->cap * 2 : 4096;
	b->data = realloc(b->data, b->cap);
	if (!b->data) {
		perror("realloc");
		exit(2);
	}
}

static void put(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void put_u8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put_u16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(b, x, 2);
}

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put(b, x, 4);
}

static void put_str(struct buf *b, const char *s)
{
	put(b, s, strlen(s) + 1);
}

static size_t msg_start;

static void msg_begin(struct buf *b, char type)
{
	put_u8(b, (uint8_t)type);
	msg_start = b->len;
	put_u32(b, 0);
}

static void msg_end(struct buf *b)
{
	uint32_t len = (uint32_t)(b->len - msg_start);

	b->data[msg_start] = (uint8_t)(len >> 24);
	b->data[msg_start + 1] = (uint8_t)(len >> 16);
	b->data[msg_start + 2] = (uint8_t)(len >> 8);
	b->data[msg_start + 3] = (uint8_t)len;
}

/* Comma-separated list into a NULL-terminated array of copies; "-" is empty. */
static char **split(const char *s, int *n)
{
	char **v = calloc(strlen(s) + 2, sizeof(*v)), *copy = strdup(s), *tok, *save = NULL;

	*n = 0;
	if (strcmp(s, "-") != 0)
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			v[(*n)++] = strdup(tok);
	free(copy);
	return v;
}

static void free_split(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct conn_io {
	int fd;
	struct buf out, in;
	int ready_due;	/* ReadyForQuery messages still to come */
};

/* Print one server message; returns its type. */
static char print_message(const uint8_t *m, uint32_t len)
{
	char type = (char)m[0];
	const uint8_t *p = m + 5, *end = m + 1 + len;

	switch (type) {
	case '1': case '2': case '3': case 'n': case 's': case 'I':
		printf("%c\n", type);
		break;
	case 'Z':
		printf("Z:%c\n", m[5]);
		break;
	case 'C':
		printf("C:%s\n", (const char *)p);
		break;
	case 'E': {
		const char *state = "", *text = "";
		while (p < end && *p) {
			char f = (char)*p++;
			if (f == 'C')
				state = (const char *)p;
			else if (f == 'M')
				text = (const char *)p;
			p += strlen((const char *)p) + 1;
		}
		printf("E:%s:%s\n", state, text);
		break;
	}
	case 'T': {
		int n = (p[0] << 8) | p[1], i;
		p += 2;
		printf("T:");
		for (i = 0; i < n; i++) {
			printf("%s%s", i ? "," : "", (const char *)p);
			p += strlen((const char *)p) + 1 + 18;
		}
		printf("\n");
		break;
	}
	case 't': {
		int n = (p[0] << 8) | p[1], i;
		p += 2;
		printf("t:");
		for (i = 0; i < n; i++, p += 4)
			printf("%s%u", i ? "," : "", (unsigned)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]);
		printf("\n");
		break;
	}
	case 'D': {
		int n = (p[0] << 8) | p[1], i;
		p += 2;
		printf("D:");
		for (i = 0; i < n; i++) {
			int32_t l = (int32_t)((uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]);
			p += 4;
			if (l < 0) {
				printf("%sNULL", i ? "," : "");
			} else {
				printf("%s%.*s", i ? "," : "", (int)l, (const char *)p);
				p += l;
			}
		}
		printf("\n");
		break;
	}
	case 'S':
		/* ParameterStatus: part of the transcript only with PREPARED_TOOL_STATUS set */
		if (getenv("PREPARED_TOOL_STATUS"))
			printf("S:%s=%s\n", (const char *)p, (const char *)p + strlen((const char *)p) + 1);
		break;
	case 'N': case 'A':
		break;	/* notices, notifications: not part of the transcript */
	default:
		printf("?%c\n", type);
	}
	fflush(stdout);
	return type;
}

/*
 * Send what is queued while reading; stop once `want` transcript messages arrived (want < 0: until
 * no ReadyForQuery is due). Exits on timeout or a closed connection.
 */
static void pump(struct conn_io *io, int want)
{
	const char *limit = getenv("PREPARED_TOOL_TIMEOUT");
	double deadline = now_sec() + (limit ? atof(limit) : 20);
	int got = 0;

	for (;;) {
		struct pollfd pfd = { .fd = io->fd, .events = POLLIN };
		bool done = want >= 0 ? got >= want : io->ready_due <= 0;
		int left;

		/* complete messages in the input, as many as are wanted */
		while (!done && io->in.len - io->in.off >= 5) {
			const uint8_t *m = io->in.data + io->in.off;
			uint32_t len = (uint32_t)m[1] << 24 | m[2] << 16 | m[3] << 8 | m[4];
			char type;

			if (io->in.len - io->in.off < 1 + (size_t)len)
				break;
			type = print_message(m, len);
			io->in.off += 1 + len;
			if (type == 'S' || type == 'N' || type == 'A')
				continue;
			got++;
			if (type == 'Z')
				io->ready_due--;
			done = want >= 0 ? got >= want : io->ready_due <= 0;
		}
		if (done && io->out.off == io->out.len)
			return;
		if (io->in.off == io->in.len)
			io->in.off = io->in.len = 0;
		if (io->out.off < io->out.len)
			pfd.events |= POLLOUT;
		left = (int)((deadline - now_sec()) * 1000);
		if (left <= 0) {
			printf("TIMEOUT\n");
			exit(2);
		}
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			exit(2);
		}
		if (pfd.revents & POLLOUT) {
			ssize_t n = send(io->fd, io->out.data + io->out.off, io->out.len - io->out.off, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				printf("CLOSED\n");
				exit(2);
			}
			if (n > 0)
				io->out.off += (size_t)n;
			if (io->out.off == io->out.len)
				io->out.off = io->out.len = 0;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n;
			buf_reserve(&io->in, 65536);
			n = recv(io->fd, io->in.data + io->in.len, io->in.cap - io->in.len, 0);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				printf("CLOSED\n");
				exit(2);
			}
			if (n > 0)
				io->in.len += (size_t)n;
		}
	}
}

static void put_parse(struct buf *b, const char *name, const char *sql, const char *types)
{
	char **t;
	int n, i;

	msg_begin(b, 'P');
	put_str(b, name);
	if (strncmp(sql, "@pad:", 5) == 0) {
		char *rest;
		long pad = strtol(sql + 5, &rest, 10);
		rest++;
		put(b, rest, strlen(rest));
		put(b, " /*", 3);
		buf_reserve(b, (size_t)pad);
		memset(b->data + b->len, 'x', (size_t)pad);
		b->len += (size_t)pad;
		put_str(b, "*/");
	} else {
		put_str(b, sql);
	}
	t = split(types, &n);
	put_u16(b, (uint16_t)n);
	for (i = 0; i < n; i++)
		put_u32(b, (uint32_t)strtoul(t[i], NULL, 10));
	free_split(t, n);
	msg_end(b);
}

static void put_bind(struct buf *b, const char *portal, const char *stmt, const char *values)
{
	char **v;
	int n, i;

	msg_begin(b, 'B');
	put_str(b, portal);
	put_str(b, stmt);
	put_u16(b, 0);
	v = split(values, &n);
	put_u16(b, (uint16_t)n);
	for (i = 0; i < n; i++) {
		if (strcmp(v[i], "NULL") == 0) {
			put_u32(b, 0xffffffffu);
		} else {
			put_u32(b, (uint32_t)strlen(v[i]));
			put(b, v[i], strlen(v[i]));
		}
	}
	free_split(v, n);
	put_u16(b, 0);
	msg_end(b);
}

static void put_target(struct buf *b, char type, char what, const char *name)
{
	msg_begin(b, type);
	put_u8(b, (uint8_t)what);
	put_str(b, name);
	msg_end(b);
}

static int cmd_script(int argc, char **argv)
{
	struct conn_io io = { 0 };
	PGconn *conn;
	char *connstr;
	int i;

	if (argc < 1)
		usage();
	connstr = malloc(strlen(argv[0]) + 32);
	sprintf(connstr, "%s sslmode=disable", argv[0]);
	conn = connect_or_die(connstr);
	free(connstr);
	io.fd = PQsocket(conn);
	setvbuf(stdout, NULL, _IOLBF, 0);
#define NEED(k)                                                                      \
	do {                                                                         \
		if (i + (k) >= argc) {                                               \
			fprintf(stderr, "step %s needs %d arguments\n", argv[i], k); \
			usage();                                                     \
		}                                                                    \
	} while (0)
	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (!strcmp(s, "P")) {
			NEED(3);
			put_parse(&io.out, argv[i + 1], argv[i + 2], argv[i + 3]);
			i += 3;
		} else if (!strcmp(s, "B")) {
			NEED(2);
			put_bind(&io.out, "", argv[i + 1], argv[i + 2]);
			i += 2;
		} else if (!strcmp(s, "BP")) {
			NEED(3);
			put_bind(&io.out, argv[i + 1], argv[i + 2], argv[i + 3]);
			i += 3;
		} else if (!strcmp(s, "E") || !strcmp(s, "EP")) {
			const char *portal = "";
			uint32_t rows = 0;
			if (s[1]) {
				NEED(2);
				portal = argv[i + 1];
				rows = (uint32_t)atoi(argv[i + 2]);
				i += 2;
			}
			msg_begin(&io.out, 'E');
			put_str(&io.out, portal);
			put_u32(&io.out, rows);
			msg_end(&io.out);
		} else if (!strcmp(s, "D") || !strcmp(s, "C")) {
			NEED(1);
			put_target(&io.out, s[0], 'S', argv[++i]);
		} else if (!strcmp(s, "DP") || !strcmp(s, "CP")) {
			NEED(1);
			put_target(&io.out, s[0], 'P', argv[++i]);
		} else if (!strcmp(s, "S") || !strcmp(s, "H")) {
			msg_begin(&io.out, s[0]);
			msg_end(&io.out);
			io.ready_due += s[0] == 'S';
		} else if (!strcmp(s, "Q")) {
			NEED(1);
			msg_begin(&io.out, 'Q');
			put_str(&io.out, argv[++i]);
			msg_end(&io.out);
			io.ready_due++;
		} else if (!strcmp(s, "W")) {
			pump(&io, -1);
		} else if (!strcmp(s, "R")) {
			NEED(1);
			pump(&io, atoi(argv[++i]));
		} else if (!strcmp(s, "SLEEP")) {
			NEED(1);
			usleep((useconds_t)atoi(argv[++i]) * 1000);
		} else if (!strcmp(s, "QUIT")) {
			pump(&io, 0);
			shutdown(io.fd, SHUT_RDWR);
			printf("QUIT\n");
			exit(0);
		} else if (!strcmp(s, "MARK")) {
			NEED(1);
			printf("%s\n", argv[++i]);
		} else {
			fprintf(stderr, "unknown step %s\n", s);
			usage();
		}
	}
	pump(&io, -1);
	PQfinish(conn);
	free(io.out.data);
	free(io.in.data);
	return 0;
}

/* Send everything queued while counting the answers, until the ReadyForQuery of the Sync. */
static int cmd_flood(int argc, char **argv)
{
	struct conn_io io = { 0 };
	const char *limit = getenv("PREPARED_TOOL_TIMEOUT");
	double start, deadline;
	long n, i, parsed = 0, errors = 0;
	char first[512] = "-", name[64];
	PGconn *conn;
	char *connstr;
	bool ready = false;

	if (argc < 4)
		usage();
	n = atol(argv[2]);
	connstr = malloc(strlen(argv[0]) + 32);
	sprintf(connstr, "%s sslmode=disable", argv[0]);
	conn = connect_or_die(connstr);
	free(connstr);
	io.fd = PQsocket(conn);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%ld", argv[1], i);
		put_parse(&io.out, name, argv[3], "-");
	}
	msg_begin(&io.out, 'S');
	msg_end(&io.out);
	start = now_sec();
	deadline = start + (limit ? atof(limit) : 120);
	while (!ready) {
		struct pollfd pfd = { .fd = io.fd, .events = POLLIN };
		int left = (int)((deadline - now_sec()) * 1000);

		while (!ready && io.in.len - io.in.off >= 5) {
			const uint8_t *m = io.in.data + io.in.off;
			uint32_t len = (uint32_t)m[1] << 24 | m[2] << 16 | m[3] << 8 | m[4];
			if (io.in.len - io.in.off < 1 + (size_t)len)
				break;
			if (m[0] == '1') {
				parsed++;
			} else if (m[0] == 'E') {
				const uint8_t *p = m + 5, *end = m + 1 + len;
				const char *state = "", *text = "";
				while (p < end && *p) {
					char f = (char)*p++;
					if (f == 'C')
						state = (const char *)p;
					else if (f == 'M')
						text = (const char *)p;
					p += strlen((const char *)p) + 1;
				}
				if (!errors++)
					snprintf(first, sizeof(first), "%s:%s", state, text);
			} else if (m[0] == 'Z') {
				ready = true;
			}
			io.in.off += 1 + len;
		}
		if (ready)
			break;
		if (io.in.off == io.in.len)
			io.in.off = io.in.len = 0;
		if (io.out.off < io.out.len)
			pfd.events |= POLLOUT;
		if (left <= 0) {
			printf("TIMEOUT parsed %ld errors %ld\n", parsed, errors);
			return 2;
		}
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 2;
		}
		if (pfd.revents & POLLOUT) {
			ssize_t k = send(io.fd, io.out.data + io.out.off, io.out.len - io.out.off, MSG_NOSIGNAL);
			if (k < 0 && errno != EAGAIN && errno != EINTR) {
				printf("CLOSED parsed %ld errors %ld\n", parsed, errors);
				return 2;
			}
			if (k > 0)
				io.out.off += (size_t)k;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k;
			buf_reserve(&io.in, 65536);
			k = recv(io.fd, io.in.data + io.in.len, io.in.cap - io.in.len, 0);
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
				printf("CLOSED parsed %ld errors %ld\n", parsed, errors);
				return 2;
			}
			if (k > 0)
				io.in.len += (size_t)k;
		}
	}
	printf("parsed %ld errors %ld first %s seconds %.1f\n", parsed, errors, first, now_sec() - start);
	fflush(stdout);
	io.out.off = io.out.len = 0;
	io.in.off = io.in.len = 0;
	snprintf(name, sizeof(name), "%s0", argv[1]);
	put_bind(&io.out, "", name, "-");
	msg_begin(&io.out, 'E');
	put_str(&io.out, "");
	put_u32(&io.out, 0);
	msg_end(&io.out);
	msg_begin(&io.out, 'S');
	msg_end(&io.out);
	io.ready_due = 1;
	printf("bind0\n");
	pump(&io, -1);
	PQfinish(conn);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "mix"))
		return cmd_mix(argc - 2, argv + 2);
	if (!strcmp(argv[1], "rotate"))
		return cmd_rotate(argc - 2, argv + 2);
	if (!strcmp(argv[1], "flood"))
		return cmd_flood(argc - 2, argv + 2);
	if (!strcmp(argv[1], "script"))
		return cmd_script(argc - 2, argv + 2);
	usage();
	return 2;
}
