/* Client connections: startup, authentication, and the client side of the relay. */
#include "client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "config.h"
#include "link.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "runtime.h"
#include "client_params.h"
#include "client_policy.h"
#include "prepared_relay.h"
#include "tenant.h"
#include "server.h"
#include "sqlscan.h"

#define SCAN_WHOLE_MAX (64 * 1024)	/* statements up to this size are scanned whole */
#define CLIENT_MAX_WHOLE (64u * 1024 * 1024)	/* largest named Parse kept whole to share it */

static struct list g_login = { &g_login, &g_login };
static struct list g_all = { &g_all, &g_all };
static struct list g_closed = { &g_closed, &g_closed };

static enum sbuf_action on_msg(struct sbuf *sb, const struct sbuf_msg *msg);
static void on_error(struct sbuf *sb, int err);

static const struct sbuf_ops client_ops = {
	.on_msg = on_msg,
	.on_error = on_error,
	.on_connect = NULL,
	.on_forwarded = NULL,	/* clients never pause after relaying */
};

static const char *state_name(enum client_state s)
{
	switch (s) {
	case CL_LOGIN: return "login";
	case CL_WELCOME: return "welcome";
	case CL_ACTIVE: return "active";
	case CL_WAITING: return "waiting";
	case CL_TENANT_WAIT: return "tenant-wait";
	case CL_CLOSED: return "closed";
	}
	return "?";
}

void client_change_state(struct client *c, enum client_state state)
{
	struct pool *pool = c->pool;
	struct pool *wait_pool = c->txn_pool ? c->txn_pool : pool;

	if (c->state == CL_WAITING)
		wait_pool->n_waiting--;
	if (state == CL_WAITING)
		wait_pool->n_waiting++;
	list_remove(&c->head);
	switch (state) {
	case CL_LOGIN:
		list_append(&g_login, &c->head);
		break;
	case CL_WELCOME:
		list_append(&pool->welcome_clients, &c->head);
		break;
	case CL_ACTIVE:
		list_append(&pool->active_clients, &c->head);
		break;
	case CL_WAITING:
		list_append(&wait_pool->waiting_clients, &c->head);
		break;
	case CL_TENANT_WAIT:
		list_append(&c->tenant->waiting, &c->head);
		break;
	case CL_CLOSED:
		list_append(&g_closed, &c->head);
		break;
	default:
		log_error("client %llu: unknown state %d", c->id, (int)state);
		abort();
	}
	log_noise("C-%llu: %s -> %s", c->id, state_name(c->state), state_name(state));
	c->state = state;
}

/*
 * Cancel keys come from OpenSSL's generator in blocks: one RAND_bytes call
 * costs about as much as the rest of a client's login, and a connection
 * needs eight bytes. Bytes handed out are wiped from the block.
 */
static void new_cancel_key(struct client *c)
{
	static uint8_t block[1024];
	static size_t used = sizeof(block);
	uint32_t r[2];

	if (used + sizeof(r) > sizeof(block)) {
		if (RAND_bytes(block, sizeof(block)) == 1) {
			used = 0;
		} else {
			for (size_t i = 0; i < sizeof(block); i++)
				block[i] = (uint8_t)random();
			used = 0;
		}
	}
	memcpy(r, block + used, sizeof(r));
	memset(block + used, 0, sizeof(r));
	used += sizeof(r);
	c->cancel_pid = r[0] & 0x7fffffff;	/* shown as a positive backend pid */
	c->cancel_key = r[1];
}

const char *client_addr(const struct client *c, char buf[64])
{
	if (c->is_unix)
		return "unix";
	return net_addr_str(&c->addr.sa, buf, 64);
}

/*
 * max_client_conn counts every connection, logged in or not, as in PgBouncer. So that sockets that never
 * send a startup packet cannot lock real clients out until client_login_timeout, a connection accepted at
 * the limit closes the oldest one still waiting for its startup packet.
 */
static void make_room(void)
{
	struct list *it, *tmp;

	if (rt.n_clients < rt.cfg->max_client_conn)
		return;
	LIST_FOREACH_SAFE(it, tmp, &g_login) {
		struct client *old = container_of(it, struct client, head);
		if (old->auth_step == AUTH_STEP_STARTUP && old->sb.startup_mode) {
			client_fatal(old, "08P01", "no startup packet before max_client_conn was reached");
			return;
		}
	}
}

void client_accept(int fd, const struct sockaddr *addr, socklen_t addrlen, bool is_unix, void *arg)
{
	struct client *c;
	(void)arg;

	make_room();

	c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("out of memory accepting a client");
		close(fd);
		return;
	}
	sbuf_init(&c->sb, &client_ops, c);
	pktbuf_init(&c->replacement);
	pktbuf_init(&c->reject_msg);
	pktbuf_init(&c->session_msg);
	c->sb.startup_mode = true;
	c->sb.max_whole = 64 * 1024;
	c->id = ++rt.total_clients;
	if (!is_unix && addrlen <= sizeof(c->addr))
		memcpy(&c->addr, addr, addrlen);
	c->is_unix = is_unix;
	c->connect_time = rt_now();
	c->state = CL_LOGIN;
	list_init(&c->head);
	list_append(&g_login, &c->head);
	list_append(&g_all, &c->all);
	new_cancel_key(c);
	rt.n_clients++;
	if (!sbuf_accept(&c->sb, fd)) {
		close(fd);
		client_close(c, "could not register socket");
	}
}

static void send_error(struct client *c, const char *severity, const char *sqlstate, const char *fmt, va_list ap)
{
	struct pktbuf b;
	pktbuf_init(&b);
	pkt_error_v(&b, severity, sqlstate, fmt, ap);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

void client_fatal(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	if (c->state == CL_CLOSED)
		return;
	va_start(ap, fmt);
	send_error(c, "FATAL", sqlstate, fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	client_close(c, reason);
}

void client_notice(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	char text[256];
	struct pktbuf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pktbuf_init(&b);
	pkt_notice(&b, sqlstate, "%s", text);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

void client_close(struct client *c, const char *reason)
{
	char abuf[64];

	if (c->state == CL_CLOSED)
		return;
	if (rt.cfg->log_disconnections)
		log_info("C-%llu %s/%s@%s closing because: %s (age=%.0fs)", c->id, c->database ? c->database : "?",
			 c->user ? c->user : "?", client_addr(c, abuf), reason, rt_now() - c->connect_time);
	else
		log_debug("C-%llu %s closing because: %s", c->id, client_addr(c, abuf), reason);
	link_client_gone(c);
	sbuf_close(&c->sb);
	if (c->pool) {
		c->pool->n_clients--;
		cpol_disconnect(c);
	}
	client_change_state(c, CL_CLOSED);
	list_remove(&c->all);
	rt.n_clients--;
	rt_schedule_reap();
	rt_check_shutdown();
}

/* Login state is large and short-lived: it goes as soon as the login is over. */
static void drop_scram(struct client *c)
{
	if (c->scram) {
		auth_scram_server_free(c->scram);
		free(c->scram);
		c->scram = NULL;
	}
}

void client_free_closed(void)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_closed) {
		struct client *c = container_of(it, struct client, head);
		list_remove(&c->head);
		params_clear(&c->params);
		params_clear(&c->reported);
		params_clear(&c->startup);
		params_clear(&c->pending_resets);
		session_clear(&c->hidden);
		params_clear(&c->deferred_status);
		pktbuf_free(&c->session_msg);
		ps_relay_client_forget(c);
		cpol_forget(c);
		drop_scram(c);
		free(c->secret);
		free(c->user);
		free(c->database);
		free(c);
	}
}

struct client *client_find_by_cancel(uint32_t pid, uint32_t key)
{
	struct list *it;
	for (it = g_all.next; it != &g_all; it = it->next) {
		struct client *c = container_of(it, struct client, all);
		if (c->cancel_pid == pid && auth_equal(&c->cancel_key, &key, sizeof(key)))
			return c;
	}
	return NULL;
}

/* Returns why the cancel connection closes, in PgBouncer's words. */
static const char *handle_cancel(uint32_t pid, uint32_t key)
{
	struct client *target = client_find_by_cancel(pid, key);

	if (!target) {
		log_debug("cancel request for an unknown key ignored");
		return "failed cancel request";
	}
	return link_cancel(target);
}

/* ---- welcome ---- */

static bool send_auth(struct client *c, uint32_t code, const void *data, size_t len)
{
	struct pktbuf b;
	bool ok;
	pktbuf_init(&b);
	pkt_auth_request(&b, code, data, len);
	ok = sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
	return ok;
}

void client_send_welcome(struct client *c)
{
	struct pool *pool = c->pool;
	struct pktbuf b;

	pktbuf_init(&b);
	for (int i = 0; i < pool->welcome.n; i++) {
		const struct param *w = &pool->welcome.items[i];
		const struct param *mine = params_find_same(&c->params, w);
		const char *own = mine ? mine->value : NULL;
		const char *value = own ? own : w->value;
		pkt_parameter_status(&b, w->name, value);
		/* only what differs from the pool's welcome is kept per client: idle clients stay small */
		if (own && strcmp(own, w->value) != 0 && !params_set(&c->reported, w->name, value, true))
			b.failed = true;
	}
	pkt_backend_key(&b, c->cancel_pid, c->cancel_key);
	if (rt.cfg->login_notify_message && rt.cfg->login_notify_message[0])
		pkt_notice(&b, "00000", "%s", rt.cfg->login_notify_message);
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	if (b.failed) {
		pktbuf_free(&b);
		client_fatal(c, "53200", "out of memory");
		return;
	}
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
	client_change_state(c, CL_ACTIVE);
	sbuf_resume(&c->sb);
}

/*
 * ignore_startup_parameters, as PgBouncer reads it: a listed parameter is dropped (never sent to a server)
 * unless it is one the pooler tracks itself; listing "options" drops every untracked setting in options.
 */
static bool startup_param_ignored(const char *name, void *in_options)
{
	const char *list = rt.cfg->ignore_startup_parameters;

	if (!list || !list[0] || client_param_always_tracked(name))
		return false;
	return config_list_contains(list, name) || (in_options && config_list_contains(list, "options"));
}

/* ---- authentication ---- */

static bool add_param(struct client *c, const char *name, const char *value);

/* Login failures in PgBouncer 1.25's words and SQLSTATE, so that log alerts written for it keep matching. */
static enum sbuf_action login_failed(struct client *c, const char *reason)
{
	client_fatal(c, "08P01", "%s", reason);
	return SBUF_CLOSED;
}

static enum sbuf_action auth_failed(struct client *c)
{
	return login_failed(c, c->scram ? "SASL authentication failed" : "password authentication failed");
}

/* Logged-in clients of one database (by_db) or of one user, across pools. */
static int clients_where(bool by_db, const char *name)
{
	int n = 0;
	for (struct list *it = g_all.next; it != &g_all; it = it->next) {
		const struct client *o = container_of(it, struct client, all);
		if (o->pool && strcmp(by_db ? o->database : o->user, name) == 0)
			n++;
	}
	return n;
}

/* max_db_client_connections and max_user_client_connections (0 = unlimited). */
static bool client_limits_ok(struct client *c, const struct db_entry *db, const struct pool *pool)
{
	const struct user_entry *u = config_find_user(rt.cfg, c->user);
	int max_db = db->max_db_client_connections >= 0 ? db->max_db_client_connections
							: rt.cfg->max_db_client_connections;
	int max_user = u && u->max_user_client_connections >= 0 ? u->max_user_client_connections
								 : rt.cfg->max_user_client_connections;
	(void)pool;
	if (max_db > 0 && clients_where(true, c->database) >= max_db) {
		client_fatal(c, "53300", "client connections exceeded (max_db_client_connections)");
		return false;
	}
	if (max_user > 0 && clients_where(false, c->user) >= max_user) {
		client_fatal(c, "53300", "client connections exceeded (max_user_client_connections)");
		return false;
	}
	return true;
}

/* A database reached through "*" that has no pool yet is new, as PgBouncer registers it. */
static void note_auto_database(const struct client *c, const struct db_entry *db)
{
	char abuf[64];

	if (strcmp(db->name, "*") != 0)
		return;
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next)
		if (strcmp(container_of(it, struct pool, head)->db_name, c->database) == 0)
			return;
	log_info("C-%llu %s/%s@%s registered new auto-database: %s", c->id, c->database, c->user,
		 client_addr(c, abuf), c->database);
}

/*
 * Authenticated: only now is the database looked up (a client without credentials learns nothing about
 * which databases exist), then the pool is picked and the client welcomed (now, or once a server announced
 * its parameters).
 */
static enum sbuf_action auth_ok(struct client *c)
{
	const struct db_entry *db = config_find_db(rt.cfg, c->database);
	struct connect_choice choice = {
		.db = db,
		.db_name = c->database,
		.pool_mode = POOL_MODE_UNSET,
	};
	const char *server_user;
	struct pool *pool;

	if (!db) {
		char reason[300], abuf[64];
		if (rt.cfg->log_connections)
			log_info("C-%llu %s/%s@%s login failed: db=%s user=%s", c->id, c->database, c->user,
				 client_addr(c, abuf), c->database, c->user);
		snprintf(reason, sizeof(reason), "no such database: %s", c->database);
		return login_failed(c, reason);
	}
	if (rt.shutdown != SHUTDOWN_NONE) {
		client_fatal(c, "08P01", "pooler is shutting down");
		return SBUF_CLOSED;
	}
	note_auto_database(c, db);
	choice.server_user = db->user && db->user[0] ? db->user : c->user;
	for (size_t i = 0; i < db->n_params; i++)
		if (!params_find(&c->params, db->params[i].name) &&
		    !add_param(c, db->params[i].name, db->params[i].value))
			return SBUF_CLOSED;
	if (!send_auth(c, AUTH_REQ_OK, NULL, 0))
		return SBUF_CLOSED;
	c->auth_step = AUTH_STEP_DONE;
	if (!cpol_connect(c, &choice))
		return SBUF_CLOSED;
	db = choice.db;
	server_user = choice.server_user;
	pool = pool_get(choice.db_name, db, server_user);
	if (!pool) {
		client_fatal(c, "53200", "out of memory");
		return SBUF_CLOSED;
	}
	/* SCRAM pass-through: the client's keys log us in to the server as the same user */
	if (c->scram && c->scram->have_client_key && !pool->password && !pool->md5_secret &&
	    strcmp(server_user, c->user) == 0) {
		memcpy(pool->scram_client_key, c->scram->client_key, SCRAM_KEY_LEN);
		memcpy(pool->scram_server_key, c->scram->secret.server_key, SCRAM_KEY_LEN);
		pool->have_scram_keys = true;
	}
	drop_scram(c);
	free(c->secret);	/* the password is not needed past the login */
	c->secret = NULL;
	if (!client_limits_ok(c, db, pool))
		return SBUF_CLOSED;
	c->pool = pool;
	c->sb.max_whole = CLIENT_MAX_WHOLE;	/* statements may now be gathered whole (prepared, scanned) */
	pool->n_clients++;
	c->pool_mode = choice.pool_mode != POOL_MODE_UNSET ? choice.pool_mode : pool_mode_of(pool);
	c->last_activity = rt_now();
	if (!params_copy(&c->startup, &c->params)) {
		client_fatal(c, "53200", "out of memory");
		return SBUF_CLOSED;
	}
	if (rt.cfg->log_connections) {
		char abuf[64];
		log_info("C-%llu %s/%s@%s login attempt: db=%s user=%s tls=no", c->id, c->database, c->user,
			 client_addr(c, abuf), c->database, c->user);
	}
	if (pool->have_welcome) {
		client_send_welcome(c);
		return c->state == CL_CLOSED ? SBUF_CLOSED : SBUF_DROP;
	}
	client_change_state(c, CL_WELCOME);
	pool_need_welcome(pool);
	return c->state == CL_CLOSED ? SBUF_CLOSED : SBUF_DROP;
}

/*
 * A secret no password matches, for a user that cannot log in with SCRAM (unknown, or with an md5 secret):
 * the exchange runs to its end as for anyone else, so a client without credentials cannot tell which users
 * exist. The salt is the same on every attempt for a user, as a real one would be.
 */
static void mock_scram_secret(const char *user, struct scram_secret *sec)
{
	static uint8_t key[32];
	static bool have_key;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (!have_key) {
		if (RAND_bytes(key, sizeof(key)) != 1)
			for (size_t i = 0; i < sizeof(key); i++)
				key[i] = (uint8_t)random();
		have_key = true;
	}
	memset(sec, 0, sizeof(*sec));
	sec->iterations = rt.cfg->scram_iterations > 0 ? rt.cfg->scram_iterations : 4096;
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, key, sizeof(key)) != 1 ||
	    EVP_DigestUpdate(md, user, strlen(user)) != 1 || EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen < 16)
		memcpy(digest, key, 16);
	EVP_MD_CTX_free(md);
	memcpy(sec->salt, digest, 16);
	sec->salt_len = 16;
	if (RAND_bytes(sec->stored_key, sizeof(sec->stored_key)) != 1 ||
	    RAND_bytes(sec->server_key, sizeof(sec->server_key)) != 1)
		memset(sec->stored_key, 0xa5, sizeof(sec->stored_key));
}

static enum sbuf_action start_scram(struct client *c, const char *secret)
{
	struct scram_secret sec;
	bool ok = true;

	if (!secret)
		mock_scram_secret(c->user, &sec);
	else if (authfile_secret_kind(secret) == SECRET_SCRAM)
		ok = auth_scram_parse_secret(secret, &sec);
	else
		ok = auth_scram_secret_from_password(secret, rt.cfg->scram_iterations, &sec);
	if (!ok) {
		log_warning("C-%llu: unusable SCRAM secret for user %s", c->id, c->user);
		mock_scram_secret(c->user, &sec);
	}
	c->scram = malloc(sizeof(*c->scram));
	if (!c->scram) {
		client_fatal(c, "53200", "out of memory");
		return SBUF_CLOSED;
	}
	auth_scram_server_init(c->scram, &sec);
	c->auth_step = AUTH_STEP_SASL_INIT;
	{
		struct pktbuf b;
		pktbuf_init(&b);
		pkt_auth_sasl_mechanisms(&b);
		sbuf_send_pkt(&c->sb, &b);
		pktbuf_free(&b);
	}
	return SBUF_DROP;
}

static enum sbuf_action start_auth(struct client *c)
{
	const struct auth_entry *ae = rt.auth ? authfile_find(rt.auth, c->user) : NULL;
	enum auth_type type = rt.cfg->auth_type;

	if (ae) {
		c->secret = strdup(ae->secret);
		if (!c->secret) {
			client_fatal(c, "53200", "out of memory");
			return SBUF_CLOSED;
		}
	}
	switch (type) {
	case AUTH_TYPE_ANY:
		return auth_ok(c);
	case AUTH_TYPE_TRUST:
		if (!ae)
			return login_failed(c, "\"trust\" authentication failed");
		return auth_ok(c);
	case AUTH_TYPE_PLAIN:
		c->auth_step = AUTH_STEP_PASSWORD;
		return send_auth(c, AUTH_REQ_CLEARTEXT, NULL, 0) ? SBUF_DROP : SBUF_CLOSED;
	case AUTH_TYPE_MD5:
		if (ae && ae->kind == SECRET_SCRAM)
			return start_scram(c, ae->secret);
		if (RAND_bytes(c->md5_salt, sizeof(c->md5_salt)) != 1) {
			client_fatal(c, "58000", "could not generate random salt");
			return SBUF_CLOSED;
		}
		c->auth_step = AUTH_STEP_PASSWORD;
		return send_auth(c, AUTH_REQ_MD5, c->md5_salt, 4) ? SBUF_DROP : SBUF_CLOSED;
	case AUTH_TYPE_SCRAM:
		if (!ae || ae->kind == SECRET_MD5) {
			if (ae)
				log_warning("C-%llu: SCRAM authentication failed: user has MD5 secret", c->id);
			return start_scram(c, NULL);
		}
		return start_scram(c, ae->secret);
	default:
		client_fatal(c, "28000", "auth_type %s is not supported", type == AUTH_TYPE_HBA ? "hba"
						   : type == AUTH_TYPE_CERT ? "cert" : type == AUTH_TYPE_PEER ? "peer" : "?");
		return SBUF_CLOSED;
	}
}

static enum sbuf_action handle_password(struct client *c, const struct sbuf_msg *msg)
{
	struct pkt_reader r;
	char err[256];

	if (msg->type != FE_PASSWORD) {
		client_fatal(c, "08P01", "expected a password message, got '%c'", msg->type);
		return SBUF_CLOSED;
	}
	if (msg->avail < msg->len)
		return SBUF_WAIT_FULL;
	pkt_reader_init(&r, msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN);
	switch (c->auth_step) {
	case AUTH_STEP_PASSWORD: {
		const char *pw = pkt_get_string(&r);
		bool ok = false;
		if (!pw) {
			client_fatal(c, "08P01", "invalid password packet");
			return SBUF_CLOSED;
		}
		if (!pw[0])
			return login_failed(c, "empty password returned by client");
		if (!c->secret || !c->secret[0])
			return auth_failed(c);
		if (rt.cfg->auth_type == AUTH_TYPE_MD5) {
			char md5secret[36], expect[36];
			if (authfile_secret_kind(c->secret) == SECRET_MD5)
				snprintf(md5secret, sizeof(md5secret), "%s", c->secret);
			else
				auth_md5_secret(c->secret, c->user, md5secret);
			auth_md5_response(md5secret, c->md5_salt, expect);
			ok = strlen(pw) == 35 && auth_equal(pw, expect, 35);
		} else {
			ok = auth_check_password(c->user, c->secret, pw);
		}
		return ok ? auth_ok(c) : auth_failed(c);
	}
	case AUTH_STEP_SASL_INIT: {
		const char *mech = pkt_get_string(&r);
		uint32_t len = pkt_get_u32(&r);
		const uint8_t *data;
		char *reply;
		if (!mech || r.bad || len == 0xffffffffu || !(data = pkt_get_bytes(&r, len))) {
			client_fatal(c, "08P01", "invalid SASL initial response");
			return SBUF_CLOSED;
		}
		if (strcmp(mech, "SCRAM-SHA-256") != 0) {
			client_fatal(c, "08P01", "client selected an invalid SASL authentication mechanism");
			return SBUF_CLOSED;
		}
		reply = auth_scram_server_first(c->scram, (const char *)data, len, err, sizeof(err));
		if (!reply) {
			log_warning("C-%llu: SCRAM: %s", c->id, err);
			return auth_failed(c);
		}
		c->auth_step = AUTH_STEP_SASL_FINAL;
		send_auth(c, AUTH_REQ_SASL_CONTINUE, reply, strlen(reply));
		free(reply);
		return SBUF_DROP;
	}
	case AUTH_STEP_SASL_FINAL: {
		char *reply = auth_scram_server_final(c->scram, (const char *)(msg->data + PROTO_HEADER_LEN),
						      msg->len - PROTO_HEADER_LEN, err,
						      sizeof(err));
		if (!reply) {
			log_warning("C-%llu: SCRAM: %s", c->id, err);
			return auth_failed(c);
		}
		send_auth(c, AUTH_REQ_SASL_FINAL, reply, strlen(reply));
		free(reply);
		return auth_ok(c);
	}
	default:
		client_fatal(c, "08P01", "unexpected authentication message");
		return SBUF_CLOSED;
	}
}

/* ---- startup ---- */

static bool add_param(struct client *c, const char *name, const char *value)
{
	if (!params_set(&c->params, name, value, false)) {
		client_fatal(c, "53200", "out of memory");
		return false;
	}
	return true;
}

/*
 * SSLRequest or GSSENCRequest: refused with 'N' (no TLS or GSS encryption),
 * the client goes on in plain text. Each may come once, in either order
 * (libpq sends GSSENCRequest, then SSLRequest), as PostgreSQL allows; bytes
 * that arrived behind the request were sent before its answer and may have
 * been injected, as PgBouncer checks too.
 */
static enum sbuf_action encryption_request(struct client *c, bool ssl, const struct sbuf_msg *msg)
{
	bool *asked = ssl ? &c->ssl_requested : &c->gssenc_requested;

	if (*asked) {
		client_fatal(c, "08P01", "%s request sent twice", ssl ? "SSL" : "GSSAPI encryption");
		return SBUF_CLOSED;
	}
	if (sbuf_input_pending(&c->sb) > msg->len) {
		client_fatal(c, "08P01", "received unencrypted data after %s request",
			     ssl ? "SSL" : "GSSAPI encryption");
		return SBUF_CLOSED;
	}
	*asked = true;
	sbuf_send(&c->sb, "N", 1);
	return SBUF_DROP;
}

static enum sbuf_action handle_startup(struct client *c, const struct sbuf_msg *msg)
{
	struct startup_packet sp;
	const char *unknown_opts[PROTO_MAX_PARAMS];
	int n_unknown = 0;
	int r;

	if (msg->avail < msg->len)
		return SBUF_WAIT_FULL;
	r = proto_parse_startup(msg->data, msg->avail, &sp);
	if (r < 0) {
		client_fatal(c, "08P01", "invalid startup packet");
		return SBUF_CLOSED;
	}
	if (sp.code == PROTO_SSL_CODE || sp.code == PROTO_GSSENC_CODE)
		return encryption_request(c, sp.code == PROTO_SSL_CODE, msg);
	if (sp.code == PROTO_CANCEL_CODE) {
		client_close(c, handle_cancel(sp.cancel_pid, sp.cancel_key));
		return SBUF_CLOSED;
	}
	c->sb.startup_mode = false;
	for (int i = 0; i < sp.n_params; i++) {
		const char *name = sp.params[i].name, *value = sp.params[i].value;
		if (strcmp(name, "user") == 0) {
			free(c->user);
			c->user = strdup(value);
		} else if (strcmp(name, "database") == 0) {
			free(c->database);
			c->database = strdup(value);
		} else if (strcmp(name, "replication") == 0) {
			client_fatal(c, "08P01", "replication connections are not supported");
			return SBUF_CLOSED;
		} else if (strncmp(name, "_pq_.", 5) == 0) {
			unknown_opts[n_unknown++] = name;
		} else if (strcmp(name, "options") == 0) {
			char err[256];
			if (!params_parse_options_skip(&c->params, value, startup_param_ignored, c, err,
						       sizeof(err))) {
				client_fatal(c, "08P01", "%s", err);
				return SBUF_CLOSED;
			}
		} else if (startup_param_ignored(name, NULL)) {
			log_debug("C-%llu: ignoring startup parameter: %s", c->id, name);
		} else if (!params_name_ok(name)) {
			client_fatal(c, "08P01", "invalid startup parameter name \"%s\"", name);
			return SBUF_CLOSED;
		} else if (!add_param(c, name, value)) {
			return SBUF_CLOSED;
		}
	}
	if (!c->user || !c->user[0]) {
		client_fatal(c, "08P01", "no username supplied");
		return SBUF_CLOSED;
	}
	if (!c->database || !c->database[0]) {
		free(c->database);
		c->database = strdup(c->user);
	}
	if (!c->database) {
		client_fatal(c, "53200", "out of memory");
		return SBUF_CLOSED;
	}
	if ((sp.code & 0xffff) != 0 || n_unknown > 0) {
		struct pktbuf b;
		pktbuf_init(&b);
		pkt_negotiate_protocol(&b, 0, unknown_opts, n_unknown);
		sbuf_send_pkt(&c->sb, &b);
		pktbuf_free(&b);
	}
	if (rt.n_clients > rt.cfg->max_client_conn) {
		client_fatal(c, "53300", "no more connections allowed (max_client_conn)");
		return SBUF_CLOSED;
	}
	if (rt.cfg->application_name_add_host) {
		const char *app = params_get(&c->params, "application_name");
		char buf[512];
		char abuf[64];
		snprintf(buf, sizeof(buf), "%s - %s", app ? app : "", client_addr(c, abuf));
		if (!add_param(c, "application_name", buf))
			return SBUF_CLOSED;
	}
	return start_auth(c);
}

/* ---- logged in ---- */

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

static enum sbuf_action handle_active(struct client *c, const struct sbuf_msg *msg)
{
	struct sbuf_msg cur = *msg;
	enum sbuf_action act;
	struct server *s;

	c->last_activity = rt_now();
	if (msg->type == FE_TERMINATE) {
		c->sb.input_done = true;
		client_close(c, "client close request");
		return SBUF_CLOSED;
	}
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
	link_request_msg(s, cur.type);
	if (cur.data != msg->data) {
		/* a policy's rewrite, or the Query with the core's added statements */
		sbuf_send(&s->sb, cur.data, cur.len);
		return done(c, SBUF_DROP);
	}
	return done(c, SBUF_FORWARD);
}

void client_linked(struct client *c)
{
	if (c->state == CL_WAITING)
		client_change_state(c, CL_ACTIVE);
	sbuf_resume(&c->sb);
}

static enum sbuf_action on_msg(struct sbuf *sb, const struct sbuf_msg *msg)
{
	struct client *c = sb->owner;

	switch (c->state) {
	case CL_LOGIN:
		if (c->auth_step == AUTH_STEP_STARTUP)
			return handle_startup(c, msg);
		return handle_password(c, msg);
	case CL_ACTIVE:
		return handle_active(c, msg);
	case CL_WELCOME:
	case CL_WAITING:
	case CL_TENANT_WAIT:
		return SBUF_PAUSE;
	case CL_CLOSED:
		return SBUF_CLOSED;
	}
	return SBUF_CLOSED;
}

static void on_error(struct sbuf *sb, int err)
{
	struct client *c = sb->owner;

	if (err == EBADMSG) {
		client_fatal(c, "08P01", c->state == CL_LOGIN ? "invalid startup packet" : "invalid message framing");
	} else if (err == EMSGSIZE) {
		client_fatal(c, "08P01", "message too large");
	} else if (err == 0) {
		client_close(c, "client unexpected eof");
	} else {
		char reason[128];
		snprintf(reason, sizeof(reason), "client socket error: %s", strerror(err));
		client_close(c, reason);
	}
}

static double pick_time(double user, double db, double global)
{
	if (user >= 0)
		return user;
	return db >= 0 ? db : global;
}

double client_timeout(const struct client *c, enum client_timeout which)
{
	const struct user_entry *u = c->user ? config_find_user(rt.cfg, c->user) : NULL;
	const struct db_entry *db = c->pool ? c->pool->db : NULL;
	const struct config *cfg = rt.cfg;

	switch (which) {
	case TIMEOUT_QUERY:
		return pick_time(u ? u->query_timeout : -1, -1, cfg->query_timeout);
	case TIMEOUT_QUERY_WAIT:
		return pick_time(u ? u->query_wait_timeout : -1, db ? db->query_wait_timeout : -1,
				 cfg->query_wait_timeout);
	case TIMEOUT_IDLE_TRANSACTION:
		return pick_time(u ? u->idle_transaction_timeout : -1, -1, cfg->idle_transaction_timeout);
	case TIMEOUT_TRANSACTION:
		return pick_time(u ? u->transaction_timeout : -1, -1, cfg->transaction_timeout);
	case TIMEOUT_CLIENT_IDLE:
		return pick_time(u ? u->client_idle_timeout : -1, -1, cfg->client_idle_timeout);
	}
	return 0;
}

void client_janitor(void)
{
	double limit = rt.cfg->client_login_timeout, idle, now = rt_now();
	struct list *it, *tmp;

	if (limit > 0) {
		LIST_FOREACH_SAFE(it, tmp, &g_login) {
			struct client *c = container_of(it, struct client, head);
			if (now - c->connect_time >= limit)
				client_fatal(c, "08P01", "client_login_timeout");
		}
	}
	LIST_FOREACH_SAFE(it, tmp, &g_all) {
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

void client_shutdown_waiting(void)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_all) {
		struct client *c = container_of(it, struct client, all);
		if (c->state == CL_WAITING || c->state == CL_TENANT_WAIT || c->state == CL_WELCOME)
			client_fatal(c, "08P01", "server shutting down");
	}
}

void client_close_all(const char *reason)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_all) {
		struct client *c = container_of(it, struct client, all);
		client_fatal(c, "57P01", "%s", reason);
	}
}
