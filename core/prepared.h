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

#endif
