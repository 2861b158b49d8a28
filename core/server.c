/* Server connections: connect, native login, reset, and the server side of the relay. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "client_params.h"
#include "client_policy.h"
#include "config.h"
#include "dns.h"
#include "link.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "prepared_relay.h"
#include "runtime.h"
#include "tls.h"

#define MAX_STATUS_LEN (64 * 1024)	/* ParameterStatus larger than this is relayed untracked */

/* A CancelRequest on its own connection to the server. */
struct cancel_conn {
	int fd;
	struct event ev;
	uint8_t packet[16];
	size_t sent;
	struct server *server;		/* NULL once the server is gone */
	struct cancel_conn *next;	/* in server->cancels */
};

static struct list g_closed = { &g_closed, &g_closed };
static unsigned long long g_next_id;

static enum sbuf_action on_msg(struct sbuf *sb, const struct sbuf_msg *msg);
static void finish_close(struct server *s);
static void start_internal(struct server *s, enum internal_goal goal, struct pktbuf *query);
static void on_error(struct sbuf *sb, int err);
static void on_connect(struct sbuf *sb, int err);
static void on_forwarded(struct sbuf *sb);
static void on_tls(struct sbuf *sb, const char *error);

static const struct sbuf_ops server_ops = {
	.on_msg = on_msg,
	.on_error = on_error,
	.on_connect = on_connect,
	.on_forwarded = on_forwarded,
	.on_tls = on_tls,
};

static const char *state_name(enum server_state s)
{
	switch (s) {
	case SV_LOGIN: return "login";
	case SV_IDLE: return "idle";
	case SV_ACTIVE: return "active";
	case SV_USED: return "used";
	case SV_CLOSING: return "closing";
	case SV_CLOSED: return "closed";
	}
	return "?";
}

static int *state_counter(struct pool *pool, enum server_state s)
{
	switch (s) {
	case SV_LOGIN: return &pool->n_login;
	case SV_IDLE: return &pool->n_idle;
	case SV_ACTIVE: return &pool->n_active;
	case SV_USED: return &pool->n_used;
	case SV_CLOSING: return &pool->n_closing;
	default: return NULL;
	}
}

void server_change_state(struct server *s, enum server_state state)
{
	struct pool *pool = s->pool;
	int *counter;

	list_remove(&s->head);
	counter = state_counter(pool, s->state);
	if (counter)
		(*counter)--;
	switch (state) {
	case SV_LOGIN:
		list_append(&pool->login_servers, &s->head);
		break;
	case SV_IDLE:
		list_append(&pool->idle_servers, &s->head);
		s->last_used = rt_now();
		break;
	case SV_ACTIVE:
		list_append(&pool->active_servers, &s->head);
		break;
	case SV_USED:
		list_append(&pool->used_servers, &s->head);
		break;
	case SV_CLOSING:
		list_append(&pool->closing_servers, &s->head);
		break;
	case SV_CLOSED:
		list_append(&g_closed, &s->head);
		break;
	default:
		log_error("S-%llu: unknown state %d", s->id, (int)state);
		abort();
	}
	counter = state_counter(pool, state);
	if (counter)
		(*counter)++;
	log_noise("S-%llu: %s -> %s", s->id, state_name(s->state), state_name(state));
	s->state = state;
}

static bool send_pkt(struct server *s, struct pktbuf *b)
{
	bool ok = sbuf_send_pkt(&s->sb, b);
	pktbuf_free(b);
	return ok;
}

/* ---- connect and login ---- */

/* "S-7 db/user@127.0.0.1:5432" (or "@unix:5432"), the prefix of this server's log lines. */
static const char *server_tag(const struct server *s, char buf[160])
{
	const struct pool *pool = s->pool;
	char addr[80];

	if (s->unix_path[0]) {
		const char *dot = strrchr(s->unix_path, '.');
		snprintf(addr, sizeof(addr), "unix:%s", dot ? dot + 1 : "?");
	} else if (s->addrlen > 0) {
		net_addr_str((const struct sockaddr *)&s->addr, addr, sizeof(addr));
	} else {
		snprintf(buf, 160, "S-%llu %s/%s", s->id, pool->db_name, pool->user_name);
		return buf;
	}
	snprintf(buf, 160, "S-%llu %s/%s@%s", s->id, pool->db_name, pool->user_name, addr);
	return buf;
}

/*
 * A server login that did not work. As PgBouncer 1.25: when the server could not be reached (or answered
 * 57P03, starting up or shutting down) the clients waiting for the pool stay queued and the login is tried
 * again after server_login_retry; any other failure is the answer the waiting clients get.
 */
static enum sbuf_action give_up_login(struct server *s, bool retry, const char *sqlstate, const char *msg)
{
	struct pool *pool = s->pool;

	/* the backoff starts before the close, which would otherwise launch a replacement at once */
	pool->last_login_failure = rt_now();
	server_close(s, msg);
	pool->server_events->login_failed(pool, sqlstate, msg, retry);
	return SBUF_CLOSED;
}

/* Connecting failed (refused, unresolved, timed out, hung up): waiting clients wait for the retry. */
static enum sbuf_action connect_failed(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum sbuf_action connect_failed(struct server *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return give_up_login(s, true, "08006", msg);
}

/* The login itself failed (authentication, configuration): the waiting clients get this error (logged). */
static enum sbuf_action login_failed(struct server *s, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum sbuf_action login_failed(struct server *s, const char *sqlstate, const char *fmt, ...)
{
	char msg[256], tag[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warning("%s %s", server_tag(s, tag), msg);
	return give_up_login(s, false, sqlstate, msg);
}

/* The database to log in to on the server: the entry's dbname=, else the name clients use. */
static const char *server_dbname(const struct pool *pool)
{
	const struct db_entry *db = pool->db;
	return db && db->dbname && db->dbname[0] ? db->dbname : pool->db_name;
}

static void start_login(struct server *s)
{
	struct pool *pool = s->pool;
	struct startup_param p[2] = {
		{ "user", pool->user_name },
		{ "database", server_dbname(pool) },
	};
	struct pktbuf b;

	s->phase = PHASE_LOGIN;
	pktbuf_init(&b);
	pkt_startup(&b, p, 2);
	send_pkt(s, &b);
}

static void on_connect(struct sbuf *sb, int err)
{
	struct server *s = sb->owner;

	if (err) {
		connect_failed(s, "connect failed: %s", strerror(err));
		return;
	}
	net_tune_socket(sb->fd, s->unix_path[0] == 0, rt.cfg);
	if (rt.cfg->log_connections) {
		char tag[160], local[80];
		struct sockaddr_storage la;
		socklen_t len = sizeof(la);
		if (s->unix_path[0] || getsockname(sb->fd, (struct sockaddr *)&la, &len) != 0)
			log_info("%s new connection to server", server_tag(s, tag));
		else
			log_info("%s new connection to server (from %s)", server_tag(s, tag),
				 net_addr_str((struct sockaddr *)&la, local, sizeof(local)));
	}
	if (tls_server_mode() != TLS_DISABLE && !s->unix_path[0]) {
		/* TLS is asked for first (server_tls_sslmode); the startup packet waits for the answer */
		struct pktbuf b;
		pktbuf_init(&b);
		pkt_ssl_request(&b);
		s->phase = PHASE_TLS;
		sbuf_expect_answer_byte(&s->sb);
		send_pkt(s, &b);
		return;
	}
	start_login(s);
}

/* The answer to our SSLRequest: 'S' starts the handshake, 'N' is plain text where the mode allows it. */
static enum sbuf_action tls_answer(struct server *s, const struct sbuf_msg *msg)
{
	if (msg->type != 'S' && msg->type != 'N') {
		return login_failed(s, "08P01", "bad sslreq answer");
	}
	/* anything behind the answer was sent before the handshake: it may have been injected */
	if (sbuf_input_pending(&s->sb) > 1)
		return login_failed(s, "08P01", "received unencrypted data after SSL response");
	if (msg->type == 'N') {
		if (tls_server_mode() >= TLS_REQUIRE)
			return login_failed(s, "08006", "server refused SSL");
		start_login(s);
		return SBUF_DROP;
	}
	if (!tls_connect(&s->sb, s->pool->db ? s->pool->db->host : NULL))
		return login_failed(s, "08006", "could not start TLS with the server");
	return SBUF_DROP;
}

/* The handshake with the server ended: the login goes on inside TLS, or the connection fails. */
static void on_tls(struct sbuf *sb, const char *error)
{
	struct server *s = sb->owner;

	if (error) {
		login_failed(s, "08006", "TLS handshake with the server failed: %s", error);
		return;
	}
	start_login(s);
}

static void connect_to(struct server *s)
{
	int fd;

	if (s->unix_path[0])
		fd = net_connect_unix(s->unix_path);
	else
		fd = net_connect((const struct sockaddr *)&s->addr, s->addrlen, rt.cfg);
	if (fd < 0) {
		connect_failed(s, "connect failed: %s", strerror(errno));
		return;
	}
	if (!sbuf_connect(&s->sb, fd)) {
		close(fd);
		connect_failed(s, "connect failed: could not register the socket");
	}
}

static void on_resolved(void *arg, const struct sockaddr *addr, socklen_t addrlen, const char *error)
{
	struct server *s = arg;

	s->dns = NULL;
	if (error) {
		connect_failed(s, "server DNS lookup failed: host \"%s\": %s", s->pool->db->host, error);
		return;
	}
	if (addrlen > sizeof(s->addr))
		addrlen = sizeof(s->addr);
	memcpy(&s->addr, addr, addrlen);
	s->addrlen = addrlen;
	connect_to(s);
}

void server_launch(struct pool *pool)
{
	const struct db_entry *db = pool->db;
	struct server *s = calloc(1, sizeof(*s));
	int port;

	if (!s) {
		log_error("out of memory opening a server connection");
		return;
	}
	sbuf_init(&s->sb, &server_ops, s);
	s->id = ++g_next_id;
	s->pool = pool;
	s->conn_generation = pool->conn_generation;
	s->state = SV_CLOSED;
	list_init(&s->head);
	s->phase = PHASE_CONNECT;
	s->connect_time = rt_now();
	s->txn_status = PROTO_TXN_IDLE;
	server_change_state(s, SV_LOGIN);

	if (!db) {
		login_failed(s, "3D000", "database \"%s\" is no longer in the configuration", pool->db_name);
		return;
	}
	port = db->port > 0 ? db->port : 5432;
	if (!db->host || !db->host[0] || db->host[0] == '/') {
		const char *dir = db->host && db->host[0] ? db->host
				  : (rt.cfg->unix_socket_dir && rt.cfg->unix_socket_dir[0] ? rt.cfg->unix_socket_dir
											   : "/tmp");
		snprintf(s->unix_path, sizeof(s->unix_path), "%s/.s.PGSQL.%d", dir, port);
		connect_to(s);
		return;
	}
	s->dns = dns_resolve(db->host, port, on_resolved, s);
}

static enum sbuf_action auth_request(struct server *s, const struct sbuf_msg *msg)
{
	struct pool *pool = s->pool;
	struct pkt_reader r;
	uint32_t code;
	struct pktbuf b;
	char err[256];

	pkt_reader_init(&r, msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN);
	code = pkt_get_u32(&r);
	pktbuf_init(&b);
	switch (code) {
	case AUTH_REQ_OK:
		return SBUF_DROP;
	case AUTH_REQ_CLEARTEXT:
		if (!pool->password)
			return login_failed(s, "08P01", "server login failed: wrong password type (the server asked for a "
							"cleartext password and none is configured for user \"%s\")",
					    pool->user_name);
		pkt_password(&b, pool->password);
		send_pkt(s, &b);
		return SBUF_DROP;
	case AUTH_REQ_MD5: {
		const uint8_t *salt = pkt_get_bytes(&r, 4);
		char secret[36], answer[36];
		if (!salt)
			return login_failed(s, "08P01", "malformed md5 request from server");
		if (pool->password)
			auth_md5_secret(pool->password, pool->user_name, secret);
		else if (pool->md5_secret)
			snprintf(secret, sizeof(secret), "%s", pool->md5_secret);
		else if (pool->have_scram_keys)	/* PgBouncer's words for a secret of the other kind */
			return login_failed(s, "08P01", "server login failed: wrong password type (only SCRAM keys for "
							"user \"%s\" to answer the server's md5 request)", pool->user_name);
		else
			return login_failed(s, "08P01", "server login failed: wrong password type (no password for user "
							"\"%s\" to answer the server's md5 request)", pool->user_name);
		auth_md5_response(secret, salt, answer);
		pkt_password(&b, answer);
		send_pkt(s, &b);
		return SBUF_DROP;
	}
	case AUTH_REQ_SASL: {
		bool have_scram = false;
		const char *mech;
		char *first;
		while ((mech = pkt_get_string(&r)) && mech[0])
			if (strcmp(mech, "SCRAM-SHA-256") == 0)
				have_scram = true;
		if (!have_scram)
			return login_failed(s, "08P01", "server login failed: none of the server's SASL authentication "
							"mechanisms are supported");
		if (pool->password)
			auth_scram_client_init_password(&s->scram, pool->password);
		else if (pool->have_scram_keys)
			auth_scram_client_init_keys(&s->scram, pool->scram_client_key, pool->scram_server_key);
		else if (pool->md5_secret)
			return login_failed(s, "08P01", "server login failed: wrong password type (only an md5 secret for "
							"user \"%s\" to answer the server's SCRAM request)", pool->user_name);
		else
			return login_failed(s, "08P01", "server login failed: wrong password type (no password or SCRAM "
							"keys for user \"%s\")", pool->user_name);
		s->scram_active = true;
		first = auth_scram_client_first(&s->scram);
		if (!first)
			return login_failed(s, "53200", "out of memory");
		pkt_sasl_initial(&b, "SCRAM-SHA-256", first, strlen(first));
		free(first);
		send_pkt(s, &b);
		return SBUF_DROP;
	}
	case AUTH_REQ_SASL_CONTINUE: {
		char *final;
		if (!s->scram_active)
			return login_failed(s, "08P01", "unexpected SASL continue from server");
		final = auth_scram_client_final(&s->scram, (const char *)(msg->data + 9), msg->len - 9, err,
						sizeof(err));
		if (!final)
			return login_failed(s, "08P01", "server login failed: failed to verify server signature (%s)", err);
		pkt_sasl_response(&b, final, strlen(final));
		free(final);
		send_pkt(s, &b);
		return SBUF_DROP;
	}
	case AUTH_REQ_SASL_FINAL:
		if (!s->scram_active ||
		    !auth_scram_client_verify(&s->scram, (const char *)(msg->data + 9), msg->len - 9, err, sizeof(err)))
			return login_failed(s, "08P01", "server login failed: invalid server signature (%s)",
					    s->scram_active ? err : "no exchange");
		return SBUF_DROP;
	default:
		return login_failed(s, "08P01", "server login failed: unsupported authentication method %u", code);
	}
}

static bool read_status(const struct sbuf_msg *msg, const char **name, const char **value)
{
	struct pkt_reader r;
	pkt_reader_init(&r, msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN);
	*name = pkt_get_string(&r);
	*value = pkt_get_string(&r);
	return *name && *value;
}

static void read_error(const struct sbuf_msg *msg, char *sqlstate, char *text, size_t textlen)
{
	const char *code = proto_error_field(msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN, PROTO_FIELD_SQLSTATE);
	const char *m = proto_error_field(msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN, PROTO_FIELD_MESSAGE);
	snprintf(sqlstate, 6, "%s", code && strlen(code) == 5 ? code : "08006");
	snprintf(text, textlen, "%s", m ? m : "unknown server error");
}

/*
 * The server refused the login. 57P03 (starting up, shutting down, in recovery) passes: the waiting clients
 * stay queued for the retry. Any other error goes to them, with the server's SQLSTATE and text.
 */
static enum sbuf_action login_error(struct server *s, const struct sbuf_msg *msg)
{
	const char *severity = proto_error_field(msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN, PROTO_FIELD_SEVERITY);
	char sqlstate[6], text[200], tag[160];

	read_error(msg, sqlstate, text, sizeof(text));
	log_warning("%s server login failed: %s %s", server_tag(s, tag), severity ? severity : "FATAL", text);
	return give_up_login(s, strcmp(sqlstate, "57P03") == 0, sqlstate, text);
}

static enum sbuf_action login_msg(struct server *s, const struct sbuf_msg *msg)
{
	const char *name, *value;

	if (msg->avail < msg->len)
		return SBUF_WAIT_FULL;
	switch (msg->type) {
	case BE_AUTHENTICATION:
		return auth_request(s, msg);
	case BE_PARAMETER_STATUS:
		if (!read_status(msg, &name, &value))
			return login_failed(s, "08P01", "malformed ParameterStatus from server");
		if (!params_set(&s->params, name, value, true) || !params_set(&s->defaults, name, value, true))
			return login_failed(s, "53200", "out of memory");
		return SBUF_DROP;
	case BE_BACKEND_KEY: {
		struct pkt_reader r;
		pkt_reader_init(&r, msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN);
		s->backend_pid = pkt_get_u32(&r);
		s->backend_key = pkt_get_u32(&r);
		return SBUF_DROP;
	}
	case BE_ERROR:
		return login_error(s, msg);
	case BE_NOTICE:
	case BE_NEGOTIATE_PROTOCOL:
		return SBUF_DROP;
	case BE_READY_FOR_QUERY:
		s->txn_status = msg->data[PROTO_HEADER_LEN];
		if (s->scram_active) {
			auth_scram_client_free(&s->scram);
			s->scram_active = false;
		}
		s->phase = PHASE_IDLE;
		s->pool->last_login_failure = 0;	/* logins work again: no more backoff */
		log_debug("S-%llu %s/%s: login ok, backend pid %u", s->id, s->pool->db_name, s->pool->user_name,
			  s->backend_pid);
		if (s->pool->db && s->pool->db->connect_query && s->pool->db->connect_query[0]) {
			struct pktbuf b;
			pktbuf_init(&b);
			pkt_query(&b, s->pool->db->connect_query);
			start_internal(s, INTERNAL_CONNECT, &b);
			return SBUF_DROP;
		}
		s->pool->server_events->ready(s);
		return s->state == SV_CLOSED ? SBUF_CLOSED : SBUF_DROP;
	default:
		return login_failed(s, "08P01", "unexpected message '%c' from server during login", msg->type);
	}
}

/* ---- our own queries: reset, parameters ---- */

static void start_internal(struct server *s, enum internal_goal goal, struct pktbuf *query)
{
	s->phase = PHASE_INTERNAL;
	s->goal = goal;
	s->pending_ready = 1;
	s->internal_failed = false;
	s->internal_error[0] = 0;
	send_pkt(s, query);
}

void server_lookup(struct server *s, const char *sql, const char *param)
{
	struct pktbuf b;

	pktbuf_init(&b);
	pkt_extended_query(&b, sql, param);
	start_internal(s, INTERNAL_LOOKUP, &b);
}

/* Does the reset query drop prepared statements (so that our cache of them must go too)? */
static bool reset_deallocates(const char *q)
{
	return q && (strcasestr(q, "discard all") || strcasestr(q, "deallocate all"));
}

static enum sbuf_action finish_internal(struct server *s)
{
	enum internal_goal goal = s->goal;
	struct client *c = s->client;

	s->goal = INTERNAL_NONE;
	if (goal == INTERNAL_LOOKUP) {
		s->phase = PHASE_IDLE;
		s->pool->server_events->lookup_done(s, s->internal_failed ? s->internal_error : NULL);
		return s->state == SV_CLOSED || s->state == SV_CLOSING ? SBUF_CLOSED : SBUF_DROP;
	}
	if (goal == INTERNAL_CONNECT || goal == INTERNAL_CHECK) {
		if (s->internal_failed) {
			if (goal == INTERNAL_CONNECT) {
				char sqlstate[6];
				memcpy(sqlstate, s->internal_error, 5);
				sqlstate[5] = 0;
				return login_failed(s, sqlstate, "connect_query failed: %s", s->internal_error + 6);
			}
			server_close(s, "server_check_query failed");
			return SBUF_CLOSED;
		}
		/* an open transaction left by connect_query or the check would leak into a client's session */
		if (s->txn_status != PROTO_TXN_IDLE) {
			server_close(s, "connect_query or server_check_query left a transaction open");
			return SBUF_CLOSED;
		}
		s->phase = PHASE_IDLE;
		s->last_used = rt_now();
		s->pool->server_events->ready(s);
		return s->state == SV_CLOSED ? SBUF_CLOSED : SBUF_DROP;
	}
	if (goal == INTERNAL_RESET) {
		if (s->internal_failed) {
			server_close(s, s->internal_error);
			return SBUF_CLOSED;
		}
		params_drop_unreported(&s->params);
		if (reset_deallocates(rt.cfg->server_reset_query))
			ps_relay_server_forget(s);
		s->dirty = false;
		s->phase = PHASE_IDLE;
		s->pool->server_events->ready(s);
		return s->state == SV_CLOSED ? SBUF_CLOSED : SBUF_DROP;
	}
	if (goal == INTERNAL_REAPPLY) {
		s->phase = PHASE_RELAY;
		if (s->internal_failed) {
			log_warning("S-%llu: restoring client parameters after RESET failed: %s", s->id,
				    s->internal_error);
			s->dirty = true;	/* what it holds is not what we recorded */
		}
		if (c && c->defer_status)
			client_param_flush_deferred(c, &s->params);
		if (c && c->sb.paused)
			sbuf_resume(&c->sb);
		return s->link->ready_relay(s);	/* forwards the ReadyForQuery at hand */
	}
	/* INTERNAL_APPLY */
	if (!c) {
		server_release(s);
		return s->state == SV_CLOSED ? SBUF_CLOSED : SBUF_DROP;
	}
	s->phase = PHASE_RELAY;
	if (s->internal_failed) {
		s->dirty = true;	/* part of the query may have run */
		s->link->applied(s, s->internal_error);
		return s->state == SV_CLOSED ? SBUF_CLOSED : SBUF_DROP;
	}
	params_applied(&c->params, &s->params, &s->defaults);
	s->link->applied(s, NULL);
	return SBUF_DROP;
}

static enum sbuf_action internal_msg(struct server *s, const struct sbuf_msg *msg)
{
	const char *name, *value;

	if (s->goal == INTERNAL_LOOKUP && msg->type == BE_DATA_ROW) {
		if (msg->avail < msg->len && msg->len <= MAX_STATUS_LEN)
			return SBUF_WAIT_FULL;
		if (msg->avail < msg->len) {	/* no secret is this long */
			snprintf(s->internal_error, sizeof(s->internal_error), "auth_query returned a row too large");
			s->internal_failed = true;
			return SBUF_DROP;
		}
		s->pool->server_events->lookup_row(s, msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN);
		return SBUF_DROP;
	}
	if (msg->type != BE_PARAMETER_STATUS && msg->type != BE_ERROR && msg->type != BE_READY_FOR_QUERY)
		return SBUF_DROP;
	if (msg->avail < msg->len)
		return msg->len > MAX_STATUS_LEN ? SBUF_DROP : SBUF_WAIT_FULL;
	switch (msg->type) {
	case BE_PARAMETER_STATUS:
		if (read_status(msg, &name, &value)) {
			if (!params_set(&s->params, name, value, true))
				log_warning("S-%llu: out of memory tracking %s", s->id, name);
			if (s->goal == INTERNAL_REAPPLY && s->client && s->client->defer_status)
				client_param_deferred(s->client, name, value);	/* in the order the RESET reported */
			else if ((s->goal == INTERNAL_APPLY || s->goal == INTERNAL_REAPPLY) && s->client)
				client_param_from_server(s->client, name, value, true);
		}
		return SBUF_DROP;
	case BE_ERROR:
		if (!s->internal_failed) {
			char sqlstate[6], text[200];
			read_error(msg, sqlstate, text, sizeof(text));
			snprintf(s->internal_error, sizeof(s->internal_error), "%s %s", sqlstate, text);
			s->internal_failed = true;
			log_warning("S-%llu %s/%s: %s query failed: %s", s->id, s->pool->db_name, s->pool->user_name,
				    s->goal == INTERNAL_RESET ? "reset" : s->goal == INTERNAL_LOOKUP ? "auth_query" : "parameter",
				    text);
		}
		return SBUF_DROP;
	default: /* ReadyForQuery */
		s->txn_status = msg->data[PROTO_HEADER_LEN];
		if (--s->pending_ready > 0)
			return SBUF_DROP;
		return finish_internal(s);
	}
}

/* ---- relay ---- */

/*
 * The ErrorResponse of a request made to fail in place of one a policy
 * rejected: the client gets the policy's error exactly where the server's
 * would have gone.
 */
static enum sbuf_action owed_reject(struct server *s, const struct sbuf_msg *msg)
{
	const struct reply *r = replies_head(&s->replies);
	enum sbuf_action unused;

	if (s->client) {
		if (!sbuf_flush_pending(&s->sb))
			return SBUF_RETRY;
		sbuf_send(&s->client->sb, r->payload, r->payload_len);
	}
	ps_relay_server(s, msg, &unused);	/* the request and the rest up to the next Sync go unanswered */
	return SBUF_DROP;
}

static enum sbuf_action relay_msg(struct server *s, const struct sbuf_msg *msg)
{
	const char *name, *value;
	enum sbuf_action act;

	/*
	 * The handlers below act on a ReadyForQuery (one Sync's work ends): it is taken whole first, so that
	 * none of them runs twice for one that arrives in pieces.
	 */
	if (msg->type == BE_READY_FOR_QUERY && msg->avail < msg->len)
		return SBUF_WAIT_FULL;
	if (s->client && s->client->hidden.n && session_server_msg(s->client, msg, &act))
		return act;
	if (msg->type == BE_ERROR && replies_next_is(&s->replies, REPLY_REJECT))
		return owed_reject(s, msg);
	if (ps_relay_server(s, msg, &act))
		return act;
	if (s->client && s->client->n_track) {
		if (msg->type == BE_COMMAND_COMPLETE && msg->avail < msg->len && msg->len < 64)
			return SBUF_WAIT_FULL;
		client_param_note_server_msg(s->client, msg);
	}
	switch (msg->type) {
	case BE_READY_FOR_QUERY:
		if (!s->link->ready(s, (char)msg->data[PROTO_HEADER_LEN]) || !s->client)
			return s->link->ready_relay(s);
		/* the request's last answer: its settings are settled */
		client_param_settle_tracks(s->client, &s->params, s->txn_status);
		if (s->client->pending_resets.n) {
			struct pktbuf b;
			pktbuf_init(&b);
			if (s->txn_status == PROTO_TXN_FAILED)
				params_clear(&s->client->pending_resets);	/* they failed with the transaction */
			else if (client_param_apply_resets(s->client, &s->params, &b)) {
				/* this ReadyForQuery waits; the one answering our query goes to the client */
				start_internal(s, INTERNAL_REAPPLY, &b);	/* sends and frees b */
				return SBUF_DROP;
			}
			pktbuf_free(&b);
		}
		if (s->client->defer_status)
			client_param_flush_deferred(s->client, NULL);	/* no restore ran after all */
		return s->link->ready_relay(s);
	case BE_PARAMETER_STATUS:
		if (msg->avail < msg->len)
			return msg->len > MAX_STATUS_LEN ? SBUF_FORWARD : SBUF_WAIT_FULL;
		if (read_status(msg, &name, &value)) {
			/* a role or session user set where the scan could not see it (DO, a function): reset afterwards */
			if (strcasecmp(name, "is_superuser") == 0 || strcasecmp(name, "session_authorization") == 0)
				s->dirty = true;
			if (!params_set(&s->params, name, value, true))
				log_warning("S-%llu: out of memory tracking %s", s->id, name);
			if (s->client && s->client->defer_status) {
				client_param_deferred(s->client, name, value);
				return SBUF_DROP;
			}
			if (s->client)
				client_param_from_server(s->client, name, value, false);
		}
		return SBUF_FORWARD;
	default:
		return SBUF_FORWARD;
	}
}

static void on_forwarded(struct sbuf *sb)
{
	struct server *s = sb->owner;

	s->link->forwarded(s);
}

/* Messages from a server nobody is using: notices are dropped, an error means it is going away. */
static enum sbuf_action idle_msg(struct server *s, const struct sbuf_msg *msg)
{
	const char *name, *value;

	switch (msg->type) {
	case BE_PARAMETER_STATUS:
		if (msg->avail < msg->len)
			return msg->len > MAX_STATUS_LEN ? SBUF_DROP : SBUF_WAIT_FULL;
		if (read_status(msg, &name, &value) && !params_set(&s->params, name, value, true))
			log_warning("S-%llu: out of memory tracking %s", s->id, name);
		return SBUF_DROP;
	case BE_NOTICE:
	case BE_NOTIFICATION:
		return SBUF_DROP;
	case BE_ERROR: {
		char sqlstate[6], text[200], reason[256];
		if (msg->avail < msg->len)
			return SBUF_WAIT_FULL;
		read_error(msg, sqlstate, text, sizeof(text));
		snprintf(reason, sizeof(reason), "server error while idle: %s %s", sqlstate, text);
		server_close(s, reason);
		return SBUF_CLOSED;
	}
	default:
		server_close(s, "unexpected message from idle server");
		return SBUF_CLOSED;
	}
}

/* Bytes from servers count once a message is taken, after login, as PgBouncer counts them (relayed or not). */
static enum sbuf_action counted(struct server *s, const struct sbuf_msg *msg, enum sbuf_action act)
{
	if (act == SBUF_FORWARD || act == SBUF_FORWARD_PAUSE || act == SBUF_DROP)
		s->pool->stats.bytes_sent += msg->len;
	return act;
}

static enum sbuf_action on_msg(struct sbuf *sb, const struct sbuf_msg *msg)
{
	struct server *s = sb->owner;

	switch (s->phase) {
	case PHASE_LOGIN:
		return login_msg(s, msg);
	case PHASE_RELAY:
		return counted(s, msg, relay_msg(s, msg));
	case PHASE_INTERNAL:
		return counted(s, msg, internal_msg(s, msg));
	case PHASE_IDLE:
		return counted(s, msg, idle_msg(s, msg));
	case PHASE_CLOSING:
		return SBUF_DROP;
	case PHASE_TLS:
		return tls_answer(s, msg);
	case PHASE_CONNECT:
		break;
	}
	server_close(s, "message before login");
	return SBUF_CLOSED;
}

static void on_error(struct sbuf *sb, int err)
{
	struct server *s = sb->owner;
	struct client *c = s->client;
	const char *detail = !err ? "the server closed the connection" : err == EBADMSG ? "malformed message"
										 : strerror(err);
	char reason[128];

	if (s->phase == PHASE_CLOSING) {
		finish_close(s);	/* it hung up: now it is gone for PostgreSQL too */
		return;
	}
	if (s->phase == PHASE_CONNECT) {
		connect_failed(s, "connect failed: %s", detail);
		return;
	}
	if (s->phase == PHASE_LOGIN || s->phase == PHASE_TLS) {
		connect_failed(s, "server conn crashed? (%s, during login)", detail);
		return;
	}
	snprintf(reason, sizeof(reason), "server conn crashed? (%s)", detail);
	if (c) {
		/* the client's session is gone with its server */
		s->link->lost(s, reason, "08006", "server conn crashed?");
		return;
	}
	server_close(s, reason);
}

void server_close_abandoned(struct server *s)
{
	if (s->txn_status != PROTO_TXN_IDLE)
		server_close(s, "client disconnect while server was not ready");
	else if (s->pending_ready > 0 || s->batch_open || s->phase == PHASE_INTERNAL)
		server_close(s, "client disconnected with query in progress");
	else
		server_close(s, "client disconnect before everything was sent to the server");
}

/* ---- hand-out ---- */

bool server_apply(struct server *s, const struct param_set *want)
{
	struct pktbuf b;

	pktbuf_init(&b);
	if (params_build_apply(want, &s->params, &s->defaults, &s->params_memo, &b)) {
		start_internal(s, INTERNAL_APPLY, &b);
		return true;
	}
	pktbuf_free(&b);
	return false;
}

void server_release(struct server *s)
{
	const char *reset = rt.cfg->server_reset_query;
	enum pool_mode mode = s->last_mode;	/* its last client's */
	bool need_reset;

	if (!link_between_transactions(s)) {
		server_close(s, "released in the middle of a transaction");
		return;
	}
	if (s->library_loaded) {
		/* DISCARD ALL does not unload it: the next client would run with the library's hooks */
		server_close(s, "a library was loaded (LOAD)");
		return;
	}
	need_reset = reset && reset[0] &&
		     (mode == POOL_MODE_SESSION || s->dirty || rt.cfg->server_reset_query_always);
	if (need_reset) {
		struct pktbuf b;
		server_change_state(s, SV_USED);
		pktbuf_init(&b);
		pkt_query(&b, reset);
		start_internal(s, INTERNAL_RESET, &b);
		return;
	}
	s->phase = PHASE_IDLE;
	s->pool->server_events->ready(s);
}

#define CLOSING_GRACE 2.0	/* seconds a server may take to hang up after Terminate */

/* The socket goes and the server stops counting against the pool's limits. */
static void finish_close(struct server *s)
{
	struct pool *pool = s->pool;

	sbuf_close(&s->sb);
	server_change_state(s, SV_CLOSED);
	rt_schedule_reap();
	pool->server_events->gone(pool);
}

void server_closing_janitor(struct server *s)
{
	if (rt_now() - s->closing_since >= CLOSING_GRACE)
		finish_close(s);
}

void server_close(struct server *s, const char *reason)
{
	struct pool *pool = s->pool;

	if (s->state == SV_CLOSING && rt.exiting)
		finish_close(s);
	if (s->state == SV_CLOSED || s->state == SV_CLOSING)
		return;
	if (rt.cfg->log_disconnections) {
		char tag[160];
		log_info("%s closing because: %s (age=%.0fs)", server_tag(s, tag), reason, rt_now() - s->connect_time);
	} else {
		log_debug("S-%llu %s/%s: closing because: %s", s->id, pool->db_name, pool->user_name, reason);
	}
	if (s->dns) {
		dns_cancel(s->dns);
		s->dns = NULL;
	}
	for (struct cancel_conn *cc = s->cancels; cc; cc = cc->next)
		cc->server = NULL;
	s->cancels = NULL;
	s->cancels_in_flight = 0;
	if (s->client)
		s->link->detach(s);
	if (s->sb.fd >= 0 && s->phase != PHASE_CONNECT && s->phase != PHASE_TLS && s->phase != PHASE_LOGIN &&
	    !s->sb.write_error &&
	    rt.shutdown == SHUTDOWN_NONE && !rt.exiting) {
		/*
		 * Terminate, then wait for the server to hang up before it stops counting: a replacement
		 * opened at once would briefly make PostgreSQL see one connection more than the limits allow.
		 */
		struct pktbuf b;
		pktbuf_init(&b);
		pkt_terminate(&b);
		sbuf_send_pkt(&s->sb, &b);
		pktbuf_free(&b);
		s->phase = PHASE_CLOSING;
		s->closing_since = rt_now();
		sbuf_detach(&s->sb);
		sbuf_resume(&s->sb);
		server_change_state(s, SV_CLOSING);
		return;
	}
	if (s->sb.fd >= 0 && s->phase != PHASE_CONNECT && s->phase != PHASE_TLS && s->phase != PHASE_LOGIN) {
		struct pktbuf b;	/* polite goodbye so the backend exits without logging an EOF */
		pktbuf_init(&b);
		pkt_terminate(&b);
		sbuf_send_pkt(&s->sb, &b);
		pktbuf_free(&b);
	}
	finish_close(s);
}

void server_free_closed(void)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_closed) {
		struct server *s = container_of(it, struct server, head);
		list_remove(&s->head);
		if (s->scram_active)
			auth_scram_client_free(&s->scram);
		params_clear(&s->params);
		params_clear(&s->defaults);
		ps_relay_server_forget(s);
		free(s);
	}
}

/* ---- timeouts and checks ---- */

bool server_needs_check(const struct server *s)
{
	const char *q = rt.cfg->server_check_query;
	/* as PgBouncer: checked unless used less than server_check_delay ago (0: before every reuse) */
	return q && q[0] && rt.cfg->server_check_delay >= 0 && !(rt_now() - s->last_used < rt.cfg->server_check_delay);
}

void server_check(struct server *s)
{
	const char *q = rt.cfg->server_check_query;
	struct pktbuf b;

	server_change_state(s, SV_USED);
	pktbuf_init(&b);
	/* PgBouncer's "<empty>" means an empty query: the cheapest round trip there is */
	pkt_query(&b, strcmp(q, "<empty>") == 0 ? "" : q);
	start_internal(s, INTERNAL_CHECK, &b);
}

bool server_past_lifetime(const struct server *s)
{
	double lifetime = rt.cfg->server_lifetime;
	if (s->pool->db && s->pool->db->server_lifetime >= 0)
		lifetime = s->pool->db->server_lifetime;
	if (lifetime == 0)
		return s->used;	/* 0: every server connection serves one client, then closes */
	return rt_now() - s->connect_time >= lifetime;
}

void server_login_timeout(struct server *s)
{
	connect_failed(s, "connect timeout (server_connect_timeout %gs)", rt.cfg->server_connect_timeout);
}

/* ---- cancel ---- */

static void cancel_done(struct cancel_conn *cc)
{
	struct server *s = cc->server;

	event_del(&cc->ev);
	close(cc->fd);
	if (s) {
		struct cancel_conn **pp = &s->cancels;
		while (*pp && *pp != cc)
			pp = &(*pp)->next;
		if (*pp)
			*pp = cc->next;
		if (--s->cancels_in_flight == 0 && s->await_cancel) {
			s->await_cancel = false;
			s->pool->server_events->ready(s);
		}
	}
	free(cc);
}

/* cancel_wait_timeout bounds each step of a cancel request (0: no limit). */
static void add_cancel_event(struct cancel_conn *cc)
{
	double limit = rt.cfg->cancel_wait_timeout;
	struct timeval tv = { (time_t)limit, (suseconds_t)((limit - (double)(time_t)limit) * 1e6) };
	event_add(&cc->ev, limit > 0 ? &tv : NULL);
}

static void on_cancel_io(evutil_socket_t fd, short what, void *arg)
{
	struct cancel_conn *cc = arg;

	if (what & EV_TIMEOUT) {
		/* a server that does not take the cancel must not hold its connection back for ever */
		log_warning("cancel request not delivered within cancel_wait_timeout (%gs)", rt.cfg->cancel_wait_timeout);
		cancel_done(cc);
		return;
	}

	if (cc->sent < sizeof(cc->packet)) {
		ssize_t n = send(fd, cc->packet + cc->sent, sizeof(cc->packet) - cc->sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			log_warning("could not send cancel request: %s", strerror(errno));
			cancel_done(cc);
			return;
		}
		cc->sent += (size_t)n;
		if (cc->sent < sizeof(cc->packet))
			return;
		/* wait for the server to close: then the cancel has been delivered */
		event_del(&cc->ev);
		event_assign(&cc->ev, rt.base, fd, EV_READ | EV_PERSIST, on_cancel_io, cc);
		add_cancel_event(cc);
		return;
	}
	{
		char buf[64];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
	}
	cancel_done(cc);
}

void server_send_cancel(struct server *s)
{
	struct cancel_conn *cc = calloc(1, sizeof(*cc));
	struct pktbuf b;

	if (!cc)
		return;
	if (s->unix_path[0])
		cc->fd = net_connect_unix(s->unix_path);
	else
		cc->fd = net_connect((const struct sockaddr *)&s->addr, s->addrlen, rt.cfg);
	if (cc->fd < 0) {
		log_warning("could not connect to send a cancel request: %s", strerror(errno));
		free(cc);
		return;
	}
	pktbuf_init(&b);
	pkt_cancel_request(&b, s->backend_pid, s->backend_key);
	if (b.failed || b.len != sizeof(cc->packet)) {
		pktbuf_free(&b);
		close(cc->fd);
		free(cc);
		return;
	}
	memcpy(cc->packet, b.data, sizeof(cc->packet));
	pktbuf_free(&b);
	cc->server = s;
	cc->next = s->cancels;
	s->cancels = cc;
	s->cancels_in_flight++;
	event_assign(&cc->ev, rt.base, cc->fd, EV_WRITE | EV_PERSIST, on_cancel_io, cc);
	add_cancel_event(cc);
	log_debug("S-%llu: cancel request sent to backend %u", s->id, s->backend_pid);
}
