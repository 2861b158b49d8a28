/* The link between a client and its server: who serves whom, the requests in flight, the end of a transaction
 * and the release that follows, and the tenant's admission before it. */
#include "link.h"

#include <stdio.h>
#include <string.h>

#include "client.h"
#include "client_params.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "runtime.h"
#include "stats_count.h"
#include "tenant.h"

static const struct server_link_events events = {
	.ready = link_ready,
	.ready_relay = link_ready_relay,
	.forwarded = link_forwarded,
	.applied = link_applied,
	.detach = link_detach,
	.lost = link_server_lost,
};

static void attach(struct server *s, struct client *c)
{
	s->link = &events;
	s->client = c;
	c->server = s;
	s->pending_ready = 0;
	s->batch_open = false;
	sbuf_set_peer(&c->sb, &s->sb);
	sbuf_set_peer(&s->sb, &c->sb);
}

void link_detach(struct server *s)
{
	struct client *c = s->client;

	if (!c)
		return;
	c->server = NULL;
	s->client = NULL;
	sbuf_set_peer(&c->sb, NULL);
	sbuf_set_peer(&s->sb, NULL);
}

void link_hand_over(struct server *s, struct client *c)
{
	double now = rt_now();

	s->pool->stats.server_assignment_count++;
	if (c->state == CL_WAITING) {
		s->pool->stats.wait_time += stats_usec(c->request_time, now);
		stats_wait_observe(c->request_time, now);
	}
	server_change_state(s, SV_ACTIVE);
	s->used = true;
	s->last_mode = c->pool_mode;
	s->last_used = now;
	attach(s, c);
	if (c->role_told && c->pool_mode != POOL_MODE_SESSION)
		client_param_resync_roles(c, &s->params);
	if (server_apply(s, &c->params)) {
		/* relay starts once they are in force (link_applied) */
		if (c->state == CL_WAITING)
			client_change_state(c, CL_ACTIVE);
		return;
	}
	s->phase = PHASE_RELAY;
	client_linked(c);
}

void link_applied(struct server *s, const char *error)
{
	struct client *c = s->client;
	char sqlstate[6];

	if (!error) {
		client_linked(c);
		return;
	}
	/* PostgreSQL refuses such a startup parameter at login: so do we, now that we know */
	memcpy(sqlstate, error, 5);
	sqlstate[5] = 0;
	client_fatal(c, sqlstate, "%s", error + 6);
}

/* ---- requests in flight ---- */

void link_request_sent(struct server *s)
{
	if (s->pending_ready++ == 0)
		s->query_start = rt_now();
}

void link_batch_msg(struct server *s, uint8_t type)
{
	switch (type) {
	case FE_PARSE:
	case FE_BIND:
	case FE_DESCRIBE:
	case FE_EXECUTE:
	case FE_CLOSE:
	case FE_FLUSH:
		/* until its Sync, an extended-protocol batch keeps the server even between ReadyForQuery answers */
		s->batch_open = true;
		break;
	}
}

void link_request_msg(struct server *s, uint8_t type)
{
	switch (type) {
	case FE_QUERY:
		link_request_sent(s);	/* each Query, Sync and FunctionCall gets one ReadyForQuery */
		break;
	case FE_SYNC:
		s->batch_open = false;
		link_request_sent(s);
		break;
	case FE_FUNCTION_CALL:
		s->dirty = true;	/* a function called by OID may be anything, advisory locks included */
		link_request_sent(s);
		break;
	}
}

bool link_ready(struct server *s, char status)
{
	double now = rt_now();

	if (s->txn_status == PROTO_TXN_IDLE && status != PROTO_TXN_IDLE)
		s->xact_start = s->query_start;
	s->txn_status = status;
	if (s->pending_ready > 0)
		s->pending_ready--;
	if (s->pending_ready > 0) {
		s->query_start = now;	/* the next pipelined request is running now */
		return false;
	}
	s->ready_time = now;
	if (s->client)
		stats_request_done(&s->pool->stats, &s->client->stats, status, now);
	return true;
}

/* ---- the end of a transaction ---- */

enum sbuf_action link_ready_relay(struct server *s)
{
	struct client *c = s->client;

	if (!c || s->pending_ready > 0 || s->batch_open || c->pool_mode == POOL_MODE_SESSION)
		return SBUF_FORWARD;
	if (s->txn_status == PROTO_TXN_IDLE)
		return SBUF_FORWARD_PAUSE;
	if (c->pool_mode == POOL_MODE_STATEMENT) {
		client_fatal(c, "0A000", "transaction blocks not allowed in statement pooling mode");
		return s->state == SV_CLOSED ? SBUF_CLOSED : SBUF_DROP;
	}
	return SBUF_FORWARD;
}

/* The transaction (or session) is over for limits and routing. */
static void transaction_ended(struct client *c)
{
	c->began = false;
	c->txn_pool = NULL;
	if (c->tenant_active && c->pool_mode != POOL_MODE_SESSION) {
		c->tenant_active = false;
		tenant_end(c->tenant);
	}
}

void link_forwarded(struct server *s)
{
	struct client *c = s->client;

	if (!c || !link_between_transactions(s))
		return;
	link_detach(s);
	transaction_ended(c);
	server_release(s);
}

/* ---- tenants ---- */

bool link_admit(struct client *c)
{
	if (c->tenant && !c->tenant_active) {
		if (!tenant_try_begin(c->tenant)) {
			if (c->tenant->rate_refused)
				c->tenant->rate_waits++;
			else
				c->tenant->active_waits++;
			c->request_time = rt_now();
			c->tenant->admit = link_tenant_admitted;	/* how its turn comes */
			client_change_state(c, CL_TENANT_WAIT);
			return false;
		}
		c->tenant_active = true;
	}
	return true;
}

void link_tenant_admitted(struct client *c)
{
	c->tenant_active = true;
	client_change_state(c, CL_ACTIVE);
	sbuf_resume(&c->sb);
}

/* ---- one side goes ---- */

/* Could the server go on serving others after this client vanished? */
static bool clean_after_client(const struct server *s, const struct client *c)
{
	if (s->phase == PHASE_INTERNAL)
		return s->goal == INTERNAL_APPLY;
	return s->phase == PHASE_RELAY && link_between_transactions(s) && !(c->sb.remain && !c->sb.remain_drop) &&
	       sbuf_input_pending(&s->sb) == 0 && !(s->sb.remain && !s->sb.remain_drop);
}

void link_client_gone(struct client *c)
{
	struct server *s = c->server;

	if (s) {
		bool clean = clean_after_client(s, c);
		link_detach(s);
		if (clean)
			server_release(s);
		else
			server_close_abandoned(s);
	}
	if (c->tenant_active) {
		c->tenant_active = false;
		tenant_end(c->tenant);
	}
	if (c->tenant)
		tenant_remove_client(c->tenant);
}

void link_server_lost(struct server *s, const char *server_reason, const char *sqlstate, const char *client_msg)
{
	struct client *c = s->client;
	/* the error may only start between two of the server's messages: one cut short leaves no room for it,
	 * and the client is closed without it (as it would see a server that went away) */
	bool between_messages = sbuf_relay_complete(&s->sb);

	link_detach(s);
	server_close(s, server_reason);
	if (between_messages)
		client_fatal(c, sqlstate, "%s", client_msg);
	else
		client_close(c, client_msg);
}

const char *link_cancel(struct client *c)
{
	/* only while a request runs: PostgreSQL ignores a cancel between statements, and a late one must not
	 * land on whatever the server runs next */
	if (c->server && c->server->phase == PHASE_RELAY && c->server->pending_ready > 0) {
		server_send_cancel(c->server);
		return "successfully sent cancel request";
	}
	log_debug("C-%llu: cancel request with no query running ignored", c->id);
	return "cancel request for idle client";
}

void link_timeouts(struct server *s)
{
	struct client *c = s->client;
	double now = rt_now(), limit, idle_since;

	if (!c || s->phase != PHASE_RELAY)
		return;
	if (s->pending_ready > 0) {
		/* as PgBouncer: a request past query_timeout costs the client its connection and closes the server,
		 * which also frees one whose network has gone */
		limit = client_timeout(c, TIMEOUT_QUERY);
		if (limit > 0 && now - s->query_start >= limit) {
			/* the cancel lets PostgreSQL end the statement now instead of when it finishes on its own */
			server_send_cancel(s);
			link_server_lost(s, "query timeout", "08P01", "query timeout");
			return;
		}
	}
	if (s->txn_status == PROTO_TXN_IDLE)
		return;
	/* idle: the transaction is open and no request runs, since the last answer or client message */
	limit = client_timeout(c, TIMEOUT_IDLE_TRANSACTION);
	idle_since = s->ready_time > c->last_activity ? s->ready_time : c->last_activity;
	if (s->pending_ready == 0 && !s->batch_open && limit > 0 && now - idle_since >= limit) {
		link_server_lost(s, "idle transaction timeout", "25P03", "idle transaction timeout");
		return;
	}
	limit = client_timeout(c, TIMEOUT_TRANSACTION);
	if (limit > 0 && now - s->xact_start >= limit)
		link_server_lost(s, "transaction timeout", "25P04", "transaction timeout");
}
