#!/usr/bin/env bash
# A reload that changes how a database entry is reached (here: TCP -> unix socket) retires the servers opened
# under the old entry: idle ones at once, busy ones when they are released. Unchanged entries keep theirs.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init reload_entry

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_db mb_moved "host=127.0.0.1 port=$MB_PG_PORT dbname=$MB_DB pool_size=1"
mb_db mb_kept "host=127.0.0.1 port=$MB_PG_PORT dbname=$MB_DB pool_size=1"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_start_or_bail
cm=$(mb_connstr "$su" "$sp" mb_moved)
ck=$(mb_connstr "$su" "$sp" mb_kept)
q="SELECT pg_backend_pid(), coalesce(inet_server_addr()::text, 'unix')"

before_m=$(pqt query "$cm" "$q" 2>&1)
before_k=$(pqt query "$ck" "$q" 2>&1)
mb_like "$before_m" $'\t127\\.0\\.0\\.1' "before the reload mb_moved is served over TCP ($before_m)"

# the same entry, now over the unix socket
sed -i "s|^mb_moved = .*|mb_moved = host=$MB_PG_SOCKDIR port=$MB_PG_PORT dbname=$MB_DB pool_size=1|" "$MB_INI"
kill -HUP "$MB_PID"
sleep 0.5
after_m=$(pqt query "$cm" "$q" 2>&1)
after_k=$(pqt query "$ck" "$q" 2>&1)
mb_like "$after_m" $'\tunix$' "after the reload mb_moved is served over the unix socket ($after_m)"
mb_isnt_pid() { [ "${1%%$'\t'*}" != "${2%%$'\t'*}" ]; }
if mb_isnt_pid "$before_m" "$after_m"; then
	mb_ok "the old server of mb_moved was retired (backend changed)"
else
	mb_not_ok "the old server of mb_moved was retired" "same backend before and after: $after_m"
fi
mb_is "${after_k%%$'\t'*}" "${before_k%%$'\t'*}" "the unchanged entry mb_kept keeps its server"
mb_test_done
