#!/bin/sh
# The event log against a live custosd, as an operator reads it:
# `custosctl events` (the boot record, service transitions; --json lines
# jq reads; -f prints what happens after it started), GET /events with
# curl (since/limit, ?follow with nothing new, bad queries: 400), the seq
# going on across a custosd restart on the same [log] dir, the record of
# how the previous run ended (SIGTERM: orderly; SIGKILL: without its stop
# record), GET /events and `custosctl events --since 1` replaying from the
# files what a 4 KiB RAM ring no longer holds (X-Custos-Next, X-Custos-Lost
# after the oldest file is deleted), and custosd --check with a [log]
# section (good, and bad values at FILE:LINE).
# Parts whose tool is missing (curl, jq) are reported as skipped; the
# whole test exits 77 when the forced backend is not available.
#
#   sh tests/test_events.sh [BUILD_DIR]     by hand, from the source tree
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

scratch cev
# custosd's own output ($T/log is its [log] dir), for start_daemon.
DAEMON_LOG=$T/log.txt
FOLLOWER=
# shellcheck disable=SC2317 # invoked by cleanup
cleanup_more() {
    if [ -n "$FOLLOWER" ]; then
        kill -KILL "$FOLLOWER" 2>/dev/null
    fi
}

# get QUERY: GET /events?QUERY; the body in $T/body, the status printed.
get() {
    curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$S" "http://custos/events?$1"
}

cat >"$T/c.ini" <<EOF
[custos]
stop_timeout = 5s

[control]
socket = $S

[log]
dir = $T/log
max_file_bytes = 64K
max_files = 4
sync_interval = 1s

[service:web]
exec = $H sleep
EOF

# stop_daemon: SIGTERM, and its exit within 10 s.
stop_daemon() {
    kill -TERM "$DAEMON"
    n=0
    while kill -0 "$DAEMON" 2>/dev/null; do
        n=$((n + 1))
        if [ "$n" -gt 100 ]; then
            fail "custosd still runs 10 s after SIGTERM"
            kill -KILL "$DAEMON"
            break
        fi
        sleep 0.1
    done
    wait "$DAEMON" 2>/dev/null
    DAEMON=
}

# --- custosd --check with a [log] section ---
if $WRAP "$CUSTOSD" --config "$T/c.ini" --check >"$T/out" 2>"$T/err"; then
    pass "--check accepts a [log] section"
else
    fail "--check refuses a good [log] section: $(cat "$T/err")"
fi
# check_bad KEY_LINE WHAT: a [log] section whose line 2 is KEY_LINE is
# refused (exit 2) at FILE:2.
check_bad() {
    printf '[log]\n%s\n' "$1" >"$T/bad.ini"
    $WRAP "$CUSTOSD" --config "$T/bad.ini" --check >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -qF "$T/bad.ini:2" "$T/err"; then
        pass "--check refuses $2 at FILE:LINE"
    else
        fail "--check with '$1': exit $rc, stderr: $(cat "$T/err")"
    fi
}
check_bad "dir =" "an empty dir"
check_bad "max_file_bytes = 100" "max_file_bytes below 4096"
check_bad "max_file_bytes = 12Q" "a size with a bad unit"
check_bad "max_files = 0" "max_files 0"
check_bad "ring_bytes = lots" "a ring_bytes that is no size"
check_bad "sync_interval = 10ms" "a sync_interval under 100ms"
check_bad "fold_window = soon" "a fold_window that is no duration"
check_bad "clock = sometimes" "an unknown clock"
check_bad "frobnicate = 1" "an unknown key"

# --- a live custosd ---
start_daemon
pass "custosd serves its control socket"
# web ready: its transition is in the log.
n=0
while ! ctl events 2>/dev/null | grep -q "web starting -> ready"; do
    n=$((n + 1))
    if [ "$n" -gt 100 ]; then
        break
    fi
    sleep 0.1
done

ctl events >"$T/ev.txt" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && head -n 1 "$T/ev.txt" | grep -q "^#1 .*RuntimeStarted"; then
    pass "custosctl events: the boot record first"
else
    fail "custosctl events: exit $rc, first line: $(head -n 1 "$T/ev.txt") $(cat "$T/err")"
fi
if grep -q "service web stopped -> starting" "$T/ev.txt" &&
    grep -q "service web starting -> ready" "$T/ev.txt"; then
    pass "custosctl events: the service's transitions"
else
    fail "custosctl events: no transitions of web in: $(cat "$T/ev.txt")"
fi
ctl events --since 2 >"$T/ev2.txt" 2>&1
if head -n 1 "$T/ev2.txt" | grep -q "^#2 "; then
    pass "custosctl events --since 2 begins at #2"
else
    fail "custosctl events --since 2: $(head -n 1 "$T/ev2.txt")"
fi
ctl events --since x2 >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ]; then
    pass "custosctl events --since x2: usage error (exit 2)"
else
    fail "custosctl events --since x2: exit $rc"
fi

if have jq; then
    ctl events --json >"$T/ev.json" 2>"$T/err"
    lines=$(wc -l <"$T/ev.json")
    parsed=$(jq -c . "$T/ev.json" 2>"$T/jqerr" | wc -l)
    if [ "$lines" -gt 2 ] && [ "$parsed" -eq "$lines" ]; then
        pass "custosctl events --json: $lines lines, each parsed by jq"
    else
        fail "custosctl events --json: $lines lines, jq read $parsed: $(cat "$T/jqerr")"
    fi
    if [ "$(head -n 1 "$T/ev.json" | jq -r '.seq, .reason, .kind' | tr '\n' ' ')" = "1 RuntimeStarted log " ]; then
        pass "the boot record as JSON: seq 1, RuntimeStarted, kind log"
    else
        fail "the first JSON record: $(head -n 1 "$T/ev.json")"
    fi
else
    skip "jq not installed: custosctl events --json not parsed"
fi

# --- GET /events with curl ---
if have curl; then
    code=$(get "since=2&limit=2")
    count=$(wc -l <"$T/body")
    if [ "$code" = 200 ] && [ "$count" -eq 2 ]; then
        pass "GET /events?since=2&limit=2: 200 and 2 records"
    else
        fail "GET /events?since=2&limit=2: $code, $count lines: $(cat "$T/body")"
    fi
    if have jq; then
        if [ "$(jq -r .seq "$T/body" | tr '\n' ' ')" = "2 3 " ]; then
            pass "... records 2 and 3"
        else
            fail "since=2&limit=2 gave seqs $(jq -r .seq "$T/body" | tr '\n' ' ')"
        fi
    fi
    ctype=$(curl -s -o /dev/null -w '%{content_type}' --unix-socket "$S" \
        "http://custos/events?limit=1&format=text")
    case $ctype in
    text/plain*) pass "format=text is text/plain" ;;
    *) fail "format=text: Content-Type $ctype" ;;
    esac
    for q in "since=abc" "since=" "since=-1" "since=99999999999999999999" "limit=0" \
        "limit=1001" "limit=x" "format=xml" "follow=soon"; do
        code=$(get "$q")
        if [ "$code" = 400 ]; then
            pass "GET /events?$q: 400"
        else
            fail "GET /events?$q: $code, expected 400: $(cat "$T/body")"
        fi
    done
    # Nothing new: ?follow=1s answers 200 and no records after about 1 s.
    next=$(($(tail -n 1 "$T/ev.txt" | sed 's/^#\([0-9]*\) .*/\1/') + 100))
    t0=$(now_ms)
    code=$(get "since=$next&follow=1s")
    took=$(($(now_ms) - t0))
    size=$(wc -c <"$T/body")
    if [ "$code" = 200 ] && [ "$size" -eq 0 ] && [ "$took" -ge 900 ] && [ "$took" -lt 3000 ]; then
        pass "?follow=1s with nothing new: 200, empty, after $took ms"
    else
        fail "?follow=1s with nothing new: $code, $size bytes, after $took ms"
    fi
else
    skip "curl not installed: GET /events not checked with it"
fi

# --- custosctl events -f: what happens after it started ---
last=$(ctl events | tail -n 1 | sed 's/^#\([0-9]*\) .*/\1/')
ctl events -f >"$T/follow.txt" 2>&1 &
FOLLOWER=$!
# Caught up (its first page printed) before the restart.
wait_for "$T/follow.txt" "#$last " 5 || fail "events -f printed nothing in 5 s"
ctl restart web >/dev/null 2>&1
if wait_for "$T/follow.txt" "web stopping -> stopped" 5; then
    pass "custosctl events -f: the restart's transitions within 5 s"
else
    fail "custosctl events -f: no restart within 5 s: $(cat "$T/follow.txt")"
fi
kill -TERM "$FOLLOWER" 2>/dev/null
wait "$FOLLOWER" 2>/dev/null
FOLLOWER=

# --- the seq goes on across a restart of custosd on the same dir ---
last=$(ctl events | tail -n 1 | sed 's/^#\([0-9]*\) .*/\1/')
stop_daemon
start_daemon
first=$(ctl events | grep RuntimeStarted | tail -n 1 | sed 's/^#\([0-9]*\) .*/\1/')
if [ -n "$first" ] && [ -n "$last" ] && [ "$first" -gt "$last" ]; then
    pass "the seq goes on across a restart: the new boot record is #$first (last was #$last)"
else
    fail "after a restart the boot record is #$first, the last before #$last"
fi
if have jq; then
    # Every record on disk once, in seq order, both runs.
    seqs=$(cat "$T"/log/events-*.jsonl | jq -r .seq)
    if [ "$(printf '%s\n' "$seqs" | sort -n -c 2>&1)" = "" ] &&
        [ "$(printf '%s\n' "$seqs" | uniq -d)" = "" ] &&
        [ "$(printf '%s\n' "$seqs" | head -n 1)" = 1 ]; then
        pass "the files: seq 1 on, each once, in order ($(printf '%s\n' "$seqs" | wc -l) records)"
    else
        fail "the files' seqs: $(printf '%s\n' "$seqs" | tr '\n' ' ')"
    fi
    boots=$(cat "$T"/log/events-*.jsonl | jq -r 'select(.reason == "RuntimeStarted") | .seq' |
        wc -l)
    if [ "$boots" -eq 2 ]; then
        pass "two boot records in the files, one a run"
    else
        fail "$boots boot records in the files after two runs"
    fi
fi

# --- how the previous run ended, without a watchdog ---
if have jq; then
    # The first run ended with SIGTERM: its stop record last, and this run's
    # record says so, naming that record's seq.
    stop_seq=$(cat "$T"/log/events-*.jsonl | jq -r 'select(.reason == "RuntimeStop" and
        .kind == "log") | .seq' | tail -n 1)
    ctl events --json >"$T/ev.json" 2>"$T/err"
    orderly=$(jq -r 'select(.reason == "PreviousBootOrderly") | .fields.prev_seq' "$T/ev.json")
    if [ -n "$stop_seq" ] && [ "$orderly" = "$stop_seq" ]; then
        pass "after SIGTERM: PreviousBootOrderly names the stop record #$stop_seq"
    else
        fail "after SIGTERM: stop record #$stop_seq, PreviousBootOrderly: '$orderly' in $(cat "$T/ev.json")"
    fi
    # SIGKILL: no stop record; the next run says so, with the last seq.
    kill -KILL "$DAEMON"
    wait "$DAEMON" 2>/dev/null
    DAEMON=
    # The files' names sort by seq (zero-padded): the last line of them all.
    last_seq=$(cat "$T"/log/events-*.jsonl | tail -n 1 | jq -r .seq)
    start_daemon
    ctl events --json >"$T/ev.json" 2>"$T/err"
    unclean=$(jq -r 'select(.reason == "PreviousBootRestarted") |
        "\(.fields.prev_seq) \(.fields.rebooted)"' "$T/ev.json")
    if [ "$unclean" = "$last_seq no" ] &&
        jq -r 'select(.reason == "PreviousBootRestarted") | .message' "$T/ev.json" |
        grep -q "ended without its stop record; last record seq $last_seq"; then
        pass "after SIGKILL: PreviousBootRestarted, last record #$last_seq, same boot"
    else
        fail "after SIGKILL (last #$last_seq): '$unclean' in $(cat "$T/ev.json")"
    fi
else
    skip "jq not installed: the previous run's record not checked"
fi
stop_daemon

# --- replay from the files: a 4 KiB RAM ring, 4 KiB files, no folding ---
cat >"$T/r.ini" <<EOF
[custos]
stop_timeout = 5s

[control]
socket = $S

[log]
dir = $T/rlog
max_file_bytes = 4K
max_files = 64
ring_bytes = 4096
fold_window = 0s
sync_interval = 1s

[service:web]
exec = $H sleep
EOF
start_daemon "$T/r.ini"
i=0
while [ "$i" -lt 12 ]; do
    ctl restart web >/dev/null 2>&1 || fail "custosctl restart web (replay)"
    i=$((i + 1))
done
# Every record on disk (the sync interval is 1 s; the restarts are done).
sleep 1.5
disk=$(cat "$T"/rlog/events-*.jsonl | wc -c)
ondisk=$(cat "$T"/rlog/events-*.jsonl | wc -l)
nfiles=$(find "$T/rlog" -name 'events-*.jsonl' | wc -l)
if [ "$disk" -gt 8192 ] && [ "$nfiles" -gt 2 ]; then
    pass "replay: $ondisk records, $disk bytes in $nfiles files: more than the 4 KiB ring holds"
else
    fail "replay: only $disk bytes in $nfiles files; the ring still holds them all"
fi
ctl events --since 1 >"$T/all.txt" 2>"$T/err"
rc=$?
count=$(wc -l <"$T/all.txt")
gaps=$(sed 's/^#\([0-9]*\) .*/\1/' "$T/all.txt" |
    awk 'NR > 1 && $1 != p + 1 { print p "->" $1 } { p = $1 }')
if [ "$rc" -eq 0 ] && head -n 1 "$T/all.txt" | grep -q "^#1 .*RuntimeStarted" &&
    [ "$count" -ge "$ondisk" ] && [ -z "$gaps" ] && [ ! -s "$T/err" ]; then
    pass "custosctl events --since 1: #1 from the files, then $count records without a gap"
else
    fail "custosctl events --since 1: exit $rc, $count lines (disk $ondisk), gaps '$gaps'," \
        "first: $(head -n 1 "$T/all.txt") $(cat "$T/err")"
fi
if have curl; then
    curl -s -D "$T/head" -o "$T/body" --unix-socket "$S" "http://custos/events?since=1&limit=2"
    if grep -q '^{"seq":1,' "$T/body" && [ "$(wc -l <"$T/body")" -eq 2 ] &&
        grep -qi '^X-Custos-Next: 3' "$T/head" && grep -qi '^X-Custos-Lost: 0' "$T/head"; then
        pass "GET /events?since=1&limit=2: #1 and #2 from the files, X-Custos-Next: 3, Lost: 0"
    else
        fail "GET /events?since=1&limit=2: $(cat "$T/head" "$T/body")"
    fi
    # A page from the middle of a file, as text.
    code=$(get "since=5&limit=3&format=text")
    if [ "$code" = 200 ] &&
        [ "$(sed 's/^#\([0-9]*\) .*/\1/' "$T/body" | tr '\n' ' ')" = "5 6 7 " ]; then
        pass "GET /events?since=5&limit=3&format=text: #5 to #7"
    else
        fail "GET /events?since=5&limit=3&format=text: $code $(cat "$T/body")"
    fi
    # The oldest file gone (as rotation deletes it): since=1 begins at the
    # next file's first record and says how many are lost.
    oldest=$(find "$T/rlog" -name 'events-*.jsonl' | sort | head -n 1)
    second=$(find "$T/rlog" -name 'events-*.jsonl' | sort | sed -n 2p)
    first2=$(basename "$second" | sed 's/^events-0*\([0-9]*\)-.*/\1/')
    rm -f "$oldest"
    curl -s -D "$T/head" -o "$T/body" --unix-socket "$S" "http://custos/events?since=1&limit=1"
    if grep -q "^{\"seq\":$first2," "$T/body" &&
        grep -qi "^X-Custos-Lost: $((first2 - 1))" "$T/head"; then
        pass "the oldest file deleted: since=1 gives #$first2 and X-Custos-Lost: $((first2 - 1))"
    else
        fail "the oldest file deleted (next #$first2): $(cat "$T/head" "$T/body")"
    fi
    ctl events --since 1 >"$T/out" 2>"$T/err"
    if grep -q "$((first2 - 1)) records from #1 on are no longer kept" "$T/err" &&
        head -n 1 "$T/out" | grep -q "^#$first2 "; then
        pass "custosctl events --since 1 says what is lost (stderr) and begins at #$first2"
    else
        fail "custosctl events --since 1 after the deletion: $(head -n 1 "$T/out") / $(cat "$T/err")"
    fi
else
    skip "curl not installed: the replay's headers not checked"
fi
stop_daemon

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed; custosd's output:"
    cat "$T/log.txt"
    exit 1
fi
exit 0
