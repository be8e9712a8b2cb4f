# raw.sh — build/rawclient for the tests that send what `hstore` never sends
# (reads as commands, chosen sessions and seqs, floods of registrations).
# Source after cluster.sh.
CL_RAW=${CL_RAW:-$CL_REPO/build/rawclient}
if [ ! -x "$CL_RAW" ] || [ "$CL_RAW" -ot "$CL_REPO/tests/cluster/rawclient.c" ]; then
    make -s -C "$CL_REPO" build/rawclient >/dev/null 2>&1 || cl_fail "cannot build $CL_RAW"
fi

# raw ARGS: rawclient against the whole cluster.
raw() { "$CL_RAW" "$CL_SPEC" "$@"; }
# raw_via I ARGS: rawclient with only node I in the SPEC.
raw_via() {
    local i=$1
    shift
    "$CL_RAW" "$i=${CL_HOST[$i]}:${CL_PORT[$i]}" "$@"
}
