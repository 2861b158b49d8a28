/* SHOW POOLS, DATABASES and USERS: pools, database entries and users, from the pools' own counts. */
#include "views_pools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "control.h"
#include "pool.h"
#include "runtime.h"
#include "server.h"
#include "view.h"

#define CONSOLE_DB "pgbouncer"

static int list_count(const struct list *l)
{
	int n = 0;
	for (const struct list *it = l->next; it != l; it = it->next)
		n++;
	return n;
}

static int console_clients(void)
{
	int n = 0;
	for (struct list *it = client_all()->next; it != client_all(); it = it->next)
		if (container_of(it, struct client, all)->console)
			n++;
	return n;
}

/* Clients waiting on a pool: in its queue, for its welcome, or for their tenant's turn; and the oldest wait. */
static int waiting_on(const struct pool *pool, double *oldest)
{
	int n = pool->n_waiting + list_count(&pool->welcome_clients);
	double now = rt_now();

	*oldest = 0;
	for (struct list *it = client_all()->next; it != client_all(); it = it->next) {
		const struct client *c = container_of(it, struct client, all);
		const struct pool *p = c->txn_pool ? c->txn_pool : c->pool;
		double since = c->state == CL_WELCOME ? c->connect_time : c->request_time;
		if (p != pool)
			continue;
		if (c->state == CL_TENANT_WAIT)
			n++;
		if ((c->state == CL_WAITING || c->state == CL_TENANT_WAIT || c->state == CL_WELCOME) && since > 0 &&
		    now - since > *oldest)
			*oldest = now - since;
	}
	return n;
}

/* Idle servers past server_check_delay: they run server_check_query before their next client. */
static int servers_due_check(const struct pool *pool)
{
	const struct config *cfg = rt.cfg;
	double now = rt_now();
	int n = 0;

	if (!cfg->server_check_query || cfg->server_check_delay < 0)
		return 0;
	for (struct list *it = pool->idle_servers.next; it != &pool->idle_servers; it = it->next) {
		const struct server *s = container_of(it, struct server, head);
		if (s->used && now - s->last_used >= cfg->server_check_delay)
			n++;
	}
	return n;
}

static void cancel_counts(const struct pool *pool, int *in_flight, int *held)
{
	const struct list *lists[] = { &pool->active_servers, &pool->idle_servers, &pool->used_servers };

	*in_flight = *held = 0;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (const struct list *it = lists[i]->next; it != lists[i]; it = it->next) {
			const struct server *s = container_of(it, struct server, head);
			*in_flight += s->cancels_in_flight;
			if (s->await_cancel)
				*held += 1;
		}
}

static const char *lb_hosts(const struct db_entry *db)
{
	if (!db || !db->host || !strchr(db->host, ','))
		return NULL;
	return db->load_balance_hosts ? db->load_balance_hosts : "round-robin";
}

struct view *views_pools(void)
{
	struct view *v = view_new("ssiiiiiiiiiiiiiss", "database", "user", "cl_active", "cl_waiting",
				  "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active", "sv_active_cancel",
				  "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait",
				  "maxwait_us", "pool_mode", "load_balance_hosts");

	if (!v)
		return NULL;
	view_row(v, CONSOLE_DB, CONSOLE_DB, console_clients(), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "statement",
		 (const char *)NULL);
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *p = container_of(it, struct pool, head);
		double wait;
		int waiting = waiting_on(p, &wait), due = servers_due_check(p), cancels, held;
		long long wait_us = (long long)(wait * 1e6);

		cancel_counts(p, &cancels, &held);
		view_row(v, p->db_name, p->user_name, list_count(&p->active_clients), waiting, cancels, 0,
			 p->n_active, cancels, held, p->n_idle - due, due, p->n_used, p->n_login,
			 (int)(wait_us / 1000000), (int)(wait_us % 1000000), config_pool_mode_name(pool_mode_of(p)),
			 lb_hosts(p->db));
	}
	return v;
}

/* Server connections and clients of one database, across its pools. */
static void db_counts(const char *name, int *servers, int *clients)
{
	*servers = *clients = 0;
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *p = container_of(it, struct pool, head);
		if (strcmp(p->db_name, name) == 0) {
			*servers += pool_server_count(p);
			*clients += p->n_clients;
		}
	}
}

static void database_row(struct view *v, const char *name, const struct db_entry *db)
{
	const struct config *cfg = rt.cfg;
	double lifetime = db->server_lifetime >= 0 ? db->server_lifetime : cfg->server_lifetime;
	int max_db = db->max_db_connections >= 0 ? db->max_db_connections : cfg->max_db_connections;
	int max_cl = db->max_db_client_connections >= 0 ? db->max_db_client_connections
							: cfg->max_db_client_connections;
	int servers, clients;

	db_counts(name, &servers, &clients);
	view_row(v, name, db->host ? db->host : NULL, db->port, db->dbname ? db->dbname : name, db->user,
		 config_pool_size(cfg, db, NULL), db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size,
		 db->reserve_pool_size >= 0 ? db->reserve_pool_size : cfg->reserve_pool_size, (int)lifetime,
		 db->pool_mode != POOL_MODE_UNSET ? config_pool_mode_name(db->pool_mode) : NULL, lb_hosts(db),
		 max_db, servers, max_cl, clients, control_db_paused(name) ? 1 : 0, control_db_disabled(name) ? 1 : 0);
}

/* A database the "*" entry serves is listed under its own name once it has a pool, as PgBouncer does. */
static bool listed_before(const struct pool *pool)
{
	for (struct list *it = pool_list()->next; it != &pool->head; it = it->next)
		if (strcmp(container_of(it, struct pool, head)->db_name, pool->db_name) == 0)
			return true;
	return false;
}

struct view *views_databases(void)
{
	const struct config *cfg = rt.cfg;
	struct view *v = view_new("ssissiiiissiiiiii", "name", "host", "port", "database", "force_user", "pool_size",
				  "min_pool_size", "reserve_pool_size", "server_lifetime", "pool_mode",
				  "load_balance_hosts", "max_connections", "current_connections",
				  "max_client_connections", "current_client_connections", "paused", "disabled");

	if (!v)
		return NULL;
	view_row(v, CONSOLE_DB, (const char *)NULL, cfg->listen_port, CONSOLE_DB, CONSOLE_DB, 2, 0, 0,
		 (int)cfg->server_lifetime, "statement", (const char *)NULL, cfg->max_db_connections, 0, 0,
		 console_clients(), 0, 0);
	for (size_t i = 0; i < cfg->n_dbs; i++)
		if (strcmp(cfg->dbs[i].name, "*") != 0)
			database_row(v, cfg->dbs[i].name, &cfg->dbs[i]);
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *p = container_of(it, struct pool, head);
		const struct db_entry *db = config_find_db(cfg, p->db_name);
		if (db && strcmp(db->name, "*") == 0 && !listed_before(p))
			database_row(v, p->db_name, db);
	}
	return v;
}

/* ---- users ---- */

struct user_counts {
	int servers, clients;
};

static struct user_counts user_counts(const char *name)
{
	struct user_counts n = { 0, 0 };

	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *p = container_of(it, struct pool, head);
		if (strcmp(p->user_name, name) == 0)
			n.servers += pool_server_count(p);
	}
	for (struct list *it = client_all()->next; it != client_all(); it = it->next) {
		const struct client *c = container_of(it, struct client, all);
		if (c->pool && c->user && strcmp(c->user, name) == 0)
			n.clients++;
	}
	return n;
}

static void user_row(struct view *v, const char *name)
{
	const struct config *cfg = rt.cfg;
	const struct user_entry *u = config_find_user(cfg, name);
	struct user_counts n = user_counts(name);
	char size[16] = "", reserve[16] = "";

	if (u && u->pool_size >= 0)
		snprintf(size, sizeof(size), "%9d", u->pool_size);
	if (u && u->reserve_pool_size >= 0)
		snprintf(reserve, sizeof(reserve), "%9d", u->reserve_pool_size);
	view_row(v, name, size, reserve,
		 u && u->pool_mode != POOL_MODE_UNSET ? config_pool_mode_name(u->pool_mode) : NULL,
		 u && u->max_user_connections >= 0 ? u->max_user_connections : cfg->max_user_connections, n.servers,
		 u && u->max_user_client_connections >= 0 ? u->max_user_client_connections
							  : cfg->max_user_client_connections,
		 n.clients);
}

/* Each name once: the view so far is the set already listed. */
static bool has_user(const struct view *v, const char *name)
{
	for (int r = 0; r < v->nrows; r++)
		if (strcmp(view_cell(v, r, 0), name) == 0)
			return true;
	return false;
}

struct view *views_users(void)
{
	const struct config *cfg = rt.cfg;
	struct view *v = view_new("ssssiiii", "name", "pool_size", "reserve_pool_size", "pool_mode",
				  "max_user_connections", "current_connections", "max_user_client_connections",
				  "current_client_connections");

	if (!v)
		return NULL;
	user_row(v, CONSOLE_DB);
	for (size_t i = 0; i < cfg->n_users; i++)
		if (!has_user(v, cfg->users[i].name))
			user_row(v, cfg->users[i].name);
	for (size_t i = 0; rt.auth && i < rt.auth->n; i++)
		if (!has_user(v, rt.auth->entries[i].user))
			user_row(v, rt.auth->entries[i].user);
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *p = container_of(it, struct pool, head);
		if (!has_user(v, p->user_name))
			user_row(v, p->user_name);
	}
	return v;
}
