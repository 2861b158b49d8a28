/* Session parameters: per-client wanted values, per-server known values, and the query that aligns them. */
#ifndef MB_PARAMS_H
#define MB_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct param {
	char *name;
	char *value;
	uint32_t hash;	/* of the lower-cased name: most look-ups compare this first */
	bool reported;	/* the server announced it with ParameterStatus */
};

struct param_set {
	struct param *items;
	int n;
	int cap;
	uint64_t version;	/* new with every change of content, unique across sets: a memo key */
};

/*
 * Which entries of a server's values differ from its login values. Finding
 * them takes a look-up per entry; they change only when the server's values
 * do, so the result is kept until either set's version moves.
 */
#define PARAMS_MEMO_MAX 8
struct param_memo {
	uint64_t have_version, defaults_version;	/* what it was computed from (0: never) */
	int n;						/* entries listed; -1: more than fit */
	uint16_t idx[PARAMS_MEMO_MAX];			/* their positions in have */
};

/* Names compare case-insensitively, as GUC names do. */
const struct param *params_find(const struct param_set *set, const char *name);
/* The entry of set with p's name (p from another set: its hash is reused). */
const struct param *params_find_same(const struct param_set *set, const struct param *p);
const char *params_get(const struct param_set *set, const char *name);
bool params_set(struct param_set *set, const char *name, const char *value, bool reported)
	__attribute__((warn_unused_result));
void params_remove(struct param_set *set, const char *name);
/* Drop every entry the server did not announce (after DISCARD ALL / RESET ALL resets them). */
void params_drop_unreported(struct param_set *set);
void params_clear(struct param_set *set);
bool params_copy(struct param_set *dst, const struct param_set *src) __attribute__((warn_unused_result));

/* A parameter name we are willing to put into SQL: letters, digits, '_' and '.'. */
bool params_name_ok(const char *name);
/* Parameters PostgreSQL reports but no SET or RESET may change (is_superuser, server_version, ...). */
bool params_read_only(const char *name);
/* s as an SQL string literal (E'...'), whatever standard_conforming_strings says. */
void params_put_literal(struct pktbuf *out, const char *s);

/*
 * Append "SELECT set_config(name, value, false), ..." for the entries of
 * from that skip() does not refuse (skip may be NULL), or only for `name`
 * when name is not NULL; the first column gets the alias when it is not
 * NULL. Returns how many were written (0: nothing appended).
 */
int params_put_restore(struct pktbuf *out, const struct param_set *from, const char *name,
		       bool (*skip)(const char *name), const char *alias);

/*
 * Build one simple Query that makes a server whose values are `have` (and
 * whose values right after login were `defaults`) match `want`:
 * set_config() for every wanted value that differs, RESET for values left
 * behind that differ from the login defaults. Returns false when nothing needs
 * to change (no message built).
 */
bool params_build_apply(const struct param_set *want, const struct param_set *have,
			const struct param_set *defaults, struct param_memo *memo, struct pktbuf *out);
/* The query from params_build_apply succeeded: record what the server now has (unreported values included). */
void params_applied(const struct param_set *want, struct param_set *have, const struct param_set *defaults);
/* Would params_build_apply have anything to do? Cheap, allocates nothing; memo may be NULL. */
bool params_differ(const struct param_set *want, const struct param_set *have, const struct param_set *defaults,
		   struct param_memo *memo);

/*
 * Split a startup `options` value ("-c a=b --c=d -c e=f\ g") into name/value
 * pairs added to set. Returns false with a message in err for anything that is
 * not a -c/-- setting.
 */
bool params_parse_options(struct param_set *set, const char *options, char *err, size_t errlen);
/* The same, leaving out the settings skip(name, arg) says to ignore (their values may be of any length). */
bool params_parse_options_skip(struct param_set *set, const char *options, bool (*skip)(const char *, void *),
			       void *arg, char *err, size_t errlen);

#endif
