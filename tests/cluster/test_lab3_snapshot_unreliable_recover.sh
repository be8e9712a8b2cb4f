#!/usr/bin/env bash
# 6.824 (2017) lab 3: TestSnapshotUnreliableRecover — 5 clients, snapshots, unreliable, kill -9 of
# every node.
# (GenericTest with real processes: see fx_generic_test in lib/faults.sh.)
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
fx_generic_test --clients 5 --unreliable --crash --snapshot 1000 --dup 0.1
cl_pass
