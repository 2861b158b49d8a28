/* The Prometheus endpoint: GET /metrics over HTTP on metrics_listen. */
#include "metrics.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "metrics_text.h"
#include "net.h"
#include "runtime.h"

#define METRICS_BACKLOG 16
#define METRICS_TIMEOUT_SECS 10	 /* an idle or slow scraper's connection */
#define METRICS_MAX_HEADERS 8192 /* a scrape is a bare GET */
#define METRICS_MAX_BODY 1024

static struct event_base *ev_base;
static struct evhttp *http;
static char *serving; /* the metrics_listen in force, NULL when closed */

/* A short plain-text answer (an error page of evhttp_send_error would drop the headers set here). */
static void send_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *body = evbuffer_new();

	if (!body) {
		evhttp_send_error(req, code, reason);
		return;
	}
	evbuffer_add_printf(body, "%s\n", text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	struct evbuffer *body;

	(void)arg;
	if (!path || strcmp(path, "/metrics") != 0) {
		send_text(req, HTTP_NOTFOUND, "Not Found", "not found: the metrics are at /metrics");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(headers, "Allow", "GET, HEAD");
		send_text(req, HTTP_BADMETHOD, "Method Not Allowed", "method not allowed: GET /metrics");
		return;
	}
	body = evbuffer_new();
	if (!body || !metrics_text_render(body)) {
		log_error("metrics: out of memory computing a scrape");
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		if (body)
			evbuffer_free(body);
		return;
	}
	evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

/* "host:port", "[v6]:port", "*:port" into host (NULL for every address) and port. */
static bool split_listen(const char *listen, char *host, size_t hostlen, char *port, size_t portlen,
			 bool *wildcard, char *err, size_t errlen)
{
	const char *colon = strrchr(listen, ':');
	size_t hlen = colon ? (size_t)(colon - listen) : 0;
	char *end;
	long p;

	if (!colon || colon[1] == '\0') {
		snprintf(err, errlen, "metrics_listen \"%s\": expected host:port", listen);
		return false;
	}
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535) {
		snprintf(err, errlen, "metrics_listen \"%s\": bad port", listen);
		return false;
	}
	snprintf(port, portlen, "%ld", p);
	if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
		listen++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= hostlen) {
		snprintf(err, errlen, "metrics_listen \"%s\": expected host:port", listen);
		return false;
	}
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	*wildcard = strcmp(host, "*") == 0;
	return true;
}

/* A listening socket on one address, handed to the server; a wildcard address the kernel lacks is skipped. */
static bool bind_one(struct evhttp *h, const struct addrinfo *ai, bool wildcard, char *err, size_t errlen)
{
	char name[128];
	int fd, on = 1;

	net_addr_str(ai->ai_addr, name, sizeof(name));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (wildcard && errno == EAFNOSUPPORT)
			return true;
		snprintf(err, errlen, "could not create a socket for metrics_listen %s: %s", name,
			 strerror(errno));
		return false;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* so that "*" binds 0.0.0.0 and :: on one port */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, METRICS_BACKLOG) != 0) {
		snprintf(err, errlen, "could not bind metrics_listen %s: %s", name, strerror(errno));
		close(fd);
		return false;
	}
	if (!evhttp_accept_socket_with_handle(h, fd)) {
		snprintf(err, errlen, "could not serve metrics_listen %s", name);
		close(fd);
		return false;
	}
	return true;
}

static struct evhttp *open_server(const char *listen, char *err, size_t errlen)
{
	char host[256], port[8];
	struct addrinfo *res = NULL;
	struct evhttp *h;
	bool wildcard, ok = true;
	int rc;

	if (!split_listen(listen, host, sizeof(host), port, sizeof(port), &wildcard, err, errlen))
		return NULL;
	rc = net_listen_addrinfo(host, port, wildcard, &res);
	if (rc != 0) {
		snprintf(err, errlen, "could not resolve metrics_listen \"%s\": %s", listen, net_gai_error(rc));
		return NULL;
	}
	h = evhttp_new(ev_base);
	if (!h) {
		snprintf(err, errlen, "metrics_listen: out of memory");
		freeaddrinfo(res);
		return NULL;
	}
	evhttp_set_timeout(h, METRICS_TIMEOUT_SECS);
	evhttp_set_max_headers_size(h, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(h, METRICS_MAX_BODY);
	/* every method reaches on_request, which answers 405 where libevent would say 501 */
	evhttp_set_allowed_methods(h, 0x1ff);
	evhttp_set_gencb(h, on_request, NULL);
	for (struct addrinfo *ai = res; ok && ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			ok = bind_one(h, ai, wildcard, err, errlen);
	}
	freeaddrinfo(res);
	if (!ok) {
		evhttp_free(h);
		return NULL;
	}
	return h;
}

bool metrics_start(struct event_base *base, const char *listen, char *err, size_t errlen)
{
	ev_base = base;
	if (!listen || !listen[0])
		return true;
	http = open_server(listen, err, errlen);
	if (!http)
		return false;
	serving = strdup(listen);
	if (!serving) {
		snprintf(err, errlen, "metrics_listen: out of memory");
		metrics_stop();
		return false;
	}
	log_info("metrics on http://%s/metrics", listen);
	return true;
}

void metrics_reconfigure(const char *listen)
{
	char err[512];

	if (!listen || !listen[0])
		listen = NULL;
	/* closed for good once a shutdown began, as the TCP listeners are */
	if (rt.shutdown != SHUTDOWN_NONE)
		return;
	if ((!serving && !listen) || (serving && listen && strcmp(serving, listen) == 0))
		return;
	metrics_stop();
	if (!listen)
		return;
	if (!metrics_start(ev_base, listen, err, sizeof(err)))
		log_error("%s: /metrics is off until a reload can open it", err);
}

void metrics_stop(void)
{
	if (http)
		evhttp_free(http);
	http = NULL;
	free(serving);
	serving = NULL;
}
