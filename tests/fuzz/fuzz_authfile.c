/* Fuzz target: the auth_file ("user" "secret" lines): load, then every user is found again. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authfile.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(data, size);
	char err[512];
	struct authfile *af;

	if (!path)
		return 0;
	err[0] = 0;
	af = authfile_load(path, err, sizeof(err));
	if (af) {
		for (size_t i = 0; i < af->n; i++) {
			const struct auth_entry *e = authfile_find(af, af->entries[i].user);
			if (!e || strcmp(e->user, af->entries[i].user) != 0)
				abort();
			if (authfile_secret_kind(e->secret) != e->kind)
				abort();
		}
		authfile_free(af);
	} else if (!err[0]) {
		abort();
	}
	return 0;
}
