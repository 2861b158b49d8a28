#!/usr/bin/env bash
# Flow control: a client waiting with a full buffer is served as soon as the server is free; clients that
# never read, SSLRequest and Sync floods, long pipelines and backends stopped mid-message neither stall the
# pooler nor grow its memory (RSS measured while the flooding client is still connected).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init flow_control
mb_tool flow_tool FLOW_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
ft() { timeout 90 "$FLOW_TOOL" "$@"; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$MB_PID/status" 2>/dev/null; }

start_pool() {	# MODE POOL_SIZE
	mb_reset
	mb_pgdb "$MB_DB"
	mb_user "$su" "$sp"
	mb_set auth_type scram-sha-256
	mb_set pool_mode "$1"
	mb_set default_pool_size "$2"
	mb_set max_client_conn 200
	mb_start_or_bail
	c=$(mb_connstr "$su" "$sp" "$MB_DB")
}

# RSS growth bound for one flooding connection, in kB: its buffers are a few pkt_buf, and the requests in
# flight (what the kernel's socket buffers between client, pooler and server hold: up to several MB of small
# queries) each keep a small entry until answered. Without flow control a flood grows the process by about
# 20 MB a second, for as long as it lasts.
RSS_SLACK_KB=16384
# rss_bounded NAME BEFORE: the growth since BEFORE stays below RSS_SLACK_KB (normal pass only)
rss_bounded() {
	local after
	after=$(rss)
	if mb_rss_checks; then
		mb_lt "$((after - $2))" "$RSS_SLACK_KB" "$1: RSS grew by $((after - $2)) kB (before $2 kB)"
	fi
}

# ---- the small-buffers pass runs with the buffer sizes it asks for: the pooler's own and the kernel's
if [ "${MB_PASS:-normal}" = small ]; then
	start_pool transaction 1
	mb_like "$(grep -o 'buffers: pkt_buf [0-9]*' "$MB_LOG")" "pkt_buf ${MB_SMALL_PKT_BUF:-128}\$" \
		"small-buffers pass: pkt_buf ${MB_SMALL_PKT_BUF:-128} is in effect"
	mb_bg "$T_DIR/hold.out" "$PQTOOL" hold "$c" 5
	mb_wait_line "$T_DIR/hold.out" connected 10
	# the kernel doubles SO_SNDBUF/SO_RCVBUF; an untuned socket's buffers are far larger
	tb=$(ss -Htmn "( sport = :$MB_PORT )" | grep -o 'tb[0-9]*' | head -n 1)
	mb_lt "${tb#tb}" $((2 * ${MB_SMALL_SOCKET_BUFFER:-4096} + 1)) \
		"small-buffers pass: tcp_socket_buffer ${MB_SMALL_SOCKET_BUFFER:-4096} sizes the client socket ($tb)"
	mb_kill_wait "$MB_BG_PID" TERM
fi

# ---- finding 1: a client waiting for a server with a full input buffer is served once the server is free
start_pool transaction 1
mb_check_healthy "a server connection is open before the waiting clients"
before=$(rss)
served_limit=5
[ "${MB_PASS:-normal}" = small ] && served_limit=30
for case in "query 5000" "query 70000" "query 16777216" "parse 70000" "parse 16777216" "pipeline 5600"; do
	set -- $case
	out=$(ft waitfull "$c" "$1" "$2" 2>&1)
	t=${out#served }
	mb_like "$out" '^served ' "waiting $1 of $2 bytes with a full buffer is served once the server is free ($out)"
	# at once; a 16 MB request relayed in 128-byte pieces under ASan takes some seconds by itself
	[[ $out == served* ]] && mb_lt "$t" "$served_limit" "... within $served_limit s of the COMMIT ($t s)"
done
mb_check_healthy "after the waiting clients, the pool serves others"
rss_bounded "waiting clients of up to 16 MB" "$before"

# ---- pipelines of 1,000 queries, with one Sync and with 50, 4x more clients than servers, every mode
for mode in session transaction statement; do
	start_pool "$mode" 2
	mb_check_healthy "$mode mode: a server connection is open before the pipelines"
	before=$(rss)
	for syncs in 1 50; do
		out=$(ft pipeline "$c" 8 1000 "$syncs" 2>&1)
		mb_is "$out" "ok 8" "$mode mode: 8 clients, 2 servers, pipelines of 1000 queries with $syncs Sync(s)"
	done
	mb_check_healthy "$mode mode: the pool serves others after the pipelines"
	rss_bounded "$mode mode: 16 pipelines of 1000 queries" "$before"
done

# ---- clients that never read: relayed results (simple, extended) and replies the pooler writes itself
start_pool transaction 2
check_flood() {	# KIND: the flood runs 3 s, RSS is taken while the client is still connected
	local kind=$1 before after out
	before=$(rss)
	mb_bg "$T_DIR/flood-$kind.out" "$FLOW_TOOL" noread "$c" "$kind" 3 4
	local pid=$MB_BG_PID
	if ! mb_wait_line "$T_DIR/flood-$kind.out" '^(flooded|FAIL)' 30; then
		mb_not_ok "a $kind flood ends within 30 s"
		return
	fi
	after=$(rss)
	out=$(cat "$T_DIR/flood-$kind.out")
	mb_like "$out" '^flooded [0-9]+' "a client that never reads sends $kind messages for 3 s ($out)"
	mb_check_healthy "during a $kind flood that is never read, other clients are served"
	if mb_rss_checks; then
		mb_lt "$((after - before))" "$RSS_SLACK_KB" \
			"$kind flood, not read: RSS grew by $((after - before)) kB (before $before kB)"
	fi
	mb_kill_wait "$pid" TERM
}
# the first server login initialises the crypto library (a few MB, once): before the first measurement
mb_check_healthy "a server connection is open before the floods"
check_flood sync	# ReadyForQuery written by the pooler (no server is linked to a lone Sync)
check_flood close	# CloseComplete written by the pooler
check_flood query	# results relayed from PostgreSQL
check_flood extended
mb_check_healthy "after the floods"

# ---- SSLRequest floods before the startup packet: refused at the second request, memory bounded
before=$(rss)
out=$(ft sslflood 127.0.0.1 "$MB_PORT" 3 2>&1)
after=$(rss)
mb_like "$out" '^closed [0-9]+ received unencrypted data after SSL request' \
	"a flood of SSLRequests is cut off at once, with the reason ($out)"
if mb_rss_checks; then
	mb_lt "$((after - before))" "$RSS_SLACK_KB" "SSLRequest flood: RSS grew by $((after - before)) kB"
fi
# a second SSLRequest after the first one's answer: PostgreSQL allows one
out=$(ft sslagain 127.0.0.1 "$MB_PORT" 2>&1)
mb_is "$out" $'first N\nsecond SSL request sent twice' "a second SSLRequest is refused ($(echo $out))"
# libpq's own sequence (GSSENCRequest, then SSLRequest, then the startup packet) still logs in
out=$(pqt query "$(mb_connstr "$su" "$sp" "$MB_DB" sslmode=prefer gssencmode=prefer)" "SELECT 'plain'" 2>&1)
mb_is "$out" plain "sslmode=prefer gssencmode=prefer: refused encryption, logged in in plain text"
# bytes behind an SSLRequest, sent before its answer, are refused (they may have been injected)
ssl=0000000804d2162f
out=$(mb_raw "$ssl" "$(mb_startup_hex user "$su" database "$MB_DB")" 2>&1)
mb_like "$out" 'unencrypted data after SSL request' "a startup packet behind an unanswered SSLRequest is refused ($(echo "$out" | head -c 100))"

# ---- a backend stopped for a second in the middle of a 16 MB message, in each direction
if mb_is_root; then
	start_pool transaction 2
	mb_check_healthy "a server connection is open before the stopped backends"
	before=$(rss)
	out=$(ft stopbig "$c" up 16777216 2>&1)
	mb_like "$out" '^ok ' "16 MB query text with its backend stopped for 1 s halfway: answered ($out)"
	out=$(ft stopbig "$c" down 16777216 2>&1)
	mb_like "$out" '^ok ' "16 MB result with its backend stopped for 1 s halfway: delivered whole ($out)"
	mb_check_healthy "after the stopped backends"
	rss_bounded "16 MB in each direction through stopped backends" "$before"
fi
mb_test_done
