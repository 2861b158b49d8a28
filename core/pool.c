/* Pools: one per (database entry, server user); server hand-out, FIFO waiting, welcome parameters. */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authfile.h"
#include "client.h"
#include "control.h"
#include "link.h"
#include "log.h"
#include "runtime.h"
#include "server.h"

static struct list g_pools = { &g_pools, &g_pools };

static void server_ready(struct server *server);
static void server_gone(struct pool *pool);
static void login_failed(struct pool *pool, const char *sqlstate, const char *message, bool retry);

static const struct server_pool_events server_events = {
	.ready = server_ready,
	.gone = server_gone,
	.login_failed = login_failed,
};

static void close_list(struct list *l, const char *reason);

struct list *pool_list(void)
{
	return &g_pools;
}

static void set_str(char **dst, const char *src)
{
	char *copy = src ? strdup(src) : NULL;
	free(*dst);
	*dst = copy;
}

/* Server-login credentials, as PgBouncer: entry password, else auth_file plain/md5; SCRAM keys come from clients. */
static void refresh_credentials(struct pool *pool)
{
	const struct db_entry *db = pool->db;
	const struct auth_entry *ae;

	set_str(&pool->password, NULL);
	set_str(&pool->md5_secret, NULL);
	if (db && db->password && db->password[0]) {
		set_str(&pool->password, db->password);
		return;
	}
	ae = rt.auth ? authfile_find(rt.auth, pool->user_name) : NULL;
	if (!ae) {
		set_str(&pool->md5_secret, pool->query_md5_secret);
		return;
	}
	if (ae->kind == SECRET_PLAIN)
		set_str(&pool->password, ae->secret);
	else if (ae->kind == SECRET_MD5)
		set_str(&pool->md5_secret, ae->secret);
}

void pool_learn_md5(struct pool *pool, const char *secret)
{
	set_str(&pool->query_md5_secret, secret);
	refresh_credentials(pool);
}

void pool_init_lists(struct pool *pool)
{
	list_init(&pool->head);
	list_init(&pool->login_servers);
	list_init(&pool->idle_servers);
	list_init(&pool->active_servers);
	list_init(&pool->used_servers);
	list_init(&pool->closing_servers);
	list_init(&pool->welcome_clients);
	list_init(&pool->active_clients);
	list_init(&pool->waiting_clients);
}

struct pool *pool_get(const char *db_name, const struct db_entry *db, const char *user_name)
{
	struct list *it;
	struct pool *pool;

	for (it = g_pools.next; it != &g_pools; it = it->next) {
		pool = container_of(it, struct pool, head);
		if (strcmp(pool->db_name, db_name) == 0 && strcmp(pool->user_name, user_name) == 0) {
			pool->db = db;
			refresh_credentials(pool);
			return pool;
		}
	}
	pool = calloc(1, sizeof(*pool));
	if (pool)
		pool->server_events = &server_events;
	if (!pool)
		return NULL;
	pool->db_name = strdup(db_name);
	pool->user_name = strdup(user_name);
	if (!pool->db_name || !pool->user_name) {
		free(pool->db_name);
		free(pool->user_name);
		free(pool);
		return NULL;
	}
	pool->db = db;
	pool->forced_user = db->user && strcmp(db->user, user_name) == 0;
	pool->user = config_find_user(rt.cfg, user_name);
	pool_init_lists(pool);
	list_append(&g_pools, &pool->head);
	refresh_credentials(pool);
	log_debug("new pool %s/%s", db_name, user_name);
	return pool;
}

/* Servers logged in (PgBouncer's connected servers): not the ones logging in, not the closing ones. */
static int connected_servers(const struct pool *pool)
{
	return pool->n_idle + pool->n_active + pool->n_used;
}

/* Servers that still do work: the closing ones only wait for PostgreSQL to hang up. */
static int working_servers(const struct pool *pool)
{
	return pool->n_login + pool->n_idle + pool->n_active + pool->n_used;
}

/* Closing servers count too: PostgreSQL still has them until they hang up. */
int pool_server_count(const struct pool *pool)
{
	return working_servers(pool) + pool->n_closing;
}

enum pool_mode pool_mode_of(const struct pool *pool)
{
	return config_pool_mode(rt.cfg, pool->db, pool->user);
}

static int pool_size(const struct pool *pool)
{
	return config_pool_size(rt.cfg, pool->db, pool->user);
}

/* Inside server_login_retry after a failure, with nothing else alive, new logins would only fail again. */
static bool in_login_backoff(const struct pool *pool)
{
	return pool->last_login_failure > 0 && rt_now() - pool->last_login_failure < rt.cfg->server_login_retry;
}

/* May a login start now? Not within the backoff; and while logins fail, one at a time (as PgBouncer, which
 * always tries one at a time): a server that is down or starting up gets one probe per server_login_retry. */
static bool may_launch(const struct pool *pool)
{
	return !in_login_backoff(pool) && !(pool->last_login_failure > 0 && pool->n_login > 0);
}

static int pick(int specific, int global)
{
	return specific >= 0 ? specific : global;
}

int pool_max_db_connections(const struct pool *pool)
{
	return pool->db ? pick(pool->db->max_db_connections, rt.cfg->max_db_connections) : 0;
}

int pool_max_user_connections(const struct pool *pool)
{
	const struct user_entry *u = pool->user;
	return pick(u ? u->max_user_connections : -1, rt.cfg->max_user_connections);
}

static int reserve_size(const struct pool *pool)
{
	const struct user_entry *u = pool->user;
	if (u && u->reserve_pool_size >= 0)
		return u->reserve_pool_size;
	return pool->db ? pick(pool->db->reserve_pool_size, rt.cfg->reserve_pool_size) : 0;
}

static int min_size_of(const struct db_entry *db)
{
	return db ? pick(db->min_pool_size, rt.cfg->min_pool_size) : 0;
}

static int min_size(const struct pool *pool)
{
	return min_size_of(pool->db);
}

/* Servers of every pool that shares the database name (or the server user). */
static int servers_for(const struct pool *pool, bool same_db)
{
	int n = 0;
	for (struct list *it = g_pools.next; it != &g_pools; it = it->next) {
		const struct pool *p = container_of(it, struct pool, head);
		if (same_db ? strcmp(p->db_name, pool->db_name) == 0 : strcmp(p->user_name, pool->user_name) == 0)
			n += pool_server_count(p);
	}
	return n;
}

/* At max_db_connections / max_user_connections: free a slot by closing an idle server of another pool. */
static bool evict_idle_for(const struct pool *pool, bool same_db)
{
	for (struct list *it = g_pools.next; it != &g_pools; it = it->next) {
		struct pool *p = container_of(it, struct pool, head);
		bool related = same_db ? strcmp(p->db_name, pool->db_name) == 0
				       : strcmp(p->user_name, pool->user_name) == 0;
		if (p != pool && related && !list_empty(&p->idle_servers)) {
			server_close(container_of(p->idle_servers.next, struct server, head),
				     same_db ? "evicted (max_db_connections: slot needed by another pool)"
					     : "evicted (max_user_connections: slot needed by another pool)");
			return true;
		}
	}
	return false;
}

/* May one more server be opened, under max_db_connections and max_user_connections? */
static bool below_global_limits(const struct pool *pool)
{
	int max_db = pool_max_db_connections(pool), max_user = pool_max_user_connections(pool);

	if (max_db > 0 && servers_for(pool, true) >= max_db && !evict_idle_for(pool, true))
		return false;
	if (max_user > 0 && servers_for(pool, false) >= max_user && !evict_idle_for(pool, false))
		return false;
	return true;
}

/* The pool size for now: pool_size, plus reserve_pool_size once a client has waited reserve_pool_timeout. */
static int current_size(const struct pool *pool)
{
	int size = pool_size(pool), reserve = reserve_size(pool);

	if (reserve > 0 && !list_empty(&pool->waiting_clients)) {
		const struct client *first = container_of(pool->waiting_clients.next, struct client, head);
		if (rt_now() - first->request_time >= rt.cfg->reserve_pool_timeout)
			size += reserve;
	}
	return size;
}

/* Open servers for waiting clients (and one for the welcome parameters), within every limit. */
static void launch_as_needed(struct pool *pool)
{
	int need = pool->n_waiting;
	int size = current_size(pool);

	if (rt.shutdown == SHUTDOWN_WAIT_SERVERS || !pool->db || control_db_paused(pool->db_name))
		return;
	if (!pool->have_welcome && !list_empty(&pool->welcome_clients) && need == 0)
		need = 1;
	/* a launch can fail at once (a missing unix socket): the backoff then ends the loop */
	while (may_launch(pool) && pool->n_login < need && pool_server_count(pool) < size &&
	       below_global_limits(pool)) {
		if (pool_server_count(pool) >= pool_size(pool) && !list_empty(&pool->waiting_clients)) {
			const struct client *c = container_of(pool->waiting_clients.next, struct client, head);
			char abuf[64];
			log_warning("C-%llu %s/%s@%s taking connection from reserve_pool", c->id, c->database, c->user,
				    client_addr(c, abuf));
		}
		server_launch(pool);
	}
}

/* Waiting clients of other pools may now fit under a shared limit. */
static void launch_everywhere(void)
{
	for (struct list *it = g_pools.next; it != &g_pools; it = it->next) {
		struct pool *p = container_of(it, struct pool, head);
		if (!list_empty(&p->waiting_clients))
			launch_as_needed(p);
	}
}

/* A pool reached through the "*" entry with no client for autodb_idle_timeout goes, servers first. */
static bool autodb_expired(struct pool *pool, double now)
{
	double limit = rt.cfg->autodb_idle_timeout;

	if (!pool->db || strcmp(pool->db->name, "*") != 0 || limit <= 0 || pool->n_clients > 0 ||
	    !list_empty(&pool->waiting_clients)) {
		pool->unused_since = 0;
		return false;
	}
	if (pool->unused_since == 0)
		pool->unused_since = now;
	if (now - pool->unused_since < limit)
		return false;
	close_list(&pool->idle_servers, "autodb_idle_timeout");
	return pool_server_count(pool) == 0;
}

static void pool_free(struct pool *pool)
{
	log_debug("pool %s/%s freed (autodb_idle_timeout)", pool->db_name, pool->user_name);
	list_remove(&pool->head);
	free(pool->db_name);
	free(pool->user_name);
	free(pool->password);
	free(pool->md5_secret);
	free(pool->query_md5_secret);
	params_clear(&pool->welcome);
	free(pool);
}

/* A waiting client gives up: while server logins fail, the reason says why no server came. */
static void fail_waiting(struct client *c, const char *reason)
{
	const struct pool *pool = c->pool;

	if (pool && pool->last_login_failure > 0 && pool->last_error[0])
		client_fatal(c, "08P01", "%s (last server login failed: %s)", reason, pool->last_error);
	else
		client_fatal(c, "08P01", "%s", reason);
}

void pool_janitor(struct pool *pool)
{
	double now = rt_now();
	int min = min_size(pool);
	struct list *it, *tmp;

	if (autodb_expired(pool, now)) {
		pool_free(pool);
		return;
	}

	LIST_FOREACH_SAFE(it, tmp, &pool->closing_servers) {
		server_closing_janitor(container_of(it, struct server, head));
	}
	/* idle servers past server_lifetime or server_idle_timeout (above min_pool_size), or beyond a pool size
	 * lowered by a reload */
	LIST_FOREACH_SAFE(it, tmp, &pool->idle_servers) {
		struct server *s = container_of(it, struct server, head);
		double idle = rt.cfg->server_idle_timeout;
		if (idle > 0 && now - s->last_used >= idle && pool_server_count(pool) > min)
			server_close(s, "server idle timeout (server_idle_timeout)");
		else if (server_past_lifetime(s))
			server_close(s, "server lifetime over (server_lifetime)");
		else if (working_servers(pool) > current_size(pool))
			server_close(s, "too many servers in the pool (pool size lowered)");
	}
	/* servers that take too long to connect and log in */
	if (rt.cfg->server_connect_timeout > 0) {
		LIST_FOREACH_SAFE(it, tmp, &pool->login_servers) {
			struct server *s = container_of(it, struct server, head);
			if (now - s->connect_time >= rt.cfg->server_connect_timeout)
				server_login_timeout(s);
		}
	}
	/* clients waiting too long for a server: told once after query_wait_notify, failed at query_timeout or
	 * query_wait_timeout (the global query_timeout counts the wait too, as in PgBouncer) */
	LIST_FOREACH_SAFE(it, tmp, &pool->waiting_clients) {
		struct client *c = container_of(it, struct client, head);
		double limit = client_timeout(c, TIMEOUT_QUERY_WAIT);
		if (rt.cfg->query_timeout > 0 && now - c->request_time >= rt.cfg->query_timeout) {
			fail_waiting(c, "query_timeout");
			continue;
		}
		if (limit > 0 && now - c->request_time >= limit) {
			fail_waiting(c, "query_wait_timeout");
			continue;
		}
		if (!c->wait_notified && rt.cfg->query_wait_notify > 0 &&
		    now - c->request_time >= rt.cfg->query_wait_notify) {
			client_notice(c, "00000", "No server connection available in postgres backend, client being queued");
			c->wait_notified = true;
		}
	}
	/* clients waiting for the welcome parameters (the first server login of the pool) */
	LIST_FOREACH_SAFE(it, tmp, &pool->welcome_clients) {
		struct client *c = container_of(it, struct client, head);
		double limit = client_timeout(c, TIMEOUT_QUERY_WAIT);
		if (limit > 0 && now - c->connect_time >= limit)
			fail_waiting(c, "query_wait_timeout");
		else if (rt.cfg->client_login_timeout > 0 && now - c->connect_time >= rt.cfg->client_login_timeout)
			fail_waiting(c, "client_login_timeout (server down)");
	}
	/* min_pool_size, and the reserve pool once its timeout passed */
	if (rt.shutdown == SHUTDOWN_NONE && pool->db) {
		while (may_launch(pool) && pool_server_count(pool) < min &&
		       pool_server_count(pool) < pool_size(pool) && below_global_limits(pool))
			server_launch(pool);
	}
	launch_as_needed(pool);
}

static void fail_clients(struct list *l, const char *sqlstate, const char *message)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, l) {
		struct client *c = container_of(it, struct client, head);
		client_fatal(c, sqlstate, "%s", message);
	}
}

void pool_request_server(struct pool *pool, struct client *client)
{
	struct list *it;

	if (rt.shutdown != SHUTDOWN_WAIT_SERVERS && !control_db_paused(pool->db_name) &&
	    !list_empty(&pool->idle_servers)) {
		struct server *s;
		/* LIFO keeps the busiest servers warm and lets the rest time out; round robin spreads load */
		it = rt.cfg->server_round_robin ? pool->idle_servers.next : pool->idle_servers.prev;
		s = container_of(it, struct server, head);
		if (!server_needs_check(s)) {
			link_hand_over(s, client);
			return;
		}
		/* idle past server_check_delay: the check runs first, then the server goes to the first waiter */
		client->request_time = rt_now();
		client->wait_notified = false;
		client_change_state(client, CL_WAITING);
		server_check(s);
		return;
	}
	if (connected_servers(pool) == 0 && in_login_backoff(pool)) {
		/* PgBouncer's fast fail: logins have been failing, no server is left, the retry is not due */
		client_fatal(client, "08P01", "server login has been failing, cached error: %s (server_login_retry)",
			     pool->last_error);
		return;
	}
	client->request_time = rt_now();
	client->wait_notified = false;
	client_change_state(client, CL_WAITING);
	launch_as_needed(pool);
}

/* A server is ready for work (login done or reset done): hand it to a waiting client or park it. */
static void server_ready(struct server *server)
{
	struct pool *pool = server->pool;

	if (server->conn_generation != pool->conn_generation) {
		server_close(server, "database configuration changed");
		return;
	}
	if (!pool->have_welcome) {
		if (!params_copy(&pool->welcome, &server->defaults)) {
			server_close(server, "out of memory");
			return;
		}
		pool->have_welcome = true;
		pool_welcome_ready(pool);
		if (server->state == SV_CLOSED)
			return;
	}
	if (rt.shutdown == SHUTDOWN_WAIT_SERVERS) {
		server_close(server, "shutting down");
		return;
	}
	if (server_past_lifetime(server)) {
		server_close(server, "server lifetime over (server_lifetime)");
		return;
	}
	if (list_empty(&pool->waiting_clients) && working_servers(pool) > current_size(pool)) {
		server_close(server, "too many servers in the pool (pool size lowered)");
		return;
	}
	if (server->cancels_in_flight > 0) {
		/* a late cancel must not hit the next client's query: wait until it has been delivered */
		server_change_state(server, SV_USED);
		server->await_cancel = true;
		return;
	}
	if (!list_empty(&pool->waiting_clients) && !control_db_paused(pool->db_name)) {
		struct client *c = container_of(pool->waiting_clients.next, struct client, head);
		link_hand_over(server, c);
		return;
	}
	server_change_state(server, SV_IDLE);
}

void pool_resume_all(void)
{
	for (struct list *it = g_pools.next; it != &g_pools; it = it->next) {
		struct pool *pool = container_of(it, struct pool, head);
		while (!list_empty(&pool->waiting_clients) && !list_empty(&pool->idle_servers)) {
			struct server *s = container_of(pool->idle_servers.prev, struct server, head);
			struct client *c = container_of(pool->waiting_clients.next, struct client, head);
			link_hand_over(s, c);
		}
		launch_as_needed(pool);
	}
}

/* A server has gone; the pool may need a new one for waiting clients. */
static void server_gone(struct pool *pool)
{
	launch_as_needed(pool);
	launch_everywhere();
	rt_check_shutdown();
}

/* A server login failed. retry: the server could not be reached (or is starting up or shutting down), the
 * waiting clients stay queued for the next try; otherwise they get this error unless other servers serve. */
static void login_failed(struct pool *pool, const char *sqlstate, const char *message, bool retry)
{
	snprintf(pool->last_error, sizeof(pool->last_error), "%s", message);
	pool->last_login_failure = rt_now();
	if (retry)
		return;	/* the server may come back: the waiting clients wait for the retry (or their timeout) */
	if (connected_servers(pool) > 0 && pool->have_welcome)
		return;	/* others may still serve the waiting clients */
	fail_clients(&pool->welcome_clients, sqlstate, message);
	fail_clients(&pool->waiting_clients, sqlstate, message);
}

void pool_welcome_ready(struct pool *pool)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &pool->welcome_clients) {
		struct client *c = container_of(it, struct client, head);
		client_send_welcome(c);
	}
}

void pool_need_welcome(struct pool *pool)
{
	/* no fast fail here (as PgBouncer): the client waits for a login, at most query_wait_timeout */
	launch_as_needed(pool);
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Would a server opened under the old entry still be the right one under the new? */
static bool same_connection(const struct db_entry *a, const struct db_entry *b)
{
	return a && b && same_str(a->host, b->host) && a->port == b->port && same_str(a->dbname, b->dbname) &&
	       same_str(a->user, b->user) && same_str(a->password, b->password) &&
	       same_str(a->connect_query, b->connect_query) && same_str(a->auth_user, b->auth_user) &&
	       same_str(a->auth_query, b->auth_query) && same_str(a->auth_dbname, b->auth_dbname) &&
	       same_str(a->load_balance_hosts, b->load_balance_hosts) &&
	       same_str(a->target_session_attrs, b->target_session_attrs);
}

static struct pool *find_pool(const char *db_name, const char *user_name)
{
	for (struct list *it = g_pools.next; it != &g_pools; it = it->next) {
		struct pool *p = container_of(it, struct pool, head);
		if (strcmp(p->db_name, db_name) == 0 && strcmp(p->user_name, user_name) == 0)
			return p;
	}
	return NULL;
}

/* The entry's user= changed: its pool logs in as the new user from now on (as PgBouncer's forced user). */
static void follow_forced_user(struct pool *pool, const struct db_entry *old, const struct db_entry *db)
{
	char *name;

	if (!pool->forced_user || !old || !db || !db->user || !db->user[0] || same_str(old->user, db->user) ||
	    find_pool(pool->db_name, db->user))
		return;
	name = strdup(db->user);
	if (!name)
		return;
	log_info("pool %s/%s: the entry's user is now %s", pool->db_name, pool->user_name, name);
	free(pool->user_name);
	pool->user_name = name;
	pool->have_scram_keys = false;	/* they were the old user's */
}

void pool_reconfigure(void)
{
	struct list *it;
	for (it = g_pools.next; it != &g_pools; it = it->next) {
		struct pool *pool = container_of(it, struct pool, head);
		const struct db_entry *db = config_find_db(rt.cfg, pool->db_name);
		bool changed = !same_connection(pool->db, db);
		if (changed) {
			/* new host, database or credentials: servers go as soon as they are free, and the welcome
			 * parameters come from the first server of the new entry */
			pool->conn_generation++;
			close_list(&pool->idle_servers, "database configuration changed");
			params_clear(&pool->welcome);
			pool->have_welcome = false;
			pool->last_login_failure = 0;
			follow_forced_user(pool, pool->db, db);
		}
		pool->db = db;
		pool->user = config_find_user(rt.cfg, pool->user_name);
		refresh_credentials(pool);
	}
	pool_open_forced();
}

void pool_open_forced(void)
{
	for (size_t i = 0; i < rt.cfg->n_dbs; i++) {
		const struct db_entry *db = &rt.cfg->dbs[i];
		if (db->user && db->user[0] && strcmp(db->name, "*") != 0 && min_size_of(db) > 0 &&
		    !find_pool(db->name, db->user))
			pool_get(db->name, db, db->user);
	}
}

int pool_servers_in_use(void)
{
	int n = 0;
	struct list *it;
	for (it = g_pools.next; it != &g_pools; it = it->next) {
		struct pool *pool = container_of(it, struct pool, head);
		n += pool->n_active + pool->n_used;
	}
	return n;
}

static void close_list(struct list *l, const char *reason)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, l) {
		server_close(container_of(it, struct server, head), reason);
	}
}

/* Close idle servers now (shutdown); the rest follow as they are released. */
void pool_close_idle(void)
{
	struct list *it;
	for (it = g_pools.next; it != &g_pools; it = it->next) {
		struct pool *pool = container_of(it, struct pool, head);
		close_list(&pool->idle_servers, "shutting down");
	}
}

void pool_close_idle_servers(struct pool *pool, const char *reason)
{
	close_list(&pool->idle_servers, reason);
}

void pool_reconnect_all(const char *reason)
{
	struct list *it;
	for (it = g_pools.next; it != &g_pools; it = it->next) {
		struct pool *pool = container_of(it, struct pool, head);
		pool->conn_generation++;	/* servers in use close as they are released */
		close_list(&pool->idle_servers, reason);
	}
}

void pool_kill(struct pool *pool, const char *reason)
{
	struct list *it, *tmp;

	LIST_FOREACH_SAFE(it, tmp, client_all()) {
		struct client *c = container_of(it, struct client, all);
		if (c->state != CL_CLOSED && (c->pool == pool || c->txn_pool == pool))
			client_fatal(c, "08P01", "%s", reason);
	}
	close_list(&pool->login_servers, reason);
	close_list(&pool->idle_servers, reason);
	close_list(&pool->active_servers, reason);
	close_list(&pool->used_servers, reason);
}

void pool_close_all(void)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_pools) {
		struct pool *pool = container_of(it, struct pool, head);
		close_list(&pool->login_servers, "shutting down");
		close_list(&pool->idle_servers, "shutting down");
		close_list(&pool->active_servers, "shutting down");
		close_list(&pool->used_servers, "shutting down");
		close_list(&pool->closing_servers, "shutting down");
	}
}

void pool_free_all(void)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_pools) {
		pool_free(container_of(it, struct pool, head));
	}
}
