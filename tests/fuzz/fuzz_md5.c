/*
 * Fuzz target: password checks against any stored secret (auth_check_password: plain, md5, SCRAM
 * verifiers as an auth_file holds them) and the md5 answer to a salt. Input: secret NUL password NUL
 * user NUL salt. A verifier's iteration count is the operator's choice; past a few thousand it only
 * makes the fuzzer slow, so such inputs are skipped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static const char *next_field(const char **p, const char *end)
{
	const char *s = *p, *nul = memchr(s, 0, (size_t)(end - s));
	if (!nul)
		return NULL;
	*p = nul + 1;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	const char *secret = next_field(&p, end), *password = secret ? next_field(&p, end) : NULL,
		   *user = password ? next_field(&p, end) : NULL;
	struct scram_secret s;
	char md5[36], answer[36];
	uint8_t salt[4] = { 0 };

	if (!user)
		return 0;
	memcpy(salt, p, (size_t)(end - p) < 4 ? (size_t)(end - p) : 4);
	if (auth_scram_parse_secret(secret, &s) && s.iterations > 4096)
		return 0;
	(void)auth_check_password(user, secret, password);
	/* the md5 round trip: the secret made from a password is accepted for that password (empty
	 * passwords are refused, as PostgreSQL refuses them) */
	auth_md5_secret(password, user, md5);
	if (auth_check_password(user, md5, password) != (password[0] != 0))
		abort();
	auth_md5_response(md5, salt, answer);
	if (memcmp(answer, "md5", 3) != 0 || strlen(answer) != 35)
		abort();
	return 0;
}
