/* What the policy engine reports to SHOW POLICIES and SHOW POLICY_ERRORS: hooks, files, reloads, failures. */
#ifndef MB_POLICY_REPORT_H
#define MB_POLICY_REPORT_H

#include <stdbool.h>

#define POLICY_REPORT_HOOKS 5		/* on_connect, on_query, on_transaction_begin, on_disconnect, limits */
#define POLICY_REPORT_ERRORS 50		/* failures kept, newest first */

struct policy_hook_report {
	const char *name;
	unsigned long long calls, failures, timeouts, memory_errors;
	unsigned long long time_us;	/* wall clock spent in its calls */
};

struct policy_error_entry {
	double at;			/* wall-clock seconds */
	const char *what;		/* a hook's name, or "reload" */
	char message[256];		/* "file:line: message" */
};

void policy_report_hook(int hook, struct policy_hook_report *out);
/* The files in force (i from 0; NULL past the last) and when they were loaded (wall clock, 0: never). */
const char *policy_report_file(int i);
double policy_report_loaded_at(void);
/* The last load or reload: when (0: none), and whether it worked. */
double policy_report_reload_at(void);
bool policy_report_reload_ok(void);
int policy_report_error_count(void);
const struct policy_error_entry *policy_report_error(int i);

/* ---- recording, for the policy*.c family ---- */
void policy_report_call(int hook, long long elapsed_ns);
/* kind: 0 an error, 1 a timeout, 2 memory */
void policy_report_failure(int hook, int kind, const char *message);
/* A load or reload: the files now in force (when ok), or the error that kept the old ones. */
void policy_report_load(char *const *paths, int n, bool ok, const char *error);

#endif
