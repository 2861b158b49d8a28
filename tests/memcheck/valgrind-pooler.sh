#!/bin/sh
# The pooler under valgrind's memcheck (MB_BIN for tests/memcheck/run.sh): log to $MB_VG_LOG.
exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--track-origins=yes --num-callers=30 --suppressions="$(dirname "$0")/luajit.supp" \
	--log-file="$MB_VG_LOG" "$MB_VG_BIN" "$@"
