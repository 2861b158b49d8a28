/* Server connections: connect, native login, reset, and the server side of the relay. */
#ifndef MB_SERVER_H
#define MB_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"
#include "list.h"
#include "params.h"
#include "prepared.h"
#include "replies.h"
#include "sbuf.h"

struct pool;
struct client;
struct server;
struct dns_request;
struct cancel_conn;

/* What a server reports to its pool (pool.c gives every pool its table). */
struct server_pool_events {
	void (*ready)(struct server *server);	/* ready for work: logged in, reset, checked, cancels delivered */
	void (*gone)(struct pool *pool);	/* a server has gone: the pool may need another */
	/* a login failed; retry: the server could not be reached, waiting clients wait for the next try */
	void (*login_failed)(struct pool *pool, const char *sqlstate, const char *message, bool retry);
	/* the pool's own lookup (server_lookup): each DataRow's body, then its end (error NULL if it ran) */
	void (*lookup_row)(struct server *server, const uint8_t *row, size_t len);
	void (*lookup_done)(struct server *server, const char *error);
};

/* What a linked server reports to the link (link.c sets it when it hands the server to a client). */
struct server_link_events {
	bool (*ready)(struct server *server, char status);	/* a ReadyForQuery: true if the last one owed */
	enum sbuf_action (*ready_relay)(struct server *server);	/* how that ReadyForQuery goes to the client */
	void (*forwarded)(struct server *server);		/* the ReadyForQuery ending a transaction was sent */
	void (*applied)(struct server *server, const char *error); /* the client's parameters are in force */
	void (*detach)(struct server *server);			/* it is closing: its client forgets it */
	void (*lost)(struct server *server, const char *server_reason, const char *sqlstate, const char *client_msg);
};

enum server_state {
	SV_LOGIN = 1,	/* pool->login_servers */
	SV_IDLE,	/* pool->idle_servers */
	SV_ACTIVE,	/* pool->active_servers: linked to a client */
	SV_USED,	/* pool->used_servers: running our own query */
	SV_CLOSING,	/* pool->closing_servers: Terminate sent, counted until the server hangs up */
	SV_CLOSED,	/* free list */
};

/* What we do with server messages right now. */
enum server_phase {
	PHASE_CONNECT = 0,	/* resolving, connecting */
	PHASE_TLS,		/* SSLRequest sent: its one-byte answer, then the TLS handshake */
	PHASE_LOGIN,		/* startup sent, authentication and welcome */
	PHASE_RELAY,		/* messages go to the linked client */
	PHASE_INTERNAL,		/* our own query runs; answers are consumed */
	PHASE_IDLE,		/* nothing expected */
	PHASE_CLOSING,		/* going away: everything is dropped */
};

/* Why an internal query runs, i.e. what to do when it ends. */
enum internal_goal {
	INTERNAL_NONE = 0,
	INTERNAL_RESET,		/* server_reset_query, then back to the pool */
	INTERNAL_APPLY,		/* client parameters, then relay */
	INTERNAL_REAPPLY,	/* after RESET: the client's own values, then its ReadyForQuery */
	INTERNAL_CONNECT,	/* connect_query after login */
	INTERNAL_CHECK,		/* server_check_query before reuse */
	INTERNAL_LOOKUP,	/* a query for the pool itself (auth_query): rows and end go to its events */
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
	const struct server_link_events *link;	/* set once it has been linked to a client */

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
	struct param_memo params_memo;	/* which of params differ from defaults */
	char txn_status;		/* from the last ReadyForQuery: 'I', 'T', 'E' */
	int pending_ready;		/* ReadyForQuery answers still to come */
	bool batch_open;		/* extended-protocol messages sent since the last Sync: not done yet */
	bool internal_failed;		/* our own query got an ErrorResponse */
	char internal_error[256];
	bool dirty;			/* a client changed session state */
	bool library_loaded;		/* a LOAD ran: no reset unloads a library, so it closes when released */
	bool used;			/* has served a client (server_lifetime = 0 closes it then) */
	unsigned conn_generation;	/* the pool's, when it was opened */
	int last_mode;			/* pool mode of the last client (enum pool_mode) */

	double connect_time;
	double last_used;
	double closing_since;
	double query_start;		/* when the oldest outstanding request was sent */
	double ready_time;		/* when the last outstanding request was answered */
	double xact_start;		/* when the open transaction began */
	int cancels_in_flight;		/* cancel requests not yet delivered */
	bool await_cancel;		/* released, held back until those are delivered */
	struct cancel_conn *cancels;	/* those requests, so that closing can detach them */
	struct ps_server ps_cache;	/* prepared statements it holds under our names */
	struct replies replies;		/* what becomes of the answers it still owes, in order */
};

/* Open a new server connection for the pool (asynchronous). */
void server_launch(struct pool *pool);
/* About to serve a client: apply the parameters it wants that the server lacks. True while that query runs
 * (relay starts when it ends), false when nothing was to be done. */
bool server_apply(struct server *server, const struct param_set *want);
/* Run sql with one text parameter (extended protocol) for the pool itself; the server must be logged in and
 * unlinked. Rows and the end go to the pool's lookup events. */
void server_lookup(struct server *server, const char *sql, const char *param);
/* Unlinked and between transactions: reset if needed and return to the pool. */
void server_release(struct server *server);
/* Close (and free later); reason is logged. */
void server_close(struct server *server, const char *reason);
/* Its client went away and it cannot serve another as it is: closed with PgBouncer's reason for its state. */
void server_close_abandoned(struct server *server);
void server_change_state(struct server *server, enum server_state state);
/* Send a CancelRequest for this server's running query on a new connection. */
void server_send_cancel(struct server *server);
void server_free_closed(void);
/* A closing server that has not hung up within the grace period is cut off. */
void server_closing_janitor(struct server *server);
/* Idle past server_check_delay with a server_check_query set. */
bool server_needs_check(const struct server *server);
/* Run server_check_query; the server goes back to the pool (or closes) afterwards. */
void server_check(struct server *server);
/* Past server_lifetime (closed on release, never in the middle of a transaction). */
bool server_past_lifetime(const struct server *server);
/* server_connect_timeout passed during connect or login. */
void server_login_timeout(struct server *server);

#endif
