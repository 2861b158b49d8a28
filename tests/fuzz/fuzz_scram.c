/*
 * Fuzz target: both sides of SCRAM-SHA-256. The first input byte picks the side; the rest is split at the
 * first NUL into the peer's two messages. Server side: client-first, then client-final, against a fixed
 * verifier. Client side: server-first, then server-final, with keys or with a password (the server picks
 * the iteration count: one over the client's bound must be refused, not computed). Nonces are fixed, so
 * the fuzzer can reach the proof checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static struct scram_secret secret;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t salt[16] = "fuzz-salt-16byte";
	(void)argc;
	(void)argv;
	if (!auth_scram_secret_with_salt("pencil", salt, sizeof(salt), 4096, &secret))
		abort();
	return 0;
}

static void server_side(const char *first, size_t first_len, const char *final, size_t final_len)
{
	struct scram_server s;
	char err[256];
	char *out;

	auth_scram_set_test_nonce("fuzzservernonce");
	auth_scram_server_init(&s, &secret);
	out = auth_scram_server_first(&s, first, first_len, err, sizeof(err));
	if (out) {
		free(out);
		out = auth_scram_server_final(&s, final, final_len, err, sizeof(err));
		if (out && !s.have_client_key)
			abort();	/* a login that passed proved the client key */
		free(out);
	}
	auth_scram_server_free(&s);
}

static void client_side(bool with_keys, const char *first, size_t first_len, const char *final, size_t final_len)
{
	struct scram_client c;
	char err[256];
	char *out;

	auth_scram_set_test_nonce("fuzzclientnonce");
	if (with_keys)
		auth_scram_client_init_keys(&c, secret.stored_key, secret.server_key);
	else
		auth_scram_client_init_password(&c, "pencil");
	out = auth_scram_client_first(&c);
	free(out);
	out = auth_scram_client_final(&c, first, first_len, err, sizeof(err));
	if (out) {
		free(out);
		(void)auth_scram_client_verify(&c, final, final_len, err, sizeof(err));
	}
	auth_scram_client_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *first, *final, *nul;
	size_t first_len, final_len;

	if (size < 1)
		return 0;
	first = (const char *)data + 1;
	nul = memchr(first, 0, size - 1);
	first_len = nul ? (size_t)(nul - first) : size - 1;
	final = nul ? nul + 1 : first + first_len;
	final_len = size - 1 - first_len - (nul ? 1 : 0);
	switch (data[0] % 3) {
	case 0:
		server_side(first, first_len, final, final_len);
		break;
	case 1:
		client_side(true, first, first_len, final, final_len);
		break;
	default:
		client_side(false, first, first_len, final, final_len);
		break;
	}
	auth_scram_set_test_nonce(NULL);
	return 0;
}
