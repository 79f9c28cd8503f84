// custosd's config file: a small strict INI dialect read into a supervision
// table (RuntimeConfig + ServiceSpec[] + ProbeSpec[]), keeping the line of
// every key so that the validators' (service, ServiceField) and (probe,
// ProbeField) problems print as FILE:LINE.
//
// Why hand-written and not libinih: Debian builds libinih with its defaults,
// so its handler gets no line numbers (INI_HANDLER_LINENO=0), lines are cut at
// 200 bytes (INI_MAX_LINE) and indented lines are continuations. FILE:LINE
// errors and long exec lines would be impossible. This reader is small and,
// like every parser in custos, fuzzed (tests/fuzz/fuzz_config.cpp). Its
// parts: ini.hpp (the syntax below), keys.hpp (the keys of each section
// kind, one table each) and table/values.hpp (the values, shared with
// custosctl).
//
// Syntax, one construct per line:
//   [custos]  [service:NAME]  [probe:NAME]  [watchdog]  [control]
//   [prune:NAME]
//                               sections; each may appear once
//   key = value                 blanks around key and value are trimmed
//   # comment  ; comment        only as the first non-blank character: values
//                               may contain '#'
//   blank lines, CRLF line ends; a UTF-8 byte order mark at the start of the
//   text is skipped
// Messages quote config text with control bytes escaped (\x1b) and cut
// after 48 bytes. Errors: a key outside any section, an unknown section or key, a duplicate
// section or key (env excepted: it repeats), a line without '=', a line over
// max_line_bytes, a NUL byte, a text over max_file_bytes, a bad value.
// [custos] keys: stop_timeout, notify_dir, cgroup, pid_record, max_services, max_probes,
// max_probe_checks, service_slots, probe_slots.
// [service:NAME] keys: exec (required), env (KEY=value; one level of
// matched double or single quotes is taken off, around the value or around
// the whole assignment, as systemd's Environment= does), cwd, user, group, restart,
// backoff_initial, backoff_max, backoff_multiplier, backoff_jitter,
// stable_after, max_restarts, restart_limit, start_delay, depends_on (services
// and probes), ready (started, notify, fd:N or probe:NAME), ready_timeout,
// watchdog, stop_signal, stop_timeout, liveness (a probe's name),
// on_dependency_down (ignore, stop or restart).
// [probe:NAME] keys:
//   exactly one kind key: tcp = HOST:PORT, http = URL, unix = /path,
//     exec = COMMAND (split like a service's exec), file = /path,
//     all = NAME NAME... (members, separated by blanks or commas). None, or
//     two different ones, is a problem (at the header, or at the second).
//   timeout, startup_initial, startup_max, interval (durations);
//   startup_multiplier (like backoff_multiplier); startup_tries,
//   success_threshold, failure_threshold (whole numbers from 1);
//   reason, resolution (free text for the operator);
//   http only: expect_status = 200 204 ... (codes from 100 to 599);
//   file only: exists = yes (existence is always checked: the key is for
//     readability, and "no" is refused), owner = user[:group] or :group,
//     mode = 0755 (octal, at most 7777), writable = yes|no|true|false.
//   A file-only or http-only key in another kind of probe is ConfigBadValue
//   at the key's line.
// [watchdog] keys (WatchdogConfig, watchdog.hpp; at most one section):
//   device = none|kernel|gpio|null (required: a forgotten one is not a
//   silent none); board (a profile name, or auto); path;
//   timeout, pretimeout (whole seconds); interval, max_hold,
//   safe_mode_window (durations); magic_close = profile|yes|no;
//   required = yes|no; state_file; safe_mode_boots (0 to 1000; 0: off);
//   gpio_chip; gpio_line, gpio_enable_line (0 to 511, or -1: none);
//   gpio_active_low = yes|no; led. Paths and ranges are the table check's
//   (custosd maps its WatchdogField problems back with watchdog_line_of()).
// [control] keys (ControlConfig, control.hpp; at most one section):
//   enabled = yes|no (yes; no: no control plane, and socket may not be set);
//   socket = /absolute/path (at most 107 bytes; default
//   /run/custos/control.sock); mode = 0660 (octal, at most 0777); group (a
//   name or gid); operators = NAME|UID|@GROUP|@GID ... (separated by blanks
//   or commas; at most max_operators); max_clients (1 to 1024),
//   max_head_bytes (256 to 1048576), max_body_bytes (1 to 1048576),
//   max_requests (1 to 1000000); head_timeout, idle_timeout, send_timeout
//   (durations above 0), max_wait (a duration). Without a [control]
//   section control() is the defaults with socket = /run/custos/control.sock
//   (custosd serves it when it can: see main.cpp); with enabled = no its
//   socket is empty. Names in group and operators are resolved by custosd
//   (check.cpp), not here.
// [prune:NAME] keys (PruneSpec, prune.hpp; at most max_prune_sections):
//   dir = /absolute/path (required); glob (default *); order =
//   mtime|name|seq (name: a UTC time in the file name, time_pattern; seq:
//   the number after seq_prefix); time_pattern (%Y %m %d, optionally %H %M
//   %S, and literal text); seq_prefix; max_age (a duration; 0 = off);
//   keep_newest (a whole number; 0 = off); max_total_bytes (bytes, with
//   K, M, G or T; 0 = off); min_free = bytes (64M) or a share of the
//   filesystem, N% (0 to 99); combine = any|all; max_files (1 to 65536,
//   default 4096); interval (a duration, 0 = only on demand, else at least
//   1s; default 1h). Ranges, the pattern, names and their uniqueness are
//   the table check's (custosd maps its PruneField problems back with
//   prune_line_of()).
// Names are not checked here beyond being non-empty and unique among the
// sections of their kind: the table check (validate_table(), table.hpp)
// reports bad names, a probe named like a service,
// unknown dependencies, probes and members, cycles and bad targets, and
// custosd maps them back to lines with line_of() and probe_line_of().
//
// Memory: load() and parse() take everything at once with new(std::nothrow):
// one block holding the text (and the path), one arena sized exactly for the
// table by a first, checking pass, and scratch tables of section names freed
// before they return. Every string_view and span in runtime(), services() and
// probes() points into the config's own memory and lives until the next
// load()/parse() or the config's destruction. Nothing here throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/control.hpp>
#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/runtime.hpp>
#include <custos/service.hpp>
#include <custos/table.hpp>
#include <custos/watchdog.hpp>

#include "core/arena.hpp"

namespace custos::cfg {

// One problem found in a config file.
struct problem {
    // 1-based line; 0 when it is about the file as a whole (unreadable, too
    // large, out of memory).
    unsigned line = 0;
    // Reason: ConfigUnreadable (with errno), ConfigSyntax, ConfigUnknownKey,
    // ConfigBadValue, CapacityExceeded (too many sections) or OutOfMemory;
    // the subject is the key, section or path concerned.
    Error error;
    // A sentence for the operator, e.g. "unknown key 'restrat' in
    // [service:netd] (did you mean 'restart'?)". Always NUL-terminated.
    char message[200] = {};
};

// A bounded list of problems, kept in line order. When full, further
// problems are counted in dropped() and not recorded.
class problem_list {
public:
    static constexpr std::size_t capacity = 64;

    // Records a problem at `line` with a printf-style message (truncated to
    // fit problem::message).
    [[gnu::format(printf, 4, 5)]] void add(unsigned line, const Error& error, const char* fmt,
                                           ...) noexcept;

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0 && dropped_ == 0; }
    // Problems found but not recorded because the list was full.
    std::size_t dropped() const noexcept { return dropped_; }
    // Every problem found: size() + dropped().
    std::size_t total() const noexcept { return size_ + dropped_; }
    const problem& operator[](std::size_t i) const noexcept { return items_[i]; }
    const problem* begin() const noexcept { return items_; }
    const problem* end() const noexcept { return items_ + size_; }
    void clear() noexcept {
        size_ = 0;
        dropped_ = 0;
    }

private:
    problem items_[capacity];
    std::size_t size_ = 0;
    std::size_t dropped_ = 0;
};

// The [control] keys, for control_line_of(): the line each one is on.
enum class control_field : std::uint8_t {
    section, // the [control] header
    enabled,
    socket,
    mode,
    group,
    operators,
    max_clients,
    max_head_bytes,
    max_body_bytes,
    head_timeout,
    idle_timeout,
    send_timeout,
    max_requests,
    max_wait,
    metrics_listen,
    metrics_textfile,
    metrics_textfile_interval,
};
inline constexpr std::size_t control_field_count = 17;

// Writes "FILE:LINE: message" (or "FILE: message" for line 0) into buf,
// NUL-terminated and truncated to fit when len > 0. A null or empty `file`
// prints as "config".
void format_problem(const char* file, const problem& p, char* buf, std::size_t len) noexcept;

class config {
public:
    static constexpr std::size_t max_file_bytes = std::size_t{1} << 20;
    // Bytes of one line, its line end excluded.
    static constexpr std::size_t max_line_bytes = 4096;
    // [service:x] sections a file may hold; the same bound as max_services.
    static constexpr std::uint32_t max_service_sections = 4096;
    // [probe:x] sections a file may hold; the same bound as max_probes.
    static constexpr std::uint32_t max_probe_sections = 4096;
    // The most [custos] max_probe_checks may ask for.
    static constexpr std::uint32_t max_probe_checks = 65536;
    // [prune:x] sections a file may hold (tbl::prunes_limit).
    static constexpr std::uint32_t max_prune_sections = 64;
    // Entries [control] operators may list.
    static constexpr std::size_t max_operators = 16;

    config() noexcept { control_.socket = control::default_socket; }
    config(const config&) = delete;
    config& operator=(const config&) = delete;

    // Reads and parses the file at `path`, appending every problem found to
    // `problems`. Returns true when there was none. Problems: ConfigUnreadable
    // with errno at line 0 (open, read; not a regular file, "not a regular
    // file (fifo)": EISDIR for a directory, EINVAL for anything else, never
    // read, so a FIFO cannot block; larger than max_file_bytes: EFBIG),
    // OutOfMemory, and everything parse() reports.
    [[nodiscard]] bool load(const char* path, problem_list& problems) noexcept;

    // Parses `text` (copied: it need not outlive the call), appending every
    // problem found to `problems`, each with its line; after an error it goes
    // on with the next line. Returns true when there was none; on false,
    // services() and probes() are empty and runtime() holds the defaults.
    [[nodiscard]] bool parse(std::string_view text, problem_list& problems) noexcept;

    // The whole table: [custos] and every section, for validate_table() and
    // Runtime::init().
    Table table() const noexcept {
        Table t{runtime_, services(), probes(), {}, watchdog_, control_, log_, {}};
        t.prunes = prunes();
        return t;
    }
    // [custos]; fields not set in the file keep RuntimeConfig's defaults.
    const RuntimeConfig& runtime() const noexcept { return runtime_; }
    // In file order.
    std::span<const ServiceSpec> services() const noexcept { return {services_, service_count_}; }
    // The line of the key behind `f` for service `service`: its [service:x]
    // header for ServiceField::section and name, and for a key the file does
    // not set; the first env line for env; restart_limit for intensity; exec
    // for argv. 0 when `service` is out of range.
    unsigned line_of(std::uint32_t service, custos::ServiceField f) const noexcept;
    // In file order.
    std::span<const ProbeSpec> probes() const noexcept { return {probes_, probe_count_}; }
    // The line of the key behind `f` for probe `probe`: its [probe:x] header
    // for ProbeField::section and name, and for a key the file does not
    // set; the kind key's line (tcp, http, unix, exec, file or all) for
    // target. 0 when `probe` is out of range.
    unsigned probe_line_of(std::uint32_t probe, custos::ProbeField f) const noexcept;
    // [prune:x] sections, in file order.
    std::span<const PruneSpec> prunes() const noexcept { return {prunes_, prune_count_}; }
    // The line of the key behind `f` for job `job`: its [prune:x] header for
    // PruneField::section and name, and for a key the file does not set;
    // 0 when `job` is out of range.
    unsigned prune_line_of(std::uint32_t job, custos::PruneField f) const noexcept;
    // [watchdog]; fields not set in the file keep WatchdogConfig's defaults
    // (device none: no watchdog). Its strings point into the config's text.
    const WatchdogConfig& watchdog() const noexcept { return watchdog_; }
    // The line of the key behind `f`: the [watchdog] header for
    // WatchdogField::section and for a key the file does not set; 0 when
    // the file has no [watchdog] section.
    unsigned watchdog_line_of(custos::WatchdogField f) const noexcept;
    // [control]; fields not set keep ControlConfig's defaults, except the
    // socket: control::default_socket unless the file says otherwise, empty
    // with enabled = no. Its strings and operators point into the config.
    const ControlConfig& control() const noexcept { return control_; }
    // [log]; fields not set keep LogConfig's defaults (no dir: RAM only).
    // Its strings point into the config's text.
    const LogConfig& log() const noexcept { return log_; }
    // Whether the file has a [control] section (else control() is the
    // implicit default, which custosd serves only when it can).
    bool has_control_section() const noexcept { return control_lines_[0] != 0; }
    // The line of the key behind `f`: the [control] header for
    // control_field::section and for a key the file does not set; 0 when
    // the file has no [control] section.
    unsigned control_line_of(control_field f) const noexcept;
    // The path given to the last load() that opened its file; "" otherwise.
    const char* path() const noexcept { return path_; }

    // For a config read again at run time (custosd's reload), at init:
    // takes room for a text of `text_bytes` (path included), a table of
    // `data_bytes` and `sections` section names of each kind, and never
    // allocates again: a later load() or parse() that needs more fails
    // with OutOfMemory ("... custosd reserved N bytes at start").
    void fix(std::size_t text_bytes, std::size_t data_bytes, std::size_t sections) noexcept;
    // What the last successful load() or parse() used, for sizing fix().
    std::size_t text_bytes() const noexcept { return text_.used(); }
    std::size_t data_bytes() const noexcept { return data_.used(); }

private:
    bool parse_owned(char* text, std::size_t size, problem_list& problems) noexcept;
    void clear() noexcept;

    arena text_; // the path, then the text (exec arguments unescaped in place)
    arena data_; // services, probes, their lines, argv/env/depends_on/members
                 // views, expect_status codes
    // The section names seen, while parsing (kept only once fix()ed).
    arena scratch_;
    arena probe_scratch_;
    const char* path_ = "";
    RuntimeConfig runtime_;
    ServiceSpec* services_ = nullptr;
    std::uint32_t service_count_ = 0;
    unsigned* lines_ = nullptr; // service_count_ x custos::service_field_count
    ProbeSpec* probes_ = nullptr;
    std::uint32_t probe_count_ = 0;
    unsigned* probe_lines_ = nullptr; // probe_count_ x custos::probe_field_count
    PruneSpec* prunes_ = nullptr;
    std::uint32_t prune_count_ = 0;
    unsigned* prune_lines_ = nullptr; // prune_count_ x custos::prune_field_count
    WatchdogConfig watchdog_;
    LogConfig log_;                                              // [log]
    unsigned watchdog_lines_[custos::watchdog_field_count] = {}; // all 0: no section
    ControlConfig control_;                     // socket: control::default_socket (constructor)
    std::string_view operators_[max_operators]; // control_.operators
    unsigned control_lines_[control_field_count] = {}; // all 0: no section
};

} // namespace custos::cfg
