/* Pools: one per (database entry, server user); server hand-out, FIFO waiting, welcome parameters. */
#ifndef MB_POOL_H
#define MB_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "list.h"
#include "params.h"
#include "stats_count.h"

struct client;
struct server;
struct server_pool_events;

struct pool {
	struct list head;		/* in the global pool list */
	char *db_name;			/* the name clients use (key) */
	char *user_name;		/* the server-side user (key) */
	const struct db_entry *db;	/* refreshed on reload */
	const struct server_pool_events *server_events;	/* how its servers report to it */
	const struct user_entry *user;	/* [users] entry of user_name, or NULL; refreshed on reload */
	bool forced_user;		/* opened for its entry's user= (that user follows the entry on reload) */

	/* credentials for server logins */
	char *password;			/* plain password, or NULL */
	char *md5_secret;		/* "md5..." from auth_file (or auth_query), or NULL */
	char *query_md5_secret;		/* what auth_query last returned for user_name, kept across reloads */
	uint8_t scram_client_key[SCRAM_KEY_LEN];
	uint8_t scram_server_key[SCRAM_KEY_LEN];
	bool have_scram_keys;

	/* parameters a server announced at login, sent to clients as their welcome */
	struct param_set welcome;
	bool have_welcome;

	struct list login_servers;	/* connecting and logging in */
	struct list idle_servers;	/* ready, no client */
	struct list active_servers;	/* linked to a client */
	struct list used_servers;	/* running our own query (reset, parameters) */
	struct list closing_servers;	/* Terminate sent, still counted until the server hangs up */
	struct list welcome_clients;	/* authenticated, waiting for welcome parameters */
	struct list active_clients;	/* logged in, not waiting */
	struct list waiting_clients;	/* need a server, FIFO */
	int n_login, n_idle, n_active, n_used, n_closing;
	int n_clients;
	int n_waiting;			/* length of waiting_clients */

	/* traffic since start (SHOW STATS), and its snapshots at the last two stats_period ticks (the averages) */
	struct stats_counters stats;
	struct stats_counters stats_newer, stats_older;

	unsigned conn_generation;	/* bumped when a reload changes how servers are reached */
	double unused_since;		/* "*" pools: no client since then (autodb_idle_timeout) */

	double last_login_failure;	/* rt_now() of the last failed server login, 0 if none */
	char last_error[256];
};

/* Every list of a pool empty (pool_get does it; a pool kept outside the global list, too). */
void pool_init_lists(struct pool *pool);
/* Find or create the pool for a database entry and server user. */
struct pool *pool_get(const char *db_name, const struct db_entry *db, const char *user_name);
/* auth_query returned an md5 secret for the pool's user: server logins answer md5 with it while auth_file and
 * the entry have nothing for that user. */
void pool_learn_md5(struct pool *pool, const char *secret);
/* Every pool (for reload and shutdown). */
struct list *pool_list(void);
int pool_server_count(const struct pool *pool);
enum pool_mode pool_mode_of(const struct pool *pool);

/* A logged-in client wants a server: link one now or queue the client FIFO. */
void pool_request_server(struct pool *pool, struct client *client);
/* The pools min_pool_size keeps filled without clients: those of entries with a forced user. */
void pool_open_forced(void);
/* Welcome parameters became available: finish the logins waiting for them. */
void pool_welcome_ready(struct pool *pool);
/* Re-point pools at the entries of a newly loaded config. */
void pool_reconfigure(void);
/* Servers in use anywhere (shutdown waits for zero). */
int pool_servers_in_use(void);
void pool_close_all(void);
/* PAUSE: its idle servers close (the rest close as their clients release them). */
void pool_close_idle_servers(struct pool *pool, const char *reason);
/* Every pool's servers are replaced: idle ones close now, the others when they are released. */
void pool_reconnect_all(const char *reason);
/* KILL: every client and server of the pool goes at once. */
void pool_kill(struct pool *pool, const char *reason);
/* Close idle servers (shutdown). */
void pool_close_idle(void);
/* A client is waiting for welcome parameters: make sure a server login is under way. */
void pool_need_welcome(struct pool *pool);
void pool_free_all(void);
/* SIGUSR2: hand idle servers to the clients that waited during a pause. */
void pool_resume_all(void);
/* Periodic work: idle and lifetime timeouts, connect timeouts, query_wait_timeout, min_pool_size,
 * autodb_idle_timeout (which may free the pool: iterate safely). */
void pool_janitor(struct pool *pool);
int pool_max_db_connections(const struct pool *pool);
int pool_max_user_connections(const struct pool *pool);

#endif
