#!/usr/bin/env bash
# 100 MB COPY in and out through the pooler: same bytes back, pooler memory stays bounded.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init copy

su=$MB_SCRAM_USER sp=$MB_SCRAM_PASS
mb_pgdb "$MB_DB"
mb_user "$su" "$sp"
mb_set auth_type scram-sha-256
mb_start_or_bail

rows=${MB_COPY_ROWS:-1000000}
data=$T_DIR/copy_in.txt
# ~100 bytes a row: an id and varied text, in COPY's canonical text form
awk -v n="$rows" 'BEGIN {
	for (i = 1; i <= n; i++)
		printf "%d\t%08x-%s-%d\n", i, (i * 2654435761) % 4294967296,
			"moonbouncer copy test row padding padding padding padding padding padding padding", i % 9973
}' >"$data"
size=$(stat -c %s "$data")
if [ "$size" -ge $((rows * 100)) ]; then
	mb_ok "generated $((size / 1000000)) MB of COPY data"
else
	mb_not_ok "generated ~100 MB of COPY data" "only $size bytes"
fi
hwm_before=$(mb_vmhwm "$MB_PID")

mb_psql "$su" "$sp" "$MB_DB" -c "DROP TABLE IF EXISTS copy_t; CREATE TABLE copy_t (id int, v text)" >/dev/null 2>&1
out=$(mb_psql "$su" "$sp" "$MB_DB" -c "COPY copy_t FROM STDIN" <"$data" 2>&1)
mb_is "$out" "" "COPY FROM STDIN through the pooler succeeds"
n=$(mb_psql "$su" "$sp" "$MB_DB" -c "SELECT count(*) FROM copy_t" 2>&1)
mb_is "$n" "$rows" "all rows arrived"
sum_in=$(md5sum <"$data" | cut -d' ' -f1)
sum_out=$(mb_psql "$su" "$sp" "$MB_DB" -c "COPY (SELECT * FROM copy_t ORDER BY id) TO STDOUT" | md5sum | cut -d' ' -f1)
mb_is "$sum_out" "$sum_in" "COPY TO STDOUT through the pooler returns the same bytes (md5)"

hwm=$(mb_vmhwm "$MB_PID")
if [ -n "$hwm" ] && [ "$hwm" -lt 65536 ]; then
	mb_ok "pooler peak RSS stays below 64 MB (VmHWM ${hwm} kB, ${hwm_before} kB before)"
else
	mb_not_ok "pooler peak RSS stays below 64 MB" "VmHWM: ${hwm:-unknown} kB (${hwm_before} kB before)"
fi
mb_psql "$su" "$sp" "$MB_DB" -c "DROP TABLE copy_t" >/dev/null 2>&1
rm -f "$data"
mb_check_healthy "after the big COPY: next client fine"

mb_test_done
