#!/usr/bin/env bash
# Regenerate admin_columns.tsv (each SHOW command and its columns name:type) from a PgBouncer binary:
#   tests/integration/admin_columns.sh /tmp/pgbouncer-1.25.2/build/pgbouncer >tests/integration/admin_columns.tsv
# (shared/reference/build-pgbouncer.sh builds 1.25.2.) Needs build/pqtool (make build/pqtool).
set -euo pipefail
bin=${1:?usage: admin_columns.sh PGBOUNCER_BINARY}
repo=$(cd "$(dirname "$0")/../.." && pwd)
pqtool=$repo/build/pqtool
dir=$(mktemp -d /tmp/mbcols.XXXXXX)
port=$((20000 + RANDOM % 10000))
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
cat >"$dir/pgbouncer.ini" <<INI
[databases]
db = host=127.0.0.1 port=1
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
admin_users = admin
logfile = $dir/log
INI
if [ "$(id -u)" = 0 ]; then
	chown -R postgres "$dir"
	runuser -u postgres -- "$bin" "$dir/pgbouncer.ini" >/dev/null 2>&1 &
else
	"$bin" "$dir/pgbouncer.ini" >/dev/null 2>&1 &
fi
pid=$!
for ((i = 0; i < 50; i++)); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done
version=$("$pqtool" query "host=127.0.0.1 port=$port user=admin dbname=pgbouncer" "SHOW VERSION")
echo "# SHOW commands of $version: columns as name:type (tests/integration/admin_columns.sh)"
for cmd in ACTIVE_SOCKETS CLIENTS CONFIG DATABASES DNS_HOSTS DNS_ZONES LISTS MEM PEERS PEER_POOLS POOLS \
	SERVERS SOCKETS STATE STATS STATS_AVERAGES STATS_TOTALS TOTALS USERS VERSION; do
	printf 'SHOW %s\t%s\n' "$cmd" "$("$pqtool" columns "host=127.0.0.1 port=$port user=admin dbname=pgbouncer" \
		"SHOW $cmd")"
done
