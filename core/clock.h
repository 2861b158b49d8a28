/* The monotonic clock: the one source of elapsed time for timers, caches and budgets. */
#ifndef MB_CLOCK_H
#define MB_CLOCK_H

/* Monotonic seconds, read afresh (the event loop's cached time is rt_now() in runtime.h). */
double clock_now(void);
/* Monotonic nanoseconds, read afresh; async-signal-safe. */
long long clock_now_ns(void);

#endif
