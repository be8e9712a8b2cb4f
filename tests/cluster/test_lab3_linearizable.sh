#!/usr/bin/env bash
# 6.824 (2018) lab 3 TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable:
# 7 nodes, 15 client sessions on 15 shared keys (about 50 % appends, 5 % puts,
# 45 % gets), unreliable network, servers repartitioned every ~1 s, kill -9 of
# every node in each round, snapshot threshold 1000 bytes; every history must
# be linearizable (the 2017 exactly-once checks apply to keys no put touched).
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
fx_generic_test --servers 7 --clients 15 --keys 15 --mix append=50,put=5,get=45 \
    --unreliable --crash --partitions --snapshot 1000 --dup 0.1
cl_pass
