/*
 * Replays saved inputs through a fuzz target without libFuzzer: every file named on the command line
 * (directories: every file in them), once, in order. Built with ASan/UBSan for `make check`, so the
 * committed corpora and crash inputs are re-checked on every run, deterministically.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#ifndef FUZZ_NAME
#define FUZZ_NAME "unknown"
#endif
#ifndef MB_DATADIR
#define MB_DATADIR "."
#endif

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t size = 0, cap = 0, n;

	if (!f) {
		perror(path);
		return -1;
	}
	do {
		if (size == cap) {
			cap = cap ? 2 * cap : 4096;
			data = realloc(data, cap);
			if (!data) {
				fclose(f);
				return -1;
			}
		}
		n = fread(data + size, 1, cap - size, f);
		size += n;
	} while (n > 0);
	fclose(f);
	/* an exact-size copy, so that a read one byte past the input is caught */
	uint8_t *exact = malloc(size ? size : 1);
	if (!exact) {
		free(data);
		return -1;
	}
	memcpy(exact, data, size);
	free(data);
	printf("# %s\n", path);
	fflush(stdout);	/* a crash report then names the input */
	LLVMFuzzerTestOneInput(exact, size);
	free(exact);
	return 1;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;
	int done = 0;

	if (!d) {
		perror(dir);
		return -1;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		int r = replay_file(path);
		if (r < 0)
			return -1;
		done += r;
		free(names[i]);
	}
	free(names);
	return done;
}

int main(int argc, char **argv)
{
	/* without arguments: the target's committed corpus and crash inputs */
	char corpus[4096], crashes[4096];
	char *defaults[] = { argv[0], corpus, crashes };
	int total = 0;

	snprintf(corpus, sizeof(corpus), "%s/tests/fuzz/corpus/%s", MB_DATADIR, FUZZ_NAME);
	snprintf(crashes, sizeof(crashes), "%s/tests/fuzz/crashes/%s", MB_DATADIR, FUZZ_NAME);
	if (argc < 2) {
		argc = 3;
		argv = defaults;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int r;
		if (stat(argv[i], &st) != 0)
			continue;	/* a target without saved crashes has no crash directory */
		r = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
		if (r < 0)
			return 2;
		total += r;
	}
	if (total > 0) {
		printf("ok 1 - fuzz target %s: %d saved inputs replayed\n1 passed, 0 failed\n", FUZZ_NAME, total);
		return 0;
	}
	printf("not ok 1 - fuzz target %s: no saved inputs (tests/fuzz/corpus/%s is empty)\n0 passed, 1 failed\n",
	       FUZZ_NAME, FUZZ_NAME);
	return 1;
}
