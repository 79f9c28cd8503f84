// The key tables of [custos], [service:NAME], [probe:NAME], [watchdog] and
// [control], and their setters (see keys.hpp; [log] and [prune:NAME] are in
// keys_log.cpp). Most setters are one value parser of table/values.hpp and
// one field; exec and env rewrite their value in place, which only
// custosd's own copy of the text allows.
#include "custosd/keys.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "custosd/keys_setter.hpp"
#include "table/target.hpp"
#include "table/validate.hpp"

namespace custos::cfg {

using custos::ServiceField;
using tbl::clip;

void key_context::report(unsigned at, Reason r, std::string_view subject, const char* fmt,
                         ...) noexcept {
    ++found;
    if (problems == nullptr) {
        return;
    }
    char msg[sizeof(problem::message)];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    problems->add(at, Error(r, 0, subject), "%s", msg);
}

void key_context::refuse(const tbl::value_error& e) noexcept {
    report(line, Reason::config_bad_value, key->name, "%s", e.message);
}

void key_context::bad(const char* fmt, ...) noexcept {
    tbl::value_error e;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    refuse(e);
}

namespace {

constexpr bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

// --- setters shared by the sections ---

template <auto Field>
void svc_duration(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.service.*Field);
}
template <auto Field>
void probe_duration(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.probe.*Field);
}
template <auto Field>
void svc_text(key_context& c, std::string_view v) noexcept {
    c.service.*Field = v;
}
template <auto Field>
void probe_text(key_context& c, std::string_view v) noexcept {
    c.probe.*Field = v;
}
template <auto Field>
void probe_count(key_context& c, std::string_view v) noexcept {
    store(c, tbl::count_value(c.key->name, v), c.probe.*Field);
}

// Pushes the names of a list to `to`; false when there was none.
bool split_names(std::string_view value, view_pool& to) noexcept {
    tbl::name_list list(value);
    bool any = false;
    for (std::string_view name; list.next(name);) {
        to.push(name);
        any = true;
    }
    return any;
}

// Splits exec's value into arguments like a shell without expansions:
// blanks separate; '...' is literal; "..." too, except \" and \\; quoted
// and unquoted parts join ("--name=\"a b\"" is one argument). The building
// pass unescapes in place (w never passes r) and stores the arguments.
void exec_value(key_context& c, std::string_view value) noexcept {
    char* b = c.writable(value);
    char* e = b + value.size();
    const bool store = c.out.argv.base != nullptr;
    char* r = b;
    while (true) {
        while (r < e && is_blank(*r)) {
            ++r;
        }
        if (r == e) {
            return;
        }
        char* start = r;
        char* w = r;
        auto put = [&](char ch) {
            if (store) {
                *w = ch;
            }
            ++w;
        };
        while (r < e && !is_blank(*r)) {
            if (*r == '\'' || *r == '"') {
                const char quote = *r;
                const char* open = r++;
                while (r < e && *r != quote) {
                    if (quote == '"' && *r == '\\' && r + 1 < e && (r[1] == '"' || r[1] == '\\')) {
                        ++r;
                    }
                    put(*r++);
                }
                if (r == e) {
                    c.report(c.line, Reason::config_bad_value, "exec",
                             "unterminated %s quote in exec at column %zu: close it with %c",
                             quote == '"' ? "double" : "single",
                             static_cast<std::size_t>(open - c.line_begin) + 1, quote);
                    return;
                }
                ++r;
            } else {
                put(*r++);
            }
        }
        c.out.argv.push({start, static_cast<std::size_t>(w - start)});
    }
}

// --- [custos] ---

void rt_stop_timeout(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.rt.stop_timeout);
}
void rt_notify_dir(key_context& c, std::string_view v) noexcept {
    store(c, tbl::notify_dir_value(v), c.rt.notify_dir);
}
void rt_max_services(key_context& c, std::string_view v) noexcept {
    store(c, tbl::count_value(c.key->name, v, config::max_service_sections), c.rt.max_services);
}
void rt_service_slots(key_context& c, std::string_view v) noexcept {
    store(c, tbl::count_value(c.key->name, v, config::max_service_sections), c.rt.service_slots);
}
void rt_max_probes(key_context& c, std::string_view v) noexcept {
    store(c, tbl::count_value(c.key->name, v, config::max_probe_sections), c.rt.max_probes);
}
void rt_probe_slots(key_context& c, std::string_view v) noexcept {
    store(c, tbl::count_value(c.key->name, v, config::max_probe_sections), c.rt.probe_slots);
}
void rt_max_probe_checks(key_context& c, std::string_view v) noexcept {
    store(c, tbl::count_value(c.key->name, v, config::max_probe_checks), c.rt.max_probe_checks);
}
void rt_boot_grace(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.rt.boot_grace);
}
void rt_cgroup(key_context& c, std::string_view v) noexcept {
    store(c, tbl::cgroup_value(v), c.rt.cgroup);
}
void rt_pid_record(key_context& c, std::string_view v) noexcept {
    c.rt.pid_record = v;
}
void rt_notify_fd(key_context& c, std::string_view v) noexcept {
    store(c, tbl::notify_fd_value(v), c.rt.notify_fd);
}
void rt_keepalive_gate(key_context& c, std::string_view v) noexcept {
    store(c, tbl::keepalive_gate_value(v), c.rt.keepalive_gate);
}
void rt_runtime_dir_root(key_context& c, std::string_view v) noexcept {
    // Absolute: services chdir, and RUNTIME_DIRECTORY must still name it.
    if (v.empty() || v.front() != '/' || v.size() > 200) {
        c.bad("runtime_dir_root '%s' must be an absolute path of at most 200 bytes", clip(v).str());
        return;
    }
    c.rt.runtime_dir_root = v;
}
void rt_notify_socket(key_context& c, std::string_view) noexcept {
    c.report(c.line, Reason::config_unknown_key, c.key->name,
             "notify_socket was replaced by notify_dir: each service now gets its own socket "
             "DIR/NAME (write notify_dir = the directory)");
}

constexpr key_def custos_keys[] = {
    {"stop_timeout", no_slot, 0, 0, rt_stop_timeout},
    {"notify_dir", no_slot, 0, 0, rt_notify_dir},
    {"max_services", no_slot, 0, 0, rt_max_services},
    {"max_probes", no_slot, 0, 0, rt_max_probes},
    {"service_slots", no_slot, 0, 0, rt_service_slots},
    {"max_probe_checks", no_slot, 0, 0, rt_max_probe_checks},
    {"probe_slots", no_slot, 0, 0, rt_probe_slots},
    {"boot_grace", no_slot, 0, 0, rt_boot_grace},
    {"cgroup", no_slot, 0, 0, rt_cgroup},
    {"pid_record", no_slot, 0, 0, rt_pid_record},
    {"notify_fd", no_slot, 0, 0, rt_notify_fd},
    {"keepalive_gate", no_slot, 0, 0, rt_keepalive_gate},
    {"runtime_dir_root", no_slot, 0, 0, rt_runtime_dir_root},
    {"notify_socket", no_slot, key_retired, 0, rt_notify_socket},
};

// --- [service:NAME] ---

// KEY=value, with one level of quotes taken off as systemd's Environment=
// does: around the whole assignment ("KEY=a b") or around the value
// (KEY="a b"), double or single, matched. Nothing else is unescaped. The
// value is moved in place in the building pass only: the checking pass
// must leave the bytes as the building pass will read them.
void svc_env(key_context& c, std::string_view value) noexcept {
    char* b = c.writable(value);
    std::size_t len = value.size();
    auto quoted = [](const char* q, std::size_t n) {
        return n >= 2 && (q[0] == '"' || q[0] == '\'') && q[n - 1] == q[0];
    };
    if (quoted(b, len)) {
        ++b;
        len -= 2;
    }
    std::string_view v(b, len);
    std::size_t eq = v.find('=');
    if (eq == std::string_view::npos || eq == 0) {
        c.bad("bad env '%s': write env = KEY=value, with a non-empty KEY", clip(value).str());
        return;
    }
    if (quoted(b + eq + 1, len - eq - 1)) {
        // KEY= moves one byte right, over the opening quote.
        if (c.out.env.base != nullptr) {
            std::memmove(b + 1, b, eq + 1);
        }
        v = std::string_view(b + 1, len - 2);
    }
    c.out.env.push(v);
}
void svc_restart(key_context& c, std::string_view v) noexcept {
    store(c, tbl::restart_value(v), c.service.restart);
}
void svc_multiplier(key_context& c, std::string_view v) noexcept {
    store(c, tbl::multiplier_value(c.key->name, v), c.service.backoff_multiplier_x100);
}
void svc_jitter(key_context& c, std::string_view v) noexcept {
    store(c, tbl::percent_value(c.key->name, v), c.service.backoff_jitter_percent);
}
void svc_max_restarts(key_context& c, std::string_view v) noexcept {
    store(c, tbl::limit_value(c.key->name, v), c.service.max_restarts);
}
void svc_restart_limit(key_context& c, std::string_view v) noexcept {
    tbl::restart_limit limit;
    if (store(c, tbl::restart_limit_value(v), limit)) {
        c.service.intensity_restarts = limit.restarts;
        c.service.intensity_window = limit.window;
    }
}
void svc_depends_on(key_context& c, std::string_view v) noexcept {
    if (!split_names(v, c.out.deps)) {
        c.bad("depends_on '%s' names no service: list names separated by spaces or "
              "commas",
              clip(v).str());
    }
}
void svc_ready(key_context& c, std::string_view v) noexcept {
    tbl::readiness r;
    if (store(c, tbl::ready_value(v), r)) {
        c.service.ready = r.mode;
        c.service.ready_fd = r.fd;
        if (r.mode == ReadyMode::probe) {
            c.service.ready_probe = r.probe;
        }
    }
}
void svc_channel(key_context& c, std::string_view v) noexcept {
    store(c, tbl::channel_value(v), c.service.channel_fd);
}
void svc_runtime_dir(key_context& c, std::string_view v) noexcept {
    store(c, tbl::bool_value(c.key->name, v), c.service.runtime_dir);
}
void svc_output(key_context& c, std::string_view v) noexcept {
    store(c, tbl::output_value(v), c.service.output);
}
void svc_stop_signal(key_context& c, std::string_view v) noexcept {
    store(c, tbl::signal_value(c.key->name, v), c.service.stop_signal);
}
void svc_critical(key_context& c, std::string_view v) noexcept {
    store(c, tbl::bool_value(c.key->name, v), c.service.critical);
}
void svc_dependency_down(key_context& c, std::string_view v) noexcept {
    store(c, tbl::dependency_down_value(v), c.service.on_dependency_down);
}

constexpr std::uint8_t slot(ServiceField f) {
    return static_cast<std::uint8_t>(f);
}

constexpr key_def service_keys[] = {
    {"exec", slot(ServiceField::argv), key_required, 0, exec_value,
     "add exec = /path/to/program [arguments]"},
    {"env", slot(ServiceField::env), key_repeats, 0, svc_env},
    {"cwd", slot(ServiceField::cwd), 0, 0, svc_text<&ServiceSpec::cwd>},
    {"user", slot(ServiceField::user), 0, 0, svc_text<&ServiceSpec::user>},
    {"group", slot(ServiceField::group), 0, 0, svc_text<&ServiceSpec::group>},
    {"restart", slot(ServiceField::restart), 0, 0, svc_restart},
    {"backoff_initial", slot(ServiceField::backoff_initial), 0, 0,
     svc_duration<&ServiceSpec::backoff_initial>},
    {"backoff_max", slot(ServiceField::backoff_max), 0, 0, svc_duration<&ServiceSpec::backoff_max>},
    {"backoff_multiplier", slot(ServiceField::backoff_multiplier), 0, 0, svc_multiplier},
    {"backoff_jitter", slot(ServiceField::backoff_jitter), 0, 0, svc_jitter},
    {"stable_after", slot(ServiceField::stable_after), 0, 0,
     svc_duration<&ServiceSpec::stable_after>},
    {"max_restarts", slot(ServiceField::max_restarts), 0, 0, svc_max_restarts},
    {"restart_limit", slot(ServiceField::intensity), 0, 0, svc_restart_limit},
    {"start_delay", slot(ServiceField::start_delay), 0, 0, svc_duration<&ServiceSpec::start_delay>},
    {"depends_on", slot(ServiceField::depends_on), 0, 0, svc_depends_on},
    {"ready", slot(ServiceField::ready), 0, 0, svc_ready},
    {"ready_timeout", slot(ServiceField::ready_timeout), 0, 0,
     svc_duration<&ServiceSpec::ready_timeout>},
    {"watchdog", slot(ServiceField::watchdog), 0, 0, svc_duration<&ServiceSpec::watchdog>},
    {"stop_signal", slot(ServiceField::stop_signal), 0, 0, svc_stop_signal},
    {"stop_timeout", slot(ServiceField::stop_timeout), 0, 0,
     svc_duration<&ServiceSpec::stop_timeout>},
    {"liveness", slot(ServiceField::liveness), 0, 0, svc_text<&ServiceSpec::liveness>},
    {"on_dependency_down", slot(ServiceField::on_dependency_down), 0, 0, svc_dependency_down},
    {"critical", no_slot, 0, 0, svc_critical},
    {"channel", slot(ServiceField::channel), 0, 0, svc_channel},
    {"runtime_dir", slot(ServiceField::runtime_dir), 0, 0, svc_runtime_dir},
    {"output", slot(ServiceField::output), 0, 0, svc_output},
};

// --- [probe:NAME] ---

// The validator parses targets: it knows each kind's syntax.
void probe_target(key_context& c, std::string_view v) noexcept {
    c.probe.target = v;
}
void probe_all(key_context& c, std::string_view v) noexcept {
    if (!split_names(v, c.out.members)) {
        c.bad("all '%s' names no probe: list names separated by spaces or commas", clip(v).str());
    }
}
void probe_multiplier(key_context& c, std::string_view v) noexcept {
    store(c, tbl::multiplier_value(c.key->name, v), c.probe.startup_multiplier_x100);
}
void probe_expect_status(key_context& c, std::string_view v) noexcept {
    tbl::name_list codes(v);
    std::size_t n = 0;
    for (std::string_view code; codes.next(code); ++n) {
        tbl::value_result<std::uint16_t> status = tbl::status_code_value(code);
        if (!status) {
            c.refuse(status.error());
            return;
        }
        c.out.statuses.push(*status);
    }
    if (n == 0) {
        c.bad("expect_status '%s' names no status: list codes separated by spaces", clip(v).str());
    }
}
// Existence is always checked: the key is for readability.
void probe_exists(key_context& c, std::string_view v) noexcept {
    bool yes = false;
    if (store(c, tbl::bool_value(c.key->name, v), yes) && !yes) {
        c.bad("exists = %s cannot be checked: a file probe always requires its "
              "file to exist (remove the key)",
              clip(v).str());
    }
}
void probe_owner(key_context& c, std::string_view v) noexcept {
    store(c, tbl::owner_value(v), c.probe.owner);
}
void probe_mode(key_context& c, std::string_view v) noexcept {
    store(c, tbl::mode_value(v), c.probe.mode);
}
void probe_writable(key_context& c, std::string_view v) noexcept {
    store(c, tbl::bool_value(c.key->name, v), c.probe.writable);
}
void probe_critical(key_context& c, std::string_view v) noexcept {
    store(c, tbl::bool_value(c.key->name, v), c.probe.critical);
}

using custos::ProbeField;

constexpr std::uint8_t slot(ProbeField f) {
    return static_cast<std::uint8_t>(f);
}
constexpr std::uint8_t kind(ProbeKind k) {
    return static_cast<std::uint8_t>(k);
}

constexpr key_def probe_keys[] = {
    {"tcp", slot(ProbeField::target), key_sets_kind, kind(ProbeKind::tcp), probe_target},
    {"http", slot(ProbeField::target), key_sets_kind, kind(ProbeKind::http), probe_target},
    {"unix", slot(ProbeField::target), key_sets_kind, kind(ProbeKind::unix_socket), probe_target},
    {"exec", slot(ProbeField::target), key_sets_kind, kind(ProbeKind::exec), exec_value},
    {"file", slot(ProbeField::target), key_sets_kind, kind(ProbeKind::file), probe_target},
    {"all", slot(ProbeField::target), key_sets_kind, kind(ProbeKind::all), probe_all},
    {"timeout", slot(ProbeField::timeout), 0, 0, probe_duration<&ProbeSpec::timeout>},
    {"startup_initial", slot(ProbeField::startup_initial), 0, 0,
     probe_duration<&ProbeSpec::startup_initial>},
    {"startup_max", slot(ProbeField::startup_max), 0, 0, probe_duration<&ProbeSpec::startup_max>},
    {"startup_multiplier", slot(ProbeField::startup_multiplier), 0, 0, probe_multiplier},
    {"startup_tries", slot(ProbeField::startup_tries), 0, 0,
     probe_count<&ProbeSpec::startup_tries>},
    {"interval", slot(ProbeField::interval), 0, 0, probe_duration<&ProbeSpec::interval>},
    {"success_threshold", slot(ProbeField::success_threshold), 0, 0,
     probe_count<&ProbeSpec::success_threshold>},
    {"failure_threshold", slot(ProbeField::failure_threshold), 0, 0,
     probe_count<&ProbeSpec::failure_threshold>},
    {"expect_status", slot(ProbeField::expect_status), key_kind_only, kind(ProbeKind::http),
     probe_expect_status},
    // No line of its own: a file probe always checks existence.
    {"exists", no_slot, key_kind_only, kind(ProbeKind::file), probe_exists},
    {"owner", slot(ProbeField::owner), key_kind_only, kind(ProbeKind::file), probe_owner},
    {"mode", slot(ProbeField::mode), key_kind_only, kind(ProbeKind::file), probe_mode},
    {"writable", slot(ProbeField::writable), key_kind_only, kind(ProbeKind::file), probe_writable},
    {"reason", slot(ProbeField::reason), 0, 0, probe_text<&ProbeSpec::reason>},
    {"resolution", slot(ProbeField::resolution), 0, 0, probe_text<&ProbeSpec::resolution>},
    {"critical", no_slot, 0, 0, probe_critical},
    {"grace", slot(ProbeField::grace), 0, 0, probe_duration<&ProbeSpec::grace>},
};

// --- [watchdog] ---

void wd_device(key_context& c, std::string_view v) noexcept {
    constexpr struct {
        std::string_view name;
        WatchdogDevice device;
    } devices[] = {
        {"none", WatchdogDevice::none},
        {"kernel", WatchdogDevice::kernel},
        {"gpio", WatchdogDevice::gpio},
        {"null", WatchdogDevice::null},
    };
    for (const auto& d : devices) {
        if (v == d.name) {
            c.wd.device = d.device;
            return;
        }
    }
    c.bad("bad device '%s': use none, kernel (/dev/watchdogN), gpio (an external chip on a "
          "GPIO line) or null (no hardware)",
          clip(v).str());
}
// Any profile name: the runtime knows the profiles, and says BoardUnknown
// for the others (custosd maps it back to this line).
void wd_board(key_context& c, std::string_view v) noexcept {
    c.wd.board = v;
}
template <auto Field>
void wd_text(key_context& c, std::string_view v) noexcept {
    c.wd.*Field = v;
}
template <auto Field>
void wd_duration(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.wd.*Field);
}
// The driver counts whole seconds (WDIOC_SETTIMEOUT, WDIOC_SETPRETIMEOUT):
// 1500ms is refused rather than silently rounded.
template <auto Field>
void wd_seconds(key_context& c, std::string_view v) noexcept {
    Duration d{0};
    if (!store(c, tbl::duration_value(c.key->name, v), d)) {
        return;
    }
    if (d % std::chrono::seconds(1) != Duration{0}) {
        c.bad("%s '%s' is not a whole number of seconds: the watchdog driver counts seconds "
              "(write 2s, 30s or 1m)",
              c.key->name, clip(v).str());
        return;
    }
    c.wd.*Field = d;
}
void wd_magic_close(key_context& c, std::string_view v) noexcept {
    bool yes = false;
    if (v == "profile") {
        c.wd.magic_close = MagicClose::profile;
    } else if (tbl::parse_bool(v, yes)) {
        c.wd.magic_close = yes ? MagicClose::yes : MagicClose::no;
    } else {
        c.bad("bad magic_close '%s': use profile (as the board says), yes (an orderly stop "
              "disarms the watchdog) or no (never disarm)",
              clip(v).str());
    }
}
void wd_required(key_context& c, std::string_view v) noexcept {
    store(c, tbl::bool_value(c.key->name, v), c.wd.required);
}
void wd_active_low(key_context& c, std::string_view v) noexcept {
    store(c, tbl::bool_value(c.key->name, v), c.wd.gpio_active_low);
}
// The most boots safe_mode_boots may count.
constexpr std::uint64_t max_safe_mode_boots = 1000;
void wd_safe_mode_boots(key_context& c, std::string_view v) noexcept {
    std::uint64_t n = 0;
    if (tbl::parse_uint(v, max_safe_mode_boots, n) != tbl::num_status::ok) {
        c.bad("bad safe_mode_boots '%s': give a whole number from 0 (off) to %llu", clip(v).str(),
              static_cast<unsigned long long>(max_safe_mode_boots));
        return;
    }
    c.wd.safe_mode_boots = static_cast<std::uint32_t>(n);
}
// A GPIO line offset: 0 to 511, or -1 for none (the profile's).
constexpr std::uint64_t max_gpio_line = 511;
template <auto Field>
void wd_gpio_line(key_context& c, std::string_view v) noexcept {
    if (v == "-1") {
        c.wd.*Field = -1;
        return;
    }
    std::uint64_t n = 0;
    if (tbl::parse_uint(v, max_gpio_line, n) != tbl::num_status::ok) {
        c.bad("bad %s '%s': give the line's offset on its chip, 0 to %llu (gpioinfo lists "
              "them), or -1 for none",
              c.key->name, clip(v).str(), static_cast<unsigned long long>(max_gpio_line));
        return;
    }
    c.wd.*Field = static_cast<std::int32_t>(n);
}

using custos::WatchdogField;

constexpr std::uint8_t slot(WatchdogField f) {
    return static_cast<std::uint8_t>(f);
}

constexpr key_def watchdog_keys[] = {
    // Required: a [watchdog] whose device was forgotten must not run
    // silently unwatched.
    {"device", slot(WatchdogField::device), key_required, 0, wd_device,
     "add device = kernel, gpio or null (none keeps the watchdog off)"},
    {"board", slot(WatchdogField::board), 0, 0, wd_board},
    {"path", slot(WatchdogField::path), 0, 0, wd_text<&WatchdogConfig::path>},
    {"timeout", slot(WatchdogField::timeout), 0, 0, wd_seconds<&WatchdogConfig::timeout>},
    {"interval", slot(WatchdogField::interval), 0, 0, wd_duration<&WatchdogConfig::interval>},
    {"pretimeout", slot(WatchdogField::pretimeout), 0, 0, wd_seconds<&WatchdogConfig::pretimeout>},
    {"magic_close", slot(WatchdogField::magic_close), 0, 0, wd_magic_close},
    {"required", no_slot, 0, 0, wd_required},
    {"max_hold", slot(WatchdogField::max_hold), 0, 0, wd_duration<&WatchdogConfig::max_hold>},
    {"state_file", slot(WatchdogField::state_file), 0, 0, wd_text<&WatchdogConfig::state_file>},
    {"safe_mode_boots", slot(WatchdogField::safe_mode_boots), 0, 0, wd_safe_mode_boots},
    {"safe_mode_window", slot(WatchdogField::safe_mode_window), 0, 0,
     wd_duration<&WatchdogConfig::safe_mode_window>},
    {"gpio_chip", slot(WatchdogField::gpio_chip), 0, 0, wd_text<&WatchdogConfig::gpio_chip>},
    {"gpio_line", slot(WatchdogField::gpio_line), 0, 0, wd_gpio_line<&WatchdogConfig::gpio_line>},
    {"gpio_enable_line", slot(WatchdogField::gpio_enable_line), 0, 0,
     wd_gpio_line<&WatchdogConfig::gpio_enable_line>},
    {"gpio_active_low", no_slot, 0, 0, wd_active_low},
    {"led", slot(WatchdogField::led), 0, 0, wd_text<&WatchdogConfig::led>},
};

// --- [control] ---

void ctl_enabled(key_context& c, std::string_view v) noexcept {
    store(c, tbl::bool_value(c.key->name, v), c.ctl.enabled);
}
// A path of a Unix socket: absolute (custosctl and the operators must find
// it whatever their directory), and short enough for sun_path with its NUL.
void ctl_socket(key_context& c, std::string_view v) noexcept {
    constexpr std::size_t max_path = 107;
    if (v.front() != '/') {
        c.bad("socket '%s' must be an absolute path, e.g. /run/custos/control.sock", clip(v).str());
        return;
    }
    if (v.size() > max_path) {
        c.bad("socket '%s' is %zu bytes; a Unix socket's path holds at most %zu: choose a "
              "shorter one",
              clip(v).str(), v.size(), max_path);
        return;
    }
    c.ctl.cfg.socket = v;
}
// Only permission bits: set-id and sticky bits mean nothing on a socket.
void ctl_mode(key_context& c, std::string_view v) noexcept {
    tbl::value_result<int> m = tbl::mode_value(v);
    if (!m) {
        c.refuse(m.error());
        return;
    }
    if (*m > 0777) {
        c.bad("bad mode '%s': a socket's mode is permission bits up to 0777, e.g. 0660",
              clip(v).str());
        return;
    }
    c.ctl.cfg.mode = static_cast<std::uint32_t>(*m);
}
// A user or group name, or a number: no blank, no ':' (passwd's separator),
// no control byte.
bool is_account(std::string_view s) noexcept {
    if (s.empty() || s.size() > 64) {
        return false;
    }
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (u <= 0x20 || u == 0x7f || ch == ':' || ch == ',') {
            return false;
        }
    }
    return true;
}
void ctl_group(key_context& c, std::string_view v) noexcept {
    if (!is_account(v)) {
        c.bad("bad group '%s': give one group name or gid, e.g. custos", clip(v).str());
        return;
    }
    c.ctl.cfg.group = v;
}
// Users (names or uids) and @groups (names or gids), each stored in the
// config's fixed array.
void ctl_operators(key_context& c, std::string_view v) noexcept {
    tbl::name_list list(v);
    std::size_t n = 0;
    for (std::string_view name; list.next(name); ++n) {
        std::string_view account = name.front() == '@' ? name.substr(1) : name;
        if (!is_account(account) || account.front() == '@') {
            c.bad("bad operator '%s': write a user name or uid, or @group (a group name or "
                  "gid), separated by spaces",
                  clip(name).str());
            return;
        }
        if (n == config::max_operators) {
            c.bad("too many operators: at most %zu entries (put the people in a group and "
                  "write @group)",
                  config::max_operators);
            return;
        }
        c.ctl.operators[n] = name;
    }
    if (n == 0) {
        c.bad("operators '%s' names no one: list users and @groups separated by spaces",
              clip(v).str());
        return;
    }
    c.ctl.operator_count = n;
}
template <auto Field>
void ctl_count(key_context& c, std::string_view v, std::uint32_t min, std::uint32_t max) noexcept {
    std::uint64_t n = 0;
    if (tbl::parse_uint(v, max, n) != tbl::num_status::ok || n < min) {
        c.bad("bad %s '%s': give a whole number from %u to %u", c.key->name, clip(v).str(), min,
              max);
        return;
    }
    c.ctl.cfg.*Field = static_cast<std::uint32_t>(n);
}
void ctl_max_clients(key_context& c, std::string_view v) noexcept {
    ctl_count<&ControlConfig::max_clients>(c, v, 1, 1024);
}
void ctl_max_head_bytes(key_context& c, std::string_view v) noexcept {
    ctl_count<&ControlConfig::max_head_bytes>(c, v, 256, 1u << 20);
}
void ctl_max_body_bytes(key_context& c, std::string_view v) noexcept {
    ctl_count<&ControlConfig::max_body_bytes>(c, v, 1, 1u << 20);
}
void ctl_max_requests(key_context& c, std::string_view v) noexcept {
    ctl_count<&ControlConfig::max_requests>(c, v, 1, 1000000);
}
// A timeout of 0 would close every connection at once.
template <auto Field>
void ctl_timeout(key_context& c, std::string_view v) noexcept {
    Duration d{0};
    if (!store(c, tbl::duration_value(c.key->name, v), d)) {
        return;
    }
    if (d <= Duration{0}) {
        c.bad("%s '%s' must be above 0 (write e.g. 5s)", c.key->name, clip(v).str());
        return;
    }
    c.ctl.cfg.*Field = d;
}
void ctl_max_wait(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.ctl.cfg.max_wait);
}

// A literal address and a port: checked again (and bound) at init.
void ctl_metrics_listen(key_context& c, std::string_view v) noexcept {
    auto hp = tbl::parse_host_port(v);
    if (!hp || !hp->literal) {
        c.bad("bad metrics_listen '%s': give a literal address and a port, e.g. 127.0.0.1:9101 "
              "or [::1]:9101",
              clip(v).str());
        return;
    }
    c.ctl.cfg.metrics_listen = v;
}
void ctl_metrics_textfile(key_context& c, std::string_view v) noexcept {
    if (v.empty() || v.front() != '/' || v.size() > 250) {
        c.bad("bad metrics_textfile '%s': an absolute path of at most 250 bytes, e.g. "
              "/var/lib/node_exporter/textfile/custos.prom",
              clip(v).str());
        return;
    }
    c.ctl.cfg.metrics_textfile = v;
}
void ctl_metrics_textfile_interval(key_context& c, std::string_view v) noexcept {
    Duration d{0};
    if (!store(c, tbl::duration_value(c.key->name, v), d)) {
        return;
    }
    if (d < std::chrono::seconds(1)) {
        c.bad("metrics_textfile_interval '%s' must be 1s or more", clip(v).str());
        return;
    }
    c.ctl.cfg.metrics_textfile_interval = d;
}

constexpr std::uint8_t slot(control_field f) {
    return static_cast<std::uint8_t>(f);
}

constexpr key_def control_keys[] = {
    {"enabled", slot(control_field::enabled), 0, 0, ctl_enabled},
    {"socket", slot(control_field::socket), 0, 0, ctl_socket},
    {"mode", slot(control_field::mode), 0, 0, ctl_mode},
    {"group", slot(control_field::group), 0, 0, ctl_group},
    {"operators", slot(control_field::operators), 0, 0, ctl_operators},
    {"max_clients", slot(control_field::max_clients), 0, 0, ctl_max_clients},
    {"max_head_bytes", slot(control_field::max_head_bytes), 0, 0, ctl_max_head_bytes},
    {"max_body_bytes", slot(control_field::max_body_bytes), 0, 0, ctl_max_body_bytes},
    {"head_timeout", slot(control_field::head_timeout), 0, 0,
     ctl_timeout<&ControlConfig::head_timeout>},
    {"idle_timeout", slot(control_field::idle_timeout), 0, 0,
     ctl_timeout<&ControlConfig::idle_timeout>},
    {"send_timeout", slot(control_field::send_timeout), 0, 0,
     ctl_timeout<&ControlConfig::send_timeout>},
    {"max_requests", slot(control_field::max_requests), 0, 0, ctl_max_requests},
    {"max_wait", slot(control_field::max_wait), 0, 0, ctl_max_wait},
    {"metrics_listen", slot(control_field::metrics_listen), 0, 0, ctl_metrics_listen},
    {"metrics_textfile", slot(control_field::metrics_textfile), 0, 0, ctl_metrics_textfile},
    {"metrics_textfile_interval", slot(control_field::metrics_textfile_interval), 0, 0,
     ctl_metrics_textfile_interval},
};

static_assert(std::size(control_keys) + 1 == control_field_count,
              "one line slot per [control] key, and the section's");
static_assert(std::size(control_keys) <= max_keys);

static_assert(std::size(custos_keys) <= max_keys && std::size(service_keys) <= max_keys &&
                  std::size(probe_keys) <= max_keys && std::size(watchdog_keys) <= max_keys,
              "seen-key bitmasks are 32 bits");
static_assert(custos::service_field_count < no_slot && custos::probe_field_count < no_slot &&
                  custos::watchdog_field_count < no_slot,
              "line slots fit a byte");

} // namespace

const section_def custos_section{"custos", custos_keys};
const section_def service_section{"service:", service_keys};
const section_def probe_section{"probe:", probe_keys};
const section_def watchdog_section{"watchdog", watchdog_keys};
const section_def control_section{"control", control_keys};

} // namespace custos::cfg
