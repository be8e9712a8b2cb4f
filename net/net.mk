# net.mk — make targets of the net/ layer.
#
#   make fuzz-wire  (also part of `make fuzz`): builds the libFuzzer target
#                   tests/fuzz/fuzz_wire.c with clang + ASan/UBSan into
#                   build/fuzz_wire and runs it for FUZZ_SECONDS (default 600).
#                   The corpus grows in build/fuzz_corpus/wire; a crash leaves
#                   build/fuzz-wire-crash-* to replay with build/fuzz_wire FILE.

FUZZ_SECONDS ?= 600
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -I. -g -O1 -Wall -Wextra -Wno-unused-parameter \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer

.PHONY: fuzz fuzz-wire
fuzz: fuzz-wire

build/fuzz_wire: tests/fuzz/fuzz_wire.c net/wire.c net/wire_snap.c net/wire_member.c net/wire.h net/wire_internal.h \
                 raftkv/crc32c.c raftkv/crc32c.h raftkv/raft.h \
                 raftkv/byte.h raftkv/conf_codec.c raftkv/conf_codec.h
	@mkdir -p build
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_wire.c net/wire.c net/wire_snap.c \
	  net/wire_member.c raftkv/conf_codec.c \
	  raftkv/crc32c.c

fuzz-wire: build/fuzz_wire
	@mkdir -p build/fuzz_corpus/wire
	build/fuzz_wire -max_total_time=$(FUZZ_SECONDS) -use_value_profile=1 -print_final_stats=1 \
	  -artifact_prefix=build/fuzz-wire- build/fuzz_corpus/wire
