#!/usr/bin/env bash
# Runs the libFuzzer builds (make fuzz): each target for SECONDS, seeded from its committed corpus.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]    targets by short name (ini, scram, ...); default all
#   FUZZ_MERGE=1 ...                         afterwards, add the inputs that reach new code to the
#                                            committed corpus (tests/fuzz/corpus/NAME), minimised
#
# New inputs go to build/fuzz/corpus/NAME; a crash input is written to tests/fuzz/crashes/NAME/, to be
# committed with its fix (make check replays every file there). Prints executions per target.
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for src in tests/fuzz/fuzz_*.c; do
		t=$(basename "$src" .c)
		targets+=("${t#fuzz_}")
	done
fi

failed=0
for t in "${targets[@]}"; do
	bin=build/fuzz/fuzz_$t
	work=build/fuzz/corpus/$t
	crashes=tests/fuzz/crashes/$t
	mkdir -p "$work" "$crashes" build/fuzz/logs
	log=build/fuzz/logs/$t.log
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$bin" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
		"$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	if [ "$rc" = 0 ]; then
		echo "fuzz $t: ${execs:-?} executions in ${seconds} s, $cov, no crash"
	else
		echo "fuzz $t: FAILED after ${execs:-?} executions (exit $rc); input saved in $crashes/, log $log"
		grep -m 5 -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
	rmdir "$crashes" 2>/dev/null	# only targets with a saved crash keep the directory
	if [ -n "${FUZZ_MERGE:-}" ]; then
		"$bin" -merge=1 "tests/fuzz/corpus/$t" "$work" >>"$log" 2>&1
	fi
done
exit $((failed > 0))
