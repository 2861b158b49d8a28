/* What the policy engine reports to SHOW POLICIES and SHOW POLICY_ERRORS: hooks, files, reloads, failures. */
#include "policy_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const hook_names[POLICY_REPORT_HOOKS] = { "on_connect", "on_query", "on_transaction_begin",
							     "on_disconnect", "limits" };
static struct policy_hook_report hooks[POLICY_REPORT_HOOKS];
static char **files;
static int n_files;
static double loaded_at, reload_at;
static bool reload_ok = true;
static struct policy_error_entry errors[POLICY_REPORT_ERRORS];
static int n_errors, next_error;	/* a ring: next_error is where the next one goes */

void policy_report_hook(int hook, struct policy_hook_report *out)
{
	*out = hooks[hook];
	out->name = hook_names[hook];
}

const char *policy_report_file(int i)
{
	return i >= 0 && i < n_files ? files[i] : NULL;
}

double policy_report_loaded_at(void)
{
	return loaded_at;
}

double policy_report_reload_at(void)
{
	return reload_at;
}

bool policy_report_reload_ok(void)
{
	return reload_ok;
}

int policy_report_error_count(void)
{
	return n_errors;
}

const struct policy_error_entry *policy_report_error(int i)
{
	if (i < 0 || i >= n_errors)
		return NULL;
	return &errors[(next_error - 1 - i + POLICY_REPORT_ERRORS) % POLICY_REPORT_ERRORS];
}

void policy_report_call(int hook, long long elapsed_ns)
{
	hooks[hook].calls++;
	if (elapsed_ns > 0)
		hooks[hook].time_us += (unsigned long long)elapsed_ns / 1000;
}

static void remember(const char *what, const char *message)
{
	struct policy_error_entry *e = &errors[next_error];

	e->at = (double)time(NULL);
	e->what = what;
	snprintf(e->message, sizeof(e->message), "%s", message);
	next_error = (next_error + 1) % POLICY_REPORT_ERRORS;
	if (n_errors < POLICY_REPORT_ERRORS)
		n_errors++;
}

void policy_report_failure(int hook, int kind, const char *message)
{
	hooks[hook].failures++;
	if (kind == 1)
		hooks[hook].timeouts++;
	else if (kind == 2)
		hooks[hook].memory_errors++;
	remember(hook_names[hook], message);
}

static void free_files(void)
{
	for (int i = 0; i < n_files; i++)
		free(files[i]);
	free(files);
	files = NULL;
	n_files = 0;
}

void policy_report_load(char *const *paths, int n, bool ok, const char *error)
{
	reload_at = (double)time(NULL);
	reload_ok = ok;
	if (!ok) {
		remember("reload", error ? error : "failed");
		return;
	}
	free_files();
	loaded_at = reload_at;
	files = n > 0 ? calloc((size_t)n, sizeof(*files)) : NULL;
	for (int i = 0; files && i < n; i++)
		if ((files[n_files] = strdup(paths[i])) != NULL)
			n_files++;
}
