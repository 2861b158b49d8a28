/* Per-tenant limits set by policies: clients, concurrent server-holding transactions, transaction rate. */
#ifndef MB_TENANT_H
#define MB_TENANT_H

#include <stdbool.h>

#include "list.h"

struct client;

struct tenant {
	struct list head;		/* in the tenant table */
	char *key;
	int n_clients;
	int n_active;			/* clients holding a server for a transaction (a session in session mode) */
	struct list waiting;		/* clients waiting for an active slot or a token, FIFO */
	void (*admit)(struct client *c);	/* a waiter's turn has come (set by whoever made it wait) */
	double tokens;			/* rate: token bucket, burst of one second's worth */
	double refilled_at;
	unsigned limits_generation;	/* policy generation the cached limits belong to */
	int max_clients;		/* -1: unlimited */
	int max_active;			/* -1: unlimited */
	double rate;			/* 0: unlimited */
	/* for SHOW TENANTS */
	bool rate_refused;		/* the last tenant_try_begin failed for want of a token (else max_active) */
	unsigned long long rejections;	/* clients refused at max_clients */
	unsigned long long active_waits;	/* transactions that waited for a max_active slot */
	unsigned long long rate_waits;	/* transactions that waited for a rate token */
};

/* Every tenant (SHOW TENANTS). */
struct list *tenant_list(void);

/* Find or create a tenant; counters live in C and survive policy reloads. */
struct tenant *tenant_get(const char *key);
/* Room for one more client under max_clients? Counts it if so. */
bool tenant_add_client(struct tenant *t);
void tenant_remove_client(struct tenant *t);
/* Start a transaction: true if within max_active and rate (counted), false if the client must wait. */
bool tenant_try_begin(struct tenant *t);
/* The transaction (or session) ended: free the slot and let the next waiter go. */
void tenant_end(struct tenant *t);
/* Refill tokens and wake waiters that may now start; query_wait_timeout for tenant waiters. */
void tenant_janitor(void);
void tenant_free_all(void);

#endif
