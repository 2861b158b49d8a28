#!/usr/bin/env bash
# auth_type = hba (auth_hba_file, auth_ident_file): each method a rule picks, hostssl without TLS, reject,
# no matching rule, peer over the unix socket (with and without a map), cert, @file, --check and reload;
# auth_type = peer and cert on their own.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init hba

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS
osuser=$(id -un)	# who runs this script: the peer the pooler sees on its unix socket

# The first authentication request the pooler sends (0 ok, 3 cleartext, 5 md5, 10 SASL), or the error.
auth_request() {
	mb_raw "$(mb_startup_hex user "$1" database "$2")" 2>&1 |
		awk '$1 == "AUTH" {print $2; exit} $1 == "ERROR" {$1 = ""; print substr($0, 2); exit}'
}
# login USER PASSWORD DB -> current_user, or "ERROR <sqlstate> <message>"
login() { pqt query "$(mb_connstr "$1" "$2" "$3")" "SELECT current_user" 2>&1; }
# the same over the pooler's unix socket
login_unix() {
	pqt query "host=$T_DIR port=$MB_PORT user='$1' password='$2' dbname='$3' connect_timeout=10" \
		"SELECT current_user" 2>&1
}
run_pg() { (exec_as_pg timeout 10 "$MB_BIN" "$@") 2>&1; }

hba=$T_DIR/hba.conf
ident=$T_DIR/ident.conf
write_hba() {
	cat >"$hba"
	mb_chown_pg "$hba"
}

printf '%s\n' "# users that log in with md5" "$mu" >"$T_DIR/md5users"
printf 'm %s mapped_ok\n' "$osuser" >"$ident"
mb_chown_pg "$T_DIR/md5users" "$ident"
write_hba <<EOF
# TYPE  DATABASE  USER            ADDRESS                  METHOD
hostssl all       all             all                      trust
host    all       refused_user    127.0.0.1/32             reject
host    trustdb   all             127.0.0.1/32             trust
host    plaindb   all             127.0.0.1/32             password
host    all       @md5users       127.0.0.1 255.255.255.255 md5
host    certdb    all             all                      cert
host    all       $su,"other"     127.0.0.0/8              scram-sha-256
local   peerdb    "$osuser"                                peer
local   peerdb    all                                      peer map=m
EOF

mb_pgdb "$MB_DB"
for db in trustdb plaindb certdb; do mb_pgdb "$db"; done
mb_pgdb peerdb "user=$su password=$sp"
mb_user "$su" "$sp"
mb_user "$mu" "$(mb_md5_secret "$mu" "$mp")"
for u in refused_user stranger "$osuser" mapped_ok mapped_no; do mb_user "$u" "some-secret"; done
mb_set auth_type hba
mb_set auth_hba_file "$hba"
mb_set auth_ident_file "$ident"
mb_start_or_bail

# --- each method as the first matching rule picks it (hostssl never matches a client without TLS)
mb_is "$(auth_request "$su" trustdb)" 0 "trust rule: no password asked"
mb_is "$(login "$su" "" trustdb)" "$su" "trust rule: the login goes through"
mb_is "$(auth_request "$su" plaindb)" 3 "password rule: cleartext asked"
mb_is "$(login "$su" "$sp" plaindb)" "$su" "password rule: the right password works"
mb_is "$(login "$su" wrong plaindb)" "ERROR 28P01 password authentication failed" "password rule: a wrong one fails"
mb_is "$(auth_request "$mu" "$MB_DB")" 5 "md5 rule (user from an @file, separate netmask): md5 asked"
mb_is "$(login "$mu" "$mp" "$MB_DB")" "$mu" "md5 rule: the right password works"
mb_is "$(login "$mu" wrong "$MB_DB")" "ERROR 28P01 password authentication failed" "md5 rule: a wrong one fails"
mb_is "$(auth_request "$su" "$MB_DB")" 10 "scram-sha-256 rule: SASL asked (the hostssl trust line was skipped)"
mb_is "$(login "$su" "$sp" "$MB_DB")" "$su" "scram-sha-256 rule: the right password works"
mb_is "$(login "$su" wrong "$MB_DB")" "ERROR 28P01 SASL authentication failed" "scram-sha-256 rule: a wrong one fails"
mb_is "$(login refused_user some-secret "$MB_DB")" "ERROR 08P01 login rejected" "reject rule: PgBouncer's message"
mb_is "$(login stranger some-secret "$MB_DB")" "ERROR 08P01 no authentication method is found" \
	"no matching rule: PgBouncer's message"
mb_is "$(login "$su" "$sp" certdb)" "ERROR 08P01 certificate authentication failed" \
	"cert rule without TLS: PgBouncer's message"
mb_like "$(cat "$MB_LOG")" 'TLS connection required' "cert rule without TLS: the reason is logged"

# --- peer over the unix socket: the OS user is the user, or the ident map pairs them
mb_is "$(login_unix "$osuser" "" peerdb)" "$su" "peer: the OS user ($osuser) logs in as itself (server user forced)"
mb_is "$(login_unix mapped_ok "" peerdb)" "$su" "peer with map=: a mapped user logs in"
mb_is "$(login_unix mapped_no "" peerdb)" "ERROR 08P01 unix socket login rejected" \
	"peer with map=: a user the map does not pair is refused"
mb_is "$(login_unix "$su" "$sp" "$MB_DB")" "ERROR 08P01 no authentication method is found" \
	"unix socket: host rules never match it"

# --- reload: new rules apply; a broken file keeps the rules in force
sed -i "s/^host    all       $su,/host    all       other,/" "$hba"
echo "host all $su 127.0.0.1/32 reject" >>"$hba"
mb_reload
mb_is "$(login "$su" "$sp" "$MB_DB")" "ERROR 08P01 login rejected" "after SIGHUP the new rules decide"
echo "host all all 127.0.0.1/33 md5" >>"$hba"
mark=$(wc -l <"$MB_LOG")
kill -HUP "$MB_PID"
for ((i = 0; i < 50; i++)); do
	tail -n +"$((mark + 1))" "$MB_LOG" | grep -q 'reload failed' && break
	sleep 0.1
done
mb_like "$(tail -n +"$((mark + 1))" "$MB_LOG")" "hba.conf:$(wc -l <"$hba"): invalid mask" \
	"a broken hba file on reload: file and line logged"
mb_is "$(login "$su" "$sp" "$MB_DB")" "ERROR 08P01 login rejected" "... and the rules in force stay"
mb_is "$(login "$mu" "$mp" "$MB_DB")" "$mu" "... all of them"
mb_stop

# --- --check: errors in the hba or ident file name file and line
out=$(run_pg --check "$MB_INI")
mb_is "$?" 1 "--check with a broken hba file exits 1"
mb_like "$out" "hba.conf:$(wc -l <"$hba"): invalid mask" "--check names the hba file and line ($(head -n1 <<<"$out"))"
write_hba <<<"local all all peer map=nomap"
out=$(run_pg --check "$MB_INI")
mb_like "$out" 'hba.conf:1: ident map "nomap" is not in auth_ident_file' "--check: a map the ident file lacks"
printf 'm only_two\n' >"$ident"
out=$(run_pg --check "$MB_INI")
mb_like "$out" 'ident.conf:1: a database user name is missing' "--check: a broken ident line"
mb_unset auth_hba_file
mb_write_config
out=$(run_pg --check "$MB_INI")
mb_like "$out" 'auth_type = hba needs auth_hba_file' "--check: hba without a file"

# --- auth_type = peer and cert on their own
mb_set auth_type peer
mb_start_or_bail
mb_is "$(login_unix "$osuser" "" peerdb)" "$su" "auth_type = peer: the OS user logs in over the unix socket"
mb_is "$(login_unix mapped_ok "" peerdb)" "ERROR 08P01 unix socket login rejected" \
	"auth_type = peer: another user name is refused"
mb_is "$(login "$osuser" "" peerdb)" "ERROR 08P01 unix socket login rejected" "auth_type = peer: TCP is refused"
mb_set auth_type cert
mb_start_or_bail
mb_is "$(login "$su" "$sp" "$MB_DB")" "ERROR 08P01 certificate authentication failed" \
	"auth_type = cert without TLS: PgBouncer's message"
mb_stop

mb_test_done
