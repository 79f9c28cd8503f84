#!/bin/sh
# examples/appliance-daemon end to end, as a firmware engineer would try it:
# it becomes healthy, talks to its agent over the channel, reports the flaky
# monitor degraded, heartbeats, reports the wedged monitor (suspected, then
# wedged) after SIGUSR1, and on SIGTERM stops the monitors first (reverse
# order) and then the services, exiting 0.
#
# Environment (tests/meson.build): APPLIANCE_DAEMON, CUSTOSD_WRAPPER (qemu-user
# on cross builds). Exit: 0 passed, 1 a check failed.
set -u
# The tally (pass, fail); its own cleanup and wait_for below.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
: "${APPLIANCE_DAEMON:?APPLIANCE_DAEMON must name the example binary}"
WRAP=${CUSTOSD_WRAPPER:-}

T=$(mktemp -d /tmp/ctad.XXXXXX) || exit 1
PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_for PATTERN SECONDS: until the log has a line matching PATTERN (not
# once the daemon has exited).
wait_for() {
    i=0
    while [ "$i" -lt "$(($2 * 10))" ]; do
        grep -q -- "$1" "$T/log" && return 0
        kill -0 "$PID" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
line_of() {
    grep -n -- "$1" "$T/log" | head -1 | cut -d: -f1
}

mkdir "$T/state"
# shellcheck disable=SC2086 # $WRAP: empty, or a command and its words
$WRAP "$APPLIANCE_DAEMON" --state-dir "$T/state" >"$T/log" 2>&1 &
PID=$!

check() { # what, pattern, seconds
    if wait_for "$2" "$3"; then
        pass "$1"
    elif ! kill -0 "$PID" 2>/dev/null && grep -q "IoUringUnavailable" "$T/log"; then
        # A backend forced where the kernel lacks it (io_uring under
        # qemu-user) is a skip, as for every other suite.
        echo "SKIP: $(cat "$T/log")"
        PID=
        exit 77
    else
        fail "$1: no line matching '$2' within $3 s"
    fi
}
check "healthy once everything started" "^health: ok: 2/2 ready, 3/3 monitors running" 60
check "the telemetry monitor talks to the agent over its channel" "agent says pong" 60
check "the flaky monitor is reported degraded at its third crash in a row" \
    "monitor poller: backoff -> backoff (MonitorDegraded) 3 consecutive crashes" 60
check "heartbeats from the healthy monitor" "monitor telemetry: running -> running (MonitorHeartbeat)" 60

# The control socket and the appliance's own route, with a real client.
S="$T/state/control.sock"
if command -v curl >/dev/null 2>&1; then
    body=$(curl -s --max-time 10 --unix-socket "$S" http://appliance/appliance/pings)
    case $body in
    '{"pongs":'[1-9]*) pass "GET /appliance/pings through the appliance's route: $body" ;;
    *) fail "GET /appliance/pings: '$body'" ;;
    esac
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$S" \
        http://appliance/appliance/nothing)
    [ "$code" = 404 ] && pass "the route's own 404" || fail "GET /appliance/nothing: $code"
    code=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 --unix-socket "$S" \
        http://appliance/services/netd)
    if [ "$code" = 200 ] && grep -q '"name":"netd"' "$T/body"; then
        pass "GET /services/netd beside it"
    else
        fail "GET /services/netd: $code $(cat "$T/body")"
    fi
    if [ "$(id -u)" -eq 0 ]; then
        body=$(curl -s --max-time 10 -X POST --unix-socket "$S" http://appliance/appliance/pings/reset)
        [ "$body" = '{"pongs":0}' ] && pass "POST /appliance/pings/reset as root" ||
            fail "POST /appliance/pings/reset: '$body'"
        # A client that asks before sending its body (curl does for large
        # ones) gets 100 Continue, then the answer.
        head -c 2048 /dev/zero | tr '\0' x >"$T/body2k"
        curl -s -v --max-time 10 -X POST -H 'Expect: 100-continue' --data-binary @"$T/body2k" \
            --unix-socket "$S" \
            http://appliance/appliance/pings/reset >"$T/out" 2>"$T/err"
        if grep -q "100 Continue" "$T/err" && grep -q '"pongs":0' "$T/out"; then
            pass "a 2 KiB body: 100 Continue, then the route's answer"
        else
            fail "a 2 KiB body: $(grep '^<' "$T/err" | head -3) $(cat "$T/out")"
        fi
    fi
else
    echo "note: no curl: the control socket's checks skipped"
fi

kill -USR1 "$PID"
check "no progress for half the deadline: suspected, with the thread's state" \
    "monitor stuck: running -> running (MonitorWedgeSuspected).*state" 60
check "no progress for the deadline: wedged" "monitor stuck: running -> wedged (MonitorWedged)" 60
check "health says so" "monitor stuck wedged: MonitorWedged" 60

kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
if [ "$rc" -eq 0 ]; then
    pass "SIGTERM: exit 0"
else
    fail "SIGTERM: exit $rc"
fi
m=$(line_of "monitor telemetry: stopping -> stopped")
s=$(line_of "service netd: ready -> stopping")
st=$(line_of "monitor stuck: .* -> stopping")
if [ -n "$m" ] && [ -n "$s" ] && [ -n "$st" ] && [ "$st" -lt "$m" ] && [ "$m" -lt "$s" ]; then
    pass "the stop: monitors in reverse order, then the services"
else
    fail "the stop order (stuck at '$st', telemetry at '$m', netd at '$s')"
fi

if [ "$failures" -ne 0 ]; then
    echo "--- log"
    cat "$T/log"
    exit 1
fi
exit 0
