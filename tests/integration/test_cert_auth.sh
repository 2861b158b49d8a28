#!/usr/bin/env bash
# auth_type cert and hba cert rules: a client certificate that verifies against client_tls_ca_file and names the
# user (CommonName, or a subjectAltName DNS name) logs in without a password; another name, a certificate of
# another CA, none at all, a plain connection or a user unknown to auth_file are refused with PgBouncer's
# "certificate authentication failed"; with map= the ident map says which certificate names may be which user.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init cert_auth

command -v openssl >/dev/null || { mb_not_ok "the openssl command line is installed"; mb_test_done; }
su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
C=$T_DIR/certs
if mb_cert_ca ca "cert auth test CA" && mb_cert_ca other "another CA" && mb_cert pooler localhost ca "DNS:localhost" &&
	mb_cert mine "$su" ca && mb_cert alias "$su.alias" ca && mb_cert bob bob ca && mb_cert forged "$su" other; then
	mb_ok "certificates made with openssl"
else
	mb_not_ok "certificates made with openssl" "$(tail -n 5 "$C/openssl.log")"
	mb_test_done
fi
mb_chown_pg "$C"

mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type cert
mb_set client_tls_sslmode require
mb_set client_tls_cert_file "$C/pooler.crt"
mb_set client_tls_key_file "$C/pooler.key"
mb_set client_tls_ca_file "$C/ca.crt"
mb_start_or_bail
# as USER with certificate NAME (or none): login USER NAME
login() {
	local tls="sslmode=require"
	[ -n "$2" ] && tls="$tls sslcert=$C/$2.crt sslkey=$C/$2.key"
	pqt query "host=127.0.0.1 port=$MB_PORT user=$1 dbname=$MB_DB connect_timeout=10 $tls" "SELECT current_user" 2>&1
}
FAILED="ERROR 08P01 certificate authentication failed"

mb_is "$(login "$su" mine)" "$su" "a certificate naming the user logs in without a password"
mb_is "$(login "$su" bob)" "$FAILED" "a certificate of another name is refused"
mb_is "$(login bob bob)" "$FAILED" "a user unknown to auth_file is refused the same way"
mb_is "$(login "$su" "")" "$FAILED" "no certificate: refused"
mb_like "$(login "$su" forged)" "^ERROR" "a certificate of another CA does not get through the handshake"
mb_like "$(cat "$MB_LOG")" "TLS certificate name mismatch" "the log says why"
out=$(pqt query "host=127.0.0.1 port=$MB_PORT user=$su dbname=$MB_DB sslmode=disable connect_timeout=10" "SELECT 1" 2>&1)
mb_like "$out" "^ERROR" "a plain connection is refused"

# --- hba: cert for one user through an ident map, scram-sha-256 for the rest
cat >"$T_DIR/hba.conf" <<HBA
hostssl all $su 127.0.0.1/32 cert map=certnames
host    all all 127.0.0.1/32 scram-sha-256
HBA
cat >"$T_DIR/ident.conf" <<IDENT
certnames $su.alias $su
IDENT
mb_chown_pg "$T_DIR/hba.conf" "$T_DIR/ident.conf"
mb_set auth_type hba
mb_set auth_hba_file "$T_DIR/hba.conf"
mb_set auth_ident_file "$T_DIR/ident.conf"
mb_start_or_bail
mb_is "$(login "$su" alias)" "$su" "hba cert with map=: a certificate name the map gives to the user logs in"
mb_is "$(login "$su" mine)" "$FAILED" "... the user's own name, not in the map, is refused"
mb_like "$(cat "$MB_LOG")" "ident map certnames does not have a match" "the log names the map"

mb_test_done
