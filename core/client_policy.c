/* Policy hooks on the client path: what Lua sees of a client and statement, and decisions turned into actions. */
#include "client_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "link.h"
#include "client_params.h"
#include "log.h"
#include "pool.h"
#include "prepared.h"
#include "replies.h"
#include "proto.h"
#include "runtime.h"
#include "server.h"
#include "session.h"
#include "sqlscan.h"
#include "tenant.h"
#include "tls.h"

#define MAX_KINDS 32
/* Function OIDs of the session-level advisory lock functions (stable built-ins). */
static const unsigned ADVISORY_OIDS[] = { 2880, 2881, 2882, 2883, 2886, 2887, 2888, 2889 };

static void format_addr(const struct policy_client *v, char *addr, size_t addrlen)
{
	const struct client *c = v->owner;

	addr[0] = 0;
	if (c->is_unix)
		snprintf(addr, addrlen, "unix");
	else if (c->addr.sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &c->addr.in.sin_addr, addr, (socklen_t)addrlen);
	else if (c->addr.sa.sa_family == AF_INET6)
		inet_ntop(AF_INET6, &c->addr.in6.sin6_addr, addr, (socklen_t)addrlen);
}

static void fill_view(const struct client *c, struct policy_client *v)
{
	memset(v, 0, sizeof(*v));
	v->id = c->id;
	v->user = c->user;
	v->database = c->database;
	v->application_name = params_get(&c->params, "application_name");
	v->format_addr = format_addr;	/* formatting the address on every call would cost more than the hook */
	v->owner = c;
	if (!c->is_unix && c->addr.sa.sa_family == AF_INET)
		v->port = ntohs(c->addr.in.sin_port);
	else if (!c->is_unix && c->addr.sa.sa_family == AF_INET6)
		v->port = ntohs(c->addr.in6.sin6_port);
	v->tls = tls_active(&c->sb);
	v->params = &c->params;
	v->in_transaction = c->server && c->server->txn_status != PROTO_TXN_IDLE;
	v->tenant = c->tenant ? c->tenant->key : NULL;
	v->pool_mode = config_pool_mode_name(c->pool_mode);
}

static bool hook_failed(enum policy_result r)
{
	return r == POLICY_ERROR || r == POLICY_TIMEOUT || r == POLICY_MEMORY;
}

/* A failed hook: logged, counted by the engine; closed (default) rejects, open passes. */
static bool failure_rejects(const struct client *c, const char *hook, enum policy_result r,
			    const struct policy_decision *d)
{
	const char *what = r == POLICY_TIMEOUT ? "timed out" : r == POLICY_MEMORY ? "ran out of memory" : "failed";
	bool open = rt.cfg->policy_failure && strcmp(rt.cfg->policy_failure, "open") == 0;
	log_warning("C-%llu: policy %s %s: %s (%s)", c->id, hook, what, d->error[0] ? d->error : "no detail",
		    open ? "policy_failure=open: passing" : "rejecting");
	return !open;
}

static void set_reject(struct client *c, const char *sqlstate, const char *message)
{
	pktbuf_reset(&c->reject_msg);
	pkt_error(&c->reject_msg, "ERROR", sqlstate, "%s", message);
}

bool cpol_connect(struct client *c, struct connect_choice *choice)
{
	struct policy_client v;
	struct policy_decision d;
	enum policy_result r;

	if (!policy_wants_connect())
		return true;
	memset(&d, 0, sizeof(d));
	fill_view(c, &v);
	r = policy_on_connect(&v, &d);
	if (hook_failed(r)) {
		bool reject = failure_rejects(c, "on_connect", r, &d);
		policy_decision_clear(&d);
		if (reject) {
			client_fatal(c, "42501", "connection rejected: the connection policy failed");
			return false;
		}
		return true;
	}
	if (r != POLICY_DECIDED)
		return true;
	if (d.reject) {
		client_fatal(c, d.sqlstate[0] ? d.sqlstate : "42501", "%s",
			     d.message ? d.message : "connection rejected by policy");
		policy_decision_clear(&d);
		return false;
	}
	if (d.route) {
		const struct db_entry *db = config_find_db(rt.cfg, d.route);
		if (!db || strcmp(db->name, "*") == 0) {
			log_warning("C-%llu: policy routed to unknown database entry \"%s\"", c->id, d.route);
			client_fatal(c, "3D000", "no such database entry: %s", d.route);
			policy_decision_clear(&d);
			return false;
		}
		free(c->route_name);
		c->route_name = d.route;
		d.route = NULL;
		choice->db = db;
		choice->db_name = c->route_name;
	}
	if (d.user) {
		free(c->server_user);
		c->server_user = d.user;
		d.user = NULL;
		choice->server_user = c->server_user;
	}
	if (d.pool_mode != POOL_MODE_UNSET)
		choice->pool_mode = d.pool_mode;
	if (d.tenant) {
		struct tenant *t = tenant_get(d.tenant);
		if (!t) {
			policy_decision_clear(&d);
			client_fatal(c, "53200", "out of memory");
			return false;
		}
		if (!tenant_add_client(t)) {
			client_fatal(c, "53300", "too many connections for tenant \"%s\" (max_clients)", t->key);
			policy_decision_clear(&d);
			return false;
		}
		c->tenant = t;
	}
	policy_decision_clear(&d);
	return true;
}

/* The statement a message carries, as the hooks see it. */
struct msg_text {
	const char *sql;
	size_t len;
	const char *name;
	const char *protocol;
	bool complete;
	char name_buf[64];
};

static bool message_text(const struct client *c, const struct sbuf_msg *msg, struct msg_text *t)
{
	const uint8_t *body = msg->data + PROTO_HEADER_LEN, *end = msg->data + msg->avail, *nul;

	memset(t, 0, sizeof(*t));
	t->complete = msg->avail >= msg->len;
	switch (msg->type) {
	case FE_QUERY:
		t->protocol = "simple";
		t->sql = (const char *)body;
		nul = memchr(body, 0, (size_t)(end - body));
		t->len = nul ? (size_t)(nul - body) : (size_t)(end - body);
		return true;
	case FE_PARSE: {
		uint32_t nlen;
		const char *name = proto_statement_name(msg->data, msg->avail, &nlen);
		t->protocol = "extended";
		if (!name)
			return false;
		if (nlen > 0) {
			snprintf(t->name_buf, sizeof(t->name_buf), "%.*s", (int)nlen, name);
			t->name = t->name_buf;
		}
		t->sql = name + nlen + 1;
		nul = memchr(t->sql, 0, (size_t)(end - (const uint8_t *)t->sql));
		t->len = nul ? (size_t)(nul - (const uint8_t *)t->sql) : (size_t)(end - (const uint8_t *)t->sql);
		return true;
	}
	case FE_BIND: {
		/* a named statement's prepared text */
		uint32_t nlen;
		const char *name = proto_statement_name(msg->data, msg->avail, &nlen);
		struct ps_stmt *st;
		t->protocol = "extended";
		if (!name || nlen == 0)
			return false;
		snprintf(t->name_buf, sizeof(t->name_buf), "%.*s", (int)nlen, name);
		t->name = t->name_buf;
		st = ps_client_find(&c->ps, t->name);
		if (!st)
			return false;
		t->sql = (const char *)st->body;
		t->len = strnlen(t->sql, st->body_len);
		t->complete = true;
		return true;
	}
	case FE_FUNCTION_CALL:
		t->protocol = "function";
		t->sql = "";
		return true;
	default:
		return false;
	}
}

static void add_kind(char kinds[][SQL_KIND_MAX], const char **ptrs, int *n, const char *kind)
{
	snprintf(kinds[*n], SQL_KIND_MAX, "%s", kind);
	ptrs[*n] = kinds[*n];
	(*n)++;
}

/*
 * Kinds of every statement in the text, then the pseudo-kinds "advisory_lock",
 * "set_config" and "select_into" where a statement calls or does that, from
 * the core's keyword scan (sqlscan_kinds).
 */
static int scan_kinds(struct client *c, const struct sbuf_msg *msg, const struct msg_text *t,
		      char kinds[][SQL_KIND_MAX], const char **ptrs)
{
	int n = 0;

	if (msg->type == FE_FUNCTION_CALL) {
		struct pkt_reader r;
		unsigned oid;
		bool advisory = false;
		pkt_reader_init(&r, msg->data + PROTO_HEADER_LEN, msg->avail - PROTO_HEADER_LEN);
		oid = pkt_get_u32(&r);
		add_kind(kinds, ptrs, &n, "function");
		for (size_t i = 0; i < sizeof(ADVISORY_OIDS) / sizeof(ADVISORY_OIDS[0]); i++)
			advisory = advisory || oid == ADVISORY_OIDS[i];
		if (advisory)
			add_kind(kinds, ptrs, &n, "advisory_lock");
	} else if (t->sql) {
		unsigned session_flags;
		n = sqlscan_kinds(t->sql, t->len, kinds, MAX_KINDS, &session_flags);
		for (int i = 0; i < n; i++)
			ptrs[i] = kinds[i];
		if (t->len <= UINT32_MAX) {
			/* the session scan of the same text (note_session_changes) reuses the answer */
			c->stateless = session_flags == 0;
			c->scanned_text = t->sql;
			c->scanned_len = (uint32_t)t->len;
		}
	}
	if (n == 0) {
		kinds[0][0] = 0;
		ptrs[0] = kinds[0];
		n = 1;
	}
	return n;
}

static void fill_query(struct client *c, const struct sbuf_msg *msg, const struct msg_text *t,
		       struct policy_query *q, char kinds[][SQL_KIND_MAX], const char **ptrs)
{
	memset(q, 0, sizeof(*q));
	q->n_kinds = scan_kinds(c, msg, t, kinds, ptrs);
	q->kinds = ptrs;
	q->kind = ptrs[0];
	q->protocol = t->protocol;
	q->name = t->name;
	q->sql = t->sql;
	q->sql_len = t->len;
	q->truncated = !t->complete;
}

/* The message with the rewritten text, built into c->replacement. */
static bool build_rewrite(struct client *c, const struct sbuf_msg *msg, const struct msg_text *t,
			  const char *sql, size_t len)
{
	struct pktbuf *b = &c->replacement;

	pktbuf_reset(b);
	pkt_begin(b, msg->type);
	if (msg->type == FE_PARSE) {
		const uint8_t *after = (const uint8_t *)t->sql + t->len + 1;	/* int16 n + types */
		pkt_put_string(b, t->name ? t->name : "");
		pkt_put_bytes(b, sql, len);
		pkt_put_u8(b, 0);
		pkt_put_bytes(b, after, (size_t)(msg->data + msg->len - after));
	} else {
		pkt_put_bytes(b, sql, len);
		pkt_put_u8(b, 0);
	}
	pkt_end(b);
	return !b->failed;
}

static void keep_tracks(struct client *c, struct policy_decision *d)
{
	for (int i = 0; i < d->n_track; i++) {
		if (!client_param_track_take(c, &d->track[i])) {
			log_warning("C-%llu: out of memory keeping tracked settings", c->id);
			return;
		}
	}
	c->msg_tracked = d->n_track > 0;
}

/* Scratch space of one hook call: the views Lua gets, and what it decided. */
struct hook_call {
	char kinds[MAX_KINDS][SQL_KIND_MAX];
	const char *ptrs[MAX_KINDS];
	struct msg_text t;
	struct policy_client v;
	struct policy_query q;
	struct policy_decision d;
};

static void prepare_call(struct client *c, const struct sbuf_msg *msg, struct hook_call *h)
{
	fill_query(c, msg, &h->t, &h->q, h->kinds, h->ptrs);
	memset(&h->d, 0, sizeof(h->d));
	fill_view(c, &h->v);
}

void cpol_query(struct client *c, const struct sbuf_msg *msg)
{
	struct hook_call h;
	enum policy_result r;

	c->msg_tracked = false;
	c->scanned_text = NULL;
	if (!policy_active() || (msg->type != FE_QUERY && msg->type != FE_PARSE && msg->type != FE_FUNCTION_CALL))
		return;
	if (!message_text(c, msg, &h.t))
		return;
	fill_query(c, msg, &h.t, &h.q, h.kinds, h.ptrs);
	if (!policy_wants_query(h.q.kinds, h.q.n_kinds))
		return;	/* decided before the client's view is built: most statements end here */
	memset(&h.d, 0, sizeof(h.d));
	fill_view(c, &h.v);
	r = policy_on_query(&h.v, &h.q, &h.d);
	if (hook_failed(r)) {
		if (failure_rejects(c, "on_query", r, &h.d))
			set_reject(c, "0A000", "statement rejected: the query policy failed");
	} else if (r == POLICY_DECIDED) {
		struct policy_decision *d = &h.d;
		if (d->reject) {
			set_reject(c, d->sqlstate[0] ? d->sqlstate : "0A000", d->message ? d->message : "rejected by policy");
		} else if (d->rewrite) {
			if (msg->type == FE_FUNCTION_CALL) {
				log_warning("C-%llu: policy rewrite of a FunctionCall refused", c->id);
				set_reject(c, "0A000", "statement rejected: a policy cannot rewrite a function call");
			} else if (h.q.truncated) {
				log_warning("C-%llu: policy rewrite of a truncated statement refused", c->id);
				set_reject(c, "0A000", "statement rejected: a policy rewrote a statement longer than "
						       "policy_max_query_length");
			} else if (!build_rewrite(c, msg, &h.t, d->rewrite, d->rewrite_len)) {
				set_reject(c, "53200", "out of memory rewriting the statement");
			}
		}
		if (!d->reject && d->n_track)
			keep_tracks(c, d);
	}
	policy_decision_clear(&h.d);
}

void cpol_begin(struct client *c, const struct sbuf_msg *msg)
{
	struct hook_call h;
	enum policy_result r;

	if (!policy_wants_begin())
		return;
	if (!message_text(c, msg, &h.t)) {
		memset(&h.t, 0, sizeof(h.t));
		h.t.protocol = "extended";
		h.t.complete = true;
	}
	prepare_call(c, msg, &h);
	r = policy_on_transaction_begin(&h.v, &h.q, &h.d);
	if (hook_failed(r)) {
		if (failure_rejects(c, "on_transaction_begin", r, &h.d))
			set_reject(c, "0A000", "transaction rejected: the transaction policy failed");
	} else if (r == POLICY_DECIDED) {
		struct policy_decision *d = &h.d;
		if (d->reject) {
			set_reject(c, d->sqlstate[0] ? d->sqlstate : "0A000", d->message ? d->message : "rejected by policy");
		} else if (d->route) {
			const struct db_entry *db = config_find_db(rt.cfg, d->route);
			if (!db || strcmp(db->name, "*") == 0) {
				log_warning("C-%llu: policy routed to unknown database entry \"%s\"", c->id, d->route);
				set_reject(c, "3D000", "transaction routed to an unknown database entry");
			} else {
				c->txn_pool = pool_get(d->route, db, c->pool->user_name);
				if (!c->txn_pool)
					set_reject(c, "53200", "out of memory");
			}
		}
	}
	policy_decision_clear(&h.d);
}

void cpol_disconnect(struct client *c)
{
	struct policy_client v;

	if (!policy_wants_disconnect())
		return;
	fill_view(c, &v);
	policy_on_disconnect(&v);
}

enum sbuf_action cpol_reject(struct client *c, const struct sbuf_msg *msg)
{
	struct server *s = c->server;
	struct pktbuf b;
	void *payload;
	uint32_t len = (uint32_t)c->reject_msg.len;

	if (!s || s->phase != PHASE_RELAY) {
		/* no server: answer as PostgreSQL would, the session stays usable */
		sbuf_send(&c->sb, c->reject_msg.data, c->reject_msg.len);
		pktbuf_reset(&c->reject_msg);
		if (msg->type == FE_PARSE) {
			c->skip_to_sync = true;
		} else {
			uint8_t z[PROTO_READY_LEN];
			proto_ready_for_query(z, PROTO_TXN_IDLE);
			sbuf_send(&c->sb, z, sizeof(z));
		}
		return SBUF_DROP;
	}
	/*
	 * In a transaction the server must fail for real, so that a later COMMIT
	 * reports ROLLBACK: it gets a request bound to fail, and its error is
	 * replaced by ours on the way back.
	 */
	if (!sbuf_flush_pending(&c->sb))
		return SBUF_RETRY;
	payload = malloc(len);
	if (!payload) {
		client_fatal(c, "53200", "out of memory");
		return SBUF_CLOSED;
	}
	memcpy(payload, c->reject_msg.data, len);
	pktbuf_reset(&c->reject_msg);
	pktbuf_init(&b);
	if (msg->type == FE_PARSE) {
		pkt_execute(&b, "MB_rejected_no_such_portal", 0);
		c->skip_to_sync = true;
	} else {
		pkt_query(&b, "MB_REJECTED_BY_POLICY");	/* a syntax error: the transaction aborts */
	}
	if (b.failed) {
		free(payload);
		pktbuf_free(&b);
		client_fatal(c, "53200", "out of memory");
		return SBUF_CLOSED;
	}
	if (!replies_push_reject(&s->replies, payload, len) ||
	    (msg->type != FE_PARSE && !replies_push(&s->replies, REPLY_READY, NULL))) {
		pktbuf_free(&b);
		client_fatal(c, "53200", "out of memory");
		return SBUF_CLOSED;
	}
	sbuf_send_pkt(&s->sb, &b);
	pktbuf_free(&b);
	if (msg->type != FE_PARSE)
		link_request_sent(s);
	return SBUF_DROP;
}

void cpol_forget(struct client *c)
{
	client_param_tracks_free(c);
	pktbuf_free(&c->replacement);
	pktbuf_free(&c->reject_msg);
	free(c->route_name);
	free(c->server_user);
	c->route_name = c->server_user = NULL;
}
