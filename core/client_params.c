/* What a client's session should have on any server, what it has been told, and the settings that follow it. */
#include "client_params.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "pool.h"
#include "runtime.h"
#include "session.h"

bool client_param_always_tracked(const char *name)
{
	static const char *const always[] = { "client_encoding", "DateStyle", "TimeZone", "IntervalStyle",
					      "standard_conforming_strings", "application_name" };
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		if (strcasecmp(always[i], name) == 0)
			return true;
	return config_list_contains(rt.cfg->track_extra_parameters, name);
}

/* Tracked parameters follow the client from server to server. */
static bool tracked_param(const struct client *c, const char *name)
{
	return client_param_always_tracked(name) || params_find(&c->params, name) != NULL;
}

/* Reported settings that never follow a client to another server: it hears their values again there. */
static const char *const ROLE_PARAMS[] = { "session_authorization", "is_superuser" };

void client_param_resync_roles(struct client *c, const struct param_set *server_params)
{
	for (size_t i = 0; i < sizeof(ROLE_PARAMS) / sizeof(ROLE_PARAMS[0]); i++) {
		const char *now = params_get(server_params, ROLE_PARAMS[i]);
		if (now)
			client_param_from_server(c, ROLE_PARAMS[i], now, true);
	}
}

void client_param_from_server(struct client *c, const char *name, const char *value, bool forward)
{
	const char *seen, *welcome;

	for (size_t i = 0; i < sizeof(ROLE_PARAMS) / sizeof(ROLE_PARAMS[0]); i++)
		if (strcasecmp(ROLE_PARAMS[i], name) == 0)
			c->role_told = true;

	if (tracked_param(c, name) && !params_set(&c->params, name, value, true))
		log_warning("C-%llu: out of memory tracking parameter %s", c->id, name);
	welcome = c->pool ? params_get(&c->pool->welcome, name) : NULL;
	seen = params_get(&c->reported, name);
	if (!seen)
		seen = welcome;
	if (seen && strcmp(seen, value) == 0)
		return;
	if (welcome && strcmp(welcome, value) == 0)
		params_remove(&c->reported, name);
	else if (!params_set(&c->reported, name, value, true))
		log_warning("C-%llu: out of memory tracking parameter %s", c->id, name);
	if (forward) {
		struct pktbuf b;
		pktbuf_init(&b);
		pkt_parameter_status(&b, name, value);
		sbuf_send_pkt(&c->sb, &b);
		pktbuf_free(&b);
	}
}

void client_param_deferred(struct client *c, const char *name, const char *value)
{
	if ((tracked_param(c, name) && !params_set(&c->params, name, value, true)) ||
	    !params_set(&c->deferred_status, name, value, true))
		log_warning("C-%llu: out of memory tracking parameter %s", c->id, name);
}

void client_param_flush_deferred(struct client *c, const struct param_set *server_params)
{
	c->defer_status = false;
	for (int i = 0; i < c->deferred_status.n; i++) {
		const struct param *d = &c->deferred_status.items[i];
		const char *now = server_params ? params_get(server_params, d->name) : NULL;
		client_param_from_server(c, d->name, now ? now : d->value, true);
	}
	params_clear(&c->deferred_status);
}

/* ---- RESET: back to the client's own (startup) values ---- */

void client_param_reset_all(struct client *c, struct param_set *server_params)
{
	params_clear(&c->params);
	params_drop_unreported(server_params);
	for (int i = 0; i < c->startup.n; i++) {
		const struct param *p = &c->startup.items[i];
		if ((!session_not_reset_by_all(p->name) && !params_set(server_params, p->name, p->value, false)) ||
		    !params_set(&c->params, p->name, p->value, false))
			log_warning("C-%llu: out of memory restoring parameters", c->id);
	}
}

void client_param_reset(struct client *c, struct param_set *server_params, const char *name, bool restored)
{
	const char *own = params_get(&c->startup, name);
	const struct param *sp = params_find(server_params, name);

	if (own) {
		if (!params_set(&c->params, name, own, false))
			log_warning("C-%llu: out of memory restoring %s", c->id, name);
	} else {
		params_remove(&c->params, name);
	}
	if (own && restored) {
		if (!params_set(server_params, name, own, false))
			params_remove(server_params, name);
	} else if (sp && !sp->reported) {
		params_remove(server_params, name);
	}
}

bool client_param_apply_resets(struct client *c, struct param_set *server_params, struct pktbuf *restore)
{
	int n_restore = 0;

	if (!c->pending_resets.n)
		return false;
	pkt_begin(restore, FE_QUERY);
	if (params_find(&c->pending_resets, "all")) {
		client_param_reset_all(c, server_params);
		n_restore = params_put_restore(restore, &c->startup, NULL, session_not_reset_by_all, NULL);
	} else {
		for (int i = 0; i < c->pending_resets.n; i++) {
			const char *name = c->pending_resets.items[i].name;
			bool restore_it = params_find(&c->startup, name) &&
					  strcmp(c->pending_resets.items[i].value, "r") == 0 &&
					  params_put_restore(restore, &c->startup, name, NULL, NULL) > 0;
			if (restore_it) {
				pkt_put_u8(restore, ';');
				n_restore++;
			}
			client_param_reset(c, server_params, name, restore_it);
		}
	}
	params_clear(&c->pending_resets);
	if (!n_restore) {
		pktbuf_reset(restore);
		restore->failed = false;
		return false;
	}
	pkt_put_u8(restore, 0);
	pkt_end(restore);
	return !restore->failed;
}

/* ---- settings tracked until their transaction commits ---- */

static bool track_room(struct client *c)
{
	if (c->n_track == c->cap_track) {
		int cap = c->cap_track ? c->cap_track * 2 : 4;
		struct policy_track *a = realloc(c->track, (size_t)cap * sizeof(*a));
		if (!a)
			return false;
		c->track = a;
		c->cap_track = cap;
	}
	return true;
}

bool client_param_track_add(struct client *c, const char *name, const char *value, bool reset_all)
{
	struct policy_track tr = { NULL, NULL, !reset_all && !value, reset_all };

	if ((name && !(tr.name = strdup(name))) || (value && !(tr.value = strdup(value))) || !track_room(c)) {
		free(tr.name);
		free(tr.value);
		return false;
	}
	c->track[c->n_track++] = tr;
	return true;
}

bool client_param_track_take(struct client *c, struct policy_track *tr)
{
	if (!track_room(c))
		return false;
	c->track[c->n_track++] = *tr;
	tr->name = tr->value = NULL;	/* moved */
	return true;
}

static void clear_tracks(struct client *c)
{
	for (int i = 0; i < c->n_track; i++) {
		free(c->track[i].name);
		free(c->track[i].value);
	}
	c->n_track = 0;
	c->track_failed = false;
}

void client_param_note_server_msg(struct client *c, const struct sbuf_msg *msg)
{
	if (!c->n_track)
		return;
	if (msg->type == BE_ERROR)
		c->track_failed = true;
	else if (msg->type == BE_COMMAND_COMPLETE && proto_tag_starts(msg->data, msg->avail, "ROLLBACK"))
		c->track_failed = true;	/* ROLLBACK, or COMMIT of a failed transaction */
}

static void apply_track(struct client *c, struct param_set *server_params, const struct policy_track *tr)
{
	/* a RESET in a Query was followed by the client's startup values (session.c), a RESET elsewhere by a
	 * restoring query before its ReadyForQuery (client_param_apply_resets): the server has those values now */
	if (tr->reset_all) {
		client_param_reset_all(c, server_params);
		return;
	}
	if (!tr->name)
		return;
	if (tr->reset) {
		client_param_reset(c, server_params, tr->name, true);
		return;
	}
	if (tr->value && (!params_set(&c->params, tr->name, tr->value, false) ||
			  !params_set(server_params, tr->name, tr->value, false)))
		log_warning("C-%llu: out of memory tracking %s", c->id, tr->name);
}

void client_param_settle_tracks(struct client *c, struct param_set *server_params, char txn_status)
{
	if (!c->n_track)
		return;
	if (txn_status == PROTO_TXN_BLOCK)
		return;	/* decided at COMMIT or ROLLBACK */
	if (txn_status == PROTO_TXN_FAILED) {
		c->track_failed = true;
		return;
	}
	if (!c->track_failed)
		for (int i = 0; i < c->n_track; i++)
			apply_track(c, server_params, &c->track[i]);
	clear_tracks(c);
}

void client_param_tracks_free(struct client *c)
{
	clear_tracks(c);
	free(c->track);
	c->track = NULL;
	c->cap_track = 0;
}
