/* auth_file: PgBouncer's "user" "secret" list, loaded and looked up. */
#ifndef MB_AUTHFILE_H
#define MB_AUTHFILE_H

#include <stdbool.h>
#include <stddef.h>

enum secret_kind {
	SECRET_PLAIN = 0,
	SECRET_MD5,	/* "md5" + 32 hex digits: md5(password || user) */
	SECRET_SCRAM,	/* "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>" */
};

struct auth_entry {
	char *user;
	char *secret;
	enum secret_kind kind;
};

struct authfile {
	struct auth_entry *entries;	/* sorted by user for lookup */
	size_t n;
};

/* Parse an auth_file. NULL path or "" yields an empty list. On error: NULL and "file:line: ..." in err. */
struct authfile *authfile_load(const char *path, char *err, size_t errlen);
void authfile_free(struct authfile *af);
const struct auth_entry *authfile_find(const struct authfile *af, const char *user);
enum secret_kind authfile_secret_kind(const char *secret);

#endif
