/* Statements the core adds to a client's Query to follow its session settings, and their hidden results. */
#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "client_params.h"
#include "client_policy.h"
#include "log.h"

#define HIDDEN_MAX_ROW (64 * 1024)	/* a captured value longer than this is not tracked */

bool session_not_reset_by_all(const char *name)
{
	static const char *const kept[] = { "role", "session_authorization", "transaction_isolation",
					    "transaction_read_only", "transaction_deferrable" };
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (strcasecmp(kept[i], name) == 0)
			return true;
	return false;
}

static bool push(struct session_hidden *h, enum hidden_kind kind, const char *name, bool track)
{
	struct hidden_entry *e;

	if (h->head + h->n == h->cap) {
		if (h->head > 0) {
			memmove(h->items, h->items + h->head, (size_t)h->n * sizeof(*h->items));
			h->head = 0;
		} else {
			int cap = h->cap ? h->cap * 2 : 8;
			struct hidden_entry *a = realloc(h->items, (size_t)cap * sizeof(*a));
			if (!a)
				return false;
			h->items = a;
			h->cap = cap;
		}
	}
	e = &h->items[h->head + h->n++];
	memset(e, 0, sizeof(*e));
	e->kind = (uint8_t)kind;
	e->track = track;
	if (name) {
		strncpy(e->name, name, sizeof(e->name) - 1);
	}
	return true;
}

static bool pop(struct session_hidden *h, struct hidden_entry *out)
{
	if (!h->n)
		return false;
	*out = h->items[h->head++];
	if (--h->n == 0)
		h->head = 0;
	return true;
}

static void put(struct pktbuf *out, const char *s)
{
	pkt_put_bytes(out, s, strlen(s));
}

/* Each added statement starts on a line of its own after a ';', so a trailing "-- comment" cannot swallow it. */
#define ADDED_START "\n;"

bool session_add_reset(struct session_hidden *h, const struct param_set *startup, const char *name, bool track,
		       struct pktbuf *out)
{
	bool all = strcmp(name, "all") == 0;
	size_t mark = out->len;

	put(out, ADDED_START);
	if (params_put_restore(out, startup, all ? NULL : name, all ? session_not_reset_by_all : NULL,
			       SESSION_MARKER) == 0) {
		if (!track) {
			out->len = mark;
			return false;
		}
		put(out, "SELECT NULL AS \"" SESSION_MARKER "\"");
	}
	put(out, ";");
	if (out->failed || !push(h, HIDDEN_RESET, name, track)) {
		out->failed = true;
		return false;
	}
	return true;
}

bool session_add_capture(struct session_hidden *h, const char *name, struct pktbuf *out)
{
	put(out, ADDED_START "SELECT pg_catalog.current_setting(");
	params_put_literal(out, name);
	put(out, ", true) AS \"" SESSION_MARKER "\";");
	if (out->failed || !push(h, HIDDEN_CAPTURE, name, true)) {
		out->failed = true;
		return false;
	}
	return true;
}

bool session_add_capture_all(struct session_hidden *h, struct pktbuf *out)
{
	put(out, ADDED_START "SELECT name AS \"" SESSION_MARKER "\", pg_catalog.current_setting(name) "
			     "FROM pg_catalog.pg_settings WHERE source = 'session' AND name NOT IN "
			     "('role', 'session_authorization', 'transaction_isolation', 'transaction_read_only', "
			     "'transaction_deferrable');");
	if (out->failed || !push(h, HIDDEN_CAPTURE_ALL, NULL, true)) {
		out->failed = true;
		return false;
	}
	return true;
}

/* ---- set_config() calls: a small reader of just enough SQL to find their arguments ---- */

static bool ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
	       (unsigned char)c >= 0x80;
}

/* Past a quoted string, identifier, dollar-quoted text or comment starting at i; i itself if there is none. */
static size_t skip_special(const char *s, size_t len, size_t i)
{
	char c = s[i];

	if (c == '\'' || c == '"' || ((c == 'E' || c == 'e') && i + 1 < len && s[i + 1] == '\'' &&
				       (i == 0 || !ident_char(s[i - 1])))) {
		bool backslash = c != '\'' && c != '"';
		char q = backslash ? '\'' : c;
		i += backslash ? 2 : 1;
		while (i < len) {
			if (backslash && s[i] == '\\' && i + 1 < len) {
				i += 2;
			} else if (s[i] == q) {
				if (i + 1 < len && s[i + 1] == q)
					i += 2;
				else
					return i + 1;
			} else {
				i++;
			}
		}
		return len;
	}
	if (c == '-' && i + 1 < len && s[i + 1] == '-') {
		while (i < len && s[i] != '\n')
			i++;
		return i;
	}
	if (c == '/' && i + 1 < len && s[i + 1] == '*') {
		int depth = 0;
		while (i < len) {
			if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
				depth++;
				i += 2;
			} else if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
				i += 2;
				if (--depth == 0)
					return i;
			} else {
				i++;
			}
		}
		return len;
	}
	if (c == '$' && (i == 0 || !ident_char(s[i - 1]))) {
		size_t t = i + 1;
		while (t < len && s[t] != '$' && ident_char(s[t]))
			t++;
		if (t < len && s[t] == '$') {
			size_t taglen = t - i + 1;
			for (size_t p = t + 1; p + taglen <= len; p++)
				if (memcmp(s + p, s + i, taglen) == 0)
					return p + taglen;
			return len;
		}
	}
	return i;
}

static size_t skip_space(const char *s, size_t len, size_t i)
{
	for (;;) {
		size_t j;
		while (i < len && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')))
			i++;
		if (i >= len || (s[i] != '-' && s[i] != '/'))
			return i;
		j = skip_special(s, len, i);
		if (j == i)
			return i;
		i = j;
	}
}

/* Past one argument: to the ',' or ')' that ends it at its own depth. */
static size_t skip_argument(const char *s, size_t len, size_t i)
{
	int depth = 0;

	while (i < len) {
		size_t j = skip_special(s, len, i);
		if (j != i) {
			i = j;
			continue;
		}
		if (s[i] == '(' || s[i] == '[')
			depth++;
		else if ((s[i] == ')' || s[i] == ']') && depth-- == 0)
			return i;
		else if (s[i] == ',' && depth == 0)
			return i;
		i++;
	}
	return len;
}

/* A plain '...' literal (no E, no cast) followed by ',' or ')': its text into buf. */
static bool read_literal(const char *s, size_t len, size_t *pos, char *buf, size_t cap)
{
	size_t i = *pos, n = 0;

	if (i >= len || s[i] != '\'')
		return false;
	for (i++; i < len; i++) {
		if (s[i] == '\'') {
			if (i + 1 < len && s[i + 1] == '\'')
				i++;
			else
				break;
		}
		if (n + 1 >= cap)
			return false;
		buf[n++] = s[i];
	}
	if (i >= len)
		return false;
	buf[n] = 0;
	i = skip_space(s, len, i + 1);
	if (i >= len || (s[i] != ',' && s[i] != ')'))
		return false;
	*pos = i;
	return true;
}

static int read_bool(const char *s, size_t len, size_t i)
{
	size_t start = i, n;
	int v = -1;

	while (i < len && ident_char(s[i]))
		i++;
	n = i - start;
	if (n == 5 && strncasecmp(s + start, "false", 5) == 0)
		v = 0;
	else if (n == 4 && strncasecmp(s + start, "true", 4) == 0)
		v = 1;
	i = skip_space(s, len, i);
	return i < len && s[i] == ')' ? v : -1;
}

int session_set_config_calls(const char *s, size_t len, struct set_config_call *out, int max)
{
	int n = 0;
	size_t i = 0;

	while (i < len) {
		size_t j = skip_special(s, len, i);
		struct set_config_call call = { "", -1 };
		if (j != i) {
			i = j;
			continue;
		}
		if (!ident_char(s[i]) || (i > 0 && ident_char(s[i - 1])) || len - i < 10 ||
		    strncasecmp(s + i, "set_config", 10) != 0 || (len - i > 10 && ident_char(s[i + 10]))) {
			i++;
			continue;
		}
		i = skip_space(s, len, i + 10);
		if (i >= len || s[i] != '(')
			continue;
		i = skip_space(s, len, i + 1);
		if (!read_literal(s, len, &i, call.name, sizeof(call.name))) {
			call.name[0] = 0;
			i = skip_argument(s, len, i);
		}
		if (i < len && s[i] == ',')
			i = skip_argument(s, len, i + 1);	/* the value */
		if (i < len && s[i] == ',')
			call.is_local = read_bool(s, len, skip_space(s, len, i + 1));
		if (n < max)
			out[n] = call;
		n++;
	}
	return n;
}

/* Parameters whose list elements PostgreSQL quotes as identifiers (GUC_LIST_QUOTE). */
static bool list_quoted(const char *name)
{
	return strcasecmp(name, "search_path") == 0 || strcasecmp(name, "temp_tablespaces") == 0 ||
	       strcasecmp(name, "session_preload_libraries") == 0 || strcasecmp(name, "local_preload_libraries") == 0;
}

static bool plain_ident(const char *s, size_t n)
{
	if (!n || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Append n bytes to value[*used..cap), quoted as an identifier when asked and needed. */
/* A '...' or "..." at *pos (doubled quotes inside), unquoted into buf; *pos goes past its closing quote. */
static bool read_quoted(const char *s, size_t len, size_t *pos, char *buf, size_t cap, size_t *n_out)
{
	char q = s[*pos];
	size_t i, n = 0;

	for (i = *pos + 1; i < len; i++) {
		if (s[i] == q) {
			if (i + 1 < len && s[i + 1] == q)
				i++;
			else
				break;
		}
		if (n + 1 >= cap)
			return false;
		buf[n++] = s[i];
	}
	if (i >= len)
		return false;
	*pos = i + 1;
	*n_out = n;
	return true;
}

static bool append(char *value, size_t cap, size_t *used, const char *s, size_t n, bool quote)
{
	bool q = quote && !plain_ident(s, n);
	size_t need = n + (q ? 2 + n : 0);

	if (*used + need + 1 > cap)
		return false;
	if (q)
		value[(*used)++] = '"';
	for (size_t i = 0; i < n; i++) {
		value[(*used)++] = s[i];
		if (q && s[i] == '"')
			value[(*used)++] = '"';
	}
	if (q)
		value[(*used)++] = '"';
	value[*used] = 0;
	return true;
}

bool session_set_value(const char *s, size_t len, const char *name, char *value, size_t cap)
{
	bool quote = list_quoted(name);
	size_t i = skip_space(s, len, 0), used = 0, start;
	char buf[256];

	/* SET [SESSION] name[.name] {TO | =} */
	if (len - i < 3 || strncasecmp(s + i, "set", 3) != 0)
		return false;
	i = skip_space(s, len, i + 3);
	if (len - i > 8 && strncasecmp(s + i, "session", 7) == 0 && !ident_char(s[i + 7]))
		i = skip_space(s, len, i + 7);
	for (;;) {
		if (i < len && s[i] == '"') {
			size_t j = skip_special(s, len, i);
			if (j == i)
				return false;
			i = j;
		} else {
			size_t j = i;
			while (j < len && ident_char(s[j]))
				j++;
			if (j == i)
				return false;
			i = j;
		}
		i = skip_space(s, len, i);
		if (i >= len || s[i] != '.')
			break;
		i = skip_space(s, len, i + 1);
	}
	if (i < len && s[i] == '=') {
		/* i is on the '=' */
	} else if (len - i >= 2 && strncasecmp(s + i, "to", 2) == 0 && (len - i == 2 || !ident_char(s[i + 2]))) {
		i++;	/* on the 'O' */
	} else {
		return false;
	}
	value[0] = 0;
	for (i = skip_space(s, len, i + 1);; i = skip_space(s, len, i + 1)) {
		if (used && !append(value, cap, &used, ", ", 2, false))
			return false;
		if (i >= len)
			return false;
		start = i;
		if (s[i] == '\'' || s[i] == '"') {
			size_t n;
			if (!read_quoted(s, len, &i, buf, sizeof(buf), &n) || !append(value, cap, &used, buf, n, quote))
				return false;
		} else if ((s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '+' || s[i] == '.') {
			if (s[i] == '+')
				start = ++i;
			else
				i++;
			while (i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
				i++;
			if (i < len && ident_char(s[i]))
				return false;	/* 1e3, 0x10: let PostgreSQL say what it is */
			if (!append(value, cap, &used, s + start, i - start, false))
				return false;
		} else if (ident_char(s[i]) && !(s[i] >= '0' && s[i] <= '9') && s[i] != '$') {
			size_t n = 0;
			for (; i < len && ident_char(s[i]); i++) {
				if (n + 1 >= sizeof(buf))
					return false;
				buf[n++] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];	/* folded, as PostgreSQL */
			}
			if ((n == 1 && (buf[0] == 'e' || buf[0] == 'b' || buf[0] == 'x' || buf[0] == 'n' || buf[0] == 'u')) &&
			    i < len && (s[i] == '\'' || s[i] == '&'))
				return false;	/* E'...', B'...', N'...', U&'...' */
			if ((n == 7 && memcmp(buf, "default", 7) == 0) || (n == 5 && memcmp(buf, "local", 5) == 0))
				return false;	/* a RESET */
			if (!append(value, cap, &used, buf, n, quote))
				return false;
		} else {
			return false;
		}
		i = skip_space(s, len, i);
		if (i >= len || s[i] == ';')
			return true;
		if (s[i] != ',')
			return false;
	}
}

bool session_end_query(struct session_hidden *h, int ready_before)
{
	if (!push(h, HIDDEN_END, NULL, false))
		return false;
	h->items[h->head + h->n - 1].ready_seq = h->ready_seen + (uint64_t)ready_before + 1;
	return true;
}

/* Is this RowDescription the answer of an added statement? */
static bool marked(const struct sbuf_msg *msg)
{
	struct pkt_reader r;
	const char *name;

	pkt_reader_init(&r, msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN);
	if (pkt_get_u16(&r) < 1)
		return false;
	name = pkt_get_string(&r);
	return name && strcmp(name, SESSION_MARKER) == 0;
}

/* Column col (0 or 1) of a DataRow, or NULL (SQL NULL, malformed or out of memory). */
static char *column(const struct sbuf_msg *msg, int col)
{
	struct pkt_reader r;
	uint32_t len;
	char *v;

	pkt_reader_init(&r, msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN);
	if (pkt_get_u16(&r) < col + 1)
		return NULL;
	if (col == 1) {
		len = pkt_get_u32(&r);
		if (len != 0xffffffffu && (r.bad || !pkt_get_bytes(&r, len)))
			return NULL;
	}
	len = pkt_get_u32(&r);
	if (len == 0xffffffffu || r.bad || len > r.len - r.pos)
		return NULL;
	v = malloc((size_t)len + 1);
	if (!v)
		return NULL;
	memcpy(v, r.data + r.pos, len);
	v[len] = 0;
	if (strlen(v) != len) {	/* a NUL inside: not a setting's text */
		free(v);
		return NULL;
	}
	return v;
}

/* The added statement ran to its CommandComplete: the setting it followed is kept (at commit). */
static void finish(struct client *c, struct session_hidden *h)
{
	struct hidden_entry *e = &h->cur;

	h->reading = false;
	if (e->track) {
		bool ok = true;
		if (e->kind == HIDDEN_RESET)
			ok = strcmp(e->name, "all") == 0 ? client_param_track_add(c, NULL, NULL, true)
							 : client_param_track_add(c, e->name, NULL, false);
		else if (h->value)
			ok = client_param_track_add(c, e->name, h->value, false);
		if (!ok)
			log_warning("C-%llu: out of memory tracking %s", c->id, e->name);
	}
	free(h->value);
	h->value = NULL;
}

bool session_server_msg(struct client *c, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	struct session_hidden *h = &c->hidden;
	struct hidden_entry e;

	switch (msg->type) {
	case BE_ROW_DESCRIPTION:
		if (!h->n || h->items[h->head].kind == HIDDEN_END)
			return false;
		if (msg->avail < msg->len) {
			if (msg->len > 4096)
				return false;	/* ours are short */
			*act = SBUF_WAIT_FULL;
			return true;
		}
		if (!marked(msg))
			return false;
		pop(h, &h->cur);
		h->reading = true;
		*act = SBUF_DROP;
		return true;
	case BE_DATA_ROW:
		if (!h->reading)
			return false;
		if (msg->avail < msg->len) {
			*act = msg->len > HIDDEN_MAX_ROW ? SBUF_DROP : SBUF_WAIT_FULL;
			return true;
		}
		if (h->cur.kind == HIDDEN_CAPTURE && !h->value) {
			h->value = column(msg, 0);
		} else if (h->cur.kind == HIDDEN_CAPTURE_ALL) {
			char *name = column(msg, 0), *value = column(msg, 1);
			if (name && value && params_name_ok(name) && !client_param_track_add(c, name, value, false))
				log_warning("C-%llu: out of memory tracking %s", c->id, name);
			free(name);
			free(value);
		}
		*act = SBUF_DROP;
		return true;
	case BE_COMMAND_COMPLETE:
		if (!h->reading)
			return false;
		if (msg->avail < msg->len) {
			*act = SBUF_WAIT_FULL;
			return true;
		}
		finish(c, h);
		*act = SBUF_DROP;
		return true;
	case BE_ERROR:
		/* an added statement failed (or the client's, and ours will not run): the error goes to the client */
		h->reading = false;
		free(h->value);
		h->value = NULL;
		return false;
	case BE_READY_FOR_QUERY:
		h->ready_seen++;
		h->reading = false;
		/* the Queries this ReadyForQuery ends: what they did not answer never ran */
		while (h->n) {
			struct hidden_entry *end = NULL;
			for (int i = 0; i < h->n && !end; i++)
				if (h->items[h->head + i].kind == HIDDEN_END)
					end = &h->items[h->head + i];
			if (!end || end->ready_seq > h->ready_seen)
				break;
			while (pop(h, &e) && e.kind != HIDDEN_END)
				;
		}
		return false;
	default:
		return false;
	}
}

void session_clear(struct session_hidden *h)
{
	free(h->items);
	free(h->value);
	memset(h, 0, sizeof(*h));
}
