#!/usr/bin/env bash
# Integration runner: one throwaway PostgreSQL for the run, every test_*.sh (or those named), one summary.
#
#   tests/integration/run.sh                  all tests
#   tests/integration/run.sh test_auth.sh     some of them (names with or without directory / .sh)
#   MB_KEEP=1 ...                             keep the temp dir (logs, configs) for a look afterwards
#   MB_BIN=/usr/sbin/pgbouncer ...            run the suite against another pooler binary
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

timeout_s=${MB_TEST_TIMEOUT:-180}
passed=0
failed=0
failures=()

# built, or rebuilt when pqtool.c changed (make knows)
if [ "$PQTOOL" = "$MB_REPO/build/pqtool" ] || [ ! -x "$PQTOOL" ]; then
	make -C "$MB_REPO" --no-print-directory build/pqtool >/dev/null || { echo "cannot build pqtool"; exit 1; }
fi

tests=()
if [ $# -gt 0 ]; then
	for t in "$@"; do
		t=$(basename "$t" .sh)
		tests+=("$here/$t.sh")
	done
else
	for t in "$here"/test_*.sh; do
		tests+=("$t")
	done
fi

MB_IT_ROOT=$(mktemp -d /tmp/mbit.XXXXXX)
export MB_IT_ROOT

cleanup() {
	local pid rest
	# anything a test left behind (it was killed, or its own cleanup failed): by recorded PID,
	# only if that PID still runs the recorded command
	if [ -f "$MB_IT_ROOT/pids" ]; then
		while read -r pid rest; do
			if mb_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$rest"; then
				echo "# killing leftover process $pid ($rest)"
				kill -KILL "$pid" 2>/dev/null
				mb_wait_exit "$pid" 5
			fi
		done <"$MB_IT_ROOT/pids"
	fi
	pg_cluster_stop
	if [ -z "${MB_KEEP:-}" ]; then
		rm -rf "$MB_IT_ROOT"
	else
		echo "# kept $MB_IT_ROOT"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "# integration: PostgreSQL from $PG_BINDIR, pooler $MB_BIN"
if ! pg_cluster_start; then
	echo "not ok 1 - start PostgreSQL"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "# cluster: port $MB_PG_PORT, pid $MB_PG_PID, dir $MB_IT_ROOT"

for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	log=$MB_IT_ROOT/$name.out
	if [ ! -f "$t" ]; then
		echo "not ok - $name: no such test"
		failed=$((failed + 1))
		failures+=("$name")
		continue
	fi
	echo "# --- $name"
	start=$SECONDS
	timeout -k 10 "$timeout_s" bash "$t" >"$log" 2>&1 </dev/null
	rc=$?
	cat "$log"
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		if [ "$rc" = 124 ]; then
			echo "not ok - $name: timed out after ${timeout_s}s"
		else
			echo "not ok - $name: exited with status $rc"
		fi
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" != 0 ] && failures+=("$name")
	echo "# $name: $p passed, $f failed ($((SECONDS - start))s)"
done

# a sanitizer build of the pooler reports to its stderr log: any report fails the test it ran in
for f in "$MB_IT_ROOT"/tests/*/stderr.log; do
	[ -f "$f" ] || continue
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f"; then
		name=$(basename "$(dirname "$f")")
		echo "not ok - $name: sanitizer report in the pooler's stderr"
		grep -E -A 12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | head -n 40 | sed 's/^/#   /'
		failed=$((failed + 1))
		failures+=("$name (sanitizer)")
	fi
done

if [ ${#failures[@]} -gt 0 ]; then
	echo "# failing: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
