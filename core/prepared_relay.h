/* Prepared statements on the relay path: renaming, preparing on demand, and answers we give ourselves. */
#ifndef MB_PREPARED_RELAY_H
#define MB_PREPARED_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "sbuf.h"

struct client;
struct server;

/* Tracking applies to this client (a non-session pool mode and max_prepared_statements > 0). */
bool ps_relay_enabled(const struct client *c);

/*
 * A client message while no server is linked. Returns true with *act set
 * when it was answered or refused here (Parse of a statement known to be
 * valid, Close, Sync, Flush, a Query of DEALLOCATEs of tracked names): those
 * never wait for a server. A Parse refused here (a name the client has, one
 * more than max_client_prepared_statements) returns false with
 * c->reject_msg set: the caller rejects it.
 */
bool ps_relay_client_unlinked(struct client *c, const struct sbuf_msg *msg, enum sbuf_action *act);

/*
 * A client message while linked to s (relay phase). Returns true with *act
 * set when handled here (renamed, replaced or answered); false: relay as
 * usual, unless c->reject_msg was set (a refused Parse, as above).
 */
bool ps_relay_client(struct client *c, struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act);

/*
 * A Query while linked to s, once the session scan has seen it: a DEALLOCATE
 * of a name tracked here becomes a no-op the server runs in its place, and
 * the Query then goes out as the client's session_msg. True with *act set
 * when the message must stop here (out of memory).
 */
bool ps_relay_query(struct client *c, struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act);
/* One statement of a Query is a DEALLOCATE of a name tracked for c (it leaves the server's session as it was). */
bool ps_relay_deallocates(const struct client *c, const char *stmt, size_t len);

/*
 * A server message in the relay phase: ParseComplete/CloseComplete to relay,
 * drop or convert; errors and ReadyForQuery settle the expected answers.
 * Returns true with *act set when the message must not take the usual path.
 */
bool ps_relay_server(struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act);

/* The server dropped every statement (DISCARD ALL) or is closing. */
void ps_relay_server_forget(struct server *s);

#endif
