#!/usr/bin/env bash
# 6.824 (2017) lab 3: TestPersistConcurrentUnreliable — 5 clients, unreliable, kill -9 of every node.
# (GenericTest with real processes: see fx_generic_test in lib/faults.sh.)
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
fx_generic_test --clients 5 --crash --unreliable --dup 0.1
cl_pass
