/* Socket helpers: non-blocking mode, TCP tuning, address formatting, non-blocking connect, peer credentials. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* struct ucred */
#endif
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

bool net_set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return false;
	if (flags & O_NONBLOCK)
		return true;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

enum tune_opt {
	OPT_NODELAY,
	OPT_KEEPALIVE,
	OPT_KEEPCNT,
	OPT_KEEPIDLE,
	OPT_KEEPINTVL,
	OPT_USER_TIMEOUT,
	OPT_SNDBUF,
	OPT_RCVBUF,
	OPT_COUNT
};

/* A bad value in the config would fail on every socket: warn once per option, not per connection. */
static void set_int_opt(int fd, int level, int name, int value, enum tune_opt which, const char *what)
{
	static bool warned[OPT_COUNT];

	if (setsockopt(fd, level, name, &value, sizeof(value)) == 0)
		return;
	if (!warned[which]) {
		warned[which] = true;
		log_warning("could not set %s = %d on socket: %s", what, value, strerror(errno));
	}
}

void net_tune_socket(int fd, bool is_tcp, const struct config *cfg)
{
	if (!is_tcp)
		return;
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1, OPT_NODELAY, "TCP_NODELAY");
	if (cfg == NULL)
		return;
	if (cfg->tcp_keepalive) {
		set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, OPT_KEEPALIVE, "SO_KEEPALIVE");
		if (cfg->tcp_keepcnt > 0)
			set_int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, cfg->tcp_keepcnt, OPT_KEEPCNT,
				    "tcp_keepcnt");
		if (cfg->tcp_keepidle > 0)
			set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, cfg->tcp_keepidle, OPT_KEEPIDLE,
				    "tcp_keepidle");
		if (cfg->tcp_keepintvl > 0)
			set_int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, cfg->tcp_keepintvl, OPT_KEEPINTVL,
				    "tcp_keepintvl");
	}
	if (cfg->tcp_user_timeout > 0)
		set_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, cfg->tcp_user_timeout, OPT_USER_TIMEOUT,
			    "tcp_user_timeout");
	if (cfg->tcp_socket_buffer > 0) {
		set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, cfg->tcp_socket_buffer, OPT_SNDBUF,
			    "tcp_socket_buffer");
		set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, cfg->tcp_socket_buffer, OPT_RCVBUF,
			    "tcp_socket_buffer");
	}
}

const char *net_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (len == 0)
		return buf;
	if (sa == NULL) {
		snprintf(buf, len, "unknown");
		return buf;
	}
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX:
		snprintf(buf, len, "unix");
		break;
	default:
		snprintf(buf, len, "unknown");
		break;
	}
	return buf;
}

int net_connect(const struct sockaddr *sa, socklen_t len, const struct config *cfg)
{
	int fd, saved;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* socket buffers before the handshake: the TCP window (and its scale) is agreed there */
	if (cfg && sa->sa_family != AF_UNIX)
		net_tune_socket(fd, true, cfg);
	while (connect(fd, sa, len) != 0) {
		if (errno == EINTR)
			continue;
		/* EAGAIN from a unix socket means its backlog is full: a failure, not "in progress" */
		if (errno == EINPROGRESS)
			break;
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int net_connect_unix(const char *path)
{
	struct sockaddr_un un;
	size_t plen = strlen(path);
	socklen_t len;

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	if (plen == 0 || plen >= sizeof(un.sun_path)) {
		errno = plen == 0 ? EINVAL : ENAMETOOLONG;
		return -1;
	}
	memcpy(un.sun_path, path, plen);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	if (path[0] == '@') {
		/* abstract namespace: leading NUL, length without a terminator */
		un.sun_path[0] = '\0';
		len--;
	}
	return net_connect((const struct sockaddr *)&un, len, NULL);
}

bool net_peer_user(int fd, char *buf, size_t len)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct passwd pw, *found = NULL;
	char tmp[1024];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    getpwuid_r(cred.uid, &pw, tmp, sizeof(tmp), &found) != 0 || !found)
		return false;
	return (size_t)snprintf(buf, len, "%s", found->pw_name) < len;
}

int net_listen_addrinfo(const char *host, const char *port, bool wildcard, struct addrinfo **res)
{
	struct addrinfo hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_PASSIVE | (wildcard ? AI_ADDRCONFIG : 0);
	return getaddrinfo(wildcard ? NULL : host, port, &hints, res);
}

const char *net_gai_error(int rc)
{
	return rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
}
