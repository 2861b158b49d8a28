/* Unit tests for core/proto.c: header and startup parsers against guard pages, pkt_reader, builders. */
#include "unit.h"

#include "proto.h"

/* Literal byte strings: L(x) expands to the bytes and their count (without the literal's own NUL). */
#define L(x) (const uint8_t *)(x), sizeof(x) - 1

static void hexdump(const char *label, const uint8_t *p, size_t n)
{
	printf("#   %s (%zu):", label, n);
	for (size_t i = 0; i < n; i++)
		printf(" %02x", p[i]);
	printf("\n");
}

static void check_bytes(const struct pktbuf *b, const uint8_t *exp, size_t n, const char *name)
{
	bool ok = !b->failed && b->len == n && memcmp(b->data, exp, n) == 0;

	if (!UNIT_CHECK(ok, name)) {
		hexdump("got", b->data, b->len);
		hexdump("expected", exp, n);
	}
}

/* ---- proto_parse_header ---- */

static int header_at_guard(const uint8_t *bytes, size_t n, uint8_t *type, uint32_t *len)
{
	const uint8_t *p = unit_guard_copy(bytes, n);
	int rc = proto_parse_header(p, n, type, len);

	unit_guard_free(p);
	return rc;
}

static void test_header(void)
{
	uint8_t type = 0;
	uint32_t len = 0;
	bool all_partial = true;
	static const uint8_t query[] = { 'Q', 0, 0, 0, 13 };

	for (size_t k = 0; k < sizeof(query); k++)
		if (header_at_guard(query, k, &type, &len) != PROTO_PARTIAL)
			all_partial = false;
	UNIT_CHECK(all_partial, "header: every prefix shorter than 5 bytes is PARTIAL");

	UNIT_EQ_INT(header_at_guard(query, sizeof(query), &type, &len), 5, "header: Q returns 5");
	UNIT_EQ_INT(type, 'Q', "header: type");
	UNIT_EQ_INT(len, 13, "header: length");

	UNIT_EQ_INT(header_at_guard(L("X\0\0\0\x04"), &type, &len), 5,
		    "header: length 4 (empty body) is valid");
	UNIT_EQ_INT(len, 4, "header: length 4 read back");
	UNIT_EQ_INT(header_at_guard(L("d\x3f\xff\xff\xff"), &type, &len), 5,
		    "header: length 0x3fffffff is valid");
	UNIT_EQ_INT(len, 0x3fffffff, "header: length 0x3fffffff read back");
	UNIT_EQ_INT(header_at_guard(L("Q\0\0\0\x03"), &type, &len), PROTO_MALFORMED,
		    "header: length 3 is MALFORMED");
	UNIT_EQ_INT(header_at_guard(L("Q\0\0\0\0"), &type, &len), PROTO_MALFORMED,
		    "header: length 0 is MALFORMED");
	UNIT_EQ_INT(header_at_guard(L("Q\x40\0\0\0"), &type, &len), PROTO_MALFORMED,
		    "header: length 0x40000000 is MALFORMED");
	UNIT_EQ_INT(header_at_guard(L("Q\xff\xff\xff\xff"), &type, &len), PROTO_MALFORMED,
		    "header: length 0xffffffff (negative) is MALFORMED");

	/* more input after the header does not change the answer */
	UNIT_EQ_INT(header_at_guard(L("Z\0\0\0\x05I"), &type, &len), 5,
		    "header: body bytes present, still 5");
	UNIT_EQ_INT(type, 'Z', "header: type with body present");
}

/* ---- proto_parse_startup ---- */

static int startup_at_guard(const uint8_t *bytes, size_t n, struct startup_packet *out)
{
	const uint8_t *p = unit_guard_copy(bytes, n);
	int rc = proto_parse_startup(p, n, out);

	unit_guard_free(p);
	return rc;
}

/*
 * Every proper prefix must be PARTIAL; the whole packet must give want. The
 * last copy stays mapped (unit_done unmaps it) so the caller can read out.
 */
static void check_startup(const uint8_t *bytes, size_t n, int want, const char *name,
			  struct startup_packet *out)
{
	struct startup_packet sp;
	char label[200];
	long bad_k = -1;
	int bad_rc = 0;

	for (size_t k = 0; k < n && bad_k < 0; k++) {
		int rc = startup_at_guard(bytes, k, &sp);

		if (rc != PROTO_PARTIAL) {
			bad_k = (long)k;
			bad_rc = rc;
		}
	}
	snprintf(label, sizeof(label), "startup %s: all %zu shorter prefixes PARTIAL", name, n);
	if (!UNIT_CHECK(bad_k < 0, label))
		printf("#   prefix of %ld bytes returned %d\n", bad_k, bad_rc);
	snprintf(label, sizeof(label), "startup %s: whole packet returns %d", name, want);
	UNIT_EQ_INT(proto_parse_startup(unit_guard_copy(bytes, n), n, out), want, label);
}

/* A malformed packet: no prefix may be accepted, the whole packet must be MALFORMED. */
static void check_startup_malformed(const uint8_t *bytes, size_t n, const char *name)
{
	struct startup_packet sp;
	char label[200];
	bool none_ok = true;

	for (size_t k = 0; k < n; k++)
		if (startup_at_guard(bytes, k, &sp) > 0)
			none_ok = false;
	snprintf(label, sizeof(label), "startup %s: no prefix accepted", name);
	UNIT_CHECK(none_ok, label);
	snprintf(label, sizeof(label), "startup %s: MALFORMED", name);
	UNIT_EQ_INT(startup_at_guard(bytes, n, &sp), PROTO_MALFORMED, label);
}

static void test_startup_valid(void)
{
	struct startup_packet sp;
	const uint8_t *p;
	static const uint8_t ssl[] = "\0\0\0\x08\x04\xd2\x16\x2f";
	static const uint8_t gss[] = "\0\0\0\x08\x04\xd2\x16\x30";
	static const uint8_t cancel[] = "\0\0\0\x10\x04\xd2\x16\x2e\0\0\x30\x39\xde\xad\xbe\xef";
	static const uint8_t v3[] = "\0\0\0\x36\0\x03\0\0"
				    "user\0bob\0database\0shop\0application_name\0psql\0\0";
	static const uint8_t v32[] = "\0\0\0\x10\0\x03\0\x02user\0u\0\0";
	static const uint8_t v3_empty[] = "\0\0\0\x09\0\x03\0\0\0";
	static const uint8_t v3_empty_value[] = "\0\0\0\x12\0\x03\0\0options\0\0\0";

	check_startup(L(ssl), 8, "SSLRequest", &sp);
	UNIT_EQ_INT(startup_at_guard(L(ssl), &sp), 8, "SSLRequest consumed");
	UNIT_EQ_INT(sp.code, PROTO_SSL_CODE, "SSLRequest code");
	check_startup(L(gss), 8, "GSSENCRequest", &sp);
	UNIT_EQ_INT(sp.code, PROTO_GSSENC_CODE, "GSSENCRequest code");
	check_startup(L(cancel), 16, "CancelRequest", &sp);
	UNIT_EQ_INT(sp.code, PROTO_CANCEL_CODE, "CancelRequest code");
	UNIT_EQ_INT(sp.cancel_pid, 12345, "CancelRequest pid");
	UNIT_EQ_INT(sp.cancel_key, 0xdeadbeef, "CancelRequest key");

	UNIT_EQ_INT(sizeof(v3) - 1, 0x36, "v3 fixture length matches its length word");
	check_startup(L(v3), 0x36, "v3.0 with 3 parameters", &sp);
	p = unit_guard_copy(v3, sizeof(v3) - 1);
	UNIT_EQ_INT(proto_parse_startup(p, sizeof(v3) - 1, &sp), 0x36, "v3.0 consumed");
	UNIT_EQ_INT(sp.code, PROTO_V3, "v3.0 code");
	UNIT_EQ_INT(sp.n_params, 3, "v3.0 parameter count");
	UNIT_EQ_STR(sp.params[0].name, "user", "v3.0 param 0 name");
	UNIT_EQ_STR(sp.params[0].value, "bob", "v3.0 param 0 value");
	UNIT_EQ_STR(sp.params[1].name, "database", "v3.0 param 1 name");
	UNIT_EQ_STR(sp.params[1].value, "shop", "v3.0 param 1 value");
	UNIT_EQ_STR(sp.params[2].name, "application_name", "v3.0 param 2 name");
	UNIT_EQ_STR(sp.params[2].value, "psql", "v3.0 param 2 value");
	UNIT_CHECK(sp.params[0].name == (const char *)p + 8 && sp.params[2].value == (const char *)p + 48,
		   "v3.0 parameters point into the input (zero-copy)");
	unit_guard_free(p);

	check_startup(L(v32), 0x10, "v3.2 (newer minor)", &sp);
	UNIT_EQ_INT(sp.code, 0x00030002, "v3.2 code kept for NegotiateProtocolVersion");
	UNIT_EQ_INT(sp.n_params, 1, "v3.2 parameter count");
	check_startup(L(v3_empty), 9, "v3 with no parameters", &sp);
	UNIT_EQ_INT(sp.n_params, 0, "v3 with no parameters: count 0");
	check_startup(L(v3_empty_value), 0x12, "v3 with an empty value", &sp);
	UNIT_EQ_STR(sp.params[0].value, "", "v3 empty value read back");

	/* a packet followed by the next one: only the first is consumed */
	{
		uint8_t two[8 + sizeof(v32) - 1];

		memcpy(two, ssl, 8);
		memcpy(two + 8, v32, sizeof(v32) - 1);
		UNIT_EQ_INT(startup_at_guard(two, sizeof(two), &sp), 8,
			    "SSLRequest followed by more: 8 consumed");
	}
}

/* Build a v3 startup packet with n pairs "pN"="v" into buf; returns its length. */
static size_t build_params(uint8_t *buf, int n)
{
	size_t len = 8;

	for (int i = 0; i < n; i++) {
		len += (size_t)sprintf((char *)buf + len, "p%d", i) + 1;
		len += (size_t)sprintf((char *)buf + len, "v") + 1;
	}
	buf[len++] = 0;
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	buf[4] = 0;
	buf[5] = 3;
	buf[6] = 0;
	buf[7] = 0;
	return len;
}

static void test_startup_limits(void)
{
	static uint8_t buf[PROTO_MAX_STARTUP + 16];
	struct startup_packet sp;
	size_t n;

	n = build_params(buf, PROTO_MAX_PARAMS);
	check_startup(buf, n, (int)n, "exactly PROTO_MAX_PARAMS pairs", &sp);
	UNIT_EQ_INT(sp.n_params, PROTO_MAX_PARAMS, "startup: PROTO_MAX_PARAMS pairs stored");
	UNIT_EQ_STR(sp.params[PROTO_MAX_PARAMS - 1].name, "p63", "startup: last pair name");
	n = build_params(buf, PROTO_MAX_PARAMS + 1);
	check_startup_malformed(buf, n, "PROTO_MAX_PARAMS + 1 pairs");

	/* exactly PROTO_MAX_STARTUP bytes: one parameter with a long value */
	memset(buf, 0, sizeof(buf));
	memcpy(buf + 4, "\0\x03\0\0user\0", 10);
	memset(buf + 13, 'x', PROTO_MAX_STARTUP - 13 - 2); /* value, its NUL, the final NUL */
	buf[0] = 0;
	buf[1] = 0;
	buf[2] = (uint8_t)(PROTO_MAX_STARTUP >> 8);
	buf[3] = (uint8_t)PROTO_MAX_STARTUP;
	check_startup(buf, PROTO_MAX_STARTUP, PROTO_MAX_STARTUP, "PROTO_MAX_STARTUP bytes", &sp);
	UNIT_EQ_INT(strlen(sp.params[0].value), PROTO_MAX_STARTUP - 15, "startup: long value length");

	/* one byte more: refused from the length word alone */
	buf[2] = (uint8_t)((PROTO_MAX_STARTUP + 1) >> 8);
	buf[3] = (uint8_t)(PROTO_MAX_STARTUP + 1);
	UNIT_EQ_INT(startup_at_guard(buf, 4, &sp), PROTO_MALFORMED,
		    "startup: PROTO_MAX_STARTUP + 1 refused at 4 bytes");
	UNIT_EQ_INT(startup_at_guard(buf, PROTO_MAX_STARTUP + 1, &sp), PROTO_MALFORMED,
		    "startup: PROTO_MAX_STARTUP + 1 MALFORMED");
}

static void test_startup_malformed(void)
{
	struct startup_packet sp;

	UNIT_EQ_INT(startup_at_guard(L("\0\0\0\x07"), &sp), PROTO_MALFORMED,
		    "startup: length 7 refused at 4 bytes");
	check_startup_malformed(L("\0\0\0\x07\0\x03\0"), "length 7");
	check_startup_malformed(L("\0\0\0\0\0\0\0\0"), "length 0");
	check_startup_malformed(L("\0\0\0\x04\0\x03\0\0"), "length 4");
	check_startup_malformed(L("\xff\xff\xff\xff\0\x03\0\0"), "negative length");
	check_startup_malformed(L("\0\0\x27\x11\0\x03\0\0"), "length 10001");

	check_startup_malformed(L("\0\0\0\x10\x04\xd2\x16\x2f\0\0\0\0\0\0\0\0"), "SSLRequest of 16 bytes");
	check_startup_malformed(L("\0\0\0\x09\x04\xd2\x16\x2f\0"), "SSLRequest of 9 bytes");
	check_startup_malformed(L("\0\0\0\x0c\x04\xd2\x16\x30\0\0\0\0"), "GSSENCRequest of 12 bytes");
	check_startup_malformed(L("\0\0\0\x0c\x04\xd2\x16\x2e\0\0\0\x01"), "CancelRequest of 12 bytes");
	check_startup_malformed(L("\0\0\0\x14\x04\xd2\x16\x2e\0\0\0\x01\0\0\0\x02\0\0\0\0"),
				"CancelRequest of 20 bytes");
	check_startup_malformed(L("\0\0\0\x08\x04\xd2\x16\x31"), "unknown request code 1234.5681");
	check_startup_malformed(L("\0\0\0\x12\0\x02\0\0user\0bob\0\0"), "protocol 2.0");
	check_startup_malformed(L("\0\0\0\x12\0\x04\0\0user\0bob\0\0"), "protocol 4.0");
	check_startup_malformed(L("\0\0\0\x08\0\x03\0\0"), "v3 without the final NUL (empty body)");
	check_startup_malformed(L("\0\0\0\x0c\0\x03\0\0user"), "v3 unterminated name");
	check_startup_malformed(L("\0\0\0\x10\0\x03\0\0user\0bob"), "v3 unterminated value");
	check_startup_malformed(L("\0\0\0\x0d\0\x03\0\0user\0"), "v3 name without value");
	check_startup_malformed(L("\0\0\0\x11\0\x03\0\0user\0bob\0"), "v3 missing final NUL");
	check_startup_malformed(L("\0\0\0\x0e\0\x03\0\0\0bob\0\0"), "v3 empty name");
	check_startup_malformed(L("\0\0\0\x13\0\x03\0\0user\0bob\0\0x"), "v3 data after the final NUL");
	check_startup_malformed(L("\0\0\0\x14\0\x03\0\0user\0bob\0\0\0\0"),
				"v3 extra NULs after the final NUL");
}

/* ---- pkt_reader and proto_error_field ---- */

static void test_reader(void)
{
	struct pkt_reader r;
	const uint8_t *p, *bytes;
	const char *s;
	static const uint8_t body[] = { 0x01, 0x02, 0x03, 0xde, 0xad, 0xbe, 0xef, 'a', 'b', 0, 'x', 'y' };

	p = unit_guard_copy(body, sizeof(body));
	pkt_reader_init(&r, p, sizeof(body));
	UNIT_EQ_INT(pkt_get_u8(&r), 1, "reader: u8");
	UNIT_EQ_INT(pkt_get_u16(&r), 0x0203, "reader: u16 network order");
	UNIT_EQ_INT(pkt_get_u32(&r), 0xdeadbeef, "reader: u32 network order");
	s = pkt_get_string(&r);
	UNIT_EQ_STR(s, "ab", "reader: string");
	UNIT_CHECK(s == (const char *)p + 7, "reader: string points into the body");
	bytes = pkt_get_bytes(&r, 2);
	UNIT_CHECK(bytes == p + 10 && bytes[0] == 'x' && bytes[1] == 'y', "reader: bytes");
	UNIT_CHECK(!r.bad && r.pos == sizeof(body), "reader: not bad after reading exactly to the end");
	UNIT_CHECK(pkt_get_bytes(&r, 0) != NULL && !r.bad, "reader: zero bytes at the end is fine");
	UNIT_EQ_INT(pkt_get_u8(&r), 0, "reader: u8 past the end returns 0");
	UNIT_CHECK(r.bad, "reader: u8 past the end sets bad");
	UNIT_EQ_INT(r.pos, sizeof(body), "reader: failed read does not move pos");

	pkt_reader_init(&r, p, sizeof(body));
	UNIT_CHECK(pkt_get_bytes(&r, 10) != NULL, "reader: skip 10");
	UNIT_EQ_INT(pkt_get_u32(&r), 0, "reader: u32 with 2 bytes left returns 0");
	UNIT_CHECK(r.bad, "reader: u32 with 2 bytes left sets bad");
	UNIT_EQ_INT(pkt_get_u8(&r), 0, "reader: stays bad (sticky) even though a byte remains");

	pkt_reader_init(&r, p, sizeof(body));
	pkt_get_bytes(&r, 11);
	UNIT_EQ_INT(pkt_get_u16(&r), 0, "reader: u16 with 1 byte left returns 0");
	UNIT_CHECK(r.bad, "reader: u16 with 1 byte left sets bad");

	pkt_reader_init(&r, p, sizeof(body));
	pkt_get_bytes(&r, 10);
	UNIT_CHECK(pkt_get_string(&r) == NULL && r.bad,
		   "reader: unterminated string at the end is NULL + bad");

	pkt_reader_init(&r, p, sizeof(body));
	UNIT_CHECK(pkt_get_bytes(&r, 13) == NULL && r.bad, "reader: 13 bytes of 12 is NULL + bad");
	pkt_reader_init(&r, p, sizeof(body));
	UNIT_CHECK(pkt_get_bytes(&r, SIZE_MAX) == NULL && r.bad, "reader: SIZE_MAX bytes is NULL + bad");
	unit_guard_free(p);

	p = unit_guard_copy("", 0);
	pkt_reader_init(&r, p, 0);
	UNIT_CHECK(pkt_get_string(&r) == NULL && r.bad, "reader: string from an empty body is NULL + bad");
	unit_guard_free(p);
}

static void test_error_field(void)
{
	static const uint8_t body[] = "SERROR\0VERROR\0C42501\0Mpermission denied for table t\0\0";
	static const uint8_t broken[] = "SERROR\0C42501\0Mpermission den";
	const uint8_t *p;

	p = unit_guard_copy(body, sizeof(body) - 1);
	UNIT_EQ_STR(proto_error_field(p, sizeof(body) - 1, 'C'), "42501", "error field: C");
	UNIT_EQ_STR(proto_error_field(p, sizeof(body) - 1, 'M'), "permission denied for table t",
		    "error field: M");
	UNIT_EQ_STR(proto_error_field(p, sizeof(body) - 1, 'S'), "ERROR", "error field: S");
	UNIT_CHECK(proto_error_field(p, sizeof(body) - 1, 'D') == NULL, "error field: absent D is NULL");
	UNIT_CHECK(proto_error_field(p, sizeof(body) - 1, 'M') == (const char *)p + 22,
		   "error field: points into the body");
	unit_guard_free(p);

	p = unit_guard_copy(broken, sizeof(broken) - 1);
	UNIT_EQ_STR(proto_error_field(p, sizeof(broken) - 1, 'C'), "42501", "error field: C before a cut");
	UNIT_CHECK(proto_error_field(p, sizeof(broken) - 1, 'M') == NULL,
		   "error field: unterminated M is NULL");
	UNIT_CHECK(proto_error_field(p, sizeof(broken) - 1, 'D') == NULL,
		   "error field: search stops at the cut");
	unit_guard_free(p);

	p = unit_guard_copy("S", 1);
	UNIT_CHECK(proto_error_field(p, 1, 'S') == NULL, "error field: code without a value is NULL");
	unit_guard_free(p);
}

/* ---- builders ---- */

static void test_builders(void)
{
	struct pktbuf b;
	static const uint8_t salt[4] = { 1, 2, 3, 4 };
	struct startup_param params[] = { { "user", "bob" }, { "database", "db" } };
	const char *opts[] = { "_pq_.foo" };

	pktbuf_init(&b);
	UNIT_CHECK(b.data == NULL && b.len == 0 && !b.failed, "pktbuf_init: empty");

	pkt_auth_request(&b, AUTH_REQ_OK, NULL, 0);
	check_bytes(&b, L("R\0\0\0\x08\0\0\0\0"), "AuthenticationOk");
	pktbuf_reset(&b);
	pkt_auth_request(&b, AUTH_REQ_MD5, salt, 4);
	check_bytes(&b, L("R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04"), "AuthenticationMD5Password");
	pktbuf_reset(&b);
	pkt_auth_request(&b, AUTH_REQ_SASL_FINAL, "v=abc", 5);
	check_bytes(&b, L("R\0\0\0\x0d\0\0\0\x0cv=abc"), "AuthenticationSASLFinal");
	pktbuf_reset(&b);
	pkt_auth_sasl_mechanisms(&b);
	check_bytes(&b, L("R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"), "AuthenticationSASL");
	pktbuf_reset(&b);
	pkt_parameter_status(&b, "client_encoding", "UTF8");
	check_bytes(&b,
		    L("S\0\0\0\x19"
		      "client_encoding\0UTF8\0"),
		    "ParameterStatus");
	pktbuf_reset(&b);
	pkt_backend_key(&b, 0x01020304, 0xa0b0c0d0);
	check_bytes(&b, L("K\0\0\0\x0c\x01\x02\x03\x04\xa0\xb0\xc0\xd0"), "BackendKeyData");
	pktbuf_reset(&b);
	pkt_ready_for_query(&b, 'I');
	check_bytes(&b, L("Z\0\0\0\x05I"), "ReadyForQuery");
	pktbuf_reset(&b);
	pkt_query(&b, "SELECT 1");
	check_bytes(&b, L("Q\0\0\0\x0dSELECT 1\0"), "Query");
	pktbuf_reset(&b);
	pkt_terminate(&b);
	check_bytes(&b, L("X\0\0\0\x04"), "Terminate");
	pktbuf_reset(&b);
	pkt_password(&b, "secret");
	check_bytes(&b, L("p\0\0\0\x0bsecret\0"), "PasswordMessage");
	pktbuf_reset(&b);
	pkt_sasl_initial(&b, "SCRAM-SHA-256", "n,,n=,r=abc", 11);
	check_bytes(&b, L("p\0\0\0\x21SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc"), "SASLInitialResponse");
	pktbuf_reset(&b);
	pkt_sasl_initial(&b, "SCRAM-SHA-256", NULL, 0);
	check_bytes(&b, L("p\0\0\0\x16SCRAM-SHA-256\0\xff\xff\xff\xff"), "SASLInitialResponse without data");
	pktbuf_reset(&b);
	pkt_sasl_response(&b, "c=biws", 6);
	check_bytes(&b,
		    L("p\0\0\0\x0a"
		      "c=biws"),
		    "SASLResponse");
	pktbuf_reset(&b);
	pkt_cancel_request(&b, 7, 9);
	check_bytes(&b, L("\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x07\0\0\0\x09"), "CancelRequest");
	pktbuf_reset(&b);
	pkt_startup(&b, params, 2);
	check_bytes(&b, L("\0\0\0\x1e\0\x03\0\0user\0bob\0database\0db\0\0"), "StartupMessage");
	pktbuf_reset(&b);
	pkt_negotiate_protocol(&b, 0, opts, 1);
	check_bytes(&b, L("v\0\0\0\x15\0\x03\0\0\0\0\0\x01_pq_.foo\0"), "NegotiateProtocolVersion");
	pktbuf_reset(&b);
	pkt_negotiate_protocol(&b, 0, NULL, 0);
	check_bytes(&b, L("v\0\0\0\x0c\0\x03\0\0\0\0\0\0"), "NegotiateProtocolVersion without options");
	pktbuf_reset(&b);
	pkt_error(&b, "FATAL", "28P01", "password authentication failed for user \"%s\"", "bob");
	check_bytes(&b,
		    L("E\0\0\0\x49SFATAL\0VFATAL\0C28P01\0"
		      "Mpassword authentication failed for user \"bob\"\0\0"),
		    "ErrorResponse");
	pktbuf_reset(&b);
	pkt_notice(&b, "01000", "hello %d", 5);
	check_bytes(&b, L("N\0\0\0\x25SNOTICE\0VNOTICE\0C01000\0Mhello 5\0\0"), "NoticeResponse");

	/* several messages back to back */
	pktbuf_reset(&b);
	pkt_ready_for_query(&b, 'T');
	pkt_terminate(&b);
	check_bytes(&b, L("Z\0\0\0\x05TX\0\0\0\x04"), "two messages appended");

	/* the raw put helpers inside begin/end */
	pktbuf_reset(&b);
	pkt_begin(&b, 'D');
	pkt_put_u16(&b, 0x0102);
	pkt_put_u32(&b, 0x03040506);
	pkt_put_u8(&b, 0x07);
	pkt_put_bytes(&b, "ab", 2);
	pkt_put_string(&b, "cd");
	pkt_end(&b);
	check_bytes(&b,
		    L("D\0\0\0\x10\x01\x02\x03\x04\x05\x06\x07"
		      "abcd\0"),
		    "put helpers, network order");
	pktbuf_free(&b);
	UNIT_CHECK(b.data == NULL && b.len == 0, "pktbuf_free: empty again");
}

static void test_builder_growth_and_failure(void)
{
	struct pktbuf b;
	char *big = malloc(100001);
	uint8_t type;
	uint32_t len;

	memset(big, 'x', 100000);
	big[100000] = '\0';
	pktbuf_init(&b);
	pkt_query(&b, big);
	UNIT_CHECK(!b.failed && b.len == 1 + 4 + 100001, "large Query: buffer grew");
	UNIT_CHECK(b.cap >= b.len, "large Query: cap covers len");
	UNIT_EQ_INT(proto_parse_header(b.data, b.len, &type, &len), 5, "large Query: header parses");
	UNIT_EQ_INT(len, 4 + 100001, "large Query: length field");
	UNIT_CHECK(memcmp(b.data + 5, big, 100001) == 0, "large Query: body intact");
	free(big);

	/* a failed buffer ignores everything until reset */
	pktbuf_reset(&b);
	b.failed = true;
	pkt_query(&b, "SELECT 1");
	pkt_error(&b, "ERROR", "XX000", "x");
	UNIT_CHECK(b.len == 0 && b.failed, "failed buffer: later calls do nothing");
	pktbuf_reset(&b);
	UNIT_CHECK(!b.failed, "pktbuf_reset clears failed");
	pkt_terminate(&b);
	check_bytes(&b, L("X\0\0\0\x04"), "usable again after reset");
	pktbuf_free(&b);

	pktbuf_init(&b);
	pkt_end(&b);
	UNIT_CHECK(b.failed, "pkt_end without a message marks the buffer failed");
	pktbuf_free(&b);
}

/* Messages we build parse back with our own parsers. */
static void test_round_trip(void)
{
	struct pktbuf b;
	struct startup_packet sp;
	struct startup_param params[] = { { "user", "alice" }, { "database", "app" }, { "options", "" } };
	uint8_t type;
	uint32_t len;

	pktbuf_init(&b);
	pkt_startup(&b, params, 3);
	UNIT_EQ_INT(proto_parse_startup(unit_guard_copy(b.data, b.len), b.len, &sp), (int)b.len,
		    "round trip: StartupMessage parses");
	UNIT_CHECK(sp.n_params == 3 && strcmp(sp.params[1].value, "app") == 0 && sp.params[2].value[0] == 0,
		   "round trip: StartupMessage parameters");
	pktbuf_reset(&b);
	pkt_cancel_request(&b, 4242, 0x12345678);
	UNIT_EQ_INT(startup_at_guard(b.data, b.len, &sp), 16, "round trip: CancelRequest parses");
	UNIT_CHECK(sp.cancel_pid == 4242 && sp.cancel_key == 0x12345678, "round trip: CancelRequest pid/key");
	pktbuf_reset(&b);
	pkt_error(&b, "ERROR", "0A000", "%s is not allowed", "LISTEN");
	UNIT_EQ_INT(proto_parse_header(b.data, b.len, &type, &len), 5, "round trip: ErrorResponse header");
	UNIT_CHECK(type == 'E' && len + 1 == b.len, "round trip: ErrorResponse type and length");
	UNIT_EQ_STR(proto_error_field(b.data + 5, len - 4, 'M'), "LISTEN is not allowed",
		    "round trip: error M");
	UNIT_EQ_STR(proto_error_field(b.data + 5, len - 4, 'V'), "ERROR", "round trip: error V");
	pktbuf_free(&b);
}

/* The statement-name reader and the tag readers, on messages cut short at every length (guard page behind). */
static void test_statement_names(void)
{
	static const char parse[] = "P\0\0\0\x12stmt\0SELECT 1\0\0\0";
	static const char bind[] = "B\0\0\0\x0eportal\0s1\0\0";
	static const char describe_s[] = "D\0\0\0\x08Sab\0";
	static const char close_p[] = "C\0\0\0\x08Pab\0";
	static const char unnamed[] = "P\0\0\0\x0e\0SELECT 1\0\0\0";
	const uint8_t *m;
	const char *name;
	uint32_t len = 99;
	bool cut_ok = true;

	m = unit_guard_copy(parse, sizeof(parse) - 1);
	name = proto_statement_name(m, sizeof(parse) - 1, &len);
	UNIT_CHECK(name && len == 4 && memcmp(name, "stmt", 4) == 0, "Parse: its statement name");
	for (uint32_t avail = 0; avail < 10; avail++)
		cut_ok = cut_ok && proto_statement_name(unit_guard_copy(parse, avail), avail, &len) == NULL;
	UNIT_CHECK(cut_ok, "Parse: a name that does not end within the buffered bytes is not read");
	m = unit_guard_copy(unnamed, sizeof(unnamed) - 1);
	name = proto_statement_name(m, sizeof(unnamed) - 1, &len);
	UNIT_CHECK(name && len == 0, "Parse: the unnamed statement is \"\"");
	m = unit_guard_copy(bind, sizeof(bind) - 1);
	name = proto_statement_name(m, sizeof(bind) - 1, &len);
	UNIT_CHECK(name && len == 2 && memcmp(name, "s1", 2) == 0, "Bind: the statement after the portal");
	UNIT_CHECK(proto_statement_name(m, 12, &len) == NULL, "Bind: portal only: no statement yet");
	m = unit_guard_copy(describe_s, sizeof(describe_s) - 1);
	name = proto_statement_name(m, sizeof(describe_s) - 1, &len);
	UNIT_CHECK(name && len == 2 && memcmp(name, "ab", 2) == 0, "Describe of a statement: its name");
	m = unit_guard_copy(close_p, sizeof(close_p) - 1);
	UNIT_CHECK(proto_statement_name(m, sizeof(close_p) - 1, &len) == NULL, "Close of a portal: no statement");
	m = unit_guard_copy(L("Q\0\0\0\x05\0"));
	UNIT_CHECK(proto_statement_name(m, 6, &len) == NULL, "Query: no statement");
	m = unit_guard_copy(L("Q\0\0\0\x05x"));
	UNIT_CHECK(proto_string_at(m, 6, 5, &len) == NULL, "proto_string_at: no NUL within avail");
	UNIT_CHECK(proto_string_at(m, 6, 6, &len) == NULL, "proto_string_at: offset at the end");

	m = unit_guard_copy(L("C\0\0\0\x0dUNLISTEN\0"));
	UNIT_CHECK(proto_tag_is(m, 14, "UNLISTEN"), "tag is UNLISTEN");
	UNIT_CHECK(!proto_tag_is(m, 14, "UNLISTE"), "a prefix is not the tag");
	UNIT_CHECK(proto_tag_starts(m, 14, "UNLISTEN") && proto_tag_starts(m, 9, "UNLI"), "tag starts");
	UNIT_CHECK(!proto_tag_starts(m, 9, "UNLISTEN"), "a tag cut short does not start with a longer prefix");
}

static void test_relay_builders(void)
{
	uint8_t z[PROTO_READY_LEN], e[PROTO_EMPTY_LEN];
	struct pktbuf b;

	proto_ready_for_query(z, PROTO_TXN_IDLE);
	UNIT_CHECK(memcmp(z, "Z\0\0\0\x05I", 6) == 0, "ReadyForQuery idle");
	proto_parse_complete(e);
	UNIT_CHECK(memcmp(e, "1\0\0\0\x04", 5) == 0, "ParseComplete");
	proto_close_complete(e);
	UNIT_CHECK(memcmp(e, "3\0\0\0\x04", 5) == 0, "CloseComplete");
	pktbuf_init(&b);
	pkt_command_complete(&b, "DEALLOCATE");
	check_bytes(&b, L("C\0\0\0\x0f" "DEALLOCATE\0"), "CommandComplete");
	pktbuf_reset(&b);
	pkt_close(&b, PROTO_TARGET_STATEMENT, "MB_1");
	check_bytes(&b, L("C\0\0\0\x0aSMB_1\0"), "Close of a statement");
	pktbuf_reset(&b);
	pkt_describe(&b, PROTO_TARGET_STATEMENT, "MB_1");
	check_bytes(&b, L("D\0\0\0\x0aSMB_1\0"), "Describe of a statement");
	pktbuf_reset(&b);
	pkt_parse(&b, "MB_1", "SELECT 1\0\0\0", 11);
	check_bytes(&b, L("P\0\0\0\x14MB_1\0SELECT 1\0\0\0"), "Parse");
	pktbuf_reset(&b);
	pkt_execute(&b, "p", 0);
	check_bytes(&b, L("E\0\0\0\x0ap\0\0\0\0\0"), "Execute");
	pktbuf_reset(&b);
	pkt_bind_head(&b, 20, "portal", 6, "MB_1");
	check_bytes(&b, L("B\0\0\0\x14portal\0MB_1\0"), "Bind head");
	pktbuf_free(&b);
}

int main(void)
{
	test_header();
	test_startup_valid();
	test_startup_limits();
	test_startup_malformed();
	test_reader();
	test_error_field();
	test_builders();
	test_builder_growth_and_failure();
	test_round_trip();
	test_statement_names();
	test_relay_builders();
	return unit_done();
}
