#include "status/snapshot.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

namespace custos::status {
namespace {

// seqlock<T> is cache-line aligned (its sequence starts a line, so records
// do not share lines), which is more than the arena's block guarantees
// (operator new: alignof(max_align_t)). Take the slack and align by hand.
template <class T>
std::size_t bytes_for(std::uint32_t n) noexcept {
    return n == 0 ? 0 : sizeof(T) * n + alignof(T) - 1;
}

template <class T>
T* make_aligned(arena& mem, std::uint32_t n) noexcept {
    if (n == 0) {
        return nullptr;
    }
    void* raw = mem.take(bytes_for<T>(n), 1);
    if (raw == nullptr) {
        return nullptr;
    }
    auto at = reinterpret_cast<std::uintptr_t>(raw);
    at = (at + alignof(T) - 1) & ~(std::uintptr_t{alignof(T)} - 1);
    T* arr = reinterpret_cast<T*>(at);
    for (std::uint32_t i = 0; i < n; ++i) {
        ::new (static_cast<void*>(arr + i)) T();
    }
    return arr;
}

} // namespace

std::size_t snapshot::footprint(std::uint32_t services, std::uint32_t probes,
                                std::uint32_t monitors) noexcept {
    return bytes_for<seqlock<ServiceStatus>>(services) + bytes_for<seqlock<ProbeStatus>>(probes) +
           bytes_for<seqlock<MonitorStatus>>(monitors);
}

Result<void> snapshot::init(arena& mem, std::uint32_t services, std::uint32_t probes,
                            std::uint32_t monitors) noexcept {
    asked_services_ = services;
    asked_probes_ = probes;
    service_ = make_aligned<seqlock<ServiceStatus>>(mem, services);
    probe_ = make_aligned<seqlock<ProbeStatus>>(mem, probes);
    monitor_ = make_aligned<seqlock<MonitorStatus>>(mem, monitors);
    const bool ok = (service_ != nullptr || services == 0) && (probe_ != nullptr || probes == 0) &&
                    (monitor_ != nullptr || monitors == 0);
    services_ = ok ? services : 0;
    shown_.store(services_, std::memory_order_relaxed);
    probes_ = ok ? probes : 0;
    probes_shown_.store(probes_, std::memory_order_relaxed);
    monitors_ = ok ? monitors : 0;
    if (!ok) {
        service_ = nullptr;
        probe_ = nullptr;
        monitor_ = nullptr;
        return fail(Reason::out_of_memory, ENOMEM, "status snapshot");
    }
    return {};
}

void snapshot::begin_publish() noexcept {
    // Relaxed: only the writer modifies seq_.
    const std::uint32_t s = seq_.load(std::memory_order_relaxed);
    // Odd: a publication is open.
    seq_.store(s + 1, std::memory_order_relaxed);
    // Release fence pairs with the acquire fence in try_read_all(): a reader
    // that sees any record stored after this point also sees the odd value.
    std::atomic_thread_fence(std::memory_order_release);
}

void snapshot::end_publish() noexcept {
    const std::uint32_t s = seq_.load(std::memory_order_relaxed);
    // Release pairs with the acquire load at the start of try_read_all(): a
    // reader that sees the new even value sees every record stored above.
    seq_.store(s + 1, std::memory_order_release);
}

void snapshot::set_service_count(std::uint32_t n) noexcept {
    // Relaxed: read under the publication sequence (try_read_all) or, by
    // service_count(), as a bound that service() tolerates either way.
    shown_.store(n < services_ ? n : services_, std::memory_order_relaxed);
}

void snapshot::set_probe_count(std::uint32_t n) noexcept {
    probes_shown_.store(n < probes_ ? n : probes_, std::memory_order_relaxed);
}

bool snapshot::put_service(std::uint32_t i, const ServiceStatus& s) noexcept {
    if (i >= services_) {
        return false;
    }
    // The writer's own read never overlaps a write, so it never fails.
    ServiceStatus now;
    if (service_[i].try_load(now) && now == s) {
        return false;
    }
    service_[i].store(s);
    return true;
}

bool snapshot::put_probe(std::uint32_t p, const ProbeStatus& s) noexcept {
    if (p >= probes_) {
        return false;
    }
    ProbeStatus now;
    if (probe_[p].try_load(now) && now == s) {
        return false;
    }
    probe_[p].store(s);
    return true;
}

bool snapshot::put_monitor(std::uint32_t m, const MonitorStatus& s) noexcept {
    if (m >= monitors_) {
        return false;
    }
    MonitorStatus now;
    if (monitor_[m].try_load(now) && now == s) {
        return false;
    }
    monitor_[m].store(s);
    return true;
}

bool snapshot::put_health(const HealthStatus& h) noexcept {
    // ~7 KiB of the reactor's stack (the copy and the seqlock's word
    // buffer): the reactor thread has the default stack.
    HealthStatus now;
    if (health_.try_load(now) && now == h) {
        return false;
    }
    health_.store(h);
    return true;
}

bool snapshot::put_watchdog(const WatchdogStatus& w) noexcept {
    WatchdogStatus now;
    if (watchdog_.try_load(now) && now == w) {
        return false;
    }
    watchdog_.store(w);
    return true;
}

void snapshot::put_stats(const RuntimeStats& s) noexcept {
    stats_.store(s);
}

ServiceStatus snapshot::service(std::uint32_t i) const noexcept {
    return i < services_ ? service_[i].load() : ServiceStatus{};
}

ProbeStatus snapshot::probe(std::uint32_t p) const noexcept {
    return p < probes_ ? probe_[p].load() : ProbeStatus{};
}

// The parts are byte ranges of the public records: offsetof needs them
// standard-layout.
static_assert(std::is_standard_layout_v<ServiceStatus> && std::is_standard_layout_v<ProbeStatus> &&
              std::is_standard_layout_v<HealthStatus>);

std::uint32_t snapshot::service_into(std::uint32_t i, ServiceStatus& out,
                                     service_part what) const noexcept {
    if (i >= services_) {
        return 0;
    }
    return service_[i].load_parts(out, [&](const seqlock<ServiceStatus>::parts& p) {
        switch (what) {
        case service_part::head:
            p.copy(0, offsetof(ServiceStatus, since_ns));
            return;
        case service_part::no_deaths:
            p.copy(0, offsetof(ServiceStatus, deaths));
            return;
        case service_part::shown: {
            p.copy(0, offsetof(ServiceStatus, deaths));
            // May be torn until load_parts() returns: clamped.
            const std::uint64_t n =
                out.death_count < death_history_capacity ? out.death_count : death_history_capacity;
            p.copy(offsetof(ServiceStatus, deaths),
                   static_cast<std::size_t>(n) * sizeof(DeathRecord));
            return;
        }
        }
    });
}

std::uint32_t snapshot::probe_into(std::uint32_t i, ProbeStatus& out,
                                   probe_part what) const noexcept {
    if (i >= probes_) {
        return 0;
    }
    return probe_[i].load_parts(out, [&](const seqlock<ProbeStatus>::parts& p) {
        switch (what) {
        case probe_part::head:
            p.copy(0, offsetof(ProbeStatus, last_check_ns));
            p.copy(offsetof(ProbeStatus, last_error) + offsetof(ProbeError, reason),
                   sizeof(Reason));
            return;
        case probe_part::figures:
            p.copy(0, offsetof(ProbeStatus, last_error));
            return;
        case probe_part::all:
            p.copy(0, sizeof(ProbeStatus));
            return;
        }
    });
}

void snapshot::health_head(HealthStatus& out) const noexcept {
    health_.load_parts(out, [](const seqlock<HealthStatus>::parts& p) {
        p.copy(0, offsetof(HealthStatus, reasons));
        p.copy(offsetof(HealthStatus, summary),
               sizeof(HealthStatus) - offsetof(HealthStatus, summary));
    });
}

bool snapshot::health_reason(std::uint32_t k, HealthStatus& out) const noexcept {
    bool in = false;
    health_.load_parts(out, [&](const seqlock<HealthStatus>::parts& p) {
        p.copy(offsetof(HealthStatus, reason_count), sizeof(out.reason_count));
        // May be torn until load_parts() returns: only a bound here.
        in = k < out.reason_count && k < health_reason_capacity;
        if (in) {
            p.copy(offsetof(HealthStatus, reasons) + k * sizeof(HealthReason),
                   sizeof(HealthReason));
        }
    });
    return in;
}

MonitorStatus snapshot::monitor(std::uint32_t m) const noexcept {
    return m < monitors_ ? monitor_[m].load() : MonitorStatus{};
}

HealthStatus snapshot::health() const noexcept {
    return health_.load();
}

WatchdogStatus snapshot::watchdog() const noexcept {
    return watchdog_.load();
}

RuntimeStats snapshot::stats() const noexcept {
    return stats_.load();
}

std::uint32_t snapshot::generation() const noexcept {
    // Acquire pairs with end_publish()'s release store.
    return seq_.load(std::memory_order_acquire) / 2;
}

bool snapshot::try_read_all(std::span<ServiceStatus> s, std::span<ProbeStatus> p,
                            std::span<MonitorStatus> m, RuntimeStats& st, HealthStatus* health,
                            std::uint32_t& generation) const noexcept {
    // Acquire pairs with end_publish()'s release store.
    const std::uint32_t s1 = seq_.load(std::memory_order_acquire);
    if ((s1 & 1) != 0) {
        return false;
    }
    // Each record is read through its own seqlock (whole records only);
    // the publication sequence around them makes the set consistent.
    const std::uint32_t shown = shown_.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < shown && i < s.size(); ++i) {
        s[i] = service_[i].load();
    }
    const std::uint32_t probes_shown = probes_shown_.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < probes_shown && i < p.size(); ++i) {
        p[i] = probe_[i].load();
    }
    for (std::uint32_t i = 0; i < monitors_ && i < m.size(); ++i) {
        m[i] = monitor_[i].load();
    }
    st = stats_.load();
    if (health != nullptr) {
        *health = health_.load();
    }
    // Acquire fence pairs with begin_publish()'s release fence: if any record
    // read above was stored by a later publication, the load below sees its
    // odd (or a later) value.
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::uint32_t s2 = seq_.load(std::memory_order_relaxed);
    if (s1 != s2) {
        return false;
    }
    generation = s1 / 2;
    return true;
}

std::uint32_t snapshot::read_all(std::span<ServiceStatus> s, std::span<ProbeStatus> p,
                                 std::span<MonitorStatus> m, RuntimeStats& st,
                                 HealthStatus* health) const noexcept {
    std::uint32_t g = 0;
    while (!try_read_all(s, p, m, st, health, g)) {
    }
    return g;
}

void publisher::publish() noexcept {
    stale_ = false;
    snap_.begin_publish();
    const std::uint32_t ns = src_.service_count();
    snap_.set_service_count(ns);
    for (std::uint32_t i = 0; i < ns && i < snap_.service_count(); ++i) {
        (void)snap_.put_service(i, src_.service_status(i));
    }
    const std::uint32_t np = src_.probe_count();
    snap_.set_probe_count(np);
    for (std::uint32_t p = 0; p < np && p < snap_.probe_count(); ++p) {
        (void)snap_.put_probe(p, src_.probe_status(p));
    }
    const std::uint32_t nm = src_.monitor_count();
    for (std::uint32_t m = 0; m < nm && m < snap_.monitor_count(); ++m) {
        (void)snap_.put_monitor(m, src_.monitor_status(m));
    }
    (void)snap_.put_health(src_.health());
    if (const WatchdogStatus* w = src_.watchdog(); w != nullptr) {
        (void)snap_.put_watchdog(*w);
    }
    snap_.put_stats(src_.stats());
    snap_.end_publish();
}

bool publisher::publish_if_stale() noexcept {
    if (!stale_) {
        return false;
    }
    publish();
    return true;
}

} // namespace custos::status
