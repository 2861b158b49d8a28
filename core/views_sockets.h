/* SHOW CLIENTS, SERVERS, SOCKETS and ACTIVE_SOCKETS: one row per connection. */
#ifndef MB_VIEWS_SOCKETS_H
#define MB_VIEWS_SOCKETS_H

struct view;

struct view *views_clients(void);
struct view *views_servers(void);
/* Clients and servers together, with the buffer columns; ACTIVE_SOCKETS only those with buffered bytes. */
struct view *views_sockets(void);
struct view *views_active_sockets(void);

#endif
