#include "ports/upward.hpp"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace custos::ports {

namespace {

constexpr nanos retry_first = std::chrono::milliseconds(100);
constexpr nanos retry_max = std::chrono::seconds(5);
// Below this a keepalive would only spin the reactor (and the reactor's
// tick, 1 ms by default, is its resolution anyway).
constexpr nanos interval_min = std::chrono::milliseconds(1);

// "30 s", "400 ms", "1500 us": the largest unit that keeps it whole.
int format_duration(char* buf, std::size_t len, nanos d) noexcept {
    const long long ns = d.count();
    if (ns % 1'000'000'000 == 0) {
        return std::snprintf(buf, len, "%lld s", ns / 1'000'000'000);
    }
    if (ns % 1'000'000 == 0) {
        return std::snprintf(buf, len, "%lld ms", ns / 1'000'000);
    }
    return std::snprintf(buf, len, "%lld us", ns / 1000);
}

// Appends like snprintf at `at` of a line whose full length is tracked in
// `need` (so truncation is detected as snprintf does).
struct line_writer {
    char* buf;
    std::size_t len;
    std::size_t need = 0;

    char* at() const noexcept { return need < len ? buf + need : nullptr; }
    std::size_t room() const noexcept { return need < len ? len - need : 0; }
    void add(int n) noexcept {
        if (n > 0) {
            need += static_cast<std::size_t>(n);
        }
    }
    [[gnu::format(printf, 2, 3)]] void put(const char* fmt, ...) noexcept;
    void duration(nanos d) noexcept { add(format_duration(at(), room(), d)); }
};

void line_writer::put(const char* fmt, ...) noexcept {
    va_list ap;
    va_start(ap, fmt);
    add(std::vsnprintf(at(), room(), fmt, ap));
    va_end(ap);
}

} // namespace

upward_env upward_env::from_process() noexcept {
    upward_env e;
    e.notify_socket = std::getenv("NOTIFY_SOCKET");
    e.watchdog_usec = std::getenv("WATCHDOG_USEC");
    e.watchdog_pid = std::getenv("WATCHDOG_PID");
    e.self = ::getpid();
    return e;
}

upward_notifier::upward_notifier() noexcept
    : keepalive_(on_keepalive, this), retry_(on_retry, this) {
    paths_[0] = &systemd_;
    paths_[1] = &s6_;
}

upward_notifier::~upward_notifier() {
    close();
}

Result<void> upward_notifier::init(io::reactor& r, const RuntimeConfig& cfg) noexcept {
    return init(r, cfg, upward_env::from_process());
}

Result<void> upward_notifier::init(io::reactor& r, const RuntimeConfig& cfg,
                                   const upward_env& env) noexcept {
    close();
    reactor_ = &r;
    gate_ = cfg.keepalive_gate;
    failed_ = false;
    ready_done_ = false;
    stopping_done_ = false;
    summary_ = {};
    pending_[0] = pending_[1] = 0;
    retries_ = 0;
    pings_ = withheld_ = abandoned_ = 0;
    notice_count_ = 0;
    watchdog_ = {};
    interval_ = nanos(0);

    if (cfg.notify_fd >= 0) {
        if (auto ok = s6_.open(cfg.notify_fd); !ok) {
            return fail(ok.error());
        }
    }
    if (env.notify_socket != nullptr && *env.notify_socket != '\0') {
        auto to = parse_notify_socket(env.notify_socket);
        if (!to) {
            note(to.error());
        } else if (auto ok = systemd_.open(*to); !ok) {
            s6_.disown(); // a failed init leaves the caller's fd open
            return fail(ok.error());
        }
    }
    auto wd = parse_watchdog(env.watchdog_usec, env.watchdog_pid, env.self);
    if (!wd) {
        note(wd.error());
    } else {
        watchdog_ = *wd;
    }
    if (systemd_.active() && watchdog_.usec > 0) {
        // Half the timeout, as sd_watchdog_enabled(3) recommends: a late
        // wake-up (slack, a loaded machine) still lands well inside it.
        interval_ = nanos(static_cast<std::int64_t>(watchdog_.usec) * 500);
        if (interval_ < interval_min) {
            interval_ = interval_min;
        }
        arm_keepalive(r.now());
    }
    return {};
}

void upward_notifier::note(const Error& e) noexcept {
    if (notice_count_ < upward_notice_capacity) {
        notices_[notice_count_++] = e;
    }
}

void upward_notifier::close() noexcept {
    if (reactor_ != nullptr) {
        reactor_->cancel(keepalive_);
        reactor_->cancel(retry_);
    }
    retry_armed_ = false;
    systemd_.close();
    s6_.close();
}

void upward_notifier::disown_notify_fd() noexcept {
    s6_.disown();
}

void upward_notifier::send(std::size_t path, std::uint8_t msg) noexcept {
    notify_path& p = *paths_[path];
    notify_outcome out = notify_outcome::unsupported;
    switch (msg) {
    case msg_ready:
        out = p.ready();
        break;
    case msg_stopping:
        out = p.stopping();
        break;
    case msg_status:
        out = p.status(summary_.view());
        break;
    default:
        break;
    }
    switch (out) {
    case notify_outcome::sent:
    case notify_outcome::unsupported:
        pending_[path] = static_cast<std::uint8_t>(pending_[path] & ~msg);
        break;
    case notify_outcome::dropped:
        pending_[path] = static_cast<std::uint8_t>(pending_[path] | msg);
        if (!retry_armed_ && reactor_ != nullptr) {
            retries_ = 0;
            retry_armed_ = true;
            reactor_->arm_after(retry_, retry_first);
        }
        break;
    }
}

void upward_notifier::deliver(std::uint8_t msg) noexcept {
    for (std::size_t i = 0; i < path_count; ++i) {
        if (paths_[i]->active()) {
            send(i, msg);
        }
    }
}

void upward_notifier::on_health(const HealthStatus& h) noexcept {
    // STATUS= first, so that systemctl status shows the summary that came
    // with readiness.
    if (h.summary.view() != summary_.view()) {
        summary_ = h.summary;
        deliver(msg_status);
    }
    if (!ready_done_ && h.settled && h.critical_ready) {
        ready_done_ = true;
        deliver(msg_ready);
    }
    const bool failed = h.health == Health::failed;
    const bool was_withheld = failed_ && gate_ == KeepaliveGate::health;
    failed_ = failed;
    if (was_withheld && !failed && interval_.count() > 0 && reactor_ != nullptr) {
        // The gate opens: tell systemd at once rather than at the next tick,
        // which may be later than the timeout allows after a withheld spell.
        ping();
        arm_keepalive(reactor_->now());
    }
}

void upward_notifier::on_stopping() noexcept {
    if (stopping_done_) {
        return;
    }
    stopping_done_ = true;
    // A READY=1 still waiting for a retry is moot now.
    for (auto& bits : pending_) {
        bits = static_cast<std::uint8_t>(bits & ~msg_ready);
    }
    deliver(msg_stopping);
}

void upward_notifier::ping() noexcept {
    if (systemd_.watchdog() == notify_outcome::sent) {
        ++pings_;
    }
}

void upward_notifier::arm_keepalive(mono_time from) noexcept {
    // Slack lets the ping share a wake-up with other timers; an eighth of
    // half the timeout keeps it well before three quarters of it.
    reactor_->arm(keepalive_, from + interval_, interval_ / 8);
}

void upward_notifier::on_keepalive(io::timer& t) noexcept {
    auto& self = *static_cast<upward_notifier*>(t.user);
    if (self.gate_ == KeepaliveGate::health && self.failed_) {
        ++self.withheld_;
    } else {
        self.ping();
    }
    self.arm_keepalive(self.reactor_->now());
}

void upward_notifier::on_retry(io::timer& t) noexcept {
    auto& self = *static_cast<upward_notifier*>(t.user);
    self.retry_armed_ = false;
    const unsigned attempt = ++self.retries_;
    const bool last = attempt >= upward_max_retries;
    for (std::size_t i = 0; i < path_count; ++i) {
        for (std::uint8_t msg : {msg_status, msg_ready, msg_stopping}) {
            if ((self.pending_[i] & msg) == 0) {
                continue;
            }
            if (!self.paths_[i]->active()) {
                self.pending_[i] = static_cast<std::uint8_t>(self.pending_[i] & ~msg);
                continue;
            }
            // send() would arm the retry timer again at its first delay.
            self.retry_armed_ = true;
            self.send(i, msg);
            self.retry_armed_ = false;
            if (last && (self.pending_[i] & msg) != 0) {
                self.pending_[i] = static_cast<std::uint8_t>(self.pending_[i] & ~msg);
                ++self.abandoned_;
            }
        }
    }
    if ((self.pending_[0] | self.pending_[1]) != 0) {
        nanos delay = retry_first;
        for (unsigned k = 0; k < attempt && delay < retry_max; ++k) {
            delay *= 2;
        }
        self.retry_armed_ = true;
        self.reactor_->arm_after(self.retry_, delay < retry_max ? delay : retry_max);
    } else {
        self.retries_ = 0;
    }
}

upward_stats upward_notifier::stats() const noexcept {
    upward_stats s;
    for (const notify_path* p : paths_) {
        s.sent += p->counters().sent;
        s.dropped += p->counters().dropped;
    }
    s.withheld = withheld_;
    s.pings = pings_;
    s.abandoned = abandoned_;
    // The later of the two paths' drops is not known; systemd's is the one
    // that recurs (s6 drops at most once).
    s.last_errno = systemd_.counters().last_errno != 0 ? systemd_.counters().last_errno
                                                       : s6_.counters().last_errno;
    return s;
}

std::size_t upward_notifier::describe(char* buf, std::size_t len) const noexcept {
    line_writer w{buf, len};
    if (len > 0) {
        buf[0] = '\0';
    }
    bool any = false;
    if (systemd_.active()) {
        w.add(static_cast<int>(systemd_.describe(w.at(), w.room())));
        if (interval_.count() > 0) {
            w.put(", watchdog ");
            w.duration(nanos(static_cast<std::int64_t>(watchdog_.usec) * 1000));
            w.put(" every ");
            w.duration(interval_);
            w.put(", gate %s", gate_ == KeepaliveGate::health ? "health" : "none");
        } else if (watchdog_.not_ours) {
            w.put(", watchdog not ours (WATCHDOG_PID=%lld)", static_cast<long long>(watchdog_.pid));
        } else {
            w.put(", no watchdog");
        }
        any = true;
    }
    if (s6_.configured_fd() >= 0) {
        if (any) {
            w.put("; ");
        }
        w.add(static_cast<int>(s6_.describe(w.at(), w.room())));
        any = true;
    }
    if (!any) {
        w.put("none");
    }
    return w.need;
}

} // namespace custos::ports
