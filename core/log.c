/* Logging: timestamped lines to stderr, the log file and syslog, one write() per line. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192
#ifndef SYSLOG_PATH
#define SYSLOG_PATH "/dev/log"
#endif

int log_verbose;	/* read by log_enabled() in log.h */
static bool log_quiet;
static bool log_detached;
static int log_pid;		/* cached getpid(); 0 until the first line */
static int log_fd = -1;

static bool syslog_enabled;
static int syslog_fd = -1;
static int syslog_facility = 3 << 3; /* daemon */
static char syslog_ident[64] = "moonbouncer";

/* clang-format off */
static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "ERROR",
	[LOG_LEVEL_WARNING] = "WARNING",
	[LOG_LEVEL_INFO] = "LOG",
	[LOG_LEVEL_DEBUG] = "DEBUG",
	[LOG_LEVEL_NOISE] = "NOISE",
};

/* syslog(3) severities, indexed by our level */
static const int syslog_severity[] = {
	[LOG_LEVEL_ERROR] = 3,
	[LOG_LEVEL_WARNING] = 4,
	[LOG_LEVEL_INFO] = 6,
	[LOG_LEVEL_DEBUG] = 7,
	[LOG_LEVEL_NOISE] = 7,
};

static const struct {
	const char *name;
	int code;
} facilities[] = {
	{ "kern", 0 }, { "user", 1 }, { "mail", 2 }, { "daemon", 3 }, { "auth", 4 }, { "syslog", 5 },
	{ "lpr", 6 }, { "news", 7 }, { "uucp", 8 }, { "cron", 9 }, { "authpriv", 10 }, { "ftp", 11 },
	{ "local0", 16 }, { "local1", 17 }, { "local2", 18 }, { "local3", 19 },
	{ "local4", 20 }, { "local5", 21 }, { "local6", 22 }, { "local7", 23 },
};
/* clang-format on */

/* The pid in every line, asked of the kernel once (getpid is a system call): two per connection otherwise. */
static int current_pid(void)
{
	if (!log_pid)
		log_pid = (int)getpid();
	return log_pid;
}

void log_setup(int verbose, bool quiet)
{
	log_verbose = verbose < 0 ? 0 : verbose;
	log_quiet = quiet;
}

void log_detach_stderr(void)
{
	log_detached = true;
	log_pid = 0;	/* called in the daemon's child: a new process */
}

bool log_open_file(const char *path)
{
	return log_open_file_mode(path, true);
}

bool log_open_file_mode(const char *path, bool create)
{
	int fd;

	if (path == NULL || path[0] == '\0') {
		if (log_fd >= 0)
			close(log_fd);
		log_fd = -1;
		return true;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | (create ? O_CREAT : 0), 0640);
	if (fd < 0)
		return false; /* keep the old file: losing the log on a bad reload helps nobody */
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	return true;
}

static void syslog_close(void)
{
	if (syslog_fd >= 0)
		close(syslog_fd);
	syslog_fd = -1;
}

static void syslog_connect(void)
{
	struct sockaddr_un sa;
	int fd;

	if (syslog_fd >= 0)
		return;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, SYSLOG_PATH, sizeof(SYSLOG_PATH));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return;
	}
	syslog_fd = fd;
}

void log_set_syslog(bool enabled, const char *ident, const char *facility)
{
	size_t i;
	bool found = false;

	syslog_enabled = enabled;
	snprintf(syslog_ident, sizeof(syslog_ident), "%s", ident && ident[0] ? ident : "moonbouncer");
	syslog_facility = 3 << 3;
	if (facility && facility[0]) {
		for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++) {
			if (strcasecmp(facilities[i].name, facility) == 0) {
				syslog_facility = facilities[i].code << 3;
				found = true;
				break;
			}
		}
	}
	if (!enabled) {
		syslog_close();
		return;
	}
	syslog_connect();
	if (facility && facility[0] && !found)
		log_warning("unknown syslog_facility '%s', using 'daemon'", facility);
}

/* Write all of buf; a short write is retried, anything else drops the line. */
static void write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void syslog_send(enum log_level level, const char *msg)
{
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char buf[LOG_LINE_MAX + 128];
	struct tm tm;
	time_t now;
	int len;
	ssize_t n;

	syslog_connect();
	if (syslog_fd < 0)
		return;
	/* the line glibc's syslog(3) sends to /dev/log: "<PRI>Mmm dd hh:mm:ss ident[pid]: msg" */
	now = time(NULL);
	localtime_r(&now, &tm);
	len = snprintf(buf, sizeof(buf), "<%d>%s %2d %02d:%02d:%02d %s[%d]: %s %s",
		       syslog_facility | syslog_severity[level], months[tm.tm_mon % 12], tm.tm_mday,
		       tm.tm_hour, tm.tm_min, tm.tm_sec, syslog_ident, current_pid(), level_names[level],
		       msg);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(buf))
		len = sizeof(buf) - 1;
	/* never wait for a slow syslog daemon: a full socket drops the line */
	n = send(syslog_fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && (errno == ECONNREFUSED || errno == ENOTCONN)) {
		syslog_close(); /* the daemon restarted: reconnect on the next line */
		syslog_connect();
		if (syslog_fd >= 0)
			(void)send(syslog_fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	char line[LOG_LINE_MAX + 128];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int saved_errno = errno;
	int n, len;

	if ((int)level < LOG_LEVEL_ERROR || level > LOG_LEVEL_NOISE)
		level = LOG_LEVEL_ERROR;
	if (!log_enabled(level)) {
		errno = saved_errno;
		return;
	}

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(msg, sizeof(msg), "(unprintable log message)");
	else if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	/* one event, one line */
	len = (int)strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = snprintf(line, sizeof(line), "%04d-%02d-%02d %02d:%02d:%02d.%03ld UTC [%d] %s %s\n",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       ts.tv_nsec / 1000000, current_pid(), level_names[level], msg);
	if (len < 0)
		len = 0;
	if ((size_t)len >= sizeof(line)) {
		len = sizeof(line) - 1;
		line[len - 1] = '\n';
	}

	if (!log_quiet && !log_detached)
		write_all(STDERR_FILENO, line, (size_t)len);
	if (log_fd >= 0)
		write_all(log_fd, line, (size_t)len);
	if (syslog_enabled)
		syslog_send(level, msg);

	errno = saved_errno;
}

/* Digits of v, zero-padded to width, at p; returns the end. */
static char *put_num(char *p, long v, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < (int)sizeof(tmp));
	while (n < width && n < (int)sizeof(tmp))
		tmp[n++] = '0';
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

void log_signal_safe(const char *msg)
{
	char line[512], *p = line;
	struct timespec ts;
	long days, secs, y, m, d, era, doe, yoe, doy, mp;
	size_t mlen = strlen(msg);
	int saved_errno = errno;

	if (mlen > sizeof(line) - 80)
		mlen = sizeof(line) - 80;
	clock_gettime(CLOCK_REALTIME, &ts);
	days = (long)(ts.tv_sec / 86400);
	secs = (long)(ts.tv_sec % 86400);
	/* civil date from days since 1970-01-01 (Howard Hinnant's algorithm): gmtime_r is not signal-safe */
	days += 719468;
	era = days / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	p = put_num(p, y, 4);
	*p++ = '-';
	p = put_num(p, m, 2);
	*p++ = '-';
	p = put_num(p, d, 2);
	*p++ = ' ';
	p = put_num(p, secs / 3600, 2);
	*p++ = ':';
	p = put_num(p, secs / 60 % 60, 2);
	*p++ = ':';
	p = put_num(p, secs % 60, 2);
	*p++ = '.';
	p = put_num(p, ts.tv_nsec / 1000000, 3);
	memcpy(p, " UTC [", 6);
	p += 6;
	p = put_num(p, (long)getpid(), 1);
	memcpy(p, "] LOG ", 6);
	p += 6;
	memcpy(p, msg, mlen);
	p += mlen;
	*p++ = '\n';
	if (!log_quiet && !log_detached)
		write_all(STDERR_FILENO, line, (size_t)(p - line));
	if (log_fd >= 0)
		write_all(log_fd, line, (size_t)(p - line));
	errno = saved_errno;
}
