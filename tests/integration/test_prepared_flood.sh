#!/usr/bin/env bash
# Statement floods do not stall the pooler or grow it without bound. One client sends 640k distinct names for
# a known text (about 13 MB, one Sync): with the cap lifted every name is kept and found in constant time,
# another client logs in and queries meanwhile; with max_client_prepared_statements the statement over the
# cap is refused with 53400 naming the key, and the pooler's RSS stays bounded. Rounds of 50 clients each
# sending a 1 MB Parse that never reaches a server (query_wait_timeout on a busy pool, an on_transaction_begin
# reject) leave nothing behind: RSS does not grow round after round. Takes about 40 s.
#
# In the small-buffers pass (MB_PASS=small: tcp_socket_buffer 4096, a sanitizer build) a 4 KB receive window
# moves about 100 KB/s over loopback, so the floods are smaller there (20k names, 100 KB Parses) and RSS is
# not bounded (a sanitizer's memory is not the product's); what each flood must get back is checked as usual.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prepared_flood

mb_tool prepared_tool PTOOL
pts() { timeout 60 "$PTOOL" script "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$MB_PID/status" 2>/dev/null; }
# rss_below NAME KB BEFORE AFTER: the growth is below KB (normal pass only)
rss_below() {
	if [ "${MB_PASS:-normal}" != normal ]; then
		mb_diag "$1: not checked in the ${MB_PASS} pass (VmRSS $3 -> $4 kB)"
	elif [ -n "$4" ] && [ $(($4 - $3)) -lt "$2" ]; then
		mb_ok "$1 ($(($4 - $3)) kB)"
	else
		mb_not_ok "$1" "VmRSS $3 -> ${4:-?} kB"
	fi
}
names=640000 big=1000000
if [ "${MB_PASS:-normal}" = small ]; then
	names=20000 big=100000
fi

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb mb_db
mb_pgdb mb_busy "pool_size=1"
mb_pgdb mb_reject
cat >"$T_DIR/reject.lua" <<'EOF'
-- every transaction of database mb_reject is refused before it takes a server
return {
  on_transaction_begin = function(client)
    if client.database == "mb_reject" then return { reject = "refused by the test policy" } end
  end,
}
EOF
mb_chown_pg "$T_DIR/reject.lua"
mb_set policy_file "$T_DIR/reject.lua"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 2
mb_set max_client_prepared_statements 0
mb_set query_wait_timeout 2
mb_set server_login_retry 1
mb_start_or_bail

c=$(mb_connstr "$su" "$sp" mb_db)
known='SELECT 1'
out=$(pts "$c" P warm "$known" - S W)
mb_is "$out" "1 Z:I" "the text is prepared once (known to the pool)"

# --- 640k names, no cap: kept and looked up in constant time while another client is served
rss0=$(rss)
mb_bg "$T_DIR/flood" env PREPARED_TOOL_TIMEOUT=100 "$PTOOL" flood "$c" f "$names" "$known"
flood_pid=$MB_BG_PID
sleep 0.5
t0=$(date +%s%N)
probe=$(pqt query "$c" "SELECT 'probe'" 2>&1)
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
mb_is "$probe" probe "another client logs in and queries during the flood"
if [ "$ms" -lt 5000 ]; then
	mb_ok "... promptly (${ms} ms, bound 5000 ms)"
else
	mb_not_ok "... promptly" "took ${ms} ms"
fi
mb_wait_exit "$flood_pid" 110 || mb_diag "the flood did not end"
rss1=$(rss)
out=$(tr '\n' ' ' <"$T_DIR/flood")
mb_like "$out" "^parsed $names errors 0 .*bind0 2 D:1 C:SELECT 1 Z:I" "every one of $names names is kept and works"
mb_diag "flood: $out; pooler VmRSS ${rss0} -> ${rss1} kB"
rss_below "$names names cost less than 256 MB" 262144 "$rss0" "$rss1"

# --- the cap: the statement over it is refused with 53400 naming the key, RSS stays bounded
mb_set max_client_prepared_statements 1000
mb_start_or_bail
out=$(pts "$c" P warm "$known" - S W)
rss0=$(rss)
out=$(PREPARED_TOOL_TIMEOUT=100 timeout 110 "$PTOOL" flood "$c" f "$names" "$known" 2>&1 | tr '\n' ' ')
rss1=$(rss)
mb_like "$out" '^parsed 1000 errors 1 first 53400:.*max_client_prepared_statements = 1000\).*bind0 2 D:1 C:SELECT 1 Z:I' \
	"over max_client_prepared_statements: 53400 naming the key, the rest skipped to Sync, the kept names work"
mb_diag "capped flood: $out; pooler VmRSS ${rss0} -> ${rss1} kB"
rss_below "a capped flood of $names names costs less than 32 MB" 32768 "$rss0" "$rss1"
mb_like "$(cat "$MB_LOG")" "max_client_prepared_statements \(1000\) reached" "the refusal is logged"
out=$(pts "$c" P a "$known" - P b "$known" - S W B b - E S W)
mb_is "$out" "1 1 Z:I 2 D:1 C:SELECT 1 Z:I" "a new client is not affected by another's cap"
out=$(pts "$c" Q BEGIN W P a "$known" - P b 'SELECT 2' - S W Q COMMIT W)
mb_is "$out" "C:BEGIN Z:T 1 1 Z:T C:COMMIT Z:I" "names parsed inside a transaction count too (below the cap)"

# --- Parses that never reach a server leave nothing behind
mb_bg "$T_DIR/holder" "$PTOOL" script "$(mb_connstr "$su" "$sp" mb_busy)" Q BEGIN W MARK held SLEEP 60000 Q COMMIT
holder=$MB_BG_PID
mb_wait_line "$T_DIR/holder" '^held' 10 || mb_diag "the holder did not start its transaction"
# round DB TAG: 50 clients at once, each with a distinct $big-byte named Parse; they must all be turned away
round() {
	local db=$1 tag=$2 k pids=() failed=0 cn
	cn=$(mb_connstr "$su" "$sp" "$db")
	for ((k = 0; k < 50; k++)); do
		"$PTOOL" script "$cn" P "big$k" "@pad:$big:SELECT '$tag $k'" - S W >"$T_DIR/big.$k" 2>&1 &
		pids+=($!)
	done
	for k in "${pids[@]}"; do
		mb_wait_exit "$k" 60 || kill "$k" 2>/dev/null
	done
	for ((k = 0; k < 50; k++)); do
		if ! grep -Eq '^E:|query_wait_timeout' "$T_DIR/big.$k"; then
			failed=$((failed + 1))
			echo "# $db client $k got: $(head -c 300 "$T_DIR/big.$k" | tr '\n' ' ')" >&2
		fi
	done
	echo "$failed"
}
declare -a grow
for db in mb_busy mb_reject; do
	r=() lost=0
	for n in 1 2 3 4; do
		f=$(round "$db" "$db$n")
		lost=$((lost + f))
		r+=("$(rss)")
	done
	mb_is "$lost" 0 "$db: each of 4 x 50 clients whose Parse never reaches a server gets an error"
	mb_diag "$db: pooler VmRSS after each round of 50 x $big-byte Parses: ${r[*]} kB"
	# a leak keeps 50 MB per round; allow for allocator slack, not for one more round
	rss_below "$db: Parses that never reach a server leave nothing behind (rounds 2 -> 4)" 40960 "${r[1]}" "${r[3]}"
done
mb_like "$(tr '\n' ' ' <"$T_DIR/big.0")" '^E:.*refused by the test policy' "a turned-away client got the policy's error"
kill "$holder" 2>/dev/null

mb_check_healthy
mb_test_done
