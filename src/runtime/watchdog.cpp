// What connects the hardware watchdog's feeder (ports/feeder.hpp) to the
// runtime: the board and the port chosen at init, the feeder's clock and
// events, health into the gate, safe mode's start set, the close at the end.
//
// Order: the watchdog is opened last in init() (opening arms it; nothing
// may fail after that), its events go out at start() before any service
// starts (the previous boot first), it is fed through the whole stop (the
// gate keeps the health the stop began with), and closed when run() ends:
// with the magic 'V' only after an orderly stop.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "runtime/impl.hpp"

namespace custos {

namespace rt_detail {

mono_time watchdog_host::now() noexcept {
    return rt.reactor.now();
}

std::int64_t watchdog_host::wall_ns() noexcept {
    return status::wall_now_ns();
}

void watchdog_host::arm(io::timer& t, mono_time deadline) noexcept {
    rt.reactor.arm(t, deadline);
}

void watchdog_host::cancel(io::timer& t) noexcept {
    rt.reactor.cancel(t);
}

void watchdog_host::report(const WatchdogTransition& t) noexcept {
    rt.listeners.dispatch(status::make_event(t, status::wall_now_ns()));
}

} // namespace rt_detail

namespace {

// Copies `s` into `buf` (NUL-terminated) and returns the copy's view; false
// when it does not fit.
bool keep(std::string_view s, char* buf, std::size_t len, std::string_view& out) noexcept {
    if (s.size() >= len) {
        return false;
    }
    if (!s.empty()) {
        std::memcpy(buf, s.data(), s.size());
    }
    buf[s.size()] = '\0';
    out = std::string_view(buf, s.size());
    return true;
}

void report_problem(TableProblemSink* sink, WatchdogField f, const Error& e) noexcept {
    if (sink == nullptr) {
        return;
    }
    TableProblem p;
    p.kind = TableKind::watchdog;
    p.index = 0;
    p.name = "watchdog";
    p.field = static_cast<std::uint8_t>(f);
    p.error = e;
    sink->report(p);
}

// The field an open or setup failure is about, for custosd's FILE:LINE.
WatchdogField field_of(const Error& e, WatchdogDevice d) noexcept {
    const Reason r = e.reason();
    if (r == Reason::gpio_unavailable) {
        return WatchdogField::gpio_chip;
    }
    if (r == Reason::watchdog_unavailable || r == Reason::watchdog_busy) {
        return d == WatchdogDevice::gpio ? WatchdogField::gpio_chip : WatchdogField::path;
    }
    if (r == Reason::reset_record_unwritable || r == Reason::reset_record_corrupt) {
        return WatchdogField::state_file;
    }
    if (r == Reason::invalid_argument) {
        return WatchdogField::timeout;
    }
    return WatchdogField::device;
}

} // namespace

// In layout(), both passes: safe mode's start set, when safe mode is
// configured (a few bytes; laid out whether or not this boot uses it, since
// that is known only once the watchdog's record has been read, at the end
// of init).
Result<void> Runtime::impl::layout_safe_mode() noexcept {
    if (plan.table().watchdog.safe_mode_boots == 0) {
        return {}; // no safe mode: nothing to lay out or compute
    }
    wd.safe_services = mem.make_array<bool>(rl.slots);
    wd.safe_monitors = mem.make_array<bool>(nmonitors);
    // make_array(0) may give null: only a real shortage is one.
    if ((count != 0 && wd.safe_services == nullptr) ||
        (nmonitors != 0 && wd.safe_monitors == nullptr)) {
        return fail(Reason::out_of_memory, ENOMEM, "safe mode");
    }
    const Table& t = plan.table();
    for (std::uint32_t i = 0; i < count; ++i) {
        wd.safe_services[i] = t.services[i].critical;
    }
    for (std::uint32_t m = 0; m < nmonitors; ++m) {
        wd.safe_monitors[m] = t.monitors[m].critical;
        if (wd.safe_monitors[m]) {
            for (std::uint32_t d : plan.monitors()[m].deps) {
                wd.safe_services[d] = true;
            }
        }
    }
    // What the set depends on, until nothing changes (init only; the table
    // is acyclic, so at most `count` rounds).
    for (bool grew = true; grew;) {
        grew = false;
        for (std::uint32_t i = 0; i < count; ++i) {
            if (!wd.safe_services[i]) {
                continue;
            }
            for (std::uint32_t d : plan.services()[i].deps) {
                if (!wd.safe_services[d]) {
                    wd.safe_services[d] = true;
                    grew = true;
                }
            }
        }
    }
    return {};
}

Result<void> Runtime::impl::init_watchdog(const WatchdogConfig& w,
                                          TableProblemSink* problems) noexcept {
    if (w.device == WatchdogDevice::none) {
        return {};
    }
    wd.cfg = w;
    auto too_long = [&](WatchdogField f, std::string_view s) {
        Error e(Reason::invalid_argument, ENAMETOOLONG, s);
        e.with_resolution("Use a shorter path");
        report_problem(problems, f, e);
        return fail(e);
    };
    if (!keep(w.path, wd.path, sizeof wd.path, wd.cfg.path)) {
        return too_long(WatchdogField::path, w.path);
    }
    if (!keep(w.state_file, wd.state_file, sizeof wd.state_file, wd.cfg.state_file)) {
        return too_long(WatchdogField::state_file, w.state_file);
    }
    if (!keep(w.gpio_chip, wd.gpio_chip, sizeof wd.gpio_chip, wd.cfg.gpio_chip)) {
        return too_long(WatchdogField::gpio_chip, w.gpio_chip);
    }
    if (!keep(w.led, wd.led, sizeof wd.led, wd.cfg.led)) {
        return too_long(WatchdogField::led, w.led);
    }
    wd.board = ports::choose_board(w.board);
    if (wd.board == nullptr) {
        Error e(Reason::board_unknown, 0, w.board);
        report_problem(problems, WatchdogField::board, e);
        return fail(e);
    }
    wd.cfg.board = wd.board->name; // static data
    const ports::board_profile& b = *wd.board;

    ports::watchdog_port* port = &wd.null;
    switch (wd.cfg.device) {
    case WatchdogDevice::kernel:
        wd.kernel.configure(!wd.cfg.path.empty() ? wd.cfg.path : b.device);
        port = &wd.kernel;
        break;
    case WatchdogDevice::gpio: {
        ports::gpio_setup g;
        g.chip = !wd.cfg.gpio_chip.empty() ? wd.cfg.gpio_chip : b.gpio_chip;
        g.line = wd.cfg.gpio_line >= 0 ? wd.cfg.gpio_line : b.gpio_line;
        g.enable_line = wd.cfg.gpio_enable_line >= 0 ? wd.cfg.gpio_enable_line : b.gpio_enable_line;
        g.active_low = wd.cfg.gpio_active_low;
        const Duration t =
            wd.cfg.timeout.count() > 0 ? wd.cfg.timeout : std::chrono::seconds(b.default_timeout_s);
        g.timeout_s =
            static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(t).count());
        if (g.chip.empty() || g.line < 0) {
            Error e(Reason::gpio_unavailable, EINVAL, "gpio_chip/gpio_line");
            e.with_resolution("Give gpio_chip and gpio_line (the board profile has none)");
            report_problem(problems, WatchdogField::gpio_line, e);
            return fail(e);
        }
        wd.gpio.configure(g);
        port = &wd.gpio;
        break;
    }
    case WatchdogDevice::null:
    case WatchdogDevice::none:
        break;
    }
    ports::led_port* led = nullptr;
    const std::string_view led_name = !wd.cfg.led.empty() ? wd.cfg.led : b.led;
    if (!led_name.empty() && wd.cfg.device != WatchdogDevice::null) {
        wd.status_led.configure(led_name);
        led = &wd.status_led;
    }
    const FixedText<36> boot_id = ports::read_boot_id();
    if (auto r = wd.feeder.init(whost, *port, led, wd.cfg, b, boot_id); !r) {
        report_problem(problems, field_of(r.error(), wd.cfg.device), r.error());
        return fail(r.error());
    }
    wd.on = true;
    return {};
}

void Runtime::impl::start_watchdog() noexcept {
    if (!wd.on) {
        return;
    }
    wd.feeder.start(reactor.now() + std::chrono::duration_cast<nanos>(cfg.boot_grace));
}

// When run() ends: an orderly stop (exit_code() 0) writes the shutdown
// record and disarms where allowed; a wedge exit leaves it armed, for the
// init system above to restart custos within the timeout.
void Runtime::impl::stop_watchdog() noexcept {
    if (!wd.on) {
        return;
    }
    wd.feeder.stop(exit_status == 0);
    wd.feeder.close();
}

void Runtime::set_watchdog_hook(WatchdogHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->user_hooks.set_watchdog_hook(hook, ctx);
    }
}

WatchdogStatus Runtime::watchdog() const noexcept {
    if (impl_ == nullptr || !impl_->wd.on) {
        return {};
    }
    return impl_->snap.is_writer_thread() ? impl_->wd.feeder.status() : impl_->snap.watchdog();
}

Result<void> Runtime::hold_watchdog(Duration for_, std::string_view by) noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::watchdog_unavailable, 0, "no watchdog configured");
    }
    return impl_->hold_watchdog(for_, by);
}

Result<void> Runtime::release_watchdog(std::string_view by) noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::watchdog_unavailable, 0, "no watchdog configured");
    }
    return impl_->release_watchdog(by);
}

// The hold and its end, for the facade above and the control plane.
Result<void> Runtime::impl::hold_watchdog(Duration d, std::string_view by) noexcept {
    if (!wd.on) {
        return fail(Reason::watchdog_unavailable, 0, "no watchdog configured");
    }
    auto r = wd.feeder.hold(std::chrono::duration_cast<nanos>(d), by);
    publisher.mark_stale();
    return r;
}

Result<void> Runtime::impl::release_watchdog(std::string_view by) noexcept {
    if (!wd.on) {
        return fail(Reason::watchdog_unavailable, 0, "no watchdog configured");
    }
    auto r = wd.feeder.release(by);
    publisher.mark_stale();
    return r;
}

} // namespace custos
