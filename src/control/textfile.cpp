// The metrics textfile (textfile.hpp).
#include "control/textfile.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "control/server.hpp"

namespace custos::control {

namespace {
constexpr std::size_t buf_size = 16384;
} // namespace

Result<void> textfile::init(arena& mem, const ControlConfig& cfg, io::reactor& r,
                            status::render_context& ctx) noexcept {
    reactor_ = &r;
    ctx_ = &ctx;
    if (cfg.metrics_textfile.empty()) {
        return {};
    }
    if (cfg.metrics_textfile.size() >= sizeof(path_) ||
        cfg.metrics_textfile_interval < std::chrono::seconds(1)) {
        return fail(Reason::invalid_argument, 0,
                    "metrics_textfile: a path under 256 bytes, an interval of 1 s or more");
    }
    buf_ = static_cast<char*>(mem.take_unzeroed(buf_size, 64)); // written before read: not zeroed
    if (buf_ == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "metrics textfile");
    }
    std::memcpy(path_, cfg.metrics_textfile.data(), cfg.metrics_textfile.size());
    std::snprintf(tmp_, sizeof(tmp_), "%s.tmp", path_);
    interval_ = std::chrono::duration_cast<nanos>(cfg.metrics_textfile_interval);
    return {};
}

void textfile::start() noexcept {
    if (enabled()) {
        on_timer(timer_);
    }
}

void textfile::stop() noexcept {
    reactor_->cancel(timer_);
}

void textfile::on_timer(io::timer& t) noexcept {
    auto* self = static_cast<textfile*>(t.user);
    (void)self->write_now();
    self->reactor_->arm_after(self->timer_, self->interval_, self->interval_ / 10);
}

bool textfile::write_now() noexcept {
    int fd = ::open(tmp_, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        ++failures_;
        last_errno_ = errno;
        return false;
    }
    ctx_->now_ns = to_ns(reactor_->now());
    ctx_->wall_now_ns = status::wall_now_ns();
    status::process_info proc;
    read_process_info(proc);
    const status::process_info* before = ctx_->process;
    ctx_->process = &proc;
    status::document doc;
    doc.begin(status::doc::metrics, *ctx_);
    bool ok = true;
    bool done = false;
    while (ok && !done) {
        text_out out(buf_, buf_size);
        done = doc.fill(out);
        std::size_t at = 0;
        while (ok && at < out.size()) {
            ssize_t n = ::write(fd, out.view().data() + at, out.size() - at);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            ok = n > 0;
            at += n > 0 ? static_cast<std::size_t>(n) : 0;
        }
        ok = ok && (done || out.size() > 0); // a fill that adds nothing would loop
    }
    ctx_->process = before;
    const int err = errno;
    if (::close(fd) != 0 && ok) {
        ok = false;
    }
    if (!ok || ::rename(tmp_, path_) != 0) {
        ++failures_;
        last_errno_ = ok ? errno : err;
        ::unlink(tmp_);
        return false;
    }
    ++writes_;
    return true;
}

} // namespace custos::control
