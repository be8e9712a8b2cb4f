# bench.mk — `make bench`: a fresh 3-node cluster on loopback, put at
# 1/16/64 clients, linearizable get at 16, the filesystem workloads
# (tests/bench/bench_fs.c) through the mounts beside the same workloads on a
# local directory, and the disk's raw fdatasync latency, in one table
# (tests/bench/run-bench.sh).
#   BENCH_SCALE=N   multiplies every operation count (default 1)
#   BENCH_DIR=DIR   parent of the run's data directory (default build/; must be
#                   on a real disk, not tmpfs, so that fsync costs what it costs)
.PHONY: bench
build/bench_fs: tests/bench/bench_fs.c
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ $< -lpthread -lm

bench: all build/bench_fs
	@tests/bench/run-bench.sh

# `make bench-scale`: put at 64 and 256 clients on 3 and on 5 nodes, and the
# resident memory of nodes holding SCALE_KEYS (default 1,000,000) keys of 256
# bytes (tests/bench/run-scale.sh).
.PHONY: bench-scale
bench-scale: all
	@tests/bench/run-scale.sh
