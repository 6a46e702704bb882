#!/usr/bin/env bash
# The generated bash completion, driven as bash drives it (COMP_WORDS and
# COMP_CWORD set, the function called, COMPREPLY read), non-interactively.
#
#     bash_completion_test.sh COMPLETION_FILE
set -uo pipefail

# shellcheck source=/dev/null
source "$1" || {
    echo "FAIL: cannot source $1"
    exit 1
}
passed=0
failed=0

# expect "WANTED REPLIES" WORD...: completing the last word gives exactly those.
expect() {
    local wanted=$1
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    _ferry
    local got="${COMPREPLY[*]}"
    if [[ $got == "$wanted" ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: completing '$*' gave '$got', expected '$wanted'"
    fi
}

[[ $(complete -p ferry) == "complete -F _ferry ferry" ]] || {
    echo "FAIL: ferry has no completion function: $(complete -p ferry 2>&1)"
    failed=$((failed + 1))
}
expect "proxy" ferry pr
expect "--api" ferry proxy --ap
expect "server client" ferry echo ""
expect "server" ferry echo s
expect "receiver" ferry multicast r
expect "--framing" ferry echo server -p 5000 --fr
# An option's value: the choices the table names, after a space or an '='.
expect "epoll" ferry echo server --model ep
expect "pool poll" ferry echo server --model = po
expect "datagram" ferry ping --mode d
# Options belong to where they were given: no --api for echo, no --model at the top.
expect "" ferry echo server --ap
expect "--version" ferry --vers
# A value that is a path completes file names.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
touch "$dir/echo.sock"
expect "$dir/echo.sock" ferry connect -U "$dir/ec"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
