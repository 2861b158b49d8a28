/* Process-wide state: the event loop, the config and auth_file in force, shutdown mode. */
#ifndef MB_RUNTIME_H
#define MB_RUNTIME_H

#include <stdbool.h>

#include <event2/event.h>

struct config;
struct authfile;
struct hba;

enum shutdown_mode {
	SHUTDOWN_NONE = 0,
	SHUTDOWN_WAIT_SERVERS, /* SIGINT: stop accepting, exit once no server is in use */
	SHUTDOWN_WAIT_CLIENTS, /* SIGTERM: stop accepting, exit once every client has left */
};

struct runtime {
	struct event_base *base;
	struct config *cfg;
	struct authfile *auth;
	struct hba *hba;		  /* auth_hba_file, when auth_type = hba */
	enum shutdown_mode shutdown;
	bool exiting;			  /* the loop has ended: close everything at once */
	bool paused;			  /* SIGUSR1: no server is handed out until SIGUSR2 */
	int n_clients;			  /* client connections, logging in or not (max_client_conn) */
	unsigned long long total_clients; /* ever accepted (ids) */
};

extern struct runtime rt;

/* What the runtime needs from the connection modules; main wires them in at start-up. */
struct rt_hooks {
	void (*reap)(void);	     /* free the closed clients and servers */
	int (*servers_in_use)(void); /* server connections a client holds (SIGINT's shutdown waits for 0) */
};

/* Start the loop's services on base (rt.base); false if the reap event cannot be made. */
bool rt_start(struct event_base *base, const struct rt_hooks *hooks) __attribute__((warn_unused_result));
/* Free what rt_start made (before the event base goes). */
void rt_stop(void);

/* Monotonic seconds, read afresh on every call (runtime.c says why it is not cached per loop iteration). */
double rt_now(void);
/* Called by shutdown logic whenever something that might end the process happened. */
void rt_check_shutdown(void);
/* Free closed clients and servers once the current callbacks have returned. */
void rt_schedule_reap(void);
/* Free them now (the janitor, and the end of the process). */
void rt_reap_now(void);

#endif
