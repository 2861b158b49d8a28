/* Logged-in clients: each message on its way to a server, and the session changes it makes there. */
#include "client_relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "client_params.h"
#include "client_policy.h"
#include "config.h"
#include "link.h"
#include "log.h"
#include "pool.h"
#include "prepared_relay.h"
#include "runtime.h"
#include "server.h"
#include "session.h"
#include "sqlscan.h"
#include "stats_count.h"

#define SCAN_WHOLE_MAX (64 * 1024)	/* statements up to this size are scanned whole */

/* Where a Parse's text begins: after its statement name (past the buffered bytes when that does not end there). */
static uint32_t parse_text_offset(const struct sbuf_msg *msg)
{
	uint32_t len;
	return proto_statement_name(msg->data, msg->avail, &len) ? PROTO_HEADER_LEN + len + 1 : msg->avail;
}

/* The client's startup value of name would be set again after a RESET of it ("all": any). */
static bool has_own_value(const struct client *c, const char *name)
{
	if (strcmp(name, "all") != 0)
		return params_find(&c->startup, name) != NULL;
	for (int i = 0; i < c->startup.n; i++)
		if (!session_not_reset_by_all(c->startup.items[i].name))
			return true;
	return false;
}

/* Settings that a plain SET changes for the session but the core never carries to another server. */
static bool role_setting(const char *name)
{
	return strcmp(name, "role") == 0 || strcmp(name, "session_authorization") == 0;
}

/* The Query with added statements: the text up to `upto` is copied first (once: the message begins). */
static void copy_text(struct client *c, const char *sql, size_t *copied, size_t upto)
{
	struct pktbuf *out = &c->session_msg;

	if (!out->len)
		pkt_begin(out, FE_QUERY);
	pkt_put_bytes(out, sql + *copied, upto - *copied);
	*copied = upto;
}

/*
 * set_config(name, value, false) calls of one statement (sql[start..end)):
 * with literal names (and a literal is_local) their values are read after
 * the statement, like a SET's. Returns how many reads were added; *followed
 * when every call is either followed or local.
 */
static int follow_set_config(struct client *c, const char *sql, size_t start, size_t end, bool whole_query,
			     size_t *copied, bool *followed)
{
	struct set_config_call calls[8];
	int n = session_set_config_calls(sql + start, end - start, calls, 8), added = 0;
	bool all = whole_query && n <= 8, every = false;

	for (int i = 0; i < n && i < 8 && all; i++) {
		all = calls[i].is_local >= 0;
		/* a name that is an expression (pg_dump's "set_config(name, ..., false) FROM pg_settings WHERE
		 * name = ..."): every value the session set is read instead */
		every = every || (calls[i].is_local == 0 && !params_name_ok(calls[i].name));
	}
	if (all && every) {
		copy_text(c, sql, copied, end);
		*followed = true;
		return session_add_capture_all(&c->hidden, &c->session_msg);
	}
	if (!all) {
		client_notice(c, "00000", "set_config() lasts only until the end of the transaction in %s pooling mode "
				  "unless its is_local is a literal and it is sent in a simple Query",
			      config_pool_mode_name(c->pool_mode));
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (calls[i].is_local)
			continue;
		copy_text(c, sql, copied, end);
		added += session_add_capture(&c->hidden, calls[i].name, &c->session_msg);
	}
	*followed = true;
	return added;
}

/*
 * The keyword scan: a server whose session a statement changed is reset
 * before another client gets it. In a simple Query, a RESET is followed by
 * a statement that sets the client's startup values again and a session SET
 * (transaction and statement mode, track_session_set) by one that reads the
 * value the server took, so that the core keeps it for the client
 * (session.c); such a Query goes out as c->session_msg. Elsewhere RESET is
 * noted so that it returns to the client's values before its ReadyForQuery.
 * Text beyond the buffer counts as changing state.
 */
static void note_session_changes(struct client *c, struct server *s, const struct sbuf_msg *msg, uint32_t offset)
{
	const char *sql = (const char *)msg->data + offset;
	size_t len = offset < msg->avail ? msg->avail - offset : 0;
	const char *nul = memchr(sql, 0, len);
	struct sql_stmt st;
	size_t pos = 0, copied = 0;
	bool stateless, whole_query, core_track;
	int added = 0;

	if (nul)
		len = (size_t)(nul - sql);	/* the text ends there; a Parse's parameter types follow */
	if (msg->avail < msg->len)
		s->dirty = true;
	stateless = c->scanned_text == sql && c->scanned_len == len ? c->stateless : sqlscan_plain(sql, len, NULL);
	c->scanned_text = NULL;
	if (stateless)
		return;	/* nothing of session interest: the common case, without tokenizing */
	whole_query = msg->type == FE_QUERY && msg->avail >= msg->len && nul;
	/* a policy's decision on the message (track, rewrite) wins over the core's own tracking */
	core_track = c->pool_mode != POOL_MODE_SESSION && rt.cfg->track_session_set && !c->msg_tracked &&
		     !c->replacement.len;
	pktbuf_reset(&c->session_msg);
	for (size_t start = 0; sqlscan_next(sql, len, &pos, &st); start = pos) {
		unsigned rest;
		bool followed = false;	/* the core keeps what the statement changed */
		bool set_config = st.flags & SQL_SET_CONFIG;
		st.flags &= ~(unsigned)SQL_HINTS;	/* about statement kinds, not session state */
		if (!st.flags)
			continue;
		if (st.flags & SQL_LOAD)
			s->library_loaded = true;
		if (st.flags == SQL_DEALLOCATE && whole_query && ps_relay_enabled(c) &&
		    ps_relay_deallocates(c, sql + start, pos - start))
			continue;	/* a name kept here: the server runs a no-op instead (prepared_relay.c) */
		rest = st.flags & ~(unsigned)(SQL_SETS_SESSION | SQL_RESETS);
		if ((st.flags & SQL_RESETS) && st.name[0] && strcmp(st.kind, "discard") != 0 && whole_query &&
		    (core_track || has_own_value(c, st.name))) {
			copy_text(c, sql, &copied, pos);
			if (session_add_reset(&c->hidden, &c->startup, st.name, core_track, &c->session_msg))
				added++;
			followed = core_track;
		} else if ((st.flags & SQL_RESETS) && st.name[0]) {
			/* DISCARD ALL (never in a multi-statement Query), a Parse, a Query too long to rewrite */
			bool restore = has_own_value(c, st.name);
			if (!params_set(&c->pending_resets, st.name, restore ? "r" : "", false))
				log_warning("C-%llu: out of memory noting RESET %s", c->id, st.name);
			/* the client hears the values after the restore, not the server defaults in between */
			c->defer_status = c->defer_status || restore;
			followed = core_track && strcmp(st.kind, "discard") != 0;
		} else if ((st.flags & SQL_SETS_SESSION) && strcmp(st.kind, "set") == 0 && core_track) {
			char value[512];
			if (!whole_query && msg->type == FE_PARSE && st.name[0] && !role_setting(st.name) &&
			    params_name_ok(st.name) && strcmp(st.name, "timezone") != 0 &&
			    session_set_value(sql + start, pos - start, st.name, value, sizeof(value))) {
				/* a Parse cannot carry an added statement: the value as written, kept if its transaction
				 * commits (an ErrorResponse before then drops it) */
				followed = client_param_track_add(c, st.name, value, false);
			} else if (role_setting(st.name) || !whole_query) {
				client_notice(c, "00000", "%s lasts only until the end of the transaction in %s pooling mode",
					      role_setting(st.name) ? (strcmp(st.name, "role") == 0 ? "SET ROLE"
									       : "SET SESSION AUTHORIZATION")
								    : "this SET (sent with the extended query protocol)",
					      config_pool_mode_name(c->pool_mode));
			} else {
				static const char *const characteristics[] = { "default_transaction_isolation",
										"default_transaction_read_only",
										"default_transaction_deferrable" };
				copy_text(c, sql, &copied, pos);
				if (st.name[0]) {
					added += session_add_capture(&c->hidden, st.name, &c->session_msg);
				} else {	/* SET SESSION CHARACTERISTICS AS TRANSACTION ... */
					for (size_t i = 0; i < 3; i++)
						added += session_add_capture(&c->hidden, characteristics[i], &c->session_msg);
				}
				followed = true;
			}
		} else if (set_config && strcmp(st.kind, "set") != 0 && core_track) {
			added += follow_set_config(c, sql, start, pos, whole_query, &copied, &followed);
		}
		if (rest || role_setting(st.name) || (!followed && !c->msg_tracked))
			s->dirty = true;
	}
	if (c->session_msg.len) {
		copy_text(c, sql, &copied, len);
		pkt_put_u8(&c->session_msg, 0);
		pkt_end(&c->session_msg);
		if (c->session_msg.failed || !session_end_query(&c->hidden, s->pending_ready)) {
			/* out of memory: the Query goes as it came, the server is reset afterwards */
			log_warning("C-%llu: out of memory following session settings", c->id);
			pktbuf_reset(&c->session_msg);
			s->dirty = true;
		}
	}
	(void)added;
}

/* The request at hand is done with (relayed, answered or dropped): the next one starts afresh. */
static enum sbuf_action done(struct client *c, enum sbuf_action act)
{
	if (act == SBUF_FORWARD || act == SBUF_FORWARD_PAUSE || act == SBUF_DROP || act == SBUF_CLOSED) {
		c->checked = false;
		c->noted = false;
		if (act != SBUF_CLOSED) {
			pktbuf_reset(&c->replacement);
			if (c->session_msg.len)
				pktbuf_reset(&c->session_msg);
		}
	}
	return act;
}

/* After a rejected Parse, PostgreSQL ignores everything up to Sync; so do we. */
static enum sbuf_action skip_to_sync(struct client *c, const struct sbuf_msg *msg)
{
	struct server *s = c->server;

	if (msg->type != FE_SYNC)
		return SBUF_DROP;
	c->skip_to_sync = false;
	if (!s) {
		uint8_t z[PROTO_READY_LEN];
		proto_ready_for_query(z, PROTO_TXN_IDLE);
		sbuf_send(&c->sb, z, sizeof(z));
		return SBUF_DROP;
	}
	if (s->phase != PHASE_RELAY)
		return SBUF_PAUSE;
	if (ps_relay_enabled(c) && !replies_push(&s->replies, REPLY_READY, NULL)) {
		client_fatal(c, "53200", "out of memory");
		return SBUF_CLOSED;
	}
	link_request_msg(s, FE_SYNC);
	return SBUF_FORWARD;
}

/* A message that needs a server: transaction hooks, tenant limits, then the pool. */
static enum sbuf_action take_server(struct client *c, const struct sbuf_msg *msg)
{
	if (rt.shutdown == SHUTDOWN_WAIT_SERVERS) {
		client_fatal(c, "08P01", "server shutting down");
		return SBUF_CLOSED;
	}
	if (!c->began) {
		cpol_begin(c, msg);
		if (c->reject_msg.len)
			return cpol_reject(c, msg);
		c->began = true;
	}
	if (!link_admit(c))
		return SBUF_PAUSE;	/* its tenant's limits: it waits */
	pool_request_server(c->txn_pool ? c->txn_pool : c->pool, c);
	if (c->state == CL_CLOSED)
		return SBUF_CLOSED;
	if (!c->server || c->server->phase != PHASE_RELAY)
		return SBUF_PAUSE;
	return SBUF_FORWARD;
}

static enum sbuf_action relay(struct client *c, const struct sbuf_msg *msg)
{
	struct sbuf_msg cur = *msg;
	enum sbuf_action act;
	struct server *s;

	if (msg->len - 1 > (uint32_t)rt.cfg->max_packet_size) {
		client_fatal(c, "08P01", "message of %u bytes is longer than max_packet_size", msg->len - 1);
		return SBUF_CLOSED;
	}
	if (msg->type == FE_QUERY && rt.cfg->disable_pqexec) {
		/* the simple protocol can carry several statements in one message: refused outright */
		client_fatal(c, "08P01", "PQexec disallowed (disable_pqexec)");
		return SBUF_CLOSED;
	}
	if (c->skip_to_sync)
		return done(c, skip_to_sync(c, msg));
	/* the keyword scan and the hooks want the statement text: short ones arrive whole first */
	if ((msg->type == FE_QUERY || msg->type == FE_PARSE) && msg->avail < msg->len &&
	    msg->len <= SCAN_WHOLE_MAX + (uint32_t)rt.cfg->policy_max_query_length)
		return SBUF_WAIT_FULL;
	if (!c->checked) {
		cpol_query(c, msg);
		c->checked = true;
	}
	if (c->reject_msg.len)
		return done(c, cpol_reject(c, msg));
	if (c->replacement.len) {
		cur.data = c->replacement.data;
		cur.len = cur.avail = (uint32_t)c->replacement.len;
	}
	if (!c->server) {
		if (ps_relay_enabled(c) && ps_relay_client_unlinked(c, &cur, &act))
			return done(c, act);
		if (c->reject_msg.len)
			return done(c, cpol_reject(c, &cur));	/* a Parse the prepared-statement relay refused */
		act = take_server(c, &cur);
		if (act != SBUF_FORWARD)
			return done(c, act);
	}
	s = c->server;
	if (s->phase != PHASE_RELAY)
		return SBUF_PAUSE;
	if (!c->noted) {
		c->noted = true;
		if (cur.type == FE_QUERY) {
			note_session_changes(c, s, &cur, PROTO_HEADER_LEN);
			if (ps_relay_enabled(c) && ps_relay_query(c, s, &cur, &act))
				return done(c, act);
		} else if (cur.type == FE_PARSE) {
			note_session_changes(c, s, &cur, parse_text_offset(&cur));
		}
	}
	if (c->session_msg.len) {
		cur.data = c->session_msg.data;
		cur.len = cur.avail = (uint32_t)c->session_msg.len;
	}
	/* bytes of ours go after what was relayed before them (checked before anything is counted as sent) */
	if (cur.data != msg->data && !sbuf_flush_pending(&c->sb))
		return SBUF_RETRY;
	link_batch_msg(s, cur.type);
	if (ps_relay_enabled(c) && ps_relay_client(c, s, &cur, &act))
		return done(c, act);
	if (c->reject_msg.len)
		return done(c, cpol_reject(c, &cur));	/* a Parse the prepared-statement relay refused */
	link_request_msg(s, cur.type);
	if (cur.data != msg->data) {
		/* a policy's rewrite, or the Query with the core's added statements */
		sbuf_send(&s->sb, cur.data, cur.len);
		return done(c, SBUF_DROP);
	}
	return done(c, SBUF_FORWARD);
}

enum sbuf_action client_relay_msg(struct client *c, const struct sbuf_msg *msg)
{
	double now = rt_now();
	enum sbuf_action act;
	struct pool *pool;

	c->last_activity = now;
	if (msg->type == FE_TERMINATE) {
		c->sb.input_done = true;
		client_close(c, "client close request");
		return SBUF_CLOSED;
	}
	stats_request_arrived(&c->stats, now);
	act = relay(c, msg);
	if (act != SBUF_FORWARD && act != SBUF_DROP)
		return act;	/* asked again later, or the client is gone */
	/* counted where PgBouncer counts: in the pool of the server it went to */
	pool = c->server ? c->server->pool : c->pool;
	if (!pool)
		return act;
	stats_request_taken(&pool->stats, &c->stats, msg->len);
	/* a Query, Sync or FunctionCall taken with no server linked was answered here, ReadyForQuery included */
	if (!c->server && (msg->type == FE_QUERY || msg->type == FE_SYNC || msg->type == FE_FUNCTION_CALL))
		stats_request_done(&pool->stats, &c->stats, PROTO_TXN_IDLE, now);
	return act;
}

void client_janitor(void)
{
	double limit = rt.cfg->client_login_timeout, idle, now = rt_now();
	struct list *it, *tmp;

	if (limit > 0) {
		LIST_FOREACH_SAFE(it, tmp, client_logins()) {
			struct client *c = container_of(it, struct client, head);
			if (now - c->connect_time >= limit)
				client_fatal(c, "08P01", "client_login_timeout");
		}
	}
	LIST_FOREACH_SAFE(it, tmp, client_all()) {
		struct client *c = container_of(it, struct client, all);
		if (c->state != CL_ACTIVE)
			continue;
		idle = client_timeout(c, TIMEOUT_CLIENT_IDLE);
		if (c->server) {
			struct server *s = c->server;
			bool idle_server = s->phase == PHASE_RELAY && link_idle(s);
			if (!idle_server || idle <= 0 || now - c->last_activity < idle) {
				link_timeouts(s);
				continue;
			}
		}
		if (idle > 0 && now - c->last_activity >= idle)
			client_fatal(c, "08P01", "client_idle_timeout");
	}
}

