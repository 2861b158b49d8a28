/* Non-blocking name resolution on libevent's evdns, with a TTL cache and round robin over the answers. */
#include "dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "clock.h"
#include "config.h"
#include "hash.h"
#include "list.h"
#include "log.h"

#define DNS_BUCKETS 256
#define DNS_MAX_ADDRS 64 /* more answers than this are not worth rotating over */

/* One host name: its last answer and the query in flight, if any. */
struct dns_entry {
	struct dns_entry *next; /* hash chain */
	char *name;		/* lower case */

	bool answered;	    /* addrs or error hold an answer */
	double answered_at; /* monotonic seconds */
	struct sockaddr_storage *addrs;
	socklen_t *addrlens;
	int n_addrs;
	unsigned rr; /* next address to hand out */
	char *error; /* the last lookup failed */

	struct evdns_getaddrinfo_request *query;
	bool querying;	     /* a query is in flight: its callback has not run yet */
	bool starting;	     /* inside evdns_getaddrinfo(): dns_resolve delivers an immediate answer */
	bool orphaned;	     /* dropped by dns_shutdown while querying: the callback frees it */
	int delivering;	     /* callbacks of this entry are running: do not free it */
	struct list waiters; /* struct dns_request */
};

struct dns_request {
	struct list node;
	int port;
	dns_result_fn cb;
	void *arg;
};

static struct event_base *ev_base;
static struct evdns_base *evdns;
static struct dns_entry *buckets[DNS_BUCKETS];
static double max_ttl = 15.0;
static double nxdomain_ttl = 15.0;

static unsigned hash_name(const char *s)
{
	return hash_str(s) % DNS_BUCKETS;
}

static void set_port(struct sockaddr *sa, int port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

/* IPv4 and IPv6 literals ("::1" or "[::1]", with a %scope too) need no DNS. */
static bool resolve_literal(const char *host, int port, dns_result_fn cb, void *arg)
{
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	char buf[INET6_ADDRSTRLEN + 64];
	size_t len = strlen(host);

	memset(&in, 0, sizeof(in));
	if (inet_pton(AF_INET, host, &in.sin_addr) == 1) {
		in.sin_family = AF_INET;
		in.sin_port = htons((uint16_t)port);
		cb(arg, (struct sockaddr *)&in, sizeof(in), NULL);
		return true;
	}
	if (len >= sizeof(buf) || strchr(host, ':') == NULL)
		return false;
	if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
	} else {
		memcpy(buf, host, len + 1);
	}
	memset(&in6, 0, sizeof(in6));
	if (inet_pton(AF_INET6, buf, &in6.sin6_addr) == 1) {
		in6.sin6_family = AF_INET6;
		in6.sin6_port = htons((uint16_t)port);
		cb(arg, (struct sockaddr *)&in6, sizeof(in6), NULL);
		return true;
	}
	if (strchr(buf, '%') != NULL) {
		struct addrinfo hints, *res = NULL;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_INET6;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST;
		if (getaddrinfo(buf, NULL, &hints, &res) == 0 && res != NULL) {
			struct sockaddr_storage ss;
			socklen_t sl = res->ai_addrlen;

			memcpy(&ss, res->ai_addr, sl);
			freeaddrinfo(res);
			set_port((struct sockaddr *)&ss, port);
			cb(arg, (struct sockaddr *)&ss, sl, NULL);
			return true;
		}
	}
	return false;
}

static void clear_answer(struct dns_entry *e)
{
	free(e->addrs);
	free(e->addrlens);
	free(e->error);
	e->addrs = NULL;
	e->addrlens = NULL;
	e->error = NULL;
	e->n_addrs = 0;
	e->answered = false;
}

static void entry_free(struct dns_entry *e)
{
	struct list *pos, *tmp;

	LIST_FOREACH_SAFE (pos, tmp, &e->waiters) {
		list_remove(pos);
		free(container_of(pos, struct dns_request, node));
	}
	clear_answer(e);
	free(e->name);
	free(e);
}

static void set_error(struct dns_entry *e, const char *detail)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "could not resolve \"%s\": %s", e->name, detail);
	e->error = strdup(msg);
	if (e->error == NULL)
		e->error = strdup("out of memory");
}

/* libevent's texts are getaddrinfo's ("nodename nor servname provided, ..."): say it plainly */
static const char *gai_error_text(int result)
{
	switch (result) {
	case EVUTIL_EAI_NONAME:
		return "host not found";
	case EVUTIL_EAI_FAIL:
		return "no answer from the DNS server (timeout or server failure)";
	case EVUTIL_EAI_AGAIN:
		return "temporary DNS failure";
	case EVUTIL_EAI_MEMORY:
		return "out of memory";
	case EVUTIL_EAI_CANCEL:
		return "lookup cancelled";
	default:
		return evutil_gai_strerror(result);
	}
}

static void store_answer(struct dns_entry *e, int result, const struct evutil_addrinfo *res)
{
	const struct evutil_addrinfo *ai;
	int n = 0;

	clear_answer(e);
	e->answered = true;
	e->answered_at = clock_now();
	if (result != 0) {
		set_error(e, gai_error_text(result));
		log_warning("DNS lookup of %s failed: %s", e->name, gai_error_text(result));
		return;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		n++;
	e->addrs = calloc((size_t)n + 1, sizeof(*e->addrs));
	e->addrlens = calloc((size_t)n + 1, sizeof(*e->addrlens));
	if (e->addrs == NULL || e->addrlens == NULL) {
		set_error(e, "out of memory");
		return;
	}
	for (ai = res; ai != NULL && e->n_addrs < DNS_MAX_ADDRS; ai = ai->ai_next) {
		int i;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(struct sockaddr_storage))
			continue;
		/* A and AAAA answers may repeat an address: hand each out once per round */
		for (i = 0; i < e->n_addrs; i++)
			if (e->addrlens[i] == ai->ai_addrlen &&
			    memcmp(&e->addrs[i], ai->ai_addr, ai->ai_addrlen) == 0)
				break;
		if (i < e->n_addrs)
			continue;
		memcpy(&e->addrs[e->n_addrs], ai->ai_addr, ai->ai_addrlen);
		e->addrlens[e->n_addrs] = (socklen_t)ai->ai_addrlen;
		e->n_addrs++;
	}
	if (e->n_addrs == 0)
		set_error(e, "no IPv4 or IPv6 address");
	else
		log_debug("DNS: %s has %d address(es)", e->name, e->n_addrs);
}

static void deliver_one(struct dns_entry *e, int port, dns_result_fn cb, void *arg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned i;

	if (e->error != NULL || e->n_addrs == 0) {
		cb(arg, NULL, 0, e->error != NULL ? e->error : "could not resolve host name");
		return;
	}
	i = e->rr++ % (unsigned)e->n_addrs;
	len = e->addrlens[i];
	memcpy(&ss, &e->addrs[i], len);
	set_port((struct sockaddr *)&ss, port);
	cb(arg, (struct sockaddr *)&ss, len, NULL);
}

/* Hand the answer to everyone waiting. A callback may resolve again or cancel another waiter. */
static void deliver_all(struct dns_entry *e)
{
	struct list pending, *first;

	list_init(&pending);
	if (!list_empty(&e->waiters)) {
		/* move the waiters over, so requests made by the callbacks queue on the entry again */
		pending.next = e->waiters.next;
		pending.prev = e->waiters.prev;
		pending.next->prev = &pending;
		pending.prev->next = &pending;
		list_init(&e->waiters);
	}
	e->delivering++;
	while ((first = list_first(&pending)) != NULL) {
		struct dns_request *r = container_of(first, struct dns_request, node);

		list_remove(&r->node);
		deliver_one(e, r->port, r->cb, r->arg);
		free(r);
	}
	e->delivering--;
}

static void on_gai(int result, struct evutil_addrinfo *res, void *arg)
{
	struct dns_entry *e = arg;

	e->query = NULL;
	e->querying = false;
	if (e->orphaned) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		entry_free(e);
		return;
	}
	store_answer(e, result, res);
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (!e->starting)
		deliver_all(e);
}

static void start_query(struct dns_entry *e)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *q;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* skip AAAA (or A) queries on hosts that have no address of that family */
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;

	e->querying = true;
	e->starting = true;
	log_noise("DNS: looking up %s", e->name);
	q = evdns_getaddrinfo(evdns, e->name, NULL, &hints, on_gai, e);
	e->starting = false;
	if (!e->querying)
		return; /* answered at once (hosts file) */
	if (q == NULL) {
		e->querying = false;
		clear_answer(e);
		e->answered = true;
		e->answered_at = clock_now();
		set_error(e, "could not start DNS query");
		return;
	}
	e->query = q;
}

static bool expired(const struct dns_entry *e, double now)
{
	double ttl = e->error != NULL ? nxdomain_ttl : max_ttl;

	return now - e->answered_at >= ttl;
}

static bool idle(const struct dns_entry *e)
{
	return !e->querying && !e->delivering && list_empty(&e->waiters);
}

/* Find the entry for name, dropping expired idle entries met on the way; create it if missing. */
static struct dns_entry *get_entry(const char *host)
{
	struct dns_entry **pp, *e;
	double now = clock_now();
	char *name;
	size_t i, len = strlen(host);
	unsigned h;

	name = malloc(len + 1);
	if (name == NULL)
		return NULL;
	for (i = 0; i <= len; i++)
		name[i] = (char)tolower((unsigned char)host[i]);
	h = hash_name(name);
	for (pp = &buckets[h]; (e = *pp) != NULL;) {
		if (strcmp(e->name, name) == 0) {
			free(name);
			return e;
		}
		if (idle(e) && (!e->answered || expired(e, now))) {
			*pp = e->next;
			entry_free(e);
			continue;
		}
		pp = &e->next;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		free(name);
		return NULL;
	}
	e->name = name;
	list_init(&e->waiters);
	e->next = buckets[h];
	buckets[h] = e;
	return e;
}

struct dns_request *dns_resolve(const char *host, int port, dns_result_fn cb, void *arg)
{
	struct dns_entry *e;
	struct dns_request *r;
	char msg[320];

	if (host == NULL || host[0] == '\0') {
		cb(arg, NULL, 0, "could not resolve an empty host name");
		return NULL;
	}
	if (resolve_literal(host, port, cb, arg))
		return NULL;
	if (evdns == NULL) {
		snprintf(msg, sizeof(msg), "could not resolve \"%.256s\": DNS resolver not initialized",
			 host);
		cb(arg, NULL, 0, msg);
		return NULL;
	}
	e = get_entry(host);
	if (e == NULL) {
		cb(arg, NULL, 0, "could not resolve host name: out of memory");
		return NULL;
	}
	if (e->answered && !e->querying && !expired(e, clock_now())) {
		deliver_one(e, port, cb, arg);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		cb(arg, NULL, 0, "could not resolve host name: out of memory");
		return NULL;
	}
	r->port = port;
	r->cb = cb;
	r->arg = arg;
	list_append(&e->waiters, &r->node);
	if (e->querying)
		return r;
	start_query(e);
	if (e->querying)
		return r;
	/* answered inside evdns_getaddrinfo(): r is the only waiter, so it is answered before we return */
	deliver_all(e);
	return NULL;
}

void dns_cancel(struct dns_request *req)
{
	if (req == NULL)
		return;
	/* the query itself runs on: its answer fills the cache */
	list_remove(&req->node);
	free(req);
}

static void evdns_log(int is_warning, const char *msg)
{
	if (is_warning)
		log_warning("DNS: %s", msg);
	else
		log_noise("DNS: %s", msg);
}

static void set_ttls(const struct config *cfg)
{
	if (cfg == NULL)
		return;
	max_ttl = cfg->dns_max_ttl;
	nxdomain_ttl = cfg->dns_nxdomain_ttl;
}

void dns_init(struct event_base *base, const struct config *cfg)
{
	const char *path = cfg != NULL ? cfg->resolv_conf : NULL;
	int flags = EVDNS_BASE_DISABLE_WHEN_INACTIVE;

	if (evdns != NULL)
		dns_shutdown();
	ev_base = base;
	set_ttls(cfg);
	evdns_set_log_fn(evdns_log);
	if (path == NULL || path[0] == '\0') {
		evdns = evdns_base_new(base, flags | EVDNS_BASE_INITIALIZE_NAMESERVERS);
	} else {
		static const char *const reasons[] = {
			"",
			"could not open the file",
			"could not stat the file",
			"the file is too large",
			"out of memory",
			"short read",
			"no nameserver listed",
		};
		int rc;

		evdns = evdns_base_new(base, flags);
		if (evdns != NULL) {
			rc = evdns_base_resolv_conf_parse(evdns, DNS_OPTIONS_ALL, path);
			if (rc != 0)
				log_warning("resolv_conf %s: %s; using what could be read and the defaults",
					    path,
					    rc > 0 && rc < (int)(sizeof(reasons) / sizeof(reasons[0])) ?
						    reasons[rc] :
						    "error");
		}
	}
	if (evdns == NULL)
		log_error("could not initialize the DNS resolver: host names will not resolve");
}

void dns_reconfigure(const struct config *cfg)
{
	set_ttls(cfg);
}

void dns_shutdown(void)
{
	int in_flight = 0;
	unsigned h;

	for (h = 0; h < DNS_BUCKETS; h++) {
		struct dns_entry *e, *next;

		for (e = buckets[h]; e != NULL; e = next) {
			next = e->next;
			if (e->querying) {
				struct list *pos, *tmp;

				LIST_FOREACH_SAFE (pos, tmp, &e->waiters) {
					list_remove(pos);
					free(container_of(pos, struct dns_request, node));
				}
				e->orphaned = true;
				in_flight++;
				if (e->query != NULL)
					evdns_getaddrinfo_cancel(e->query);
			} else {
				entry_free(e);
			}
		}
		buckets[h] = NULL;
	}
	if (evdns != NULL) {
		evdns_base_free(evdns, 0);
		evdns = NULL;
	}
	/*
	 * The cancelled queries report back through deferred callbacks, which free the orphaned entries.
	 * Inside a running loop libevent refuses (with a warning) and the running loop does it instead.
	 */
	if (in_flight > 0 && ev_base != NULL)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
	ev_base = NULL;
}
