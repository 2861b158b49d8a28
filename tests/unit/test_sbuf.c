/* Unit tests of sbuf's flow control over socketpairs with tiny buffers: full buffers, resumes, own output. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "sbuf.h"
#include "unit.h"

static struct event_base *base;

struct owner {
	int handled;		/* messages decided with SBUF_DROP */
	int pause_first;	/* pause at this many handled messages (-1: never) */
	size_t reply_len;	/* bytes sent back for every message (0: none) */
	int errors;
	size_t max_queued;	/* most output ever queued for the socket */
};

static enum sbuf_action on_msg(struct sbuf *sb, const struct sbuf_msg *msg)
{
	struct owner *o = sb->owner;
	(void)msg;

	if (o->pause_first == o->handled) {
		o->pause_first = -1;
		return SBUF_PAUSE;
	}
	if (o->reply_len) {
		uint8_t reply[256];
		memset(reply, 'r', sizeof(reply));
		sbuf_send(sb, reply, o->reply_len);
		if (sb->out.len - sb->out_sent > o->max_queued)
			o->max_queued = sb->out.len - sb->out_sent;
	}
	o->handled++;
	return SBUF_DROP;
}

static void on_error(struct sbuf *sb, int err)
{
	struct owner *o = sb->owner;
	(void)err;
	o->errors++;
	sbuf_close(sb);
}

static void on_connect(struct sbuf *sb, int err)
{
	(void)sb;
	(void)err;
}

static const struct sbuf_ops ops = { .on_msg = on_msg, .on_error = on_error, .on_connect = on_connect };

static void run_loop(void)
{
	for (int i = 0; i < 200; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* fds[0] for the sbuf, fds[1] for the test; both non-blocking, with small kernel buffers. */
static void small_pair(int fds[2])
{
	int size = 4096;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
		perror("socketpair");
		exit(2);
	}
	for (int i = 0; i < 2; i++) {
		setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
}

/* n Query messages of 16 bytes each, as many as the socket takes now; the count written. */
static int write_msgs(int fd, int n)
{
	uint8_t m[16] = { 'Q', 0, 0, 0, 15 };
	int done = 0;

	memset(m + 5, 'x', sizeof(m) - 6);
	m[15] = 0;
	while (done < n && send(fd, m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m))
		done++;
	return done;
}

static size_t drain(int fd)
{
	uint8_t buf[65536];
	size_t total = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		total += (size_t)n;
	return total;
}

/* A socket paused with its buffer full (reading off) goes on with what it buffered when resumed. */
static void test_resume_with_full_buffer(void)
{
	struct owner o = { .pause_first = 0 };
	struct sbuf sb;
	int fds[2], sent;

	sbuf_module_set_bufsize(64);
	small_pair(fds);
	sbuf_init(&sb, &ops, &o);
	UNIT_CHECK(sbuf_accept(&sb, fds[0]), "sbuf takes the socket");
	sent = write_msgs(fds[1], 20);	/* as many as the kernel takes */
	UNIT_CHECK(sent * 16 > 2 * 64, "more messages written than the 64-byte buffer holds, twice over");
	run_loop();
	UNIT_EQ_INT(o.handled, 0, "the owner paused at the first message");
	UNIT_EQ_INT(sbuf_input_pending(&sb), 64, "the buffer is full while paused");
	UNIT_CHECK(!sb.read_armed, "... and reading is off");
	sbuf_resume(&sb);
	run_loop();
	UNIT_EQ_INT(o.handled, sent, "after the resume every message is handled, the buffered ones first");
	UNIT_EQ_INT(o.errors, 0, "no error");
	sbuf_close(&sb);
	close(fds[1]);
}

/* Replies the owner writes itself stop the input while the peer does not read them. */
static void test_own_output_stops_input(void)
{
	struct owner o = { .pause_first = -1, .reply_len = 200 };
	struct sbuf sb;
	int fds[2], sent = 0, handled_while_full;
	size_t got;

	sbuf_module_set_bufsize(128);
	small_pair(fds);
	sbuf_init(&sb, &ops, &o);
	UNIT_CHECK(sbuf_accept(&sb, fds[0]), "sbuf takes the socket");
	/* far more replies (2000 x 200 bytes) than the kernel holds, and the test reads none of them */
	for (int round = 0; round < 50 && sent < 2000; round++) {
		sent += write_msgs(fds[1], 2000 - sent);
		run_loop();
	}
	handled_while_full = o.handled;
	UNIT_CHECK(handled_while_full < 2000, "input stops while the replies are not read");
	UNIT_CHECK(sb.out_full, "... the socket waits for its own output to drain");
	UNIT_CHECK(o.max_queued < 128 + 200 + 1, "queued replies stay below pkt_buf plus one message's replies");
	/* the peer reads: everything goes on */
	got = 0;
	for (int round = 0; round < 400 && (o.handled < 2000 || got < 2000u * 200); round++) {
		got += drain(fds[1]);
		sent += write_msgs(fds[1], 2000 - sent);
		run_loop();
	}
	got += drain(fds[1]);
	UNIT_EQ_INT(o.handled, 2000, "once the peer reads, every message is handled");
	UNIT_EQ_INT(got, 2000 * 200, "... and every reply arrives");
	UNIT_EQ_INT(o.errors, 0, "no error");
	sbuf_close(&sb);
	close(fds[1]);
}

/*
 * Input stopped by its own output goes on when that output drains through
 * another send than the write event's (here a reply from outside any handler,
 * as from a timer; in the pooler also the end of a handling).
 */
static void test_output_drained_elsewhere(void)
{
	struct owner o = { .pause_first = -1, .reply_len = 200 };
	struct sbuf sb;
	int fds[2], sent = 0, stopped_at;
	size_t got;

	sbuf_module_set_bufsize(128);
	small_pair(fds);
	sbuf_init(&sb, &ops, &o);
	UNIT_CHECK(sbuf_accept(&sb, fds[0]), "sbuf takes the socket");
	for (int round = 0; round < 50 && !sb.out_full; round++) {
		sent += write_msgs(fds[1], 2000 - sent);
		run_loop();
	}
	UNIT_CHECK(sb.out_full, "the replies nobody reads stop the input");
	stopped_at = o.handled;
	got = drain(fds[1]);
	UNIT_CHECK(sbuf_send(&sb, "x", 1), "a reply from outside any handler is queued");
	got += drain(fds[1]);
	UNIT_CHECK(sb.out_full == false, "... it sent everything, and the input is no longer stopped");
	for (int round = 0; round < 400 && o.handled < 2000; round++) {
		got += drain(fds[1]);
		sent += write_msgs(fds[1], 2000 - sent);
		run_loop();
	}
	got += drain(fds[1]);
	UNIT_CHECK(o.handled > stopped_at, "the input goes on");
	UNIT_EQ_INT(o.handled, 2000, "... every message is handled");
	UNIT_EQ_INT(got, 2000 * 200 + 1, "... and every reply arrives");
	UNIT_EQ_INT(o.errors, 0, "no error");
	sbuf_close(&sb);
	close(fds[1]);
}

static enum sbuf_action forward_msg(struct sbuf *sb, const struct sbuf_msg *msg)
{
	(void)sb;
	(void)msg;
	return SBUF_FORWARD;
}

static const struct sbuf_ops forward_ops = { .on_msg = forward_msg, .on_error = on_error, .on_connect = on_connect };

/* A message relayed in pieces leaves the peer's stream in the middle of it until its last byte is out. */
static void test_relay_complete(void)
{
	struct owner o = { .pause_first = -1 }, p = { .pause_first = -1 };
	struct sbuf src, dst;
	int in[2], out[2];
	uint8_t msg[1000] = { 'D', 0, 0, 3, 231 };	/* length 999: the whole 1000-byte message */

	sbuf_module_set_bufsize(128);
	small_pair(in);
	small_pair(out);
	sbuf_init(&src, &forward_ops, &o);
	sbuf_init(&dst, &ops, &p);
	UNIT_CHECK(sbuf_accept(&src, in[0]) && sbuf_accept(&dst, out[0]), "both sbufs take their sockets");
	sbuf_set_peer(&src, &dst);
	UNIT_CHECK(sbuf_relay_complete(&src), "nothing relayed yet: between messages");
	UNIT_EQ_INT(send(in[1], msg, 300, 0), 300, "the first 300 bytes of a 1000-byte message arrive");
	run_loop();
	UNIT_EQ_INT(drain(out[1]), 300, "... and are relayed at once");
	UNIT_CHECK(!sbuf_relay_complete(&src), "the peer is in the middle of the message");
	UNIT_EQ_INT(send(in[1], msg + 300, 700, 0), 700, "the rest arrives");
	run_loop();
	UNIT_EQ_INT(drain(out[1]), 700, "... and is relayed");
	UNIT_CHECK(sbuf_relay_complete(&src), "the message is whole at the peer: between messages again");
	UNIT_EQ_INT(o.errors + p.errors, 0, "no error");
	sbuf_close(&src);
	sbuf_close(&dst);
	close(in[1]);
	close(out[1]);
}

/* A buffer smaller than a message header still reads whole messages. */
static void test_tiny_buffer(void)
{
	struct owner o = { .pause_first = -1 };
	struct sbuf sb;
	int fds[2];

	sbuf_module_set_bufsize(1);
	small_pair(fds);
	sbuf_init(&sb, &ops, &o);
	UNIT_CHECK(sbuf_accept(&sb, fds[0]), "sbuf takes the socket");
	UNIT_EQ_INT(write_msgs(fds[1], 10), 10, "10 messages written");
	for (int i = 0; i < 20 && o.handled < 10; i++)
		run_loop();
	UNIT_EQ_INT(o.handled, 10, "pkt_buf 1: every message is handled");
	UNIT_EQ_INT(o.errors, 0, "no error");
	sbuf_close(&sb);
	close(fds[1]);
}

int main(void)
{
	base = event_base_new();
	sbuf_module_init(base, 4096);
	test_resume_with_full_buffer();
	test_own_output_stops_input();
	test_output_drained_elsewhere();
	test_relay_complete();
	test_tiny_buffer();
	sbuf_module_shutdown();
	event_base_free(base);
	return unit_done();
}
