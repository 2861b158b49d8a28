/* Listening sockets: TCP addresses and the unix socket, accepting clients into a callback. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "listener.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "list.h"
#include "log.h"
#include "net.h"

#define ACCEPT_BURST 100     /* accepts per wakeup, so one busy socket cannot starve the loop */
#define FD_LIMIT_PAUSE_SEC 1 /* how long to stop accepting after EMFILE/ENFILE */

struct listener {
	struct list node;
	int fd;
	bool is_unix;
	struct event *ev;
	listener_accept_fn cb;
	void *arg;
	struct sockaddr_storage addr; /* TCP: the bound address, to skip duplicates */
	socklen_t addrlen;
	char *unix_path; /* file to unlink on close; NULL for TCP and abstract sockets */
	dev_t unix_dev;	 /* identity of the file we created, so we never unlink a successor's */
	ino_t unix_ino;
	char name[192]; /* for messages: "127.0.0.1:6432", "[::1]:6432" or the socket path */
};

static struct list listeners = { &listeners, &listeners };
static struct event_base *ev_base;
static struct event *fd_limit_timer;
static bool paused;	     /* listener_pause() */
static bool fd_limited;	     /* out of file descriptors: waiting for fd_limit_timer */
static bool fd_limit_logged; /* logged once per episode, cleared by the next successful accept */
static unsigned accept_gen;  /* bumped by pause/close so an accept loop sees what its callback did */

/*
 * The unix socket file, readable from a signal handler (SIGQUIT removes it and exits at once): a fixed
 * buffer written before `known` is set, and cleared before the file goes.
 */
static struct {
	volatile sig_atomic_t known;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
} unix_file;

/* tcp_* values for accepted sockets; a private copy because the caller's config is freed on reload */
static struct config tune;

static void copy_tune(const struct config *cfg)
{
	memset(&tune, 0, sizeof(tune));
	tune.tcp_keepalive = cfg->tcp_keepalive;
	tune.tcp_keepcnt = cfg->tcp_keepcnt;
	tune.tcp_keepidle = cfg->tcp_keepidle;
	tune.tcp_keepintvl = cfg->tcp_keepintvl;
	tune.tcp_user_timeout = cfg->tcp_user_timeout;
	tune.tcp_socket_buffer = cfg->tcp_socket_buffer;
}

static void set_events(bool on)
{
	struct list *pos, *tmp;

	LIST_FOREACH_SAFE (pos, tmp, &listeners) {
		struct listener *l = container_of(pos, struct listener, node);

		if (l->ev == NULL)
			continue;
		if (on)
			event_add(l->ev, NULL);
		else
			event_del(l->ev);
	}
}

static void on_fd_limit_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fd_limited = false;
	if (!paused)
		set_events(true);
}

static void fd_limit_reached(int err)
{
	struct timeval tv = { FD_LIMIT_PAUSE_SEC, 0 };

	if (!fd_limit_logged) {
		fd_limit_logged = true;
		log_error("could not accept new connections: %s; not accepting for %d s", strerror(err),
			  FD_LIMIT_PAUSE_SEC);
	}
	fd_limited = true;
	set_events(false);
	if (fd_limit_timer == NULL)
		fd_limit_timer = evtimer_new(ev_base, on_fd_limit_end, NULL);
	if (fd_limit_timer != NULL)
		evtimer_add(fd_limit_timer, &tv);
	else
		fd_limited = false; /* no timer: keep accepting rather than stop for good */
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	listener_accept_fn cb = l->cb;
	void *cb_arg = l->arg;
	bool is_unix = l->is_unix;
	unsigned gen = accept_gen;
	int i;

	(void)what;
	for (i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int cfd;

		cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* the peer gave up before we got to it: look at the next one */
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				fd_limit_reached(errno);
				break;
			}
			log_warning("accept on %s failed: %s", l->name, strerror(errno));
			break;
		}
		fd_limit_logged = false;
		if (!is_unix)
			net_tune_socket(cfd, true, &tune);
		cb(cfd, (struct sockaddr *)&ss, len, is_unix, cb_arg);
		/* the callback may have paused or closed the listeners; l may be gone */
		if (gen != accept_gen)
			break;
	}
}

static void listener_free(struct listener *l, bool unlink_file)
{
	struct stat st;

	if (l->unix_path != NULL && unix_file.known && strcmp(unix_file.path, l->unix_path) == 0)
		unix_file.known = 0;

	if (l->ev != NULL)
		event_free(l->ev);
	if (l->fd >= 0)
		close(l->fd);
	if (l->unix_path != NULL && unlink_file && lstat(l->unix_path, &st) == 0 &&
	    st.st_dev == l->unix_dev && st.st_ino == l->unix_ino)
		unlink(l->unix_path);
	free(l->unix_path);
	free(l);
}

static struct listener *listener_new(int fd, bool is_unix)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	list_init(&l->node);
	l->fd = fd;
	l->is_unix = is_unix;
	return l;
}

static bool same_addr(const struct sockaddr *a, socklen_t alen, const struct sockaddr_storage *b,
		      socklen_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static int backlog_of(const struct config *cfg)
{
	return cfg->listen_backlog > 0 ? cfg->listen_backlog : SOMAXCONN;
}

/* One TCP socket for one resolved address. A wildcard address the kernel cannot do (no IPv6) is skipped. */
static bool open_tcp_one(const struct addrinfo *ai, bool wildcard, const struct config *cfg,
			 struct list *opened, char *err, size_t errlen)
{
	struct list *pos, *tmp;
	struct listener *l;
	char name[128];
	int fd, on = 1;

	net_addr_str(ai->ai_addr, name, sizeof(name));
	LIST_FOREACH_SAFE (pos, tmp, opened) {
		struct listener *o = container_of(pos, struct listener, node);

		if (!o->is_unix && same_addr(ai->ai_addr, ai->ai_addrlen, &o->addr, o->addrlen))
			return true;
	}

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (wildcard && errno == EAFNOSUPPORT) {
			log_warning("not listening on %s: %s", name, strerror(errno));
			return true;
		}
		snprintf(err, errlen, "could not create socket for %s: %s", name, strerror(errno));
		return false;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) {
		snprintf(err, errlen, "could not set SO_REUSEADDR on %s: %s", name, strerror(errno));
		goto fail;
	}
	if (cfg->so_reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
		snprintf(err, errlen, "could not set SO_REUSEPORT on %s: %s", name, strerror(errno));
		goto fail;
	}
	/* so that "*" can bind 0.0.0.0 and :: on the same port */
	if (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) {
		snprintf(err, errlen, "could not set IPV6_V6ONLY on %s: %s", name, strerror(errno));
		goto fail;
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		snprintf(err, errlen, "could not bind %s: %s", name, strerror(errno));
		goto fail;
	}
	/* accepted sockets inherit the buffer sizes before their handshake agrees on a window */
	net_tune_socket(fd, true, cfg);
	if (cfg->tcp_defer_accept > 0) {
		int secs = cfg->tcp_defer_accept;

		if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) != 0)
			log_warning("could not set tcp_defer_accept on %s: %s", name, strerror(errno));
	}
	if (listen(fd, backlog_of(cfg)) != 0) {
		snprintf(err, errlen, "could not listen on %s: %s", name, strerror(errno));
		goto fail;
	}
	l = listener_new(fd, false);
	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memcpy(&l->addr, ai->ai_addr, ai->ai_addrlen);
	l->addrlen = ai->ai_addrlen;
	snprintf(l->name, sizeof(l->name), "%s", name);
	list_append(opened, &l->node);
	return true;
fail:
	close(fd);
	return false;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

static bool open_tcp(const struct config *cfg, struct list *opened, char *err, size_t errlen)
{
	char port[16], *copy, *item, *save = NULL;
	bool ok = true;

	if (cfg->listen_addr == NULL || cfg->listen_addr[0] == '\0')
		return true;
	copy = strdup(cfg->listen_addr);
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
	for (item = strtok_r(copy, ",", &save); ok && item != NULL; item = strtok_r(NULL, ",", &save)) {
		struct addrinfo *res = NULL, *ai;
		char *host = trim(item);
		bool wildcard = strcmp(host, "*") == 0;
		size_t hlen = strlen(host);
		int rc;

		if (hlen == 0)
			continue;
		/* "[::1]" is accepted as well as "::1" */
		if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
			host[hlen - 1] = '\0';
			host++;
		}
		rc = net_listen_addrinfo(host, port, wildcard, &res);
		if (rc != 0) {
			snprintf(err, errlen, "could not resolve listen_addr \"%s\": %s", host, net_gai_error(rc));
			ok = false;
			break;
		}
		for (ai = res; ok && ai != NULL; ai = ai->ai_next) {
			if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
				continue;
			ok = open_tcp_one(ai, wildcard, cfg, opened, err, errlen);
		}
		freeaddrinfo(res);
	}
	free(copy);
	return ok;
}

/*
 * A socket file left by a process that died is removed; one that still accepts connections belongs to a
 * running server and is left alone.
 */
static bool clear_stale_socket(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return true;
		snprintf(err, errlen, "could not stat %s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "could not bind unix socket %s: the file exists and is not a socket",
			 path);
		return false;
	}
	fd = net_connect_unix(path);
	if (fd >= 0 || errno == EAGAIN) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "could not bind unix socket %s: another process is listening on it",
			 path);
		return false;
	}
	if (errno != ECONNREFUSED && errno != ENOENT) {
		snprintf(err, errlen, "could not check whether unix socket %s is in use: %s", path,
			 strerror(errno));
		return false;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "could not remove stale unix socket %s: %s", path, strerror(errno));
		return false;
	}
	log_info("removed stale unix socket %s", path);
	return true;
}

static bool lookup_group(const char *name, gid_t *gid)
{
	struct group *gr = getgrnam(name);
	char *end;
	unsigned long n;

	if (gr != NULL) {
		*gid = gr->gr_gid;
		return true;
	}
	errno = 0;
	n = strtoul(name, &end, 10);
	if (errno != 0 || end == name || *end != '\0')
		return false;
	*gid = (gid_t)n;
	return true;
}

static bool open_unix(const struct config *cfg, struct list *opened, char *err, size_t errlen)
{
	const char *dir = cfg->unix_socket_dir;
	struct sockaddr_un un;
	struct listener *l;
	struct stat st;
	char path[sizeof(un.sun_path) + 64];
	size_t dlen, plen;
	socklen_t len;
	mode_t old_umask;
	bool abstract;
	int fd, rc;

	if (dir == NULL || dir[0] == '\0')
		return true;
	abstract = dir[0] == '@';
	dlen = strlen(dir);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	snprintf(path, sizeof(path), "%.*s/.s.PGSQL.%d", (int)dlen, dir, cfg->listen_port);
	plen = strlen(path);
	if (plen >= sizeof(un.sun_path)) {
		snprintf(err, errlen, "unix socket path too long (max %zu bytes): %s",
			 sizeof(un.sun_path) - 1, path);
		return false;
	}
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	memcpy(un.sun_path, path, plen);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	if (abstract) {
		un.sun_path[0] = '\0';
		len--;
	} else if (!clear_stale_socket(path, err, errlen)) {
		return false;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "could not create unix socket: %s", strerror(errno));
		return false;
	}
	/* create the file with its final mode, so it is never reachable with looser permissions */
	old_umask = umask(0777 & ~(mode_t)cfg->unix_socket_mode);
	rc = bind(fd, (struct sockaddr *)&un, len);
	umask(old_umask);
	if (rc != 0) {
		snprintf(err, errlen, "could not bind unix socket %s: %s", path, strerror(errno));
		close(fd);
		return false;
	}
	l = listener_new(fd, true);
	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		if (!abstract)
			unlink(path);
		return false;
	}
	snprintf(l->name, sizeof(l->name), "%s", path);
	if (!abstract) {
		l->unix_path = strdup(path);
		if (l->unix_path == NULL || lstat(path, &st) != 0) {
			snprintf(err, errlen, "could not set up unix socket %s: %s", path,
				 l->unix_path == NULL ? "out of memory" : strerror(errno));
			listener_free(l, false);
			unlink(path);
			return false;
		}
		l->unix_dev = st.st_dev;
		l->unix_ino = st.st_ino;
		unix_file.known = 0;
		memcpy(unix_file.path, path, plen + 1);
		unix_file.dev = st.st_dev;
		unix_file.ino = st.st_ino;
		unix_file.known = 1;
	}
	list_append(opened, &l->node); /* from here on a failure unlinks the file with the rest */

	if (abstract)
		goto do_listen;
	if (chmod(path, (mode_t)cfg->unix_socket_mode & 07777) != 0) {
		snprintf(err, errlen, "could not chmod unix socket %s to %04o: %s", path,
			 (unsigned)cfg->unix_socket_mode, strerror(errno));
		return false;
	}
	if (cfg->unix_socket_group != NULL && cfg->unix_socket_group[0] != '\0') {
		gid_t gid;

		if (!lookup_group(cfg->unix_socket_group, &gid)) {
			snprintf(err, errlen, "unix_socket_group: unknown group \"%s\"",
				 cfg->unix_socket_group);
			return false;
		}
		if (chown(path, (uid_t)-1, gid) != 0) {
			snprintf(err, errlen, "could not change group of unix socket %s to %s: %s", path,
				 cfg->unix_socket_group, strerror(errno));
			return false;
		}
	}
do_listen:
	if (listen(fd, backlog_of(cfg)) != 0) {
		snprintf(err, errlen, "could not listen on unix socket %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

bool listener_open_all(struct event_base *base, const struct config *cfg, listener_accept_fn cb, void *arg,
		       char *err, size_t errlen)
{
	struct list opened, *pos, *tmp;
	char dummy[1];

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	list_init(&opened);
	if (ev_base == NULL)
		ev_base = base;

	if (!open_tcp(cfg, &opened, err, errlen) || !open_unix(cfg, &opened, err, errlen))
		goto fail;

	LIST_FOREACH_SAFE (pos, tmp, &opened) {
		struct listener *l = container_of(pos, struct listener, node);

		l->cb = cb;
		l->arg = arg;
		l->ev = event_new(base, l->fd, EV_READ | EV_PERSIST, on_accept, l);
		if (l->ev == NULL) {
			snprintf(err, errlen, "could not create event for %s", l->name);
			goto fail;
		}
	}
	copy_tune(cfg);
	LIST_FOREACH_SAFE (pos, tmp, &opened) {
		struct listener *l = container_of(pos, struct listener, node);

		list_remove(&l->node);
		list_append(&listeners, &l->node);
		if (!paused && !fd_limited)
			event_add(l->ev, NULL);
		log_info("listening on %s", l->name);
	}
	return true;
fail:
	LIST_FOREACH_SAFE (pos, tmp, &opened) {
		struct listener *l = container_of(pos, struct listener, node);

		list_remove(&l->node);
		listener_free(l, true);
	}
	return false;
}

void listener_pause(void)
{
	paused = true;
	accept_gen++;
	set_events(false);
}

void listener_resume(void)
{
	paused = false;
	if (!fd_limited)
		set_events(true);
}

void listener_close_tcp(void)
{
	struct list *pos, *tmp;

	accept_gen++;
	LIST_FOREACH_SAFE (pos, tmp, &listeners) {
		struct listener *l = container_of(pos, struct listener, node);

		if (l->is_unix)
			continue;
		log_info("closed listening socket %s", l->name);
		list_remove(&l->node);
		listener_free(l, false);
	}
}

void listener_unlink_unix_now(void)
{
	struct stat st;

	if (unix_file.known && lstat(unix_file.path, &st) == 0 && st.st_dev == unix_file.dev &&
	    st.st_ino == unix_file.ino)
		unlink(unix_file.path);
}

void listener_close_all(void)
{
	struct list *pos, *tmp;

	accept_gen++;
	LIST_FOREACH_SAFE (pos, tmp, &listeners) {
		struct listener *l = container_of(pos, struct listener, node);

		list_remove(&l->node);
		listener_free(l, true);
	}
	if (fd_limit_timer != NULL) {
		event_free(fd_limit_timer);
		fd_limit_timer = NULL;
	}
	fd_limited = false;
	fd_limit_logged = false;
	paused = false;
	ev_base = NULL;
}

void listener_reconfigure(const struct config *cfg)
{
	copy_tune(cfg);
}
