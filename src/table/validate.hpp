// The one check of a Table (include/custos/table.hpp), and the pieces of it
// the plan and the probe engine reuse: name rules, executable lookup,
// owner resolution, composite expansion.
//
// Every check reports and goes on, so one run lists every problem; nothing
// here starts or changes anything. Reads files (PATH entries, /etc/passwd,
// /etc/group): init time only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>
#include <custos/table.hpp>

namespace custos::tbl {

inline constexpr std::uint32_t no_index = UINT32_MAX;

struct options {
    // Look executables up (PATH for bare names) and check they are
    // executable files. Off only in tests of the pure logic.
    bool check_executables = true;
    // Resolve users, groups and file owners (table/users.hpp: the files, not
    // NSS), from these files; tests point them at files of their own.
    bool resolve_users = true;
    const char* passwd_path = "/etc/passwd";
    const char* group_path = "/etc/group";
    // Room the check's walks (dependency cycles, composite probes) use
    // instead of allocating: at least scratch_bytes() for the table's
    // counts, or it allocates (init) as before. A reload gives it.
    std::span<std::byte> scratch;
};

// What options::scratch must hold for a table of these counts.
constexpr std::size_t scratch_bytes(std::size_t services, std::size_t probes) noexcept {
    return 9 * services + probes + 1 + 8;
}

// Counts problems and hands each to the sink as a TableProblem.
class reporter {
public:
    reporter(const Table& t, TableProblemSink* sink) noexcept : table_(t), sink_(sink) {}

    void service(std::uint32_t i, ServiceField f, const Error& e) noexcept {
        report(TableKind::service, i, static_cast<std::uint8_t>(f), e);
    }
    void service(std::uint32_t i, ServiceField f, Reason r, int err, std::string_view subject,
                 const char* resolution = nullptr) noexcept {
        service(i, f, make(r, err, subject, resolution));
    }
    void probe(std::uint32_t i, ProbeField f, const Error& e) noexcept {
        report(TableKind::probe, i, static_cast<std::uint8_t>(f), e);
    }
    void probe(std::uint32_t i, ProbeField f, Reason r, int err, std::string_view subject,
               const char* resolution = nullptr) noexcept {
        probe(i, f, make(r, err, subject, resolution));
    }
    void monitor(std::uint32_t i, MonitorField f, const Error& e) noexcept {
        report(TableKind::monitor, i, static_cast<std::uint8_t>(f), e);
    }
    void monitor(std::uint32_t i, MonitorField f, Reason r, int err, std::string_view subject,
                 const char* resolution = nullptr) noexcept {
        monitor(i, f, make(r, err, subject, resolution));
    }
    void watchdog(WatchdogField f, const Error& e) noexcept {
        report(TableKind::watchdog, 0, static_cast<std::uint8_t>(f), e);
    }
    void watchdog(WatchdogField f, Reason r, int err, std::string_view subject,
                  const char* resolution = nullptr) noexcept {
        watchdog(f, make(r, err, subject, resolution));
    }
    void prune(std::uint32_t i, PruneField f, Reason r, int err, std::string_view subject,
               const char* resolution = nullptr) noexcept {
        report(TableKind::prune, i, static_cast<std::uint8_t>(f),
               make(r, err, subject, resolution));
    }
    std::uint32_t count() const noexcept { return count_; }

private:
    void report(TableKind kind, std::uint32_t i, std::uint8_t field, const Error& e) noexcept;
    static Error make(Reason r, int err, std::string_view subject, const char* resolution) noexcept;

    const Table& table_;
    TableProblemSink* sink_;
    std::uint32_t count_ = 0;
};

// Checks the whole table (see validate_table() in table.hpp); returns the
// number of problems.
std::uint32_t validate(const Table& t, const options& opt, TableProblemSink* sink) noexcept;

// The parts, for validate(): services (with the names they give of
// probes), then probes, then monitors.
void validate_services(const Table& t, const options& opt, reporter& rep) noexcept;
void validate_probes(const Table& t, const options& opt, reporter& rep) noexcept;
void validate_monitors(const Table& t, reporter& rep) noexcept;
// The watchdog's settings (what ports/ knows, the board names, is checked
// by the runtime when it opens the watchdog).
void validate_watchdog(const Table& t, reporter& rep) noexcept;
// The prune jobs (table/prunes.cpp): the spec's own rules, checked here
// because this layer sits below src/prune/ (which checks them again).
void validate_prunes(const Table& t, reporter& rep) noexcept;

// Most prune jobs a table may hold (each is a workspace and a timer).
inline constexpr std::uint32_t prunes_limit = 64;
// The most files one job may scan (its workspace is ~300 bytes a file).
inline constexpr std::uint32_t max_prune_files = 65536;
// The shortest prune interval.
inline constexpr Duration min_prune_interval = std::chrono::seconds(1);

// The shortest watchdog feed interval and the longest maintenance hold.
inline constexpr Duration min_watchdog_interval = std::chrono::milliseconds(100);
inline constexpr Duration max_watchdog_hold = std::chrono::hours(24);

// Most monitors a table may hold, whatever max_monitors says: each is a
// thread, and the monitors' mailbox to the reactor is sized for them.
inline constexpr std::uint32_t monitors_limit = 64;
// The shortest wedge deadline: its checks run at a quarter of it.
inline constexpr Duration min_monitor_deadline = std::chrono::milliseconds(100);
// A monitor thread's stack: 0 is the default; otherwise within these.
inline constexpr std::size_t min_monitor_stack = 64 * 1024;
inline constexpr std::size_t max_monitor_stack = 64 * 1024 * 1024;

// Whether `n` is a valid service or probe name: 1-31 characters from
// [A-Za-z0-9._-].
bool name_valid(std::string_view n) noexcept;

// Finds the executable for argv[0]: itself when it contains '/', else the
// first PATH entry holding an executable file of that name. Writes the path
// into `out` (NUL-terminated). Errors: ExecutableMissing (errno ENOENT,
// EACCES, ENAMETOOLONG...).
Result<void> resolve_executable(std::string_view argv0, char* out, std::size_t out_len) noexcept;

// A file probe's owner: -1 for a part not checked.
struct owner_ids {
    long uid = -1;
    long gid = -1;
};

// Parses and resolves "user", "user:group", ":group" (names or numbers).
// Errors: InvalidArgument (empty parts, too long), UserUnknown,
// GroupUnknown.
Result<owner_ids> resolve_owner(std::string_view owner, const char* passwd_path = "/etc/passwd",
                                const char* group_path = "/etc/group") noexcept;

// Check instances the probes need: one per probe, plus one per composite
// member, recursively (a member reached through two composites counts
// twice). Saturates at UINT32_MAX; a cycle counts as UINT32_MAX.
std::uint32_t count_checks(std::span<const ProbeSpec> probes,
                           std::span<std::byte> scratch = {}) noexcept;

// Index of the entry called `name` in a span of specs, or no_index. Init
// time: after it, everything goes by index (table/plan.hpp).
template <class Spec>
std::uint32_t find_named(std::span<const Spec> specs, std::string_view name) noexcept {
    for (std::uint32_t i = 0; i < specs.size(); ++i) {
        if (specs[i].name == name) {
            return i;
        }
    }
    return no_index;
}
std::uint32_t find_service(std::span<const ServiceSpec> services, std::string_view name) noexcept;
std::uint32_t find_probe(std::span<const ProbeSpec> probes, std::string_view name) noexcept;

} // namespace custos::tbl
