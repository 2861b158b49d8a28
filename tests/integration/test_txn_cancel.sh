#!/usr/bin/env bash
# Transaction pooling and cancels: a cancel reaches only the query it was meant for. A late cancel (the query
# already finished, the server already serving another client) must never cancel someone else's query.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_cancel

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB" "pool_size=1"
mb_pgdb c_sess "pool_mode=session" "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")

# ---- an ordinary cancel in transaction mode: 57014, and both clients go on
out=$(tt <<EOT 2>&1
open a $c
open b $c
send a SELECT pg_sleep(10)
sleep 0.3
cancel a
wait a
elapsed a
q a SELECT 'a after'
q b SELECT 'b after'
EOT
)
mb_is "$(lines_of "$out" a | sed -n 3p)" "ERROR 57014 canceling statement due to user request" "a running query is cancelled"
el=$(lines_of "$out" a | sed -n 's/^elapsed //p')
if awk -v e="${el:-99}" 'BEGIN { exit !(e >= 0.25 && e < 3) }'; then
	mb_ok "cancelled after 0.3 s, within 3 s ($el s)"
else
	mb_not_ok "cancelled after 0.3 s, within 3 s" "$out"
fi
mb_is "$(lines_of "$out" a | tail -n 1)|$(lines_of "$out" b | tail -n 1)" "a after|b after" \
	"the cancelled client and the other client go on"

# ---- late cancel: a's query is over and its server serves b; a's cancel must not touch b's query
out=$(tt <<EOT 2>&1
open a $c
open b $c
q a SELECT 'a done'
send b SELECT 'b done' FROM pg_sleep(0.8)
sleep 0.2
cancel a
wait b
q a SELECT 'a again'
EOT
)
mb_is "$(lines_of "$out" b | tail -n 1)" "b done" "a cancel sent after the query finished does not cancel another client's query"
mb_is "$(lines_of "$out" a | tail -n 1)" "a again" "the client that sent the late cancel goes on"

# ---- idle in a transaction: a cancel has no query to cancel, and must not hit the client's next statement
script=$({
	echo "open a $c"
	for i in $(seq 1 15); do
		echo "q a BEGIN"
		echo "q a SELECT 1"
		echo "cancel a"
		echo "q a SELECT 'next $i' FROM pg_sleep(0.02)"
		echo "q a COMMIT"
	done
})
out=$(tt <<<"$script" 2>&1)
n_ok=$(lines_of "$out" a | grep -c '^next ')
mb_is "$n_ok" 15 "a cancel while idle in a transaction never cancels the client's next statement (15 tries)"
[ "$n_ok" != 15 ] && mb_diag "$(grep -v -e 'cancel sent' -e BEGIN -e COMMIT -e '^a: 1$' <<<"$out" | head -n 10)"

# ---- session mode: the client keeps its server between statements; a cancel with nothing running is dropped
script=$({
	echo "open s $(mb_connstr "$su" "$sp" c_sess)"
	for i in $(seq 1 15); do
		echo "q s SELECT 1"
		echo "cancel s"
		echo "q s SELECT 'next $i' FROM pg_sleep(0.02)"
	done
})
out=$(tt <<<"$script" 2>&1)
n_ok=$(lines_of "$out" s | grep -c '^next ')
mb_is "$n_ok" 15 "session mode: a cancel between statements never cancels the client's next statement (15 tries)"

# ---- the race: a's cancel is sent while its query is ending and b is queued for the same (only) server.
# Whatever the timing, b's query must never be cancelled.
script=$({
	echo "open a $c"
	echo "open b $c"
	for i in $(seq 0 39); do
		d=$(printf '0.%03d' $((30 + (i * 37) % 50)))
		echo "send a SELECT 'a' FROM pg_sleep(0.05)"
		echo "sleep 0.01"
		echo "send b SELECT 'b ok' FROM pg_sleep(0.1)"
		echo "sleep $d"
		echo "cancel a"
		echo "wait a"
		echo "wait b"
	done
	echo "q a SELECT 'a end'"
	echo "q b SELECT 'b end'"
})
out=$(tt <<<"$script" 2>&1)
b_ok=$(lines_of "$out" b | grep -c '^b ok$')
b_bad=$(lines_of "$out" b | grep -c 'ERROR')
a_cancelled=$(lines_of "$out" a | grep -c '57014')
mb_is "$b_ok/$b_bad" "40/0" "b's query never cancelled by a's cancel racing with the end of a's query (40 tries)"
mb_diag "of a's 40 queries $a_cancelled were cancelled (the rest had ended before the cancel)"
mb_is "$(lines_of "$out" a | tail -n 1)|$(lines_of "$out" b | tail -n 1)" "a end|b end" "both clients still work"
if [ "$b_ok/$b_bad" != "40/0" ]; then
	mb_diag "$(grep -E '^b: ERROR' <<<"$out" | sort | uniq -c)"
fi

mb_check_healthy "a new client is served normally"
mb_test_done
