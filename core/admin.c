/* The admin console: the virtual database pgbouncer (or moonbouncer), its logins and its commands. */
#include "admin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "server.h"
#include "stats_count.h"
#include "version.h"
#include "view.h"
#include "views.h"

#define DENIED "42501"	/* insufficient_privilege */
#define WORD_MAX 128

enum console_wait { WAIT_NONE = 0, WAIT_PAUSE, WAIT_CLOSE };

static struct admin_hooks g_hooks;

void admin_init(const struct admin_hooks *hooks)
{
	g_hooks = *hooks;
}

bool admin_is_console_db(const char *database)
{
	return database && (strcmp(database, "pgbouncer") == 0 || strcmp(database, "moonbouncer") == 0);
}

/* ---- logging in ---- */

static bool same_os_user(const struct client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return c->is_unix && getsockopt(c->sb.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == getuid();
}

bool admin_pre_login(struct client *c)
{
	if (strcmp(c->user, "pgbouncer") == 0 && same_os_user(c)) {
		c->console_admin = true;
		if (rt.cfg->log_connections)
			log_info("C-%llu pgbouncer/pgbouncer@unix pgbouncer access from unix socket", c->id);
		return true;
	}
	if (rt.cfg->auth_type == AUTH_TYPE_ANY) {
		if (config_list_contains(rt.cfg->admin_users, c->user)) {
			c->console_admin = true;
			return true;
		}
		return config_list_contains(rt.cfg->stats_users, c->user);
	}
	return false;
}

static void send_welcome(struct client *c)
{
	struct pktbuf b;

	pktbuf_init(&b);
	pkt_auth_request(&b, 0, NULL, 0);
	pkt_parameter_status(&b, "server_version", MOONBOUNCER_VERSION "/bouncer");
	pkt_parameter_status(&b, "client_encoding", "UTF8");
	pkt_parameter_status(&b, "server_encoding", "UTF8");
	pkt_parameter_status(&b, "DateStyle", "ISO");
	pkt_parameter_status(&b, "TimeZone", "GMT");
	pkt_parameter_status(&b, "standard_conforming_strings", "on");
	pkt_parameter_status(&b, "is_superuser", c->console_admin ? "on" : "off");
	pkt_backend_key(&b, c->cancel_pid, c->cancel_key);
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

enum sbuf_action admin_login(struct client *c)
{
	char abuf[64], tbuf[128];

	if (!c->console_admin) {
		if (config_list_contains(rt.cfg->admin_users, c->user))
			c->console_admin = true;
		else if (!config_list_contains(rt.cfg->stats_users, c->user) &&
			 !(rt.cfg->auth_type == AUTH_TYPE_ANY && config_list_contains(rt.cfg->stats_users, c->user))) {
			log_info("C-%llu %s/%s@%s login failed: not allowed on the admin console", c->id, c->database,
				 c->user, client_addr(c, abuf));
			client_fatal(c, DENIED, "not allowed");
			return SBUF_CLOSED;
		}
	}
	client_drop_scram(c);
	free(c->secret);
	c->secret = NULL;
	c->console = true;
	c->auth_step = AUTH_STEP_DONE;
	c->last_activity = rt_now();
	if (rt.cfg->log_connections)
		log_info("C-%llu %s/%s@%s login attempt: db=%s user=%s tls=%s (admin console, %s)", c->id, c->database,
			 c->user, client_addr(c, abuf), c->database, c->user, client_tls(c, tbuf, sizeof(tbuf)),
			 c->console_admin ? "admin" : "stats");
	send_welcome(c);
	stats_console_login();
	client_change_state(c, CL_ACTIVE);
	return SBUF_DROP;
}

/* ---- answers ---- */

static void ready(struct client *c)
{
	struct pktbuf b;

	pktbuf_init(&b);
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

static void complete(struct client *c, const char *tag)
{
	struct pktbuf b;

	pktbuf_init(&b);
	pkt_command_complete(&b, tag);
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

static void __attribute__((format(printf, 3, 4))) fail(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	struct pktbuf b;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("C-%llu admin console: %s", c->id, msg);
	pktbuf_init(&b);
	pkt_error(&b, "ERROR", sqlstate, "%s", msg);
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

/* ---- parsing: CMD [arg] [;] and SET key = value ---- */

struct command {
	char word[WORD_MAX];
	char arg[WORD_MAX];
	char value[WORD_MAX * 4];	/* SET's value */
	bool has_arg, is_set;
};

static const char *skip_space(const char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

/* An identifier (letters, digits, _ . -) or a "quoted" one. NULL if there is none. */
static const char *read_word(const char *p, char *out, size_t size)
{
	size_t n = 0;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++)
			if (n + 1 < size)
				out[n++] = *p;
		if (*p != '"' || n == 0)
			return NULL;
		out[n] = 0;
		return p + 1;
	}
	while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-'))
		if (n + 1 < size)
			out[n++] = *p++;
		else
			return NULL;
	if (n == 0)
		return NULL;
	out[n] = 0;
	return p;
}

/* A 'quoted' value ('' is a quote) or a word. */
static const char *read_value(const char *p, char *out, size_t size)
{
	size_t n = 0;

	if (*p != '\'')
		return read_word(p, out, size);
	for (p++;; p++) {
		if (!*p)
			return NULL;
		if (*p == '\'') {
			if (p[1] != '\'')
				break;
			p++;
		}
		if (n + 1 < size)
			out[n++] = *p;
	}
	out[n] = 0;
	return p + 1;
}

static bool at_end(const char *p)
{
	p = skip_space(p);
	if (*p == ';')
		p = skip_space(p + 1);
	return *p == 0;
}

static bool parse_command(const char *sql, struct command *cmd)
{
	const char *p = skip_space(sql), *q;

	memset(cmd, 0, sizeof(*cmd));
	if (!(p = read_word(p, cmd->word, sizeof(cmd->word))))
		return false;
	if (strcasecmp(cmd->word, "set") == 0) {
		cmd->is_set = true;
		p = skip_space(p);
		if (!(p = read_word(p, cmd->arg, sizeof(cmd->arg))))
			return false;
		p = skip_space(p);
		if (*p == '=')
			p++;
		else if (strncasecmp(p, "to", 2) == 0 && isspace((unsigned char)p[2]))
			p += 2;
		else
			return false;
		p = skip_space(p);
		if (!(p = read_value(p, cmd->value, sizeof(cmd->value))))
			return false;
		return at_end(p);
	}
	q = skip_space(p);
	if (q != p && *q && *q != ';') {
		if (!(p = read_word(q, cmd->arg, sizeof(cmd->arg))))
			return false;
		cmd->has_arg = true;
	}
	return at_end(p);
}

/* ---- SHOW ---- */

static void show_help(struct client *c)
{
	struct pktbuf b;

	pktbuf_init(&b);
	pkt_notice(&b, "00000", "Console usage\n"
				"\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n"
				"\tSHOW PEERS|PEER_POOLS\n"
				"\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE\n"
				"\tSHOW DNS_HOSTS|DNS_ZONES\n"
				"\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n"
				"\tSHOW POLICIES|POLICY_ERRORS|TENANTS\n"
				"\tSET key = arg\n"
				"\tRELOAD\n"
				"\tPAUSE [<db>]\n"
				"\tRESUME [<db>]\n"
				"\tDISABLE <db>\n"
				"\tENABLE <db>\n"
				"\tRECONNECT [<db>]\n"
				"\tKILL [<db>]\n"
				"\tKILL_CLIENT <client_id>\n"
				"\tSUSPEND\n"
				"\tSHUTDOWN\n"
				"\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS\n"
				"\tWAIT_CLOSE [<db>]");
	pkt_command_complete(&b, "SHOW");
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

static void show(struct client *c, const struct command *cmd)
{
	char err[256];
	struct view *v;
	struct pktbuf b;

	if (!cmd->has_arg || strcasecmp(cmd->arg, "help") == 0) {
		show_help(c);
		return;
	}
	v = views_build(cmd->arg, err, sizeof(err));
	if (!v) {
		fail(c, "0A000", "%s", err);
		return;
	}
	pktbuf_init(&b);
	view_encode(v, &b);
	pkt_ready_for_query(&b, PROTO_TXN_IDLE);
	view_free(v);
	if (b.failed)
		fail(c, "53200", "out of memory");
	else
		sbuf_send_pkt(&c->sb, &b);
	pktbuf_free(&b);
}

/* ---- commands that act ---- */

/* A database the console may act on: one in [databases], or one "*" serves that has a pool. */
static bool known_db(const char *name)
{
	const struct db_entry *db = config_find_db(rt.cfg, name);

	if (!db)
		return false;
	if (strcmp(db->name, "*") != 0)
		return true;
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next)
		if (strcmp(container_of(it, struct pool, head)->db_name, name) == 0)
			return true;
	return false;
}

/* The argument names a database the command may act on; otherwise the client has its error. */
static bool target_db(struct client *c, const struct command *cmd, const char *what)
{
	if (admin_is_console_db(cmd->arg)) {
		fail(c, "08P01", "cannot %s admin db: %s", what, cmd->arg);
		return false;
	}
	if (!known_db(cmd->arg)) {
		fail(c, "08P01", "no such database: %s", cmd->arg);
		return false;
	}
	return true;
}

static bool in_scope(const struct pool *p, const char *db)
{
	return !db[0] || strcmp(p->db_name, db) == 0;
}

/* Servers of the scope still open (PAUSE), or still of an older generation (WAIT_CLOSE). */
static int servers_left(const char *db, bool old_only)
{
	int n = 0;

	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		const struct pool *p = container_of(it, struct pool, head);
		const struct list *lists[] = { &p->login_servers, &p->idle_servers, &p->active_servers,
					       &p->used_servers };
		if (!in_scope(p, db))
			continue;
		for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
			for (const struct list *s = lists[i]->next; s != lists[i]; s = s->next)
				if (!old_only || container_of(s, struct server, head)->conn_generation != p->conn_generation)
					n++;
	}
	return n;
}

static bool wait_done(const struct client *c)
{
	return servers_left(c->console_wait_db, c->console_wait == WAIT_CLOSE) == 0;
}

static void close_paused_idle(void)
{
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		struct pool *p = container_of(it, struct pool, head);
		if (control_db_paused(p->db_name))
			pool_close_idle_servers(p, "pause");
	}
}

/* Answered now if nothing is left to wait for; otherwise admin_msg answers once it is done. */
static enum sbuf_action start_wait(struct client *c, enum console_wait what, const char *db, const char *tag)
{
	c->console_wait = what;
	snprintf(c->console_wait_db, sizeof(c->console_wait_db), "%s", db);
	if (what == WAIT_PAUSE)
		close_paused_idle();
	if (wait_done(c)) {
		c->console_wait = WAIT_NONE;
		complete(c, tag);
		return SBUF_DROP;
	}
	return SBUF_PAUSE;	/* the Query stays unread until the wait is over */
}

static enum sbuf_action cmd_pause(struct client *c, const struct command *cmd)
{
	if (rt.paused)
		return fail(c, "08P01", "already suspended/paused"), SBUF_DROP;
	if (!cmd->has_arg) {
		log_info("PAUSE command issued");
		rt.paused = true;
		return start_wait(c, WAIT_PAUSE, "", "PAUSE");
	}
	log_info("PAUSE '%s' command issued", cmd->arg);
	if (!target_db(c, cmd, "pause"))
		return SBUF_DROP;
	if (!control_pause_db(cmd->arg, true))
		return fail(c, "53200", "out of memory"), SBUF_DROP;
	return start_wait(c, WAIT_PAUSE, cmd->arg, "PAUSE");
}

static enum sbuf_action cmd_resume(struct client *c, const struct command *cmd)
{
	if (!cmd->has_arg) {
		log_info("RESUME command issued");
		if (rt.shutdown != SHUTDOWN_NONE)
			return fail(c, "08P01", "pooler is shutting down"), SBUF_DROP;
		if (!rt.paused && !control_any_db_paused())
			return fail(c, "08P01", "pooler is not paused/suspended"), SBUF_DROP;
		rt.paused = false;
		control_resume_all_dbs();
	} else {
		log_info("RESUME '%s' command issued", cmd->arg);
		if (!known_db(cmd->arg))
			return fail(c, "08P01", "no such database: %s", cmd->arg), SBUF_DROP;
		if (!control_db_paused(cmd->arg) || rt.paused)
			return fail(c, "08P01", "database %s is not paused", cmd->arg), SBUF_DROP;
		control_pause_db(cmd->arg, false);
	}
	g_hooks.resume();
	complete(c, "RESUME");
	return SBUF_DROP;
}

static enum sbuf_action cmd_disable(struct client *c, const struct command *cmd, bool on)
{
	const char *word = on ? "DISABLE" : "ENABLE";

	if (!cmd->has_arg)
		return fail(c, "08P01", "a database is required"), SBUF_DROP;
	log_info("%s '%s' command issued", word, cmd->arg);
	if (!target_db(c, cmd, on ? "disable" : "enable"))
		return SBUF_DROP;
	if (!control_disable_db(cmd->arg, on))
		return fail(c, "53200", "out of memory"), SBUF_DROP;
	complete(c, word);
	return SBUF_DROP;
}

static enum sbuf_action cmd_reconnect(struct client *c, const struct command *cmd)
{
	if (cmd->has_arg) {
		log_info("RECONNECT '%s' command issued", cmd->arg);
		if (!target_db(c, cmd, "reconnect"))
			return SBUF_DROP;
	} else {
		log_info("RECONNECT command issued");
	}
	for (struct list *it = pool_list()->next; it != pool_list(); it = it->next) {
		struct pool *p = container_of(it, struct pool, head);
		if (!in_scope(p, cmd->arg))
			continue;
		p->conn_generation++;	/* the others close as they are released */
		pool_close_idle_servers(p, "RECONNECT");
	}
	complete(c, "RECONNECT");
	return SBUF_DROP;
}

static enum sbuf_action cmd_kill(struct client *c, const struct command *cmd)
{
	struct list *it, *tmp;

	if (rt.paused)
		return fail(c, "08P01", "already suspended/paused"), SBUF_DROP;
	if (cmd->has_arg) {
		log_info("KILL '%s' command issued", cmd->arg);
		if (!target_db(c, cmd, "kill"))
			return SBUF_DROP;
		if (!control_pause_db(cmd->arg, true))
			return fail(c, "53200", "out of memory"), SBUF_DROP;
	} else {
		log_info("KILL command issued");
		rt.paused = true;	/* new clients wait for RESUME, as after PgBouncer's KILL */
	}
	LIST_FOREACH_SAFE(it, tmp, pool_list()) {
		struct pool *p = container_of(it, struct pool, head);
		if (in_scope(p, cmd->arg))
			pool_kill(p, "database killed");
	}
	complete(c, "KILL");
	return SBUF_DROP;
}

static enum sbuf_action cmd_kill_client(struct client *c, const struct command *cmd)
{
	char *end;
	unsigned long long id = cmd->has_arg ? strtoull(cmd->arg, &end, 10) : 0;

	if (!cmd->has_arg || *end)
		return fail(c, "08P01", "invalid client pointer supplied"), SBUF_DROP;
	log_info("KILL_CLIENT '%s' command issued", cmd->arg);
	for (struct list *it = client_all()->next; it != client_all(); it = it->next) {
		struct client *o = container_of(it, struct client, all);
		if (o->id == id && o->state != CL_CLOSED && !o->console) {
			client_fatal(o, "08P01", "client killed by admin");
			complete(c, "KILL_CLIENT");
			return SBUF_DROP;
		}
	}
	return fail(c, "08P01", "client not found"), SBUF_DROP;
}

static enum sbuf_action cmd_shutdown(struct client *c, const struct command *cmd)
{
	enum shutdown_mode mode = SHUTDOWN_NONE;

	if (cmd->has_arg) {
		if (strcasecmp(cmd->arg, "WAIT_FOR_SERVERS") == 0)
			mode = SHUTDOWN_WAIT_SERVERS;
		else if (strcasecmp(cmd->arg, "WAIT_FOR_CLIENTS") == 0)
			mode = SHUTDOWN_WAIT_CLIENTS;
		else
			return fail(c, "42601", "invalid command '%s %s', use SHOW HELP;", cmd->word, cmd->arg),
			       SBUF_DROP;
		log_info("SHUTDOWN %s command issued", mode == SHUTDOWN_WAIT_SERVERS ? "WAIT_FOR_SERVERS"
										   : "WAIT_FOR_CLIENTS");
	} else {
		log_info("SHUTDOWN command issued");
	}
	g_hooks.shutdown(mode);
	if (mode == SHUTDOWN_NONE)
		return SBUF_DROP;	/* the process ends; the connection closes with it */
	complete(c, "SHUTDOWN");
	return SBUF_DROP;
}

static enum sbuf_action cmd_reload(struct client *c)
{
	log_info("RELOAD command issued");
	if (!g_hooks.reload())
		return fail(c, "F0000", "RELOAD failed, see logs for additional details"), SBUF_DROP;
	complete(c, "RELOAD");
	return SBUF_DROP;
}

static enum sbuf_action cmd_set(struct client *c, const struct command *cmd)
{
	char err[256];

	if (!config_set_key(rt.cfg, cmd->arg, cmd->value, err, sizeof(err)))
		return fail(c, "08P01", "%s", err), SBUF_DROP;
	log_info("SET %s = '%s' command issued", cmd->arg, cmd->value);
	complete(c, "SET");
	return SBUF_DROP;
}

static enum sbuf_action run(struct client *c, const char *sql)
{
	struct command cmd;
	const char *w;

	if (!parse_command(sql, &cmd))
		return fail(c, "42601", "invalid command '%s', use SHOW HELP;", sql), SBUF_DROP;
	w = cmd.word;
	if (strcasecmp(w, "show") == 0) {
		show(c, &cmd);
		return SBUF_DROP;
	}
	if (!c->console_admin)
		return fail(c, DENIED, "admin access needed"), SBUF_DROP;
	if (cmd.is_set)
		return cmd_set(c, &cmd);
	if (strcasecmp(w, "pause") == 0)
		return cmd_pause(c, &cmd);
	if (strcasecmp(w, "resume") == 0)
		return cmd_resume(c, &cmd);
	if (strcasecmp(w, "disable") == 0 || strcasecmp(w, "enable") == 0)
		return cmd_disable(c, &cmd, strcasecmp(w, "disable") == 0);
	if (strcasecmp(w, "reconnect") == 0)
		return cmd_reconnect(c, &cmd);
	if (strcasecmp(w, "kill") == 0)
		return cmd_kill(c, &cmd);
	if (strcasecmp(w, "kill_client") == 0)
		return cmd_kill_client(c, &cmd);
	if (strcasecmp(w, "shutdown") == 0)
		return cmd_shutdown(c, &cmd);
	if (strcasecmp(w, "wait_close") == 0) {
		if (cmd.has_arg && !target_db(c, &cmd, "wait in"))
			return SBUF_DROP;
		log_info("WAIT_CLOSE%s%s command issued", cmd.has_arg ? " " : "", cmd.arg);
		return start_wait(c, WAIT_CLOSE, cmd.arg, "WAIT_CLOSE");
	}
	if (cmd.has_arg)
		return fail(c, "42601", "invalid command '%s', use SHOW HELP;", sql), SBUF_DROP;
	if (strcasecmp(w, "reload") == 0)
		return cmd_reload(c);
	if (strcasecmp(w, "suspend") == 0)
		return fail(c, "0A000", "SUSPEND is not supported: moonbouncer has no online restart"), SBUF_DROP;
	return fail(c, "42601", "invalid command '%s', use SHOW HELP;", sql), SBUF_DROP;
}

enum sbuf_action admin_msg(struct client *c, const struct sbuf_msg *msg)
{
	char sql[1024];
	size_t len;

	c->last_activity = rt_now();
	switch (msg->type) {
	case FE_TERMINATE:
		client_close(c, "client close request");
		return SBUF_CLOSED;
	case FE_QUERY:
		if (c->console_wait) {
			if (!wait_done(c))
				return SBUF_PAUSE;
			complete(c, c->console_wait == WAIT_PAUSE ? "PAUSE" : "WAIT_CLOSE");
			c->console_wait = WAIT_NONE;
			return SBUF_DROP;
		}
		if (msg->len >= sizeof(sql) + PROTO_HEADER_LEN) {
			client_fatal(c, "08P01", "admin console command too long");
			return SBUF_CLOSED;
		}
		if (msg->avail < msg->len)
			return SBUF_WAIT_FULL;
		stats_console_command(&c->stats);
		len = strnlen((const char *)msg->data + PROTO_HEADER_LEN, msg->len - PROTO_HEADER_LEN);
		memcpy(sql, msg->data + PROTO_HEADER_LEN, len);
		sql[len] = 0;
		return run(c, sql);
	case FE_SYNC:
		c->skip_to_sync = false;
		ready(c);
		return SBUF_DROP;
	case FE_FLUSH:
		return SBUF_DROP;
	default:
		/* PgBouncer's console speaks the simple protocol only; the rest is refused up to the Sync */
		if (!c->skip_to_sync) {
			struct pktbuf b;
			pktbuf_init(&b);
			pkt_error(&b, "ERROR", "0A000", "the admin console supports only the simple query protocol");
			sbuf_send_pkt(&c->sb, &b);
			pktbuf_free(&b);
			c->skip_to_sync = true;
		}
		return SBUF_DROP;
	}
}

void admin_janitor(void)
{
	if (rt.paused || control_any_db_paused())
		close_paused_idle();
	for (struct list *it = client_all()->next; it != client_all(); it = it->next) {
		struct client *c = container_of(it, struct client, all);
		if (c->console && c->console_wait && c->state == CL_ACTIVE && wait_done(c))
			sbuf_resume(&c->sb);
	}
}
