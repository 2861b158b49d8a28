/* Replies owed to the client: what becomes of each answer a server will send, in the order of the requests. */
#ifndef MB_REPLIES_H
#define MB_REPLIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ps_stmt;

/*
 * One entry per answer the core must treat specially (ParseComplete,
 * CloseComplete, an ErrorResponse, certain CommandCompletes) and one
 * REPLY_READY per ReadyForQuery. After an error the server skips to the next
 * Sync, so the entries up to the next REPLY_READY are dropped unanswered.
 */
enum reply_action {
	REPLY_FORWARD = 0,	/* the client's own Parse/Close: relay the answer */
	REPLY_DROP,		/* a Parse or Close the core added: swallow the answer */
	REPLY_AS_PARSE,		/* a Close sent for a Parse that was skipped: CloseComplete becomes ParseComplete */
	REPLY_READY,		/* Sync, Query or FunctionCall: one ReadyForQuery */
	REPLY_REJECT,		/* a request made to fail on purpose (a policy's reject): its ErrorResponse becomes
				 * the payload */
	/* CommandCompletes of a Query with a DEALLOCATE of a tracked name (an UNLISTEN no-op on the server): */
	REPLY_DEALLOCATE,	/* ours: its "UNLISTEN" becomes "DEALLOCATE" and client_name goes */
	REPLY_UNLISTEN,		/* the client's own UNLISTEN: relayed */
};

struct reply {
	uint8_t action;		/* enum reply_action */
	struct ps_stmt *added;	/* a Parse that put this statement into the server cache (undone on error) */
	struct ps_stmt *evicted; /* a Close that took it out of the cache (undone if the server skipped it) */
	char *client_name;	/* the client's Parse under this name (the name goes if it fails);
				 * REPLY_DEALLOCATE: the name it drops once it ran */
	void *payload;		/* REPLY_REJECT: the ErrorResponse to send instead (malloc'd) */
	uint32_t payload_len;
};

/* A ring of entries, oldest first. */
struct replies {
	struct reply *items;
	uint32_t head, n, cap;
};

bool replies_push(struct replies *q, enum reply_action action, struct ps_stmt *added)
	__attribute__((warn_unused_result));
/* The entry just pushed, to fill in its other fields. */
struct reply *replies_last(struct replies *q);
/* Queue a REPLY_REJECT entry; the queue takes over payload (also when it fails). */
bool replies_push_reject(struct replies *q, void *payload, uint32_t len) __attribute__((warn_unused_result));
/* The oldest entry, or NULL if none. */
static inline const struct reply *replies_head(const struct replies *q)
{
	return q->n ? &q->items[q->head] : NULL;
}
/* The oldest entry is of this kind. */
static inline bool replies_next_is(const struct replies *q, enum reply_action action)
{
	return q->n && q->items[q->head].action == action;
}
/* Pop the oldest entry into *out (the caller owns its client_name and payload); false if empty. */
bool replies_pop(struct replies *q, struct reply *out);
bool replies_peek(const struct replies *q, struct reply *out);
/* The entries at positions n-k..n-1 (the last k pushed), oldest first: the i-th of them. */
const struct reply *replies_recent(const struct replies *q, uint32_t k, uint32_t i);
/* Free what the queue holds (client names, payloads; statements are their owner's to release first). */
void replies_free(struct replies *q);

#endif
