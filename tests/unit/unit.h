/* Minimal unit-test helpers: TAP-ish checks, a summary line and guard-page buffers for parser input. */
#ifndef MB_UNIT_H
#define MB_UNIT_H

/*
 * Header only: every test program is one .c file that includes this header
 * and links against the core objects. Output:
 *   ok 1 - name
 *   not ok 2 - name
 *   #   got:      ...
 *   #   expected: ...
 *   N passed, N failed
 * unit_done() returns the exit status (non-zero on any failure, or when no
 * check ran at all, since a test that checks nothing cannot fail).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct unit_guard {
	struct unit_guard *next;
	const void *ptr; /* what the test got */
	void *base;	 /* the whole mapping, guard page included */
	size_t size;
};

struct unit_state {
	int passed;
	int failed;
	bool started;
	struct unit_guard *guards;
};

static inline struct unit_state *unit_state(void)
{
	static struct unit_state state;

	if (!state.started) {
		state.started = true;
		/* line-buffered so results interleave correctly with sanitizer reports */
		setvbuf(stdout, NULL, _IOLBF, 0);
	}
	return &state;
}

/* Record one result; returns cond so a test can skip dependent checks. */
static inline bool unit_record(bool cond, const char *name, const char *file, int line)
{
	struct unit_state *s = unit_state();
	int n = s->passed + s->failed + 1;

	if (cond) {
		s->passed++;
		printf("ok %d - %s\n", n, name);
	} else {
		s->failed++;
		printf("not ok %d - %s\n", n, name);
		printf("#   at %s:%d\n", file, line);
	}
	return cond;
}

static inline bool unit_eq_int(long long got, long long expected, const char *name, const char *file,
			       int line)
{
	bool ok = got == expected;

	unit_record(ok, name, file, line);
	if (!ok) {
		printf("#   got:      %lld\n", got);
		printf("#   expected: %lld\n", expected);
	}
	return ok;
}

static inline bool unit_eq_str(const char *got, const char *expected, const char *name, const char *file,
			       int line)
{
	bool ok;

	if (got == NULL || expected == NULL)
		ok = got == expected;
	else
		ok = strcmp(got, expected) == 0;
	unit_record(ok, name, file, line);
	if (!ok) {
		printf("#   got:      %s%s%s\n", got ? "\"" : "", got ? got : "NULL", got ? "\"" : "");
		printf("#   expected: %s%s%s\n", expected ? "\"" : "", expected ? expected : "NULL",
		       expected ? "\"" : "");
	}
	return ok;
}

#define UNIT_CHECK(cond, name) unit_record(!!(cond), (name), __FILE__, __LINE__)
#define UNIT_EQ_INT(a, b, name) unit_eq_int((long long)(a), (long long)(b), (name), __FILE__, __LINE__)
#define UNIT_EQ_STR(a, b, name) unit_eq_str((a), (b), (name), __FILE__, __LINE__)

/*
 * Copy len bytes so that the byte after the last one is the first byte of a
 * PROT_NONE page: a parser reading past the end crashes (SIGSEGV) instead of
 * silently reading neighbouring memory. len 0 yields a pointer to the guard
 * page itself. Aborts on mmap failure.
 */
static inline const void *unit_guard_copy(const void *data, size_t len)
{
	struct unit_state *s = unit_state();
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (len + page - 1) / page;
	size_t size = (data_pages + 1) * page;
	struct unit_guard *g;
	uint8_t *base;

	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("unit_guard_copy: mmap");
		abort();
	}
	if (mprotect(base + data_pages * page, page, PROT_NONE) != 0) {
		perror("unit_guard_copy: mprotect");
		abort();
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		abort();
	g->base = base;
	g->size = size;
	g->ptr = base + data_pages * page - len;
	if (len > 0)
		memcpy(base + data_pages * page - len, data, len);
	g->next = s->guards;
	s->guards = g;
	return g->ptr;
}

static inline void unit_guard_free(const void *ptr)
{
	struct unit_state *s = unit_state();
	struct unit_guard **pp;

	if (ptr == NULL)
		return;
	for (pp = &s->guards; *pp != NULL; pp = &(*pp)->next) {
		struct unit_guard *g = *pp;

		if (g->ptr == ptr) {
			*pp = g->next;
			munmap(g->base, g->size);
			free(g);
			return;
		}
	}
	fprintf(stderr, "unit_guard_free: %p was not returned by unit_guard_copy\n", ptr);
	abort();
}

/* Print the summary line and return the process exit status. */
static inline int unit_done(void)
{
	struct unit_state *s = unit_state();

	while (s->guards != NULL)
		unit_guard_free(s->guards->ptr);
	printf("%d passed, %d failed\n", s->passed, s->failed);
	if (s->passed + s->failed == 0) {
		printf("# no checks ran\n");
		return 1;
	}
	return s->failed > 0 ? 1 : 0;
}

#endif
