/* auth_hba_file and auth_ident_file: PgBouncer's subset of pg_hba.conf, parsed, and the first matching rule. */
#include "hba.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INCLUDE_DEPTH 8

/* One token of a line: a word, a double-quoted string ("" for a quote inside), or a comma. */
enum tok_kind { TOK_END = 0, TOK_WORD, TOK_QUOTED, TOK_COMMA };

struct lexer {
	const char *pos;	/* NULL once the line has ended (end of text, newline or '#') */
	enum tok_kind kind;
	char *text;		/* the token, unquoted (TOK_WORD, TOK_QUOTED) */
	size_t cap;
	bool bad;		/* an unterminated quote, or no memory */
};

/* Where errors are reported: "file:line: ". */
struct place {
	const char *file;
	int line;
	char *err;
	size_t errlen;
};

static bool fail(const struct place *at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(const struct place *at, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(at->err, at->errlen, "%s:%d: %s", at->file, at->line, what);
	return false;
}

static bool lex_store(struct lexer *lx, const char *s, size_t len)
{
	if (len + 1 > lx->cap) {
		char *n = realloc(lx->text, len + 1);
		if (!n) {
			lx->bad = true;
			return false;
		}
		lx->text = n;
		lx->cap = len + 1;
	}
	memcpy(lx->text, s, len);
	lx->text[len] = 0;
	return true;
}

static enum tok_kind lex_next(struct lexer *lx)
{
	const char *p = lx->pos;

	lx->kind = TOK_END;
	if (!p)
		return TOK_END;
	while (*p && *p != '\n' && isspace((unsigned char)*p))
		p++;
	if (!*p || *p == '\n' || *p == '#') {
		lx->pos = NULL;
		return TOK_END;
	}
	if (*p == ',') {
		lx->pos = p + 1;
		lx->kind = TOK_COMMA;
		return TOK_COMMA;
	}
	if (*p == '"') {
		const char *s = p + 1;
		char *d;
		while (*s && *s != '\n' && !(*s == '"' && s[1] != '"'))
			s += *s == '"' ? 2 : 1;
		if (*s != '"' || !lex_store(lx, p + 1, (size_t)(s - p - 1))) {
			lx->bad = true;
			lx->pos = NULL;
			return TOK_END;
		}
		d = lx->text;	/* a doubled quote stands for one */
		for (const char *q = lx->text; *q; q++) {
			*d++ = *q;
			if (*q == '"')
				q++;
		}
		*d = 0;
		lx->pos = s + 1;
		lx->kind = TOK_QUOTED;
		return TOK_QUOTED;
	}
	{
		const char *s = p;
		while (*s && !isspace((unsigned char)*s) && *s != ',' && *s != '#' && *s != '"')
			s++;
		if (!lex_store(lx, p, (size_t)(s - p))) {
			lx->pos = NULL;
			return TOK_END;
		}
		lx->pos = s;
		lx->kind = TOK_WORD;
		return TOK_WORD;
	}
}

/* The current token is the unquoted keyword kw. */
static bool is_kw(const struct lexer *lx, const char *kw)
{
	return lx->kind == TOK_WORD && strcmp(lx->text, kw) == 0;
}

static char *read_file(const char *path, const struct place *at, const char *what)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		if (at)
			fail(at, "could not open %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t n;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 8192);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 8192;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = 0;
	return buf;
}

/* The directory part of path with name appended (name as it is when absolute or path has no directory). */
static char *relative_to(const char *path, const char *name)
{
	const char *slash = strrchr(path, '/');
	size_t dlen;
	char *out;

	if (name[0] == '/' || !slash)
		return strdup(name);
	dlen = (size_t)(slash - path) + 1;
	out = malloc(dlen + strlen(name) + 1);
	if (out) {
		memcpy(out, path, dlen);
		strcpy(out + dlen, name);
	}
	return out;
}

static bool add_name(struct hba_names *names, const char *name)
{
	char **n = realloc(names->names, (names->n + 1) * sizeof(*n));
	if (!n)
		return false;
	names->names = n;
	if (!(n[names->n] = strdup(name)))
		return false;
	names->n++;
	return true;
}

static bool parse_names(struct lexer *lx, struct hba_names *names, const struct place *at, int depth);

/* @file: the names listed in another file (relative to the including file), commas or blanks between. */
static bool include_names(const char *name, struct hba_names *names, const struct place *at, int depth)
{
	char *path, *text;
	struct place inc = { NULL, 0, at->err, at->errlen };
	struct lexer lx = { 0 };
	bool ok = true;

	if (!name[0])
		return fail(at, "@ without a file name");
	if (depth >= MAX_INCLUDE_DEPTH)
		return fail(at, "@%s: includes nested too deeply", name);
	path = relative_to(at->file, name);
	if (!path)
		return fail(at, "out of memory");
	text = read_file(path, at, "included file");
	if (!text) {
		free(path);
		return false;
	}
	inc.file = path;
	for (const char *line = text; ok && line; ) {
		inc.line++;
		lx.pos = line;
		lex_next(&lx);
		while (ok && lx.kind != TOK_END) {
			if (lx.kind == TOK_COMMA)
				lex_next(&lx);
			else
				ok = parse_names(&lx, names, &inc, depth + 1);
		}
		if (ok && lx.bad)
			ok = fail(&inc, "unterminated quoted name");
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	free(lx.text);
	free(text);
	free(path);
	return ok;
}

/* A comma-separated list of keywords, names, quoted names and @files. */
static bool parse_names(struct lexer *lx, struct hba_names *names, const struct place *at, int depth)
{
	for (;;) {
		if (is_kw(lx, "all")) {
			names->all = true;
		} else if (is_kw(lx, "sameuser")) {
			names->sameuser = true;
		} else if (is_kw(lx, "replication")) {
			names->replication = true;
		} else if (is_kw(lx, "samerole") || is_kw(lx, "samegroup")) {
			return fail(at, "%s is not supported", lx->text);
		} else if (lx->kind == TOK_WORD && lx->text[0] == '+') {
			return fail(at, "group membership (%s) is not supported", lx->text);
		} else if (lx->kind == TOK_WORD && lx->text[0] == '@') {
			char *name = strdup(lx->text + 1);
			bool ok = name && include_names(name, names, at, depth);
			free(name);
			if (!ok)
				return name ? false : fail(at, "out of memory");
		} else if (lx->kind == TOK_WORD || lx->kind == TOK_QUOTED) {
			if (!add_name(names, lx->text))
				return fail(at, "out of memory");
		} else {
			return fail(at, lx->bad ? "unterminated quoted name" : "a database or user name is missing");
		}
		if (lex_next(lx) != TOK_COMMA)
			return true;
		lex_next(lx);
	}
}

static bool parse_mask_bits(struct hba_rule *r, const char *bits)
{
	char *end;
	unsigned long n;
	int max = r->family == AF_INET ? 32 : 128;

	errno = 0;
	n = strtoul(bits, &end, 10);
	if (errno || end == bits || *end || n > (unsigned long)max)
		return false;
	memset(r->mask, 0, sizeof(r->mask));
	for (unsigned long i = 0; i < n / 8; i++)
		r->mask[i] = 0xff;
	if (n % 8)
		r->mask[n / 8] = (uint8_t)(0xff << (8 - n % 8));
	return true;
}

static bool parse_address(struct lexer *lx, struct hba_rule *r, const struct place *at)
{
	char addr[64], *slash;

	if (is_kw(lx, "all")) {
		r->addr_all = true;
		lex_next(lx);
		return true;
	}
	if (lx->kind != TOK_WORD)
		return fail(at, "an address is missing");
	if (strlen(lx->text) >= sizeof(addr))
		return fail(at, "invalid address \"%s\"", lx->text);
	strcpy(addr, lx->text);
	slash = strchr(addr, '/');
	if (slash)
		*slash++ = 0;
	if (inet_pton(AF_INET, addr, r->addr) == 1)
		r->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, r->addr) == 1)
		r->family = AF_INET6;
	else	/* host names, samehost and samenet are not supported (as PgBouncer) */
		return fail(at, "invalid address \"%s\" (an IP address, with a mask, or \"all\")", lx->text);
	if (slash) {
		if (!parse_mask_bits(r, slash))
			return fail(at, "invalid mask \"/%s\"", slash);
		lex_next(lx);
		return true;
	}
	if (lex_next(lx) != TOK_WORD)
		return fail(at, "a netmask is missing after address %s", addr);
	if (inet_pton(r->family, lx->text, r->mask) != 1)
		return fail(at, "invalid netmask \"%s\"", lx->text);
	lex_next(lx);
	return true;
}

static const struct {
	const char *name;
	enum hba_method method;
} methods[] = {
	{ "trust", HBA_TRUST },		{ "reject", HBA_REJECT }, { "md5", HBA_MD5 },	{ "scram-sha-256", HBA_SCRAM },
	{ "password", HBA_PASSWORD }, { "peer", HBA_PEER },	  { "cert", HBA_CERT },
};

static bool map_known(const struct hba *hba, const char *map)
{
	for (size_t i = 0; i < hba->n_idents; i++)
		if (strcmp(hba->idents[i].map, map) == 0)
			return true;
	return false;
}

static void free_names(struct hba_names *names)
{
	for (size_t i = 0; i < names->n; i++)
		free(names->names[i]);
	free(names->names);
}

static void free_rule(struct hba_rule *r)
{
	free_names(&r->db);
	free_names(&r->user);
	free(r->map);
}

/* One non-empty line: TYPE DATABASE USER [ADDRESS [MASK]] METHOD [map=NAME]. */
static bool parse_rule(struct lexer *lx, struct hba *hba, struct hba_rule *r, const struct place *at)
{
	size_t i;

	if (is_kw(lx, "local"))
		r->type = HBA_LOCAL;
	else if (is_kw(lx, "host"))
		r->type = HBA_HOST;
	else if (is_kw(lx, "hostssl"))
		r->type = HBA_HOSTSSL;
	else if (is_kw(lx, "hostnossl"))
		r->type = HBA_HOSTNOSSL;
	else
		return fail(at, "unknown connection type \"%s\" (local, host, hostssl or hostnossl)",
			    lx->kind == TOK_COMMA ? "," : lx->text);
	lex_next(lx);
	if (!parse_names(lx, &r->db, at, 0) || !parse_names(lx, &r->user, at, 0))
		return false;
	if (r->type != HBA_LOCAL && !parse_address(lx, r, at))
		return false;
	if (lx->kind != TOK_WORD)
		return fail(at, "an authentication method is missing");
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(lx->text, methods[i].name) == 0)
			break;
	if (i == sizeof(methods) / sizeof(methods[0]))
		return fail(at, "unsupported authentication method \"%s\"", lx->text);
	r->method = methods[i].method;
	lex_next(lx);
	if (lx->kind == TOK_WORD && strncmp(lx->text, "map=", 4) == 0) {
		if (!map_known(hba, lx->text + 4))
			return fail(at, "ident map \"%s\" is not in auth_ident_file", lx->text + 4);
		if (!(r->map = strdup(lx->text + 4)))
			return fail(at, "out of memory");
		lex_next(lx);
	}
	if (lx->kind != TOK_END || lx->bad)
		return fail(at, lx->bad ? "unterminated quoted name" : "unsupported option \"%s\"",
			    lx->kind == TOK_COMMA ? "," : lx->text);
	return true;
}

/* An ident line: MAP SYSTEM-USER DATABASE-USER (the last may be "all"). */
static bool parse_ident(struct lexer *lx, struct hba *hba, const struct place *at)
{
	struct hba_ident id = { .line = at->line };
	struct hba_ident *n;
	bool db_all;

	if (lx->kind != TOK_WORD)
		return fail(at, "a map name is missing");
	id.map = strdup(lx->text);
	lex_next(lx);
	if (lx->kind != TOK_WORD && lx->kind != TOK_QUOTED) {
		free(id.map);
		return fail(at, "a system user name is missing");
	}
	id.system_user = strdup(lx->text);
	lex_next(lx);
	if (lx->kind != TOK_WORD && lx->kind != TOK_QUOTED) {
		free(id.map);
		free(id.system_user);
		return fail(at, "a database user name is missing");
	}
	db_all = is_kw(lx, "all");
	id.db_user = db_all ? NULL : strdup(lx->text);
	lex_next(lx);
	n = realloc(hba->idents, (hba->n_idents + 1) * sizeof(*n));
	if (n)
		hba->idents = n;
	if (!n || !id.map || !id.system_user || (!db_all && !id.db_user)) {
		free(id.map);
		free(id.system_user);
		free(id.db_user);
		return fail(at, "out of memory");
	}
	hba->idents[hba->n_idents++] = id;
	if (lx->kind != TOK_END || lx->bad)
		return fail(at, "unsupported parameters after the database user name");
	return true;
}

/* Each line of text through one of the line parsers above. */
static bool parse_lines(const char *text, const char *path, struct hba *hba, bool ident, char *err, size_t errlen)
{
	struct place at = { path, 0, err, errlen };
	struct lexer lx = { 0 };
	bool ok = true;

	for (const char *line = text; ok && line; ) {
		at.line++;
		lx.pos = line;
		lx.bad = false;
		if (lex_next(&lx) != TOK_END || lx.bad) {
			if (ident) {
				ok = parse_ident(&lx, hba, &at);
			} else {
				struct hba_rule r = { .line = at.line };
				struct hba_rule *n;
				ok = parse_rule(&lx, hba, &r, &at);
				n = ok ? realloc(hba->rules, (hba->n_rules + 1) * sizeof(*n)) : NULL;
				if (n) {
					hba->rules = n;
					hba->rules[hba->n_rules++] = r;
				} else {
					if (ok)
						ok = fail(&at, "out of memory");
					free_rule(&r);
				}
			}
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	free(lx.text);
	return ok;
}

struct hba *hba_parse(const char *text, const char *path, const char *ident_text, const char *ident_path,
		      char *err, size_t errlen)
{
	struct hba *hba = calloc(1, sizeof(*hba));

	if (!hba) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((ident_text && !parse_lines(ident_text, ident_path, hba, true, err, errlen)) ||
	    !parse_lines(text, path, hba, false, err, errlen)) {
		hba_free(hba);
		return NULL;
	}
	return hba;
}

struct hba *hba_load(const char *path, const char *ident_path, char *err, size_t errlen)
{
	char *text, *ident_text = NULL;
	struct hba *hba;

	if (!path || !path[0]) {
		snprintf(err, errlen, "auth_type = hba needs auth_hba_file");
		return NULL;
	}
	if (ident_path && ident_path[0]) {
		if (!(ident_text = read_file(ident_path, NULL, NULL))) {
			snprintf(err, errlen, "could not open auth_ident_file %s: %s", ident_path, strerror(errno));
			return NULL;
		}
	}
	text = read_file(path, NULL, NULL);
	if (!text) {
		snprintf(err, errlen, "could not open auth_hba_file %s: %s", path, strerror(errno));
		free(ident_text);
		return NULL;
	}
	hba = hba_parse(text, path, ident_text, ident_path, err, errlen);
	free(text);
	free(ident_text);
	return hba;
}

void hba_free(struct hba *hba)
{
	if (!hba)
		return;
	for (size_t i = 0; i < hba->n_rules; i++)
		free_rule(&hba->rules[i]);
	for (size_t i = 0; i < hba->n_idents; i++) {
		free(hba->idents[i].map);
		free(hba->idents[i].system_user);
		free(hba->idents[i].db_user);
	}
	free(hba->rules);
	free(hba->idents);
	free(hba);
}

/* As PgBouncer: "sameuser" in either column matches when the database and user names are the same. */
static bool names_match(const struct hba_names *names, const char *name, const char *other)
{
	if (names->all || (names->sameuser && strcmp(name, other) == 0))
		return true;
	for (size_t i = 0; i < names->n; i++)
		if (strcmp(names->names[i], name) == 0)
			return true;
	return false;
}

static bool address_match(const struct hba_rule *r, const struct sockaddr *sa)
{
	const uint8_t *a;
	size_t len;

	if (r->addr_all)
		return true;
	if (sa->sa_family != r->family)
		return false;
	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		len = 4;
	} else {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		len = 16;
	}
	for (size_t i = 0; i < len; i++)
		if ((a[i] & r->mask[i]) != r->addr[i])
			return false;
	return true;
}

const struct hba_rule *hba_match(const struct hba *hba, const struct hba_request *req)
{
	if (!hba)
		return NULL;
	for (size_t i = 0; i < hba->n_rules; i++) {
		const struct hba_rule *r = &hba->rules[i];
		if (!req->addr) {
			if (r->type != HBA_LOCAL)
				continue;
		} else if (r->type == HBA_LOCAL || (r->type == HBA_HOSTSSL && !req->tls) ||
			   (r->type == HBA_HOSTNOSSL && req->tls) || !address_match(r, req->addr)) {
			continue;
		}
		if (names_match(&r->db, req->database, req->user) && names_match(&r->user, req->user, req->database))
			return r;
	}
	return NULL;
}

bool hba_ident_allows(const struct hba *hba, const char *map, const char *system_user, const char *db_user)
{
	if (!map)
		return strcmp(system_user, db_user) == 0;
	for (size_t i = 0; hba && i < hba->n_idents; i++) {
		const struct hba_ident *id = &hba->idents[i];
		if (strcmp(id->map, map) == 0 && strcmp(id->system_user, system_user) == 0 &&
		    (!id->db_user || strcmp(id->db_user, db_user) == 0))
			return true;
	}
	return false;
}
