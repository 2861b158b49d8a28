#!/usr/bin/env bash
# Transaction pooling: a client's startup parameters follow it from server to server, RESET returns to them,
# and they never leak to the other clients of those servers.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init txn_params

mb_tool txn_tool TXN_TOOL
# lines of OUT for connection NAME, without the "NAME: " prefix

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB" "pool_size=3"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_start_or_bail
server_tz=$(pg_super_psql -d postgres -c "SHOW TimeZone")
c=$(mb_connstr "$su" "$sp" "$MB_DB")
probe="SELECT pg_backend_pid(), current_setting('application_name'), current_setting('DateStyle'),
	current_setting('statement_timeout'), current_setting('TimeZone'), current_setting('search_path')"
probe=${probe//$'\n'/ }

# m: DateStyle as a startup parameter (PGDATESTYLE), application_name, and three settings through options.
# o1..o3: no parameters. In each round k of the others hold a server in an open transaction, so that m runs
# on a different server, and then they use the servers m has used.
script=$({
	echo "env PGDATESTYLE SQL, DMY"
	echo "open m $c application_name=txn_main options='-c statement_timeout=300ms -c TimeZone=Asia/Tokyo -c search_path=txn_schema'"
	echo "unenv PGDATESTYLE"
	echo "open o1 $c"
	echo "open o2 $c"
	echo "open o3 $c"
	for r in 0 1 2 3 4 5 6 7 8; do
		k=$((r % 3))
		for ((i = 1; i <= k; i++)); do
			echo "q o$i BEGIN"
			echo "q o$i $probe"
		done
		echo "q m $probe"
		for ((i = 1; i <= k; i++)); do
			echo "q o$i COMMIT"
		done
		# the others on whatever server is free now (often the one m just left)
		echo "q o$(((r % 3) + 1)) $probe"
	done
	echo "ps m DateStyle"
	echo "ps m application_name"
	echo "ps m TimeZone"
})
out=$(tt <<<"$script" 2>&1)
m_lines=$(lines_of "$out" m | grep -E '^[0-9]+\|')
o_lines=$(lines_of "$out" 'o[0-9]' | grep -E '^[0-9]+\|')
m_pids=$(cut -d'|' -f1 <<<"$m_lines" | sort -u | wc -l)
mb_is "$(grep -c . <<<"$m_lines")" 9 "the client with parameters ran 9 transactions"
mb_is "$m_pids" 3 "its transactions ran on all 3 servers of the pool (pg_backend_pid changed)"
mb_is "$(cut -d'|' -f2- <<<"$m_lines" | sort -u)" "txn_main|SQL, DMY|300ms|Asia/Tokyo|txn_schema" \
	"application_name, DateStyle, statement_timeout, TimeZone, search_path in force on every server it used"
mb_is "$(lines_of "$out" m | grep '=')" $'DateStyle=SQL, DMY\napplication_name=txn_main\nTimeZone=Asia/Tokyo' \
	"ParameterStatus as the client asked"
shared=0
for p in $(cut -d'|' -f1 <<<"$m_lines" | sort -u); do
	grep -q "^$p|" <<<"$o_lines" && shared=$((shared + 1))
done
mb_like "$shared" '^[1-9]' "the other clients used servers the first client had used ($shared of $m_pids)"
mb_is "$(cut -d'|' -f2- <<<"$o_lines" | sort | uniq -c | sed 's/^ *//')" \
	"$(grep -c . <<<"$o_lines") |ISO, MDY|0|$server_tz|\"\$user\", public" \
	"clients without parameters see the server defaults on those servers, nothing of the first client's"
if [ "$m_pids" != 3 ] || grep -q ERROR <<<"$out"; then
	mb_diag "$out"
fi

# statement_timeout from options works as a timeout (it is not just reported), on whichever server
out=$(tt <<EOF 2>&1
open m $c options='-c statement_timeout=300ms'
open o $c
q o BEGIN
q m SELECT pg_sleep(2)
q o COMMIT
q m SELECT pg_sleep(2)
EOF
)
mb_is "$(lines_of "$out" m | sed 1d)" $'ERROR 57014 canceling statement due to statement timeout
ERROR 57014 canceling statement due to statement timeout' "options=-c statement_timeout=300ms cancels a 2 s query"

# RESET DateStyle / RESET name / RESET ALL return to the client's own startup values, also on other servers
script=$({
	echo "env PGDATESTYLE SQL, DMY"
	echo "open m $c application_name=txn_main options='-c statement_timeout=300ms'"
	echo "unenv PGDATESTYLE"
	echo "open o1 $c"
	echo "open o2 $c"
	echo "echo m: -- datestyle"
	echo "q m SET DateStyle = 'German'"
	echo "q m SHOW DateStyle"
	echo "ps m DateStyle"
	echo "q m RESET DateStyle"
	echo "q m SHOW DateStyle"
	echo "ps m DateStyle"
	echo "q o1 BEGIN"
	echo "q m SHOW DateStyle"
	echo "q o1 COMMIT"
	echo "echo m: -- statement_timeout"
	echo "q m SET statement_timeout = '5s'"
	echo "q m RESET statement_timeout"
	echo "q m SHOW statement_timeout"
	echo "q o1 BEGIN"
	echo "q o2 BEGIN"
	echo "q m SHOW statement_timeout"
	echo "q o1 COMMIT"
	echo "q o2 COMMIT"
	echo "echo m: -- all"
	echo "q m SET application_name = 'changed'"
	echo "q m SET DateStyle = 'Postgres, YMD'"
	echo "q m SHOW application_name"
	echo "q m RESET ALL"
	echo "q m SELECT current_setting('application_name'), current_setting('DateStyle'), current_setting('statement_timeout')"
	echo "ps m application_name"
	echo "ps m DateStyle"
	echo "q o1 BEGIN"
	echo "q m SELECT current_setting('application_name'), current_setting('DateStyle'), current_setting('statement_timeout')"
	echo "q o1 COMMIT"
	echo "echo m: --"
})
out=$(tt <<<"$script" 2>&1)
m=$(lines_of "$out" m | grep -v connected)
section() { sed -n "/^-- $1\$/,/^--/p" <<<"$m" | sed '1d;/^--/d'; }
mb_is "$(section datestyle)" $'SET\nGerman, DMY\nDateStyle=German, DMY\nRESET\nSQL, DMY\nDateStyle=SQL, DMY\nSQL, DMY' \
	"SET DateStyle follows the client; RESET DateStyle returns to its startup value (SQL, DMY), also on another server"
mb_is "$(section statement_timeout)" $'SET\nRESET\n300ms\n300ms' \
	"RESET statement_timeout returns to the value from options (300ms), also on another server"
mb_is "$(section all)" \
	$'SET\nSET\nchanged\nRESET\ntxn_main|SQL, DMY|300ms\napplication_name=txn_main\nDateStyle=SQL, DMY\ntxn_main|SQL, DMY|300ms' \
	"RESET ALL returns application_name, DateStyle and statement_timeout to the startup values"
grep -q ERROR <<<"$out" && mb_diag "$out"

mb_test_done
