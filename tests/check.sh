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

run_integration() {
	local log=build/integration.log rc pf p f
	mkdir -p build
	tests/integration/run.sh 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	pf=$(counts "$log")
	p=${pf% *}
	f=${pf#* }
	if [ -z "$pf" ]; then
		p=0
		f=1
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	summary+=("integration: $p passed, $f failed")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

case $only in
all)
	echo "== C unit tests (ASan + UBSan)"
	run_unit
	echo "== busted specs"
	run_spec
	echo "== integration tests"
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
