/*
 * Fuzz target: message framing through the real sbuf code, over socketpairs with small kernel buffers.
 * Input: a control byte (startup-phase packets or typed messages, pkt_buf size, split seed), then the
 * byte stream a peer sends, delivered in pieces of pseudo-random sizes. Each message is forwarded to a
 * second socket, dropped, or first gathered whole, as its first byte decides. Properties: every message
 * handed to the owner lies inside its buffer and has a valid length; what reaches the second socket is
 * exactly the forwarded messages, byte for byte, in order; malformed framing is reported, never skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "sbuf.h"

static struct event_base *base;

struct framing {
	const uint8_t *stream;	/* what the peer sends */
	size_t size;
	size_t msg_off;		/* offset in stream of the message at hand */
	uint8_t *expect;	/* the forwarded messages, concatenated */
	size_t expect_len;
	bool failed;		/* framing reported malformed, or the socket closed */
	bool startup;
};

static enum sbuf_action on_msg(struct sbuf *sb, const struct sbuf_msg *msg)
{
	struct framing *f = sb->owner;
	size_t min = f->startup ? 8 : 5;
	const uint8_t *at = f->stream + f->msg_off;

	if (msg->len < min || msg->avail > msg->len || msg->avail == 0)
		abort();
	if (f->msg_off + msg->avail > f->size || memcmp(msg->data, at, msg->avail) != 0)
		abort();	/* the owner sees the stream's bytes at the right place */
	if (msg->avail < msg->len && msg->len <= 2048 && (at[0] & 3) == 2)
		return SBUF_WAIT_FULL;
	/* the whole message is decided now: record it, then move past it */
	if (f->msg_off + msg->len <= f->size && (at[0] & 1)) {
		memcpy(f->expect + f->expect_len, at, msg->len);
		f->expect_len += msg->len;
		f->msg_off += msg->len;
		return SBUF_FORWARD;
	}
	if (f->msg_off + msg->len > f->size) {
		/* never completes: forwarded in part, so only the first avail bytes can be checked */
		f->msg_off = f->size;
		return SBUF_DROP;
	}
	f->msg_off += msg->len;
	return SBUF_DROP;
}

static void on_error(struct sbuf *sb, int err)
{
	struct framing *f = sb->owner;
	(void)err;
	f->failed = true;
	sbuf_close(sb);
}

static void on_connect(struct sbuf *sb, int err)
{
	(void)sb;
	(void)err;
}

static void on_peer_error(struct sbuf *sb, int err)
{
	(void)err;
	sbuf_close(sb);
}

static enum sbuf_action on_peer_msg(struct sbuf *sb, const struct sbuf_msg *msg)
{
	(void)sb;
	(void)msg;
	return SBUF_DROP;
}

static const struct sbuf_ops src_ops = { .on_msg = on_msg, .on_error = on_error, .on_connect = on_connect };
static const struct sbuf_ops dst_ops = { .on_msg = on_peer_msg, .on_error = on_peer_error,
					 .on_connect = on_connect };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_setup(0, true);
	base = event_base_new();
	sbuf_module_init(base, 64);
	return 0;
}

static void small_pair(int fds[2])
{
	int size = 4096;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
		abort();
	for (int i = 0; i < 2; i++) {
		setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
}

static size_t read_all(int fd, uint8_t *out, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap && (n = recv(fd, out + got, cap - got, 0)) > 0)
		got += (size_t)n;
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t bufsizes[] = { 1, 5, 8, 64, 128, 4096 };
	struct framing f = { 0 };
	struct sbuf src, dst;
	int in[2], out[2];
	uint32_t seed;
	size_t sent = 0, got = 0;
	uint8_t *received;

	if (size < 2 || size > 65536)
		return 0;
	f.startup = data[0] & 1;
	sbuf_module_set_bufsize(bufsizes[(data[0] >> 1) % 6]);
	seed = data[1] | 1u;
	f.stream = data + 2;
	f.size = size - 2;
	f.expect = malloc(f.size + 1);
	received = malloc(f.size + 1);
	small_pair(in);
	small_pair(out);
	sbuf_init(&src, &src_ops, &f);
	sbuf_init(&dst, &dst_ops, NULL);
	src.startup_mode = f.startup;
	if (!sbuf_accept(&src, in[0]) || !sbuf_accept(&dst, out[0]))
		abort();
	sbuf_set_peer(&src, &dst);
	/* pieces of 1..64 bytes; the reading end drains between them */
	for (int idle = 0; idle < 50 && !f.failed && (sent < f.size || src.io);) {
		size_t before_sent = sent, before_got = got;
		if (sent < f.size) {
			size_t piece;
			ssize_t n;
			seed = seed * 1103515245u + 12345u;
			piece = 1 + (seed >> 16) % 64;
			if (piece > f.size - sent)
				piece = f.size - sent;
			n = send(in[1], f.stream + sent, piece, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		got += read_all(out[1], received + got, f.size - got);
		idle = (sent == before_sent && got == before_got) ? idle + 1 : 0;
	}
	for (int i = 0; i < 10; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		got += read_all(out[1], received + got, f.size - got);
	}
	/* forwarded messages arrive whole, in order, and nothing else does; after a framing error what
	 * was still waiting to be relayed is dropped with the connection */
	if (got > f.expect_len || memcmp(received, f.expect, got) != 0)
		abort();
	if (!f.failed && got != f.expect_len)
		abort();
	sbuf_close(&src);
	sbuf_close(&dst);
	close(in[1]);
	close(out[1]);
	free(f.expect);
	free(received);
	return 0;
}
