#!/usr/bin/env bash
# Query cancel through the pooler: the CancelRequest reaches the right server backend.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init cancel

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")

# an idle client on another server of the same pool must not be the one cancelled
mb_bg "$T_DIR/hold.out" "$PQTOOL" hold "$c" 30
hold_pid=$MB_BG_PID
mb_wait_line "$T_DIR/hold.out" '^connected' || mb_diag "second client did not connect: $(cat "$T_DIR/hold.out")"

out=$(pqt cancel "$c" 1 2>&1)
state=${out%% *}
elapsed=${out##* }
mb_is "$state" 57014 "SELECT pg_sleep(60) cancelled through the pooler: 57014 ($out)"
if awk -v e="$elapsed" 'BEGIN { exit !(e + 0 >= 0.9 && e + 0 < 5) }'; then
	mb_ok "cancelled after the 1 s delay, within 5 s ($elapsed s)"
else
	mb_not_ok "cancelled after the 1 s delay, within 5 s" "elapsed: $elapsed"
fi
if grep -q '^connected' "$T_DIR/hold.out" && ! grep -q closed "$T_DIR/hold.out" && mb_alive "$hold_pid"; then
	mb_ok "the other client's session is untouched"
else
	mb_not_ok "the other client's session is untouched" "$(cat "$T_DIR/hold.out")"
fi

# the cancelled client's server goes back to the pool in a usable state
out=$(pqt query "$c" "SELECT 'after cancel'" 2>&1)
mb_is "$out" "after cancel" "next client after a cancel is fine"

# a cancel request with a key nobody has is ignored (the connection is just closed)
out=$(mb_raw 00000010 04d2162e 00000001 00000002 2>&1)
mb_like "$out" 'CLOSED' "bogus cancel key: connection closed"
mb_check_healthy "bogus cancel key: next client fine"

mb_test_done
