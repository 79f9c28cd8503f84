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
# The tally (pass, fail), now_ms and wait_for; its own cleanup below.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

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

# custosd with the cross wrapper, if any (unquoted: empty means none).
custosd() {
    $WRAP "$CUSTOSD" "$@"
}

# Alive: the process exists and is neither a zombie nor dead.
alive() {
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
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
            # Bounded: a config custosd wrongly accepts would run for ever.
            # shellcheck disable=SC2086 # $WRAP: empty, or a command and its words
            timeout 20 $WRAP "$CUSTOSD" --config "$ce_file" >"$T/out" 2>"$T/err"
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

config_error bad-keepalive-gate 3 "bad keepalive_gate 'sometimes'" <<EOF
[custos]
notify_fd = 5
keepalive_gate = sometimes
EOF

config_error notify-fd-stdout 2 "notify_fd '1' names a standard stream" <<EOF
[custos]
notify_fd = 1
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

# [watchdog]: its keys, its values and the table check's problems, each at
# its line; one section only.
config_error watchdog-unknown-key 3 "did you mean 'timeout'?" <<EOF
[watchdog]
device = null
timout = 4s
EOF

config_error watchdog-no-device 2 "[watchdog] has no device" <<EOF
[custos]
[watchdog]
timeout = 10s
EOF

config_error watchdog-unknown-board 3 "[watchdog] BoardUnknown: raspbery" <<EOF
[watchdog]
device = null
board = raspbery
EOF

config_error watchdog-bad-device 2 "bad device 'foo'" <<EOF
[watchdog]
device = foo
EOF

config_error watchdog-bad-magic-close 3 "bad magic_close 'maybe'" <<EOF
[watchdog]
device = null
magic_close = maybe
EOF

config_error watchdog-safe-mode-without-state-file 4 "[watchdog] InvalidArgument" <<EOF
[watchdog]
device = null

safe_mode_boots = 3
EOF

config_error watchdog-state-dir-missing 3 "ResetRecordUnwritable" <<EOF
[watchdog]
device = null
state_file = $T/no-such-dir/wd.state
EOF

config_error watchdog-twice 5 "duplicate section [watchdog] (first at line 1)" <<EOF
[watchdog]
device = null
[service:a]
exec = $H sleep
[watchdog]
timeout = 4s
EOF

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
for v in 2 x 1024; do
    custosd --notify-fd "$v" --check "$T/one.ini" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -qF -- "custosd: --notify-fd: " "$T/err"; then
        pass "--notify-fd $v: exit 2, $(cat "$T/err")"
    else
        fail "--notify-fd $v: exit $rc, expected 2; stderr: $(cat "$T/err")"
    fi
done
custosd --help >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "usage:" "$T/out"; then
    pass "--help: exit 0"
else
    fail "--help: exit $rc"
fi
# --platform asks the runtime: one real spawn decides the start method, so
# a forced method (or qemu-user refusing CLONE_PIDFD) shows as what it is.
CUSTOS_SPAWN=vfork-nopidfd custosd --platform >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^custosd: I/O backend " "$T/out" &&
    grep -q "^custosd: process start: vfork (no pidfd)$" "$T/out" &&
    grep -q "^custosd: process exits: SIGCHLD signalfd + waitid$" "$T/out" &&
    grep -q "^custosd: cgroup2: " "$T/out" && grep -q "^custosd: child subreaper: " "$T/out"; then
    pass "--platform: exit 0, the runtime's choices"
else
    fail "--platform: exit $rc; stdout: $(cat "$T/out"); stderr: $(cat "$T/err")"
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
# Hardening regressions, each named after what broke.

# stop_daemon NAME LOG: SIGTERM to $DAEMON, which must exit 0 within 10 s.
stop_daemon() {
    kill -TERM "$DAEMON"
    n=0
    while alive "$DAEMON" && [ "$n" -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if alive "$DAEMON"; then
        fail "$1: custosd still running 10 s after SIGTERM"
        kill -KILL "$DAEMON"
    fi
    wait "$DAEMON"
    sd_rc=$?
    DAEMON=
    [ "$sd_rc" -eq 0 ] || fail "$1: custosd exited $sd_rc after SIGTERM, expected 0"
    return "$sd_rc"
}

# env_pid FILE: the pid= line svc_helper env wrote.
env_pid() {
    sed -n 's/^pid=//p' "$1" 2>/dev/null
}

# restarted_after_kill NAME FILE: kills the service whose pid FILE holds and
# waits for a new pid there (custosd restarted it).
restarted_after_kill() {
    rk_old=$(env_pid "$2")
    if [ -z "$rk_old" ]; then
        fail "$1: no service pid in $2"
        return 1
    fi
    kill -KILL "$rk_old"
    n=0
    while :; do
        rk_new=$(env_pid "$2")
        if [ -n "$rk_new" ] && [ "$rk_new" != "$rk_old" ] && alive "$rk_new"; then
            return 0
        fi
        n=$((n + 1))
        if [ "$n" -gt 100 ]; then
            fail "$1: the service (pid $rk_old) was not restarted within 10 s"
            return 1
        fi
        sleep 0.1
    done
}

# Regression: SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM killed custosd (default
# action) and left its services running unsupervised. SIGHUP is a reload now
# (an unchanged file: nothing touched); the others are ignored.
cat >"$T/sig.ini" <<EOF
[service:s]
exec = $H env $T/sig.env
restart = always
backoff_initial = 50ms
EOF
$WRAP "$CUSTOSD" --config "$T/sig.ini" 2>"$T/sig.log" &
DAEMON=$!
if wait_for "$T/sig.env" "pid=" 10; then
    for sig in HUP USR1 USR2 ALRM; do
        kill "-$sig" "$DAEMON"
        case $sig in
        HUP) want="reloaded $T/sig.ini: 0 added, 0 removed, 0 changed, 1 unchanged" ;;
        *) want="SIG$sig received: reserved; ignored" ;;
        esac
        if ! wait_for "$T/sig.log" "$want" 10; then
            fail "SIG$sig: no '$want' logged: $(cat "$T/sig.log")"
        elif ! alive "$DAEMON"; then
            fail "SIG$sig: custosd died"
        elif restarted_after_kill "SIG$sig" "$T/sig.env"; then
            pass "SIG$sig: logged and ignored; custosd still supervises"
        fi
        alive "$DAEMON" || break
    done
    sig_pid=$(env_pid "$T/sig.env")
    if alive "$DAEMON" && stop_daemon "signals" "$T/sig.log"; then
        grep -qF "3 signals ignored" "$T/sig.log" || fail "signals: the summary lacks '3 signals ignored'"
        if [ -n "$sig_pid" ] && alive "$sig_pid"; then
            fail "signals: the service (pid $sig_pid) survived custosd's stop"
        else
            pass "signals: SIGTERM after them: exit 0, no process left"
        fi
    fi
else
    fail "signals: the service never started: $(cat "$T/sig.log")"
fi
if [ -n "$DAEMON" ]; then
    kill -KILL "$DAEMON"
    DAEMON=
fi
for pid in $(env_pid "$T/sig.env"); do alive "$pid" && kill -KILL "$pid"; done

# Regression: 'custosd 2>&1 | head -n 1' died of SIGPIPE at the first log
# line after head exited, leaving its service unsupervised.
cat >"$T/pipe.ini" <<EOF
[service:p]
exec = $H env $T/pipe.env
restart = always
backoff_initial = 50ms
EOF
# custosd's pid and exit status through files: it is not this shell's child.
# shellcheck disable=SC2016,SC2086 # expanded by the inner sh; $WRAP as above
sh -c 'pidf=$1 rcf=$2; shift 2; "$@" & echo $! >"$pidf"; wait $!; echo $? >"$rcf"' sh \
    "$T/pipe.pid" "$T/pipe.rc" $WRAP "$CUSTOSD" --config "$T/pipe.ini" 2>&1 | head -n 1 >"$T/pipe.head" &
head_pid=$!
n=0
while alive "$head_pid" && [ "$n" -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
if wait_for "$T/pipe.pid" "" 10 && wait_for "$T/pipe.env" "pid=" 10 && ! alive "$head_pid"; then
    DAEMON=$(cat "$T/pipe.pid")
    # Its restart is logged: the write that used to be fatal.
    if restarted_after_kill "head pipe" "$T/pipe.env" && restarted_after_kill "head pipe" "$T/pipe.env" &&
        alive "$DAEMON"; then
        pass "head pipe: custosd still supervises after its log reader left"
    fi
    pipe_pid=$(env_pid "$T/pipe.env")
    if alive "$DAEMON"; then
        kill -TERM "$DAEMON"
        if wait_for "$T/pipe.rc" "" 10 && [ "$(cat "$T/pipe.rc")" = 0 ]; then
            if [ -n "$pipe_pid" ] && alive "$pipe_pid"; then
                fail "head pipe: the service (pid $pipe_pid) survived custosd's stop"
            else
                pass "head pipe: SIGTERM: exit 0, no process left"
            fi
        else
            fail "head pipe: exit status '$(cat "$T/pipe.rc" 2>/dev/null)' after SIGTERM, expected 0"
        fi
    else
        fail "head pipe: custosd died once its log reader left (exit status '$(cat "$T/pipe.rc" 2>/dev/null)')"
    fi
    alive "$DAEMON" && kill -KILL "$DAEMON"
    DAEMON=
else
    fail "head pipe: custosd or its service never started, or head never exited"
fi
for pid in $(env_pid "$T/pipe.env") $(cat "$T/pipe.pid" 2>/dev/null); do
    alive "$pid" && kill -KILL "$pid"
done

# Regression: started with stdout and stderr closed, custosd's fd 2 became
# a descriptor of its own (every log line went there); with stdin closed too.
cat >"$T/quiet.ini" <<EOF
[service:q]
exec = $H env $T/quiet.env
EOF
$WRAP "$CUSTOSD" --config "$T/quiet.ini" <&- >&- 2>&- &
DAEMON=$!
if wait_for "$T/quiet.env" "pid=" 10; then
    bad=
    # Under a wrapper (qemu-user) the wrapper's own descriptors may take
    # the closed numbers before custosd runs: nothing to say about custosd.
    if [ -n "$WRAP" ]; then
        echo "SKIP: closed stdio: descriptors not checked under $WRAP"
    else
        for fd in 0 1 2; do
            to=$(readlink "/proc/$DAEMON/fd/$fd")
            [ "$to" = /dev/null ] || bad="$bad fd $fd -> '$to';"
        done
    fi
    quiet_pid=$(env_pid "$T/quiet.env")
    if [ -n "$bad" ]; then
        fail "closed stdio:$bad expected /dev/null"
    fi
    if stop_daemon "closed stdio"; then
        if alive "$quiet_pid"; then
            fail "closed stdio: the service (pid $quiet_pid) survived custosd's stop"
        elif [ -z "$bad" ]; then
            pass "closed stdio: 0, 1 and 2 are /dev/null; the service ran; SIGTERM: exit 0"
        fi
    fi
else
    fail "closed stdio: the service never started"
    kill -KILL "$DAEMON"
    DAEMON=
fi
for pid in $(env_pid "$T/quiet.env"); do alive "$pid" && kill -KILL "$pid"; done

# The notify paths upward are custosd's own: its NOTIFY_SOCKET, WATCHDOG_USEC,
# WATCHDOG_PID (its own pid, so the keepalive is meant for it) and its s6
# notification fd never reach a service, neither in the environment nor as
# an open descriptor.
cat >"$T/up.ini" <<EOF
[custos]
keepalive_gate = health
[service:s]
exec = $H env $T/up.env
EOF
: >"$T/up.fd"
# shellcheck disable=SC2016,SC2086 # $$: the inner shell's, which execs custosd; $WRAP: words
NOTIFY_SOCKET=@custos-test-up-$$ WATCHDOG_USEC=5000000 \
    sh -c 'WATCHDOG_PID=$$ exec "$@"' sh $WRAP "$CUSTOSD" --config "$T/up.ini" --notify-fd 7 \
    7>>"$T/up.fd" 2>"$T/up.log" &
DAEMON=$!
if wait_for "$T/up.env" "pid=" 10; then
    up_pid=$(env_pid "$T/up.env")
    bad=
    for var in NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID; do
        grep -q "^env:$var=" "$T/up.env" && bad="$bad $var in its environment;"
    done
    # Readiness went upward: one newline on fd 7, which custosd then closed
    # (s6's protocol). Until then it held it: the service started before.
    for _ in $(seq 1 50); do
        [ -s "$T/up.fd" ] && break
        sleep 0.1
    done
    [ "$(od -An -c "$T/up.fd" | tr -d ' ')" = '\n' ] ||
        bad="$bad the notify fd holds '$(od -An -c "$T/up.fd")', not one newline;"
    [ -e "/proc/$DAEMON/fd/7" ] && bad="$bad custosd kept fd 7 open after READY;"
    for fd in /proc/"$up_pid"/fd/*; do
        [ "$(readlink "$fd")" = "$T/up.fd" ] && bad="$bad the notify fd open as ${fd##*/};"
    done
    [ -e "/proc/$up_pid/fd/7" ] && bad="$bad fd 7 open ($(readlink "/proc/$up_pid/fd/7"));"
    if [ -n "$bad" ]; then
        fail "notify upward: the service (pid $up_pid) got custosd's own:$bad"
    fi
    if stop_daemon "notify upward"; then
        if alive "$up_pid"; then
            fail "notify upward: the service (pid $up_pid) survived custosd's stop"
        elif [ -z "$bad" ]; then
            pass "notify upward: READY as one newline on --notify-fd; NOTIFY_SOCKET, WATCHDOG_* and the fd stay custosd's own"
        fi
    fi
else
    fail "notify upward: the service never started: $(cat "$T/up.log")"
    kill -KILL "$DAEMON"
    DAEMON=
fi
for pid in $(env_pid "$T/up.env"); do alive "$pid" && kill -KILL "$pid"; done

# Regression: a FIFO as the config hung custosd, --check included; a
# directory was refused but not as what it is.
mkfifo "$T/fifo.ini"
mkdir "$T/dir.ini"
for kind in fifo dir; do
    f=$T/$kind.ini
    what=$([ "$kind" = fifo ] && echo fifo || echo directory)
    for mode in check run; do
        if [ "$mode" = check ]; then
            # shellcheck disable=SC2086 # $WRAP: empty, or a command and its words
            timeout 10 $WRAP "$CUSTOSD" --config "$f" --check >"$T/out" 2>"$T/err"
        else
            # shellcheck disable=SC2086 # $WRAP: empty, or a command and its words
            timeout 10 $WRAP "$CUSTOSD" --config "$f" >"$T/out" 2>"$T/err"
        fi
        rc=$?
        if [ "$rc" -eq 2 ] && grep -qxF "$f: not a regular file ($what)" "$T/err"; then
            pass "$what as the config ($mode): exit 2, $(cat "$T/err")"
        else
            fail "$what as the config ($mode): exit $rc (124: it hung), stderr: $(cat "$T/err")"
        fi
    done
done

# Regression: 'custosd --check FILE' (as nginx -t, sshd -t) was bad usage.
printf '[service:a]\nexec = %s sleep\n' "$H" >"$T/ok.ini"
custosd --check "$T/ok.ini" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -qF "$T/ok.ini: ok, 1 services" "$T/out"; then
    pass "--check FILE: exit 0, validated FILE"
else
    fail "--check FILE: exit $rc, stdout: $(cat "$T/out"), stderr: $(cat "$T/err")"
fi
custosd --check "$T/does-not-exist.ini" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -qF "$T/does-not-exist.ini: cannot open" "$T/err"; then
    pass "--check FILE on a missing file: exit 2, names it"
else
    fail "--check FILE on a missing file: exit $rc, stderr: $(cat "$T/err")"
fi
custosd --config "$T/ok.ini" --check "$T/ok.ini" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -qF "two config files" "$T/err"; then
    pass "--config A --check B: exit 2, two config files"
else
    fail "--config A --check B: exit $rc, stderr: $(cat "$T/err")"
fi
# Regression: --config '' read as a file named '' (ENOENT, no name to see).
for args in "--config=" "--check="; do
    custosd "$args" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -qxF "custosd: --config: empty file name" "$T/err"; then
        pass "'$args': exit 2, empty file name"
    else
        fail "'$args': exit $rc, stderr: $(cat "$T/err")"
    fi
done
custosd --config '' >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -qxF "custosd: --config: empty file name" "$T/err"; then
    pass "--config '': exit 2, empty file name"
else
    fail "--config '': exit $rc, stderr: $(cat "$T/err")"
fi

# Regression: --check accepted a cwd that does not exist or is no directory.
config_error cwd-missing 3 "cwd $T/no/such/dir: No such file or directory" <<EOF
[service:a]
exec = $H sleep
cwd = $T/no/such/dir
EOF
config_error cwd-not-a-directory 4 "cwd $T/ok.ini: Not a directory" <<EOF
[service:a]
exec = $H sleep

cwd = $T/ok.ini
EOF
# ... or one the service's user cannot enter (checked when custosd is root).
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    chmod 755 "$T"
    mkdir -m 700 "$T/private"
    mkdir -m 755 "$T/public"
    config_error cwd-no-entry 4 "cannot enter $T/private (mode 0700" <<EOF
[service:a]
exec = $H sleep
user = nobody
cwd = $T/private
EOF
    printf '[service:a]\nexec = %s sleep\nuser = nobody\ncwd = %s/public\n' "$H" "$T" >"$T/pub.ini"
    if custosd --check "$T/pub.ini" >"$T/out" 2>"$T/err"; then
        pass "cwd the user can enter: --check accepts it"
    else
        fail "cwd the user can enter: refused: $(cat "$T/err")"
    fi
    chmod 700 "$T"
else
    echo "SKIP: cwd permission check: needs root and a user 'nobody'"
fi

# Regression: a spawn failing at run time logged ExecFailed with the errno
# alone; the stage (chdir, setuid, exec ...) was lost on the way.
mkdir "$T/wd"
cat >"$T/wd.ini" <<EOF
[service:w]
exec = $H exit 1
cwd = $T/wd
restart = always
backoff_initial = 500ms
backoff_jitter = 0
max_restarts = 3
EOF
$WRAP "$CUSTOSD" --config "$T/wd.ini" 2>"$T/wd.log" &
DAEMON=$!
if wait_for "$T/wd.log" "w: ready -> backoff (ProcessExited)" 10; then
    rmdir "$T/wd"
    if wait_for "$T/wd.log" "(ExecFailed)" 10; then
        line=$(grep -F "(ExecFailed)" "$T/wd.log" | head -n 1)
        case $line in
        *"No such file or directory"*": chdir: "*) pass "ExecFailed names its stage: $line" ;;
        *) fail "ExecFailed line lacks the stage and errno text: $line" ;;
        esac
    else
        fail "ExecFailed: never logged: $(cat "$T/wd.log")"
    fi
else
    fail "ExecFailed: w never ran: $(cat "$T/wd.log")"
fi
stop_daemon "ExecFailed"

# Regression: control characters in a name were echoed raw to the terminal.
printf '[service:a\033[2Jb]\nexec = %s sleep\n' "$H" >"$T/ctl.ini"
for mode in check run; do
    if [ "$mode" = check ]; then
        custosd --config "$T/ctl.ini" --check >"$T/out" 2>"$T/err"
    else
        custosd --config "$T/ctl.ini" >"$T/out" 2>"$T/err"
    fi
    rc=$?
    if [ "$rc" -eq 2 ] && grep -qF '[service:a\x1b[2Jb]' "$T/err" &&
        ! tr -d '\n' <"$T/err" | grep -q '[[:cntrl:]]'; then
        pass "control characters in a name ($mode): escaped, $(head -n 1 "$T/err")"
    else
        fail "control characters in a name ($mode): exit $rc, stderr: $(od -c "$T/err" | head -n 5)"
    fi
done

# Regression: more services than max_services was reported at FILE:0; the
# place is the first section over the limit (the 65th header, line 131;
# config_error adds a 66th service).
{
    printf '[custos]\nmax_services = 64\n'
    i=0
    while [ "$i" -lt 65 ]; do
        printf '[service:s%d]\nexec = %s sleep\n' "$i" "$H"
        i=$((i + 1))
    done
} >"$T/many.txt"
config_error too-many-services 131 "66 services, max_services 64" <"$T/many.txt"
sed -n 131p "$T/too-many-services.ini" | grep -qxF '[service:s64]' ||
    fail "too-many-services: line 131 is not the 65th header"

# Regression: backoff_initial = 1ms logged 'restart in 0 ms' (the delay
# was cut to whole milliseconds). Jitter makes most delays fractional.
cat >"$T/ms.ini" <<EOF
[service:m]
exec = $H exit 1
restart = always
backoff_initial = 1ms
backoff_max = 1ms
backoff_jitter = 50
max_restarts = 8
EOF
$WRAP "$CUSTOSD" --config "$T/ms.ini" 2>"$T/ms.log" &
DAEMON=$!
if wait_for "$T/ms.log" "-> failed (MaxRestartsExhausted)" 10; then
    lines=$(grep -c -- "-> backoff" "$T/ms.log")
    bad=$(grep -F -- "-> backoff" "$T/ms.log" |
        grep -vE ' in ([1-9][0-9]* ms|[0-9]+\.[0-9]{3} ms|[1-9][0-9]* us|[1-9][0-9]* ns)$')
    if [ "$lines" -ge 8 ] && [ -z "$bad" ]; then
        pass "1 ms backoff: $lines delays, none '0 ms': $(grep -F -- "-> backoff" "$T/ms.log" | head -n 1 | sed 's/.* restart /restart /')"
    else
        fail "1 ms backoff: $lines backoff lines; imprecise: $bad"
    fi
else
    fail "1 ms backoff: m never failed: $(cat "$T/ms.log")"
fi
stop_daemon "1 ms backoff"

# ---------------------------------------------------------------------------
# The example appliance, if it exists. Its relative paths are taken from
# custosd's working directory: run it in a scratch one.
# ---------------------------------------------------------------------------
# One instance, and no stray process after custosd itself is SIGKILLed.

# A cgroup root of this run's own (tests run in parallel), where custosd can
# use cgroups: root and a cgroup2 mount; "off" otherwise.
# CUSTOS_TEST_CGROUP=off forces the fallback (process groups, pid record).
CG=off
if [ "$(id -u)" -eq 0 ] && [ "${CUSTOS_TEST_CGROUP:-}" != off ]; then
    cg_mount=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo 2>/dev/null)
    if [ -n "$cg_mount" ] && [ -w "$cg_mount" ]; then
        CG="$cg_mount/custos-ctd-$$"
    fi
fi

# Regression: a second custosd on the same notify socket took it over.
mkdir -p "$T/inst"
cat >"$T/inst.ini" <<EOF
[custos]
notify_dir = $T/inst/n
cgroup = $CG
[service:n]
exec = $H notify-then 200 READY=1
ready = notify
watchdog = 1s
EOF
$WRAP "$CUSTOSD" --config "$T/inst.ini" 2>"$T/inst.log" &
DAEMON=$!
if wait_for "$T/inst.log" "n: running -> ready" 10; then
    sock_before=$(ls -i "$T/inst/n/n" 2>/dev/null | cut -d' ' -f1)
    custosd --config "$T/inst.ini" >"$T/inst2.out" 2>"$T/inst2.err"
    rc=$?
    sock_after=$(ls -i "$T/inst/n/n" 2>/dev/null | cut -d' ' -f1)
    sleep 1.5 # a watchdog period: the first instance must still hear its service
    if [ "$rc" -eq 1 ] && grep -qF "InstanceRunning" "$T/inst2.err" &&
        grep -qF "held by pid $DAEMON" "$T/inst2.err" && [ -n "$sock_before" ] &&
        [ "$sock_before" = "$sock_after" ] && ! grep -qF "WatchdogTimeout" "$T/inst.log"; then
        pass "second custosd on the same notify_dir: exit 1, InstanceRunning, the first untouched"
    else
        fail "second custosd: exit $rc, stderr: $(cat "$T/inst2.err"), socket $sock_before -> $sock_after, log: $(cat "$T/inst.log")"
    fi
    stop_daemon "second instance"
else
    fail "second instance: the first custosd never got ready: $(cat "$T/inst.log")"
    stop_daemon "second instance"
fi

# No notify_dir: custosd picks the instance's own (under /run/custos when it
# may, else abstract sockets), reachable by a service that runs as another
# user (Debian's mosquitto drops to its user before READY=1); a second
# custosd on the same config is refused, as with an explicit notify_dir.
NOBODY=
if [ "$(id -u)" -eq 0 ] && command -v su >/dev/null 2>&1 &&
    su nobody -s /bin/sh -c "test -x '$H'" 2>/dev/null; then
    NOBODY=yes
fi
{
    echo "[custos]"
    echo "cgroup = $CG"
    echo "[service:a]"
    echo "exec = $H notify-ready 50"
    echo "ready = notify"
    echo "[service:r]"
    echo "exec = $H rundir"
    echo "runtime_dir = yes"
    if [ -n "$NOBODY" ]; then
        echo "[service:b]"
        echo "exec = $H notify-ready 50"
        echo "ready = notify"
        echo "user = nobody"
    fi
} >"$T/dflt.ini"
$WRAP "$CUSTOSD" --config "$T/dflt.ini" 2>"$T/dflt.log" &
DAEMON=$!
if wait_for "$T/dflt.log" "a: running -> ready" 10 &&
    { [ -z "$NOBODY" ] || wait_for "$T/dflt.log" "b: running -> ready" 10; }; then
    dir=$(sed -n 's/^.*notify sockets in \([^ ]*\) (no notify_dir.*$/\1/p' "$T/dflt.log" | head -n 1)
    custosd --config "$T/dflt.ini" >"$T/dflt2.out" 2>"$T/dflt2.err"
    rc=$?
    if [ -n "$dir" ] && [ "$rc" -eq 1 ] && grep -qF "InstanceRunning" "$T/dflt2.err"; then
        pass "no notify_dir: sockets in $dir, ready = notify works${NOBODY:+ (also as nobody)}, a second instance is refused"
    else
        fail "default notify dir '$dir': second instance exit $rc, stderr: $(cat "$T/dflt2.err"), log: $(cat "$T/dflt.log")"
    fi
    rdir=$(sed -n 's/^.*runtime directories in \([^ ]*\) (no runtime_dir_root.*$/\1/p' "$T/dflt.log" | head -n 1)
    if [ -n "$rdir" ] && wait_for "$rdir/r/written" "" 10; then
        pass "no runtime_dir_root: RUNTIME_DIRECTORY is $rdir/r"
    else
        fail "default runtime dir '$rdir': $(cat "$T/dflt.log")"
    fi
    stop_daemon "default notify dir"
    if [ -n "$rdir" ] && [ -e "$rdir/r" ]; then
        fail "runtime directory $rdir/r left after the stop"
    fi
    case "$dir" in
    /run/custos/dflt-*/notify) rm -rf "${dir%/notify}" ;;
    esac
else
    fail "default notify dir: never ready: $(cat "$T/dflt.log")"
    stop_daemon "default notify dir"
fi
[ -n "$NOBODY" ] || echo "SKIP: the service as nobody (needs root, su, and a helper nobody may run)"

# Regression: after SIGKILL of custosd its services ran on under init, and
# a restarted custosd started a second copy of each.
cat >"$T/crash.ini" <<EOF
[custos]
notify_dir = $T/crash.n
cgroup = $CG
# Not the default socket, which the other runs of this suite race for.
[control]
socket = $T/crash.sock
[service:fam]
exec = $H grandchild setsid $T/crash.gpid
EOF
$WRAP "$CUSTOSD" --config "$T/crash.ini" 2>"$T/crash1.log" &
DAEMON=$!
if wait_for "$T/crash1.log" "fam: starting -> ready" 10 && wait_for "$T/crash.gpid" "" 10; then
    gpid=$(cat "$T/crash.gpid")
    leader=$(logged_pids "$T/crash1.log" | head -n 1)
    kill -KILL "$DAEMON"
    wait "$DAEMON" 2>/dev/null
    DAEMON=
    alive "$leader" || fail "custosd SIGKILLed: its service died with it (nothing to test)"
    rm -f "$T/crash.gpid"
    $WRAP "$CUSTOSD" --config "$T/crash.ini" 2>"$T/crash2.log" &
    DAEMON=$!
    wait_for "$T/crash2.log" "fam: starting -> ready" 10
    sleep 0.3
    if [ "$CG" = off ]; then
        # The pid record: the old leader's group and session are killed; the
        # setsid() grandchild is not provably ours (README).
        if ! alive "$leader" && grep -qF "killed what a previous run left: fam" "$T/crash2.log"; then
            pass "custosd SIGKILLed then restarted (no cgroups): the old service was killed, not duplicated"
        else
            fail "restart after SIGKILL (no cgroups): old leader $leader alive, log: $(cat "$T/crash2.log")"
        fi
        kill -KILL "$gpid" 2>/dev/null
    elif ! alive "$leader" && ! alive "$gpid" &&
        grep -qF "killed what a previous run left: fam: 2" "$T/crash2.log"; then
        pass "custosd SIGKILLed then restarted: the old service and its setsid() grandchild were killed, and said so"
    else
        fail "restart after SIGKILL: leader $leader, grandchild $gpid, log: $(cat "$T/crash2.log")"
        kill -KILL "$leader" "$gpid" 2>/dev/null
    fi
    stop_daemon "restart after SIGKILL"
    # And the new run's own grandchild went with its stop.
    if [ -s "$T/crash.gpid" ] && alive "$(cat "$T/crash.gpid")"; then
        if [ "$CG" = off ]; then
            kill -KILL "$(cat "$T/crash.gpid")"
        else
            fail "the second run's setsid() grandchild outlived custosd's stop"
        fi
    fi
else
    fail "restart after SIGKILL: the first custosd never got ready: $(cat "$T/crash1.log")"
    stop_daemon "restart after SIGKILL"
fi

# ---------------------------------------------------------------------------
# The hardware watchdog's reset record across runs, on the null device (no
# hardware, the same gate, records and events): an orderly stop disarms and
# records `orderly`; the next run says so; a SIGKILLed custosd is
# `restarted` for the next; a torn record is ResetRecordCorrupt, never
# trusted. The ReasonIds are what the emulated-board job greps.

# wd_start NAME: custosd on wd.ini, its stderr in $T/wd-NAME.log.
wd_start() {
    $WRAP "$CUSTOSD" --config "$T/wd.ini" 2>"$T/wd-$1.log" &
    DAEMON=$!
}

# wd_event NAME REASON_ID: the run's log has a watchdog line for it, in the
# form custosd prints (a change, FROM -> TO, or a report, STATE).
wd_event() {
    wait_for "$T/wd-$1.log" "($2)" 10 &&
        grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z watchdog [a-z]+( -> [a-z]+)? \\($2\\)" \
            "$T/wd-$1.log"
}

# wd_resolved NAME REASON_ID: its line is followed by the operator's step.
wd_resolved() {
    grep -A1 -F "($2)" "$T/wd-$1.log" | grep -q '^  resolution: .'
}

# wd_leg NAME REASON_ID WHAT: a run that must log REASON_ID (WHAT names it).
wd_leg() {
    wd_start "$1"
    if wd_event "$1" "$2"; then
        pass "watchdog: $3: ($2)"
        return 0
    fi
    fail "watchdog: $3: no watchdog line with ($2): $(cat "$T/wd-$1.log")"
    return 1
}

cat >"$T/wd.ini" <<EOF
[custos]
notify_dir = $T/wd.n
cgroup = $CG
[watchdog]
device = null
state_file = $T/wd.state
timeout = 4s
[service:w]
exec = $H sleep
EOF
if custosd --check "$T/wd.ini" >"$T/out" 2>"$T/err" && grep -qF "watchdog null" "$T/out"; then
    pass "watchdog: --check accepts [watchdog] device = null"
else
    fail "watchdog: --check: $(cat "$T/out" "$T/err")"
fi
rm -f "$T/wd.state"
# 1. Opened; SIGTERM disarms it and records an orderly stop.
if wd_leg first WatchdogOpened "the first run opens it"; then
    wait_for "$T/wd-first.log" "w: starting -> ready" 10 ||
        fail "watchdog: the service never got ready: $(cat "$T/wd-first.log")"
    stop_daemon "watchdog first run"
    if grep -qF "(WatchdogDisarmed)" "$T/wd-first.log" && grep -qF "state orderly" "$T/wd.state"; then
        pass "watchdog: SIGTERM: (WatchdogDisarmed), the record says 'state orderly'"
    else
        fail "watchdog: SIGTERM: no (WatchdogDisarmed) or no 'state orderly': $(cat "$T/wd-first.log" "$T/wd.state")"
    fi
else
    stop_daemon "watchdog first run"
fi
# 2. The next run reads it back; then SIGKILL (no record of the end).
if wd_leg orderly PreviousBootOrderly "after an orderly stop"; then
    wait_for "$T/wd-orderly.log" "w: starting -> ready" 10
    kill -KILL "$DAEMON"
    wait "$DAEMON" 2>/dev/null
    DAEMON=
    # 3. Killed, then started again in the same boot.
    if wd_leg killed PreviousBootRestarted "after SIGKILL"; then
        wd_resolved killed PreviousBootRestarted ||
            fail "watchdog: (PreviousBootRestarted) without a resolution line: $(cat "$T/wd-killed.log")"
    fi
    stop_daemon "watchdog after SIGKILL"
else
    stop_daemon "watchdog second run"
fi
# 4. A torn record (cut in the middle, as a write without the rename would
# leave it) is reported and written anew.
if [ -s "$T/wd.state" ]; then
    wd_size=$(wc -c <"$T/wd.state")
    truncate -s $((wd_size / 2)) "$T/wd.state"
    if wd_leg torn ResetRecordCorrupt "a torn state file"; then
        wd_resolved torn ResetRecordCorrupt ||
            fail "watchdog: (ResetRecordCorrupt) without a resolution line: $(cat "$T/wd-torn.log")"
    fi
    stop_daemon "watchdog torn record"
    grep -qF "state orderly" "$T/wd.state" ||
        fail "watchdog: the record was not written anew after the torn one: $(cat "$T/wd.state")"
else
    fail "watchdog: no state file $T/wd.state after the runs"
fi
if [ -n "$EXAMPLES" ] && [ -f "$EXAMPLES/watchdog.ini" ]; then
    if custosd --check "$EXAMPLES/watchdog.ini" >"$T/out" 2>&1; then
        pass "examples/watchdog.ini: --check ok"
    else
        fail "examples/watchdog.ini --check: $(cat "$T/out")"
    fi
fi

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
