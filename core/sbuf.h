/* Streaming socket buffer: reads protocol messages and relays them to a peer socket in place. */
#ifndef MB_SBUF_H
#define MB_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "proto.h"

/*
 * Flow control, one rule for every buffer: a socket's input is read and
 * decided only while what it already caused is on its way. It stops while
 *  - its relayed bytes wait for the peer's socket (blocked),
 *  - output generated for itself (replies the pooler writes: ReadyForQuery
 *    for a Sync, ParseComplete, 'N' for an SSLRequest, errors) or for its
 *    peer holds pkt_buf bytes or more that the kernel does not take (out_full,
 *    or blocked on the peer),
 *  - its owner paused it (waiting for a server, a tenant slot, a login step),
 *    or a forwarded message must reach the peer first (wait_forwarded).
 * Each stop ends where it drains (the write event of the full socket, any
 * other send that empties our output, or sbuf_resume), which goes on with the
 * input already buffered, also when the buffer is full and reading is off. So every buffer holds at
 * most pkt_buf bytes of input (more only for a message the owner asked to see
 * whole, up to max_whole), one message's worth of output past pkt_buf, and
 * what the kernel's socket buffers hold.
 *
 * One input buffer per socket, taken from a free list while data flows and
 * given back when everything received has been relayed or dropped.
 * Cursors: done <= parse <= recv. [done, parse) is decided but not yet sent
 * to the peer; [parse, recv) is not looked at yet.
 */
struct iobuf {
	uint32_t size;
	uint32_t done;
	uint32_t parse;
	uint32_t recv;
	struct iobuf *next_free;
	uint8_t data[];
};

/* What the owner decides for the message at the parse cursor. */
enum sbuf_action {
	SBUF_FORWARD,		/* relay the whole message to the peer (streamed if larger than the buffer) */
	SBUF_FORWARD_PAUSE,	/* relay it, stop, and call on_forwarded once it reached the peer's socket */
	SBUF_DROP,		/* the owner handled it (or ignores it): consume without relaying */
	SBUF_WAIT_FULL,		/* ask again once the whole message is in the buffer */
	SBUF_PAUSE,		/* stop here; the message stays until sbuf_resume() */
	SBUF_RETRY,		/* stop here; ask again once our relayed bytes have reached the peer */
	SBUF_CLOSED,		/* the owner closed this sbuf: stop touching it */
};

struct sbuf_msg {
	uint8_t type;		/* 0 for startup-phase packets (no type byte) */
	uint32_t len;		/* whole message: type byte + length field + body */
	const uint8_t *data;	/* first byte of the message */
	uint32_t avail;		/* bytes of it present in the buffer */
};

struct sbuf;

struct sbuf_ops {
	enum sbuf_action (*on_msg)(struct sbuf *sb, const struct sbuf_msg *msg);
	/* EOF (err 0), socket error, or malformed framing (EBADMSG). The owner closes. */
	void (*on_error)(struct sbuf *sb, int err);
	/* A non-blocking connect finished: err 0 or the socket error. */
	void (*on_connect)(struct sbuf *sb, int err);
	/* After SBUF_FORWARD_PAUSE: everything up to that message reached the peer's socket (NULL if never used). */
	void (*on_forwarded)(struct sbuf *sb);
	/* A handshake started with sbuf_start_transport ended: error is NULL when it succeeded. */
	void (*on_tls)(struct sbuf *sb, const char *error);
	/* With direct_tls set: the connection's first byte starts a TLS record (no SSLRequest came first). */
	void (*on_direct_tls)(struct sbuf *sb);
};

/*
 * How a socket moves bytes: plain system calls, or TLS (tls.c), chosen per socket. The conventions are
 * recv's and sendmsg's. A transport that keeps bytes of its own says so, so that the events stay armed:
 * input it read from the socket but not handed out yet is read without waiting for the socket, output it
 * took but did not write keeps the write event armed.
 */
struct sbuf_transport {
	/* bytes read, 0 at the end of the stream, -1 with errno (EAGAIN: wait for the read event) */
	ssize_t (*read)(struct sbuf *sb, void *buf, size_t len);
	/* bytes taken from iov, -1 with errno (EAGAIN: wait for the write event); iovcnt 0 only flushes */
	ssize_t (*write)(struct sbuf *sb, const struct iovec *iov, int iovcnt);
	bool (*input_waiting)(const struct sbuf *sb);	/* NULL: never */
	bool (*output_waiting)(const struct sbuf *sb);	/* NULL: never */
	/* go on with the handshake: 1 done, 0 waiting for the socket, -1 failed (*error says why) */
	int (*handshake)(struct sbuf *sb, const char **error);
	/* the socket closes: free the transport's state (after a last flush if it can) */
	void (*close)(struct sbuf *sb);
};

struct sbuf {
	int fd;
	const struct sbuf_transport *xport;
	void *xport_state;	/* the transport's per-socket state (an SSL for TLS) */
	bool handshaking;	/* the transport's handshake runs: no input is decided */
	bool direct_tls;	/* look at the first byte before reading: a TLS record calls on_direct_tls */
	bool answer_byte;	/* the next input is a one-byte answer (to an SSLRequest), not a message */
	bool startup_mode;	/* packets have no type byte (client startup) */
	bool paused;		/* owner stopped processing */
	bool blocked;		/* our relayed bytes wait for the peer's socket */
	bool connecting;
	bool wait_forwarded;	/* SBUF_FORWARD_PAUSE is pending */
	bool out_first;		/* queued output predates the blocked source's bytes */
	bool busy;		/* inside process(): a resume needs no wake-up */
	bool read_armed;
	bool write_armed;
	bool input_done;	/* the peer sent its last byte (EOF, or a Terminate): nothing to drain at close */
	bool out_full;		/* input stopped until our own queued output drains (flow control) */
	int write_error;	/* deferred socket error, reported from the write event */
	struct event ev_read;
	struct event ev_write;
	struct iobuf *io;
	struct pktbuf out;	/* messages we generated for this socket */
	size_t out_sent;
	struct sbuf *peer;	/* where SBUF_FORWARD sends */
	struct sbuf *blocked_src; /* a source whose relayed bytes wait for this socket */
	uint32_t remain;	/* bytes of the current message still to relay or drop */
	bool remain_drop;
	unsigned max_whole;	/* largest message SBUF_WAIT_FULL may gather */
	uint32_t wait_bytes;	/* set with SBUF_WAIT_FULL: gather only this many bytes of the message */
	uint32_t drop_first;	/* set with SBUF_FORWARD: drop this many leading bytes, relay the rest */
	const struct sbuf_ops *ops;
	void *owner;
};

void sbuf_module_init(struct event_base *base, uint32_t bufsize);
void sbuf_module_set_bufsize(uint32_t bufsize);
void sbuf_module_shutdown(void);

/* Flow-control events since start (moonbouncer_flow_control_*): input stopped until output drained. */
struct sbuf_counters {
	unsigned long long relay_blocked;	/* relayed bytes the peer's socket would not take */
	unsigned long long output_full;		/* our own output to a socket reached pkt_buf */
};
const struct sbuf_counters *sbuf_counters(void);

void sbuf_init(struct sbuf *sb, const struct sbuf_ops *ops, void *owner);
/* Start reading an accepted socket. */
bool sbuf_accept(struct sbuf *sb, int fd) __attribute__((warn_unused_result));
/* Wait for a non-blocking connect on fd to finish (on_connect), then read. */
bool sbuf_connect(struct sbuf *sb, int fd) __attribute__((warn_unused_result));
void sbuf_set_peer(struct sbuf *sb, struct sbuf *peer);
/* Go on with buffered input (possibly from inside a callback of another sbuf) and resume reading,
 * also when the buffer is full (reading is off then, and only buffered input can go on). */
void sbuf_resume(struct sbuf *sb);
/* Queue bytes we generated; they go out after any relayed bytes already waiting for this socket. */
bool sbuf_send(struct sbuf *sb, const void *data, size_t len);
bool sbuf_send_pkt(struct sbuf *sb, struct pktbuf *pkt);
/*
 * Send the bytes already decided for relay to the peer now, so that messages
 * we generate for the peer go after them. False if the peer's socket is full:
 * the caller returns SBUF_RETRY and is asked again once it drained.
 */
bool sbuf_flush_pending(struct sbuf *sb) __attribute__((warn_unused_result));
/*
 * Relay what sb has decided to its peer now, and tell whether the peer's
 * stream then ends between two messages: false when a relayed message is cut
 * short (its rest has not arrived, or the peer's socket does not take it now).
 * A message the pooler writes to the peer may follow only when true.
 */
bool sbuf_relay_complete(struct sbuf *sb);
/*
 * Switch the socket to another transport (TLS) and start its handshake; on_tls tells how it ended. Output
 * already queued (the answer to an SSLRequest) goes out first, over the old transport. False if it cannot.
 */
bool sbuf_start_transport(struct sbuf *sb, const struct sbuf_transport *xport, void *state)
	__attribute__((warn_unused_result));
/* The next input byte is delivered alone as a message of that type and length 1 (an SSLRequest's answer). */
void sbuf_expect_answer_byte(struct sbuf *sb);
/* Unprocessed input bytes (including those of the message at hand). */
uint32_t sbuf_input_pending(const struct sbuf *sb);
/* Cut the relay in both directions: bytes still waiting for the peer are dropped. */
void sbuf_detach(struct sbuf *sb);
/* Close the socket, drop events and buffers. Safe to call twice. */
void sbuf_close(struct sbuf *sb);

#endif
