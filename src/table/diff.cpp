// Field by field: a field added to a spec must be added here too (the
// reload tests change every field of a service once).
#include "table/diff.hpp"

#include <cstdio>

namespace custos::tbl {

namespace {

template <class T>
bool same_list(std::span<const T> a, std::span<const T> b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!(a[i] == b[i])) {
            return false;
        }
    }
    return true;
}

bool same_text(const char* a, const char* b) noexcept {
    if (a == nullptr || b == nullptr) {
        return a == b;
    }
    return std::string_view(a) == std::string_view(b);
}

} // namespace

bool same_service(const ServiceSpec& a, const ServiceSpec& b) noexcept {
    return a.name == b.name && same_list(a.argv, b.argv) && same_list(a.env, b.env) &&
           a.cwd == b.cwd && a.user == b.user && a.group == b.group && a.restart == b.restart &&
           a.backoff_initial == b.backoff_initial && a.backoff_max == b.backoff_max &&
           a.backoff_multiplier_x100 == b.backoff_multiplier_x100 &&
           a.backoff_jitter_percent == b.backoff_jitter_percent &&
           a.stable_after == b.stable_after && a.max_restarts == b.max_restarts &&
           a.intensity_restarts == b.intensity_restarts &&
           a.intensity_window == b.intensity_window && a.start_delay == b.start_delay &&
           same_list(a.depends_on, b.depends_on) && a.on_dependency_down == b.on_dependency_down &&
           a.ready == b.ready && a.ready_fd == b.ready_fd && a.channel_fd == b.channel_fd &&
           a.ready_probe == b.ready_probe && a.ready_timeout == b.ready_timeout &&
           a.liveness == b.liveness && a.watchdog == b.watchdog && a.stop_signal == b.stop_signal &&
           a.stop_timeout == b.stop_timeout && a.runtime_dir == b.runtime_dir &&
           a.output == b.output && a.critical == b.critical;
}

bool same_service(const ServiceSpec& a, const service_plan& pa, const ServiceSpec& b,
                  const service_plan& pb) noexcept {
    return same_service(a, b) && same_text(pa.path, pb.path) && pa.uid == pb.uid &&
           pa.gid == pb.gid && pa.notify == pb.notify;
}

bool same_probe(const ProbeSpec& a, const ProbeSpec& b) noexcept {
    return a.name == b.name && a.kind == b.kind && a.target == b.target &&
           same_list(a.argv, b.argv) && same_list(a.members, b.members) &&
           same_list(a.expect_status, b.expect_status) && a.owner == b.owner && a.mode == b.mode &&
           a.writable == b.writable && a.timeout == b.timeout &&
           a.startup_initial == b.startup_initial && a.startup_max == b.startup_max &&
           a.startup_multiplier_x100 == b.startup_multiplier_x100 &&
           a.startup_tries == b.startup_tries && a.interval == b.interval &&
           a.success_threshold == b.success_threshold &&
           a.failure_threshold == b.failure_threshold && a.reason == b.reason &&
           a.resolution == b.resolution && a.critical == b.critical && a.grace == b.grace &&
           a.on_ready == b.on_ready && a.on_down == b.on_down && a.hook_ctx == b.hook_ctx;
}

bool same_probe(const ProbeSpec& a, const probe_plan& pa, const ProbeSpec& b,
                const probe_plan& pb) noexcept {
    return same_probe(a, b) && same_text(pa.path, pb.path) && pa.owner.uid == pb.owner.uid &&
           pa.owner.gid == pb.owner.gid;
}

bool same_monitor(const MonitorSpec& a, const MonitorSpec& b) noexcept {
    return a.name == b.name && a.run == b.run && a.arg == b.arg &&
           a.backoff_initial == b.backoff_initial && a.backoff_max == b.backoff_max &&
           a.backoff_multiplier_x100 == b.backoff_multiplier_x100 &&
           a.backoff_jitter_percent == b.backoff_jitter_percent &&
           a.stable_after == b.stable_after && a.degraded_every == b.degraded_every &&
           a.heartbeat_interval == b.heartbeat_interval && a.deadline == b.deadline &&
           a.on_wedge == b.on_wedge && a.critical == b.critical &&
           same_list(a.depends_on, b.depends_on) && a.on_dependency_down == b.on_dependency_down &&
           a.stack_size == b.stack_size;
}

bool same_runtime(const RuntimeConfig& a, const RuntimeConfig& b) noexcept {
    return a.max_services == b.max_services && a.max_probes == b.max_probes &&
           a.max_probe_checks == b.max_probe_checks && a.max_monitors == b.max_monitors &&
           a.service_slots == b.service_slots && a.probe_slots == b.probe_slots &&
           a.stop_timeout == b.stop_timeout && a.monitor_stop_timeout == b.monitor_stop_timeout &&
           a.boot_grace == b.boot_grace && a.notify_fd == b.notify_fd &&
           a.keepalive_gate == b.keepalive_gate && a.notify_dir == b.notify_dir &&
           a.runtime_dir_root == b.runtime_dir_root && a.cgroup == b.cgroup &&
           a.pid_record == b.pid_record && a.handle_signals == b.handle_signals &&
           a.seed == b.seed && a.reap_orphans == b.reap_orphans;
}

bool same_watchdog(const WatchdogConfig& a, const WatchdogConfig& b) noexcept {
    return a.device == b.device && a.board == b.board && a.path == b.path &&
           a.timeout == b.timeout && a.interval == b.interval && a.pretimeout == b.pretimeout &&
           a.magic_close == b.magic_close && a.required == b.required && a.max_hold == b.max_hold &&
           a.state_file == b.state_file && a.safe_mode_boots == b.safe_mode_boots &&
           a.safe_mode_window == b.safe_mode_window && a.gpio_chip == b.gpio_chip &&
           a.gpio_line == b.gpio_line && a.gpio_enable_line == b.gpio_enable_line &&
           a.gpio_active_low == b.gpio_active_low && a.led == b.led;
}

bool same_control(const ControlConfig& a, const ControlConfig& b) noexcept {
    return a.socket == b.socket && a.mode == b.mode && a.group == b.group &&
           same_list(a.operators, b.operators) && a.max_clients == b.max_clients &&
           a.max_head_bytes == b.max_head_bytes && a.max_body_bytes == b.max_body_bytes &&
           a.head_timeout == b.head_timeout && a.idle_timeout == b.idle_timeout &&
           a.max_requests == b.max_requests && a.send_timeout == b.send_timeout &&
           a.max_wait == b.max_wait && a.metrics_listen == b.metrics_listen &&
           a.metrics_textfile == b.metrics_textfile &&
           a.metrics_textfile_interval == b.metrics_textfile_interval;
}

// The event log and the capture sink are laid out at init from these (ring
// and file sizes, the directory): a restart applies a change.
bool same_log(const LogConfig& a, const LogConfig& b) noexcept {
    return a.dir == b.dir && a.max_file_bytes == b.max_file_bytes && a.max_files == b.max_files &&
           a.ring_bytes == b.ring_bytes && a.fold_window == b.fold_window &&
           a.sync_interval == b.sync_interval && a.output_file_bytes == b.output_file_bytes &&
           a.output_files == b.output_files && a.output_ring_bytes == b.output_ring_bytes &&
           a.clock == b.clock;
}

namespace {

// A service in both tables whose `output` differs: its pipes and its
// capture slot were laid out at init for the first (a restart applies it).
const ServiceSpec* changed_output(const Table& a, const Table& b) noexcept {
    for (const ServiceSpec& nb : b.services) {
        for (const ServiceSpec& na : a.services) {
            if (na.name == nb.name && na.output != nb.output) {
                return &nb;
            }
        }
    }
    return nullptr;
}

} // namespace

std::string_view first_unsupported(const Table& a, const Table& b, char* out,
                                   std::size_t cap) noexcept {
    int n = 0;
    if (!same_runtime(a.runtime, b.runtime)) {
        n = std::snprintf(out, cap, "[custos] settings");
    } else if (a.monitors.size() != b.monitors.size()) {
        n = std::snprintf(out, cap, "monitors (%zu before, %zu now)", a.monitors.size(),
                          b.monitors.size());
    } else if (!same_watchdog(a.watchdog, b.watchdog)) {
        n = std::snprintf(out, cap, "[watchdog]");
    } else if (!same_control(a.control, b.control)) {
        n = std::snprintf(out, cap, "[control]");
    } else if (!same_log(a.log, b.log)) {
        n = std::snprintf(out, cap, "[log]");
    } else if (const ServiceSpec* c = changed_output(a, b); c != nullptr) {
        n = std::snprintf(out, cap, "service '%.*s' output", static_cast<int>(c->name.size()),
                          c->name.data());
    } else {
        for (std::size_t m = 0; n == 0 && m < a.monitors.size(); ++m) {
            if (!same_monitor(a.monitors[m], b.monitors[m])) {
                n = std::snprintf(out, cap, "monitor '%.*s'",
                                  static_cast<int>(b.monitors[m].name.size()),
                                  b.monitors[m].name.data());
            }
        }
    }
    if (n <= 0 || cap == 0) {
        if (cap != 0) {
            out[0] = '\0';
        }
        return {};
    }
    return {out, static_cast<std::size_t>(n) < cap ? static_cast<std::size_t>(n) : cap - 1};
}

} // namespace custos::tbl
