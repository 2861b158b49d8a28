#!/usr/bin/env bash
# JDBC through transaction pooling with named prepared statements: pgjdbc (Debian's
# libpostgresql-jdbc-java) with prepareThreshold=1 and a small statement cache (so it also closes
# statements), 8 connections on 3 servers, thousands of mixed statements, batches and transactions,
# zero errors. Takes about 5 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prepared_jdbc

jar=${MB_JDBC_JAR:-/usr/share/java/postgresql.jar}
src=$MB_REPO/tests/drivers/PreparedJdbc.java
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
	mb_not_ok "java and javac are installed (apt-get install default-jdk-headless)"
	mb_test_done
fi
if [ ! -f "$jar" ]; then
	mb_not_ok "the JDBC driver $jar exists (apt-get install libpostgresql-jdbc-java)"
	mb_test_done
fi
mkdir -p "$T_DIR/classes"
if ! out=$(timeout 120 javac -d "$T_DIR/classes" -cp "$jar" "$src" 2>&1); then
	mb_not_ok "compile $src" "$out"
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
	DROP TABLE IF EXISTS drv_jdbc;
	CREATE TABLE drv_jdbc (thread int, v int);
	GRANT ALL ON drv_jdbc TO PUBLIC;
EOF

out=$(timeout 90 java -cp "$jar:$T_DIR/classes" PreparedJdbc "jdbc:postgresql://127.0.0.1:$MB_PORT/mb_db" "$su" "$sp" \
	8 600 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
	mb_ok "JDBC: 8 connections, prepareThreshold=1, every result right, no error"
elif [ "$rc" = 124 ]; then
	mb_not_ok "JDBC: 8 connections, prepareThreshold=1, every result right, no error" "did not finish within 90 s" "$out"
else
	mb_not_ok "JDBC: 8 connections, prepareThreshold=1, every result right, no error" "$out"
fi
statements=$(sed -n 's/^jdbc: \([0-9]*\) statements.*/\1/p' <<<"$out")
mb_like "${statements:-0}" '^[0-9]{4,}$' "JDBC: thousands of statements (${statements:-none})"
mb_diag "$(head -n 1 <<<"$out")"

out=$(pqt query "$c" "SELECT count(*) FILTER (WHERE name LIKE 'MB\_%') > 0, count(*) FILTER (WHERE name NOT LIKE 'MB\_%')
	FROM pg_prepared_statements" 2>&1)
mb_is "$out" $'t\t0' "the server holds the pooler's MB_ statements, none under the driver's S_n names"
n=$(pg_super_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity
	WHERE datname = '$MB_DB' AND usename = '$su' AND backend_type = 'client backend'")
mb_like "$n" '^[1-3]$' "at most 3 server connections ($n)"

mb_test_done
