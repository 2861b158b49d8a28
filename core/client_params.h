/* What a client's session should have on any server, what it has been told, and the settings that follow it. */
#ifndef MB_CLIENT_PARAMS_H
#define MB_CLIENT_PARAMS_H

#include <stdbool.h>

#include "params.h"
#include "proto.h"
#include "sbuf.h"

struct client;
struct policy_track;

/* Parameters that follow every client from server to server (and track_extra_parameters). */
bool client_param_always_tracked(const char *name);
/* Server-side ParameterStatus while linked: update what the client wants and has seen. */
void client_param_from_server(struct client *client, const char *name, const char *value, bool forward);
/* ParameterStatus while defer_status: kept back until the restore after RESET has run. */
void client_param_deferred(struct client *client, const char *name, const char *value);
/* Send what was kept back, with the server's final values (server_params, or as received when NULL). */
void client_param_flush_deferred(struct client *client, const struct param_set *server_params);
/* Linked to a server (transaction, statement mode): tell it the role settings there if they differ. */
void client_param_resync_roles(struct client *client, const struct param_set *server_params);

/*
 * RESET, in one place: the client's parameters return to its startup values
 * and server_params records what the server then holds. restored: the
 * startup value has been set on the server again (by a statement the core
 * added or a restoring query); otherwise a value the server never reported
 * is forgotten.
 */
void client_param_reset(struct client *client, struct param_set *server_params, const char *name, bool restored);
/* RESET ALL (the names it leaves alone stay as they are on the server). */
void client_param_reset_all(struct client *client, struct param_set *server_params);
/*
 * At the end of a request: the RESETs the session scan noted return to the
 * client's own values. True when restore holds a query that sets them on the
 * server again (its values are recorded in server_params already).
 */
bool client_param_apply_resets(struct client *client, struct param_set *server_params, struct pktbuf *restore);

/* A setting the core follows for the client once its transaction commits (reset: value NULL; RESET ALL:
 * name NULL, reset_all). */
bool client_param_track_add(struct client *client, const char *name, const char *value, bool reset_all)
	__attribute__((warn_unused_result));
/* The same for a policy's tracked setting, whose strings it takes over. */
bool client_param_track_take(struct client *client, struct policy_track *tr) __attribute__((warn_unused_result));
/* Server answers that decide whether tracked settings survive. */
void client_param_note_server_msg(struct client *client, const struct sbuf_msg *msg);
/* Once the request's transaction has ended: keep the tracked settings if it committed. */
void client_param_settle_tracks(struct client *client, struct param_set *server_params, char txn_status);
void client_param_tracks_free(struct client *client);

#endif
