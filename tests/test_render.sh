#!/bin/sh
# The renderers' documents read by the real clients operators and fleets
# use: jq for every JSON document, promtool and python3's prometheus_client
# for /metrics, awk for the TSV. render_dump writes the documents of a
# 64-service, 64-probe, 4-monitor snapshot with fixed times (now =
# 2026-12-07T08:02:52.123Z), each also rendered through an item_max buffer
# (chunked-*), and without the optional parts (bare-*).
#
# Usage: test_render.sh RENDER_DUMP (RENDER_DUMP_WRAPPER: qemu-user for a
# cross build). Exit: 0 all good, 1 a check failed, 77 (skip) when jq,
# promtool or prometheus_client is missing (toolchains/install-deps
# installs them).
set -u

dump=${1:?usage: test_render.sh RENDER_DUMP}

for tool in jq promtool; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "render-tools: $tool not found (apt-get install jq prometheus): skipped" >&2
        exit 77
    fi
done
# Debian's python3-prometheus-client is in the system python3, which may not
# be the first python3 on PATH.
py=
for cand in python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
        "$cand" -c 'import prometheus_client.parser' >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "render-tools: python3 prometheus_client not found (apt-get install python3-prometheus-client): skipped" >&2
    exit 77
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# shellcheck disable=SC2086 # the wrapper may be empty
if ! ${RENDER_DUMP_WRAPPER:-} "$dump" "$dir"; then
    echo "render-tools: render_dump failed" >&2
    exit 1
fi

failures=0
fail() {
    echo "render-tools: FAIL: $*" >&2
    failures=$((failures + 1))
}
# check DESCRIPTION FILE JQ-FILTER: the filter must yield true.
check() {
    if ! out=$(jq -e "$3" "$dir/$2" 2>&1); then
        fail "$1 ($2: $3 gave $out)"
    fi
}

# Resumable: the same bytes through an item_max buffer as in one buffer.
for f in "$dir"/chunked-*; do
    base=$(basename "$f")
    cmp -s "$f" "$dir/${base#chunked-}" || fail "$base differs from ${base#chunked-}"
done

# Every JSON document parses, and ends with a newline.
for f in "$dir"/*.json; do
    jq -e . "$f" >/dev/null 2>&1 || fail "$(basename "$f") is not JSON"
    [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ] || fail "$(basename "$f") lacks its final newline"
done

# /status
check "64 services" status.json '.services | length == 64'
check "64 probes" status.json '.probes | length == 64'
check "4 monitors" status.json '.monitors | length == 4'
check "the top-level keys" status.json \
    'keys == ["counters","health","monitors","probes","runtime","services","watchdog"]'
check "runtime" status.json '.runtime | .version == "0.1.0" and .backend == "io_uring" and .pid == 4321
    and .uptime_s == 995 and .now == "2026-12-07T08:02:52.123Z" and .now_ns == 1000000000000
    and .previous_boot == {"reset": "starved", "reason": "MaxRestartsExhausted"}'
check "health" status.json '.health | .health == "degraded" and (.reasons | length) == 8
    and .reasons_total == 20 and .since == "2026-12-07T08:02:12.123Z"
    and .reasons[0].resolution != "" and .reasons[1].kind == "probe"'
check "service keys" status.json '.services[0] | keys == ["backoff_remaining_s","deaths",
    "deaths_total","last_error","last_exit","name","output","pid","ready","reason","restarts",
    "since","state","status_text","uptime_s","wanted"]'
check "a never-started service" status.json '.services[0] | .state == "stopped" and .pid == null
    and .reason == null and .last_exit == null and .uptime_s == null and .wanted == false
    and .deaths == [] and .last_error == null'
check "a ready service" status.json '.services[4] | .state == "ready" and .ready == true
    and .pid == 1004 and .uptime_s == 5.25 and .reason == "ReadyNotified"'
check "restarts by cause" status.json '.services[4].restarts == {"total": 6, "since_stable": 0,
    "crash": 1, "probe": 2, "watchdog": 0, "operator": 1, "dependency": 2}'
check "backoff remaining" status.json '.services[5] | .state == "backoff"
    and .backoff_remaining_s == 2.5 and .last_exit.pid == 504'
check "16 deaths kept of 20" status.json '.services[20] | .deaths_total == 20
    and (.deaths | length) == 16 and .deaths[0].at == "2026-12-07T08:01:12.123Z"
    and .deaths[2].signal_name == "SIGSEGV" and .deaths[2].core_dumped == true
    and .deaths[5].signal_name == "SIGKILL" and .deaths[0].signal_name == null'
check "last error" status.json '.services[3].last_error | .reason == "SpawnFailed"
    and .errno == 2 and .message == "execve /usr/bin/missing" and (.resolution | length) > 0'
check "status text escapes" status.json \
    '.services[7].status_text == "serving \"clients\"\n\ttab\\slash \u0001 café"'
check "probe" status.json '.probes[2] | .state == "down" and .kind == "unix"
    and .last_error.reason == "ProbeConnectRefused"
    and .last_error.resolution == "start the broker: systemctl start mosquitto"
    and .next_check_in_s == 57 and .last_duration_s == 0.002'
check "probe without its own resolution" status.json \
    '.probes[5].last_error.resolution | length > 0'
check "monitors" status.json '[.monitors[].state] == ["running","backoff","wedged","degraded"]
    and .monitors[1].last_crash.reason == "IoUringUnavailable" and .monitors[0].last_crash == null
    and .monitors[3].degraded.at == "2026-12-07T08:02:47.123Z"'
check "watchdog" status.json '.watchdog | .device == "kernel" and .state == "feeding"
    and .feeds == 4242 and .previous.cls == "starved" and .counters.boots == 7'
check "counters" status.json '.counters | .spawns == 321 and .reactor.syscalls == 12345
    and .control.by_code["404"] == 15 and .control.max_clients == 8'
check "without the optional parts" bare-status.json '.counters.reactor == null
    and .counters.control == null and .runtime.now == null and .runtime.boot_id == null
    and .services[4].since == null'

# One-object documents and /health?json
check "service document" service.json '.name == "svc-13" and .state == "backoff"'
check "probe document" probe.json '.name == "probe-02"'
check "monitor document" monitor.json '.name == "mon-01" and .state == "backoff"'
check "watchdog document" watchdog.json '.identity == "i6300ESB timer"'
check "health checks" health.json '(.checks | length) == 132 and .health == "degraded"
    and .checks[4] == {"kind":"service","name":"svc-04","state":"ready","ok":true,"reason":null}
    and .checks[64].kind == "probe" and .checks[128].kind == "monitor"
    and ([.checks[] | select(.ok | not) | .reason] | all(. != null))'

# /health
lines=$(wc -l <"$dir/health.txt")
[ "$lines" -eq 133 ] || fail "health.txt has $lines lines, not 133"
[ "$(tail -n 1 "$dir/health.txt")" = "health: degraded" ] || fail "health.txt's last line"
grep -qx '\[+\] svc-04 ready' "$dir/health.txt" || fail "health.txt: a ready service"
grep -qx '\[-\] svc-07 failed: MaxRestartsExhausted' "$dir/health.txt" ||
    fail "health.txt: a failed service"
grep -qx '\[-\] probe probe-02 down: ProbeConnectRefused' "$dir/health.txt" ||
    fail "health.txt: a down probe"
grep -qx '\[-\] monitor mon-02 wedged: MonitorWedged' "$dir/health.txt" ||
    fail "health.txt: a wedged monitor"

# The TSV: 64 lines of 8 tab-separated fields.
awk -F '\t' 'NF != 8 { bad = 1 } END { exit bad || NR != 64 }' "$dir/status.tsv" ||
    fail "status.tsv is not 64 lines of 8 fields"
grep -q "$(printf 'svc-05\tbackoff\t0\t-\t5\texit 0\tProcessExited\tyes')" "$dir/status.tsv" ||
    fail "status.tsv: the backoff service"
grep -q "$(printf 'svc-03\trunning\t1003\t4.250\t4\tsignal SIGSEGV (core)\tSpawned\tyes')" \
    "$dir/status.tsv" || fail "status.tsv: a running service whose last exit dumped core"

# /metrics: promtool's checks (format and lint), then python's parser.
for f in metrics.txt bare-metrics.txt; do
    if ! out=$(promtool check metrics <"$dir/$f" 2>&1); then
        fail "promtool check metrics $f: $out"
    fi
done
if ! out=$("$py" - "$dir/metrics.txt" "$dir/bare-metrics.txt" 2>&1 <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families

def families(path):
    with open(path, encoding="utf-8") as f:
        return {fam.name: fam for fam in text_string_to_metric_families(f.read())}

full = families(sys.argv[1])
bare = families(sys.argv[2])
# prometheus_client names a counter family without its _total.
expected = {
    "custos_build_info", "custos_health", "custos_service_state", "custos_service_up",
    "custos_service_ready", "custos_service_start_time_seconds", "custos_service_restarts",
    "custos_service_deaths", "custos_probe_up", "custos_probe_duration_seconds",
    "custos_probe_checks", "custos_probe_failures", "custos_monitor_state",
    "custos_watchdog_feeds", "custos_watchdog_state", "custos_runtime_spawns",
    "custos_reactor_syscalls", "custos_control_requests", "custos_control_refused",
    "process_cpu_seconds", "process_open_fds", "process_max_fds",
    "process_virtual_memory_bytes", "process_resident_memory_bytes",
    "process_start_time_seconds", "process_threads",
}
missing = expected - set(full)
assert not missing, f"families missing: {sorted(missing)}"
optional = [n for n in bare if n.startswith(("process_", "custos_reactor_", "custos_control_"))]
assert not optional, f"bare has optional families: {optional}"

def value(fam, **labels):
    for s in full[fam].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()) and not s.name.endswith("_created"):
            return s.value
    raise AssertionError(f"no sample {fam} {labels}")

assert len(full["custos_service_state"].samples) == 64 * 8
assert value("custos_service_state", service="svc-07", state="failed") == 1
assert value("custos_service_state", service="svc-07", state="ready") == 0
assert value("custos_service_restarts", service="svc-04", cause="probe") == 2
assert value("custos_service_deaths", service="svc-20") == 20
assert value("custos_service_start_time_seconds", service="svc-04") == 1796630566.873
assert value("custos_service_start_time_seconds", service="svc-05") == 0
assert value("custos_probe_up", probe="probe-01") == 1
assert value("custos_probe_duration_seconds", probe="probe-01") == 0.0015
assert value("custos_health", health="degraded") == 1
assert value("custos_watchdog_feeds") == 4242
assert value("custos_watchdog_state", state="feeding") == 1
assert value("custos_control_requests", code="404") == 15
assert value("custos_build_info", version="0.1.0", backend="io_uring") == 1
assert value("process_cpu_seconds") == 12.34
assert value("process_start_time_seconds") == 1796629572.123
assert sum(s.value for s in full["custos_monitor_state"].samples) == 4
print(f"prometheus_client: {len(full)} families, "
      f"{sum(len(f.samples) for f in full.values())} samples")
EOF
); then
    fail "prometheus_client: $out"
else
    echo "render-tools: $out"
fi
# Text format 0.0.4: every line ends with \n, the last one too.
[ "$(tail -c 1 "$dir/metrics.txt" | od -An -c | tr -d ' ')" = '\n' ] ||
    fail "metrics.txt lacks its final newline"

if [ "$failures" -ne 0 ]; then
    echo "render-tools: $failures check(s) failed" >&2
    exit 1
fi
echo "render-tools: all documents read by jq, promtool and prometheus_client"
exit 0
