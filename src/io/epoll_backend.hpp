// The epoll backend: non-blocking system calls, readiness from epoll_wait,
// deadlines from the reactor's timer wheel.
//
// Each descriptor with waiting ops has an entry (slot_pool, max_fds of them)
// found by an fd -> entry index map; epoll's user data is the entry's
// {index, generation} handle, so an event for an entry that was since
// released or reused is recognised as stale and ignored.
//
// Registrations are EPOLLONESHOT: after reporting, the kernel disables the
// registration until re-armed with the events the remaining waiters need.
// A registration left behind (an fd closed behind our back while a dup of its
// file lives on) therefore fires at most once instead of spinning the loop.
// Entries whose waiters are gone stay registered (disabled) on an idle LRU
// list, so the next op on the same fd costs one EPOLL_CTL_MOD, not a DEL and
// an ADD; when the pool is full the least recently idle entry is reused.
//
// Ops that usually succeed at once (write, send, connect) are attempted
// before waiting; ops that usually must wait (read, recv, accept, poll) wait
// for readiness first, which saves a system call returning EAGAIN.
#pragma once

#include <sys/epoll.h>

#include "core/index_map.hpp"
#include "core/intrusive_list.hpp"
#include "core/slot_pool.hpp"
#include "io/reactor.hpp"

namespace custos::io {

class epoll_backend final : public backend {
public:
    explicit epoll_backend(reactor& r) noexcept : r_(r) {}
    ~epoll_backend() override;

    // Errors: EpollUnavailable, OutOfMemory.
    Result<void> init(const reactor_config& cfg) noexcept;

    void submit(op& o) noexcept override;
    bool cancel(op& o) noexcept override;
    void flush() noexcept override;
    void wait(bool block) noexcept override;

private:
    struct fd_entry : list_hook<fd_entry> {
        int fd = -1;
        std::uint32_t armed = 0; // events the registration is armed for (0: disabled)
        bool registered = false; // epoll holds a (possibly disabled) registration
        slot_handle self;
        intrusive_list<op> waiters;
    };

    void start(op& o) noexcept;
    void start_close(op& o) noexcept;
    void wait_on(op& o, std::uint32_t events) noexcept;
    bool perform(op& o, std::uint32_t revents) noexcept; // true: completed
    void on_ready(fd_entry& e, std::uint32_t revents) noexcept;
    void rearm(fd_entry& e) noexcept;
    void finish(op& o, std::int32_t result) noexcept;
    void release_if_empty(fd_entry& e) noexcept;
    void forget(fd_entry& e) noexcept;
    static void on_deadline(timer& t) noexcept;

    reactor& r_;
    int epfd_ = -1;
    slot_pool<fd_entry> entries_;
    index_map by_fd_;
    intrusive_list<fd_entry> idle_;
    intrusive_list<op> pending_;
    static constexpr int max_events = 64;
    epoll_event events_[max_events];
};

} // namespace custos::io
