/* Client login: accepting, the startup packet, authentication, the choice of a pool. */
#ifndef MB_CLIENT_LOGIN_H
#define MB_CLIENT_LOGIN_H

#include <stdbool.h>
#include <sys/socket.h>

/* Take over an accepted socket (the listener's callback). */
void client_accept(int fd, const struct sockaddr *addr, socklen_t addrlen, bool is_unix, void *arg);

#endif
