/* Reader of PgBouncer's ini dialect: [sections], key = value, ; and # comment lines, %include. */
#ifndef MB_INI_H
#define MB_INI_H

#include <stdbool.h>
#include <stddef.h>

#define INI_MAX_INCLUDE_DEPTH 16

/*
 * Called once per section header (key and value NULL) and once per key/value line.
 * section is "" before the first header. key is unquoted ("my db" = ... gives my db),
 * value has the surrounding whitespace removed. file and line say where the line is.
 * Return false to stop; write a message into err and the reader prefixes it with
 * "file:line: ".
 */
typedef bool (*ini_callback)(void *arg, const char *section, const char *key, const char *value,
			     const char *file, int line, char *err, size_t errlen);

/*
 * Read path and everything it %includes (a relative include path is taken from the
 * including file's directory, else from the current directory). Returns false with
 * "file:line: what is wrong" (or "file: could not open ...") in err.
 */
bool ini_parse_file(const char *path, ini_callback cb, void *arg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
