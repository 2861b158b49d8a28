/* Streaming socket buffer: reads protocol messages and relays them to a peer socket in place. */
#include "sbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

#define FREE_LIST_MAX 4096	/* parked buffers beyond this are returned to malloc */
#define MAX_WHOLE_DEFAULT (1024u * 1024u)
#define LOOPS_PER_WAKEUP 64	/* messages handled per read before yielding to other sockets */

static struct event_base *g_base;
static uint32_t g_bufsize = 4096;
static struct sbuf_counters g_counters;

const struct sbuf_counters *sbuf_counters(void)
{
	return &g_counters;
}
static struct iobuf *g_free;
static struct sbuf *g_corked;	/* has output held back until its peer's handling ends (sbuf_send) */
static unsigned g_free_count;

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void process(struct sbuf *sb);

static ssize_t plain_read(struct sbuf *sb, void *buf, size_t len)
{
	return recv(sb->fd, buf, len, 0);
}

static ssize_t plain_write(struct sbuf *sb, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };

	return iovcnt ? sendmsg(sb->fd, &mh, MSG_NOSIGNAL) : 0;
}

static const struct sbuf_transport plain_transport = {
	.read = plain_read,
	.write = plain_write,
};

static bool output_waiting(const struct sbuf *sb)
{
	return sb->xport->output_waiting && sb->xport->output_waiting(sb);
}

static bool input_waiting(const struct sbuf *sb)
{
	return sb->xport->input_waiting && sb->xport->input_waiting(sb);
}

/*
 * The transport took everything but may still hold some of it (a TLS record the kernel did not take):
 * nobody else would arm the write event for it.
 */
static void update_events(struct sbuf *sb);

static void transport_owes(struct sbuf *sb)
{
	if (output_waiting(sb) && !sb->write_armed)
		update_events(sb);
}

/* One buffer through the transport. */
static ssize_t write_one(struct sbuf *sb, const void *data, size_t len)
{
	struct iovec iov = { (void *)data, len };

	return sb->xport->write(sb, &iov, 1);
}

void sbuf_module_init(struct event_base *base, uint32_t bufsize)
{
	g_base = base;
	sbuf_module_set_bufsize(bufsize);
}

void sbuf_module_set_bufsize(uint32_t bufsize)
{
	if (bufsize < 1)
		bufsize = 1;	/* the configuration refuses 0; a header that does not fit grows its buffer */
	if (bufsize == g_bufsize)
		return;
	log_info("buffers: pkt_buf %u", bufsize);
	g_bufsize = bufsize;
	/* parked buffers of the old size are no longer reusable */
	while (g_free) {
		struct iobuf *io = g_free;
		g_free = io->next_free;
		free(io);
	}
	g_free_count = 0;
}

void sbuf_module_shutdown(void)
{
	while (g_free) {
		struct iobuf *io = g_free;
		g_free = io->next_free;
		free(io);
	}
	g_free_count = 0;
}

static struct iobuf *iobuf_new(uint32_t size)
{
	struct iobuf *io;

	if (size == g_bufsize && g_free) {
		io = g_free;
		g_free = io->next_free;
		g_free_count--;
	} else {
		io = malloc(sizeof(*io) + size);
		if (!io)
			return NULL;
		io->size = size;
	}
	io->done = io->parse = io->recv = 0;
	io->next_free = NULL;
	return io;
}

static void iobuf_release(struct iobuf *io)
{
	if (io->size == g_bufsize && g_free_count < FREE_LIST_MAX) {
		io->next_free = g_free;
		g_free = io;
		g_free_count++;
	} else {
		free(io);
	}
}

void sbuf_init(struct sbuf *sb, const struct sbuf_ops *ops, void *owner)
{
	memset(sb, 0, sizeof(*sb));
	sb->fd = -1;
	sb->xport = &plain_transport;
	sb->ops = ops;
	sb->owner = owner;
	sb->max_whole = MAX_WHOLE_DEFAULT;
	pktbuf_init(&sb->out);
}

/* Nothing stops the decisions on this socket's input (see the flow-control rule in sbuf.h). */
static bool may_process(const struct sbuf *sb)
{
	return sb->fd >= 0 && !sb->paused && !sb->blocked && !sb->connecting && !sb->wait_forwarded &&
	       !sb->out_full && !sb->handshaking;
}

static void update_events(struct sbuf *sb)
{
	bool want_read, want_write;

	if (sb->fd < 0)
		return;
	/* armed also with a full buffer: the read event then handles what is buffered (on_read reads only
	 * when there is room), and a full buffer with nothing stopping it always makes progress */
	want_read = may_process(sb) || sb->handshaking;
	/* corked output is sent when the handling ends (uncork), not from a write event; output queued during
	 * a handshake waits for its end (drive_handshake wakes it), the handshake's own bytes do not */
	want_write = sb->connecting || sb->write_error || sb->blocked_src ||
		     (sb->out_sent < sb->out.len && g_corked != sb && !sb->handshaking) || output_waiting(sb);

	if (want_read != sb->read_armed) {
		if (want_read)
			event_add(&sb->ev_read, NULL);
		else
			event_del(&sb->ev_read);
		sb->read_armed = want_read;
	}
	if (want_write != sb->write_armed) {
		if (want_write)
			event_add(&sb->ev_write, NULL);
		else
			event_del(&sb->ev_write);
		sb->write_armed = want_write;
	}
}

static bool attach(struct sbuf *sb, int fd)
{
	sb->fd = fd;
	sb->input_done = false;
	if (event_assign(&sb->ev_read, g_base, fd, EV_READ | EV_PERSIST, on_read, sb) < 0 ||
	    event_assign(&sb->ev_write, g_base, fd, EV_WRITE | EV_PERSIST, on_write, sb) < 0) {
		sb->fd = -1;
		return false;
	}
	return true;
}

bool sbuf_accept(struct sbuf *sb, int fd)
{
	if (!attach(sb, fd))
		return false;
	update_events(sb);
	return true;
}

bool sbuf_connect(struct sbuf *sb, int fd)
{
	if (!attach(sb, fd))
		return false;
	sb->connecting = true;
	update_events(sb);
	return true;
}

void sbuf_set_peer(struct sbuf *sb, struct sbuf *peer)
{
	sb->peer = peer;
}

/*
 * Go on with buffered input from the read event, never from inside another socket's callback. The
 * event is armed first: libevent does not add an event to the poll set while it waits in the active
 * queue, so arming it after the activation would be lost and the socket never read again.
 */
static void wake_buffered(struct sbuf *sb)
{
	update_events(sb);
	if (sb->read_armed && !sb->handshaking &&
	    ((sb->io && sb->io->parse < sb->io->recv) || input_waiting(sb)))
		event_active(&sb->ev_read, EV_READ, 0);
}

void sbuf_resume(struct sbuf *sb)
{
	if (sb->fd < 0)
		return;
	sb->paused = false;
	if (sb->busy)
		return;	/* resumed from inside its own message handler: the loop goes on by itself */
	/* the read event's recv() comes first (when there is room), so a client that left while paused
	 * is closed before its request runs; with a full buffer it goes on with what is buffered */
	wake_buffered(sb);
}

uint32_t sbuf_input_pending(const struct sbuf *sb)
{
	return sb->io ? sb->io->recv - sb->io->parse : 0;
}

/* A write failed: report it from the write event, never from inside another socket's callback. */
static void defer_error(struct sbuf *sb, int err)
{
	if (!sb->write_error)
		sb->write_error = err ? err : EPIPE;
	if (!sb->write_armed) {
		event_add(&sb->ev_write, NULL);
		sb->write_armed = true;
	}
	event_active(&sb->ev_write, EV_WRITE, 0);
}

/*
 * Our own output is all out, whoever sent it (the write event, the end of a
 * handling, a relay to this socket, a reply from a timer): input stopped by
 * it goes on.
 */
static void output_drained(struct sbuf *sb)
{
	if (!sb->out_full)
		return;
	sb->out_full = false;
	wake_buffered(sb);
}

/* Send our own queued output. True when all of it is out. */
static bool flush_out(struct sbuf *sb)
{
	if (sb->handshaking)
		return false;	/* nothing goes through a transport before its handshake ends */
	while (sb->out_sent < sb->out.len) {
		ssize_t n = write_one(sb, sb->out.data + sb->out_sent, sb->out.len - sb->out_sent);
		if (n > 0) {
			sb->out_sent += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return false;
		} else {
			defer_error(sb, errno);
			sb->out_sent = sb->out.len;
		}
	}
	if (sb->out.len) {
		/* generated messages are rare on the hot path: an idle socket keeps no output buffer */
		pktbuf_free(&sb->out);
		sb->out_sent = 0;
	}
	transport_owes(sb);
	output_drained(sb);
	return true;
}

/* Relay [done, parse) of src to its peer. True when all of it is out (or dropped with the peer). */
static bool flush_relay(struct sbuf *src)
{
	struct iobuf *io = src->io;
	struct sbuf *dst = src->peer;

	if (!io || io->done == io->parse)
		return true;
	if (!dst || dst->fd < 0 || dst->write_error) {
		io->done = io->parse;	/* nobody to deliver to */
		return true;
	}
	if (dst->out_sent < dst->out.len) {
		/* generated bytes first, then the relayed ones, in one system call */
		struct iovec iov[2] = {
			{ dst->out.data + dst->out_sent, dst->out.len - dst->out_sent },
			{ io->data + io->done, io->parse - io->done },
		};
		ssize_t n = dst->xport->write(dst, iov, 2);
		if (n > 0) {
			size_t first = n < (ssize_t)iov[0].iov_len ? (size_t)n : iov[0].iov_len;
			dst->out_sent += first;
			io->done += (uint32_t)((size_t)n - first);
		}
		/* what is left (or the error) is handled by the plain loops */
		if (!flush_out(dst)) {
			dst->out_first = true;
			goto blocked;
		}
	}
	while (io->done < io->parse) {
		ssize_t n = write_one(dst, io->data + io->done, io->parse - io->done);
		if (n > 0) {
			io->done += (uint32_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			goto blocked;
		} else {
			defer_error(dst, errno);
			io->done = io->parse;
		}
	}
	transport_owes(dst);
	return true;
blocked:
	g_counters.relay_blocked++;
	dst->blocked_src = src;
	src->blocked = true;
	update_events(dst);
	update_events(src);
	return false;
}

bool sbuf_flush_pending(struct sbuf *sb)
{
	return flush_relay(sb);
}

bool sbuf_relay_complete(struct sbuf *sb)
{
	if (!flush_relay(sb))
		return false;
	/* a message being streamed through (not one being dropped) has only part of it out */
	return sb->remain == 0 || sb->remain_drop;
}

static size_t out_queued(const struct sbuf *sb)
{
	return sb->out.len - sb->out_sent;
}

/*
 * Before the next message is decided: output generated for this socket or
 * for its peer below pkt_buf, or taken by the kernel now. Otherwise the input
 * stops (out_full, or blocked on the peer) until that output drains.
 */
static bool output_room(struct sbuf *sb)
{
	struct sbuf *dst = sb->peer;

	if (out_queued(sb) >= g_bufsize) {
		/* relayed bytes waiting for this socket go first: then it cannot send its own yet */
		if (sb->blocked_src || !flush_out(sb)) {
			g_counters.output_full++;
			sb->out_full = true;
			return false;
		}
	}
	if (dst && dst->fd >= 0 && !dst->write_error && out_queued(dst) >= g_bufsize) {
		/* the peer's generated bytes precede our relayed ones: both go, in that order */
		if (!flush_relay(sb))
			return false;
		if (!dst->blocked_src && !flush_out(dst)) {
			g_counters.output_full++;
			dst->blocked_src = sb;
			dst->out_first = true;
			sb->blocked = true;
			update_events(dst);
			return false;
		}
	}
	return true;
}

bool sbuf_send(struct sbuf *sb, const void *data, size_t len)
{
	if (sb->fd < 0)
		return false;
	pkt_put_bytes(&sb->out, data, len);
	if (sb->out.failed) {
		log_error("out of memory queueing %zu bytes", len);
		pktbuf_free(&sb->out);
		sb->out_sent = 0;
		defer_error(sb, ENOMEM);
		return false;
	}
	if (!sb->blocked_src) {
		if ((!g_corked || g_corked == sb) &&
		    (sb->busy || (sb->peer && sb->peer->busy && sb->peer->peer == sb))) {
			/*
			 * Written while its own messages or its peer's are being handled: the bytes go out
			 * with the ones relayed next (flush_relay), or when that handling ends (uncork), in
			 * one call. A login's AuthenticationOk and welcome leave in one piece this way.
			 */
			g_corked = sb;
			return true;
		}
		flush_out(sb);
	}
	update_events(sb);
	return true;
}

/* Output held back by sbuf_send goes now, at the latest when the peer's handling ends. */
static void uncork(void)
{
	struct sbuf *sb = g_corked;

	if (!sb)
		return;
	g_corked = NULL;
	if (sb->fd < 0)
		return;
	if (!sb->blocked_src)
		flush_out(sb);
	update_events(sb);
}

bool sbuf_send_pkt(struct sbuf *sb, struct pktbuf *pkt)
{
	if (pkt->failed)
		return false;
	return sbuf_send(sb, pkt->data, pkt->len);
}

/* Make room at the end of the buffer by moving unsent bytes to the front. */
static void compact(struct iobuf *io)
{
	if (io->done == 0)
		return;
	memmove(io->data, io->data + io->done, io->recv - io->done);
	io->parse -= io->done;
	io->recv -= io->done;
	io->done = 0;
}

/* Ensure the buffer can hold need bytes starting at the parse cursor. */
static bool reserve_whole(struct sbuf *sb, uint32_t need)
{
	struct iobuf *io = sb->io, *big;
	uint32_t used;

	if (io->parse + need <= io->size)
		return true;
	if (io->parse - io->done + need <= io->size) {
		compact(io);
		return true;
	}
	if (need > sb->max_whole)
		return false;
	used = io->recv - io->done;
	big = iobuf_new(io->parse - io->done + need);
	if (!big)
		return false;
	memcpy(big->data, io->data + io->done, used);
	big->parse = io->parse - io->done;
	big->recv = used;
	iobuf_release(io);
	sb->io = big;
	return true;
}

static void fail(struct sbuf *sb, int err)
{
	sb->ops->on_error(sb, err);
}

/* A message header must fit behind the parse cursor, however small pkt_buf is. */
static bool header_room(struct sbuf *sb, uint32_t need)
{
	if (reserve_whole(sb, need))
		return true;
	fail(sb, ENOMEM);
	return false;
}

static void release_if_empty(struct sbuf *sb)
{
	if (sb->io && sb->io->done == sb->io->recv && sb->remain == 0) {
		iobuf_release(sb->io);
		sb->io = NULL;
	}
}

/* Decide messages at the parse cursor until input runs out, the owner pauses, or the peer blocks. */
static void process_messages(struct sbuf *sb);

static void process(struct sbuf *sb)
{
	process_messages(sb);
	uncork();
	/*
	 * Input the transport holds (decrypted TLS records the buffer had no room for) makes no read event of
	 * the socket: come back for it, whether this ran from the read event or from a peer that drained.
	 */
	if (sb->fd >= 0 && sb->read_armed && input_waiting(sb))
		event_active(&sb->ev_read, EV_READ, 0);
}

static void process_messages(struct sbuf *sb)
{
	unsigned loops = 0;

	while (sb->fd >= 0 && !sb->paused && !sb->blocked && !sb->wait_forwarded && sb->io) {
		struct iobuf *io = sb->io;
		uint32_t avail = io->recv - io->parse;
		struct sbuf_msg msg;
		enum sbuf_action act;
		uint32_t total;

		if (sb->remain) {
			uint32_t n;
			if (!avail)
				break;
			n = avail < sb->remain ? avail : sb->remain;
			if (sb->remain_drop) {
				if (!flush_relay(sb))
					return;
				io->parse += n;
				io->done = io->parse;
			} else {
				io->parse += n;
			}
			sb->remain -= n;
			continue;
		}
		if (sb->handshaking)
			break;	/* what follows is read through the new transport */
		if (!output_room(sb))
			break;
		if (sb->answer_byte) {
			if (!avail)
				break;
			sb->answer_byte = false;
			msg.type = io->data[io->parse];
			total = 1;
		} else if (sb->startup_mode) {
			const uint8_t *p = io->data + io->parse;
			if (avail < 4) {
				if (!header_room(sb, 4))
					return;
				break;
			}
			total = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
			if (total < 8 || total > PROTO_MAX_STARTUP) {
				fail(sb, EBADMSG);
				return;
			}
			msg.type = 0;
		} else {
			uint8_t type;
			uint32_t len;
			int r = proto_parse_header(io->data + io->parse, avail, &type, &len);
			if (r == PROTO_PARTIAL) {
				if (!header_room(sb, 5))
					return;
				break;
			}
			if (r < 0) {
				fail(sb, EBADMSG);
				return;
			}
			msg.type = type;
			total = len + 1;
		}
		if (++loops > LOOPS_PER_WAKEUP) {
			/* let other sockets run; come back through the read event */
			wake_buffered(sb);
			break;
		}
		msg.len = total;
		msg.data = io->data + io->parse;
		msg.avail = avail < total ? avail : total;
		sb->busy = true;
		act = sb->ops->on_msg(sb, &msg);
		sb->busy = false;
		if (act == SBUF_CLOSED || sb->fd < 0)
			return;
		io = sb->io;	/* the callback may not swap it, but keep the cursor honest */
		switch (act) {
		case SBUF_FORWARD:
		case SBUF_FORWARD_PAUSE:
			if (sb->drop_first) {
				/* the owner sent its own version of the message head; the rest goes as it is */
				uint32_t n = sb->drop_first;
				sb->drop_first = 0;
				if (n > avail || n > total || !flush_relay(sb)) {
					fail(sb, EBADMSG);
					return;
				}
				io->parse += n;
				io->done = io->parse;
				avail -= n;
				total -= n;
			}
			if (avail >= total) {
				io->parse += total;
			} else {
				io->parse = io->recv;
				sb->remain = total - avail;
				sb->remain_drop = false;
			}
			if (act == SBUF_FORWARD_PAUSE)
				sb->wait_forwarded = true;
			break;
		case SBUF_DROP:
			sb->remain = total;
			sb->remain_drop = true;
			break;
		case SBUF_WAIT_FULL:
			if (avail >= total) {
				log_error("message handler asked for a whole message it already had");
				fail(sb, EBADMSG);
				return;
			}
			if (sb->wait_bytes && sb->wait_bytes < total) {
				uint32_t want = sb->wait_bytes;
				sb->wait_bytes = 0;
				if (avail >= want) {
					log_error("message handler waited for bytes it already had");
					fail(sb, EBADMSG);
					return;
				}
				total = want;
			}
			sb->wait_bytes = 0;
			if (!reserve_whole(sb, total)) {
				fail(sb, EMSGSIZE);
				return;
			}
			goto read_more;
		case SBUF_PAUSE:
			sb->paused = true;
			break;
		case SBUF_RETRY:
			if (!sb->blocked) {
				log_error("message handler asked to retry with nothing pending");
				fail(sb, EBADMSG);
				return;
			}
			return;
		case SBUF_CLOSED:
			return;
		}
	}
read_more:
	if (sb->fd < 0)
		return;
	if (!flush_relay(sb))
		return;
	if (sb->wait_forwarded && !sb->blocked) {
		sb->wait_forwarded = false;
		release_if_empty(sb);
		update_events(sb);
		if (sb->ops->on_forwarded)
			sb->ops->on_forwarded(sb);
		/* the owner may have closed it; memory stays valid until the end of this loop turn */
		if (sb->fd >= 0)
			wake_buffered(sb);
		return;
	}
	release_if_empty(sb);
	update_events(sb);
}

/* One step of the transport's handshake, from either event; the owner hears how it ended. */
static void drive_handshake(struct sbuf *sb)
{
	const char *error = NULL;
	int r = sb->xport->handshake(sb, &error);

	if (r == 0) {
		update_events(sb);
		return;
	}
	sb->handshaking = false;
	update_events(sb);
	if (r < 0) {
		sb->ops->on_tls(sb, error ? error : "handshake failed");
		return;
	}
	sb->ops->on_tls(sb, NULL);
	if (sb->fd >= 0)
		wake_buffered(sb);
}

bool sbuf_start_transport(struct sbuf *sb, const struct sbuf_transport *xport, void *state)
{
	if (sb->fd < 0)
		return false;
	if (g_corked == sb)
		g_corked = NULL;
	/* the answer that announced the switch goes out over the old transport, before any handshake byte */
	if (sb->blocked_src || !flush_out(sb))
		return false;
	sb->xport = xport;
	sb->xport_state = state;
	sb->handshaking = true;
	update_events(sb);
	/* the first step runs from the loop, never from inside the owner's message handler */
	event_active(&sb->ev_write, EV_WRITE, 0);
	return true;
}

void sbuf_expect_answer_byte(struct sbuf *sb)
{
	sb->answer_byte = true;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct sbuf *sb = arg;
	struct iobuf *io;
	ssize_t n;
	(void)what;
	(void)fd;

	if (sb->handshaking) {
		drive_handshake(sb);
		return;
	}
	if (sb->direct_tls) {
		/* PostgreSQL 17's direct TLS: a startup length never begins with 0x16, a TLS handshake record does */
		uint8_t first;
		ssize_t got = recv(sb->fd, &first, 1, MSG_PEEK);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		sb->direct_tls = false;
		if (got == 1 && first == 0x16 && sb->ops->on_direct_tls) {
			sb->ops->on_direct_tls(sb);	/* the handshake reads it; EOF and errors are the read's below */
			return;
		}
	}
	if (!sb->io) {
		sb->io = iobuf_new(g_bufsize);
		if (!sb->io) {
			fail(sb, ENOMEM);
			return;
		}
	}
	io = sb->io;
	if (io->done == io->recv) {
		io->done = io->parse = io->recv = 0;
	} else if (io->size - io->recv < io->size / 4) {
		compact(io);
	}
	if (io->recv < io->size) {
		n = sb->xport->read(sb, io->data + io->recv, io->size - io->recv);
		if (n == 0) {
			sb->input_done = true;
			fail(sb, 0);
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				fail(sb, errno);
				return;
			}
			if (io->parse == io->recv) {
				release_if_empty(sb);
				update_events(sb);	/* a transport may have output of its own to write */
				return;
			}
		} else {
			io->recv += (uint32_t)n;
		}
	}
	process(sb);
	if (sb->fd < 0)
		return;
	transport_owes(sb);	/* reading may have made the transport write (an alert, a key update) */
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct sbuf *sb = arg;
	struct sbuf *src;
	(void)what;

	if (sb->write_error) {
		fail(sb, sb->write_error);
		return;
	}
	if (sb->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == EINPROGRESS || err == EAGAIN)
			return;
		sb->connecting = false;
		update_events(sb);
		sb->ops->on_connect(sb, err);
		return;
	}
	if (output_waiting(sb)) {
		/* the transport's own bytes (a TLS record, a handshake message) go before anything else */
		if (sb->xport->write(sb, NULL, 0) < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			fail(sb, errno);
			return;
		}
		if (output_waiting(sb)) {
			update_events(sb);
			return;
		}
	}
	if (sb->handshaking) {
		drive_handshake(sb);
		return;
	}
	if ((sb->out_first || !sb->blocked_src) && !flush_out(sb)) {
		update_events(sb);
		return;
	}
	sb->out_first = false;
	src = sb->blocked_src;
	if (src) {
		if (!flush_relay(src))
			return;
		sb->blocked_src = NULL;
		src->blocked = false;
		flush_out(sb);
		wake_buffered(sb);
		/* the source goes on from where it stopped; this sbuf must not be touched after */
		process(src);
		return;
	}
	wake_buffered(sb);
}

void sbuf_detach(struct sbuf *sb)
{
	if (sb->blocked_src) {
		struct sbuf *src = sb->blocked_src;
		sb->blocked_src = NULL;
		src->blocked = false;
		if (src->io)
			src->io->done = src->io->parse;
	}
	if (sb->peer) {
		if (sb->peer->peer == sb)
			sb->peer->peer = NULL;
		if (sb->peer->blocked_src == sb)
			sb->peer->blocked_src = NULL;
		sb->peer = NULL;
	}
	if (sb->blocked) {
		sb->blocked = false;
		if (sb->io)
			sb->io->done = sb->io->parse;
	}
	sb->wait_forwarded = false;
	update_events(sb);
}

void sbuf_close(struct sbuf *sb)
{
	if (g_corked == sb) {
		g_corked = NULL;
		if (sb->fd >= 0 && !sb->blocked_src)
			flush_out(sb);	/* a last message (an ErrorResponse) goes before the close */
	}
	if (sb->fd >= 0) {
		char drain[4096];
		event_del(&sb->ev_read);
		event_del(&sb->ev_write);
		/* unread input would make close() send a reset, which can destroy our last message (an
		 * ErrorResponse) before the peer reads it: read what is there first, unless the peer has
		 * said it sends no more */
		for (int i = 0; !sb->input_done && i < 16 && recv(sb->fd, drain, sizeof(drain), MSG_DONTWAIT) > 0; i++)
			;
		if (sb->xport->close)
			sb->xport->close(sb);
		close(sb->fd);
		sb->fd = -1;
	}
	sb->xport = &plain_transport;
	sb->xport_state = NULL;
	sb->handshaking = false;
	sb->answer_byte = false;
	sb->read_armed = sb->write_armed = false;
	sbuf_detach(sb);
	if (sb->io) {
		iobuf_release(sb->io);
		sb->io = NULL;
	}
	pktbuf_free(&sb->out);
	sb->out_sent = 0;
	sb->out_full = false;
	sb->remain = 0;
}
