#!/usr/bin/env bash
# The login as PgBouncer 1.25.2 does it: the database is looked up only after authentication (its name does
# not leak to a client without credentials), its messages and SQLSTATEs for failed logins, the "closing
# because" log line for them, login_notify_message, ignore_startup_parameters (dropped, never sent to a
# server, whatever their length), "registered new auto-database".
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init login_parity

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS
psql_v() {	# psql_v USER PASSWORD DB SQL: verbose errors and notices, one line each
	local user=$1 pass=$2 db=$3
	shift 3
	PGPASSWORD=$pass PGCONNECT_TIMEOUT=10 timeout 60 "$PG_BINDIR/psql" -X -q -A -t -v VERBOSITY=verbose \
		-h 127.0.0.1 -p "$MB_PORT" -U "$user" -d "$db" -c "$1" 2>&1 | grep -v '^LOCATION'
}
log_since() { tail -n +"$(($1 + 1))" "$MB_LOG"; }
log_mark() { wc -l <"$MB_LOG"; }

# --- SCRAM: an unknown database is named only to a client that authenticated
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set login_notify_message "Welcome: this is a pooler, not PostgreSQL"
mb_start_or_bail
m=$(log_mark)
out=$(pqt connect "$(mb_connstr "$su" wrong-pass no_such_db)" 2>&1)
mb_is "$out" "ERROR 28P01 SASL authentication failed" "scram: wrong password, unknown database: the database is not named"
out=$(pqt connect "$(mb_connstr nobody wrong-pass no_such_db)" 2>&1)
mb_is "$out" "ERROR 28P01 SASL authentication failed" "scram: unknown user, unknown database: the database is not named"
out=$(mb_raw "$(mb_startup_hex user nobody database no_such_db)")
mb_like "$out" '^AUTH 10' "scram: an unknown user is asked for SCRAM like anyone else ($(head -n 1 <<<"$out"))"
out=$(pqt connect "$(mb_connstr "$su" "$sp" no_such_db)" 2>&1)
mb_is "$out" "ERROR 08P01 no such database: no_such_db" "scram: right password, unknown database: PgBouncer's message"
log=$(log_since "$m")
mb_like "$log" 'closing because: SASL authentication failed \(age=[0-9]+s\)' "log: PgBouncer's closing line for a failed login"
mb_like "$log" 'closing because: no such database: no_such_db \(age=' "log: PgBouncer's closing line for an unknown database"
mb_like "$log" 'login failed: db=no_such_db user=' "log: PgBouncer's login failed line"

# --- login_notify_message: a NOTICE after the login
out=$(psql_v "$su" "$sp" "$MB_DB" "select 'in'")
mb_like "$out" 'NOTICE: +Welcome: this is a pooler, not PostgreSQL' "login_notify_message: psql shows the NOTICE ($out)"
mb_like "$out" 'in$' "login_notify_message: the session works"
mb_stop

# --- md5 and trust
mb_reset
mb_pgdb "$MB_DB"
mb_user "$mu" "$mp"
mb_set auth_type md5
mb_start_or_bail
out=$(pqt connect "$(mb_connstr "$mu" wrong-pass no_such_db)" 2>&1)
mb_is "$out" "ERROR 28P01 password authentication failed" "md5: wrong password, unknown database: the database is not named"
out=$(pqt connect "$(mb_connstr "$mu" "$mp" no_such_db)" 2>&1)
mb_is "$out" "ERROR 08P01 no such database: no_such_db" "md5: right password, unknown database: named"
out=$(pqt connect "$(mb_connstr "$mu" "$mp" "$MB_DB")" 2>&1)
mb_is "$out" "OK" "md5: right password, known database: logged in"
out=$(mb_raw "$(mb_startup_hex user "$mu" database "$MB_DB")")
mb_unlike "$out" 'NOTICE' "no login_notify_message by default"
mb_stop
mb_reset
mb_pgdb "$MB_DB"
mb_user "$mu" "$mp"
mb_set auth_type trust
mb_set max_db_client_connections 1
mb_set login_notify_message "Welcome: this is a pooler, not PostgreSQL"
mb_start_or_bail
out=$(mb_raw "$(mb_startup_hex user "$mu" database "$MB_DB")")
mb_like "$(tr '\n' ' ' <<<"$out")" 'MSG K [0-9]+ NOTICE 00000 Welcome: this is a pooler, not PostgreSQL MSG Z ' \
	"login_notify_message: NOTICE 00000 between BackendKeyData and ReadyForQuery, as in PgBouncer"
out=$(mb_raw "$(mb_startup_hex user nobody database no_such_db)")
mb_like "$out" '^ERROR 08P01 "trust" authentication failed' "trust: unknown user: PgBouncer's message ($(head -n 1 <<<"$out"))"
mb_bg "$T_DIR/hold.out" "$PQTOOL" hold "$(mb_connstr "$mu" x "$MB_DB")" 5
mb_wait_line "$T_DIR/hold.out" '^connected' 10 || mb_diag "hold client: $(cat "$T_DIR/hold.out")"
out=$(pqt connect "$(mb_connstr "$mu" x "$MB_DB")" 2>&1)
mb_is "$out" "ERROR 53300 client connections exceeded (max_db_client_connections)" "max_db_client_connections: PgBouncer's message"
mb_stop

# --- a server that asks for SCRAM when the auth_file holds only an md5 secret: PgBouncer's words
mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$(mb_md5_secret "$su" "$sp")"
mb_set auth_type md5
mb_start_or_bail
out=$(pqt query "$(mb_connstr "$su" "$sp" "$MB_DB")" "select 1" 2>&1)
mb_like "$out" '^ERROR .*wrong password type' "server login with a secret of the other kind: wrong password type ($out)"
mb_stop

# --- ignore_startup_parameters: dropped, never sent to the server, whatever their length
mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set ignore_startup_parameters "extra_float_digits, search_path"
mb_start_or_bail
q() { pqt query "$(mb_connstr "$su" "$sp" "$MB_DB" "options='$1'")" "$2" 2>&1; }
mb_is "$(q '-c extra_float_digits=2' 'show extra_float_digits')" 1 "ignored parameter in options: not applied"
mb_is "$(q '-c extra_float_digits=2 -c statement_timeout=1234' 'show statement_timeout')" 1234ms \
	"a parameter not listed still applies"
big=$(head -c 5000 /dev/zero | tr '\0' x)
mb_is "$(q "-c extra_float_digits=$big" 'select 1')" 1 "an ignored value that the server would refuse: no error"
huge=$(head -c 9000 /dev/zero | tr '\0' x)	# under the 10000-byte startup packet limit
mb_is "$(q "-c search_path=$huge" 'select 2')" 2 "an ignored value longer than any option buffer: no error"
mb_stop
mb_set ignore_startup_parameters options
mb_start_or_bail
mb_is "$(q '-c DateStyle=German -c extra_float_digits=3' 'show datestyle')" "German, DMY" \
	"options listed: a tracked parameter in it still applies, as in PgBouncer"
mb_is "$(q '-c DateStyle=German -c extra_float_digits=3' 'show extra_float_digits')" 1 \
	"options listed: an untracked one in it is dropped"
mb_stop

# as parameters of their own in the startup packet (JDBC sends extra_float_digits so), trust logins through
# an entry with its own server credentials
mb_reset
mb_pgdb "$MB_DB" "user=$su password=$sp"
mb_user "$mu" ""
mb_set auth_type trust
mb_set pool_mode transaction
mb_set ignore_startup_parameters "extra_float_digits, search_path"
mb_start_or_bail
q_hex() { local body; body="$(mb_hex "$1")00"; printf '51%08x%s' $((${#body} / 2 + 4)) "$body"; }
out=$(mb_raw "$(mb_startup_hex user "$mu" database "$MB_DB" extra_float_digits abc search_path "$big")" \
	"$(q_hex 'show extra_float_digits')")
mb_like "$(tr '\n' ' ' <<<"$out")" 'ROW 1 .*MSG Z' \
	"ignored startup parameters with values the server refuses: dropped, no error ($(grep -m1 -E 'ERROR|ROW' <<<"$out"))"
mb_stop

# --- auto-database
mb_reset
mb_db '*' "host=127.0.0.1 port=$MB_PG_PORT"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_start_or_bail
m=$(log_mark)
out=$(pqt query "$(mb_connstr "$su" "$sp" "$MB_DB")" "select 1" 2>&1)
mb_is "$out" 1 "auto-database: a client logs in through '*'"
pqt query "$(mb_connstr "$su" "$sp" "$MB_DB")" "select 1" >/dev/null 2>&1
mb_is "$(log_since "$m" | grep -c "registered new auto-database: $MB_DB")" 1 "auto-database: PgBouncer's line, once"

mb_test_done
