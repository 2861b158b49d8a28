#!/usr/bin/env bash
# Errors reach the client as ErrorResponse with the right SQLSTATE, and the pooler keeps serving.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init errors

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
sqlstate() { awk '$1 == "ERROR" {print $2; exit}' <<<"$1"; }

dead_port=$(mb_free_port)
mb_pgdb "$MB_DB"
mb_db deadend "host=127.0.0.1 port=$dead_port dbname=$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set query_wait_timeout 2
mb_start_or_bail

# --- unknown database
out=$(pqt connect "$(mb_connstr "$su" "$sp" no_such_db)" 2>&1)
mb_is "$(sqlstate "$out")" 08P01 "unknown database: 08P01, as in PgBouncer ($out)"
mb_check_healthy "unknown database: next client fine"

# --- wrong password
out=$(pqt connect "$(mb_connstr "$su" not-the-password "$MB_DB")" 2>&1)
mb_is "$(sqlstate "$out")" 28P01 "wrong password: 28P01 (invalid_password) ($out)"
mb_check_healthy "wrong password: next client fine"

# --- server unreachable (db entry pointing at a closed port): the client waits for the login retries (as in
# PgBouncer) until query_wait_timeout, whose message names the last login error
start=$SECONDS
out=$(pqt query "$(mb_connstr "$su" "$sp" deadend)" "SELECT 1" 2>&1)
mb_is "$(sqlstate "$out")" 08P01 "server unreachable: 08P01 ($out)"
mb_like "$out" 'query_wait_timeout \(last server login failed: connect failed' "server unreachable: the reason is named"
mb_like "$((SECONDS - start))" '^[0-9]$' "server unreachable: error within 10 s"
mb_check_healthy "server unreachable: next client fine"

# --- malformed startup packets
out=$(mb_raw "$(printf '%08x' 15)00030000$(mb_hex user)00$(mb_hex ab)" 2>&1)
mb_like "$out" '^ERROR 08P01 ' "startup packet with unterminated parameters: 08P01 ($(head -n1 <<<"$out"))"
mb_check_healthy "unterminated parameters: next client fine"
out=$(mb_raw 00000004 2>&1)
mb_like "$out" '^ERROR 08P01 ' "startup packet with length 4: 08P01 ($(head -n1 <<<"$out"))"
out=$(mb_raw "$(printf '%08x' 8)00030000" 2>&1)
mb_like "$out" '^ERROR (08P01|28000) ' "startup packet without a user: rejected ($(head -n1 <<<"$out"))"
mb_check_healthy "malformed startup: next client fine"

# --- oversized startup packet (PostgreSQL's limit is 10000 bytes)
out=$(mb_raw "$(printf '%08x' 20000)00030000" "$(mb_hex user)00$(mb_hex "$su")00" random:2000 2>&1)
mb_like "$out" '^ERROR 08P01 ' "oversized startup packet: 08P01 ($(head -n1 <<<"$out"))"
mb_like "$out" 'CLOSED$' "oversized startup packet: connection closed"
mb_check_healthy "oversized startup: next client fine"

# --- random garbage
for i in 1 2 3; do
	mb_raw random:4096 >/dev/null 2>&1
done
mb_raw "$(mb_hex 'GET / HTTP/1.1')0d0a0d0a" >/dev/null 2>&1
if mb_alive "$MB_PID"; then mb_ok "garbage: pooler still running"; else mb_not_ok "garbage: pooler still running"; fi
mb_check_healthy "garbage: next client fine"

# --- too many clients: max_client_conn = 2, the third gets 53300
mb_set max_client_conn 2
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
mb_bg "$T_DIR/hold1.out" "$PQTOOL" hold "$c" 30
h1=$MB_BG_PID
mb_bg "$T_DIR/hold2.out" "$PQTOOL" hold "$c" 30
h2=$MB_BG_PID
if mb_wait_line "$T_DIR/hold1.out" '^connected' && mb_wait_line "$T_DIR/hold2.out" '^connected'; then
	mb_ok "max_client_conn=2: two clients connected"
else
	mb_not_ok "max_client_conn=2: two clients connected" "$(cat "$T_DIR/hold1.out" "$T_DIR/hold2.out")"
fi
out=$(pqt connect "$c" 2>&1)
mb_is "$(sqlstate "$out")" 53300 "max_client_conn=2: third client gets 53300 ($out)"
mb_kill_wait "$h1" TERM
mb_kill_wait "$h2" TERM
sleep 0.5
mb_check_healthy "too many clients: a client after the others left is fine"

mb_test_done
