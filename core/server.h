/* Server connections: connect, native login, reset, and the server side of the relay. */
#ifndef MB_SERVER_H
#define MB_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"
#include "list.h"
#include "params.h"
#include "sbuf.h"

struct pool;
struct client;
struct dns_request;

enum server_state {
	SV_LOGIN = 1,	/* pool->login_servers */
	SV_IDLE,	/* pool->idle_servers */
	SV_ACTIVE,	/* pool->active_servers: linked to a client */
	SV_USED,	/* pool->used_servers: running our own query */
	SV_CLOSED,	/* free list */
};

/* What we do with server messages right now. */
enum server_phase {
	PHASE_CONNECT = 0,	/* resolving, connecting */
	PHASE_LOGIN,		/* startup sent, authentication and welcome */
	PHASE_RELAY,		/* messages go to the linked client */
	PHASE_INTERNAL,		/* our own query runs; answers are consumed */
	PHASE_IDLE,		/* nothing expected */
};

/* Why an internal query runs, i.e. what to do when it ends. */
enum internal_goal {
	INTERNAL_NONE = 0,
	INTERNAL_RESET,		/* server_reset_query, then back to the pool */
	INTERNAL_APPLY,		/* client parameters, then relay */
};

struct server {
	struct sbuf sb;
	enum server_state state;
	enum server_phase phase;
	enum internal_goal goal;
	struct list head;
	unsigned long long id;
	struct pool *pool;
	struct client *client;

	struct dns_request *dns;
	struct sockaddr_storage addr;	/* where it is connected (cancel requests go there too) */
	socklen_t addrlen;
	char unix_path[108];		/* non-empty for unix sockets */

	uint32_t backend_pid;
	uint32_t backend_key;
	struct scram_client scram;
	bool scram_active;

	struct param_set params;	/* values in force on this connection, as far as we know */
	struct param_set defaults;	/* values announced at login */
	char txn_status;		/* from the last ReadyForQuery: 'I', 'T', 'E' */
	int pending_ready;		/* ReadyForQuery answers still to come */
	bool internal_failed;		/* our own query got an ErrorResponse */
	char internal_error[256];
	bool dirty;			/* a client changed session state */

	double connect_time;
	double last_used;
};

/* Open a new server connection for the pool (asynchronous). */
void server_launch(struct pool *pool);
/* Link to a client: apply its parameters if needed, then relay. */
void server_link(struct server *server, struct client *client);
/* The client is done with it: reset if needed and return to the pool. */
void server_release(struct server *server);
/* Close (and free later); reason is logged. */
void server_close(struct server *server, const char *reason);
void server_change_state(struct server *server, enum server_state state);
/* Send a CancelRequest for this server's running query on a new connection. */
void server_send_cancel(struct server *server);
void server_free_closed(void);

#endif
