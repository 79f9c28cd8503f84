// A fake world for the supervisor: a clock that moves only when a test says
// so, timers on a real timer_wheel (1 ms ticks, as the reactor uses), and
// processes that exist only as pids and scripted behaviour. Everything the
// supervisor asks of its host is recorded (transitions, spawns, signals,
// all_stopped) so tests can assert exact sequences and times.
//
// Events reach the supervisor the way the reactor delivers them: never from
// inside a host call. A signal that ends a fake process queues its exit;
// advance() and settle() deliver queued exits between timer callbacks.
//
// Invariants:
//   - Time only moves forward, and only in advance(); a timer callback runs
//     with now() equal to its deadline's tick.
//   - Timers fire in deadline order, ties in the order they were armed (the
//     wheel's order), and a timer armed by a callback is checked again before
//     time moves on.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <custos/error.hpp>
#include <custos/runtime.hpp>
#include <custos/service.hpp>

#include "core/arena.hpp"
#include "core/timer_wheel.hpp"
#include "doctest.hpp"
#include "io/reactor.hpp"
#include "supervise/supervisor.hpp"
#include "table/plan.hpp"

namespace doctest {
template <>
struct StringMaker<custos::ServiceState> {
    static String convert(custos::ServiceState s) {
        std::string_view n = custos::state_name(s);
        return String(n.data(), static_cast<String::size_type>(n.size()));
    }
};
template <>
struct StringMaker<custos::Reason> {
    static String convert(custos::Reason r) {
        std::string_view n = custos::reason_id(r);
        return String(n.data(), static_cast<String::size_type>(n.size()));
    }
};
} // namespace doctest

namespace custos_test {

// One Transition as recorded: strings copied, time relative to the start.
struct transition_rec {
    std::uint32_t service = 0;
    std::string name;
    custos::ServiceState from = custos::ServiceState::stopped;
    custos::ServiceState to = custos::ServiceState::stopped;
    custos::Reason reason = custos::Reason::unknown;
    int sys_errno = 0;
    std::int64_t at_ms = 0; // since the fake clock's start
    int pid = 0;
    custos::ExitInfo exit;
    std::int64_t delay_ms = 0;
    std::uint32_t restarts = 0;
    std::string detail;
};

struct kill_rec {
    std::uint32_t service = 0;
    int sig = 0;
    std::int64_t at_ms = 0;
    int pid = 0; // the fake process it reached (0: none was alive)
    bool alive = false;
};

struct spawn_rec {
    std::uint32_t service = 0;
    std::int64_t at_ms = 0;
    int pid = 0; // 0 when a scripted error was returned
};

class fake_host final : public custos::sup::host {
public:
    static constexpr std::int64_t tick_ns = 1'000'000;
    // Far from zero, like a real CLOCK_MONOTONIC, so nothing depends on it.
    static constexpr std::int64_t start_ns = 1'000'000'000'000;
    static constexpr std::uint32_t max_services = 32;

    // What a fake process does when it receives a signal other than SIGKILL.
    enum class on_signal : std::uint8_t { ignore, die };

    fake_host() : wheel_(static_cast<std::uint64_t>(start_ns / tick_ns)) {}

    void attach(custos::sup::supervisor& s) { sup_ = &s; }

    // --- sup::host ---
    custos::mono_time now() noexcept override { return custos::from_ns(now_ns_); }

    void arm(custos::io::timer& t, custos::mono_time deadline) noexcept override {
        // Round up, as the reactor does: nothing fires early.
        std::int64_t ns = custos::to_ns(deadline);
        std::int64_t tick = ns / tick_ns + (ns % tick_ns != 0 ? 1 : 0);
        wheel_.arm(t, static_cast<std::uint64_t>(tick));
    }

    void cancel(custos::io::timer& t) noexcept override { wheel_.cancel(t); }

    custos::Result<int> spawn(std::uint32_t i) noexcept override {
        proc& p = procs_[i];
        if (!p.spawn_errors.empty()) {
            custos::Error e = p.spawn_errors.front();
            p.spawn_errors.pop_front();
            spawns.push_back({i, elapsed_ms(), 0});
            return custos::fail(e);
        }
        if (p.alive) {
            ++double_spawns; // the supervisor lost track of a live process
        }
        p.pid = next_pid_++;
        p.alive = true;
        p.exit_queued = false;
        spawns.push_back({i, elapsed_ms(), p.pid});
        return p.pid;
    }

    void kill(std::uint32_t i, int sig) noexcept override {
        proc& p = procs_[i];
        bool alive = p.alive && !p.exit_queued;
        kills.push_back({i, sig, elapsed_ms(), p.alive ? p.pid : 0, alive});
        if (!p.alive) {
            ++kills_without_process;
        }
        if (!alive) {
            return;
        }
        if (sig == SIGKILL ? !p.ignores_sigkill : p.term == on_signal::die) {
            p.exit_queued = true;
            queued_.push_back({i, custos::ExitInfo{p.pid, 0, sig, false}});
        }
    }

    void transition(const custos::Transition& t) noexcept override {
        transition_rec r;
        r.service = t.service;
        r.name = std::string(t.name);
        r.from = t.from;
        r.to = t.to;
        r.reason = t.reason;
        r.sys_errno = t.sys_errno;
        r.at_ms = (t.at_ns - start_ns) / 1'000'000;
        CHECK((t.at_ns - start_ns) % 1'000'000 == 0); // the fake clock moves in ticks
        CHECK(t.at_ns == now_ns_);                    // stamped with the current time
        r.pid = t.pid;
        r.exit = t.exit;
        r.delay_ms = t.delay.count();
        r.restarts = t.restarts;
        r.detail = std::string(t.detail);
        transitions.push_back(r);
        if (on_transition) {
            on_transition(transitions.back());
        }
    }

    // Called after each transition is recorded, as the runtime's hook is:
    // a test may act on the supervisor from here.
    std::function<void(const transition_rec&)> on_transition;

    void all_stopped() noexcept override {
        ++all_stopped_calls;
        all_stopped_at_ms = elapsed_ms();
    }

    void flush_notify(std::uint32_t i) noexcept override {
        ++flushes;
        if (on_flush) {
            on_flush(i);
        }
    }
    // What the runtime would deliver from the notify socket when asked
    // before a timeout acts (queued pings after a stall).
    std::function<void(std::uint32_t)> on_flush;
    int flushes = 0;

    bool probe_ready(std::uint32_t p) noexcept override {
        return p < probes_ready.size() && probes_ready[p];
    }
    // The fake probes' states, by probe index (set them, then call
    // supervisor::on_probe_change as the runtime would).
    std::vector<bool> probes_ready;

    // --- driving the fake world ---

    std::int64_t elapsed_ms() const { return (now_ns_ - start_ns) / 1'000'000; }

    // Moves time forward by `d`, firing due timers in order and delivering
    // the exits they cause.
    void advance(custos::nanos d) {
        const std::int64_t target = now_ns_ + d.count();
        settle();
        for (;;) {
            std::uint64_t next = wheel_.next_expiry();
            if (next == custos::timer_wheel::never ||
                static_cast<std::int64_t>(next) * tick_ns > target) {
                break;
            }
            std::int64_t at = static_cast<std::int64_t>(next) * tick_ns;
            if (at > now_ns_) {
                now_ns_ = at;
            }
            wheel_.advance(next);
            while (custos::timer_node* n = wheel_.pop_expired()) {
                auto* t = static_cast<custos::io::timer*>(n);
                t->fire(*t);
                settle();
            }
        }
        now_ns_ = target;
        wheel_.advance(static_cast<std::uint64_t>(target / tick_ns));
    }

    // Delivers the queued exits at the current time.
    void settle() {
        while (!queued_.empty()) {
            queued exit = queued_.front();
            queued_.pop_front();
            proc& p = procs_[exit.service];
            p.alive = false;
            p.exit_queued = false;
            sup_->on_exit(exit.service, exit.info);
        }
    }

    // Service `i`'s process exits with `code` (now).
    void exit(std::uint32_t i, int code) {
        end(i, custos::ExitInfo{procs_[i].pid, code, 0, false});
    }
    // Service `i`'s process is killed by `sig` (now), not by custos.
    void die(std::uint32_t i, int sig) { end(i, custos::ExitInfo{procs_[i].pid, 0, sig, false}); }

    void script_spawn_error(std::uint32_t i, const custos::Error& e) {
        procs_[i].spawn_errors.push_back(e);
    }
    void set_on_stop_signal(std::uint32_t i, on_signal what) { procs_[i].term = what; }
    void set_ignores_sigkill(std::uint32_t i, bool yes) { procs_[i].ignores_sigkill = yes; }

    bool alive(std::uint32_t i) const { return procs_[i].alive; }
    int pid(std::uint32_t i) const { return procs_[i].pid; }
    std::uint32_t pending_timers() const { return wheel_.pending_count(); }

    // Records for one service, in order.
    std::vector<transition_rec> of(std::uint32_t i) const {
        std::vector<transition_rec> out;
        for (const auto& t : transitions) {
            if (t.service == i) {
                out.push_back(t);
            }
        }
        return out;
    }
    std::vector<kill_rec> kills_of(std::uint32_t i) const {
        std::vector<kill_rec> out;
        for (const auto& k : kills) {
            if (k.service == i) {
                out.push_back(k);
            }
        }
        return out;
    }
    std::vector<spawn_rec> spawns_of(std::uint32_t i) const {
        std::vector<spawn_rec> out;
        for (const auto& s : spawns) {
            if (s.service == i) {
                out.push_back(s);
            }
        }
        return out;
    }

    // Everything recorded, one line each: shown when a check fails (INFO).
    std::string log() const {
        std::string s;
        for (const auto& t : transitions) {
            s += std::to_string(t.at_ms) + "ms " + t.name + ": " +
                 std::string(custos::state_name(t.from)) + " -> " +
                 std::string(custos::state_name(t.to)) + " (" +
                 std::string(custos::reason_id(t.reason)) + ")";
            if (t.delay_ms != 0) {
                s += " delay " + std::to_string(t.delay_ms) + "ms";
            }
            s += " restarts " + std::to_string(t.restarts);
            if (!t.detail.empty()) {
                s += " [" + t.detail + "]";
            }
            s += "\n";
        }
        for (const auto& k : kills) {
            s += std::to_string(k.at_ms) + "ms kill " + std::to_string(k.service) + " sig " +
                 std::to_string(k.sig) + "\n";
        }
        return s;
    }

    std::vector<transition_rec> transitions;
    std::vector<kill_rec> kills;
    std::vector<spawn_rec> spawns;
    int all_stopped_calls = 0;
    std::int64_t all_stopped_at_ms = -1;
    int kills_without_process = 0;
    int double_spawns = 0;

private:
    struct proc {
        int pid = 0;
        bool alive = false;
        bool exit_queued = false;
        on_signal term = on_signal::ignore;
        bool ignores_sigkill = false;
        std::deque<custos::Error> spawn_errors;
    };
    struct queued {
        std::uint32_t service;
        custos::ExitInfo info;
    };

    void end(std::uint32_t i, const custos::ExitInfo& e) {
        proc& p = procs_[i];
        REQUIRE(p.alive);
        REQUIRE(!p.exit_queued);
        p.alive = false;
        sup_->on_exit(i, e);
        settle();
    }

    custos::sup::supervisor* sup_ = nullptr;
    std::int64_t now_ns_ = start_ns;
    custos::timer_wheel wheel_;
    int next_pid_ = 1000;
    proc procs_[max_services];
    std::deque<queued> queued_;
};

// The table checked and resolved as the runtime does, without looking for
// executables or users (the pure logic's tests run none).
inline bool build_plan(custos::tbl::plan& plan, std::span<const custos::ServiceSpec> services,
                       std::span<const custos::ProbeSpec> probes = {}) {
    custos::Table t;
    t.services = services;
    t.probes = probes;
    custos::tbl::options opt;
    opt.check_executables = false;
    opt.resolve_users = false;
    return plan.build(t, opt).has_value();
}

// A supervisor over `table` on a fake host, laid out with the two-pass
// arena sizing the runtime uses.
struct rig {
    fake_host host;
    custos::arena mem;
    custos::sup::supervisor sup{host};

    custos::tbl::plan plan;

    // `slots`: as supervisor::init's (0: the table's services, no vacant slot).
    explicit rig(std::span<const custos::ServiceSpec> table, std::uint64_t seed = 1,
                 std::span<const custos::ProbeSpec> probes = {}, std::uint32_t slots = 0) {
        REQUIRE(table.size() <= fake_host::max_services);
        REQUIRE(slots <= fake_host::max_services);
        REQUIRE(build_plan(plan, table, probes));
        host.attach(sup);
        auto sizing = sup.init(plan, mem, seed, slots);
        REQUIRE(!sizing.has_value());
        REQUIRE(sizing.error().reason() == custos::Reason::out_of_memory);
        REQUIRE(mem.reserve(mem.needed()));
        auto r = sup.init(plan, mem, seed, slots);
        REQUIRE(r.has_value());
    }

    const custos::sup::unit& at(std::uint32_t i) const { return sup.at(i); }
    custos::ServiceState state(std::uint32_t i) const { return sup.at(i).state; }
};

} // namespace custos_test
