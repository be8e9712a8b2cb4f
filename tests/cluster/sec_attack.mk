# build/sec_attack: hostile peers and clients of the security tests
# (tests/cluster/sec_attack.c, run by tests/cluster/test_sec_*.sh).
build/sec_attack: tests/cluster/sec_attack.c build/libhstore.a $(HDRS)
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ tests/cluster/sec_attack.c build/libhstore.a $(LDLIBS)

all: build/sec_attack
test-cluster: build/sec_attack
