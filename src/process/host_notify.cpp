// process::host, the notify side: attribution of what arrives on the
// services' sockets (who may speak for a service, MAINPID=, STATUS=,
// ERRNO=, readiness and watchdog messages), the directory watch that puts
// deleted socket names back, and the sockets' shutdown (see host.hpp).
#include <unistd.h>

#include <cstring>

#include "process/host.hpp"
#include "process/host_proc.hpp"

namespace custos::process {

// Who may speak for service `p`: root; the service's own user (custos's,
// when it sets none); or any process in the service's process group or
// session (a daemon that dropped privileges after its start). A sender that
// has exited is judged by its uid alone, which is what the kernel stamped on
// the datagram. Everyone else is refused and counted: the socket file is
// writable by all, since services change users.
bool host::may_speak_for(const proc& p, const ucred& cred) const noexcept {
    // The running process's user, whatever a redefine has set since.
    const int uid = p.pid > 0 ? p.run_uid : p.uid;
    const uid_t own = uid >= 0 ? static_cast<uid_t>(uid) : ::geteuid();
    if (cred.uid == 0 || cred.uid == own) {
        return true;
    }
    if (p.pid <= 0) {
        return false;
    }
    const pid_t pgid = ::getpgid(static_cast<pid_t>(cred.pid));
    const pid_t sid = ::getsid(static_cast<pid_t>(cred.pid));
    return pgid == p.pid || sid == p.pid;
}

bool host::on_notify(std::uint32_t i, const ucred& cred, const notify_message& m) noexcept {
    if (i >= count_ || !may_speak_for(procs_[i], cred)) {
        ++stats_.notify_foreign;
        return false;
    }
    if (procs_[i].notify_stale) {
        return true; // read and discarded: see spawn()
    }
    proc& p = procs_[i];
    if (m.has_status) {
        std::size_t n = m.status.size() < status_text_max ? m.status.size() : status_text_max;
        std::memcpy(p.status_text, m.status.data(), n);
        p.status_text[n] = '\0';
        p.status_len = static_cast<std::uint8_t>(n);
    }
    if (m.has_errno) {
        p.notify_errno = m.errno_value;
    }
    if (m.has_mainpid && m.mainpid != p.pid) {
        // Only a process of this service: never a stranger to be followed
        // (and later signalled).
        if (in_service(p, m.mainpid)) {
            p.main_pid = m.mainpid;
        } else {
            ++stats_.main_pid_refused;
        }
    }
    // Received numbers are clamped before any unit conversion: 2^63 us in
    // ns would overflow (undefined behaviour, a deadline centuries away).
    constexpr std::uint64_t max_usec = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(max_notify_timeout).count());
    if (m.has_extend) {
        const std::uint64_t us = m.extend_usec < max_usec ? m.extend_usec : max_usec;
        ev_.extend_timeout(i, std::chrono::microseconds(static_cast<std::int64_t>(us)));
    }
    if (m.has_watchdog_usec) {
        const std::uint64_t us = m.watchdog_usec < max_usec ? m.watchdog_usec : max_usec;
        ev_.watchdog_usec(i, std::chrono::microseconds(static_cast<std::int64_t>(us)));
    }
    if (m.watchdog_ping) {
        ev_.watchdog_ping(i);
    }
    if (m.ready && (p.pid > 0 ? p.run_ready : p.ready_mode) == ReadyMode::notify) {
        ev_.ready(i, Reason::ready_notified);
    }
    if (m.watchdog_trigger) {
        ev_.watchdog_trigger(i);
    }
    return true;
}

void host::flush_notify(std::uint32_t i) noexcept {
    if (procs_[i].notify != nullptr) {
        procs_[i].notify->drain();
    }
}

void host::on_notify_watch(io::op& o, std::int32_t result) noexcept {
    host& h = *static_cast<host*>(o.user);
    if (result < 0 && result != -EAGAIN && result != -EINTR) {
        return; // inotify failed: deletions go unnoticed, as without inotify
    }
    // Whatever the events say, check every name: cheap, and a burst of
    // events (rm -rf) needs one pass.
    std::uint64_t n = h.notify_dir_.restore();
    for (std::uint32_t k = 0; h.notify_ != nullptr && k < h.sockets_; ++k) {
        if (h.notify_[k].restore()) { // open ones only
            ++n;
        }
    }
    h.stats_.notify_restored += n;
    h.reactor_.read(o, h.notify_dir_.watch_fd(), h.notify_watch_buf_, sizeof h.notify_watch_buf_);
}

void host::close_notify() noexcept {
    if (notify_watch_op_.busy()) {
        reactor_.cancel(notify_watch_op_);
    }
    for (std::uint32_t k = 0; notify_ != nullptr && k < sockets_; ++k) {
        notify_[k].close(); // idempotent: closed ones stay closed
    }
}

bool host::busy() const noexcept {
    if (notify_watch_op_.busy()) {
        return true;
    }
    // Output reads being cancelled (close_output()); those still reading
    // a live pipe are not waited for.
    for (std::uint32_t i = 0; procs_ != nullptr && i < count_; ++i) {
        for (const out_stream& o : procs_[i].out) {
            if (o.closing && o.op.busy()) {
                return true;
            }
        }
    }
    for (std::uint32_t k = 0; notify_ != nullptr && k < sockets_; ++k) {
        if (notify_[k].busy()) {
            return true;
        }
    }
    return false;
}

std::string_view host::status_text(std::uint32_t i) const noexcept {
    return i < count_ ? std::string_view(procs_[i].status_text, procs_[i].status_len)
                      : std::string_view();
}

int host::notify_errno(std::uint32_t i) const noexcept {
    return i < count_ ? procs_[i].notify_errno : 0;
}

host_stats host::stats() const noexcept {
    host_stats s = stats_;
    // Every socket, also those vacated slots had: the counts never go back.
    for (std::uint32_t k = 0; notify_ != nullptr && k < sockets_; ++k) {
        const notify_stats& n = notify_[k].stats();
        s.notify_received += n.received;
        s.notify_dropped += n.dropped_malformed + n.dropped_unattributed;
        s.fds_closed += n.fds_closed;
        s.fds_closed_inline += n.fds_closed_inline;
    }
    return s;
}

} // namespace custos::process
