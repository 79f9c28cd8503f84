# shellcheck shell=sh
# What the shell suites share, sourced by each (. "$(dirname "$0")/lib.sh"):
# the tally of checks (pass, fail, skip), tool and time helpers, and for
# the suites that drive a custosd through its control socket: the binaries
# from the environment or a build directory, a scratch directory removed
# on the way out with the custosd it started, custosctl on the socket, and
# custosd started in the background until its socket is there.
#
# POSIX sh under `set -u`. Sourcing only defines (and sets failures=0);
# a suite may redefine any of it after, and keeps its own cleanup() (the
# trap here calls scratch_cleanup). The globals it sets: failures, WRAP,
# H, T, S, DAEMON; its functions' own variables start with their initials
# (cr_, sd_).

failures=0
# fail TEXT: a failed check; the suite exits 1 at its end.
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
pass() {
    echo "ok: $*"
}
skip() {
    echo "skip: $*"
}
# have TOOL: whether TOOL is on PATH.
have() {
    command -v "$1" >/dev/null 2>&1
}
now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# wait_for FILE FIXED_STRING SECONDS: until FILE has a line containing it.
wait_for() {
    n=0
    while ! grep -qF -- "$2" "$1" 2>/dev/null; do
        n=$((n + 1))
        if [ "$n" -gt $(($3 * 10)) ]; then
            return 1
        fi
        sleep 0.1
    done
    return 0
}

# use_binaries [BUILD_DIR]: CUSTOSD, CUSTOSCTL and SVC_HELPER from the
# environment (tests/meson.build sets them), else from BUILD_DIR (a run by
# hand from the source tree); exits when one is missing. Sets WRAP (how to
# run a target binary: empty, or a command and its words) and H (the
# services' helper).
use_binaries() {
    if [ $# -ge 1 ]; then
        CUSTOSD=${CUSTOSD:-$1/src/custosd}
        CUSTOSCTL=${CUSTOSCTL:-$1/src/custosctl}
        SVC_HELPER=${SVC_HELPER:-$1/tests/svc_helper}
    fi
    : "${CUSTOSD:?CUSTOSD must name the custosd binary (or give the build directory)}"
    : "${CUSTOSCTL:?CUSTOSCTL must name the custosctl binary}"
    : "${SVC_HELPER:?SVC_HELPER must name tests/svc_helper}"
    WRAP=${CUSTOSD_WRAPPER:-}
    # shellcheck disable=SC2034 # the suites' configs use it
    H=$SVC_HELPER
}

# scratch PREFIX: T, a new directory /tmp/PREFIX.XXXXXX, and S, the control
# socket's path in it. On the way out (a failed check or a signal
# included) scratch_cleanup() kills DAEMON, if set, and removes T.
scratch() {
    T=$(mktemp -d "/tmp/$1.XXXXXX") || exit 1
    S=$T/ctl.sock
    DAEMON=
    trap scratch_cleanup EXIT
    trap 'exit 1' INT TERM
}
# A suite that starts more processes defines cleanup_more, which runs
# first.
# shellcheck disable=SC2317 # invoked by the trap
scratch_cleanup() {
    if command -v cleanup_more >/dev/null 2>&1; then
        cleanup_more
    fi
    if [ -n "$DAEMON" ]; then
        kill -KILL "$DAEMON" 2>/dev/null
    fi
    rm -rf "$T"
}

# custosctl on this socket (unquoted $WRAP: empty, or a command and words).
ctl() {
    # shellcheck disable=SC2086
    $WRAP "$CUSTOSCTL" --socket "$S" "$@"
}
# ctl_rc WANT WHAT ARGS...: custosctl exits WANT; its output in $T/out, $T/err.
ctl_rc() {
    cr_want=$1
    cr_what=$2
    shift 2
    ctl "$@" >"$T/out" 2>"$T/err"
    cr_rc=$?
    if [ "$cr_rc" -eq "$cr_want" ]; then
        pass "$cr_what: exit $cr_rc"
        return 0
    fi
    fail "$cr_what: exit $cr_rc, expected $cr_want; out: $(cat "$T/out"); err: $(cat "$T/err")"
    return 1
}

# start_daemon [CONFIG [LOG]]: custosd --config CONFIG ($T/c.ini) in the
# background as DAEMON, its output appended to LOG ($DAEMON_LOG, else
# $T/log); returns once its control socket $S is there, within 10 s.
# Exits the suite with 77 (a skip) when the forced backend is refused
# here, with 1 when custosd exits first or makes no socket.
# shellcheck disable=SC2120 # both arguments are optional
start_daemon() {
    sd_config=${1:-$T/c.ini}
    sd_log=${2:-${DAEMON_LOG:-$T/log}}
    rm -f "$S"
    # shellcheck disable=SC2086
    $WRAP "$CUSTOSD" --config "$sd_config" >>"$sd_log" 2>&1 &
    DAEMON=$!
    sd_n=0
    while [ ! -S "$S" ]; do
        if ! kill -0 "$DAEMON" 2>/dev/null; then
            if grep -q "IoUringUnavailable\|BackendUnavailable" "$sd_log"; then
                echo "SKIP: the forced backend is not available here: $(cat "$sd_log")"
                DAEMON=
                exit 77
            fi
            echo "FAIL: custosd exited before its control socket appeared: $(cat "$sd_log")"
            DAEMON=
            exit 1
        fi
        sd_n=$((sd_n + 1))
        if [ "$sd_n" -gt 100 ]; then
            echo "FAIL: no control socket at $S after 10 s (this custosd serves none?): $(cat "$sd_log")"
            exit 1
        fi
        sleep 0.1
    done
}
