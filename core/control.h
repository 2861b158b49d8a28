/* Operator controls by database: PAUSE, DISABLE (and their undoing), as the console and signals set them. */
#ifndef MB_CONTROL_H
#define MB_CONTROL_H

#include <stdbool.h>

/* No server is handed out to this database's clients (a global pause or PAUSE db). */
bool control_db_paused(const char *db);
/* New clients of this database are refused (DISABLE db). */
bool control_db_disabled(const char *db);
/* Some database is paused on its own (PAUSE db or KILL db). */
bool control_any_db_paused(void);
/* PAUSE db / RESUME db; false when out of memory. */
bool control_pause_db(const char *db, bool on);
/* DISABLE db / ENABLE db; false when out of memory. */
bool control_disable_db(const char *db, bool on);
/* Drop every per-database setting (RESUME without a database clears the pauses). */
void control_resume_all_dbs(void);
void control_free(void);

#endif
