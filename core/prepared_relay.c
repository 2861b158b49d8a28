/* Prepared statements on the relay path: renaming, preparing on demand, and answers we give ourselves. */
#include "prepared_relay.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "prepared.h"
#include "replies.h"
#include "proto.h"
#include "runtime.h"
#include "server.h"
#include "sqlscan.h"

/* A name no statement ever has: closing it costs the server nothing and answers CloseComplete. */
#define NOOP_NAME "MB_noop"
#define NAMES_PREFIX_MAX (5 + 2 * 64)	/* a Bind's first look: type, length, short portal and statement names */
#define WHOLE_MAX (64u * 1024 * 1024)	/* as CLIENT_MAX_WHOLE in client_login.c */

static uint64_t g_use_counter;

bool ps_relay_enabled(const struct client *c)
{
	return c->pool_mode != POOL_MODE_SESSION && rt.cfg->max_prepared_statements > 0;
}

static bool send_to(struct sbuf *sb, struct pktbuf *b)
{
	bool ok = !b->failed && sbuf_send_pkt(sb, b);
	pktbuf_free(b);
	return ok;
}

static bool push(struct server *s, enum reply_action action, struct ps_stmt *added)
{
	if (!replies_push(&s->replies, action, added))
		return false;
	if (added)
		ps_stmt_ref(added);
	return true;
}

/* An answered entry is done; an unanswered one (the server skipped or refused it) is undone. */
static void forget_item(struct server *s, const struct reply *it, bool answered)
{
	free(it->payload);
	if (it->action == REPLY_DEALLOCATE) {
		/* a DEALLOCATE that ran drops the name; one the server skipped (an error before it) leaves it */
		if (answered && it->client_name && s->client)
			ps_client_remove(&s->client->ps, it->client_name);
	} else if (!answered && it->client_name && s->client) {
		/* a client's Parse that failed or was skipped: as in PostgreSQL, the name does not exist */
		ps_client_remove(&s->client->ps, it->client_name);
	}
	if (it->added) {
		if (!answered)
			ps_server_remove(&s->ps_cache, it->added);	/* never prepared */
		ps_stmt_unref(it->added);
	}
	if (it->evicted) {
		/* a skipped Close leaves the statement on the server: it is still ours to reuse */
		if (!answered && !ps_server_has(&s->ps_cache, it->evicted, 0) &&
		    !ps_server_add(&s->ps_cache, it->evicted, 0))
			log_warning("S-%llu: out of memory re-adding %s", s->id, it->evicted->server_name);
		ps_stmt_unref(it->evicted);
	}
	free(it->client_name);
}

static void send_close(struct server *s, const char *name)
{
	struct pktbuf b;
	pktbuf_init(&b);
	pkt_close(&b, PROTO_TARGET_STATEMENT, name);
	send_to(&s->sb, &b);
}

static void send_parse(struct server *s, const struct ps_stmt *st)
{
	struct pktbuf b;
	pktbuf_init(&b);
	pkt_parse(&b, st->server_name, st->body, st->body_len);
	send_to(&s->sb, &b);
}

/* Make room under max_prepared_statements: close the least recently used statement for real. */
static bool make_room(struct server *s)
{
	while (s->ps_cache.n >= rt.cfg->max_prepared_statements) {
		struct ps_stmt *old = ps_server_evict(&s->ps_cache);
		if (!old)
			break;
		send_close(s, old->server_name);
		if (!push(s, REPLY_DROP, NULL)) {
			ps_stmt_unref(old);
			return false;
		}
		replies_last(&s->replies)->evicted = old;	/* the cache's reference moves here */
	}
	return true;
}

/* Prepare st on s unless it is there already; the server's ParseComplete is ours to drop. */
static bool ensure_prepared(struct server *s, struct ps_stmt *st)
{
	if (ps_server_has(&s->ps_cache, st, ++g_use_counter))
		return true;
	if (!make_room(s))
		return false;
	send_parse(s, st);
	s->pool->stats.server_parse_count++;
	return push(s, REPLY_DROP, st) && ps_server_add(&s->ps_cache, st, g_use_counter);
}

/* The statement name a message carries (proto_statement_name), bounded by the buffered bytes. */
static const char *stmt_name(const struct sbuf_msg *msg, uint32_t *len)
{
	return proto_statement_name(msg->data, msg->avail, len);
}

/* Once per shared statement: does running it change the session (SET, session locks, LISTEN...)? */
static void scan_statement(struct ps_stmt *st)
{
	if (!st->scanned) {
		st->session_flags = sqlscan_flags((const char *)st->body, strnlen((const char *)st->body, st->body_len)) &
				    ~(unsigned)SQL_HINTS;
		st->scanned = true;
	}
}

static enum sbuf_action out_of_memory(struct client *c)
{
	client_fatal(c, "53200", "out of memory tracking prepared statements");
	return SBUF_CLOSED;
}

static enum sbuf_action bad_message(struct client *c, const char *what)
{
	client_fatal(c, "08P01", "invalid %s message", what);
	return SBUF_CLOSED;
}

static void answer_parse(struct client *c)
{
	uint8_t m[PROTO_EMPTY_LEN];
	proto_parse_complete(m);
	sbuf_send(&c->sb, m, sizeof(m));
}

static void answer_close(struct client *c)
{
	uint8_t m[PROTO_EMPTY_LEN];
	proto_close_complete(m);
	sbuf_send(&c->sb, m, sizeof(m));
}

/*
 * A Parse of a name the client already has, or one more than
 * max_client_prepared_statements: refused as PostgreSQL refuses a request
 * (an ErrorResponse in its place, then everything up to Sync is skipped).
 * True when refused: c->reject_msg holds the error for the caller to send,
 * or, out of memory, it is empty and *act says the client is closed.
 */
static bool refuse_parse(struct client *c, const char *name, enum sbuf_action *act)
{
	int cap = rt.cfg->max_client_prepared_statements;
	char abuf[64];

	if (ps_client_find(&c->ps, name)) {
		log_error("C-%llu %s/%s@%s prepared statement '%s' was already prepared", c->id, c->database, c->user,
			  client_addr(c, abuf), name);
		pktbuf_reset(&c->reject_msg);
		pkt_error(&c->reject_msg, "ERROR", "42P05", "prepared statement \"%s\" already exists", name);
	} else if (cap > 0 && ps_client_count(&c->ps) >= (uint32_t)cap) {
		log_warning("C-%llu %s/%s@%s refused prepared statement '%s': max_client_prepared_statements (%d) reached",
			    c->id, c->database, c->user, client_addr(c, abuf), name, cap);
		pktbuf_reset(&c->reject_msg);
		pkt_error(&c->reject_msg, "ERROR", "53400",
			  "too many prepared statements for this client (max_client_prepared_statements = %d)", cap);
	} else {
		return false;
	}
	if (c->reject_msg.failed) {
		pktbuf_reset(&c->reject_msg);
		*act = out_of_memory(c);
	}
	return true;
}

static bool local_deallocate(struct client *c, const struct sbuf_msg *msg);

bool ps_relay_client_unlinked(struct client *c, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	const char *name;
	uint32_t nlen;

	switch (msg->type) {
	case FE_PARSE: {
		struct ps_stmt *st;
		if (msg->avail < msg->len) {
			if (msg->len > WHOLE_MAX)
				return false;
			*act = SBUF_WAIT_FULL;
			return true;
		}
		name = stmt_name(msg, &nlen);
		if (!name) {
			*act = bad_message(c, "Parse");
			return true;
		}
		if (nlen == 0)
			return false;
		if (refuse_parse(c, name, act))
			return !c->reject_msg.len;	/* refused: the caller rejects it */
		/*
		 * A text some server accepted is answered here: a Parse never waits
		 * behind transactions. Any other waits for a server and is interned
		 * there: a Parse that never reaches one (a wait timeout, a rejected
		 * transaction, a failed server login) leaves nothing behind.
		 */
		st = ps_lookup(c->pool, msg->data + PROTO_HEADER_LEN + nlen + 1, msg->len - PROTO_HEADER_LEN - nlen - 1);
		if (!st || !st->known_good)
			return false;
		if (!ps_client_set(&c->ps, name, st)) {
			*act = out_of_memory(c);
			return true;
		}
		c->pool->stats.client_parse_count++;
		answer_parse(c);
		*act = SBUF_DROP;
		return true;
	}
	case FE_QUERY:
		if (!local_deallocate(c, msg))
			return false;
		*act = SBUF_DROP;
		return true;
	case FE_CLOSE:
		if (msg->avail < msg->len) {
			*act = SBUF_WAIT_FULL;
			return true;
		}
		name = stmt_name(msg, &nlen);
		if (!name || nlen == 0)
			return false;
		ps_client_remove(&c->ps, name);
		answer_close(c);
		*act = SBUF_DROP;
		return true;
	case FE_SYNC: {
		uint8_t z[PROTO_READY_LEN];
		proto_ready_for_query(z, PROTO_TXN_IDLE);	/* no server: no transaction */
		sbuf_send(&c->sb, z, sizeof(z));
		*act = SBUF_DROP;
		return true;
	}
	case FE_FLUSH:
		*act = SBUF_DROP;	/* nothing is pending anywhere */
		return true;
	default:
		return false;
	}
}

static bool handle_parse(struct client *c, struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	const char *name;
	uint32_t nlen;
	struct ps_stmt *st;

	name = stmt_name(msg, &nlen);
	if (!name) {
		if (msg->avail >= msg->len) {
			*act = bad_message(c, "Parse");
			return true;
		}
		if (msg->avail > 5 && msg->len > WHOLE_MAX) {
			*act = bad_message(c, "oversized Parse");
			return true;
		}
		/* a named Parse is taken whole, however long its name; one byte tells whether it has a name */
		c->sb.wait_bytes = msg->avail > 5 ? 0 : 6;
		*act = SBUF_WAIT_FULL;
		return true;
	}
	if (nlen == 0) {
		/* the unnamed statement is the client's own business: relayed as it streams in */
		if (push(s, REPLY_FORWARD, NULL))
			return false;
		*act = out_of_memory(c);
		return true;
	}
	if (msg->avail < msg->len) {
		if (msg->len > WHOLE_MAX) {
			*act = bad_message(c, "oversized Parse");
			return true;
		}
		*act = SBUF_WAIT_FULL;
		return true;
	}
	if (refuse_parse(c, name, act))
		return !c->reject_msg.len;	/* refused: the caller rejects it */
	if (!sbuf_flush_pending(&c->sb)) {
		*act = SBUF_RETRY;
		return true;
	}
	st = ps_intern(s->pool, msg->data + PROTO_HEADER_LEN + nlen + 1, msg->len - PROTO_HEADER_LEN - nlen - 1);
	if (!st || !ps_client_set(&c->ps, name, st)) {
		ps_stmt_release_unused(st);
		*act = out_of_memory(c);
		return true;
	}
	scan_statement(st);
	c->pool->stats.client_parse_count++;
	if (ps_server_has(&s->ps_cache, st, ++g_use_counter)) {
		/* prepared here already: a Close of nothing stands in, and its answer becomes ParseComplete */
		send_close(s, NOOP_NAME);
		if (!push(s, REPLY_AS_PARSE, NULL)) {
			*act = out_of_memory(c);
			return true;
		}
		replies_last(&s->replies)->client_name = strdup(name);
		*act = SBUF_DROP;
		return true;
	}
	if (!make_room(s)) {
		*act = out_of_memory(c);
		return true;
	}
	send_parse(s, st);
	s->pool->stats.server_parse_count++;
	if (!push(s, REPLY_FORWARD, st) || !ps_server_add(&s->ps_cache, st, g_use_counter)) {
		*act = out_of_memory(c);
		return true;
	}
	replies_last(&s->replies)->client_name = strdup(name);	/* NULL only costs the clean-up */
	*act = SBUF_DROP;
	return true;
}

static bool handle_bind(struct client *c, struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	uint32_t plen, nlen, newlen;
	const char *portal = proto_string_at(msg->data, msg->avail, PROTO_HEADER_LEN, &plen);
	const char *name = stmt_name(msg, &nlen);
	struct ps_stmt *st;
	struct pktbuf b;

	if (!name) {
		uint32_t want;
		if (msg->avail >= msg->len) {
			*act = bad_message(c, "Bind");
			return true;
		}
		/* names of any length: gather more of the message (twice as much each time) until both end */
		want = msg->avail > NAMES_PREFIX_MAX ? msg->avail * 2 : NAMES_PREFIX_MAX + 2;
		c->sb.wait_bytes = want < msg->len && want > msg->avail ? want : 0;
		*act = SBUF_WAIT_FULL;
		return true;
	}
	if (nlen == 0)
		return false;
	st = ps_client_find(&c->ps, name);
	if (!st)
		return false;	/* the server answers "prepared statement ... does not exist" itself */
	if (st->session_flags)
		s->dirty = true;	/* each run of a SET or a session lock changes the server's session */
	if (!sbuf_flush_pending(&c->sb)) {
		*act = SBUF_RETRY;
		return true;
	}
	if (!ensure_prepared(s, st)) {
		*act = out_of_memory(c);
		return true;
	}
	c->pool->stats.bind_count++;
	/* our head (same portal, our statement name), then the rest of the client's Bind as it is */
	newlen = msg->len - 1 - nlen + (uint32_t)strlen(st->server_name);
	pktbuf_init(&b);
	pkt_bind_head(&b, newlen, portal, plen, st->server_name);
	if (!send_to(&s->sb, &b)) {
		*act = out_of_memory(c);
		return true;
	}
	c->sb.drop_first = 5 + plen + 1 + nlen + 1;
	*act = SBUF_FORWARD;
	return true;
}

/* Describe or Close of a named statement: 'D'/'C', 'S', name. */
static bool handle_describe_close(struct client *c, struct server *s, const struct sbuf_msg *msg,
				  enum sbuf_action *act)
{
	const char *name;
	uint32_t nlen;
	struct ps_stmt *st;
	struct pktbuf b;

	if (msg->avail < msg->len) {
		*act = SBUF_WAIT_FULL;
		return true;
	}
	if (!(name = stmt_name(msg, &nlen)) || nlen == 0) {
		/* portals and the unnamed statement: relay (a Close still gets its CloseComplete counted) */
		if (msg->type == FE_CLOSE && !push(s, REPLY_FORWARD, NULL)) {
			*act = out_of_memory(c);
			return true;
		}
		return false;
	}
	if (!sbuf_flush_pending(&c->sb)) {
		*act = SBUF_RETRY;
		return true;
	}
	if (msg->type == FE_CLOSE) {
		/* the server keeps the statement for others; the client's name goes */
		ps_client_remove(&c->ps, name);
		send_close(s, NOOP_NAME);
		*act = push(s, REPLY_FORWARD, NULL) ? SBUF_DROP : out_of_memory(c);
		return true;
	}
	st = ps_client_find(&c->ps, name);
	if (!st)
		return false;
	if (!ensure_prepared(s, st)) {
		*act = out_of_memory(c);
		return true;
	}
	pktbuf_init(&b);
	pkt_describe(&b, PROTO_TARGET_STATEMENT, st->server_name);
	*act = send_to(&s->sb, &b) ? SBUF_DROP : out_of_memory(c);
	return true;
}

/* ---- SQL DEALLOCATE of a name tracked here ---- */

/*
 * The server knows a tracked statement under moonbouncer's name, so a
 * DEALLOCATE of the client's name is answered here. In a Query that also runs
 * other statements (or in a transaction), the DEALLOCATE becomes this no-op,
 * which PostgreSQL runs, skips or refuses exactly where it would have run,
 * skipped (an error earlier in the Query) or refused (25P02 in an aborted
 * transaction) the DEALLOCATE; its CommandComplete says it ran.
 */
#define DEALLOCATE_NOOP "UNLISTEN \"MB_deallocate\""

static inline bool sql_space(char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static inline bool ident_start(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (unsigned char)ch >= 0x80;
}

static inline bool ident_char(char ch)
{
	return ident_start(ch) || (ch >= '0' && ch <= '9') || ch == '$';
}

/* Past white space and comments (block comments nest, as in PostgreSQL). */
static size_t skip_blank(const char *s, size_t len, size_t p)
{
	while (p < len) {
		if (sql_space(s[p])) {
			p++;
		} else if (s[p] == '-' && p + 1 < len && s[p + 1] == '-') {
			while (p < len && s[p] != '\n')
				p++;
		} else if (s[p] == '/' && p + 1 < len && s[p + 1] == '*') {
			int depth = 1;
			for (p += 2; p < len && depth > 0;) {
				if (s[p] == '/' && p + 1 < len && s[p + 1] == '*') {
					depth++;
					p += 2;
				} else if (s[p] == '*' && p + 1 < len && s[p + 1] == '/') {
					depth--;
					p += 2;
				} else {
					p++;
				}
			}
		} else {
			break;
		}
	}
	return p;
}

/*
 * An identifier as PostgreSQL reads it: unquoted ones lower-cased, quoted ones
 * as written ("" is a quote). False for anything else, and for names longer
 * than PostgreSQL keeps (it truncates them with a NOTICE: the server's to give).
 */
static bool read_ident(const char *s, size_t len, size_t *pos, char out[PS_NAME_KEY_MAX + 1], bool *quoted)
{
	size_t p = *pos, n = 0;

	if (p < len && s[p] == '"') {
		for (p++;;) {
			char ch;
			if (p >= len)
				return false;
			if (s[p] == '"') {
				if (p + 1 >= len || s[p + 1] != '"') {
					p++;
					break;
				}
				p++;
			}
			ch = s[p++];
			if (n >= PS_NAME_KEY_MAX)
				return false;
			out[n++] = ch;
		}
		if (n == 0)
			return false;	/* a zero-length identifier: the server's syntax error */
		*quoted = true;
	} else if (p < len && ident_start(s[p])) {
		for (; p < len && ident_char(s[p]); p++) {
			if (n >= PS_NAME_KEY_MAX)
				return false;
			out[n++] = s[p] >= 'A' && s[p] <= 'Z' ? (char)(s[p] + ('a' - 'A')) : s[p];
		}
		*quoted = false;
	} else {
		return false;
	}
	out[n] = 0;
	*pos = p;
	return true;
}

/*
 * One statement s[0..len) (with its ';', if any) is DEALLOCATE [PREPARE] name:
 * the name's key, and the statement's words at s[*from..*to).
 */
static bool parse_deallocate(const char *s, size_t len, char key[PS_NAME_KEY_MAX + 1], size_t *from, size_t *to)
{
	char word[PS_NAME_KEY_MAX + 1];
	size_t p = skip_blank(s, len, 0);
	bool quoted;

	*from = p;
	if (!read_ident(s, len, &p, word, &quoted) || quoted || strcmp(word, "deallocate") != 0)
		return false;
	p = skip_blank(s, len, p);
	if (!read_ident(s, len, &p, key, &quoted))
		return false;
	if (!quoted && strcmp(key, "prepare") == 0) {
		size_t q = skip_blank(s, len, p);
		if (q < len && s[q] != ';') {	/* DEALLOCATE PREPARE name; a bare DEALLOCATE prepare names "prepare" */
			p = q;
			if (!read_ident(s, len, &p, key, &quoted))
				return false;
		}
	}
	if (!quoted && strcmp(key, "all") == 0)
		return false;	/* runs on the server; its CommandComplete clears the names */
	*to = p;
	p = skip_blank(s, len, p);
	return p >= len || s[p] == ';';
}

/* The text of a whole Query message whose text may hold a DEALLOCATE (a cheap look first). */
static bool query_text(const struct sbuf_msg *msg, const char **sql, size_t *len)
{
	const char *p, *end;

	if (msg->avail < msg->len || msg->len < 6)
		return false;
	*sql = (const char *)msg->data + PROTO_HEADER_LEN;
	*len = strnlen(*sql, msg->len - PROTO_HEADER_LEN);
	end = *sql + *len;
	for (int pass = 0; pass < 2; pass++)
		for (p = *sql; (p = memchr(p, pass ? 'D' : 'd', (size_t)(end - p))) != NULL; p++)
			if (end - p >= 10 && strncasecmp(p, "deallocate", 10) == 0)
				return true;
	return false;
}

static void send_command_complete(struct sbuf *sb, const char *tag)
{
	struct pktbuf b;
	pktbuf_init(&b);
	pkt_command_complete(&b, tag);
	send_to(sb, &b);
}

/*
 * No server linked (so no transaction): a Query of nothing but DEALLOCATEs of
 * tracked names is answered here, one CommandComplete each. A name dropped
 * earlier in the same Query fails as in PostgreSQL (26000, the rest skipped).
 */
static bool local_deallocate(struct client *c, const struct sbuf_msg *msg)
{
	char key[PS_NAME_KEY_MAX + 1];
	const char *sql;
	size_t len, pos = 0, start, from, to;
	struct sql_stmt st;
	int n = 0;
	struct pktbuf b;

	if (!ps_client_count(&c->ps) || !query_text(msg, &sql, &len))
		return false;
	for (start = pos; sqlscan_next(sql, len, &pos, &st); start = pos) {
		if (!st.kind[0] && !st.flags)
			continue;	/* an empty statement */
		if (!(st.flags & SQL_DEALLOCATE) || !parse_deallocate(sql + start, pos - start, key, &from, &to) ||
		    !ps_client_find(&c->ps, key))
			return false;
		n++;
	}
	if (!n)
		return false;
	pos = 0;
	for (start = pos; sqlscan_next(sql, len, &pos, &st); start = pos) {
		if (!st.kind[0] && !st.flags)
			continue;
		parse_deallocate(sql + start, pos - start, key, &from, &to);
		if (!ps_client_find(&c->ps, key)) {
			pktbuf_init(&b);
			pkt_error(&b, "ERROR", "26000", "prepared statement \"%s\" does not exist", key);
			send_to(&c->sb, &b);
			break;
		}
		ps_client_remove(&c->ps, key);
		send_command_complete(&c->sb, "DEALLOCATE");
	}
	pktbuf_init(&b);
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	send_to(&c->sb, &b);
	return true;
}

/* A DEALLOCATE of this name is already on its way in this Query (the last n entries of the queue). */
static bool deallocating(const struct replies *q, uint32_t n, const char *key)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct reply *it = replies_recent(q, n, i);
		if (it->action == REPLY_DEALLOCATE && it->client_name && strcmp(it->client_name, key) == 0)
			return true;
	}
	return false;
}

bool ps_relay_deallocates(const struct client *c, const char *stmt, size_t len)
{
	char key[PS_NAME_KEY_MAX + 1];
	size_t from, to;

	return ps_client_count(&c->ps) && parse_deallocate(stmt, len, key, &from, &to) && ps_client_find(&c->ps, key);
}

bool ps_relay_query(struct client *c, struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	char key[PS_NAME_KEY_MAX + 1];
	struct sbuf_msg cur = *msg;
	const char *sql;
	size_t len, pos = 0, start, from, to;
	struct sql_stmt st;
	struct pktbuf b;
	uint32_t pushed = 0;
	bool any = false, cleared = false;

	if (!ps_client_count(&c->ps))
		return false;
	if (c->session_msg.len) {	/* the Query with the session scan's statements added */
		cur.data = c->session_msg.data;
		cur.len = cur.avail = (uint32_t)c->session_msg.len;
	}
	if (!query_text(&cur, &sql, &len))
		return false;
	for (start = pos; !any && sqlscan_next(sql, len, &pos, &st); start = pos)
		any = (st.flags & SQL_DEALLOCATE) && ps_relay_deallocates(c, sql + start, pos - start);
	if (!any)
		return false;
	pktbuf_init(&b);
	pkt_begin(&b, FE_QUERY);
	pos = 0;
	for (start = pos; sqlscan_next(sql, len, &pos, &st); start = pos) {
		enum reply_action what = REPLY_FORWARD;
		bool dealloc = (st.flags & SQL_DEALLOCATE) && parse_deallocate(sql + start, pos - start, key, &from, &to);
		if (!dealloc && strcmp(st.name, "all") == 0 &&
		    ((st.flags & SQL_DEALLOCATE) || strcmp(st.kind, "discard") == 0))
			cleared = true;	/* DEALLOCATE ALL / DISCARD ALL: later DEALLOCATEs are the server's to refuse */
		if (dealloc && !cleared && ps_client_find(&c->ps, key) && !deallocating(&s->replies, pushed, key))
			what = REPLY_DEALLOCATE;
		else if (strcmp(st.kind, "unlisten") == 0)
			what = REPLY_UNLISTEN;	/* its CommandComplete looks like ours: counted, relayed */
		if (what != REPLY_FORWARD) {
			if (!push(s, what, NULL)) {
				pktbuf_free(&b);
				*act = out_of_memory(c);
				return true;
			}
			pushed++;
		}
		if (what == REPLY_DEALLOCATE) {
			/* a name this Query deallocates twice: the second is the server's "does not exist" */
			replies_last(&s->replies)->client_name = strdup(key);
			pkt_put_bytes(&b, sql + start, from);
			pkt_put_bytes(&b, DEALLOCATE_NOOP, strlen(DEALLOCATE_NOOP));
			pkt_put_bytes(&b, sql + start + to, pos - start - to);
		} else {
			pkt_put_bytes(&b, sql + start, pos - start);
		}
	}
	pkt_put_bytes(&b, sql + start, len - start);	/* trailing blanks */
	pkt_put_u8(&b, 0);
	pkt_end(&b);
	if (b.failed) {
		pktbuf_free(&b);
		*act = out_of_memory(c);
		return true;
	}
	pktbuf_free(&c->session_msg);
	c->session_msg = b;	/* goes out in place of the client's Query */
	return false;
}

bool ps_relay_client(struct client *c, struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	switch (msg->type) {
	case FE_PARSE:
		return handle_parse(c, s, msg, act);
	case FE_BIND:
		return handle_bind(c, s, msg, act);
	case FE_DESCRIBE:
	case FE_CLOSE:
		return handle_describe_close(c, s, msg, act);
	case FE_SYNC:
	case FE_QUERY:
	case FE_FUNCTION_CALL:
		if (!push(s, REPLY_READY, NULL)) {
			*act = out_of_memory(c);
			return true;
		}
		return false;
	default:
		return false;
	}
}

bool ps_relay_server(struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	struct reply it;

	switch (msg->type) {
	case BE_PARSE_COMPLETE:
	case BE_CLOSE_COMPLETE:
		if (!replies_peek(&s->replies, &it) || it.action == REPLY_READY || it.action == REPLY_DEALLOCATE ||
		    it.action == REPLY_UNLISTEN)
			return false;	/* not tracked (session mode or feature off): relay */
		replies_pop(&s->replies, &it);
		if (msg->type == BE_PARSE_COMPLETE && it.added)
			it.added->known_good = true;
		forget_item(s, &it, true);
		if (it.action == REPLY_DROP) {
			*act = SBUF_DROP;
			return true;
		}
		if (it.action == REPLY_AS_PARSE)
			((uint8_t *)msg->data)[0] = BE_PARSE_COMPLETE;	/* same length: rewritten in place */
		*act = SBUF_FORWARD;
		return true;
	case BE_ERROR:
		if (s->ps_cache.n && msg->avail > PROTO_HEADER_LEN) {
			/* after DDL a statement's plan can be stale for good: the reset drops every statement */
			const char *m = proto_error_field(msg->data + PROTO_HEADER_LEN, msg->avail - PROTO_HEADER_LEN,
							   PROTO_FIELD_MESSAGE);
			if (m && strncmp(m, "cached plan must not change result type", 39) == 0)
				s->dirty = true;
		}
		/* the failing request and everything up to the next Sync get no answer */
		while (replies_peek(&s->replies, &it) && it.action != REPLY_READY) {
			replies_pop(&s->replies, &it);
			forget_item(s, &it, false);
		}
		return false;
	case BE_READY_FOR_QUERY:
		if (replies_next_is(&s->replies, REPLY_READY)) {
			replies_pop(&s->replies, &it);	/* the usual case: nothing but the request's mark */
			return false;
		}
		while (replies_pop(&s->replies, &it)) {
			forget_item(s, &it, it.action == REPLY_READY);
			if (it.action == REPLY_READY)
				break;
		}
		return false;
	case BE_COMMAND_COMPLETE:
		if (replies_peek(&s->replies, &it) && (it.action == REPLY_DEALLOCATE || it.action == REPLY_UNLISTEN)) {
			if (msg->avail < msg->len) {
				*act = SBUF_WAIT_FULL;
				return true;
			}
			if (proto_tag_is(msg->data, msg->len, "UNLISTEN")) {
				if (it.action == REPLY_UNLISTEN) {
					replies_pop(&s->replies, &it);
					return false;
				}
				/* our no-op ran: the DEALLOCATE did, and the client sees its CommandComplete */
				if (s->client && !sbuf_flush_pending(&s->sb)) {
					*act = SBUF_RETRY;
					return true;
				}
				replies_pop(&s->replies, &it);
				forget_item(s, &it, true);
				if (s->client)
					send_command_complete(&s->client->sb, "DEALLOCATE");
				*act = SBUF_DROP;
				return true;
			}
			/* another statement's: on as usual */
		}
		/* a DEALLOCATE ALL / DISCARD ALL that ran (its CommandComplete says so) dropped every statement */
		if (proto_tag_starts(msg->data, msg->avail, "DEALLOCATE ALL") ||
		    proto_tag_starts(msg->data, msg->avail, "DISCARD ALL")) {
			ps_server_clear(&s->ps_cache);
			if (s->client)
				ps_client_clear(&s->client->ps);
		}
		return false;
	default:
		return false;
	}
}

void ps_relay_server_forget(struct server *s)
{
	struct reply it;
	while (replies_pop(&s->replies, &it))
		forget_item(s, &it, true);
	replies_free(&s->replies);
	ps_server_clear(&s->ps_cache);
}
