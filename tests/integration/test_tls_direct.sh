#!/usr/bin/env bash
# Direct TLS negotiation (PostgreSQL 17's sslnegotiation=direct, which libpq 15 cannot send: a node.js client by
# hand): a connection whose first bytes are a TLS handshake logs in inside TLS with no SSLRequest; ALPN
# "postgresql" is chosen when offered, a client that offers only another protocol is refused with TLS's
# no_application_protocol alert; with client_tls_sslmode = disable a TLS record is not a startup packet.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init tls_direct

command -v openssl >/dev/null || { mb_not_ok "the openssl command line is installed"; mb_test_done; }
command -v node >/dev/null || { mb_not_ok "node.js is installed"; mb_test_done; }
C=$T_DIR/certs
if mb_cert_ca ca "direct TLS test CA" && mb_cert pooler localhost ca "DNS:localhost"; then
	mb_ok "certificates made with openssl"
else
	mb_not_ok "certificates made with openssl" "$(tail -n 5 "$C/openssl.log")"
	mb_test_done
fi
mb_chown_pg "$C"
su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type trust
mb_set client_tls_sslmode require
mb_set client_tls_cert_file "$C/pooler.crt"
mb_set client_tls_key_file "$C/pooler.key"
mb_set log_connections 1
mb_start_or_bail
direct() { timeout 30 node "$(dirname "$0")/direct_tls.js" 127.0.0.1 "$MB_PORT" "$su" "$MB_DB" "$1" 2>&1; }

mb_is "$(direct postgresql)" "alpn=postgresql D:7 Z" "a direct TLS handshake with ALPN postgresql: logged in inside TLS, a query runs"
mb_is "$(direct -)" "alpn=none D:7 Z" "without ALPN: the same"
mb_like "$(direct http/1.1)" "^ERROR .*(NO_APPLICATION_PROTOCOL|ALPN|alert)" "ALPN offering only another protocol: refused in the handshake"
mb_like "$(grep "login attempt: db=$MB_DB user=$su tls=TLSv1" "$MB_LOG" | head -n 1)" "tls=TLSv1\.[23]/" "the log names the TLS of a direct login"
out=$(pqt query "$(mb_connstr "$su" "$sp" "$MB_DB" sslmode=require)" "SELECT 'after SSLRequest'")
mb_is "$out" "after SSLRequest" "an SSLRequest first still works"

# a client that stops in the middle of the handshake is cut off at client_login_timeout
mb_set client_login_timeout 1
mb_start_or_bail
t0=$(date +%s)
out=$(timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$MB_PORT"'
	printf "\x00\x00\x00\x08\x04\xd2\x16\x2f" >&3	# SSLRequest, then nothing: no ClientHello
	head -c 1 <&3; cat <&3 >/dev/null; echo " closed"' 2>&1)
t1=$(date +%s)
mb_is "$out" "S closed" "SSLRequest answered, then the silent client is closed by the pooler"
mb_lt $((t1 - t0)) 15 "... at client_login_timeout (1 s), not when the test gives up (20 s)"

mb_set client_tls_sslmode disable
mb_start_or_bail
mb_like "$(direct postgresql)" "^(ERROR|CLOSED)" "client_tls_sslmode = disable: a TLS record is refused"
mb_check_healthy "plain logins work"

mb_test_done
