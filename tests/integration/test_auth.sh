#!/usr/bin/env bash
# Client authentication (trust, plain, md5, scram-sha-256) against every kind of auth_file secret,
# and the server login that follows (password from auth_file, md5, SCRAM pass-through).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init auth

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mu=$MB_MD5_USER mp=$MB_MD5_PASS

# The first authentication request the pooler sends for a startup packet (0 = AuthenticationOk).
auth_request() {
	mb_raw "$(mb_startup_hex user "$1" database "$MB_DB")" 2>&1 | awk '$1 == "AUTH" {print $2; exit}'
}

# login USER PASSWORD -> the server's answer to a query, or "ERROR <sqlstate> ..."
login() {
	pqt query "$(mb_connstr "$1" "$2" "$MB_DB")" "SELECT current_user || ' ' || 40 + 2" 2>&1
}

sqlstate() { awk '$1 == "ERROR" {print $2; exit}' <<<"$1"; }

mb_pgdb "$MB_DB"

# --- trust: no password asked; the server login uses the auth_file password
mb_user "$su" "$sp"
mb_set auth_type trust
mb_start_or_bail
mb_is "$(auth_request "$su")" 0 "trust: no password requested (AuthenticationOk)"
mb_is "$(pqt query "$(mb_connstr "$su" "" "$MB_DB")" "SELECT current_user" 2>&1)" "$su" \
	"trust: login without a password reaches the server as that user"

# --- plain: cleartext password checked against the auth_file
mb_set auth_type plain
mb_start_or_bail
mb_is "$(auth_request "$su")" 3 "plain: cleartext password requested"
mb_is "$(login "$su" "$sp")" "$su 42" "plain: right password works"
out=$(login "$su" wrong-password)
mb_is "$(sqlstate "$out")" 28P01 "plain: wrong password fails with 28P01 (invalid_password)" 

# --- md5 with a plain secret and with an md5 secret (server login with md5 too)
mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_user "$mu" "$(mb_md5_secret "$mu" "$mp")"
mb_set auth_type md5
mb_start_or_bail
mb_is "$(auth_request "$su")" 5 "md5: md5 password requested"
mb_is "$(login "$su" "$sp")" "$su 42" "md5, plain secret in auth_file: right password works"
out=$(login "$su" wrong-password)
mb_is "$(sqlstate "$out")" 28P01 "md5, plain secret in auth_file: wrong password fails with 28P01"
mb_is "$(login "$mu" "$mp")" "$mu 42" "md5, md5 secret in auth_file: right password works (server login with md5)"
out=$(login "$mu" wrong-password)
mb_is "$(sqlstate "$out")" 28P01 "md5, md5 secret in auth_file: wrong password fails with 28P01"
out=$(login nobody_here some-password)
mb_is "$(sqlstate "$out")" 28P01 "md5: user not in auth_file fails with 28P01, as a wrong password"

# --- scram-sha-256 with a plain secret, and with the SCRAM secret copied from pg_authid
# (the database entry has no password: the server login reuses the client's SCRAM proof)
scram_secret=$(pg_secret "$su")
mb_like "$scram_secret" '^SCRAM-SHA-256\$4096:' "pg_authid holds a SCRAM secret for $su"
mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_start_or_bail
mb_is "$(auth_request "$su")" 10 "scram-sha-256: SASL requested"
mb_is "$(login "$su" "$sp")" "$su 42" "scram-sha-256, plain secret in auth_file: right password works"
out=$(login "$su" wrong-password)
mb_is "$(sqlstate "$out")" 28P01 "scram-sha-256, plain secret in auth_file: wrong password fails with 28P01"

mb_reset
mb_pgdb "$MB_DB"
mb_user "$su" "$scram_secret"
mb_set auth_type scram-sha-256
mb_start_or_bail
mb_is "$(login "$su" "$sp")" "$su 42" "scram-sha-256, SCRAM secret in auth_file: login and SCRAM pass-through to the server"
out=$(login "$su" wrong-password)
mb_is "$(sqlstate "$out")" 28P01 "scram-sha-256, SCRAM secret in auth_file: wrong password fails with 28P01"
# a second login after the first server connection exists, and with the pool drained
mb_is "$(login "$su" "$sp")" "$su 42" "scram-sha-256, SCRAM secret: second login works"

# --- md5 configured, SCRAM secret stored: SCRAM is used instead (as PgBouncer does)
mb_set auth_type md5
mb_start_or_bail
mb_is "$(auth_request "$su")" 10 "md5 configured with a SCRAM secret: SASL requested"
mb_is "$(login "$su" "$sp")" "$su 42" "md5 configured with a SCRAM secret: right password works"

# --- the db entry carries the server password; client authenticated against the auth_file only
mb_reset
mb_pgdb "$MB_DB" "user=$su password=$sp"
mb_user app_user app-pass
mb_set auth_type scram-sha-256
mb_start_or_bail
mb_is "$(login app_user app-pass)" "$su 42" "forced user with password in the db entry: server login as $su"
out=$(login app_user wrong-password)
mb_is "$(sqlstate "$out")" 28P01 "forced user: wrong client password fails with 28P01"

mb_test_done
