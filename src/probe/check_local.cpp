// The check engine's local kinds: exec (a child process) and file (statx,
// and a real write test). See check.hpp for their steps.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "probe/check.hpp"
#include "probe/check_def.hpp"
#include "process/cgroup.hpp"

namespace custos::probe {

void engine::kill_run(check& c, int pidfd) noexcept {
    // The whole cgroup (setsid() children included) where the run has one,
    // and the process group either way.
    if (cg_ != nullptr && c.cg_slot_ >= 0) {
        (void)cg_->kill(static_cast<std::uint32_t>(c.cg_slot_), SIGKILL);
    }
    process::signal_group(pidfd, c.pid_, SIGKILL);
}

void engine::exec_start(check& c) noexcept {
    const check_def& d = *c.def_;
    if (spawner_ == nullptr) {
        c.result.fail(Reason::probe_exec_failed, 0, "%s: no spawner", d.label);
        defer_finish(c);
        return;
    }
    process::spawn_request rq = d.rq;
    // One pipe for its stdout and stderr, per run: a grandchild of an
    // earlier run can never write into this one's.
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        c.result.fail(Reason::probe_exec_failed, errno, "%s: output pipe: %s", d.label,
                      errno_name(errno));
        defer_finish(c);
        return;
    }
    fds[0] = process::above_stdio(fds[0]);
    fds[1] = process::above_stdio(fds[1]);
    if (fds[0] < 0 || fds[1] < 0 ||
        ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK) != 0) {
        const int err = errno;
        for (int fd : fds) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
        c.result.fail(Reason::probe_exec_failed, err, "%s: output pipe: %s", d.label,
                      errno_name(err));
        defer_finish(c);
        return;
    }
    rq.stdout_fd = fds[1];
    rq.stderr_fd = fds[1];
    if (cg_ != nullptr && c.cg_slot_ >= 0) {
        const auto slot = static_cast<std::uint32_t>(c.cg_slot_);
        if (cg_->populated(slot)) {
            (void)cg_->kill(slot, SIGKILL); // what the previous run left behind
        }
        rq.cgroup_procs_fd = cg_->procs_fd(slot);
    }
    auto s = spawner_->spawn(rq);
    ::close(fds[1]); // the child has its copies (or never will)
    if (!s) {
        ::close(fds[0]);
        c.result.fail(Reason::probe_exec_failed, s.error().sys_errno(), "%s: %s", d.label,
                      s.error().subject().data());
        defer_finish(c);
        return;
    }
    c.pid_ = s->pid;
    c.pidfd_ = s->pidfd;
    c.out_rd_ = fds[0];
    c.tail_->reset();
    c.exec_step_ = exec_stage::wait;
    read_output(c);
    if (c.pidfd_ >= 0) {
        r_->waitid(c.op_, c.pidfd_, c.info_, c.deadline_);
    } else {
        r_->arm(c.timer_, c.deadline_);
    }
}

void engine::exec_step(check& c, std::int32_t result) noexcept {
    if (result == 0) {
        exec_exited(c, *c.info_);
        return;
    }
    if ((result == -ETIMEDOUT || result == -ECANCELED) && c.exec_step_ == exec_stage::wait) {
        if (result == -ETIMEDOUT) {
            c.timed_out_ = true;
            ++stats_.children_killed;
        }
        kill_run(c, c.pidfd_);
        c.exec_step_ = exec_stage::reap;
        r_->waitid(c.op_, c.pidfd_, c.info_); // killed: it cannot take long
        return;
    }
    // The op failed (ECHILD: reaped elsewhere; ENOBUFS): nothing to wait for.
    c.result.fail(Reason::probe_exec_failed, -result, "%s: waiting for it: %s", c.def_->label,
                  errno_name(-result));
    siginfo_t none{};
    none.si_pid = c.pid_;
    none.si_code = CLD_KILLED;
    none.si_status = SIGKILL;
    kill_run(c, c.pidfd_);
    exec_exited(c, none);
}

void engine::exec_exited(check& c, const siginfo_t& si) noexcept {
    r_->cancel(c.timer_);
    // Whatever it left in its group goes with it.
    kill_run(c, -1);
    if (c.pidfd_ >= 0) {
        ::close(c.pidfd_);
        c.pidfd_ = -1;
    }
    c.pid_ = 0;
    if (&si != c.info_) {
        *c.info_ = si; // the SIGCHLD drain's, or a failed wait's
    }
    // The output read ends before the check does (done may start it
    // again at once): cancelled, then what the pipe holds is read.
    if (c.out_op_.busy()) {
        c.exec_step_ = exec_stage::drain;
        r_->cancel(c.out_op_);
        return;
    }
    exec_conclude(c);
}

void engine::read_output(check& c) noexcept {
    r_->read(c.out_op_, c.out_rd_, c.tail_->buf, sizeof c.tail_->buf);
}

void engine::on_output(io::op& o, std::int32_t result) noexcept {
    auto& c = *static_cast<check*>(o.user);
    engine& e = *c.owner_;
    if (result > 0) {
        c.tail_->feed(c.tail_->buf, static_cast<std::size_t>(result));
    }
    if (c.exec_step_ == exec_stage::drain) {
        e.exec_conclude(c); // cancelled at the exit (or it completed first)
        return;
    }
    if (result > 0 || result == -EINTR || result == -EAGAIN) {
        e.read_output(c);
    }
    // EOF: every writer is gone, the exit follows. An error (ENOBUFS):
    // no more reading this run; the exit's drain reads what is left, and
    // a child that fills the pipe meanwhile runs into its timeout.
}

// The child has exited and no output read is in flight: the rest of the
// output read without waiting, the pipe closed, the result decided.
void engine::exec_conclude(check& c) noexcept {
    const check_def& d = *c.def_;
    const siginfo_t& si = *c.info_;
    if (c.out_rd_ >= 0) {
        exec_tail& t = *c.tail_;
        for (std::size_t total = 0; total < exec_drain_max;) {
            ssize_t n = ::read(c.out_rd_, t.buf, sizeof t.buf);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break; // empty (EAGAIN), every writer gone (0), or failed
            }
            t.feed(t.buf, static_cast<std::size_t>(n));
            total += static_cast<std::size_t>(n);
        }
        ::close(c.out_rd_); // what an escaped grandchild writes now gets EPIPE
        c.out_rd_ = -1;
    }
    c.exec_step_ = exec_stage::wait;
    // Its last line, for a failure it caused (not a cancel, not a failed
    // wait); a passing run's output is dropped.
    const char* line = c.tail_->line();
    const char* sep = *line != '\0' ? ": " : "";
    if (!c.result.passed()) {
        // Already failed: the wait itself failed (exec_step).
    } else if (c.timed_out_) {
        c.result.fail(Reason::probe_timeout, ETIMEDOUT,
                      "%s: still running at the timeout: killed%s%s", d.label, sep, line);
    } else if (c.cancelled) {
        c.result.fail(Reason::probe_timeout, ECANCELED, "%s: cancelled", d.label);
    } else if (si.si_code == CLD_EXITED && si.si_status == 0) {
        // passed
    } else if (si.si_code == CLD_EXITED) {
        c.result.fail(Reason::probe_exit_status, 0, "%s: exit status %d%s%s", d.label, si.si_status,
                      sep, line);
    } else {
        c.result.fail(Reason::probe_exit_status, 0, "%s: killed by signal %d%s%s", d.label,
                      si.si_status, sep, line);
    }
    finish(c);
}

bool engine::owns_child(int pid, bool* watched_by_op) const noexcept {
    for (std::uint32_t i = 0; i < exec_count_; ++i) {
        const check& c = *execs_[i];
        if (c.pid_ == pid && c.pid_ > 0) {
            *watched_by_op = c.pidfd_ >= 0 && c.op_.busy();
            return true;
        }
    }
    return false;
}

int engine::child_at(std::uint32_t k, bool* watched_by_op) const noexcept {
    if (k >= exec_count_ || execs_[k]->pid_ <= 0) {
        return 0;
    }
    const check& c = *execs_[k];
    *watched_by_op = c.pidfd_ >= 0 && c.op_.busy();
    return c.pid_;
}

void engine::on_child_exit(int pid, const siginfo_t& si) noexcept {
    for (std::uint32_t i = 0; i < exec_count_; ++i) {
        check& c = *execs_[i];
        if (c.pid_ == pid && c.pid_ > 0 && c.pidfd_ < 0) {
            exec_exited(c, si);
            return;
        }
    }
}

void engine::file_checks(check& c) noexcept {
    const check_def& d = *c.def_;
    const struct statx& st = *c.stx_;
    if ((d.owner.uid >= 0 && static_cast<long>(st.stx_uid) != d.owner.uid) ||
        (d.owner.gid >= 0 && static_cast<long>(st.stx_gid) != d.owner.gid)) {
        c.result.fail(Reason::probe_owner_mismatch, 0, "%s: owner %u:%u, expected %ld:%ld", d.label,
                      st.stx_uid, st.stx_gid, d.owner.uid, d.owner.gid);
        finish(c);
        return;
    }
    if (d.mode >= 0 && (st.stx_mode & d.mode) != static_cast<unsigned>(d.mode)) {
        c.result.fail(Reason::probe_mode_mismatch, 0, "%s: mode %04o lacks %04o", d.label,
                      st.stx_mode & 07777u, static_cast<unsigned>(d.mode) & ~st.stx_mode & 07777u);
        finish(c);
        return;
    }
    if (!d.writable || c.cancelled) {
        finish(c);
        return;
    }
    c.file_step_ = file_stage::open;
    const char* tmp = S_ISDIR(st.stx_mode) ? c.tmp_inside_ : c.tmp_beside_;
    r_->openat(c.op_, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
}

void engine::file_cleanup(check& c) noexcept {
    if (c.fd_ >= 0) {
        c.file_step_ = file_stage::close;
        int fd = c.fd_;
        c.fd_ = -1;
        r_->close(c.op_, fd);
        return;
    }
    if (c.created_) {
        c.created_ = false;
        c.file_step_ = file_stage::unlink;
        const char* tmp = S_ISDIR(c.stx_->stx_mode) ? c.tmp_inside_ : c.tmp_beside_;
        r_->unlinkat(c.op_, AT_FDCWD, tmp, 0);
        return;
    }
    finish(c);
}

void engine::file_step(check& c, std::int32_t result) noexcept {
    const check_def& d = *c.def_;
    switch (c.file_step_) {
    case file_stage::stat:
        if (result < 0) {
            c.result.fail(Reason::probe_file_missing, -result, "%s: %s", d.label,
                          errno_name(-result));
            finish(c);
            return;
        }
        file_checks(c);
        return;
    case file_stage::open:
        if (result < 0) {
            c.result.fail(Reason::probe_not_writable, -result, "create a file beside/in %s: %s",
                          d.label, errno_name(-result));
            finish(c);
            return;
        }
        c.fd_ = result;
        c.created_ = true;
        c.file_step_ = file_stage::write;
        r_->write(c.op_, c.fd_, "custos\n", 7);
        return;
    case file_stage::write:
        if (result != 7) {
            int err = result < 0 ? -result : ENOSPC;
            c.result.fail(Reason::probe_not_writable, err, "write in %s: %s", d.label,
                          errno_name(err));
        }
        file_cleanup(c);
        return;
    case file_stage::close:
        if (result < 0 && c.result.passed()) {
            // A delayed write error (NFS, quota) can surface at close.
            c.result.fail(Reason::probe_not_writable, -result, "close in %s: %s", d.label,
                          errno_name(-result));
        }
        file_cleanup(c);
        return;
    case file_stage::unlink:
        if (result < 0 && c.result.passed()) {
            c.result.fail(Reason::probe_not_writable, -result, "remove the file in %s: %s", d.label,
                          errno_name(-result));
        }
        finish(c);
        return;
    }
}

} // namespace custos::probe
