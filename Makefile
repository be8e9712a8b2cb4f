# hstore — one entry point: make, make test, make run, make bench, make deps.
#
# Layout: raftkv/, net/ and node/ build into build/libhstore.a; fs/ into build/libhstorefs.a;
# tools/*.c into bin/hstore.  Every tests/unit/test_*.c becomes one cmocka binary
# (plain build in build/tests/, sanitizer build in build/asan/tests/).
# Module-specific targets live in *.mk fragments beside their code, included at the end.

CC      ?= gcc
PKGS    := fuse3 libzstd sqlite3 nanomsg libsodium libmicrohttpd
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
BASEFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I. $(WARN) -g -pthread
CFLAGS  ?= -O2
ALLCFLAGS = $(BASEFLAGS) $(CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ledit -lncurses -lpthread -lm
TESTLIBS = -lcmocka

SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_SRC   := $(sort $(wildcard raftkv/*.c net/*.c node/*.c))
FS_SRC    := $(sort $(wildcard fs/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TLIB_SRC  := $(sort $(wildcard tests/lib/*.c))
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
HDRS      := $(wildcard raftkv/*.h net/*.h node/*.h fs/*.h tools/*.h tests/lib/*.h tests/unit/*.h)

LIB_OBJ   := $(LIB_SRC:%.c=build/obj/%.o)
FS_OBJ    := $(FS_SRC:%.c=build/obj/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=build/obj/%.o)
TLIB_OBJ  := $(TLIB_SRC:%.c=build/obj/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=build/tests/%)

ASAN_LIB_OBJ  := $(LIB_SRC:%.c=build/asan/obj/%.o)
ASAN_TLIB_OBJ := $(TLIB_SRC:%.c=build/asan/obj/%.o)
ASAN_UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

.PHONY: man install uninstall
.PHONY: all deps format format-check test test-unit test-asan test-cluster test-long test-stress coverage clean run bench fuzz help FORCE
.DEFAULT_GOAL := all

all: bin/hstore $(UNIT_BIN)

# One line per public target (the *.mk fragments add the ones past `run`).
help:
	@echo "make                build bin/hstore and the unit tests (same as make all)"
	@echo "make deps           install the Debian packages hstore needs (as root)"
	@echo "make test           deps, format check, build, unit tests (plain and ASan/UBSan), cluster tests"
	@echo "make test-unit      unit tests only (plain build)"
	@echo "make test-asan      unit tests under ASan/UBSan"
	@echo "make test-cluster   the multi-process cluster tests (tests/cluster/run-all.sh; CL_ONLY=NAME runs one)"
	@echo "make test-long      long randomized runs of the unit and cluster tests"
	@echo "make test-stress    make test STRESS_RUNS times (default 3) with both cores kept busy"
	@echo "make format-check   check that the sources match .clang-format"
	@echo "make format         rewrite the sources to .clang-format (clang-format -i)"
	@echo "make coverage       line coverage of the Raft core (raftkv/raft*.c) under its tests"
	@echo "make run            start a local 3-node cluster with its mounts (MOUNT_ROOT, default /mnt/hstore)"
	@echo "make bench          a fresh 3-node cluster: put/get and filesystem workloads, fsync latency (BENCH_SCALE=N)"
	@echo "make bench-scale    put at 64 and 256 clients on 3 and 5 nodes, and node memory at SCALE_KEYS keys"
	@echo "make bench-storage  the storage layer alone on the real disk (build/bench_storage)"
	@echo "make fuzz           fuzz-wire and fuzz-kv, each for FUZZ_SECONDS (default 600)"
	@echo "make fuzz-wire      libFuzzer on the wire decoder (net/wire.c)"
	@echo "make fuzz-kv        libFuzzer on the state machine's operation decoder and apply"
	@echo "make fs-tools       build/fs_solo and build/fs_check, the filesystem test programs"
	@echo "make man            build/hstore.1, the man page, from the binary's help texts"
	@echo "make install        bin/hstore, its man page and bash completion under PREFIX (/usr/local)"
	@echo "make uninstall      remove what make install put under PREFIX"
	@echo "make clean          remove build/ and bin/"
	@echo "make help           this list"

# ---- dependencies -------------------------------------------------------------
DEB_PKGS := gcc make libfuse3-dev fuse3 libnanomsg-dev libzstd-dev libsqlite3-dev \
            libcmocka-dev pkg-config iptables iproute2 libedit-dev libncurses-dev \
            clang libclang-rt-14-dev tmux psmisc util-linux procps coreutils sqlite3 \
            python3 libsodium-dev clang-format man-db groff-base libmicrohttpd-dev \
            chromium nodejs
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; sudo=""; \
	  if [ "$$(id -u)" != 0 ]; then \
	    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	    else echo "deps: need root to install:$$missing" >&2; exit 1; fi; \
	  fi; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	else echo "deps: all present"; fi

# ---- build flags --------------------------------------------------------------
# build/flags holds every flag a compile or link uses, pkg-config's answers
# included; every object and binary depends on it, and it is rewritten only when
# the flags change. So a change of CC, CFLAGS or of the installed packages (an
# object compiled before `make deps` lacked their -I flags) rebuilds everything.
FLAGS_STAMP := build/flags
FLAGS_NOW    = CC=$(CC) | $(ALLCFLAGS) | SAN=$(SAN) | LDLIBS=$(LDLIBS) $(TESTLIBS)
$(FLAGS_STAMP): FORCE
	@mkdir -p build; new='$(subst ','\'',$(FLAGS_NOW))'; \
	if [ "$$(cat $@ 2>/dev/null)" != "$$new" ]; then \
	  [ -f $@ ] && echo "build flags changed: rebuilding everything"; \
	  printf '%s\n' "$$new" > $@; fi
FORCE:

# ---- build --------------------------------------------------------------------
build/obj/%.o: %.c $(HDRS) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c $< -o $@

build/asan/obj/%.o: %.c $(HDRS) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -O1 $(SAN) -c $< -o $@

build/libhstore.a: $(LIB_OBJ)
	@mkdir -p build
	rm -f $@ && ar rcs $@ $^

build/asan/libhstore.a: $(ASAN_LIB_OBJ)
	@mkdir -p build/asan
	rm -f $@ && ar rcs $@ $^

bin/hstore: $(TOOL_OBJ) $(FS_OBJ) build/libhstore.a $(FLAGS_STAMP)
	@mkdir -p bin
	$(CC) $(ALLCFLAGS) -o $@ $(TOOL_OBJ) $(FS_OBJ) build/libhstore.a $(LDLIBS)

build/tests/%: tests/unit/%.c $(TLIB_OBJ) build/libhstore.a $(HDRS) $(FLAGS_STAMP)
	@mkdir -p build/tests
	$(CC) $(ALLCFLAGS) -o $@ $< $(TLIB_OBJ) build/libhstore.a $(TESTLIBS) $(LDLIBS)

build/asan/tests/%: tests/unit/%.c $(ASAN_TLIB_OBJ) build/asan/libhstore.a $(HDRS) $(FLAGS_STAMP)
	@mkdir -p build/asan/tests
	$(CC) $(ALLCFLAGS) -O1 $(SAN) -o $@ $< $(ASAN_TLIB_OBJ) build/asan/libhstore.a $(TESTLIBS) $(LDLIBS)

# ---- tests --------------------------------------------------------------------
# HSTORE_TEST_MODE tells a test binary how much to do: normal | asan | long.
test: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-cluster

# Every C source and header kept to .clang-format (clang-format from Debian).
# `make format` rewrites the files in place.
FMT_SRC = $(sort $(wildcard raftkv/*.[ch] net/*.[ch] node/*.[ch] fs/*.[ch] tools/*.[ch] \
            tests/unit/*.[ch] tests/lib/*.[ch] tests/cluster/*.[ch]))
format-check:
	@bad=$$(for f in $(FMT_SRC); do clang-format --dry-run -Werror "$$f" >/dev/null 2>&1 || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "format-check: not formatted (run make format):" $$bad >&2; exit 1; fi; \
	echo "format-check: $(words $(FMT_SRC)) files formatted"

format:
	@clang-format -i $(FMT_SRC)

test-unit: $(UNIT_BIN)
	@HSTORE_TEST_MODE=normal tests/run-unit.sh "unit" $(UNIT_BIN)

test-asan: $(ASAN_UNIT_BIN)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  HSTORE_TEST_MODE=asan tests/run-unit.sh "unit (ASan+UBSan)" $(ASAN_UNIT_BIN)

test-cluster: bin/hstore
	@tests/cluster/run-all.sh

# make test STRESS_RUNS times in a row with both cores kept busy (tests/run-stress.sh).
STRESS_RUNS ?= 3
test-stress: deps
	@tests/run-stress.sh $(STRESS_RUNS)

test-long: all
	@HSTORE_TEST_MODE=long tests/run-unit.sh "unit (long)" $(UNIT_BIN)
	@HSTORE_TEST_MODE=long tests/cluster/run-all.sh

clean:
	rm -rf build bin

# ---- man page, install --------------------------------------------------------
# The man page is generated from the help texts the binary prints
# (tools/mkman.sh), so it cannot say anything the binary does not.
# PREFIX and DESTDIR as usual: make install PREFIX=$$HOME/.local
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(DESTDIR)$(PREFIX)/bin
MAN1DIR  = $(DESTDIR)$(PREFIX)/share/man/man1
COMPDIR  = $(DESTDIR)$(PREFIX)/share/bash-completion/completions

man: build/hstore.1
build/hstore.1: bin/hstore tools/mkman.sh
	@mkdir -p build
	tools/mkman.sh bin/hstore >$@.tmp && mv $@.tmp $@

install: bin/hstore build/hstore.1
	install -d $(BINDIR) $(MAN1DIR) $(COMPDIR)
	install -m 0755 bin/hstore $(BINDIR)/hstore
	install -m 0644 build/hstore.1 $(MAN1DIR)/hstore.1
	install -m 0644 tools/hstore.bash-completion $(COMPDIR)/hstore

uninstall:
	rm -f $(BINDIR)/hstore $(MAN1DIR)/hstore.1 $(COMPDIR)/hstore

# A local 3-node cluster with its mounts (MOUNT_ROOT/1..3), data in $HSTORE_DIR or ~/.hstore.
MOUNT_ROOT ?= /mnt/hstore
run: deps
	@$(MAKE) --no-print-directory all
	@bin/hstore up -n 3 --mount-root $(MOUNT_ROOT)
	@echo
	@echo "The filesystem, from three nodes:"
	@echo "  echo bar > $(MOUNT_ROOT)/1/foo      # durable on a majority when close() returns"
	@echo "  cat $(MOUNT_ROOT)/2/foo             # linearizable from any node: bar"
	@echo "  echo baz >> $(MOUNT_ROOT)/3/foo     # atomic APPEND"
	@echo "The same data from the command line: bin/hstore get foo; bin/hstore shell"
	@echo "Stop it (unmounts, keeps the data): bin/hstore down"

-include $(sort $(wildcard raftkv/*.mk net/*.mk node/*.mk fs/*.mk tools/*.mk tests/*.mk tests/*/*.mk))

# The programs built by the fragments above follow the build flags too.
$(filter-out $(FLAGS_STAMP),$(filter build/%,$(shell sed -n 's/^\(build\/[a-z_]*\):.*/\1/p' $(wildcard raftkv/*.mk net/*.mk node/*.mk fs/*.mk tools/*.mk tests/*.mk tests/*/*.mk) 2>/dev/null))): $(FLAGS_STAMP)
