/* The admin console: the virtual database pgbouncer (or moonbouncer), its logins and its commands. */
#ifndef MB_ADMIN_H
#define MB_ADMIN_H

#include <stdbool.h>

#include "runtime.h"
#include "sbuf.h"

struct client;

/* What the console asks of the process (main wires them in). */
struct admin_hooks {
	bool (*reload)(void);			/* false: the old configuration stays */
	void (*shutdown)(enum shutdown_mode mode);	/* SHUTDOWN_NONE: exit at once */
	void (*resume)(void);			/* the global pause ends */
};
void admin_init(const struct admin_hooks *hooks);

/* Is this database name the console's? */
bool admin_is_console_db(const char *database);
/*
 * Before authentication: the same OS user over the unix socket as user pgbouncer, and with auth_type any a
 * user in admin_users or stats_users, are let in without a password (PgBouncer's rules). True if let in.
 */
bool admin_pre_login(struct client *c);
/* Authenticated (or let in): admin_users may do everything, stats_users SHOW; anyone else is refused. */
enum sbuf_action admin_login(struct client *c);
/* A message from a console client. */
enum sbuf_action admin_msg(struct client *c, const struct sbuf_msg *msg);
/* Periodic work: PAUSE closes idle servers as they come; waiting PAUSE and WAIT_CLOSE answer when done. */
void admin_janitor(void);

#endif
