/* Configuration: pgbouncer.ini model, loading, validation and lookups. */
#ifndef MB_CONFIG_H
#define MB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum pool_mode {
	POOL_MODE_UNSET = -1,
	POOL_MODE_SESSION = 0,
	POOL_MODE_TRANSACTION,
	POOL_MODE_STATEMENT,
};

enum auth_type {
	AUTH_TYPE_TRUST = 0,
	AUTH_TYPE_PLAIN,
	AUTH_TYPE_MD5,
	AUTH_TYPE_SCRAM,
	AUTH_TYPE_ANY,	/* "any": no auth, user name from the client ignored if entry forces one */
	AUTH_TYPE_HBA,
	AUTH_TYPE_CERT,
	AUTH_TYPE_PEER,
};

/* One startup parameter to apply on the server (name = value). */
struct config_param {
	char *name;
	char *value;
};

/* A [databases] entry. Integer fields use -1 for "not set: use the global value". */
struct db_entry {
	char *name;		/* the name clients connect to; "*" is the fallback entry */
	char *host;		/* NULL: unix socket in the default directory; "/dir": unix socket there */
	int port;		/* default 5432 */
	char *dbname;		/* NULL: same as name (for "*": the client's database) */
	char *user;		/* forced server user, or NULL */
	char *password;		/* password for the forced user / server login, or NULL */
	char *auth_user;
	char *auth_query;
	char *auth_dbname;
	int pool_size;
	int min_pool_size;
	int reserve_pool_size;
	int max_db_connections;
	int max_db_client_connections;
	enum pool_mode pool_mode;
	char *connect_query;
	/* startup parameters set for every client of this entry unless the client sends its own */
	struct config_param *params;	/* client_encoding, datestyle, timezone, application_name */
	size_t n_params;
	int line;		/* where it was defined, for messages */
	double server_lifetime;		/* seconds, -1 if not given */
	double query_wait_timeout;	/* seconds, -1 if not given */
	char *load_balance_hosts;	/* "round-robin" (NULL: default) or "disable" */
	char *target_session_attrs;	/* NULL (any), "read-write", "read-only", "primary", "standby" */
};

/* A [users] entry. */
struct user_entry {
	char *name;
	enum pool_mode pool_mode;	/* POOL_MODE_UNSET if not given */
	int pool_size;			/* -1 if not given */
	int reserve_pool_size;		/* -1 if not given */
	int max_user_connections;	/* -1 if not given */
	int max_user_client_connections; /* -1 if not given */
	double query_timeout;		/* seconds, -1 if not given (also the four below) */
	double query_wait_timeout;
	double idle_transaction_timeout;
	double transaction_timeout;
	double client_idle_timeout;
	int line;			/* where it was defined, for messages */
};

/* All of [pgbouncer]. Times are in seconds (fractions allowed); 0 disables where documented. */
struct config {
	char *config_path;		/* absolute path of the main file */

	/* listening */
	char *listen_addr;		/* comma-separated, "*" = all; NULL/"" = no TCP */
	int listen_port;
	int listen_backlog;
	char *unix_socket_dir;		/* "" disables the unix socket */
	int unix_socket_mode;
	char *unix_socket_group;
	bool so_reuseport;
	bool tcp_keepalive;
	int tcp_keepcnt;		/* 0 = OS default */
	int tcp_keepidle;
	int tcp_keepintvl;
	int tcp_user_timeout;		/* milliseconds, 0 = OS default */
	int tcp_socket_buffer;
	int tcp_defer_accept;

	/* process */
	char *user;			/* switch to this OS user */
	char *conffile;			/* "conffile": file to read on the next reload, NULL = config_path */
	char *job_name;			/* also "service_name" (Windows service name in PgBouncer) */
	int peer_id;
	char *logfile;
	char *login_notify_message;	/* NOTICE sent with every welcome when non-empty */
	char *pidfile;
	bool syslog;
	char *syslog_ident;
	char *syslog_facility;
	int verbose;
	bool log_connections;
	bool log_disconnections;
	bool log_pooler_errors;
	bool log_stats;
	double stats_period;

	/* authentication */
	enum auth_type auth_type;
	char *auth_file;
	char *auth_hba_file;
	char *auth_ident_file;
	char *auth_ldap_options;
	char *auth_user;
	char *auth_query;
	char *auth_dbname;
	int scram_iterations;
	char *admin_users;
	char *stats_users;

	/* pooling */
	enum pool_mode pool_mode;
	int max_client_conn;
	int default_pool_size;
	int min_pool_size;
	int reserve_pool_size;
	double reserve_pool_timeout;
	int max_db_connections;
	int max_db_client_connections;
	int max_user_connections;
	int max_user_client_connections;
	bool server_round_robin;
	char *ignore_startup_parameters;	/* comma-separated */
	char *track_extra_parameters;		/* comma-separated */
	bool track_session_set;			/* plain session SET/RESET follow the client in transaction mode */
	bool application_name_add_host;
	int max_prepared_statements;
	int max_client_prepared_statements;	/* named statements one client may keep (0 = no limit) */
	bool disable_pqexec;

	/* server connections */
	char *server_reset_query;	/* "" = none */
	bool server_reset_query_always;
	double server_check_delay;
	char *server_check_query;
	bool server_fast_close;
	double server_lifetime;
	double server_idle_timeout;
	double server_connect_timeout;
	double server_login_retry;
	double autodb_idle_timeout;

	/* client connections */
	double client_login_timeout;
	double client_idle_timeout;
	double query_timeout;
	double query_wait_timeout;
	double cancel_wait_timeout;
	double idle_transaction_timeout;
	double transaction_timeout;
	double suspend_timeout;
	double query_wait_notify;

	/* dns */
	double dns_max_ttl;
	double dns_nxdomain_ttl;
	double dns_zone_check_period;
	char *resolv_conf;

	/* buffers */
	int pkt_buf;
	int max_packet_size;
	int sbuf_loopcnt;

	/* TLS (parsed now, enforced when TLS lands) */
	char *client_tls_sslmode;
	char *client_tls_key_file;
	char *client_tls_cert_file;
	char *client_tls_ca_file;
	char *client_tls_protocols;
	char *client_tls_ciphers;
	char *client_tls13_ciphers;
	char *client_tls_dheparams;
	char *client_tls_ecdhcurve;
	char *server_tls_sslmode;
	char *server_tls_key_file;
	char *server_tls_cert_file;
	char *server_tls_ca_file;
	char *server_tls_protocols;
	char *server_tls_ciphers;
	char *server_tls13_ciphers;

	/* moonbouncer additions */
	char *policy_file;
	char *policy_dir;
	char *policy_failure;		/* "closed" (default) or "open" */
	double policy_timeout;		/* seconds a hook call may run */
	int policy_max_memory;		/* bytes of Lua heap */
	int policy_max_query_length;	/* bytes of SQL a hook sees; longer arrives truncated */
	char *metrics_listen;

	struct db_entry *dbs;
	size_t n_dbs;
	struct user_entry *users;
	size_t n_users;
};

/*
 * Load and validate a config file (following %include). On failure returns NULL
 * and writes "file:line: what is wrong" into err. Unknown keys are logged as
 * warnings and ignored.
 */
struct config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct config *cfg);

/* The [databases] entry for a name: exact match, else the "*" entry, else NULL. */
const struct db_entry *config_find_db(const struct config *cfg, const char *name);
const struct user_entry *config_find_user(const struct config *cfg, const char *name);

/* Effective values for a (db, user) pair: entry/user override, else global. */
int config_pool_size(const struct config *cfg, const struct db_entry *db, const struct user_entry *user);
enum pool_mode config_pool_mode(const struct config *cfg, const struct db_entry *db, const struct user_entry *user);

/* True if name appears in the comma-separated list (case-insensitive, spaces ignored). */
bool config_list_contains(const char *list, const char *name);

/* "session", "transaction", "statement"; NULL for POOL_MODE_UNSET. */
const char *config_pool_mode_name(enum pool_mode mode);
/* The reverse, case-insensitive as ini values are; false for any other text (*out untouched). */
bool config_pool_mode_parse(const char *s, enum pool_mode *out) __attribute__((warn_unused_result));

/* Can the console's SET change this [pgbouncer] key in a running process? */
bool config_key_changeable(const char *key);
/* The console's SET: one [pgbouncer] key in cfg, validated as in the file. False with err otherwise. */
bool config_set_key(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* What a reload changes: each [pgbouncer] key whose value differs, and [databases] entries added or removed. */
void config_diff(const struct config *old, const struct config *cur,
		 void (*cb)(void *arg, const char *key, const char *before, const char *after), void *arg);

/* For SHOW CONFIG: every [pgbouncer] key in name order with its current value and its default. */
void config_foreach_key(const struct config *cfg,
			void (*cb)(void *arg, const char *key, const char *value, const char *default_value),
			void *arg);

#endif
