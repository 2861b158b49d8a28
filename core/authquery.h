/* auth_query: the secret of a user missing from auth_file, fetched from PostgreSQL as auth_user while the login waits. */
#ifndef MB_AUTHQUERY_H
#define MB_AUTHQUERY_H

#include <stdbool.h>
#include <stddef.h>

struct client;

/*
 * The end of a lookup, always called from the event loop (never from within authq_start). secret: what the
 * query returned (malloc'ed, the callee owns it), or NULL when there is no such user, it cannot log in, its
 * password is NULL or expired, or the lookup failed (error then says why, for the log).
 */
typedef void (*authq_done_fn)(struct client *client, char *secret, const char *error);

/* Is an auth_user set for the entry the client's database resolves to (its own or the global one)? */
bool authq_applies(const char *database);
/*
 * Run auth_query for client->user on a connection of its own to the entry's database (or auth_dbname's),
 * logged in as auth_user with its auth_file secret and with no parameter of the client. False (err says
 * why) when it cannot start: auth_dbname names no entry, no memory.
 */
bool authq_start(struct client *client, authq_done_fn done, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The client went: its lookup's connection closes, done is not called. */
void authq_client_gone(struct client *client);
/* After a reload: lookups follow their entry (one that has gone fails). */
void authq_reconfigure(void);

#endif
