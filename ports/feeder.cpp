// The feeder (feeder.hpp): the feed gate over a watchdog port.
//
// States (WatchdogState) and what moves them:
//   off      -> booting   start(), once the port is open (WatchdogOpened)
//   booting  -> feeding   the boot grace ends, health not failed
//   booting  -> starving  the boot grace ends, health failed
//   feeding  -> starving  health failed (the record first, then no feed)
//   starving -> feeding   health recovered (a feed at once, then the record)
//   any fed  -> held      hold() (from starving: a feed at once, the record)
//   held     -> *         the hold ends (expired, or release())
//   any      -> lost      a keepalive fails with ENODEV
//   any      -> closed    stop()
// Invariants: the feed timer is armed exactly while the state is booting,
// feeding or held; the state file is written only on a change of state;
// every event goes through report(), after start() (init() keeps them).
#include "ports/feeder.hpp"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace custos::ports {

namespace {

// A line of text for an event, built with printf formats (vsnprintf: the
// text is cut at the buffer, never overrun).
template <std::size_t N>
struct line {
    char buf[N] = {};
    std::size_t len = 0;

    __attribute__((format(printf, 2, 3))) void add(const char* fmt, ...) noexcept {
        if (len + 1 >= N) {
            return;
        }
        va_list ap;
        va_start(ap, fmt);
        const int n = std::vsnprintf(buf + len, N - len, fmt, ap);
        va_end(ap);
        if (n > 0) {
            len += static_cast<std::size_t>(n);
            if (len >= N) {
                len = N - 1;
            }
        }
    }
    void add(std::string_view s) noexcept { add("%.*s", static_cast<int>(s.size()), s.data()); }
    std::string_view view() const noexcept { return {buf, len}; }
};

std::uint32_t seconds_up(Duration d) noexcept {
    const auto ms = d.count();
    if (ms <= 0) {
        return 0;
    }
    const auto s = (ms + 999) / 1000;
    return s > 0xffffffffLL ? 0xffffffffu : static_cast<std::uint32_t>(s);
}

// "15 s", "2.5 s", "10 min".
template <std::size_t N>
void add_duration(line<N>& l, nanos d) noexcept {
    const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms >= 120'000 && ms % 60'000 == 0) {
        l.add("%lld min", ms / 60'000);
    } else if (ms % 1000 == 0) {
        l.add("%lld s", ms / 1000);
    } else if (ms % 100 == 0) {
        l.add("%lld.%lld s", ms / 1000, ms % 1000 / 100);
    } else {
        l.add("%lld.%03lld s", ms / 1000, ms % 1000);
    }
}

} // namespace

feeder::feeder() noexcept {
    feed_timer_.fire = on_feed;
    feed_timer_.user = this;
    hold_timer_.fire = on_hold_end;
    hold_timer_.user = this;
    grace_timer_.fire = on_grace_end;
    grace_timer_.user = this;
}

void feeder::keep(WatchdogState state, Reason why, int err, std::string_view message,
                  std::string_view resolution) noexcept {
    // Bounded by construction (at most five reports at init); a sixth
    // would replace the last rather than be lost silently.
    std::uint32_t i = pending_count_ < feeder_pending_capacity
                          ? pending_count_++
                          : std::uint32_t(feeder_pending_capacity - 1);
    pending_[i].state = state;
    pending_[i].reason = why;
    pending_[i].sys_errno = err;
    pending_[i].message = message;
    pending_[i].resolution = resolution;
}

Result<void> feeder::init(feeder_host& host, watchdog_port& port, led_port* led,
                          const WatchdogConfig& cfg, const board_profile& board,
                          std::string_view boot_id) noexcept {
    host_ = &host;
    port_ = &port;
    led_ = led;
    cfg_ = &cfg;
    board_ = &board;
    status_ = WatchdogStatus{};
    pending_count_ = 0;
    have_record_ = false;
    opened_ = false;
    started_ = false;
    status_.device = cfg.device;
    status_.board = board.name;
    if (cfg.device == WatchdogDevice::none) {
        return {};
    }
    status_.path = port.path();
    const std::string_view path = port.path();

    std::uint32_t boot_status = 0;
    if (auto o = port.open(); !o) {
        const Error& e = o.error();
        if (cfg.required) {
            return fail(e);
        }
        line<256> m;
        m.add("the watchdog at ");
        m.add(path);
        m.add(" could not be opened (%.*s, errno %d): custos runs on, but the board is not "
              "watched",
              static_cast<int>(e.id().size()), e.id().data(), e.sys_errno());
        status_.notice = m.view();
        keep(WatchdogState::off, e.reason(), e.sys_errno(), m.view(), e.resolution());
    } else {
        opened_ = true;
        if (auto i = port.info(); i) {
            status_.options = i->options;
            status_.identity = std::string_view(i->identity, strnlen(i->identity, 32));
        }
        if (auto b = port.boot_status(); b) {
            boot_status = *b;
        }
        const std::string_view name = !status_.identity.empty() ? std::string_view(status_.identity)
                                      : !board.driver.empty()   ? board.driver
                                                                : std::string_view("watchdog");

        // The timeout: asked, clamped by the profile, then what the driver
        // accepts and reads back.
        const std::uint32_t requested = cfg.timeout.count() > 0       ? seconds_up(cfg.timeout)
                                        : board.default_timeout_s > 0 ? board.default_timeout_s
                                                                      : 30;
        status_.requested_s = requested;
        std::uint32_t ask = requested;
        line<256> notice;
        notice.add(name);
        notice.add(" at ");
        notice.add(path);
        if (board.max_timeout_s > 0 && ask > board.max_timeout_s) {
            ask = board.max_timeout_s;
            notice.add(": asked %u s, beyond the board's %u s", requested, ask);
        }
        std::uint32_t effective = 0;
        bool unknown = false;      // the driver's timeout is not known
        bool keeps_own = false;    // the driver cannot set it
        std::uint32_t refused = 0; // the first value the driver refused
        Result<std::uint32_t> r = port.set_timeout(ask);
        auto is_einval = [](const Result<std::uint32_t>& x) {
            return !x && (x.error().sys_errno() == EINVAL ||
                          x.error().reason() == Reason::invalid_argument);
        };
        if (is_einval(r)) {
            // Refused: the driver's own maximum when it tells, else halve
            // until it accepts (a bounded ladder: at most 32 steps).
            refused = ask;
            std::uint32_t next = ask / 2;
            if (auto m = port.max_timeout(); m && *m > 0 && *m < ask) {
                next = *m;
            }
            for (int step = 0; step < 32 && next >= 1; ++step) {
                r = port.set_timeout(next);
                if (!is_einval(r)) {
                    break;
                }
                next /= 2;
            }
        }
        if (r) {
            effective = *r;
        } else if (r.error().reason() == Reason::watchdog_unsupported || is_einval(r)) {
            keeps_own = true;
        } else {
            const Error e = r.error();
            if (cfg.required) {
                (void)port.close(false);
                opened_ = false;
                return fail(e);
            }
            keeps_own = true;
        }
        if (keeps_own || effective == 0) {
            if (auto t = port.timeout(); t && *t > 0) {
                effective = *t;
            } else {
                effective = board.default_timeout_s > 0 ? board.default_timeout_s : 30;
                unknown = true;
            }
        }
        status_.timeout_s = effective;
        if (unknown) {
            notice.add(": the driver can neither set nor tell its timeout: assumed %u s (the "
                       "profile's), fed every second",
                       effective);
        } else if (keeps_own) {
            notice.add(": the driver cannot set its timeout: it keeps its own %u s (asked %u s)",
                       effective, requested);
        } else if (refused != 0) {
            notice.add(": the driver refused %u s: clamped to %u s", refused, effective);
        } else if (effective != ask) {
            notice.add(": asked %u s, the driver set %u s", ask, effective);
        } else if (effective != requested) {
            notice.add(": clamped to %u s", effective);
        }
        status_.clamped = unknown || effective != requested;

        // Feed interval: min(effective / 2, interval), at least 100 ms; a
        // timeout that is only assumed is fed every second.
        nanos iv =
            unknown ? nanos(std::chrono::seconds(1)) : nanos(std::chrono::seconds(effective)) / 2;
        if (cfg.interval.count() > 0 && nanos(cfg.interval) < iv) {
            iv = cfg.interval;
        }
        if (iv < feeder_min_interval) {
            iv = feeder_min_interval;
        }
        interval_ = iv;
        status_.interval_ns = iv.count();

        // Pretimeout: reported, never failed.
        line<64> pre;
        const std::uint32_t pt =
            cfg.pretimeout.count() > 0 ? seconds_up(cfg.pretimeout) : board.pretimeout_s;
        if (pt > 0) {
            if (pt >= effective) {
                pre.add(", no pretimeout (%u s is not below the timeout)", pt);
            } else if (auto p = port.set_pretimeout(pt); p) {
                status_.pretimeout_s = *p;
                pre.add(", pretimeout %u s", *p);
            } else if (p.error().reason() == Reason::watchdog_unsupported) {
                pre.add(", no pretimeout (the driver has none)");
            } else {
                pre.add(", no pretimeout (refused, errno %d)", p.error().sys_errno());
            }
        }

        if (auto n = port.nowayout(); n && *n) {
            status_.nowayout = true;
        }
        const bool policy = cfg.magic_close == MagicClose::yes ||
                            (cfg.magic_close == MagicClose::profile && board.magic_close);
        magic_ok_ = policy && !status_.nowayout;
        // A driver without WDIOF_MAGICCLOSE stops at any close ('V' or
        // not): then an orderly stop disarms it whatever the policy.
        const bool stops_at_close =
            status_.options != 0 && (status_.options & wdiof_magicclose) == 0;
        status_.magic_close = !status_.nowayout && (policy || stops_at_close);

        line<256> m;
        m.add(name);
        m.add(" at ");
        m.add(path);
        if (unknown) {
            m.add(": timeout unknown (assumed %u s, asked %u s), fed every ", effective, requested);
        } else {
            m.add(": timeout %u s (asked %u s), fed every ", effective, requested);
        }
        add_duration(m, iv);
        m.add(pre.view());
        if (status_.nowayout) {
            m.add(", nowayout: it stays armed after custos stops");
        } else if (magic_ok_) {
            m.add(", magic close at an orderly stop");
        } else if (stops_at_close) {
            m.add(", no magic close: the driver stops at any close");
        } else {
            m.add(", magic close off: it stays armed after custos stops");
        }
        keep(WatchdogState::booting, Reason::watchdog_opened, 0, m.view());
        if (status_.clamped) {
            status_.notice = notice.view();
            keep(WatchdogState::booting, Reason::watchdog_timeout_clamped, 0, notice.view());
        }
    }
    status_.previous.boot_status = boot_status;

    // The reset record: classify the previous boot, write `running`.
    const WatchdogState at_start = opened_ ? WatchdogState::booting : WatchdogState::off;
    if (!cfg.state_file.empty()) {
        if (cfg.state_file.size() + 5 >= sizeof state_path_) {
            line<160> m;
            m.add("the watchdog state file path is too long (%zu bytes): no record is kept",
                  cfg.state_file.size());
            keep(at_start, Reason::reset_record_unwritable, ENAMETOOLONG, m.view());
        } else {
            std::memcpy(state_path_, cfg.state_file.data(), cfg.state_file.size());
            state_path_[cfg.state_file.size()] = '\0';
            have_record_ = true;
            const Result<reset_record> prev = read_record(state_path_);
            const std::int64_t window_ns = nanos(cfg.safe_mode_window).count();
            const boot_verdict v = classify_boot(prev, boot_id, boot_status, host.wall_ns(),
                                                 cfg.safe_mode_boots, window_ns);
            status_.previous = v.previous;
            status_.counters = v.next.counters;
            status_.safe_mode = v.safe_mode;
            record_ = v.next;
            const WatchdogCounters& c = v.next.counters;
            line<256> m;
            Reason why = Reason::unknown;
            switch (v.previous.cls) {
            case ResetClass::unknown:
                break;
            case ResetClass::orderly:
                why = Reason::previous_boot_orderly;
                m.add("previous boot: custos stopped in order");
                break;
            case ResetClass::starved:
                why = Reason::previous_boot_starved;
                m.add("previous boot: custos starved the watchdog");
                if (!v.previous.subject.empty()) {
                    m.add(": ");
                    m.add(v.previous.subject);
                }
                m.add(" (");
                m.add(reason_id(v.previous.reason));
                m.add(")");
                if (!v.previous.message.empty()) {
                    m.add(": ");
                    m.add(v.previous.message);
                }
                break;
            case ResetClass::watchdog:
                why = Reason::previous_boot_watchdog;
                m.add("previous boot: reset by the watchdog, cause unknown (the driver reports "
                      "CARDRESET and custos recorded no starving)");
                break;
            case ResetClass::unreported:
                why = Reason::previous_boot_unreported;
                m.add("previous boot: no orderly stop and no watchdog reset reported (power loss, "
                      "a hard reset, or a driver that never reports one)");
                break;
            case ResetClass::restarted:
                why = Reason::previous_boot_restarted;
                m.add("custos restarted in this same boot without an orderly stop (killed or "
                      "crashed)");
                break;
            }
            if (v.corrupt) {
                line<256> cm;
                cm.add("the watchdog state file %s was damaged or unreadable (", state_path_);
                cm.add(prev.error().subject());
                if (prev.error().sys_errno() != 0) {
                    cm.add(", errno %d", prev.error().sys_errno());
                }
                cm.add("): the previous boot is unknown and the counters start anew");
                keep(at_start, Reason::reset_record_corrupt, prev.error().sys_errno(), cm.view());
            } else if (why != Reason::unknown) {
                m.add(" (boots recorded: %llu; orderly %llu, starved %llu, watchdog %llu, "
                      "unreported %llu)",
                      static_cast<unsigned long long>(c.boots),
                      static_cast<unsigned long long>(c.orderly),
                      static_cast<unsigned long long>(c.starved),
                      static_cast<unsigned long long>(c.watchdog),
                      static_cast<unsigned long long>(c.unreported));
                keep(at_start, why, 0, m.view());
            }
            if (v.safe_mode) {
                line<256> sm;
                sm.add("safe mode: %u watchdog-caused boots within ", v.streak);
                add_duration(sm, nanos(cfg.safe_mode_window));
                sm.add(": only the critical set starts");
                keep(at_start, Reason::safe_mode, 0, sm.view());
            }
            write(record_state::running, Reason::runtime_start, {}, {});
        }
    }
    return {};
}

void feeder::start(mono_time boot_grace_end) noexcept {
    if (host_ == nullptr) {
        return;
    }
    started_ = true;
    grace_end_ = boot_grace_end;
    for (std::uint32_t i = 0; i < pending_count_; ++i) {
        const pending& p = pending_[i];
        const WatchdogState from = status_.state;
        status_.state = p.state;
        report(from, p.state, p.reason, p.sys_errno, p.message, p.resolution);
    }
    pending_count_ = 0;
    if (!opened_) {
        update_led();
        return;
    }
    if (status_.state == WatchdogState::off) {
        status_.state = WatchdogState::booting;
    }
    status_.gate_open = true;
    feed();
    if (active()) {
        host_->arm(feed_timer_, host_->now() + interval_);
        if (host_->now() < grace_end_) {
            host_->arm(grace_timer_, grace_end_);
        } else {
            settle(Reason::boot_grace_expired,
                   "boot grace over: the watchdog is fed while health is not failed");
        }
    }
    maybe_boot_good();
    update_led();
}

bool feeder::active() const noexcept {
    return opened_ && status_.state != WatchdogState::closed &&
           status_.state != WatchdogState::lost;
}

bool feeder::gate() const noexcept {
    if (!active()) {
        return false;
    }
    switch (status_.state) {
    case WatchdogState::booting:
    case WatchdogState::feeding:
    case WatchdogState::held:
        return true;
    case WatchdogState::off:
    case WatchdogState::starving:
    case WatchdogState::closed:
    case WatchdogState::lost:
        return false;
    }
    return false;
}

WatchdogState feeder::desired() const noexcept {
    if (status_.hold_until_ns != 0) {
        return WatchdogState::held;
    }
    if (host_->now() < grace_end_) {
        return WatchdogState::booting;
    }
    return failed_ ? WatchdogState::starving : WatchdogState::feeding;
}

std::int64_t feeder::reset_in_s() const noexcept {
    const std::int64_t since = to_ns(host_->now()) - status_.last_feed_ns;
    const std::int64_t left = static_cast<std::int64_t>(status_.timeout_s) * 1'000'000'000 - since;
    return left > 0 ? (left + 500'000'000) / 1'000'000'000 : 0;
}

void feeder::settle(Reason why, std::string_view message) noexcept {
    if (!started_ || !active()) {
        return;
    }
    const WatchdogState from = status_.state;
    const WatchdogState to = desired();
    if (from == to) {
        update_led();
        return;
    }
    if (to == WatchdogState::starving) {
        // The record first: once the feeding stops, the board may reset
        // at any moment (it is already one timeout from the last feed).
        write(record_state::starving, fail_reason_, fail_subject_, fail_message_);
        host_->cancel(feed_timer_);
        status_.starving_since_ns = to_ns(host_->now());
        line<256> m;
        m.add("health failed: ");
        m.add(fail_what_);
        m.add("; the board resets in about %lld s unless it recovers",
              static_cast<long long>(reset_in_s()));
        set_state(WatchdogState::starving, Reason::watchdog_starving, 0, m.view());
        return;
    }
    line<256> m;
    if (from == WatchdogState::starving) {
        const std::int64_t starved_ns = to_ns(host_->now()) - status_.starving_since_ns;
        status_.starving_since_ns = 0;
        status_.state = to; // fed states from here on: feed() checks it
        feed();
        if (!active()) {
            return; // the feed found the device gone
        }
        host_->arm(feed_timer_, host_->now() + interval_);
        write(record_state::running, Reason::watchdog_fed_again, {}, {});
        if (to != WatchdogState::held) {
            why = Reason::watchdog_fed_again;
            m.add("health recovered after ");
            add_duration(m,
                         std::chrono::duration_cast<std::chrono::milliseconds>(nanos(starved_ns)));
            m.add(" of starving: the watchdog is fed again");
            message = m.view();
        }
        status_.state = from; // set_state reports from -> to
    }
    set_state(to, why, 0, message);
}

void feeder::on_health(const HealthStatus& h) noexcept {
    health_ = h.health;
    settled_ = h.settled;
    failed_ = h.health == Health::failed;
    if (failed_) {
        const HealthReason* first = nullptr;
        for (std::uint32_t i = 0; i < h.reason_count && i < health_reason_capacity; ++i) {
            if (h.reasons[i].fails) {
                first = &h.reasons[i];
                break;
            }
        }
        if (first != nullptr) {
            const std::string_view kind = subject_kind_name(first->kind);
            line<watchdog_text_capacity + 1> s;
            s.add(kind);
            s.add(" ");
            s.add(first->name);
            fail_subject_ = s.view();
            fail_reason_ = first->reason;
            line<watchdog_text_capacity + 1> w;
            w.add(s.view());
            w.add(" ");
            w.add(first->state);
            w.add(" (");
            w.add(reason_id(first->reason));
            w.add(")");
            fail_what_ = w.view();
        } else {
            fail_subject_ = std::string_view("health");
            fail_reason_ = Reason::unknown;
            fail_what_ = h.summary.view();
        }
        fail_message_ = h.summary.view();
    }
    maybe_boot_good();
    settle(Reason::unknown, {});
    update_led();
}

void feeder::maybe_boot_good() noexcept {
    if (!boot_good_ && started_ && active() && settled_ && health_ != Health::failed) {
        boot_good_ = true;
        port_->boot_good();
    }
}

Result<void> feeder::hold(nanos for_, std::string_view by) noexcept {
    if (!started_ || !active()) {
        return fail(Reason::watchdog_unavailable, 0, "no watchdog is open to hold");
    }
    if (for_.count() <= 0 || for_ > nanos(cfg_->max_hold)) {
        line<96> s;
        s.add("hold of ");
        add_duration(s, std::chrono::duration_cast<std::chrono::milliseconds>(for_));
        s.add(": not in (0, ");
        add_duration(s, nanos(cfg_->max_hold));
        s.add("]");
        return fail(Reason::invalid_argument, 0, s.view());
    }
    const bool was_held = status_.hold_until_ns != 0;
    const mono_time until = host_->now() + for_;
    status_.hold_until_ns = to_ns(until);
    status_.hold_by = by;
    host_->arm(hold_timer_, until);
    line<256> m;
    m.add("maintenance hold by ");
    m.add(by.empty() ? std::string_view("an operator") : by);
    m.add(" for ");
    add_duration(m, std::chrono::duration_cast<std::chrono::milliseconds>(for_));
    m.add(": the watchdog is fed whatever the health until it ends");
    if (was_held) {
        report(WatchdogState::held, WatchdogState::held, Reason::watchdog_hold_started, 0,
               m.view());
    } else {
        settle(Reason::watchdog_hold_started, m.view());
    }
    return {};
}

Result<void> feeder::release(std::string_view by) noexcept {
    if (status_.hold_until_ns == 0) {
        return fail(Reason::invalid_argument, 0, "no maintenance hold runs");
    }
    line<96> how;
    how.add("released by ");
    how.add(by.empty() ? std::string_view("an operator") : by);
    end_hold(how.view());
    return {};
}

void feeder::end_hold(std::string_view how) noexcept {
    host_->cancel(hold_timer_);
    line<256> m;
    m.add("maintenance hold by ");
    m.add(status_.hold_by.empty() ? std::string_view("an operator")
                                  : std::string_view(status_.hold_by));
    m.add(" ended (");
    m.add(how);
    m.add("): the gate follows health again");
    status_.hold_until_ns = 0;
    status_.hold_by = std::string_view();
    if (!started_ || !active() || status_.state != WatchdogState::held) {
        report(status_.state, status_.state, Reason::watchdog_hold_ended, 0, m.view());
        return;
    }
    if (desired() == WatchdogState::starving) {
        // Two events: the hold's end, then the gate shutting (with its record).
        report(WatchdogState::held, WatchdogState::held, Reason::watchdog_hold_ended, 0, m.view());
    }
    settle(Reason::watchdog_hold_ended, m.view());
}

void feeder::on_feed(io::timer& t) noexcept {
    auto* self = static_cast<feeder*>(t.user);
    self->feed();
    if (self->gate()) {
        self->host_->arm(self->feed_timer_, self->host_->now() + self->interval_);
    }
}

void feeder::on_hold_end(io::timer& t) noexcept {
    static_cast<feeder*>(t.user)->end_hold("expired");
}

void feeder::on_grace_end(io::timer& t) noexcept {
    static_cast<feeder*>(t.user)->settle(
        Reason::boot_grace_expired,
        "boot grace over: the watchdog is fed while health is not failed");
}

void feeder::feed() noexcept {
    if (!gate()) {
        return;
    }
    auto r = port_->keepalive();
    const std::int64_t now = to_ns(host_->now());
    if (r) {
        ++status_.feeds;
        status_.last_feed_ns = now;
        if (status_.first_feed_ns == 0) {
            status_.first_feed_ns = now;
        }
        feed_failing_ = false;
        return;
    }
    const Error& e = r.error();
    if (e.reason() == Reason::watchdog_lost || e.sys_errno() == ENODEV) {
        host_->cancel(feed_timer_);
        host_->cancel(grace_timer_);
        line<256> m;
        m.add("the watchdog at ");
        m.add(status_.path);
        m.add(" went away (ENODEV): the board is no longer watched");
        set_state(WatchdogState::lost, Reason::watchdog_lost, e.sys_errno(), m.view());
        return;
    }
    ++status_.feed_errors;
    if (!feed_failing_) {
        feed_failing_ = true;
        line<256> m;
        m.add("a keepalive of the watchdog at ");
        m.add(status_.path);
        m.add(" failed (errno %d): custos keeps feeding every ", e.sys_errno());
        add_duration(m, interval_);
        m.add("; the board resets in about %lld s unless one succeeds",
              static_cast<long long>(reset_in_s()));
        report(status_.state, status_.state, Reason::watchdog_feed_failed, e.sys_errno(), m.view());
    }
}

void feeder::stop(bool orderly) noexcept {
    if (host_ == nullptr || status_.state == WatchdogState::closed) {
        return;
    }
    close();
    if (orderly) {
        write(record_state::orderly, Reason::runtime_stop, {}, "orderly stop");
    }
    if (!opened_) {
        return;
    }
    if (status_.state == WatchdogState::lost) {
        (void)port_->close(false);
        return;
    }
    const bool magic = orderly && magic_ok_;
    const close_outcome out = port_->close(magic);
    status_.hold_until_ns = 0;
    line<256> m;
    m.add("the watchdog at ");
    m.add(status_.path);
    if (out == close_outcome::disarmed) {
        if (magic) {
            m.add(" is disarmed: closed with the magic 'V' at an orderly stop");
        } else {
            m.add(" stopped at the close: its driver stops at any close (no magic close)");
        }
        set_state(WatchdogState::closed, Reason::watchdog_disarmed, 0, m.view());
        return;
    }
    const char* why = !orderly           ? "not an orderly stop"
                      : status_.nowayout ? "nowayout: the driver cannot be stopped"
                      : !magic_ok_       ? "magic close is off"
                                         : "the driver did not stop";
    m.add(" stays armed after custos closed it (%s): the board resets in about %lld s unless "
          "something reopens it",
          why, static_cast<long long>(reset_in_s()));
    set_state(WatchdogState::closed, Reason::watchdog_left_armed, 0, m.view());
}

void feeder::close() noexcept {
    if (host_ == nullptr) {
        return;
    }
    host_->cancel(feed_timer_);
    host_->cancel(hold_timer_);
    host_->cancel(grace_timer_);
}

void feeder::set_state(WatchdogState to, Reason why, int err, std::string_view message) noexcept {
    const WatchdogState from = status_.state;
    status_.state = to;
    status_.gate_open = gate();
    report(from, to, why, err, message);
    update_led();
}

void feeder::report(WatchdogState from, WatchdogState to, Reason why, int err,
                    std::string_view message, std::string_view resolution) noexcept {
    WatchdogTransition t;
    t.from = from;
    t.to = to;
    t.reason = why;
    t.sys_errno = err;
    t.message = message;
    t.resolution = !resolution.empty() ? resolution : Error(why, err).resolution();
    t.mono_ns = to_ns(host_->now());
    host_->report(t);
}

void feeder::write(record_state s, Reason why, std::string_view subject,
                   std::string_view message) noexcept {
    if (!have_record_) {
        return;
    }
    record_.state = s;
    record_.wall_ns = host_->wall_ns();
    record_.reason = why;
    record_.subject = subject;
    record_.message = message;
    auto r = write_record(state_path_, record_);
    if (r) {
        ++status_.record_writes;
        return;
    }
    ++status_.record_failures;
    line<256> m;
    m.add("the watchdog state file %s could not be written (errno %d): the next boot will not "
          "know how this one ended",
          state_path_, r.error().sys_errno());
    if (started_) {
        report(status_.state, status_.state, Reason::reset_record_unwritable, r.error().sys_errno(),
               m.view());
    } else {
        keep(opened_ ? WatchdogState::booting : WatchdogState::off, Reason::reset_record_unwritable,
             r.error().sys_errno(), m.view());
    }
}

void feeder::update_led() noexcept {
    if (led_ == nullptr) {
        return;
    }
    led_state want = led_state::dark;
    switch (status_.state) {
    case WatchdogState::off:
    case WatchdogState::starving:
    case WatchdogState::closed:
    case WatchdogState::lost:
        want = led_state::dark;
        break;
    case WatchdogState::booting:
    case WatchdogState::held:
        want = led_state::blinking;
        break;
    case WatchdogState::feeding:
        want = health_ == Health::ok ? led_state::lit : led_state::blinking;
        break;
    }
    if (led_set_ && want == led_last_) {
        return;
    }
    led_set_ = true;
    led_last_ = want;
    led_->set(want);
}

} // namespace custos::ports
