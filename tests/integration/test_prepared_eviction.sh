#!/usr/bin/env bash
# max_prepared_statements = 10 with one server: 50 statements in rotation from 3 clients stay correct,
# and the server never holds more than 10 of the pooler's statements (counted in pg_prepared_statements
# through that one server after every statement). Takes about 5 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init prepared_eviction

mb_tool prepared_tool PTOOL
pts() { timeout 60 "$PTOOL" script "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb mb_one "pool_size=1"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_set pool_mode transaction
mb_set max_prepared_statements 10
mb_start_or_bail -v
c=$(mb_connstr "$su" "$sp" mb_one)
mb_count() {
	pqt query "$c" "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'MB\_%'" 2>&1
}

# --- 3 clients, each with its own 50 names for the same 50 texts, in different orders
for p in a b c; do
	off=$(( $(printf '%d' "'$p") * 7 ))
	mb_bg "$T_DIR/rotate.$p" "$PTOOL" rotate "$c" "${p}_" 50 20 "$off"
	rpids[off]=$MB_BG_PID
	rname[off]=$p
done
for off in "${!rpids[@]}"; do
	p=${rname[off]}
	mb_wait_exit "${rpids[off]}" 90 || { kill "${rpids[off]}" 2>/dev/null; echo TIMEOUT >>"$T_DIR/rotate.$p"; }
	st=${MB_EXIT_STATUS:-1}
	line=$(grep '^rotate ' "$T_DIR/rotate.$p")
	if [ "$st" = 0 ] && [[ "$line" == *"mismatches 0" ]]; then
		mb_ok "client $p: 50 statements x 20 rounds (with Describe), every result right"
	else
		mb_not_ok "client $p: 50 statements x 20 rounds (with Describe), every result right" \
			"$(head -n 20 "$T_DIR/rotate.$p")"
	fi
	mb_like "$line" 'backends 1,' "client $p: all on the one server"
	mb_like "$line" 'mb_max 10,' "client $p: after every statement the server held at most 10 (and reached 10)"
	mb_diag "$line"
done
mb_is "$(mb_count)" 10 "afterwards the server holds 10 of the pooler's statements"

# --- one pipeline: 50 Parses, then 50 Bind/Execute, one Sync
args=()
want=""
for ((i = 0; i < 50; i++)); do
	args+=(P "pl$i" "SELECT \$1::int * 1000 + $i AS r$i" -)
	want+=" 1"
done
for ((i = 0; i < 50; i++)); do
	args+=(B "pl$i" "$i" E)
	want+=" 2 D:$((i * 1000 + i)) C:SELECT 1"
done
out=$(pts "$c" "${args[@]}" S)
mb_is "$out" "${want# } Z:I" "a pipeline of 50 new statements and their 50 executions: every answer right, in order"
mb_is "$(mb_count)" 10 "the server still holds 10 of the pooler's statements"

# --- eviction and on-demand preparing across clients on one server: the last 10 and the first 10
out=$(pts "$c" P e0 'SELECT $1::int * 1000 + 0 AS r0' - P e49 'SELECT $1::int * 1000 + 49 AS r49' - \
	B e0 1 E B e49 1 E D e0 S)
mb_is "$out" "1 1 2 D:1000 C:SELECT 1 2 D:1049 C:SELECT 1 t:23 T:r0 Z:I" \
	"another client: an evicted text is prepared again, a cached one is used, Describe of it is right"
mb_is "$(mb_count)" 10 "... and the server holds 10"

# --- a client drops its connection with injected Parses and eviction Closes in flight
out=$(pts "$c" P q1 'SELECT $1::int + 2001' - B q1 1 E P "" 'SELECT pg_sleep(0.3)' - B "" - E \
	P q2 'SELECT $1::int + 2002' - B q2 1 E B pl0 1 E P q3 'SELECT $1::int + 2003' - B q3 1 E S QUIT)
mb_is "$out" "QUIT" "a client sends a pipeline and disconnects at once"
out=$(pts "$c" P r1 'SELECT $1::int + 2001' - B r1 1 E P r2 'SELECT $1::int + 2002' - B r2 1 E \
	P r3 'SELECT $1::int + 2003' - B r3 1 E P r0 'SELECT $1::int * 1000 + 0 AS r0' - B r0 5 E S)
mb_is "$out" "1 2 D:2002 C:SELECT 1 1 2 D:2003 C:SELECT 1 1 2 D:2004 C:SELECT 1 1 2 D:5000 C:SELECT 1 Z:I" \
	"the next client's statements of the same texts work"
n=$(mb_count)
mb_like "$n" '^([1-9]|10)$' "the server holds at most 10 ($n)"

mb_test_done
