#!/bin/sh
# custosd under a real s6-svscan (Debian's s6): with `notification-fd` 3 in
# its service directory and `--notify-fd 3`, `s6-svwait -U` returns once
# custosd says it is ready, which is only after its critical service is ready
# (that service sends READY=1 after 1.5 s, so s6 cannot see custosd up
# sooner); the descriptor does not reach custosd's services; `s6-svc -d`
# stops it in order.
#
# Environment (tests/meson.build): CUSTOSD, SVC_HELPER, CUSTOSD_WRAPPER.
# Exit: 0 passed, 1 a check failed, 77 s6 is not installed (skipped).
set -u
# The tally (pass, fail); its own cleanup below.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

: "${CUSTOSD:?CUSTOSD must name the custosd binary}"
: "${SVC_HELPER:?SVC_HELPER must name tests/svc_helper}"
WRAP=${CUSTOSD_WRAPPER:-}

for tool in s6-svscan s6-svwait s6-svc s6-svscanctl s6-svstat s6-svok; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool not found (apt-get install s6)"
        exit 77
    fi
done

T=$(mktemp -d /tmp/cts6.XXXXXX) || exit 1
chmod 0755 "$T"
SCAN=$T/scan
SVC=$SCAN/custosd
SCANNER=
cleanup() {
    if [ -n "$SCANNER" ]; then
        s6-svc -xd "$SVC" 2>/dev/null
        s6-svscanctl -t "$SCAN" 2>/dev/null
        sleep 1
        kill -KILL "$SCANNER" 2>/dev/null
        pkill -KILL -f "$T/" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM


mkdir -p "$SVC"
cat >"$T/custosd.ini" <<EOF
[custos]
notify_dir = $T/notify

[service:slow]
exec = $SVC_HELPER notify-ready 1500
ready = notify
critical = yes

[service:fds]
exec = $SVC_HELPER env $T/fds.env
EOF
echo 3 >"$SVC/notification-fd"
cat >"$SVC/run" <<EOF
#!/bin/sh
exec 2>>"$T/custosd.log" 1>&2
exec $WRAP "$CUSTOSD" --notify-fd 3 --config "$T/custosd.ini"
EOF
chmod 0755 "$SVC/run"

start=$(date +%s%N)
s6-svscan "$SCAN" >"$T/svscan.log" 2>&1 &
SCANNER=$!

# s6-svwait needs the supervise directory s6-supervise creates.
for _ in $(seq 1 100); do
    s6-svok "$SVC" 2>/dev/null && break
    sleep 0.1
done
if s6-svwait -U -t 60000 "$SVC"; then
    end=$(date +%s%N)
    waited=$(((end - start) / 1000000))
    pass "s6-svwait -U returned after $waited ms"
    # Timers fire late, never early: READY=1 comes from the service after
    # 1.5 s, and custosd may only pass it on after that.
    if [ "$waited" -ge 1500 ]; then
        pass "ready upward only after the critical service was ready"
    else
        fail "s6 saw custosd ready after $waited ms, before its critical service (1500 ms)"
    fi
    if grep -q "slow.*ready" "$T/custosd.log"; then
        pass "custosd logged the critical service ready"
    else
        fail "custosd's log has no ready line for slow"
        cat "$T/custosd.log"
    fi
else
    fail "s6-svwait -U did not return within 60 s"
    s6-svstat "$SVC"
    cat "$T/custosd.log"
fi

# The notification descriptor stays custosd's: the service's fd 3 (if any)
# is not the pipe s6 reads.
for _ in $(seq 1 100); do
    [ -f "$T/fds.env" ] && break
    sleep 0.1
done
if [ -f "$T/fds.env" ]; then
    pid=$(sed -n 's/^pid=//p' "$T/fds.env")
    leaked=no
    for fd in /proc/"$pid"/fd/*; do
        n=${fd##*/}
        [ "$n" -le 2 ] && continue
        target=$(readlink "$fd" 2>/dev/null)
        case $target in
        pipe:*) leaked="fd $n -> $target" ;;
        esac
    done
    if [ "$leaked" = no ]; then
        pass "no pipe descriptor reached the service"
    else
        fail "a pipe reached the service: $leaked"
    fi
else
    fail "the fds service never wrote its file"
fi

s6-svc -d "$SVC"
if s6-svwait -D -t 30000 "$SVC"; then
    pass "s6-svc -d stopped custosd"
else
    fail "custosd did not stop within 30 s of s6-svc -d"
fi

if [ "$failures" -ne 0 ]; then
    echo "--- custosd log"
    cat "$T/custosd.log"
    exit 1
fi
exit 0
