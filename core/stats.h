/* Traffic statistics per pool: averages over stats_period, the log_stats line, and the SHOW views made of them. */
#ifndef MB_STATS_H
#define MB_STATS_H

#include <stdbool.h>

#include "stats_count.h"

struct view;
struct event_base;

/* Start the stats_period timer on base (snapshots for the averages, and the log_stats line); stop it. */
bool stats_start(struct event_base *base) __attribute__((warn_unused_result));
void stats_stop(void);

/* SHOW STATS, STATS_TOTALS, STATS_AVERAGES and TOTALS, with PgBouncer 1.25's columns. */
struct view *stats_view_stats(void);
struct view *stats_view_totals(void);
struct view *stats_view_averages(void);
struct view *stats_view_totals_list(void);

#endif
