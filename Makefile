# moonbouncer: build, tests, demo and install (GNU make).

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
DATADIR = $(PREFIX)/share/moonbouncer

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS = libevent openssl luajit

WARN = -Wall -Wextra -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -Icore -DMB_DATADIR='"$(DATADIR)"' \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lm
DEPFLAGS = -MMD -MP

SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# (the sanitizer builds run from the tree: their runtime directory is the repository)
SAN_CFLAGS = -std=gnu11 -O1 -g $(WARN) $(SAN) -Icore -Itests/unit -DMB_DATADIR='"$(CURDIR)"' \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)

SRCS = $(wildcard core/*.c)
OBJS = $(patsubst core/%.c,build/%.o,$(SRCS))
LIB_SRCS = $(filter-out core/main.c,$(SRCS))
SAN_OBJS = $(patsubst core/%.c,build/asan/core/%.o,$(LIB_SRCS))
SAN_LIB = build/asan/libcore.a

UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_EXTRA = $(wildcard tests/unit/unit.c)
UNIT_BINS = $(patsubst tests/unit/%.c,build/asan/%,$(UNIT_SRCS)) $(FUZZ_REPLAY_BINS)

# Fuzz targets (tests/fuzz/fuzz_*.c): libFuzzer builds for `make fuzz`, and replay builds (ASan/UBSan,
# the committed corpora and crash inputs, once each) that `make check` runs with the unit tests.
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY_BINS = $(patsubst tests/fuzz/%.c,build/asan/%,$(FUZZ_SRCS))
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_CFLAGS = -std=gnu11 -O1 -g $(WARN) -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -Icore -DMB_DATADIR='"$(CURDIR)"' $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
FUZZ_OBJS = $(patsubst core/%.c,build/fuzz/core/%.o,$(LIB_SRCS))

PQTOOL = build/pqtool

FORMAT_FILES = $(wildcard core/*.c core/*.h tests/unit/*.c tests/unit/*.h tests/integration/*.c tests/bench/*.c)

# Debian packages (checked with dpkg -s; installed only when missing): what the build and `make demo` need,
# then what the tests and benchmarks add (`make deps`, run by check and bench).
DEMO_DEB_PKGS = build-essential pkg-config libevent-dev libssl-dev libluajit-5.1-dev postgresql procps \
	util-linux
FUZZ_DEB_PKGS = clang libclang-rt-dev
TEST_DEB_PKGS = luajit libpq-dev postgresql-contrib lua-busted pgbouncer valgrind \
	nodejs openjdk-17-jdk-headless libpostgresql-jdbc-java curl jq prometheus openssl
# Debian's prometheus package brings promtool (test_metrics); where an init system runs, installing it also
# starts a Prometheus server, which deps stops again when it installed the package itself.
PROMETHEUS_WAS_INSTALLED := $(shell dpkg -s prometheus >/dev/null 2>&1 && echo yes)

# make demo PORT=7432: the port moonbouncer listens on (default 6432, or a free one if that is taken)
PORT =

.PHONY: FORCE all deps deps-demo check unit spec integration integration-small fuzz soak check-valgrind demo install uninstall format format-check clean

all: moonbouncer

moonbouncer: $(OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $(OBJS) $(LIBS)

build/%.o: core/%.c build/.datadir | build
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

# MB_DATADIR is compiled in (where an installed binary finds lua/ and policies/): rebuild when PREFIX changes.
build/.datadir: FORCE | build
	@echo '$(DATADIR)' | cmp -s - $@ || echo '$(DATADIR)' >$@

FORCE:

build build/asan build/asan/core:
	mkdir -p $@

# Sanitizer builds of the core (without main.c) for the C unit tests, as an archive so each
# test pulls in only the objects it uses.
build/asan/core/%.o: core/%.c build/.datadir | build/asan/core
	$(CC) $(SAN_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(SAN_LIB): $(SAN_OBJS) | build/asan
	rm -f $@
	ar rcs $@ $(SAN_OBJS)

build/asan/test_%: tests/unit/test_%.c tests/unit/unit.h $(UNIT_EXTRA) $(SAN_LIB) | build/asan
	@rm -f $@
	$(CC) $(SAN_CFLAGS) $(DEPFLAGS) -o $@ $< $(UNIT_EXTRA) $(SAN_LIB) $(LIBS)

build/asan/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(wildcard tests/fuzz/*.h) $(SAN_LIB) | build/asan
	@rm -f $@
	$(CC) $(SAN_CFLAGS) $(DEPFLAGS) -DFUZZ_NAME='"$*"' -o $@ $< tests/fuzz/replay.c $(SAN_LIB) $(LIBS)

build/fuzz/core:
	mkdir -p $@

build/fuzz/core/%.o: core/%.c | build/fuzz/core
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c -o $@ $<

build/fuzz/libcore.a: $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $(FUZZ_OBJS)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) build/fuzz/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build/fuzz/libcore.a $(LIBS)

# make fuzz FUZZ_SECONDS=N [FUZZ_TARGETS="ini scram"]: each target for N seconds (tests/fuzz/run.sh)
fuzz:
	$(call install_missing,$(DEMO_DEB_PKGS) $(FUZZ_DEB_PKGS))
	$(MAKE) --no-print-directory $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# make check-valgrind: a short mixed load through the pooler under memcheck (tests/memcheck; not in check)
check-valgrind: deps all $(PQTOOL)
	tests/memcheck/run.sh

# make soak DURATION=600: mixed load, policy reloads, server recycling and a PostgreSQL restart (tests/soak)
DURATION = 600
soak: deps all $(PQTOOL)
	tests/soak/run.sh $(DURATION)

# The pooler under ASan/UBSan, for the integration suite's small-buffers pass.
ASAN_BIN = build/asan/moonbouncer

$(ASAN_BIN): core/main.c $(SAN_LIB) | build/asan
	$(CC) $(SAN_CFLAGS) $(DEPFLAGS) -o $@ core/main.c $(SAN_LIB) $(LIBS)

$(PQTOOL): tests/integration/pqtool.c | build
	$(CC) -std=gnu11 -O2 -g $(WARN) $(shell $(PKG_CONFIG) --cflags libpq) -o $@ $< \
		$(shell $(PKG_CONFIG) --libs libpq)

# $(call install_missing,PACKAGES)
define install_missing
	@missing=""; \
	for p in $(1); do \
		dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "deps: all packages present"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "deps: missing packages:$$missing" >&2; \
		echo "deps: install them as root: apt-get install$$missing" >&2; \
		exit 1; \
	else \
		echo "deps: installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update && apt-get install -y --no-install-recommends $$missing; \
	fi
endef

deps-demo:
	$(call install_missing,$(DEMO_DEB_PKGS))

deps:
	$(call install_missing,$(DEMO_DEB_PKGS) $(TEST_DEB_PKGS))
ifneq ($(PROMETHEUS_WAS_INSTALLED),yes)
	@if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1; \
	elif [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1; fi; true
endif
	@# npm comes with some nodejs builds and separately with Debian's
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends npm; } || { echo "deps: npm is missing" >&2; exit 1; }

# The binary must build; a unit test that does not compile counts as a failure of its own and the
# other tests still run. tests/check.sh runs the unit tests, the busted specs and the integration
# tests, and prints the summary.
check: deps
	@$(MAKE) --no-print-directory all $(PQTOOL) $(ASAN_BIN) || { \
		echo "== summary"; echo "build: FAILED"; echo "0 passed, 1 failed"; exit 1; }
	@$(MAKE) --no-print-directory -k $(UNIT_BINS) || echo "check: some unit tests did not build"
	@MB_UNIT_BINS="$(UNIT_BINS)" tests/check.sh

unit: $(UNIT_BINS)
	MB_ONLY=unit MB_UNIT_BINS="$(UNIT_BINS)" tests/check.sh

spec:
	MB_ONLY=spec tests/check.sh

integration: all $(PQTOOL)
	tests/integration/run.sh

# The integration suite with the smallest buffers, under the ASan/UBSan build of the pooler.
integration-small: $(ASAN_BIN) $(PQTOOL)
	MB_PASS=small MB_BIN=$(CURDIR)/$(ASAN_BIN) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 tests/integration/run.sh

demo: deps-demo
	$(MAKE) all
	tests/demo.sh $(if $(PORT),--port $(PORT))

install: moonbouncer
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)
	install -m 755 moonbouncer $(DESTDIR)$(BINDIR)/moonbouncer
	# examples/ as a whole, and the Lua runtime and ready policies when present
	for d in examples lua policies; do \
		if [ -d "$$d" ]; then \
			find "$$d" -type f | while read -r f; do \
				install -D -m 644 "$$f" "$(DESTDIR)$(DATADIR)/$$f" || exit 1; \
			done || exit 1; \
		fi; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/moonbouncer
	rm -rf $(DESTDIR)$(DATADIR)

format:
	@command -v clang-format >/dev/null || { echo "format: clang-format is not installed (apt-get install clang-format)" >&2; exit 1; }
	clang-format -i $(FORMAT_FILES)

format-check:
	@command -v clang-format >/dev/null || { echo "format-check: clang-format is not installed (apt-get install clang-format)" >&2; exit 1; }
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build moonbouncer

-include $(wildcard build/*.d build/asan/*.d build/asan/core/*.d)

# Side-by-side benchmark against PgBouncer from Debian (not part of check).
IDLE_CLIENTS = build/idle_clients

$(IDLE_CLIENTS): tests/bench/idle_clients.c | build
	$(CC) -std=gnu11 -O2 -g $(WARN) $(shell $(PKG_CONFIG) --cflags libpq) -o $@ $< \
		$(shell $(PKG_CONFIG) --libs libpq)

# Side-by-side benchmark against PgBouncer (about 40 minutes; bench-quick: about 5-8).
# Options pass through BENCH_ARGS, e.g. make bench BENCH_ARGS="--out /tmp/bench --reps 5".
bench: deps
	$(MAKE) all $(IDLE_CLIENTS)
	tests/bench/run.sh $(BENCH_ARGS)

bench-quick: deps
	$(MAKE) all $(IDLE_CLIENTS)
	tests/bench/run.sh --quick $(BENCH_ARGS)
