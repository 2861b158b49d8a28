/* The link between a client and its server: who serves whom, the requests in flight, the end of a transaction
 * and the release that follows, and the tenant's admission before it. */
#ifndef MB_LINK_H
#define MB_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"
#include "sbuf.h"
#include "server.h"

struct client;

/*
 * Request accounting lives in the server (pending_ready, batch_open,
 * txn_status) and is written here only. The two questions asked of it:
 */

/* No request is running and no transaction is open: everything the client sent has been answered. */
static inline bool link_idle(const struct server *s)
{
	return s->pending_ready == 0 && s->txn_status == PROTO_TXN_IDLE;
}

/* Between transactions: idle, and no extended-protocol batch waits for its Sync. */
static inline bool link_between_transactions(const struct server *s)
{
	return link_idle(s) && !s->batch_open;
}

/* Hand s to c (the pool's choice): apply c's parameters if they differ, then relay. */
void link_hand_over(struct server *s, struct client *c);
/* Undo the link (nothing if s has no client): each side forgets the other. */
void link_detach(struct server *s);

/* A client message is about to go to s: an extended-protocol message opens a batch until its Sync. */
void link_batch_msg(struct server *s, uint8_t type);
/* It goes: a Query, Sync or FunctionCall is one more ReadyForQuery to wait for (a Sync closes the batch). */
void link_request_msg(struct server *s, uint8_t type);
/* A request the core sends itself in the client's stead (a policy's reject): one more ReadyForQuery. */
void link_request_sent(struct server *s);
/* A ReadyForQuery from s with this status: true when it answered the last request in flight. */
bool link_ready(struct server *s, char status);
/* How that ReadyForQuery goes to the client: at the end of a transaction (transaction and statement mode)
 * the server is released once it has been delivered (link_forwarded). */
enum sbuf_action link_ready_relay(struct server *s);
/* The ReadyForQuery that ended a transaction reached the client's socket: unlink and release the server. */
void link_forwarded(struct server *s);

/* A client that needs a server for a new transaction: its tenant's limits first. False: it waits. */
bool link_admit(struct client *c);
/* Its tenant let it start: go on with the waiting request. */
void link_tenant_admitted(struct client *c);
/* The client is closing: its server goes back (or closes) and its tenant slot is freed. */
void link_client_gone(struct client *c);
/* The server broke or timed out under its client: both connections close. */
void link_server_lost(struct server *s, const char *server_reason, const char *sqlstate, const char *client_msg);
/* The client's parameters were applied on its new server (error: "SQLSTATE text" when they were refused). */
void link_applied(struct server *s, const char *error);
/* A CancelRequest for c: sent on if a request of c runs on its server. Returns PgBouncer's words for it. */
const char *link_cancel(struct client *c);
/* query_timeout, idle_transaction_timeout, transaction_timeout of the client on its server. */
void link_timeouts(struct server *s);

#endif
