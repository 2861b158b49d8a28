/* idle_clients: opens many libpq connections at once (idle hold, or a connect storm) for the benchmark. */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/*
 * Modes:
 *   hold   open N connections (at most -b in flight at a time), print
 *          "connected=K failed=F seconds=S" and "ready", then stay idle until SIGTERM/SIGINT/SIGUSR1
 *          or -H seconds, print "alive=A" (connections the other side had not closed) and exit.
 *   storm  start N connections at the same instant; each logs in, runs one query (-q) and closes.
 *          Prints "ok=K errors=E p50_ms= p90_ms= p99_ms= max_ms= seconds=S", latency measured per
 *          connection from PQconnectStart to its first result (CLOCK_MONOTONIC).
 * Both print "error COUNT MESSAGE" lines for the distinct failure texts (first 5).
 * Exit status: 0 when every connection succeeded, 1 when some failed, 2 on usage or local failure.
 */

enum phase {
	PH_CONNECTING,
	PH_QUERY,
	PH_IDLE,
	PH_DONE,
	PH_FAILED,
};

struct conn {
	PGconn *pg;
	int fd;		 /* registered with epoll, -1 when not */
	uint32_t events; /* what it is registered for */
	enum phase phase;
	double t_start;
	double latency; /* storm: seconds from start to first result */
	bool got_result;
};

struct errcount {
	char msg[160];
	int count;
};

static volatile sig_atomic_t g_stop;
static int g_ep;
static struct errcount g_errs[5];
static int g_nerrs, g_other_errs;

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: idle_clients [-m hold|storm] [-n N] [-b INFLIGHT] [-t TIMEOUT_S] [-H HOLD_S]\n"
		"                    [-q SQL] CONNINFO\n");
	exit(2);
}

/* Count a failure by its first line (libpq texts end in a newline; keep them short and comparable). */
static void record_error(const char *msg)
{
	char line[160];
	size_t n;
	int i;

	if (!msg || !msg[0])
		msg = "unknown error";
	n = strcspn(msg, "\n");
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, msg, n);
	line[n] = '\0';
	for (i = 0; i < g_nerrs; i++) {
		if (strcmp(g_errs[i].msg, line) == 0) {
			g_errs[i].count++;
			return;
		}
	}
	if (g_nerrs < (int)(sizeof(g_errs) / sizeof(g_errs[0]))) {
		memcpy(g_errs[g_nerrs].msg, line, n + 1);
		g_errs[g_nerrs].count = 1;
		g_nerrs++;
		return;
	}
	g_other_errs++;
}

/* Register, re-register or drop (events == 0) the socket of connection i. libpq may replace the socket
 * while connecting; a closed one has already left the epoll set. */
static void watch(struct conn *c, int i, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u32 = (uint32_t)i };
	int fd = c->pg ? PQsocket(c->pg) : -1;

	if (events == 0 || fd < 0) {
		if (c->fd >= 0 && c->fd == fd)
			epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
		c->fd = -1;
		c->events = 0;
		return;
	}
	if (c->fd == fd && c->events == events)
		return;
	/* the same number may be a new socket (the old one closed and left the set): then ADD */
	if (c->fd == fd) {
		if (epoll_ctl(g_ep, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
			epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
	} else if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0 && errno == EEXIST) {
		epoll_ctl(g_ep, EPOLL_CTL_MOD, fd, &ev);
	}
	c->fd = fd;
	c->events = events;
}

static void fail(struct conn *c, int i, const char *msg)
{
	record_error(msg);
	watch(c, i, 0);
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->phase = PH_FAILED;
}

static void start(struct conn *c, int i, const char *conninfo)
{
	c->fd = -1;
	c->events = 0;
	c->t_start = now_sec();
	c->pg = PQconnectStart(conninfo);
	if (!c->pg) {
		c->phase = PH_FAILED;
		record_error("out of memory");
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		fail(c, i, PQerrorMessage(c->pg));
		return;
	}
	c->phase = PH_CONNECTING;
	/* as the libpq docs say: behave as if PQconnectPoll had last returned PGRES_POLLING_WRITING */
	watch(c, i, EPOLLOUT);
}

static void send_query(struct conn *c, int i, const char *sql)
{
	int r;

	if (PQsetnonblocking(c->pg, 1) != 0 || !PQsendQuery(c->pg, sql)) {
		fail(c, i, PQerrorMessage(c->pg));
		return;
	}
	c->phase = PH_QUERY;
	r = PQflush(c->pg);
	if (r < 0) {
		fail(c, i, PQerrorMessage(c->pg));
		return;
	}
	watch(c, i, r == 1 ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
}

/* Drive connection i after its socket became ready. */
static void step(struct conn *c, int i, bool storm, const char *sql)
{
	PostgresPollingStatusType st;
	PGresult *res;
	int r;

	if (c->phase == PH_CONNECTING) {
		st = PQconnectPoll(c->pg);
		switch (st) {
		case PGRES_POLLING_READING:
			watch(c, i, EPOLLIN);
			return;
		case PGRES_POLLING_WRITING:
			watch(c, i, EPOLLOUT);
			return;
		case PGRES_POLLING_OK:
			if (storm) {
				send_query(c, i, sql);
			} else {
				watch(c, i, 0);
				c->phase = PH_IDLE;
			}
			return;
		default:
			fail(c, i, PQerrorMessage(c->pg));
			return;
		}
	}
	if (c->phase != PH_QUERY)
		return;
	r = PQflush(c->pg);
	if (r < 0) {
		fail(c, i, PQerrorMessage(c->pg));
		return;
	}
	if (!PQconsumeInput(c->pg)) {
		fail(c, i, PQerrorMessage(c->pg));
		return;
	}
	while (!PQisBusy(c->pg)) {
		res = PQgetResult(c->pg);
		if (!res) {
			watch(c, i, 0);
			PQfinish(c->pg);
			c->pg = NULL;
			c->phase = PH_DONE;
			return;
		}
		if (!c->got_result) {
			c->got_result = true;
			c->latency = now_sec() - c->t_start;
		}
		if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
			char msg[200];

			snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
			PQclear(res);
			fail(c, i, msg);
			return;
		}
		PQclear(res);
	}
	watch(c, i, r == 1 ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, int n, double p)
{
	int k;

	if (n == 0)
		return 0;
	k = (int)((p / 100.0) * n + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return v[k];
}

/* Connections whose peer closed them (or sent something unexpected) while they were idle. */
static int count_alive(struct conn *conns, int n)
{
	int alive = 0;

	for (int i = 0; i < n; i++) {
		struct pollfd p;

		if (conns[i].phase != PH_IDLE)
			continue;
		p.fd = PQsocket(conns[i].pg);
		p.events = POLLIN;
		p.revents = 0;
		if (p.fd < 0)
			continue;
		if (poll(&p, 1, 0) == 1) {
			/* readable: either a close (consume fails) or an async message such as a
			 * ParameterStatus, which leaves the connection usable */
			if (!PQconsumeInput(conns[i].pg) || PQstatus(conns[i].pg) != CONNECTION_OK)
				continue;
		}
		alive++;
	}
	return alive;
}

static void print_errors(void)
{
	for (int i = 0; i < g_nerrs; i++)
		printf("error %d %s\n", g_errs[i].count, g_errs[i].msg);
	if (g_other_errs)
		printf("error %d (other messages)\n", g_other_errs);
}

int main(int argc, char **argv)
{
	const char *mode = "hold", *sql = "SELECT 1", *conninfo;
	int n = 1000, inflight = 500, opt, started = 0, pending = 0, ok = 0, failed = 0;
	double timeout = 60, hold = 600, t0, deadline;
	struct epoll_event evs[256];
	struct sigaction sa;
	struct rlimit rl;
	struct conn *conns;
	bool storm;

	while ((opt = getopt(argc, argv, "m:n:b:t:H:q:")) != -1) {
		switch (opt) {
		case 'm':
			mode = optarg;
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'b':
			inflight = atoi(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'H':
			hold = atof(optarg);
			break;
		case 'q':
			sql = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || n <= 0 || timeout <= 0)
		usage();
	conninfo = argv[optind];
	if (strcmp(mode, "storm") == 0)
		storm = true;
	else if (strcmp(mode, "hold") == 0)
		storm = false;
	else
		usage();
	if (storm || inflight <= 0 || inflight > n)
		inflight = n;

	/* one descriptor per connection plus a few: take what the hard limit allows */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)n + 16 > rl.rlim_cur)
		fprintf(stderr, "idle_clients: warning: open file limit %lu is below %d connections\n",
			(unsigned long)rl.rlim_cur, n);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	conns = calloc((size_t)n, sizeof(*conns));
	g_ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || g_ep < 0) {
		perror("idle_clients");
		return 2;
	}

	t0 = now_sec();
	deadline = t0 + timeout;
	while (!g_stop) {
		int k;

		/* keep up to `inflight` connections in progress */
		while (started < n && pending < inflight) {
			start(&conns[started], started, conninfo);
			if (conns[started].phase != PH_FAILED)
				pending++;
			started++;
		}
		if (pending == 0 && started == n)
			break;
		if (now_sec() > deadline) {
			for (int i = 0; i < started; i++) {
				if (conns[i].phase == PH_CONNECTING || conns[i].phase == PH_QUERY) {
					fail(&conns[i], i, "timeout (no answer within -t seconds)");
					pending--;
				}
			}
			for (int i = started; i < n; i++) {
				conns[i].phase = PH_FAILED;
				record_error("not started before the timeout");
			}
			started = n;
			break;
		}
		k = epoll_wait(g_ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 100);
		if (k < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 2;
		}
		for (int e = 0; e < k; e++) {
			int i = (int)evs[e].data.u32;
			enum phase before = conns[i].phase;

			if (before != PH_CONNECTING && before != PH_QUERY)
				continue;
			step(&conns[i], i, storm, sql);
			if (conns[i].phase == PH_DONE || conns[i].phase == PH_FAILED ||
			    conns[i].phase == PH_IDLE)
				pending--;
		}
	}

	for (int i = 0; i < n; i++) {
		if (conns[i].phase == PH_DONE || conns[i].phase == PH_IDLE)
			ok++;
		else
			failed++;
	}

	if (storm) {
		double *lat = malloc(sizeof(double) * (size_t)n);
		int m = 0;

		if (!lat)
			return 2;
		for (int i = 0; i < n; i++) {
			if (conns[i].phase == PH_DONE)
				lat[m++] = conns[i].latency;
		}
		qsort(lat, (size_t)m, sizeof(double), cmp_double);
		printf("ok=%d errors=%d p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f seconds=%.2f\n", ok,
		       failed, pct(lat, m, 50) * 1e3, pct(lat, m, 90) * 1e3, pct(lat, m, 99) * 1e3,
		       m ? lat[m - 1] * 1e3 : 0.0, now_sec() - t0);
		print_errors();
		free(lat);
	} else {
		double until;

		printf("connected=%d failed=%d seconds=%.2f\n", ok, failed, now_sec() - t0);
		print_errors();
		printf("ready\n");
		fflush(stdout);
		until = now_sec() + hold;
		while (!g_stop && now_sec() < until)
			usleep(50000);
		printf("alive=%d\n", count_alive(conns, n));
	}
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		if (conns[i].pg)
			PQfinish(conns[i].pg);
	}
	free(conns);
	close(g_ep);
	return failed ? 1 : 0;
}
