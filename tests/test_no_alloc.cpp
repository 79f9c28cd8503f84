// No allocation after init: the whole malloc family is replaced by a counting
// bump allocator, so every allocation by custos, liburing, libstdc++ or libc
// is seen, on dynamically and statically linked (ARM) builds alike. After
// setup the reactor is driven through >= 10,000 timer expiries and >= 1,000
// I/O operations (timerfd wake-ups, reads, writes, polls, deadlines,
// cancellations, a cross-thread mailbox) and the count must not move.
//
// Not doctest: a test framework allocates as it reports. Exit 0 pass, 1 fail,
// 77 skip (the requested backend is unavailable here).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#include "counting_alloc.hpp"
#include "io/mailbox.hpp"
#include "io/reactor.hpp"

// ---- the workload -------------------------------------------------------------

using namespace custos;
using namespace custos::io;
using namespace std::chrono_literals;

namespace {

constexpr int timer_count = 100;
constexpr int rounds = 101;       // 100 timers x 101 rounds = 10,100 expiries
constexpr int io_pairs = 300;     // write + read per pair
constexpr int poll_ops = 200;     // polls on a readable pipe
constexpr int deadline_ops = 100; // reads that time out
constexpr int cancel_ops = 100;   // reads cancelled in flight
constexpr int posts = 2000;       // mailbox messages from another thread

struct state {
    reactor r;
    timer timers[timer_count];
    int rounds_left[timer_count] = {};
    std::uint64_t expiries = 0;
    int p[2] = {-1, -1}; // data: written then read
    int q[2] = {-1, -1}; // always readable: polled
    int z[2] = {-1, -1}; // never written: reads that time out or are cancelled
    char wbuf[32] = "custos: no allocation after in";
    char rbuf[32] = {};
    char zbuf[32] = {};
    op wop, rop, pop, dop, cop;
    int writes = 0, reads = 0, polls = 0, timeouts = 0, cancels = 0;
    std::uint64_t io_completed = 0;
    std::uint64_t failures = 0;
    mailbox<std::uint32_t, 64> box;
    std::uint32_t received = 0;
};

state* g;

void on_timer(timer& t) noexcept {
    auto i = static_cast<int>(reinterpret_cast<std::intptr_t>(t.user));
    ++g->expiries;
    if (--g->rounds_left[i] > 0) {
        // Alternate: due at once, or one tick later through the timerfd.
        g->r.arm_after(t, (g->rounds_left[i] & 1) != 0 ? 0ms : 1ms);
    }
}

void on_write(op&, std::int32_t res) noexcept {
    ++g->io_completed;
    if (res != 32) {
        ++g->failures;
    }
    g->r.read(g->rop, g->p[0], g->rbuf, sizeof g->rbuf);
}

void on_read(op&, std::int32_t res) noexcept {
    ++g->io_completed;
    if (res != 32 || std::memcmp(g->rbuf, g->wbuf, 32) != 0) {
        ++g->failures;
    }
    if (++g->reads < io_pairs) {
        g->r.write(g->wop, g->p[1], g->wbuf, sizeof g->wbuf);
    }
}

void on_poll(op& o, std::int32_t res) noexcept {
    ++g->io_completed;
    if (res <= 0) {
        ++g->failures;
    }
    if (++g->polls < poll_ops) {
        g->r.poll(o, g->q[0], 0x001 /* POLLIN */);
    }
}

void on_deadline(op& o, std::int32_t res) noexcept {
    ++g->io_completed;
    if (res != -ETIMEDOUT) {
        ++g->failures;
    }
    if (++g->timeouts < deadline_ops) {
        g->r.read(o, g->z[0], g->zbuf, sizeof g->zbuf, mono_clock::now() + 1ms);
    }
}

void on_cancel(op& o, std::int32_t res) noexcept {
    ++g->io_completed;
    if (res != -ECANCELED) {
        ++g->failures;
    }
    if (++g->cancels < cancel_ops) {
        g->r.read(o, g->z[0], g->zbuf, sizeof g->zbuf);
        g->r.cancel(o);
    }
}

} // namespace

int main() {
    static state s;
    g = &s;
    reactor_config cfg;
    cfg.max_ops = 64;
    cfg.max_fds = 16;
    auto res = s.r.init(cfg);
    if (!res) {
        char buf[512];
        res.error().format(buf, sizeof buf);
        bool unavailable = res.error().reason() == Reason::io_uring_unavailable ||
                           res.error().reason() == Reason::io_uring_opcode_missing;
        std::printf("%s: %s\n", unavailable ? "SKIP" : "FAIL", buf);
        return unavailable ? 77 : 1;
    }
    // Setup, which may allocate: stdout's buffer, pipes, the mailbox, the
    // producer thread (parked until the measured phase).
    std::printf("backend: %s\n", s.r.backend_reason());
    std::fflush(stdout);
    if (pipe2(s.p, O_NONBLOCK | O_CLOEXEC) != 0 || pipe2(s.q, O_NONBLOCK | O_CLOEXEC) != 0 ||
        pipe2(s.z, O_NONBLOCK | O_CLOEXEC) != 0) {
        std::printf("FAIL: pipe2: %s\n", std::strerror(errno));
        return 1;
    }
    if (::write(s.q[1], "r", 1) != 1) { // keeps q readable for the polls
        return 1;
    }
    auto attached = s.box.attach(
        s.r, [](void*, const std::uint32_t&) { ++g->received; }, nullptr);
    if (!attached) {
        return 1;
    }
    std::atomic<bool> go{false};
    std::thread producer([&] {
        while (!go.load(std::memory_order_acquire)) {
            std::this_thread::yield();
        }
        for (std::uint32_t i = 0; i < posts;) {
            if (s.box.try_post(i)) {
                ++i;
            } else {
                std::this_thread::yield();
            }
        }
    });
    for (int i = 0; i < timer_count; ++i) {
        s.timers[i].fire = &on_timer;
        s.timers[i].user = reinterpret_cast<void*>(static_cast<std::intptr_t>(i));
        s.rounds_left[i] = rounds;
    }
    s.wop.done = &on_write;
    s.rop.done = &on_read;
    s.pop.done = &on_poll;
    s.dop.done = &on_deadline;
    s.cop.done = &on_cancel;
    // Warm-up iteration, still part of setup.
    s.r.run_once(false);

    std::uint64_t before = custos_test::allocation_count();

    go.store(true, std::memory_order_release);
    for (auto& t : s.timers) {
        s.r.arm_after(t, 1ms);
    }
    s.r.write(s.wop, s.p[1], s.wbuf, sizeof s.wbuf);
    s.r.poll(s.pop, s.q[0], 0x001);
    s.r.read(s.cop, s.z[0], s.zbuf, sizeof s.zbuf);
    s.r.cancel(s.cop);
    s.r.read(s.dop, s.z[0], s.zbuf, sizeof s.zbuf, mono_clock::now() + 1ms);
    auto all_done = [&] {
        return s.expiries >= std::uint64_t{timer_count} * rounds && s.reads >= io_pairs &&
               s.polls >= poll_ops && s.cancels >= cancel_ops && s.timeouts >= deadline_ops &&
               s.received >= posts;
    };
    // A guard timer bounds the run even if an op never completes.
    timer guard([](timer&) {}, nullptr);
    mono_time limit = mono_clock::now() + 60s;
    s.r.arm(guard, limit);
    while (!all_done() && mono_clock::now() < limit) {
        s.r.run_once();
    }
    s.r.cancel(guard);

    std::uint64_t after = custos_test::allocation_count();
    producer.join();

    // The counter itself must work, or "0 allocations" proves nothing.
    void* volatile canary = std::malloc(24);
    int* volatile canary2 = new int(7);
    bool counter_works =
        canary != nullptr && canary2 != nullptr && custos_test::allocation_count() >= after + 2;

    const reactor_stats& st = s.r.stats();
    std::printf("timer expiries %llu, I/O ops completed %llu, mailbox messages %u\n",
                static_cast<unsigned long long>(s.expiries),
                static_cast<unsigned long long>(s.io_completed), s.received);
    std::printf("reactor: %llu ops, %llu timers fired, %llu waits, %llu syscalls\n",
                static_cast<unsigned long long>(st.ops_completed),
                static_cast<unsigned long long>(st.timers_fired),
                static_cast<unsigned long long>(st.wait_calls),
                static_cast<unsigned long long>(st.syscalls));
    std::printf("allocations during the run: %llu (before it: %llu)\n",
                static_cast<unsigned long long>(after - before),
                static_cast<unsigned long long>(before));
    bool ok = true;
    if (!counter_works) {
        std::printf("FAIL: the allocation counter did not see a deliberate malloc/new\n");
        ok = false;
    }
    if (!all_done()) {
        std::printf("FAIL: the workload did not finish in time\n");
        ok = false;
    }
    if (s.expiries < 10000 || s.io_completed < 1000) {
        std::printf("FAIL: workload smaller than required\n");
        ok = false;
    }
    if (s.failures != 0) {
        std::printf("FAIL: %llu operations returned unexpected results\n",
                    static_cast<unsigned long long>(s.failures));
        ok = false;
    }
    if (after != before) {
        std::printf("FAIL: %llu allocations after init\n",
                    static_cast<unsigned long long>(after - before));
        ok = false;
    }
    std::printf(ok ? "PASS\n" : "FAIL\n");
    return ok ? 0 : 1;
}
