/* Logged-in clients: each message on its way to a server, and the session changes it makes there. */
#ifndef MB_CLIENT_RELAY_H
#define MB_CLIENT_RELAY_H

#include "sbuf.h"

struct client;

/* A message from a logged-in client (CL_ACTIVE). */
enum sbuf_action client_relay_msg(struct client *client, const struct sbuf_msg *msg);
/* Periodic checks: login and idle timeouts, and those of linked servers. */
void client_janitor(void);

#endif
