# build/rawclient: sends what `hstore` never sends (reads as commands, chosen
# sessions and seqs, floods of registrations) for the tests that check that
# no client input can stop a node (tests/cluster/test_sec_apply_*,
# test_sessions_*).
build/rawclient: tests/cluster/rawclient.c build/libhstore.a
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ tests/cluster/rawclient.c build/libhstore.a $(LDLIBS)

all: build/rawclient
test-cluster: build/rawclient
