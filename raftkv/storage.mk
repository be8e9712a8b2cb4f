# storage.mk — the storage benchmark.
#   make bench-storage   builds build/bench_storage and runs it on the real
#                        disk under build/bench-data (not tmpfs: fsync must
#                        reach the device for the numbers to mean anything).
BENCH_STORAGE_DIR ?= build/bench-data
BENCH_STORAGE_SECS ?= 3

.PHONY: bench-storage
build/bench_storage: tests/bench/bench_storage.c build/libhstore.a $(HDRS)
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ $< build/libhstore.a $(LDLIBS)

bench-storage: build/bench_storage
	@mkdir -p $(BENCH_STORAGE_DIR)
	@fs=$$(stat -f -c %T $(BENCH_STORAGE_DIR)); \
	 if [ "$$fs" = tmpfs ] || [ "$$fs" = ramfs ]; then \
	   echo "bench-storage: $(BENCH_STORAGE_DIR) is on $$fs; set BENCH_STORAGE_DIR to a real disk" >&2; exit 1; fi
	build/bench_storage $(BENCH_STORAGE_DIR) $(BENCH_STORAGE_SECS)
