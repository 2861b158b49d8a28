/* Unit tests of auth_hba_file / auth_ident_file: every record type and method, masks, @file, sameuser,
 * quoting, maps, first match wins, and errors with their file and line. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hba.h"
#include "unit.h"

static char tmpdir[] = "/tmp/mb_test_hba_XXXXXX";
static char err[512];

static char *tmp_file(const char *name, const char *content)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (!f || fputs(content, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	return path;
}

static struct hba *parse(const char *text)
{
	return hba_parse(text, "hba.conf", NULL, NULL, err, sizeof(err));
}

static struct sockaddr_storage addr_of(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		abort();
	return ss;
}

/* The line of the rule that matches (0: none). ip NULL: unix socket. */
static int line_for(const struct hba *hba, const char *ip, bool tls, const char *db, const char *user)
{
	struct sockaddr_storage ss;
	struct hba_request req = { NULL, tls, db, user };
	const struct hba_rule *r;

	if (ip) {
		ss = addr_of(ip);
		req.addr = (const struct sockaddr *)&ss;
	}
	r = hba_match(hba, &req);
	return r ? r->line : 0;
}

static enum hba_method method_for(const struct hba *hba, const char *ip, const char *db, const char *user)
{
	struct sockaddr_storage ss;
	struct hba_request req = { NULL, false, db, user };
	const struct hba_rule *r;

	if (ip) {
		ss = addr_of(ip);
		req.addr = (const struct sockaddr *)&ss;
	}
	r = hba_match(hba, &req);
	return r ? r->method : (enum hba_method)-1;
}

static void test_types(void)
{
	struct hba *hba = parse("# comment\n"
				"\n"
				"local all all peer\n"
				"hostssl all all 0.0.0.0/0 cert\n"
				"hostnossl db1 all 10.0.0.0/8 md5\n"
				"host all all 10.0.0.0/8 scram-sha-256\n");

	if (!UNIT_CHECK(hba, "four record types parse"))
		return;
	UNIT_EQ_INT(hba->n_rules, 4, "comments and blank lines are no rules");
	UNIT_EQ_INT(line_for(hba, NULL, false, "db1", "u"), 3, "unix socket: local");
	UNIT_EQ_INT(line_for(hba, "10.1.2.3", false, "db1", "u"), 5, "TCP without TLS skips hostssl, takes hostnossl");
	UNIT_EQ_INT(line_for(hba, "10.1.2.3", true, "db1", "u"), 4, "TCP with TLS takes hostssl");
	UNIT_EQ_INT(line_for(hba, "10.1.2.3", false, "db2", "u"), 6, "hostnossl of another database: host");
	UNIT_EQ_INT(line_for(hba, "10.1.2.3", true, "db2", "u"), 4, "TLS: hostssl first");
	UNIT_EQ_INT(line_for(hba, "192.168.0.1", false, "db2", "u"), 0, "no rule for that address");
	hba_free(hba);

	hba = parse("host all all all trust\n");
	UNIT_EQ_INT(line_for(hba, NULL, false, "d", "u"), 0, "host never matches a unix socket");
	UNIT_EQ_INT(line_for(hba, "::1", false, "d", "u"), 1, "address all: IPv6 too");
	hba_free(hba);
	hba = parse("local all all trust\n");
	UNIT_EQ_INT(line_for(hba, "127.0.0.1", false, "d", "u"), 0, "local never matches TCP");
	hba_free(hba);
}

static void test_methods(void)
{
	struct hba *hba = parse("host d1 all all trust\n"
				"host d2 all all reject\n"
				"host d3 all all md5\n"
				"host d4 all all scram-sha-256\n"
				"host d5 all all password\n"
				"host d6 all all peer\n"
				"host d7 all all cert\n");

	if (!UNIT_CHECK(hba, "every method parses"))
		return;
	UNIT_EQ_INT(method_for(hba, "1.2.3.4", "d1", "u"), HBA_TRUST, "trust");
	UNIT_EQ_INT(method_for(hba, "1.2.3.4", "d2", "u"), HBA_REJECT, "reject");
	UNIT_EQ_INT(method_for(hba, "1.2.3.4", "d3", "u"), HBA_MD5, "md5");
	UNIT_EQ_INT(method_for(hba, "1.2.3.4", "d4", "u"), HBA_SCRAM, "scram-sha-256");
	UNIT_EQ_INT(method_for(hba, "1.2.3.4", "d5", "u"), HBA_PASSWORD, "password");
	UNIT_EQ_INT(method_for(hba, "1.2.3.4", "d6", "u"), HBA_PEER, "peer");
	UNIT_EQ_INT(method_for(hba, "1.2.3.4", "d7", "u"), HBA_CERT, "cert");
	hba_free(hba);
}

static void test_addresses(void)
{
	struct hba *hba = parse("host all all 192.168.1.0/24 md5\n"
				"host all all 10.0.0.0 255.0.0.0 trust\n"
				"host all all 172.16.0.1/32 reject\n"
				"host all all 2001:db8::/32 password\n"
				"host all all ::1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff scram-sha-256\n"
				"host all all 172.16.0.0/12 cert\n");

	if (!UNIT_CHECK(hba, "masks parse"))
		return;
	UNIT_EQ_INT(line_for(hba, "192.168.1.200", false, "d", "u"), 1, "/24 inside");
	UNIT_EQ_INT(line_for(hba, "192.168.2.1", false, "d", "u"), 0, "/24 outside");
	UNIT_EQ_INT(line_for(hba, "10.200.1.1", false, "d", "u"), 2, "separate netmask");
	UNIT_EQ_INT(line_for(hba, "172.16.0.1", false, "d", "u"), 3, "/32: that address");
	UNIT_EQ_INT(line_for(hba, "172.16.0.2", false, "d", "u"), 6, "/32: not its neighbour (/12 next)");
	UNIT_EQ_INT(line_for(hba, "172.32.0.1", false, "d", "u"), 0, "/12 outside");
	UNIT_EQ_INT(line_for(hba, "2001:db8:1::5", false, "d", "u"), 4, "IPv6 /32");
	UNIT_EQ_INT(line_for(hba, "2001:db9::5", false, "d", "u"), 0, "IPv6 /32 outside");
	UNIT_EQ_INT(line_for(hba, "::1", false, "d", "u"), 5, "IPv6 with a separate mask");
	UNIT_EQ_INT(line_for(hba, "::2", false, "d", "u"), 0, "IPv6 full mask: only that address");
	hba_free(hba);

	hba = parse("host all all 0.0.0.0/0 md5\n");
	UNIT_EQ_INT(line_for(hba, "8.8.8.8", false, "d", "u"), 1, "/0: every IPv4 address");
	UNIT_EQ_INT(line_for(hba, "::1", false, "d", "u"), 0, "an IPv4 rule never matches IPv6");
	hba_free(hba);
	hba = parse("host all all 10.0.0.0/7 md5\n");
	UNIT_EQ_INT(line_for(hba, "11.255.0.1", false, "d", "u"), 1, "a mask not on a byte boundary");
	UNIT_EQ_INT(line_for(hba, "12.0.0.1", false, "d", "u"), 0, "... and outside it");
	hba_free(hba);
}

static void test_names(void)
{
	struct hba *hba = parse("host db1,db2 alice,bob all md5\n"
				"host sameuser all all trust\n"
				"host \"all\" \"Carol Smith\",\"we\"\"ird\" all password\n"
				"host all all all reject\n");

	if (!UNIT_CHECK(hba, "lists, sameuser and quoted names parse"))
		return;
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "db2", "bob"), 1, "comma lists");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "db3", "bob"), 4, "a database not in the list");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "carol", "carol"), 2, "sameuser");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "db1", "carol"), 4, "sameuser needs the same name");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "all", "Carol Smith"), 3, "a quoted \"all\" is a name");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "other", "Carol Smith"), 4, "... not the keyword");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "all", "we\"ird"), 3, "a doubled quote inside a quoted name");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "DB1", "alice"), 4, "names compare exactly (case)");
	hba_free(hba);

	hba = parse("host replication all all trust\nhost all all all md5\n");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "replication", "u"), 2,
		    "the replication keyword never matches a normal connection");
	hba_free(hba);
	hba = parse("host db1 , db2 u all md5\n");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "db2", "u"), 1, "blanks around a comma");
	hba_free(hba);
}

static void test_include(void)
{
	struct hba *hba;
	char hba_path[300];

	tmp_file("dbs", "db1, db2\n# comment\ndb3 \"db 4\"\n");
	tmp_file("users", "alice\n@more\n");
	tmp_file("more", "bob\n");
	snprintf(hba_path, sizeof(hba_path), "%s", tmp_file("hba.conf", "host @dbs @users all md5\n"
									  "local all all peer\n"));
	hba = hba_load(hba_path, NULL, err, sizeof(err));
	if (!UNIT_CHECK(hba, "@file includes load"))
		return;
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "db3", "alice"), 1, "name from @file, second line");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "db 4", "bob"), 1, "quoted name in @file, nested @file");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "db5", "alice"), 0, "a name not in the @file");
	UNIT_EQ_INT(line_for(hba, "1.1.1.1", false, "db1", "carol"), 0, "a user not in the @file");
	hba_free(hba);

	tmp_file("hba2.conf", "host @missing all all md5\n");
	snprintf(hba_path, sizeof(hba_path), "%s/hba2.conf", tmpdir);
	hba = hba_load(hba_path, NULL, err, sizeof(err));
	UNIT_CHECK(!hba && strstr(err, "hba2.conf:1:") && strstr(err, "missing"), "a missing @file: file and line");
	tmp_file("badinc", "ok\n+group\n");
	tmp_file("hba3.conf", "\nhost all @badinc all md5\n");
	snprintf(hba_path, sizeof(hba_path), "%s/hba3.conf", tmpdir);
	hba = hba_load(hba_path, NULL, err, sizeof(err));
	UNIT_CHECK(!hba && strstr(err, "badinc:2:"), "an error inside an @file names that file and line");
	tmp_file("loop", "@loop\n");
	tmp_file("hba4.conf", "host all @loop all md5\n");
	snprintf(hba_path, sizeof(hba_path), "%s/hba4.conf", tmpdir);
	hba = hba_load(hba_path, NULL, err, sizeof(err));
	UNIT_CHECK(!hba && strstr(err, "nested too deeply"), "an @file including itself is refused");
}

static void test_first_match(void)
{
	struct hba *hba = parse("host all bob all reject\n"
				"host all all 127.0.0.1/32 trust\n"
				"host all all all md5\n");

	UNIT_EQ_INT(method_for(hba, "127.0.0.1", "d", "bob"), HBA_REJECT, "the first matching rule decides");
	UNIT_EQ_INT(method_for(hba, "127.0.0.1", "d", "alice"), HBA_TRUST, "later rules when earlier do not match");
	UNIT_EQ_INT(method_for(hba, "127.0.0.2", "d", "alice"), HBA_MD5, "the last rule");
	hba_free(hba);
	hba = parse("");
	UNIT_CHECK(hba && hba->n_rules == 0, "an empty file loads");
	UNIT_EQ_INT(line_for(hba, "127.0.0.1", false, "d", "u"), 0, "... and matches nobody");
	hba_free(hba);
	UNIT_EQ_INT(line_for(NULL, "127.0.0.1", false, "d", "u"), 0, "no rules at all: no match");
}

static void expect_error(const char *text, const char *where, const char *what, const char *name)
{
	struct hba *hba = parse(text);
	bool ok = !hba && strstr(err, where) && strstr(err, what);
	if (!UNIT_CHECK(ok, name))
		printf("#   error: %s\n", hba ? "(loaded)" : err);
	hba_free(hba);
}

static void test_errors(void)
{
	expect_error("host all all all md5\nhosts all all all md5\n", "hba.conf:2:", "unknown connection type",
		     "unknown type: file and line");
	expect_error("\n\nhost all all all ldap\n", "hba.conf:3:", "unsupported authentication method",
		     "ldap is refused");
	expect_error("host all all all gss\n", "hba.conf:1:", "unsupported authentication method \"gss\"",
		     "an unknown method");
	expect_error("host all all example.com md5\n", ":1:", "invalid address", "host names are refused");
	expect_error("host all all samehost md5\n", ":1:", "invalid address", "samehost is not supported");
	expect_error("host all all samenet md5\n", ":1:", "invalid address", "samenet is not supported");
	expect_error("host all all 10.0.0.0/33 md5\n", ":1:", "invalid mask", "an IPv4 mask over 32");
	expect_error("host all all ::/129 md5\n", ":1:", "invalid mask", "an IPv6 mask over 128");
	expect_error("host all all 10.0.0.0/x md5\n", ":1:", "invalid mask", "a mask that is no number");
	expect_error("host all all 10.0.0.0 md5\n", ":1:", "invalid netmask", "no mask at all");
	expect_error("host all all 10.0.0.0\n", ":1:", "netmask is missing", "nothing after the address");
	expect_error("host all all\n", ":1:", "address is missing", "no address");
	expect_error("local all all\n", ":1:", "method is missing", "no method");
	expect_error("local all\n", ":1:", "name is missing", "no user column");
	expect_error("local all all md5 extra\n", ":1:", "unsupported option \"extra\"", "a word after the method");
	expect_error("local all all peer map=none\n", ":1:", "ident map \"none\"", "map= without an ident file");
	expect_error("local \"unterminated all md5\n", ":1:", "unterminated", "an unterminated quote");
	expect_error("local +group all md5\n", ":1:", "group membership", "+group is refused");
	expect_error("local samerole all md5\n", ":1:", "samerole", "samerole is refused");
	expect_error("local db1, all md5\n", ":1:", "", "a comma with no name after it eats the user column");
	expect_error("local all all md5\n,\n", "hba.conf:2:", "unknown connection type", "a stray comma line");
}

static void test_ident(void)
{
	struct hba *hba = hba_parse("local all all peer map=m1\n"
				    "host all all all cert map=m2\n",
				    "hba.conf",
				    "# MAP SYSTEM DB\n"
				    "m1 root postgres\n"
				    "m1 alice alice\n"
				    "m1 admin all\n"
				    "m2 \"CN=Bob\" bob\n",
				    "ident.conf", err, sizeof(err));

	if (!UNIT_CHECK(hba, "hba with an ident file loads")) {
		printf("#   %s\n", err);
		return;
	}
	UNIT_EQ_STR(hba->rules[0].map, "m1", "map= is kept on the rule");
	UNIT_EQ_INT(hba->n_idents, 4, "four ident lines");
	UNIT_CHECK(hba_ident_allows(hba, "m1", "root", "postgres"), "map pairs root with postgres");
	UNIT_CHECK(!hba_ident_allows(hba, "m1", "root", "alice"), "... not root with alice");
	UNIT_CHECK(hba_ident_allows(hba, "m1", "admin", "anyone"), "all: any database user");
	UNIT_CHECK(!hba_ident_allows(hba, "m2", "alice", "alice"), "another map's lines do not count");
	UNIT_CHECK(hba_ident_allows(hba, "m2", "CN=Bob", "bob"), "a quoted system name");
	UNIT_CHECK(hba_ident_allows(hba, NULL, "carol", "carol"), "no map: the same name");
	UNIT_CHECK(!hba_ident_allows(hba, NULL, "carol", "dave"), "no map: another name is refused");
	hba_free(hba);

	hba = hba_parse("local all all peer\n", "hba.conf", "m1 root\n", "ident.conf", err, sizeof(err));
	UNIT_CHECK(!hba && strstr(err, "ident.conf:1:") && strstr(err, "database user name is missing"),
		   "an ident line without a database user: file and line");
	hba = hba_parse("local all all peer\n", "hba.conf", "\nm1 a b c\n", "ident.conf", err, sizeof(err));
	UNIT_CHECK(!hba && strstr(err, "ident.conf:2:"), "an ident line with too many words");
	hba = hba_load("/nonexistent/hba.conf", NULL, err, sizeof(err));
	UNIT_CHECK(!hba && strstr(err, "could not open auth_hba_file /nonexistent/hba.conf"), "a missing file");
	hba = hba_load("", NULL, err, sizeof(err));
	UNIT_CHECK(!hba && strstr(err, "needs auth_hba_file"), "no file name");
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	test_types();
	test_methods();
	test_addresses();
	test_names();
	test_include();
	test_first_match();
	test_errors();
	test_ident();
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return unit_done();
}
