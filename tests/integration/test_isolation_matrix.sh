#!/usr/bin/env bash
# The isolation matrix: for each kind of session state, each pool mode, with and without the transaction guard
# (check_set_config = true, acting on transaction and statement mode; loaded but idle in session mode), client a
# changes the state and client b, on the same server connection (pool_size 1, the same backend pid), looks for
# it. Every cell is either "does not leak" or a gap the README names, and then the documented behaviour is what
# is checked (the guard's refusal with its SQLSTATE, or the state a function left behind, which a last column
# with server_reset_query_always = 1 removes). Leaks the README does not name are shown, not checked. The
# matrix is printed as diagnostics. One pooler per column, one txn_tool script per column.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init isolation_matrix

mb_tool txn_tool TXN_TOOL

su=postgres sp=$MB_PG_PASSWORD       # a superuser: SET SESSION AUTHORIZATION and LOAD need one
nu=$MB_SCRAM_USER np=$MB_SCRAM_PASS  # a plain user: a role change that leaves is_superuser as it was
pg_super_psql -d "$MB_DB" >/dev/null <<EOF || { mb_not_ok "create the roles, functions and sequence"; mb_test_done; }
DO \$\$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mb_iso_role') THEN CREATE ROLE mb_iso_role; END IF;
END \$\$;
GRANT mb_iso_role TO $nu;
CREATE SEQUENCE IF NOT EXISTS iso_seq; GRANT USAGE ON SEQUENCE iso_seq TO PUBLIC;
CREATE TABLE IF NOT EXISTS iso_serial (id serial, v text); GRANT ALL ON iso_serial, iso_serial_id_seq TO PUBLIC;
CREATE OR REPLACE PROCEDURE iso_proc_role() LANGUAGE plpgsql AS \$\$BEGIN SET ROLE mb_iso_role; END\$\$;
CREATE OR REPLACE FUNCTION iso_fn_set() RETURNS void LANGUAGE plpgsql AS \$\$BEGIN SET work_mem = '17MB'; END\$\$;
CREATE OR REPLACE FUNCTION iso_fn_set_config() RETURNS void LANGUAGE plpgsql
	AS \$\$BEGIN PERFORM set_config('iso.fn', 'left', false); END\$\$;
CREATE OR REPLACE FUNCTION iso_fn_datestyle() RETURNS void LANGUAGE plpgsql
	AS \$\$BEGIN SET DateStyle = 'German'; END\$\$;
CREATE OR REPLACE FUNCTION iso_fn_role() RETURNS void LANGUAGE plpgsql AS \$\$BEGIN SET ROLE mb_iso_role; END\$\$;
CREATE OR REPLACE FUNCTION iso_fn_temp() RETURNS void LANGUAGE plpgsql
	AS \$\$BEGIN CREATE TEMP TABLE iso_fn_t (x int); END\$\$;
CREATE OR REPLACE FUNCTION iso_fn_listen() RETURNS void LANGUAGE plpgsql AS \$\$BEGIN LISTEN iso_fn_ch; END\$\$;
CREATE OR REPLACE FUNCTION iso_fn_lock() RETURNS void LANGUAGE plpgsql
	AS \$\$BEGIN PERFORM pg_advisory_lock(4250); END\$\$;
CREATE OR REPLACE FUNCTION iso_fn_prepare() RETURNS void LANGUAGE plpgsql
	AS \$\$BEGIN EXECUTE 'PREPARE iso_fn_p AS SELECT 1'; END\$\$;
EOF

# ---------------------------------------------------------------- the rows
# row ID "a's commands" "b's check" "expectations" [USER] [a's extra connection options]
# a's commands are txn_tool lines for client a (newline-separated); b's check is one txn_tool line for client b;
# USER is su (default) or nu. Expectations are space-separated COLUMN=OUTCOME; a cell not named is "clean" (b
# sees what a fresh session sees). OUTCOME is refused:SQLSTATE (a's statement is refused; b sees nothing), closed
# (a's server is closed when released: b sees a fresh session on another server), leak
# (b sees a's state, a gap the README names) or bug (b sees a's state and the README does not say so: shown,
# not checked). COLUMN is a column (S Sg T Tg St Stg Ta), g (Tg and Stg: where the guard acts) or tx (T Tg St
# Stg: transaction and statement mode without server_reset_query_always).
ROWS=()
declare -A R_A R_B R_EXP R_USER R_OPTS
row() {
	ROWS+=("$1")
	R_A[$1]=$2 R_B[$1]=$3 R_EXP[$1]=${4:-} R_USER[$1]=${5:-su} R_OPTS[$1]=${6:-}
}
temp_count() { echo "q b SELECT count(*) FROM pg_class WHERE relname = '$1' AND relnamespace = pg_my_temp_schema()"; }
own_locks="q b SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
prepared() { echo "q b SELECT count(*) FROM pg_prepared_statements WHERE name = '$1'"; }
G=refused:0A000

row set "q a SET work_mem = '11MB'" "q b SHOW work_mem"
row set_startup_param "q a SET lock_timeout = 2222" \
	"q b SELECT concat_ws(',', current_setting('lock_timeout'), current_setting('statement_timeout'), \
		current_setting('application_name'))" \
	"" su "options='-c lock_timeout=1111 -c statement_timeout=3333' application_name=iso_a"
row set_reported "q a SET application_name = 'iso_a'; SET DateStyle = 'German'; SET TimeZone = 'Asia/Tokyo'" \
	"q b SELECT concat_ws(',', current_setting('application_name'), current_setting('DateStyle'), \
		current_setting('TimeZone'))"
row set_characteristics "q a SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY" \
	"q b SHOW default_transaction_read_only"
row set_parse "x a SET work_mem = '12MB'" "q b SHOW work_mem"
row set_role "q a SET ROLE mb_iso_role" "q b SELECT current_user" "g=$G"
row set_role_plain_user "q a SET ROLE mb_iso_role" "q b SELECT current_user" "g=$G" nu
row set_session_authorization "q a SET SESSION AUTHORIZATION mb_iso_role" "q b SELECT session_user" "g=$G"
row set_config "q a SELECT set_config('work_mem', '13MB', false)" "q b SHOW work_mem"
row set_config_role "q a SELECT set_config('role', 'mb_iso_role', false)" "q b SELECT current_user" "" nu
row set_config_custom "q a SELECT set_config('iso.tenant', 'A', false)" \
	"q b SELECT coalesce(current_setting('iso.tenant', true), '')"
row set_config_computed "q a SELECT set_config(n, '14MB', false) FROM (VALUES ('work_mem')) v (n)" "q b SHOW work_mem" \
	"g=$G"
row set_config_parse "x a SELECT set_config('work_mem', '15MB', false)" "q b SHOW work_mem"
row do_set_config "q a DO \$\$BEGIN PERFORM set_config('work_mem', '16MB', false); END\$\$" "q b SHOW work_mem"
row temp_table "q a CREATE TEMP TABLE iso_t (x int)" "$(temp_count iso_t)" "g=$G"
row temp_pg_temp "q a CREATE TABLE pg_temp.iso_t2 (x int)" "$(temp_count iso_t2)" "g=$G"
row select_into_temp "q a SELECT 1 AS x INTO TEMP iso_t3" "$(temp_count iso_t3)" "g=$G"
row prepare_sql "q a PREPARE iso_p AS SELECT 1" "$(prepared iso_p)" "g=$G"
row prepare_sql_in_transaction "q a BEGIN; PREPARE iso_p2 AS SELECT 1; EXECUTE iso_p2; COMMIT" "$(prepared iso_p2)"
row prepare_protocol $'prep a iso_s SELECT 42\nxp a iso_s' "xp b iso_s"
row advisory_lock "q a SELECT pg_advisory_lock(4242)" "$own_locks" "g=$G"
row advisory_lock_shared "q a SELECT pg_try_advisory_lock_shared(4243)" "$own_locks" "g=$G"
row advisory_lock_in_transaction "q a BEGIN; SELECT pg_advisory_lock(4244); COMMIT" "$own_locks"
row listen "q a LISTEN iso_ch" "q b SELECT count(*) FROM pg_listening_channels()" "g=$G"
row with_hold_cursor "q a DECLARE iso_c CURSOR WITH HOLD FOR SELECT 1" "q b SELECT count(*) FROM pg_cursors" "g=$G"
row unicode_identifier "q a SELECT U&\"set_config\"('work_mem', '18MB', false)" "q b SHOW work_mem"
# functions: the scan does not see what they do (README, Dirty servers): reported parameters and a changed
# is_superuser are caught, anything else stays for the next client unless server_reset_query_always = 1
row function_set "q a SELECT iso_fn_set()" "q b SHOW work_mem" "tx=leak"
row function_set_config "q a SELECT iso_fn_set_config()" "q b SELECT coalesce(current_setting('iso.fn', true), '')" \
	"tx=leak"
row function_set_reported "q a SELECT iso_fn_datestyle()" "q b SHOW DateStyle"
row function_set_role_superuser "q a SELECT iso_fn_role()" "q b SELECT current_user"
row function_temp_table "q a SELECT iso_fn_temp()" "$(temp_count iso_fn_t)" "tx=leak"
row function_listen "q a SELECT iso_fn_listen()" "q b SELECT count(*) FROM pg_listening_channels()" "tx=leak"
row function_advisory_lock "q a SELECT iso_fn_lock()" "$own_locks" "tx=leak"
row function_prepare "q a SELECT iso_fn_prepare()" "$(prepared iso_fn_p)" "tx=leak"
# a role change PostgreSQL does not report (a SET ROLE inside a function or procedure between two roles that
# are both superusers or both not), and the sequence values nextval() leaves for currval()/lastval(): the README
# names both (Dirty servers)
row function_set_role_plain_user "q a SELECT iso_fn_role()" "q b SELECT current_user" "tx=leak" nu
row procedure_set_role_plain_user "q a CALL iso_proc_role()" "q b SELECT current_user" "tx=leak" nu
row sequence_currval "q a SELECT nextval('iso_seq')" "q b SELECT currval('iso_seq')" "tx=leak"
row serial_insert_lastval "q a INSERT INTO iso_serial (v) VALUES ('a')" "q b SELECT lastval()" "tx=leak"
# no reset unloads a library: a server that ran LOAD is closed when released, in every mode
row load "q a LOAD 'auto_explain'" \
	"q b SELECT coalesce(current_setting('auto_explain.log_min_duration', true), 'none')" \
	"g=$G S=closed Sg=closed T=closed St=closed Ta=closed"

COLS=(S Sg T Tg St Stg Ta)
declare -A COL_MODE=([S]=session [Sg]=session [T]=transaction [Tg]=transaction [St]=statement [Stg]=statement
	[Ta]=transaction)
declare -A COL_TITLE=([S]=session [Sg]="session+guard" [T]=transaction [Tg]="transaction+guard" [St]=statement
	[Stg]="statement+guard" [Ta]="transaction, reset_always")

expected() {
	local id=$1 col=$2 spec kv key
	spec=" ${R_EXP[$id]} "
	for key in "$col" $(case $col in Tg | Stg) echo g tx ;; T | St) echo tx ;; esac); do
		for kv in $spec; do
			if [ "${kv%%=*}" = "$key" ]; then
				echo "${kv#*=}"
				return
			fi
		done
	done
	echo clean
}

# ---------------------------------------------------------------- what a fresh session sees

declare -A BASE
# split_rows TEXT: the transcript of a script whose rows start with "echo @row ID", into OUT_OF[ID]
declare -A OUT_OF
split_rows() {
	local line id=
	OUT_OF=()
	while IFS= read -r line; do
		if [[ $line == "@row "* ]]; then
			id=${line#@row }
			OUT_OF[$id]=
		elif [ -n "$id" ]; then
			OUT_OF[$id]+="$line"$'\n'
		fi
	done <<<"$1"
}
# client_lines TEXT NAME: NAME's lines of TEXT without the "NAME: " prefix, the login and the pid
client_lines() {
	local line out=
	while IFS= read -r line; do
		[[ $line == "$2: "* ]] || continue
		line=${line#"$2: "}
		[[ $line == connected || $line == "pid|"* ]] && continue
		out+="$line"$'\n'
	done <<<"$1"
	printf '%s' "${out%$'\n'}"
}
pid_of() { [[ $1 =~ (^|$'\n')$2:\ pid\|([0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }

# ---------------------------------------------------------------- what a fresh session sees

direct=$(MB_PORT=$MB_PG_PORT mb_connstr "$su" "$sp" "$MB_DB")
direct_n=$(MB_PORT=$MB_PG_PORT mb_connstr "$nu" "$np" "$MB_DB")
out=$(for id in "${ROWS[@]}"; do
	dc=$direct
	[ "${R_USER[$id]}" = nu ] && dc=$direct_n
	printf '%s\n' "echo @row $id" "open b $dc" "${R_B[$id]}" "close b"
done | tt 2>&1)
split_rows "$out"
for id in "${ROWS[@]}"; do
	BASE[$id]=$(client_lines "${OUT_OF[$id]:-}" b)
done

# ---------------------------------------------------------------- one pooler per column

PDIR=$T_DIR/policy.d
mkdir -p "$PDIR"
cat >"$PDIR/30-guard.lua" <<'EOF'
return require("policies.transaction_guard") {
  check_set_config = true,
  pool_modes = { "transaction", "statement" },
}
EOF
mb_chown_pg "$PDIR"

start_column() {
	local col=$1
	mb_reset
	mb_pgdb mb_iso "pool_size=1"
	mb_user "$su" "$sp"
	mb_user "$nu" "$np"
	mb_set pool_mode "${COL_MODE[$col]}"
	case $col in *g) mb_set policy_dir "$PDIR" ;; esac
	[ "$col" = Ta ] && mb_set server_reset_query_always 1
	mb_start_or_bail
}

# The script of one column: per row, a changes the state, b looks on the same server, z cleans up after a gap.
column_script() {
	local col=$1 id c session=
	[ "${COL_MODE[$col]}" = session ] && session=1
	for id in "${ROWS[@]}"; do
		if [ "${R_USER[$id]}" = nu ]; then
			c=$(mb_connstr "$nu" "$np" mb_iso)
		else
			c=$(mb_connstr "$su" "$sp" mb_iso)
		fi
		echo "echo @row $id"
		echo "open a $c ${R_OPTS[$id]}"
		echo "q a SELECT 'pid', pg_backend_pid()"
		echo "${R_A[$id]}"
		# session mode: b gets the server once a has gone (after server_reset_query)
		[ -n "$session" ] && echo "close a"
		echo "open b $c"
		echo "q b SELECT 'pid', pg_backend_pid()"
		echo "${R_B[$id]}"
		echo "close b"
		[ -n "$session" ] || echo "close a"
		# what a gap left behind goes before the next row
		case $(expected "$id" "$col") in
		leak | bug) printf '%s\n' "open z $c" "q z DISCARD ALL" "close z" ;;
		esac
	done
}

declare -A CELL BUG_COLS BUG_SEEN
check_cell() {
	local col=$1 id=$2 out=${OUT_OF[$2]:-} a_out b_out a_pid b_pid got state='' want
	a_out=$(client_lines "$out" a)
	b_out=$(client_lines "$out" b)
	a_pid=$(pid_of "$out" a)
	b_pid=$(pid_of "$out" b)
	[[ $a_out =~ ERROR\ ([0-9A-Z]{5})\  ]] && state=${BASH_REMATCH[1]}
	if [ -n "$a_pid" ] && [ -n "$b_pid" ] && [ "$a_pid" != "$b_pid" ] && [ -z "$state" ] &&
		[ "$b_out" = "${BASE[$id]}" ] && [ "$(expected "$id" "$col")" = closed ]; then
		got=closed	# a's server was closed when released: b is clean on a new one
	elif [ -z "$a_pid" ] || [ "$a_pid" != "$b_pid" ]; then
		got="another server (a: ${a_pid:-none}, b: ${b_pid:-none})"
	elif [ "$b_out" != "${BASE[$id]}" ]; then
		got=leak
	elif [ -n "$state" ]; then
		got=refused:$state
	else
		got=clean
	fi
	want=$(expected "$id" "$col")
	case $got in
	clean) CELL[$col,$id]=ok ;;
	closed) CELL[$col,$id]="ok (closed)" ;;
	leak) CELL[$col,$id]="leaks (README)" ;;
	refused:*) CELL[$col,$id]="refused ${got#refused:}" ;;
	*) CELL[$col,$id]="other server" ;;
	esac
	if [ "$want" = bug ]; then
		if [ "$got" = leak ]; then
			CELL[$col,$id]="LEAKS (bug)"
		else
			CELL[$col,$id]="${CELL[$col,$id]} ?"
		fi
		BUG_COLS[$id]+=" $col"
		BUG_SEEN[$id]=${b_out//$'\n'/; }
	elif [ "$got" = "$want" ]; then
		mb_ok "${COL_TITLE[$col]}: $id: $want"
	else
		CELL[$col,$id]="${CELL[$col,$id]} !"
		mb_not_ok "${COL_TITLE[$col]}: $id: $want" "got: $got" "a: ${a_out//$'\n'/; }" "b: ${b_out//$'\n'/; }" \
			"a fresh session: ${BASE[$id]}"
	fi
}

for col in "${COLS[@]}"; do
	start_column "$col"
	column_script "$col" >"$T_DIR/$col.script"
	split_rows "$(tt <"$T_DIR/$col.script" 2>&1)"
	mb_stop
	for id in "${ROWS[@]}"; do
		check_cell "$col" "$id"
	done
done

# ---------------------------------------------------------------- the matrix
{
	printf '%-30s' "state \\ pool mode"
	for col in "${COLS[@]}"; do printf ' | %-14s' "$col"; done
	echo
	for id in "${ROWS[@]}"; do
		printf '%-30s' "$id"
		for col in "${COLS[@]}"; do printf ' | %-14s' "${CELL[$col,$id]:-}"; done
		echo
	done
	for col in "${COLS[@]}"; do echo "$col: ${COL_TITLE[$col]}"; done
	echo "ok: b, on the same server, sees what a fresh session sees; refused S: the guard refuses a's statement"
	echo "with SQLSTATE S; leaks (README): b sees a's state, a gap the README names (functions; server_reset_query_always"
	echo "= 1 removes it); LEAKS (bug): b sees a's state and the README does not say so (not checked);"
	echo "?: such a cell no longer leaks; !: not as expected (a failed check)"
	for id in "${ROWS[@]}"; do
		[ -n "${BUG_COLS[$id]:-}" ] || continue
		echo "not in the README: $id (${BUG_COLS[$id]# }): b sees '${BUG_SEEN[$id]}', a fresh session '${BASE[$id]}'"
	done
} >"$T_DIR/matrix.txt"
mb_diag "$(cat "$T_DIR/matrix.txt")"

mb_test_done
