/* Unit tests for listener.c and net.c: TCP and unix sockets, conflicts, stale files, pause, fd limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "net.h"
#include "unit.h"

static struct event_base *base;

struct accepted {
	int calls;
	bool is_unix;
	int family;
	bool nonblocking;
	int nodelay;
	int keepalive;
	int keepidle;
	int user_timeout;
	bool pause_on_accept; /* call listener_pause() from inside the callback */
};

static struct accepted acc;

static int get_int_opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len) != 0)
		return -1;
	return v;
}

static void on_accept(int fd, const struct sockaddr *addr, socklen_t addrlen, bool is_unix, void *arg)
{
	struct accepted *a = arg;

	(void)addrlen;
	a->calls++;
	a->is_unix = is_unix;
	a->family = addr->sa_family;
	a->nonblocking = (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
	if (!is_unix) {
		a->nodelay = get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY);
		a->keepalive = get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE);
		a->keepidle = get_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE);
		a->user_timeout = get_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
	}
	close(fd);
	if (a->pause_on_accept)
		listener_pause();
}

static bool timed_out;

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timed_out = true;
}

/* Run the loop until acc.calls reaches want or secs pass. */
static bool run_until(int want, double secs)
{
	struct event *t = evtimer_new(base, on_timeout, NULL);
	struct timeval tv = { (time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6) };

	timed_out = false;
	evtimer_add(t, &tv);
	while (acc.calls < want && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return acc.calls >= want;
}

static void run_for(double secs)
{
	run_until(1 << 30, secs);
}

static bool have_ipv6;

static bool port_free(int port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	int fd, on = 1;
	bool ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	if (!ok || !have_ipv6)
		return ok;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons((uint16_t)port);
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

/* A fixed port below the ephemeral range, free on all addresses. */
static int pick_port(int after)
{
	int p = after > 0 ? after + 1 : 20000 + (int)(getpid() % 5000) * 2;

	for (; p < 32000; p++)
		if (port_free(p))
			return p;
	return -1;
}

static bool detect_ipv6(void)
{
	struct sockaddr_in6 sin6;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

/* Blocking connect; the fd stays open (returned) so the peer sees a live connection. */
static int connect_tcp(const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un un;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void base_config(struct config *cfg, const char *addr, int port, const char *dir)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen_addr = (char *)addr;
	cfg->listen_port = port;
	cfg->listen_backlog = 16;
	cfg->unix_socket_dir = (char *)dir;
	cfg->unix_socket_mode = 0700;
	cfg->tcp_keepalive = true;
	cfg->tcp_keepidle = 77;
	cfg->tcp_user_timeout = 5000;
}

static void test_net_helpers(void)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un un;
	char buf[64];
	int fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(5678);
	inet_pton(AF_INET, "1.2.3.4", &sin.sin_addr);
	UNIT_EQ_STR(net_addr_str((struct sockaddr *)&sin, buf, sizeof(buf)), "1.2.3.4:5678",
		    "net_addr_str IPv4");
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(5678);
	sin6.sin6_addr = in6addr_loopback;
	UNIT_EQ_STR(net_addr_str((struct sockaddr *)&sin6, buf, sizeof(buf)), "[::1]:5678",
		    "net_addr_str IPv6");
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	UNIT_EQ_STR(net_addr_str((struct sockaddr *)&un, buf, sizeof(buf)), "unix", "net_addr_str unix");
	net_addr_str((struct sockaddr *)&sin, buf, 8);
	UNIT_EQ_STR(buf, "1.2.3.4", "net_addr_str truncates to the buffer");

	errno = 0;
	fd = net_connect_unix("/nonexistent-dir-for-test/.s.PGSQL.1");
	UNIT_CHECK(fd == -1 && errno == ENOENT, "net_connect_unix: missing path fails with ENOENT");

	fd = socket(AF_INET, SOCK_STREAM, 0);
	UNIT_CHECK(fd >= 0 && net_set_nonblocking(fd) && (fcntl(fd, F_GETFL) & O_NONBLOCK),
		   "net_set_nonblocking sets O_NONBLOCK");
	net_tune_socket(fd, true, NULL);
	UNIT_EQ_INT(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1,
		    "net_tune_socket without config: TCP_NODELAY");
	close(fd);
}

static void test_tcp_and_unix(const char *dir, int port)
{
	struct config cfg;
	char err[256], path[256], want[64];
	struct stat st;
	struct group *gr = getgrgid(getegid());
	int c1, c2, c3, before;

	base_config(&cfg, "127.0.0.1", port, dir);
	cfg.unix_socket_group = gr != NULL ? gr->gr_name : NULL;
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", dir, port);

	err[0] = 'x';
	UNIT_CHECK(listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)),
		   "open 127.0.0.1 + unix socket");
	if (err[0] != '\0')
		printf("#   err: %s\n", err);
	UNIT_CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "unix socket file exists");
	UNIT_EQ_INT(st.st_mode & 0777, 0700, "unix socket has unix_socket_mode 0700");
	UNIT_EQ_INT(st.st_gid, getegid(), "unix socket belongs to unix_socket_group");

	c1 = connect_tcp("127.0.0.1", port);
	UNIT_CHECK(c1 >= 0, "TCP connect to 127.0.0.1");
	UNIT_CHECK(run_until(1, 3.0), "TCP connection accepted through the callback");
	UNIT_CHECK(!acc.is_unix && acc.family == AF_INET, "TCP: is_unix false, AF_INET peer");
	UNIT_CHECK(acc.nonblocking, "TCP: accepted fd is non-blocking");
	UNIT_EQ_INT(acc.nodelay, 1, "TCP: TCP_NODELAY set");
	UNIT_EQ_INT(acc.keepalive, 1, "TCP: SO_KEEPALIVE set");
	UNIT_EQ_INT(acc.keepidle, 77, "TCP: TCP_KEEPIDLE from tcp_keepidle");
	UNIT_EQ_INT(acc.user_timeout, 5000, "TCP: TCP_USER_TIMEOUT from tcp_user_timeout");

	c2 = connect_unix(path);
	UNIT_CHECK(c2 >= 0, "unix connect");
	UNIT_CHECK(run_until(2, 3.0), "unix connection accepted");
	UNIT_CHECK(acc.is_unix && acc.family == AF_UNIX && acc.nonblocking, "unix: is_unix, non-blocking");
	close(c1);
	close(c2);

	/* a second server on the same port */
	cfg.unix_socket_dir = "";
	UNIT_CHECK(!listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)),
		   "same port again fails");
	snprintf(want, sizeof(want), "could not bind 127.0.0.1:%d: %s", port, strerror(EADDRINUSE));
	UNIT_EQ_STR(err, want, "message names the address and the reason");

	/* a second server on the same unix socket: the live file must survive */
	cfg.listen_addr = NULL;
	cfg.unix_socket_dir = (char *)dir;
	UNIT_CHECK(!listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)),
		   "live unix socket: fails");
	UNIT_CHECK(strstr(err, path) != NULL && strstr(err, "another process") != NULL,
		   "live unix socket: message names the path");
	UNIT_CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "live unix socket file left in place");
	before = acc.calls;
	run_until(before + 1, 1.0); /* the liveness probe itself was a connection */

	/* the first set still works */
	c1 = connect_tcp("127.0.0.1", port);
	before = acc.calls;
	UNIT_CHECK(c1 >= 0 && run_until(before + 1, 3.0), "first listeners unaffected by the failed opens");
	close(c1);

	/* pause: connections wait in the backlog until resume */
	listener_pause();
	before = acc.calls;
	c1 = connect_tcp("127.0.0.1", port);
	run_for(0.3);
	UNIT_EQ_INT(acc.calls, before, "paused: nothing accepted");
	listener_resume();
	UNIT_CHECK(run_until(before + 1, 3.0), "resumed: the waiting connection is accepted");
	close(c1);

	/* a burst is taken in one wakeup; a callback that pauses stops the burst at once */
	before = acc.calls;
	listener_pause();
	c1 = connect_tcp("127.0.0.1", port);
	c2 = connect_tcp("127.0.0.1", port);
	c3 = connect_tcp("127.0.0.1", port);
	acc.pause_on_accept = true;
	listener_resume();
	run_for(0.3);
	UNIT_EQ_INT(acc.calls, before + 1, "pause from inside the callback stops the accept loop");
	acc.pause_on_accept = false;
	listener_resume();
	{
		/* one wakeup, with a timer so that a failure cannot hang the test */
		struct event *t = evtimer_new(base, on_timeout, NULL);
		struct timeval tv = { 1, 0 };

		evtimer_add(t, &tv);
		event_base_loop(base, EVLOOP_ONCE);
		event_free(t);
	}
	UNIT_EQ_INT(acc.calls, before + 3, "the rest of the burst is accepted in one wakeup");
	close(c1);
	close(c2);
	close(c3);

	listener_close_all();
	UNIT_CHECK(stat(path, &st) != 0 && errno == ENOENT, "close_all removes the unix socket file");
	c1 = connect_tcp("127.0.0.1", port);
	UNIT_CHECK(c1 < 0, "close_all closes the TCP socket");
	if (c1 >= 0)
		close(c1);
}

/* Shutdown: the TCP sockets close at once, the unix socket stays; SIGQUIT's unlink spares a successor's file. */
static void test_close_tcp(const char *dir, int port)
{
	struct config cfg;
	char err[256], path[256];
	struct sockaddr_un un;
	struct stat st;
	int c1, c2, other, before;

	base_config(&cfg, "127.0.0.1", port, dir);
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", dir, port);
	UNIT_CHECK(listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)), "open for close_tcp");
	listener_close_tcp();
	c1 = connect_tcp("127.0.0.1", port);
	UNIT_CHECK(c1 < 0 && errno == ECONNREFUSED, "close_tcp: a TCP connect is refused at once");
	if (c1 >= 0)
		close(c1);
	before = acc.calls;
	c2 = connect_unix(path);
	UNIT_CHECK(c2 >= 0 && run_until(before + 1, 3.0), "close_tcp: the unix socket still accepts");
	if (c2 >= 0)
		close(c2);

	listener_unlink_unix_now();
	UNIT_CHECK(stat(path, &st) != 0 && errno == ENOENT, "unlink_unix_now removes our socket file");
	/* a successor's file at the same path is left alone */
	other = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	memcpy(un.sun_path, path, strlen(path) < sizeof(un.sun_path) ? strlen(path) + 1 : sizeof(un.sun_path) - 1);
	UNIT_CHECK(other >= 0 && bind(other, (struct sockaddr *)&un, sizeof(un)) == 0, "a successor binds the path");
	listener_unlink_unix_now();
	UNIT_CHECK(stat(path, &st) == 0, "unlink_unix_now spares a successor's file");
	listener_close_all();
	UNIT_CHECK(stat(path, &st) == 0, "close_all spares a successor's file too");
	close(other);
	unlink(path);
}

static void test_stale_socket(const char *dir, int port)
{
	struct config cfg;
	char err[256], path[256];
	struct sockaddr_un un;
	struct stat st;
	int fd, c, before;

	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", dir, port);
	/* a socket file whose server is gone */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	memcpy(un.sun_path, path,
	       strlen(path) < sizeof(un.sun_path) ? strlen(path) : sizeof(un.sun_path) - 1);
	UNIT_CHECK(bind(fd, (struct sockaddr *)&un, sizeof(un)) == 0, "stale: made a socket file");
	close(fd);
	chmod(path, 0755);
	UNIT_CHECK(connect_unix(path) < 0, "stale: nobody answers on it");

	base_config(&cfg, NULL, port, dir);
	UNIT_CHECK(listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)),
		   "stale socket file is replaced");
	if (err[0] != '\0')
		printf("#   err: %s\n", err);
	UNIT_CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "stale: a socket file is there");
	UNIT_EQ_INT(st.st_mode & 0777, 0700, "stale: it is a new file (mode 0700, the old one had 0755)");
	before = acc.calls;
	c = connect_unix(path);
	UNIT_CHECK(c >= 0 && run_until(before + 1, 3.0), "stale: new socket accepts");
	if (c >= 0)
		close(c);
	listener_close_all();

	/* a file that is not a socket is never removed */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	UNIT_CHECK(!listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)),
		   "regular file in the way: fails");
	UNIT_CHECK(strstr(err, "not a socket") != NULL, "regular file: message says so");
	UNIT_CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode), "regular file left alone");
	unlink(path);
}

static void test_wildcard(int port)
{
	struct config cfg;
	char err[256];
	int c, before;

	base_config(&cfg, "*", port, "");
	UNIT_CHECK(listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)), "listen_addr = *");
	if (err[0] != '\0')
		printf("#   err: %s\n", err);
	before = acc.calls;
	c = connect_tcp("127.0.0.1", port);
	UNIT_CHECK(c >= 0 && run_until(before + 1, 3.0) && acc.family == AF_INET, "*: IPv4 accepted");
	if (c >= 0)
		close(c);
	if (have_ipv6) {
		before = acc.calls;
		c = connect_tcp("::1", port);
		UNIT_CHECK(c >= 0 && run_until(before + 1, 3.0) && acc.family == AF_INET6,
			   "*: IPv6 accepted on the same port (IPV6_V6ONLY)");
		if (c >= 0)
			close(c);
	}
	listener_close_all();
}

static void test_address_list(int port)
{
	struct config cfg;
	char err[256];
	int c, before;

	/* localhost resolves to 127.0.0.1 too: the duplicate is skipped instead of failing to bind */
	base_config(&cfg, have_ipv6 ? " 127.0.0.1 , localhost,[::1]" : " 127.0.0.1 , localhost", port, "");
	UNIT_CHECK(listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)),
		   "address list with a duplicate");
	if (err[0] != '\0')
		printf("#   err: %s\n", err);
	before = acc.calls;
	c = connect_tcp("127.0.0.1", port);
	UNIT_CHECK(c >= 0 && run_until(before + 1, 3.0), "address list: IPv4 accepted");
	if (c >= 0)
		close(c);
	if (have_ipv6) {
		before = acc.calls;
		c = connect_tcp("::1", port);
		UNIT_CHECK(c >= 0 && run_until(before + 1, 3.0) && acc.family == AF_INET6,
			   "address list: [::1] accepted");
		if (c >= 0)
			close(c);
	}
	listener_close_all();
}

static void test_abstract(int port)
{
	struct config cfg;
	char err[256], dir[64], path[128];
	int c, before;

	snprintf(dir, sizeof(dir), "@mb-test-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", dir, port);
	base_config(&cfg, NULL, port, dir);
	UNIT_CHECK(listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)), "abstract unix socket");
	before = acc.calls;
	c = net_connect_unix(path);
	UNIT_CHECK(c >= 0 && run_until(before + 1, 3.0) && acc.is_unix,
		   "abstract: net_connect_unix reaches it");
	if (c >= 0)
		close(c);
	listener_close_all();
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void test_fd_limit(int port)
{
	struct config cfg;
	char err[256];
	struct rlimit old, low;
	int fillers[256], n = 0, c, before, i;
	double cpu;

	base_config(&cfg, "127.0.0.1", port, "");
	UNIT_CHECK(listener_open_all(base, &cfg, on_accept, &acc, err, sizeof(err)), "fd limit: open");
	c = socket(AF_INET, SOCK_STREAM, 0); /* made before the table is full */

	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = 200;
	if (setrlimit(RLIMIT_NOFILE, &low) != 0) {
		UNIT_CHECK(false, "fd limit: could lower RLIMIT_NOFILE");
		close(c);
		listener_close_all();
		return;
	}
	while (n < 256) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd < 0)
			break;
		fillers[n++] = fd;
	}
	UNIT_CHECK(n < 256 && errno == EMFILE, "fd limit: descriptor table is full");

	{
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		UNIT_CHECK(connect(c, (struct sockaddr *)&sin, sizeof(sin)) == 0,
			   "fd limit: client connects (backlog)");
	}
	before = acc.calls;
	cpu = cpu_seconds();
	run_for(0.5);
	cpu = cpu_seconds() - cpu;
	UNIT_EQ_INT(acc.calls, before, "fd limit: nothing accepted while out of descriptors");
	UNIT_CHECK(cpu < 0.2, "fd limit: accepting pauses instead of spinning");
	if (cpu >= 0.2)
		printf("#   cpu %.3f s in 0.5 s\n", cpu);

	for (i = 0; i < n; i++)
		close(fillers[i]);
	setrlimit(RLIMIT_NOFILE, &old);
	UNIT_CHECK(run_until(before + 1, 3.0),
		   "fd limit: accepted after the pause once descriptors are free");
	close(c);
	listener_close_all();
}

int main(void)
{
	char dir[] = "/tmp/mb-test-listener-XXXXXX";
	int port, port2;

	log_setup(0, getenv("TEST_VERBOSE") == NULL);
	base = event_base_new();
	have_ipv6 = detect_ipv6();
	if (base == NULL || mkdtemp(dir) == NULL) {
		printf("# setup failed\n");
		return 1;
	}
	port = pick_port(0);
	port2 = pick_port(port);
	if (port < 0 || port2 < 0) {
		printf("# no free port\n");
		return 1;
	}
	printf("# ports %d and %d, IPv6 %s\n", port, port2, have_ipv6 ? "yes" : "no");

	test_net_helpers();
	test_tcp_and_unix(dir, port);
	test_close_tcp(dir, port);
	test_stale_socket(dir, port);
	test_wildcard(port2);
	test_address_list(port);
	test_abstract(port);
	test_fd_limit(port);

	event_base_free(base);
	rmdir(dir);
	return unit_done();
}
