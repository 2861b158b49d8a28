/* Logging: levels, stderr or logfile, optional syslog. */
#ifndef MB_LOG_H
#define MB_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,	/* -v */
	LOG_LEVEL_NOISE,	/* -v -v */
};

/* Verbosity: 0 = info (default), 1 = debug, 2+ = noise; quiet drops stderr output. */
void log_setup(int verbose, bool quiet);
/* Open (or reopen, for logrotate) the log file; NULL closes it. Returns false with errno set. */
bool log_open_file(const char *path) __attribute__((warn_unused_result));
/* create false: only an existing file is appended to (--check must not leave a file the pooler cannot write). */
bool log_open_file_mode(const char *path, bool create) __attribute__((warn_unused_result));
/* syslog: enabled, ident, facility name ("daemon", "local0" ...). */
void log_set_syslog(bool enabled, const char *ident, const char *facility);
/* Stop writing to stderr (after daemonizing). */
void log_detach_stderr(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One LOG line to stderr and the log file from a signal handler (no formatting, no syslog). */
void log_signal_safe(const char *msg);

/* Inline: debug and noise lines are asked for on every state change, and are almost always off. */
extern int log_verbose;
static inline bool log_enabled(enum log_level level)
{
	return (int)level <= LOG_LEVEL_INFO + log_verbose;
}

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)
#define log_noise(...) do { if (log_enabled(LOG_LEVEL_NOISE)) log_msg(LOG_LEVEL_NOISE, __VA_ARGS__); } while (0)

#endif
