/* Password maths: md5 hashes and SCRAM-SHA-256 (both sides), on OpenSSL. */
#ifndef MB_AUTH_H
#define MB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32
#define SCRAM_MAX_SALT 64
/* Largest iteration count a server may ask of our password login (PostgreSQL's default is 4096). */
#define SCRAM_MAX_SERVER_ITERATIONS 1000000
#define SCRAM_NONCE_LEN 18 /* raw bytes, base64 encoded on the wire */

/* md5: "md5" + hex(md5(password || user)); out must hold 36 bytes. */
void auth_md5_secret(const char *password, const char *user, char out[36]);
/* Client's answer to an md5 salt: "md5" + hex(md5(hex-part-of-secret || salt)); out 36 bytes. */
void auth_md5_response(const char *md5_secret, const uint8_t salt[4], char out[36]);

/* A parsed SCRAM verifier ("SCRAM-SHA-256$iter:salt$StoredKey:ServerKey"). */
struct scram_secret {
	int iterations;
	uint8_t salt[SCRAM_MAX_SALT];
	size_t salt_len;
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

bool auth_scram_parse_secret(const char *text, struct scram_secret *out) __attribute__((warn_unused_result));
/* Build a verifier from a plain password (fresh random salt, given iterations). */
bool auth_scram_secret_from_password(const char *password, int iterations, struct scram_secret *out)
	__attribute__((warn_unused_result));
/* Same with a given salt (deterministic: tests, or re-deriving a known verifier). */
bool auth_scram_secret_with_salt(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
				 struct scram_secret *out) __attribute__((warn_unused_result));
/* Write the verifier text as PostgreSQL stores it; false if it does not fit in outlen. */
bool auth_scram_format_secret(const struct scram_secret *s, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Server side of SCRAM-SHA-256 (we authenticate a client).
 * Flow: scram_server_first(client-first) -> server-first message to send;
 *       scram_server_final(client-final) -> server-final message to send, or failure.
 * After success, client_key holds the client's ClientKey, usable to log in to
 * PostgreSQL with the same secret (SCRAM pass-through).
 */
struct scram_server {
	struct scram_secret secret;
	char *client_first_bare;
	char *server_first;
	char nonce[256];		/* client nonce + server nonce, NUL-terminated */
	uint8_t client_key[SCRAM_KEY_LEN];
	bool have_client_key;
};

void auth_scram_server_init(struct scram_server *s, const struct scram_secret *secret);
void auth_scram_server_free(struct scram_server *s);
/* Both return a malloc'd message to send, or NULL with a reason in err. */
char *auth_scram_server_first(struct scram_server *s, const char *client_first, size_t len, char *err,
			      size_t errlen);
char *auth_scram_server_final(struct scram_server *s, const char *client_final, size_t len, char *err,
			      size_t errlen);

/*
 * Client side of SCRAM-SHA-256 (we log in to PostgreSQL).
 * Credentials: a plain password, or ClientKey+ServerKey from a client's own SCRAM login.
 */
struct scram_client {
	char *password;		/* or NULL when keys are given */
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
	bool have_keys;
	char nonce[256];
	char *client_first_bare;
	char *server_first;
	uint8_t expected_server_signature[SCRAM_KEY_LEN];
};

void auth_scram_client_init_password(struct scram_client *c, const char *password);
void auth_scram_client_init_keys(struct scram_client *c, const uint8_t client_key[SCRAM_KEY_LEN],
				 const uint8_t server_key[SCRAM_KEY_LEN]);
void auth_scram_client_free(struct scram_client *c);
/* client-first-message ("n,,n=,r=<nonce>"), malloc'd. */
char *auth_scram_client_first(struct scram_client *c);
/* Given server-first, produce client-final (malloc'd) or NULL + err. */
char *auth_scram_client_final(struct scram_client *c, const char *server_first, size_t len, char *err,
			      size_t errlen);
/* Check server-final ("v=..."). */
bool auth_scram_client_verify(struct scram_client *c, const char *server_final, size_t len, char *err,
			      size_t errlen);

/* Tests only: the next nonce generated (client or server side) is this text instead of random; NULL clears. */
void auth_scram_set_test_nonce(const char *nonce);

/* Check a cleartext password against any kind of stored secret (plain, md5, SCRAM). */
bool auth_check_password(const char *user, const char *secret, const char *password);

/* Constant-time comparison. */
bool auth_equal(const void *a, const void *b, size_t len);

#endif
