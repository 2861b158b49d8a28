/* Unit tests for core/auth.c: md5, SCRAM-SHA-256 vectors (RFC 7677, PostgreSQL 15), bad input. */
#include "unit.h"

#include "auth.h"

/*
 * Known answers, each computed independently of this code:
 *
 * md5 of password "secret" for user "alice":
 *   printf 'secretalice' | md5sum          -> 4a0a68b43b6cd5cf266fa02f196e2371
 *   (PostgreSQL 15 stores md54a0a68b43b6cd5cf266fa02f196e2371 for CREATE ROLE alice PASSWORD 'secret'
 *   with password_encryption = md5)
 * md5 answer to salt 01 02 03 04:
 *   printf '4a0a68b43b6cd5cf266fa02f196e2371\x01\x02\x03\x04' | md5sum -> 98a0412b9c31436fc53776e863350083
 */
#define ALICE_MD5 "md54a0a68b43b6cd5cf266fa02f196e2371"
#define ALICE_MD5_SALTED "md598a0412b9c31436fc53776e863350083"

/*
 * PostgreSQL 15: SET password_encryption = 'scram-sha-256'; CREATE ROLE t LOGIN PASSWORD 'pencil';
 * SELECT rolpassword FROM pg_authid WHERE rolname = 't';
 */
#define PG15_T_PENCIL                                                                               \
	"SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:" \
	"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk="
/* Same server, CREATE ROLE u8 LOGIN PASSWORD 'pässwörd' (UTF-8, precomposed: SASLprep leaves it as is). */
#define PG15_U8                                                                                     \
	"SCRAM-SHA-256$4096:nrvz9DtDA6RMlHEBZATpqw==$GMlNNulh2FEiALvMxaz0Tn7gWhF42a/PblZEm9Rorxg=:" \
	"yvMXf7ATBoZtBzKtZIQ+2hehbRy4t2IO4BvkUQwZ1vA="

/* RFC 7677 section 3: user "user", password "pencil". */
#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT_B64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CNONCE
#define RFC_SERVER_FIRST "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT_B64 ",i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/*
 * Values below from Python's hashlib/hmac (not this code):
 *   sp = pbkdf2_hmac('sha256', b'pencil', b64decode(RFC_SALT_B64), 4096)
 *   ck = hmac(sp, b'Client Key', sha256); sk = hmac(sp, b'Server Key', sha256); st = sha256(ck)
 * The verifier for the RFC's salt is SCRAM-SHA-256$4096:<salt>$b64(st):b64(sk).
 * PG_SHAPE_* is the same exchange as PostgreSQL speaks it: client-first-bare "n=,r=..." (empty user name),
 *   proof = ck XOR hmac(st, AuthMessage), signature = hmac(sk, AuthMessage).
 */
#define RFC_VERIFIER                                                                        \
	"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:" \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define RFC_CLIENT_KEY_B64 "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos="
#define PG_SHAPE_CLIENT_FINAL \
	"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="
#define PG_SHAPE_SERVER_FINAL "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="

/* Our own tiny decoder for checking keys (independent of auth.c's). */
static int b64val(char c)
{
	const char *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = strchr(set, c);

	return c && p ? (int)(p - set) : -1;
}

static size_t b64dec(const char *s, uint8_t *out)
{
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (; *s && *s != '='; s++) {
		acc = (acc << 6) | (uint32_t)b64val(*s);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return n;
}

/* SCRAM entry points take (pointer, length) with no NUL: feed them from a guard page. */
static const char *G(const char *s)
{
	return unit_guard_copy(s, strlen(s));
}

static char *server_first(struct scram_server *s, const char *msg, char *err, size_t errlen)
{
	return auth_scram_server_first(s, G(msg), strlen(msg), err, errlen);
}

static char *server_final(struct scram_server *s, const char *msg, char *err, size_t errlen)
{
	return auth_scram_server_final(s, G(msg), strlen(msg), err, errlen);
}

static char *client_final(struct scram_client *c, const char *msg, char *err, size_t errlen)
{
	return auth_scram_client_final(c, G(msg), strlen(msg), err, errlen);
}

static bool client_verify(struct scram_client *c, const char *msg, char *err, size_t errlen)
{
	return auth_scram_client_verify(c, G(msg), strlen(msg), err, errlen);
}

static void test_md5(void)
{
	char out[36];
	static const uint8_t salt[4] = { 1, 2, 3, 4 };

	auth_md5_secret("secret", "alice", out);
	UNIT_EQ_STR(out, ALICE_MD5, "md5 secret of alice/secret (PostgreSQL's value)");
	auth_md5_response(ALICE_MD5, salt, out);
	UNIT_EQ_STR(out, ALICE_MD5_SALTED, "md5 salted response");
	auth_md5_response("md5abc", salt, out);
	UNIT_EQ_STR(out, "", "md5 response from a short secret is empty");
	auth_md5_response("xyz4a0a68b43b6cd5cf266fa02f196e2371", salt, out);
	UNIT_EQ_STR(out, "", "md5 response from a secret without the md5 prefix is empty");
}

static void test_check_password(void)
{
	UNIT_CHECK(auth_check_password("alice", "secret", "secret"), "plain: right password");
	UNIT_CHECK(!auth_check_password("alice", "secret", "secreT"), "plain: wrong password");
	UNIT_CHECK(!auth_check_password("alice", "secret", "secre"), "plain: prefix refused");
	UNIT_CHECK(!auth_check_password("alice", "secret", "secret2"), "plain: longer refused");
	UNIT_CHECK(!auth_check_password("alice", "", ""), "plain: empty password refused");
	UNIT_CHECK(!auth_check_password("alice", "secret", ""), "plain: empty given password refused");

	UNIT_CHECK(auth_check_password("alice", ALICE_MD5, "secret"), "md5: right password");
	UNIT_CHECK(!auth_check_password("alice", ALICE_MD5, "Secret"), "md5: wrong password");
	UNIT_CHECK(!auth_check_password("bob", ALICE_MD5, "secret"),
		   "md5: the user name is part of the hash");
	UNIT_CHECK(!auth_check_password("alice", ALICE_MD5, ALICE_MD5),
		   "md5: the hash itself is not a password");
	UNIT_CHECK(auth_check_password("alice", "md54A0A68B43B6CD5CF266FA02F196E2371", "secret"),
		   "md5: upper-case hex digits accepted");

	UNIT_CHECK(auth_check_password("t", PG15_T_PENCIL, "pencil"),
		   "SCRAM: PostgreSQL 15 verifier, right password");
	UNIT_CHECK(!auth_check_password("t", PG15_T_PENCIL, "pencil "),
		   "SCRAM: PostgreSQL 15 verifier, wrong password");
	UNIT_CHECK(!auth_check_password("t", PG15_T_PENCIL, "Pencil"),
		   "SCRAM: PostgreSQL 15 verifier, case matters");
	UNIT_CHECK(!auth_check_password("t", PG15_T_PENCIL, PG15_T_PENCIL),
		   "SCRAM: the verifier is not a password");
	UNIT_CHECK(auth_check_password("u8", PG15_U8, "p\xc3\xa4ssw\xc3\xb6rd"),
		   "SCRAM: PostgreSQL 15 verifier, non-ASCII (NFC) password");
	UNIT_CHECK(!auth_check_password("u8", PG15_U8, "passwort"),
		   "SCRAM: non-ASCII verifier, wrong password");
	UNIT_CHECK(auth_check_password("user", RFC_VERIFIER, "pencil"), "SCRAM: verifier of the RFC's salt");
	UNIT_CHECK(!auth_check_password("t", "SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ==$gMs9", "pencil"),
		   "SCRAM: broken verifier refused");
	UNIT_CHECK(!auth_check_password("t", PG15_T_PENCIL, ""), "SCRAM: empty password refused");
}

static void test_parse_secret(void)
{
	struct scram_secret s;
	char text[256];
	uint8_t key[40];
	static const char *bad[] = {
		"",
		"SCRAM-SHA-1$4096:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$0:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$-1:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$abc:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$99999999999:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$4096TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ==gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ=$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$4096:$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc="
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTri==:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
		"SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=x",
		"SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=:more",
		"SCRAM-SHA-256$4096:TI/C+z1YLax5tSalds4ZtQ==$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:",
		"SCRAM-SHA-256$4096:TI/C+z1Y Lax5tSalds4ZtQ=$gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=:"
		"tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=",
	};

	UNIT_CHECK(auth_scram_parse_secret(PG15_T_PENCIL, &s), "parse: PostgreSQL 15 verifier");
	UNIT_EQ_INT(s.iterations, 4096, "parse: iterations");
	UNIT_EQ_INT(s.salt_len, 16, "parse: salt length");
	UNIT_CHECK(b64dec("gMs9sfRNhW+UkAwgbyPIBm/bJ616gQqrexLlGeTriOc=", key) == 32 &&
			   memcmp(key, s.stored_key, 32) == 0,
		   "parse: StoredKey bytes");
	UNIT_CHECK(b64dec("tpBViRSqS0WVC7nkTedF+kpljHkSPO/Xt3i3grhqiVk=", key) == 32 &&
			   memcmp(key, s.server_key, 32) == 0,
		   "parse: ServerKey bytes");
	UNIT_CHECK(auth_scram_format_secret(&s, text, sizeof(text)), "format: fits");
	UNIT_EQ_STR(text, PG15_T_PENCIL, "format: byte-exact round trip of PostgreSQL's verifier");
	UNIT_CHECK(!auth_scram_format_secret(&s, text, 40), "format: too small a buffer refused");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "parse: malformed verifier #%zu refused", i);
		UNIT_CHECK(!auth_scram_parse_secret(bad[i], &s), name);
	}
}

static void test_make_secret(void)
{
	struct scram_secret a, b;
	uint8_t salt[16];
	char text[256];

	UNIT_EQ_INT(b64dec(RFC_SALT_B64, salt), 16, "RFC salt decodes to 16 bytes");
	UNIT_CHECK(auth_scram_secret_with_salt("pencil", salt, 16, 4096, &a), "secret with the RFC salt");
	UNIT_CHECK(auth_scram_format_secret(&a, text, sizeof(text)), "secret with the RFC salt: format");
	UNIT_EQ_STR(text, RFC_VERIFIER,
		    "secret with the RFC salt: matches the independently computed verifier");
	UNIT_CHECK(!auth_scram_secret_with_salt("pencil", salt, 16, 0, &a), "secret: 0 iterations refused");
	UNIT_CHECK(!auth_scram_secret_with_salt("pencil", salt, 0, 4096, &a), "secret: empty salt refused");

	UNIT_CHECK(auth_scram_secret_from_password("hunter2", 4096, &a), "random salt secret a");
	UNIT_CHECK(auth_scram_secret_from_password("hunter2", 4096, &b), "random salt secret b");
	UNIT_EQ_INT(a.salt_len, 16, "random salt: 16 bytes");
	UNIT_EQ_INT(a.iterations, 4096, "random salt: iterations kept");
	UNIT_CHECK(memcmp(a.salt, b.salt, 16) != 0, "random salt: two secrets get different salts");
	UNIT_CHECK(memcmp(a.stored_key, b.stored_key, 32) != 0, "random salt: different StoredKeys");
	UNIT_CHECK(auth_scram_format_secret(&a, text, sizeof(text)), "random salt secret: format");
	UNIT_CHECK(auth_check_password("x", text, "hunter2"), "random salt secret accepts its password");
	UNIT_CHECK(!auth_check_password("x", text, "hunter3"), "random salt secret refuses another");
}

static struct scram_secret rfc_secret(void)
{
	struct scram_secret s;

	if (!auth_scram_parse_secret(RFC_VERIFIER, &s))
		memset(&s, 0, sizeof(s));
	return s;
}

static void test_rfc7677_server(void)
{
	struct scram_secret secret = rfc_secret();
	struct scram_server s;
	char err[256] = "", *m;
	uint8_t ck[32];

	auth_scram_server_init(&s, &secret);
	auth_scram_set_test_nonce(RFC_SNONCE);
	m = server_first(&s, RFC_CLIENT_FIRST, err, sizeof(err));
	UNIT_EQ_STR(m, RFC_SERVER_FIRST, "RFC 7677 server: server-first-message");
	free(m);
	m = server_final(&s, RFC_CLIENT_FINAL, err, sizeof(err));
	UNIT_EQ_STR(m, RFC_SERVER_FINAL, "RFC 7677 server: server-final-message");
	if (m == NULL)
		printf("#   err: %s\n", err);
	free(m);
	b64dec(RFC_CLIENT_KEY_B64, ck);
	UNIT_CHECK(s.have_client_key && memcmp(s.client_key, ck, 32) == 0,
		   "RFC 7677 server: recovered ClientKey");
	auth_scram_server_free(&s);

	/* same exchange, one bit of the proof flipped ('d' -> 'e') */
	auth_scram_server_init(&s, &secret);
	auth_scram_set_test_nonce(RFC_SNONCE);
	free(server_first(&s, RFC_CLIENT_FIRST, err, sizeof(err)));
	err[0] = '\0';
	m = server_final(
		&s, "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", err,
		sizeof(err));
	UNIT_CHECK(m == NULL && !s.have_client_key, "RFC 7677 server: altered proof refused");
	UNIT_CHECK(strstr(err, "wrong password") != NULL, "RFC 7677 server: altered proof error says why");
	free(m);
	auth_scram_server_free(&s);
}

static void test_rfc7677_client(void)
{
	struct scram_client c;
	char err[256] = "", *m;
	uint8_t ck[32];
	struct scram_secret secret = rfc_secret();

	/* as PostgreSQL speaks it: no user name in client-first */
	auth_scram_client_init_password(&c, "pencil");
	auth_scram_set_test_nonce(RFC_CNONCE);
	m = auth_scram_client_first(&c);
	UNIT_EQ_STR(m, "n,,n=,r=" RFC_CNONCE, "RFC 7677 client: client-first-message (PostgreSQL form)");
	free(m);
	m = client_final(&c, RFC_SERVER_FIRST, err, sizeof(err));
	UNIT_EQ_STR(m, PG_SHAPE_CLIENT_FINAL, "RFC 7677 client: client-final-message (PostgreSQL form)");
	free(m);
	UNIT_CHECK(!client_verify(&c, RFC_SERVER_FINAL, err, sizeof(err)),
		   "RFC 7677 client: signature for another AuthMessage refused");
	UNIT_CHECK(strstr(err, "incorrect server signature") != NULL, "RFC 7677 client: refusal says why");
	UNIT_CHECK(client_verify(&c, PG_SHAPE_SERVER_FINAL, err, sizeof(err)),
		   "RFC 7677 client: server signature verified (PostgreSQL form)");
	b64dec(RFC_CLIENT_KEY_B64, ck);
	UNIT_CHECK(memcmp(c.client_key, ck, 32) == 0 && memcmp(c.server_key, secret.server_key, 32) == 0,
		   "RFC 7677 client: derived ClientKey and ServerKey");
	auth_scram_client_free(&c);

	/*
	 * The RFC's own transcript names the user ("n=user"). The AuthMessage is
	 * built from the stored client-first-bare, so put the RFC's in its place.
	 */
	auth_scram_client_init_password(&c, "pencil");
	auth_scram_set_test_nonce(RFC_CNONCE);
	free(auth_scram_client_first(&c));
	free(c.client_first_bare);
	c.client_first_bare = strdup("n=user,r=" RFC_CNONCE);
	m = client_final(&c, RFC_SERVER_FIRST, err, sizeof(err));
	UNIT_EQ_STR(m, RFC_CLIENT_FINAL, "RFC 7677 client: client-final-message byte-exact");
	free(m);
	UNIT_CHECK(client_verify(&c, RFC_SERVER_FINAL, err, sizeof(err)),
		   "RFC 7677 client: RFC server-final verified");
	auth_scram_client_free(&c);

	/* with keys instead of a password (SCRAM pass-through) */
	auth_scram_client_init_keys(&c, ck, secret.server_key);
	auth_scram_set_test_nonce(RFC_CNONCE);
	free(auth_scram_client_first(&c));
	m = client_final(&c, RFC_SERVER_FIRST, err, sizeof(err));
	UNIT_EQ_STR(m, PG_SHAPE_CLIENT_FINAL, "RFC 7677 client from keys: same client-final-message");
	free(m);
	UNIT_CHECK(client_verify(&c, PG_SHAPE_SERVER_FINAL, err, sizeof(err)),
		   "RFC 7677 client from keys: verified");
	auth_scram_client_free(&c);
}

/* Full exchange in process with random nonces; returns true when both sides succeed. */
static bool round_trip(const struct scram_secret *secret, struct scram_client *c, struct scram_server *s,
		       char *err, size_t errlen)
{
	char *m1, *m2 = NULL, *m3 = NULL, *m4 = NULL;
	bool ok = false;

	auth_scram_server_init(s, secret);
	m1 = auth_scram_client_first(c);
	if (m1 != NULL)
		m2 = auth_scram_server_first(s, m1, strlen(m1), err, errlen);
	if (m2 != NULL)
		m3 = auth_scram_client_final(c, m2, strlen(m2), err, errlen);
	if (m3 != NULL)
		m4 = auth_scram_server_final(s, m3, strlen(m3), err, errlen);
	if (m4 != NULL)
		ok = auth_scram_client_verify(c, m4, strlen(m4), err, errlen);
	free(m1);
	free(m2);
	free(m3);
	free(m4);
	return ok;
}

static void test_round_trips(void)
{
	struct scram_secret secret, pg;
	struct scram_client c, c2;
	struct scram_server s, s2;
	char err[256] = "";
	char *first_a, *first_b;

	UNIT_CHECK(auth_scram_secret_from_password("correct horse", 4096, &secret),
		   "round trip: make secret");
	auth_scram_client_init_password(&c, "correct horse");
	UNIT_CHECK(round_trip(&secret, &c, &s, err, sizeof(err)), "round trip: password client vs verifier");
	UNIT_CHECK(s.have_client_key && memcmp(s.client_key, c.client_key, 32) == 0,
		   "round trip: server recovered the client's ClientKey");
	UNIT_CHECK(memcmp(c.server_key, secret.server_key, 32) == 0,
		   "round trip: client derived the ServerKey");
	UNIT_EQ_INT(strlen(s.nonce), 48, "round trip: nonce is 24 + 24 base64 characters");

	/* pass-through: the recovered ClientKey and the verifier's ServerKey log in again */
	auth_scram_client_init_keys(&c2, s.client_key, secret.server_key);
	UNIT_CHECK(round_trip(&secret, &c2, &s2, err, sizeof(err)), "round trip: pass-through keys log in");
	auth_scram_client_free(&c2);
	auth_scram_server_free(&s2);
	auth_scram_client_free(&c);
	auth_scram_server_free(&s);

	auth_scram_client_init_password(&c, "correct horsE");
	err[0] = '\0';
	UNIT_CHECK(!round_trip(&secret, &c, &s, err, sizeof(err)), "round trip: wrong password refused");
	UNIT_CHECK(!s.have_client_key, "round trip: no ClientKey after a refusal");
	UNIT_CHECK(err[0] != '\0', "round trip: refusal has a reason");
	auth_scram_client_free(&c);
	auth_scram_server_free(&s);

	UNIT_CHECK(auth_scram_parse_secret(PG15_T_PENCIL, &pg), "round trip: PostgreSQL verifier parses");
	auth_scram_client_init_password(&c, "pencil");
	UNIT_CHECK(round_trip(&pg, &c, &s, err, sizeof(err)),
		   "round trip: our client vs PostgreSQL's verifier");
	auth_scram_client_free(&c);
	auth_scram_server_free(&s);

	/* nonces are random */
	auth_scram_client_init_password(&c, "x");
	auth_scram_client_init_password(&c2, "x");
	first_a = auth_scram_client_first(&c);
	first_b = auth_scram_client_first(&c2);
	UNIT_CHECK(first_a && first_b && strlen(first_a) == 32 && strcmp(first_a, first_b) != 0,
		   "client nonces: 24 characters, different each time");
	UNIT_CHECK(auth_scram_client_first(&c) == NULL, "client-first twice is refused");
	free(first_a);
	free(first_b);
	auth_scram_client_free(&c);
	auth_scram_client_free(&c2);
}

static void expect_first_refused(const char *msg, size_t len, const char *want_in_err, const char *name)
{
	struct scram_secret secret = rfc_secret();
	struct scram_server s;
	char err[256] = "";
	char *m;

	auth_scram_server_init(&s, &secret);
	m = auth_scram_server_first(&s, unit_guard_copy(msg, len), len, err, sizeof(err));
	if (!UNIT_CHECK(m == NULL && err[0] != '\0' && strstr(err, want_in_err) != NULL, name))
		printf("#   got %s, err \"%s\"\n", m ? m : "NULL", err);
	free(m);
	auth_scram_server_free(&s);
}

static void test_bad_client_first(void)
{
	static char longmsg[2000];
	char name[80];
	static const struct {
		const char *msg, *err;
	} cases[] = {
		{ "p=tls-server-end-point,,n=,r=abc", "channel binding is not supported" },
		{ "x,,n=,r=abc", "channel-binding flag" },
		{ "n", "comma expected" },
		{ "n,", "comma expected" },
		{ "n,,", "user name" },
		{ "n;,n=,r=abc", "comma expected" },
		{ "n,a=bob,n=,r=abc", "authorization identity" },
		{ "n,x,n=,r=abc", "comma expected" },
		{ "n,,m=ext,n=,r=abc", "extension" },
		{ "n,,r=abc", "user name" },
		{ "n,,n=", "nonce" },
		{ "n,,n=,", "user name" },
		{ "n,,n=,r=", "nonce" },
		{ "n,,n=,x=abc", "nonce" },
		{ "n,,n=,r=abc,", "nonce" },
		{ "n,,n=,r=ab\x01"
		  "c",
		  "nonce" },
		{ "n,,n=,r=ab c", "nonce" },
		{ "n,,n=,r=abc,,", "garbage" },
		{ "n,,n=,r=abc,x", "garbage" },
		{ "n,,n=,r=abc,1=x", "garbage" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "bad client-first #%zu (%.30s) refused", i, cases[i].msg);
		expect_first_refused(cases[i].msg, strlen(cases[i].msg), cases[i].err, name);
	}
	expect_first_refused("", 0, "empty", "bad client-first: empty message refused");
	expect_first_refused("n,,n=,r=abc\0def", 15, "NUL", "bad client-first: embedded NUL refused");
	memset(longmsg, 'a', sizeof(longmsg));
	memcpy(longmsg, "n,,n=,r=", 8);
	expect_first_refused(longmsg, sizeof(longmsg), "longer than", "bad client-first: 2000 bytes refused");
	/* the combined nonce must fit struct scram_server's nonce with our 24 characters added */
	expect_first_refused(longmsg, 8 + sizeof(((struct scram_server *)0)->nonce) - 24, "too long",
			     "bad client-first: client nonce too long for the nonce buffer refused");
	{
		struct scram_secret secret = rfc_secret();
		struct scram_server s;
		char err[256] = "", *m;
		size_t n = 8 + sizeof(s.nonce) - 25;

		auth_scram_server_init(&s, &secret);
		m = auth_scram_server_first(&s, unit_guard_copy(longmsg, n), n, err, sizeof(err));
		UNIT_CHECK(m != NULL && strlen(s.nonce) == sizeof(s.nonce) - 1,
			   "client-first: longest client nonce that fits is accepted");
		free(m);
		auth_scram_server_free(&s);
	}

	/* extensions after the nonce are ignored, as PostgreSQL does */
	{
		struct scram_secret secret = rfc_secret();
		struct scram_server s;
		char err[256] = "", *m;

		auth_scram_server_init(&s, &secret);
		m = server_first(&s, "y,,n=someone,r=abc,x=ext", err, sizeof(err));
		UNIT_CHECK(m != NULL && strncmp(m, "r=abc", 5) == 0,
			   "client-first with y flag and an extension accepted");
		free(m);
		m = server_first(&s, "n,,n=,r=abc", err, sizeof(err));
		UNIT_CHECK(m == NULL && strstr(err, "already started") != NULL, "client-first twice refused");
		free(m);
		auth_scram_server_free(&s);
	}
}

static void test_bad_client_final(void)
{
	struct scram_secret secret = rfc_secret();
	struct scram_server s;
	char err[256], *m, name[100];
	static const struct {
		const char *msg, *err;
	} cases[] = {
		{ "", "empty" },
		{ "c=biws", "nonce attribute expected" },
		{ "r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  "channel-binding attribute" },
		{ "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" RFC_CNONCE RFC_SNONCE
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  "unexpected SCRAM channel-binding" },
		{ "c=biws,r=" RFC_CNONCE "XX,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  "nonce mismatch" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE, "proof attribute expected" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",", "nonce attribute expected" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=", "invalid client proof" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzb", "invalid client proof" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV==",
		  "invalid client proof" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
		  "invalid client proof" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV!=",
		  "invalid client proof" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
		  "garbage" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,",
		  "garbage" },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",junk,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  "proof attribute expected" },
	};

	/* before any client-first */
	auth_scram_server_init(&s, &secret);
	m = server_final(&s, RFC_CLIENT_FINAL, err, sizeof(err));
	UNIT_CHECK(m == NULL && strstr(err, "no exchange in progress") != NULL,
		   "client-final before client-first refused");
	auth_scram_server_free(&s);

	/* one exchange takes every bad final and still accepts the good one afterwards */
	auth_scram_server_init(&s, &secret);
	auth_scram_set_test_nonce(RFC_SNONCE);
	free(server_first(&s, RFC_CLIENT_FIRST, err, sizeof(err)));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		m = server_final(&s, cases[i].msg, err, sizeof(err));
		snprintf(name, sizeof(name), "bad client-final #%zu (%.40s) refused", i, cases[i].msg);
		if (!UNIT_CHECK(m == NULL && strstr(err, cases[i].err) != NULL, name))
			printf("#   got %s, err \"%s\"\n", m ? m : "NULL", err);
		free(m);
	}
	{
		const char nul_msg[] =
			"c=biws,r=" RFC_CNONCE RFC_SNONCE "\0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

		m = auth_scram_server_final(&s, unit_guard_copy(nul_msg, sizeof(nul_msg) - 1),
					    sizeof(nul_msg) - 1, err, sizeof(err));
		UNIT_CHECK(m == NULL && strstr(err, "NUL") != NULL,
			   "client-final with an embedded NUL refused");
	}
	/* an extension before the proof is allowed and is part of the AuthMessage, so the RFC proof fails */
	m = server_final(
		&s,
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",x=y,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", err,
		sizeof(err));
	UNIT_CHECK(m == NULL && strstr(err, "wrong password") != NULL,
		   "client-final extension is covered by the proof");
	m = server_final(&s, RFC_CLIENT_FINAL, err, sizeof(err));
	UNIT_EQ_STR(m, RFC_SERVER_FINAL, "after refusals the valid client-final still succeeds");
	free(m);
	m = server_final(&s, RFC_CLIENT_FINAL, err, sizeof(err));
	UNIT_CHECK(m == NULL && strstr(err, "already finished") != NULL,
		   "client-final after success refused");
	auth_scram_server_free(&s);
}

static void test_bad_server_messages(void)
{
	struct scram_client c;
	char err[256], *m, name[100];
	static const struct {
		const char *msg, *err;
	} cases[] = {
		{ "", "empty" },
		{ "m=ext,r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=4096", "extension" },
		{ "r=other" RFC_SNONCE ",s=" RFC_SALT_B64 ",i=4096", "nonce mismatch" },
		{ "r=" RFC_CNONCE ",s=" RFC_SALT_B64 ",i=4096", "nonce mismatch" },
		{ "r=rOprNGfwEbeRWgbNEkq,s=" RFC_SALT_B64 ",i=4096", "nonce mismatch" },
		{ "r=" RFC_CNONCE "a b,s=" RFC_SALT_B64 ",i=4096", "nonce" },
		{ "s=" RFC_SALT_B64 ",r=" RFC_CNONCE "x,i=4096", "nonce" },
		{ "r=" RFC_CNONCE "x,i=4096,s=" RFC_SALT_B64, "salt attribute expected" },
		{ "r=" RFC_CNONCE "x,s=!!!!,i=4096", "invalid salt" },
		{ "r=" RFC_CNONCE "x,s=,i=4096", "invalid salt" },
		{ "r=" RFC_CNONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", "invalid salt" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64, "iteration count" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=0", "iteration count" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=-5", "iteration count" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=4096x", "iteration count" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=99999999999", "iteration count" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=", "iteration count" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=4096,x=1", "garbage" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=4096,", "iteration count" },
		/* bounded: the derivation would hold the event loop for minutes */
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=1000001", "more than the limit of 1000000" },
		{ "r=" RFC_CNONCE "x,s=" RFC_SALT_B64 ",i=2147483647", "more than the limit" },
	};
	static const struct {
		const char *msg, *err;
	} finals[] = {
		{ "", "empty" },
		{ "e=invalid-proof", "error received from server in SCRAM exchange: invalid-proof" },
		{ "x=1", "server signature expected" },
		{ "v=", "invalid server signature" },
		{ "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSO==", "invalid server signature" },
		{ "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=,", "server signature expected" },
		{ "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=,x", "garbage" },
	};

	auth_scram_client_init_password(&c, "pencil");
	m = client_final(&c, RFC_SERVER_FIRST, err, sizeof(err));
	UNIT_CHECK(m == NULL && strstr(err, "unexpected") != NULL,
		   "server-first before client-first refused");
	UNIT_CHECK(!client_verify(&c, PG_SHAPE_SERVER_FINAL, err, sizeof(err)) &&
			   strstr(err, "unexpected") != NULL,
		   "server-final before server-first refused");
	auth_scram_set_test_nonce(RFC_CNONCE);
	free(auth_scram_client_first(&c));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		m = client_final(&c, cases[i].msg, err, sizeof(err));
		snprintf(name, sizeof(name), "bad server-first #%zu (%.40s) refused", i, cases[i].msg);
		if (!UNIT_CHECK(m == NULL && strstr(err, cases[i].err) != NULL, name))
			printf("#   got %s, err \"%s\"\n", m ? m : "NULL", err);
		free(m);
	}
	m = client_final(&c, RFC_SERVER_FIRST, err, sizeof(err));
	UNIT_EQ_STR(m, PG_SHAPE_CLIENT_FINAL, "after refusals the valid server-first still works");
	free(m);
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		err[0] = '\0';
		snprintf(name, sizeof(name), "bad server-final #%zu (%.40s) refused", i, finals[i].msg);
		if (!UNIT_CHECK(!client_verify(&c, finals[i].msg, err, sizeof(err)) &&
					strstr(err, finals[i].err) != NULL,
				name))
			printf("#   err \"%s\"\n", err);
	}
	UNIT_CHECK(client_verify(&c, PG_SHAPE_SERVER_FINAL, err, sizeof(err)),
		   "valid server-final still verifies");
	auth_scram_client_free(&c);
}

static void test_equal(void)
{
	UNIT_CHECK(auth_equal("abcd", "abcd", 4), "auth_equal: equal");
	UNIT_CHECK(!auth_equal("abcd", "abce", 4), "auth_equal: last byte differs");
	UNIT_CHECK(auth_equal("abcd", "abce", 3), "auth_equal: only len bytes compared");
}

int main(void)
{
	test_md5();
	test_check_password();
	test_parse_secret();
	test_make_secret();
	test_rfc7677_server();
	test_rfc7677_client();
	test_round_trips();
	test_bad_client_first();
	test_bad_client_final();
	test_bad_server_messages();
	test_equal();
	return unit_done();
}
