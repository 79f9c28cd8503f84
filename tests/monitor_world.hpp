// Real monitors for tests: a real io::reactor, the real thread pool and the
// machine wired the way the runtime wires them (the pool's mailbox results
// go to machine::on_returned, its notices to machine::on_notice; the host
// calls go to the reactor and the pool). Every transition is recorded into
// fixed storage, so the world allocates nothing after start() and serves
// the no-allocation test too.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include <custos/monitor.hpp>

#include "core/arena.hpp"
#include "io/reactor.hpp"
#include "monitor/machine.hpp"
#include "monitor/pool.hpp"

namespace custos_test {

struct mon_rec {
    std::uint32_t monitor = 0;
    custos::MonitorState from = custos::MonitorState::stopped;
    custos::MonitorState to = custos::MonitorState::stopped;
    custos::Reason reason = custos::Reason::unknown;
    std::int64_t at_ns = 0;
    std::uint32_t crashes = 0;
    char detail[240] = {};
};

class monitor_world final : public custos::mon::host {
public:
    static constexpr std::uint32_t max_recs = 4096;

    monitor_world() = default;

    // Reactor, machine and pool over `specs`. False on any error (printed).
    bool init(std::span<const custos::MonitorSpec> specs) {
        if (auto r = reactor.init(); !r) {
            return false;
        }
        (void)machine.init(specs, mem, 7); // sizing pass
        if (!mem.reserve(mem.needed()) || !machine.init(specs, mem, 7)) {
            return false;
        }
        auto p =
            pool.init(specs, reactor, &monitor_world::on_result, &monitor_world::on_notice, this);
        return p.has_value();
    }

    // Runs the reactor until `done(*this)` or `limit` passes. True when done.
    template <class F>
    bool run_until(F done, custos::nanos limit) {
        const custos::mono_time until = reactor.now() + limit;
        custos::io::timer guard([](custos::io::timer&) {}, nullptr);
        reactor.arm(guard, until);
        while (!done(*this)) {
            if (reactor.now() >= until) {
                reactor.cancel(guard);
                return false;
            }
            reactor.run_once(true);
        }
        reactor.cancel(guard);
        return true;
    }

    // --- mon::host ---
    custos::mono_time now() noexcept override { return reactor.now(); }
    void arm(custos::io::timer& t, custos::mono_time d, custos::nanos slack) noexcept override {
        reactor.arm(t, d, slack);
    }
    void cancel(custos::io::timer& t) noexcept override { reactor.cancel(t); }
    bool deps_ready(std::uint32_t) noexcept override { return true; }
    void launch(std::uint32_t m, std::uint32_t run) noexcept override { pool.launch(m, run); }
    void request_stop(std::uint32_t m) noexcept override { pool.request_stop(m); }
    void sample(std::uint32_t m, custos::mon::sample& out) noexcept override {
        pool.sample(m, out);
    }
    std::size_t evidence(std::uint32_t m, char* buf, std::size_t len) noexcept override {
        return pool.evidence(m, buf, len);
    }
    void transition(const custos::MonitorTransition& t) noexcept override {
        mon_rec& r = recs[count % max_recs];
        ++count;
        r.monitor = t.monitor;
        r.from = t.from;
        r.to = t.to;
        r.reason = t.reason;
        r.at_ns = t.at_ns;
        r.crashes = t.crashes;
        std::size_t n = std::min(t.detail.size(), sizeof r.detail - 1);
        if (n != 0) {
            std::memcpy(r.detail, t.detail.data(), n);
        }
        r.detail[n] = '\0';
    }
    void wedge_exit(std::uint32_t) noexcept override { ++wedge_exits; }
    void all_stopped() noexcept override { stopped = true; }

    // Transitions of monitor `m` with reason `why` so far.
    std::uint32_t counted(std::uint32_t m, custos::Reason why) const {
        std::uint32_t n = 0;
        for (std::uint32_t i = 0; i < std::min(count, max_recs); ++i) {
            n += recs[i].monitor == m && recs[i].reason == why ? 1 : 0;
        }
        return n;
    }
    // The first such transition, or nullptr.
    const mon_rec* first(std::uint32_t m, custos::Reason why) const {
        for (std::uint32_t i = 0; i < std::min(count, max_recs); ++i) {
            if (recs[i].monitor == m && recs[i].reason == why) {
                return &recs[i];
            }
        }
        return nullptr;
    }

    custos::io::reactor reactor;
    custos::arena mem;
    custos::mon::machine machine{*this};
    // Declared last: destroyed first, while the reactor still exists.
    custos::mon::pool pool;

    mon_rec recs[max_recs];
    std::uint32_t count = 0;
    std::uint32_t wedge_exits = 0;
    bool stopped = false;

private:
    static void on_result(void* ctx, std::uint32_t m, const custos::Result<void>& r) noexcept {
        static_cast<monitor_world*>(ctx)->machine.on_returned(m, r);
    }
    static void on_notice(void* ctx, std::uint32_t m) noexcept {
        static_cast<monitor_world*>(ctx)->machine.on_notice(m);
    }
};

} // namespace custos_test
