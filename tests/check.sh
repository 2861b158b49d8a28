#!/usr/bin/env bash
# make check's test phase: C unit tests (ASan/UBSan), busted specs, integration tests; one summary line.
#
# MB_UNIT_BINS: the unit test programs (built by make); MB_ONLY=unit|spec|integration runs one part.
set -uo pipefail
cd "$(dirname "$0")/.."

only=${MB_ONLY:-all}
total_pass=0
total_fail=0
summary=()

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Count "N passed, N failed" from the last such line of a log; echo "P F" (or nothing).
counts() {
	grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1 | awk '{print $1, $3}'
}

run_unit() {
	local bin name log rc pf p f pass=0 fail=0
	mkdir -p build/asan/logs
	for bin in ${MB_UNIT_BINS:-}; do
		name=$(basename "$bin")
		log=build/asan/logs/$name.log
		if [ ! -x "$bin" ]; then
			echo "unit  $name: 0 passed, 1 FAILED (did not build: see the compiler output above)"
			fail=$((fail + 1))
			continue
		fi
		timeout 120 "$bin" >"$log" 2>&1
		rc=$?
		pf=$(counts "$log")
		p=${pf% *}
		f=${pf#* }
		if [ -z "$pf" ]; then
			p=$(grep -c '^ok ' "$log")
			f=$(grep -c '^not ok ' "$log")
		fi
		if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			# crashed, sanitizer report, or no checks: one failure of its own
			f=1
		fi
		if [ "$f" = 0 ]; then
			echo "unit  $name: $p passed"
		else
			echo "unit  $name: $p passed, $f FAILED (exit status $rc, log $log)"
			awk '/^not ok / {show = 1; print; next} /^#/ && show {print; next} {show = 0}' "$log" |
				head -n 40 | sed 's/^/    /'
			if [ "$rc" != 0 ] && ! grep -q '^not ok ' "$log"; then
				tail -n 25 "$log" | sed 's/^/    /'
			fi
		fi
		pass=$((pass + p))
		fail=$((fail + f))
	done
	if [ -z "${MB_UNIT_BINS:-}" ]; then
		echo "unit: no tests/unit/test_*.c yet"
	fi
	summary+=("unit:        $pass passed, $fail failed")
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
}

run_spec() {
	local log=build/busted.log rc line p f
	if ! find spec -name '*_spec.lua' 2>/dev/null | grep -q .; then
		echo "spec: no spec/*_spec.lua yet, skipping busted"
		summary+=("spec:        skipped (no specs)")
		return
	fi
	mkdir -p build
	# plainTerminal: its summary line also counts files that failed to load (as errors)
	timeout 300 busted --lua=luajit -o plainTerminal >"$log" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=$(awk '{print $1}' <<<"$line")
		f=$(awk '{print $4 + $7}' <<<"$line")
	else
		p=0
		f=1
	fi
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	if [ "$f" != 0 ]; then
		echo "spec: busted exit status $rc; failures and errors:"
		sed -n '/^\(Failure\|Error\) ->/,$p' "$log" | head -n 80 | sed 's/^/    /'
		[ -z "$line" ] && tail -n 25 "$log" | sed 's/^/    /'
	fi
	echo "spec  busted: $p passed, $f failed (log $log)"
	summary+=("spec:        $p passed, $f failed")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

# One integration pass's counts from its log and exit status: "P F".
pass_counts() {
	local log=$1 rc=$2 pf p f
	pf=$(counts "$log")
	p=${pf% *}
	f=${pf#* }
	if [ -z "$pf" ]; then
		p=0
		f=1
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	echo "$p $f"
}

# Two passes at once, each with a PostgreSQL of its own: the normal one (the release build, RSS bounds
# checked), and the smallest buffers (pkt_buf 128, tcp_socket_buffer 4096) under an ASan/UBSan build
# of the pooler, where every partial read, partial write and full buffer happens.
run_integration() {
	local log=build/integration.log small_log=build/integration-small.log normal_pid small_pid rc rc_small
	local pf name
	mkdir -p build
	tests/integration/run.sh >"$log" 2>&1 &
	normal_pid=$!
	if [ -x build/asan/moonbouncer ]; then
		# LeakSanitizer at exit too: every object is torn down before the pooler ends
		MB_PASS=small MB_BIN=$PWD/build/asan/moonbouncer \
			ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			tests/integration/run.sh >"$small_log" 2>&1 &
		small_pid=$!
	else
		echo "not ok - the ASan build of the pooler (build/asan/moonbouncer) did not build" >"$small_log"
		echo "0 passed, 1 failed" >>"$small_log"
		small_pid=
	fi
	wait "$normal_pid"
	rc=$?
	rc_small=1
	if [ -n "$small_pid" ]; then
		wait "$small_pid"
		rc_small=$?
	fi
	for name in normal small; do
		if [ "$name" = normal ]; then
			echo "== integration tests, normal pass"
			cat "$log"
			pf=$(pass_counts "$log" "$rc")
		else
			echo "== integration tests, small-buffers pass (ASan/UBSan pooler)"
			cat "$small_log"
			pf=$(pass_counts "$small_log" "$rc_small")
		fi
		summary+=("integration ($name): ${pf% *} passed, ${pf#* } failed")
		total_pass=$((total_pass + ${pf% *}))
		total_fail=$((total_fail + ${pf#* }))
	done
}

case $only in
all)
	echo "== C unit tests (ASan + UBSan)"
	run_unit
	echo "== busted specs"
	run_spec
	run_integration
	;;
unit) run_unit ;;
spec) run_spec ;;
integration) run_integration ;;
*)
	echo "MB_ONLY must be unit, spec or integration" >&2
	exit 2
	;;
esac

echo "== summary"
for line in "${summary[@]}"; do
	echo "$line"
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
