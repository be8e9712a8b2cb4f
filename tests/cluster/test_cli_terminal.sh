#!/usr/bin/env bash
# The command line as a person at a terminal meets it (run in tmux):
# `hstore get` ends with a newline on a terminal and is byte-exact when piped;
# in `hstore shell` Ctrl-C drops the line being typed and does not quit,
# Ctrl-D quits, and the history is saved however the shell ends (SIGTERM
# too).  Also: options before the command, `status` with pids and --json,
# `ls -0`.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
# The cluster of `hstore up` below: clients find it and its secret in DIR.
unset HSTORE_CLUSTER HSTORE_SECRET_FILE
command -v tmux >/dev/null || cl_fail "this test needs tmux (in DEB_PKGS: make deps)"
dir=$CL_DIR/up
sock=hstore-test-$$
stop_all() {
    tmux -L "$sock" kill-server >/dev/null 2>&1
    "$HSTORE" down --dir "$dir" --wait 5 >/dev/null 2>&1
}
trap 'cl_rc=$?; stop_all; (exit $cl_rc); cl_teardown' EXIT
export HSTORE_DIR=$dir

out=$(hs up -n 3 --base-port 7500 --no-mount --wait 30 2>&1) || cl_fail "up: exit $?: $out"
while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"
hs put k1 v1 && hs put k2 "line
two" && hs put nonl abc || cl_fail "puts"

# Options before the command.
cl_expect_eq "$("$HSTORE" --timeout 2 get k1)" v1 "hstore --timeout 2 get k1"
cl_expect_eq "$("$HSTORE" --dir "$dir" --timeout=2 get k1)" v1 "hstore --dir D --timeout=2 get k1"
cl_expect_rc 2 "an option before the command without its value" "$HSTORE" --timeout
cl_expect_rc 2 "no command after the options" "$HSTORE" --timeout 2

# get: exact bytes when piped.
cl_expect_eq "$(hs get nonl | od -An -c | tr -s ' ')" " a b c" "get piped: no newline added"

# ls -0: NUL after each key.
cl_expect_eq "$(hs ls -0 | tr '\0' '|')" "k1|k2|nonl|" "ls -0"
cl_expect_eq "$(hs ls --null k | tr '\0' '|')" "k1|k2|" "ls --null k"

# status: the pid of each node; --json.
st=$(hs status) || cl_fail "status: exit $?"
echo "$st" >&2
while read -r id pid; do
    grep -q "^$id .* pid=$pid\$" <<<"$st" || cl_fail "status does not show node $id's pid $pid: $st"
done <"$dir/pids"
js=$(hs status --json) || cl_fail "status --json: exit $?"
echo "$js" >&2
python3 - "$js" "$dir/pids" <<'PY' || cl_fail "status --json is not what it should be: $js"
import json, sys
d = json.loads(sys.argv[1])
pids = dict(l.split() for l in open(sys.argv[2]))
assert len(d["nodes"]) == 3
assert sum(1 for n in d["nodes"] if n["role"] == "leader") == 1
for n in d["nodes"]:
    assert n["reachable"] is True and n["pid"] == int(pids[str(n["id"])]), n
    assert n["address"].endswith(":%d" % (7500 + 2 * (n["id"] - 1))), n
PY

# In a terminal.
tm() { tmux -L "$sock" "$@"; }
# wait_pane TEXT: the pane shows TEXT within 20 s.
wait_pane() {
    local end=$(( $(cl_now_ms) + 20000 ))
    until tm capture-pane -p -t t 2>/dev/null | grep -qF -- "$1"; do
        [ "$(cl_now_ms)" -lt "$end" ] || { tm capture-pane -p -t t >&2; cl_fail "the terminal did not show '$1'"; }
        sleep 0.1
    done
}
# wait_gone: the tmux session has ended within 20 s.
wait_gone() {
    local end=$(( $(cl_now_ms) + 20000 ))
    while tm has-session -t t 2>/dev/null; do
        [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "$1"
        sleep 0.1
    done
}
run_in_tmux() {
    tm new-session -d -s t -x 150 -y 40 "env TERM=xterm HSTORE_DIR='$dir' '$HSTORE' $1; echo EXIT=\$?; sleep 30"
}

# get on a terminal: a newline after a value without one, so the prompt
# starts a line of its own; none added after a value that has one.
run_in_tmux "get nonl"
wait_pane "EXIT=0"
tm capture-pane -p -t t | grep -qx "abc" || { tm capture-pane -p -t t >&2; cl_fail "get on a terminal: 'abc' not on a line of its own"; }
tm kill-session -t t
printf 'x\n' | hs put withnl || cl_fail "put withnl"
run_in_tmux "get withnl"
wait_pane "EXIT=0"
cl_expect_eq "$(tm capture-pane -p -t t | sed -n '1,2p')" "x
EXIT=0" "get on a terminal of a value ending in a newline"
tm kill-session -t t

# The shell: Ctrl-C drops the line and does not quit; Ctrl-D quits.
rm -f "$dir/shell_history"
run_in_tmux shell
wait_pane "hstore>"
tm send-keys -t t 'PUT typed-then-cancelled 1'
wait_pane "typed-then-cancelled"
tm send-keys -t t C-c
# a fresh prompt on a line of its own
end=$(( $(cl_now_ms) + 20000 ))
until [ "$(tm capture-pane -p -t t | grep -c '^hstore>$')" -ge 1 ]; do
    [ "$(cl_now_ms)" -lt "$end" ] || { tm capture-pane -p -t t >&2; cl_fail "no new prompt after Ctrl-C"; }
    sleep 0.1
done
tm send-keys -t t 'PUT after ctrl-c' Enter
wait_pane "OK"
tm has-session -t t 2>/dev/null || cl_fail "Ctrl-C ended the shell"
tm capture-pane -p -t t | grep -q "EXIT=" && cl_fail "Ctrl-C ended the shell: $(tm capture-pane -p -t t)"
cl_expect_eq "$(hs get after)" ctrl-c "the command typed after Ctrl-C"
cl_expect_rc 1 "the command cancelled by Ctrl-C was not run" hs get typed-then-cancelled
tm send-keys -t t C-d
wait_pane "EXIT=0"
grep -q 'PUT.040after.040ctrl-c' "$dir/shell_history" || cl_fail "history lacks the command: $(cat "$dir/shell_history")"
grep -q 'typed-then-cancelled' "$dir/shell_history" && cl_fail "history holds the cancelled line"
tm kill-session -t t

# SIGTERM: the shell ends and its history is kept.
run_in_tmux shell
wait_pane "hstore>"
tm send-keys -t t 'GET k1' Enter
wait_pane '"v1"'
spid=$(pgrep -f "$HSTORE shell" | head -1)
[ -n "$spid" ] || cl_fail "no shell process found"
kill -TERM "$spid"
wait_pane "EXIT=0"
grep -q 'GET.040k1' "$dir/shell_history" || cl_fail "history after SIGTERM lacks GET k1: $(cat "$dir/shell_history")"
grep -q 'PUT.040after.040ctrl-c' "$dir/shell_history" || cl_fail "history after SIGTERM lost the earlier session"
tm kill-server
cl_pass
