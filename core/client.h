/* Client connections: startup, authentication, and the client side of the relay. */
#ifndef MB_CLIENT_H
#define MB_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "auth.h"
#include "config.h"
#include "authfile.h"
#include "list.h"
#include "params.h"
#include "prepared.h"
#include "sbuf.h"
#include "session.h"
#include "stats_count.h"

struct pool;
struct server;
struct tenant;
struct policy_track;

enum client_state {
	CL_LOGIN = 1,	/* global login list: startup packet and authentication */
	CL_WELCOME,	/* pool->welcome_clients: authenticated, waiting for the pool's welcome parameters */
	CL_ACTIVE,	/* pool->active_clients: logged in (maybe linked to a server) */
	CL_WAITING,	/* pool->waiting_clients (of txn_pool if routed): needs a server */
	CL_TENANT_WAIT,	/* tenant->waiting: its tenant is at max_active or out of rate tokens */
	CL_CLOSED,	/* free list: socket closed, memory released on the next loop turn */
};

enum client_auth_step {
	AUTH_STEP_STARTUP = 0,
	AUTH_STEP_LOOKUP,	/* auth_query runs for its secret: nothing is read from it */
	AUTH_STEP_PASSWORD,	/* cleartext or md5 answer expected */
	AUTH_STEP_SASL_INIT,	/* SASLInitialResponse expected */
	AUTH_STEP_SASL_FINAL,	/* SASLResponse expected */
	AUTH_STEP_DONE,
};

/* What the layers above do when a client goes (set by the code that accepted it). */
struct client_hooks {
	void (*closing)(struct client *client);	/* before its socket closes: its server, tenant, pool, policy */
	void (*freeing)(struct client *client);	/* before its memory goes */
};

struct client {
	struct sbuf sb;
	const struct client_hooks *hooks;
	enum client_state state;
	struct list head;		/* in the list of its state */
	struct list all;		/* in the list of every client (cancel look-ups, shutdown) */
	unsigned long long id;
	struct pool *pool;
	struct server *server;		/* linked server, or NULL */

	char *user;
	char *database;
	struct param_set params;	/* what this client's session should have on any server */
	struct param_set reported;	/* what the client has been told with ParameterStatus */
	struct param_set startup;	/* its startup values: what RESET returns to */
	struct param_set pending_resets; /* names RESET in the running request ("all" for RESET ALL); value "r":
					  * its startup value is set again before the ReadyForQuery */
	struct session_hidden hidden;	/* statements the core added to its Queries, answers in flight */
	struct pktbuf session_msg;	/* the Query with those statements added */
	bool noted;			/* the message at hand went through the session scan */
	bool role_told;			/* has heard of session_authorization or is_superuser from a server */
	bool defer_status;		/* a restore after RESET is due: ParameterStatus waits for its final value */
	struct param_set deferred_status; /* what waits */
	enum pool_mode pool_mode;	/* fixed at login: a reload changes it for new clients only */
	struct ps_client ps;		/* its named prepared statements (transaction pooling) */

	/* policies */
	struct tenant *tenant;
	bool tenant_active;		/* holds one of its tenant's max_active slots */
	struct pool *txn_pool;		/* this transaction was routed to another pool */
	char *route_name;		/* on_connect route, owned */
	char *server_user;		/* on_connect user, owned */
	bool checked;			/* on_query ran for the message at hand */
	bool began;			/* on_transaction_begin ran for this transaction */
	bool skip_to_sync;		/* a rejected Parse: drop messages until Sync, as PostgreSQL does */
	bool msg_tracked;		/* the message's SETs are tracked by a policy: they leave the server clean */
	bool stateless;			/* scanned_text changes no session state (the policy's kinds scan found so;
					 * the session scan reuses the answer instead of tokenizing again) */
	uint32_t scanned_len;
	const char *scanned_text;	/* the text of the message at hand last scanned, or NULL */
	struct pktbuf replacement;	/* rewritten message to send instead */
	struct pktbuf reject_msg;	/* ErrorResponse for a rejected request */
	struct policy_track *track;	/* tracked SETs waiting for their transaction to commit */
	int n_track, cap_track;
	bool track_failed;		/* that transaction failed or rolled back */
	uint32_t cancel_pid;
	uint32_t cancel_key;

	/* the admin console (database pgbouncer): no pool, no server; console_admin may run every command */
	bool console;
	bool console_admin;
	int console_wait;		/* a PAUSE or WAIT_CLOSE answered once done (enum in admin.c) */
	char console_wait_db[128];	/* its database, or empty for all */

	/* authentication */
	enum client_auth_step auth_step;
	char *secret;			/* copy of the auth_file secret, or NULL */
	enum auth_type auth_method;	/* how this login is checked (auth_type, or the hba rule's method) */
	bool secret_from_query;		/* secret came from auth_query */
	uint8_t md5_salt[4];
	struct scram_server *scram;	/* only during a SCRAM login */

	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;				/* TCP peer (unused for unix sockets) */
	bool is_unix;
	bool ssl_requested;		/* answered an SSLRequest (one is allowed) */
	bool gssenc_requested;		/* answered a GSSENCRequest (one is allowed) */

	double connect_time;
	double request_time;		/* when it started waiting for a server */
	bool wait_notified;		/* query_wait_notify sent for this wait */
	double last_activity;		/* last message from the client */
	struct stats_request stats;	/* its running query and transaction, for SHOW STATS */
};

/* A new connection joins the login list and counts against max_client_conn. */
void client_register(struct client *client);
/* Clients still logging in; every client. */
struct list *client_logins(void);
struct list *client_all(void);
/* The SCRAM exchange is over (or failed): its state goes. */
void client_drop_scram(struct client *client);
/* Send an ErrorResponse (FATAL) and close; the reason is also logged. */
void client_fatal(struct client *client, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Send a NoticeResponse (the client may be waiting; notices are allowed at any time). */
void client_notice(struct client *client, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Close quietly (the reason is logged if log_disconnections). */
void client_close(struct client *client, const char *reason);
/* The pool linked a server to this waiting or active client; relay may begin. */
void client_linked(struct client *client);
/* Send the welcome (ParameterStatus set, BackendKeyData, ReadyForQuery) now that the pool has it. */
void client_send_welcome(struct client *client);
/* Timeouts that [users] (and for query_wait_timeout [databases]) entries may override. */
enum client_timeout {
	TIMEOUT_QUERY,
	TIMEOUT_QUERY_WAIT,
	TIMEOUT_IDLE_TRANSACTION,
	TIMEOUT_TRANSACTION,
	TIMEOUT_CLIENT_IDLE,
};
/* The timeout in force for this client, in seconds (0: off). */
double client_timeout(const struct client *client, enum client_timeout which);
/* Is the connection under TLS (hostssl rules, cert logins)? */
bool client_tls_active(const struct client *client);
/* "1.2.3.4:5678", "[::1]:5678" or "unix", for messages. */
const char *client_addr(const struct client *client, char buf[64]);
/* The login log line's tls=: "no", or the protocol, cipher and key exchange. */
const char *client_tls(const struct client *client, char *buf, size_t len);
/* Find a client by the cancel key we gave it. */
struct client *client_find_by_cancel(uint32_t pid, uint32_t key);
void client_change_state(struct client *client, enum client_state state);
/* Free the memory of closed clients (called once per loop turn). */
void client_free_closed(void);
/* Close every client (shutdown). */
/* SIGINT: clients waiting for a server will not get one; they are closed ("server shutting down"). */
void client_shutdown_waiting(void);
void client_close_all(const char *reason);

#endif
