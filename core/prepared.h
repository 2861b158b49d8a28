/* Named prepared statements in transaction pooling: shared statement texts, per-client names, per-server caches. */
#ifndef MB_PREPARED_H
#define MB_PREPARED_H

#include <stdbool.h>
#include <stdint.h>

/* One distinct (query text, parameter types), prepared on servers as "MB_<id>". */
struct ps_stmt {
	uint64_t hash;
	const void *scope;
	uint32_t id;
	char server_name[16];
	uint8_t *body;		/* Parse body after the statement name: query, int16 n, int32 types[n] */
	uint32_t body_len;
	int refs;		/* client names and server caches that point here */
	bool known_good;	/* some server prepared it without error */
	bool scanned;
	unsigned session_flags;	/* sqlscan flags of its text: a Bind of it changes session state */
	struct ps_stmt *next;	/* hash chain */
};

/*
 * PostgreSQL keys a session's prepared statements by the first NAMEDATALEN - 1
 * bytes of their names: longer names that agree on those bytes are one statement.
 */
#define PS_NAME_KEY_MAX 63

/* A client's statement name (its key, as PostgreSQL keys it). */
struct ps_name {
	struct ps_name *next;	/* hash chain */
	uint64_t hash;
	struct ps_stmt *stmt;
	char key[];
};

/* A client's statement names, hashed: a Parse, Bind or Describe finds its name in constant time. */
struct ps_client {
	struct ps_name **buckets;
	uint32_t n;		/* names */
	uint32_t n_buckets;	/* 0 or a power of two */
};

/* What a server holds, least recently used first out. */
struct ps_cached {
	struct ps_stmt *stmt;
	uint64_t last_use;
};

struct ps_server {
	struct ps_cached *items;
	int n, cap;
};

/*
 * What to do with each ParseComplete ('1') and CloseComplete ('3') the server
 * will send, in order, with a marker for each ReadyForQuery. After an error
 * the server skips to the next Sync, so entries up to the next marker are
 * dropped unanswered.
 */
enum ps_action {
	PS_FORWARD = 0,		/* the client's own Parse/Close: relay the answer */
	PS_DROP,		/* a Parse or Close we added: swallow the answer */
	PS_AS_PARSE,		/* a Close we sent for a Parse we skipped: turn CloseComplete into ParseComplete */
	PS_MARK,		/* Sync, Query or FunctionCall: one ReadyForQuery */
	PS_REPLACE_ERROR,	/* a request we made fail on purpose: its ErrorResponse becomes the payload */
	/* CommandCompletes of a Query with a DEALLOCATE of a tracked name (an UNLISTEN no-op on the server): */
	PS_DEALLOCATE,		/* ours: its "UNLISTEN" becomes "DEALLOCATE" and client_name goes */
	PS_UNLISTEN,		/* the client's own UNLISTEN: relayed */
};

struct ps_pending_item {
	uint8_t action;
	struct ps_stmt *added;	/* a Parse that put this statement into the server cache (undone on error) */
	struct ps_stmt *evicted; /* a Close that took it out of the cache (undone if the server skipped it) */
	char *client_name;	/* the client's Parse under this name (the name goes if it fails);
				 * PS_DEALLOCATE: the name it drops once it ran */
	void *payload;		/* PS_REPLACE_ERROR: the ErrorResponse to send instead (malloc'd) */
	uint32_t payload_len;
};

struct ps_pending {
	struct ps_pending_item *items;
	uint32_t head, n, cap;
};

/*
 * Look up or create the shared statement for a Parse body (everything after the name) within a scope
 * (the pool: a text valid in one database may not be in another). NULL on OOM.
 */
struct ps_stmt *ps_intern(const void *scope, const uint8_t *body, uint32_t len);
/* The shared statement for a Parse body if one exists; creates nothing. */
struct ps_stmt *ps_lookup(const void *scope, const uint8_t *body, uint32_t len);
void ps_stmt_ref(struct ps_stmt *st);
void ps_stmt_unref(struct ps_stmt *st);
/* Free st if nothing refers to it (a statement interned for a request that then failed). */
void ps_stmt_release_unused(struct ps_stmt *st);

struct ps_stmt *ps_client_find(const struct ps_client *pc, const char *name);
/* Map name to st (replacing an earlier mapping). Names are compared as PostgreSQL does (PS_NAME_KEY_MAX). */
bool ps_client_set(struct ps_client *pc, const char *name, struct ps_stmt *st) __attribute__((warn_unused_result));
void ps_client_remove(struct ps_client *pc, const char *name);
void ps_client_clear(struct ps_client *pc);
static inline uint32_t ps_client_count(const struct ps_client *pc)
{
	return pc->n;
}

/* Server cache. use_counter orders the LRU. */
bool ps_server_has(struct ps_server *ps, const struct ps_stmt *st, uint64_t use_counter);
bool ps_server_add(struct ps_server *ps, struct ps_stmt *st, uint64_t use_counter) __attribute__((warn_unused_result));
void ps_server_remove(struct ps_server *ps, const struct ps_stmt *st);
/* The least recently used statement, removed from the cache (the caller closes it on the server and unrefs). */
struct ps_stmt *ps_server_evict(struct ps_server *ps);
void ps_server_clear(struct ps_server *ps);

bool ps_pending_push(struct ps_pending *q, enum ps_action action, struct ps_stmt *added)
	__attribute__((warn_unused_result));
/* The entry just pushed, to fill in its other fields. */
struct ps_pending_item *ps_pending_last(struct ps_pending *q);

/* Queue a PS_REPLACE_ERROR entry; the queue takes over payload. */
bool ps_pending_push_error(struct ps_pending *q, void *payload, uint32_t len) __attribute__((warn_unused_result));
/* Pop the head; false if empty. */
bool ps_pending_pop(struct ps_pending *q, struct ps_pending_item *out);
bool ps_pending_peek(const struct ps_pending *q, struct ps_pending_item *out);
void ps_pending_clear(struct ps_pending *q);
void ps_pending_free(struct ps_pending *q);

#endif
