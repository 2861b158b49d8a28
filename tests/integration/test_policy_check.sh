#!/usr/bin/env bash
# Load-time checks of policies: a query_kinds entry that is no statement kind ("lisen") and a literal route to
# a [databases] entry that does not exist fail --check, the start and a reload (which keeps the old set), with
# file:line; a route computed at run time to an unknown entry is a policy failure, logged with file:line.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init policy_check

PDIR=$T_DIR/policy.d
mkdir -p "$PDIR"
su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_pgdb mb_check "" "$MB_DB"
mb_pgdb mb_check_ro "" "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set policy_dir "$PDIR"

run_pg() { (exec_as_pg timeout 20 "$MB_BIN" "$@") 2>&1; }
# put NAME: policy.d/NAME from stdin
put() { cat >"$PDIR/$1"; mb_chown_pg "$PDIR" "$PDIR/$1"; }

put 10-kinds.lua <<'LUA'
-- counts LISTENs (with a typo in query_kinds: the hook would never run)
local P = { name = "kinds" }
P.query_kinds = { "select",
  "lisen" }
function P.on_query(client, q)
  if q.sql == "SELECT 'mb_kinds'" then
    return { reject = "kinds policy v2" }
  end
end
return P
LUA
mb_write_config
out=$(run_pg --check "$MB_INI")
mb_is "$?" 1 "--check with query_kinds = { \"lisen\" } exits 1"
mb_like "$out" '10-kinds\.lua:4: query_kinds\[2\]: "lisen" is not a statement kind \(did you mean "listen"\?\)' \
	"--check names file:line of the typo and the kind meant ($(head -n 1 <<<"$out"))"

put 10-kinds.lua <<'LUA'
return { query_kinds = { "select", "listen" }, on_query = function(client, q)
  if q.sql == "SELECT 'mb_kinds'" then return { reject = "kinds policy v1" } end
end }
LUA
put 20-route.lua <<'LUA'
-- routes the reporting user by hand
return { on_connect = function(client)
  if client.application_name == "mb_report" then
    return { route = "mb_reporting" }
  end
end }
LUA
out=$(run_pg --check "$MB_INI")
mb_is "$?" 1 "--check with a route to a [databases] entry that does not exist exits 1"
mb_like "$out" '20-route\.lua:4: routes to "mb_reporting", which is not a \[databases\] entry' \
	"--check names file:line of the unknown route ($(head -n 1 <<<"$out"))"
if mb_start -v >/dev/null 2>&1; then
	mb_not_ok "the start fails on the unknown route too"
	mb_stop
else
	mb_ok "the start fails on the unknown route too"
fi
mb_like "$(cat "$MB_LOG" "$T_DIR/stderr.log" 2>/dev/null | grep 'routes to' | head -n 1)" \
	'20-route\.lua:4: routes to "mb_reporting", which is not a \[databases\] entry' "the start says why, with file:line"

# a route computed at run time can only be checked when it is returned: a policy failure
put 20-route.lua <<'LUA'
local SUFFIX = "_ro"
return { on_connect = function(client)
  if client.application_name == "mb_report" then
    return { route = client.database .. SUFFIX }
  end
end }
LUA
out=$(run_pg --check "$MB_INI")
mb_is "$?" 0 "--check passes a route computed at run time ($(tail -n 1 <<<"$out"))"
mb_start_or_bail -v
c=$(mb_connstr "$su" "$sp" "$MB_DB")
out=$(pqt connect "$c application_name=mb_report" 2>&1)
mb_like "$out" '^ERROR 42501 ' "a run-time route to an unknown entry refuses the login (policy failure, closed) ($out)"
mb_like "$(grep 'policy on_connect failed' "$MB_LOG" | tail -n 1)" \
	"20-route\.lua:2: on_connect routed to \"${MB_DB}_ro\", which is not a \[databases\] entry" \
	"the failure is logged with file:line and the route"
out=$(pqt query "$(mb_connstr "$su" "$sp" mb_check "application_name=mb_report")" "SELECT 'routed'" 2>&1)
mb_is "$out" routed "a run-time route to a known entry works (mb_check -> mb_check_ro)"
mb_is "$(pqt query "$c" "SELECT 'mb_kinds'" 2>&1)" "ERROR 0A000 kinds policy v1" "the other policies run"

# a reload with a typo'd query_kinds keeps the old set, and says why
put 10-kinds.lua <<'LUA'
return { query_kinds = { "select", "lisen" }, on_query = function(client, q)
  if q.sql == "SELECT 'mb_kinds'" then return { reject = "kinds policy v2" } end
end }
LUA
kill -HUP "$MB_PID"
mb_wait_line "$MB_LOG" 'reload failed' 10
mb_like "$(grep 'reload failed' "$MB_LOG" | tail -n 1)" '10-kinds\.lua:1: query_kinds\[2\]: "lisen" is not a statement kind.*keeping' \
	"SIGHUP with a typo'd query_kinds: the log names file:line and keeps the old set"
mb_is "$(pqt query "$c" "SELECT 'mb_kinds'" 2>&1)" "ERROR 0A000 kinds policy v1" "the old policy still answers"
mb_check_healthy
mb_test_done
