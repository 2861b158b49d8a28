/* policy_tool: a libpq client that drives the policy tests through every protocol path (simple, extended,
 * pipelined, FunctionCall, large objects). */
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <libpq/libpq-fs.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * policy_tool CONNSTR STEP...
 *
 * Steps (run in order on one connection; an error does not stop the run):
 *   Q:sql            simple Query (PQexec)
 *   X:sql            extended protocol, unnamed statement (PQexecParams, no parameters)
 *   XP:sql|p1|p2...  extended protocol with text parameters
 *   P:name:sql       Parse a named statement (PQprepare)
 *   E:name           Bind/Execute a named statement (PQexecPrepared, no parameters)
 *   FN:oid:a:b       FunctionCall of a function (int4, int4) -> int4, prints "FN <result>"
 *   FN8:oid:a        FunctionCall of a function (int8) -> bool, prints "FN t|f"
 *   LO:text          large objects (inside a transaction the caller opens): lo_creat, lo_open,
 *                    lo_write, lo_lseek, lo_read, lo_close, lo_unlink; prints "LO <text read back>"
 *   PB               enter pipeline mode
 *   PQ:sql           queue a statement in the pipeline (PQsendQueryParams)
 *   PS               queue a Sync
 *   PE               read every queued result, leave pipeline mode
 *   SLEEP:seconds
 *
 * Output: rows tab-separated; "CMD <tag>" for commands; "ERROR <SQLSTATE> <message>";
 * in a pipeline "ABORTED" for a skipped statement and "SYNC" for a Sync; "NOTIFY <channel> <payload>".
 * Exit status: 0 when every step ran (errors reported by the server included), 1 when the login failed,
 * 2 on a local failure.
 */

static int pipeline_pending;	/* statements and syncs queued but not read yet */

static void print_error(const PGresult *res, PGconn *conn)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (msg == NULL)
		msg = PQerrorMessage(conn);
	printf("ERROR %s %.*s\n", state ? state : "-----", (int)strcspn(msg, "\n"), msg);
}

static void print_result(PGresult *res, PGconn *conn)
{
	int r, c;

	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		for (r = 0; r < PQntuples(res); r++) {
			for (c = 0; c < PQnfields(res); c++)
				printf("%s%s", c ? "\t" : "", PQgetisnull(res, r, c) ? "NULL" : PQgetvalue(res, r, c));
			printf("\n");
		}
		break;
	case PGRES_COMMAND_OK:
		printf("CMD %s\n", PQcmdStatus(res));
		break;
	case PGRES_EMPTY_QUERY:
		printf("EMPTY\n");
		break;
	case PGRES_PIPELINE_SYNC:
		printf("SYNC\n");
		break;
	case PGRES_PIPELINE_ABORTED:
		printf("ABORTED\n");
		break;
	default:
		print_error(res, conn);
	}
}

static void drain_notifies(PGconn *conn)
{
	PGnotify *n;

	PQconsumeInput(conn);
	while ((n = PQnotifies(conn)) != NULL) {
		printf("NOTIFY %s %s\n", n->relname, n->extra);
		PQfreemem(n);
	}
}

static void done(PGconn *conn, PGresult *res)
{
	print_result(res, conn);
	PQclear(res);
	drain_notifies(conn);
}

/* XP:sql|p1|p2 */
static void step_params(PGconn *conn, char *arg)
{
	const char *params[16];
	int n = 0;
	char *sql = arg, *p = strchr(arg, '|');

	while (p != NULL && n < 16) {
		*p++ = 0;
		params[n++] = p;
		p = strchr(p, '|');
	}
	done(conn, PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0));
}

static void step_fn(PGconn *conn, char *arg)
{
	char *a, *b;
	PQArgBlock args[2];
	int result = 0, result_len = 0;
	PGresult *res;

	a = strchr(arg, ':');
	if (!a)
		return;
	*a++ = 0;
	b = strchr(a, ':');
	if (!b)
		return;
	*b++ = 0;
	args[0].len = 4;
	args[0].isint = 1;
	args[0].u.integer = atoi(a);
	args[1].len = 4;
	args[1].isint = 1;
	args[1].u.integer = atoi(b);
	res = PQfn(conn, atoi(arg), &result, &result_len, 1, args, 2);
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		printf("FN %d\n", result);
	else
		print_error(res, conn);
	PQclear(res);
	drain_notifies(conn);
}

static void step_fn8(PGconn *conn, char *arg)
{
	char *a = strchr(arg, ':');
	uint64_t v;
	uint32_t be[2];
	char out[8] = { 0 };
	int result_len = 0;
	PQArgBlock args[1];
	PGresult *res;

	if (!a)
		return;
	*a++ = 0;
	v = (uint64_t)strtoll(a, NULL, 10);
	be[0] = htonl((uint32_t)(v >> 32));
	be[1] = htonl((uint32_t)v);
	args[0].len = 8;
	args[0].isint = 0;
	args[0].u.ptr = (int *)be;
	res = PQfn(conn, atoi(arg), (int *)out, &result_len, 0, args, 1);
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		printf("FN %s\n", result_len == 1 ? (out[0] ? "t" : "f") : "?");
	else
		print_error(res, conn);
	PQclear(res);
	drain_notifies(conn);
}

static void step_lo(PGconn *conn, const char *text)
{
	char buf[256];
	Oid oid;
	int fd, n;

	oid = lo_creat(conn, INV_READ | INV_WRITE);
	if (oid == InvalidOid) {
		print_error(NULL, conn);
		return;
	}
	fd = lo_open(conn, oid, INV_READ | INV_WRITE);
	if (fd < 0) {
		print_error(NULL, conn);
		return;
	}
	if (lo_write(conn, fd, text, strlen(text)) != (int)strlen(text) || lo_lseek(conn, fd, 0, SEEK_SET) != 0) {
		print_error(NULL, conn);
		return;
	}
	n = lo_read(conn, fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		print_error(NULL, conn);
		return;
	}
	buf[n] = 0;
	if (lo_close(conn, fd) != 0 || lo_unlink(conn, oid) != 1) {
		print_error(NULL, conn);
		return;
	}
	printf("LO %s\n", buf);
}

static void pipeline_end(PGconn *conn)
{
	PGresult *res;

	if (PQflush(conn) < 0) {
		print_error(NULL, conn);
		return;
	}
	while (pipeline_pending > 0) {
		res = PQgetResult(conn);
		if (res == NULL) {
			/* end of one statement's results */
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC || PQresultStatus(res) == PGRES_PIPELINE_ABORTED ||
		    PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK ||
		    PQresultStatus(res) == PGRES_FATAL_ERROR)
			pipeline_pending--;
		print_result(res, conn);
		if (PQresultStatus(res) == PGRES_FATAL_ERROR && PQstatus(conn) == CONNECTION_BAD) {
			PQclear(res);
			return;
		}
		PQclear(res);
	}
	if (!PQexitPipelineMode(conn))
		print_error(NULL, conn);
}

static void step(PGconn *conn, char *s)
{
	if (strncmp(s, "Q:", 2) == 0) {
		done(conn, PQexec(conn, s + 2));
	} else if (strncmp(s, "X:", 2) == 0) {
		done(conn, PQexecParams(conn, s + 2, 0, NULL, NULL, NULL, NULL, 0));
	} else if (strncmp(s, "XP:", 3) == 0) {
		step_params(conn, s + 3);
	} else if (strncmp(s, "P:", 2) == 0) {
		char *name = s + 2, *sql = strchr(name, ':');
		if (!sql) {
			fprintf(stderr, "bad step %s\n", s);
			exit(2);
		}
		*sql++ = 0;
		done(conn, PQprepare(conn, name, sql, 0, NULL));
	} else if (strncmp(s, "E:", 2) == 0) {
		done(conn, PQexecPrepared(conn, s + 2, 0, NULL, NULL, NULL, 0));
	} else if (strncmp(s, "FN:", 3) == 0) {
		step_fn(conn, s + 3);
	} else if (strncmp(s, "FN8:", 4) == 0) {
		step_fn8(conn, s + 4);
	} else if (strncmp(s, "LO:", 3) == 0) {
		step_lo(conn, s + 3);
	} else if (strcmp(s, "PB") == 0) {
		if (!PQenterPipelineMode(conn))
			print_error(NULL, conn);
		pipeline_pending = 0;
	} else if (strncmp(s, "PQ:", 3) == 0) {
		if (!PQsendQueryParams(conn, s + 3, 0, NULL, NULL, NULL, NULL, 0))
			print_error(NULL, conn);
		else
			pipeline_pending++;
	} else if (strcmp(s, "PS") == 0) {
		if (!PQpipelineSync(conn))
			print_error(NULL, conn);
		else
			pipeline_pending++;
	} else if (strcmp(s, "PE") == 0) {
		pipeline_end(conn);
	} else if (strncmp(s, "SLEEP:", 6) == 0) {
		usleep((useconds_t)(atof(s + 6) * 1e6));
	} else {
		fprintf(stderr, "unknown step %s\n", s);
		exit(2);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	PGconn *conn;

	if (argc < 2) {
		fprintf(stderr, "usage: policy_tool CONNSTR STEP...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK) {
		printf("ERROR ----- %.*s\n", (int)strcspn(PQerrorMessage(conn), "\n"), PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	for (int i = 2; i < argc; i++)
		step(conn, argv[i]);
	PQfinish(conn);
	return 0;
}
