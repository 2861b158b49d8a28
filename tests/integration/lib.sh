# Helpers for black-box integration tests: a throwaway PostgreSQL 15, per-test configs, the pooler, checks.
#
# A test script sources this file, calls mb_test_init NAME, writes a config with mb_reset/mb_db/mb_set/
# mb_user, starts the pooler with mb_start, checks with mb_is/mb_like/mb_ok/mb_not_ok and ends with
# mb_test_done. The cluster comes from the environment the runner exports (MB_PG_*); a test run on its
# own starts (and stops) a cluster of its own. Every process started here is stopped by PID on exit.

MB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MB_BIN=${MB_BIN:-$MB_REPO/moonbouncer}
PQTOOL=${PQTOOL:-$MB_REPO/build/pqtool}

if [ -z "${PG_BINDIR:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
		PG_BINDIR=/usr/lib/postgresql/15/bin
	elif command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
		PG_BINDIR=$(pg_config --bindir)
	else
		PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	fi
fi
export PG_BINDIR
PATH="$PG_BINDIR:$PATH"

# Test roles and databases (created by pg_cluster_start).
MB_SCRAM_USER=mb_scram MB_SCRAM_PASS=scram-pass	# SCRAM secret in pg_authid
MB_MD5_USER=mb_md5 MB_MD5_PASS=md5-pass		# md5 secret in pg_authid, md5 in pg_hba.conf
MB_RELOAD_USER=mb_reload MB_RELOAD_PASS=reload-old
MB_DB=mb_db

mb_is_root() { [ "$(id -u)" = 0 ]; }

# Run a command as the postgres OS user (when root). runuser forks, so use it for foreground commands.
as_pg() {
	if mb_is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# Like as_pg but exec()s the program, so that $! of a background job is the program's own PID.
exec_as_pg() {
	if mb_is_root; then
		exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
	else
		exec "$@"
	fi
}

mb_chown_pg() {
	if mb_is_root; then
		chown -R postgres:postgres "$@"
	fi
}

# mb_policy_copy NAME [DIR]: a test policy from tests/integration/policies into DIR (default $T_DIR),
# readable by the pooler's user
mb_policy_copy() {
	local dir=${2:-$T_DIR} own
	own=$dir
	[ "$dir" = "$T_DIR" ] && own=$dir/$1	# the test dir itself keeps its owner
	mkdir -p "$dir" && cp "$MB_REPO/tests/integration/policies/$1" "$dir/$1" && mb_chown_pg "$own"
}

# A free TCP port in 20000-32767 (never the ephemeral range 32768-60999), not handed out before in this run.
mb_free_port() {
	local p i used=${MB_IT_ROOT:-/tmp}/ports
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		if [ -f "$used" ] && grep -qx "$p" "$used"; then
			continue
		fi
		if command -v ss >/dev/null; then
			[ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && continue
		elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			continue
		fi
		[ -n "${MB_IT_ROOT:-}" ] && echo "$p" >>"$used"
		echo "$p"
		return 0
	done
	echo "mb_free_port: no free port found" >&2
	return 1
}

# Wait until PID is gone (a zombie child is reaped); 0 if it exited within TIMEOUT seconds.
# The exit status of a child is left in MB_EXIT_STATUS.
mb_wait_exit() {
	local pid=$1 timeout=${2:-10} i state
	MB_EXIT_STATUS=
	for ((i = 0; i < timeout * 10; i++)); do
		if [ ! -e "/proc/$pid" ]; then
			wait "$pid" 2>/dev/null
			MB_EXIT_STATUS=$?
			return 0
		fi
		state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
		if [ "$state" = Z ] || [ -z "$state" ]; then
			wait "$pid" 2>/dev/null
			MB_EXIT_STATUS=$?
			return 0
		fi
		sleep 0.1
	done
	return 1
}

mb_alive() {
	local state
	[ -e "/proc/$1" ] || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

# Remember a PID and its program so that the runner can kill it if the test itself could not.
mb_track_pid() {
	if [ -n "${MB_IT_ROOT:-}" ]; then
		echo "$1 $2" >>"$MB_IT_ROOT/pids"
	fi
}

# Stop PID: SIG (default INT), then QUIT, then KILL, waiting in between.
mb_kill_wait() {
	local pid=$1 sig=${2:-INT}
	mb_alive "$pid" || { mb_wait_exit "$pid" 1; return 0; }
	kill -"$sig" "$pid" 2>/dev/null
	mb_wait_exit "$pid" 10 && return 0
	kill -QUIT "$pid" 2>/dev/null
	mb_wait_exit "$pid" 3 && return 0
	kill -KILL "$pid" 2>/dev/null
	mb_wait_exit "$pid" 5
}

# ---------------------------------------------------------------- the PostgreSQL cluster

pg_super_psql() {
	PGPASSWORD=$MB_PG_PASSWORD timeout 60 "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$MB_PG_PORT" -U postgres "$@"
}

pg_cluster_start() {
	local data log
	if [ -z "${MB_IT_ROOT:-}" ]; then
		MB_IT_ROOT=$(mktemp -d /tmp/mbit.XXXXXX) || return 1
		MB_IT_ROOT_OWNED=1
	fi
	chmod 755 "$MB_IT_ROOT"
	mkdir -p "$MB_IT_ROOT/pg/sock"
	data=$MB_IT_ROOT/pg/data
	log=$MB_IT_ROOT/pg/postgres.log
	MB_PG_PASSWORD=super-$RANDOM$RANDOM
	echo "$MB_PG_PASSWORD" >"$MB_IT_ROOT/pg/pwfile"
	mb_chown_pg "$MB_IT_ROOT/pg"
	MB_PG_PORT=$(mb_free_port) || return 1
	MB_PG_HOST=127.0.0.1
	MB_PG_SOCKDIR=$MB_IT_ROOT/pg/sock
	if ! as_pg "$PG_BINDIR/initdb" -D "$data" -A scram-sha-256 -U postgres --pwfile="$MB_IT_ROOT/pg/pwfile" \
		-E UTF8 --locale=C -N >"$MB_IT_ROOT/pg/initdb.log" 2>&1; then
		echo "pg_cluster_start: initdb failed:" >&2
		tail -n 20 "$MB_IT_ROOT/pg/initdb.log" >&2
		return 1
	fi
	cat >>"$data/postgresql.conf" <<-EOF
		port = $MB_PG_PORT
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$MB_PG_SOCKDIR'
		max_connections = 200
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		password_encryption = 'scram-sha-256'
	EOF
	# the md5 role logs in with md5 (its pg_authid secret is md5); everyone else with SCRAM
	{
		echo "local all mb_md5 md5"
		echo "host all mb_md5 127.0.0.1/32 md5"
		cat "$data/pg_hba.conf"
	} >"$data/pg_hba.conf.new" && mv "$data/pg_hba.conf.new" "$data/pg_hba.conf"
	mb_chown_pg "$data"
	if ! as_pg "$PG_BINDIR/pg_ctl" -D "$data" -l "$log" -w -t 60 start >"$MB_IT_ROOT/pg/pg_ctl.log" 2>&1; then
		echo "pg_cluster_start: pg_ctl start failed:" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	MB_PG_PID=$(head -n 1 "$data/postmaster.pid")
	MB_PG_DATA=$data
	export MB_IT_ROOT MB_PG_PORT MB_PG_HOST MB_PG_SOCKDIR MB_PG_PASSWORD MB_PG_PID MB_PG_DATA
	pg_super_psql -d postgres >/dev/null <<-EOF || { echo "pg_cluster_start: creating roles failed" >&2; return 1; }
		CREATE ROLE $MB_SCRAM_USER LOGIN PASSWORD '$MB_SCRAM_PASS';
		CREATE ROLE $MB_RELOAD_USER LOGIN PASSWORD '$MB_RELOAD_PASS';
		SET password_encryption = 'md5';
		CREATE ROLE $MB_MD5_USER LOGIN PASSWORD '$MB_MD5_PASS';
		RESET password_encryption;
		CREATE DATABASE $MB_DB OWNER $MB_SCRAM_USER;
		CREATE DATABASE mb_bench OWNER $MB_SCRAM_USER;
	EOF
	pg_super_psql -d "$MB_DB" -c "GRANT ALL ON SCHEMA public TO PUBLIC" >/dev/null || return 1
	return 0
}

pg_cluster_stop() {
	if [ -n "${MB_PG_PID:-}" ]; then
		# fast shutdown: SIGINT to the postmaster
		mb_kill_wait "$MB_PG_PID" INT
		MB_PG_PID=
	fi
	if [ -n "${MB_IT_ROOT_OWNED:-}" ] && [ -z "${MB_KEEP:-}" ]; then
		rm -rf "$MB_IT_ROOT"
	fi
}

# mb_pgbench_init SCALE: pgbench's tables in $MB_DB (made as postgres, usable by the test user); the output
# goes to $T_DIR/init.log.
mb_pgbench_init() {
	PGPASSWORD=$MB_PG_PASSWORD timeout 120 "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$MB_PG_PORT" -U postgres -i -q \
		-s "$1" "$MB_DB" >"$T_DIR/init.log" 2>&1 &&
		pg_super_psql -d "$MB_DB" -c "GRANT ALL ON ALL TABLES IN SCHEMA public TO $MB_SCRAM_USER" >/dev/null
}

# SCRAM secret of a role as PostgreSQL stores it (for auth_file).
pg_secret() {
	pg_super_psql -d postgres -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$1'"
}

# PgBouncer/PostgreSQL md5 secret: "md5" + md5(password || user).
mb_md5_secret() {
	printf 'md5%s' "$(printf '%s%s' "$2" "$1" | md5sum | cut -d' ' -f1)"
}

# ---------------------------------------------------------------- test bookkeeping

mb_test_init() {
	MB_TEST_NAME=$1
	MB_N=0
	MB_FAILED=0
	MB_PIDS=()
	MB_PID=
	if [ -z "${MB_PG_PORT:-}" ]; then
		MB_STANDALONE=1
		pg_cluster_start || { echo "not ok 1 - start PostgreSQL"; exit 1; }
	fi
	T_DIR=$MB_IT_ROOT/tests/$MB_TEST_NAME
	rm -rf "$T_DIR"
	mkdir -p "$T_DIR"
	mb_chown_pg "$T_DIR"
	trap mb_test_cleanup EXIT
	trap 'exit 130' INT TERM
	[ -x "$MB_BIN" ] || { mb_not_ok "binary $MB_BIN exists"; exit 1; }
	[ -x "$PQTOOL" ] || { mb_not_ok "pqtool $PQTOOL exists (make build/pqtool)"; exit 1; }
	mb_reset
}

mb_test_cleanup() {
	local pid
	for pid in "${MB_PIDS[@]}"; do
		mb_kill_wait "$pid" TERM
	done
	if [ -n "${MB_PID:-}" ]; then
		mb_kill_wait "$MB_PID" INT
	fi
	if [ -n "${MB_STANDALONE:-}" ]; then
		pg_cluster_stop
	fi
}

mb_ok() {
	MB_N=$((MB_N + 1))
	echo "ok $MB_N - $MB_TEST_NAME: $1"
}

# mb_not_ok NAME [DIAGNOSTIC...]: a failure, with diagnostics as "# " lines.
mb_not_ok() {
	local name=$1 line
	shift
	MB_N=$((MB_N + 1))
	MB_FAILED=$((MB_FAILED + 1))
	echo "not ok $MB_N - $MB_TEST_NAME: $name"
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/#   /'
	done
}

mb_is() {
	if [ "$1" = "$2" ]; then
		mb_ok "$3"
	else
		mb_not_ok "$3" "got:      '$1'" "expected: '$2'"
	fi
}

# mb_like GOT EXTENDED-REGEX NAME
mb_like() {
	if mb_matches "$1" "$2"; then
		mb_ok "$3"
	else
		mb_not_ok "$3" "got:      '$1'" "expected: /$2/"
	fi
}

# mb_unlike GOT REGEX NAME: ok when GOT does not match the extended regex.
mb_unlike() {
	if mb_matches "$1" "$2"; then
		mb_not_ok "$3" "got:      '$1'" "expected no match of /$2/"
	else
		mb_ok "$3"
	fi
}

# mb_matches TEXT REGEX: TEXT has a line matching the extended regex. A here-string, not a pipe: grep -q
# stops reading at the first match, and a writer still writing a long text into a pipe would then fail
# with SIGPIPE, which pipefail turns into "no match".
mb_matches() { grep -Eq -- "$2" <<<"$1"; }

# mb_lt GOT LIMIT NAME: ok when the number GOT is below LIMIT (decimals allowed).
mb_lt() {
	if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 < b + 0) }'; then
		mb_ok "$3"
	else
		mb_not_ok "$3" "got:      '$1'" "expected: below $2"
	fi
}

# mb_check NAME COMMAND...: ok when the command succeeds.
mb_check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		mb_ok "$name"
	else
		mb_not_ok "$name" "command failed: $*" "$out"
	fi
}

mb_diag() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

mb_test_done() {
	echo "# $MB_TEST_NAME: $((MB_N - MB_FAILED)) passed, $MB_FAILED failed"
	[ "$MB_FAILED" = 0 ] && [ "$MB_N" -gt 0 ]
	exit $?
}

# ---------------------------------------------------------------- pooler configuration

# Start a fresh config for this test: no databases, no users, default settings, a new port.
mb_reset() {
	MB_DBS=()
	MB_USERS=()
	MB_USERCFG=()
	MB_KEYS=()
	declare -gA MB_SETTINGS=()
	MB_PORT=$(mb_free_port)
	MB_INI=$T_DIR/pgbouncer.ini
	MB_AUTHFILE=$T_DIR/userlist.txt
	MB_LOG=$T_DIR/moonbouncer.log
	MB_PIDFILE=$T_DIR/moonbouncer.pid
	mb_set listen_addr 127.0.0.1
	mb_set listen_port "$MB_PORT"
	mb_set unix_socket_dir "$T_DIR"
	mb_set logfile "$MB_LOG"
	mb_set pidfile "$MB_PIDFILE"
	mb_set auth_file "$MB_AUTHFILE"
	mb_set auth_type md5
	mb_set pool_mode session
	# the small-buffers pass (MB_PASS=small): every partial read, partial write and full buffer happens
	if [ "${MB_PASS:-normal}" = small ]; then
		mb_set pkt_buf "${MB_SMALL_PKT_BUF:-128}"
		mb_set tcp_socket_buffer "${MB_SMALL_SOCKET_BUFFER:-4096}"
	fi
}

# RSS bounds are checked in the normal pass only (a sanitizer build's memory is not the product's).
mb_rss_checks() { [ "${MB_PASS:-normal}" = normal ]; }

# mb_db NAME CONNSTR: a [databases] line. mb_pgdb NAME [EXTRA]: one pointing at the test cluster.
mb_db() { MB_DBS+=("$1 = $2"); }
mb_pgdb() { mb_db "$1" "host=127.0.0.1 port=$MB_PG_PORT dbname=${3:-$MB_DB}${2:+ $2}"; }

# mb_set KEY VALUE: a [pgbouncer] setting (replaces an earlier value); mb_unset KEY drops it.
mb_set() {
	[ -n "${MB_SETTINGS[$1]+x}" ] || MB_KEYS+=("$1")
	MB_SETTINGS[$1]=$2
}
mb_unset() { unset "MB_SETTINGS[$1]"; }

# mb_user USER SECRET: an auth_file line. mb_usercfg "NAME = k=v": a [users] line.
mb_user() { MB_USERS+=("\"$1\" \"$2\""); }
mb_usercfg() { MB_USERCFG+=("$1"); }

mb_write_config() {
	local k line
	{
		echo ";; written by $MB_TEST_NAME"
		echo "[databases]"
		for line in "${MB_DBS[@]}"; do echo "$line"; done
		echo
		if [ ${#MB_USERCFG[@]} -gt 0 ]; then
			echo "[users]"
			for line in "${MB_USERCFG[@]}"; do echo "$line"; done
			echo
		fi
		echo "[pgbouncer]"
		for k in "${MB_KEYS[@]}"; do
			[ -n "${MB_SETTINGS[$k]+x}" ] && echo "$k = ${MB_SETTINGS[$k]}"
		done
	} >"$MB_INI"
	: >"$MB_AUTHFILE"
	for line in "${MB_USERS[@]}"; do echo "$line" >>"$MB_AUTHFILE"; done
	mb_chown_pg "$MB_INI" "$MB_AUTHFILE"
}

# Line number of the first line of the ini matching a regex (for file:line checks).
mb_ini_line() { grep -n -E -- "$1" "$MB_INI" | head -n 1 | cut -d: -f1; }

# Wait until something accepts TCP connections on PORT (while PID lives).
mb_wait_port() {
	local port=$1 pid=$2 i
	for ((i = 0; i < 100; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		mb_alive "$pid" || return 1
		sleep 0.1
	done
	return 1
}

# Start the pooler with the current config (extra arguments go before the ini path).
# Sets MB_PID; on failure prints diagnostics and returns 1.
mb_start() {
	mb_write_config
	if [ -n "${MB_PID:-}" ]; then
		mb_stop
	fi
	(exec_as_pg "$MB_BIN" "$@" "$MB_INI") >>"$T_DIR/stderr.log" 2>&1 &
	MB_PID=$!
	mb_track_pid "$MB_PID" "$MB_BIN"
	if ! mb_wait_port "$MB_PORT" "$MB_PID"; then
		mb_diag "pooler did not start (pid $MB_PID); stderr and log:"
		tail -n 20 "$T_DIR/stderr.log" 2>/dev/null | sed 's/^/#   /'
		tail -n 20 "$MB_LOG" 2>/dev/null | sed 's/^/#   /'
		mb_kill_wait "$MB_PID" KILL
		MB_PID=
		return 1
	fi
	return 0
}

# Stop the pooler (SIGINT, escalating) and wait for it.
mb_stop() {
	if [ -n "${MB_PID:-}" ]; then
		mb_kill_wait "$MB_PID" "${1:-INT}"
		MB_PID=
	fi
}

# Start a background program (e.g. "$PQTOOL" hold ...; a program, not a shell function) whose PID is
# stopped at test end. Output to FILE. mb_bg FILE PROGRAM ARGS...; sets MB_BG_PID.
mb_bg() {
	local out=$1
	shift
	(exec "$@") >"$out" 2>&1 &
	MB_BG_PID=$!
	MB_PIDS+=("$MB_BG_PID")
	mb_track_pid "$MB_BG_PID" "$1"
}

# Wait until FILE contains a line matching REGEX (up to TIMEOUT s).
mb_wait_line() {
	local file=$1 re=$2 timeout=${3:-10} i
	for ((i = 0; i < timeout * 10; i++)); do
		grep -Eq -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Peak resident set size of a process in kB (VmHWM).
mb_vmhwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# ---------------------------------------------------------------- clients through the pooler

# libpq connection string to the pooler: mb_connstr USER PASSWORD [DB] [EXTRA...]
mb_connstr() {
	local user=$1 pass=$2 db=${3:-$MB_DB}
	shift 3 2>/dev/null || shift $#
	echo "host=127.0.0.1 port=$MB_PORT user='$user' password='$pass' dbname='$db' connect_timeout=10 $*"
}

# pqtool with a time limit.
# mb_tool NAME VAR: build/NAME from tests/integration/NAME.c (a libpq client of the tests), built when
# missing or older than its source; VAR gets its path. A failed build ends the test.
mb_tool() {
	local name=$1 src=$MB_REPO/tests/integration/$1.c bin=$MB_REPO/build/$1
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		mkdir -p "$MB_REPO/build"
		# shellcheck disable=SC2046
		if ! cc -O1 -g -Wall -Wextra -Werror $(pkg-config --cflags libpq) "$src" $(pkg-config --libs libpq) \
			-o "$bin.tmp.$$" 2>"$T_DIR/cc-$name.log" || ! mv -f "$bin.tmp.$$" "$bin"; then
			mb_not_ok "build $name" "$(cat "$T_DIR/cc-$name.log")"
			mb_test_done
		fi
	fi
	printf -v "$2" '%s' "$bin"
}

# txn_tool (mb_tool txn_tool TXN_TOOL first): tt runs the script on stdin, lines_of OUT CLIENT picks that
# client's lines of its transcript.
tt() { timeout 120 "$TXN_TOOL" script; }
lines_of() { sed -n "s/^$2: //p" <<<"$1"; }

pqt() { timeout 60 "$PQTOOL" "$@"; }

# psql through the pooler: mb_psql USER PASSWORD DB [psql args]; unaligned, tuples only.
mb_psql() {
	local user=$1 pass=$2 db=$3
	shift 3
	PGPASSWORD=$pass PGCONNECT_TIMEOUT=10 timeout 120 "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$MB_PORT" -U "$user" -d "$db" "$@"
}

# A normal connection through the pooler works (used after every error case).
mb_check_healthy() {
	local out
	out=$(pqt query "$(mb_connstr "$MB_SCRAM_USER" "$MB_SCRAM_PASS" "$MB_DB")" "SELECT 40 + 2" 2>&1)
	mb_is "$out" 42 "${1:-a normal connection still works}"
}

# mb_start, and when it fails: record the failure and end the test (nothing else can be checked).
mb_start_or_bail() {
	if ! mb_start "$@"; then
		mb_not_ok "pooler starts (${MB_BIN##*/} $* $MB_INI)"
		mb_test_done
	fi
}

# mb_hold_transaction CONNSTR: a client that opens a transaction and holds it, and its server, for 60 s
# (txn_tool: call mb_tool txn_tool TXN_TOOL first). Returns once it holds; HOLD_PID is its pid.
mb_hold_transaction() {
	printf 'open a %s\nq a BEGIN\nq a SELECT 1\necho held\nsleep 60\n' "$1" >"$T_DIR/hold.script"
	mb_bg "$T_DIR/hold.out" "$TXN_TOOL" script "$T_DIR/hold.script"
	HOLD_PID=$MB_BG_PID
	mb_wait_line "$T_DIR/hold.out" '^held' 30 || mb_diag "the holder did not begin: $(cat "$T_DIR/hold.out")"
}

# ---------------------------------------------------------------- certificates (openssl command line)

# In MB_CERTS (default $T_DIR/certs): mb_cert_ca NAME CN, a self-signed CA; mb_cert NAME CN CA [SAN], an EC key
# and a certificate signed by CA (subjectAltName SAN, e.g. "DNS:localhost"). openssl's output goes to openssl.log.
mb_ossl() { openssl "$@" >>"${MB_CERTS:-$T_DIR/certs}/openssl.log" 2>&1; }
mb_cert_key() {
	local c=${MB_CERTS:-$T_DIR/certs}
	mkdir -p "$c" && mb_ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$c/$1.key" &&
		chmod 600 "$c/$1.key"
}
mb_cert_ca() {
	local c=${MB_CERTS:-$T_DIR/certs}
	mb_cert_key "$1" && mb_ossl req -new -x509 -key "$c/$1.key" -out "$c/$1.crt" -days 2 -subj "/CN=$2" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
mb_cert() {
	local c=${MB_CERTS:-$T_DIR/certs} ext
	ext=$c/$1.ext
	mkdir -p "$c" && echo "basicConstraints=CA:FALSE" >"$ext"
	[ -n "${4:-}" ] && echo "subjectAltName=$4" >>"$ext"
	mb_cert_key "$1" && mb_ossl req -new -key "$c/$1.key" -out "$c/$1.csr" -subj "/CN=$2" &&
		mb_ossl x509 -req -in "$c/$1.csr" -CA "$c/$3.crt" -CAkey "$c/$3.key" -CAcreateserial -days 2 \
			-extfile "$ext" -out "$c/$1.crt"
}

# ---------------------------------------------------------------- raw protocol bytes (for pqtool raw)

mb_hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# A v3 StartupMessage as hex: mb_startup_hex NAME VALUE [NAME VALUE]...
mb_startup_hex() {
	local body=00030000
	while [ $# -ge 2 ]; do
		body+="$(mb_hex "$1")00$(mb_hex "$2")00"
		shift 2
	done
	body+=00
	printf '%08x%s' $((${#body} / 2 + 4)) "$body"
}

# pqtool raw against the pooler's TCP port: mb_raw HEX...
mb_raw() { pqt raw 127.0.0.1 "$MB_PORT" "$@"; }

# ---------------------------------------------------------------- a PostgreSQL cluster of a test's own

# For tests that restart, kill or freeze PostgreSQL, which must not disturb the cluster the other tests share.
# pg_own_init [CONF-LINE...]: initdb in $T_DIR/own (trust authentication, superuser postgres), start it; sets
# OWN_PORT and an EXIT trap that thaws and stops it. pg_own_start, pg_own_stop [MODE] (pg_ctl -m MODE, default
# fast), pg_own_pid (the postmaster), pg_own_psql DB [ARGS...] (as postgres), pg_own_ready (waits until it
# answers, up to 30 s), pg_own_conf KEY VALUE (for the next start), pg_own_freeze PID / pg_own_thaw PID
# (SIGSTOP / SIGCONT; whatever is still frozen at the end is thawed first).
OWN_FROZEN=()
pg_own_init() {
	local line
	OWN_DIR=$T_DIR/own
	OWN_PORT=$(mb_free_port) || return 1
	mkdir -p "$OWN_DIR"
	mb_chown_pg "$OWN_DIR"
	if ! as_pg "$PG_BINDIR/initdb" -D "$OWN_DIR/data" -A trust -U postgres -E UTF8 --locale=C -N \
		>"$OWN_DIR/initdb.log" 2>&1; then
		mb_diag "initdb of the test's own cluster failed:" "$(tail -n 5 "$OWN_DIR/initdb.log")"
		return 1
	fi
	{
		echo "port = $OWN_PORT"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$OWN_DIR'"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		for line in "$@"; do echo "$line"; done
	} >>"$OWN_DIR/data/postgresql.conf"
	mb_chown_pg "$OWN_DIR"
	trap pg_own_cleanup EXIT
	pg_own_start
}
pg_own_pid() { head -n 1 "$OWN_DIR/data/postmaster.pid" 2>/dev/null; }
pg_own_start() {
	if ! as_pg "$PG_BINDIR/pg_ctl" -D "$OWN_DIR/data" -l "$OWN_DIR/postgres.log" -w -t 60 start \
		>>"$OWN_DIR/pg_ctl.log" 2>&1; then
		mb_diag "the test's own cluster did not start:" "$(tail -n 5 "$OWN_DIR/postgres.log")"
		return 1
	fi
	mb_track_pid "$(pg_own_pid)" "$PG_BINDIR/postgres"
}
pg_own_stop() {
	as_pg "$PG_BINDIR/pg_ctl" -D "$OWN_DIR/data" -m "${1:-fast}" -w -t 60 stop >>"$OWN_DIR/pg_ctl.log" 2>&1
}
pg_own_conf() { echo "$1 = $2" >>"$OWN_DIR/data/postgresql.conf"; }
pg_own_psql() {
	local db=$1
	shift
	timeout 30 "$PG_BINDIR/psql" -X -q -A -t -h 127.0.0.1 -p "$OWN_PORT" -U postgres -d "$db" "$@"
}
pg_own_ready() {
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(pg_own_psql postgres -c "SELECT 1" 2>/dev/null)" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
pg_own_freeze() { kill -STOP "$1" && OWN_FROZEN+=("$1"); }
pg_own_thaw() {
	local i
	kill -CONT "$1"
	for i in "${!OWN_FROZEN[@]}"; do
		[ "${OWN_FROZEN[$i]}" = "$1" ] && unset "OWN_FROZEN[$i]"
	done
}
pg_own_cleanup() {
	local pid
	for pid in "${OWN_FROZEN[@]}"; do kill -CONT "$pid" 2>/dev/null; done
	mb_test_cleanup
	pid=$(pg_own_pid)
	[ -n "$pid" ] && mb_kill_wait "$pid" INT
}

# ---------------------------------------------------------------- load that checks every answer (fault_tool)

# mb_load_start NAME CONNSTR CLIENTS: fault_tool load in the background (mb_tool fault_tool FAULT_TOOL first);
# returns once every client has had an answer (up to 30 s). mb_load_stop NAME: each client ends at its next
# answer (up to 30 s); the summary is left in MB_LOAD_OUT. mb_load_field KEY: a number of that summary.
mb_load_start() {
	rm -f "$T_DIR/load-$1.stop"
	mb_bg "$T_DIR/load-$1.out" "$FAULT_TOOL" load "$2" "$3" "$T_DIR/load-$1.stop" 30
	MB_LOAD_PID=$MB_BG_PID
	mb_wait_line "$T_DIR/load-$1.out" '^started' 30 ||
		mb_diag "load $1 did not get every client an answer:" "$(cat "$T_DIR/load-$1.out")"
}
mb_load_stop() {
	touch "$T_DIR/load-$1.stop"
	mb_wait_exit "$MB_LOAD_PID" 40 || mb_diag "load $1 did not end"
	MB_LOAD_OUT=$(cat "$T_DIR/load-$1.out")
}
mb_load_field() { sed -n "s/^$1 //p" <<<"$MB_LOAD_OUT" | head -n 1; }

# ---------------------------------------------------------------- checks after a fault (FAULT_CONNSTR, FAULT_DB,
# FAULT_POOL_SIZE: a pool of the test's own cluster, whose servers have database FAULT_DB)

# mb_own_servers [DB]: the pool's server connections as PostgreSQL counts them
mb_own_servers() {
	pg_own_psql postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '${1:-$FAULT_DB}'
		AND backend_type = 'client backend'"
}
# mb_through_pooler [CONNSTR]: seconds until a new client gets through the pooler (up to 20 s), or "never"
mb_through_pooler() {
	local start=$EPOCHREALTIME i
	for ((i = 0; i < 200; i++)); do
		if [ "$(pqt query "${1:-$FAULT_CONNSTR}" "SELECT 'back'" 2>/dev/null)" = back ]; then
			awk -v s="$start" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.2f", n - s }'
			return
		fi
		sleep 0.1
	done
	echo never
}
# mb_after_fault NAME LOAD ALLOWED: the pooler runs and serves new clients, PostgreSQL sees at most
# FAULT_POOL_SIZE of its connections; then the load LOAD ends: no mix-up, no hang, every client answered again,
# and every error it saw matches the extended regex ALLOWED (empty: no error at all); then mb_idle_servers.
mb_after_fault() {
	local name=$1 load=$2 allowed=$3 t n bad
	mb_alive "$MB_PID" && mb_ok "$name: the pooler still runs" || mb_not_ok "$name: the pooler still runs"
	t=$(mb_through_pooler)
	mb_like "$t" '^[0-9.]+$' "$name: a new client is served ($t s after the fault)"
	n=$(mb_own_servers)
	mb_lt "$n" "$((FAULT_POOL_SIZE + 1))" "$name: under load PostgreSQL sees at most pool_size = $FAULT_POOL_SIZE servers ($n)"
	mb_load_stop "$load"
	mb_diag "$name: load: $(grep -v '^started' <<<"$MB_LOAD_OUT" | tr '\n' ';')"
	mb_is "$(mb_load_field mixups)/$(mb_load_field hung)" 0/0 "$name: no client got another client's answer, none hung"
	mb_is "$(mb_load_field recovered)" "$(mb_load_field clients)" "$name: every client is answered after the fault"
	if [ -z "$allowed" ]; then
		mb_is "$(mb_load_field errors)" 0 "$name: the clients saw no error"
	else
		bad=$(sed -n 's/^error [0-9]* //p' <<<"$MB_LOAD_OUT" | grep -Ev -- "$allowed")
		mb_is "$bad" "" "$name: clients saw only the errors of the fault"
	fi
	mb_idle_servers "$name"
}
# mb_idle_servers NAME [DB]: the pool's servers close once idle for server_idle_timeout (set low): PostgreSQL's
# count falls to zero (none leaked)
mb_idle_servers() {
	local i n
	for ((i = 0; i < 150; i++)); do
		n=$(mb_own_servers "${2:-}")
		[ "$n" = 0 ] && break
		sleep 0.1
	done
	mb_is "$n" 0 "$1: after server_idle_timeout no server of the pool is left (none leaked)"
}
mb_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$MB_PID/status"; }
# mb_reload: write the config, SIGHUP the pooler, wait for "configuration reloaded"
mb_reload() {
	local mark i
	mb_write_config
	mark=$(wc -l <"$MB_LOG")
	kill -HUP "$MB_PID"
	for ((i = 0; i < 50; i++)); do
		tail -n +"$((mark + 1))" "$MB_LOG" | grep -q 'configuration reloaded' && return 0
		sleep 0.1
	done
	mb_diag "no reload logged"
}
