/* Traffic statistics per pool: totals, averages over stats_period, and the SHOW views made of them. */
#ifndef MB_STATS_H
#define MB_STATS_H

struct view;

/* SHOW STATS, STATS_TOTALS, STATS_AVERAGES and TOTALS, with PgBouncer 1.25's columns. */
struct view *stats_view_stats(void);
struct view *stats_view_totals(void);
struct view *stats_view_averages(void);
struct view *stats_view_totals_list(void);

#endif
