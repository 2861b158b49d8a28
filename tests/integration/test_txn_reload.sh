#!/usr/bin/env bash
# SIGHUP in a running pooler: pool sizes and timeouts apply to running pools and connected clients, a new
# pool_mode applies to new clients (connected ones keep theirs), and a bad value keeps the old config.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_reload

mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode session
mb_set default_pool_size 2
mb_set server_idle_timeout 0
mb_set query_timeout 0
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")
backends() { pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$su' AND datname = '$MB_DB'"; }
# reload: write the config, SIGHUP, wait for the pooler's verdict in its log; prints "reloaded" or "failed"
reload() {
	local before i
	before=$(grep -c -E 'configuration reloaded|reload failed' "$MB_LOG")
	mb_write_config
	kill -HUP "$MB_PID"
	for ((i = 0; i < 50; i++)); do
		if [ "$(grep -c -E 'configuration reloaded|reload failed' "$MB_LOG")" -gt "$before" ]; then
			grep -E 'configuration reloaded|reload failed' "$MB_LOG" | tail -n 1 | grep -q 'reload failed' &&
				echo failed || echo reloaded
			return
		fi
		sleep 0.1
	done
	echo "no verdict"
}
# N clients at once: distinct backend pids they ran on
conc_pids() {
	local i
	{
		for ((i = 1; i <= $1; i++)); do echo "open c$i $c"; done
		for ((i = 1; i <= $1; i++)); do echo "send c$i SELECT pg_backend_pid() FROM pg_sleep(0.3)"; done
		for ((i = 1; i <= $1; i++)); do echo "wait c$i"; done
	} | tt 2>&1 | grep -E '^c[0-9]+: [0-9]+$' | cut -d' ' -f2 | sort -u | wc -l
}
mode_of() {
	local out pa pb
	out=$(printf 'open a %s\nopen b %s\nq a SELECT pg_backend_pid()\nq b SELECT pg_backend_pid()\n' "$c" "$c" | tt 2>&1)
	pa=$(lines_of "$out" a | sed -n 2p)
	pb=$(lines_of "$out" b | sed -n 2p)
	[[ $pa =~ ^[0-9]+$ ]] || { echo "error: $out"; return; }
	[ "$pa" = "$pb" ] && echo shared || echo separate
}

mb_is "$(mode_of)" separate "before the reload: session mode (two clients, two servers)"

# a client connected across the reload, in session mode, holding its server
cat >"$T_DIR/held.script" <<EOT
open a $c
q a SELECT pg_backend_pid()
echo a: ready
sleep 2
q a SELECT pg_backend_pid()
q a SELECT pg_sleep(3)
elapsed a
q a SELECT 'a still connected'
EOT
mb_bg "$T_DIR/held.out" "$TXN_TOOL" script "$T_DIR/held.script"
held=$MB_BG_PID
mb_wait_line "$T_DIR/held.out" '^a: ready' 10 || mb_diag "held client not ready: $(cat "$T_DIR/held.out")"

mb_set pool_mode transaction
mb_set default_pool_size 3
mb_set query_timeout 0.5
mb_set server_idle_timeout 0.5
mb_is "$(reload)" reloaded "SIGHUP with pool_mode, default_pool_size, query_timeout, server_idle_timeout changed"
mb_is "$(mode_of)" shared "after the reload: new clients are in transaction mode"
mb_wait_exit "$held" 15
out=$(cat "$T_DIR/held.out")
p=($(lines_of "$out" a | grep -E '^[0-9]+$'))
mb_is "${p[1]:-}" "${p[0]:-x}" "the client connected before the reload keeps session mode (same server throughout)"
mb_like "$(lines_of "$out" a | grep -m 1 ERROR)" '^ERROR 08P01 query timeout' "query_timeout=0.5 from the reload ends the connected client's query"
el=$(lines_of "$out" a | sed -n 's/^elapsed //p')
if awk -v e="${el:-99}" 'BEGIN { exit !(e >= 0.45 && e <= 2.5) }'; then
	mb_ok "...after 0.5 s ($el s)"
else
	mb_not_ok "...after 0.5 s" "$out"
fi
mb_like "$(lines_of "$out" a | tail -n 1)" 'ERROR|lost' "query_timeout closes the connected client, as PgBouncer does"
mb_is "$(conc_pids 6)" 3 "after the reload: the running pool grows to default_pool_size=3"
for ((i = 0; i < 40; i++)); do
	[ "$(backends)" = 0 ] && break
	sleep 0.1
done
mb_is "$(backends)" 0 "after the reload: server_idle_timeout=0.5 closes the pool's idle servers (within 4 s)"

# a bad value: the whole new config is refused, the old one stays in force
mb_set default_pool_size abc
mb_set query_timeout 0
mb_set pool_mode session
mb_is "$(reload)" failed "SIGHUP with default_pool_size=abc: reload refused"
if mb_alive "$MB_PID"; then mb_ok "the pooler still runs"; else mb_not_ok "the pooler still runs"; fi
mb_is "$(mode_of)" shared "the old pool_mode (transaction) stays"
out=$(printf 'open a %s\nq a SELECT pg_sleep(3)\nelapsed a\n' "$c" | tt 2>&1)
mb_like "$(lines_of "$out" a | sed -n 2p)" '^ERROR 08P01 query timeout' "the old query_timeout (0.5) stays"
mb_is "$(conc_pids 6)" 3 "the old pool size (3) stays"

# fixing the file and reloading again works; a smaller pool size applies to the running pool
mb_set default_pool_size 1
mb_set query_timeout 0
mb_set server_idle_timeout 0
mb_set pool_mode transaction
mb_is "$(reload)" reloaded "SIGHUP with the value fixed (and default_pool_size=1): reloaded"
conc_pids 3 >/dev/null
sleep 0.5
mb_is "$(conc_pids 6)" 1 "default_pool_size lowered to 1: the running pool shrinks to 1 server (excess idle servers closed)"
mb_is "$(backends)" 1 "PostgreSQL has 1 server connection left"
mb_test_done
