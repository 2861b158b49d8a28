/* Unit tests for core/replies.c: the replies owed to a client, in order, across growth and wrap-around. */
#include "unit.h"

#include "replies.h"

static void must_push(struct replies *q, enum reply_action action)
{
	if (!replies_push(q, action, NULL)) {
		printf("# replies_push failed: out of memory\n");
		abort();
	}
}

static void test_order(void)
{
	struct replies q = { 0 };
	struct reply r;
	char *payload = malloc(3);

	UNIT_CHECK(replies_head(&q) == NULL && !replies_pop(&q, &r), "an empty queue owes nothing");
	must_push(&q, REPLY_FORWARD);
	must_push(&q, REPLY_DROP);
	memcpy(payload, "err", 3);
	UNIT_CHECK(replies_push_reject(&q, payload, 3), "a reject is queued with its error");
	must_push(&q, REPLY_READY);
	UNIT_CHECK(replies_next_is(&q, REPLY_FORWARD) && !replies_next_is(&q, REPLY_READY), "the oldest comes first");
	UNIT_CHECK(replies_pop(&q, &r) && r.action == REPLY_FORWARD, "pop: forward");
	UNIT_CHECK(replies_pop(&q, &r) && r.action == REPLY_DROP, "pop: drop");
	UNIT_CHECK(replies_next_is(&q, REPLY_REJECT), "then the reject");
	UNIT_CHECK(replies_head(&q)->payload_len == 3 && memcmp(replies_head(&q)->payload, "err", 3) == 0,
		   "the reject carries the error to send");
	UNIT_CHECK(replies_pop(&q, &r) && r.action == REPLY_REJECT && r.payload == payload, "pop: reject");
	free(r.payload);	/* popped: the caller's */
	UNIT_CHECK(replies_peek(&q, &r) && r.action == REPLY_READY && q.n == 1, "peek leaves the entry");
	UNIT_CHECK(replies_pop(&q, &r) && r.action == REPLY_READY && q.n == 0, "pop: the ReadyForQuery mark");
	replies_free(&q);
}

/* Many more entries than the first allocation, pushed and popped out of step: the order survives growth. */
static void test_growth_and_wrap(void)
{
	struct replies q = { 0 };
	struct reply r;
	uint32_t pushed = 0, popped = 0;
	bool in_order = true;

	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 7; i++, pushed++) {
			must_push(&q, (enum reply_action)(pushed % 7));
			replies_last(&q)->payload_len = pushed;
		}
		for (int i = 0; i < 5; i++, popped++)
			in_order = in_order && replies_pop(&q, &r) && r.payload_len == popped &&
				   r.action == popped % 7;
	}
	UNIT_CHECK(in_order, "entries come out in the order they went in across growth and wrap-around");
	UNIT_EQ_INT(q.n, pushed - popped, "what was not popped is still owed");
	UNIT_CHECK(replies_recent(&q, 3, 0)->payload_len == pushed - 3 && replies_recent(&q, 3, 2)->payload_len == pushed - 1,
		   "replies_recent: the last entries pushed, oldest first");
	UNIT_CHECK(replies_recent(&q, q.n + 1, 0) == NULL, "replies_recent: no more than the queue holds");
	replies_last(&q)->client_name = strdup("s1");	/* freed with the queue */
	replies_free(&q);
	UNIT_CHECK(q.n == 0 && q.items == NULL && replies_head(&q) == NULL, "freed: empty");
}

int main(void)
{
	test_order();
	test_growth_and_wrap();
	return unit_done();
}
