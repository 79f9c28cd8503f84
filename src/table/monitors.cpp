// The monitors' part of the table check (table/validate.hpp).
#include <cstdio>

#include "table/validate.hpp"

namespace custos::tbl {
namespace {

bool name_taken(const Table& t, std::uint32_t i, std::string_view n) noexcept {
    for (std::uint32_t j = 0; j < i; ++j) {
        if (t.monitors[j].name == n) {
            return true;
        }
    }
    return find_service(t.services, n) != no_index || find_probe(t.probes, n) != no_index;
}

void check_monitor(const Table& t, std::uint32_t i, reporter& rep) noexcept {
    const MonitorSpec& m = t.monitors[i];
    const std::string_view n = m.name;
    if (!name_valid(n)) {
        rep.monitor(i, MonitorField::name, Reason::name_invalid, 0, n,
                    "Give every monitor a name of 1-31 characters from [A-Za-z0-9._-]");
    } else if (name_taken(t, i, n)) {
        rep.monitor(i, MonitorField::name, Reason::name_duplicate, 0, n,
                    "Rename the monitor: names must be unique among services, probes and "
                    "monitors");
    }
    if (m.run == nullptr) {
        rep.monitor(i, MonitorField::run, Reason::invalid_argument, 0, n,
                    "Give the monitor a run function");
    }

    auto negative = [&](Duration d, MonitorField f) {
        if (d.count() < 0) {
            rep.monitor(i, f, Reason::invalid_argument, 0, n, "Durations cannot be negative");
            return true;
        }
        return false;
    };
    negative(m.backoff_initial, MonitorField::backoff_initial);
    if (!negative(m.backoff_max, MonitorField::backoff_max) && m.backoff_max < m.backoff_initial) {
        rep.monitor(i, MonitorField::backoff_max, Reason::invalid_argument, 0, n,
                    "Make backoff_max at least backoff_initial");
    }
    if (m.backoff_multiplier_x100 < 100 || m.backoff_multiplier_x100 > 10000) {
        rep.monitor(i, MonitorField::backoff_multiplier, Reason::invalid_argument, 0, n,
                    "Set backoff_multiplier_x100 between 100 (x1) and 10000 (x100)");
    }
    if (m.backoff_jitter_percent > 100) {
        rep.monitor(i, MonitorField::backoff_jitter, Reason::invalid_argument, 0, n,
                    "Set backoff_jitter_percent between 0 and 100");
    }
    negative(m.stable_after, MonitorField::stable_after);
    negative(m.heartbeat_interval, MonitorField::heartbeat_interval);
    if (!negative(m.deadline, MonitorField::deadline) && m.deadline.count() > 0 &&
        m.deadline < min_monitor_deadline) {
        rep.monitor(i, MonitorField::deadline, Reason::invalid_argument, 0, n,
                    "Give deadline as 0 (not watched) or at least 100 ms");
    }
    if (m.stack_size != 0 &&
        (m.stack_size < min_monitor_stack || m.stack_size > max_monitor_stack)) {
        rep.monitor(i, MonitorField::stack_size, Reason::invalid_argument, 0, n,
                    "Give stack_size as 0 (256 KiB) or from 64 KiB to 64 MiB");
    }
    for (std::string_view d : m.depends_on) {
        if (find_service(t.services, d) != no_index || find_probe(t.probes, d) != no_index) {
            continue;
        }
        bool monitor = false;
        for (const MonitorSpec& o : t.monitors) {
            monitor = monitor || o.name == d;
        }
        rep.monitor(i, MonitorField::depends_on, Reason::dependency_unknown, 0, d,
                    monitor ? "A monitor depends on services and probes only, not on another "
                              "monitor"
                            : "Name a service or probe declared in the same table");
    }
}

} // namespace

void validate_monitors(const Table& t, reporter& rep) noexcept {
    const std::size_t n = t.monitors.size();
    if (t.runtime.max_monitors > monitors_limit) {
        char text[64];
        std::snprintf(text, sizeof text, "max_monitors %u, at most %u", t.runtime.max_monitors,
                      monitors_limit);
        rep.monitor(UINT32_MAX, MonitorField::section, Reason::capacity_exceeded, 0, text,
                    "Lower max_monitors to 64 or less");
    }
    if (n > t.runtime.max_monitors || n > monitors_limit) {
        char text[64];
        std::snprintf(text, sizeof text, "%zu monitors, max_monitors %u", n,
                      t.runtime.max_monitors);
        rep.monitor(UINT32_MAX, MonitorField::section, Reason::capacity_exceeded, 0, text,
                    "Raise max_monitors (at most 64) or declare fewer monitors");
        return;
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        check_monitor(t, i, rep);
    }
}

} // namespace custos::tbl
