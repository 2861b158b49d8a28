/* Client connections: states and their lists, errors and closing, look-ups, timeouts. */
#include "client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "runtime.h"
#include "tenant.h"
#include "tls.h"

static struct list g_login = { &g_login, &g_login };
static struct list g_all = { &g_all, &g_all };
static struct list g_closed = { &g_closed, &g_closed };
static struct list g_console = { &g_console, &g_console };	/* logged-in console clients: no pool */

struct list *client_logins(void)
{
	return &g_login;
}

struct list *client_all(void)
{
	return &g_all;
}

void client_register(struct client *c)
{
	c->state = CL_LOGIN;
	list_init(&c->head);
	list_append(&g_login, &c->head);
	list_append(&g_all, &c->all);
	rt.n_clients++;
}

static const char *state_name(enum client_state s)
{
	switch (s) {
	case CL_LOGIN: return "login";
	case CL_WELCOME: return "welcome";
	case CL_ACTIVE: return "active";
	case CL_WAITING: return "waiting";
	case CL_TENANT_WAIT: return "tenant-wait";
	case CL_CLOSED: return "closed";
	}
	return "?";
}

void client_change_state(struct client *c, enum client_state state)
{
	struct pool *pool = c->pool;
	struct pool *wait_pool = c->txn_pool ? c->txn_pool : pool;

	if (c->state == CL_WAITING)
		wait_pool->n_waiting--;
	if (state == CL_WAITING)
		wait_pool->n_waiting++;
	list_remove(&c->head);
	switch (state) {
	case CL_LOGIN:
		list_append(&g_login, &c->head);
		break;
	case CL_WELCOME:
		c->request_time = rt_now();	/* its wait for the welcome counts as a wait for a server */
		list_append(&pool->welcome_clients, &c->head);
		break;
	case CL_ACTIVE:
		list_append(pool ? &pool->active_clients : &g_console, &c->head);
		break;
	case CL_WAITING:
		list_append(&wait_pool->waiting_clients, &c->head);
		break;
	case CL_TENANT_WAIT:
		list_append(&c->tenant->waiting, &c->head);
		break;
	case CL_CLOSED:
		list_append(&g_closed, &c->head);
		break;
	default:
		log_error("client %llu: unknown state %d", c->id, (int)state);
		abort();
	}
	log_noise("C-%llu: %s -> %s", c->id, state_name(c->state), state_name(state));
	c->state = state;
}

bool client_tls_active(const struct client *c)
{
	return tls_active(&c->sb);
}

const char *client_addr(const struct client *c, char buf[64])
{
	if (c->is_unix)
		return "unix";
	return net_addr_str(&c->addr.sa, buf, 64);
}

const char *client_tls(const struct client *c, char *buf, size_t len)
{
	tls_describe(&c->sb, buf, len);
	if (!buf[0])
		snprintf(buf, len, "no");
	return buf;
}

static void send_error(struct client *c, const char *severity, const char *sqlstate, const char *fmt, va_list ap)
{
	struct pktbuf b;
	pktbuf_init(&b);
	pkt_error_v(&b, severity, sqlstate, fmt, ap);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

void client_fatal(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	if (c->state == CL_CLOSED)
		return;
	va_start(ap, fmt);
	send_error(c, "FATAL", sqlstate, fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	client_close(c, reason);
}

void client_notice(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	char text[256];
	struct pktbuf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pktbuf_init(&b);
	pkt_notice(&b, sqlstate, "%s", text);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

void client_close(struct client *c, const char *reason)
{
	char abuf[64];

	if (c->state == CL_CLOSED)
		return;
	if (rt.cfg->log_disconnections)
		log_info("C-%llu %s/%s@%s closing because: %s (age=%.0fs)", c->id, c->database ? c->database : "?",
			 c->user ? c->user : "?", client_addr(c, abuf), reason, rt_now() - c->connect_time);
	else
		log_debug("C-%llu %s closing because: %s", c->id, client_addr(c, abuf), reason);
	if (c->hooks)
		c->hooks->closing(c);	/* its server, tenant, pool and policy first */
	sbuf_close(&c->sb);
	client_change_state(c, CL_CLOSED);
	list_remove(&c->all);
	rt.n_clients--;
	rt_schedule_reap();
	rt_check_shutdown();
}

/* Login state is large and short-lived: it goes as soon as the login is over. */
void client_drop_scram(struct client *c)
{
	if (c->scram) {
		auth_scram_server_free(c->scram);
		free(c->scram);
		c->scram = NULL;
	}
}

void client_free_closed(void)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_closed) {
		struct client *c = container_of(it, struct client, head);
		list_remove(&c->head);
		params_clear(&c->params);
		params_clear(&c->reported);
		params_clear(&c->startup);
		params_clear(&c->pending_resets);
		session_clear(&c->hidden);
		params_clear(&c->deferred_status);
		pktbuf_free(&c->session_msg);
		ps_client_clear(&c->ps);
		if (c->hooks)
			c->hooks->freeing(c);
		client_drop_scram(c);
		free(c->secret);
		free(c->user);
		free(c->database);
		free(c);
	}
}

struct client *client_find_by_cancel(uint32_t pid, uint32_t key)
{
	struct list *it;
	for (it = g_all.next; it != &g_all; it = it->next) {
		struct client *c = container_of(it, struct client, all);
		if (c->cancel_pid == pid && auth_equal(&c->cancel_key, &key, sizeof(key)))
			return c;
	}
	return NULL;
}

void client_send_welcome(struct client *c)
{
	struct pool *pool = c->pool;
	struct pktbuf b;

	pktbuf_init(&b);
	for (int i = 0; i < pool->welcome.n; i++) {
		const struct param *w = &pool->welcome.items[i];
		const struct param *mine = params_find_same(&c->params, w);
		const char *own = mine ? mine->value : NULL;
		const char *value = own ? own : w->value;
		pkt_parameter_status(&b, w->name, value);
		/* only what differs from the pool's welcome is kept per client: idle clients stay small */
		if (own && strcmp(own, w->value) != 0 && !params_set(&c->reported, w->name, value, true))
			b.failed = true;
	}
	pkt_backend_key(&b, c->cancel_pid, c->cancel_key);
	if (rt.cfg->login_notify_message && rt.cfg->login_notify_message[0])
		pkt_notice(&b, "00000", "%s", rt.cfg->login_notify_message);
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	if (b.failed) {
		pktbuf_free(&b);
		client_fatal(c, "53200", "out of memory");
		return;
	}
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
	pool->stats.client_login_count++;
	if (c->state == CL_WELCOME) {
		pool->stats.wait_time += stats_usec(c->request_time, rt_now());
		stats_wait_observe(c->request_time, rt_now());
	}
	client_change_state(c, CL_ACTIVE);
	sbuf_resume(&c->sb);
}

void client_linked(struct client *c)
{
	if (c->state == CL_WAITING)
		client_change_state(c, CL_ACTIVE);
	sbuf_resume(&c->sb);
}

static double pick_time(double user, double db, double global)
{
	if (user >= 0)
		return user;
	return db >= 0 ? db : global;
}

double client_timeout(const struct client *c, enum client_timeout which)
{
	const struct user_entry *u = c->user ? config_find_user(rt.cfg, c->user) : NULL;
	const struct db_entry *db = c->pool ? c->pool->db : NULL;
	const struct config *cfg = rt.cfg;

	switch (which) {
	case TIMEOUT_QUERY:
		return pick_time(u ? u->query_timeout : -1, -1, cfg->query_timeout);
	case TIMEOUT_QUERY_WAIT:
		return pick_time(u ? u->query_wait_timeout : -1, db ? db->query_wait_timeout : -1,
				 cfg->query_wait_timeout);
	case TIMEOUT_IDLE_TRANSACTION:
		return pick_time(u ? u->idle_transaction_timeout : -1, -1, cfg->idle_transaction_timeout);
	case TIMEOUT_TRANSACTION:
		return pick_time(u ? u->transaction_timeout : -1, -1, cfg->transaction_timeout);
	case TIMEOUT_CLIENT_IDLE:
		return pick_time(u ? u->client_idle_timeout : -1, -1, cfg->client_idle_timeout);
	}
	return 0;
}

void client_shutdown_waiting(void)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_all) {
		struct client *c = container_of(it, struct client, all);
		if (c->state == CL_WAITING || c->state == CL_TENANT_WAIT || c->state == CL_WELCOME)
			client_fatal(c, "08P01", "server shutting down");
	}
}

void client_close_all(const char *reason)
{
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, &g_all) {
		struct client *c = container_of(it, struct client, all);
		client_fatal(c, "57P01", "%s", reason);
	}
}
