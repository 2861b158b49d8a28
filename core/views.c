/* The SHOW commands' tables by name, and the small ones: VERSION, CONFIG, LISTS, STATE and those empty here. */
#include "views.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "config.h"
#include "control.h"
#include "pool.h"
#include "runtime.h"
#include "stats.h"
#include "version.h"
#include "view.h"
#include "views_policy.h"
#include "views_pools.h"
#include "views_sockets.h"

static struct view *show_version(void)
{
	struct view *v = view_new("s", "version");

	view_row(v, "moonbouncer " MOONBOUNCER_VERSION);
	return v;
}

static void config_row(void *arg, const char *key, const char *value, const char *default_value)
{
	view_row(arg, key, value, default_value, config_key_changeable(key) ? "yes" : "no");
}

static struct view *show_config(void)
{
	struct view *v = view_new("ssss", "key", "value", "default", "changeable");

	if (v)
		config_foreach_key(rt.cfg, config_row, v);
	return v;
}

static int count_rows(struct view *(*build)(void))
{
	struct view *v = build();
	int n = v ? v->nrows : 0;

	view_free(v);
	return n;
}

static struct view *show_lists(void)
{
	struct view *v = view_new("si", "list", "items");
	int pools = 1, clients = 0, logins = 0, servers = 0;	/* the console's pool is one, as in PgBouncer */

	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		pools++;
		servers += pool_server_count(container_of(it, struct pool, head));
	}
	for (struct list *it = client_all()->next; it != client_all(); it = it->next)
		if (container_of(it, struct client, all)->state != CL_CLOSED)
			clients++;
	for (struct list *it = client_logins()->next; it != client_logins(); it = it->next)
		logins++;
	view_row(v, "databases", count_rows(views_databases));
	view_row(v, "users", count_rows(views_users));
	view_row(v, "peers", 0);
	view_row(v, "pools", pools);
	view_row(v, "peer_pools", 0);
	view_row(v, "free_clients", 0);	/* freed at once: there is no free list */
	view_row(v, "used_clients", clients);
	view_row(v, "login_clients", logins);
	view_row(v, "free_servers", 0);
	view_row(v, "used_servers", servers);
	view_row(v, "dns_names", 0);	/* evdns keeps no cache of its own to count */
	view_row(v, "dns_zones", 0);
	view_row(v, "dns_queries", 0);
	view_row(v, "dns_pending", 0);
	return v;
}

static struct view *show_state(void)
{
	struct view *v = view_new("ss", "key", "value");

	view_row(v, "active", rt.paused ? "no" : "yes");
	view_row(v, "paused", rt.paused ? "yes" : "no");
	view_row(v, "suspended", "no");
	return v;
}

/* Views whose concept does not exist here: the right columns, no rows (README: "Monitoring"). */
static struct view *show_mem(void)
{
	return view_new("siiii", "name", "size", "used", "free", "memtotal");
}

static struct view *show_dns_hosts(void)
{
	return view_new("sqs", "hostname", "ttl", "addrs");
}

static struct view *show_dns_zones(void)
{
	return view_new("sqi", "zonename", "serial", "count");
}

static struct view *show_peers(void)
{
	return view_new("isii", "peer_id", "host", "port", "pool_size");
}

static struct view *show_peer_pools(void)
{
	return view_new("iiiii", "peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active_cancel",
			"sv_login");
}

struct view_def {
	const char *name;
	struct view *(*build)(void);
};

static const struct view_def defs[] = {
	{ "ACTIVE_SOCKETS", views_active_sockets },
	{ "CLIENTS", views_clients },
	{ "CONFIG", show_config },
	{ "DATABASES", views_databases },
	{ "DNS_HOSTS", show_dns_hosts },
	{ "DNS_ZONES", show_dns_zones },
	{ "LISTS", show_lists },
	{ "MEM", show_mem },
	{ "PEERS", show_peers },
	{ "PEER_POOLS", show_peer_pools },
	{ "POLICIES", views_policies },
	{ "POLICY_ERRORS", views_policy_errors },
	{ "POOLS", views_pools },
	{ "SERVERS", views_servers },
	{ "SOCKETS", views_sockets },
	{ "STATE", show_state },
	{ "STATS", stats_view_stats },
	{ "STATS_AVERAGES", stats_view_averages },
	{ "STATS_TOTALS", stats_view_totals },
	{ "TENANTS", views_tenants },
	{ "TOTALS", stats_view_totals_list },
	{ "USERS", views_users },
	{ "VERSION", show_version },
};

#define N_DEFS (sizeof(defs) / sizeof(defs[0]))

struct view *views_build(const char *name, char *err, size_t errlen)
{
	struct view *v;

	for (size_t i = 0; i < N_DEFS; i++) {
		if (strcasecmp(defs[i].name, name) != 0)
			continue;
		v = defs[i].build();
		if (!v || v->failed) {
			view_free(v);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		return v;
	}
	if (strcasecmp(name, "FDS") == 0)
		snprintf(err, errlen, "SHOW FDS is not supported: moonbouncer has no online restart to hand sockets to");
	else
		snprintf(err, errlen, "invalid command 'SHOW %s', use SHOW HELP;", name);
	return NULL;
}

const char *const *views_names(void)
{
	static const char *names[N_DEFS + 1];

	for (size_t i = 0; i < N_DEFS; i++)
		names[i] = defs[i].name;
	return names;
}
