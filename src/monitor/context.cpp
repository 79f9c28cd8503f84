// MonitorContext: what a monitor's run function calls, on its own thread.
// Everything here writes only the monitor's own slot (slot.hpp); the only
// system calls are wait_for()'s ppoll() and, when the overlay changes, the
// mailbox doorbell of the notice (at most one outstanding per monitor).
#include <poll.h>

#include <cerrno>
#include <climits>
#include <ctime>

#include <custos/monitor.hpp>

#include "core/time.hpp"
#include "monitor/slot.hpp"

namespace custos {

std::string_view monitor_state_name(MonitorState s) noexcept {
    switch (s) {
    case MonitorState::stopped:
        return "stopped";
    case MonitorState::waiting:
        return "waiting";
    case MonitorState::running:
        return "running";
    case MonitorState::degraded:
        return "degraded";
    case MonitorState::backoff:
        return "backoff";
    case MonitorState::wedged:
        return "wedged";
    case MonitorState::stopping:
        return "stopping";
    }
    return "unknown";
}

namespace {

mon::slot& slot_of(void* p) noexcept {
    return *static_cast<mon::slot*>(p);
}

MonitorError to_monitor_error(const Error& e, std::int64_t at_ns) noexcept {
    MonitorError m;
    m.reason = e.reason();
    m.sys_errno = e.sys_errno();
    m.message = e.subject();
    m.at_ns = at_ns;
    return m;
}

// Wakes the reactor about the overlay unless a notice is already on its way.
void notify(mon::slot& s) noexcept {
    // acq_rel pairs with the reactor's exchange(false) before it samples: if
    // the reactor cleared the flag before our overlay store was visible to
    // it, we see false here and post again.
    if (!s.notice_pending.exchange(true, std::memory_order_acq_rel) && s.notify != nullptr) {
        s.notify(s.notify_ctx, s.index);
    }
}

} // namespace

std::string_view MonitorContext::name() const noexcept {
    return slot_of(slot_).name;
}

std::uint32_t MonitorContext::run_number() const noexcept {
    return slot_of(slot_).run;
}

bool MonitorContext::stop_requested() const noexcept {
    return slot_of(slot_).stop_requested();
}

int MonitorContext::stop_fd() const noexcept {
    return slot_of(slot_).stop_fd;
}

bool MonitorContext::wait_for(Duration d) noexcept {
    mon::slot& s = slot_of(slot_);
    const mono_time until = mono_clock::now() + std::chrono::duration_cast<nanos>(d);
    for (;;) {
        if (s.stop_requested()) {
            return false;
        }
        nanos left = until - mono_clock::now();
        if (left <= nanos(0)) {
            return true;
        }
        timespec ts{};
        ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
        pollfd p{s.stop_fd, POLLIN, 0};
        // Signals are blocked on monitor threads, so EINTR only comes from a
        // debugger or a stop/continue; the loop recomputes what is left.
        (void)::ppoll(&p, s.stop_fd >= 0 ? 1 : 0, &ts, nullptr);
    }
}

void MonitorContext::beat() noexcept {
    slot_of(slot_).beat();
}

void MonitorContext::beat(std::uint64_t progress) noexcept {
    slot_of(slot_).beat(progress);
}

void MonitorContext::set_degraded(const Error& e) noexcept {
    mon::slot& s = slot_of(slot_);
    mon::overlay_record& o = s.local_overlay;
    std::string_view res = e.resolution();
    // The same overlay again (a loop that sets it every turn) changes
    // nothing: no store, no notice, and `since` stays the first time.
    if (o.run == s.run && o.set && o.error.reason == e.reason() &&
        o.error.sys_errno == e.sys_errno() && o.error.message == e.subject() &&
        o.resolution == res.data() && o.resolution_len == res.size()) {
        return;
    }
    o.run = s.run;
    o.set = true;
    o.error = to_monitor_error(e, to_ns(mono_clock::now()));
    o.resolution = res.data();
    o.resolution_len = static_cast<std::uint32_t>(res.size());
    s.overlay.store(o);
    notify(s);
}

void MonitorContext::clear_degraded() noexcept {
    mon::slot& s = slot_of(slot_);
    mon::overlay_record& o = s.local_overlay;
    if (o.run != s.run || !o.set) {
        return; // nothing set in this run
    }
    o.set = false;
    o.error = MonitorError{};
    o.resolution = nullptr;
    o.resolution_len = 0;
    s.overlay.store(o);
    notify(s);
}

void MonitorContext::tick() noexcept {
    mon::slot& s = slot_of(slot_);
    mon::tick_record& t = s.local_ticks;
    ++t.ticks;
    t.consecutive_failures = 0;
    // CLOCK_MONOTONIC through the vDSO: no system call where it has one.
    t.last_success_ns = to_ns(mono_clock::now());
    s.ticks.store(t);
}

void MonitorContext::tick(const Error& e) noexcept {
    mon::slot& s = slot_of(slot_);
    mon::tick_record& t = s.local_ticks;
    ++t.ticks;
    ++t.failures;
    if (t.consecutive_failures != UINT32_MAX) {
        ++t.consecutive_failures;
    }
    t.last_failure = to_monitor_error(e, to_ns(mono_clock::now()));
    s.ticks.store(t);
}

} // namespace custos
