/* The /metrics page: the SHOW tables in the Prometheus text exposition format (0.0.4). */
#ifndef MB_METRICS_TEXT_H
#define MB_METRICS_TEXT_H

#include <stdbool.h>

struct evbuffer;

/*
 * One scrape, computed now from views_build() (the bookkeeping SHOW answers from): the metrics the
 * prometheus-community pgbouncer_exporter makes of SHOW VERSION, LISTS, CONFIG, CLIENTS, DATABASES,
 * STATS_TOTALS and POOLS, under the same names and labels, then moonbouncer's own (moonbouncer_*).
 * pgbouncer_up is 0 when one of those tables could not be built or read (the rest is still there).
 * Returns false when memory ran out (out then holds a partial page, not to be sent).
 */
bool metrics_text_render(struct evbuffer *out) __attribute__((warn_unused_result));

#endif
