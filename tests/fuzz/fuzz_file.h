/*
 * Fuzz targets whose parser reads a file by name: the input is written to one temporary file per
 * process (a real path: the ini reader resolves it to find its %include directory), removed at exit.
 */
#ifndef MB_FUZZ_FILE_H
#define MB_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_path[64];

static void fuzz_file_remove(void)
{
	unlink(fuzz_path);
}

/* Writes data to the temporary file and returns its name, or NULL. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
	FILE *f;

	if (!fuzz_path[0]) {
		int fd;
		snprintf(fuzz_path, sizeof(fuzz_path), "/tmp/mbfuzz.XXXXXX");
		fd = mkstemp(fuzz_path);
		if (fd < 0)
			return NULL;
		close(fd);
		atexit(fuzz_file_remove);
	}
	f = fopen(fuzz_path, "wb");
	if (!f)
		return NULL;
	if (size && fwrite(data, 1, size, f) != size) {
		fclose(f);
		return NULL;
	}
	if (fclose(f) != 0)
		return NULL;
	return fuzz_path;
}

#endif
