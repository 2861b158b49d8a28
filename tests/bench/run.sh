#!/usr/bin/env bash
# Benchmark: moonbouncer side by side with PgBouncer in front of one throwaway PostgreSQL 15.
#
#   tests/bench/run.sh [--quick] [--out DIR] [--reps N] [--time SECONDS] [--only LIST] [--keep]
#
#   --quick        fewer points, 5 s runs, 2 repetitions (a few minutes); also BENCH_QUICK=1
#   --out DIR      where results-<date>.md goes (default build/bench/ in the repository); BENCH_OUT
#   --reps N       repetitions of every point, interleaved A B A B ... (default 3, quick 2); BENCH_REPS
#   --time T       seconds per pgbench run (default 8, quick 5); BENCH_TIME
#   --only LIST    comma-separated sections: select,tpcb,churn,tls,callgrind,memory,storm,policy; BENCH_ONLY
#   --keep         keep the temporary directory (logs, configs); BENCH_KEEP=1
#
# Environment: MB_BIN (default ./moonbouncer), PGBOUNCER_BIN (default /usr/sbin/pgbouncer), PG_BINDIR.
# Runs as root (PostgreSQL and both poolers then run as the postgres OS user) or as an ordinary user.
# Only 127.0.0.1 and unix sockets are used, ports are taken from 20000-32767, and everything started is
# stopped by PID on exit, error or Ctrl-C.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/tests/bench
MB_BIN=${MB_BIN:-$REPO/moonbouncer}
PGB_BIN=${PGBOUNCER_BIN:-/usr/sbin/pgbouncer}
IDLE_BIN=${IDLE_CLIENTS_BIN:-$REPO/build/idle_clients}

QUICK=${BENCH_QUICK:-0}
OUT=${BENCH_OUT:-$REPO/build/bench}
REPS=${BENCH_REPS:-}
T=${BENCH_TIME:-}
ONLY=${BENCH_ONLY:-}
KEEP=${BENCH_KEEP:-0}

usage() {
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--out) OUT=${2:?--out needs a directory}; shift ;;
	--out=*) OUT=${1#*=} ;;
	--reps) REPS=${2:?--reps needs a number}; shift ;;
	--reps=*) REPS=${1#*=} ;;
	--time) T=${2:?--time needs seconds}; shift ;;
	--time=*) T=${1#*=} ;;
	--only) ONLY=${2:?--only needs a list}; shift ;;
	--only=*) ONLY=${1#*=} ;;
	--keep) KEEP=1 ;;
	-h | --help) usage 0 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; usage 2 ;;
	esac
	shift
done
[ "$QUICK" = 0 ] || QUICK=1

# ---------------------------------------------------------------- the matrix

if [ "$QUICK" = 1 ]; then
	: "${REPS:=2}" "${T:=5}"
	PROTOCOLS=(simple prepared)
	CLIENTS=(1 50)
	TPCB_PROTOCOLS=(simple)
	TPCB_CLIENTS=(50)
	CG_TX=(100 600)		# pgbench -t per client for the two callgrind runs (10 clients)
	MEM_CLIENTS=(1000 5000 10000)
	STORM_REPS=1
	POLICY_PROTOCOLS=(simple)
	POLICY_CLIENTS=(10 50)
	TLS_CLIENTS=(10)
else
	: "${REPS:=3}" "${T:=8}"
	PROTOCOLS=(simple extended prepared)
	CLIENTS=(1 10 50 200)
	TPCB_PROTOCOLS=(simple extended prepared)
	TPCB_CLIENTS=(1 10 50 200)
	CG_TX=(200 1200)
	MEM_CLIENTS=(1000 5000 10000)
	STORM_REPS=3
	POLICY_PROTOCOLS=(simple extended)
	POLICY_CLIENTS=(10 50)
	TLS_CLIENTS=(10 50)
fi
case $REPS in '' | *[!0-9]* | 0) echo "run.sh: --reps must be a positive integer" >&2; exit 2 ;; esac
case $T in '' | *[!0-9]* | 0) echo "run.sh: --time must be a positive integer" >&2; exit 2 ;; esac
SECTIONS=(select tpcb churn tls callgrind memory storm policy)
want() {
	[ -z "$ONLY" ] && return 0
	case ",$ONLY," in *",$1,"*) return 0 ;; esac
	return 1
}
for s in ${ONLY//,/ }; do
	case " ${SECTIONS[*]} " in *" $s "*) ;; *) echo "run.sh: unknown section '$s' (${SECTIONS[*]})" >&2; exit 2 ;; esac
done

POOL_SIZE=20
MAX_CLIENT_CONN=11000
BACKLOG=4096
PKT_BUF=4096
SCALE=10
FD_LIMIT=65536
STORM_N=1000

say() { echo "# $*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites

if [ -z "${PG_BINDIR:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
		PG_BINDIR=/usr/lib/postgresql/15/bin
	else
		PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	fi
fi
[ -x "$PG_BINDIR/initdb" ] || die "PostgreSQL binaries not found (set PG_BINDIR)"
PATH="$PG_BINDIR:$PATH"
[ -x "$MB_BIN" ] || die "$MB_BIN not found: run make first"
[ -x "$PGB_BIN" ] || die "$PGB_BIN not found (apt-get install pgbouncer)"
HAVE_VALGRIND=0
command -v valgrind >/dev/null && HAVE_VALGRIND=1

# the idle/storm client, rebuilt when its source is newer
if [ ! -x "$IDLE_BIN" ] || [ "$HERE/idle_clients.c" -nt "$IDLE_BIN" ]; then
	mkdir -p "$(dirname "$IDLE_BIN")"
	# shellcheck disable=SC2046
	${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror $(pkg-config --cflags libpq) -o "$IDLE_BIN" \
		"$HERE/idle_clients.c" $(pkg-config --libs libpq) || die "cannot build $IDLE_BIN"
fi

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
if [ "$IS_ROOT" = 1 ]; then
	id postgres >/dev/null 2>&1 || die "no postgres OS user to run PostgreSQL and the poolers as"
	as_pg() { (cd / && runuser -u postgres -- "$@"); }
	# exec, so that $! of a background job is the program's own PID
	exec_as_pg() { exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
else
	as_pg() { "$@"; }
	exec_as_pg() { exec "$@"; }
fi

# file descriptors for 10,000 clients (the poolers inherit the limit)
# (a container may refuse to raise the hard limit even to root: then the hard limit it is)
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$FD_LIMIT" ]; then
	ulimit -Hn "$FD_LIMIT" 2>/dev/null
fi
if [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$FD_LIMIT" ]; then
	ulimit -Sn "$FD_LIMIT"
else
	ulimit -Sn "$(ulimit -Hn)"
fi
[ "$(ulimit -Sn)" = unlimited ] || [ "$(ulimit -Sn)" -ge 10100 ] ||
	say "warning: open file limit $(ulimit -Sn) is too low for 10,000 clients"

D=$(mktemp -d /tmp/mbbench.XXXXXX) || die "mktemp failed"
chmod 755 "$D"
[ "$IS_ROOT" = 1 ] && chown postgres: "$D"
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" || die "cannot create $OUT"
RESULT=$OUT/results-$STAMP.md
PARTIAL=$RESULT.partial

# ---------------------------------------------------------------- process bookkeeping

PIDS=()		# every process started in the background, stopped by PID at the end
PG_PID=

alive() {
	local st
	[ -e "/proc/$1" ] || return 1
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}

# wait_exit PID SECONDS: 0 once PID is gone (a child of ours is reaped)
wait_exit() {
	local pid=$1 i
	for ((i = 0; i < $2 * 10; i++)); do
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# stop PID: SIG (default TERM), then KILL
stop_pid() {
	local pid=$1 sig=${2:-TERM} wait_s=${3:-15}
	[ -n "$pid" ] || return 0
	if alive "$pid"; then
		kill -"$sig" "$pid" 2>/dev/null
		wait_exit "$pid" "$wait_s" && return 0
		say "pid $pid did not stop on SIG$sig, killing it"
		kill -KILL "$pid" 2>/dev/null
		wait_exit "$pid" 5
	else
		wait "$pid" 2>/dev/null
	fi
	return 0
}

cleanup() {
	local pid
	trap - INT TERM
	for pid in "${PIDS[@]}"; do
		alive "$pid" && stop_pid "$pid" TERM 10
	done
	if [ -n "$PG_PID" ]; then
		stop_pid "$PG_PID" INT 30	# fast shutdown
	fi
	if [ "$KEEP" = 1 ]; then
		say "kept $D"
	else
		rm -rf "$D"
	fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# A free TCP port in 20000-32767 (never the ephemeral range), not handed out before in this run.
free_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + RANDOM % 12768))
		grep -qx "$p" "$D/ports" 2>/dev/null && continue
		if command -v ss >/dev/null; then
			[ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && continue
		elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			continue
		fi
		echo "$p" >>"$D/ports"
		echo "$p"
		return 0
	done
	return 1
}

# wait_port PORT PID SECONDS: until something accepts TCP connections on PORT (while PID lives)
wait_port() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		alive "$2" || return 1
		sleep 0.1
	done
	return 1
}

# utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat, counted after the comm field)
cpu_ticks() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	echo $((${12} + ${13}))
}
CLK_TCK=$(getconf CLK_TCK)

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# ---------------------------------------------------------------- PostgreSQL

PG_PORT=$(free_port) || die "no free port"
PG_DIR=$D/pg
PG_SOCK=$PG_DIR
PG_SETTINGS=(
	"listen_addresses = '127.0.0.1'"
	"port = $PG_PORT"
	"unix_socket_directories = '$PG_SOCK'"
	"max_connections = 300"
	"shared_buffers = 256MB"
	"fsync = off"
	"synchronous_commit = off"
	"full_page_writes = off"
)

start_postgres() {
	mkdir -p "$PG_DIR"
	[ "$IS_ROOT" = 1 ] && chown postgres: "$PG_DIR"
	say "initdb in $PG_DIR/data (port $PG_PORT)"
	as_pg "$PG_BINDIR/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C -N \
		>"$PG_DIR/initdb.log" 2>&1 || { tail -n 20 "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
	printf '%s\n' "${PG_SETTINGS[@]}" >>"$PG_DIR/data/postgresql.conf"
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start \
		>"$PG_DIR/pg_ctl.log" 2>&1 || { tail -n 20 "$PG_DIR/postgres.log" >&2; die "PostgreSQL did not start"; }
	PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
	as_pg "$PG_BINDIR/psql" -X -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
		-c "CREATE DATABASE bench" >/dev/null || die "CREATE DATABASE failed"
	say "pgbench -i -s $SCALE"
	as_pg "$PG_BINDIR/pgbench" -i -q -s "$SCALE" -h "$PG_SOCK" -p "$PG_PORT" -U postgres bench \
		>"$PG_DIR/pgbench-init.log" 2>&1 || { tail -n 20 "$PG_DIR/pgbench-init.log" >&2; die "pgbench -i failed"; }
}

# ---------------------------------------------------------------- the poolers

declare -A P_PID P_PORT P_DIR P_KIND P_INI
declare -A KIND_NAME=([pgb]=PgBouncer [mb]=moonbouncer [mbready]="moonbouncer + policies" [direct]="direct")

echo '"postgres" ""' >"$D/userlist.txt"

# write_ini NAME PROFILE [EXTRA KEY=VALUE...]: the config of one pooler instance.
#   main   the benchmark settings (transaction mode, pool of 20, ...)
#   storm  only what must be set (listen address, auth, max_client_conn); every other key default
write_ini() {
	local name=$1 profile=$2 dir=$D/$1 port kv
	shift 2
	mkdir -p "$dir"
	port=$(free_port) || die "no free port"
	{
		echo "[databases]"
		echo "bench = host=$PG_SOCK port=$PG_PORT dbname=bench"
		echo
		echo "[pgbouncer]"
		echo "listen_addr = 127.0.0.1"
		echo "listen_port = $port"
		echo "unix_socket_dir = $dir"
		echo "logfile = $dir/pooler.log"
		echo "pidfile = $dir/pooler.pid"
		echo "auth_type = trust"
		echo "auth_file = $D/userlist.txt"
		case $profile in
		main)
			echo "pool_mode = transaction"
			echo "default_pool_size = $POOL_SIZE"
			echo "max_client_conn = $MAX_CLIENT_CONN"
			echo "log_connections = 0"
			echo "log_disconnections = 0"
			echo "listen_backlog = $BACKLOG"
			echo "pkt_buf = $PKT_BUF"
			;;
		storm)
			echo "max_client_conn = $((STORM_N + 100))"
			;;
		*) die "write_ini: unknown profile $profile" ;;
		esac
		for kv in "$@"; do
			echo "${kv%%=*} = ${kv#*=}"
		done
	} >"$dir/pooler.ini"
	[ "$IS_ROOT" = 1 ] && chown -R postgres: "$dir" && chown postgres: "$D/userlist.txt"
	P_PORT[$name]=$port
	P_DIR[$name]=$dir
	P_INI[$name]=$dir/pooler.ini
}

# pooler_start NAME KIND [WRAPPER...]: start the pooler binary of KIND (pgb|mb) on NAME's ini,
# optionally under a wrapper (valgrind). Sets P_PID[NAME].
pooler_start() {
	local name=$1 kind=$2 bin pid wait_s=20
	shift 2
	case $kind in
	pgb) bin=$PGB_BIN ;;
	mb) bin=$MB_BIN ;;
	*) die "pooler_start: unknown kind $kind" ;;
	esac
	[ $# -gt 0 ] && wait_s=120
	check_binaries "starting $name"
	(exec_as_pg "$@" "$bin" "${P_INI[$name]}") >>"${P_DIR[$name]}/stderr.log" 2>&1 </dev/null &
	pid=$!
	PIDS+=("$pid")
	P_PID[$name]=$pid
	P_KIND[$name]=$kind
	if ! wait_port "${P_PORT[$name]}" "$pid" "$wait_s"; then
		say "$name ($bin) did not start; its stderr and log:"
		tail -n 20 "${P_DIR[$name]}/stderr.log" "${P_DIR[$name]}/pooler.log" 2>/dev/null | sed 's/^/#   /' >&2
		stop_pid "$pid" KILL 5
		return 1
	fi
	return 0
}

pooler_stop() {
	local name=$1
	[ -n "${P_PID[$name]:-}" ] || return 0
	if ! alive "${P_PID[$name]}"; then
		wait "${P_PID[$name]}" 2>/dev/null
		say "warning: $name (${KIND_NAME[${P_KIND[$name]}]}) had exited before it was stopped (status $?)"
		note_problem "${KIND_NAME[${P_KIND[$name]}]} instance '$name' exited on its own during the run" \
			"(see its log)"
	fi
	# SIGTERM: PgBouncer 1.18 stops at once; moonbouncer (1.23+ semantics) once its clients are gone,
	# which they are by now (a stuck one is killed after the wait)
	stop_pid "${P_PID[$name]}" TERM 60
	P_PID[$name]=
}

PROBLEMS=()
note_problem() { PROBLEMS+=("$*"); }

# The binaries are not copied (moonbouncer finds its lua/ runtime beside itself), so a rebuild during a
# long run would mix builds: noticed and reported.
bin_fingerprint() { stat -Lc '%i %s %Y' "$MB_BIN" "$PGB_BIN" 2>/dev/null | tr '\n' ' '; }
BIN_FP=$(bin_fingerprint)
BIN_CHANGED=
check_binaries() {
	[ -z "$BIN_CHANGED" ] || return 0
	if [ "$(bin_fingerprint)" != "$BIN_FP" ]; then
		BIN_CHANGED=1
		say "warning: a pooler binary changed during the run; instances started from now on run the new build"
		note_problem "a pooler binary was rebuilt during the run (noticed before: $1); later results come from another build"
	fi
}

# ---------------------------------------------------------------- pgbench runs and their results

# R_* arrays are keyed "POINT|TARGET"; values are space-separated lists, one entry per repetition.
declare -A R_TPS R_LAT R_CPU R_FAIL R_NFAIL R_RUNS
PGBENCH_CMDS=()

# target_port TARGET / target_pid TARGET: TARGET is "direct" or a pooler instance name
target_port() { if [ "$1" = direct ]; then echo "$PG_PORT"; else echo "${P_PORT[$1]}"; fi; }
target_pid() { if [ "$1" = direct ]; then echo ""; else echo "${P_PID[$1]}"; fi; }

# First error text of a failed pgbench run, one line, safe inside a markdown table.
pgbench_error() {
	local e
	e=$(grep -m1 -E 'ERROR:|FATAL:|error:' "$1" | sed -E 's/^pgbench: error: //; s/^.*(ERROR|FATAL): +/\1: /')
	[ -n "$e" ] || e=$(grep -v '^\s*$' "$1" | tail -n 1)
	printf '%s' "${e//|/\\|}" | cut -c1-160
}

# measure POINT TARGET PGBENCH-ARGS...: one pgbench run against TARGET, results appended to R_*.
measure() {
	local point=$1 target=$2 port pid c0 c1 out rc tps lat ntx key
	shift 2
	key="$point|$target"
	port=$(target_port "$target")
	pid=$(target_pid "$target")
	out=$D/pgbench.out
	[ -n "$pid" ] && c0=$(cpu_ticks "$pid")
	timeout --foreground -k 5 $((T * 3 + 120)) "$PG_BINDIR/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres "$@" bench \
		>"$out" 2>&1 </dev/null
	rc=$?
	[ -n "$pid" ] && c1=$(cpu_ticks "$pid")
	cat "$out" >>"$D/pgbench.log"
	R_RUNS[$key]=$((${R_RUNS[$key]:-0} + 1))
	tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$out" | head -n 1)
	lat=$(sed -nE 's/^latency average = ([0-9.]+) ms.*/\1/p' "$out" | head -n 1)
	ntx=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$out" | head -n 1)
	if [ "$rc" != 0 ] || grep -q 'aborted' "$out" || [ -z "$tps" ] || [ "${ntx:-0}" = 0 ]; then
		R_NFAIL[$key]=$((${R_NFAIL[$key]:-0} + 1))
		[ -n "${R_FAIL[$key]:-}" ] || R_FAIL[$key]="$(pgbench_error "$out") (pgbench exit $rc)"
		say "  $target: FAILED: ${R_FAIL[$key]}"
		if [ -n "$pid" ] && ! alive "$pid"; then
			note_problem "${KIND_NAME[${P_KIND[$target]}]} exited during: pgbench $*"
			die "$target exited during a run (see ${P_DIR[$target]}/pooler.log, ${P_DIR[$target]}/stderr.log)"
		fi
		return 1
	fi
	R_TPS[$key]+="$tps "
	R_LAT[$key]+="$lat "
	if [ -n "$pid" ]; then
		R_CPU[$key]+="$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$ntx" 'BEGIN {printf "%.3f", d * 1e6 / hz / n}') "
	fi
	say "  $target: tps $tps, latency $lat ms${pid:+, pooler CPU $(((c1 - c0) * 1000 / CLK_TCK)) ms}"
	return 0
}

# point POINT "TARGETS" PGBENCH-ARGS...: REPS interleaved repetitions (order reversed every other time).
point() {
	local pt=$1 targets=$2 rep t order
	shift 2
	PGBENCH_CMDS+=("pgbench -n -h 127.0.0.1 -p PORT -U postgres $* bench")
	for ((rep = 1; rep <= REPS; rep++)); do
		say "$pt: repetition $rep/$REPS"
		order=$targets
		((rep % 2 == 0)) && order=$(echo "$targets" | tr ' ' '\n' | tac | tr '\n' ' ')
		for t in $order; do
			measure "$pt" "$t" "$@"
			sleep 0.3
		done
	done
}

median() {
	printf '%s\n' "$@" | grep -v '^$' | sort -g |
		awk '{a[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# med FIELD KEY: median of R_FIELD[KEY], empty when nothing (or a run failed)
med() {
	local -n arr="R_$1"
	[ -n "${R_NFAIL[$2]:-}" ] && return 0
	# shellcheck disable=SC2086
	median ${arr[$2]:-}
}

fmt() { [ -n "$2" ] && LC_ALL=C printf "$1" "$2" || printf '–'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else printf "–"}' || printf '–'; }
cell_tps() {
	if [ -n "${R_NFAIL[$1]:-}" ]; then
		printf 'fails (%s/%s)' "${R_NFAIL[$1]}" "${R_RUNS[$1]}"
	else
		fmt '%.0f' "$(med TPS "$1")"
	fi
}

FAIL_NOTES=()
collect_failures() {
	local pt=$1 t
	shift
	for t in "$@"; do
		[ -n "${R_FAIL[$pt|$t]:-}" ] && FAIL_NOTES+=("${KIND_NAME[${P_KIND[$t]:-direct}]}, $pt: ${R_FAIL[$pt|$t]}")
	done
}

md() { printf '%s\n' "$@" >>"$PARTIAL"; }

# ---------------------------------------------------------------- sections

jobs_for() { if [ "$1" -lt 2 ]; then echo 1; else echo 2; fi; }

section_select() {
	local proto c pt j lat_d lat_p lat_m
	say "== select-only (-S) matrix"
	for proto in "${PROTOCOLS[@]}"; do
		for c in "${CLIENTS[@]}"; do
			pt="select $proto c=$c"
			j=$(jobs_for "$c")
			point "$pt" "direct pgb mb" -S -M "$proto" -c "$c" -j "$j" -T "$T"
		done
	done
	md "" "## Select-only (pgbench -S), transaction pooling" "" \
		"Median of $REPS interleaved runs of ${T} s each; tps without connection time; latency = pgbench's" \
		"\"latency average\"; CPU = pooler utime+stime per transaction. Ratios are moonbouncer / PgBouncer" \
		"(tps: higher is better for moonbouncer, CPU: lower is better)." "" \
		"| mode | clients | direct tps | PgBouncer tps | moonbouncer tps | mb/PgB tps | direct lat ms | PgB lat ms | mb lat ms | PgB CPU µs/tx | mb CPU µs/tx | mb/PgB CPU |" \
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for proto in "${PROTOCOLS[@]}"; do
		for c in "${CLIENTS[@]}"; do
			pt="select $proto c=$c"
			md "| $proto | $c | $(cell_tps "$pt|direct") | $(cell_tps "$pt|pgb") | $(cell_tps "$pt|mb") | $(ratio "$(med TPS "$pt|mb")" "$(med TPS "$pt|pgb")") | $(fmt %.3f "$(med LAT "$pt|direct")") | $(fmt %.3f "$(med LAT "$pt|pgb")") | $(fmt %.3f "$(med LAT "$pt|mb")") | $(fmt %.1f "$(med CPU "$pt|pgb")") | $(fmt %.1f "$(med CPU "$pt|mb")") | $(ratio "$(med CPU "$pt|mb")" "$(med CPU "$pt|pgb")") |"
			collect_failures "$pt" direct pgb mb
		done
	done
	# single-client latency added by each pooler
	md "" "### Latency added at one client (select-only, pgbench -c 1)" "" \
		"| mode | direct lat ms | PgBouncer lat ms | moonbouncer lat ms | PgBouncer adds µs | moonbouncer adds µs |" \
		"|---|---:|---:|---:|---:|---:|"
	for proto in "${PROTOCOLS[@]}"; do
		pt="select $proto c=1"
		[ -n "${R_RUNS[$pt|direct]:-}" ] || continue
		lat_d=$(med LAT "$pt|direct")
		lat_p=$(med LAT "$pt|pgb")
		lat_m=$(med LAT "$pt|mb")
		md "| $proto | $(fmt %.3f "$lat_d") | $(fmt %.3f "$lat_p") | $(fmt %.3f "$lat_m") | $(added "$lat_p" "$lat_d") | $(added "$lat_m" "$lat_d") |"
	done
}

added() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (a - b) * 1000}' || printf '–'; }

section_tpcb() {
	local proto c pt
	say "== TPC-B-like matrix"
	for proto in "${TPCB_PROTOCOLS[@]}"; do
		for c in "${TPCB_CLIENTS[@]}"; do
			pt="tpcb $proto c=$c"
			point "$pt" "pgb mb" -M "$proto" -c "$c" -j "$(jobs_for "$c")" -T "$T"
		done
	done
	md "" "## TPC-B-like (pgbench default script), transaction pooling" "" \
		"| mode | clients | PgBouncer tps | moonbouncer tps | mb/PgB tps | PgB lat ms | mb lat ms | PgB CPU µs/tx | mb CPU µs/tx | mb/PgB CPU |" \
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for proto in "${TPCB_PROTOCOLS[@]}"; do
		for c in "${TPCB_CLIENTS[@]}"; do
			pt="tpcb $proto c=$c"
			md "| $proto | $c | $(cell_tps "$pt|pgb") | $(cell_tps "$pt|mb") | $(ratio "$(med TPS "$pt|mb")" "$(med TPS "$pt|pgb")") | $(fmt %.3f "$(med LAT "$pt|pgb")") | $(fmt %.3f "$(med LAT "$pt|mb")") | $(fmt %.1f "$(med CPU "$pt|pgb")") | $(fmt %.1f "$(med CPU "$pt|mb")") | $(ratio "$(med CPU "$pt|mb")" "$(med CPU "$pt|pgb")") |"
			collect_failures "$pt" pgb mb
		done
	done
}

section_churn() {
	local pt="churn"
	say "== connection churn (-C)"
	point "$pt" "direct pgb mb" -C -S -c 10 -j 2 -T "$T"
	md "" "## Connection churn (pgbench -C -S -c 10 -j 2: a new connection per transaction)" "" \
		"| | direct | PgBouncer | moonbouncer | mb/PgB |" "|---|---:|---:|---:|---:|" \
		"| tps (including connection time) | $(cell_tps "$pt|direct") | $(cell_tps "$pt|pgb") | $(cell_tps "$pt|mb") | $(ratio "$(med TPS "$pt|mb")" "$(med TPS "$pt|pgb")") |" \
		"| pooler CPU µs per connection+transaction | – | $(fmt %.1f "$(med CPU "$pt|pgb")") | $(fmt %.1f "$(med CPU "$pt|mb")") | $(ratio "$(med CPU "$pt|mb")" "$(med CPU "$pt|pgb")") |"
	collect_failures "$pt" direct pgb mb
}

# callgrind_ir LABEL KIND TX [KEY=VALUE...]: CG_IR = total Ir of a fresh pooler instance (KIND, with the
# extra ini keys) that served pgbench -S -c 10 -t TX.
# (Functions that start processes run in the main shell, never in $(...), so that PIDS stays complete.)
callgrind_ir() {
	local label=$1 kind=$2 tx=$3 name="cg-$1-$3" out ir
	shift 3
	CG_IR=
	write_ini "$name" main "$@"
	out=${P_DIR[$name]}/callgrind.out
	pooler_start "$name" "$kind" valgrind --tool=callgrind --vgdb=no -q --callgrind-out-file="$out" || return 1
	# one warm-up connection so that both runs open their server connections the same way
	if ! timeout --foreground -k 5 600 "$PG_BINDIR/pgbench" -n -h 127.0.0.1 -p "${P_PORT[$name]}" -U postgres -S -M simple \
		-c 10 -j 2 -t "$tx" bench >"${P_DIR[$name]}/pgbench.out" 2>&1 </dev/null; then
		say "callgrind run failed: $(pgbench_error "${P_DIR[$name]}/pgbench.out")"
		pooler_stop "$name"
		return 1
	fi
	pooler_stop "$name"
	ir=$(sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$out" | head -n 1)
	[ -n "$ir" ] || return 1
	CG_IR=$ir
}

section_callgrind() {
	local label kind lo hi ir_lo ir_hi labels="pgb mb"
	local -a extra
	declare -A IRTX
	lo=${CG_TX[0]}
	hi=${CG_TX[1]}
	if [ "$HAVE_VALGRIND" = 0 ]; then
		md "" "## Instructions per transaction" "" "Skipped: valgrind is not installed."
		return
	fi
	say "== instructions per transaction under callgrind (select-only, simple, 10 clients)"
	# with policies too, once the binary supports them (see section_policy)
	if [ -n "${BENCH_FORCE_POLICY:-}" ] || policy_support; then
		labels="pgb mb mbready mbfull mbsel"
		[ -d "$D/policies/ready" ] || write_policies >/dev/null
	fi
	for label in $labels; do
		kind=$label extra=()
		case $label in
		mbready) kind=mb extra=("policy_dir=$D/policies/ready") ;;
		mbfull) kind=mb extra=("policy_dir=$D/policies/full") ;;
		mbsel) kind=mb extra=("policy_dir=$D/policies/select") ;;
		esac
		callgrind_ir "$label" "$kind" "$lo" "${extra[@]}" || { say "callgrind $label failed"; continue; }
		ir_lo=$CG_IR
		callgrind_ir "$label" "$kind" "$hi" "${extra[@]}" || { say "callgrind $label failed"; continue; }
		ir_hi=$CG_IR
		IRTX[$label]=$(awk -v a="$ir_hi" -v b="$ir_lo" -v n=$((10 * (hi - lo))) 'BEGIN {printf "%.0f", (a - b) / n}')
		say "  $label: Ir $ir_lo ($((10 * lo)) tx), $ir_hi ($((10 * hi)) tx): ${IRTX[$label]} per tx"
	done
	md "" "## Instructions per transaction (callgrind, select-only, -M simple, 10 clients)" "" \
		"Each pooler runs under \`valgrind --tool=callgrind\` twice, for \`pgbench -S -c 10 -j 2 -t $lo\` and" \
		"\`-t $hi\`; Ir per transaction = (Ir(long) − Ir(short)) / $((10 * (hi - lo))), so start-up, logins and" \
		"shutdown cancel out." "" \
		"| | PgBouncer | moonbouncer | mb/PgB | mb + ready policies | mb + ready, guard check_set_config | mb + on_query per SELECT |" \
		"|---|---:|---:|---:|---:|---:|---:|" \
		"| instructions (Ir) per transaction | $(fmt %s "${IRTX[pgb]:-}") | $(fmt %s "${IRTX[mb]:-}") | $(ratio "${IRTX[mb]:-}" "${IRTX[pgb]:-}") | $(fmt %s "${IRTX[mbready]:-}") | $(fmt %s "${IRTX[mbfull]:-}") | $(fmt %s "${IRTX[mbsel]:-}") |"
	[ "$labels" != "pgb mb" ] || md "" "(The policy columns are measured once the binary supports policies; see \"With policies\".)"
}

# idle_rss KIND N: MEM_R = "connected rss_before_kB rss_after_kB alive" for N idle clients on a fresh instance
idle_rss() {
	local kind=$1 n=$2 name="mem-$1-$2" out pid hpid rss0 rss1 i conn alive
	local -a extra=()
	MEM_R=
	if [ "$kind" = mbready ]; then
		# the policy engine on, with the ready policies: on_connect runs for every client
		kind=mb
		[ -d "$D/policies/ready" ] || write_policies >/dev/null
		extra=("policy_dir=$D/policies/ready")
	fi
	write_ini "$name" main "${extra[@]}"
	pooler_start "$name" "$kind" || return 1
	pid=${P_PID[$name]}
	# one query first: the server connection and its parameters exist before the baseline
	"$IDLE_BIN" -m storm -n 1 -t 20 "host=127.0.0.1 port=${P_PORT[$name]} user=postgres dbname=bench sslmode=disable" \
		>/dev/null 2>&1
	sleep 0.5
	rss0=$(rss_kb "$pid")
	out=${P_DIR[$name]}/idle.out
	"$IDLE_BIN" -m hold -n "$n" -b 500 -t 120 -H 300 \
		"host=127.0.0.1 port=${P_PORT[$name]} user=postgres dbname=bench sslmode=disable gssencmode=disable" \
		>"$out" 2>&1 </dev/null &
	hpid=$!
	PIDS+=("$hpid")
	for ((i = 0; i < 1500; i++)); do
		grep -q '^ready' "$out" 2>/dev/null && break
		alive "$hpid" || break
		sleep 0.1
	done
	sleep 1
	rss1=$(rss_kb "$pid")
	stop_pid "$hpid" TERM 60
	conn=$(sed -nE 's/^connected=([0-9]+).*/\1/p' "$out")
	alive=$(sed -nE 's/^alive=([0-9]+).*/\1/p' "$out")
	if grep -q '^error' "$out"; then
		say "  ${KIND_NAME[$kind]} $n idle clients: $(grep '^error' "$out" | head -n 3 | tr '\n' ';')"
	fi
	if ! alive "$pid"; then
		note_problem "${KIND_NAME[$kind]} exited while $n idle clients were connected"
	fi
	pooler_stop "$name"
	MEM_R="${conn:-0} ${rss0:-0} ${rss1:-0} ${alive:-0}"
}

section_memory() {
	local n kind conn rss0 rss1 alive kinds="pgb mb"
	declare -A MEM
	say "== memory with idle clients"
	if [ -n "${BENCH_FORCE_POLICY:-}" ] || policy_support; then
		kinds="pgb mb mbready"
	fi
	for n in "${MEM_CLIENTS[@]}"; do
		for kind in $kinds; do
			idle_rss "$kind" "$n" || { say "  $kind $n: pooler did not start"; continue; }
			read -r conn rss0 rss1 alive <<<"$MEM_R"
			MEM[$kind.$n]="$conn $rss0 $rss1 $alive"
			say "  ${KIND_NAME[$kind]} $n clients: connected $conn, alive at end $alive, RSS $rss0 -> $rss1 kB"
		done
	done
	md "" "## Memory with idle clients (transaction pooling, clients logged in and idle)" "" \
		"RSS from /proc/PID/status (VmRSS) of a fresh instance after one query, then with the clients connected;" \
		"per client = (RSS with clients − RSS before) / connected clients. \"mb + policies\": moonbouncer with" \
		"the ready policies of the policy section loaded (the Lua engine on, on_connect run for every client)." "" \
		"| clients | PgBouncer connected | PgB RSS before → with, MB | PgB kB/client | moonbouncer connected | mb RSS before → with, MB | mb kB/client | mb/PgB per client | mb + policies connected | RSS before → with, MB | kB/client |" \
		"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for n in "${MEM_CLIENTS[@]}"; do
		local cells=() per=()
		for kind in pgb mb mbready; do
			if [ -z "${MEM[$kind.$n]:-}" ]; then
				cells+=("–" "–" "–")
				per+=("")
				continue
			fi
			read -r conn rss0 rss1 alive <<<"${MEM[$kind.$n]}"
			local p=""
			[ "$conn" -gt 0 ] && p=$(awk -v a="$rss1" -v b="$rss0" -v n="$conn" 'BEGIN {printf "%.2f", (a - b) / n}')
			local c=$conn
			[ "$alive" != "$conn" ] && c="$conn ($alive still open at the end)"
			cells+=("$c" "$(awk -v a="$rss0" -v b="$rss1" 'BEGIN {printf "%.1f → %.1f", a / 1024, b / 1024}')" "$(fmt %s "$p")")
			per+=("$p")
		done
		md "| $n | ${cells[0]} | ${cells[1]} | ${cells[2]} | ${cells[3]} | ${cells[4]} | ${cells[5]} | $(ratio "${per[1]}" "${per[0]}") | ${cells[6]} | ${cells[7]} | ${cells[8]} |"
	done
}

# storm_once KIND VARIANT: STORM_R = "ok errors p50 p99 max first-error" of one storm on a fresh instance
storm_once() {
	local kind=$1 variant=$2 name out line ok errors p50 p99 max err
	STORM_R=
	name="storm-$kind-$variant-$RANDOM"
	if [ "$variant" = default ]; then
		write_ini "$name" storm
	else
		write_ini "$name" storm "listen_backlog=$BACKLOG"
	fi
	pooler_start "$name" "$kind" || return 1
	out=${P_DIR[$name]}/storm.out
	timeout --foreground -k 5 120 "$IDLE_BIN" -m storm -n "$STORM_N" -t 60 -q "SELECT 1" \
		"host=127.0.0.1 port=${P_PORT[$name]} user=postgres dbname=bench sslmode=disable gssencmode=disable" \
		>"$out" 2>&1 </dev/null
	alive "${P_PID[$name]}" || note_problem "${KIND_NAME[$kind]} exited during the connection storm ($variant)"
	pooler_stop "$name"
	line=$(grep -m1 '^ok=' "$out")
	[ -n "$line" ] || { say "storm client printed: $(head -n 3 "$out")"; return 1; }
	ok=$(sed -nE 's/.*ok=([0-9]+).*/\1/p' <<<"$line")
	errors=$(sed -nE 's/.*errors=([0-9]+).*/\1/p' <<<"$line")
	p50=$(sed -nE 's/.*p50_ms=([0-9.]+).*/\1/p' <<<"$line")
	p99=$(sed -nE 's/.*p99_ms=([0-9.]+).*/\1/p' <<<"$line")
	max=$(sed -nE 's/.*max_ms=([0-9.]+).*/\1/p' <<<"$line")
	err=$(grep -m1 '^error' "$out" | cut -d' ' -f3- | cut -c1-120)
	STORM_R="$ok $errors $p50 $p99 $max ${err//|/\\|}"
}

section_storm() {
	local variant kind rep ok errors p50 p99 max err order
	declare -A S_ERR S_P50 S_P99 S_MAX S_MSG S_RUNS
	say "== connection storm: $STORM_N clients at once, one SELECT each"
	for variant in default backlog; do
		for ((rep = 1; rep <= STORM_REPS; rep++)); do
			order="pgb mb"
			((rep % 2 == 0)) && order="mb pgb"
			for kind in $order; do
				storm_once "$kind" "$variant" || { say "  $kind $variant: failed to run"; continue; }
				read -r ok errors p50 p99 max err <<<"$STORM_R"
				say "  ${KIND_NAME[$kind]} ($variant): ok $ok, errors $errors, p50 $p50 ms, p99 $p99 ms, max $max ms${err:+, $err}"
				S_ERR[$kind.$variant]+="$errors "
				S_P50[$kind.$variant]+="$p50 "
				S_P99[$kind.$variant]+="$p99 "
				S_MAX[$kind.$variant]+="$max "
				S_RUNS[$kind.$variant]=$((${S_RUNS[$kind.$variant]:-0} + 1))
				[ -n "$err" ] && [ -z "${S_MSG[$kind.$variant]:-}" ] && S_MSG[$kind.$variant]=$err
			done
			sleep 1
		done
	done
	md "" "## Connection storm ($STORM_N clients connect at once, each runs SELECT 1 and disconnects)" "" \
		"Pool of 20 (default_pool_size default), max_client_conn = $((STORM_N + 100)), every other key at its" \
		"default (so pool_mode = session, and listen_backlog = each pooler's own default: PgBouncer 128)." \
		"The second variant sets listen_backlog = $BACKLOG on both. Latency per connection from PQconnectStart" \
		"to its first result; median over $STORM_REPS storm(s); errors are summed." "" \
		"| variant | pooler | errors | p50 ms | p99 ms | max ms | first error |" "|---|---|---:|---:|---:|---:|---|"
	for variant in default backlog; do
		for kind in pgb mb; do
			local k=$kind.$variant label=defaults
			[ "$variant" = backlog ] && label="listen_backlog=$BACKLOG"
			[ -n "${S_RUNS[$k]:-}" ] || { md "| $label | ${KIND_NAME[$kind]} | – | – | – | – | did not run |"; continue; }
			# shellcheck disable=SC2086
			md "| $label | ${KIND_NAME[$kind]} | $(echo ${S_ERR[$k]} | tr ' ' '\n' | awk '{s += $1} END {print s}') of $((STORM_N * S_RUNS[$k])) | $(fmt %.1f "$(median ${S_P50[$k]})") | $(fmt %.1f "$(median ${S_P99[$k]})") | $(fmt %.1f "$(median ${S_MAX[$k]})") | ${S_MSG[$k]:-} |"
		done
	done
}

# ---------------------------------------------------------------- TLS between the clients and the pooler

# Both poolers with client_tls_sslmode = require and the same certificate (made here with openssl); pgbench
# connects with sslmode=require. Select-only, simple protocol, transaction pooling; servers stay plain.
section_tls() {
	local c pt crt=$D/tls/pooler.crt key=$D/tls/pooler.key
	say "== TLS from the clients (client_tls_sslmode = require)"
	mkdir -p "$D/tls"
	if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
		-keyout "$key" -out "$crt" >"$D/tls/openssl.log" 2>&1; then
		note_problem "TLS section skipped: openssl could not make a certificate"
		return 0
	fi
	[ "$IS_ROOT" = 1 ] && chown -R postgres: "$D/tls"
	write_ini pgb-tls main client_tls_sslmode=require "client_tls_cert_file=$crt" "client_tls_key_file=$key"
	write_ini mb-tls main client_tls_sslmode=require "client_tls_cert_file=$crt" "client_tls_key_file=$key"
	pooler_start pgb-tls pgb || { note_problem "PgBouncer did not start with TLS"; return 0; }
	pooler_start mb-tls mb || { note_problem "moonbouncer did not start with TLS"; pooler_stop pgb-tls; return 0; }
	export PGSSLMODE=require
	for c in "${TLS_CLIENTS[@]}"; do
		pt="tls select c=$c"
		point "$pt" "pgb-tls mb-tls" -S -M simple -c "$c" -j "$(jobs_for "$c")" -T "$T"
	done
	unset PGSSLMODE
	pooler_stop pgb-tls
	pooler_stop mb-tls
	md "" "## TLS from the clients (client_tls_sslmode = require, same certificate), select-only, simple protocol" "" \
		"| clients | PgBouncer tps | moonbouncer tps | mb/PgB tps | PgB lat ms | mb lat ms | PgB CPU µs/tx | mb CPU µs/tx | mb/PgB CPU |" \
		"|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for c in "${TLS_CLIENTS[@]}"; do
		pt="tls select c=$c"
		md "| $c | $(cell_tps "$pt|pgb-tls") | $(cell_tps "$pt|mb-tls") | $(ratio "$(med TPS "$pt|mb-tls")" "$(med TPS "$pt|pgb-tls")") | $(fmt %.3f "$(med LAT "$pt|pgb-tls")") | $(fmt %.3f "$(med LAT "$pt|mb-tls")") | $(fmt %.1f "$(med CPU "$pt|pgb-tls")") | $(fmt %.1f "$(med CPU "$pt|mb-tls")") | $(ratio "$(med CPU "$pt|mb-tls")" "$(med CPU "$pt|pgb-tls")") |"
		collect_failures "$pt" pgb-tls mb-tls
	done
}

# ---------------------------------------------------------------- with policies (Lua)
#
# Policies are detected, not assumed: a config with policy_dir must pass `moonbouncer --check` with a
# valid policy and fail it with a broken one (a binary that ignores policy_dir passes both), and the
# binary must not say that policies are unsupported. Until then the section is skipped with a message.
# Two policy sets are measured against plain moonbouncer and PgBouncer:
#   pol-idle    a policy is loaded but wants no "select" statements (hooks on connect and SET/RESET only):
#               the cost of having policies at all, plain SELECTs never enter Lua
#   pol-select  on_query for every SELECT (returns nil = pass): the cost of one Lua call per statement

write_policies() {
	local dir=$D/policies
	mkdir -p "$dir/idle" "$dir/select" "$dir/broken"
	cat >"$dir/idle/10-bench.lua" <<-'EOF'
		-- benchmark policy: loaded, but interested in no SELECT
		local P = {}
		P.query_kinds = { "set", "reset" }
		function P.on_connect(client) return nil end
		function P.on_query(client, q) return nil end
		return P
	EOF
	cat >"$dir/select/10-bench.lua" <<-'EOF'
		-- benchmark policy: on_query for every SELECT, always passes
		local P = {}
		P.query_kinds = { "select" }
		function P.on_query(client, q)
			if q.kind ~= "select" then return nil end
			return nil
		end
		return P
	EOF
	# the ready policies as an operator would drop them in: routing, tenant limits, the guard
	mkdir -p "$dir/ready" "$dir/full"
	cat >"$dir/ready/10-route.lua" <<-'EOF'
		return require("policies.route_by_user_db") { databases = { bench = "bench" } }
	EOF
	cat >"$dir/ready/20-tenants.lua" <<-'EOF'
		return require("policies.tenant_limits") {
		  tenant_from = "user",
		  limits = { ["*"] = { max_clients = 20000, max_active = 1000 } },
		}
	EOF
	cat >"$dir/ready/30-guard.lua" <<-'EOF'
		return require("policies.transaction_guard") {}
	EOF
	cp "$dir/ready/10-route.lua" "$dir/ready/20-tenants.lua" "$dir/full/"
	# the guard inspecting every SELECT too (set_config, SELECT INTO TEMP): on_query runs on each statement
	cat >"$dir/full/30-guard.lua" <<-'EOF'
		return require("policies.transaction_guard") { check_set_config = true }
	EOF
	cat >"$dir/broken/10-bench.lua" <<-'EOF'
		-- deliberately broken: a supported binary must refuse this
		local P = {
		return P
	EOF
	[ "$IS_ROOT" = 1 ] && chown -R postgres: "$dir"
	echo "$dir"
}

# policy_support: 0 when the binary loads and checks policies; else sets WHY
POLICY_OK=
policy_support() {
	local dir out rc
	[ -z "$POLICY_OK" ] || { [ "$POLICY_OK" = yes ]; return; }
	POLICY_OK=no
	WHY=
	dir=$(write_policies)
	write_ini pcheck-ok main "policy_dir=$dir/idle"
	write_ini pcheck-bad main "policy_dir=$dir/broken"
	out=$(as_pg "$MB_BIN" --check "${P_INI[pcheck-ok]}" 2>&1)
	rc=$?
	if grep -Eqi 'not (yet )?supported|unsupported|not built|ignor|unknown configuration key' <<<"$out"; then
		WHY="moonbouncer --check says: $(grep -Ei 'support|ignor|unknown' <<<"$out" | head -n 1)"
		return 1
	fi
	if [ "$rc" != 0 ]; then
		WHY="moonbouncer --check rejects a config with a valid policy_dir: $(head -n 1 <<<"$out")"
		return 1
	fi
	if as_pg "$MB_BIN" --check "${P_INI[pcheck-bad]}" >/dev/null 2>&1; then
		WHY="policies are not supported by this build (policy_dir is accepted but a broken policy passes --check)"
		return 1
	fi
	POLICY_OK=yes
	return 0
}

section_policy() {
	local dir proto c pt targets="mb mbready mbfull mbsel"
	say "== with policies"
	if [ -z "${BENCH_FORCE_POLICY:-}" ] && ! policy_support; then
		say "skipped: $WHY"
		md "" "## With policies (Lua)" "" "Skipped: $WHY."
		return
	fi
	dir=$D/policies
	[ -d "$dir/idle" ] || write_policies >/dev/null
	write_ini mbready main "policy_dir=$dir/ready"
	write_ini mbfull main "policy_dir=$dir/full"
	write_ini mbsel main "policy_dir=$dir/select"
	pooler_start mbready mb || die "moonbouncer with the ready policies did not start"
	pooler_start mbfull mb || die "moonbouncer with the ready policies (check_set_config) did not start"
	pooler_start mbsel mb || die "moonbouncer with policy_dir did not start"
	for proto in "${POLICY_PROTOCOLS[@]}"; do
		for c in "${POLICY_CLIENTS[@]}"; do
			pt="policy $proto c=$c"
			point "$pt" "$targets" -S -M "$proto" -c "$c" -j "$(jobs_for "$c")" -T "$T"
		done
	done
	pooler_stop mbready
	pooler_stop mbfull
	pooler_stop mbsel
	md "" "## With policies (Lua), select-only" "" \
		"ready: the shipped policies route_by_user_db, tenant_limits (a \"*\" tenant with max_active and" \
		"max_clients) and transaction_guard with its defaults; SELECT is not among the guard's query_kinds, so" \
		"a SELECT is decided in C. ready+check: the same with the guard's check_set_config = true, so on_query" \
		"runs on every statement and classifies it in Lua. on_query: one policy whose on_query runs for every" \
		"SELECT and passes it. Interleaved with moonbouncer without policies (the same binary and settings, no" \
		"policy_dir); ratios against it. Policy files: \`$dir/{ready,full,select}\` (printed below)." "" \
		"| mode | clients | moonbouncer tps | ready tps | ready+check tps | on_query tps | ready/mb | ready+check/mb | on_query/mb | mb CPU µs/tx | ready CPU µs/tx | ready+check CPU µs/tx | on_query CPU µs/tx |" \
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for proto in "${POLICY_PROTOCOLS[@]}"; do
		for c in "${POLICY_CLIENTS[@]}"; do
			pt="policy $proto c=$c"
			md "| $proto | $c | $(cell_tps "$pt|mb") | $(cell_tps "$pt|mbready") | $(cell_tps "$pt|mbfull") | $(cell_tps "$pt|mbsel") | $(ratio "$(med TPS "$pt|mbready")" "$(med TPS "$pt|mb")") | $(ratio "$(med TPS "$pt|mbfull")" "$(med TPS "$pt|mb")") | $(ratio "$(med TPS "$pt|mbsel")" "$(med TPS "$pt|mb")") | $(fmt %.1f "$(med CPU "$pt|mb")") | $(fmt %.1f "$(med CPU "$pt|mbready")") | $(fmt %.1f "$(med CPU "$pt|mbfull")") | $(fmt %.1f "$(med CPU "$pt|mbsel")") |"
			collect_failures "$pt" $targets
		done
	done
	md "" "Policy files:" "" '```lua'
	for f in "$dir"/full/*.lua; do
		md "-- $(basename "$f") (ready+check; ready differs only in 30-guard.lua: {})" "$(cat "$f")"
	done
	md '```'
}

# ---------------------------------------------------------------- main

nruns=0
want select && nruns=$((nruns + ${#PROTOCOLS[@]} * ${#CLIENTS[@]} * 3 * REPS))
want tpcb && nruns=$((nruns + ${#TPCB_PROTOCOLS[@]} * ${#TPCB_CLIENTS[@]} * 2 * REPS))
want churn && nruns=$((nruns + 3 * REPS))
want tls && nruns=$((nruns + ${#TLS_CLIENTS[@]} * 2 * REPS))
if want policy && { [ -n "${BENCH_FORCE_POLICY:-}" ] || policy_support; }; then
	nruns=$((nruns + ${#POLICY_PROTOCOLS[@]} * ${#POLICY_CLIENTS[@]} * 4 * REPS))
fi
say "moonbouncer vs PgBouncer benchmark: $([ "$QUICK" = 1 ] && echo quick || echo full) mode, $REPS repetitions," \
	"${T} s per run, about $((nruns * (T + 1) / 60 + 2 + 4 - 2 * QUICK)) minutes; results: $RESULT"
say "working directory $D, open file limit $(ulimit -n)"

start_postgres

MB_VERSION=$("$MB_BIN" -V 2>&1 | head -n 1)
PGB_VERSION=$("$PGB_BIN" --version 2>&1 | head -n 1)
PG_VERSION=$("$PG_BINDIR/postgres" --version)

{
	echo "# moonbouncer vs PgBouncer: benchmark of $(date '+%Y-%m-%d %H:%M %Z')"
	echo
	echo "$([ "$QUICK" = 1 ] && echo "Quick mode" || echo "Full matrix"): $REPS interleaved repetitions per point," \
		"${T} s per pgbench run, medians reported."
	echo
	echo "## Machine and versions"
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| CPUs (nproc) | $(nproc) |"
	echo "| CPU model | $(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n 1) |"
	echo "| memory | $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) |"
	echo "| kernel | $(uname -sr) |"
	echo "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
	echo "| PostgreSQL | $PG_VERSION |"
	echo "| PgBouncer | $PGB_VERSION ($PGB_BIN) |"
	echo "| moonbouncer | $MB_VERSION ($MB_BIN, git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ', with local changes')) |"
	echo "| pgbench | $("$PG_BINDIR/pgbench" --version) |"
	echo "| valgrind | $([ "$HAVE_VALGRIND" = 1 ] && valgrind --version || echo 'not installed') |"
	echo
	echo "## Set-up"
	echo
	echo "- PostgreSQL: throwaway cluster (initdb -A trust -E UTF8 --locale=C -N), \`pgbench -i -s $SCALE\`; settings:"
	for s in "${PG_SETTINGS[@]}"; do echo "  \`${s//$D/\$TMP}\`"; done
	echo "- Both poolers: one process each, run as the postgres OS user with an open file limit of $(ulimit -n);"
	echo "  clients connect over TCP to 127.0.0.1, the poolers reach PostgreSQL over its unix socket;"
	echo "  auth_type = trust with an auth_file listing the user. Benchmark settings (identical for both):"
	echo "  pool_mode = transaction, default_pool_size = $POOL_SIZE, max_client_conn = $MAX_CLIENT_CONN,"
	echo "  log_connections = 0, log_disconnections = 0, listen_backlog = $BACKLOG, pkt_buf = $PKT_BUF."
	echo "- Direct: pgbench to PostgreSQL over TCP 127.0.0.1 (the same client path as through a pooler)."
	echo "- pgbench: -n (no vacuum), -j 2 (-j 1 for one client); each point runs A B A B … (order reversed"
	echo "  every other repetition) against poolers that stay up for the whole matrix."
	echo "- CPU: utime+stime of the pooler process from /proc/PID/stat before and after each run, divided by"
	echo "  the transactions pgbench reports (clock tick $((1000000 / CLK_TCK)) µs)."
} >"$PARTIAL"

write_ini pgb main
write_ini mb main
if want select || want tpcb || want churn || want policy; then
	pooler_start pgb pgb || die "PgBouncer did not start"
	pooler_start mb mb || die "moonbouncer did not start"
	say "PgBouncer pid ${P_PID[pgb]} port ${P_PORT[pgb]}, moonbouncer pid ${P_PID[mb]} port ${P_PORT[mb]}"
	say "warm-up"
	for t in direct pgb mb; do
		timeout --foreground -k 5 60 "$PG_BINDIR/pgbench" -n -h 127.0.0.1 -p "$(target_port "$t")" -U postgres -S -c 20 -j 2 -T 2 \
			bench >"$D/warmup-$t.out" 2>&1 </dev/null || say "warm-up against $t failed: $(pgbench_error "$D/warmup-$t.out")"
	done
fi

want select && section_select
want tpcb && section_tpcb
want churn && section_churn
if want policy; then
	# shares the running PgBouncer and moonbouncer; placed before the sections that start instances of their own
	section_policy
fi
pooler_stop pgb
pooler_stop mb
want tls && section_tls
want callgrind && section_callgrind
want memory && section_memory
want storm && section_storm

check_binaries "the end of the run"
md "" "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a busy machine makes tps and latency noisy;" \
	"instructions per transaction are not affected)."
if [ ${#FAIL_NOTES[@]} -gt 0 ]; then
	md "" "## Failed runs" ""
	for f in "${FAIL_NOTES[@]}"; do md "- $f"; done
fi
if [ ${#PROBLEMS[@]} -gt 0 ]; then
	md "" "## Problems seen" ""
	for f in "${PROBLEMS[@]}"; do md "- $f"; done
fi

md "" "## Commands" "" '```'
for c in "${PGBENCH_CMDS[@]}"; do md "$c"; done
want callgrind && md "valgrind --tool=callgrind --vgdb=no POOLER pooler.ini   # then: pgbench -n -S -M simple -c 10 -j 2 -t ${CG_TX[0]} | ${CG_TX[1]}"
want memory && md "idle_clients -m hold -n N -b 500 'host=127.0.0.1 port=PORT user=postgres dbname=bench'   # N = ${MEM_CLIENTS[*]}"
want storm && md "idle_clients -m storm -n $STORM_N -q 'SELECT 1' 'host=127.0.0.1 port=PORT user=postgres dbname=bench'"
asuser=
[ "$IS_ROOT" = 1 ] && asuser="setpriv --reuid=postgres --regid=postgres --init-groups -- "
md "ulimit -n $(ulimit -n); ${asuser}$PGB_BIN pooler.ini" "ulimit -n $(ulimit -n); ${asuser}$MB_BIN pooler.ini"
md '```' "" "Benchmark configuration (PgBouncer's; moonbouncer's differs only in port and paths):" "" '```ini'
sed "s#$D#\$TMP#g" "${P_INI[pgb]}" >>"$PARTIAL"
md '```' "" "Produced by \`tests/bench/run.sh$([ "$QUICK" = 1 ] && echo ' --quick')\`."

mv "$PARTIAL" "$RESULT"
cat "$RESULT"
say "results written to $RESULT"
