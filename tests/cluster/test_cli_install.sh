#!/usr/bin/env bash
# make install PREFIX=DIR and make uninstall: the binary, the man page and
# the bash completion land under PREFIX; the page renders (man -l, and groff
# without a warning), has a section for every command `hstore help` lists,
# and holds every line of every command's help (it is built from them, so it
# cannot drift); completing `hstore ` in bash lists the commands, and a
# command's options and `hstore help`'s arguments complete too.  No cluster.
. "$(dirname "$0")/lib/cluster.sh"
cl_init
P=$CL_DIR/prefix
make -s -C "$CL_REPO" install PREFIX="$P" >"$CL_DIR/make.out" 2>&1 ||
    cl_fail "make install PREFIX=$P: $(tail -5 "$CL_DIR/make.out")"
BIN=$P/bin/hstore
PAGE=$P/share/man/man1/hstore.1
COMP=$P/share/bash-completion/completions/hstore
for f in "$BIN" "$PAGE" "$COMP"; do [ -s "$f" ] || cl_fail "make install did not install $f"; done
[ -x "$BIN" ] || cl_fail "$BIN is not executable"
cmds=$("$BIN" help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
[ "$(printf '%s\n' "$cmds" | wc -l)" -ge 10 ] || cl_fail "hstore help lists too few commands: $cmds"

command -v man >/dev/null || cl_fail "man is not installed (make deps installs man-db)"
# Rendered text, with the typographic characters of UTF-8 output folded back.
norm() { sed -e 's/\xe2\x88\x92/-/g' -e 's/\xe2\x80\x90/-/g' -e "s/\xe2\x80\x99/'/g" -e 's/\xe2\x80\x98/`/g'; }
MANWIDTH=200 man -l "$PAGE" 2>"$CL_DIR/man.err" | norm >"$CL_DIR/man.txt"
[ -s "$CL_DIR/man.txt" ] || cl_fail "man -l rendered nothing: $(cat "$CL_DIR/man.err")"
groff -man -Tutf8 -ww -z "$PAGE" 2>"$CL_DIR/groff.err"
[ ! -s "$CL_DIR/groff.err" ] || cl_fail "groff warns about the page: $(head -5 "$CL_DIR/groff.err")"
grep -q '^NAME' "$CL_DIR/man.txt" && grep -q 'hstore - ' "$CL_DIR/man.txt" || cl_fail "no NAME section"
sed 's/^ *//' "$CL_DIR/man.txt" >"$CL_DIR/man.flat"
for c in $cmds; do
    grep -qx "   $c" "$CL_DIR/man.txt" || cl_fail "the man page has no section for '$c'"
    "$BIN" help "$c" | sed -e 's/^ *//' -e '/^$/d' | while IFS= read -r line; do
        grep -qxF -- "$line" "$CL_DIR/man.flat" ||
            { echo "$line" >"$CL_DIR/missing"; break; }
    done
    [ ! -e "$CL_DIR/missing" ] || cl_fail "the man page lacks a line of \`hstore help $c\`: $(cat "$CL_DIR/missing")"
done
cl_log "man page: $(wc -l <"$CL_DIR/man.txt") lines, a section for each of $(echo $cmds | wc -w) commands"

# complete WORDS...: what the completion offers for the last word.
complete_words() {
    PATH=$P/bin:$PATH bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _hstore
        printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@" | LC_ALL=C sort
}
want=$(printf '%s\nhelp\n' "$cmds" | LC_ALL=C sort)
cl_expect_eq "$(complete_words hstore "")" "$want" "completion of 'hstore '"
cl_expect_eq "$(complete_words hstore --timeout 2 "")" "$want" "completion after a global option"
cl_expect_eq "$(complete_words hstore help re)" "restore" "completion of 'hstore help re'"
complete_words hstore backup -- | grep -qx -- --node || cl_fail "completion of 'hstore backup --' lacks --node"
complete_words hstore restore --d | grep -qx -- --data || cl_fail "completion of 'hstore restore --d' lacks --data"
bash -c '. "$1"; complete -p hstore' _ "$COMP" | grep -q '_hstore' || cl_fail "the completion is not registered"

make -s -C "$CL_REPO" uninstall PREFIX="$P" >"$CL_DIR/make.out" 2>&1 || cl_fail "make uninstall"
left=$(find "$P" -type f)
[ -z "$left" ] || cl_fail "make uninstall left $left"
cl_pass
