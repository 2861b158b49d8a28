/* Operator controls by database: PAUSE, DISABLE (and their undoing), as the console and signals set them. */
#include "control.h"

#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* A few names at most: a short array is all it takes. */
struct name_set {
	char **names;
	int n;
};

static struct name_set paused, disabled;

static int find(const struct name_set *set, const char *name)
{
	for (int i = 0; i < set->n; i++)
		if (strcmp(set->names[i], name) == 0)
			return i;
	return -1;
}

static bool set_member(struct name_set *set, const char *name, bool on)
{
	int i = find(set, name);
	char **grown, *copy;

	if (!on) {
		if (i >= 0) {
			free(set->names[i]);
			set->names[i] = set->names[--set->n];
		}
		return true;
	}
	if (i >= 0)
		return true;
	copy = strdup(name);
	grown = copy ? realloc(set->names, (size_t)(set->n + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(copy);
		return false;
	}
	set->names = grown;
	set->names[set->n++] = copy;
	return true;
}

static void clear(struct name_set *set)
{
	for (int i = 0; i < set->n; i++)
		free(set->names[i]);
	free(set->names);
	set->names = NULL;
	set->n = 0;
}

bool control_db_paused(const char *db)
{
	return rt.paused || (paused.n && find(&paused, db) >= 0);
}

bool control_any_db_paused(void)
{
	return paused.n > 0;
}

bool control_db_disabled(const char *db)
{
	return disabled.n && find(&disabled, db) >= 0;
}

bool control_pause_db(const char *db, bool on)
{
	return set_member(&paused, db, on);
}

bool control_disable_db(const char *db, bool on)
{
	return set_member(&disabled, db, on);
}

void control_resume_all_dbs(void)
{
	clear(&paused);
}

void control_free(void)
{
	clear(&paused);
	clear(&disabled);
}
