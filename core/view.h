/* Tables the admin console and /metrics show: named columns with PostgreSQL types, rows of text values. */
#ifndef MB_VIEW_H
#define MB_VIEW_H

#include <stdbool.h>
#include <stddef.h>

struct pktbuf;

#define VIEW_MAX_COLS 32

/*
 * Column types, as PgBouncer's console sends them:
 *   's' text      (value: const char *, NULL for SQL NULL)
 *   'i' int4      (int)
 *   'q' int8      (long long)
 *   'N' numeric   (unsigned long long)
 *   'T' a time, sent as text (double: seconds since the epoch, 0 for NULL)
 *   'b' bytea     (const char *: the text form, NULL for SQL NULL)
 */
struct view {
	int ncols;
	char types[VIEW_MAX_COLS + 1];
	const char *names[VIEW_MAX_COLS];
	char **cells;		/* nrows * ncols; NULL is SQL NULL */
	int nrows, cap;
	bool failed;		/* out of memory somewhere: the view is not to be shown */
};

/* A view with the columns of types (one letter each, above) named by the arguments that follow. */
struct view *view_new(const char *types, ...);
/* A row: one argument per column, of the C type its letter says. */
void view_row(struct view *v, ...);
void view_free(struct view *v);

static inline const char *view_cell(const struct view *v, int row, int col)
{
	return v->cells[(size_t)row * (size_t)v->ncols + (size_t)col];
}
/* The column named name, or -1. */
int view_col(const struct view *v, const char *name);

/* RowDescription, a DataRow per row (text format) and CommandComplete "SHOW". */
void view_encode(const struct view *v, struct pktbuf *out);

#endif
