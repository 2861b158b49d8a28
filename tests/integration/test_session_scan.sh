#!/usr/bin/env bash
# The session scan cannot be walked around: a DO block, a U&"" identifier, quoted words that look like
# ON COMMIT DROP, EXPLAIN ANALYZE of a CREATE TEMP, or SET local.x change the server's session where the keyword scan
# did not see it, so the server is reset before the next client gets it. Transaction mode, one server: client a leaves the state behind and stays
# connected, client b on the same server must not see it.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init session_scan

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
pg_super_psql -d postgres >/dev/null <<-EOF
	DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mb_scan_other') THEN
			CREATE ROLE mb_scan_other NOLOGIN;
		END IF;
	END \$\$;
	GRANT mb_scan_other TO $su;
EOF

mb_pgdb mb_scan "pool_size=1"
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" mb_scan)

pid=$(pqt backend-pid "$c" 2>&1)
mb_like "$pid" '^[0-9]+$' "the pool's one server has a backend pid"

# left NAME CHECK-SQL EXPECTED STATEMENT: client a runs STATEMENT and stays connected; client b, on the same
# server (same backend pid), runs CHECK-SQL and must read EXPECTED.
left() {
	local name=$1 check=$2 expected=$3 stmt=$4 out
	out=$(printf '%s\n' "open a $c" "open b $c" "q a $stmt" "q b SELECT pg_backend_pid()" "q b $check" \
		"close a" "q b SELECT 'next'" | tt 2>&1)
	if grep -q ERROR <<<"$out"; then
		mb_diag "$name: $(grep ERROR <<<"$out")"
	fi
	mb_is "$(lines_of "$out" b | grep -v connected | tr '\n' ';')" "$pid;$expected;next;" \
		"$name: the next client on the same server sees nothing of it"
}

tenant="SELECT coalesce(current_setting('app.tenant', true), '') = ''"
locks="SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"

# DO blocks: anything at all inside
left "DO: SET search_path" "SHOW search_path" '"$user", public' 'DO $$BEGIN SET search_path = evil; END$$'
left "DO: set_config" "$tenant" t "DO \$\$BEGIN PERFORM set_config('app.tenant', 'A', false); END\$\$"
left "DO: CREATE TEMP TABLE" "SELECT to_regclass('pg_temp.scan_do_tmp') IS NULL" t \
	'DO $$BEGIN CREATE TEMP TABLE scan_do_tmp (a int); END$$'
left "DO: LISTEN" "SELECT count(*) FROM pg_listening_channels()" 0 'DO $$BEGIN LISTEN scan_chan; END$$'
left "DO: advisory lock" "$locks" 0 'DO $$BEGIN PERFORM pg_advisory_lock(4243); END$$'
left "DO: SET ROLE" "SELECT current_user" "$su" 'DO $$BEGIN SET ROLE mb_scan_other; END$$'
left "DO: EXECUTE 'PREPARE ...'" "SELECT count(*) FROM pg_prepared_statements" 0 \
	"DO \$b\$BEGIN EXECUTE 'PREPARE scan_p AS SELECT 1'; END\$b\$"

# U&"" identifiers: any name at all through the escapes
left 'U&"set_config"' "$tenant" t "SELECT U&\"\\0073et_config\"('app.tenant', 'A', false)"
left 'U&"pg_advisory_lock"' "$locks" 0 'SELECT U&"pg\005fadvisory\005flock"(4244)'
left 'U&"pg_temp".t' "SELECT to_regclass('pg_temp.scan_u') IS NULL" t 'CREATE TABLE U&"pg\005ftemp".scan_u (a int)'

# quoted words are names, not ON COMMIT DROP
left 'TEMP VIEW v("on","commit","drop")' "SELECT to_regclass('pg_temp.scan_v') IS NULL" t \
	'CREATE TEMP VIEW scan_v("on","commit","drop") AS SELECT 1, 2, 3'
left 'TEMP TABLE t("on", "commit", "drop") AS' "SELECT to_regclass('pg_temp.scan_t') IS NULL" t \
	'CREATE TEMP TABLE scan_t ("on", "commit", "drop") AS SELECT 1, 2, 3'

# EXPLAIN ANALYZE runs its statement
left "EXPLAIN ANALYZE CREATE TEMP TABLE" "SELECT to_regclass('pg_temp.scan_e') IS NULL" t \
	'EXPLAIN ANALYZE CREATE TEMP TABLE scan_e AS SELECT 1'
left "EXPLAIN ANALYZE SELECT ... INTO TEMP" "SELECT to_regclass('pg_temp.scan_ei') IS NULL" t \
	'EXPLAIN (ANALYZE, COSTS OFF) SELECT 1 AS x INTO TEMP scan_ei'

# a parameter named local.x, transaction.x or constraints.x is set for the session, not for the transaction
left "SET local.x" "SELECT coalesce(current_setting('local.x', true), '') = ''" t 'SET local.x = 1'
left "SET transaction.x" "SELECT coalesce(current_setting('transaction.x', true), '') = ''" t 'SET transaction.x TO 2'
left "SET constraints.x" "SELECT coalesce(current_setting('constraints.x', true), '') = ''" t 'SET constraints.x = 3'

# the advisory locks are really gone: another session takes them
mb_is "$(pg_super_psql -d "$MB_DB" -c "SELECT pg_try_advisory_lock(4243) AND pg_try_advisory_lock(4244)")" t \
	"the advisory locks are really released (another session takes both)"

mb_check_healthy
mb_test_done
