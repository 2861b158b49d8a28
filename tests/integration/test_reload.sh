#!/usr/bin/env bash
# SIGHUP: the auth_file and the ini are re-read, a bad config is refused, the log file is reopened.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init reload

ru=$MB_RELOAD_USER
old=$MB_RELOAD_PASS
new=reload-new
sqlstate() { awk '$1 == "ERROR" {print $2; exit}' <<<"$1"; }
login() { pqt query "$(mb_connstr "$1" "$2" "${3:-$MB_DB}")" "SELECT current_user" 2>&1; }

mb_pgdb "$MB_DB"
mb_user "$MB_SCRAM_USER" "$MB_SCRAM_PASS"
mb_user "$ru" "$old"
mb_set auth_type scram-sha-256
mb_set log_connections 1
mb_start_or_bail

mb_is "$(login "$ru" "$old")" "$ru" "old password works before the change"

# --- password change in the auth_file (and in PostgreSQL), then SIGHUP
pg_super_psql -d postgres -c "ALTER ROLE $ru PASSWORD '$new'" >/dev/null
MB_USERS=()
mb_user "$MB_SCRAM_USER" "$MB_SCRAM_PASS"
mb_user "$ru" "$new"
mb_write_config
kill -HUP "$MB_PID"
sleep 1
out=$(login "$ru" "$old")
mb_is "$(sqlstate "$out")" 28P01 "after SIGHUP the old password fails ($out)"
mb_is "$(login "$ru" "$new")" "$ru" "after SIGHUP the new password works"
pg_super_psql -d postgres -c "ALTER ROLE $ru PASSWORD '$old'" >/dev/null

# --- a new [databases] entry appears on SIGHUP
mb_pgdb mb_db_alias
mb_write_config
kill -HUP "$MB_PID"
sleep 1
mb_is "$(login "$MB_SCRAM_USER" "$MB_SCRAM_PASS" mb_db_alias)" "$MB_SCRAM_USER" "after SIGHUP a new database entry works"

# --- a bad config on SIGHUP is refused; the old one stays in force
mb_set pool_mode sesion
mb_write_config
kill -HUP "$MB_PID"
sleep 1
if mb_alive "$MB_PID"; then mb_ok "bad config on SIGHUP: still running"; else mb_not_ok "bad config on SIGHUP: still running"; fi
mb_is "$(login "$MB_SCRAM_USER" "$MB_SCRAM_PASS" mb_db_alias)" "$MB_SCRAM_USER" "bad config on SIGHUP: old config still serves"
mb_set pool_mode session
mb_write_config

# --- logrotate: move the log away, SIGHUP, the pooler writes to a new file
mv "$MB_LOG" "$MB_LOG.1"
kill -HUP "$MB_PID"
sleep 1
login "$MB_SCRAM_USER" "$MB_SCRAM_PASS" >/dev/null
sleep 0.5
if [ -s "$MB_LOG" ]; then
	mb_ok "after logrotate + SIGHUP a new log file is written ($(wc -l <"$MB_LOG") lines)"
else
	mb_not_ok "after logrotate + SIGHUP a new log file is written" "$(ls -l "$T_DIR")"
fi
size1=$(stat -c %s "$MB_LOG.1")
login "$MB_SCRAM_USER" "$MB_SCRAM_PASS" >/dev/null
sleep 0.5
mb_is "$(stat -c %s "$MB_LOG.1")" "$size1" "the rotated file gets no more lines"

mb_test_done
