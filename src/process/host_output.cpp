// process::host, the captured output: the slots' stdout and stderr pipes,
// made at a spawn that captures, the read always in flight on each, the
// drain at the end, and their closing (see host.hpp, Output). The pipes'
// layout is in host_setup.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "process/host.hpp"
#include "process/host_proc.hpp"
#include "process/spawn.hpp"

namespace custos::process {

// The slot's output pipes, made at its first spawn that captures (and
// after a vacate): kept, with a read in flight on each, until vacate() or
// close_output(). Errors: SpawnFailed "output pipe" (pipe2, e.g. EMFILE).
Result<void> host::open_output(proc& p) noexcept {
    for (out_stream& o : p.out) {
        if (o.wr >= 0) {
            continue; // made at an earlier spawn: drained all along
        }
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return fail(Reason::spawn_failed, errno, "output pipe");
        }
        // Only custos's end is non-blocking: the child's stays as a
        // program expects its stdout to be (two ends, two open files).
        fds[0] = above_stdio(fds[0]);
        fds[1] = above_stdio(fds[1]);
        if (fds[0] < 0 || fds[1] < 0 ||
            ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK) != 0) {
            const int err = errno;
            for (int fd : fds) {
                if (fd >= 0) {
                    ::close(fd);
                }
            }
            return fail(Reason::spawn_failed, err, "output pipe");
        }
        o.wr = fds[1];
        if (o.closing) {
            o.next_rd = fds[0]; // the old read end's cancel has not come back yet
            continue;
        }
        o.rd = fds[0];
        read_output(o);
    }
    return {};
}

void host::read_output(out_stream& o) noexcept {
    reactor_.read(o.op, o.rd, o.buf, output_buffer);
}

void host::deliver(proc& p, out_stream& o, std::size_t n) noexcept {
    p.output_bytes += n;
    stats_.output_bytes += n;
    ev_.output(p.index, o.stream, o.buf, n);
}

// What `o`'s pipe holds now, read without waiting and delivered; bounded,
// as a writer that escaped the stop could write for ever. No read of `o`
// may be in flight (it would take bytes out of order).
void host::drain_now(proc& p, out_stream& o) noexcept {
    constexpr int max_reads = 64; // 256 KiB: a pipe a service enlarged included
    for (int k = 0; k < max_reads;) {
        const ssize_t n = ::read(o.rd, o.buf, output_buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return; // empty (EAGAIN), or every writer gone
        }
        ++k;
        deliver(p, o, static_cast<std::size_t>(n));
    }
}

// Closes slot `p`'s output pipes: the write ends at once (the children's
// copies keep theirs), the read ends once their reads have come back;
// with `flush`, what they still hold is delivered before.
void host::close_output(proc& p, bool flush) noexcept {
    for (out_stream& o : p.out) {
        if (o.wr >= 0) {
            ::close(o.wr);
            o.wr = -1;
        }
        if (o.next_rd >= 0) {
            ::close(o.next_rd);
            o.next_rd = -1;
        }
        if (o.rd < 0 || o.closing) {
            continue;
        }
        if (o.op.busy()) {
            // The callback closes it: closing the descriptor under a read
            // in flight would leave io_uring reading the old file and
            // epoll a registration for a number that may be reused.
            o.closing = true;
            o.flush = flush;
            reactor_.cancel(o.op);
        } else {
            if (flush) {
                drain_now(p, o);
            }
            ::close(o.rd);
            o.rd = -1;
        }
    }
}

void host::close_output() noexcept {
    reactor_.cancel(output_retry_);
    for (std::uint32_t i = 0; procs_ != nullptr && i < count_; ++i) {
        close_output(procs_[i], true);
    }
}

void host::on_output_read(io::op& op, std::int32_t result) noexcept {
    auto& o = *static_cast<out_stream*>(op.user);
    proc& p = *o.owner;
    host& h = *p.owner;
    if (o.closing) {
        if (o.flush) {
            // The end: what this read got is older than what the pipe
            // still holds.
            if (result > 0) {
                h.deliver(p, o, static_cast<std::size_t>(result));
            }
            h.drain_now(p, o);
            o.flush = false;
        }
        // Vacated: what came with the cancel is dropped (the slot may
        // already hold another service).
        ::close(o.rd);
        o.rd = o.next_rd;
        o.next_rd = -1;
        o.closing = false;
        if (o.rd >= 0) {
            h.read_output(o); // a refilled slot's new pipe
        }
        return;
    }
    if (result > 0) {
        h.deliver(p, o, static_cast<std::size_t>(result));
        // Again at once, whatever the listener did (unless it vacated the
        // slot, which closed the pipe).
        if (o.rd >= 0 && !o.closing && !o.op.busy()) {
            h.read_output(o);
        }
        return;
    }
    if (result == 0) {
        // EOF: every write end is closed, ours included, so the pipe is
        // being given up (close_output): nothing more can come.
        return;
    }
    if (result == -EINTR || result == -EAGAIN) {
        h.read_output(o);
        return;
    }
    if (result == -ECANCELED) {
        return; // only close_output() cancels, and it set closing
    }
    // Refused (-ENOBUFS: the reactor was full) or failed: again after a
    // pause, never in a loop; the pipe holds what comes meanwhile.
    ++h.stats_.output_read_retries;
    if (!h.output_retry_.pending()) {
        h.reactor_.arm_after(h.output_retry_, output_retry);
    }
}

void host::on_output_retry(io::timer& t) noexcept {
    host& h = *static_cast<host*>(t.user);
    for (std::uint32_t i = 0; i < h.count_; ++i) {
        for (out_stream& o : h.procs_[i].out) {
            if (o.rd >= 0 && !o.closing && !o.op.busy()) {
                h.read_output(o);
            }
        }
    }
}

std::uint64_t host::output_bytes(std::uint32_t i) const noexcept {
    return i < count_ ? procs_[i].output_bytes : 0;
}

} // namespace custos::process
