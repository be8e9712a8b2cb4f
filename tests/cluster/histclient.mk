# build/histclient: the history-recording load client of the fault tests
# (tests/cluster/histclient.c; its histories go through build/lincheck).
build/histclient: tests/cluster/histclient.c tests/lib/lincheck.c tests/lib/lincheck.h build/libhstore.a
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ tests/cluster/histclient.c tests/lib/lincheck.c build/libhstore.a $(LDLIBS)

all: build/histclient

# The fault tests (tests/cluster/test_fault_*, test_lab2_*, test_lab3_*) run
# these two programs.
test-cluster: build/histclient build/lincheck
