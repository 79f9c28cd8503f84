#!/bin/sh
# custosctl against a real custosd, and the control socket's routes with
# curl and jq, as an operator uses them: status (table, one service, JSON),
# health, stop/start with --wait (an operator stop stays stopped), unknown
# names (exit 4), no socket (exit 6), wait-ready, the metrics through
# promtool, a peer that is not an operator (reads, but exit 5 on an
# action), and reload (unchanged, bad files named at FILE:LINE, a [custos]
# change refused, services changed, added and removed, SIGHUP, POST /reload
# with curl). Parts whose tool is missing (jq, curl, promtool, setpriv) or
# that need root are reported as skipped; the whole test exits 77 when the
# forced backend is not available.
#
#   sh tests/test_custosctl.sh [BUILD_DIR]     by hand, from the source tree
#
# Environment (set by tests/meson.build; BUILD_DIR fills in the first three):
#   CUSTOSD          the custosd binary
#   CUSTOSCTL        the custosctl binary
#   SVC_HELPER       tests/svc_helper (the services)
#   CUSTOSD_WRAPPER  how to run a target binary (qemu-user on cross builds)
#   CUSTOS_BACKEND   uring|epoll (optional)
# Exit: 0 all passed, 1 a check failed, 77 skipped.
set -u

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
use_binaries "$@"

scratch cctl
# The socket must be reachable by `nobody` (the non-operator checks).
chmod 755 "$T"
# The STATE column of NAME in the TSV.
state_of() {
    # shellcheck disable=SC2086
    $WRAP "$CUSTOSCTL" --socket "$S" status 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'
}

# The read-only TCP listener on a port of our own (the two backends' runs
# go in parallel), and the textfile every second.
PORT=$((20000 + $$ % 20000))
cat >"$T/c.ini" <<EOF
[custos]
stop_timeout = 10s

[control]
socket = $S
mode = 0666
metrics_listen = 127.0.0.1:$PORT
metrics_textfile = $T/custos.prom
metrics_textfile_interval = 1s

[service:web]
exec = $H sleep

[service:worker]
exec = $H sleep

# Exits 1 at once, again and again, never ready (it would be, for a
# moment after each spawn, with ready = started).
[service:flaky]
exec = $H exit 1
ready = notify
restart = always
backoff_initial = 100ms
backoff_max = 500ms
EOF

# custosd, and its socket within 10 s.
start_daemon
pass "custosd serves its control socket"

# --- usage ---
ctl_rc 2 "no verb is a usage error"
ctl_rc 2 "stop without a name is a usage error" stop
ctl_rc 2 "an unknown verb is a usage error" frobnicate
ctl_rc 2 "a bad --timeout is a usage error" status --timeout 5x
ctl_rc 0 "--help" --help
if grep -q "Exit codes" "$T/out"; then
    pass "--help lists the exit codes"
else
    fail "--help lacks the exit codes: $(cat "$T/out")"
fi

# --- reading ---
ctl_rc 0 "wait-ready web worker" wait-ready web worker --timeout 20s
if ctl_rc 0 "status" status; then
    if head -n 1 "$T/out" | grep -q "^NAME  *STATE  *PID  *UPTIME  *RESTARTS  *LAST-EXIT  *REASON" &&
        grep -q "^web  *ready " "$T/out" && grep -q "^worker  *ready " "$T/out" &&
        grep -q "^flaky " "$T/out"; then
        pass "status lists the three services, web and worker ready"
    else
        fail "status table: $(cat "$T/out")"
    fi
    if grep -q "$(printf '\033')" "$T/out"; then
        fail "status coloured its output although stdout is not a terminal"
    else
        pass "no colour when stdout is not a terminal"
    fi
fi
if ctl_rc 0 "status web" status web && grep -q "web" "$T/out"; then
    pass "status web prints the detail"
fi
ctl_rc 4 "status of an unknown name" status no-such-service
ctl_rc 1 "wait-ready on a service that never becomes ready" wait-ready flaky --timeout 1s

ctl health >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -le 1 ] && grep -q "^\[+\] web" "$T/out" && grep -q "^\[[-+]\] flaky" "$T/out"; then
    pass "health: exit $rc, one line per check"
else
    fail "health: exit $rc: $(cat "$T/out") $(cat "$T/err")"
fi

# --- acting ---
if ctl_rc 0 "stop web --wait" stop web --wait --timeout 20s; then
    st=$(state_of web)
    if [ "$st" = stopped ]; then
        pass "web is stopped"
    else
        fail "web is '$st' after stop --wait"
    fi
    sleep 2
    st=$(state_of web)
    if [ "$st" = stopped ]; then
        pass "an operator stop stays stopped (2 s later)"
    else
        fail "web is '$st' 2 s after an operator stop"
    fi
    ctl_rc 3 "status of a stopped service" status web
fi
if ctl_rc 0 "start web --wait" start web --wait --timeout 20s; then
    st=$(state_of web)
    if [ "$st" = ready ]; then
        pass "web is ready again"
    else
        fail "web is '$st' after start --wait"
    fi
fi
ctl_rc 0 "restart worker" restart worker
ctl_rc 0 "wait-ready worker after its restart" wait-ready worker --timeout 20s
ctl_rc 4 "stop an unknown name" stop no-such-service
# --- unreachable ---
# shellcheck disable=SC2086
$WRAP "$CUSTOSCTL" --socket "$T/none.sock" status >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 6 ] && grep -qF "$T/none.sock" "$T/err"; then
    pass "no socket: exit 6, naming it"
else
    fail "no socket: exit $rc: $(cat "$T/err")"
fi
# shellcheck disable=SC2086
CUSTOS_SOCKET=$S $WRAP "$CUSTOSCTL" status >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^web " "$T/out"; then
    pass "the socket from CUSTOS_SOCKET"
else
    fail "CUSTOS_SOCKET: exit $rc: $(cat "$T/err")"
fi

# --- JSON ---
if have jq; then
    if ctl --json status | jq -e '.services | length == 3' >/dev/null; then
        pass "--json status: .services has the three services"
    else
        fail "--json status | jq .services"
    fi
    if ctl --json status web | jq -e '.name == "web"' >/dev/null; then
        pass "--json status web: the service object"
    else
        fail "--json status web"
    fi
    if ctl --json health | jq -e '.' >/dev/null; then
        pass "--json health is JSON"
    else
        fail "--json health is not JSON"
    fi
else
    skip "--json checks: no jq"
fi

# --- metrics ---
if ctl_rc 0 "metrics" metrics; then
    if grep -q '^custos_service_up{service="web"}' "$T/out"; then
        pass "metrics has custos_service_up for web"
    else
        fail "metrics lacks custos_service_up{service=\"web\"}"
    fi
    if have promtool; then
        if promtool check metrics <"$T/out" >"$T/promtool" 2>&1; then
            pass "promtool check metrics"
        else
            fail "promtool check metrics: $(cat "$T/promtool")"
        fi
    else
        skip "promtool check metrics: no promtool"
    fi
fi

# --- a peer that is not an operator ---
if [ "$(id -u)" -ne 0 ]; then
    skip "non-operator checks: not root"
elif ! have setpriv || ! id nobody >/dev/null 2>&1; then
    skip "non-operator checks: no setpriv or no user nobody"
else
    asnobody() {
        # shellcheck disable=SC2086
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
            $WRAP "$CUSTOSCTL" --socket "$S" "$@"
    }
    asnobody status >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq 0 ] && grep -q "^web " "$T/out"; then
        pass "nobody reads the status"
    else
        fail "nobody's status: exit $rc: $(cat "$T/err")"
    fi
    asnobody stop worker >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq 5 ]; then
        pass "nobody's stop is refused: exit 5"
    else
        fail "nobody's stop: exit $rc, expected 5: $(cat "$T/err")"
    fi
    # Both are events: custosd logs the refusal with the peer's uid, and
    # root's stop of web earlier as allowed.
    nuid=$(id -u nobody)
    if grep -q "control POST /services/worker/stop by [^ ]* (pid [0-9]* uid $nuid): 403 (ControlDenied)" "$T/log"; then
        pass "nobody's refused stop is an event with its uid"
    else
        fail "no ControlDenied event for nobody's stop in custosd's log"
    fi
    if grep -q "control POST /services/web/stop?wait=[0-9a-z]* by [^ ]* (pid [0-9]* uid 0): 202 (ControlAction)" "$T/log"; then
        pass "root's stop is an event with its uid"
    else
        fail "no ControlAction event for root's stop in custosd's log"
    fi
    st=$(state_of worker)
    if [ "$st" = ready ] || [ "$st" = running ]; then
        pass "worker still runs after nobody's refused stop"
    else
        fail "worker is '$st' after nobody's refused stop"
    fi
fi

# --- fleet scraping: the TCP listener and the textfile ---
if have curl; then
    code=$(curl -s -o "$T/tcp" -w '%{http_code} %{content_type}' "http://127.0.0.1:$PORT/metrics")
    if [ "${code%% *}" = 200 ] && grep -q '^custos_service_up{service="web"}' "$T/tcp"; then
        pass "GET /metrics over TCP: $code"
    else
        fail "GET /metrics over TCP: $code"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/status")
    [ "$code" = 404 ] && pass "GET /status over TCP: 404" || fail "GET /status over TCP: $code"
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/services/web/stop")
    [ "$code" = 404 ] && pass "no action over TCP: 404" || fail "POST over TCP: $code"
fi
if [ -s "$T/custos.prom" ] && grep -q '^custos_build_info' "$T/custos.prom"; then
    pass "the metrics textfile is there"
    m1=$(stat -c %Y.%y "$T/custos.prom")
    sleep 2.2
    m2=$(stat -c %Y.%y "$T/custos.prom")
    [ "$m1" != "$m2" ] && pass "the textfile is rewritten every second" ||
        fail "the textfile was not rewritten in 2 s"
    if have promtool; then
        if promtool check metrics <"$T/custos.prom" >"$T/promtool" 2>&1; then
            pass "promtool check metrics on the textfile"
        else
            fail "promtool on the textfile: $(head -5 "$T/promtool")"
        fi
    fi
else
    fail "no metrics textfile at $T/custos.prom"
fi

# --- the routes with curl ---
if have curl; then
    code=$(curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$S" http://custos/health)
    if [ "$code" = 200 ] || [ "$code" = 503 ]; then
        pass "curl /health: $code"
    else
        fail "curl /health: $code"
    fi
    if have jq; then
        if curl -sf --unix-socket "$S" http://custos/status |
            jq -e '.runtime and .health and (.services | length == 3)' >/dev/null; then
            pass "curl /status | jq: runtime, health, services"
        else
            fail "curl /status | jq"
        fi
    fi
    ctype=$(curl -s -o /dev/null -w '%{content_type}' --unix-socket "$S" http://custos/metrics)
    case "$ctype" in
    "text/plain; version=0.0.4"*) pass "curl /metrics: Content-Type $ctype" ;;
    *) fail "curl /metrics: Content-Type '$ctype'" ;;
    esac
    code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$S" http://custos/no/such/route)
    if [ "$code" = 404 ]; then
        pass "curl an unknown route: 404"
    else
        fail "curl an unknown route: $code"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE --unix-socket "$S" \
        http://custos/status)
    if [ "$code" = 405 ]; then
        pass "curl DELETE /status: 405"
    else
        fail "curl DELETE /status: $code"
    fi
else
    skip "curl checks: no curl"
fi

# --- reload: the file edited, custosctl reload and SIGHUP ---
# The PID column of NAME in the TSV.
pid_of() {
    # shellcheck disable=SC2086
    $WRAP "$CUSTOSCTL" --socket "$S" status 2>/dev/null | awk -v n="$1" '$1 == n { print $3 }'
}
cp "$T/c.ini" "$T/c.orig"
web_pid=$(pid_of web)
worker_pid=$(pid_of worker)
if ctl_rc 0 "reload of an unchanged file" reload; then
    if grep -q "^reloaded: 0 added, 0 removed, 0 changed, 3 unchanged" "$T/out"; then
        pass "reload: nothing changed, nothing touched"
    else
        fail "reload of an unchanged file said: $(cat "$T/out")"
    fi
fi
# A problem in the file: every one with its FILE:LINE, nothing changed.
{
    cat "$T/c.orig"
    printf '\n[service:bad]\nexec = %s sleep\nrestrat = always\n' "$H"
} >"$T/c.ini"
bad_line=$(grep -n "^restrat" "$T/c.ini" | cut -d: -f1)
if ctl_rc 1 "reload of a file with an unknown key" reload; then
    if grep -qF "$T/c.ini:$bad_line:" "$T/err" && grep -q "ReloadInvalid" "$T/err"; then
        pass "the unknown key is named at $T/c.ini:$bad_line"
    else
        fail "reload with an unknown key: $(cat "$T/err")"
    fi
fi
{
    cat "$T/c.orig"
    printf '\n[service:bad]\nexec = %s sleep\ndepends_on = nothing-here\n' "$H"
} >"$T/c.ini"
dep_line=$(grep -n "^depends_on = nothing-here" "$T/c.ini" | cut -d: -f1)
if ctl_rc 1 "reload of a table with an unknown dependency" reload; then
    if grep -qF "$T/c.ini:$dep_line:" "$T/err" && grep -q "DependencyUnknown" "$T/err"; then
        pass "the unknown dependency is named at $T/c.ini:$dep_line"
    else
        fail "reload with an unknown dependency: $(cat "$T/err")"
    fi
fi
sed 's/^stop_timeout = 10s/stop_timeout = 11s/' "$T/c.orig" >"$T/c.ini"
if ctl_rc 1 "reload of a changed [custos] section" reload; then
    if grep -q "ReloadUnsupported" "$T/err" && grep -qF "[custos] changed" "$T/err"; then
        pass "a [custos] change needs a restart, and says so"
    else
        fail "reload of a changed [custos]: $(cat "$T/err")"
    fi
fi
{ cat "$T/c.orig"; printf '\n[log]\nfold_window = 3s\n'; } >"$T/c.ini"
if ctl_rc 1 "reload of a changed [log] section" reload; then
    if grep -q "ReloadUnsupported" "$T/err" && grep -qF "[log] changed" "$T/err"; then
        pass "a [log] change needs a restart, and says so"
    else
        fail "reload of a changed [log]: $(cat "$T/err")"
    fi
fi
if [ "$(pid_of web)" = "$web_pid" ] && [ "$(pid_of worker)" = "$worker_pid" ]; then
    pass "the refused reloads touched nothing (web and worker keep their pids)"
else
    fail "a refused reload changed a process: web $web_pid -> $(pid_of web), worker $worker_pid -> $(pid_of worker)"
fi
# Applied: worker changed, extra added, flaky removed, web untouched.
awk '/^\[service:flaky\]/ { skip = 1 } /^\[/ && !/flaky/ { skip = 0 } !skip' "$T/c.orig" |
    sed "s|^\[service:worker\]|[service:worker]\nenv = RELOADED=1|" >"$T/c.ini"
printf '\n[service:extra]\nexec = %s sleep\ndepends_on = web\n' "$H" >>"$T/c.ini"
if ctl_rc 0 "reload: one changed, one added, one removed" reload; then
    if grep -q "^reloaded: 1 added, 1 removed, 1 changed, 1 unchanged" "$T/out"; then
        pass "reload summary: 1 added, 1 removed, 1 changed, 1 unchanged"
    else
        fail "reload summary: $(cat "$T/out")"
    fi
fi
ctl_rc 0 "wait-ready extra worker after the reload" wait-ready extra worker --timeout 20s
if [ "$(pid_of web)" = "$web_pid" ]; then
    pass "the unchanged service kept its process ($web_pid)"
else
    fail "web's pid changed across the reload: $web_pid -> $(pid_of web)"
fi
if [ -n "$(pid_of worker)" ] && [ "$(pid_of worker)" != "$worker_pid" ]; then
    pass "the changed service runs a new process"
else
    fail "worker's pid after the reload: $(pid_of worker) (was $worker_pid)"
fi
n=0
while ctl status 2>/dev/null | grep -q "^flaky "; do
    n=$((n + 1))
    [ "$n" -gt 100 ] && break
    sleep 0.1
done
if ctl status 2>/dev/null | grep -q "^flaky "; then
    fail "the removed service is still listed 10 s later"
else
    pass "the removed service is gone from the status"
fi
if grep -q "ReloadChanged" "$T/log" && grep -q "ReloadAdded" "$T/log" &&
    grep -q "ReloadRemoved" "$T/log"; then
    pass "each step is an event in custosd's log"
else
    fail "the reload's steps are not all in the log: $(grep -i reload "$T/log")"
fi
# SIGHUP does the same.
printf '\n[service:extra2]\nexec = %s sleep\n' "$H" >>"$T/c.ini"
kill -HUP "$DAEMON"
ctl_rc 0 "SIGHUP: the service it adds becomes ready" wait-ready extra2 --timeout 20s
if grep -q "reloaded $T/c.ini: 1 added, 0 removed, 0 changed, 3 unchanged" "$T/log"; then
    pass "SIGHUP reloaded, logged with its summary"
else
    fail "SIGHUP reload not logged: $(grep -i reload "$T/log")"
fi
if have curl && have jq; then
    body=$(curl -s --unix-socket "$S" -X POST http://custos/reload)
    if [ "$(printf '%s' "$body" | jq -r '.reloaded, .unchanged' | tr '\n' ' ')" = "true 4 " ]; then
        pass "POST /reload with curl: JSON with the summary"
    else
        fail "POST /reload with curl: $body"
    fi
    # A probe added by reload: checked, and served like the others.
    printf '\n[probe:added-p]\nfile = %s\ninterval = 1s\n' "$T" >>"$T/c.ini"
    body=$(curl -s --unix-socket "$S" -X POST http://custos/reload)
    if [ "$(printf '%s' "$body" | jq -r '.reloaded, .probes.added' | tr '\n' ' ')" = "true 1 " ]; then
        pass "POST /reload: a probe added"
    else
        fail "POST /reload adding a probe: $body"
    fi
    if ctl_rc 0 "check of the probe the reload added" check added-p --wait &&
        [ "$(curl -s --unix-socket "$S" http://custos/probes/added-p | jq -r .state)" = ready ]; then
        pass "the added probe passes and is served at /probes/added-p"
    else
        fail "the added probe: $(curl -s --unix-socket "$S" http://custos/probes/added-p)"
    fi
    sed -i '/^\[probe:added-p\]/,$d' "$T/c.ini"
    body=$(curl -s --unix-socket "$S" -X POST http://custos/reload)
    code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$S" http://custos/probes/added-p)
    if [ "$(printf '%s' "$body" | jq -r '.probes.removed')" = 1 ] && [ "$code" = 404 ]; then
        pass "POST /reload: the probe removed is gone (404)"
    else
        fail "POST /reload removing a probe: $body, GET /probes/added-p: $code"
    fi
    printf 'garbage line\n' >>"$T/c.ini"
    code=$(curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$S" -X POST http://custos/reload)
    if [ "$code" = 422 ] && [ "$(jq -r '.error' "$T/body")" = ReloadInvalid ] &&
        [ "$(jq '.problems | length' "$T/body")" -ge 1 ]; then
        pass "POST /reload of a bad file: 422 with its problems: $(jq -c '.problems' "$T/body")"
    else
        fail "POST /reload of a bad file: $code $(cat "$T/body")"
    fi
else
    skip "POST /reload with curl and jq (not installed)"
fi

# --- the end: custosd still supervises, and stops cleanly ---
kill -TERM "$DAEMON"
n=0
while kill -0 "$DAEMON" 2>/dev/null; do
    n=$((n + 1))
    if [ "$n" -gt 200 ]; then
        break
    fi
    sleep 0.1
done
if kill -0 "$DAEMON" 2>/dev/null; then
    fail "custosd still runs 20 s after SIGTERM"
else
    wait "$DAEMON"
    rc=$?
    DAEMON=
    if [ "$rc" -eq 0 ]; then
        pass "custosd stopped on SIGTERM, exit 0"
    else
        fail "custosd exit $rc after SIGTERM: $(tail -n 5 "$T/log")"
    fi
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed; custosd's log:"
    cat "$T/log"
    exit 1
fi
echo "all passed"
exit 0
