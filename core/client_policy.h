/* Policy hooks on the client path: what Lua sees of a client and statement, and decisions turned into actions. */
#ifndef MB_CLIENT_POLICY_H
#define MB_CLIENT_POLICY_H

#include <stdbool.h>

#include "config.h"
#include "policy.h"
#include "sbuf.h"

struct client;
struct server;
struct db_entry;

/* What on_connect decided, applied by the login code. */
struct connect_choice {
	const struct db_entry *db;
	const char *db_name;
	const char *server_user;
	enum pool_mode pool_mode;	/* POOL_MODE_UNSET: the configured one */
};

/* on_connect. False when the client was rejected (and closed). Strings in *choice live as long as the client. */
bool cpol_connect(struct client *c, struct connect_choice *choice);
/* on_query for a Query, Parse or FunctionCall: may set the client's replacement, reject or tracks. */
void cpol_query(struct client *c, const struct sbuf_msg *msg);
/* on_transaction_begin for the request that is about to take a server; may reject or route. */
void cpol_begin(struct client *c, const struct sbuf_msg *msg);
void cpol_disconnect(struct client *c);
/* A request that ends here: answer the client or make the server fail in its place. */
enum sbuf_action cpol_reject(struct client *c, const struct sbuf_msg *msg);
void cpol_forget(struct client *c);

#endif
