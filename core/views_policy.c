/* SHOW POLICIES, TENANTS and POLICY_ERRORS: moonbouncer's own views of its policies and tenants. */
#include "views_policy.h"

#include "client.h"
#include "list.h"
#include "policy.h"
#include "policy_report.h"
#include "tenant.h"
#include "view.h"

/*
 * One row per part of the policy engine: each file in force (kind "file"), each hook (kind "hook": calls,
 * failures and time over every file that defines it), and the last load or reload (kind "reload").
 */
struct view *views_policies(void)
{
	struct view *v = view_new("ssiTNNNNNs", "name", "kind", "generation", "loaded_at", "calls", "failures",
				  "timeouts", "memory_errors", "time_us", "last_error");
	struct policy_stats st;
	const char *file;

	if (!v)
		return NULL;
	policy_get_stats(&st);
	for (int i = 0; (file = policy_report_file(i)) != NULL; i++)
		view_row(v, file, "file", (int)st.generation, policy_report_loaded_at(), 0ULL, 0ULL, 0ULL, 0ULL, 0ULL,
			 (const char *)NULL);
	for (int h = 0; h < POLICY_REPORT_HOOKS; h++) {
		struct policy_hook_report r;
		policy_report_hook(h, &r);
		view_row(v, r.name, "hook", (int)st.generation, policy_report_loaded_at(), r.calls, r.failures,
			 r.timeouts, r.memory_errors, r.time_us, (const char *)NULL);
	}
	view_row(v, "reload", "reload", (int)st.generation, policy_report_reload_at(), st.reloads + st.reload_failures,
		 st.reload_failures, 0ULL, 0ULL, 0ULL,
		 policy_report_reload_ok() ? (const char *)NULL : st.last_error);
	return v;
}

static int waiting_clients(const struct tenant *t)
{
	int n = 0;
	for (const struct list *it = t->waiting.next; it != &t->waiting; it = it->next)
		n++;
	return n;
}

struct view *views_tenants(void)
{
	struct view *v = view_new("siiiiiiNNN", "tenant", "clients", "active", "waiting", "max_clients",
				  "max_active", "rate", "rejections", "active_waits", "rate_waits");

	if (!v)
		return NULL;
	for (struct list *it = tenant_list()->next; it != tenant_list(); it = it->next) {
		const struct tenant *t = container_of(it, struct tenant, head);
		view_row(v, t->key, t->n_clients, t->n_active, waiting_clients(t), t->max_clients, t->max_active,
			 (int)t->rate, t->rejections, t->active_waits, t->rate_waits);
	}
	return v;
}

struct view *views_policy_errors(void)
{
	struct view *v = view_new("Tss", "time", "hook", "message");

	if (!v)
		return NULL;
	for (int i = 0; i < policy_report_error_count(); i++) {
		const struct policy_error_entry *e = policy_report_error(i);
		view_row(v, e->at, e->what, e->message);
	}
	return v;
}
