/* PostgreSQL v3 wire protocol: zero-copy header/startup parsers and message builders. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTO_MAX_MSG_LEN 0x3fffffffu /* PostgreSQL caps any message just under 1 GB */
#define PKTBUF_MIN_CAP 256

static uint32_t read_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

int proto_parse_header(const uint8_t *buf, size_t avail, uint8_t *type, uint32_t *len)
{
	uint32_t l;

	if (avail < 5)
		return PROTO_PARTIAL;
	l = read_u32(buf + 1);
	if (l < 4 || l > PROTO_MAX_MSG_LEN)
		return PROTO_MALFORMED;
	*type = buf[0];
	*len = l;
	return 5;
}

/* name/value pairs of a v3 StartupMessage; body runs from offset 8 to len, the last byte must be NUL. */
static int parse_startup_params(const uint8_t *buf, uint32_t len, struct startup_packet *out)
{
	uint32_t pos = 8;

	for (;;) {
		const uint8_t *name, *value, *end;

		if (pos >= len)
			return PROTO_MALFORMED; /* no final NUL */
		if (buf[pos] == 0)		/* the terminator, or an empty name */
			return pos == len - 1 ? (int)len : PROTO_MALFORMED;
		name = buf + pos;
		end = memchr(name, 0, len - pos);
		if (end == NULL)
			return PROTO_MALFORMED;
		pos = (uint32_t)(end - buf) + 1;
		if (pos >= len)
			return PROTO_MALFORMED;
		value = buf + pos;
		end = memchr(value, 0, len - pos);
		if (end == NULL)
			return PROTO_MALFORMED;
		if (out->n_params >= PROTO_MAX_PARAMS)
			return PROTO_MALFORMED;
		out->params[out->n_params].name = (const char *)name;
		out->params[out->n_params].value = (const char *)value;
		out->n_params++;
		pos = (uint32_t)(end - buf) + 1;
	}
}

int proto_parse_startup(const uint8_t *buf, size_t avail, struct startup_packet *out)
{
	uint32_t len, code;

	if (avail < 4)
		return PROTO_PARTIAL;
	len = read_u32(buf);
	if (len < 8 || len > PROTO_MAX_STARTUP)
		return PROTO_MALFORMED;
	if (avail < 8)
		return PROTO_PARTIAL;
	code = read_u32(buf + 4);
	/* Reject a wrong length as soon as the code is known rather than waiting for the bytes. */
	switch (code) {
	case PROTO_SSL_CODE:
	case PROTO_GSSENC_CODE:
		if (len != 8)
			return PROTO_MALFORMED;
		break;
	case PROTO_CANCEL_CODE:
		if (len != 16)
			return PROTO_MALFORMED;
		break;
	default:
		if ((code >> 16) != 3) /* protocol 2.0 and unknown request codes */
			return PROTO_MALFORMED;
		break;
	}
	if (avail < len)
		return PROTO_PARTIAL;

	memset(out, 0, sizeof(*out));
	out->code = code;
	if (code == PROTO_SSL_CODE || code == PROTO_GSSENC_CODE)
		return (int)len;
	if (code == PROTO_CANCEL_CODE) {
		out->cancel_pid = read_u32(buf + 8);
		out->cancel_key = read_u32(buf + 12);
		return (int)len;
	}
	return parse_startup_params(buf, len, out);
}

void pkt_reader_init(struct pkt_reader *r, const uint8_t *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->bad = false;
}

/* Once a read has failed the reader stays bad, so a caller may check only at the end. */
static bool reader_has(struct pkt_reader *r, size_t n)
{
	if (r->bad || r->len - r->pos < n) {
		r->bad = true;
		return false;
	}
	return true;
}

uint8_t pkt_get_u8(struct pkt_reader *r)
{
	if (!reader_has(r, 1))
		return 0;
	return r->data[r->pos++];
}

uint16_t pkt_get_u16(struct pkt_reader *r)
{
	uint16_t v;

	if (!reader_has(r, 2))
		return 0;
	v = (uint16_t)((r->data[r->pos] << 8) | r->data[r->pos + 1]);
	r->pos += 2;
	return v;
}

uint32_t pkt_get_u32(struct pkt_reader *r)
{
	uint32_t v;

	if (!reader_has(r, 4))
		return 0;
	v = read_u32(r->data + r->pos);
	r->pos += 4;
	return v;
}

const char *pkt_get_string(struct pkt_reader *r)
{
	const char *s;
	const uint8_t *end;

	if (!reader_has(r, 1))
		return NULL;
	s = (const char *)r->data + r->pos;
	end = memchr(r->data + r->pos, 0, r->len - r->pos);
	if (end == NULL) {
		r->bad = true;
		return NULL;
	}
	r->pos = (size_t)(end - r->data) + 1;
	return s;
}

const uint8_t *pkt_get_bytes(struct pkt_reader *r, size_t n)
{
	const uint8_t *p;

	if (!reader_has(r, n))
		return NULL;
	p = r->data + r->pos;
	r->pos += n;
	return p;
}

const char *proto_error_field(const uint8_t *body, size_t len, char code)
{
	struct pkt_reader r;

	pkt_reader_init(&r, body, len);
	for (;;) {
		uint8_t c = pkt_get_u8(&r);
		const char *value;

		if (r.bad || c == 0)
			return NULL;
		value = pkt_get_string(&r);
		if (value == NULL)
			return NULL;
		if (c == (uint8_t)code)
			return value;
	}
}

const char *proto_string_at(const uint8_t *msg, uint32_t avail, uint32_t offset, uint32_t *len)
{
	const uint8_t *nul;

	if (offset >= avail)
		return NULL;
	nul = memchr(msg + offset, 0, avail - offset);
	if (!nul)
		return NULL;
	*len = (uint32_t)(nul - (msg + offset));
	return (const char *)msg + offset;
}

const char *proto_statement_name(const uint8_t *msg, uint32_t avail, uint32_t *len)
{
	uint32_t plen;

	if (avail < PROTO_HEADER_LEN)
		return NULL;
	switch (msg[0]) {
	case FE_PARSE:
		return proto_string_at(msg, avail, PROTO_HEADER_LEN, len);
	case FE_BIND:
		if (!proto_string_at(msg, avail, PROTO_HEADER_LEN, &plen))
			return NULL;
		return proto_string_at(msg, avail, PROTO_HEADER_LEN + plen + 1, len);
	case FE_DESCRIBE:
	case FE_CLOSE:
		if (avail <= PROTO_HEADER_LEN || msg[PROTO_HEADER_LEN] != PROTO_TARGET_STATEMENT)
			return NULL;
		return proto_string_at(msg, avail, PROTO_HEADER_LEN + 1, len);
	default:
		return NULL;
	}
}

bool proto_tag_starts(const uint8_t *msg, uint32_t avail, const char *prefix)
{
	size_t n = strlen(prefix);
	return avail >= PROTO_HEADER_LEN + n && memcmp(msg + PROTO_HEADER_LEN, prefix, n) == 0;
}

bool proto_tag_is(const uint8_t *msg, uint32_t len, const char *tag)
{
	size_t n = strlen(tag) + 1;
	return len == PROTO_HEADER_LEN + n && memcmp(msg + PROTO_HEADER_LEN, tag, n) == 0;
}

/* Output buffer. msg_start holds the offset of the length word of the message being built. */

void pktbuf_init(struct pktbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void pktbuf_free(struct pktbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void pktbuf_reset(struct pktbuf *b)
{
	b->len = 0;
	b->msg_start = 0;
	b->failed = false;
}

/* Make room for n more bytes; on failure mark the buffer failed and return false. */
static bool reserve(struct pktbuf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->failed)
		return false;
	if (b->cap - b->len >= n)
		return true;
	if (n > UINT32_MAX / 2 - b->len) {	/* lengths are 32-bit on the wire and here */
		b->failed = true;
		return false;
	}
	cap = b->cap ? b->cap : PKTBUF_MIN_CAP;
	while (cap - b->len < n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = (uint32_t)cap;
	return true;
}

void pkt_put_bytes(struct pktbuf *b, const void *p, size_t n)
{
	if (n == 0 || !reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += (uint32_t)n;
}

void pkt_put_u8(struct pktbuf *b, uint8_t v)
{
	pkt_put_bytes(b, &v, 1);
}

void pkt_put_u16(struct pktbuf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	pkt_put_bytes(b, x, 2);
}

void pkt_put_u32(struct pktbuf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	pkt_put_bytes(b, x, 4);
}

void pkt_put_string(struct pktbuf *b, const char *s)
{
	pkt_put_bytes(b, s, strlen(s) + 1);
}

void pkt_begin(struct pktbuf *b, uint8_t type)
{
	if (b->failed)
		return;
	if (type != 0)
		pkt_put_u8(b, type);
	b->msg_start = b->len;
	pkt_put_u32(b, 0);
}

void pkt_end(struct pktbuf *b)
{
	size_t n;
	uint8_t *p;

	if (b->failed)
		return;
	if (b->msg_start + 4 > b->len || b->len - b->msg_start > PROTO_MAX_MSG_LEN) {
		b->failed = true; /* no message open, or too long to frame */
		return;
	}
	n = b->len - b->msg_start;
	p = b->data + b->msg_start;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
}

/* printf straight into the buffer, with the terminating NUL. */
static void put_vprintf(struct pktbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!reserve(b, (size_t)n + 1))
		return;
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n + 1;
}

static void error_body(struct pktbuf *b, uint8_t type, const char *severity, const char *sqlstate,
		       const char *fmt, va_list ap)
{
	pkt_begin(b, type);
	pkt_put_u8(b, PROTO_FIELD_SEVERITY);
	pkt_put_string(b, severity);
	pkt_put_u8(b, PROTO_FIELD_SEVERITY_RAW);
	pkt_put_string(b, severity);
	pkt_put_u8(b, PROTO_FIELD_SQLSTATE);
	pkt_put_string(b, sqlstate);
	pkt_put_u8(b, PROTO_FIELD_MESSAGE);
	if (!b->failed)
		put_vprintf(b, fmt, ap);
	pkt_put_u8(b, 0);
	pkt_end(b);
}

void pkt_error_v(struct pktbuf *b, const char *severity, const char *sqlstate, const char *fmt, va_list ap)
{
	error_body(b, BE_ERROR, severity, sqlstate, fmt, ap);
}

void pkt_error(struct pktbuf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_body(b, BE_ERROR, severity, sqlstate, fmt, ap);
	va_end(ap);
}

void pkt_notice(struct pktbuf *b, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_body(b, BE_NOTICE, "NOTICE", sqlstate, fmt, ap);
	va_end(ap);
}

void pkt_auth_request(struct pktbuf *b, uint32_t code, const void *data, size_t len)
{
	pkt_begin(b, BE_AUTHENTICATION);
	pkt_put_u32(b, code);
	pkt_put_bytes(b, data, len);
	pkt_end(b);
}

void pkt_auth_sasl_mechanisms(struct pktbuf *b)
{
	pkt_begin(b, BE_AUTHENTICATION);
	pkt_put_u32(b, AUTH_REQ_SASL);
	pkt_put_string(b, "SCRAM-SHA-256");
	pkt_put_u8(b, 0); /* end of the mechanism list */
	pkt_end(b);
}

/* Written in one piece: a login sends a dozen of these, and each put would check the room again. */
void pkt_parameter_status(struct pktbuf *b, const char *name, const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1, n = 4 + nl + vl;
	uint8_t *p;

	if (n > PROTO_MAX_MSG_LEN) {
		b->failed = true;
		return;
	}
	if (!reserve(b, 1 + n))
		return;
	p = b->data + b->len;
	p[0] = BE_PARAMETER_STATUS;
	p[1] = (uint8_t)(n >> 24);
	p[2] = (uint8_t)(n >> 16);
	p[3] = (uint8_t)(n >> 8);
	p[4] = (uint8_t)n;
	memcpy(p + 5, name, nl);
	memcpy(p + 5 + nl, value, vl);
	b->len += (uint32_t)(1 + n);
}

void pkt_backend_key(struct pktbuf *b, uint32_t pid, uint32_t key)
{
	pkt_begin(b, BE_BACKEND_KEY);
	pkt_put_u32(b, pid);
	pkt_put_u32(b, key);
	pkt_end(b);
}

void pkt_ready_for_query(struct pktbuf *b, char status)
{
	pkt_begin(b, BE_READY_FOR_QUERY);
	pkt_put_u8(b, (uint8_t)status);
	pkt_end(b);
}

void pkt_command_complete(struct pktbuf *b, const char *tag)
{
	pkt_begin(b, BE_COMMAND_COMPLETE);
	pkt_put_string(b, tag);
	pkt_end(b);
}

void pkt_parse(struct pktbuf *b, const char *name, const void *rest, size_t len)
{
	pkt_begin(b, FE_PARSE);
	pkt_put_string(b, name);
	pkt_put_bytes(b, rest, len);
	pkt_end(b);
}

static void target_message(struct pktbuf *b, uint8_t type, uint8_t target, const char *name)
{
	pkt_begin(b, type);
	pkt_put_u8(b, target);
	pkt_put_string(b, name);
	pkt_end(b);
}

void pkt_describe(struct pktbuf *b, uint8_t target, const char *name)
{
	target_message(b, FE_DESCRIBE, target, name);
}

void pkt_close(struct pktbuf *b, uint8_t target, const char *name)
{
	target_message(b, FE_CLOSE, target, name);
}

void pkt_execute(struct pktbuf *b, const char *portal, uint32_t max_rows)
{
	pkt_begin(b, FE_EXECUTE);
	pkt_put_string(b, portal);
	pkt_put_u32(b, max_rows);
	pkt_end(b);
}

void pkt_extended_query(struct pktbuf *b, const char *sql, const char *param)
{
	size_t plen = strlen(param);

	pkt_begin(b, FE_PARSE);
	pkt_put_string(b, "");
	pkt_put_string(b, sql);
	pkt_put_u16(b, 0);	/* parameter types: inferred */
	pkt_end(b);
	pkt_begin(b, FE_BIND);
	pkt_put_string(b, "");
	pkt_put_string(b, "");
	pkt_put_u16(b, 0);	/* parameter formats: text */
	pkt_put_u16(b, 1);
	pkt_put_u32(b, (uint32_t)plen);
	pkt_put_bytes(b, param, plen);
	pkt_put_u16(b, 0);	/* result formats: text */
	pkt_end(b);
	pkt_execute(b, "", 0);
	pkt_begin(b, FE_SYNC);
	pkt_end(b);
}

void pkt_bind_head(struct pktbuf *b, uint32_t body_len, const char *portal, uint32_t plen, const char *stmt)
{
	pkt_put_u8(b, FE_BIND);
	pkt_put_u32(b, body_len);
	pkt_put_bytes(b, portal, plen + 1);
	pkt_put_string(b, stmt);
}

void proto_ready_for_query(uint8_t out[PROTO_READY_LEN], char status)
{
	out[0] = BE_READY_FOR_QUERY;
	out[1] = out[2] = out[3] = 0;
	out[4] = 5;
	out[5] = (uint8_t)status;
}

static void empty_message(uint8_t out[PROTO_EMPTY_LEN], uint8_t type)
{
	out[0] = type;
	out[1] = out[2] = out[3] = 0;
	out[4] = 4;
}

void proto_parse_complete(uint8_t out[PROTO_EMPTY_LEN])
{
	empty_message(out, BE_PARSE_COMPLETE);
}

void proto_close_complete(uint8_t out[PROTO_EMPTY_LEN])
{
	empty_message(out, BE_CLOSE_COMPLETE);
}

void pkt_query(struct pktbuf *b, const char *sql)
{
	pkt_begin(b, FE_QUERY);
	pkt_put_string(b, sql);
	pkt_end(b);
}

void pkt_terminate(struct pktbuf *b)
{
	pkt_begin(b, FE_TERMINATE);
	pkt_end(b);
}

void pkt_password(struct pktbuf *b, const char *password)
{
	pkt_begin(b, FE_PASSWORD);
	pkt_put_string(b, password);
	pkt_end(b);
}

void pkt_sasl_initial(struct pktbuf *b, const char *mechanism, const void *data, size_t len)
{
	pkt_begin(b, FE_PASSWORD);
	pkt_put_string(b, mechanism);
	if (data == NULL) {
		pkt_put_u32(b, UINT32_MAX); /* -1: no initial response */
	} else if (len > PROTO_MAX_MSG_LEN) {
		b->failed = true;
	} else {
		pkt_put_u32(b, (uint32_t)len);
		pkt_put_bytes(b, data, len);
	}
	pkt_end(b);
}

void pkt_sasl_response(struct pktbuf *b, const void *data, size_t len)
{
	pkt_begin(b, FE_PASSWORD);
	pkt_put_bytes(b, data, len);
	pkt_end(b);
}

void pkt_cancel_request(struct pktbuf *b, uint32_t pid, uint32_t key)
{
	pkt_begin(b, 0);
	pkt_put_u32(b, PROTO_CANCEL_CODE);
	pkt_put_u32(b, pid);
	pkt_put_u32(b, key);
	pkt_end(b);
}

void pkt_ssl_request(struct pktbuf *b)
{
	pkt_begin(b, 0);
	pkt_put_u32(b, PROTO_SSL_CODE);
	pkt_end(b);
}

void pkt_startup(struct pktbuf *b, const struct startup_param *params, int n)
{
	pkt_begin(b, 0);
	pkt_put_u32(b, PROTO_V3);
	for (int i = 0; i < n; i++) {
		pkt_put_string(b, params[i].name);
		pkt_put_string(b, params[i].value);
	}
	pkt_put_u8(b, 0);
	pkt_end(b);
}

/*
 * PostgreSQL puts the whole version (major 3 in the high 16 bits) in this
 * field and libpq reads it that way, so the minor is sent as 3.<minor>.
 */
void pkt_negotiate_protocol(struct pktbuf *b, uint32_t minor, const char *const *options, int n)
{
	pkt_begin(b, BE_NEGOTIATE_PROTOCOL);
	pkt_put_u32(b, PROTO_V3 | (minor & 0xffffu));
	pkt_put_u32(b, n > 0 ? (uint32_t)n : 0);
	for (int i = 0; i < n; i++)
		pkt_put_string(b, options[i]);
	pkt_end(b);
}
