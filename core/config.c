/* Configuration: pgbouncer.ini keys, defaults, validation, [databases] and [users] entries. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connstr.h"
#include "ini.h"
#include "log.h"

enum key_type {
	T_STR,	     /* char * */
	T_INT,	     /* int, within [min, max] */
	T_BOOL,	     /* bool */
	T_TIME,	     /* double seconds, fractions allowed */
	T_MODE,	     /* int, octal file mode */
	T_POOL_MODE, /* enum pool_mode */
	T_AUTH_TYPE, /* enum auth_type */
	T_CHOICE,    /* char *, one of choices (case-insensitive, stored as listed) */
	T_PARAM,     /* [databases] only: a startup parameter for db_entry.params */
};

#define K_ALIAS 1 /* second name for a field: no default, not freed or listed twice */

struct key_def {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;	    /* default as it would be written in the file; NULL leaves NULL/0 */
	int min, max;		    /* T_INT */
	const char *const *choices; /* T_CHOICE */
	const char *param;	    /* T_PARAM: PostgreSQL's name of the parameter */
	int flags;
};

/* clang-format off */
static const char *const sslmodes[] = { "disable", "allow", "prefer", "require", "verify-ca", "verify-full",
					NULL };
static const char *const failure_modes[] = { "closed", "open", NULL };
static const char *const facilities[] = {
	"auth", "authpriv", "daemon", "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
	"local7", "kern", "mail", "syslog", "lpr", "news", "uucp", "cron", "ftp", NULL
};
static const char *const lb_modes[] = { "round-robin", "disable", NULL };
static const char *const session_attrs[] = { "any", "read-write", "read-only", "primary", "standby", NULL };

static const char *const auth_type_names[] = {
	[AUTH_TYPE_TRUST] = "trust",
	[AUTH_TYPE_PLAIN] = "plain",
	[AUTH_TYPE_MD5] = "md5",
	[AUTH_TYPE_SCRAM] = "scram-sha-256",
	[AUTH_TYPE_ANY] = "any",
	[AUTH_TYPE_HBA] = "hba",
	[AUTH_TYPE_CERT] = "cert",
	[AUTH_TYPE_PEER] = "peer",
};

#define CF(f) offsetof(struct config, f)
#define STR(n, d) { #n, T_STR, CF(n), d, 0, 0, NULL, NULL, 0 }
#define INT(n, d, lo, hi) { #n, T_INT, CF(n), d, lo, hi, NULL, NULL, 0 }
#define BOOL(n, d) { #n, T_BOOL, CF(n), d, 0, 0, NULL, NULL, 0 }
#define TIME(n, d) { #n, T_TIME, CF(n), d, 0, 0, NULL, NULL, 0 }
#define CHOICE(n, d, c) { #n, T_CHOICE, CF(n), d, 0, 0, c, NULL, 0 }

/* Every [pgbouncer] key of PgBouncer 1.25 plus moonbouncer's own, in name order (SHOW CONFIG order). */
static const struct key_def main_keys[] = {
	STR(admin_users, ""),
	BOOL(application_name_add_host, "0"),
	STR(auth_dbname, NULL),
	STR(auth_file, NULL),
	STR(auth_hba_file, ""),
	STR(auth_ident_file, NULL),
	STR(auth_ldap_options, NULL),
	STR(auth_query, "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END "
			"FROM pg_authid WHERE rolname=$1 AND rolcanlogin"),
	{ "auth_type", T_AUTH_TYPE, CF(auth_type), "md5", 0, 0, NULL, NULL, 0 },
	STR(auth_user, NULL),
	TIME(autodb_idle_timeout, "3600"),
	TIME(cancel_wait_timeout, "10"),
	TIME(client_idle_timeout, "0"),
	TIME(client_login_timeout, "60"),
	STR(client_tls13_ciphers, NULL),
	STR(client_tls_ca_file, ""),
	STR(client_tls_cert_file, ""),
	STR(client_tls_ciphers, "default"),
	STR(client_tls_dheparams, "auto"),
	STR(client_tls_ecdhcurve, "auto"),
	STR(client_tls_key_file, ""),
	STR(client_tls_protocols, "secure"),
	CHOICE(client_tls_sslmode, "disable", sslmodes),
	STR(conffile, NULL),
	INT(default_pool_size, "20", 0, INT_MAX),
	BOOL(disable_pqexec, "0"),
	TIME(dns_max_ttl, "15"),
	TIME(dns_nxdomain_ttl, "15"),
	TIME(dns_zone_check_period, "0"),
	TIME(idle_transaction_timeout, "0"),
	STR(ignore_startup_parameters, ""),
	STR(job_name, "moonbouncer"),
	STR(listen_addr, ""),
	/* PgBouncer says 128; a burst of 1,000 connects must not be dropped by the kernel */
	INT(listen_backlog, "4096", 1, INT_MAX),
	INT(listen_port, "6432", 1, 65535),
	BOOL(log_connections, "1"),
	BOOL(log_disconnections, "1"),
	BOOL(log_pooler_errors, "1"),
	BOOL(log_stats, "1"),
	STR(logfile, ""),
	STR(login_notify_message, ""),
	INT(max_client_conn, "100", 0, INT_MAX),
	INT(max_client_prepared_statements, "10000", 0, INT_MAX),
	INT(max_db_client_connections, "0", 0, INT_MAX),
	INT(max_db_connections, "0", 0, INT_MAX),
	INT(max_packet_size, "2147483647", 0, INT_MAX),
	INT(max_prepared_statements, "200", 0, INT_MAX),
	INT(max_user_client_connections, "0", 0, INT_MAX),
	INT(max_user_connections, "0", 0, INT_MAX),
	STR(metrics_listen, NULL),
	INT(min_pool_size, "0", 0, INT_MAX),
	INT(peer_id, "0", 0, 16383),
	STR(pidfile, ""),
	INT(pkt_buf, "4096", 1, INT_MAX),
	STR(policy_dir, NULL),
	CHOICE(policy_failure, "closed", failure_modes),
	STR(policy_file, NULL),
	INT(policy_max_memory, "67108864", 1048576, INT_MAX),
	INT(policy_max_query_length, "65536", 16, INT_MAX),
	TIME(policy_timeout, "0.05"),
	{ "pool_mode", T_POOL_MODE, CF(pool_mode), "session", 0, 0, NULL, NULL, 0 },
	TIME(query_timeout, "0"),
	TIME(query_wait_notify, "5"),
	TIME(query_wait_timeout, "120"),
	INT(reserve_pool_size, "0", 0, INT_MAX),
	TIME(reserve_pool_timeout, "5"),
	STR(resolv_conf, ""),
	INT(sbuf_loopcnt, "5", 0, INT_MAX),
	INT(scram_iterations, "4096", 1, INT_MAX),
	TIME(server_check_delay, "30"),
	STR(server_check_query, "<empty>"),
	TIME(server_connect_timeout, "15"),
	BOOL(server_fast_close, "0"),
	TIME(server_idle_timeout, "600"),
	TIME(server_lifetime, "3600"),
	TIME(server_login_retry, "15"),
	STR(server_reset_query, "DISCARD ALL"),
	BOOL(server_reset_query_always, "0"),
	BOOL(server_round_robin, "0"),
	STR(server_tls13_ciphers, NULL),
	STR(server_tls_ca_file, ""),
	STR(server_tls_cert_file, ""),
	STR(server_tls_ciphers, "default"),
	STR(server_tls_key_file, ""),
	STR(server_tls_protocols, "secure"),
	CHOICE(server_tls_sslmode, "prefer", sslmodes),
	{ "service_name", T_STR, CF(job_name), NULL, 0, 0, NULL, NULL, K_ALIAS },
	BOOL(so_reuseport, "0"),
	TIME(stats_period, "60"),
	STR(stats_users, ""),
	TIME(suspend_timeout, "10"),
	BOOL(syslog, "0"),
	CHOICE(syslog_facility, "daemon", facilities),
	STR(syslog_ident, "moonbouncer"),
	INT(tcp_defer_accept, "1", 0, INT_MAX),
	BOOL(tcp_keepalive, "1"),
	INT(tcp_keepcnt, "0", 0, INT_MAX),
	INT(tcp_keepidle, "0", 0, INT_MAX),
	INT(tcp_keepintvl, "0", 0, INT_MAX),
	INT(tcp_socket_buffer, "0", 0, INT_MAX),
	INT(tcp_user_timeout, "0", 0, INT_MAX),
	STR(track_extra_parameters, "IntervalStyle"),
	BOOL(track_session_set, "1"),
	TIME(transaction_timeout, "0"),
	STR(unix_socket_dir, "/tmp"),
	STR(unix_socket_group, ""),
	{ "unix_socket_mode", T_MODE, CF(unix_socket_mode), "0777", 0, 0, NULL, NULL, 0 },
	STR(user, NULL),
	INT(verbose, "0", 0, INT_MAX),
};

#define DB(f) offsetof(struct db_entry, f)
static const struct key_def db_keys[] = {
	{ "application_name", T_PARAM, 0, NULL, 0, 0, NULL, "application_name", 0 },
	{ "auth_dbname", T_STR, DB(auth_dbname), NULL, 0, 0, NULL, NULL, 0 },
	{ "auth_query", T_STR, DB(auth_query), NULL, 0, 0, NULL, NULL, 0 },
	{ "auth_user", T_STR, DB(auth_user), NULL, 0, 0, NULL, NULL, 0 },
	{ "client_encoding", T_PARAM, 0, NULL, 0, 0, NULL, "client_encoding", 0 },
	{ "connect_query", T_STR, DB(connect_query), NULL, 0, 0, NULL, NULL, 0 },
	{ "datestyle", T_PARAM, 0, NULL, 0, 0, NULL, "DateStyle", 0 },
	{ "dbname", T_STR, DB(dbname), NULL, 0, 0, NULL, NULL, 0 },
	{ "host", T_STR, DB(host), NULL, 0, 0, NULL, NULL, 0 },
	{ "load_balance_hosts", T_CHOICE, DB(load_balance_hosts), NULL, 0, 0, lb_modes, NULL, 0 },
	{ "max_db_client_connections", T_INT, DB(max_db_client_connections), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "max_db_connections", T_INT, DB(max_db_connections), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "min_pool_size", T_INT, DB(min_pool_size), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "password", T_STR, DB(password), NULL, 0, 0, NULL, NULL, 0 },
	{ "pool_mode", T_POOL_MODE, DB(pool_mode), NULL, 0, 0, NULL, NULL, 0 },
	{ "pool_size", T_INT, DB(pool_size), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "port", T_INT, DB(port), NULL, 1, 65535, NULL, NULL, 0 },
	{ "query_wait_timeout", T_TIME, DB(query_wait_timeout), NULL, 0, 0, NULL, NULL, 0 },
	{ "reserve_pool", T_INT, DB(reserve_pool_size), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "reserve_pool_size", T_INT, DB(reserve_pool_size), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "server_lifetime", T_TIME, DB(server_lifetime), NULL, 0, 0, NULL, NULL, 0 },
	{ "target_session_attrs", T_CHOICE, DB(target_session_attrs), NULL, 0, 0, session_attrs, NULL, 0 },
	{ "timezone", T_PARAM, 0, NULL, 0, 0, NULL, "TimeZone", 0 },
	{ "user", T_STR, DB(user), NULL, 0, 0, NULL, NULL, 0 },
};

#define US(f) offsetof(struct user_entry, f)
static const struct key_def user_keys[] = {
	{ "client_idle_timeout", T_TIME, US(client_idle_timeout), NULL, 0, 0, NULL, NULL, 0 },
	{ "idle_transaction_timeout", T_TIME, US(idle_transaction_timeout), NULL, 0, 0, NULL, NULL, 0 },
	{ "max_user_client_connections", T_INT, US(max_user_client_connections), NULL, 0, INT_MAX, NULL, NULL,
	  0 },
	{ "max_user_connections", T_INT, US(max_user_connections), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "pool_mode", T_POOL_MODE, US(pool_mode), NULL, 0, 0, NULL, NULL, 0 },
	{ "pool_size", T_INT, US(pool_size), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "query_timeout", T_TIME, US(query_timeout), NULL, 0, 0, NULL, NULL, 0 },
	{ "query_wait_timeout", T_TIME, US(query_wait_timeout), NULL, 0, 0, NULL, NULL, 0 },
	{ "reserve_pool_size", T_INT, US(reserve_pool_size), NULL, 0, INT_MAX, NULL, NULL, 0 },
	{ "transaction_timeout", T_TIME, US(transaction_timeout), NULL, 0, 0, NULL, NULL, 0 },
};
/* clang-format on */

#define N_KEYS(a) (sizeof(a) / sizeof((a)[0]))

enum section_kind {
	SECT_NONE,
	SECT_PGBOUNCER,
	SECT_DATABASES,
	SECT_USERS,
	SECT_PEERS,
};

struct loader {
	struct config *cfg;
	enum section_kind sect;
};

static const struct key_def *find_key(const struct key_def *keys, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

static bool parse_int(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end || errno)
		return false;
	*out = v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "on", "true" };
	static const char *const no[] = { "0", "no", "off", "false" };
	size_t i;
	long v;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	/* PgBouncer keeps these as integers, so any number is accepted: non-zero is on */
	if (parse_int(s, &v)) {
		*out = v != 0;
		return true;
	}
	return false;
}

static bool parse_time(const char *s, double *out)
{
	const char *p;
	char *end;
	double v;

	/* plain decimals only: strtod would also take hex, exponents, signs and "inf" */
	for (p = s; *p; p++) {
		if (!isdigit((unsigned char)*p) && *p != '.')
			return false;
	}
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v))
		return false;
	*out = v;
	return true;
}

static bool set_string(char **dst, const char *value, char *err, size_t errlen)
{
	char *copy = strdup(value);

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	free(*dst);
	*dst = copy;
	return true;
}

static bool bad_value(char *err, size_t errlen, const char *value, const char *what, const char *expected)
{
	snprintf(err, errlen, "invalid value '%s' for %s: expected %s", value, what, expected);
	return false;
}

/*
 * Parse value for key k into the field at base + k->offset. what names the key in messages,
 * e.g. "max_client_conn" or "pool_size in [databases] entry 'foo'".
 */
static bool set_value(void *base, const struct key_def *k, const char *value, const char *what, char *err,
		      size_t errlen)
{
	char *field = (char *)base + k->offset;
	long l;
	bool b;
	double d;
	size_t i;

	switch (k->type) {
	case T_STR:
		return set_string((char **)field, value, err, errlen);
	case T_INT:
		if (!parse_int(value, &l))
			return bad_value(err, errlen, value, what, "an integer");
		if (l < k->min || l > k->max) {
			char range[64];

			if (k->max == INT_MAX)
				snprintf(range, sizeof(range), "an integer of at least %d", k->min);
			else
				snprintf(range, sizeof(range), "an integer from %d to %d", k->min, k->max);
			return bad_value(err, errlen, value, what, range);
		}
		*(int *)field = (int)l;
		return true;
	case T_BOOL:
		if (!parse_bool(value, &b))
			return bad_value(err, errlen, value, what,
					 "a boolean (1/0, yes/no, on/off, true/false)");
		*(bool *)field = b;
		return true;
	case T_TIME:
		if (!parse_time(value, &d))
			return bad_value(err, errlen, value, what,
					 "a number of seconds (fractions allowed, e.g. 0.5)");
		*(double *)field = d;
		return true;
	case T_MODE:
		l = 0;
		for (i = 0; value[i]; i++) {
			if (value[i] < '0' || value[i] > '7' || l > 07777)
				break;
			l = l * 8 + (value[i] - '0');
		}
		if (i == 0 || value[i] || l > 07777)
			return bad_value(err, errlen, value, what, "an octal file mode such as 0777");
		*(int *)field = (int)l;
		return true;
	case T_POOL_MODE:
		if (!config_pool_mode_parse(value, (enum pool_mode *)field))
			return bad_value(err, errlen, value, what, "session, transaction or statement");
		return true;
	case T_AUTH_TYPE:
		for (i = 0; i < N_KEYS(auth_type_names); i++) {
			if (strcasecmp(value, auth_type_names[i]) == 0) {
				*(enum auth_type *)field = (enum auth_type)i;
				return true;
			}
		}
		if (strcasecmp(value, "ldap") == 0 || strcasecmp(value, "pam") == 0)
			return bad_value(err, errlen, value, what,
					 "one of trust, plain, md5, scram-sha-256, "
					 "any, hba, cert, peer (ldap and pam are not supported)");
		return bad_value(err, errlen, value, what,
				 "one of trust, plain, md5, scram-sha-256, any, hba, cert, peer");
	case T_CHOICE:
		for (i = 0; k->choices[i]; i++) {
			if (strcasecmp(value, k->choices[i]) == 0)
				return set_string((char **)field, k->choices[i], err, errlen);
		}
		{
			char list[256] = "one of ";
			size_t used = strlen(list);

			for (i = 0; k->choices[i] && used < sizeof(list); i++)
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
							 i ? ", " : "", k->choices[i]);
			return bad_value(err, errlen, value, what, list);
		}
	case T_PARAM:
		break;
	}
	snprintf(err, errlen, "internal error: key %s has no parser", k->name);
	return false;
}

static void format_value(const struct config *cfg, const struct key_def *k, char *buf, size_t len)
{
	const char *field = (const char *)cfg + k->offset;
	const char *s;

	switch (k->type) {
	case T_STR:
	case T_CHOICE:
		s = *(char *const *)field;
		snprintf(buf, len, "%s", s ? s : "");
		return;
	case T_INT:
		snprintf(buf, len, "%d", *(const int *)field);
		return;
	case T_BOOL:
		snprintf(buf, len, "%d", *(const bool *)field ? 1 : 0);
		return;
	case T_TIME:
		snprintf(buf, len, "%g", *(const double *)field);
		return;
	case T_MODE:
		snprintf(buf, len, "0%o", (unsigned)*(const int *)field);
		return;
	case T_POOL_MODE:
		s = config_pool_mode_name(*(const enum pool_mode *)field);
		snprintf(buf, len, "%s", s ? s : "");
		return;
	case T_AUTH_TYPE:
		snprintf(buf, len, "%s", auth_type_names[*(const enum auth_type *)field]);
		return;
	case T_PARAM:
		break;
	}
	buf[0] = '\0';
}

static void free_db(struct db_entry *db)
{
	size_t i;

	free(db->name);
	free(db->host);
	free(db->dbname);
	free(db->user);
	free(db->password);
	free(db->auth_user);
	free(db->auth_query);
	free(db->auth_dbname);
	free(db->connect_query);
	free(db->load_balance_hosts);
	free(db->target_session_attrs);
	for (i = 0; i < db->n_params; i++) {
		free(db->params[i].name);
		free(db->params[i].value);
	}
	free(db->params);
	memset(db, 0, sizeof(*db));
}

static bool set_param(struct db_entry *db, const char *name, const char *value, char *err, size_t errlen)
{
	struct config_param *np;
	size_t i;

	for (i = 0; i < db->n_params; i++) {
		if (strcmp(db->params[i].name, name) == 0)
			return set_string(&db->params[i].value, value, err, errlen);
	}
	np = realloc(db->params, (db->n_params + 1) * sizeof(*np));
	if (!np)
		goto oom;
	db->params = np;
	np[db->n_params].name = strdup(name);
	np[db->n_params].value = strdup(value);
	if (!np[db->n_params].name || !np[db->n_params].value) {
		free(np[db->n_params].name);
		free(np[db->n_params].value);
		goto oom;
	}
	db->n_params++;
	return true;
oom:
	snprintf(err, errlen, "out of memory");
	return false;
}

static bool parse_database(struct config *cfg, const char *name, const char *value, int line, char *err,
			   size_t errlen)
{
	struct db_entry db;
	struct connstr cs;
	const struct key_def *k;
	struct db_entry *slot = NULL, *nd;
	char what[512], msg[256];
	size_t i;

	if (strcmp(name, "pgbouncer") == 0 || strcmp(name, "moonbouncer") == 0) {
		snprintf(err, errlen, "database name '%s' is reserved for the admin console", name);
		return false;
	}
	if (!connstr_parse(value, &cs, msg, sizeof(msg))) {
		snprintf(err, errlen, "invalid connection string for [databases] entry '%s': %s", name, msg);
		return false;
	}

	memset(&db, 0, sizeof(db));
	db.port = 5432;
	db.pool_size = db.min_pool_size = db.reserve_pool_size = -1;
	db.max_db_connections = db.max_db_client_connections = -1;
	db.pool_mode = POOL_MODE_UNSET;
	db.server_lifetime = db.query_wait_timeout = -1;
	db.line = line;
	db.name = strdup(name);
	if (!db.name) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

	for (i = 0; i < cs.n; i++) {
		const char *key = cs.pairs[i].key, *val = cs.pairs[i].value;

		k = find_key(db_keys, N_KEYS(db_keys), key);
		if (!k) {
			snprintf(err, errlen, "unknown parameter '%s' in [databases] entry '%s'", key, name);
			goto fail;
		}
		if (k->type == T_PARAM) {
			if (!set_param(&db, k->param, val, err, errlen))
				goto fail;
			continue;
		}
		snprintf(what, sizeof(what), "%s in [databases] entry '%s'", key, name);
		if (!set_value(&db, k, val, what, err, errlen))
			goto fail;
	}
	connstr_free(&cs);
	if (db.target_session_attrs && strcmp(db.target_session_attrs, "any") != 0) {
		/* one host per entry here: the server's role is not checked, so only "any" is accepted */
		snprintf(err, errlen,
			 "target_session_attrs=%s in [databases] entry '%s' is not supported by moonbouncer: only its "
			 "default (any) is accepted",
			 db.target_session_attrs, name);
		free_db(&db);
		return false;
	}

	/* a later definition of the same name replaces the earlier one, as in PgBouncer */
	for (i = 0; i < cfg->n_dbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0) {
			slot = &cfg->dbs[i];
			free_db(slot);
			break;
		}
	}
	if (!slot) {
		nd = realloc(cfg->dbs, (cfg->n_dbs + 1) * sizeof(*nd));
		if (!nd) {
			snprintf(err, errlen, "out of memory");
			free_db(&db);
			return false;
		}
		cfg->dbs = nd;
		slot = &cfg->dbs[cfg->n_dbs++];
	}
	*slot = db;
	return true;

fail:
	connstr_free(&cs);
	free_db(&db);
	return false;
}

static bool parse_user(struct config *cfg, const char *name, const char *value, int line, char *err,
		       size_t errlen)
{
	struct user_entry u;
	struct connstr cs;
	const struct key_def *k;
	struct user_entry *slot = NULL, *nu;
	char what[512], msg[256];
	size_t i;

	if (!connstr_parse(value, &cs, msg, sizeof(msg))) {
		snprintf(err, errlen, "invalid settings for [users] entry '%s': %s", name, msg);
		return false;
	}
	memset(&u, 0, sizeof(u));
	u.pool_mode = POOL_MODE_UNSET;
	u.pool_size = u.reserve_pool_size = u.max_user_connections = u.max_user_client_connections = -1;
	u.query_timeout = u.query_wait_timeout = u.idle_transaction_timeout = -1;
	u.transaction_timeout = u.client_idle_timeout = -1;
	u.line = line;

	for (i = 0; i < cs.n; i++) {
		k = find_key(user_keys, N_KEYS(user_keys), cs.pairs[i].key);
		if (!k) {
			snprintf(err, errlen, "unknown parameter '%s' in [users] entry '%s'", cs.pairs[i].key,
				 name);
			connstr_free(&cs);
			return false;
		}
		snprintf(what, sizeof(what), "%s in [users] entry '%s'", cs.pairs[i].key, name);
		if (!set_value(&u, k, cs.pairs[i].value, what, err, errlen)) {
			connstr_free(&cs);
			return false;
		}
	}
	connstr_free(&cs);

	u.name = strdup(name);
	if (!u.name) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	for (i = 0; i < cfg->n_users; i++) {
		if (strcmp(cfg->users[i].name, name) == 0) {
			slot = &cfg->users[i];
			free(slot->name);
			break;
		}
	}
	if (!slot) {
		nu = realloc(cfg->users, (cfg->n_users + 1) * sizeof(*nu));
		if (!nu) {
			free(u.name);
			snprintf(err, errlen, "out of memory");
			return false;
		}
		cfg->users = nu;
		slot = &cfg->users[cfg->n_users++];
	}
	*slot = u;
	return true;
}

/* [peers] is checked like PgBouncer does and otherwise not used yet. */
static bool parse_peer(const char *name, const char *value, char *err, size_t errlen)
{
	struct connstr cs;
	char msg[256];
	long id, v;
	bool has_host = false;
	size_t i;

	if (!parse_int(name, &id) || id < 1 || id > 65535) {
		snprintf(err, errlen,
			 "invalid [peers] entry '%s': the name must be a peer id from 1 to 65535", name);
		return false;
	}
	if (!connstr_parse(value, &cs, msg, sizeof(msg))) {
		snprintf(err, errlen, "invalid connection string for [peers] entry '%s': %s", name, msg);
		return false;
	}
	for (i = 0; i < cs.n; i++) {
		const char *key = cs.pairs[i].key, *val = cs.pairs[i].value;

		if (strcmp(key, "host") == 0) {
			has_host = true;
		} else if (strcmp(key, "port") == 0 || strcmp(key, "pool_size") == 0) {
			long max = strcmp(key, "port") == 0 ? 65535 : INT_MAX;

			if (!parse_int(val, &v) || v < 0 || v > max) {
				snprintf(err, errlen, "invalid value '%s' for %s in [peers] entry '%s': %s",
					 val, key, name, "expected an integer");
				connstr_free(&cs);
				return false;
			}
		} else {
			snprintf(err, errlen, "unknown parameter '%s' in [peers] entry '%s'", key, name);
			connstr_free(&cs);
			return false;
		}
	}
	connstr_free(&cs);
	if (!has_host) {
		snprintf(err, errlen, "[peers] entry '%s' has no host", name);
		return false;
	}
	return true;
}

/*
 * PgBouncer keys moonbouncer does not act on. They load only at their default value, so that no setting is
 * silently ignored: any other value refuses the configuration (README "Configuration reference").
 */
static const char *const unenforced_keys[] = { "auth_ldap_options", "conffile",	     "dns_zone_check_period",
					       "peer_id",	    "sbuf_loopcnt",  "server_fast_close",
					       "suspend_timeout",   NULL };

static bool unenforced(const char *name)
{
	for (int i = 0; unenforced_keys[i]; i++)
		if (strcmp(unenforced_keys[i], name) == 0)
			return true;
	return false;
}

/* Does value mean the key's default? Both are read as the key reads them and compared as SHOW CONFIG shows them. */
static bool at_default(const struct key_def *k, const char *value)
{
	struct config a, b;
	char va[512], vb[512], err[256];
	bool same = false;

	if (!k->def)
		return value[0] == '\0';
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (set_value(&a, k, value, k->name, err, sizeof(err)) && set_value(&b, k, k->def, k->name, err, sizeof(err))) {
		format_value(&a, k, va, sizeof(va));
		format_value(&b, k, vb, sizeof(vb));
		same = strcmp(va, vb) == 0;
	}
	if (k->type == T_STR || k->type == T_CHOICE) {
		free(*(char **)((char *)&a + k->offset));
		free(*(char **)((char *)&b + k->offset));
	}
	return same;
}

static bool on_ini(void *arg, const char *section, const char *key, const char *value, const char *file,
		   int line, char *err, size_t errlen)
{
	struct loader *ld = arg;
	const struct key_def *k;

	(void)file;	/* the parser puts file:line in front of any error */

	if (!key) {
		if (strcmp(section, "pgbouncer") == 0) {
			ld->sect = SECT_PGBOUNCER;
		} else if (strcmp(section, "databases") == 0) {
			ld->sect = SECT_DATABASES;
		} else if (strcmp(section, "users") == 0) {
			ld->sect = SECT_USERS;
		} else if (strcmp(section, "peers") == 0) {
			ld->sect = SECT_PEERS;
		} else {
			snprintf(err, errlen, "unknown section [%s]", section);
			return false;
		}
		return true;
	}

	switch (ld->sect) {
	case SECT_NONE:
		snprintf(err, errlen, "key '%s' is outside of any section", key);
		return false;
	case SECT_PGBOUNCER:
		k = find_key(main_keys, N_KEYS(main_keys), key);
		if (!k) {
			snprintf(err, errlen, "unknown configuration key '%s'", key);
			return false;
		}
		if (unenforced(k->name) && !at_default(k, value)) {
			snprintf(err, errlen, "%s = %s is not supported by moonbouncer: only its default (%s) is accepted",
				 key, value, k->def ? k->def : "not set");
			return false;
		}
		return set_value(ld->cfg, k, value, key, err, errlen);
	case SECT_DATABASES:
		return parse_database(ld->cfg, key, value, line, err, errlen);
	case SECT_USERS:
		return parse_user(ld->cfg, key, value, line, err, errlen);
	case SECT_PEERS:
		return parse_peer(key, value, err, errlen);
	}
	return true;
}

void config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < N_KEYS(main_keys); i++) {
		const struct key_def *k = &main_keys[i];

		if ((k->type == T_STR || k->type == T_CHOICE) && !(k->flags & K_ALIAS))
			free(*(char **)((char *)cfg + k->offset));
	}
	free(cfg->config_path);
	for (i = 0; i < cfg->n_dbs; i++)
		free_db(&cfg->dbs[i]);
	free(cfg->dbs);
	for (i = 0; i < cfg->n_users; i++)
		free(cfg->users[i].name);
	free(cfg->users);
	free(cfg);
}

/* An auth_query or auth_dbname someone set needs an auth_user to run it: without one it would never run. */
static bool auth_query_runnable(const struct config *cfg, char *err, size_t errlen)
{
	const struct key_def *q = find_key(main_keys, N_KEYS(main_keys), "auth_query");
	bool global_user = cfg->auth_user && cfg->auth_user[0], any_user = global_user;

	for (size_t i = 0; i < cfg->n_dbs; i++) {
		const struct db_entry *db = &cfg->dbs[i];
		bool user = global_user || (db->auth_user && db->auth_user[0]);
		if (!user && ((db->auth_query && db->auth_query[0]) || (db->auth_dbname && db->auth_dbname[0]))) {
			snprintf(err, errlen, "%s:%d: [databases] entry '%s' sets auth_query or auth_dbname but no auth_user "
				 "runs it", cfg->config_path, db->line, db->name);
			return false;
		}
		any_user = any_user || user;
	}
	if (!any_user && ((cfg->auth_query && strcmp(cfg->auth_query, q->def) != 0) ||
			  (cfg->auth_dbname && cfg->auth_dbname[0]))) {
		snprintf(err, errlen, "%s: auth_query or auth_dbname is set but no auth_user runs it", cfg->config_path);
		return false;
	}
	return true;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	struct loader ld;
	char real[PATH_MAX];
	char dummy[1];
	size_t i;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < N_KEYS(main_keys); i++) {
		if (!main_keys[i].def)
			continue;
		if (!set_value(cfg, &main_keys[i], main_keys[i].def, main_keys[i].name, err, errlen))
			goto fail;
	}
	cfg->config_path = strdup(realpath(path, real) ? real : path);
	if (!cfg->config_path) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

	ld.cfg = cfg;
	ld.sect = SECT_NONE;
	if (!ini_parse_file(path, on_ini, &ld, err, errlen) || !auth_query_runnable(cfg, err, errlen))
		goto fail;
	return cfg;

fail:
	config_free(cfg);
	return NULL;
}

const struct db_entry *config_find_db(const struct config *cfg, const char *name)
{
	const struct db_entry *fallback = NULL;
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_dbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0)
			return &cfg->dbs[i];
		if (strcmp(cfg->dbs[i].name, "*") == 0)
			fallback = &cfg->dbs[i];
	}
	return fallback;
}

const struct user_entry *config_find_user(const struct config *cfg, const char *name)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_users; i++) {
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	}
	return NULL;
}

/* PgBouncer's order: the [users] entry, then the [databases] entry, then [pgbouncer]. */
int config_pool_size(const struct config *cfg, const struct db_entry *db, const struct user_entry *user)
{
	if (user && user->pool_size >= 0)
		return user->pool_size;
	if (db && db->pool_size >= 0)
		return db->pool_size;
	return cfg ? cfg->default_pool_size : 20;
}

enum pool_mode config_pool_mode(const struct config *cfg, const struct db_entry *db,
				const struct user_entry *user)
{
	if (user && user->pool_mode != POOL_MODE_UNSET)
		return user->pool_mode;
	if (db && db->pool_mode != POOL_MODE_UNSET)
		return db->pool_mode;
	return cfg ? cfg->pool_mode : POOL_MODE_SESSION;
}

bool config_list_contains(const char *list, const char *name)
{
	const char *p, *start, *end;
	size_t nlen;

	if (!list || !name)
		return false;
	nlen = strlen(name);
	for (p = list;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - start) == nlen && nlen > 0 && strncasecmp(start, name, nlen) == 0)
			return true;
		if (!*p)
			return false;
		p++;
	}
}

const char *config_pool_mode_name(enum pool_mode mode)
{
	switch (mode) {
	case POOL_MODE_SESSION:
		return "session";
	case POOL_MODE_TRANSACTION:
		return "transaction";
	case POOL_MODE_STATEMENT:
		return "statement";
	case POOL_MODE_UNSET:
		break;
	}
	return NULL;
}

bool config_pool_mode_parse(const char *s, enum pool_mode *out)
{
	if (strcasecmp(s, "session") == 0)
		*out = POOL_MODE_SESSION;
	else if (strcasecmp(s, "transaction") == 0)
		*out = POOL_MODE_TRANSACTION;
	else if (strcasecmp(s, "statement") == 0)
		*out = POOL_MODE_STATEMENT;
	else
		return false;
	return true;
}

void config_foreach_key(const struct config *cfg,
			void (*cb)(void *arg, const char *key, const char *value, const char *default_value),
			void *arg)
{
	char buf[1024];
	size_t i;

	for (i = 0; i < N_KEYS(main_keys); i++) {
		if (main_keys[i].flags & K_ALIAS)
			continue;
		format_value(cfg, &main_keys[i], buf, sizeof(buf));
		cb(arg, main_keys[i].name, buf, main_keys[i].def ? main_keys[i].def : "");
	}
}

bool config_key_changeable(const char *key)
{
	/* what a running process keeps from its start: sockets, identity, files, buffer size */
	static const char *const fixed[] = { "disable_pqexec", "job_name", "listen_addr", "listen_backlog",
					     "listen_port", "pidfile", "pkt_buf", "resolv_conf", "so_reuseport",
					     "track_extra_parameters", "unix_socket_dir", "unix_socket_group",
					     "unix_socket_mode", "user", "peer_id", "logfile", "syslog", "syslog_ident",
					     "syslog_facility", "metrics_listen", NULL };

	for (int i = 0; fixed[i]; i++)
		if (strcmp(fixed[i], key) == 0)
			return false;
	return true;
}

bool config_set_key(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
	const struct key_def *k = find_key(main_keys, N_KEYS(main_keys), key);

	if (!k) {
		snprintf(err, errlen, "unknown config parameter: %s", key);
		return false;
	}
	if (!config_key_changeable(k->name)) {
		snprintf(err, errlen, "%s cannot be changed while running", k->name);
		return false;
	}
	return set_value(cfg, k, value, "SET", err, errlen);
}

void config_diff(const struct config *old, const struct config *cur,
		 void (*cb)(void *arg, const char *key, const char *before, const char *after), void *arg)
{
	char a[1024], b[1024];

	for (size_t i = 0; i < N_KEYS(main_keys); i++) {
		if (main_keys[i].flags & K_ALIAS)
			continue;
		format_value(old, &main_keys[i], a, sizeof(a));
		format_value(cur, &main_keys[i], b, sizeof(b));
		if (strcmp(a, b) != 0)
			cb(arg, main_keys[i].name, a, b);
	}
	for (size_t i = 0; i < old->n_dbs; i++)
		if (!config_find_db(cur, old->dbs[i].name) || strcmp(config_find_db(cur, old->dbs[i].name)->name,
								    old->dbs[i].name) != 0)
			cb(arg, "[databases]", old->dbs[i].name, "(removed)");
	for (size_t i = 0; i < cur->n_dbs; i++)
		if (!config_find_db(old, cur->dbs[i].name) || strcmp(config_find_db(old, cur->dbs[i].name)->name,
								    cur->dbs[i].name) != 0)
			cb(arg, "[databases]", "(new)", cur->dbs[i].name);
}
