/* Per-tenant limits set by policies: clients, concurrent server-holding transactions, transaction rate. */
#include "tenant.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "runtime.h"

static struct list g_tenants = { &g_tenants, &g_tenants };

/* Limits come from the policy once per tenant and generation. */
static void refresh_limits(struct tenant *t)
{
	struct tenant_limits lim = { -1, -1, 0 };
	unsigned gen = policy_generation();

	if (t->limits_generation == gen)
		return;
	t->limits_generation = gen;
	if (policy_wants_limits() && policy_limits(t->key, &lim) != POLICY_DECIDED) {
		lim.max_clients = -1;
		lim.max_active = -1;
		lim.rate = 0;
	}
	if (lim.rate != t->rate)
		t->tokens = lim.rate;	/* a new rate starts with a full bucket */
	t->max_clients = lim.max_clients;
	t->max_active = lim.max_active;
	t->rate = lim.rate;
}

struct tenant *tenant_get(const char *key)
{
	struct tenant *t;

	for (struct list *it = g_tenants.next; it != &g_tenants; it = it->next) {
		t = container_of(it, struct tenant, head);
		if (strcmp(t->key, key) == 0) {
			refresh_limits(t);
			return t;
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->key = strdup(key);
	if (!t->key) {
		free(t);
		return NULL;
	}
	list_init(&t->waiting);
	t->refilled_at = rt_now();
	t->limits_generation = (unsigned)-1;
	t->max_clients = t->max_active = -1;
	list_append(&g_tenants, &t->head);
	refresh_limits(t);
	return t;
}

struct list *tenant_list(void)
{
	return &g_tenants;
}

bool tenant_add_client(struct tenant *t)
{
	if (t->max_clients >= 0 && t->n_clients >= t->max_clients) {
		t->rejections++;
		return false;
	}
	t->n_clients++;
	return true;
}

void tenant_remove_client(struct tenant *t)
{
	t->n_clients--;
}

static void refill(struct tenant *t)
{
	double now = rt_now();
	if (t->rate > 0) {
		t->tokens += (now - t->refilled_at) * t->rate;
		if (t->tokens > t->rate)
			t->tokens = t->rate;
	}
	t->refilled_at = now;
}

bool tenant_try_begin(struct tenant *t)
{
	refresh_limits(t);
	t->rate_refused = false;
	if (t->max_active >= 0 && t->n_active >= t->max_active)
		return false;
	if (t->rate > 0) {
		refill(t);
		t->rate_refused = t->tokens < 1.0;
		if (t->rate_refused)
			return false;
		t->tokens -= 1.0;
	}
	t->n_active++;
	return true;
}

/* Let waiters go, oldest first, while there is room. */
static void wake(struct tenant *t)
{
	while (!list_empty(&t->waiting)) {
		struct client *c = container_of(t->waiting.next, struct client, head);
		if (!tenant_try_begin(t))
			return;
		t->admit(c);
	}
}

void tenant_end(struct tenant *t)
{
	if (t->n_active > 0)
		t->n_active--;
	wake(t);
}

void tenant_janitor(void)
{
	double now = rt_now();

	for (struct list *it = g_tenants.next; it != &g_tenants; it = it->next) {
		struct tenant *t = container_of(it, struct tenant, head);
		struct list *w, *tmp;
		refresh_limits(t);
		wake(t);
		LIST_FOREACH_SAFE(w, tmp, &t->waiting) {
			struct client *c = container_of(w, struct client, head);
			double limit = client_timeout(c, TIMEOUT_QUERY_WAIT);
			if (limit > 0 && now - c->request_time >= limit)
				client_fatal(c, "08P01", "query_wait_timeout (waiting for tenant \"%s\")", t->key);
		}
	}
}

void tenant_free_all(void)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_tenants) {
		struct tenant *t = container_of(it, struct tenant, head);
		list_remove(&t->head);
		free(t->key);
		free(t);
	}
}
