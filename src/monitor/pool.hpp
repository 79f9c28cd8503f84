// The monitors' threads: one per monitor, created at init with the
// monitor's stack size and every signal blocked, and reused for every run.
// After init nothing is created or allocated: a launch is a store and a
// futex wake, a run's end one mailbox post.
//
// The pool implements what the machine's host needs of the threads
// (launch, request_stop, sample, evidence); the runtime forwards them. The
// threads reach the reactor only through one io::mailbox, whose capacity
// (2 x max_monitors) holds every monitor's one result plus one notice: a
// thread posts its result once per run and the reactor launches the next
// run only after it took it; a notice is posted only while none of the same
// monitor's is pending (slot::notice_pending).
//
// A thread's life (slot::phase):
//   idle --launch--> running --run returned--> idle (result posted)
//   idle --pool destroyed--> exit: the thread ends and is joined
//   running --pool destroyed--> abandoned: the thread cannot be joined or
//        killed; it ends by itself if its run ever returns, touching
//        nothing but the leaked block below (its slot, and the mailbox
//        when the run still posts a notice; no reactor reads it).
// Shutdown with abandoned threads: the destructor detaches them and leaks
// the pool's shared block on purpose (the slots with their stop eventfds,
// the mailbox with its eventfd), since those threads may still write it;
// it never waits for them. That is a bounded leak, once per pool, of
// about 1 KiB per monitor (its slot) plus its stop eventfd, and
// the mailbox's; the process is normally about to exit. What the run
// function itself uses (its `arg`) is the embedding program's to keep
// alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <custos/error.hpp>
#include <custos/monitor.hpp>

#include "io/reactor.hpp"
#include "monitor/records.hpp"

namespace custos::mon {

// Monitors one pool can run (the mailbox's capacity is sized from it).
inline constexpr std::uint32_t max_monitors = 64;
// Thread stacks: MonitorSpec::stack_size 0 means the default; smaller
// sizes are raised to the minimum.
inline constexpr std::size_t default_stack_size = 256 * 1024;
inline constexpr std::size_t min_stack_size = 64 * 1024;

class pool {
public:
    // Reactor thread: run `m` returned `r` (r is valid during the call).
    using result_handler = void (*)(void* ctx, std::uint32_t m, const Result<void>& r) noexcept;
    // Reactor thread: `m`'s overlay changed (machine::on_notice).
    using notice_handler = void (*)(void* ctx, std::uint32_t m) noexcept;

    pool() = default;
    // Joins the idle threads; abandons (and leaks for) the busy ones: see
    // above. Call only once the reactor no longer runs.
    ~pool();
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    // Reactor thread, once, at init: the slots, the mailbox on `r` and one
    // thread per spec. Errors: CapacityExceeded (more than max_monitors),
    // OutOfMemory, EventfdUnavailable (mailbox or stop descriptor),
    // ThreadUnavailable (pthread_create, with its error: EAGAIN at the
    // thread limit, ENOMEM...). After an error the pool holds what it
    // created, and its destructor releases it.
    Result<void> init(std::span<const MonitorSpec> specs, io::reactor& r, result_handler on_result,
                      notice_handler on_notice, void* ctx) noexcept;

    std::uint32_t size() const noexcept;

    // Reactor thread; only while `m` has no run in progress.
    void launch(std::uint32_t m, std::uint32_t run) noexcept;
    // Any time: stop_requested() becomes true, stop_fd() readable.
    void request_stop(std::uint32_t m) noexcept;
    void sample(std::uint32_t m, mon::sample& out) const noexcept;
    // "tid 1234 state S (sleeping) wchan do_sys_poll", from
    // /proc/self/task/TID/{stat,wchan} (system calls: the reactor calls it
    // only when it reports a wedge).
    std::size_t evidence(std::uint32_t m, char* buf, std::size_t len) const noexcept;
    // The thread id of `m`'s thread (0 until it started).
    int thread_id(std::uint32_t m) const noexcept;
    // Notices the mailbox refused (never, by its capacity; counted anyway).
    std::uint32_t notices_refused() const noexcept;

    struct shared;

private:
    shared* sh_ = nullptr;
};

} // namespace custos::mon
