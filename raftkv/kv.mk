# kv.mk — make targets of the state machine.
#
#   make fuzz-kv  (also part of `make fuzz`): builds the libFuzzer target
#                 tests/fuzz/fuzz_kv.c with clang + ASan/UBSan into
#                 build/fuzz_kv and runs it for FUZZ_SECONDS (default 600).
#                 The corpus grows in build/fuzz_corpus/kv; a crash leaves
#                 build/fuzz-kv-crash-* to replay with build/fuzz_kv FILE.

.PHONY: fuzz-kv
fuzz: fuzz-kv

KV_SRC := $(wildcard raftkv/kv*.c)

build/fuzz_kv: tests/fuzz/fuzz_kv.c $(KV_SRC) $(wildcard raftkv/kv*.h) raftkv/byte.h
	@mkdir -p build
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_kv.c $(KV_SRC)

fuzz-kv: build/fuzz_kv
	@mkdir -p build/fuzz_corpus/kv
	build/fuzz_kv -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=build/fuzz-kv- build/fuzz_corpus/kv
