/* Unit tests of config loading: defaults, value types and their errors, [databases], [users], lookups. */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "connstr.h"
#include "log.h"
#include "unit.h"

/* the expected halves of the value error messages */
#define SECONDS "expected a number of seconds (fractions allowed, e.g. 0.5)"
#define BOOLEAN "expected a boolean (1/0, yes/no, on/off, true/false)"
#define AUTH_TYPES "expected one of trust, plain, md5, scram-sha-256, any, hba, cert, peer"

static char *tmp_paths[64];
static int n_tmp;

static char *write_tmp(const char *content)
{
	char path[] = "/tmp/mb_test_config_XXXXXX";
	int fd = mkstemp(path);
	size_t len = strlen(content);

	if (fd < 0 || write(fd, content, len) != (ssize_t)len || close(fd) != 0) {
		perror("mkstemp");
		exit(2);
	}
	tmp_paths[n_tmp++] = strdup(path);
	return tmp_paths[n_tmp - 1];
}

static void cleanup(void)
{
	int i;

	for (i = n_tmp - 1; i >= 0; i--) {
		unlink(tmp_paths[i]);
		free(tmp_paths[i]);
	}
}

/* Load "[pgbouncer]\n" + body; the file path goes to *path_out. */
static struct config *load_main(const char *body, char **path_out, char *err, size_t errlen)
{
	char buf[8192];
	char *path;

	snprintf(buf, sizeof(buf), "[pgbouncer]\n%s", body);
	path = write_tmp(buf);
	if (path_out)
		*path_out = path;
	return config_load(path, err, errlen);
}

/* Expect body (one line after the header, so at line 2) to fail with "path:2: <msg>". */
static void expect_fail(const char *body, const char *msg, const char *name)
{
	char err[1024], expect[1024];
	char *path;
	struct config *cfg = load_main(body, &path, err, sizeof(err));

	UNIT_CHECK(cfg == NULL, name);
	snprintf(expect, sizeof(expect), "%s:2: %s", path, msg);
	UNIT_EQ_STR(err, expect, name);
	config_free(cfg);
}

static void test_defaults(void)
{
	char err[512];
	struct config *cfg = load_main("", NULL, err, sizeof(err));

	if (!UNIT_CHECK(cfg != NULL, "empty [pgbouncer] loads")) {
		printf("# %s\n", err);
		return;
	}
	UNIT_EQ_INT(cfg->listen_port, 6432, "default listen_port");
	UNIT_EQ_INT(cfg->listen_backlog, 4096, "default listen_backlog is 4096 (not PgBouncer's 128)");
	UNIT_EQ_STR(cfg->listen_addr, "", "default listen_addr: none");
	UNIT_EQ_STR(cfg->unix_socket_dir, "/tmp", "default unix_socket_dir");
	UNIT_EQ_INT(cfg->unix_socket_mode, 0777, "default unix_socket_mode");
	UNIT_EQ_INT(cfg->max_client_conn, 100, "default max_client_conn");
	UNIT_EQ_INT(cfg->default_pool_size, 20, "default default_pool_size");
	UNIT_EQ_INT(cfg->pool_mode, POOL_MODE_SESSION, "default pool_mode");
	UNIT_EQ_INT(cfg->auth_type, AUTH_TYPE_MD5, "default auth_type");
	UNIT_EQ_STR(cfg->auth_file, NULL, "default auth_file: not set");
	UNIT_EQ_STR(cfg->server_reset_query, "DISCARD ALL", "default server_reset_query");
	UNIT_EQ_STR(cfg->server_check_query, "<empty>", "default server_check_query");
	UNIT_CHECK(cfg->query_wait_timeout == 120.0, "default query_wait_timeout");
	UNIT_CHECK(cfg->server_lifetime == 3600.0, "default server_lifetime");
	UNIT_CHECK(cfg->reserve_pool_timeout == 5.0, "default reserve_pool_timeout");
	UNIT_CHECK(cfg->tcp_keepalive, "default tcp_keepalive on");
	UNIT_CHECK(cfg->log_connections && cfg->log_disconnections, "default log_(dis)connections on");
	UNIT_EQ_INT(cfg->pkt_buf, 4096, "default pkt_buf");
	UNIT_EQ_INT(cfg->max_prepared_statements, 200, "default max_prepared_statements");
	UNIT_EQ_INT(cfg->max_client_prepared_statements, 10000, "default max_client_prepared_statements");
	UNIT_EQ_STR(cfg->track_extra_parameters, "IntervalStyle", "default track_extra_parameters");
	UNIT_EQ_STR(cfg->server_tls_sslmode, "prefer", "default server_tls_sslmode");
	UNIT_EQ_STR(cfg->client_tls_sslmode, "disable", "default client_tls_sslmode");
	UNIT_EQ_STR(cfg->syslog_facility, "daemon", "default syslog_facility");
	UNIT_EQ_STR(cfg->policy_failure, "closed", "default policy_failure");
	UNIT_EQ_STR(cfg->policy_file, NULL, "default policy_file: not set");
	UNIT_EQ_INT(cfg->scram_iterations, 4096, "default scram_iterations");
	UNIT_EQ_INT(cfg->n_dbs, 0, "no databases");
	UNIT_CHECK(cfg->config_path && cfg->config_path[0] == '/', "config_path is absolute");
	config_free(cfg);
}

static int count_keys;
static char backlog_value[32];

static void key_cb(void *arg, const char *key, const char *value, const char *def)
{
	(void)arg;
	(void)def;
	count_keys++;
	if (strcmp(key, "listen_backlog") == 0)
		snprintf(backlog_value, sizeof(backlog_value), "%s", value);
}

static void test_types(void)
{
	char err[512];
	struct config *cfg = load_main("listen_addr = 127.0.0.1, ::1\n"
				       "max_client_conn = 5000\n"
				       "tcp_keepalive = off\n"
				       "log_connections = no\n"
				       "log_disconnections = FALSE\n"
				       "log_pooler_errors = 0\n"
				       "server_round_robin = yes\n"
				       "so_reuseport = On\n"
				       "disable_pqexec = true\n"
				       "application_name_add_host = 2\n"
				       "query_wait_timeout = 0.5\n"
				       "server_idle_timeout = 30\n"
				       "unix_socket_mode = 0700\n"
				       "pool_mode = Transaction\n"
				       "auth_type = scram-sha-256\n"
				       "policy_failure = open\n"
				       "server_tls_sslmode = VERIFY-FULL\n"
				       "syslog_facility = local3\n"
				       "ignore_startup_parameters = extra_float_digits, options\n"
				       "server_reset_query =\n"
				       "metrics_listen = 127.0.0.1:9127\n"
				       "service_name = svc\n"
				       "max_client_conn = 6000\n",
				       NULL, err, sizeof(err));

	if (!UNIT_CHECK(cfg != NULL, "every type loads")) {
		printf("# %s\n", err);
		return;
	}
	UNIT_EQ_STR(cfg->listen_addr, "127.0.0.1, ::1", "string value");
	UNIT_EQ_INT(cfg->max_client_conn, 6000, "int value, later line wins");
	UNIT_CHECK(!cfg->tcp_keepalive, "bool off");
	UNIT_CHECK(!cfg->log_connections, "bool no");
	UNIT_CHECK(!cfg->log_disconnections, "bool FALSE");
	UNIT_CHECK(!cfg->log_pooler_errors, "bool 0");
	UNIT_CHECK(cfg->server_round_robin, "bool yes");
	UNIT_CHECK(cfg->so_reuseport, "bool On");
	UNIT_CHECK(cfg->disable_pqexec, "bool true");
	UNIT_CHECK(cfg->application_name_add_host, "bool as integer 2 (PgBouncer keeps ints)");
	UNIT_CHECK(fabs(cfg->query_wait_timeout - 0.5) < 1e-9, "time with a fraction");
	UNIT_CHECK(cfg->server_idle_timeout == 30.0, "whole seconds");
	UNIT_EQ_INT(cfg->unix_socket_mode, 0700, "octal mode");
	UNIT_EQ_INT(cfg->pool_mode, POOL_MODE_TRANSACTION, "pool_mode, case-insensitive");
	UNIT_EQ_INT(cfg->auth_type, AUTH_TYPE_SCRAM, "auth_type scram-sha-256");
	UNIT_EQ_STR(cfg->policy_failure, "open", "policy_failure open");
	UNIT_EQ_STR(cfg->server_tls_sslmode, "verify-full", "choice stored in canonical case");
	UNIT_EQ_STR(cfg->syslog_facility, "local3", "syslog_facility");
	UNIT_EQ_STR(cfg->server_reset_query, "", "empty string disables server_reset_query");
	UNIT_EQ_STR(cfg->metrics_listen, "127.0.0.1:9127", "metrics_listen");
	UNIT_EQ_STR(cfg->job_name, "svc", "service_name is an alias of job_name");
	UNIT_CHECK(config_list_contains(cfg->ignore_startup_parameters, "options"), "list holds options");

	count_keys = 0;
	config_foreach_key(cfg, key_cb, NULL);
	UNIT_CHECK(count_keys > 90, "config_foreach_key lists every key");
	UNIT_EQ_STR(backlog_value, "4096", "config_foreach_key formats values");
	config_free(cfg);

	cfg = load_main("unix_socket_mode = 600\n", NULL, err, sizeof(err));
	UNIT_EQ_INT(cfg ? cfg->unix_socket_mode : -1, 0600, "mode without leading zero is octal");
	config_free(cfg);
}

static void test_value_errors(void)
{
	expect_fail("max_client_conn = abc\n", "invalid value 'abc' for max_client_conn: expected an integer",
		    "int: letters");
	expect_fail("max_client_conn = 10x\n", "invalid value '10x' for max_client_conn: expected an integer",
		    "int: trailing junk");
	expect_fail("max_client_conn =\n", "invalid value '' for max_client_conn: expected an integer",
		    "int: empty");
	expect_fail("max_client_conn = 99999999999999999999\n",
		    "invalid value '99999999999999999999' for max_client_conn: expected an integer",
		    "int: overflow");
	expect_fail("max_client_conn = -1\n",
		    "invalid value '-1' for max_client_conn: expected an integer of at least 0",
		    "int: negative");
	expect_fail("max_client_prepared_statements = -5\n",
		    "invalid value '-5' for max_client_prepared_statements: expected an integer of at least 0",
		    "int: negative statement cap");
	expect_fail("listen_port = 70000\n",
		    "invalid value '70000' for listen_port: expected an integer from 1 to 65535",
		    "int: range");
	expect_fail("tcp_keepalive = maybe\n", "invalid value 'maybe' for tcp_keepalive: " BOOLEAN,
		    "bool: unknown word");
	expect_fail("query_timeout = -1\n", "invalid value '-1' for query_timeout: " SECONDS,
		    "time: negative");
	expect_fail("query_timeout = 1e3\n", "invalid value '1e3' for query_timeout: " SECONDS,
		    "time: exponent");
	expect_fail("query_timeout = 5s\n", "invalid value '5s' for query_timeout: " SECONDS,
		    "time: unit suffix");
	expect_fail("unix_socket_mode = 0999\n",
		    "invalid value '0999' for unix_socket_mode: expected an octal file mode such as 0777",
		    "mode: not octal");
	expect_fail("unix_socket_mode = 017777\n",
		    "invalid value '017777' for unix_socket_mode: expected an octal file mode such as 0777",
		    "mode: too large");
	expect_fail("pool_mode = sessions\n",
		    "invalid value 'sessions' for pool_mode: expected session, transaction or statement",
		    "pool_mode: unknown");
	expect_fail("auth_type = password\n", "invalid value 'password' for auth_type: " AUTH_TYPES,
		    "auth_type: unknown");
	expect_fail("auth_type = ldap\n",
		    "invalid value 'ldap' for auth_type: " AUTH_TYPES " (ldap and pam are not supported)",
		    "auth_type: ldap not supported");
	expect_fail("policy_failure = sometimes\n",
		    "invalid value 'sometimes' for policy_failure: expected one of closed, open",
		    "choice: unknown");
	expect_fail(
		"server_tls_sslmode = on\n",
		"invalid value 'on' for server_tls_sslmode: expected one of disable, allow, prefer, require, "
		"verify-ca, verify-full",
		"sslmode: unknown");
}

/* A misspelt key or section, or a PgBouncer key moonbouncer does not act on set to another value than its
 * default: the configuration is refused with file:line, never silently half-applied. */
static void test_fails_closed(void)
{
	char err[512], expect[1024];
	char *path;
	struct config *cfg;

	cfg = load_main("listen_port = 7000\ndefualt_pool_size = 1\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL, "an unknown key fails the load");
	snprintf(expect, sizeof(expect), "%s:3: unknown configuration key 'defualt_pool_size'", path);
	UNIT_EQ_STR(err, expect, "... naming file:line and the key");
	config_free(cfg);

	cfg = load_main("listen_port = 7000\n[pgbouncr]\nmax_client_conn = 7\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL, "an unknown section fails the load");
	snprintf(expect, sizeof(expect), "%s:3: unknown section [pgbouncr]", path);
	UNIT_EQ_STR(err, expect, "... naming file:line and the section");
	config_free(cfg);

	cfg = load_main("sbuf_loopcnt = 5\nsuspend_timeout = 10\npeer_id = 0\nconffile =\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg != NULL, "keys moonbouncer does not act on load at their defaults");
	config_free(cfg);

	cfg = load_main("max_client_conn = 5\nsbuf_loopcnt = 20\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL, "... and refuse any other value");
	snprintf(expect, sizeof(expect),
		 "%s:3: sbuf_loopcnt = 20 is not supported by moonbouncer: only its default (5) is accepted", path);
	UNIT_EQ_STR(err, expect, "... saying so with file:line");
	config_free(cfg);

	cfg = load_main("peer_id = 3\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL, "peer_id other than 0 is refused (peers are not built)");
	config_free(cfg);

	cfg = load_main("auth_query = SELECT 1\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL && strstr(err, "auth_query or auth_dbname is set but no auth_user runs it") != NULL,
		   "an auth_query nobody runs (no auth_user) is refused");
	config_free(cfg);
	cfg = load_main("auth_user = lookup\n[databases]\nx = host=h auth_query=q\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg != NULL, "an entry's auth_query run by the global auth_user loads");
	config_free(cfg);
	cfg = load_main("[databases]\na = host=h auth_user=u\nb = host=h auth_dbname=d\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL && strstr(err, "entry 'b' sets auth_query or auth_dbname but no auth_user") != NULL,
		   "an entry's auth_dbname with no auth_user for it is refused, whatever other entries have");
	config_free(cfg);

	cfg = load_main("[databases]\nx = host=h target_session_attrs=read-write\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL && strstr(err, "target_session_attrs=read-write in [databases] entry 'x' is not "
					    "supported") != NULL,
		   "target_session_attrs other than any is refused");
	config_free(cfg);
}

static void test_databases(void)
{
	char err[1024];
	char *path;
	const struct db_entry *db;
	struct config *cfg;
	char body[4096];
	size_t i;

	snprintf(body, sizeof(body), "%s",
		 "listen_port = 6000\n"
		 "[databases]\n"
		 "foo = host=127.0.0.1 port=5433 dbname=bar user=u password='p w\\'d' pool_size=5 "
		 "min_pool_size=1 reserve_pool=2 max_db_connections=9 max_db_client_connections=90 "
		 "pool_mode=transaction connect_query='SELECT 1' client_encoding=UTF8 datestyle=ISO "
		 "timezone=UTC application_name=app auth_user=au auth_dbname=authdb auth_query='SELECT x'\n"
		 "\"my db\" = dbname=x reserve_pool_size=4 server_lifetime=1.5 load_balance_hosts=disable\n"
		 "empty =\n"
		 "* = host=fallback.example\n"
		 "foo2 = host = spaced port = 1\n");
	cfg = load_main(body, &path, err, sizeof(err));
	if (!UNIT_CHECK(cfg != NULL, "[databases] loads")) {
		printf("# %s\n", err);
		return;
	}
	UNIT_EQ_INT(cfg->n_dbs, 5, "five entries");
	db = config_find_db(cfg, "foo");
	if (UNIT_CHECK(db && strcmp(db->name, "foo") == 0, "exact name found")) {
		UNIT_EQ_STR(db->host, "127.0.0.1", "host");
		UNIT_EQ_INT(db->port, 5433, "port");
		UNIT_EQ_STR(db->dbname, "bar", "dbname");
		UNIT_EQ_STR(db->user, "u", "user");
		UNIT_EQ_STR(db->password, "p w'd", "quoted password with \\' and a space");
		UNIT_EQ_INT(db->pool_size, 5, "pool_size");
		UNIT_EQ_INT(db->min_pool_size, 1, "min_pool_size");
		UNIT_EQ_INT(db->reserve_pool_size, 2, "reserve_pool (alias)");
		UNIT_EQ_INT(db->max_db_connections, 9, "max_db_connections");
		UNIT_EQ_INT(db->max_db_client_connections, 90, "max_db_client_connections");
		UNIT_EQ_INT(db->pool_mode, POOL_MODE_TRANSACTION, "entry pool_mode");
		UNIT_EQ_STR(db->connect_query, "SELECT 1", "connect_query");
		UNIT_EQ_STR(db->auth_user, "au", "auth_user");
		UNIT_EQ_STR(db->auth_dbname, "authdb", "auth_dbname");
		UNIT_EQ_STR(db->auth_query, "SELECT x", "auth_query");
		UNIT_EQ_INT(db->line, 4, "entry remembers its line");
		UNIT_EQ_INT(db->n_params, 4, "four startup parameters");
		for (i = 0; i < db->n_params && i < 4; i++) {
			static const char *const names[] = { "client_encoding", "DateStyle", "TimeZone",
							     "application_name" };
			static const char *const values[] = { "UTF8", "ISO", "UTC", "app" };

			UNIT_EQ_STR(db->params[i].name, names[i], "PostgreSQL parameter name");
			UNIT_EQ_STR(db->params[i].value, values[i], "parameter value");
		}
	}
	db = config_find_db(cfg, "my db");
	if (UNIT_CHECK(db != NULL, "quoted database name found")) {
		UNIT_EQ_INT(db->reserve_pool_size, 4, "reserve_pool_size");
		UNIT_CHECK(db->server_lifetime == 1.5, "per-db server_lifetime");
		UNIT_EQ_STR(db->load_balance_hosts, "disable", "load_balance_hosts");
		UNIT_EQ_INT(db->pool_mode, POOL_MODE_UNSET, "pool_mode unset");
		UNIT_EQ_INT(db->pool_size, -1, "pool_size unset is -1");
	}
	db = config_find_db(cfg, "empty");
	if (UNIT_CHECK(db != NULL, "entry with an empty connection string")) {
		UNIT_EQ_STR(db->host, NULL, "no host: unix socket");
		UNIT_EQ_INT(db->port, 5432, "default port 5432");
		UNIT_EQ_STR(db->dbname, NULL, "dbname defaults to the name");
		UNIT_EQ_INT(db->n_params, 0, "no parameters");
	}
	db = config_find_db(cfg, "foo2");
	UNIT_EQ_STR(db ? db->host : NULL, "spaced", "spaces around '=' in a connection string");
	db = config_find_db(cfg, "unknown_db");
	UNIT_EQ_STR(db ? db->name : NULL, "*", "unknown name falls back to '*'");
	UNIT_EQ_STR(db ? db->host : NULL, "fallback.example", "fallback entry host");
	UNIT_EQ_INT(cfg->listen_port, 6000, "[pgbouncer] keys unaffected");
	config_free(cfg);

	cfg = load_main("[databases]\nonly = host=x\nonly = host=y\n", NULL, err, sizeof(err));
	UNIT_EQ_INT(cfg ? (long long)cfg->n_dbs : -1, 1, "redefinition replaces the entry");
	db = cfg ? config_find_db(cfg, "only") : NULL;
	UNIT_EQ_STR(db ? db->host : NULL, "y", "later definition wins");
	UNIT_CHECK(cfg && config_find_db(cfg, "other") == NULL, "no '*': unknown name is NULL");
	config_free(cfg);
}

static void expect_db_fail(const char *entry, const char *msg, const char *name)
{
	char err[1024], expect[1024], body[1024];
	char *path;
	struct config *cfg;

	snprintf(body, sizeof(body), "[databases]\n%s\n", entry);
	cfg = load_main(body, &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL, name);
	snprintf(expect, sizeof(expect), "%s:3: %s", path, msg);
	UNIT_EQ_STR(err, expect, name);
	config_free(cfg);
}

static void test_database_errors(void)
{
	expect_db_fail("foo = host=x bogus=1", "unknown parameter 'bogus' in [databases] entry 'foo'",
		       "unknown entry key is an error");
	expect_db_fail("foo = password='abc",
		       "invalid connection string for [databases] entry 'foo': unterminated quoted value for "
		       "'password'",
		       "unterminated quote");
	expect_db_fail("foo = host x",
		       "invalid connection string for [databases] entry 'foo': missing '=' after 'host'",
		       "missing '='");
	expect_db_fail("foo = pool_size=ten",
		       "invalid value 'ten' for pool_size in [databases] entry 'foo': expected an integer",
		       "bad pool_size");
	expect_db_fail("foo = port=0",
		       "invalid value '0' for port in [databases] entry 'foo': "
		       "expected an integer from 1 to 65535",
		       "bad port");
	expect_db_fail("foo = pool_mode=bulk",
		       "invalid value 'bulk' for pool_mode in [databases] entry 'foo': expected session, "
		       "transaction or statement",
		       "bad entry pool_mode");
	expect_db_fail("pgbouncer = host=x", "database name 'pgbouncer' is reserved for the admin console",
		       "reserved name");
}

static void test_users(void)
{
	char err[1024], expect[1024];
	char *path;
	struct config *cfg;
	const struct user_entry *u;
	const struct db_entry *db;

	cfg = load_main(
		"default_pool_size = 11\npool_mode = session\n"
		"[databases]\n"
		"sized = pool_size=5 pool_mode=statement\n"
		"plain = host=x\n"
		"[users]\n"
		"alice = pool_mode=transaction pool_size=3 reserve_pool_size=1 max_user_connections=7 "
		"max_user_client_connections=9 query_timeout=2.5\n"
		"bob =\n",
		&path, err, sizeof(err));
	if (!UNIT_CHECK(cfg != NULL, "[users] loads")) {
		printf("# %s\n", err);
		return;
	}
	u = config_find_user(cfg, "alice");
	if (UNIT_CHECK(u != NULL, "user found")) {
		UNIT_EQ_INT(u->pool_mode, POOL_MODE_TRANSACTION, "user pool_mode");
		UNIT_EQ_INT(u->pool_size, 3, "user pool_size");
		UNIT_EQ_INT(u->reserve_pool_size, 1, "user reserve_pool_size");
		UNIT_EQ_INT(u->max_user_connections, 7, "max_user_connections");
		UNIT_EQ_INT(u->max_user_client_connections, 9, "max_user_client_connections");
		UNIT_CHECK(u->query_timeout == 2.5, "user query_timeout");
		UNIT_EQ_INT(u->line, 8, "user entry line");
	}
	UNIT_CHECK(config_find_user(cfg, "carol") == NULL, "unknown user is NULL");

	/* precedence: [users] over [databases] over [pgbouncer] */
	db = config_find_db(cfg, "sized");
	UNIT_EQ_INT(config_pool_size(cfg, db, u), 3, "user pool_size wins over the entry's");
	UNIT_EQ_INT(config_pool_mode(cfg, db, u), POOL_MODE_TRANSACTION, "user pool_mode wins over the db's");
	u = config_find_user(cfg, "bob");
	UNIT_EQ_INT(config_pool_size(cfg, db, u), 5, "entry pool_size when the user sets none");
	UNIT_EQ_INT(config_pool_mode(cfg, db, u), POOL_MODE_STATEMENT,
		    "db pool_mode when the user sets none");
	db = config_find_db(cfg, "plain");
	UNIT_EQ_INT(config_pool_size(cfg, db, u), 11, "global default_pool_size last");
	UNIT_EQ_INT(config_pool_mode(cfg, db, NULL), POOL_MODE_SESSION, "global pool_mode last");
	config_free(cfg);

	cfg = load_main("[users]\nalice = pool_size=1 colour=blue\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL, "unknown [users] key fails");
	snprintf(expect, sizeof(expect), "%s:3: unknown parameter 'colour' in [users] entry 'alice'", path);
	UNIT_EQ_STR(err, expect, "unknown [users] key message");
	config_free(cfg);

	cfg = load_main("[users]\nalice = max_user_connections=lots\n", &path, err, sizeof(err));
	snprintf(expect, sizeof(expect),
		 "%s:3: invalid value 'lots' for max_user_connections in [users] entry 'alice': "
		 "expected an integer",
		 path);
	UNIT_EQ_STR(err, expect, "bad [users] value message");
	config_free(cfg);
}

static void test_connstr(void)
{
	struct connstr cs;
	char err[256];

	UNIT_CHECK(connstr_parse("a=1  b = 'x y' c='it''s' d='a\\'b' e='c:\\\\d\\n' f='' g=x'y", &cs, err,
				 sizeof(err)),
		   "connection string parses");
	UNIT_EQ_INT(cs.n, 7, "seven pairs");
	if (cs.n == 7) {
		UNIT_EQ_STR(cs.pairs[0].value, "1", "bare value");
		UNIT_EQ_STR(cs.pairs[1].key, "b", "key before spaced '='");
		UNIT_EQ_STR(cs.pairs[1].value, "x y", "quoted value with a space");
		UNIT_EQ_STR(cs.pairs[2].value, "it's", "'' is a quote");
		UNIT_EQ_STR(cs.pairs[3].value, "a'b", "\\' is a quote");
		UNIT_EQ_STR(cs.pairs[4].value, "c:\\d\\n", "\\\\ is a backslash, other backslashes stay");
		UNIT_EQ_STR(cs.pairs[5].value, "", "empty quoted value");
		UNIT_EQ_STR(cs.pairs[6].value, "x'y", "quote inside a bare value is literal");
	}
	connstr_free(&cs);

	UNIT_CHECK(connstr_parse("   ", &cs, err, sizeof(err)) && cs.n == 0, "blank string: no pairs");
	connstr_free(&cs);
	UNIT_CHECK(!connstr_parse("a=1 b", &cs, err, sizeof(err)), "key without '=' fails");
	UNIT_EQ_STR(err, "missing '=' after 'b'", "missing '=' message");
	UNIT_EQ_INT(cs.n, 0, "nothing returned on failure");
	UNIT_CHECK(!connstr_parse("=1", &cs, err, sizeof(err)), "'=' without key fails");
	UNIT_EQ_STR(err, "missing key before '='", "missing key message");
	UNIT_CHECK(!connstr_parse("a='open", &cs, err, sizeof(err)), "unterminated quote fails");
	UNIT_EQ_STR(err, "unterminated quoted value for 'a'", "unterminated quote message");
	UNIT_CHECK(!connstr_parse("a='x\\'", &cs, err, sizeof(err)), "escaped closing quote leaves it open");
	UNIT_CHECK(!connstr_parse("a='x'y", &cs, err, sizeof(err)), "text glued to a closing quote fails");
	UNIT_EQ_STR(err, "missing space after the quoted value for 'a'", "glued text message");
}

static void test_misc(void)
{
	char err[1024], expect[1024];
	char *path, *inc;
	char body[PATH_MAX + 64];
	struct config *cfg;

	{
		enum pool_mode m = POOL_MODE_UNSET;

		UNIT_CHECK(config_pool_mode_parse("statement", &m) && m == POOL_MODE_STATEMENT, "pool_mode: parsed");
		UNIT_CHECK(config_pool_mode_parse("Transaction", &m) && m == POOL_MODE_TRANSACTION,
			   "pool_mode: parsed case-insensitively");
		UNIT_CHECK(!config_pool_mode_parse("sessions", &m) && m == POOL_MODE_TRANSACTION,
			   "pool_mode: other text refused, the value untouched");
		for (m = POOL_MODE_SESSION; m <= POOL_MODE_STATEMENT; m++) {
			enum pool_mode back = POOL_MODE_UNSET;

			UNIT_CHECK(config_pool_mode_parse(config_pool_mode_name(m), &back) && back == m,
				   "pool_mode: a name parses back to its mode");
		}
	}
	UNIT_CHECK(config_list_contains("a, B ,c", "b"), "list: case-insensitive, spaces ignored");
	UNIT_CHECK(config_list_contains("alice", "alice"), "list: single item");
	UNIT_CHECK(!config_list_contains("bb,cc", "b"), "list: no prefix match");
	UNIT_CHECK(!config_list_contains("", "b"), "list: empty");
	UNIT_CHECK(!config_list_contains(NULL, "b"), "list: NULL");
	UNIT_CHECK(!config_list_contains("a,,b", ""), "list: empty name never matches");
	UNIT_EQ_STR(config_pool_mode_name(POOL_MODE_STATEMENT), "statement", "pool mode name");
	UNIT_EQ_STR(config_pool_mode_name(POOL_MODE_UNSET), NULL, "unset pool mode has no name");

	/* %include through config_load */
	inc = write_tmp("[databases]\nincluded = host=inc\n");
	snprintf(body, sizeof(body), "max_client_conn = 3\n%%include %s\n[pgbouncer]\nlisten_port = 7777\n",
		 inc);
	cfg = load_main(body, NULL, err, sizeof(err));
	UNIT_CHECK(cfg && config_find_db(cfg, "included") != NULL, "entry from an %include");
	UNIT_EQ_INT(cfg ? cfg->listen_port : -1, 7777, "keys after the %include");
	config_free(cfg);

	path = write_tmp("listen_port = 1\n");
	cfg = config_load(path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL, "key outside a section fails");
	snprintf(expect, sizeof(expect), "%s:1: key 'listen_port' is outside of any section", path);
	UNIT_EQ_STR(err, expect, "outside-section message");
	config_free(cfg);

	cfg = config_load("/tmp/mb_test_config_missing.ini", err, sizeof(err));
	UNIT_CHECK(cfg == NULL && strstr(err, "could not open") != NULL, "missing file fails with a message");

	cfg = load_main("[peers]\n1 = host=/tmp/p1 port=6433\n", NULL, err, sizeof(err));
	UNIT_CHECK(cfg != NULL, "[peers] entry accepted");
	config_free(cfg);
	cfg = load_main("[peers]\nx = host=/tmp/p1\n", &path, err, sizeof(err));
	UNIT_CHECK(cfg == NULL, "[peers] name must be a number");
	config_free(cfg);
}

int main(void)
{
	log_setup(0, true);
	test_defaults();
	test_types();
	test_value_errors();
	test_fails_closed();
	test_databases();
	test_database_errors();
	test_users();
	test_connstr();
	test_misc();
	cleanup();
	return unit_done();
}
