// custos::Table: everything an appliance declares to custos, as plain data,
// and the one check it goes through before anything starts.
//
// A Table is the runtime settings and the spans of services and probes (the
// kinds to come, monitors, the watchdog, the control plane, the log and the
// pruners, get their spans here too). It can be constexpr data in the
// appliance daemon or built from a config file (custosd does); its storage
// need only last until Runtime::init() returns.
//
// validate_table() checks all of it and reports every problem, each tied to
// its kind, its entry (index and name) and the field at fault, so a config
// reader maps it to FILE:LINE and a C++ user gets the same words.
// Runtime::init() runs the same check and fails with the first problem.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <custos/control.hpp>
#include <custos/duration.hpp>
#include <custos/error.hpp>
#include <custos/log.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/prune.hpp>
#include <custos/service.hpp>
#include <custos/watchdog.hpp>

namespace custos {

// What the keepalive upward (systemd's WATCHDOG=1) waits for.
enum class KeepaliveGate : std::uint8_t {
    none,   // sent while the loop turns: guards against a frozen daemon
    health, // withheld while health is `failed`: systemd restarts the whole daemon
};

struct RuntimeConfig {
    // Capacity: services the table may hold.
    std::uint32_t max_services = 64;
    // Capacity: probes the table may hold, and check instances in all (each
    // probe is one; a composite adds one per member, recursively).
    std::uint32_t max_probes = 64;
    std::uint32_t max_probe_checks = 256;
    // Capacity: monitors the table may hold (each is a thread).
    std::uint32_t max_monitors = 16;
    // Service slots init lays out (0: exactly the table's services). A
    // reload (Runtime::reload) can add services only into slots left over,
    // and a removed service's slot is free again once it has stopped. Each
    // slot costs its supervision record, its status and its exec data
    // (see README: reload).
    std::uint32_t service_slots = 0;
    // Probe slots, the same for probes (0: exactly the table's probes). A
    // reload's checks are laid out beside the running ones in a second
    // block as big as the first, with room for the spare slots' checks.
    std::uint32_t probe_slots = 0;
    // Total time for stopping everything; shared so that one slow service
    // cannot use up the others' time.
    Duration stop_timeout = std::chrono::seconds(30);
    // Total time for the monitors to return at the stop (before the
    // services stop), shared in reverse table order: each is given the
    // time left divided by the monitors left.
    Duration monitor_stop_timeout = std::chrono::seconds(10);
    // Health stays `starting` at most this long after start() (health.hpp).
    Duration boot_grace = std::chrono::minutes(2);
    // Readiness upward, s6 style: a descriptor custos writes one newline to
    // and closes once the start has settled and every critical service is
    // ready (-1: none). systemd's NOTIFY_SOCKET, when set in the
    // environment, is used without configuration. custos takes the
    // descriptor over when init() succeeds; an init() that fails leaves it
    // open, so that the caller may try again with it.
    int notify_fd = -1;
    KeepaliveGate keepalive_gate = KeepaliveGate::none;
    // Directory of the notify sockets: each service that uses
    // ReadyMode::notify or a watchdog gets its own, DIR/NAME, as its
    // NOTIFY_SOCKET (so what arrives there is about that service, even from
    // a helper that has already exited). Created (0755) if missing; its
    // parent must exist. DIR/.lock keeps a second instance off it. "@NAME"
    // gives abstract sockets @NAME/SERVICE instead (no files, no lock).
    // Opened and locked whenever set, as the instance's own directory.
    // Empty while a service uses notify or a watchdog: init() picks abstract
    // sockets "@custos-PID-XXXXXXXX/SERVICE" (unique to this runtime, no
    // files, reachable by services that run as other users; who may speak
    // for a service is decided by the sender's credentials). Clients that
    // cannot reach abstract names (ones that pass sizeof(sockaddr_un) to
    // sendto) need a path: set one. custosd sets one under /run/custos/.
    // The directory, when a path, should be reachable (search permission)
    // by the services' users: custos creates it 0755 whatever the umask,
    // and each socket in it is writable by all.
    std::string_view notify_dir;
    // Where services with runtime_dir get theirs, ROOT/NAME. Created (0755)
    // if missing; its parent must exist. Required when a service asks for
    // a runtime directory (init fails with RuntimeDirUnavailable without
    // it). Give each instance its own: what is in ROOT/NAME at init is
    // taken for a previous run's and removed. custosd's default is
    // /run/custos/STEM-HASH/services.
    std::string_view runtime_dir_root;
    // Where each service (and each exec probe run) gets a cgroup of its own,
    // so that a stop, a restart or a crashed custos reaches every process it
    // started, setsid() children included:
    //   ""      auto: a "custos" cgroup under custos's own on the cgroup2
    //           mount; where there is none or it cannot be created (no
    //           cgroup2, not root, not delegated), process groups instead
    //           (backend_reason() says which);
    //   "off"   process groups only;
    //   "/path" an absolute directory on cgroup2 (created if missing): there,
    //           or init fails with CgroupUnavailable.
    std::string_view cgroup;
    // Without cgroups: a file where each service's process is recorded
    // (pid and start time), so that the next start kills what a SIGKILLed
    // custos left running (its process group and session). "" = none.
    // Also locked: a second instance using it is refused.
    std::string_view pid_record;
    // Watch SIGTERM and SIGINT (either stops the runtime in order), keep
    // SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM from killing the process, and
    // ignore SIGPIPE: see "Signals" above.
    bool handle_signals = true;
    // Seed for backoff jitter; 0 picks one from the clock.
    std::uint64_t seed = 0;
    // Reap children custos did not start. When true, init() makes the
    // process a child subreaper (PR_SET_CHILD_SUBREAPER): processes a
    // service orphans (daemons, grandchildren) are re-parented to it and the
    // SIGCHLD drain reaps every exited child, counted in orphans_reaped, and
    // MAINPID= can be followed to a re-parented daemon. Right for a process
    // that exists to supervise (custosd sets it). When false (the default),
    // custos waits only for the processes it started (services' processes,
    // a MAINPID= it follows, exec-probe runs), each by pid: the embedding
    // program's own children stay its own to wait for, and orphans go to
    // init (or the nearest subreaper) as they would without custos.
    bool reap_orphans = false;
};

struct Table {
    RuntimeConfig runtime;
    std::span<const ServiceSpec> services;
    std::span<const ProbeSpec> probes;
    std::span<const MonitorSpec> monitors;
    // The hardware watchdog (watchdog.hpp); device none: no watchdog.
    WatchdogConfig watchdog;
    // The control plane (control.hpp); socket empty: none.
    ControlConfig control;
    // The event log and captured output (log.hpp); dir empty: RAM only.
    LogConfig log;
    // Directories kept within their budgets by the retention pruner
    // (prune.hpp), each on its own jittered timer.
    std::span<const PruneSpec> prunes;
};

// What a problem is about.
enum class TableKind : std::uint8_t {
    runtime, // a RuntimeConfig setting
    service,
    probe,
    monitor,
    watchdog, // the WatchdogConfig
    prune,    // a PruneSpec (Table::prunes)
};

// The ServiceSpec field a problem is about.
enum class ServiceField : std::uint8_t {
    section, // the service as a whole
    name,
    argv,
    env,
    cwd,
    user,
    group,
    restart,
    backoff_initial,
    backoff_max,
    backoff_multiplier,
    backoff_jitter,
    stable_after,
    max_restarts,
    intensity, // intensity_restarts / intensity_window (restart_limit = N/T)
    start_delay,
    depends_on,
    ready,
    ready_timeout,
    watchdog,
    stop_signal,
    stop_timeout,
    liveness,
    on_dependency_down,
    channel,
    runtime_dir,
    output,
};

inline constexpr std::size_t service_field_count = 27;

// The ProbeSpec field a problem is about.
enum class ProbeField : std::uint8_t {
    section, // the probe as a whole (capacity, no kind given)
    name,
    target, // the kind's: target, argv or members
    expect_status,
    owner,
    mode,
    writable,
    timeout,
    startup_initial,
    startup_max,
    startup_multiplier,
    startup_tries,
    interval,
    success_threshold,
    failure_threshold,
    reason,
    resolution,
    grace,
};

inline constexpr std::size_t probe_field_count = 18;

// The MonitorSpec field a problem is about.
enum class MonitorField : std::uint8_t {
    section, // the monitor as a whole (capacity)
    name,
    run,
    backoff_initial,
    backoff_max,
    backoff_multiplier,
    backoff_jitter,
    stable_after,
    degraded_every,
    heartbeat_interval,
    deadline,
    depends_on,
    stack_size,
};

inline constexpr std::size_t monitor_field_count = 13;

// The WatchdogConfig field a problem is about.
enum class WatchdogField : std::uint8_t {
    section, // the watchdog as a whole (it could not be opened or set up)
    device,
    board,
    path,
    timeout,
    interval,
    pretimeout,
    magic_close,
    max_hold,
    state_file,
    safe_mode_boots,
    safe_mode_window,
    gpio_chip,
    gpio_line,
    gpio_enable_line,
    led,
};

inline constexpr std::size_t watchdog_field_count = 16;

// The PruneSpec field a problem is about.
enum class PruneField : std::uint8_t {
    section, // the job as a whole (too many jobs)
    name,
    dir,
    glob,
    order,
    time_pattern,
    seq_prefix,
    max_age,
    keep_newest,
    max_total_bytes,
    min_free, // min_free_bytes / min_free_percent
    combine,
    max_files,
    interval,
};

inline constexpr std::size_t prune_field_count = 14;

// Stable lower-case names: "depends_on", "expect_status".
std::string_view field_name(ServiceField f) noexcept;
std::string_view field_name(ProbeField f) noexcept;
std::string_view field_name(MonitorField f) noexcept;
std::string_view field_name(WatchdogField f) noexcept;
std::string_view field_name(PruneField f) noexcept;

struct TableProblem {
    TableKind kind = TableKind::service;
    // The entry in its span; UINT32_MAX for a problem of the whole span
    // (more services than max_services).
    std::uint32_t index = UINT32_MAX;
    std::string_view name; // the entry's name as given; empty for the whole span
    // ServiceField, ProbeField, MonitorField, WatchdogField or PruneField, by kind.
    std::uint8_t field = 0;
    // The error: reason, errno, subject and the operator's resolution.
    Error error;

    ServiceField service_field() const noexcept { return static_cast<ServiceField>(field); }
    ProbeField probe_field() const noexcept { return static_cast<ProbeField>(field); }
    MonitorField monitor_field() const noexcept { return static_cast<MonitorField>(field); }
    WatchdogField watchdog_field() const noexcept { return static_cast<WatchdogField>(field); }
    PruneField prune_field() const noexcept { return static_cast<PruneField>(field); }
};

class TableProblemSink {
public:
    virtual void report(const TableProblem& p) noexcept = 0;

protected:
    ~TableProblemSink() = default;
};

// Checks the whole table and reports every problem to `sink` (may be null),
// services first, then probes, each in table order. Returns how many there
// were: 0 means Runtime::init() will accept the table (resources aside).
// Checks: names well-formed ([A-Za-z0-9._-], 1-31) and unique among
// services and probes; dependencies, readiness and liveness probes and
// composite members known and acyclic (the subject spells the cycle, "a ->
// b -> a"); values in range; capacities; executables present and executable
// (PATH for bare names); users, groups and file owners known (from
// /etc/passwd and /etc/group, never NSS); probe targets well-formed;
// prune jobs (names like services', unique among jobs; dir absolute; a
// glob; a time_pattern for order name_time; limits in range).
// Reads files (PATH, passwd, group): init time only.
std::uint32_t validate_table(const Table& table, TableProblemSink* sink) noexcept;

} // namespace custos
