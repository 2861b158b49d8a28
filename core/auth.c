/* Password maths: PostgreSQL md5 hashes and SCRAM-SHA-256 (server and client side) on OpenSSL. */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "errbuf.h"

#define SCRAM_PREFIX "SCRAM-SHA-256$"
#define SCRAM_MAX_MESSAGE 1024	  /* as PostgreSQL's PG_MAX_SASL_MESSAGE_LENGTH */
#define SCRAM_SERVER_MAX_SALT 256 /* largest salt we accept from a server */

static char *test_nonce;

/* ---- small helpers ---- */

bool auth_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

static void to_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* ---- base64 (RFC 4648 with padding, as PostgreSQL writes it) ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define B64_LEN(n) (((n) + 2) / 3 * 4)

/* out must hold B64_LEN(n) + 1 bytes; NUL-terminated. */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];

		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = b64_chars[(v >> 6) & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict decode of n characters: padded, no whitespace. Returns bytes written, or -1. */
static long b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		uint32_t w;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (pad > 0 || (v[k] = b64_value(in[i + k])) < 0) {
				return -1;
			}
		}
		w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) | (uint32_t)v[3];
		if (o + 3 - (size_t)pad > cap)
			return -1;
		out[o++] = (uint8_t)(w >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(w >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)w;
	}
	return (long)o;
}

/* Decode a NUL-terminated base64 string into exactly want bytes. */
static bool b64_decode_exact(const char *in, uint8_t *out, size_t want)
{
	uint8_t tmp[SCRAM_KEY_LEN + 3];
	long n;

	if (want > SCRAM_KEY_LEN)
		return false;
	n = b64_decode(in, strlen(in), tmp, sizeof(tmp));
	if (n != (long)want)
		return false;
	memcpy(out, tmp, want);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return true;
}

/* ---- md5 ---- */

static bool md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[33])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) && EVP_DigestUpdate(ctx, a, alen) &&
	     EVP_DigestUpdate(ctx, b, blen) && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 16;
	EVP_MD_CTX_free(ctx);
	if (ok)
		to_hex(md, 16, out);
	return ok;
}

void auth_md5_secret(const char *password, const char *user, char out[36])
{
	memcpy(out, "md5", 3);
	if (!md5_hex(password, strlen(password), user, strlen(user), out + 3))
		out[0] = '\0'; /* matches nothing */
}

void auth_md5_response(const char *md5_secret, const uint8_t salt[4], char out[36])
{
	out[0] = '\0';
	if (strnlen(md5_secret, 36) != 35 || memcmp(md5_secret, "md5", 3) != 0)
		return;
	memcpy(out, "md5", 3);
	if (!md5_hex(md5_secret + 3, 32, salt, 4, out + 3))
		out[0] = '\0';
}

/* ---- SCRAM primitives ---- */

/*
 * PostgreSQL runs the password through SASLprep before deriving keys. For an
 * ASCII password SASLprep is the identity (PostgreSQL takes that fast path
 * too), so ASCII is exact. Other passwords are used as raw UTF-8 bytes, which
 * is what PostgreSQL does whenever SASLprep fails or finds a prohibited
 * character, and equals SASLprep for text already in NFKC without mapped
 * characters.
 */
static bool salted_password(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			    uint8_t out[SCRAM_KEY_LEN])
{
	return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
				 EVP_sha256(), SCRAM_KEY_LEN, out) == 1;
}

static bool hmac256(const uint8_t *key, size_t keylen, const void *data, size_t len,
		    uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = 0;

	return HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) != NULL &&
	       outlen == SCRAM_KEY_LEN;
}

static bool sha256(const void *data, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = 0;

	return EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) == 1 && outlen == SCRAM_KEY_LEN;
}

/* ClientKey and ServerKey from a password. */
static bool derive_keys(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			uint8_t client_key[SCRAM_KEY_LEN], uint8_t server_key[SCRAM_KEY_LEN])
{
	uint8_t salted[SCRAM_KEY_LEN];
	bool ok;

	ok = iterations > 0 && salted_password(password, salt, salt_len, iterations, salted) &&
	     hmac256(salted, SCRAM_KEY_LEN, "Client Key", 10, client_key) &&
	     hmac256(salted, SCRAM_KEY_LEN, "Server Key", 10, server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	return ok;
}

void auth_scram_set_test_nonce(const char *nonce)
{
	free(test_nonce);
	test_nonce = nonce ? strdup(nonce) : NULL;
}

/* A fresh nonce: base64 of SCRAM_NONCE_LEN random bytes, or the one-shot test nonce. */
static bool make_nonce(char *out, size_t outlen)
{
	uint8_t raw[SCRAM_NONCE_LEN];

	if (test_nonce != NULL) {
		bool fits = strlen(test_nonce) < outlen;

		if (fits)
			strcpy(out, test_nonce);
		free(test_nonce);
		test_nonce = NULL;
		return fits;
	}
	if (outlen < B64_LEN(SCRAM_NONCE_LEN) + 1 || RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	b64_encode(raw, sizeof(raw), out);
	return true;
}

/* ---- verifiers ---- */

bool auth_scram_parse_secret(const char *text, struct scram_secret *out)
{
	const char *p, *colon, *dollar;
	char *end;
	long iter;
	long n;
	char buf[128];

	memset(out, 0, sizeof(*out));
	if (text == NULL || strncmp(text, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) != 0)
		return false;
	p = text + strlen(SCRAM_PREFIX);
	if (!isdigit((unsigned char)*p))
		return false;
	errno = 0;
	iter = strtol(p, &end, 10);
	if (errno != 0 || *end != ':' || iter < 1 || iter > 0x7fffffff)
		return false;

	p = end + 1;
	dollar = strchr(p, '$');
	if (dollar == NULL)
		return false;
	n = b64_decode(p, (size_t)(dollar - p), out->salt, sizeof(out->salt));
	if (n <= 0)
		goto fail;

	p = dollar + 1;
	colon = strchr(p, ':');
	if (colon == NULL || (size_t)(colon - p) >= sizeof(buf))
		goto fail;
	memcpy(buf, p, (size_t)(colon - p));
	buf[colon - p] = '\0';
	if (!b64_decode_exact(buf, out->stored_key, SCRAM_KEY_LEN) ||
	    !b64_decode_exact(colon + 1, out->server_key, SCRAM_KEY_LEN))
		goto fail;
	out->iterations = (int)iter;
	out->salt_len = (size_t)n;
	return true;
fail:
	memset(out, 0, sizeof(*out));
	return false;
}

bool auth_scram_format_secret(const struct scram_secret *s, char *out, size_t outlen)
{
	char salt[B64_LEN(SCRAM_MAX_SALT) + 1];
	char stored[B64_LEN(SCRAM_KEY_LEN) + 1], server[B64_LEN(SCRAM_KEY_LEN) + 1];
	int n;

	if (s->salt_len == 0 || s->salt_len > SCRAM_MAX_SALT || s->iterations < 1)
		return false;
	b64_encode(s->salt, s->salt_len, salt);
	b64_encode(s->stored_key, SCRAM_KEY_LEN, stored);
	b64_encode(s->server_key, SCRAM_KEY_LEN, server);
	n = snprintf(out, outlen, SCRAM_PREFIX "%d:%s$%s:%s", s->iterations, salt, stored, server);
	return n > 0 && (size_t)n < outlen;
}

bool auth_scram_secret_with_salt(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
				 struct scram_secret *out)
{
	uint8_t client_key[SCRAM_KEY_LEN];
	bool ok;

	memset(out, 0, sizeof(*out));
	if (salt_len == 0 || salt_len > SCRAM_MAX_SALT || iterations < 1)
		return false;
	ok = derive_keys(password, salt, salt_len, iterations, client_key, out->server_key) &&
	     sha256(client_key, SCRAM_KEY_LEN, out->stored_key);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (!ok) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	out->iterations = iterations;
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	return true;
}

bool auth_scram_secret_from_password(const char *password, int iterations, struct scram_secret *out)
{
	uint8_t salt[16];

	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	return auth_scram_secret_with_salt(password, salt, sizeof(salt), iterations, out);
}

/* ---- SCRAM message parsing ---- */

/* Copy a message into a NUL-terminated string; a NUL inside or an oversized message is refused. */
static char *dup_message(const char *msg, size_t len, char *err, size_t errlen)
{
	char *s;

	if (msg == NULL || len == 0) {
		errbuf_set(err, errlen, "malformed SCRAM message (empty message)");
		return NULL;
	}
	if (len > SCRAM_MAX_MESSAGE) {
		errbuf_set(err, errlen, "malformed SCRAM message (longer than %d bytes)", SCRAM_MAX_MESSAGE);
		return NULL;
	}
	if (memchr(msg, '\0', len) != NULL) {
		errbuf_set(err, errlen, "malformed SCRAM message (contains a NUL byte)");
		return NULL;
	}
	s = malloc(len + 1);
	if (s == NULL) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(s, msg, len);
	s[len] = '\0';
	return s;
}

/*
 * Take "<attr>=value" at *p (attr 0: any letter) and cut it at the next comma,
 * which must be followed by more text. Returns the value, NULL if absent.
 */
static char *take_attr(char **p, char attr, char *name)
{
	char *s = *p, *comma;

	if (attr != 0 ? s[0] != attr : !isalpha((unsigned char)s[0]))
		return NULL;
	if (s[1] != '=')
		return NULL;
	if (name != NULL)
		*name = s[0];
	comma = strchr(s + 2, ',');
	if (comma != NULL) {
		if (comma[1] == '\0')
			return NULL; /* trailing comma */
		*comma = '\0';
		*p = comma + 1;
	} else {
		*p = s + strlen(s);
	}
	return s + 2;
}

/* RFC 5802 printable: 0x21..0x7e except ','. */
static bool nonce_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e || *s == ',')
			return false;
	return true;
}

static bool parse_iterations(const char *s, int *out)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 0x7fffffff)
		return false;
	*out = (int)v;
	return true;
}

/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
static char *auth_message(const char *client_first_bare, const char *server_first, size_t first_len,
			  const char *final_wo_proof, size_t final_len)
{
	return xasprintf("%s,%.*s,%.*s", client_first_bare, (int)first_len, server_first, (int)final_len,
			 final_wo_proof);
}

/* ---- server side ---- */

void auth_scram_server_init(struct scram_server *s, const struct scram_secret *secret)
{
	memset(s, 0, sizeof(*s));
	s->secret = *secret;
}

void auth_scram_server_free(struct scram_server *s)
{
	free(s->client_first_bare);
	free(s->server_first);
	OPENSSL_cleanse(s, sizeof(*s));
}

char *auth_scram_server_first(struct scram_server *s, const char *client_first, size_t len, char *err,
			      size_t errlen)
{
	char *msg, *p, *nonce, salt[B64_LEN(SCRAM_MAX_SALT) + 1], snonce[64];
	char *result = NULL;

	if (s->server_first != NULL || s->client_first_bare != NULL) {
		errbuf_set(err, errlen, "unexpected SCRAM client-first-message: exchange already started");
		return NULL;
	}
	msg = dup_message(client_first, len, err, errlen);
	if (msg == NULL)
		return NULL;
	p = msg;

	/* gs2-header: channel binding flag, optional authzid */
	switch (*p) {
	case 'n':
	case 'y': /* client could bind but thinks we cannot: true, we offer no -PLUS */
		p++;
		break;
	case 'p':
		errbuf_set(err, errlen,
			"SCRAM channel binding is not supported: "
			"the client selected SCRAM-SHA-256 but asked for channel binding (\"p=\")");
		goto out;
	default:
		errbuf_set(err, errlen, "malformed SCRAM message (unexpected channel-binding flag)");
		goto out;
	}
	if (*p != ',') {
		errbuf_set(err, errlen, "malformed SCRAM message (comma expected after channel-binding flag)");
		goto out;
	}
	p++;
	if (p[0] == 'a' && p[1] == '=') {
		errbuf_set(err, errlen, "client uses SCRAM authorization identity, which is not supported");
		goto out;
	}
	if (*p != ',') {
		errbuf_set(err, errlen, "malformed SCRAM message (comma expected after gs2 header)");
		goto out;
	}
	p++;

	/* client-first-message-bare, kept verbatim for the AuthMessage */
	s->client_first_bare = strdup(p);
	if (s->client_first_bare == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	if (p[0] == 'm' && p[1] == '=') {
		errbuf_set(err, errlen, "client requires an unsupported SCRAM extension");
		goto fail;
	}
	/* The user name is ignored, as PostgreSQL does: the startup packet names the user. */
	if (take_attr(&p, 'n', NULL) == NULL) {
		errbuf_set(err, errlen, "malformed SCRAM message (user name attribute expected)");
		goto fail;
	}
	nonce = take_attr(&p, 'r', NULL);
	if (nonce == NULL || !nonce_ok(nonce)) {
		errbuf_set(err, errlen, "malformed SCRAM message (nonce attribute missing or invalid)");
		goto fail;
	}
	while (*p != '\0') { /* optional extensions are ignored */
		if (take_attr(&p, 0, NULL) == NULL) {
			errbuf_set(err, errlen,
				"malformed SCRAM message (garbage at end of client-first-message)");
			goto fail;
		}
	}

	if (!make_nonce(snonce, sizeof(snonce)) || !nonce_ok(snonce)) {
		errbuf_set(err, errlen, "could not generate SCRAM nonce");
		goto fail;
	}
	if (strlen(nonce) + strlen(snonce) >= sizeof(s->nonce)) {
		errbuf_set(err, errlen, "SCRAM client nonce too long (%zu characters)", strlen(nonce));
		goto fail;
	}
	{
		size_t ln = strlen(nonce), ls = strlen(snonce);
		memcpy(s->nonce, nonce, ln);
		memcpy(s->nonce + ln, snonce, ls + 1);
	}
	if (s->secret.salt_len == 0 || s->secret.salt_len > SCRAM_MAX_SALT || s->secret.iterations < 1) {
		errbuf_set(err, errlen, "invalid SCRAM secret");
		goto fail;
	}
	b64_encode(s->secret.salt, s->secret.salt_len, salt);
	s->server_first = xasprintf("r=%s,s=%s,i=%d", s->nonce, salt, s->secret.iterations);
	if (s->server_first == NULL || (result = strdup(s->server_first)) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto fail;
	}
	goto out;
fail:
	free(s->client_first_bare);
	s->client_first_bare = NULL;
	free(s->server_first);
	s->server_first = NULL;
out:
	free(msg);
	return result;
}

char *auth_scram_server_final(struct scram_server *s, const char *client_final, size_t len, char *err,
			      size_t errlen)
{
	char *msg, *p, *cb, *nonce, *proof_b64, *proof_at, *am = NULL, *result = NULL;
	uint8_t proof[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	char v[B64_LEN(SCRAM_KEY_LEN) + 1];

	if (s->server_first == NULL || s->client_first_bare == NULL) {
		errbuf_set(err, errlen, "unexpected SCRAM client-final-message: no exchange in progress");
		return NULL;
	}
	if (s->have_client_key) {
		errbuf_set(err, errlen, "unexpected SCRAM client-final-message: exchange already finished");
		return NULL;
	}
	msg = dup_message(client_final, len, err, errlen);
	if (msg == NULL)
		return NULL;
	p = msg;

	cb = take_attr(&p, 'c', NULL);
	if (cb == NULL) {
		errbuf_set(err, errlen, "malformed SCRAM message (channel-binding attribute expected)");
		goto out;
	}
	/* base64 of "n,," or "y,,", accepted either way as PostgreSQL does */
	if (strcmp(cb, "biws") != 0 && strcmp(cb, "eSws") != 0) {
		errbuf_set(err, errlen, "unexpected SCRAM channel-binding attribute in client-final-message");
		goto out;
	}
	nonce = take_attr(&p, 'r', NULL);
	if (nonce == NULL) {
		errbuf_set(err, errlen, "malformed SCRAM message (nonce attribute expected)");
		goto out;
	}
	if (strcmp(nonce, s->nonce) != 0) {
		errbuf_set(err, errlen, "SCRAM nonce mismatch");
		goto out;
	}
	for (;;) { /* extensions, then the proof, which must come last */
		proof_at = p;
		if (p[0] == 'p' && p[1] == '=')
			break;
		if (take_attr(&p, 0, NULL) == NULL) {
			errbuf_set(err, errlen, "malformed SCRAM message (proof attribute expected)");
			goto out;
		}
	}
	proof_b64 = take_attr(&p, 'p', NULL);
	if (proof_b64 == NULL || *p != '\0') {
		errbuf_set(err, errlen, "malformed SCRAM message (garbage at end of client-final-message)");
		goto out;
	}
	if (!b64_decode_exact(proof_b64, proof, SCRAM_KEY_LEN)) {
		errbuf_set(err, errlen, "malformed SCRAM message (invalid client proof)");
		goto out;
	}

	am = auth_message(s->client_first_bare, s->server_first, strlen(s->server_first), client_final,
			  (size_t)(proof_at - msg) - 1);
	if (am == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); it is right when H(ClientKey) == StoredKey. */
	if (!hmac256(s->secret.stored_key, SCRAM_KEY_LEN, am, strlen(am), sig)) {
		errbuf_set(err, errlen, "SCRAM computation failed");
		goto out;
	}
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	if (!sha256(key, SCRAM_KEY_LEN, stored)) {
		errbuf_set(err, errlen, "SCRAM computation failed");
		goto out;
	}
	if (!auth_equal(stored, s->secret.stored_key, SCRAM_KEY_LEN)) {
		errbuf_set(err, errlen, "SCRAM client proof does not match (wrong password)");
		goto out;
	}
	if (!hmac256(s->secret.server_key, SCRAM_KEY_LEN, am, strlen(am), sig)) {
		errbuf_set(err, errlen, "SCRAM computation failed");
		goto out;
	}
	b64_encode(sig, SCRAM_KEY_LEN, v);
	result = xasprintf("v=%s", v);
	if (result == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	memcpy(s->client_key, key, SCRAM_KEY_LEN);
	s->have_client_key = true;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(proof, sizeof(proof));
	free(am);
	free(msg);
	return result;
}

/* ---- client side ---- */

void auth_scram_client_init_password(struct scram_client *c, const char *password)
{
	memset(c, 0, sizeof(*c));
	c->password = strdup(password ? password : "");
}

void auth_scram_client_init_keys(struct scram_client *c, const uint8_t client_key[SCRAM_KEY_LEN],
				 const uint8_t server_key[SCRAM_KEY_LEN])
{
	memset(c, 0, sizeof(*c));
	memcpy(c->client_key, client_key, SCRAM_KEY_LEN);
	memcpy(c->server_key, server_key, SCRAM_KEY_LEN);
	c->have_keys = true;
}

void auth_scram_client_free(struct scram_client *c)
{
	if (c->password != NULL) {
		OPENSSL_cleanse(c->password, strlen(c->password));
		free(c->password);
	}
	free(c->client_first_bare);
	free(c->server_first);
	OPENSSL_cleanse(c, sizeof(*c));
}

char *auth_scram_client_first(struct scram_client *c)
{
	if (c->client_first_bare != NULL)
		return NULL;
	if (!make_nonce(c->nonce, sizeof(c->nonce)) || !nonce_ok(c->nonce))
		return NULL;
	/* no user name: PostgreSQL takes it from the startup packet (libpq sends "n=" too) */
	c->client_first_bare = xasprintf("n=,r=%s", c->nonce);
	if (c->client_first_bare == NULL)
		return NULL;
	return xasprintf("n,,%s", c->client_first_bare);
}

char *auth_scram_client_final(struct scram_client *c, const char *server_first, size_t len, char *err,
			      size_t errlen)
{
	char *msg, *p, *nonce, *salt_b64, *iter_s, *wo_proof = NULL, *am = NULL, *result = NULL;
	uint8_t salt[SCRAM_SERVER_MAX_SALT], stored[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
	char proof_b64[B64_LEN(SCRAM_KEY_LEN) + 1];
	long salt_len;
	int iterations;

	if (c->client_first_bare == NULL || c->server_first != NULL) {
		errbuf_set(err, errlen, "unexpected SCRAM server-first-message");
		return NULL;
	}
	if (!c->have_keys && c->password == NULL) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	msg = dup_message(server_first, len, err, errlen);
	if (msg == NULL)
		return NULL;
	p = msg;

	if (p[0] == 'm' && p[1] == '=') {
		errbuf_set(err, errlen, "server requires an unsupported SCRAM extension");
		goto out;
	}
	nonce = take_attr(&p, 'r', NULL);
	if (nonce == NULL || !nonce_ok(nonce)) {
		errbuf_set(err, errlen, "malformed SCRAM message (nonce attribute missing or invalid)");
		goto out;
	}
	if (strlen(nonce) <= strlen(c->nonce) || strncmp(nonce, c->nonce, strlen(c->nonce)) != 0) {
		errbuf_set(err, errlen, "invalid SCRAM response (nonce mismatch)");
		goto out;
	}
	salt_b64 = take_attr(&p, 's', NULL);
	if (salt_b64 == NULL) {
		errbuf_set(err, errlen, "malformed SCRAM message (salt attribute expected)");
		goto out;
	}
	salt_len = b64_decode(salt_b64, strlen(salt_b64), salt, sizeof(salt));
	if (salt_len <= 0) {
		errbuf_set(err, errlen, "malformed SCRAM message (invalid salt)");
		goto out;
	}
	iter_s = take_attr(&p, 'i', NULL);
	if (iter_s == NULL || !parse_iterations(iter_s, &iterations)) {
		errbuf_set(err, errlen, "malformed SCRAM message (invalid iteration count)");
		goto out;
	}
	if (*p != '\0') {
		errbuf_set(err, errlen, "malformed SCRAM message (garbage at end of server-first-message)");
		goto out;
	}

	if (!c->have_keys && iterations > SCRAM_MAX_SERVER_ITERATIONS) {
		/* the key derivation runs on the event loop: an absurd count would stop every client */
		errbuf_set(err, errlen, "server asked for %d SCRAM iterations, more than the limit of %d", iterations,
			SCRAM_MAX_SERVER_ITERATIONS);
		goto out;
	}
	if (!c->have_keys &&
	    !derive_keys(c->password, salt, (size_t)salt_len, iterations, c->client_key, c->server_key)) {
		errbuf_set(err, errlen, "SCRAM computation failed");
		goto out;
	}
	wo_proof = xasprintf("c=biws,r=%s", nonce);
	if (wo_proof == NULL || (am = auth_message(c->client_first_bare, server_first, len, wo_proof,
						   strlen(wo_proof))) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	if (!sha256(c->client_key, SCRAM_KEY_LEN, stored) ||
	    !hmac256(stored, SCRAM_KEY_LEN, am, strlen(am), sig) ||
	    !hmac256(c->server_key, SCRAM_KEY_LEN, am, strlen(am), c->expected_server_signature)) {
		errbuf_set(err, errlen, "SCRAM computation failed");
		goto out;
	}
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = c->client_key[i] ^ sig[i];
	b64_encode(proof, SCRAM_KEY_LEN, proof_b64);
	result = xasprintf("%s,p=%s", wo_proof, proof_b64);
	c->server_first = malloc(len + 1); /* the input has no NUL: no strndup */
	if (c->server_first != NULL) {
		memcpy(c->server_first, server_first, len);
		c->server_first[len] = '\0';
	}
	if (result == NULL || c->server_first == NULL) {
		free(result);
		result = NULL;
		free(c->server_first);
		c->server_first = NULL;
		errbuf_set(err, errlen, "out of memory");
	}
out:
	free(wo_proof);
	free(am);
	free(msg);
	return result;
}

bool auth_scram_client_verify(struct scram_client *c, const char *server_final, size_t len, char *err,
			      size_t errlen)
{
	char *msg, *p, *v;
	uint8_t sig[SCRAM_KEY_LEN];
	bool ok = false;

	if (c->server_first == NULL) {
		errbuf_set(err, errlen, "unexpected SCRAM server-final-message");
		return false;
	}
	msg = dup_message(server_final, len, err, errlen);
	if (msg == NULL)
		return false;
	p = msg;
	if (p[0] == 'e' && p[1] == '=') {
		errbuf_set(err, errlen, "error received from server in SCRAM exchange: %s", p + 2);
		goto out;
	}
	v = take_attr(&p, 'v', NULL);
	if (v == NULL) {
		errbuf_set(err, errlen, "malformed SCRAM message (server signature expected)");
		goto out;
	}
	while (*p != '\0') { /* extensions are ignored */
		if (take_attr(&p, 0, NULL) == NULL) {
			errbuf_set(err, errlen,
				"malformed SCRAM message (garbage at end of server-final-message)");
			goto out;
		}
	}
	if (!b64_decode_exact(v, sig, SCRAM_KEY_LEN)) {
		errbuf_set(err, errlen, "malformed SCRAM message (invalid server signature)");
		goto out;
	}
	if (!auth_equal(sig, c->expected_server_signature, SCRAM_KEY_LEN)) {
		errbuf_set(err, errlen, "incorrect server signature");
		goto out;
	}
	ok = true;
out:
	free(msg);
	return ok;
}

/* ---- cleartext check against any stored secret ---- */

static bool is_md5_secret(const char *s)
{
	/* PgBouncer's rule: "md5" and 35 characters in all */
	return strncmp(s, "md5", 3) == 0 && strlen(s) == 35;
}

bool auth_check_password(const char *user, const char *secret, const char *password)
{
	/* Empty passwords are refused, as PostgreSQL refuses them; an empty secret means no password. */
	if (user == NULL || secret == NULL || password == NULL || *password == '\0' || *secret == '\0')
		return false;

	if (strncmp(secret, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) == 0) {
		struct scram_secret s;
		uint8_t client_key[SCRAM_KEY_LEN], server_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
		bool ok, stored_ok, server_ok;

		/* a broken verifier is refused rather than taken as a cleartext password */
		if (!auth_scram_parse_secret(secret, &s))
			return false;
		ok = derive_keys(password, s.salt, s.salt_len, s.iterations, client_key, server_key) &&
		     sha256(client_key, SCRAM_KEY_LEN, stored);
		/* StoredKey is what a SCRAM login proves; PostgreSQL checks ServerKey: require both,
		 * both compared every time */
		stored_ok = auth_equal(stored, s.stored_key, SCRAM_KEY_LEN);
		server_ok = auth_equal(server_key, s.server_key, SCRAM_KEY_LEN);
		ok = ok && stored_ok && server_ok;
		OPENSSL_cleanse(client_key, sizeof(client_key));
		OPENSSL_cleanse(&s, sizeof(s));
		return ok;
	}
	if (is_md5_secret(secret)) {
		char md5[36];
		unsigned diff = 0;

		auth_md5_secret(password, user, md5);
		if (md5[0] == '\0')
			return false;
		for (int i = 0; i < 35; i++) /* hex digits compared case-insensitively */
			diff |= (unsigned)(tolower((unsigned char)md5[i]) ^
					   tolower((unsigned char)secret[i]));
		return diff == 0;
	}
	/* Plain: compare digests so the time taken does not depend on where the strings differ. */
	{
		uint8_t a[SCRAM_KEY_LEN], b[SCRAM_KEY_LEN];

		if (!sha256(secret, strlen(secret), a) || !sha256(password, strlen(password), b))
			return false;
		return auth_equal(a, b, SCRAM_KEY_LEN);
	}
}
