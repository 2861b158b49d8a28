#!/usr/bin/env bash
# make demo installs only what the demo needs (compiler, libraries, PostgreSQL), make check the rest of the
# test toolchain; make demo PORT=N (tests/demo.sh --port N) listens on that port.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
mb_test_init demo

# the package list a target checks, from make's dry run (its first "for p in ...; do" loop)
pkgs_of() {
	make -n -s -C "$MB_REPO" --no-print-directory "$@" 2>/dev/null | sed -n 's/.*for p in \([^;]*\); do.*/\1/p' |
		head -n 1
}

demo_pkgs=$(pkgs_of demo)
mb_like "$demo_pkgs" '(^| )postgresql( |$)' "make demo: PostgreSQL is installed ($demo_pkgs)"
mb_like "$demo_pkgs" 'libevent-dev' "make demo: the build's libraries are installed"
mb_unlike "$demo_pkgs" 'valgrind|openjdk|nodejs|pgbouncer|busted|jdbc' \
	"make demo: no test toolchain (Java, Node, valgrind, PgBouncer, busted)"
check_pkgs=$(pkgs_of check)
for p in valgrind openjdk-17-jdk-headless nodejs pgbouncer lua-busted postgresql libevent-dev; do
	mb_like "$check_pkgs" "(^| )$p( |$)" "make check still installs $p"
done
mb_like "$(make -n -s -C "$MB_REPO" --no-print-directory demo PORT=23456 2>/dev/null)" 'demo\.sh --port 23456' \
	"make demo PORT=N hands the port to tests/demo.sh"

# the demo itself on a port of our choosing
port=$(mb_free_port)
out=$(timeout 120 "$MB_REPO/tests/demo.sh" --once --port "$port" 2>&1)
rc=$?
mb_is "$rc" 0 "demo.sh --once --port: runs ($(tail -n 3 <<<"$out" | tr '\n' ' '))"
mb_like "$out" "moonbouncer is running on 127\.0\.0\.1:$port " "demo.sh --port: moonbouncer listens on the given port"
mb_like "$out" "psql -h 127\.0\.0\.1 -p $port " "demo.sh --port: the printed command uses it"
mb_like "$out" 'demo --once: through moonbouncer: demo@demo' "demo.sh --port: a query goes through"
out=$(timeout 30 "$MB_REPO/tests/demo.sh" --once --port 99999 2>&1)
mb_like "$out" "invalid port '99999'" "demo.sh --port: a bad port is refused ($out)"

mb_test_done
