/* Client login: accepting, the startup packet, authentication, the choice of a pool. */
#include "client_login.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "admin.h"
#include "authquery.h"
#include "client.h"
#include "client_params.h"
#include "client_policy.h"
#include "client_relay.h"
#include "config.h"
#include "link.h"
#include "log.h"
#include "control.h"
#include "hba.h"
#include "net.h"
#include "pool.h"
#include "runtime.h"
#include "tls.h"

#define CLIENT_MAX_WHOLE (64u * 1024 * 1024)	/* largest named Parse kept whole to share it */

static enum sbuf_action on_msg(struct sbuf *sb, const struct sbuf_msg *msg);
static void on_direct_tls(struct sbuf *sb);
static void on_error(struct sbuf *sb, int err);
static void on_tls(struct sbuf *sb, const char *error);

static const struct sbuf_ops client_ops = {
	.on_msg = on_msg,
	.on_error = on_error,
	.on_connect = NULL,
	.on_forwarded = NULL,	/* clients never pause after relaying */
	.on_tls = on_tls,
	.on_direct_tls = on_direct_tls,
};

/* A client going: what the layers above it hold for it. */
static void closing(struct client *c)
{
	if (c->auth_step == AUTH_STEP_LOOKUP)
		authq_client_gone(c);
	link_client_gone(c);
	if (c->pool) {
		c->pool->n_clients--;
		cpol_disconnect(c);
	}
}

static const struct client_hooks hooks = {
	.closing = closing,
	.freeing = cpol_forget,
};

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
	LIST_FOREACH_SAFE(it, tmp, client_logins()) {
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
	c->sb.direct_tls = !is_unix && tls_client_mode() != TLS_DISABLE;
	c->connect_time = rt_now();
	c->hooks = &hooks;
	client_register(c);
	new_cancel_key(c);
	if (!sbuf_accept(&c->sb, fd)) {
		close(fd);
		client_close(c, "could not register socket");
	}
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

/* A wrong password (or none known): PgBouncer's words, PostgreSQL's SQLSTATE (invalid_password). */
static enum sbuf_action auth_failed(struct client *c)
{
	client_fatal(c, "28P01", "%s", c->scram ? "SASL authentication failed" : "password authentication failed");
	return SBUF_CLOSED;
}

/* Logged-in clients of one database (by_db) or of one user, across pools. */
static int clients_where(bool by_db, const char *name)
{
	int n = 0;
	for (struct list *it = client_all()->next; it != client_all(); it = it->next) {
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

	if (admin_is_console_db(c->database))
		return admin_login(c);
	if (!db) {
		char reason[300], abuf[64];
		if (rt.cfg->log_connections)
			log_info("C-%llu %s/%s@%s login failed: db=%s user=%s", c->id, c->database, c->user,
				 client_addr(c, abuf), c->database, c->user);
		snprintf(reason, sizeof(reason), "no such database: %s", c->database);
		return login_failed(c, reason);
	}
	if (control_db_disabled(c->database)) {
		char reason[300];
		snprintf(reason, sizeof(reason), "database \"%s\" is disabled", c->database);
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
	/* an md5 secret from auth_query answers the server's md5 request as that user */
	if (c->secret_from_query && authfile_secret_kind(c->secret) == SECRET_MD5 && strcmp(server_user, c->user) == 0)
		pool_learn_md5(pool, c->secret);
	client_drop_scram(c);
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
		char abuf[64], tbuf[128];
		log_info("C-%llu %s/%s@%s login attempt: db=%s user=%s tls=%s", c->id, c->database, c->user,
			 client_addr(c, abuf), c->database, c->user, client_tls(c, tbuf, sizeof(tbuf)));
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

/*
 * peer: the OS user at the other end of the unix socket is the user (or a line of the rule's ident map pairs
 * them). As PgBouncer, the user must also be known (auth_file or auth_query).
 */
static enum sbuf_action peer_login(struct client *c, const char *map)
{
	char name[256];

	if (!c->is_unix || !c->secret || !net_peer_user(c->sb.fd, name, sizeof(name)) ||
	    !hba_ident_allows(rt.hba, map, name, c->user)) {
		if (map && c->is_unix && c->secret)
			log_warning("C-%llu: ident map %s cannot be matched", c->id, map);
		return login_failed(c, "unix socket login rejected");
	}
	return auth_ok(c);
}

/*
 * auth_type cert (or an hba cert rule): a verified client certificate that names the user, or with map= one of
 * the ident map's names for that user. Users unknown to auth_file and auth_query are refused the same way.
 */
static enum sbuf_action cert_login(struct client *c, const char *map)
{
	bool ok = false;

	if (!client_tls_active(c)) {
		log_warning("C-%llu: TLS connection required", c->id);
	} else if (!tls_peer_cert_verified(&c->sb)) {
		log_warning("C-%llu: TLS client certificate required", c->id);
	} else if (!c->secret) {
		ok = false;	/* an unknown user: the same failure as a certificate of another name */
	} else if (!map) {
		ok = tls_peer_cert_names(&c->sb, c->user);
		if (!ok)
			log_warning("C-%llu: TLS certificate name mismatch", c->id);
	} else {
		for (size_t i = 0; rt.hba && !ok && i < rt.hba->n_idents; i++) {
			const struct hba_ident *id = &rt.hba->idents[i];
			ok = strcmp(id->map, map) == 0 && (!id->db_user || strcmp(id->db_user, c->user) == 0) &&
			     tls_peer_cert_names(&c->sb, id->system_user);
		}
		if (!ok)
			log_warning("C-%llu: ident map %s does not have a match", c->id, map);
	}
	return ok ? auth_ok(c) : login_failed(c, "certificate authentication failed");
}

/* The check itself, once the method is chosen and the user's secret known (c->secret, NULL if none). */
static enum sbuf_action begin_auth(struct client *c, enum auth_type type, const char *map)
{
	enum secret_kind kind = c->secret ? authfile_secret_kind(c->secret) : SECRET_PLAIN;

	c->auth_method = type;
	switch (type) {
	case AUTH_TYPE_ANY:
		return auth_ok(c);
	case AUTH_TYPE_TRUST:
		if (!c->secret)
			return login_failed(c, "\"trust\" authentication failed");
		return auth_ok(c);
	case AUTH_TYPE_PLAIN:
		c->auth_step = AUTH_STEP_PASSWORD;
		return send_auth(c, AUTH_REQ_CLEARTEXT, NULL, 0) ? SBUF_DROP : SBUF_CLOSED;
	case AUTH_TYPE_MD5:
		if (c->secret && kind == SECRET_SCRAM)
			return start_scram(c, c->secret);
		if (RAND_bytes(c->md5_salt, sizeof(c->md5_salt)) != 1) {
			client_fatal(c, "58000", "could not generate random salt");
			return SBUF_CLOSED;
		}
		c->auth_step = AUTH_STEP_PASSWORD;
		return send_auth(c, AUTH_REQ_MD5, c->md5_salt, 4) ? SBUF_DROP : SBUF_CLOSED;
	case AUTH_TYPE_SCRAM:
		if (!c->secret || kind == SECRET_MD5) {
			if (c->secret)
				log_warning("C-%llu: SCRAM authentication failed: user has MD5 secret", c->id);
			return start_scram(c, NULL);
		}
		return start_scram(c, c->secret);
	case AUTH_TYPE_PEER:
		return peer_login(c, map);
	case AUTH_TYPE_CERT:
		return cert_login(c, map);
	default:
		return login_failed(c, "login rejected");
	}
}

static const enum auth_type hba_methods[] = {
	[HBA_TRUST] = AUTH_TYPE_TRUST, [HBA_MD5] = AUTH_TYPE_MD5,   [HBA_SCRAM] = AUTH_TYPE_SCRAM,
	[HBA_PASSWORD] = AUTH_TYPE_PLAIN, [HBA_PEER] = AUTH_TYPE_PEER, [HBA_CERT] = AUTH_TYPE_CERT,
};

/* The user's secret is known (or known not to exist): the method is chosen, and the check begins. */
static enum sbuf_action choose_method(struct client *c)
{
	enum auth_type type = rt.cfg->auth_type;
	const struct hba_rule *rule = NULL;

	if (type == AUTH_TYPE_HBA) {
		struct hba_request req = {
			.addr = c->is_unix ? NULL : &c->addr.sa,
			.tls = client_tls_active(c),
			.database = c->database,
			.user = c->user,
		};
		rule = hba_match(rt.hba, &req);
		if (!rule)
			return login_failed(c, "no authentication method is found");
		log_debug("C-%llu: hba line %d matched", c->id, rule->line);
		if (rule->method == HBA_REJECT)
			return login_failed(c, "login rejected");
		type = hba_methods[rule->method];
	}
	return begin_auth(c, type, rule ? rule->map : NULL);
}

/*
 * auth_query answered. No row, a NULL secret and an expired password leave the user without a secret: the
 * exchange runs to its end and fails as a wrong password does, so that no one learns which users exist.
 */
static void lookup_done(struct client *c, char *secret, const char *error)
{
	if (error) {
		free(secret);
		log_warning("C-%llu: auth_query for user %s failed: %s", c->id, c->user, error);
		login_failed(c, "auth_query failed");
		return;
	}
	c->secret = secret;
	c->secret_from_query = secret != NULL;
	if (choose_method(c) != SBUF_CLOSED && c->state != CL_CLOSED && c->sb.paused)
		sbuf_resume(&c->sb);
}

static enum sbuf_action start_auth(struct client *c)
{
	const struct auth_entry *ae = rt.auth ? authfile_find(rt.auth, c->user) : NULL;

	if (ae) {
		c->secret = strdup(ae->secret);
		if (!c->secret) {
			client_fatal(c, "53200", "out of memory");
			return SBUF_CLOSED;
		}
	}
	if (admin_is_console_db(c->database)) {
		if (admin_pre_login(c))
			return admin_login(c);
	} else if (!ae && rt.cfg->auth_type != AUTH_TYPE_ANY && authq_applies(c->database)) {
		char err[128];
		if (!authq_start(c, lookup_done, err, sizeof(err)))
			return login_failed(c, err);
		c->auth_step = AUTH_STEP_LOOKUP;
		return SBUF_DROP;
	}
	return choose_method(c);
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
		if (c->auth_method == AUTH_TYPE_MD5) {
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
 * SSLRequest or GSSENCRequest. An SSLRequest on TCP is answered 'S' when
 * client_tls_sslmode is not disable, and the TLS handshake follows; otherwise
 * (and for GSS encryption always) 'N', and the client goes on in plain text.
 * Each may come once, in either order (libpq sends GSSENCRequest, then
 * SSLRequest), as PostgreSQL allows, and never inside TLS; bytes that arrived
 * behind the request were sent before its answer and may have been injected,
 * as PgBouncer checks too.
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
	if (ssl && tls_client_mode() != TLS_DISABLE && !c->is_unix) {
		sbuf_send(&c->sb, "S", 1);
		if (!tls_accept(&c->sb)) {
			client_close(c, "failed to accept SSL");
			return SBUF_CLOSED;
		}
		return SBUF_DROP;
	}
	sbuf_send(&c->sb, "N", 1);
	return SBUF_DROP;
}

/* Direct TLS (PostgreSQL 17's sslnegotiation=direct): the handshake begins with no SSLRequest and no 'S'. */
static void on_direct_tls(struct sbuf *sb)
{
	struct client *c = sb->owner;

	c->ssl_requested = true;	/* an SSLRequest inside TLS is refused, as after an 'S' */
	if (!tls_accept(&c->sb))
		client_close(c, "failed to accept SSL");
}

/* The TLS handshake after an 'S' ended; a failed one has no channel left for an ErrorResponse. */
static void on_tls(struct sbuf *sb, const char *error)
{
	struct client *c = sb->owner;
	char reason[320];

	if (!error) {
		char tbuf[128];
		log_debug("C-%llu: TLS established: %s", c->id, client_tls(c, tbuf, sizeof(tbuf)));
		return;
	}
	snprintf(reason, sizeof(reason), "TLS handshake failed: %s", error);
	client_close(c, reason);
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
	if (tls_client_mode() >= TLS_REQUIRE && !tls_active(&c->sb) && !c->is_unix) {
		client_fatal(c, "08P01", "SSL required");
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
	if (rt.n_clients > rt.cfg->max_client_conn && !admin_is_console_db(c->database)) {
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

static enum sbuf_action on_msg(struct sbuf *sb, const struct sbuf_msg *msg)
{
	struct client *c = sb->owner;

	switch (c->state) {
	case CL_LOGIN:
		if (c->auth_step == AUTH_STEP_STARTUP)
			return handle_startup(c, msg);
		if (c->auth_step == AUTH_STEP_LOOKUP)
			return SBUF_PAUSE;	/* resumed once auth_query has answered */
		return handle_password(c, msg);
	case CL_ACTIVE:
		return c->console ? admin_msg(c, msg) : client_relay_msg(c, msg);
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

