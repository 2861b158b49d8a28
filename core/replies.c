/* Replies owed to the client: what becomes of each answer a server will send, in the order of the requests. */
#include "replies.h"

#include <stdlib.h>

bool replies_push(struct replies *q, enum reply_action action, struct ps_stmt *added)
{
	if (q->n == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 16;
		struct reply *items = malloc(cap * sizeof(*items));
		if (!items)
			return false;
		for (uint32_t i = 0; i < q->n; i++)
			items[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = items;
		q->head = 0;
		q->cap = cap;
	}
	q->items[(q->head + q->n) % q->cap] = (struct reply){ .action = (uint8_t)action, .added = added };
	q->n++;
	return true;
}

struct reply *replies_last(struct replies *q)
{
	return q->n ? &q->items[(q->head + q->n - 1) % q->cap] : NULL;
}

bool replies_push_reject(struct replies *q, void *payload, uint32_t len)
{
	struct reply *it;

	if (!replies_push(q, REPLY_REJECT, NULL)) {
		free(payload);
		return false;
	}
	it = replies_last(q);
	it->payload = payload;
	it->payload_len = len;
	return true;
}

bool replies_peek(const struct replies *q, struct reply *out)
{
	if (!q->n)
		return false;
	*out = q->items[q->head];
	return true;
}

bool replies_pop(struct replies *q, struct reply *out)
{
	if (!replies_peek(q, out))
		return false;
	q->head = (q->head + 1) % q->cap;
	q->n--;
	return true;
}

const struct reply *replies_recent(const struct replies *q, uint32_t k, uint32_t i)
{
	if (k > q->n || i >= k)
		return NULL;
	return &q->items[(q->head + q->n - k + i) % q->cap];
}

void replies_free(struct replies *q)
{
	struct reply it;

	while (replies_pop(q, &it)) {
		free(it.payload);
		free(it.client_name);
	}
	free(q->items);
	q->items = NULL;
	q->head = q->n = q->cap = 0;
}
