// ports/feeder: the feed gate against a scriptable fake watchdog port and a
// clock that moves only when the test says (timers on a real timer_wheel
// of 1 ms ticks, as the reactor uses). Every port call is logged with the
// fake time; keepalives are counted over spans of fake time. The state
// file is real, in a temporary directory.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <custos/health.hpp>
#include <custos/watchdog.hpp>

#include "core/timer_wheel.hpp"
#include "doctest.hpp"
#include "io/reactor.hpp"
#include "ports/boards/boards.hpp"
#include "ports/feeder.hpp"
#include "ports/reset_record.hpp"
#include "ports/watchdog.hpp"

using namespace custos;
using namespace custos::ports;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t sec = 1000 * ms;

struct call {
    std::string what;
    std::int64_t at_ms = 0;
};

struct event {
    WatchdogState from = WatchdogState::off;
    WatchdogState to = WatchdogState::off;
    Reason reason = Reason::unknown;
    int sys_errno = 0;
    std::string message;
    std::string resolution;
    std::int64_t at_ms = 0;
};

// The clock, the wheel and the events.
class world final : public feeder_host {
public:
    static constexpr std::int64_t tick_ns = ms;
    static constexpr std::int64_t start_ns = 1'000'000 * sec;

    world() : wheel_(static_cast<std::uint64_t>(start_ns / tick_ns)) {}

    mono_time now() noexcept override { return from_ns(now_ns_); }
    std::int64_t wall_ns() noexcept override { return wall_ns_ + (now_ns_ - start_ns); }
    void arm(io::timer& t, mono_time deadline) noexcept override {
        const std::int64_t ns = to_ns(deadline);
        const std::int64_t tick = ns / tick_ns + (ns % tick_ns != 0 ? 1 : 0);
        wheel_.arm(t, static_cast<std::uint64_t>(tick));
    }
    void cancel(io::timer& t) noexcept override { wheel_.cancel(t); }
    void report(const WatchdogTransition& t) noexcept override {
        events.push_back({t.from, t.to, t.reason, t.sys_errno, std::string(t.message),
                          std::string(t.resolution), (t.mono_ns - start_ns) / ms});
        // FEEDER_PRINT=1 prints every event: to read the messages as an
        // operator would.
        if (std::getenv("FEEDER_PRINT") != nullptr) {
            std::printf("%s -> %s %s: %.*s\n", std::string(watchdog_state_name(t.from)).c_str(),
                        std::string(watchdog_state_name(t.to)).c_str(),
                        std::string(reason_id(t.reason)).c_str(),
                        static_cast<int>(t.message.size()), t.message.data());
        }
        if (on_report) {
            on_report(t);
        }
    }

    std::int64_t at_ms() const { return (now_ns_ - start_ns) / ms; }

    void advance(nanos d) {
        const std::int64_t target = now_ns_ + d.count();
        for (;;) {
            const std::uint64_t next = wheel_.next_expiry();
            if (next == timer_wheel::never || static_cast<std::int64_t>(next) * tick_ns > target) {
                break;
            }
            const std::int64_t at = static_cast<std::int64_t>(next) * tick_ns;
            if (at > now_ns_) {
                now_ns_ = at;
            }
            wheel_.advance(next);
            while (timer_node* n = wheel_.pop_expired()) {
                auto* t = static_cast<io::timer*>(n);
                t->fire(*t);
            }
        }
        now_ns_ = target;
        wheel_.advance(static_cast<std::uint64_t>(target / tick_ns));
    }

    std::vector<event> of(Reason r) const {
        std::vector<event> out;
        for (const auto& e : events) {
            if (e.reason == r) {
                out.push_back(e);
            }
        }
        return out;
    }

    std::vector<event> events;
    std::function<void(const WatchdogTransition&)> on_report;
    std::int64_t wall_ns_ = 1'796'000'000 * sec;

private:
    std::int64_t now_ns_ = start_ns;
    timer_wheel wheel_;
};

class fake_port final : public watchdog_port {
public:
    explicit fake_port(world& w) : w_(w) {}

    // --- the script ---
    bool open_fails = false;
    Error open_error{Reason::watchdog_busy, EBUSY, "/dev/watchdog0"};
    bool info_ok = true;
    std::uint32_t options = wdiof_settimeout | wdiof_magicclose | wdiof_keepaliveping;
    std::string identity = "i6300ESB timer";
    std::uint32_t boot_bits = 0;
    std::uint32_t einval_above = 0; // refuse timeouts above this (0: none)
    std::uint32_t readback = 0;     // what set_timeout reads back (0: as asked)
    std::uint32_t max = 0;          // max_timeout() (0: unsupported)
    std::uint32_t own = 0;          // timeout() (0: unsupported)
    bool pretimeout = true;
    int nowayout_value = -1; // -1: unsupported
    bool settimeout_fails_eio = false;
    std::deque<int> keepalive_errnos; // one per keepalive, 0: ok
    // --- the log ---
    std::vector<call> calls;
    bool open_ = false;
    std::uint32_t current = 0;
    int boot_goods = 0;

    Result<void> open() noexcept override {
        log("open");
        if (open_fails) {
            return fail(open_error);
        }
        open_ = true;
        return {};
    }
    bool is_open() const noexcept override { return open_; }
    Result<watchdog_info> info() noexcept override {
        log("info");
        if (!info_ok) {
            return fail(Reason::watchdog_unsupported, EOPNOTSUPP);
        }
        watchdog_info i;
        i.options = options;
        std::snprintf(i.identity, sizeof i.identity, "%s", identity.c_str());
        return i;
    }
    Result<std::uint32_t> set_timeout(std::uint32_t s) noexcept override {
        log("set_timeout " + std::to_string(s));
        if ((options & wdiof_settimeout) == 0) {
            return fail(Reason::watchdog_unsupported, EOPNOTSUPP);
        }
        if (settimeout_fails_eio) {
            return fail(Reason::watchdog_unavailable, EIO);
        }
        if (einval_above != 0 && s > einval_above) {
            return fail(Reason::invalid_argument, EINVAL);
        }
        current = readback != 0 ? readback : s;
        return current;
    }
    Result<std::uint32_t> timeout() noexcept override {
        log("timeout");
        if (own == 0) {
            return fail(Reason::watchdog_unsupported, EOPNOTSUPP);
        }
        return own;
    }
    Result<std::uint32_t> max_timeout() noexcept override {
        log("max_timeout");
        if (max == 0) {
            return fail(Reason::watchdog_unsupported, EOPNOTSUPP);
        }
        return max;
    }
    Result<std::uint32_t> set_pretimeout(std::uint32_t s) noexcept override {
        log("set_pretimeout " + std::to_string(s));
        if (!pretimeout) {
            return fail(Reason::watchdog_unsupported, EOPNOTSUPP);
        }
        return s;
    }
    Result<std::uint32_t> boot_status() noexcept override {
        log("boot_status");
        return boot_bits;
    }
    Result<bool> nowayout() noexcept override {
        log("nowayout");
        if (nowayout_value < 0) {
            return fail(Reason::watchdog_unsupported, EOPNOTSUPP);
        }
        return nowayout_value == 1;
    }
    Result<void> keepalive() noexcept override {
        log("keepalive");
        int err = 0;
        if (!keepalive_errnos.empty()) {
            err = keepalive_errnos.front();
            keepalive_errnos.pop_front();
        }
        if (err == ENODEV) {
            return fail(Reason::watchdog_lost, ENODEV);
        }
        if (err != 0) {
            return fail(Reason::watchdog_feed_failed, err);
        }
        return {};
    }
    void boot_good() noexcept override {
        log("boot_good");
        ++boot_goods;
    }
    close_outcome close(bool magic) noexcept override {
        log(magic ? "close V" : "close");
        open_ = false;
        if (nowayout_value == 1) {
            return close_outcome::left_armed;
        }
        if (magic || (options & wdiof_magicclose) == 0) {
            return close_outcome::disarmed;
        }
        return close_outcome::left_armed;
    }
    std::string_view path() const noexcept override { return "/dev/watchdog0"; }

    // Keepalives in [from_ms, to_ms].
    int feeds(std::int64_t from_ms, std::int64_t to_ms) const {
        int n = 0;
        for (const auto& c : calls) {
            if (c.what == "keepalive" && c.at_ms >= from_ms && c.at_ms <= to_ms) {
                ++n;
            }
        }
        return n;
    }
    std::vector<std::int64_t> feed_times() const {
        std::vector<std::int64_t> out;
        for (const auto& c : calls) {
            if (c.what == "keepalive") {
                out.push_back(c.at_ms);
            }
        }
        return out;
    }
    bool called(std::string_view what) const {
        for (const auto& c : calls) {
            if (c.what == what) {
                return true;
            }
        }
        return false;
    }

private:
    void log(std::string what) { calls.push_back({std::move(what), w_.at_ms()}); }
    world& w_;
};

class fake_led final : public led_port {
public:
    void set(led_state s) noexcept override { states.push_back(s); }
    led_state last() const { return states.empty() ? led_state::dark : states.back(); }
    std::vector<led_state> states;
};

struct temp_dir {
    std::string path;
    temp_dir() {
        char buf[] = "/tmp/custos-feeder-XXXXXX";
        REQUIRE(::mkdtemp(buf) != nullptr);
        path = buf;
    }
    ~temp_dir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)std::system(cmd.c_str());
    }
};

board_profile generic_board() {
    board_profile b;
    b.name = "generic";
    b.description = "any /dev/watchdog0";
    b.device = "/dev/watchdog0";
    b.default_timeout_s = 30;
    b.magic_close = true;
    return b;
}

HealthStatus health(Health h) {
    HealthStatus s;
    s.health = h;
    s.settled = h != Health::starting;
    if (h == Health::failed) {
        HealthReason d; // a degraded one first: not the one that fails
        d.kind = SubjectKind::probe;
        d.name = std::string_view("broker");
        d.state = std::string_view("down");
        d.reason = Reason::probe_connect_refused;
        d.fails = false;
        HealthReason r;
        r.kind = SubjectKind::service;
        r.name = std::string_view("uploader");
        r.critical = true;
        r.fails = true;
        r.state = std::string_view("failed");
        r.reason = Reason::max_restarts_exhausted;
        s.reasons[0] = d;
        s.reasons[1] = r;
        s.reason_count = 2;
        s.reason_total = 2;
        s.summary = std::string_view("failed: uploader failed (MaxRestartsExhausted)");
    } else {
        s.summary = std::string_view("ok");
    }
    return s;
}

// One feeder on the fake world.
struct rig {
    world w;
    fake_port port{w};
    fake_led led;
    WatchdogConfig cfg;
    board_profile board = generic_board();
    feeder f;
    std::string state_file;

    rig() {
        cfg.device = WatchdogDevice::kernel;
        cfg.timeout = 10s;
    }
    Result<void> init(std::string_view boot_id = "boot-2") {
        if (!state_file.empty()) {
            cfg.state_file = state_file;
        }
        return f.init(w, port, &led, cfg, board, boot_id);
    }
    void start(nanos grace) { f.start(w.now() + grace); }
    void up(nanos grace = 0s) {
        REQUIRE(init());
        start(grace);
    }
    std::int64_t at() const { return w.at_ms(); }
};

} // namespace

TEST_CASE("the gate truth table: boot grace x health x hold") {
    const Health all[] = {Health::starting, Health::ok, Health::degraded, Health::failed};
    for (bool in_grace : {true, false}) {
        for (Health h : all) {
            for (bool hold : {false, true}) {
                CAPTURE(in_grace);
                CAPTURE(static_cast<int>(h));
                CAPTURE(hold);
                rig r; // timeout 10 s: fed every 5 s
                r.up(in_grace ? nanos(600s) : nanos(10s));
                r.f.on_health(health(Health::ok));
                r.w.advance(20s);
                r.f.on_health(health(h));
                if (hold) {
                    REQUIRE(r.f.hold(std::chrono::minutes(10), "alice"));
                }
                const std::int64_t from = r.at() + 1;
                r.w.advance(60s);
                const int fed = r.port.feeds(from, r.at());
                const bool want = in_grace || hold || h != Health::failed;
                if (want) {
                    CHECK(fed == 12);
                    CHECK(r.f.status().gate_open);
                } else {
                    CHECK(fed == 0);
                    CHECK_FALSE(r.f.status().gate_open);
                }
                const WatchdogState st = r.f.status().state;
                if (hold) {
                    CHECK(st == WatchdogState::held);
                } else if (in_grace) {
                    CHECK(st == WatchdogState::booting);
                } else {
                    CHECK(st ==
                          (h == Health::failed ? WatchdogState::starving : WatchdogState::feeding));
                }
            }
        }
    }
}

TEST_CASE("failed during the boot grace: fed until it ends, then starving") {
    rig r;
    r.up(30s);
    r.f.on_health(health(Health::failed));
    r.w.advance(29s);
    CHECK(r.f.status().state == WatchdogState::booting);
    CHECK(r.port.feeds(0, 29'000) == 6); // 0, 5 ... 25 s
    r.w.advance(2s);
    CHECK(r.f.status().state == WatchdogState::starving);
    auto st = r.w.of(Reason::watchdog_starving);
    REQUIRE(st.size() == 1);
    CHECK(st[0].at_ms == 30'000);
    CHECK(st[0].from == WatchdogState::booting);
    r.w.advance(60s);
    CHECK(r.port.feeds(30'001, r.at()) == 0);
}

TEST_CASE("the feed interval against the effective timeout") {
    auto gaps = [](const std::vector<std::int64_t>& t) {
        std::vector<std::int64_t> g;
        for (std::size_t i = 1; i < t.size(); ++i) {
            g.push_back(t[i] - t[i - 1]);
        }
        return g;
    };
    SUBCASE("timeout 30: every 15 s") {
        rig r;
        r.cfg.timeout = 30s;
        r.up();
        r.w.advance(60s);
        CHECK(r.port.feed_times() == std::vector<std::int64_t>{0, 15'000, 30'000, 45'000, 60'000});
        CHECK(r.f.status().interval_ns == 15 * sec);
        CHECK(r.f.status().timeout_s == 30);
        CHECK_FALSE(r.f.status().clamped);
    }
    SUBCASE("interval 5 s: every 5 s") {
        rig r;
        r.cfg.timeout = 30s;
        r.cfg.interval = 5s;
        r.up();
        r.w.advance(60s);
        for (auto g : gaps(r.port.feed_times())) {
            CHECK(g == 5000);
        }
        CHECK(r.port.feeds(0, 60'000) == 13);
    }
    SUBCASE("interval 60 s: still every 15 s") {
        rig r;
        r.cfg.timeout = 30s;
        r.cfg.interval = 60s;
        r.up();
        r.w.advance(60s);
        CHECK(r.f.status().interval_ns == 15 * sec);
        CHECK(r.port.feeds(0, 60'000) == 5);
    }
    SUBCASE("a driver that reads back 10 when asked 30: every 5 s, clamped") {
        rig r;
        r.cfg.timeout = 30s;
        r.port.readback = 10;
        r.up();
        r.w.advance(60s);
        CHECK(r.f.status().timeout_s == 10);
        CHECK(r.f.status().requested_s == 30);
        CHECK(r.f.status().clamped);
        CHECK(r.f.status().interval_ns == 5 * sec);
        CHECK(r.port.feeds(0, 60'000) == 13);
        CHECK(r.w.of(Reason::watchdog_timeout_clamped).size() == 1);
    }
    SUBCASE("a tiny interval is held at 100 ms") {
        rig r;
        r.cfg.timeout = 1s;
        r.cfg.interval = 10ms;
        r.up();
        r.w.advance(1s);
        CHECK(r.f.status().interval_ns == 100 * ms);
        CHECK(r.port.feeds(0, 1000) == 11);
    }
    SUBCASE("no timeout asked: the profile's default") {
        rig r;
        r.cfg.timeout = 0s;
        r.board.default_timeout_s = 16;
        r.up();
        CHECK(r.port.called("set_timeout 16"));
        CHECK(r.f.status().interval_ns == 8 * sec);
    }
}

TEST_CASE("the opened event says what is in force, at start, not at init") {
    rig r;
    r.cfg.timeout = 30s;
    REQUIRE(r.init());
    CHECK(r.w.events.empty());
    CHECK(r.port.feeds(0, 0) == 0);
    r.start(60s);
    REQUIRE(r.w.events.size() == 1);
    const event& e = r.w.events[0];
    CHECK(e.reason == Reason::watchdog_opened);
    CHECK(e.from == WatchdogState::off);
    CHECK(e.to == WatchdogState::booting);
    CHECK(e.message == "i6300ESB timer at /dev/watchdog0: timeout 30 s (asked 30 s), fed every "
                       "15 s, magic close at an orderly stop");
    CHECK_FALSE(e.resolution.empty());
    CHECK(r.port.feeds(0, 0) == 1);
    CHECK(r.f.status().first_feed_ns == world::start_ns);
    CHECK(r.f.status().identity == std::string_view("i6300ESB timer"));
    CHECK(r.f.status().options == r.port.options);
    CHECK(r.f.status().magic_close);
    CHECK(r.f.status().board == std::string_view("generic"));
    CHECK(r.f.status().path == std::string_view("/dev/watchdog0"));
}

TEST_CASE("clamping and its report") {
    SUBCASE("above the profile's maximum") {
        rig r;
        r.cfg.timeout = 30s;
        r.board.name = "raspberrypi";
        r.board.max_timeout_s = 15;
        r.port.identity = "bcm2835_wdt";
        r.up();
        CHECK(r.port.called("set_timeout 15"));
        CHECK_FALSE(r.port.called("set_timeout 30"));
        CHECK(r.f.status().requested_s == 30);
        CHECK(r.f.status().timeout_s == 15);
        CHECK(r.f.status().clamped);
        CHECK(r.f.status().notice ==
              std::string_view("bcm2835_wdt at /dev/watchdog0: asked 30 s, beyond the board's "
                               "15 s: clamped to 15 s"));
        auto c = r.w.of(Reason::watchdog_timeout_clamped);
        REQUIRE(c.size() == 1);
        CHECK(c[0].message == std::string(r.f.status().notice));
        CHECK(c[0].from == c[0].to);
        // WatchdogOpened first, then the clamp.
        CHECK(r.w.events[0].reason == Reason::watchdog_opened);
        CHECK(r.w.events[1].reason == Reason::watchdog_timeout_clamped);
    }
    SUBCASE("EINVAL, and the driver tells its maximum") {
        rig r;
        r.cfg.timeout = 30s;
        r.port.einval_above = 20;
        r.port.max = 20;
        r.up();
        CHECK(r.port.called("set_timeout 30"));
        CHECK(r.port.called("set_timeout 20"));
        CHECK(r.f.status().timeout_s == 20);
        CHECK(r.f.status().clamped);
        CHECK(std::string(r.f.status().notice).find("refused 30 s: clamped to 20 s") !=
              std::string::npos);
        CHECK(r.w.of(Reason::watchdog_timeout_clamped).size() == 1);
    }
    SUBCASE("EINVAL, maximum unknown: halved until accepted") {
        rig r;
        r.cfg.timeout = 60s;
        r.port.einval_above = 16;
        r.up();
        CHECK(r.port.called("set_timeout 60"));
        CHECK(r.port.called("set_timeout 30"));
        CHECK(r.port.called("set_timeout 15"));
        CHECK(r.f.status().timeout_s == 15);
        CHECK(r.f.status().clamped);
        CHECK(r.w.of(Reason::watchdog_timeout_clamped).size() == 1);
    }
    SUBCASE("no SETTIMEOUT, timeout() known: its own, fed at half") {
        rig r;
        r.cfg.timeout = 30s;
        r.port.options &= ~wdiof_settimeout;
        r.port.own = 60;
        r.up();
        CHECK(r.f.status().timeout_s == 60);
        CHECK(r.f.status().interval_ns == 30 * sec);
        CHECK(r.f.status().clamped);
        CHECK(std::string(r.f.status().notice).find("cannot set its timeout") != std::string::npos);
        CHECK(r.w.of(Reason::watchdog_timeout_clamped).size() == 1);
    }
    SUBCASE("no SETTIMEOUT, no timeout(): the profile's, fed every second") {
        rig r;
        r.cfg.timeout = 30s;
        r.port.options &= ~wdiof_settimeout;
        r.board.default_timeout_s = 60;
        r.up();
        CHECK(r.f.status().timeout_s == 60);
        CHECK(r.f.status().interval_ns == sec);
        CHECK(r.f.status().clamped);
        CHECK(std::string(r.f.status().notice).find("neither set nor tell") != std::string::npos);
        r.w.advance(10s);
        CHECK(r.port.feeds(0, 10'000) == 11);
    }
    SUBCASE("a set_timeout that fails otherwise: init fails when required, the port closed") {
        rig r;
        r.port.settimeout_fails_eio = true;
        auto res = r.init();
        REQUIRE_FALSE(res);
        CHECK(res.error().sys_errno() == EIO);
        CHECK(r.port.called("close"));
    }
    SUBCASE("as asked: no clamp, no event") {
        rig r;
        r.up();
        CHECK_FALSE(r.f.status().clamped);
        CHECK(r.f.status().notice.empty());
        CHECK(r.w.of(Reason::watchdog_timeout_clamped).empty());
    }
}

TEST_CASE("pretimeout: asked, absent, not below the timeout") {
    rig r;
    r.cfg.pretimeout = 3s;
    r.up();
    CHECK(r.port.called("set_pretimeout 3"));
    CHECK(r.f.status().pretimeout_s == 3);
    CHECK(r.w.events[0].message.find("pretimeout 3 s") != std::string::npos);

    rig n;
    n.board.pretimeout_s = 2;
    n.port.pretimeout = false;
    n.up();
    CHECK(n.f.status().pretimeout_s == 0);
    CHECK(n.w.events[0].message.find("no pretimeout (the driver has none)") != std::string::npos);

    rig b;
    b.cfg.pretimeout = 10s;
    b.up();
    CHECK_FALSE(b.port.called("set_pretimeout 10"));
    CHECK(b.f.status().pretimeout_s == 0);
}

TEST_CASE("the hold") {
    SUBCASE("starts (from starving: fed at once), replaces, expires by itself") {
        temp_dir d;
        rig r;
        r.state_file = d.path + "/wd.state";
        r.up();
        r.f.on_health(health(Health::failed));
        CHECK(r.f.status().state == WatchdogState::starving);
        r.w.advance(3s);
        const int before = r.port.feeds(0, r.at());
        REQUIRE(r.f.hold(std::chrono::minutes(10), "alice"));
        CHECK(r.port.feeds(0, r.at()) == before + 1); // at once
        CHECK(r.f.status().state == WatchdogState::held);
        CHECK(r.f.status().hold_by == std::string_view("alice"));
        CHECK(r.f.status().hold_until_ns == world::start_ns + 603 * sec);
        auto hs = r.w.of(Reason::watchdog_hold_started);
        REQUIRE(hs.size() == 1);
        CHECK(hs[0].from == WatchdogState::starving);
        CHECK(hs[0].to == WatchdogState::held);
        CHECK(hs[0].message.find("alice for 10 min") != std::string::npos);
        // The record no longer says starving.
        auto rec = read_record(r.state_file.c_str());
        REQUIRE(rec);
        CHECK(rec->state == record_state::running);

        // Replaced by a longer one: one more HoldStarted, the first end passes.
        r.w.advance(60s);
        REQUIRE(r.f.hold(std::chrono::minutes(20), "bob"));
        hs = r.w.of(Reason::watchdog_hold_started);
        REQUIRE(hs.size() == 2);
        CHECK(hs[1].from == WatchdogState::held);
        CHECK(hs[1].to == WatchdogState::held);
        r.w.advance(std::chrono::minutes(10));
        CHECK(r.f.status().state == WatchdogState::held);
        CHECK(r.w.of(Reason::watchdog_hold_ended).empty());
        CHECK(r.port.feeds(r.at() - 60'000 + 1, r.at()) == 12);

        // Ends by itself at 63 s + 20 min: health still failed, so it starves.
        r.w.advance(std::chrono::minutes(10) + 5s);
        auto he = r.w.of(Reason::watchdog_hold_ended);
        REQUIRE(he.size() == 1);
        CHECK(he[0].at_ms == 63'000 + 20 * 60'000);
        CHECK(he[0].message.find("expired") != std::string::npos);
        CHECK(r.f.status().state == WatchdogState::starving);
        CHECK(r.w.of(Reason::watchdog_starving).size() == 2);
        CHECK(r.f.status().hold_until_ns == 0);
        rec = read_record(r.state_file.c_str());
        REQUIRE(rec);
        CHECK(rec->state == record_state::starving);
    }
    SUBCASE("expires into feeding when healthy; release ends it early") {
        rig r;
        r.up();
        r.f.on_health(health(Health::ok));
        REQUIRE(r.f.hold(std::chrono::minutes(1), "alice"));
        r.w.advance(61s);
        auto he = r.w.of(Reason::watchdog_hold_ended);
        REQUIRE(he.size() == 1);
        CHECK(he[0].from == WatchdogState::held);
        CHECK(he[0].to == WatchdogState::feeding);
        REQUIRE(r.f.hold(std::chrono::minutes(1), "alice"));
        r.w.advance(10s);
        REQUIRE(r.f.release("bob"));
        he = r.w.of(Reason::watchdog_hold_ended);
        REQUIRE(he.size() == 2);
        CHECK(he[1].message.find("released by bob") != std::string::npos);
        CHECK(r.f.status().state == WatchdogState::feeding);
        r.w.advance(std::chrono::minutes(5));
        CHECK(r.w.of(Reason::watchdog_hold_ended).size() == 2);
        auto rel = r.f.release("bob");
        REQUIRE_FALSE(rel);
        CHECK(rel.error().reason() == Reason::invalid_argument);
    }
    SUBCASE("refused beyond max_hold or at zero or less") {
        rig r;
        r.cfg.max_hold = std::chrono::minutes(30);
        r.up();
        for (nanos bad : {nanos(0), nanos(-1s), nanos(std::chrono::minutes(31))}) {
            auto h = r.f.hold(bad, "alice");
            REQUIRE_FALSE(h);
            CHECK(h.error().reason() == Reason::invalid_argument);
        }
        CHECK(r.f.hold(std::chrono::minutes(30), "alice"));
    }
    SUBCASE("refused with no watchdog") {
        rig r;
        r.cfg.required = false;
        r.port.open_fails = true;
        r.up();
        auto h = r.f.hold(std::chrono::minutes(1), "alice");
        REQUIRE_FALSE(h);
        CHECK(h.error().reason() == Reason::watchdog_unavailable);

        rig none;
        none.cfg.device = WatchdogDevice::none;
        none.up();
        auto h2 = none.f.hold(std::chrono::minutes(1), "alice");
        REQUIRE_FALSE(h2);
        CHECK(h2.error().reason() == Reason::watchdog_unavailable);
        CHECK(none.port.calls.empty());
        CHECK(none.w.events.empty());
    }
}

TEST_CASE("starving writes the record before the feeding stops; fed again writes running") {
    temp_dir d;
    rig r;
    r.state_file = d.path + "/wd.state";
    r.up();
    CHECK(r.f.status().record_writes == 1); // running, at init
    r.f.on_health(health(Health::ok));
    r.w.advance(12s);
    CHECK(r.f.status().record_writes == 1); // feeds write nothing

    bool checked = false;
    std::int64_t last_feed_before = 0;
    r.w.on_report = [&](const WatchdogTransition& t) {
        if (t.reason != Reason::watchdog_starving) {
            return;
        }
        // At the moment the gate shuts, the record is already on disk.
        auto rec = read_record(r.state_file.c_str());
        REQUIRE(rec);
        CHECK(rec->state == record_state::starving);
        CHECK(rec->subject == std::string_view("service uploader"));
        CHECK(rec->reason == Reason::max_restarts_exhausted);
        CHECK(rec->message == std::string_view("failed: uploader failed (MaxRestartsExhausted)"));
        CHECK(rec->boot_id == std::string_view("boot-2"));
        CHECK(r.f.status().record_writes == 2);
        last_feed_before = r.port.feed_times().back();
        checked = true;
    };
    r.f.on_health(health(Health::failed));
    REQUIRE(checked);
    auto st = r.w.of(Reason::watchdog_starving);
    REQUIRE(st.size() == 1);
    // Last feed at 10 s, timeout 10 s, now 12 s: about 8 s left.
    CHECK(st[0].message == "health failed: service uploader failed (MaxRestartsExhausted); the "
                           "board resets in about 8 s unless it recovers");
    CHECK(r.f.status().starving_since_ns == world::start_ns + 12 * sec);
    r.w.advance(30s);
    CHECK(r.port.feed_times().back() == last_feed_before);
    // More failed health while starving: no new write, no new event.
    r.f.on_health(health(Health::failed));
    CHECK(r.f.status().record_writes == 2);
    CHECK(r.w.of(Reason::watchdog_starving).size() == 1);

    // Recovers: fed at once, the record says running again.
    r.f.on_health(health(Health::degraded));
    CHECK(r.port.feed_times().back() == 42'000);
    auto fa = r.w.of(Reason::watchdog_fed_again);
    REQUIRE(fa.size() == 1);
    CHECK(fa[0].from == WatchdogState::starving);
    CHECK(fa[0].to == WatchdogState::feeding);
    CHECK(r.f.status().record_writes == 3);
    auto rec = read_record(r.state_file.c_str());
    REQUIRE(rec);
    CHECK(rec->state == record_state::running);
    CHECK(r.f.status().starving_since_ns == 0);
    r.w.advance(60s);
    CHECK(r.port.feeds(42'001, r.at()) == 12);
    r.f.on_health(health(Health::ok));
    CHECK(r.f.status().record_writes == 3);
    CHECK(r.f.status().record_failures == 0);
}

TEST_CASE("a state file that cannot be written: counted, reported each time, feeding goes on") {
    temp_dir d;
    rig r;
    r.state_file = d.path + "/missing-dir/wd.state";
    r.up();
    auto u = r.w.of(Reason::reset_record_unwritable);
    REQUIRE(u.size() == 1); // the running record at init, reported at start
    CHECK(u[0].sys_errno == ENOENT);
    r.f.on_health(health(Health::failed));
    r.f.on_health(health(Health::ok));
    CHECK(r.w.of(Reason::reset_record_unwritable).size() == 3);
    CHECK(r.f.status().record_failures == 3);
    CHECK(r.f.status().record_writes == 0);
    r.w.advance(20s);
    CHECK(r.port.feeds(1, 20'000) == 4);
}

TEST_CASE("the previous boot, the counters and safe mode through init") {
    temp_dir d;
    const std::string path = d.path + "/wd.state";
    SUBCASE("starved, with what failed; counters carried") {
        reset_record prev;
        prev.state = record_state::starving;
        prev.boot_id = std::string_view("boot-1");
        prev.reason = Reason::max_restarts_exhausted;
        prev.subject = std::string_view("service uploader");
        prev.message = std::string_view("failed: uploader failed (MaxRestartsExhausted)");
        prev.counters = {4, 1, 1, 0, 2, 0};
        REQUIRE(write_record(path.c_str(), prev));
        rig r;
        r.state_file = path;
        r.up();
        CHECK(r.f.status().previous.cls == ResetClass::starved);
        CHECK(r.f.status().previous.subject == std::string_view("service uploader"));
        CHECK(r.f.status().counters.boots == 5);
        CHECK(r.f.status().counters.starved == 2);
        auto e = r.w.of(Reason::previous_boot_starved);
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.find("service uploader (MaxRestartsExhausted)") != std::string::npos);
        auto now = read_record(path.c_str());
        REQUIRE(now);
        CHECK(now->state == record_state::running);
        CHECK(now->boot_id == std::string_view("boot-2"));
        CHECK(now->counters.boots == 5);
        CHECK_FALSE(r.f.safe_mode());
    }
    SUBCASE("running and CARDRESET: watchdog; the boot status shown") {
        reset_record prev;
        prev.boot_id = std::string_view("boot-1");
        REQUIRE(write_record(path.c_str(), prev));
        rig r;
        r.state_file = path;
        r.port.boot_bits = wdiof_cardreset;
        r.up();
        CHECK(r.f.status().previous.cls == ResetClass::watchdog);
        CHECK(r.f.status().previous.boot_status == wdiof_cardreset);
        CHECK(r.w.of(Reason::previous_boot_watchdog).size() == 1);
    }
    SUBCASE("torn file: corrupt event, unknown, written anew") {
        FILE* f = std::fopen(path.c_str(), "w");
        REQUIRE(f != nullptr);
        std::fputs("custos-watchdog 1\nstate star", f);
        std::fclose(f);
        rig r;
        r.state_file = path;
        r.up();
        CHECK(r.f.status().previous.cls == ResetClass::unknown);
        auto c = r.w.of(Reason::reset_record_corrupt);
        REQUIRE(c.size() == 1);
        CHECK(c[0].message.find(path) != std::string::npos);
        CHECK(r.f.status().counters.boots == 1);
        CHECK(read_record(path.c_str()));
    }
    SUBCASE("missing file: unknown, no event") {
        rig r;
        r.state_file = path;
        r.up(60s);
        CHECK(r.f.status().previous.cls == ResetClass::unknown);
        CHECK(r.w.events.size() == 1); // only WatchdogOpened
        CHECK(r.f.status().counters.boots == 1);
    }
    SUBCASE("K starved boots within the window: safe mode, reported") {
        reset_record prev;
        prev.state = record_state::starving;
        prev.boot_id = std::string_view("boot-1");
        world w0;
        prev.recent[0] = w0.wall_ns() - 20 * 60 * sec;
        prev.recent[1] = w0.wall_ns() - 10 * 60 * sec;
        prev.recent_count = 2;
        REQUIRE(write_record(path.c_str(), prev));
        rig r;
        r.state_file = path;
        r.cfg.safe_mode_boots = 3;
        r.cfg.safe_mode_window = std::chrono::hours(1);
        r.up();
        CHECK(r.f.safe_mode());
        CHECK(r.f.status().safe_mode);
        auto s = r.w.of(Reason::safe_mode);
        REQUIRE(s.size() == 1);
        CHECK(s[0].message.find("3 watchdog-caused boots within 60 min") != std::string::npos);
        // An orderly stop, then a new boot: safe mode is over.
        r.f.stop(true);
        rig next;
        next.state_file = path;
        next.cfg.safe_mode_boots = 3;
        REQUIRE(next.init("boot-3"));
        CHECK_FALSE(next.f.safe_mode());
        CHECK(next.f.status().previous.cls == ResetClass::orderly);
    }
}

TEST_CASE("stop") {
    temp_dir d;
    const std::string path = d.path + "/wd.state";
    SUBCASE("orderly: the orderly record, closed with magic, disarmed") {
        rig r;
        r.state_file = path;
        r.up();
        r.f.stop(true);
        CHECK(r.port.called("close V"));
        auto e = r.w.of(Reason::watchdog_disarmed);
        REQUIRE(e.size() == 1);
        CHECK(e[0].to == WatchdogState::closed);
        CHECK(r.f.status().state == WatchdogState::closed);
        auto rec = read_record(path.c_str());
        REQUIRE(rec);
        CHECK(rec->state == record_state::orderly);
        // Idempotent, and no more feeds.
        r.f.stop(true);
        CHECK(r.w.of(Reason::watchdog_disarmed).size() == 1);
        const auto n = r.port.feed_times().size();
        r.w.advance(60s);
        CHECK(r.port.feed_times().size() == n);
    }
    SUBCASE("MagicClose::no: left armed, said so") {
        rig r;
        r.cfg.magic_close = MagicClose::no;
        r.up();
        CHECK_FALSE(r.f.status().magic_close);
        r.f.stop(true);
        CHECK(r.port.called("close"));
        CHECK_FALSE(r.port.called("close V"));
        auto e = r.w.of(Reason::watchdog_left_armed);
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.find("magic close is off") != std::string::npos);
        CHECK(e[0].message.find("resets in about") != std::string::npos);
    }
    SUBCASE("the profile says no magic close") {
        rig r;
        r.board.magic_close = false;
        r.up();
        r.f.stop(true);
        CHECK_FALSE(r.port.called("close V"));
        CHECK(r.w.of(Reason::watchdog_left_armed).size() == 1);
    }
    SUBCASE("a driver without magic close, magic close off: it stops at any close, said so") {
        rig r;
        r.port.options &= ~wdiof_magicclose;
        r.cfg.magic_close = MagicClose::no;
        r.up();
        CHECK(r.f.status().magic_close);
        CHECK(r.w.events[0].message.find("no magic close: the driver stops at any close") !=
              std::string::npos);
        r.f.stop(true);
        CHECK_FALSE(r.port.called("close V"));
        auto e = r.w.of(Reason::watchdog_disarmed);
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.find("stops at any close") != std::string::npos);
    }
    SUBCASE("nowayout: left armed, said at open and at the stop") {
        rig r;
        r.port.nowayout_value = 1;
        r.cfg.magic_close = MagicClose::yes;
        r.up();
        CHECK(r.f.status().nowayout);
        CHECK_FALSE(r.f.status().magic_close);
        CHECK(r.w.events[0].message.find("nowayout") != std::string::npos);
        r.f.stop(true);
        CHECK_FALSE(r.port.called("close V"));
        auto e = r.w.of(Reason::watchdog_left_armed);
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.find("nowayout") != std::string::npos);
    }
    SUBCASE("not orderly: no record, no 'V'") {
        rig r;
        r.state_file = path;
        r.up();
        const auto writes = r.f.status().record_writes;
        r.f.stop(false);
        CHECK(r.f.status().record_writes == writes);
        CHECK(r.port.called("close"));
        CHECK_FALSE(r.port.called("close V"));
        auto rec = read_record(path.c_str());
        REQUIRE(rec);
        CHECK(rec->state == record_state::running);
        auto e = r.w.of(Reason::watchdog_left_armed);
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.find("not an orderly stop") != std::string::npos);
    }
}

TEST_CASE("keepalive failures") {
    SUBCASE("ENODEV: lost, no more feeds") {
        rig r;
        r.up();
        r.w.advance(5s);
        r.port.keepalive_errnos = {ENODEV};
        r.w.advance(5s);
        CHECK(r.f.status().state == WatchdogState::lost);
        auto e = r.w.of(Reason::watchdog_lost);
        REQUIRE(e.size() == 1);
        CHECK(e[0].sys_errno == ENODEV);
        const auto n = r.port.feed_times().size();
        r.w.advance(60s);
        CHECK(r.port.feed_times().size() == n);
        r.f.on_health(health(Health::failed));
        r.f.on_health(health(Health::ok));
        r.w.advance(60s);
        CHECK(r.port.feed_times().size() == n);
        CHECK(r.led.last() == led_state::dark);
    }
    SUBCASE("EIO: counted, one event per run, feeding goes on") {
        rig r;
        r.up();
        r.port.keepalive_errnos = {EIO, EIO, EIO, 0, EIO};
        r.w.advance(25s); // feeds at 5, 10, 15 fail, 20 ok, 25 fails
        CHECK(r.f.status().feed_errors == 4);
        auto e = r.w.of(Reason::watchdog_feed_failed);
        REQUIRE(e.size() == 2);
        CHECK(e[0].at_ms == 5000);
        CHECK(e[1].at_ms == 25'000);
        CHECK(e[0].sys_errno == EIO);
        CHECK(r.f.status().state == WatchdogState::feeding);
        r.w.advance(20s);
        CHECK(r.port.feeds(25'001, 45'000) == 4);
        CHECK(r.f.status().feeds == 2 + 4);
    }
}

TEST_CASE("an open that fails") {
    SUBCASE("required: init fails with the port's error") {
        rig r;
        auto res = r.init();
        (void)res;
        rig q;
        q.port.open_fails = true;
        auto e = q.init();
        REQUIRE_FALSE(e);
        CHECK(e.error().reason() == Reason::watchdog_busy);
    }
    SUBCASE("not required: runs off, says so at start") {
        temp_dir d;
        rig r;
        r.cfg.required = false;
        r.port.open_fails = true;
        r.state_file = d.path + "/wd.state";
        REQUIRE(r.init());
        CHECK(r.w.events.empty());
        r.start(0s);
        CHECK(r.f.status().state == WatchdogState::off);
        auto e = r.w.of(Reason::watchdog_busy);
        REQUIRE(e.size() == 1);
        CHECK(e[0].from == WatchdogState::off);
        CHECK(e[0].to == WatchdogState::off);
        CHECK(e[0].message.find("not watched") != std::string::npos);
        CHECK(e[0].resolution.find("Another process holds the watchdog") != std::string::npos);
        CHECK(std::string(r.f.status().notice).find("could not be opened") != std::string::npos);
        r.w.advance(60s);
        CHECK(r.port.feed_times().empty());
        r.f.on_health(health(Health::failed));
        CHECK(r.w.of(Reason::watchdog_starving).empty());
        // The record is still kept: the next boot knows this one was orderly.
        r.f.stop(true);
        auto rec = read_record(r.state_file.c_str());
        REQUIRE(rec);
        CHECK(rec->state == record_state::orderly);
        CHECK_FALSE(r.port.called("close"));
    }
}

TEST_CASE("the LED and boot_good") {
    rig r;
    r.up(10s);
    CHECK(r.led.last() == led_state::blinking); // booting
    CHECK(r.port.boot_goods == 0);
    r.f.on_health(health(Health::starting));
    CHECK(r.port.boot_goods == 0);
    r.f.on_health(health(Health::degraded));
    CHECK(r.port.boot_goods == 1);
    r.w.advance(11s);
    CHECK(r.f.status().state == WatchdogState::feeding);
    auto g = r.w.of(Reason::boot_grace_expired);
    REQUIRE(g.size() == 1);
    CHECK(g[0].from == WatchdogState::booting);
    CHECK(g[0].to == WatchdogState::feeding);
    CHECK(r.led.last() == led_state::blinking); // degraded
    r.f.on_health(health(Health::ok));
    CHECK(r.led.last() == led_state::lit);
    r.f.on_health(health(Health::failed));
    CHECK(r.led.last() == led_state::dark);
    REQUIRE(r.f.hold(std::chrono::minutes(1), "alice"));
    CHECK(r.led.last() == led_state::blinking);
    REQUIRE(r.f.release("alice"));
    CHECK(r.led.last() == led_state::dark);
    r.f.on_health(health(Health::ok));
    CHECK(r.led.last() == led_state::lit);
    CHECK(r.port.boot_goods == 1);
    // No write of the same state twice in a row.
    for (std::size_t i = 1; i < r.led.states.size(); ++i) {
        CHECK(r.led.states[i] != r.led.states[i - 1]);
    }
    r.f.stop(true);
    CHECK(r.led.last() == led_state::dark);
}

TEST_CASE("a failed health first settled: boot_good waits for a health that is not failed") {
    rig r;
    r.up(60s);
    r.f.on_health(health(Health::failed));
    CHECK(r.port.boot_goods == 0);
    r.f.on_health(health(Health::ok));
    CHECK(r.port.boot_goods == 1);
}
