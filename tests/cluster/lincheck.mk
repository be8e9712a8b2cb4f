# build/lincheck: the linearizability checker as a command for the cluster tests
# (tests/cluster/lincheck_main.c + tests/lib/lincheck.c; see tests/lib/lincheck.h).
build/lincheck: tests/cluster/lincheck_main.c tests/lib/lincheck.c tests/lib/lincheck.h
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ tests/cluster/lincheck_main.c tests/lib/lincheck.c

all: build/lincheck
