/* Unit tests for dns.c: literals, /etc/hosts, a fake DNS server for caching, sharing, rotation and cancel. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include <event2/util.h>

#include "clock.h"
#include "config.h"
#include "dns.h"
#include "log.h"
#include "net.h"
#include "unit.h"

static struct event_base *base;

/* ---- a fake DNS server on 127.0.0.1, answering from a fixed table ---- */

#define MAX_HELD 16

static struct evdns_server_port *fake_port;
static int fake_fd = -1;
static int fake_udp_port;
static struct evdns_server_request *held[MAX_HELD]; /* queries for slow*.test, answered on release */
static int n_held;

struct query_count {
	const char *name;
	int a; /* A queries seen */
};

static struct query_count counts[] = {
	{ "multi.test", 0 }, { "slow.test", 0 },	   { "slow2.test", 0 }, { "slow3.test", 0 },
	{ "slow4.test", 0 }, { "nonexistent.invalid", 0 }, { NULL, 0 },
};

static int a_queries(const char *name)
{
	struct query_count *c;

	for (c = counts; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c->a;
	return -1;
}

static void fake_answer(struct evdns_server_request *req, void *arg)
{
	int i, err = DNS_ERR_NOTEXIST;

	(void)arg;
	for (i = 0; i < req->nquestions; i++) {
		const char *qname = req->questions[i]->name; /* evdns randomizes the case */
		int type = req->questions[i]->type;
		struct query_count *c;

		for (c = counts; c->name != NULL; c++)
			if (strcasecmp(c->name, qname) == 0 && type == EVDNS_TYPE_A)
				c->a++;
		if (strncasecmp(qname, "slow", 4) == 0) {
			if (n_held < MAX_HELD) {
				held[n_held++] = req;
				return;
			}
			err = DNS_ERR_SERVERFAILED;
		} else if (strcasecmp(qname, "multi.test") == 0) {
			err = DNS_ERR_NONE;
			if (type == EVDNS_TYPE_A) {
				uint32_t addrs[3];

				addrs[0] = inet_addr("10.0.0.1");
				addrs[1] = inet_addr("10.0.0.2");
				addrs[2] = inet_addr("10.0.0.3");
				evdns_server_request_add_a_reply(req, qname, 3, addrs, 3600);
			}
		}
	}
	evdns_server_request_respond(req, err);
}

/* Answer every held query: A gets 10.9.9.9, AAAA gets nothing. */
static void fake_release(void)
{
	int i;

	for (i = 0; i < n_held; i++) {
		struct evdns_server_request *req = held[i];

		if (req->questions[0]->type == EVDNS_TYPE_A) {
			uint32_t addr = inet_addr("10.9.9.9");

			evdns_server_request_add_a_reply(req, req->questions[0]->name, 1, &addr, 3600);
		}
		evdns_server_request_respond(req, DNS_ERR_NONE);
	}
	n_held = 0;
}

static void fake_drop_held(void)
{
	int i;

	for (i = 0; i < n_held; i++)
		evdns_server_request_drop(held[i]);
	n_held = 0;
}

static bool fake_start(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	fake_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fake_fd < 0)
		return false;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fake_fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fake_fd, (struct sockaddr *)&sin, &len) != 0)
		return false;
	evutil_make_socket_nonblocking(fake_fd);
	fake_udp_port = ntohs(sin.sin_port);
	fake_port = evdns_add_server_port_with_base(base, fake_fd, 0, fake_answer, NULL);
	return fake_port != NULL;
}

/* ---- results and the event loop ---- */

struct result {
	int calls;
	bool has_addr;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char error[512];
};

static void on_result(void *arg, const struct sockaddr *sa, socklen_t len, const char *error)
{
	struct result *r = arg;

	r->calls++;
	r->has_addr = sa != NULL;
	if (sa != NULL) {
		memcpy(&r->addr, sa, len);
		r->addrlen = len;
	}
	snprintf(r->error, sizeof(r->error), "%s", error != NULL ? error : "");
}

static const char *addr_of(const struct result *r, char *buf, size_t len)
{
	if (!r->has_addr)
		return "(none)";
	return net_addr_str((const struct sockaddr *)&r->addr, buf, len);
}

static bool timed_out;

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timed_out = true;
}

/* Run the loop until *calls reaches want or secs pass; returns whether it got there. */
static bool run_until(const int *calls, int want, double secs)
{
	struct event *t = evtimer_new(base, on_timeout, NULL);
	struct timeval tv = { (time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6) };

	timed_out = false;
	evtimer_add(t, &tv);
	while ((calls == NULL || *calls < want) && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return calls == NULL || *calls >= want;
}

static void run_for(double secs)
{
	int never = 0;

	run_until(&never, 1, secs);
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

/* ---- the tests ---- */

static void test_literals(void)
{
	struct result r;
	struct dns_request *req;
	char buf[64];

	memset(&r, 0, sizeof(r));
	req = dns_resolve("127.0.0.1", 5432, on_result, &r);
	UNIT_CHECK(req == NULL, "IPv4 literal: no handle");
	UNIT_EQ_INT(r.calls, 1, "IPv4 literal: answered synchronously");
	UNIT_EQ_STR(addr_of(&r, buf, sizeof(buf)), "127.0.0.1:5432", "IPv4 literal: address and port");
	UNIT_EQ_INT(r.addrlen, sizeof(struct sockaddr_in), "IPv4 literal: addrlen");

	memset(&r, 0, sizeof(r));
	req = dns_resolve("::1", 6543, on_result, &r);
	UNIT_CHECK(req == NULL && r.calls == 1, "IPv6 literal: answered synchronously");
	UNIT_EQ_STR(addr_of(&r, buf, sizeof(buf)), "[::1]:6543", "IPv6 literal: address and port");
	UNIT_EQ_INT(r.addrlen, sizeof(struct sockaddr_in6), "IPv6 literal: addrlen");

	memset(&r, 0, sizeof(r));
	req = dns_resolve("[2001:db8::7]", 1, on_result, &r);
	UNIT_CHECK(req == NULL && r.calls == 1, "bracketed IPv6 literal: synchronous");
	UNIT_EQ_STR(addr_of(&r, buf, sizeof(buf)), "[2001:db8::7]:1", "bracketed IPv6 literal: address");

	memset(&r, 0, sizeof(r));
	req = dns_resolve("", 1, on_result, &r);
	UNIT_CHECK(req == NULL && r.calls == 1 && !r.has_addr && r.error[0] != '\0', "empty host: error");
}

static void test_not_initialized(void)
{
	struct result r;
	struct dns_request *req;

	memset(&r, 0, sizeof(r));
	req = dns_resolve("db.example", 5432, on_result, &r);
	UNIT_CHECK(req == NULL && r.calls == 1 && !r.has_addr, "before dns_init: name fails at once");
	UNIT_CHECK(strstr(r.error, "not initialized") != NULL, "before dns_init: says why");
}

static void test_localhost(void)
{
	struct result r, r2;
	struct dns_request *req;
	char buf[64];

	memset(&r, 0, sizeof(r));
	req = dns_resolve("localhost", 7000, on_result, &r);
	/* evdns may answer from /etc/hosts at once; otherwise the loop brings the answer */
	UNIT_CHECK(req == NULL ? r.calls == 1 : r.calls == 0, "localhost: handle only while pending");
	UNIT_CHECK(run_until(&r.calls, 1, 5.0), "localhost: answered");
	addr_of(&r, buf, sizeof(buf));
	UNIT_CHECK(strcmp(buf, "127.0.0.1:7000") == 0 || strcmp(buf, "[::1]:7000") == 0,
		   "localhost: loopback address with port set");
	if (strcmp(buf, "127.0.0.1:7000") != 0 && strcmp(buf, "[::1]:7000") != 0)
		printf("#   got %s (%s)\n", buf, r.error);

	memset(&r2, 0, sizeof(r2));
	req = dns_resolve("LocalHost", 7001, on_result, &r2);
	UNIT_CHECK(req == NULL && r2.calls == 1, "localhost again (other case): cache hit is synchronous");
	UNIT_CHECK(r2.has_addr, "localhost again: has an address");
}

static void test_round_robin(void)
{
	struct result r;
	struct dns_request *req;
	char seen[4][64];
	int i;

	memset(&r, 0, sizeof(r));
	req = dns_resolve("multi.test", 5432, on_result, &r);
	UNIT_CHECK(req != NULL && r.calls == 0, "multi.test: asynchronous on first lookup");
	UNIT_CHECK(run_until(&r.calls, 1, 5.0), "multi.test: answered");
	UNIT_CHECK(r.has_addr, "multi.test: has an address");
	addr_of(&r, seen[0], sizeof(seen[0]));
	for (i = 1; i < 4; i++) {
		memset(&r, 0, sizeof(r));
		req = dns_resolve("multi.test", 5432, on_result, &r);
		UNIT_CHECK(req == NULL && r.calls == 1, "multi.test: cached answer is synchronous");
		addr_of(&r, seen[i], sizeof(seen[i]));
	}
	UNIT_CHECK(strcmp(seen[0], seen[1]) != 0 && strcmp(seen[1], seen[2]) != 0 &&
			   strcmp(seen[0], seen[2]) != 0,
		   "multi.test: three calls give three addresses");
	for (i = 0; i < 3; i++)
		UNIT_CHECK(strcmp(seen[i], "10.0.0.1:5432") == 0 || strcmp(seen[i], "10.0.0.2:5432") == 0 ||
				   strcmp(seen[i], "10.0.0.3:5432") == 0,
			   "multi.test: address from the answer, port set");
	UNIT_EQ_STR(seen[3], seen[0], "multi.test: the fourth call starts over");
	UNIT_EQ_INT(a_queries("multi.test"), 1, "multi.test: one query for four lookups");
}

static void test_shared_query(void)
{
	struct result r1, r2;
	struct dns_request *q1, *q2;
	char buf[64];

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	q1 = dns_resolve("slow.test", 1111, on_result, &r1);
	q2 = dns_resolve("slow.test", 2222, on_result, &r2);
	UNIT_CHECK(q1 != NULL && q2 != NULL && q1 != q2, "slow.test: two pending handles");
	run_for(0.2);
	UNIT_EQ_INT(r1.calls + r2.calls, 0, "slow.test: nothing delivered before the server answers");
	UNIT_EQ_INT(a_queries("slow.test"), 1, "slow.test: concurrent lookups share one query");
	fake_release();
	UNIT_CHECK(run_until(&r2.calls, 1, 5.0) && r1.calls == 1, "slow.test: both callbacks run");
	UNIT_EQ_STR(addr_of(&r1, buf, sizeof(buf)), "10.9.9.9:1111", "slow.test: first gets its port");
	UNIT_EQ_STR(addr_of(&r2, buf, sizeof(buf)), "10.9.9.9:2222", "slow.test: second gets its port");
}

static void test_cancel(void)
{
	struct result r1, r2, r3, r4;
	struct dns_request *q1, *q2, *q3, *q4;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	memset(&r3, 0, sizeof(r3));
	q1 = dns_resolve("slow2.test", 1, on_result, &r1);
	q2 = dns_resolve("slow2.test", 2, on_result, &r2);
	q3 = dns_resolve("slow2.test", 3, on_result, &r3);
	UNIT_CHECK(q1 && q2 && q3, "slow2.test: three pending handles");
	dns_cancel(q2);
	run_for(0.1);
	fake_release();
	UNIT_CHECK(run_until(&r3.calls, 1, 5.0), "slow2.test: others answered");
	run_for(0.1);
	UNIT_EQ_INT(r1.calls, 1, "slow2.test: first callback ran once");
	UNIT_EQ_INT(r2.calls, 0, "slow2.test: cancelled callback never runs");
	UNIT_EQ_INT(r3.calls, 1, "slow2.test: third callback ran once");

	/* all waiters gone: the query still completes and fills the cache */
	memset(&r4, 0, sizeof(r4));
	q4 = dns_resolve("slow3.test", 4, on_result, &r4);
	UNIT_CHECK(q4 != NULL, "slow3.test: pending");
	dns_cancel(q4);
	run_for(0.1);
	fake_release();
	run_for(0.3);
	UNIT_EQ_INT(r4.calls, 0, "slow3.test: cancelled alone, no callback");
	memset(&r4, 0, sizeof(r4));
	q4 = dns_resolve("slow3.test", 4, on_result, &r4);
	UNIT_CHECK(q4 == NULL && r4.calls == 1 && r4.has_addr, "slow3.test: answer was cached anyway");
	UNIT_EQ_INT(a_queries("slow3.test"), 1, "slow3.test: one query");
}

static void test_nxdomain(void)
{
	struct result r;
	struct dns_request *req;
	double t0 = clock_now();

	memset(&r, 0, sizeof(r));
	req = dns_resolve("nonexistent.invalid", 5432, on_result, &r);
	UNIT_CHECK(req != NULL, "nonexistent.invalid: pending");
	UNIT_CHECK(run_until(&r.calls, 1, 5.0), "nonexistent.invalid: callback within 5 s");
	UNIT_CHECK(clock_now() - t0 < 5.0, "nonexistent.invalid: in time");
	UNIT_CHECK(!r.has_addr && strstr(r.error, "nonexistent.invalid") != NULL,
		   "nonexistent.invalid: error names the host");

	memset(&r, 0, sizeof(r));
	req = dns_resolve("nonexistent.invalid", 5432, on_result, &r);
	UNIT_CHECK(req == NULL && r.calls == 1 && !r.has_addr, "nonexistent.invalid: failure cached");
	UNIT_EQ_INT(a_queries("nonexistent.invalid"), 1, "nonexistent.invalid: one query");
}

static void test_ttl(struct config *cfg)
{
	struct result r;
	struct dns_request *req;

	/* failures and answers have separate lifetimes */
	cfg->dns_nxdomain_ttl = 0.2;
	dns_reconfigure(cfg);
	run_for(0.3);
	memset(&r, 0, sizeof(r));
	req = dns_resolve("nonexistent.invalid", 5432, on_result, &r);
	UNIT_CHECK(req != NULL, "dns_nxdomain_ttl 0.2: failure looked up again");
	UNIT_CHECK(run_until(&r.calls, 1, 5.0) && !r.has_addr, "dns_nxdomain_ttl 0.2: fails again");
	UNIT_EQ_INT(a_queries("nonexistent.invalid"), 2, "dns_nxdomain_ttl 0.2: second query");
	memset(&r, 0, sizeof(r));
	req = dns_resolve("multi.test", 5432, on_result, &r);
	UNIT_CHECK(req == NULL && r.calls == 1,
		   "dns_nxdomain_ttl 0.2: answers still cached (dns_max_ttl 15)");

	cfg->dns_max_ttl = 0.2;
	dns_reconfigure(cfg);
	run_for(0.3);
	memset(&r, 0, sizeof(r));
	req = dns_resolve("multi.test", 5432, on_result, &r);
	UNIT_CHECK(req != NULL && r.calls == 0, "dns_max_ttl 0.2: expired answer is looked up again");
	UNIT_CHECK(run_until(&r.calls, 1, 5.0) && r.has_addr, "dns_max_ttl 0.2: answered");
	UNIT_EQ_INT(a_queries("multi.test"), 2, "dns_max_ttl 0.2: second query");
	memset(&r, 0, sizeof(r));
	req = dns_resolve("multi.test", 5432, on_result, &r);
	UNIT_CHECK(req == NULL && r.calls == 1, "dns_max_ttl 0.2: fresh answer reused");

	cfg->dns_max_ttl = 0;
	dns_reconfigure(cfg);
	memset(&r, 0, sizeof(r));
	req = dns_resolve("multi.test", 5432, on_result, &r);
	UNIT_CHECK(req != NULL, "dns_max_ttl 0: no reuse");
	run_until(&r.calls, 1, 5.0);
	memset(&r, 0, sizeof(r));
	req = dns_resolve("multi.test", 5432, on_result, &r);
	UNIT_CHECK(req != NULL, "dns_max_ttl 0: not even right after an answer");
	run_until(&r.calls, 1, 5.0);
	UNIT_EQ_INT(a_queries("multi.test"), 4, "dns_max_ttl 0: a query per lookup");
	cfg->dns_max_ttl = 15;
	dns_reconfigure(cfg);
}

static void test_shutdown_in_flight(void)
{
	struct result r;
	struct dns_request *req;

	memset(&r, 0, sizeof(r));
	req = dns_resolve("slow4.test", 1, on_result, &r);
	UNIT_CHECK(req != NULL, "slow4.test: pending at shutdown");
	run_for(0.1);
	dns_shutdown();
	run_for(0.2);
	UNIT_EQ_INT(r.calls, 0, "dns_shutdown: pending callback never runs");
	fake_drop_held();
}

static void test_dead_nameserver(const char *dir, struct config *cfg)
{
	char path[256], text[256];
	struct result r;
	struct dns_request *req;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	double t0;
	int fd;

	/* a UDP port with nobody behind it */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	snprintf(path, sizeof(path), "%s/resolv-dead.conf", dir);
	snprintf(text, sizeof(text), "nameserver 127.0.0.1:%d\noptions timeout:1 attempts:1\n",
		 ntohs(sin.sin_port));
	write_file(path, text);
	cfg->resolv_conf = path;
	dns_init(base, cfg);

	memset(&r, 0, sizeof(r));
	t0 = clock_now();
	req = dns_resolve("nonexistent.invalid", 5432, on_result, &r);
	UNIT_CHECK(req != NULL, "dead nameserver: pending");
	UNIT_CHECK(run_until(&r.calls, 1, 8.0), "dead nameserver: error callback arrives");
	UNIT_CHECK(clock_now() - t0 < 5.0, "dead nameserver: within a few seconds");
	UNIT_CHECK(!r.has_addr && r.error[0] != '\0', "dead nameserver: it is an error");
	dns_shutdown();
	cfg->resolv_conf = NULL;
}

static void test_system_resolver(struct config *cfg)
{
	struct result r;

	cfg->resolv_conf = NULL;
	dns_init(base, cfg);
	memset(&r, 0, sizeof(r));
	dns_resolve("localhost", 5432, on_result, &r);
	UNIT_CHECK(run_until(&r.calls, 1, 5.0) && r.has_addr, "system resolv.conf: localhost resolves");
	dns_shutdown();
}

int main(void)
{
	char dir[] = "/tmp/mb-test-dns-XXXXXX";
	char path[256], text[256];
	struct config cfg;

	log_setup(0, getenv("TEST_VERBOSE") == NULL);
	base = event_base_new();
	if (base == NULL || mkdtemp(dir) == NULL || !fake_start()) {
		printf("# setup failed\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/resolv.conf", dir);
	snprintf(text, sizeof(text), "nameserver 127.0.0.1:%d\noptions timeout:2 attempts:1\n",
		 fake_udp_port);
	UNIT_CHECK(write_file(path, text), "write test resolv.conf");

	memset(&cfg, 0, sizeof(cfg));
	cfg.dns_max_ttl = 15;
	cfg.dns_nxdomain_ttl = 15;
	cfg.resolv_conf = path;

	test_not_initialized();
	dns_init(base, &cfg);
	test_literals();
	test_localhost();
	test_round_robin();
	test_shared_query();
	test_cancel();
	test_nxdomain();
	test_ttl(&cfg);
	test_shutdown_in_flight();
	test_dead_nameserver(dir, &cfg);
	test_system_resolver(&cfg);

	evdns_close_server_port(fake_port);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	unlink(path);
	snprintf(path, sizeof(path), "%s/resolv-dead.conf", dir);
	unlink(path);
	rmdir(dir);
	return unit_done();
}
