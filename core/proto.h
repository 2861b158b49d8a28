/* PostgreSQL v3 wire protocol: header and startup parsers, message builders. */
#ifndef MB_PROTO_H
#define MB_PROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_V3 196608u		/* 3.0 */
#define PROTO_CANCEL_CODE 80877102u
#define PROTO_SSL_CODE 80877103u
#define PROTO_GSSENC_CODE 80877104u
#define PROTO_MAX_STARTUP 10000u	/* as PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define PROTO_MAX_PARAMS 64

/* Message types a client sends (frontend). */
enum fe_type {
	FE_BIND = 'B',
	FE_CLOSE = 'C',
	FE_DESCRIBE = 'D',
	FE_EXECUTE = 'E',
	FE_FUNCTION_CALL = 'F',
	FE_FLUSH = 'H',
	FE_PARSE = 'P',
	FE_QUERY = 'Q',
	FE_SYNC = 'S',
	FE_TERMINATE = 'X',
	FE_PASSWORD = 'p',	/* also SASLInitialResponse and SASLResponse */
};

/* Message types a server sends (backend). */
enum be_type {
	BE_PARSE_COMPLETE = '1',
	BE_BIND_COMPLETE = '2',
	BE_CLOSE_COMPLETE = '3',
	BE_NOTIFICATION = 'A',
	BE_COMMAND_COMPLETE = 'C',
	BE_DATA_ROW = 'D',
	BE_ERROR = 'E',
	BE_BACKEND_KEY = 'K',
	BE_NOTICE = 'N',
	BE_AUTHENTICATION = 'R',
	BE_PARAMETER_STATUS = 'S',
	BE_ROW_DESCRIPTION = 'T',
	BE_READY_FOR_QUERY = 'Z',
	BE_NEGOTIATE_PROTOCOL = 'v',
};

/* What a Describe or Close names. */
enum {
	PROTO_TARGET_STATEMENT = 'S',
	PROTO_TARGET_PORTAL = 'P',
};

/* Transaction status in a ReadyForQuery. */
enum {
	PROTO_TXN_IDLE = 'I',
	PROTO_TXN_BLOCK = 'T',
	PROTO_TXN_FAILED = 'E',
};

/* Fields of an ErrorResponse or NoticeResponse. */
enum {
	PROTO_FIELD_SEVERITY = 'S',
	PROTO_FIELD_SEVERITY_RAW = 'V',	/* not localized */
	PROTO_FIELD_SQLSTATE = 'C',
	PROTO_FIELD_MESSAGE = 'M',
};

/* Bytes before a regular message's body: type and length. */
#define PROTO_HEADER_LEN 5

/* Authentication request codes ('R'). */
enum {
	AUTH_REQ_OK = 0,
	AUTH_REQ_CLEARTEXT = 3,
	AUTH_REQ_MD5 = 5,
	AUTH_REQ_SASL = 10,
	AUTH_REQ_SASL_CONTINUE = 11,
	AUTH_REQ_SASL_FINAL = 12,
};

/*
 * Parsers follow one convention: return bytes consumed (>0), PROTO_PARTIAL
 * when more input is needed, PROTO_MALFORMED when the input can never be valid.
 * They never read past avail and never allocate; pointers point into the input.
 */
#define PROTO_PARTIAL (-2)
#define PROTO_MALFORMED (-1)

/* Regular message header: type byte + int32 length (length counts itself, not the type). */
int proto_parse_header(const uint8_t *buf, size_t avail, uint8_t *type, uint32_t *len);

struct startup_param {
	const char *name;
	const char *value;
};

struct startup_packet {
	uint32_t code;		/* PROTO_V3 (or 3.x), PROTO_CANCEL_CODE, PROTO_SSL_CODE, PROTO_GSSENC_CODE */
	/* cancel */
	uint32_t cancel_pid;
	uint32_t cancel_key;
	/* v3 parameters, in packet order */
	struct startup_param params[PROTO_MAX_PARAMS];
	int n_params;
};

/* A startup-phase packet: int32 length + int32 code + body. Longer than PROTO_MAX_STARTUP is malformed. */
int proto_parse_startup(const uint8_t *buf, size_t avail, struct startup_packet *out);

/* Bounded reader over a message body. Any read past the end sets bad and returns zero/NULL. */
struct pkt_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
	bool bad;
};

void pkt_reader_init(struct pkt_reader *r, const uint8_t *data, size_t len);
uint8_t pkt_get_u8(struct pkt_reader *r);
uint16_t pkt_get_u16(struct pkt_reader *r);
uint32_t pkt_get_u32(struct pkt_reader *r);
/* NUL-terminated string inside the body; NULL (and bad) if no terminator before the end. */
const char *pkt_get_string(struct pkt_reader *r);
/* n raw bytes; NULL (and bad) if fewer remain. */
const uint8_t *pkt_get_bytes(struct pkt_reader *r, size_t n);

/* ErrorResponse/NoticeResponse body: find field code (e.g. 'C' SQLSTATE, 'M' message). NULL if absent. */
const char *proto_error_field(const uint8_t *body, size_t len, char code);

/*
 * Readers of messages that may be partly buffered: msg is the message's first
 * byte (its type), avail how many of its bytes are at hand. A string is found
 * only if it ends (its NUL) within them; *len is its length without the NUL.
 */
const char *proto_string_at(const uint8_t *msg, uint32_t avail, uint32_t offset, uint32_t *len);
/*
 * The prepared statement a client message names: a Parse's, a Bind's (after
 * its portal), a Describe's or Close's of a statement. "" is the unnamed one.
 * NULL when the message names no statement (a portal, another type) or the
 * name does not end within avail.
 */
const char *proto_statement_name(const uint8_t *msg, uint32_t avail, uint32_t *len);
/* A CommandComplete whose tag (as far as avail holds it) begins with prefix. */
bool proto_tag_starts(const uint8_t *msg, uint32_t avail, const char *prefix);
/* A whole CommandComplete (len bytes, all at hand) whose tag is exactly tag. */
bool proto_tag_is(const uint8_t *msg, uint32_t len, const char *tag);

/* Growable output buffer for messages we build ourselves. */
struct pktbuf {
	uint8_t *data;
	uint32_t len;
	uint32_t cap;
	uint32_t msg_start;	/* start of the message being built */
	bool failed;		/* allocation failed: contents unusable */
};

void pktbuf_init(struct pktbuf *b);
void pktbuf_free(struct pktbuf *b);
void pktbuf_reset(struct pktbuf *b);
/* Start a message; type 0 starts a startup-style packet with no type byte. */
void pkt_begin(struct pktbuf *b, uint8_t type);
void pkt_end(struct pktbuf *b);	/* fills in the length */
void pkt_put_u8(struct pktbuf *b, uint8_t v);
void pkt_put_u16(struct pktbuf *b, uint16_t v);
void pkt_put_u32(struct pktbuf *b, uint32_t v);
void pkt_put_bytes(struct pktbuf *b, const void *p, size_t n);
void pkt_put_string(struct pktbuf *b, const char *s);	/* with terminating NUL */

/* Whole messages. */
void pkt_error(struct pktbuf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void pkt_error_v(struct pktbuf *b, const char *severity, const char *sqlstate, const char *fmt, va_list ap);
void pkt_notice(struct pktbuf *b, const char *sqlstate, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pkt_auth_request(struct pktbuf *b, uint32_t code, const void *data, size_t len);
void pkt_auth_sasl_mechanisms(struct pktbuf *b);	/* AuthenticationSASL with SCRAM-SHA-256 */
void pkt_parameter_status(struct pktbuf *b, const char *name, const char *value);
void pkt_backend_key(struct pktbuf *b, uint32_t pid, uint32_t key);
void pkt_ready_for_query(struct pktbuf *b, char status);
void pkt_command_complete(struct pktbuf *b, const char *tag);
/* Parse: statement name, then the rest of a Parse body (query, parameter types) as it is. */
void pkt_parse(struct pktbuf *b, const char *name, const void *rest, size_t len);
/* Describe or Close of a statement or portal (PROTO_TARGET_*). */
void pkt_describe(struct pktbuf *b, uint8_t target, const char *name);
void pkt_close(struct pktbuf *b, uint8_t target, const char *name);
void pkt_execute(struct pktbuf *b, const char *portal, uint32_t max_rows);
/*
 * The head of a Bind whose statement name changes: type, the length of the
 * whole new message (body_len bytes after the type), the portal (plen bytes
 * and its NUL) and the new statement name; the caller relays the rest.
 */
void pkt_bind_head(struct pktbuf *b, uint32_t body_len, const char *portal, uint32_t plen, const char *stmt);
void pkt_query(struct pktbuf *b, const char *sql);
/* Parse, Bind with one text parameter, Execute and Sync: sql run once, unnamed, the parameter never in its text. */
void pkt_extended_query(struct pktbuf *b, const char *sql, const char *param);
void pkt_terminate(struct pktbuf *b);
void pkt_password(struct pktbuf *b, const char *password);	/* 'p' with a string */
void pkt_sasl_initial(struct pktbuf *b, const char *mechanism, const void *data, size_t len);
void pkt_sasl_response(struct pktbuf *b, const void *data, size_t len);
void pkt_cancel_request(struct pktbuf *b, uint32_t pid, uint32_t key);
void pkt_ssl_request(struct pktbuf *b);	/* answered by one byte: 'S' (TLS follows) or 'N' */
/* StartupMessage v3 with name/value pairs (n pairs). */
void pkt_startup(struct pktbuf *b, const struct startup_param *params, int n);
/* NegotiateProtocolVersion: newest minor supported + unrecognized options. */
void pkt_negotiate_protocol(struct pktbuf *b, uint32_t minor, const char *const *options, int n);

/* Messages of a fixed size, built into the caller's array: answers on the relay path, without allocating. */
#define PROTO_READY_LEN 6
#define PROTO_EMPTY_LEN 5	/* no body: ParseComplete, CloseComplete */
void proto_ready_for_query(uint8_t out[PROTO_READY_LEN], char status);
void proto_parse_complete(uint8_t out[PROTO_EMPTY_LEN]);
void proto_close_complete(uint8_t out[PROTO_EMPTY_LEN]);

#endif
