/* Process-wide state: the event loop, the config and auth_file in force, shutdown mode. */
#ifndef MB_RUNTIME_H
#define MB_RUNTIME_H

#include <stdbool.h>

#include <event2/event.h>

struct config;
struct authfile;

enum shutdown_mode {
	SHUTDOWN_NONE = 0,
	SHUTDOWN_WAIT_SERVERS,	/* SIGINT: stop accepting, exit once no server is in use */
	SHUTDOWN_WAIT_CLIENTS,	/* SIGTERM: stop accepting, exit once every client has left */
};

struct runtime {
	struct event_base *base;
	struct config *cfg;
	struct authfile *auth;
	enum shutdown_mode shutdown;
	bool exiting;		/* the loop has ended: close everything at once */
	bool paused;		/* SIGUSR1: no server is handed out until SIGUSR2 */
	int n_clients;		/* every client connection, logging in or not (max_client_conn) */
	unsigned long long total_clients;	/* ever accepted (ids) */
};

extern struct runtime rt;

/* Monotonic seconds, cached per loop iteration by libevent. */
double rt_now(void);
/* Called by shutdown logic whenever something that might end the process happened. */
void rt_check_shutdown(void);
/* Free closed clients and servers once the current callbacks have returned. */
void rt_schedule_reap(void);

#endif
