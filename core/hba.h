/* auth_hba_file and auth_ident_file: PgBouncer's subset of pg_hba.conf, parsed, and the first matching rule. */
#ifndef MB_HBA_H
#define MB_HBA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum hba_conn_type {
	HBA_LOCAL = 0,	/* unix socket */
	HBA_HOST,	/* TCP, with or without TLS */
	HBA_HOSTSSL,	/* TCP with TLS */
	HBA_HOSTNOSSL,	/* TCP without TLS */
};

enum hba_method {
	HBA_TRUST = 0,
	HBA_REJECT,
	HBA_MD5,
	HBA_SCRAM,
	HBA_PASSWORD,
	HBA_PEER,
	HBA_CERT,
};

/* A database or user column: keywords and names (names compare exactly). */
struct hba_names {
	bool all;
	bool sameuser;		/* database column: the database named like the user (user column: the reverse) */
	bool replication;	/* only replication connections, which are refused before any rule is read */
	char **names;
	size_t n;
};

/* One line of an auth_ident_file: map name, OS user (or certificate name), database user ("all": any). */
struct hba_ident {
	char *map;
	char *system_user;
	char *db_user;		/* NULL for "all" */
	int line;
};

struct hba_rule {
	enum hba_conn_type type;
	struct hba_names db;
	struct hba_names user;
	bool addr_all;		/* "all" in the address column */
	int family;		/* AF_INET or AF_INET6 for an address; 0 for local and "all" */
	uint8_t addr[16];
	uint8_t mask[16];
	enum hba_method method;
	char *map;		/* map=NAME, checked against the ident file at load; NULL if none */
	int line;
};

struct hba {
	struct hba_rule *rules;
	size_t n_rules;
	struct hba_ident *idents;
	size_t n_idents;
};

/*
 * Load an hba file and the ident file its map= options refer to (ident_path NULL or "": none). Errors are
 * load failures: NULL and "file:line: what" in err (a line PgBouncer would skip with a warning stops here).
 */
struct hba *hba_load(const char *path, const char *ident_path, char *err, size_t errlen);
/* The same from text in memory (path names the text in messages and anchors @file includes). */
struct hba *hba_parse(const char *text, const char *path, const char *ident_text, const char *ident_path,
		      char *err, size_t errlen);
void hba_free(struct hba *hba);

/* Who is logging in: addr NULL for a unix socket. */
struct hba_request {
	const struct sockaddr *addr;
	bool tls;
	const char *database;
	const char *user;
};

/* The first rule that matches, or NULL (the login is refused). */
const struct hba_rule *hba_match(const struct hba *hba, const struct hba_request *req);

/*
 * May system_user (the peer's OS user, or a name in its certificate) log in as db_user? Without a map:
 * only under the same name; with one: when a line of that map pairs them (or names "all").
 */
bool hba_ident_allows(const struct hba *hba, const char *map, const char *system_user, const char *db_user);

#endif
