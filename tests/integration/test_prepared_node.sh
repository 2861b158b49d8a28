#!/usr/bin/env bash
# Node drivers through transaction pooling with named prepared statements: node-postgres named queries
# and postgres.js (prepares every parameterised query), several connections on 3 servers, thousands of
# mixed statements, zero errors. The drivers come from npm, pinned in tests/drivers/package-lock.json
# (`npm ci` when node_modules is missing or older than the lockfile). Takes about 10 s (plus npm ci).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prepared_node

drivers=$MB_REPO/tests/drivers
stamp=$drivers/node_modules/.mb-npm-ci

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	mb_not_ok "node and npm are installed (apt-get install nodejs npm)"
	mb_test_done
fi
if [ ! -f "$stamp" ] || [ "$drivers/package-lock.json" -nt "$stamp" ]; then
	if (cd "$drivers" && timeout 300 npm ci --no-audit --no-fund) >"$T_DIR/npm.log" 2>&1; then
		touch "$stamp"
	else
		mb_not_ok "npm ci in tests/drivers (installs pg and postgres from the npm registry, which must be reachable)" \
			"$(tail -n 15 "$T_DIR/npm.log")"
		mb_test_done
	fi
fi
if ! out=$(cd "$drivers" && node -e "require('pg'); require('postgres'); console.log('ok')" 2>&1); then
	mb_not_ok "the drivers load (require pg, postgres)" "$out"
	mb_test_done
fi

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb mb_db
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set default_pool_size 3
mb_start_or_bail -v
c=$(mb_connstr "$su" "$sp" mb_db)

pg_super_psql -d "$MB_DB" >/dev/null <<-EOF
	SET client_min_messages = warning;
	DROP TABLE IF EXISTS drv_pg, drv_js;
	CREATE TABLE drv_pg (conn int, v int);
	CREATE TABLE drv_js (worker int, v int);
	GRANT ALL ON drv_pg, drv_js TO PUBLIC;
EOF

# server side after a driver ran: only shared statements, none under a driver's own name; 3 servers
server_side() {
	local what=$1 out n
	out=$(pqt query "$c" "SELECT count(*) FILTER (WHERE name LIKE 'MB\_%') > 0, count(*) FILTER (WHERE name NOT LIKE 'MB\_%')
		FROM pg_prepared_statements" 2>&1)
	mb_is "$out" $'t\t0' "$what: the server holds the pooler's MB_ statements, none under the driver's names"
	n=$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE datname = '$MB_DB' AND usename = '$su' AND backend_type = 'client backend'")
	mb_like "$n" '^[1-3]$' "$what: at most 3 server connections ($n)"
}

# counts JSON-FIELD: {"0": n, ...} as "0|n 1|n ..." (the table's GROUP BY order)
js_counts() { node -e 'const a = JSON.parse(process.argv[1]).committed;
	console.log(a.map((n, i) => `${i}|${n}`).join(" "))' "$1" 2>/dev/null; }

# --- node-postgres: 8 connections x 500 iterations of named queries
out=$(cd "$drivers" && timeout 60 node pg_named.js 127.0.0.1 "$MB_PORT" "$su" "$sp" mb_db 8 500 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
	mb_ok "node-postgres: 8 connections, named queries, every result right, no unexpected error"
elif [ "$rc" = 124 ]; then
	mb_not_ok "node-postgres: 8 connections, named queries, every result right, no unexpected error" \
		"did not finish within 60 s" "$out"
else
	mb_not_ok "node-postgres: 8 connections, named queries, every result right, no unexpected error" "$out"
fi
statements=$(grep -o '"statements":[0-9]*' <<<"$out" | cut -d: -f2)
mb_like "${statements:-0}" '^[0-9]{4,}$' "node-postgres: thousands of statements (${statements:-none})"
mb_diag "node-postgres: $(cut -c1-300 <<<"$out")"
got=$(pg_super_psql -d "$MB_DB" -c "SELECT conn, count(*) FROM drv_pg GROUP BY 1 ORDER BY 1" | tr '\n' ' ')
mb_is "${got% }" "$(js_counts "$out")" "node-postgres: committed rows in the table, rolled back ones not"
server_side node-postgres

# --- postgres.js: 16 workers on 6 connections x 300 iterations, pipelining on each connection
out=$(cd "$drivers" && timeout 40 node postgresjs.js 127.0.0.1 "$MB_PORT" "$su" "$sp" mb_db 6 16 300 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
	mb_ok "postgres.js: 16 workers on 6 connections, every result right, no error"
elif [ "$rc" = 124 ]; then
	mb_not_ok "postgres.js: 16 workers on 6 connections, every result right, no error" \
		"did not finish within 40 s (hang); pooler log:" \
		"$(grep -v 'login attempt\|client close\|unexpected eof' "$MB_LOG" | grep -v NOISE | tail -n 8)"
else
	mb_not_ok "postgres.js: 16 workers on 6 connections, every result right, no error" "$out"
fi
statements=$(grep -o '"statements":[0-9]*' <<<"$out" | cut -d: -f2)
mb_like "${statements:-0}" '^[0-9]{4,}$' "postgres.js: thousands of statements (${statements:-none})"
mb_diag "postgres.js: $(cut -c1-300 <<<"$out")"
got=$(pg_super_psql -d "$MB_DB" -c "SELECT worker, count(*) FROM drv_js GROUP BY 1 ORDER BY 1" | tr '\n' ' ')
mb_is "${got% }" "$(js_counts "$out")" "postgres.js: committed rows in the table, rolled back ones not"
server_side postgres.js

mb_test_done
