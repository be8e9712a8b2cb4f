#!/usr/bin/env bash
# 6.824 (2017) lab 3: TestPersistOneClient — kill -9 of every node in each round.
# (GenericTest with real processes: see fx_generic_test in lib/faults.sh.)
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
fx_generic_test --clients 1 --crash
cl_pass
