/* auth_query: the secret of a user missing from auth_file, fetched from PostgreSQL as auth_user while the login waits. */
#include "authquery.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authfile.h"
#include "client.h"
#include "config.h"
#include "list.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "runtime.h"
#include "server.h"

/*
 * One lookup: a pool of its own (never in the pool list, so no client is ever handed its server) holding the
 * one connection that logs in as auth_user, runs the query and closes. Its result reaches the client from a
 * deferred event, so that nothing the connection does (a connect that fails at once included) calls back
 * into the client's login while it is still being handled. Clients without credentials must not be able to
 * use up PostgreSQL's connections: at most pool_size lookups of one database and auth_user run at once, the
 * rest wait their turn (FIFO).
 */
struct lookup {
	struct pool pool;
	struct list head;		/* in g_lookups */
	struct client *client;		/* NULL once it has gone or had its answer */
	authq_done_fn done;
	char *user;			/* the query's parameter */
	char *query;
	struct event tick;		/* delivers the result, frees the lookup once its server is gone */
	bool decided;			/* the result below is final */
	bool launched;			/* has had its connection (else it waits for its turn) */
	bool server_gone;		/* has no connection (any more) */
	bool have_row;
	char *secret;			/* the row's second column, or NULL */
	char error[256];		/* non-empty: the lookup failed */
};

static struct list g_lookups = { &g_lookups, &g_lookups };

static struct lookup *of_pool(struct pool *pool)
{
	return container_of(pool, struct lookup, pool);
}

static void poke(struct lookup *lk)
{
	event_active(&lk->tick, EV_TIMEOUT, 0);
}

/* Settle the result (the first word counts) and close the connection, which has nothing more to do. */
static void decide(struct lookup *lk, const char *error)
{
	if (!lk->decided) {
		lk->decided = true;
		if (error)
			snprintf(lk->error, sizeof(lk->error), "%s", error);
	}
	if (!lk->server_gone) {
		struct list *l[] = { &lk->pool.login_servers, &lk->pool.used_servers, &lk->pool.idle_servers };
		for (size_t i = 0; i < sizeof(l) / sizeof(l[0]); i++)
			if (!list_empty(l[i]))
				server_close(container_of(l[i]->next, struct server, head),
					     lk->client ? "auth_query done" : "client gone during auth_query");
	}
	poke(lk);
}

static void lookup_free(struct lookup *lk)
{
	event_del(&lk->tick);
	list_remove(&lk->head);
	free(lk->pool.db_name);
	free(lk->pool.user_name);
	free(lk->pool.password);
	free(lk->pool.md5_secret);
	free(lk->user);
	free(lk->query);
	free(lk->secret);
	free(lk);
}

static bool same_target(const struct lookup *lk, const char *db_name, const char *user_name)
{
	return strcmp(lk->pool.db_name, db_name) == 0 && strcmp(lk->pool.user_name, user_name) == 0;
}

/* Start the lookups waiting for a turn at this database entry and auth_user, within its pool_size. */
static void launch_waiting(const struct db_entry *db, const char *db_name, const char *user_name)
{
	int running = 0, limit = config_pool_size(rt.cfg, db, config_find_user(rt.cfg, user_name));

	for (struct list *it = g_lookups.next; it != &g_lookups; it = it->next) {
		const struct lookup *o = container_of(it, struct lookup, head);
		if (o->launched && !o->server_gone && same_target(o, db_name, user_name))
			running++;
	}
	for (struct list *it = g_lookups.next; it != &g_lookups && (running < limit || limit <= 0); it = it->next) {
		struct lookup *o = container_of(it, struct lookup, head);
		if (!o->launched && !o->decided && o->pool.db && same_target(o, db_name, user_name)) {
			o->launched = true;
			o->server_gone = false;
			running++;
			server_launch(&o->pool);
		}
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct lookup *lk = arg;
	(void)fd;
	(void)what;

	if (lk->server_gone && lk->launched && !lk->decided)
		decide(lk, "the connection closed before auth_query answered");
	if (lk->decided && lk->client) {
		struct client *c = lk->client;
		char *secret = lk->error[0] ? NULL : lk->secret;
		lk->client = NULL;
		if (secret)
			lk->secret = NULL;
		lk->done(c, secret, lk->error[0] ? lk->error : NULL);
	}
	if (lk->server_gone && !lk->client) {
		const struct db_entry *db = lk->launched ? lk->pool.db : NULL;
		char *db_name = lk->pool.db_name, *user_name = lk->pool.user_name;
		lk->pool.db_name = lk->pool.user_name = NULL;
		lookup_free(lk);
		if (db)	/* its place is free: the next one waiting starts */
			launch_waiting(db, db_name, user_name);
		free(db_name);
		free(user_name);
	}
}

/* ---- what its server reports ---- */

static void on_ready(struct server *s)
{
	struct lookup *lk = of_pool(s->pool);

	if (lk->decided || !lk->client) {
		server_close(s, "auth_query no longer needed");
		return;
	}
	server_change_state(s, SV_USED);
	log_debug("S-%llu: running auth_query for user %s", s->id, lk->user);
	server_lookup(s, lk->query, lk->user);
}

static void on_gone(struct pool *pool)
{
	struct lookup *lk = of_pool(pool);

	if (pool_server_count(pool) == 0) {
		lk->server_gone = true;
		poke(lk);
	}
}

static void on_login_failed(struct pool *pool, const char *sqlstate, const char *message, bool retry)
{
	char error[256];
	(void)retry;

	snprintf(error, sizeof(error), "auth_user login failed: %s %s", sqlstate, message);
	decide(of_pool(pool), error);
}

/* A DataRow: user name, then the secret (NULL: no password, or expired). */
static void on_row(struct server *s, const uint8_t *row, size_t len)
{
	struct lookup *lk = of_pool(s->pool);
	struct pkt_reader r;
	uint32_t name_len, secret_len;
	const uint8_t *secret;

	pkt_reader_init(&r, row, len);
	if (pkt_get_u16(&r) != 2) {
		s->internal_failed = true;	/* the ReadyForQuery that follows ends the lookup with this */
		snprintf(s->internal_error, sizeof(s->internal_error), "expected 2 columns from auth_query");
		return;
	}
	name_len = pkt_get_u32(&r);
	if (name_len == 0xffffffffu || !pkt_get_bytes(&r, name_len)) {
		s->internal_failed = true;
		snprintf(s->internal_error, sizeof(s->internal_error), "auth_query returned a NULL user name");
		return;
	}
	secret_len = pkt_get_u32(&r);
	if (lk->have_row || r.bad)
		return;	/* the first row counts */
	lk->have_row = true;
	if (secret_len == 0xffffffffu || !(secret = pkt_get_bytes(&r, secret_len)))
		return;
	lk->secret = malloc(secret_len + 1);
	if (lk->secret) {
		memcpy(lk->secret, secret, secret_len);
		lk->secret[secret_len] = 0;
	}
}

static void on_done(struct server *s, const char *error)
{
	decide(of_pool(s->pool), error);
}

static const struct server_pool_events lookup_events = {
	.ready = on_ready,
	.gone = on_gone,
	.login_failed = on_login_failed,
	.lookup_row = on_row,
	.lookup_done = on_done,
};

/* ---- the client side ---- */

static const char *auth_user_of(const struct db_entry *db)
{
	const char *u = db && db->auth_user && db->auth_user[0] ? db->auth_user : rt.cfg->auth_user;
	return u && u[0] ? u : NULL;
}

bool authq_applies(const char *database)
{
	const struct db_entry *db = config_find_db(rt.cfg, database);
	return db && auth_user_of(db);
}

/* The auth_file secret of auth_user, as a server login uses it (a SCRAM secret cannot answer a server). */
static void set_credentials(struct pool *pool, const char *user)
{
	const struct auth_entry *ae = rt.auth ? authfile_find(rt.auth, user) : NULL;

	if (ae && ae->kind == SECRET_PLAIN)
		pool->password = strdup(ae->secret);
	else if (ae && ae->kind == SECRET_MD5)
		pool->md5_secret = strdup(ae->secret);
}

bool authq_start(struct client *c, authq_done_fn done, char *err, size_t errlen)
{
	const struct db_entry *db = config_find_db(rt.cfg, c->database), *target = db;
	const char *auth_db = db && db->auth_dbname && db->auth_dbname[0] ? db->auth_dbname : rt.cfg->auth_dbname;
	const char *query = db && db->auth_query && db->auth_query[0] ? db->auth_query : rt.cfg->auth_query;
	const char *target_name = c->database;
	struct lookup *lk;
	struct pool *p;

	if (auth_db && auth_db[0]) {
		target = config_find_db(rt.cfg, auth_db);
		target_name = auth_db;
		if (!target) {
			log_error("C-%llu: authentication database \"%s\" is not configured", c->id, auth_db);
			snprintf(err, errlen, "bouncer config error");
			return false;
		}
	}
	lk = calloc(1, sizeof(*lk));
	if (!lk) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	p = &lk->pool;
	p->db = target;
	p->db_name = strdup(target_name);
	p->user_name = strdup(auth_user_of(db));
	p->server_events = &lookup_events;
	pool_init_lists(p);
	set_credentials(p, auth_user_of(db));
	lk->client = c;
	lk->done = done;
	lk->server_gone = true;	/* until its turn comes */
	lk->user = strdup(c->user);
	lk->query = strdup(query ? query : "");
	list_append(&g_lookups, &lk->head);
	evtimer_assign(&lk->tick, rt.base, on_tick, lk);
	if (!p->db_name || !p->user_name || !lk->user || !lk->query) {
		lk->client = NULL;
		lk->server_gone = true;
		lookup_free(lk);
		snprintf(err, errlen, "out of memory");
		return false;
	}
	log_debug("C-%llu: user %s is not in auth_file: auth_query as %s in %s", c->id, c->user, p->user_name,
		  p->db_name);
	launch_waiting(p->db, p->db_name, p->user_name);
	return true;
}

void authq_client_gone(struct client *c)
{
	for (struct list *it = g_lookups.next; it != &g_lookups; it = it->next) {
		struct lookup *lk = container_of(it, struct lookup, head);
		if (lk->client == c) {
			lk->client = NULL;
			decide(lk, "the client went away");
			return;
		}
	}
}

void authq_reconfigure(void)
{
	for (struct list *it = g_lookups.next; it != &g_lookups; it = it->next) {
		struct lookup *lk = container_of(it, struct lookup, head);
		lk->pool.db = config_find_db(rt.cfg, lk->pool.db_name);
		if (!lk->pool.db)
			decide(lk, "the database entry was removed by a reload");
	}
}
