// The Prometheus text (0.0.4) of /metrics: its families over the records,
// the counters' families, the control plane's and the process's; the
// metrics document's steps.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "status/render_detail.hpp"

namespace custos::status::detail {
namespace {

// --- Prometheus ----------------------------------------------------------------

void put_family_head(text_out& o, sv name, sv type, sv help) noexcept {
    o.put("# HELP ").put(name).put(' ').put(help).put("\n# TYPE ").put(name).put(' ').put(type);
    o.put('\n');
}

// name{k1="v1"[,k2="v2"]} (the labels' values escaped), without the value.
void put_series(text_out& o, sv name, sv k1, sv v1, sv k2 = {}, sv v2 = {}) noexcept {
    o.put(name).put('{').put(k1).put("=\"").put_label_value(v1).put('"');
    if (!k2.empty()) {
        o.put(',').put(k2).put("=\"").put_label_value(v2).put('"');
    }
    o.put("} ");
}

void put_u(text_out& o, std::uint64_t v) noexcept {
    o.put_u64(v).put('\n');
}

// One sample per value of an enum, 1 for the current one.
template <class E>
void put_one_hot(text_out& o, sv name, sv subject_key, sv subject, sv key, std::size_t count,
                 sv (*name_of)(E), E current) noexcept {
    for (std::size_t k = 0; k < count; ++k) {
        const auto e = static_cast<E>(k);
        if (subject_key.empty()) {
            put_series(o, name, key, name_of(e));
        } else {
            put_series(o, name, subject_key, subject, key, name_of(e));
        }
        put_u(o, e == current ? 1 : 0);
    }
}

void put_wall_seconds(text_out& o, std::int64_t wall_ns) noexcept {
    o.put_seconds(wall_ns, 3).put('\n');
}

} // namespace

service_figures figures_of(const ServiceStatus& s) noexcept {
    service_figures f;
    f.name = s.name;
    f.state = s.state;
    f.started_ns = s.started_ns;
    for (std::size_t k = 0; k < restart_cause_count; ++k) {
        f.restarts_by_cause[k] = s.restarts_by_cause[k];
    }
    f.deaths = s.death_count;
    f.output_bytes = s.output_bytes;
    f.output_dropped_bytes = s.output_dropped_bytes;
    return f;
}

probe_figures figures_of(const ProbeStatus& p) noexcept {
    probe_figures f;
    f.name = p.name;
    f.state = p.state;
    f.duration_ns = probe_duration(p);
    f.checks = p.checks;
    f.failures = p.failures;
    return f;
}

namespace {

// Service `i`'s figures: from the scratch when begin() filled it, else
// from the snapshot.
service_figures service_figs(const render_context& c, std::uint32_t i) noexcept {
    if (c.scratch != nullptr && i < c.scratch->services_filled) {
        return c.scratch->services[i];
    }
    return figures_of(service_part(*c.snap, i, snapshot::service_part::no_deaths));
}

probe_figures probe_figs(const render_context& c, std::uint32_t i) noexcept {
    if (c.scratch != nullptr && i < c.scratch->probes_filled) {
        return c.scratch->probes[i];
    }
    return figures_of(probe_part(*c.snap, i, snapshot::probe_part::figures));
}

constexpr family families[] = {
    {"custos_build_info", "gauge", "custos's version and I/O backend (always 1).", per::once,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t) {
         put_series(o, f.name, "version", c.version, "backend", c.backend);
         put_u(o, 1);
     }},
    {"custos_health", "gauge", "The appliance's health: 1 for the current one.", per::once,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t) {
         put_one_hot(o, f.name, {}, {}, "health", health_count, health_name,
                     health_of(*c.snap).health);
     }},
    {"custos_service_state", "gauge", "The service's state: 1 for the current one.", per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_one_hot(o, f.name, "service", s.name, "state", service_state_count, state_name,
                     s.state);
     }},
    {"custos_service_up", "gauge", "1 when the service's process runs (running or ready).",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_u(o, s.state == ServiceState::running || s.state == ServiceState::ready ? 1 : 0);
     }},
    {"custos_service_ready", "gauge", "1 when the service is ready.", per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_u(o, s.state == ServiceState::ready ? 1 : 0);
     }},
    {"custos_service_start_time_seconds", "gauge",
     "Start of the service's running process, seconds since the epoch (0 when none runs).",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_wall_seconds(o, s.started_ns != 0 ? wall_of(c, s.started_ns) : 0);
     }},
    {"custos_service_restarts_total", "counter", "Restarts of the service since init, by cause.",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         for (std::size_t k = 0; k < restart_cause_count; ++k) {
             put_series(o, f.name, "service", s.name, "cause",
                        restart_cause_name(static_cast<RestartCause>(k)));
             put_u(o, s.restarts_by_cause[k]);
         }
     }},
    {"custos_service_deaths_total", "counter", "Deaths of the service's processes since init.",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_u(o, s.deaths);
     }},
    {"custos_service_output_bytes_total", "counter",
     "Bytes of the service's stdout and stderr custos captured.", per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_u(o, s.output_bytes);
     }},
    {"custos_service_output_dropped_bytes_total", "counter",
     "Bytes of the service's captured lines (with their prefixes) its files do not have (disk "
     "full, failing or too slow).",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_u(o, s.output_dropped_bytes);
     }},
    {"custos_probe_up", "gauge", "1 when the probe is ready.", per::probe,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const probe_figures p = probe_figs(c, i);
         put_series(o, f.name, "probe", p.name);
         put_u(o, p.state == ProbeState::ready ? 1 : 0);
     }},
    {"custos_probe_duration_seconds", "gauge", "Duration of the probe's last finished check.",
     per::probe,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const probe_figures p = probe_figs(c, i);
         put_series(o, f.name, "probe", p.name);
         o.put_seconds(p.duration_ns, 6).put('\n');
     }},
    {"custos_probe_checks_total", "counter", "Checks the probe ran.", per::probe,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const probe_figures p = probe_figs(c, i);
         put_series(o, f.name, "probe", p.name);
         put_u(o, p.checks);
     }},
    {"custos_probe_failures_total", "counter", "Checks of the probe that failed.", per::probe,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const probe_figures p = probe_figs(c, i);
         put_series(o, f.name, "probe", p.name);
         put_u(o, p.failures);
     }},
    {"custos_monitor_state", "gauge", "The monitor's state: 1 for the current one.", per::monitor,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const MonitorStatus m = c.snap->monitor(i);
         put_one_hot(o, f.name, "monitor", m.name, "state", monitor_state_count, monitor_state_name,
                     m.state);
     }},
    {"custos_watchdog_feeds_total", "counter", "Hardware watchdog feeds.", per::once,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t) {
         o.put(f.name).put(' ');
         put_u(o, c.snap->watchdog().feeds);
     }},
    {"custos_watchdog_state", "gauge", "The hardware watchdog's state: 1 for the current one.",
     per::once,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t) {
         put_one_hot(o, f.name, {}, {}, "state", watchdog_state_count, watchdog_state_name,
                     c.snap->watchdog().state);
     }},
};

// A table of counters as families prefix + name + "_total".
template <class T, std::size_t N>
void put_counter_families(text_out& o, sv prefix, const counter<T> (&table)[N],
                          const T& v) noexcept {
    for (const counter<T>& k : table) {
        if (k.help.empty()) {
            continue; // rendered by its owner with labels or another name
        }
        o.put("# HELP ").put(prefix).put(k.name).put("_total ").put(k.help);
        o.put("\n# TYPE ").put(prefix).put(k.name).put("_total counter\n");
        o.put(prefix).put(k.name).put("_total ");
        put_u(o, v.*k.field);
    }
}

void put_control_metrics(text_out& o, const control_counters& k) noexcept {
    constexpr sv req = "custos_control_requests_total";
    put_family_head(o, req, "counter", "Requests answered, by status code.");
    for (std::size_t i = 0; i < std::size(k.by_code); ++i) {
        put_series(o, req, "code", code_label(i));
        put_u(o, k.by_code[i]);
    }
    constexpr sv refused = "custos_control_refused_total";
    put_family_head(o, refused, "counter", "Connections refused (503): every slot in use.");
    o.put(refused).put(' ');
    put_u(o, k.refused_full);
    put_counter_families(o, "custos_control_", control_fields, k);
    put_family_head(o, "custos_control_clients", "gauge", "Clients connected now.");
    o.put("custos_control_clients ");
    put_u(o, k.clients);
    put_family_head(o, "custos_control_max_clients", "gauge", "Clients served at once, at most.");
    o.put("custos_control_max_clients ");
    put_u(o, k.max_clients);
}

void put_process_metrics(text_out& o, const process_info& p) noexcept {
    auto gauge = [&](sv name, sv type, sv help) {
        put_family_head(o, name, type, help);
        o.put(name).put(' ');
    };
    gauge("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.");
    const double cpu_ns = p.cpu_seconds * 1e9;
    o.put_seconds(cpu_ns > 0 ? static_cast<std::int64_t>(cpu_ns) : 0, 3).put('\n');
    gauge("process_open_fds", "gauge", "Number of open file descriptors.");
    put_u(o, p.open_fds);
    gauge("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    put_u(o, p.max_fds);
    gauge("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    put_u(o, p.virtual_bytes);
    gauge("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    put_u(o, p.resident_bytes);
    gauge("process_start_time_seconds", "gauge",
          "Start time of the process since unix epoch in seconds.");
    put_wall_seconds(o, p.start_time_wall_ns);
    gauge("process_threads", "gauge", "Number of OS threads in the process.");
    put_u(o, p.threads);
}

// --- the metrics document's steps ----------------------------------------------

// Metrics: a family's header item carries its samples when it has one set
// of them; otherwise item k > 0 is subject k - 1's.
bool family_item(const item& it) noexcept {
    const family& f = *it.s.fam;
    if (it.i == 0) {
        put_family_head(it.o, f.name, f.type, f.help);
    }
    if (f.over == per::once || it.i != 0) {
        f.sample(it.o, it.c, f, f.over == per::once ? 0 : it.i - 1);
    }
    return false;
}
bool runtime_metrics(const item& it) noexcept {
    put_counter_families(it.o, "custos_runtime_", runtime_counters, it.c.snap->stats());
    put_counter_families(it.o, "custos_", log_counters, it.c.snap->stats());
    return false;
}
bool reactor_metrics(const item& it) noexcept {
    put_counter_families(it.o, "custos_reactor_", reactor_counters, *it.c.reactor);
    return false;
}
bool control_metrics(const item& it) noexcept {
    put_control_metrics(it.o, *it.c.control);
    return false;
}
bool process_metrics(const item& it) noexcept {
    put_process_metrics(it.o, *it.c.process);
    return false;
}

constexpr std::size_t family_count = std::size(families);

constexpr auto metrics_table = [] {
    std::array<step, family_count + 4> a{};
    for (std::size_t i = 0; i < family_count; ++i) {
        a[i] = step{items::family, family_item, {}, &families[i]};
    }
    a[family_count] = step{items::one, runtime_metrics};
    a[family_count + 1] = step{items::reactor, reactor_metrics};
    a[family_count + 2] = step{items::control, control_metrics};
    a[family_count + 3] = step{items::process, process_metrics};
    return a;
}();

} // namespace

std::span<const step> metrics_steps() noexcept {
    return metrics_table;
}

} // namespace custos::status::detail
