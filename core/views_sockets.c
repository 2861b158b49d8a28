/* SHOW CLIENTS, SERVERS, SOCKETS and ACTIVE_SOCKETS: one row per connection, in PgBouncer 1.25's columns. */
#include "views_sockets.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "client.h"
#include "params.h"
#include "pool.h"
#include "runtime.h"
#include "server.h"
#include "tls.h"
#include "view.h"

#define STD_TYPES "ssssssisiTTiiississii"
#define DEBUG_TYPES STD_TYPES "iiiiiii"

static struct view *socket_view(bool debug)
{
	const char *types = debug ? DEBUG_TYPES : STD_TYPES;

	return view_new(types, "type", "user", "database", "replication", "state", "addr", "port", "local_addr",
			"local_port", "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link",
			"remote_pid", "tls", "application_name", "prepared_statements", "id", "recv_pos", "pkt_pos",
			"pkt_remain", "send_pos", "send_remain", "pkt_avail", "send_avail");
}

/* An address as text and its port; unix sockets show "unix" and the listening port, as PgBouncer does. */
static void format_addr(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t size, int *port)
{
	const struct sockaddr *sa = (const struct sockaddr *)ss;

	*port = 0;
	snprintf(buf, size, "unix");
	if (len == 0 || sa->sa_family == AF_UNIX) {
		*port = rt.cfg->listen_port;
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)size);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)size);
		*port = ntohs(in6->sin6_port);
	}
}

/* Monotonic rt_now() times shown as wall-clock times. */
static double wall_time(double t)
{
	return t > 0 ? (double)time(NULL) - (rt_now() - t) : 0;
}

struct sock_row {
	const char *type, *user, *database, *state, *app;
	const struct sbuf *sb;
	const void *ptr, *link;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	double connect_time, request_time, wait;
	int remote_pid, prepared;
	bool close_needed;	/* closed instead of reused when released */
	unsigned long long id;
};

static void add_row(struct view *v, const struct sock_row *r, bool debug)
{
	char addr[64], laddr[64], ptr[32], link[32], tls[128];
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	int port, lport;
	long long wait_us = (long long)(r->wait * 1e6);
	const struct iobuf *io = r->sb->io;

	format_addr(&r->peer, r->peer_len, addr, sizeof(addr), &port);
	if (r->sb->fd < 0 || getsockname(r->sb->fd, (struct sockaddr *)&local, &llen) != 0)
		llen = 0;
	format_addr(&local, llen, laddr, sizeof(laddr), &lport);
	snprintf(ptr, sizeof(ptr), "%p", r->ptr);
	snprintf(link, sizeof(link), "%p", r->link);
	if (!r->link)
		link[0] = 0;
	view_row(v, r->type, r->user ? r->user : "(nouser)", r->database ? r->database : "(nodb)", "none", r->state,
		 addr, port, laddr, lport, wall_time(r->connect_time), wall_time(r->request_time),
		 (int)(wait_us / 1000000), (int)(wait_us % 1000000), r->close_needed ? 1 : 0, ptr, link, r->remote_pid, tls_describe(r->sb, tls, sizeof(tls)),
		 r->app ? r->app : "", r->prepared, (int)r->id,
		 /* the debug columns: buffer positions */
		 debug && io ? (int)io->recv : 0, debug && io ? (int)io->parse : 0, debug ? (int)r->sb->remain : 0,
		 debug && io ? (int)io->done : 0, 0, debug && io ? (int)(io->recv - io->parse) : 0,
		 debug ? (int)(r->sb->out.len - r->sb->out_sent) : 0);
}

static const char *client_state_name(const struct client *c, bool sockets)
{
	switch (c->state) {
	case CL_LOGIN:
		return "cl_login";
	case CL_WAITING:
	case CL_TENANT_WAIT:
	case CL_WELCOME:
		return sockets ? "cl_waiting" : "waiting";
	default:
		if (sockets)
			return "cl_active";
		return c->server || c->console ? "active" : "idle";
	}
}

static void client_row(struct view *v, const struct client *c, bool debug)
{
	struct sock_row r = { 0 };
	double now = rt_now();

	r.type = "C";
	r.user = c->user;
	r.database = c->console ? "pgbouncer" : c->pool ? c->pool->db_name : c->database;
	r.state = client_state_name(c, debug);
	r.app = params_get(&c->params, "application_name");
	r.sb = &c->sb;
	r.ptr = c;
	r.link = c->server;
	if (!c->is_unix) {
		memcpy(&r.peer, &c->addr, sizeof(c->addr));
		r.peer_len = sizeof(c->addr);
	}
	r.connect_time = c->connect_time;
	r.request_time = c->request_time > 0 ? c->request_time : c->last_activity;
	if (c->state == CL_WAITING || c->state == CL_TENANT_WAIT)
		r.wait = now - c->request_time;
	r.prepared = (int)ps_client_count(&c->ps);
	r.id = c->id;
	add_row(v, &r, debug);
}

static const char *server_state_name(const struct server *s, bool sockets)
{
	static const char *const plain[] = { [SV_LOGIN] = "new", [SV_IDLE] = "idle", [SV_ACTIVE] = "active",
					     [SV_USED] = "tested", [SV_CLOSING] = "closing" };
	static const char *const prefixed[] = { [SV_LOGIN] = "sv_login", [SV_IDLE] = "sv_idle",
						[SV_ACTIVE] = "sv_active", [SV_USED] = "sv_tested",
						[SV_CLOSING] = "sv_closing" };

	if (s->state < SV_LOGIN || s->state > SV_CLOSING)
		return "closed";
	if (s->await_cancel)
		return sockets ? "sv_being_canceled" : "being_canceled";
	return sockets ? prefixed[s->state] : plain[s->state];
}

static void server_row(struct view *v, const struct server *s, bool debug)
{
	struct sock_row r = { 0 };

	r.type = "S";
	r.user = s->pool->user_name;
	r.database = s->pool->db_name;
	r.state = server_state_name(s, debug);
	r.app = params_get(&s->params, "application_name");
	r.sb = &s->sb;
	r.ptr = s;
	r.link = s->client;
	if (!s->unix_path[0]) {
		memcpy(&r.peer, &s->addr, sizeof(s->addr));
		r.peer_len = s->addrlen;
	}
	r.connect_time = s->connect_time;
	r.request_time = s->last_used > 0 ? s->last_used : s->connect_time;
	r.remote_pid = (int)s->backend_pid;
	r.close_needed = s->conn_generation != s->pool->conn_generation || s->library_loaded;
	r.prepared = s->ps_cache.n;
	r.id = s->id;
	add_row(v, &r, debug);
}

static void server_list_rows(struct view *v, const struct list *l, bool debug, bool active_only)
{
	for (const struct list *it = l->next; it != l; it = it->next) {
		const struct server *s = container_of(it, struct server, head);
		if (!active_only || (s->sb.io && s->sb.io->recv > s->sb.io->done) || s->sb.out.len > s->sb.out_sent)
			server_row(v, s, debug);
	}
}

static void server_rows(struct view *v, bool debug, bool active_only)
{
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *p = container_of(it, struct pool, head);
		server_list_rows(v, &p->active_servers, debug, active_only);
		server_list_rows(v, &p->idle_servers, debug, active_only);
		server_list_rows(v, &p->used_servers, debug, active_only);
		server_list_rows(v, &p->login_servers, debug, active_only);
	}
}

static void client_rows(struct view *v, bool debug, bool active_only)
{
	for (struct list *it = client_all()->next; it != client_all(); it = it->next) {
		const struct client *c = container_of(it, struct client, all);
		if (c->state == CL_CLOSED || (!debug && c->state == CL_LOGIN))
			continue;
		if (active_only && !((c->sb.io && c->sb.io->recv > c->sb.io->done) || c->sb.out.len > c->sb.out_sent))
			continue;
		client_row(v, c, debug);
	}
}

enum socket_kinds { CLIENT_ROWS = 1, SERVER_ROWS = 2 };

static struct view *socket_rows(int kinds, bool debug, bool active_only)
{
	struct view *v = socket_view(debug);

	if (v && (kinds & CLIENT_ROWS))
		client_rows(v, debug, active_only);
	if (v && (kinds & SERVER_ROWS))
		server_rows(v, debug, active_only);
	return v;
}

struct view *views_clients(void)
{
	return socket_rows(CLIENT_ROWS, false, false);
}

struct view *views_servers(void)
{
	return socket_rows(SERVER_ROWS, false, false);
}

struct view *views_sockets(void)
{
	return socket_rows(CLIENT_ROWS | SERVER_ROWS, true, false);
}

struct view *views_active_sockets(void)
{
	return socket_rows(CLIENT_ROWS | SERVER_ROWS, true, true);
}
