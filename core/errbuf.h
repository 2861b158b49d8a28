/* Error messages into a caller's buffer: the (char *err, size_t errlen) convention of the core. */
#ifndef MB_ERRBUF_H
#define MB_ERRBUF_H

#include <stddef.h>

/* Format into err (always NUL-terminated, cut to errlen); does nothing when err is NULL or errlen 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
