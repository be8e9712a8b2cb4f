# raftkv/raft.mk — targets of the Raft core.
#
#   make coverage   builds the Raft core (raftkv/raft*.c) and its tests
#                   (tests/unit/test_raft*.c with tests/lib/raft_sim.c) with
#                   gcov instrumentation into build/cov/, runs them, and prints
#                   the line coverage of raft.c and of the whole core.
#
# The randomized run uses HSTORE_COV_SEEDS seeds (default 2000) to stay quick;
# coverage saturates long before that.

RAFT_CORE_SRC  := $(sort $(wildcard raftkv/raft*.c))
RAFT_TEST_SRC  := $(sort $(wildcard tests/unit/test_raft*.c))
RAFT_COV_OBJ   := $(RAFT_CORE_SRC:raftkv/%.c=build/cov/obj/%.o) build/cov/obj/conf_codec.o \
                  build/cov/obj/raft_sim.o
RAFT_COV_BIN   := $(RAFT_TEST_SRC:tests/unit/%.c=build/cov/%)
HSTORE_COV_SEEDS ?= 2000

.SECONDARY: $(RAFT_COV_OBJ)

build/cov/obj/%.o: raftkv/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -O0 --coverage -c $< -o $@

build/cov/obj/raft_sim.o: tests/lib/raft_sim.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -O0 -c $< -o $@

build/cov/test_%: tests/unit/test_%.c $(RAFT_COV_OBJ)
	$(CC) $(BASEFLAGS) -O0 --coverage -o $@ $< $(RAFT_COV_OBJ) $(TESTLIBS) -lm

coverage: $(RAFT_COV_BIN)
	@rm -f build/cov/obj/*.gcda
	@for t in $(RAFT_COV_BIN); do \
	  HSTORE_TEST_MODE=normal HSTORE_SEEDS=$(HSTORE_COV_SEEDS) $$t >build/cov/$$(basename $$t).log 2>&1 \
	    || { cat build/cov/$$(basename $$t).log; echo "coverage: $$t failed"; exit 1; }; \
	done
	@cd build/cov && gcov -n -o obj $(RAFT_CORE_SRC:%=../../%) 2>/dev/null | awk ' \
	  /^File/ { f = $$2; gsub(/\047/, "", f); sub(/.*\//, "", f) } \
	  /^Lines executed/ { split($$2, a, ":"); p = a[2]; sub(/%/, "", p); n = $$4; \
	    if (f ~ /^raft/ && f ~ /\.c$$/) { printf "coverage: %-22s %6.2f%% of %d lines\n", f, p, n; \
	      hit += p * n / 100; tot += n }; f = "" } \
	  END { if (tot) printf "coverage: Raft core total        %6.2f%% of %d lines\n", 100 * hit / tot, tot }'
