/* Listening sockets: TCP addresses and the unix socket, accepting clients into a callback. */
#ifndef MB_LISTENER_H
#define MB_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct config;
struct event_base;

typedef void (*listener_accept_fn)(int fd, const struct sockaddr *addr, socklen_t addrlen, bool is_unix,
				   void *arg);

/*
 * Open every listening socket the config asks for: each comma-separated listen_addr (IPv4, IPv6, host
 * names resolved once at start with getaddrinfo; "*" = all IPv4 and IPv6 addresses, IPV6_V6ONLY set on v6
 * sockets so both can bind), listen_port, listen_backlog, SO_REUSEADDR (and SO_REUSEPORT if so_reuseport),
 * and the unix socket unix_socket_dir/.s.PGSQL.<listen_port> with unix_socket_mode (chmod) and
 * unix_socket_group (chown to the group, by name); a stale unix socket file is removed only after checking
 * nothing answers on it (connect fails); a live one is an error. On failure returns false with a clear
 * message in err ("could not bind 127.0.0.1:6432: Address already in use"). Accepted fds are non-blocking,
 * tuned with net_tune_socket, and handed to cb. Accept in a loop until EAGAIN (bounded per wakeup, e.g. 100)
 * for bursts; on EMFILE/ENFILE log once and pause accepting for a second rather than spinning.
 *
 * A failed call closes only the sockets it opened itself; a successful one adds its sockets to those
 * already open. A unix_socket_dir starting with '@' names the abstract namespace (no file, no chmod/chown).
 */
bool listener_open_all(struct event_base *base, const struct config *cfg, listener_accept_fn cb, void *arg,
		       char *err, size_t errlen);
void listener_pause(void); /* stop accepting (shutdown), sockets stay open */
void listener_resume(void);
void listener_close_all(void); /* close and unlink the unix socket file */
/* Shutdown (SIGINT, SIGTERM): close the TCP sockets at once, so that new connections are refused or go to
 * another process on the same port (so_reuseport); the unix socket stays open. */
void listener_close_tcp(void);
/* Async-signal-safe: remove the unix socket file this process created (if it is still ours). */
void listener_unlink_unix_now(void);
/* After listener_open_all and before dropping privileges nothing else needed. */

/* On reload: take the new tcp_* values for sockets accepted from now on (addresses are not reopened). */
void listener_reconfigure(const struct config *cfg);

#endif
