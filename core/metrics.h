/* The Prometheus endpoint: GET /metrics over HTTP on metrics_listen. */
#ifndef MB_METRICS_H
#define MB_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/*
 * Start-up: listen on metrics_listen ("host:port", "[v6addr]:port" or "*:port" for every IPv4 and IPv6
 * address; host names are resolved once, here) and answer GET /metrics from the loop of base. NULL or ""
 * serves nothing. False with the reason in err ("could not bind metrics_listen 127.0.0.1:9127: Address
 * already in use"); nothing is left open then.
 */
bool metrics_start(struct event_base *base, const char *listen, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* On reload: if metrics_listen changed, close the endpoint and open the new one; a failure is logged and
 * leaves the endpoint closed until a reload that works. Nothing is opened once a shutdown began. */
void metrics_reconfigure(const char *listen);
/* Close the endpoint and the scrapes in progress (shutdown; again is harmless). */
void metrics_stop(void);

#endif
