// bench/timer_wheel: how much faster than a binary heap is the timer wheel?
//
// Baseline, measured in the same run: the timer queue many event loops use,
// a std::priority_queue (a binary heap over a std::vector reserved up front)
// with lazy deletion. Cancelling bumps the timer's generation in O(1); a
// stale heap entry is skipped when it reaches the top; when stale entries
// outnumber live ones (asyncio's policy) the heap is rebuilt in place (erase
// the stale entries, make_heap), which allocates nothing.
//
// Three figures for n = 1,000 / 100,000 / 1,000,000 pending timers:
//   arm+cancel  the timeout pattern: n timers pending at random expiries in
//               now+1 .. now+60,000 ticks; M operations each arm a timeout
//               at now + 1,000..5,000 ticks and cancel it when the operation
//               completes, 64 operations later (64 in flight). Most timeouts
//               are cancelled before they fire: this is what a supervisor's
//               probes, connects and stop grace periods do. Time stands still.
//               ns per (arm + cancel).
//   re-arm      stress: the same n pending timers; M times cancel a random
//               one and arm it again at a new random expiry in the window.
//               Each touches a cold, random timer and its list neighbours.
//               ns per (cancel + arm).
//   arm+expire  arm n timers at random expiries in that window, then advance
//               time 4 ticks at a time, popping everything due, until all
//               have expired. ns per timer (its arm and its expiry).
// Every random number is drawn (fixed seed) before the timed phases. Each
// figure is the median of 7 repetitions, wheel and heap alternating, with
// its min..max spread, and the allocations made inside the timed phases (the
// most of any repetition).
//
//   --quick   fewer operations (for emulators): M = 200,000 everywhere
#include "core/timer_wheel.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <queue>
#include <vector>

#include "common.hpp"

namespace {

using custos::timer_node;
using custos::timer_wheel;
using custos::bench::allocation_count;
using custos::bench::summary;
using steady = std::chrono::steady_clock;

constexpr std::uint64_t window = 60'000;       // expiries now+1 .. now+window
constexpr std::uint64_t base_tick = 1'000'003; // "now" at the start: not slot-aligned
constexpr std::uint64_t expire_step = 4;       // ticks per advance in arm+expire
constexpr unsigned repetitions = 7;

double elapsed_ns(steady::time_point a, steady::time_point b) noexcept {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

// ---- the baseline: binary heap with lazy deletion ---------------------------

struct heap_entry {
    std::uint64_t expiry;
    std::uint32_t id;
    std::uint32_t gen;
};

// std::priority_queue is a max-heap: "later" puts the earliest expiry on top.
struct later {
    bool operator()(const heap_entry& a, const heap_entry& b) const noexcept {
        return a.expiry > b.expiry;
    }
};

// Exposes the protected container so the heap can be rebuilt in place.
class heap_queue : public std::priority_queue<heap_entry, std::vector<heap_entry>, later> {
public:
    using priority_queue::priority_queue;
    std::vector<heap_entry>& container() noexcept { return c; }
    const later& compare() const noexcept { return comp; }
};

class lazy_heap_timers {
public:
    // Room for n live timers plus as many stale entries: never reallocates.
    explicit lazy_heap_timers(std::uint32_t n) : gen_(n, 0), armed_(n, 0) {
        std::vector<heap_entry> storage;
        storage.reserve(2 * static_cast<std::size_t>(n) + 4);
        q_ = heap_queue(later{}, std::move(storage));
    }

    void reset() noexcept {
        q_.container().clear(); // keeps the capacity
        std::fill(gen_.begin(), gen_.end(), 0);
        std::fill(armed_.begin(), armed_.end(), 0);
        live_ = 0;
        stale_ = 0;
    }

    void arm(std::uint32_t id, std::uint64_t expiry) noexcept {
        if (armed_[id] != 0) {
            cancel(id);
        }
        armed_[id] = 1;
        ++live_;
        q_.push(heap_entry{expiry, id, gen_[id]});
    }

    void cancel(std::uint32_t id) noexcept {
        if (armed_[id] == 0) {
            return;
        }
        armed_[id] = 0;
        ++gen_[id]; // the entry in the heap is stale from now on
        --live_;
        ++stale_;
        if (stale_ > live_) {
            rebuild();
        }
    }

    // The earliest live timer due at or before `now`, popped; or -1.
    std::int64_t pop_due(std::uint64_t now, std::uint64_t* expiry) noexcept {
        while (!q_.empty()) {
            const heap_entry& top = q_.top();
            if (top.gen != gen_[top.id]) {
                q_.pop();
                --stale_;
                continue;
            }
            if (top.expiry > now) {
                return -1;
            }
            std::uint32_t id = top.id;
            *expiry = top.expiry;
            q_.pop();
            armed_[id] = 0;
            --live_;
            return id;
        }
        return -1;
    }

    std::uint64_t rebuilds() const noexcept { return rebuilds_; }
    std::size_t capacity() noexcept { return q_.container().capacity(); }

private:
    void rebuild() noexcept {
        std::vector<heap_entry>& c = q_.container();
        c.erase(std::remove_if(c.begin(), c.end(),
                               [this](const heap_entry& e) { return e.gen != gen_[e.id]; }),
                c.end());
        std::make_heap(c.begin(), c.end(), q_.compare());
        stale_ = 0;
        ++rebuilds_;
    }

    heap_queue q_;
    std::vector<std::uint32_t> gen_;
    std::vector<std::uint8_t> armed_;
    std::uint64_t live_ = 0;
    std::uint64_t stale_ = 0;
    std::uint64_t rebuilds_ = 0;
};

// ---- inputs ------------------------------------------------------------------

constexpr std::uint32_t in_flight = 64;     // timeouts armed and not yet cancelled
constexpr std::uint64_t timeout_lo = 1'000; // timeout lengths, ticks
constexpr std::uint64_t timeout_hi = 5'000;

struct inputs {
    std::vector<std::uint32_t> initial;    // n expiry offsets, 1..window
    std::vector<std::uint32_t> victim;     // M timer indices to cancel and re-arm
    std::vector<std::uint32_t> rearm_at;   // M expiry offsets, 1..window
    std::vector<std::uint32_t> timeout_at; // M timeout lengths, timeout_lo..timeout_hi
};

inputs make_inputs(std::uint32_t n, std::uint32_t m, std::uint64_t seed) {
    custos::bench::rng r(seed);
    inputs in;
    in.initial.resize(n);
    in.victim.resize(m);
    in.rearm_at.resize(m);
    in.timeout_at.resize(m);
    for (auto& e : in.initial) {
        e = static_cast<std::uint32_t>(r.between(1, window));
    }
    for (std::uint32_t k = 0; k < m; ++k) {
        in.victim[k] = static_cast<std::uint32_t>(r.between(0, n - 1));
        in.rearm_at[k] = static_cast<std::uint32_t>(r.between(1, window));
        in.timeout_at[k] = static_cast<std::uint32_t>(r.between(timeout_lo, timeout_hi));
    }
    return in;
}

struct figure {
    summary ns;
    std::uint64_t allocs = 0; // most in any repetition's timed phase
};

struct sample {
    double ns = 0;
    std::uint64_t allocs = 0;
};

struct expire_check {
    std::uint64_t early = 0;     // popped before its expiry
    std::uint64_t late = 0;      // popped in a later step than the one reaching it
    std::uint64_t unordered = 0; // expiry lower than the previous pop's
    std::uint64_t missing = 0;   // never popped

    bool ok() const noexcept { return early == 0 && late == 0 && unordered == 0 && missing == 0; }
};

void check_pop(expire_check& c, std::uint64_t expiry, std::uint64_t now,
               std::uint64_t& last) noexcept {
    if (expiry > now) {
        ++c.early;
    }
    if (expiry + expire_step <= now) {
        ++c.late;
    }
    if (expiry < last) {
        ++c.unordered;
    }
    last = expiry;
}

// One repetition of each figure for each implementation. The untimed setup
// and teardown around the timed phase leave the nodes / heap idle.

// The timed loop both arm+cancel figures share: with n timers pending,
// each of M steps cancels one timer and arms it again. `step(k)` names the
// timer (an index: below n a pending one, from n on one of the in-flight
// timeouts) and its new expiry offset.
struct step_plan {
    std::uint32_t extra = 0; // timers beyond the n pending ones (in flight)
    std::size_t steps = 0;
};

template <class Step>
sample wheel_cancel_arm(timer_node* nodes, const inputs& in, step_plan plan, Step step) {
    auto n = static_cast<std::uint32_t>(in.initial.size());
    auto w = std::make_unique<timer_wheel>(base_tick);
    for (std::uint32_t i = 0; i < n; ++i) {
        w->arm(nodes[i], base_tick + in.initial[i]);
    }
    std::uint64_t a0 = allocation_count();
    auto t0 = steady::now();
    for (std::size_t k = 0; k < plan.steps; ++k) {
        auto [index, offset] = step(k);
        timer_node& t = nodes[index];
        w->cancel(t);
        w->arm(t, base_tick + offset);
    }
    auto t1 = steady::now();
    std::uint64_t a1 = allocation_count();
    std::uint32_t expected =
        n + std::min<std::uint32_t>(plan.extra, static_cast<std::uint32_t>(plan.steps));
    if (w->pending_count() != expected) {
        std::printf("  BUG: wheel holds %u timers, expected %u\n", w->pending_count(), expected);
    }
    for (std::uint32_t i = 0; i < n + plan.extra; ++i) {
        w->cancel(nodes[i]); // the nodes outlive this wheel
    }
    return {elapsed_ns(t0, t1) / static_cast<double>(plan.steps), a1 - a0};
}

template <class Step>
sample heap_cancel_arm(lazy_heap_timers& h, const inputs& in, step_plan plan, Step step) {
    auto n = static_cast<std::uint32_t>(in.initial.size());
    h.reset();
    for (std::uint32_t i = 0; i < n; ++i) {
        h.arm(i, base_tick + in.initial[i]);
    }
    std::uint64_t a0 = allocation_count();
    auto t0 = steady::now();
    for (std::size_t k = 0; k < plan.steps; ++k) {
        auto [index, offset] = step(k);
        h.cancel(index);
        h.arm(index, base_tick + offset);
    }
    auto t1 = steady::now();
    std::uint64_t a1 = allocation_count();
    return {elapsed_ns(t0, t1) / static_cast<double>(plan.steps), a1 - a0};
}

struct step_target {
    std::uint32_t index;
    std::uint64_t offset;
};

sample wheel_arm_expire(timer_node* nodes, const inputs& in, expire_check& check) {
    auto n = static_cast<std::uint32_t>(in.initial.size());
    auto w = std::make_unique<timer_wheel>(base_tick);
    std::uint64_t popped = 0;
    std::uint64_t last = 0;
    std::uint64_t now = base_tick;
    const std::uint64_t stop = base_tick + window + 2 * expire_step;
    std::uint64_t a0 = allocation_count();
    auto t0 = steady::now();
    for (std::uint32_t i = 0; i < n; ++i) {
        w->arm(nodes[i], base_tick + in.initial[i]);
    }
    while (popped < n && now < stop) {
        now += expire_step;
        w->advance(now);
        while (timer_node* t = w->pop_expired()) {
            check_pop(check, t->expiry, now, last);
            ++popped;
        }
    }
    auto t1 = steady::now();
    std::uint64_t a1 = allocation_count();
    check.missing += n - popped;
    for (std::uint32_t i = 0; i < n; ++i) {
        w->cancel(nodes[i]);
    }
    return {elapsed_ns(t0, t1) / static_cast<double>(n), a1 - a0};
}

sample heap_arm_expire(lazy_heap_timers& h, const inputs& in, expire_check& check) {
    auto n = static_cast<std::uint32_t>(in.initial.size());
    h.reset();
    std::uint64_t popped = 0;
    std::uint64_t last = 0;
    std::uint64_t now = base_tick;
    const std::uint64_t stop = base_tick + window + 2 * expire_step;
    std::uint64_t a0 = allocation_count();
    auto t0 = steady::now();
    for (std::uint32_t i = 0; i < n; ++i) {
        h.arm(i, base_tick + in.initial[i]);
    }
    while (popped < n && now < stop) {
        now += expire_step;
        std::uint64_t expiry = 0;
        while (h.pop_due(now, &expiry) >= 0) {
            check_pop(check, expiry, now, last);
            ++popped;
        }
    }
    auto t1 = steady::now();
    std::uint64_t a1 = allocation_count();
    check.missing += n - popped;
    return {elapsed_ns(t0, t1) / static_cast<double>(n), a1 - a0};
}

// Runs the wheel's and the heap's repetitions alternately, so that a burst
// of load on a shared machine lands on both rather than on one.
template <class WheelRep, class HeapRep>
void interleave(WheelRep wheel_rep, HeapRep heap_rep, figure& wheel, figure& heap) {
    double w[repetitions];
    double h[repetitions];
    for (unsigned rep = 0; rep < repetitions; ++rep) {
        sample a = wheel_rep();
        sample b = heap_rep();
        w[rep] = a.ns;
        h[rep] = b.ns;
        wheel.allocs = std::max(wheel.allocs, a.allocs);
        heap.allocs = std::max(heap.allocs, b.allocs);
    }
    wheel.ns = custos::bench::summarize(w, repetitions);
    heap.ns = custos::bench::summarize(h, repetitions);
}

void print_line(const char* what, std::uint32_t n, const figure& w, const figure& h,
                const char* unit) {
    double ratio = h.ns.median / w.ns.median;
    std::printf("%-10s  n=%-7u  wheel %6.1f %s [%.1f..%.1f]  heap(lazy) %6.1f %s [%.1f..%.1f]  "
                "heap/wheel %5.2fx  allocs wheel %llu heap %llu\n",
                what, n, w.ns.median, unit, w.ns.lo, w.ns.hi, h.ns.median, unit, h.ns.lo, h.ns.hi,
                ratio, static_cast<unsigned long long>(w.allocs),
                static_cast<unsigned long long>(h.allocs));
}

bool report_check(const char* who, const expire_check& c) {
    if (c.ok()) {
        return true;
    }
    std::printf(
        "  BUG: %s arm+expire: %llu early, %llu late, %llu out of order, %llu never "
        "popped\n",
        who, static_cast<unsigned long long>(c.early), static_cast<unsigned long long>(c.late),
        static_cast<unsigned long long>(c.unordered), static_cast<unsigned long long>(c.missing));
    return false;
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = custos::bench::has_flag(argc, argv, "--quick");
    custos::bench::print_header("timer_wheel");

    struct size_plan {
        std::uint32_t n;
        std::uint32_t m; // arm+cancel operations per repetition
    };
    const size_plan full[] = {{1'000, 2'000'000}, {100'000, 2'000'000}, {1'000'000, 2'000'000}};
    const size_plan short_plan[] = {{1'000, 200'000}, {100'000, 200'000}, {1'000'000, 200'000}};
    const size_plan* plan = quick ? short_plan : full;

    std::printf("wheel: %u levels x %u slots, 1 tick = 1 unit; expiries uniform in now+1..now+%llu "
                "ticks; %u repetitions, median [min..max]%s\n",
                timer_wheel::levels, timer_wheel::slots, static_cast<unsigned long long>(window),
                repetitions, quick ? " (--quick)" : "");
    std::printf("heap(lazy): std::priority_queue over a reserved std::vector, cancel = generation "
                "bump, rebuilt in place when stale > live\n");
    std::printf("arm+cancel: M timeouts of %llu..%llu ticks armed, each cancelled %u operations "
                "later; re-arm: M cancel+re-arm of random pending timers; time stands still\n",
                static_cast<unsigned long long>(timeout_lo),
                static_cast<unsigned long long>(timeout_hi), in_flight);
    std::printf("arm+expire: arm n, then advance %llu ticks a step popping all due\n",
                static_cast<unsigned long long>(expire_step));
    for (unsigned i = 0; i < 3; ++i) {
        std::printf("  n=%-7u  M=%u%s\n", plan[i].n, plan[i].m,
                    plan[i].m < 2 * plan[i].n ? " (M < 2n: fewer heap rebuilds amortised)" : "");
    }
    std::fflush(stdout);

    bool ok = true;
    double ratio_100k = 0;
    double rearm_100k = 0;
    for (unsigned i = 0; i < 3; ++i) {
        const std::uint32_t n = plan[i].n;
        const inputs in = make_inputs(n, plan[i].m, 0x5eed0000u + n);
        // n pending timers, then the in-flight timeouts after them.
        auto nodes = std::make_unique<timer_node[]>(n + in_flight);
        lazy_heap_timers heap(n + in_flight);
        // arm+cancel: the timeout armed in_flight steps ago completes and its
        // timer is armed again for the next operation.
        auto timeout_step = [&in, n](std::size_t k) {
            return step_target{n + static_cast<std::uint32_t>(k % in_flight), in.timeout_at[k]};
        };
        // re-arm: a random pending timer.
        auto rearm_step = [&in](std::size_t k) {
            return step_target{in.victim[k], in.rearm_at[k]};
        };
        const step_plan timeouts{in_flight, in.timeout_at.size()};
        const step_plan rearms{0, in.victim.size()};

        figure wt;
        figure ht;
        interleave([&] { return wheel_cancel_arm(nodes.get(), in, timeouts, timeout_step); },
                   [&] { return heap_cancel_arm(heap, in, timeouts, timeout_step); }, wt, ht);
        print_line("arm+cancel", n, wt, ht, "ns/op");
        std::fflush(stdout);

        figure wc;
        figure hc;
        interleave([&] { return wheel_cancel_arm(nodes.get(), in, rearms, rearm_step); },
                   [&] { return heap_cancel_arm(heap, in, rearms, rearm_step); }, wc, hc);
        print_line("re-arm", n, wc, hc, "ns/op");
        std::fflush(stdout);
        if (n == 100'000) {
            ratio_100k = ht.ns.median / wt.ns.median;
            rearm_100k = hc.ns.median / wc.ns.median;
        }

        expire_check wcheck;
        expire_check hcheck;
        figure we;
        figure he;
        interleave([&] { return wheel_arm_expire(nodes.get(), in, wcheck); },
                   [&] { return heap_arm_expire(heap, in, hcheck); }, we, he);
        print_line("arm+expire", n, we, he, "ns/timer");
        std::fflush(stdout);
        ok = report_check("wheel", wcheck) && ok;
        ok = report_check("heap", hcheck) && ok;
        if (heap.capacity() < 2 * static_cast<std::size_t>(n) + 4) {
            std::printf("  BUG: heap storage shrank\n");
        }
    }
    std::printf("target: wheel >= 5x faster than heap on arm+cancel at n=100000: %s (ratio %.2f)\n",
                ratio_100k >= 5.0 ? "MET" : "NOT MET", ratio_100k);
    std::printf("        the same on random re-arm of pending timers: %s (ratio %.2f)\n",
                rearm_100k >= 5.0 ? "MET" : "NOT MET", rearm_100k);
    return ok ? 0 : 1;
}
