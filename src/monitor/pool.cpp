// The monitors' threads. See pool.hpp for the protocol and the shutdown.
#include "monitor/pool.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>
#include <string_view>

#include "core/assert.hpp"
#include "io/mailbox.hpp"
#include "monitor/slot.hpp"

namespace custos::mon {
namespace {

enum class message_kind : std::uint32_t { result, notice };

struct message {
    std::uint32_t monitor = 0;
    message_kind kind = message_kind::result;
};

constexpr std::uint32_t mailbox_capacity = 2 * max_monitors;

std::uint32_t* futex_word(std::atomic<std::uint32_t>& a) noexcept {
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    return reinterpret_cast<std::uint32_t*>(&a);
}

void futex_wait(std::atomic<std::uint32_t>& a, std::uint32_t expected) noexcept {
    // Returns at once (EAGAIN) when the word no longer holds `expected`;
    // spurious wake-ups are fine, the caller loops.
    ::syscall(SYS_futex, futex_word(a), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& a) noexcept {
    ::syscall(SYS_futex, futex_word(a), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// Blocks left to abandoned threads, kept on a list so they stay reachable
// (and a leak checker sees them as deliberately kept, not lost). Pushed by
// destructors; never popped.
std::atomic<void*> abandoned_head{nullptr};

constexpr std::uint32_t ph(phase p) noexcept {
    return static_cast<std::uint32_t>(p);
}

std::size_t stack_size_for(const MonitorSpec& s) noexcept {
    std::size_t size = s.stack_size == 0 ? default_stack_size : s.stack_size;
    size = std::max(size, min_stack_size);
    size = std::max<std::size_t>(size, PTHREAD_STACK_MIN);
    long page = ::sysconf(_SC_PAGESIZE);
    std::size_t p = page > 0 ? static_cast<std::size_t>(page) : 4096;
    return (size + p - 1) / p * p;
}

// Reads a small /proc file into buf (NUL-terminated); its length, or 0.
std::size_t read_small(const char* path, char* buf, std::size_t len) noexcept {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    ssize_t n = ::read(fd, buf, len - 1);
    ::close(fd);
    std::size_t got = n > 0 ? static_cast<std::size_t>(n) : 0;
    buf[got] = '\0';
    return got;
}

std::string_view state_meaning(char c) noexcept {
    switch (c) {
    case 'R':
        return "running";
    case 'S':
        return "sleeping";
    case 'D':
        return "uninterruptible";
    case 'T':
        return "stopped";
    case 't':
        return "traced";
    case 'Z':
        return "zombie";
    case 'X':
        return "dead";
    default:
        return "?";
    }
}

} // namespace

struct pool::shared {
    io::mailbox<message, mailbox_capacity> box;
    slot* slots = nullptr;
    std::uint32_t count = 0;
    std::uint32_t created = 0; // threads started (a prefix of slots)
    pthread_t threads[max_monitors] = {};
    result_handler on_result = nullptr;
    notice_handler on_notice = nullptr;
    void* ctx = nullptr;
    std::atomic<std::uint32_t> notices_refused{0};
    shared* next_abandoned = nullptr; // the list of leaked blocks

    static void on_message(void* self, const message& msg) noexcept {
        auto& sh = *static_cast<shared*>(self);
        slot& s = sh.slots[msg.monitor];
        switch (msg.kind) {
        case message_kind::result:
            // The ring's pop (acquire) pairs with the thread's push
            // (release): the result written before the post is visible.
            if (s.result_ok) {
                sh.on_result(sh.ctx, msg.monitor, Result<void>{});
            } else {
                sh.on_result(sh.ctx, msg.monitor, fail(s.result_error));
            }
            return;
        case message_kind::notice:
            // Cleared before the handler samples the overlay: a change
            // stored after the sample finds the flag clear and posts again
            // (pairs with the exchange in context.cpp's notify()).
            s.notice_pending.exchange(false, std::memory_order_acq_rel);
            sh.on_notice(sh.ctx, msg.monitor);
            return;
        }
    }

    static void post_notice(void* self, std::uint32_t m) noexcept {
        auto& sh = *static_cast<shared*>(self);
        if (!sh.box.try_post(message{m, message_kind::notice})) {
            // Cannot happen by the capacity; if it did, let the next change
            // have another go rather than never notifying.
            sh.notices_refused.fetch_add(1, std::memory_order_relaxed);
            sh.slots[m].notice_pending.store(false, std::memory_order_release);
        }
    }

    static void* thread_main(void* arg) noexcept {
        slot& s = *static_cast<slot*>(arg);
        auto& sh = *static_cast<shared*>(s.notify_ctx);
        // Release pairs with the acquire in evidence().
        s.tid.store(static_cast<int>(::syscall(SYS_gettid)), std::memory_order_release);
        char name[16] = {};
        std::memcpy(name, s.name.data(), std::min<std::size_t>(s.name.size(), 15));
        ::prctl(PR_SET_NAME, name, 0, 0, 0);
        for (;;) {
            // Acquire pairs with the release store in launch(): the run
            // number and the cleared stop flag are visible.
            std::uint32_t p = s.phase.load(std::memory_order_acquire);
            if (p == ph(phase::idle)) {
                futex_wait(s.phase, p);
                continue;
            }
            if (p != ph(phase::running)) {
                return nullptr; // exit or abandoned
            }
            MonitorContext ctx(&s);
            Result<void> r = s.fn != nullptr ? s.fn(ctx, s.arg) : Result<void>{};
            s.result_ok = r.has_value();
            if (!r) {
                s.result_error = r.error();
            }
            std::uint32_t expected = ph(phase::running);
            // acq_rel: pairs with the destructor's compare-exchange; if it
            // abandoned this thread, the pool's memory is leaked for us and
            // we only leave.
            if (!s.phase.compare_exchange_strong(expected, ph(phase::idle),
                                                 std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
                return nullptr;
            }
            // One result per run, and the reactor launches the next run only
            // after taking it: the ring always has room.
            bool posted = sh.box.try_post(message{s.index, message_kind::result});
            CUSTOS_ASSERT(posted);
        }
    }
};

pool::~pool() {
    if (sh_ == nullptr) {
        return;
    }
    shared& sh = *sh_;
    bool leak = false;
    bool join[max_monitors] = {};
    for (std::uint32_t i = 0; i < sh.created; ++i) {
        slot& s = sh.slots[i];
        for (;;) {
            std::uint32_t expected = ph(phase::idle);
            // acq_rel pairs with the thread's compare-exchange at the end of
            // a run: exactly one of the two wins.
            if (s.phase.compare_exchange_strong(expected, ph(phase::exit),
                                                std::memory_order_acq_rel)) {
                futex_wake(s.phase);
                join[i] = true;
                break;
            }
            if (expected == ph(phase::running)) {
                if (s.phase.compare_exchange_strong(expected, ph(phase::abandoned),
                                                    std::memory_order_acq_rel)) {
                    s.stop.store(true, std::memory_order_release);
                    std::uint64_t one = 1;
                    [[maybe_unused]] auto n = ::write(s.stop_fd, &one, sizeof one);
                    ::pthread_detach(sh.threads[i]);
                    leak = true;
                    break;
                }
                continue; // it just returned: the idle case again
            }
            break;
        }
    }
    for (std::uint32_t i = 0; i < sh.created; ++i) {
        if (join[i]) {
            ::pthread_join(sh.threads[i], nullptr);
        }
    }
    if (leak) {
        // Deliberate: an abandoned thread may still touch its slot (and
        // nothing else); see pool.hpp.
        void* head = abandoned_head.load(std::memory_order_relaxed);
        do {
            sh.next_abandoned = static_cast<shared*>(head);
            // Release: a later destructor that reads the head sees this link.
        } while (!abandoned_head.compare_exchange_weak(head, sh_, std::memory_order_release,
                                                       std::memory_order_relaxed));
        sh_ = nullptr;
        return;
    }
    for (std::uint32_t i = 0; i < sh.count; ++i) {
        if (sh.slots[i].stop_fd >= 0) {
            ::close(sh.slots[i].stop_fd);
        }
    }
    delete[] sh.slots;
    delete sh_;
    sh_ = nullptr;
}

Result<void> pool::init(std::span<const MonitorSpec> specs, io::reactor& r,
                        result_handler on_result, notice_handler on_notice, void* ctx) noexcept {
    CUSTOS_ASSERT(sh_ == nullptr);
    if (specs.size() > max_monitors) {
        return fail(Reason::capacity_exceeded, 0, "monitors (at most 64 in one runtime)");
    }
    sh_ = new (std::nothrow) shared;
    if (sh_ == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "monitor pool");
    }
    shared& sh = *sh_;
    sh.on_result = on_result;
    sh.on_notice = on_notice;
    sh.ctx = ctx;
    const auto n = static_cast<std::uint32_t>(specs.size());
    if (n != 0) {
        sh.slots = new (std::nothrow) slot[n];
        if (sh.slots == nullptr) {
            return fail(Reason::out_of_memory, ENOMEM, "monitor slots");
        }
    }
    sh.count = n;
    for (std::uint32_t i = 0; i < n; ++i) {
        slot& s = sh.slots[i];
        s.index = i;
        s.name = specs[i].name;
        s.fn = specs[i].run;
        s.arg = specs[i].arg;
        s.notify = &shared::post_notice;
        s.notify_ctx = &sh;
        s.stop_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s.stop_fd < 0) {
            return fail(Reason::eventfd_unavailable, errno, "eventfd (monitor stop)");
        }
    }
    if (n == 0) {
        return {}; // no thread, and no doorbell to keep open
    }
    if (auto a = sh.box.attach(r, &shared::on_message, &sh); !a) {
        return a;
    }

    // Every signal blocked in the new threads (they inherit the creator's
    // mask): signals are the reactor's business.
    sigset_t all;
    sigset_t old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = 0;
    for (std::uint32_t i = 0; i < n && err == 0; ++i) {
        pthread_attr_t attr;
        err = ::pthread_attr_init(&attr);
        if (err != 0) {
            break;
        }
        err = ::pthread_attr_setstacksize(&attr, stack_size_for(specs[i]));
        if (err == 0) {
            err = ::pthread_create(&sh.threads[i], &attr, &shared::thread_main, &sh.slots[i]);
        }
        ::pthread_attr_destroy(&attr);
        if (err == 0) {
            ++sh.created;
        }
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (err != 0) {
        return fail(Reason::thread_unavailable, err, specs[sh.created].name);
    }
    return {};
}

std::uint32_t pool::size() const noexcept {
    return sh_ != nullptr ? sh_->count : 0;
}

void pool::launch(std::uint32_t m, std::uint32_t run) noexcept {
    slot& s = sh_->slots[m];
    CUSTOS_ASSERT(s.phase.load(std::memory_order_relaxed) == ph(phase::idle));
    // Drain a stop request of the previous run; the thread is idle, so the
    // order of these two does not matter to it.
    std::uint64_t v = 0;
    [[maybe_unused]] auto n = ::read(s.stop_fd, &v, sizeof v);
    // Relaxed: published by the release store of `phase` below.
    s.stop.store(false, std::memory_order_relaxed);
    s.run = run;
    // Release pairs with the thread's acquire load of `phase`.
    s.phase.store(ph(phase::running), std::memory_order_release);
    futex_wake(s.phase);
}

void pool::request_stop(std::uint32_t m) noexcept {
    slot& s = sh_->slots[m];
    // Release pairs with the acquire in slot::stop_requested().
    s.stop.store(true, std::memory_order_release);
    std::uint64_t one = 1;
    // Fails only when the counter would overflow: it is readable anyway.
    [[maybe_unused]] auto n = ::write(s.stop_fd, &one, sizeof one);
}

void pool::sample(std::uint32_t m, mon::sample& out) const noexcept {
    sh_->slots[m].read(out);
}

int pool::thread_id(std::uint32_t m) const noexcept {
    // Acquire pairs with the release store in thread_main().
    return sh_->slots[m].tid.load(std::memory_order_acquire);
}

std::uint32_t pool::notices_refused() const noexcept {
    // Relaxed: a statistic.
    return sh_ != nullptr ? sh_->notices_refused.load(std::memory_order_relaxed) : 0;
}

std::size_t pool::evidence(std::uint32_t m, char* buf, std::size_t len) const noexcept {
    if (len == 0) {
        return 0;
    }
    int tid = thread_id(m);
    char path[64];
    char stat[512];
    char wchan[128];
    std::size_t ns = 0;
    std::size_t nw = 0;
    if (tid > 0) {
        std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
        ns = read_small(path, stat, sizeof stat);
        std::snprintf(path, sizeof path, "/proc/self/task/%d/wchan", tid);
        nw = read_small(path, wchan, sizeof wchan);
    }
    // stat: "TID (comm) S ...": the state follows the last ')', as comm may
    // hold anything.
    char state = '?';
    if (ns != 0) {
        const char* close = std::strrchr(stat, ')');
        if (close != nullptr && close[1] == ' ' && close[2] != '\0') {
            state = close[2];
        }
    }
    std::string_view w(wchan, nw);
    while (!w.empty() && (w.back() == '\n' || w.back() == ' ')) {
        w.remove_suffix(1);
    }
    if (w.empty() || w == "0") {
        w = "-";
    }
    std::string_view meaning = state_meaning(state);
    int k = std::snprintf(buf, len, "tid %d state %c (%.*s) wchan %.*s", tid, state,
                          static_cast<int>(meaning.size()), meaning.data(),
                          static_cast<int>(w.size()), w.data());
    if (k < 0) {
        buf[0] = '\0';
        return 0;
    }
    return std::min(static_cast<std::size_t>(k), len - 1);
}

} // namespace custos::mon
