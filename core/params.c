/* Session parameters: per-client wanted values, per-server known values, and the query that aligns them. */
#include "params.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hash.h"

static uint64_t last_version;

static void changed(struct param_set *set)
{
	set->version = ++last_version;
}

/* Names are case-insensitive, as in PostgreSQL. */
static uint32_t name_hash(const char *name)
{
	return hash_str_lower(name);
}

static const struct param *find_hashed(const struct param_set *set, const char *name, uint32_t hash)
{
	for (int i = 0; i < set->n; i++)
		if (set->items[i].hash == hash && strcasecmp(set->items[i].name, name) == 0)
			return &set->items[i];
	return NULL;
}

const struct param *params_find(const struct param_set *set, const char *name)
{
	return find_hashed(set, name, name_hash(name));
}

const struct param *params_find_same(const struct param_set *set, const struct param *p)
{
	return find_hashed(set, p->name, p->hash);
}

const char *params_get(const struct param_set *set, const char *name)
{
	const struct param *p = params_find(set, name);
	return p ? p->value : NULL;
}

bool params_set(struct param_set *set, const char *name, const char *value, bool reported)
{
	struct param *p = (struct param *)params_find(set, name);
	char *v;

	if (p) {
		if (reported && !p->reported) {
			p->reported = true;
			changed(set);
		}
		if (strcmp(p->value, value) == 0)
			return true;
		v = strdup(value);
		if (!v)
			return false;
		free(p->value);
		p->value = v;
		changed(set);
		return true;
	}
	if (set->n == set->cap) {
		int cap = set->cap ? set->cap * 2 : 8;
		struct param *items = realloc(set->items, (size_t)cap * sizeof(*items));
		if (!items)
			return false;
		set->items = items;
		set->cap = cap;
	}
	p = &set->items[set->n];
	p->name = strdup(name);
	p->value = strdup(value);
	if (!p->name || !p->value) {
		free(p->name);
		free(p->value);
		return false;
	}
	p->reported = reported;
	p->hash = name_hash(name);
	set->n++;
	changed(set);
	return true;
}

static void remove_at(struct param_set *set, int i)
{
	free(set->items[i].name);
	free(set->items[i].value);
	set->items[i] = set->items[set->n - 1];
	set->n--;
	changed(set);
}

void params_remove(struct param_set *set, const char *name)
{
	for (int i = 0; i < set->n; i++) {
		if (strcasecmp(set->items[i].name, name) == 0) {
			remove_at(set, i);
			return;
		}
	}
}

void params_drop_unreported(struct param_set *set)
{
	for (int i = set->n - 1; i >= 0; i--)
		if (!set->items[i].reported)
			remove_at(set, i);
}

void params_clear(struct param_set *set)
{
	for (int i = 0; i < set->n; i++) {
		free(set->items[i].name);
		free(set->items[i].value);
	}
	free(set->items);
	set->items = NULL;
	set->n = set->cap = 0;
	changed(set);
}

bool params_copy(struct param_set *dst, const struct param_set *src)
{
	for (int i = 0; i < src->n; i++)
		if (!params_set(dst, src->items[i].name, src->items[i].value, src->items[i].reported))
			return false;
	return true;
}

bool params_name_ok(const char *name)
{
	if (!*name)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.')
			return false;
	return true;
}

bool params_read_only(const char *name)
{
	static const char *const fixed[] = { "is_superuser", "server_version", "server_version_num", "server_encoding",
					     "integer_datetimes", "in_hot_standby", "lc_collate", "lc_ctype",
					     "block_size", "segment_size", "wal_block_size", "max_identifier_length" };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcasecmp(fixed[i], name) == 0)
			return true;
	return false;
}

/* Append s as an SQL string literal: E'...' with quotes and backslashes doubled, whatever standard_conforming_strings says. */
void params_put_literal(struct pktbuf *b, const char *s)
{
	pkt_put_bytes(b, "E'", 2);
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			pkt_put_u8(b, (uint8_t)*s);
		pkt_put_u8(b, (uint8_t)*s);
	}
	pkt_put_u8(b, '\'');
}

static void put_str(struct pktbuf *b, const char *s)
{
	pkt_put_bytes(b, s, strlen(s));
}

/* A wanted value the server does not have. */
static bool wanted_missing(const struct param *w, const struct param_set *have)
{
	const struct param *cur = find_hashed(have, w->name, w->hash);
	/* a read-only value a server reported (is_superuser in track_extra_parameters) is never set: PostgreSQL
	 * refuses it. One from the client's startup packet is, so that it fails as at PostgreSQL's login */
	return !(cur && strcmp(cur->value, w->value) == 0) && params_name_ok(w->name) &&
	       !(w->reported && params_read_only(w->name));
}

static bool resettable(const struct param *h)
{
	return params_name_ok(h->name) && (!params_read_only(h->name) || strcasecmp(h->name, "is_superuser") == 0);
}

/* At its login value, or announced by the server and never ours to change. */
static bool at_login_value(const struct param *h, const struct param_set *defaults)
{
	const struct param *def = find_hashed(defaults, h->name, h->hash);
	return def ? strcmp(def->value, h->value) == 0 : h->reported;
}

/*
 * A value left behind (by an earlier client) that differs from the login
 * default. Read-only values are never RESET (PostgreSQL refuses with 55P02):
 * a changed is_superuser means a role was set, which RESET ROLE undoes.
 */
static bool leftover(const struct param *h, const struct param_set *want, const struct param_set *defaults)
{
	if (at_login_value(h, defaults))
		return false;
	return !find_hashed(want, h->name, h->hash) && resettable(h);
}

/* The statement that undoes a leftover. */
static void put_reset(struct pktbuf *out, const struct param *h)
{
	if (strcasecmp(h->name, "is_superuser") == 0) {
		put_str(out, "RESET ROLE;");
		return;
	}
	put_str(out, "RESET ");
	put_str(out, h->name);
	put_str(out, ";");
}

static void memo_refresh(struct param_memo *memo, const struct param_set *have, const struct param_set *defaults)
{
	if (memo->have_version == have->version && memo->defaults_version == defaults->version)
		return;
	memo->n = 0;
	for (int i = 0; i < have->n; i++) {
		if (at_login_value(&have->items[i], defaults))
			continue;
		if (memo->n == PARAMS_MEMO_MAX || i > UINT16_MAX) {
			memo->n = -1;
			break;
		}
		memo->idx[memo->n++] = (uint16_t)i;
	}
	memo->have_version = have->version;
	memo->defaults_version = defaults->version;
}

bool params_differ(const struct param_set *want, const struct param_set *have, const struct param_set *defaults,
		   struct param_memo *memo)
{
	for (int i = 0; i < want->n; i++)
		if (wanted_missing(&want->items[i], have))
			return true;
	if (memo) {
		memo_refresh(memo, have, defaults);
		if (memo->n >= 0) {
			/* only the values off their login value can be leftovers */
			for (int k = 0; k < memo->n; k++) {
				const struct param *h = &have->items[memo->idx[k]];
				if (!find_hashed(want, h->name, h->hash) && resettable(h))
					return true;
			}
			return false;
		}
	}
	for (int i = 0; i < have->n; i++)
		if (leftover(&have->items[i], want, defaults))
			return true;
	return false;
}

void params_applied(const struct param_set *want, struct param_set *have, const struct param_set *defaults)
{
	/* RESET leftovers are back at their login values: forget the ones the server does not announce */
	for (int i = have->n - 1; i >= 0; i--) {
		const struct param *h = &have->items[i];
		if (!h->reported && leftover(h, want, defaults))
			remove_at(have, i);
	}
	for (int i = 0; i < want->n; i++) {
		const struct param *w = &want->items[i];
		if (params_name_ok(w->name) && !(w->reported && params_read_only(w->name)) &&
		    !params_set(have, w->name, w->value, false))
			params_remove(have, w->name);	/* unknown is safer than wrong: it gets set next time */
	}
}

bool params_build_apply(const struct param_set *want, const struct param_set *have,
			const struct param_set *defaults, struct param_memo *memo, struct pktbuf *out)
{
	int n_set = 0, n_reset = 0;

	if (!params_differ(want, have, defaults, memo))
		return false;
	pkt_begin(out, FE_QUERY);
	for (int i = 0; i < want->n; i++) {
		const struct param *w = &want->items[i];
		if (!wanted_missing(w, have))
			continue;
		put_str(out, n_set ? ", " : "SELECT ");
		put_str(out, "pg_catalog.set_config(");
		params_put_literal(out, w->name);
		put_str(out, ", ");
		params_put_literal(out, w->value);
		put_str(out, ", false)");
		n_set++;
	}
	if (n_set)
		put_str(out, ";");
	for (int i = 0; i < have->n; i++) {
		const struct param *h = &have->items[i];
		if (!leftover(h, want, defaults))
			continue;
		put_reset(out, h);
		n_reset++;
	}
	if (!n_set && !n_reset) {
		out->len = out->msg_start > 0 ? out->msg_start - 1 : 0;	/* drop the message begun above */
		return false;
	}
	pkt_put_u8(out, 0);
	pkt_end(out);
	return !out->failed;
}

int params_put_restore(struct pktbuf *out, const struct param_set *from, const char *name,
		       bool (*skip)(const char *name), const char *alias)
{
	int n = 0;

	for (int i = 0; i < from->n; i++) {
		const struct param *p = &from->items[i];
		if (name ? strcasecmp(p->name, name) != 0 : skip && skip(p->name))
			continue;
		if (!params_name_ok(p->name) || params_read_only(p->name))
			continue;
		put_str(out, n ? ", " : "SELECT ");
		put_str(out, "pg_catalog.set_config(");
		params_put_literal(out, p->name);
		put_str(out, ", ");
		params_put_literal(out, p->value);
		put_str(out, ", false)");
		if (!n && alias) {
			put_str(out, " AS \"");
			put_str(out, alias);
			put_str(out, "\"");
		}
		n++;
	}
	return n;
}

/* One word of an options value into word (backslash escapes a character); *long_word if it did not fit. */
static const char *options_word(const char *p, char *word, size_t size, size_t *len, bool *long_word)
{
	size_t n = 0;

	while (*p && !isspace((unsigned char)*p)) {
		if (*p == '\\' && p[1])
			p++;
		if (n + 1 < size)
			word[n++] = *p;
		else
			*long_word = true;
		p++;
	}
	word[n] = 0;
	*len = n;
	return p;
}

bool params_parse_options(struct param_set *set, const char *options, char *err, size_t errlen)
{
	return params_parse_options_skip(set, options, NULL, NULL, err, errlen);
}

bool params_parse_options_skip(struct param_set *set, const char *options, bool (*skip)(const char *, void *),
			       void *arg, char *err, size_t errlen)
{
	const char *p = options;
	char word[8192];

	while (*p) {
		size_t n = 0;
		bool is_c = false, long_word = false;
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		/* one word, backslash escapes a character (libpq's PGOPTIONS convention) */
		p = options_word(p, word, sizeof(word), &n, &long_word);
		if (strcmp(word, "-c") == 0) {
			is_c = true;
			while (isspace((unsigned char)*p))
				p++;
			p = options_word(p, word, sizeof(word), &n, &long_word);
		} else if (strncmp(word, "-c", 2) == 0) {
			memmove(word, word + 2, n - 1);
			is_c = true;
		} else if (strncmp(word, "--", 2) == 0) {
			memmove(word, word + 2, n - 1);
			is_c = true;
		}
		char *eq = strchr(word, '=');
		if (!is_c || !eq || eq == word) {
			if (long_word) {
				snprintf(err, errlen, "startup option too long");
				return false;
			}
			snprintf(err, errlen, "unsupported startup option \"%s\" (only -c name=value is supported)", word);
			return false;
		}
		*eq = 0;
		for (char *q = word; *q; q++)
			if (*q == '-')
				*q = '_';	/* --statement-timeout=5 means statement_timeout */
		if (!params_name_ok(word)) {
			snprintf(err, errlen, "invalid parameter name \"%s\" in startup options", word);
			return false;
		}
		if (skip && skip(word, arg))
			continue;	/* ignored: its value is never looked at, whatever its length */
		if (long_word) {
			snprintf(err, errlen, "startup option too long");
			return false;
		}
		if (!params_set(set, word, eq + 1, false)) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
	}
	return true;
}
