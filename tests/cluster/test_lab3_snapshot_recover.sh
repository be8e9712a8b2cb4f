#!/usr/bin/env bash
# 6.824 (2017) lab 3: TestSnapshotRecover — one client, snapshots (threshold 1000 bytes), kill -9 of
# every node; the log stays bounded.
# (GenericTest with real processes: see fx_generic_test in lib/faults.sh.)
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
fx_generic_test --clients 1 --crash --snapshot 1000
cl_pass
