// The event stream: a fixed list of listeners, each called for every event
// (event.hpp), in the order they were added. The user hooks, custosd's
// stderr lines, the status snapshot's publisher and, later, the event log,
// the control plane's subscribers and the watchdog gate are each one
// listener. Model: dinit's service-listener.h.
//
// Owns: the list (pointers to listeners the caller owns; each must outlive
// the stream). Its capacity is fixed at init: caller-provided slots
// (fixed_stream<N>, or a span) or slots taken from the runtime's arena
// (reserve()). Adding past the capacity, or after seal(), is an init error;
// nothing is ever allocated.
//
// States: open (try_add() allowed) -> sealed (dispatch only). Everything
// runs on the reactor thread; a listener must not block. A listener may
// cause further events (a user hook that stops a service): they are
// dispatched nested, depth first, as the hooks are today.
//
// Wiring (runtime): in init(), after the arena layout,
//     stream.reserve(mem, capacity)   (sizing pass and real pass alike)
//     stream.try_add(user_hooks)      a hook_listener; set_transition_hook()
//                                     and set_probe_hook() set its hooks
//     stream.try_add(publisher)       the snapshot's (snapshot.hpp)
// then any listener the embedding program or custosd adds, and seal() in
// start(). Each place that calls a hook today calls
//     stream.dispatch(status::make_event(t, status::wall_now_ns()))
// instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <custos/control.hpp>
#include <custos/error.hpp>
#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/prune.hpp>
#include <custos/service.hpp>

#include "core/arena.hpp"
#include "status/event.hpp"

namespace custos::status {

class listener {
public:
    // Called on the reactor thread for every event; must not block.
    virtual void on_event(const event& e) noexcept = 0;

protected:
    // Not deleted through this interface: the stream only calls on_event().
    ~listener() = default;
};

class stream {
public:
    // No slots: capacity 0 until reserve().
    stream() noexcept = default;
    // Uses `slots` (the caller's, outliving the stream) as the list.
    explicit stream(std::span<listener*> slots) noexcept
        : slots_(slots.data()), capacity_(static_cast<std::uint32_t>(slots.size())) {}
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    // Takes room for `capacity` listeners from `mem` (the list becomes
    // empty). Two-pass arena sizing: on the measuring pass the arena has no
    // room and this fails, but mem.needed() has grown by what it needs.
    // Errors: OutOfMemory (the arena is too small); InvalidArgument after
    // seal().
    [[nodiscard]] Result<void> reserve(arena& mem, std::uint32_t capacity) noexcept;

    // Appends `l`; it will be called after those added before it. Errors:
    // CapacityExceeded (the list is full; with a resolution saying which
    // capacity to raise), InvalidArgument (sealed: listeners are set at
    // init).
    [[nodiscard]] Result<void> try_add(listener& l) noexcept;

    // Ends init: try_add() is refused from now on.
    void seal() noexcept { sealed_ = true; }
    bool sealed() const noexcept { return sealed_; }

    // Calls every listener with `e`, in the order they were added.
    void dispatch(const event& e) const noexcept {
        for (std::uint32_t i = 0; i < size_; ++i) {
            slots_[i]->on_event(e);
        }
    }

    std::uint32_t size() const noexcept { return size_; }
    std::uint32_t capacity() const noexcept { return capacity_; }

private:
    listener** slots_ = nullptr;
    std::uint32_t capacity_ = 0;
    std::uint32_t size_ = 0;
    bool sealed_ = false;
};

// A stream with room for N listeners inline.
template <std::size_t N>
class fixed_stream : public stream {
public:
    // The base keeps only the address of slots_, which is set up after it.
    fixed_stream() noexcept : stream(std::span<listener*>(slots_, N)) {}

private:
    listener* slots_[N] = {};
};

// The user hooks as one listener: Runtime::set_transition_hook(),
// set_probe_hook(), set_monitor_hook(), set_health_hook() and
// set_watchdog_hook() set them here,
// and each gets back the exact record it was built from. A null hook is
// skipped (and so is a health event without its status).
class hook_listener final : public listener {
public:
    using transition_fn = void (*)(const Transition& t, void* ctx);       // = TransitionHook
    using probe_fn = void (*)(const ProbeTransition& t, void* ctx);       // = ProbeHook
    using monitor_fn = void (*)(const MonitorTransition& t, void* ctx);   // = MonitorHook
    using health_fn = void (*)(const HealthStatus& h, void* ctx);         // = HealthHook
    using watchdog_fn = void (*)(const WatchdogTransition& t, void* ctx); // = WatchdogHook
    using control_fn = void (*)(const ControlAction& a, void* ctx);       // = ControlHook

    void set_transition_hook(transition_fn fn, void* ctx) noexcept {
        transition_ = fn;
        transition_ctx_ = ctx;
    }
    void set_probe_hook(probe_fn fn, void* ctx) noexcept {
        probe_ = fn;
        probe_ctx_ = ctx;
    }

    void set_monitor_hook(monitor_fn fn, void* ctx) noexcept {
        monitor_ = fn;
        monitor_ctx_ = ctx;
    }
    void set_health_hook(health_fn fn, void* ctx) noexcept {
        health_ = fn;
        health_ctx_ = ctx;
    }

    void set_watchdog_hook(watchdog_fn fn, void* ctx) noexcept {
        watchdog_ = fn;
        watchdog_ctx_ = ctx;
    }

    void set_control_hook(control_fn fn, void* ctx) noexcept {
        control_ = fn;
        control_ctx_ = ctx;
    }

    using prune_fn = void (*)(const PruneEvent& e, void* ctx); // = PruneHook
    void set_prune_hook(prune_fn fn, void* ctx) noexcept {
        prune_ = fn;
        prune_ctx_ = ctx;
    }

    void on_event(const event& e) noexcept override;

private:
    transition_fn transition_ = nullptr;
    void* transition_ctx_ = nullptr;
    probe_fn probe_ = nullptr;
    void* probe_ctx_ = nullptr;
    monitor_fn monitor_ = nullptr;
    void* monitor_ctx_ = nullptr;
    health_fn health_ = nullptr;
    void* health_ctx_ = nullptr;
    watchdog_fn watchdog_ = nullptr;
    void* watchdog_ctx_ = nullptr;
    control_fn control_ = nullptr;
    void* control_ctx_ = nullptr;
    prune_fn prune_ = nullptr;
    void* prune_ctx_ = nullptr;
};

} // namespace custos::status
