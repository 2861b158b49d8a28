/* Named prepared statements in transaction pooling: shared statement texts, per-client names, per-server caches. */
#include "prepared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define MIN_BUCKETS 4096

/* Shared statements, hashed; the table doubles as they grow, so chains stay short. */
static struct ps_stmt **g_buckets;
static uint32_t g_n_buckets, g_count;
static uint32_t g_next_id;

static uint64_t body_hash(const void *scope, const uint8_t *body, uint32_t len)
{
	return hash_bytes64(body, len) ^ ((uint64_t)(uintptr_t)scope * 0x9e3779b97f4a7c15ull);
}

static struct ps_stmt *find_stmt(uint64_t h, const void *scope, const uint8_t *body, uint32_t len)
{
	if (!g_n_buckets)
		return NULL;
	for (struct ps_stmt *st = g_buckets[h & (g_n_buckets - 1)]; st; st = st->next)
		if (st->hash == h && st->scope == scope && st->body_len == len && memcmp(st->body, body, len) == 0)
			return st;
	return NULL;
}

struct ps_stmt *ps_lookup(const void *scope, const uint8_t *body, uint32_t len)
{
	return find_stmt(body_hash(scope, body, len), scope, body, len);
}

static bool grow_stmts(void)
{
	uint32_t nb = g_n_buckets ? g_n_buckets * 2 : MIN_BUCKETS;
	struct ps_stmt **b = calloc(nb, sizeof(*b));

	if (!b)
		return false;
	for (uint32_t i = 0; i < g_n_buckets; i++) {
		struct ps_stmt *st = g_buckets[i], *next;
		for (; st; st = next) {
			next = st->next;
			st->next = b[st->hash & (nb - 1)];
			b[st->hash & (nb - 1)] = st;
		}
	}
	free(g_buckets);
	g_buckets = b;
	g_n_buckets = nb;
	return true;
}

struct ps_stmt *ps_intern(const void *scope, const uint8_t *body, uint32_t len)
{
	uint64_t h = body_hash(scope, body, len);
	struct ps_stmt **bucket, *st;

	st = find_stmt(h, scope, body, len);
	if (st)
		return st;
	if (g_count >= g_n_buckets && !grow_stmts() && !g_n_buckets)
		return NULL;	/* a table that cannot grow still works, with longer chains */
	bucket = &g_buckets[h & (g_n_buckets - 1)];
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->body = malloc(len ? len : 1);
	if (!st->body) {
		free(st);
		return NULL;
	}
	memcpy(st->body, body, len);
	st->body_len = len;
	st->hash = h;
	st->scope = scope;
	st->id = ++g_next_id;
	snprintf(st->server_name, sizeof(st->server_name), "MB_%u", st->id);
	st->next = *bucket;
	*bucket = st;
	g_count++;
	return st;
}

void ps_stmt_ref(struct ps_stmt *st)
{
	st->refs++;
}

static void free_stmt(struct ps_stmt *st)
{
	struct ps_stmt **pp;

	for (pp = &g_buckets[st->hash & (g_n_buckets - 1)]; *pp; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			g_count--;
			break;
		}
	}
	free(st->body);
	free(st);
}

void ps_stmt_unref(struct ps_stmt *st)
{
	if (--st->refs <= 0)
		free_stmt(st);
}

void ps_stmt_release_unused(struct ps_stmt *st)
{
	if (st && st->refs <= 0)
		free_stmt(st);
}

/* ---- client names ---- */

static size_t key_len(const char *name)
{
	return strnlen(name, PS_NAME_KEY_MAX);
}

static struct ps_name **client_slot(const struct ps_client *pc, const char *name, size_t len, uint64_t h)
{
	struct ps_name **pp;

	for (pp = &pc->buckets[h & (pc->n_buckets - 1)]; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && memcmp((*pp)->key, name, len) == 0 && (*pp)->key[len] == 0)
			return pp;
	return pp;
}

struct ps_stmt *ps_client_find(const struct ps_client *pc, const char *name)
{
	size_t len;
	struct ps_name *e;

	if (!pc->n)
		return NULL;
	len = key_len(name);
	e = *client_slot(pc, name, len, hash_bytes64(name, len));
	return e ? e->stmt : NULL;
}

/* Twice the buckets: chains stay short however many names a client keeps. */
static bool client_grow(struct ps_client *pc)
{
	uint32_t nb = pc->n_buckets ? pc->n_buckets * 2 : 16;
	struct ps_name **b = calloc(nb, sizeof(*b));

	if (!b)
		return false;
	for (uint32_t i = 0; i < pc->n_buckets; i++) {
		struct ps_name *e = pc->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(pc->buckets);
	pc->buckets = b;
	pc->n_buckets = nb;
	return true;
}

bool ps_client_set(struct ps_client *pc, const char *name, struct ps_stmt *st)
{
	size_t len = key_len(name);
	uint64_t h = hash_bytes64(name, len);
	struct ps_name **pp, *e;

	if (pc->n >= pc->n_buckets && !client_grow(pc))
		return false;
	pp = client_slot(pc, name, len, h);
	if (*pp) {
		ps_stmt_ref(st);
		ps_stmt_unref((*pp)->stmt);
		(*pp)->stmt = st;
		return true;
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return false;
	memcpy(e->key, name, len);
	e->key[len] = 0;
	e->hash = h;
	e->stmt = st;
	e->next = NULL;
	ps_stmt_ref(st);
	*pp = e;
	pc->n++;
	return true;
}

void ps_client_remove(struct ps_client *pc, const char *name)
{
	size_t len;
	struct ps_name **pp, *e;

	if (!pc->n)
		return;
	len = key_len(name);
	pp = client_slot(pc, name, len, hash_bytes64(name, len));
	e = *pp;
	if (!e)
		return;
	*pp = e->next;
	ps_stmt_unref(e->stmt);
	free(e);
	pc->n--;
}

void ps_client_clear(struct ps_client *pc)
{
	for (uint32_t i = 0; i < pc->n_buckets; i++) {
		struct ps_name *e = pc->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			ps_stmt_unref(e->stmt);
			free(e);
		}
	}
	free(pc->buckets);
	pc->buckets = NULL;
	pc->n = pc->n_buckets = 0;
}

/* ---- server caches ---- */

bool ps_server_has(struct ps_server *ps, const struct ps_stmt *st, uint64_t use_counter)
{
	for (int i = 0; i < ps->n; i++) {
		if (ps->items[i].stmt == st) {
			ps->items[i].last_use = use_counter;
			return true;
		}
	}
	return false;
}

bool ps_server_add(struct ps_server *ps, struct ps_stmt *st, uint64_t use_counter)
{
	if (ps->n == ps->cap) {
		int cap = ps->cap ? ps->cap * 2 : 16;
		struct ps_cached *items = realloc(ps->items, (size_t)cap * sizeof(*items));
		if (!items)
			return false;
		ps->items = items;
		ps->cap = cap;
	}
	ps->items[ps->n].stmt = st;
	ps->items[ps->n].last_use = use_counter;
	ps->n++;
	ps_stmt_ref(st);
	return true;
}

void ps_server_remove(struct ps_server *ps, const struct ps_stmt *st)
{
	for (int i = 0; i < ps->n; i++) {
		if (ps->items[i].stmt == st) {
			ps_stmt_unref(ps->items[i].stmt);
			ps->items[i] = ps->items[--ps->n];
			return;
		}
	}
}

struct ps_stmt *ps_server_evict(struct ps_server *ps)
{
	int oldest = 0;
	struct ps_stmt *st;

	if (!ps->n)
		return NULL;
	for (int i = 1; i < ps->n; i++)
		if (ps->items[i].last_use < ps->items[oldest].last_use)
			oldest = i;
	st = ps->items[oldest].stmt;
	ps->items[oldest] = ps->items[--ps->n];
	return st;
}

void ps_server_clear(struct ps_server *ps)
{
	for (int i = 0; i < ps->n; i++)
		ps_stmt_unref(ps->items[i].stmt);
	free(ps->items);
	ps->items = NULL;
	ps->n = ps->cap = 0;
}
