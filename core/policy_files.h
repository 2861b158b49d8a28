/* Where the Lua runtime and the policy files are, private to the policy*.c family. */
#ifndef MB_POLICY_FILES_H
#define MB_POLICY_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct file_list {
	char **paths;
	int n;
	int cap;
};

/* The directory holding lua/ and policies/: policy_set_runtime_dir's, else beside the executable,
 * else MB_DATADIR. */
bool policy_files_runtime(char *out, size_t outlen, char *err, size_t errlen);
/* policy_file, then policy_dir's *.lua (not hidden, regular files) in name order. */
bool policy_files_list(const struct config *cfg, struct file_list *fl, char *err, size_t errlen);
void policy_files_free(struct file_list *fl);

#endif
