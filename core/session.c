/* Statements the core adds to a client's Query to follow its session settings, and their hidden results. */
#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
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
	put(out, ") AS \"" SESSION_MARKER "\";");
	if (out->failed || !push(h, HIDDEN_CAPTURE, name, true)) {
		out->failed = true;
		return false;
	}
	return true;
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

	pkt_reader_init(&r, msg->data + 5, msg->len - 5);
	if (pkt_get_u16(&r) < 1)
		return false;
	name = pkt_get_string(&r);
	return name && strcmp(name, SESSION_MARKER) == 0;
}

/* The first column of a DataRow, or NULL (SQL NULL, malformed or out of memory). */
static char *first_column(const struct sbuf_msg *msg)
{
	struct pkt_reader r;
	uint32_t len;
	char *v;

	pkt_reader_init(&r, msg->data + 5, msg->len - 5);
	if (pkt_get_u16(&r) < 1)
		return NULL;
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
			ok = strcmp(e->name, "all") == 0 ? cpol_track_add(c, NULL, NULL, true)
							 : cpol_track_add(c, e->name, NULL, false);
		else if (h->value)
			ok = cpol_track_add(c, e->name, h->value, false);
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
	case 'T':
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
	case 'D':
		if (!h->reading)
			return false;
		if (msg->avail < msg->len) {
			*act = msg->len > HIDDEN_MAX_ROW ? SBUF_DROP : SBUF_WAIT_FULL;
			return true;
		}
		if (h->cur.kind == HIDDEN_CAPTURE && !h->value)
			h->value = first_column(msg);
		*act = SBUF_DROP;
		return true;
	case 'C':
		if (!h->reading)
			return false;
		if (msg->avail < msg->len) {
			*act = SBUF_WAIT_FULL;
			return true;
		}
		finish(c, h);
		*act = SBUF_DROP;
		return true;
	case 'E':
		/* an added statement failed (or the client's, and ours will not run): the error goes to the client */
		h->reading = false;
		free(h->value);
		h->value = NULL;
		return false;
	case 'Z':
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
