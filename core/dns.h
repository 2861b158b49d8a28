/* Non-blocking name resolution on libevent's evdns, with a TTL cache and round robin over the answers. */
#ifndef MB_DNS_H
#define MB_DNS_H

#include <sys/socket.h>

struct config;
struct event_base;

struct dns_request;

/* addr is NULL and error set on failure; both are only valid during the call. */
typedef void (*dns_result_fn)(void *arg, const struct sockaddr *addr, socklen_t addrlen, const char *error);

void dns_init(struct event_base *base, const struct config *cfg); /* resolv_conf if set, else system */
void dns_reconfigure(const struct config *cfg);			  /* on reload: new TTLs */

/*
 * Resolve host (IP literals answered at once, without evdns) and deliver one address with port set.
 * Answers are cached dns_max_ttl seconds and failures dns_nxdomain_ttl seconds, whatever TTL the DNS
 * records carry (as PgBouncer does); 0 means an answer is not reused by later calls. If the answer is
 * available synchronously the callback runs before dns_resolve returns and NULL is returned; otherwise a
 * request handle is returned that can be cancelled (after cancel the callback never runs; a handle must
 * not be used once its callback has run). Several addresses: rotate among them (round robin) across calls.
 * Concurrent lookups of the same uncached name share one evdns query.
 */
struct dns_request *dns_resolve(const char *host, int port, dns_result_fn cb, void *arg);
void dns_cancel(struct dns_request *req);

/*
 * Drop the cache and pending requests (their callbacks never run) and free the resolver. If queries were
 * in flight, one non-blocking pass of the event loop lets libevent finish cancelling them, so call it after
 * the loop has returned and the other modules have shut down. Not to be called from a dns_result_fn.
 */
void dns_shutdown(void);

#endif
