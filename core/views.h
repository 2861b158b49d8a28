/* The SHOW commands' tables by name: what the admin console answers and /metrics reads. */
#ifndef MB_VIEWS_H
#define MB_VIEWS_H

#include <stdbool.h>
#include <stddef.h>

struct view;

/*
 * The table SHOW name answers (name in any case), computed now from the live bookkeeping. NULL with
 * err set when there is no such view, it does not apply here, or memory ran out.
 */
struct view *views_build(const char *name, char *err, size_t errlen);
/* The names views_build knows, NULL-terminated (SHOW HELP). */
const char *const *views_names(void);

#endif
