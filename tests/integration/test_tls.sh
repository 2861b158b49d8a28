#!/usr/bin/env bash
# TLS on both sides, with certificates made here by the openssl command line. Clients: an SSLRequest is answered
# 'S' and the login runs inside TLS; require refuses a plain login on TCP (not on the unix socket); libpq's
# verify-ca and verify-full check the pooler's certificate (a wrong CA or host name is refused); verify-ca makes the
# pooler check the client's certificate; a mode without a usable certificate does not start (--check fails); a
# reload reads the files again, and a bad file keeps the old ones. SHOW CLIENTS/SERVERS and the login log line
# name the protocol and cipher. Servers: on a cluster of the test's own with ssl = on, server_tls_sslmode
# verify-full is seen by PostgreSQL (pg_stat_ssl), a wrong CA and a wrong host name are refused, require is
# refused by a server without TLS and prefer falls back to plain text. Large results and pgbench in transaction
# mode run through TLS on both sides (in the small-buffers pass, records split across every buffer).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init tls

command -v openssl >/dev/null || { mb_not_ok "the openssl command line is installed"; mb_test_done; }

C=$T_DIR/certs
mkdir -p "$C"
ossl() { openssl "$@" >>"$C/openssl.log" 2>&1; }
# new_key NAME; new_ca NAME CN; new_cert NAME CN CA [SAN]: an EC key, a self-signed CA, a certificate signed by CA
new_key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$C/$1.key"; }
new_ca() {
	new_key "$1" && ossl req -new -x509 -key "$C/$1.key" -out "$C/$1.crt" -days 2 -subj "/CN=$2" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
new_cert() {
	local ext=$C/$1.ext
	echo "basicConstraints=CA:FALSE" >"$ext"
	[ -n "${4:-}" ] && echo "subjectAltName=$4" >>"$ext"
	new_key "$1" && ossl req -new -key "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$2" &&
		ossl x509 -req -in "$C/$1.csr" -CA "$C/$3.crt" -CAkey "$C/$3.key" -CAcreateserial -days 2 \
			-extfile "$ext" -out "$C/$1.crt"
}
if new_ca ca "moonbouncer test CA" && new_ca other "another CA" &&
	new_cert pooler localhost ca "DNS:localhost" &&
	new_cert client "$MB_SCRAM_USER" ca && new_cert stranger "$MB_SCRAM_USER" other &&
	new_cert pg localhost ca "DNS:localhost,IP:127.0.0.1" && new_cert pg_elsewhere elsewhere.test ca "DNS:elsewhere.test"; then
	mb_ok "certificates made with openssl"
else
	mb_not_ok "certificates made with openssl" "$(tail -n 5 "$C/openssl.log")"
	mb_test_done
fi
echo "not a certificate" >"$C/garbage.crt"
chmod 600 "$C"/*.key
mb_chown_pg "$C"
chmod 700 "$C"

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set pool_mode transaction
mb_set log_connections 1

# q CONNSTR-EXTRA SQL: a query through the pooler with libpq's TLS settings added to the connection string
q() { pqt query "$(mb_connstr "$su" "$sp" "$MB_DB" "$1")" "$2" 2>&1; }
# as the pooler runs: --check writes to the logfile too, which must stay the pooler's
check_fails() { ! (exec_as_pg timeout 30 "$MB_BIN" --check "$MB_INI") >"$T_DIR/check.out" 2>&1; }

# ---- a mode that needs a certificate without a usable one: no start, and --check says why
mb_set client_tls_sslmode require
mb_write_config
if check_fails && grep -q "client_tls_key_file" "$T_DIR/check.out"; then
	mb_ok "--check fails for client_tls_sslmode = require without a key and certificate"
else
	mb_not_ok "--check fails for client_tls_sslmode = require without a key and certificate" "$(cat "$T_DIR/check.out")"
fi
mb_set client_tls_key_file "$C/pooler.key"
mb_set client_tls_cert_file "$C/garbage.crt"
mb_write_config
if check_fails && grep -q "could not load client_tls_cert_file" "$T_DIR/check.out"; then
	mb_ok "--check fails for an unreadable certificate"
else
	mb_not_ok "--check fails for an unreadable certificate" "$(cat "$T_DIR/check.out")"
fi
mb_set client_tls_cert_file "$C/client.crt"
mb_write_config
check_fails && grep -Eq "client_tls_key_file.*(does not match|mismatch)" "$T_DIR/check.out"
mb_is "$?" 0 "--check fails for a key that does not match the certificate ($(cat "$T_DIR/check.out"))"
mb_set client_tls_cert_file "$C/pooler.crt"
mb_set client_tls_sslmode verify-ca
mb_write_config
check_fails && grep -q "client_tls_ca_file" "$T_DIR/check.out"
mb_is "$?" 0 "--check fails for verify-ca without client_tls_ca_file ($(cat "$T_DIR/check.out"))"
(exec_as_pg "$MB_BIN" "$MB_INI") >"$T_DIR/nostart.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -q "client_tls_ca_file" "$T_DIR/nostart.out" "$MB_LOG" 2>/dev/null
mb_is "$?" 0 "the pooler does not start for verify-ca without client_tls_ca_file (exit $rc)"

# ---- client_tls_sslmode = require
mb_set client_tls_sslmode require
mb_set client_tls_ca_file "$C/ca.crt"
mb_start_or_bail
mb_is "$(q "sslmode=require" "SELECT 1")" 1 "sslmode=require logs in through TLS"
out=$(q "sslmode=disable" "SELECT 1")
mb_like "$out" "SSL required" "a plain login is refused under require ($out)"
mb_is "$(mb_psql "$su" "$sp" "$MB_DB" -h "$T_DIR" -c "SELECT 1" 2>&1)" 1 "a plain login on the unix socket is not refused"
mb_is "$(q "sslmode=verify-full sslrootcert=$C/ca.crt host=localhost hostaddr=127.0.0.1" "SELECT 2")" 2 \
	"verify-full with the right CA and host name"
out=$(q "sslmode=verify-full sslrootcert=$C/ca.crt" "SELECT 3")
mb_like "$out" "does not match host name" "verify-full refuses a wrong host name ($out)"
mb_is "$(q "sslmode=verify-ca sslrootcert=$C/ca.crt" "SELECT 4")" 4 "verify-ca with the right CA"
out=$(q "sslmode=verify-ca sslrootcert=$C/other.crt" "SELECT 5")
mb_like "$out" "certificate verify failed" "verify-ca refuses a certificate of another CA ($out)"
mb_like "$(grep "login attempt" "$MB_LOG" | tail -n 1)" "tls=TLSv1\.[23]/[A-Z0-9_-]+" \
	"the login log line names the protocol and cipher"
# SHOW CLIENTS from the console itself, over TLS: its own row carries the description
mb_set admin_users "$su"
mb_reload
out=$(pqt query "$(mb_connstr "$su" "$sp" pgbouncer "sslmode=require")" "SHOW CLIENTS" 2>&1)
mb_like "$out" "TLSv1\.3/TLS_[A-Z0-9_]+/ECDH=[A-Za-z0-9]+" "SHOW CLIENTS has the tls column ($(grep -o 'TLSv[^|]*' <<<"$out" | head -n 1))"
# bytes after the SSLRequest, before its answer: refused as before
out=$(mb_raw 0000000804d2162f "$(mb_startup_hex user "$su" database "$MB_DB")" 2>&1)
mb_like "$out" 'unencrypted data after SSL request' "bytes behind an SSLRequest are refused ($(echo "$out" | head -c 80))"

# ---- a large result and a large statement through TLS (records split across buffers in the small pass)
want=$(printf 'y%.0s' $(seq 1 300000) | md5sum | cut -d' ' -f1)
got=$(q "sslmode=require" "SELECT md5(repeat('y', 300000))")
mb_is "$got" "$want" "a 300 kB statement reaches the server whole through TLS"
# several times: the last record of a result may wait for the socket with nothing more to send behind it
want=$(printf 'z%.0s' $(seq 1 500000) | md5sum | cut -d' ' -f1)
for ((i = 1; i <= 8; i++)); do
	got=$(q "sslmode=require" "SELECT repeat('z', 500000)" | tr -d '\n' | md5sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || break
done
mb_is "$got" "$want" "500 kB results come back whole through TLS (8 times, the last: $i)"

# ---- client_tls_sslmode = verify-ca: the client's certificate is checked
mb_set client_tls_sslmode verify-ca
mb_reload
out=$(q "sslmode=require" "SELECT 1")
mb_unlike "$out" "^1$" "verify-ca refuses a client without a certificate ($(echo "$out" | head -c 100))"
mb_is "$(q "sslmode=require sslcert=$C/client.crt sslkey=$C/client.key" "SELECT 6")" 6 \
	"verify-ca lets in a client with a certificate of the CA"
out=$(q "sslmode=require sslcert=$C/stranger.crt sslkey=$C/stranger.key" "SELECT 7")
mb_unlike "$out" "^7$" "verify-ca refuses a certificate of another CA ($(echo "$out" | head -c 100))"
mb_like "$(grep "TLS handshake failed" "$MB_LOG" | tail -n 1)" "certificate" "the pooler logs why the handshake failed"

# ---- reload: a bad certificate keeps the old one; a new one is read
mb_set client_tls_sslmode require
mb_set client_tls_cert_file "$C/garbage.crt"
mark=$(wc -l <"$MB_LOG")
mb_write_config
kill -HUP "$MB_PID"
mb_wait_line "$MB_LOG" "reload failed: could not load client_tls_cert_file" 10
mb_is "$?" 0 "a reload with a bad certificate fails and says why"
mb_is "$(q "sslmode=verify-ca sslrootcert=$C/ca.crt sslcert=$C/client.crt sslkey=$C/client.key" "SELECT 8")" 8 \
	"...and the previous settings stay (verify-ca still in force, the old certificate served)"
mb_set client_tls_cert_file "$C/pg_elsewhere.crt"
mb_set client_tls_key_file "$C/pg_elsewhere.key"
mb_reload
mb_like "$(tail -n +"$mark" "$MB_LOG")" "configuration reloaded" "a reload with good files succeeds"
out=$(q "sslmode=verify-full sslrootcert=$C/ca.crt host=elsewhere.test hostaddr=127.0.0.1" "SELECT 9")
mb_is "$out" 9 "the reloaded certificate is served to new clients"
# a certificate renewed in place (same file names, new contents) is read at the next reload
cp -p "$C/pooler.crt" "$C/served.crt" && cp -p "$C/pooler.key" "$C/served.key"
mb_set client_tls_cert_file "$C/served.crt"
mb_set client_tls_key_file "$C/served.key"
mb_reload
mb_is "$(q "sslmode=verify-full sslrootcert=$C/ca.crt host=localhost hostaddr=127.0.0.1" "SELECT 10")" 10 \
	"a certificate under new file names after a reload"
cp -p "$C/pg_elsewhere.crt" "$C/served.crt" && cp -p "$C/pg_elsewhere.key" "$C/served.key"
mb_reload
mb_is "$(q "sslmode=verify-full sslrootcert=$C/ca.crt host=elsewhere.test hostaddr=127.0.0.1" "SELECT 11")" 11 \
	"a certificate renewed in place is served after the reload"
mb_set client_tls_cert_file "$C/pooler.crt"
mb_set client_tls_key_file "$C/pooler.key"
mb_reload

# ---- pgbench over TLS in transaction mode: no failed transaction
if mb_pgbench_init 1; then
	out=$(PGSSLMODE=require PGPASSWORD=$sp timeout 120 "$PG_BINDIR/pgbench" -n -c 30 -j 2 -T 4 -h 127.0.0.1 \
		-p "$MB_PORT" -U "$su" "$MB_DB" 2>&1)
	rc=$?
	mb_is "$rc" 0 "pgbench -c 30 over TLS exits 0"
	mb_like "$out" "number of failed transactions: 0 " "pgbench over TLS: no failed transaction"
	mb_unlike "$(grep -E 'ERROR|FATAL' <<<"$out" | head -n 3)" "." "pgbench over TLS: no error"
else
	mb_not_ok "pgbench -i" "$(tail -n 5 "$T_DIR/init.log")"
fi
mb_stop

# ---- server side: a cluster of the test's own with ssl = on
pg_own_init "ssl = on" "ssl_cert_file = '$C/pg.crt'" "ssl_key_file = '$C/pg.key'" ||
	{ mb_not_ok "the test's own cluster starts with ssl = on"; mb_test_done; }
pg_own_psql postgres -c "CREATE ROLE tlsuser LOGIN" -c "CREATE DATABASE tlsdb OWNER tlsuser" >/dev/null
PGPASSWORD=x timeout 120 "$PG_BINDIR/pgbench" -i -q -s 1 -h 127.0.0.1 -p "$OWN_PORT" -U tlsuser tlsdb \
	>"$T_DIR/own_init.log" 2>&1 || mb_diag "pgbench -i on the own cluster: $(tail -n 3 "$T_DIR/own_init.log")"
mb_reset
mb_db tlsdb "host=127.0.0.1 port=$OWN_PORT dbname=tlsdb user=tlsuser"
mb_pgdb plaindb "" "$MB_DB"
mb_user "$su" "$sp"
mb_set pool_mode transaction
mb_set server_login_retry 0.2
mb_set client_tls_sslmode require
mb_set client_tls_key_file "$C/pooler.key"
mb_set client_tls_cert_file "$C/pooler.crt"
mb_set server_tls_sslmode verify-full
mb_set server_tls_ca_file "$C/ca.crt"
mb_set admin_users "$su"
mb_start_or_bail
sq() { pqt query "$(mb_connstr "$su" "$sp" "${3:-tlsdb}" "sslmode=require $1")" "$2" 2>&1; }
mb_is "$(sq "" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" t \
	"server_tls_sslmode = verify-full: PostgreSQL sees the connection in TLS (pg_stat_ssl)"
out=$(pqt query "$(mb_connstr "$su" "$sp" pgbouncer "sslmode=require")" "SHOW SERVERS" 2>&1)
mb_like "$out" "TLSv1\.3/TLS_" "SHOW SERVERS has the tls column"
want=$(printf 's%.0s' $(seq 1 400000) | md5sum | cut -d' ' -f1)
for ((i = 1; i <= 8; i++)); do
	got=$(sq "" "SELECT repeat('s', 400000)" | tr -d '\n' | md5sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || break
done
mb_is "$got" "$want" "400 kB results through TLS on both sides (8 times, the last: $i)"
out=$(PGSSLMODE=require PGPASSWORD=$sp timeout 120 "$PG_BINDIR/pgbench" -n -c 50 -j 2 -T 4 -h 127.0.0.1 \
	-p "$MB_PORT" -U "$su" tlsdb 2>&1)
rc=$?
mb_is "$rc" 0 "pgbench -c 50 (transaction mode) over TLS on both sides exits 0"
mb_like "$out" "number of failed transactions: 0 " "pgbench over TLS on both sides: no failed transaction"
# the shared cluster has no TLS: prefer falls back to plain text, require is refused
mb_set server_tls_sslmode prefer
mb_reload
mb_is "$(sq "" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" plaindb)" f \
	"server_tls_sslmode = prefer: plain text with a server without TLS"
mb_set server_tls_sslmode require
mb_set pool_mode session
mb_reload
# a change of server_tls_* replaces the servers: the idle one made under prefer is not used again
out=$(pqt query "$(mb_connstr "$su" "$sp" plaindb "sslmode=require")" "SELECT 1" 2>&1)
mb_like "$out" "server refused SSL" "server_tls_sslmode = require: a server without TLS is refused ($out)"
mb_like "$(grep "S-.* plaindb/" "$MB_LOG" | grep "closing because" | head -n 1)" "server TLS settings changed" \
	"...after the reload closed the idle server made under prefer"
# a wrong CA
mb_set server_tls_sslmode verify-ca
mb_set server_tls_ca_file "$C/other.crt"
mb_reload
out=$(sq "" "SELECT 1")
mb_like "$out" "certificate verify failed" "verify-ca refuses a server certificate of another CA ($out)"
# a certificate for another host name: verify-ca takes it, verify-full does not
echo "ssl_cert_file = '$C/pg_elsewhere.crt'" >>"$OWN_DIR/data/postgresql.conf"
echo "ssl_key_file = '$C/pg_elsewhere.key'" >>"$OWN_DIR/data/postgresql.conf"
pg_own_psql postgres -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
mb_set server_tls_ca_file "$C/ca.crt"
mb_set server_tls_sslmode verify-full
mb_set pool_mode transaction
mb_reload
out=$(sq "" "SELECT 1")
mb_like "$out" "certificate verify failed: (IP address|[Hh]ostname) mismatch" "verify-full refuses a certificate for another host name ($out)"
mb_set server_tls_sslmode verify-ca
mb_reload
# the failed login's error is handed out for server_login_retry: ask again once it has passed
for ((i = 0; i < 50; i++)); do
	out=$(sq "" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
	[[ $out == *server_login_retry* ]] || break
	sleep 0.1
done
mb_is "$out" t "verify-ca takes it (the CA is right)"
mb_stop

mb_test_done
