#!/bin/sh
# custosd end to end, as an operator runs it: every kind of config error
# exits 2 with FILE:LINE on stderr and starts nothing; --check validates
# only; a small appliance runs, logs its transitions, and stops on
# SIGTERM/SIGINT within its budget, exits 0 and leaves no process behind;
# bad usage exits 2; examples/appliance.ini (when present) runs too.
#
# POSIX sh and coreutils only. Environment (set by tests/meson.build):
#   CUSTOSD          the custosd binary
#   SVC_HELPER       tests/svc_helper (the services; a build-machine binary)
#   EXAMPLES         the source tree's examples/ directory (optional)
#   CUSTOSD_WRAPPER  how to run a target binary (qemu-aarch64 on cross builds)
# Exit: 0 all passed, 1 a check failed.
set -u

: "${CUSTOSD:?CUSTOSD must name the custosd binary}"
: "${SVC_HELPER:?SVC_HELPER must name tests/svc_helper}"
EXAMPLES=${EXAMPLES:-}
WRAP=${CUSTOSD_WRAPPER:-}
H=$SVC_HELPER

T=$(mktemp -d /tmp/ctd.XXXXXX) || exit 1
DAEMON=
# On the way out (a failed check included): nothing of ours may survive.
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    if [ -n "$DAEMON" ]; then
        kill -KILL "$DAEMON" 2>/dev/null
    fi
    for f in "$T"/*.log; do
        [ -f "$f" ] || continue
        for pid in $(logged_pids "$f") $(cat "$T/gc.pid" 2>/dev/null); do
            alive "$pid" && kill -KILL "$pid" 2>/dev/null
        done
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
pass() {
    echo "ok: $*"
}

# custosd with the cross wrapper, if any (unquoted: empty means none).
custosd() {
    $WRAP "$CUSTOSD" "$@"
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# Alive: the process exists and is neither a zombie nor dead.
alive() {
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
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

# line_of FILE FIXED_STRING: the number of the first line containing it.
line_of() {
    grep -nF -- "$2" "$1" | head -n 1 | cut -d: -f1
}

# Every pid named on a transition line of the log.
logged_pids() {
    sed -n 's/.* pid \([0-9][0-9]*\).*/\1/p' "$1" | sort -u
}

# ---------------------------------------------------------------------------
# Config errors: exit 2, FILE:LINE: on stderr, nothing started. Each config
# also declares a valid service that would write $T/started.env if anything
# were started.
# config_error NAME LINE TEXT: the config comes on stdin; LINE may be an
# extended regex of line numbers, e.g. '(3|6)'.
config_error() {
    ce_name=$1
    ce_line=$2
    ce_text=$3
    ce_file=$T/$ce_name.ini
    {
        cat
        printf '\n[service:bystander]\nexec = %s env %s/started.env\n' "$H" "$T"
    } >"$ce_file"
    for ce_mode in run check; do
        if [ "$ce_mode" = check ]; then
            custosd --config "$ce_file" --check >"$T/out" 2>"$T/err"
        else
            custosd --config "$ce_file" >"$T/out" 2>"$T/err"
        fi
        ce_rc=$?
        if [ "$ce_rc" -ne 2 ]; then
            fail "$ce_name ($ce_mode): exit $ce_rc, expected 2; stderr: $(cat "$T/err")"
        elif ! grep -qE -- "^$ce_file:$ce_line: " "$T/err"; then
            fail "$ce_name ($ce_mode): no '$ce_file:$ce_line:' on stderr: $(cat "$T/err")"
        elif ! grep -qF -- "$ce_text" "$T/err"; then
            fail "$ce_name ($ce_mode): stderr lacks '$ce_text': $(cat "$T/err")"
        else
            pass "$ce_name ($ce_mode): exit 2, $(head -n 1 "$T/err")"
        fi
    done
}

config_error unknown-key 4 "restrat" <<EOF
[service:a]
exec = $H sleep

restrat = always
EOF

config_error bad-duration 3 "backoff_initial" <<EOF
[service:a]
exec = $H sleep
backoff_initial = 5x
EOF

config_error unknown-dependency 5 "DependencyUnknown" <<EOF
[custos]
stop_timeout = 5s
[service:a]
exec = $H sleep
depends_on = nosuch
EOF

# Either edge of the cycle is a right place to report it.
config_error cycle '(3|6)' "DependencyCycle" <<EOF
[service:a]
exec = $H sleep
depends_on = b
[service:b]
exec = $H sleep
depends_on = a
EOF

config_error missing-executable 3 "ExecutableMissing" <<EOF
[service:a]
# the program is not there
exec = $T/no/such/program --flag
EOF

config_error duplicate-section 4 "duplicate section" <<EOF
[service:a]
exec = $H sleep

[service:a]
exec = $H sleep
EOF

config_error notify-without-socket 4 "notify_dir" <<EOF
[service:a]
exec = $H notify-ready 0

ready = notify
EOF

if [ -e "$T/started.env" ]; then
    fail "a service was started from an invalid config"
fi

custosd --config "$T/does-not-exist.ini" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -qF "$T/does-not-exist.ini" "$T/err"; then
    pass "missing config file: exit 2"
else
    fail "missing config file: exit $rc; stderr: $(cat "$T/err")"
fi

# ---------------------------------------------------------------------------
# Usage.
for args in "--bogus" "--config" "--check --frobnicate"; do
    # shellcheck disable=SC2086 # word splitting intended
    custosd $args >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q "usage:" "$T/err"; then
        pass "bad usage '$args': exit 2"
    else
        fail "bad usage '$args': exit $rc, expected 2 with usage on stderr"
    fi
done
# Regression: a Runtime whose init failed before the table was laid out (a
# bad CUSTOS_BACKEND) crashed in its destructor instead of exiting 2.
printf '[service:a]\nexec = /bin/true\n' >"$T/one.ini"
CUSTOS_BACKEND=bogus custosd --config "$T/one.ini" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "BackendUnknown" "$T/err"; then
    pass "bad CUSTOS_BACKEND: exit 2, BackendUnknown"
else
    fail "bad CUSTOS_BACKEND: exit $rc, expected 2; stderr: $(cat "$T/err")"
fi
custosd --help >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "usage:" "$T/out"; then
    pass "--help: exit 0"
else
    fail "--help: exit $rc"
fi

# Probe errors, at the line of the key at fault.
config_error probe-bad-target 3 "missing port" <<EOF
# a probe whose target does not parse
[probe:broker]
tcp = broker.lan
EOF

config_error probe-unknown-liveness 4 "ProbeUnknown" <<EOF
[service:web]
exec = $H sleep

liveness = ghost
EOF

config_error probe-composite-cycle '(2|5)' "DependencyCycle" <<EOF
[probe:c1]
all = c2

[probe:c2]
all = c1
EOF

config_error probe-two-kinds 3 "two kinds" <<EOF
[probe:p]
tcp = 127.0.0.1:1
http = http://127.0.0.1:1/
EOF

# ---------------------------------------------------------------------------
# A service gated on a probe: it waits until the file the probe checks
# appears, then starts; the probe logs its transition first.
cat >"$T/gate.ini" <<EOF
[service:g]
exec = $H sleep
depends_on = flag

[probe:flag]
file = $T/flag
startup_initial = 100ms
startup_max = 200ms
interval = 200ms
EOF
# A simple command, not the function: $! must be custosd itself.
$WRAP "$CUSTOSD" --config "$T/gate.ini" >"$T/out" 2>"$T/gate.log" &
DAEMON=$!
if wait_for "$T/gate.log" "g: stopped -> waiting (WaitingForDependencies)" 10; then
    sleep 0.5
    if grep -qF "g: waiting -> starting" "$T/gate.log"; then
        fail "probe gate: g started before its probe passed: $(cat "$T/gate.log")"
    fi
    touch "$T/flag"
    if wait_for "$T/gate.log" "g: starting -> ready" 10; then
        probe_line=$(line_of "$T/gate.log" "probe flag: unknown -> ready (ProbePassed)")
        start_line=$(line_of "$T/gate.log" "g: waiting -> starting (DependenciesReady)")
        if [ -n "$probe_line" ] && [ -n "$start_line" ] && [ "$probe_line" -lt "$start_line" ]; then
            pass "probe gate: g started once its probe passed"
        else
            fail "probe gate: wrong order: $(cat "$T/gate.log")"
        fi
    else
        fail "probe gate: g never started: $(cat "$T/gate.log")"
    fi
else
    fail "probe gate: g never waited: $(cat "$T/gate.log")"
fi
kill -TERM "$DAEMON"
wait "$DAEMON"
rc=$?
DAEMON=
[ "$rc" -eq 0 ] || fail "probe gate: custosd exited $rc after SIGTERM"

# ---------------------------------------------------------------------------
# A small appliance.
#   a  notify-ready after 100 ms, with a STATUS
#   b  depends on a
#   c  s6 readiness on fd 3
#   d  crashes with exit 3: two restarts, then failed
#   e  a grandchild in its process group
#   f  ignores SIGTERM: SIGKILL after its 500 ms stop_timeout
cat >"$T/app.ini" <<EOF
# custosd end-to-end test
[custos]
stop_timeout = 5s
notify_dir = $T/n

[service:a]
exec = $H notify-ready 100 "up and running"
ready = notify
ready_timeout = 20s

[service:b]
exec = $H sleep
depends_on = a

[service:c]
exec = $H s6 3 50
ready = fd:3

[service:d]
exec = $H exit 3
restart = on-failure
backoff_initial = 100ms
backoff_jitter = 0
max_restarts = 2

[service:e]
exec = $H grandchild family $T/gc.pid

[service:f]
exec = $H ignore-term
stop_timeout = 500ms
EOF

custosd --config "$T/app.ini" --check >"$T/out" 2>"$T/err"
rc=$?
sleep 0.3
if [ "$rc" -eq 0 ] && grep -qF "ok, 6 services" "$T/out" && [ ! -e "$T/gc.pid" ] &&
    [ ! -e "$T/n" ]; then
    pass "--check on a valid config: exit 0, nothing started"
else
    fail "--check on a valid config: exit $rc, stdout: $(cat "$T/out"), stderr: $(cat "$T/err")"
fi

# run_app SIGNAL: runs app.ini until the appliance is up, then sends SIGNAL.
run_app() {
    sig=$1
    log=$T/app-$sig.log
    rm -f "$T/gc.pid"
    # A simple command, not the function: $! must be custosd itself.
    $WRAP "$CUSTOSD" --config "$T/app.ini" 2>"$log" &
    DAEMON=$!
    up=1
    for want in "a: running -> ready (ReadyNotified)" "b: starting -> ready (ReadyStarted)" \
        "c: running -> ready (ReadyFd)" "d: ready -> failed (MaxRestartsExhausted)" \
        "e: starting -> ready (ReadyStarted)" "f: starting -> ready (ReadyStarted)"; do
        if ! wait_for "$log" "$want" 20; then
            fail "$sig run: no '$want' on stderr"
            up=0
        fi
    done
    wait_for "$T/gc.pid" "" 10 || fail "$sig run: the grandchild never wrote its pid"
    # f must have installed its SIG_IGN before the stop: give it a moment.
    sleep 0.5
    t0=$(now_ms)
    kill "-$sig" "$DAEMON"
    n=0
    while alive "$DAEMON" && [ "$n" -lt 150 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    took=$(($(now_ms) - t0))
    if alive "$DAEMON"; then
        fail "$sig run: custosd still running 15 s after SIG$sig"
        kill -KILL "$DAEMON"
    fi
    wait "$DAEMON"
    rc=$?
    DAEMON=
    if [ "$rc" -ne 0 ]; then
        fail "$sig run: custosd exited $rc after SIG$sig, expected 0"
    fi
    # The budget is 5 s ([custos] stop_timeout); f alone needs its 500 ms.
    if [ "$took" -lt 500 ] || [ "$took" -gt 8000 ]; then
        fail "$sig run: the stop took $took ms, expected 500 ms to 5 s (+3 s slack)"
    fi
    [ "$up" -eq 1 ] && pass "$sig run: every service came up as configured"

    # What the log must say.
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z a: stopped -> starting \(RuntimeStart\)$' "$log" ||
        fail "$sig run: transition lines are not 'TIMESTAMP name: from -> to (Reason)'"
    grep -F "d: ready -> backoff (ProcessExited) pid" "$log" |
        grep -qF "exit 3 restart 1 in 100 ms" ||
        fail "$sig run: no backoff line for d with its exit code and delay"
    grep -qF "  resolution: " "$log" || fail "$sig run: d failed without a resolution line"
    grep -F "f: stopping -> stopped (StopTimeout)" "$log" | grep -qF "killed by signal 9" ||
        fail "$sig run: f was not SIGKILLed after its stop_timeout"
    grep -qF "custosd: stopped; " "$log" || fail "$sig run: no final summary line"
    # Order: b starts after a is ready; b stops before a is signalled.
    a_ready=$(line_of "$log" "a: running -> ready")
    b_start=$(line_of "$log" "b: waiting -> starting (DependenciesReady)")
    b_stopped=$(line_of "$log" "b: stopping -> stopped")
    a_stopping=$(line_of "$log" "a: ready -> stopping (RuntimeStop)")
    if [ -n "$a_ready" ] && [ -n "$b_start" ] && [ -n "$b_stopped" ] && [ -n "$a_stopping" ] &&
        [ "$a_ready" -lt "$b_start" ] && [ "$b_stopped" -lt "$a_stopping" ]; then
        pass "$sig run: dependency order at start and reverse order at stop"
    else
        fail "$sig run: order: a ready @$a_ready, b starts @$b_start, b stopped @$b_stopped, a stopping @$a_stopping"
    fi
    # Nothing left behind: no service, no grandchild.
    left=
    for pid in $(logged_pids "$log") $(cat "$T/gc.pid" 2>/dev/null); do
        if alive "$pid"; then
            left="$left $pid"
        fi
    done
    if [ -z "$left" ] && [ -s "$T/gc.pid" ]; then
        pass "$sig run: exit 0 in $took ms, no process left behind"
    else
        fail "$sig run: processes left behind:$left"
        for pid in $left; do kill -KILL "$pid" 2>/dev/null; done
    fi
    if [ -e "$T/n/a" ]; then
        fail "$sig run: the notify socket was left behind"
    fi
}

run_app TERM
run_app INT

# ---------------------------------------------------------------------------
# The example appliance, if it exists. Its relative paths are taken from
# custosd's working directory: run it in a scratch one.
if [ -n "$EXAMPLES" ] && [ -f "$EXAMPLES/appliance.ini" ]; then
    ex=$EXAMPLES/appliance.ini
    if grep -q systemd-notify "$ex" && ! command -v systemd-notify >/dev/null 2>&1; then
        echo "SKIP: examples/appliance.ini needs systemd-notify, which is not installed"
    else
        mkdir "$T/example"
        log=$T/example.log
        (cd "$T/example" && custosd --config "$ex" --check) >"$T/out" 2>&1 ||
            fail "appliance.ini --check: $(cat "$T/out")"
        (cd "$T/example" && exec $WRAP "$CUSTOSD" --config "$ex") 2>"$log" &
        DAEMON=$!
        sleep 3
        for name in $(sed -n 's/^\[service:\(.*\)\]$/\1/p' "$ex"); do
            grep -qF "Z $name: stopped -> " "$log" || fail "appliance.ini: $name never left stopped"
        done
        grep -qF -- "-> ready (" "$log" || fail "appliance.ini: nothing became ready in 3 s"
        kill -TERM "$DAEMON"
        n=0
        while alive "$DAEMON" && [ "$n" -lt 200 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        if alive "$DAEMON"; then
            fail "appliance.ini: custosd still running 20 s after SIGTERM"
            kill -KILL "$DAEMON"
        fi
        wait "$DAEMON"
        rc=$?
        DAEMON=
        [ "$rc" -eq 0 ] || fail "appliance.ini: custosd exited $rc after SIGTERM"
        left=
        for pid in $(logged_pids "$log"); do
            if alive "$pid"; then
                left="$left $pid"
            fi
        done
        if [ -z "$left" ] && [ "$rc" -eq 0 ]; then
            pass "examples/appliance.ini: ran, stopped on SIGTERM, exit 0, nothing left"
        else
            fail "appliance.ini: processes left behind:$left"
            cat "$log"
        fi
    fi
else
    echo "SKIP: examples/appliance.ini is not there"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all custosd checks passed"
exit 0
