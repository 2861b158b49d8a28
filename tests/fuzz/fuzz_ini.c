/* Fuzz target: the ini dialect of pgbouncer.ini (ini_parse_file), every callback checked. */
#define _GNU_SOURCE	/* memmem */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_file.h"
#include "ini.h"

static bool on_line(void *arg, const char *section, const char *key, const char *value, const char *file,
		    int line, char *err, size_t errlen)
{
	int *calls = arg;
	(void)err;
	(void)errlen;
	if (!section || !file || line < 1 || (key == NULL) != (value == NULL))
		abort();
	/* values come without surrounding whitespace */
	if (value && value[0] && (value[0] == ' ' || value[strlen(value) - 1] == ' '))
		abort();
	(*calls)++;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path;
	char err[512];
	int calls = 0;

	/* %include opens other files by name: not this target's business */
	if (memmem(data, size, "%include", 8) || memmem(data, size, "%INCLUDE", 8))
		return 0;
	path = fuzz_file(data, size);
	if (!path)
		return 0;
	err[0] = 0;
	if (!ini_parse_file(path, on_line, &calls, err, sizeof(err)) && !err[0])
		abort();	/* a refusal says why */
	return 0;
}
