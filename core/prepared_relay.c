/* Prepared statements on the relay path: renaming, preparing on demand, and answers we give ourselves. */
#include "prepared_relay.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "runtime.h"
#include "server.h"
#include "sqlscan.h"

/* A name no statement ever has: closing it costs the server nothing and answers CloseComplete. */
#define NOOP_NAME "MB_noop"
#define NAMES_PREFIX_MAX (5 + 2 * 64)	/* type, length, portal and statement names */
#define WHOLE_MAX (64u * 1024 * 1024)	/* as CLIENT_MAX_WHOLE in client.c */

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

static bool push(struct server *s, enum ps_action action, struct ps_stmt *added)
{
	if (!ps_pending_push(&s->ps_pending, action, added))
		return false;
	if (added)
		ps_stmt_ref(added);
	return true;
}

/* An answered entry is done; an unanswered one (the server skipped or refused it) is undone. */
static void forget_item(struct server *s, const struct ps_pending_item *it, bool answered)
{
	free(it->payload);
	/* a client's Parse that failed or was skipped: as in PostgreSQL, the name does not exist */
	if (!answered && it->client_name && s->client)
		ps_client_remove(&s->client->ps, it->client_name);
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
	pkt_begin(&b, 'C');
	pkt_put_u8(&b, 'S');
	pkt_put_string(&b, name);
	pkt_end(&b);
	send_to(&s->sb, &b);
}

static void send_parse(struct server *s, const struct ps_stmt *st)
{
	struct pktbuf b;
	pktbuf_init(&b);
	pkt_begin(&b, 'P');
	pkt_put_string(&b, st->server_name);
	pkt_put_bytes(&b, st->body, st->body_len);
	pkt_end(&b);
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
		if (!push(s, PS_DROP, NULL)) {
			ps_stmt_unref(old);
			return false;
		}
		ps_pending_last(&s->ps_pending)->evicted = old;	/* the cache's reference moves here */
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
	s->pool->ps_server_parses++;
	return push(s, PS_DROP, st) && ps_server_add(&s->ps_cache, st, g_use_counter);
}

/* Statement name of a Parse/Describe/Close body at offset, bounded by the buffered bytes. */
static const char *name_at(const struct sbuf_msg *msg, uint32_t offset, uint32_t *len)
{
	const uint8_t *p = msg->data + offset, *end = msg->data + msg->avail;
	const uint8_t *nul;

	if (p >= end)
		return NULL;
	nul = memchr(p, 0, (size_t)(end - p));
	if (!nul)
		return NULL;
	*len = (uint32_t)(nul - p);
	return (const char *)p;
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

static void answer_client(struct client *c, uint8_t type)
{
	uint8_t m[5] = { type, 0, 0, 0, 4 };
	sbuf_send(&c->sb, m, sizeof(m));
}

bool ps_relay_client_unlinked(struct client *c, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	const char *name;
	uint32_t nlen;

	switch (msg->type) {
	case 'P': {
		struct ps_stmt *st;
		if (msg->avail < msg->len) {
			if (msg->len > WHOLE_MAX)
				return false;
			*act = SBUF_WAIT_FULL;
			return true;
		}
		name = name_at(msg, 5, &nlen);
		if (!name) {
			*act = bad_message(c, "Parse");
			return true;
		}
		if (nlen == 0)
			return false;
		st = ps_intern(c->pool, msg->data + 5 + nlen + 1, msg->len - 5 - nlen - 1);
		if (!st) {
			*act = out_of_memory(c);
			return true;
		}
		scan_statement(st);
		/* a text some server accepted is answered here: a Parse never waits behind transactions */
		if (!st->known_good)
			return false;
		if (!ps_client_set(&c->ps, name, st)) {
			*act = out_of_memory(c);
			return true;
		}
		c->pool->ps_client_parses++;
		answer_client(c, '1');
		*act = SBUF_DROP;
		return true;
	}
	case 'C':
		if (msg->avail < msg->len) {
			*act = SBUF_WAIT_FULL;
			return true;
		}
		if (msg->len < 7 || msg->data[5] != 'S')
			return false;
		name = name_at(msg, 6, &nlen);
		if (!name || nlen == 0)
			return false;
		ps_client_remove(&c->ps, name);
		answer_client(c, '3');
		*act = SBUF_DROP;
		return true;
	case 'S': {
		uint8_t z[6] = { 'Z', 0, 0, 0, 5, 'I' };	/* no server: no transaction */
		sbuf_send(&c->sb, z, sizeof(z));
		*act = SBUF_DROP;
		return true;
	}
	case 'H':
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

	name = name_at(msg, 5, &nlen);
	if (!name) {
		if (msg->avail >= msg->len || msg->avail >= NAMES_PREFIX_MAX) {
			*act = bad_message(c, "Parse");
			return true;
		}
		c->sb.wait_bytes = msg->len <= NAMES_PREFIX_MAX ? 0 : NAMES_PREFIX_MAX;
		*act = SBUF_WAIT_FULL;
		return true;
	}
	if (nlen == 0) {
		/* the unnamed statement is the client's own business: relayed as it streams in */
		if (push(s, PS_FORWARD, NULL))
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
	if (!sbuf_flush_pending(&c->sb)) {
		*act = SBUF_RETRY;
		return true;
	}
	st = ps_intern(s->pool, msg->data + 5 + nlen + 1, msg->len - 5 - nlen - 1);
	if (!st || !ps_client_set(&c->ps, name, st)) {
		*act = out_of_memory(c);
		return true;
	}
	scan_statement(st);
	c->pool->ps_client_parses++;
	if (ps_server_has(&s->ps_cache, st, ++g_use_counter)) {
		/* prepared here already: a Close of nothing stands in, and its answer becomes ParseComplete */
		send_close(s, NOOP_NAME);
		if (!push(s, PS_AS_PARSE, NULL)) {
			*act = out_of_memory(c);
			return true;
		}
		ps_pending_last(&s->ps_pending)->client_name = strdup(name);
		*act = SBUF_DROP;
		return true;
	}
	if (!make_room(s)) {
		*act = out_of_memory(c);
		return true;
	}
	send_parse(s, st);
	s->pool->ps_server_parses++;
	if (!push(s, PS_FORWARD, st) || !ps_server_add(&s->ps_cache, st, g_use_counter)) {
		*act = out_of_memory(c);
		return true;
	}
	ps_pending_last(&s->ps_pending)->client_name = strdup(name);	/* NULL only costs the clean-up */
	*act = SBUF_DROP;
	return true;
}

static bool handle_bind(struct client *c, struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	uint32_t plen, nlen, newlen;
	const char *portal = name_at(msg, 5, &plen), *name = NULL;
	struct ps_stmt *st;
	struct pktbuf b;

	if (portal)
		name = name_at(msg, 5 + plen + 1, &nlen);
	if (!name) {
		if (msg->avail >= msg->len || msg->avail >= NAMES_PREFIX_MAX + 2) {
			*act = bad_message(c, "Bind");
			return true;
		}
		c->sb.wait_bytes = msg->len < NAMES_PREFIX_MAX + 2 ? 0 : NAMES_PREFIX_MAX + 2;
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
	c->pool->ps_binds++;
	/* our head (same portal, our statement name), then the rest of the client's Bind as it is */
	newlen = msg->len - 1 - nlen + (uint32_t)strlen(st->server_name);
	pktbuf_init(&b);
	pkt_put_u8(&b, 'B');
	pkt_put_u32(&b, newlen);
	pkt_put_bytes(&b, portal, plen + 1);
	pkt_put_string(&b, st->server_name);
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
	if (msg->len < 7 || msg->data[5] != 'S' || !(name = name_at(msg, 6, &nlen)) || nlen == 0) {
		/* portals and the unnamed statement: relay (a Close still gets its CloseComplete counted) */
		if (msg->type == 'C' && !push(s, PS_FORWARD, NULL)) {
			*act = out_of_memory(c);
			return true;
		}
		return false;
	}
	if (!sbuf_flush_pending(&c->sb)) {
		*act = SBUF_RETRY;
		return true;
	}
	if (msg->type == 'C') {
		/* the server keeps the statement for others; the client's name goes */
		ps_client_remove(&c->ps, name);
		send_close(s, NOOP_NAME);
		*act = push(s, PS_FORWARD, NULL) ? SBUF_DROP : out_of_memory(c);
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
	pkt_begin(&b, 'D');
	pkt_put_u8(&b, 'S');
	pkt_put_string(&b, st->server_name);
	pkt_end(&b);
	*act = send_to(&s->sb, &b) ? SBUF_DROP : out_of_memory(c);
	return true;
}

bool ps_relay_client(struct client *c, struct server *s, const struct sbuf_msg *msg, enum sbuf_action *act)
{
	switch (msg->type) {
	case 'P':
		return handle_parse(c, s, msg, act);
	case 'B':
		return handle_bind(c, s, msg, act);
	case 'D':
	case 'C':
		return handle_describe_close(c, s, msg, act);
	case 'S':
	case 'Q':
	case 'F':
		if (!push(s, PS_MARK, NULL)) {
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
	struct ps_pending_item it;

	switch (msg->type) {
	case '1':
	case '3':
		if (!ps_pending_peek(&s->ps_pending, &it) || it.action == PS_MARK)
			return false;	/* not tracked (session mode or feature off): relay */
		ps_pending_pop(&s->ps_pending, &it);
		if (msg->type == '1' && it.added)
			it.added->known_good = true;
		forget_item(s, &it, true);
		if (it.action == PS_DROP) {
			*act = SBUF_DROP;
			return true;
		}
		if (it.action == PS_AS_PARSE)
			((uint8_t *)msg->data)[0] = '1';	/* same length: rewritten in place */
		*act = SBUF_FORWARD;
		return true;
	case 'E': {
		bool replaced = false;
		if (s->ps_cache.n && msg->avail > 5) {
			/* after DDL a statement's plan can be stale for good: the reset drops every statement */
			const char *m = proto_error_field(msg->data + 5, msg->avail - 5, 'M');
			if (m && strncmp(m, "cached plan must not change result type", 39) == 0)
				s->dirty = true;
		}
		if (ps_pending_peek(&s->ps_pending, &it) && it.action == PS_REPLACE_ERROR) {
			/* our error goes out exactly where the server's would have */
			if (!s->client || !sbuf_flush_pending(&s->sb)) {
				if (s->client) {
					*act = SBUF_RETRY;
					return true;
				}
			} else {
				sbuf_send(&s->client->sb, it.payload, it.payload_len);
			}
			replaced = true;
		}
		/* the failing request and everything up to the next Sync get no answer */
		while (ps_pending_peek(&s->ps_pending, &it) && it.action != PS_MARK) {
			ps_pending_pop(&s->ps_pending, &it);
			forget_item(s, &it, false);
		}
		if (replaced) {
			*act = SBUF_DROP;
			return true;
		}
		return false;
	}
	case 'Z':
		if (s->ps_pending.n && s->ps_pending.items[s->ps_pending.head].action == PS_MARK) {
			ps_pending_pop(&s->ps_pending, &it);	/* the usual case: nothing but the request's mark */
			return false;
		}
		while (ps_pending_pop(&s->ps_pending, &it)) {
			forget_item(s, &it, it.action == PS_MARK);
			if (it.action == PS_MARK)
				break;
		}
		return false;
	case 'C':
		/* a DEALLOCATE ALL / DISCARD ALL that ran (its CommandComplete says so) dropped every statement */
		if (msg->avail >= 5 + 11 && msg->data[5] == 'D' &&
		    ((msg->avail >= 5 + 14 && memcmp(msg->data + 5, "DEALLOCATE ALL", 14) == 0) ||
		     memcmp(msg->data + 5, "DISCARD ALL", 11) == 0)) {
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
	struct ps_pending_item it;
	while (ps_pending_pop(&s->ps_pending, &it))
		forget_item(s, &it, true);
	ps_pending_free(&s->ps_pending);
	ps_server_clear(&s->ps_cache);
}

void ps_relay_client_forget(struct client *c)
{
	ps_client_clear(&c->ps);
}


