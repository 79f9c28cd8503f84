#include "eventlog/record.hpp"

#include <cstring>
#include <initializer_list>

#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/watchdog.hpp>

#include "core/text_out.hpp"
#include "status/json.hpp"

namespace custos::eventlog {

using sv = std::string_view;

std::string_view level_name(level l) noexcept {
    switch (l) {
    case level::debug:
        return "debug";
    case level::info:
        return "info";
    case level::notice:
        return "notice";
    case level::warning:
        return "warning";
    case level::error:
        return "error";
    case level::critical:
        return "critical";
    }
    return "info";
}

std::size_t copy_cut(char* dst, std::size_t cap, sv s) noexcept {
    static constexpr char ellipsis[] = "\xe2\x80\xa6"; // U+2026
    constexpr std::size_t mark = sizeof ellipsis - 1;
    if (s.size() <= cap) {
        if (!s.empty()) {
            std::memcpy(dst, s.data(), s.size());
        }
        return s.size();
    }
    std::size_t cut = cap - mark;
    // Back over at most three continuation bytes to the start of the
    // character the cut falls in (more would be malformed anyway: the
    // encoder repairs it).
    for (int k = 0; k < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80; ++k) {
        --cut;
    }
    std::memcpy(dst, s.data(), cut);
    std::memcpy(dst + cut, ellipsis, mark);
    return cut + mark;
}

void record::set_name(sv s) noexcept {
    name_len = static_cast<std::uint8_t>(copy_cut(name, name_cap, s));
}
void record::set_from(sv s) noexcept {
    from_len = static_cast<std::uint8_t>(copy_cut(from, state_cap, s));
}
void record::set_to(sv s) noexcept {
    to_len = static_cast<std::uint8_t>(copy_cut(to, state_cap, s));
}
void record::set_message(sv s) noexcept {
    message_len = static_cast<std::uint16_t>(copy_cut(message, message_cap, s));
}
void record::set_resolution(sv s) noexcept {
    resolution_len = static_cast<std::uint16_t>(copy_cut(resolution, resolution_cap, s));
}

void record::set_exit(const ExitInfo& e) noexcept {
    has_exit = e.pid != 0 || e.code != 0 || e.signal != 0;
    exit_code = e.signal == 0 ? e.code : 0;
    exit_signal = e.signal;
    exit_core = e.core_dumped;
}

namespace {

// Whether `r` is one of `set` (a switch over Reason would have to name
// all of them: -Wswitch-enum).
bool in(Reason r, std::initializer_list<Reason> set) noexcept {
    for (Reason x : set) {
        if (x == r) {
            return true;
        }
    }
    return false;
}

level service_level(const status::event& e) noexcept {
    if (in(e.reason, {Reason::max_restarts_exhausted, Reason::restart_intensity_exceeded})) {
        return level::critical;
    }
    switch (e.service_to()) {
    case ServiceState::failed:
        return level::critical;
    case ServiceState::backoff:
        return level::warning;
    case ServiceState::stopped:
    case ServiceState::stopping:
        if (in(e.reason, {Reason::stop_timeout, Reason::spawn_failed, Reason::exec_failed,
                          Reason::process_killed, Reason::process_exited, Reason::dependency_failed,
                          Reason::dependency_down, Reason::liveness_failed})) {
            return level::warning;
        }
        return in(e.reason, {Reason::operator_stop, Reason::reload_removed, Reason::reload_changed})
                   ? level::notice
                   : level::info;
    case ServiceState::waiting:
    case ServiceState::starting:
    case ServiceState::running:
    case ServiceState::ready:
        return in(e.reason, {Reason::operator_start, Reason::operator_restart, Reason::reload_added,
                             Reason::reload_changed})
                   ? level::notice
                   : level::info;
    }
    return level::info;
}

level probe_level(const status::event& e) noexcept {
    switch (e.probe_to()) {
    case ProbeState::down:
        return level::warning;
    case ProbeState::ready:
        return e.reason == Reason::probe_recovered ? level::notice : level::info;
    case ProbeState::unknown:
        return level::info;
    }
    return level::info;
}

level monitor_level(const status::event& e) noexcept {
    if (e.reason == Reason::monitor_heartbeat) {
        return level::debug;
    }
    if (in(e.reason, {Reason::monitor_crash_loop, Reason::monitor_wedged})) {
        return level::error;
    }
    if (in(e.reason,
           {Reason::monitor_crashed, Reason::monitor_wedge_suspected, Reason::monitor_degraded})) {
        return level::warning;
    }
    if (in(e.reason, {Reason::monitor_progress, Reason::monitor_degraded_cleared})) {
        return level::notice;
    }
    switch (e.monitor_to()) {
    case MonitorState::wedged:
        return level::error;
    case MonitorState::degraded:
    case MonitorState::backoff:
        return level::warning;
    case MonitorState::stopped:
    case MonitorState::waiting:
    case MonitorState::running:
    case MonitorState::stopping:
        return level::info;
    }
    return level::info;
}

level watchdog_level(const status::event& e) noexcept {
    if (in(e.reason, {Reason::watchdog_starving, Reason::previous_boot_starved,
                      Reason::previous_boot_watchdog, Reason::watchdog_lost})) {
        return level::critical;
    }
    if (in(e.reason,
           {Reason::watchdog_feed_failed, Reason::watchdog_unavailable, Reason::watchdog_busy,
            Reason::reset_record_unwritable, Reason::gpio_unavailable})) {
        return level::error;
    }
    if (in(e.reason, {Reason::watchdog_unsupported, Reason::watchdog_timeout_clamped,
                      Reason::watchdog_left_armed, Reason::previous_boot_unreported,
                      Reason::reset_record_corrupt, Reason::safe_mode, Reason::board_unknown})) {
        return level::warning;
    }
    switch (e.watchdog_to()) {
    case WatchdogState::starving:
    case WatchdogState::lost:
        return level::critical;
    case WatchdogState::off:
    case WatchdogState::booting:
    case WatchdogState::feeding:
    case WatchdogState::held:
    case WatchdogState::closed:
        return level::notice;
    }
    return level::notice;
}

level health_level(const status::event& e) noexcept {
    switch (e.health_to()) {
    case Health::failed:
        return level::error;
    case Health::degraded:
        return level::warning;
    case Health::starting:
    case Health::ok:
        return level::info;
    }
    return level::info;
}

} // namespace

level level_for(const status::event& e) noexcept {
    switch (e.kind) {
    case status::event_kind::service_transition:
        return service_level(e);
    case status::event_kind::probe_transition:
        return e.reason == Reason::critical_down ? level::error : probe_level(e);
    case status::event_kind::monitor:
        return monitor_level(e);
    case status::event_kind::watchdog:
        return watchdog_level(e);
    case status::event_kind::control_action:
        return e.reason == Reason::control_denied || e.http_status >= 400 ? level::warning
                                                                          : level::notice;
    case status::event_kind::log:
        return level::warning;
    case status::event_kind::health:
        return health_level(e);
    case status::event_kind::custom:
        return level::info;
    case status::event_kind::prune:
        // A deletion is routine; a run or a file that failed wants a look.
        return e.reason == Reason::prune_deleted ? level::info : level::warning;
    }
    return level::info;
}

record from_event(const status::event& e, level l) noexcept {
    record r;
    r.kind = e.kind;
    r.level = l;
    r.mono_ns = e.mono_ns;
    r.wall_ns = e.wall_ns;
    r.reason = e.reason;
    r.sys_errno = e.sys_errno;
    r.pid = e.pid;
    r.set_name(e.name);
    r.set_exit(e.exit);
    switch (e.kind) {
    case status::event_kind::service_transition:
        r.set_from(state_name(e.service_from()));
        r.set_to(state_name(e.service_to()));
        break;
    case status::event_kind::probe_transition:
        r.set_from(probe_state_name(e.probe_from()));
        r.set_to(probe_state_name(e.probe_to()));
        break;
    case status::event_kind::monitor:
        r.set_from(monitor_state_name(e.monitor_from()));
        r.set_to(monitor_state_name(e.monitor_to()));
        break;
    case status::event_kind::watchdog:
        r.set_from(watchdog_state_name(e.watchdog_from()));
        r.set_to(watchdog_state_name(e.watchdog_to()));
        break;
    case status::event_kind::health:
        r.set_from(health_name(e.health_from()));
        r.set_to(health_name(e.health_to()));
        break;
    case status::event_kind::control_action:
    case status::event_kind::log:
    case status::event_kind::custom:
    case status::event_kind::prune:
        break;
    }
    if (e.kind == status::event_kind::control_action && e.http_status != 0) {
        char b[record::message_cap];
        text_out o(b, sizeof b);
        o.put(e.detail.substr(0, record::message_cap - 32)).put(" (HTTP ");
        o.put_i64(e.http_status);
        if (e.peer_uid >= 0) {
            o.put(", uid ").put_i64(e.peer_uid); // the peer: pid in `pid`
        }
        o.put(')');
        r.set_message(o.view());
    } else {
        r.set_message(e.detail);
    }
    if (!e.resolution.empty()) {
        r.set_resolution(e.resolution);
    } else if (e.reason != Reason::unknown) {
        r.set_resolution(Error(e.reason, 0).resolution());
    }
    return r;
}

// --- encoding ------------------------------------------------------------------

namespace {

// `,"key":` and a string value, escaped.
void str_member(text_out& o, sv key, sv value) noexcept {
    o.put(",\"").put(key).put("\":");
    status::put_str(o, value);
}

void num_member(text_out& o, sv key, std::int64_t v) noexcept {
    o.put(",\"").put(key).put("\":").put_i64(v);
}

void time_member(text_out& o, sv key, std::int64_t wall_ns) noexcept {
    char b[status::wall_size];
    status::wall_into(b, wall_ns);
    o.put(",\"").put(key).put("\":\"").put(sv(b, sizeof b)).put('"');
}

} // namespace

std::size_t encode(const record& r, sv boot_id, char* buf, std::size_t cap) noexcept {
    text_out o(buf, cap);
    o.put("{\"seq\":").put_u64(r.seq);
    if (!boot_id.empty()) {
        str_member(o, "boot_id", boot_id.substr(0, boot_id_cap));
    }
    num_member(o, "mono_ns", r.mono_ns);
    if (r.wall_ns != 0) {
        time_member(o, "ts", r.wall_ns);
    }
    o.put(",\"clock_trusted\":").put(r.clock_trusted ? "true" : "false");
    o.put(",\"level\":\"").put(level_name(r.level)).put('"');
    o.put(",\"kind\":\"").put(status::event_kind_name(r.kind)).put('"');
    if (r.name_len != 0) {
        str_member(o, "name", r.name_view());
    }
    if (r.from_len != 0) {
        str_member(o, "from", r.from_view());
    }
    if (r.to_len != 0) {
        str_member(o, "to", r.to_view());
    }
    if (r.reason != Reason::unknown) {
        o.put(",\"reason\":\"").put(reason_id(r.reason)).put('"');
    } else if (r.reason_text_len != 0) {
        o.put(",\"reason\":\"").put(r.reason_text_view()).put('"');
    }
    if (r.sys_errno != 0) {
        num_member(o, "errno", r.sys_errno);
    }
    if (r.pid != 0) {
        num_member(o, "pid", r.pid);
    }
    if (r.has_exit) {
        if (r.exit_signal != 0) {
            o.put(",\"exit\":{\"signal\":").put_i64(r.exit_signal);
            if (r.exit_core) {
                o.put(",\"core_dumped\":true");
            }
            o.put('}');
        } else {
            o.put(",\"exit\":{\"code\":").put_i64(r.exit_code).put('}');
        }
    }
    if (r.message_len != 0) {
        str_member(o, "message", r.message_view());
    }
    if (r.resolution_len != 0) {
        str_member(o, "resolution", r.resolution_view());
    }
    if (r.fields_len != 0) {
        o.put(",\"fields\":{").put(r.fields_view()).put('}');
    }
    if (r.count > 1) {
        o.put(",\"count\":").put_u64(r.count);
        if (r.first_wall_ns != 0) {
            time_member(o, "first_ts", r.first_wall_ns);
        }
        num_member(o, "first_mono_ns", r.first_mono_ns);
    }
    o.put("}\n");
    return o.overflowed() ? 0 : o.size();
}

// --- folding -------------------------------------------------------------------

bool folder::same_subject(const record& a, const record& b) noexcept {
    return a.kind == b.kind && a.name_view() == b.name_view();
}

bool folder::same_transition(const record& a, const record& b) noexcept {
    return same_subject(a, b) && a.reason == b.reason && a.from_view() == b.from_view() &&
           a.to_view() == b.to_view();
}

std::size_t folder::take_held(slot& s, record* out) noexcept {
    if (s.held == 0) {
        return 0;
    }
    *out = s.last;
    out->count = s.held;
    s.held = 0;
    return 1;
}

std::size_t folder::offer(const record& r, record* out) noexcept {
    ++clock_;
    slot* s = nullptr;
    slot* free_slot = nullptr;
    slot* oldest = nullptr;
    for (slot& c : slots_) {
        if (!c.used) {
            free_slot = free_slot == nullptr ? &c : free_slot;
            continue;
        }
        if (same_transition(c.last, r)) {
            s = &c;
            break;
        }
        if (oldest == nullptr || c.seen < oldest->seen) {
            oldest = &c;
        }
    }
    std::size_t n = 0;
    if (s == nullptr) {
        // A new transition: a free slot, else the least recently seen
        // one's (its held repeats go out first: they happened before `r`).
        if (free_slot != nullptr) {
            s = free_slot;
            ++used_;
        } else {
            s = oldest;
            n += take_held(*s, out + n);
            ++evictions_;
        }
        s->used = true;
        s->held = 0;
    } else if (s->held == 0 && s->passed < immediate_ && r.mono_ns - s->start_ns < window_ns_) {
        // An occasional repeat (a service an operator restarts: its
        // starting -> ready again) is written at once too; only a run of
        // them is folded.
        ++s->passed;
        s->last = r;
        s->seen = clock_;
        out[n++] = r;
        return n;
    } else if (r.mono_ns - s->start_ns < window_ns_ || s->held != 0) {
        if (r.mono_ns - s->start_ns >= window_ns_) {
            // The window passed with repeats held: they go out, and
            // `r` opens the next window's fold.
            n += take_held(*s, out + n);
            s->start_ns = r.mono_ns;
        }
        const std::int64_t first_mono = s->held == 0 ? r.mono_ns : s->last.first_mono_ns;
        const std::int64_t first_wall = s->held == 0 ? r.wall_ns : s->last.first_wall_ns;
        s->last = r;
        s->last.first_mono_ns = first_mono;
        s->last.first_wall_ns = first_wall;
        ++s->held;
        s->last.count = s->held;
        s->seen = clock_;
        ++folded_;
        return n;
    }
    // A new transition, or a repeat after a quiet window: written at once,
    // a new run.
    s->last = r;
    s->passed = 1;
    s->start_ns = r.mono_ns;
    s->seen = clock_;
    out[n++] = r;
    return n;
}

std::size_t folder::flush_due(std::int64_t now_mono_ns, record* out, std::size_t room) noexcept {
    std::size_t n = 0;
    for (slot& s : slots_) {
        if (n == room) {
            break;
        }
        if (s.used && s.held != 0 && now_mono_ns - s.start_ns >= window_ns_) {
            n += take_held(s, out + n);
            s.start_ns = now_mono_ns;
        }
    }
    return n;
}

std::size_t folder::flush_all(record* out, std::size_t room) noexcept {
    std::size_t n = 0;
    for (slot& s : slots_) {
        if (n == room) {
            break;
        }
        if (s.used) {
            n += take_held(s, out + n);
        }
    }
    return n;
}

std::int64_t folder::next_due() const noexcept {
    std::int64_t due = 0;
    for (const slot& s : slots_) {
        if (s.used && s.held != 0 && (due == 0 || s.start_ns + window_ns_ < due)) {
            due = s.start_ns + window_ns_;
        }
    }
    return due;
}

} // namespace custos::eventlog

// --- custom records --------------------------------------------------------------

namespace custos::eventlog {

namespace {

bool reason_ok(sv s) noexcept {
    if (s.empty() || s.size() >= record::reason_text_cap) {
        return false;
    }
    for (char c : s) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool key_ok(sv s) noexcept {
    if (s.empty() || s.size() > 31) {
        return false;
    }
    for (char c : s) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return true;
}

} // namespace

bool make_custom(record& out, sv reason, sv message, std::span<const LogField> fields, LogLevel lvl,
                 sv name, std::int64_t mono_ns, std::int64_t wall_ns) noexcept {
    out.kind = status::event_kind::custom;
    out.level = static_cast<level>(lvl);
    out.mono_ns = mono_ns;
    out.wall_ns = wall_ns;
    out.reason = Reason::unknown;
    out.name_len = 0;
    out.from_len = 0;
    out.to_len = 0;
    out.resolution_len = 0;
    out.fields_len = 0;
    out.reason_text_len = 0;
    if (!reason_ok(reason) || fields.size() > log_field_max ||
        static_cast<unsigned>(lvl) > static_cast<unsigned>(LogLevel::critical)) {
        return false;
    }
    std::memcpy(out.reason_text, reason.data(), reason.size());
    out.reason_text_len = static_cast<std::uint8_t>(reason.size());
    out.set_message(message);
    out.set_name(name);
    std::size_t used = 0;
    for (const LogField& f : fields) {
        if (!key_ok(f.key)) {
            return false;
        }
        char one[record::fields_cap];
        text_out o(one, sizeof one);
        if (used != 0) {
            o.put(',');
        }
        o.put('"').put(f.key).put("\":");
        status::put_str(o, f.value);
        if (o.overflowed() || used + o.size() > record::fields_cap) {
            continue; // left out whole: the rest may still fit
        }
        std::memcpy(out.fields + used, one, o.size());
        used += o.size();
    }
    out.fields_len = static_cast<std::uint16_t>(used);
    return true;
}

} // namespace custos::eventlog
