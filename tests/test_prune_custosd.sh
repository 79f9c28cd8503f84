#!/bin/sh
# The retention pruner through a real custosd: --check lists the
# [prune:NAME] jobs and maps a bad one to FILE:LINE; a job on a short
# interval deletes on its timer, each deletion a line in custosd's log; a
# job whose directory is missing logs its failure while the service keeps
# running; custosctl prune (the jobs), prune NAME --dry-run (what would go,
# nothing deleted), prune NAME (the run), an unknown job (exit 4); the
# routes with curl and jq (GET /prune, POST /prune/NAME?dry_run=1, GET
# /prune/NAME). Parts whose tool is missing (curl, jq) are skipped; the
# whole test exits 77 when the forced backend is not available, or when
# /tmp gives no file leases (the pruner keeps what it cannot prove closed).
#
#   sh tests/test_prune_custosd.sh [BUILD_DIR]     by hand, from the source tree
#
# Environment (set by tests/meson.build; BUILD_DIR fills in the first three):
#   CUSTOSD, CUSTOSCTL, SVC_HELPER, CUSTOSD_WRAPPER, CUSTOS_BACKEND
# Exit: 0 all passed, 1 a check failed, 77 skipped.
set -u

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
use_binaries "$@"

scratch cprune

# fill DIR: five dated files and one without a date.
fill() {
    mkdir -p "$1"
    for d in 01 02 03 04 05; do
        printf '%0100d' 0 >"$1/app-202501$d.log"
    done
    printf 'x' >"$1/app-latest.log"
}

fill "$T/manual"
fill "$T/timed"
cat >"$T/p.ini" <<EOF
[control]
socket = $S
operators = $(id -u)

[service:web]
exec = $H sleep

# Run by hand only.
[prune:manual]
dir = $T/manual
glob = app-*.log
order = name
time_pattern = app-%Y%m%d
keep_newest = 2
interval = 0

# On its timer.
[prune:timed]
dir = $T/timed
glob = app-*.log
order = name
time_pattern = app-%Y%m%d
keep_newest = 1
max_total_bytes = 1M
min_free = 1%
interval = 1s

# Its directory does not exist: a failure each run, nothing else stops.
[prune:gone]
dir = $T/no-such-dir
interval = 1s
EOF

# --- --check ---
# shellcheck disable=SC2086
$WRAP "$CUSTOSD" --check "$T/p.ini" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^  prune manual: $T/manual (app-\*.log), order name, combine any, keep_newest 2, on demand only" "$T/out" &&
    grep -q "^  prune timed: .* keep_newest 1 max_total_bytes 1048576 min_free 1%, every 1s" "$T/out"; then
    pass "--check lists the prune jobs"
else
    fail "--check: exit $rc: $(cat "$T/out") $(cat "$T/err")"
fi
cat >"$T/bad.ini" <<EOF
[prune:x]
dir = relative
order = name
time_pattern = %Y
EOF
# shellcheck disable=SC2086
$WRAP "$CUSTOSD" --check "$T/bad.ini" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "bad.ini:2: \[prune:x\] InvalidArgument" "$T/err" &&
    grep -q "bad.ini:4: \[prune:x\] InvalidArgument" "$T/err"; then
    pass "--check maps a bad job's problems to their lines"
else
    fail "--check of a bad job: exit $rc: $(cat "$T/out") $(cat "$T/err")"
fi

# Leases: without them nothing would be deleted, and that is not a failure
# of the pruner.
if ! python3 -c "
import fcntl, os, sys
fd = os.open('$T/manual/app-latest.log', os.O_RDONLY)
try:
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
except OSError:
    sys.exit(1)
" 2>/dev/null; then
    if have python3; then
        echo "SKIP: no file leases in /tmp here"
        exit 77
    fi
fi

start_daemon "$T/p.ini"
pass "custosd serves its control socket"

# --- the timers: each first run falls within one interval (1 s) of the
# start; both jobs are waited for, up to 5 s ---
n=0
while { [ -e "$T/timed/app-20250104.log" ] || ! grep -q " prune gone: " "$T/log"; } &&
    [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
sleep 0.2
if [ ! -e "$T/timed/app-20250101.log" ] && [ ! -e "$T/timed/app-20250104.log" ] &&
    [ -e "$T/timed/app-20250105.log" ] && [ -e "$T/timed/app-latest.log" ]; then
    pass "the timed job deleted all but the newest on its timer; the undated file stays"
else
    fail "timed job: $(ls "$T/timed") log: $(cat "$T/log")"
fi
if [ "$(grep -c " prune timed: app-2025010[1-4].log (100 bytes, keep_newest) (PruneDeleted)" "$T/log")" -eq 4 ]; then
    pass "each deletion is one line of custosd's log, with its size and rule"
else
    fail "deletion lines: $(grep prune "$T/log")"
fi
if grep -q " prune gone: $T/no-such-dir (PruneScanFailed): No such file or directory" "$T/log" &&
    grep -q "  resolution: " "$T/log"; then
    pass "the missing directory's run failed, logged with its resolution"
else
    fail "no failure line for the missing directory: $(cat "$T/log")"
fi

# --- custosctl ---
if ctl_rc 0 "prune lists the jobs" prune; then
    if grep -q "^manual: $T/manual (app-\*.log), order name, combine any, keep_newest 2; on demand" "$T/out" &&
        grep -q "^  runs 0, deleted 0 files (0 bytes), failures 0; not run yet" "$T/out" &&
        grep -q "^timed: " "$T/out" && grep -q "^gone: " "$T/out" &&
        grep -q "last run .*s ago: PruneScanFailed" "$T/out"; then
        pass "prune: two lines a job, counters and the last run"
    else
        fail "prune list: $(cat "$T/out")"
    fi
fi
if ctl_rc 0 "prune manual --dry-run" prune manual --dry-run; then
    if grep -q "^app-20250101.log	100	keep_newest$" "$T/out" &&
        grep -q "^app-20250103.log	100	keep_newest$" "$T/out" &&
        grep -q "^manual: would delete 3 files (300 bytes); scanned 6, kept 2 (200 bytes), unclassified 1" "$T/out" &&
        [ -e "$T/manual/app-20250101.log" ]; then
        pass "the dry run lists name, bytes and rule, and deletes nothing"
    else
        fail "dry run: $(cat "$T/out"); $(ls "$T/manual")"
    fi
fi
if ctl_rc 0 "prune manual" prune manual; then
    if grep -q "^manual: deleted 3 files (300 bytes)" "$T/out" &&
        [ ! -e "$T/manual/app-20250101.log" ] && [ -e "$T/manual/app-20250104.log" ]; then
        pass "prune NAME runs the job and prints its summary"
    else
        fail "run: $(cat "$T/out"); $(ls "$T/manual")"
    fi
fi
ctl_rc 4 "prune of an unknown job" prune no-such-job
ctl_rc 1 "prune of a job whose directory is missing" prune gone
if grep -q "PruneScanFailed" "$T/err"; then
    pass "its reason is printed"
else
    fail "no reason for the failed run: $(cat "$T/err")"
fi
ctl_rc 2 "--dry-run without a job" prune --dry-run
ctl_rc 2 "--dry-run on another verb" status --dry-run

# --- the routes, with curl and jq ---
if have curl && have jq; then
    curl -s --unix-socket "$S" http://x/prune >"$T/out"
    if jq -e '.prune | length == 3 and .[0].name == "manual" and .[0].runs == 1 and
        .[0].files_deleted == 3 and .[0].bytes_deleted == 300 and .[0].last.deleted == 3 and
        .[0].next_run_in_s == null and .[1].next_run_in_s != null and
        .[2].last_error == "PruneScanFailed" and .[1].min_free_percent == 1' "$T/out" >/dev/null; then
        pass "GET /prune: every job, its counters and last summary"
    else
        fail "GET /prune: $(cat "$T/out")"
    fi
    fill "$T/manual"
    curl -s --unix-socket "$S" -X POST "http://x/prune/manual?dry_run=1" >"$T/out"
    if jq -e '.dry_run == true and (.files | length == 3) and .files[0].file == "app-20250101.log" and
        .files[0].bytes == 100 and .files[0].rules == "keep_newest" and .files_more == 0 and
        .summary.deleted == 3' "$T/out" >/dev/null && [ -e "$T/manual/app-20250101.log" ]; then
        pass "POST /prune/NAME?dry_run=1: the files that would go"
    else
        fail "POST dry run: $(cat "$T/out")"
    fi
    code=$(curl -s -o "$T/out" -w '%{http_code}' --unix-socket "$S" http://x/prune/manual)
    if [ "$code" = 200 ] && jq -e '.name == "manual" and .runs == 1' "$T/out" >/dev/null; then
        pass "GET /prune/NAME: one job (a dry run counts no run)"
    else
        fail "GET /prune/manual: $code $(cat "$T/out")"
    fi
    code=$(curl -s -o "$T/out" -w '%{http_code}' --unix-socket "$S" -X DELETE http://x/prune/manual)
    if [ "$code" = 405 ]; then
        pass "DELETE /prune/NAME: 405"
    else
        fail "DELETE /prune/manual: $code"
    fi
    if grep -q "control POST /prune/manual?dry_run=1 by curl .*: 200 (ControlAction)" "$T/log"; then
        pass "a dry run is recorded as an action"
    else
        fail "no control line for the dry run: $(grep control "$T/log")"
    fi
else
    skip "the routes with curl and jq (missing)"
fi

# Supervision went on through all of it.
if ctl status 2>/dev/null | grep -q "^web  *ready "; then
    pass "web is still ready"
else
    fail "web: $(ctl status 2>&1)"
fi

kill -TERM "$DAEMON"
wait "$DAEMON"
rc=$?
DAEMON=
if [ "$rc" -eq 0 ]; then
    pass "custosd stopped on SIGTERM, exit 0"
else
    fail "custosd exit $rc after SIGTERM: $(tail -n 5 "$T/log")"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed; custosd's log:"
    cat "$T/log"
    exit 1
fi
echo "all passed"
exit 0
