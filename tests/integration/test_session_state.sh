#!/usr/bin/env bash
# Session state in every pool mode: what the client changes itself stays its own (session mode never re-applies
# anything), RESET returns to the client's startup values within the same Query, plain session SETs follow the
# client in transaction and statement mode (track_session_set), and a role set where the scan cannot see it
# never breaks the next client's login.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init session_state

mb_tool txn_tool TXN_TOOL

su=postgres sp=$MB_PG_PASSWORD
pg_super_psql -d postgres >/dev/null 2>&1 <<EOF
DROP ROLE IF EXISTS r_sa; DROP ROLE IF EXISTS r_x;
CREATE ROLE r_sa SUPERUSER; CREATE ROLE r_x; GRANT r_x TO r_sa;
EOF

start_mode() {
	mb_reset
	mb_pgdb "$MB_DB" "pool_size=${2:-2}"
	mb_user "$su" "$sp"
	mb_set auth_type scram-sha-256
	mb_set pool_mode "$1"
	shift 2
	while [ $# -ge 2 ]; do
		mb_set "$1" "$2"
		shift 2
	done
	mb_start_or_bail
	c=$(mb_connstr "$su" "$sp" "$MB_DB")
}

# the same script directly against PostgreSQL: what the pooler must give too
direct() {
	local save=$MB_PORT
	MB_PORT=$MB_PG_PORT
	local d
	d=$(mb_connstr "$su" "$sp" "$MB_DB")
	MB_PORT=$save
	sed "s|@C@|$d|" | tt 2>&1
}
through() { sed "s|@C@|$c|" | tt 2>&1; }

role_script() {
	cat <<'EOF'
open a @C@
q a SET SESSION AUTHORIZATION r_sa
q a SET ROLE r_x
q a SELECT session_user, current_user
q a RESET ROLE
q a SELECT session_user, current_user
ps a session_authorization
ps a is_superuser
q a SET DateStyle = 'SQL, DMY'
q a SET TimeZone = 'Asia/Tokyo'
q a SET IntervalStyle = 'iso_8601'
q a SELECT current_setting('DateStyle'), current_setting('TimeZone'), current_setting('IntervalStyle')
ps a DateStyle
ps a TimeZone
ps a IntervalStyle
q a RESET SESSION AUTHORIZATION
q a SELECT session_user, current_user
ps a session_authorization
ps a is_superuser
EOF
}

# 1. session mode: the client owns its server, a direct connection's answers exactly
start_mode session
want=$(role_script | direct)
got=$(role_script | through)
mb_is "$got" "$want" "session mode: SET SESSION AUTHORIZATION, SET ROLE, RESET ROLE, DateStyle/TimeZone/IntervalStyle \
and RESET SESSION AUTHORIZATION answer as on a direct connection"
mb_like "$got" "a: r_sa\|r_sa" "session mode: RESET ROLE after SET SESSION AUTHORIZATION gives r_sa|r_sa"

# the same sequence in one Query, every mode: one transaction, so exactly a direct connection's answer
one="q a SET SESSION AUTHORIZATION r_sa; SET ROLE r_x; RESET ROLE; SELECT session_user, current_user"
want=$(printf 'open a @C@\n%s\n' "$one" | direct)
for mode in session transaction statement; do
	start_mode $mode
	got=$(printf 'open a @C@\n%s\n' "$one" | through)
	mb_is "$got" "$want" "$mode mode: the role sequence in one Query answers as on a direct connection"
	# reported parameters the client sets itself follow it, on whichever server (o holds one meanwhile)
	hold=() release=()
	if [ $mode != statement ]; then
		hold=("q o BEGIN") release=("q o COMMIT")
	fi
	script=$(printf '%s\n' "open a @C@" "open o @C@" "q a SET DateStyle = 'SQL, DMY'" \
		"q a SET TimeZone = 'Asia/Tokyo'" "q a SET IntervalStyle = 'iso_8601'" "${hold[@]}" \
		"q a SELECT current_setting('DateStyle'), current_setting('TimeZone'), current_setting('IntervalStyle')" \
		"ps a DateStyle" "ps a TimeZone" "ps a IntervalStyle" "${release[@]}")
	got=$(through <<<"$script")
	mb_is "$(lines_of "$got" a | grep -v '^SET$\|connected')" $'SQL, DMY|Asia/Tokyo|iso_8601
DateStyle=SQL, DMY
TimeZone=Asia/Tokyo
IntervalStyle=iso_8601' "$mode mode: DateStyle, TimeZone, IntervalStyle set by the client follow it"
done

role_txn_want='a: connected
a: SET
a: SET
a: postgres|postgres
a: RESET
a: postgres|postgres
a: session_authorization=postgres
a: is_superuser=on
a: SET
a: SET
a: SET
a: SQL, DMY|Asia/Tokyo|iso_8601
a: DateStyle=SQL, DMY
a: TimeZone=Asia/Tokyo
a: IntervalStyle=iso_8601
a: RESET
a: postgres|postgres
a: session_authorization=postgres
a: is_superuser=on'
# in transaction and statement mode each statement above is a transaction of its own: the roles last for it
# (the client is told so by a NOTICE and by ParameterStatus), the reported parameters follow the client
for mode in transaction statement; do
	start_mode $mode
	got=$(role_script | through)
	mb_is "$got" "$role_txn_want" "$mode mode: roles last for their transaction, the client hears which role it has"
done

# 2. RESET inside one Query returns to the client's startup values before the next statement runs
reset_script() {
	cat <<'EOF'
env PGDATESTYLE Postgres, MDY
env PGTZ America/Los_Angeles
open m @C@ options='-c statement_timeout=300ms'
unenv PGDATESTYLE
unenv PGTZ
open o @C@
q m SET datestyle = ISO
q m SET timezone = 'UTC'
q m SET statement_timeout = '7s'
q m RESET datestyle; RESET timezone; SELECT current_setting('datestyle') || ' / ' || current_setting('timezone')
ps m DateStyle
ps m TimeZone
q m SET datestyle = ISO; SET statement_timeout = '9s'; RESET ALL; SELECT current_setting('datestyle'), current_setting('statement_timeout')
ps m DateStyle
q m SET datestyle TO DEFAULT; SET TIME ZONE 'UTC'; SET TIME ZONE LOCAL; SHOW timezone
q m SET datestyle = 'German'; SET TimeZone = 'UTC'
q m DISCARD ALL
q m SELECT current_setting('datestyle'), current_setting('timezone'), current_setting('statement_timeout')
ps m DateStyle
ps m TimeZone
q m SET datestyle = 'German'
x m RESET datestyle
q m SHOW datestyle
ps m DateStyle
q m RESET timezone -- a comment; RESET datestyle
q m SHOW timezone
q m BEGIN; SET datestyle = ISO; COMMIT; RESET datestyle; SELECT 1/0
q m SHOW datestyle
EOF
}
want=$(reset_script | direct)
for mode in session transaction statement; do
	start_mode $mode
	got=$(reset_script | through)
	mb_is "$got" "$want" "$mode mode: RESET, RESET ALL, SET TO DEFAULT, DISCARD ALL return to the startup values within \
the same Query, with PostgreSQL's tags and ParameterStatus"
done

# the messages themselves: tags and ParameterStatus as PostgreSQL sends them to a direct client
mb_tool prepared_tool PTOOL
status_steps=(Q "SET datestyle = ISO; SET timezone = 'UTC'" W
	Q "RESET datestyle; RESET timezone; SELECT current_setting('datestyle') || ' / ' || current_setting('timezone')" W
	Q "SET DateStyle = 'German'; SET IntervalStyle = 'iso_8601'; RESET ALL; SHOW DateStyle" W
	Q "SET TimeZone = 'Asia/Tokyo'; SET TIME ZONE DEFAULT" W
	Q "SET DateStyle = 'German'; SET IntervalStyle = 'iso_8601'; SET TimeZone = 'UTC'" W Q "DISCARD ALL" W
	Q "SET DateStyle = 'German'" W P "" "RESET DateStyle" - B "" - E S W Q "SHOW DateStyle" W)
status_run() { PGDATESTYLE='Postgres, MDY' PGTZ=America/Los_Angeles PREPARED_TOOL_STATUS=1 timeout 60 "$PTOOL" script "$1" \
	"${status_steps[@]}" 2>&1; }
save_port=$MB_PORT
MB_PORT=$MB_PG_PORT
want=$(status_run "$(mb_connstr "$su" "$sp" "$MB_DB")")
MB_PORT=$save_port
for mode in session transaction statement; do
	start_mode $mode
	mb_is "$(status_run "$c")" "$want" "$mode mode: RESET in a Query, DISCARD ALL, RESET in a Parse: the same \
CommandComplete and ParameterStatus messages as from PostgreSQL"
done

# 3. plain session SET / RESET / RESET ALL follow the client in transaction and statement mode (track_session_set)
track_script() {
	cat <<'EOF'
open m @C@
open o @C@
q m SET statement_timeout = '5s'
q o BEGIN
q m SHOW statement_timeout
q o COMMIT
q m SET search_path = a, "B c", public
q m SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY
q o BEGIN
q m SELECT current_setting('search_path'), current_setting('default_transaction_read_only')
q o COMMIT
q m BEGIN; SET statement_timeout = '9s'; ROLLBACK
q m SET work_mem = '8MB'; SELECT 1/0
q o BEGIN
q m SELECT current_setting('statement_timeout'), current_setting('work_mem')
q o COMMIT
q m SET lock_timeout = 1000; RESET search_path; RESET default_transaction_read_only
q o BEGIN
q m SELECT current_setting('lock_timeout'), current_setting('search_path'), current_setting('default_transaction_read_only')
q o COMMIT
q m RESET ALL; SET lock_timeout = 2000
q o BEGIN
q m SELECT current_setting('statement_timeout'), current_setting('lock_timeout')
q o COMMIT
q o SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), current_setting('search_path')
q m SET TIME ZONE 'Asia/Tokyo'; SET statement_timeout = 1234; RESET statement_timeout; SET lock_timeout = 5; RESET lock_timeout; SET lock_timeout = 6
q o BEGIN
q m SELECT current_setting('TimeZone'), current_setting('statement_timeout'), current_setting('lock_timeout')
q o COMMIT
q m SELECT set_config('work_mem', '12MB', false)
q m SELECT set_config(name, 'view', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'
q m SELECT set_config('lock_timeout', '77', true), pg_catalog.set_config('x.y', 'z', false)
q o BEGIN
q m SELECT current_setting('work_mem'), current_setting('restrict_nonsystem_relation_kind'), current_setting('lock_timeout'), current_setting('x.y')
q o COMMIT
q o SELECT current_setting('work_mem'), current_setting('restrict_nonsystem_relation_kind'), coalesce(current_setting('x.y', true), '')
x m SET statement_timeout = '3s'
x m SET search_path TO "My Schema", public, Other
x m SET work_mem = 2048
x m SET SESSION DateStyle TO 'SQL', DMY
q o BEGIN
q m SELECT current_setting('statement_timeout'), current_setting('search_path'), current_setting('work_mem'), current_setting('DateStyle')
q o COMMIT
EOF
}
want=$(track_script | sed 's/^q o \(BEGIN\|COMMIT\)$//' | direct)
for mode in transaction statement; do
	start_mode $mode
	got=$(track_script | { [ $mode = statement ] && sed 's/^q o \(BEGIN\|COMMIT\)$//' || cat; } | through)
	[ $mode = transaction ] && got=$(grep -v '^o: \(BEGIN\|COMMIT\)$' <<<"$got")
	mb_is "$got" "$want" "$mode mode: plain session SET, RESET, RESET ALL and set_config(..., false) follow the client \
to other servers (also SETs sent with the extended protocol); SET in a rolled-back or failed transaction does not; \
nothing leaks to the other client"
done
start_mode transaction 2 track_session_set 0
got=$(track_script | through)
mb_is "$(lines_of "$got" m | sed -n 3p)" "0" "track_session_set = 0: a session SET lasts for its transaction only (as before)"

# SET ROLE cannot follow the client: a NOTICE says so, and the next transaction runs as the login role
start_mode transaction 1
out=$(mb_psql "$su" "$sp" "$MB_DB" -c "SET ROLE r_x" -c "SELECT current_user" 2>&1)
mb_is "$out" $'NOTICE:  SET ROLE lasts only until the end of the transaction in transaction pooling mode\npostgres' \
	"transaction mode: SET ROLE gets a NOTICE and lasts for its transaction"

# a read-only parameter a server reports is never set on the next server, even when listed in track_extra_parameters
start_mode transaction 2 track_extra_parameters "IntervalStyle, is_superuser"
out=$(printf '%s\n' "open a @C@" "open o @C@" "q a SET ROLE r_x" "q o BEGIN" "q a SELECT current_user" "q o COMMIT" \
	"q a SELECT current_user" | through)
mb_is "$(lines_of "$out" a)" $'connected\nSET\npostgres\npostgres' \
	"track_extra_parameters = is_superuser: the next transactions run (no SET of is_superuser, which PostgreSQL refuses)"

# 4. a role set where the scan cannot see it (a DO block) never breaks the next client of that server
for reset_query in "DISCARD ALL" ""; do
	start_mode transaction 1 server_reset_query "$reset_query"
	out=$(printf '%s\n' "open a @C@" 'q a DO $$BEGIN SET ROLE r_x; END$$; SELECT current_user' "close a" \
		"open b @C@" "q b SELECT current_user, current_setting('is_superuser')" | through)
	mb_is "$out" $'a: connected\na: DO\na: r_x\nb: connected\nb: postgres|on' \
		"server_reset_query '$reset_query': after a DO block's SET ROLE the next client logs in as the login role"
done

mb_test_done
