/* Policy file discovery: the Lua runtime's directory and the policy files a config names, in load order. */
#include "policy_files.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "policy.h"
#include "policy_engine.h"

#ifndef MB_DATADIR
#define MB_DATADIR "/usr/local/share/moonbouncer"
#endif

static char *runtime_override;

static bool runtime_at(const char *dir)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/lua/moonbouncer/dispatcher.lua", dir);

	return n > 0 && (size_t)n < sizeof(path) && access(path, R_OK) == 0;
}

bool policy_files_runtime(char *out, size_t outlen, char *err, size_t errlen)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (runtime_override != NULL) {
		snprintf(out, outlen, "%s", runtime_override);
		if (runtime_at(out))
			return true;
		errbuf_set(err, errlen, "no Lua runtime in %s/lua", out);
		return false;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (runtime_at(exe)) {
				snprintf(out, outlen, "%s", exe);
				return true;
			}
		}
	} else {
		snprintf(exe, sizeof(exe), "(unknown: %s)", strerror(errno));
	}
	if (runtime_at(MB_DATADIR)) {
		snprintf(out, outlen, "%s", MB_DATADIR);
		return true;
	}
	errbuf_set(err, errlen, "cannot find the Lua runtime: no lua/moonbouncer/dispatcher.lua in %s or %s",
		   exe, MB_DATADIR);
	return false;
}

void policy_files_free(struct file_list *fl)
{
	for (int i = 0; i < fl->n; i++)
		free(fl->paths[i]);
	free(fl->paths);
	memset(fl, 0, sizeof(*fl));
}

static bool files_add(struct file_list *fl, const char *dir, const char *name)
{
	char *p;

	if (fl->n == fl->cap) {
		int cap = fl->cap ? fl->cap * 2 : 8;
		char **np = realloc(fl->paths, (size_t)cap * sizeof(*np));

		if (np == NULL)
			return false;
		fl->paths = np;
		fl->cap = cap;
	}
	if (dir != NULL) {
		size_t len = strlen(dir) + strlen(name) + 2;

		p = malloc(len);
		if (p != NULL)
			snprintf(p, len, "%s/%s", dir, name);
	} else {
		p = strdup(name);
	}
	if (p == NULL)
		return false;
	fl->paths[fl->n++] = p;
	return true;
}

bool policy_files_list(const struct config *cfg, struct file_list *fl, char *err, size_t errlen)
{
	DIR *d;
	struct dirent *de;
	int first;

	if (cfg->policy_file != NULL && cfg->policy_file[0] != '\0' && !files_add(fl, NULL, cfg->policy_file))
		goto oom;
	if (cfg->policy_dir == NULL || cfg->policy_dir[0] == '\0')
		return true;
	d = opendir(cfg->policy_dir);
	if (d == NULL) {
		errbuf_set(err, errlen, "policy_dir %s: %s", cfg->policy_dir, strerror(errno));
		return false;
	}
	first = fl->n;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char path[PATH_MAX];
		struct stat st;

		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".lua") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cfg->policy_dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (!files_add(fl, cfg->policy_dir, de->d_name)) {
			closedir(d);
			goto oom;
		}
	}
	closedir(d);
	qsort(fl->paths + first, (size_t)(fl->n - first), sizeof(*fl->paths), eng_cmp_str);
	return true;
oom:
	errbuf_set(err, errlen, "out of memory");
	return false;
}

void policy_set_runtime_dir(const char *dir)
{
	free(runtime_override);
	runtime_override = dir ? strdup(dir) : NULL;
}
