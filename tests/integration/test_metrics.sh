#!/usr/bin/env bash
# GET /metrics on metrics_listen: the PgBouncer exporter's metrics from the SHOW tables under a known load,
# accepted by promtool; the example alert rules and dashboard name only exported metrics; 404 and 405;
# re-bound on reload; a port that cannot be bound is a log line on reload and fatal at start-up.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init metrics
mb_tool txn_tool TXN_TOOL

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
examples=$MB_REPO/examples/monitoring
mport=$(mb_free_port)
mb_pgdb "$MB_DB" "pool_size=1"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set metrics_listen "127.0.0.1:$mport"
mb_policy_copy 20-tenants.lua "$T_DIR/policy.d"	# a tenant per user: the tenant metrics have a row
mb_set policy_dir "$T_DIR/policy.d"
mb_start_or_bail
c=$(mb_connstr "$su" "$sp" "$MB_DB")

# http METHOD PORT PATH: the status code; the body in $T_DIR/body, the headers in $T_DIR/headers
http() {
	curl -s -m 10 -X "$1" -o "$T_DIR/body" -D "$T_DIR/headers" -w '%{http_code}' "http://127.0.0.1:$2$3" 2>&1
}
# scrape: the page of the endpoint on $mport (empty when it does not answer 200)
scrape() {
	[ "$(http GET "$mport" /metrics)" = 200 ] && cat "$T_DIR/body"
}
# sample TEXT REGEX: the value of the first sample whose name and labels match REGEX (anchored)
sample() { awk -v re="^$2 " '$0 ~ re { print $NF; exit }' <<<"$1"; }
# wait_sample REGEX VALUE: scrape until a sample matches REGEX with VALUE (up to 15 s); the last page in $page
wait_sample() {
	local i
	for ((i = 0; i < 150; i++)); do
		page=$(scrape)
		[ "$(sample "$page" "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- the page
code=$(http GET "$mport" /metrics)
page=$(cat "$T_DIR/body")
mb_is "$code" 200 "GET /metrics answers 200"
mb_like "$(cat "$T_DIR/headers")" '^Content-Type: text/plain; version=0\.0\.4' "in the text exposition format 0.0.4"
mb_like "$page" '^pgbouncer_up 1$' "pgbouncer_up 1"
mb_like "$page" '^pgbouncer_version_info\{version="[^"]+"\} 1$' "pgbouncer_version_info{version}"

# every metric the PgBouncer exporter makes of PgBouncer 1.25, under its name (the databases' families
# carry a sample for each [databases] entry, the stats' for each database, the pools' for each pool, the
# clients' for each kind of client: looked for under load, below; pgbouncer_stats_queries_total reads a
# column PgBouncer 1.25 does not have)
expected="pgbouncer_up pgbouncer_version_info pgbouncer_databases pgbouncer_users pgbouncer_pools
pgbouncer_free_clients pgbouncer_used_clients pgbouncer_login_clients pgbouncer_free_servers
pgbouncer_used_servers pgbouncer_cached_dns_names pgbouncer_cached_dns_zones pgbouncer_in_flight_dns_queries
pgbouncer_config_max_client_connections pgbouncer_config_max_user_connections pgbouncer_client_connections
pgbouncer_databases_pool_size pgbouncer_databases_reserve_pool pgbouncer_databases_max_connections
pgbouncer_databases_current_connections pgbouncer_databases_paused pgbouncer_databases_disabled
pgbouncer_stats_queries_pooled_total pgbouncer_stats_queries_duration_seconds_total
pgbouncer_stats_received_bytes_total pgbouncer_stats_sent_bytes_total
pgbouncer_stats_client_wait_seconds_total pgbouncer_stats_sql_transactions_pooled_total
pgbouncer_stats_server_in_transaction_seconds_total pgbouncer_stats_client_parses_total
pgbouncer_stats_server_parses_total pgbouncer_stats_binds_total pgbouncer_stats_server_assignments_total
pgbouncer_pools_client_active_connections pgbouncer_pools_client_active_cancel_connections
pgbouncer_pools_client_waiting_connections pgbouncer_pools_client_waiting_cancel_connections
pgbouncer_pools_server_active_connections pgbouncer_pools_server_active_cancel_connections
pgbouncer_pools_server_being_canceled_connections pgbouncer_pools_server_idle_connections
pgbouncer_pools_server_used_connections pgbouncer_pools_server_testing_connections
pgbouncer_pools_server_login_connections pgbouncer_pools_client_maxwait_seconds
moonbouncer_policy_calls_total moonbouncer_policy_failures_total moonbouncer_policy_reloads_total
moonbouncer_policy_reload_failures_total moonbouncer_policy_heap_bytes moonbouncer_policy_files
moonbouncer_client_wait_seconds moonbouncer_flow_control_relay_blocked_total
moonbouncer_flow_control_output_full_total"

# --- a known load: a client holds a transaction open on the pool's only server, a second one waits
mb_hold_transaction "$c application_name=mb_holder"
mb_bg "$T_DIR/wait.out" "$PQTOOL" query "$c application_name=mb_waiter" "SELECT 'waited'"
waiter_pid=$MB_BG_PID
pool="\\{database=\"$MB_DB\",user=\"$su\"\\}"
if wait_sample "pgbouncer_pools_client_waiting_connections$pool" 1; then
	mb_ok "a client waiting for the pool's server: client_waiting_connections 1"
else
	mb_not_ok "a client waiting for the pool's server: client_waiting_connections 1" "$(grep '^pgbouncer_pools' <<<"$page")"
fi
mb_is "$(sample "$page" "pgbouncer_pools_server_active_connections$pool")" 1 \
	"the server held in a transaction: server_active_connections 1"
mb_is "$(sample "$page" "pgbouncer_pools_client_active_connections$pool")" 1 \
	"the client in its transaction: client_active_connections 1"
mb_is "$(sample "$page" "pgbouncer_pools_server_idle_connections$pool")" 0 "no idle server"
mb_is "$(sample "$page" "pgbouncer_client_connections\\{database=\"$MB_DB\",user=\"$su\",application_name=\"mb_waiter\",state=\"waiting\"\\}")" 1 \
	"client_connections counts the waiting client by application_name and state"
mb_is "$(sample "$page" "pgbouncer_client_connections\\{database=\"$MB_DB\",user=\"$su\",application_name=\"mb_holder\",state=\"active\"\\}")" 1 \
	"client_connections counts the active client"
mb_like "$(sample "$page" "pgbouncer_pools_client_maxwait_seconds$pool")" '^[0-9]+$' "client_maxwait_seconds is a number of seconds"
mb_is "$(sample "$page" "moonbouncer_tenant_clients\\{tenant=\"$su\"\\}")" 2 "moonbouncer_tenant_clients: the tenant's two clients"
mb_is "$(sample "$page" "moonbouncer_tenant_max_active\\{tenant=\"$su\"\\}")" 2 "moonbouncer_tenant_max_active: its limit"
mb_is "$(sample "$page" "pgbouncer_databases_pool_size\\{name=\"$MB_DB\",host=\"127\\.0\\.0\\.1\",port=\"$MB_PG_PORT\",database=\"$MB_DB\",force_user=\"\",pool_mode=\"\"\\}")" 1 \
	"databases_pool_size with the entry's labels"
loaded_page=$page
missing=""
for name in $expected; do
	grep -q "^# TYPE $name " <<<"$loaded_page" || missing="$missing $name"
done
mb_is "${missing# }" "" "every metric of the PgBouncer exporter is exported"

mb_kill_wait "$HOLD_PID" TERM
mb_wait_exit "$waiter_pid" 30
mb_is "$(tail -n 1 "$T_DIR/wait.out")" waited "the waiting client ran once the holder left"
if wait_sample "pgbouncer_pools_server_active_connections$pool" 0; then
	mb_ok "the server is released: server_active_connections 0"
else
	mb_not_ok "the server is released: server_active_connections 0" "$(grep '^pgbouncer_pools' <<<"$page")"
fi
xacts=$(sample "$page" "pgbouncer_stats_sql_transactions_pooled_total\\{database=\"$MB_DB\"\\}")
if [ -n "$xacts" ] && [ "$xacts" -ge 2 ] 2>/dev/null; then
	mb_ok "sql_transactions_pooled_total counts both transactions ($xacts)"
else
	mb_not_ok "sql_transactions_pooled_total counts both transactions" "$(grep '^pgbouncer_stats' <<<"$page")"
fi
waits=$(sample "$page" "moonbouncer_client_wait_seconds_count")
over=$(sample "$page" "moonbouncer_client_wait_seconds_bucket\\{le=\"0\\.001\"\\}")
if [ -n "$waits" ] && [ "$waits" -ge 1 ] 2>/dev/null && [ "${over:-x}" -lt "$waits" ] 2>/dev/null; then
	mb_ok "moonbouncer_client_wait_seconds counts the wait, above the 1 ms bucket ($over of $waits)"
else
	mb_not_ok "moonbouncer_client_wait_seconds counts the wait" "$(grep '^moonbouncer_client_wait' <<<"$page")"
fi
mb_like "$(sample "$page" "pgbouncer_stats_server_in_transaction_seconds_total\\{database=\"$MB_DB\"\\}")" \
	'^[0-9]+(\.[0-9]+)?$' "server_in_transaction_seconds_total in seconds"

# --- promtool: the page, the rules
if command -v promtool >/dev/null; then
	out=$(promtool check metrics <<<"$page" 2>&1)
	mb_is "$?:$out" "0:" "promtool check metrics accepts the page"
	out=$(promtool check rules "$examples/alerts.yml" 2>&1)
	mb_like "$?:$out" '^0:' "promtool check rules accepts examples/monitoring/alerts.yml"
	out=$(cd "$MB_REPO/tests/monitoring" && promtool test rules alerts_test.yml 2>&1)
	mb_like "$?:$out" '^0:' "promtool test rules: the alerts fire on the series they are for (tests/monitoring)"
else
	for check in "check metrics" "check rules" "test rules"; do
		mb_ok "promtool $check # SKIP promtool is not installed (make deps installs Debian's prometheus)"
	done
fi

# --- the examples name only metrics the page has
# every family, and a histogram's _bucket, _sum and _count series
exported=$(awk '$1 == "#" && $2 == "TYPE" { print $3; if ($4 == "histogram") print $3 "_bucket\n" $3 "_sum\n" $3 "_count" }' \
	<<<"$loaded_page" | sort -u)
# names_in TEXT: the pgbouncer_* and moonbouncer_* names in TEXT
names_in() { grep -oE '\b(pgbouncer|moonbouncer)_[a-z0-9_]+' <<<"$1" | sort -u; }
rule_names=$(names_in "$(cat "$examples/alerts.yml")")
mb_is "$(comm -23 <(echo "$rule_names") <(echo "$exported") | tr '\n' ' ')" "" \
	"alerts.yml names only exported metrics ($(wc -l <<<"$rule_names") of them)"
if exprs=$(jq -r '.. | objects | (.expr?, .definition?) // empty' "$examples/grafana-dashboard.json" 2>&1); then
	mb_ok "grafana-dashboard.json parses"
	dash_names=$(names_in "$exprs")
	mb_is "$(comm -23 <(echo "$dash_names") <(echo "$exported") | tr '\n' ' ')" "" \
		"grafana-dashboard.json names only exported metrics ($(wc -l <<<"$dash_names") of them)"
	mb_is "$(grep -cvE '(pgbouncer|moonbouncer)_' <<<"$exprs")" 0 "every query of the dashboard reads a metric of the page"
else
	mb_not_ok "grafana-dashboard.json parses" "$exprs"
fi

# --- other paths and methods
mb_is "$(http GET "$mport" /)" 404 "GET / answers 404"
mb_is "$(http GET "$mport" /metricsx)" 404 "GET /metricsx answers 404"
mb_is "$(http POST "$mport" /metrics)" 405 "POST /metrics answers 405"
mb_like "$(cat "$T_DIR/headers")" '^Allow: GET, HEAD' "405 says which methods are allowed"
mb_is "$(http GET "$mport" '/metrics?x=1')" 200 "a query string is ignored"
mb_is "$(curl -s -m 10 -I -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/metrics")" 200 "HEAD /metrics answers 200"

# --- reload: a new address is bound and the old one closed; an address that cannot be bound is logged
mport2=$(mb_free_port)
mb_set metrics_listen "127.0.0.1:$mport2"
mb_write_config
kill -HUP "$MB_PID"
mb_wait_port "$mport2" "$MB_PID"
mb_is "$(http GET "$mport2" /metrics)" 200 "after a reload /metrics answers on the new port"
mb_is "$(http GET "$mport" /metrics)" 000 "and no more on the old one"
mb_set metrics_listen "127.0.0.1:$MB_PORT"
mb_write_config
kill -HUP "$MB_PID"
if mb_wait_line "$MB_LOG" "could not bind metrics_listen 127\\.0\\.0\\.1:$MB_PORT: Address already in use" 10; then
	mb_ok "a reload onto a port in use logs the bind failure"
else
	mb_not_ok "a reload onto a port in use logs the bind failure" "$(tail -n 5 "$MB_LOG")"
fi
mb_is "$(pqt query "$c" "SELECT 'still'")" still "and the pooler goes on serving"
mb_unset metrics_listen
mb_write_config
kill -HUP "$MB_PID"
mb_wait_line "$MB_LOG" "configuration reloaded" 10
mb_is "$(http GET "$mport2" /metrics)" 000 "metrics_listen removed: nothing listens"

# --- start-up: a port that cannot be bound is fatal, with the reason
mb_stop
mb_set metrics_listen "127.0.0.1:$MB_PORT"
mb_write_config
out=$( (exec_as_pg timeout 20 "$MB_BIN" "$MB_INI") 2>&1)
rc=$?
mb_is "$rc" 1 "start-up with metrics_listen on a port in use exits with 1"
mb_like "$out" "could not bind metrics_listen 127\\.0\\.0\\.1:$MB_PORT: Address already in use" \
	"and says why"
mb_set metrics_listen "127.0.0.1"
mb_write_config
out=$( (exec_as_pg timeout 20 "$MB_BIN" "$MB_INI") 2>&1)
rc=$?
mb_is "$rc" 1 "start-up with metrics_listen without a port exits with 1"
mb_like "$out" 'metrics_listen "127\.0\.0\.1": expected host:port' "and says why"

mb_test_done
