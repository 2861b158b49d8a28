/* Tables the admin console and /metrics show: building them, and encoding them as a result set. */
#include "view.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto.h"

#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_NUMERIC 1700

struct view *view_new(const char *types, ...)
{
	struct view *v = calloc(1, sizeof(*v));
	va_list ap;

	if (!v)
		return NULL;
	v->ncols = (int)strlen(types);
	if (v->ncols > VIEW_MAX_COLS) {
		free(v);
		return NULL;
	}
	memcpy(v->types, types, (size_t)v->ncols + 1);
	va_start(ap, types);
	for (int i = 0; i < v->ncols; i++)
		v->names[i] = va_arg(ap, const char *);
	va_end(ap);
	return v;
}

/* A time as PgBouncer shows one: local time, to the second. */
static char *format_time(double t)
{
	char buf[64];
	time_t secs = (time_t)t;
	struct tm tm;

	if (t <= 0 || !localtime_r(&secs, &tm))
		return NULL;
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %Z", &tm);
	return strdup(buf);
}

static bool grow(struct view *v)
{
	int cap = v->cap ? v->cap * 2 : 16;
	char **cells;

	if (v->nrows < v->cap)
		return true;
	cells = realloc(v->cells, (size_t)cap * (size_t)v->ncols * sizeof(*cells));
	if (!cells)
		return false;
	v->cells = cells;
	v->cap = cap;
	return true;
}

void view_row(struct view *v, ...)
{
	char buf[32], **row;
	const char *s;
	va_list ap;

	if (!v || v->failed)
		return;
	if (!grow(v)) {
		v->failed = true;
		return;
	}
	row = v->cells + (size_t)v->nrows * (size_t)v->ncols;
	va_start(ap, v);
	for (int i = 0; i < v->ncols; i++) {
		row[i] = NULL;
		switch (v->types[i]) {
		case 'i':
			snprintf(buf, sizeof(buf), "%d", va_arg(ap, int));
			row[i] = strdup(buf);
			break;
		case 'q':
			snprintf(buf, sizeof(buf), "%lld", va_arg(ap, long long));
			row[i] = strdup(buf);
			break;
		case 'N':
			snprintf(buf, sizeof(buf), "%llu", va_arg(ap, unsigned long long));
			row[i] = strdup(buf);
			break;
		case 'T':
			row[i] = format_time(va_arg(ap, double));
			continue;
		default:	/* 's', 'b' */
			s = va_arg(ap, const char *);
			if (!s)
				continue;
			row[i] = strdup(s);
			break;
		}
		if (!row[i])
			v->failed = true;
	}
	va_end(ap);
	v->nrows++;
}

void view_free(struct view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < (size_t)v->nrows * (size_t)v->ncols; i++)
		free(v->cells[i]);
	free(v->cells);
	free(v);
}

int view_col(const struct view *v, const char *name)
{
	for (int i = 0; i < v->ncols; i++)
		if (strcmp(v->names[i], name) == 0)
			return i;
	return -1;
}

static void put_column(struct pktbuf *out, const char *name, char type)
{
	uint32_t oid = OID_TEXT;
	uint16_t size = 0xffff;	/* -1: variable length */

	switch (type) {
	case 'i':
		oid = OID_INT4;
		size = 4;
		break;
	case 'q':
		oid = OID_INT8;
		size = 8;
		break;
	case 'N':
		oid = OID_NUMERIC;
		break;
	case 'b':
		oid = OID_BYTEA;
		break;
	}
	pkt_put_string(out, name);
	pkt_put_u32(out, 0);	/* no table */
	pkt_put_u16(out, 0);
	pkt_put_u32(out, oid);
	pkt_put_u16(out, size);
	pkt_put_u32(out, 0xffffffffu);	/* no type modifier */
	pkt_put_u16(out, 0);	/* text format */
}

void view_encode(const struct view *v, struct pktbuf *out)
{
	pkt_begin(out, 'T');
	pkt_put_u16(out, (uint16_t)v->ncols);
	for (int i = 0; i < v->ncols; i++)
		put_column(out, v->names[i], v->types[i]);
	pkt_end(out);
	for (int r = 0; r < v->nrows; r++) {
		pkt_begin(out, 'D');
		pkt_put_u16(out, (uint16_t)v->ncols);
		for (int i = 0; i < v->ncols; i++) {
			const char *cell = view_cell(v, r, i);
			if (!cell) {
				pkt_put_u32(out, 0xffffffffu);
				continue;
			}
			pkt_put_u32(out, (uint32_t)strlen(cell));
			pkt_put_bytes(out, cell, strlen(cell));
		}
		pkt_end(out);
	}
	pkt_command_complete(out, "SHOW");
}
