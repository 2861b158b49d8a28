/* Socket helpers: non-blocking mode, TCP tuning, address formatting, non-blocking connect, peer credentials. */
#ifndef MB_NET_H
#define MB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct addrinfo;

struct config;

bool net_set_nonblocking(int fd);

/*
 * TCP_NODELAY, keepalive with tcp_keepcnt/keepidle/keepintvl, TCP_USER_TIMEOUT (ms), SO_SNDBUF/RCVBUF from
 * tcp_socket_buffer when > 0; skipped for unix sockets. cfg may be NULL (then only TCP_NODELAY).
 */
void net_tune_socket(int fd, bool is_tcp, const struct config *cfg);

/* human-readable "1.2.3.4:5678" / "[::1]:5678" / "unix" into buf; returns buf */
const char *net_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/*
 * Non-blocking connect to sa (TCP) or a unix socket path; returns fd (connect in progress is fine) or -1
 * with errno set. The fd is non-blocking and close-on-exec; a TCP socket is tuned with cfg (when not
 * NULL) before the handshake, so that tcp_socket_buffer also sizes the window agreed there.
 * A path starting with '@' names a socket in the abstract namespace.
 */
int net_connect(const struct sockaddr *sa, socklen_t len, const struct config *cfg);
int net_connect_unix(const char *path);

/*
 * Addresses to listen on for host and port (TCP, passive; wildcard: every local address, host unused).
 * 0, or a getaddrinfo error: net_gai_error(rc) says it.
 */
int net_listen_addrinfo(const char *host, const char *port, bool wildcard, struct addrinfo **res);
const char *net_gai_error(int rc);

/* The OS user name of the process at the other end of a unix socket (SO_PEERCRED); false if unknown. */
bool net_peer_user(int fd, char *buf, size_t len);

#endif
