// The control plane's protocol: its configuration, its routes, the names of
// its JSON fields and metrics, and custosctl's exit codes, written down once
// for the server (src/control/), the renderers (src/status/render.*), the
// CLI (src/custosctl/) and the people who script against them.
//
// Transport: HTTP/1.1 over a Unix stream socket (ControlConfig::socket).
// Anyone who can connect may read (the socket file's mode and group decide
// who can); actions (POST, DELETE) are allowed only to uid 0 and to the
// operators (ControlConfig::operators), decided on the peer's credentials
// (SO_PEERCRED) and never on anything the client sends. Every action,
// allowed or refused, is an event (kind "control") naming the peer's pid,
// uid and command, the action and the HTTP status it got.
//
// Everything named here is stable: a route, a JSON key, a metric or an exit
// code keeps its meaning once released; new ones are added, none renamed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/duration.hpp>
#include <custos/error.hpp>

namespace custos {

struct ControlConfig {
    // The socket's path; empty: no control plane. custosd's default is
    // /run/custos/control.sock. A file already there is replaced only when
    // nothing answers on it (a second custos is refused: ControlSocketInUse).
    std::string_view socket;
    // The socket file's mode and group (name or number; empty: custos's).
    std::uint32_t mode = 0660;
    std::string_view group;
    // Who may act besides uid 0: user names or uids, and "@group" entries
    // (a group name or gid: the peer's primary group must be it).
    std::span<const std::string_view> operators;
    // Connections served at once; a client beyond them gets 503 and a close
    // (counted, never queued, never an allocation).
    std::uint32_t max_clients = 8;
    // Limits per request: head (request line and headers) and body bytes;
    // beyond them: 431 and 413, then a close.
    std::uint32_t max_head_bytes = 8192;
    std::uint32_t max_body_bytes = 4096;
    // A request head must arrive whole within this (slowloris: 408, close).
    Duration head_timeout = std::chrono::seconds(5);
    // An idle keep-alive connection is closed after this, and after
    // max_requests requests.
    Duration idle_timeout = std::chrono::seconds(30);
    std::uint32_t max_requests = 100;
    // A response must be taken by the client within this (a client that
    // never reads is closed, its slot freed).
    Duration send_timeout = std::chrono::seconds(10);
    // The longest ?wait= an action may ask for.
    Duration max_wait = std::chrono::minutes(5);

    // For scrapers that cannot reach a Unix socket (Prometheus before 3.x,
    // most fleet agents):
    // A read-only TCP listener, "IPv4:PORT" or "[IPv6]:PORT" (a literal
    // address: "127.0.0.1:9101"), serving GET/HEAD /metrics and /health
    // only (anything else: 404); its clients share the connection slots.
    // Empty: none.
    std::string_view metrics_listen;
    // node_exporter's textfile collector: the metrics written to this file
    // every metrics_textfile_interval, whole (PATH.tmp, then a rename), so
    // a reader never sees half of it. Empty: none.
    std::string_view metrics_textfile;
    Duration metrics_textfile_interval = std::chrono::seconds(15);
};

// One operator action through the control plane, allowed or refused
// (Runtime::set_control_hook). Views valid only during the hook.
struct ControlAction {
    std::string_view subject; // the service or probe, or "watchdog"
    std::string_view request; // "POST /services/netd/stop?wait=5s by custosctl"
    int pid = 0;              // the peer's (SO_PEERCRED)
    int uid = -1;
    int http_status = 0;             // what it was answered (202: parked for ?wait)
    Reason reason = Reason::unknown; // ControlAction, or ControlDenied (403)
    std::int64_t at_ns = 0;          // CLOCK_MONOTONIC
};

using ControlHook = void (*)(const ControlAction& a, void* ctx);

// Routes the appliance daemon adds under its own prefix
// (Runtime::add_control_route("netd", ...) serves /netd and /netd/...).
// The handler runs on the reactor thread and must not block; it writes its
// body into the response's fixed buffer. GET and HEAD reach it from anyone
// who can connect; POST, PUT and DELETE only from uid 0 and the operators
// (a refusal is 403 before the handler runs), and each is recorded as an
// action (ControlHook) with the status the handler set.
struct ControlRequest {
    std::string_view method; // "GET", "HEAD", "POST", "PUT", "DELETE"
    std::string_view path;   // "/netd/peers", not decoded
    std::string_view query;  // after '?', not decoded (empty: none)
    std::string_view body;   // at most ControlConfig::max_body_bytes
    int peer_pid = 0;
    int peer_uid = -1;
    bool operator_ = false; // uid 0 or in ControlConfig::operators
};

class ControlResponse {
public:
    ControlResponse(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {}

    int status = 200;
    std::string_view content_type = "application/json";
    // Extra header lines, each ending in CRLF ("X-Custos-Next: 42\r\n");
    // the bytes must stay valid until the handler returns.
    std::string_view headers;

    // Appends `s`; false (nothing written) when it does not fit: the server
    // then answers 500 (ResponseTooLarge) instead of a cut body.
    bool append(std::string_view s) noexcept {
        if (s.size() > cap_ - len_) {
            full_ = true;
            return false;
        }
        for (std::size_t i = 0; i < s.size(); ++i) {
            buf_[len_ + i] = s[i];
        }
        len_ += s.size();
        return true;
    }
    std::size_t size() const noexcept { return len_; }
    std::size_t capacity() const noexcept { return cap_; }
    bool overflowed() const noexcept { return full_; }
    std::string_view body() const noexcept { return {buf_, len_}; }

private:
    char* buf_;
    std::size_t cap_;
    std::size_t len_ = 0;
    bool full_ = false;
};

using ControlHandler = void (*)(const ControlRequest& req, ControlResponse& resp, void* ctx);

// What a reload did (Runtime::reload), by service and by probe.
struct ReloadSummary {
    std::uint32_t added = 0;     // started in a free slot (ReloadAdded)
    std::uint32_t removed = 0;   // stopping; their slots free once stopped (ReloadRemoved)
    std::uint32_t changed = 0;   // stopping to start again with the new definition (ReloadChanged)
    std::uint32_t unchanged = 0; // not touched: process, state and counters kept
    std::uint32_t probes_added = 0;     // checking from their startup phase
    std::uint32_t probes_removed = 0;   // gone
    std::uint32_t probes_changed = 0;   // their startup phase again, the new definition
    std::uint32_t probes_unchanged = 0; // not touched
};

// What a reload found wrong, for the operator: one line per problem
// ("FILE:LINE: message" from custosd), bounded. Lines that do not fit are
// counted in `dropped`.
struct ReloadReport {
    static constexpr std::size_t capacity = 3072;
    char text[capacity] = {}; // lines, each ending in '\n'
    std::uint32_t len = 0;
    std::uint32_t lines = 0;
    std::uint32_t dropped = 0;
    // Appends `line` and a newline (control bytes become '?').
    void add(std::string_view line) noexcept;
};

namespace control {

// --- routes ----------------------------------------------------------------
//
//   GET    /health              200 ok|degraded, 503 starting|failed; text:
//                               one line per check ("[+] netd ready",
//                               "[-] uploader failed: MaxRestartsExhausted");
//                               ?json: the same as JSON
//   GET    /status              everything (JSON): runtime, health, services,
//                               probes, monitors, watchdog, counters
//                               ?format=tsv: the service list custosctl prints
//   GET    /services/NAME       one service (JSON); ?format=text: the detail
//   GET    /probes/NAME         one probe (JSON)
//   GET    /monitors/NAME       one monitor (JSON)
//   GET    /watchdog            the watchdog (JSON)
//   GET    /metrics             Prometheus text format 0.0.4
//   POST   /services/NAME/start|stop|restart[?wait=DURATION]
//                               200 with the service (JSON) once the action
//                               is taken, or with wait once it has settled
//                               (start/restart: ready, or failed; stop:
//                               stopped); 504 when the wait ran out
//   POST   /probes/NAME/check[?wait=DURATION]
//                               the check runs now; with wait, 200 once it
//                               has finished (the probe, JSON)
//   POST   /watchdog/hold?for=DURATION   a maintenance hold
//   DELETE /watchdog/hold                its end
//   POST   /reload              the config read again and applied
//                               (Runtime::reload): 200 {"reloaded": true,
//                               "added": N, "removed": N, "changed": N,
//                               "unchanged": N, "probes": {"added": N,
//                               "removed": N, "changed": N, "unchanged":
//                               N}}; else the error body with
//                               "problems": ["FILE:LINE: ...", ...] and
//                               "problems_dropped": N, status 422
//                               (ReloadInvalid, ReloadUnsupported,
//                               ReloadCapacity), 409 (ReloadBusy) or 501 (no
//                               reload hook: this daemon cannot reload)
//   GET    /prune               the retention pruner's jobs (JSON):
//                               {"prune": [PRUNE_JOB...]}; ?format=text:
//                               two lines a job (custosctl prune)
//   GET    /prune/NAME          one job (PRUNE_JOB); ?format=text
//   POST   /prune/NAME[?dry_run=1][&format=text]
//                               runs the job now (Runtime::prune_now), or
//                               with dry_run only lists what would go: 200
//                               {"name", "dry_run", "files": [{"file",
//                               "bytes", "rules"}...], "files_more": N (those
//                               that did not fit the response), "summary":
//                               SUMMARY}; text: a line per file, "FILE TAB
//                               BYTES TAB RULES" (rules joined by '+'), then
//                               "NAME: deleted|would delete N files (B
//                               bytes); scanned ...". 503 with the run's
//                               reason when it failed (PruneScanFailed,
//                               PruneTooManyFiles). A dry run is an action
//                               too (operators only, recorded): it scans the
//                               directory on the reactor thread and takes
//                               leases on other processes' files.
//
// Errors have a JSON body {"error": REASON, "message": ..., "resolution":
// ...} with these statuses: 400 bad request or bad parameter, 403 not an
// operator, 404 unknown route or name, 405 method not allowed (Allow: given),
// 408 head not received in time, 409 the action is not possible now (a
// probe check while one runs: no; release without a hold), 413 body too
// large, 431 head too large, 503 all connections in use, 504 wait expired.

inline constexpr std::string_view route_health = "/health";
inline constexpr std::string_view route_status = "/status";
inline constexpr std::string_view route_metrics = "/metrics";
inline constexpr std::string_view route_watchdog = "/watchdog";
inline constexpr std::string_view prefix_services = "/services/";
inline constexpr std::string_view prefix_probes = "/probes/";
inline constexpr std::string_view prefix_monitors = "/monitors/";
inline constexpr std::string_view route_watchdog_hold = "/watchdog/hold";
inline constexpr std::string_view route_reload = "/reload";
inline constexpr std::string_view route_prune = "/prune";
inline constexpr std::string_view prefix_prune = "/prune/";

// Prefixes an appliance route cannot take (the built-in routes and those
// reserved for what comes next: events).
inline constexpr std::string_view reserved_components[] = {
    "health",   "status", "metrics", "services", "probes", "monitors",
    "watchdog", "reload", "events",  "custos",   "logs",   "prune"};
// Appliance routes a runtime can hold.
inline constexpr std::size_t max_routes = 8;

inline constexpr std::string_view action_start = "start";
inline constexpr std::string_view action_stop = "stop";
inline constexpr std::string_view action_restart = "restart";
inline constexpr std::string_view action_check = "check";

inline constexpr std::string_view content_json = "application/json";
inline constexpr std::string_view content_text = "text/plain; charset=utf-8";
inline constexpr std::string_view content_tsv = "text/tab-separated-values; charset=utf-8";
// Prometheus 3 fails a scrape whose Content-Type is missing or unknown.
inline constexpr std::string_view content_metrics = "text/plain; version=0.0.4; charset=utf-8";

// --- JSON ------------------------------------------------------------------
//
// Times: "*_ns" keys are CLOCK_MONOTONIC nanoseconds (comparable with each
// other and with "now_ns"); "since", "at" and "*_time" keys are wall-clock
// RFC 3339 UTC strings derived from them (null when the clock is unset or
// the time is 0); "uptime_s", "for_s", "remaining_s" are seconds with three
// decimals. Reasons are their stable ids ("MaxRestartsExhausted"), each with
// "resolution" where an operator can act.
//
// GET /status:
// {
//   "runtime":  {"version", "backend", "backend_reason", "pid", "uptime_s",
//                "boot_id", "previous_boot": {"reset", "reason"} | null,
//                "now_ns", "now"},
//   "health":   {"health", "since", "settled", "critical_ready", "summary",
//                "services", "services_ready", "probes", "probes_ready",
//                "monitors", "monitors_running",
//                "reasons": [{"kind", "name", "critical", "fails", "state",
//                             "reason", "errno", "message", "resolution",
//                             "since"}], "reasons_total"},
//   "services": [SERVICE...], "probes": [PROBE...], "monitors": [MONITOR...],
//   "watchdog": WATCHDOG,
//   "counters": {RuntimeStats' fields by their C++ names, "reactor": {...},
//                "control": {...}}
// }
// SERVICE: {"name", "wanted", "state", "ready", "pid", "since", "uptime_s",
//           "reason", "restarts": {"total", "since_stable", "crash", "probe",
//           "watchdog", "operator", "dependency"},
//           "last_exit": EXIT | null, "backoff_remaining_s" | null,
//           "last_error": {"reason", "errno", "message", "resolution",
//                          "since"} | null,
//           "status_text", "deaths_total", "deaths": [{"at", "reason", EXIT
//           fields}...] (oldest first, at most 16)}
// EXIT:    {"pid", "code", "signal", "signal_name", "core_dumped"}
// PROBE:   {"name", "kind", "state", "phase", "checking", "last_check",
//           "last_success", "last_failure", "next_check_in_s",
//           "consecutive_successes", "consecutive_failures", "checks",
//           "failures", "last_error": {"reason", "errno", "message",
//           "resolution", "since"} | null}
// MONITOR: {"name", "state", "critical", "reason", "since", "uptime_s",
//           "crashes", "runs", "beats", "last_crash" | null, "degraded" |
//           null, "ticks", "tick_failures"}
// WATCHDOG: WatchdogStatus's fields by their C++ names, state and reasons
//           as names.
// PRUNE_JOB: {"name", "dir", "glob", "order" (mtime|name|seq), "combine"
//           (any|all), "interval_s", "max_age_s", "keep_newest",
//           "max_total_bytes", "min_free_bytes", "min_free_percent",
//           "max_files", "runs", "files_deleted", "bytes_deleted",
//           "failures", "last_run_ns" | null, "next_run_in_s" | null,
//           "last_free_floor", "last_error" (a reason) | null, "last":
//           SUMMARY | null (before the first run)}
// SUMMARY: PruneSummary's fields by their C++ names.
//
// Pinned down where the above is silent (src/status/render*.cpp):
//   - Every JSON document ends with a newline. Strings are UTF-8 always: a
//     malformed byte (a STATUS= line cut mid-character) becomes U+FFFD.
//   - A reason that is unknown (a service never started) is null; so are a
//     service's "pid" when none runs, "uptime_s" when no process runs,
//     "last_exit" before the first exit, "backoff_remaining_s" outside
//     backoff; "status_text" is "" when none was sent.
//   - restarts.total is the sum of the five causes (= the TSV's RESTARTS);
//     restarts.since_stable is ServiceStatus::restarts.
//   - EXIT: "code" means something only when "signal" is 0; "signal_name"
//     is kill -l's name with SIG ("SIGKILL", "SIGRTMIN+2"), null when
//     "signal" is 0 or has no name.
//   - PROBE: "last_check", "last_success", "last_failure" are wall times
//     (null: never); "last_duration_s" (added) is the last finished
//     check's, null before one; "next_check_in_s" is null while a check
//     runs or none is scheduled; last_error's "resolution" is the probe's
//     own, else its reason's.
//   - MONITOR: "last_crash" and "degraded" are {"reason", "errno",
//     "message", "resolution", "at"} or null.
//   - "previous_boot" is null when the reset class is unknown; "reset" is
//     the class's name ("starved"). WATCHDOG: "device" is "none", "kernel",
//     "gpio" or "null"; its "*_ns" are numbers, 0 for none; previous.cls is
//     the class's name, previous.wall_ns wall-clock nanoseconds.
//   - counters.reactor and counters.control are null when the server has
//     none to give; control has control_counters' fields by their C++
//     names, "by_code" keyed by the metrics' code labels.
//   - GET /health?json: the "health" object of /status, then "checks":
//     [{"kind", "name", "state", "ok", "reason"}] in the text's order
//     ("reason" null when ok).
//   - GET /health's lines: services by name, probes and monitors after
//     their kind ("[-] probe broker down: ProbeConnectRefused", "[+]
//     monitor poller running"); the verdicts are the health model's: a
//     service is as wanted when ready or stopped, a probe when ready (an
//     unknown one that has not failed yet says HealthStarting), a monitor
//     when running or stopped. The last line is "health: " and the health.
//   - GET /services/NAME?format=text: "NAME: STATE (REASON) since TIME
//     (N s ago)", then indented "key: value" lines (wanted, pid, uptime,
//     restarts by cause, last exit, backoff, status, last error and its
//     resolution, deaths oldest first); texts a service sent are quoted
//     and escaped as JSON strings, so no control byte reaches a terminal.

// --- the TSV custosctl reads (GET /status?format=tsv) ------------------------
//
// One line per service, no header, fields separated by one tab:
//   NAME STATE PID UPTIME_S RESTARTS LAST_EXIT REASON WANTED
// PID 0 and UPTIME_S "-" when not running; RESTARTS the total of every
// cause; LAST_EXIT "-", "exit N" or "signal NAME" (+ " (core)"); REASON the
// last transition's id. Fields never contain tabs or newlines.
// Pinned down: UPTIME_S has three decimals; a signal's NAME is "SIGKILL"
// (its number when it has no name); REASON is "-" before any transition;
// WANTED is "yes" or "no".

// --- metrics (GET /metrics) ------------------------------------------------
//
// Label values come only from configured names and the fixed sets below.
//   custos_build_info{version,backend} 1
//   custos_health{health} 0|1                          one series per Health
//   custos_service_state{service,state} 0|1            one per ServiceState
//   custos_service_up{service}                         1 when running or ready
//   custos_service_ready{service}
//   custos_service_start_time_seconds{service}         wall clock, 0 when down
//   custos_service_restarts_total{service,cause}       one per RestartCause
//   custos_service_deaths_total{service}
//   custos_probe_up{probe}                             1 when ready
//   custos_probe_duration_seconds{probe}               the last check's
//   custos_probe_checks_total{probe}, custos_probe_failures_total{probe}
//   custos_monitor_state{monitor,state} 0|1
//   custos_watchdog_feeds_total, custos_watchdog_state{state} 0|1
//   custos_runtime_*_total                             RuntimeStats' counters
//   custos_reactor_*_total                             the reactor's counters
//   custos_control_requests_total{code}, custos_control_refused_total
//   process_cpu_seconds_total, process_open_fds, process_max_fds,
//   process_virtual_memory_bytes, process_resident_memory_bytes,
//   process_start_time_seconds, process_threads
// Pinned down: custos_runtime_NAME_total for each RuntimeStats field and
// custos_reactor_NAME_total for each reactor counter, NAME the C++ field's;
// besides requests and refused, custos_control_{connections,bad_requests,
// actions,actions_denied,timeouts}_total and the gauges
// custos_control_clients and custos_control_max_clients. The `code` label
// is one of 200 400 403 404 4xx 413 503 5xx (render.hpp's code_label():
// 413 also counts 408 and 431, 4xx the other 4xx, 5xx the other 5xx).
// The reactor's, the control plane's and the process_* families are left
// out when the server has none to give. Times in seconds have three
// decimals, custos_probe_duration_seconds six.

// --- custosctl's exit codes --------------------------------------------------

inline constexpr int exit_ok = 0;           // done; healthy; ready
inline constexpr int exit_failed = 1;       // failed, degraded, or not ready in time
inline constexpr int exit_usage = 2;        // bad command line
inline constexpr int exit_not_running = 3;  // the service (or runtime) is not running
inline constexpr int exit_unknown_name = 4; // no such service, probe or monitor
inline constexpr int exit_denied = 5;       // not an operator (403)
inline constexpr int exit_unreachable = 6;  // custosd not reachable on the socket

// The environment variable custosctl reads the socket's path from (after
// --socket, before the default).
inline constexpr std::string_view env_socket = "CUSTOS_SOCKET";
inline constexpr std::string_view default_socket = "/run/custos/control.sock";

} // namespace control
} // namespace custos
