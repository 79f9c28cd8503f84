// libFuzzer target for custosd's config reader (DESIGN.md: every parser is
// fuzzed). Besides memory errors (run it under ASan/UBSan), it checks what
// the reader promises:
//   - true exactly when no problem was found; false leaves no services;
//   - every problem has a line within the text (0 only for the whole text)
//     and a non-empty message, and formats;
//   - on success every service has a name and an argv, every line_of() is a
//     real line, every string points into the config's own copy, and a
//     second parse of the same text gives the same table;
//   - the same for probes: a name, exactly what its kind needs (a target, an
//     argv or members), expect_status only on http (codes 100-599), owner,
//     mode and writable only on file, mode within 07777, tries and thresholds
//     at least 1, every probe_line_of() a real line;
//   - [watchdog]: every watchdog_line_of() a real line when the section is
//     there (0 for all when not), GPIO lines -1 to 511, the strings the
//     same twice and in the config's own copy; a failed parse leaves the
//     defaults.
// libFuzzer finds the key names through its comparison hooks, so it needs
// no seeds; a corpus of examples/*.ini gets it there sooner.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "custosd/config.hpp"

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_config: broken promise: %s\n", what);
        std::abort();
    }
}

unsigned count_lines(std::string_view text) {
    unsigned n = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        n += text[i] == '\n' ? 1 : 0;
    }
    return n + (!text.empty() && text.back() != '\n' ? 1 : 0);
}

bool same(std::string_view a, std::string_view b) {
    // An empty view may have a null data(): memcmp must not see it.
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool same(std::span<const std::string_view> a, std::span<const std::string_view> b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!same(a[i], b[i])) {
            return false;
        }
    }
    return true;
}

// Static: the problem list is 20 KiB, and configs are reused across inputs
// as custosd would reuse one on reload.
custos::cfg::config first;
custos::cfg::config second;
custos::cfg::problem_list problems;
custos::cfg::problem_list problems2;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    problems.clear();
    const bool ok = first.parse(text, problems);
    check(ok == problems.empty(), "parse() returns true exactly when there is no problem");

    const unsigned lines = count_lines(text);
    char buf[512];
    for (const custos::cfg::problem& p : problems) {
        check(p.line <= lines, "problem line within the text");
        check(p.message[0] != '\0', "problem message not empty");
        check(std::memchr(p.message, '\0', sizeof p.message) != nullptr, "message terminated");
        custos::cfg::format_problem("fuzz.conf", p, buf, sizeof buf);
        custos::cfg::format_problem("fuzz.conf", p, buf, 7);
    }
    if (!ok) {
        check(first.services().empty(), "no services after a failed parse");
        check(first.probes().empty(), "no probes after a failed parse");
        check(first.watchdog().device == custos::WatchdogDevice::none &&
                  first.watchdog_line_of(custos::WatchdogField::section) == 0,
              "no watchdog after a failed parse");
        return 0;
    }

    problems2.clear();
    check(second.parse(text, problems2), "the same text parses twice");
    check(first.services().size() == second.services().size(), "same service count");
    for (std::uint32_t i = 0; i < first.services().size(); ++i) {
        const custos::ServiceSpec& a = first.services()[i];
        const custos::ServiceSpec& b = second.services()[i];
        check(!a.name.empty(), "service named");
        check(!a.argv.empty(), "service has argv");
        check(same(a.name, b.name) && same(a.argv, b.argv) && same(a.env, b.env) &&
                  same(a.depends_on, b.depends_on) && same(a.cwd, b.cwd),
              "same table twice");
        check(a.name.data() != b.name.data(), "each config owns its copy");
        check(a.ready != custos::ReadyMode::fd || a.ready_fd >= 3, "ready fd >= 3");
        check((a.ready == custos::ReadyMode::probe) == !a.ready_probe.empty(),
              "ready_probe exactly with ReadyMode::probe");
        check(same(a.liveness, b.liveness) && same(a.ready_probe, b.ready_probe),
              "same probe references twice");
        check(a.backoff_multiplier_x100 >= 100 && a.backoff_multiplier_x100 <= 10000,
              "multiplier in range");
        check(a.backoff_jitter_percent <= 100, "jitter in range");
        check(a.stop_signal >= 1 && a.stop_signal <= 64, "signal in range");
        for (std::size_t f = 0; f < custos::service_field_count; ++f) {
            unsigned l = first.line_of(i, static_cast<custos::ServiceField>(f));
            check(l >= 1 && l <= lines, "line_of() names a real line");
        }
        for (std::string_view e : a.env) {
            check(e.find('=') != std::string_view::npos && e.front() != '=', "env KEY=value");
        }
    }
    check(first.runtime().max_services >= 1 && first.runtime().max_services <= 4096,
          "max_services in range");
    check(first.runtime().max_probes >= 1 && first.runtime().max_probes <= 4096,
          "max_probes in range");
    check(first.runtime().max_probe_checks >= 1 &&
              first.runtime().max_probe_checks <= custos::cfg::config::max_probe_checks,
          "max_probe_checks in range");

    check(first.probes().size() == second.probes().size(), "same probe count");
    for (std::uint32_t i = 0; i < first.probes().size(); ++i) {
        const custos::ProbeSpec& a = first.probes()[i];
        const custos::ProbeSpec& b = second.probes()[i];
        check(!a.name.empty(), "probe named");
        check(a.name.data() != b.name.data(), "each config owns its copy");
        check(same(a.name, b.name) && a.kind == b.kind && same(a.target, b.target) &&
                  same(a.argv, b.argv) && same(a.members, b.members) &&
                  a.expect_status.size() == b.expect_status.size() && same(a.owner, b.owner) &&
                  a.mode == b.mode && a.writable == b.writable && same(a.reason, b.reason) &&
                  same(a.resolution, b.resolution),
              "same probes twice");
        switch (a.kind) {
        case custos::ProbeKind::tcp:
        case custos::ProbeKind::http:
        case custos::ProbeKind::unix_socket:
        case custos::ProbeKind::file:
            check(!a.target.empty() && a.argv.empty() && a.members.empty(), "target kinds");
            break;
        case custos::ProbeKind::exec:
            check(a.target.empty() && !a.argv.empty() && a.members.empty(), "exec has argv");
            break;
        case custos::ProbeKind::all:
            check(a.target.empty() && a.argv.empty() && !a.members.empty(), "all has members");
            break;
        }
        for (std::string_view m : a.members) {
            check(!m.empty(), "member named");
        }
        check(a.expect_status.empty() || a.kind == custos::ProbeKind::http,
              "expect_status only on http");
        for (std::uint16_t c : a.expect_status) {
            check(c >= 100 && c <= 599, "status in range");
        }
        check(a.kind == custos::ProbeKind::file || (a.owner.empty() && a.mode == -1 && !a.writable),
              "file keys only on file probes");
        check(a.mode >= -1 && a.mode <= 07777, "mode in range");
        check(a.startup_tries >= 1 && a.success_threshold >= 1 && a.failure_threshold >= 1,
              "counts at least 1");
        check(a.startup_multiplier_x100 >= 100 && a.startup_multiplier_x100 <= 10000,
              "probe multiplier in range");
        for (std::size_t f = 0; f < custos::probe_field_count; ++f) {
            unsigned l = first.probe_line_of(i, static_cast<custos::ProbeField>(f));
            check(l >= 1 && l <= lines, "probe_line_of() names a real line");
        }
    }
    const custos::WatchdogConfig& w = first.watchdog();
    const custos::WatchdogConfig& w2 = second.watchdog();
    const bool has_watchdog = first.watchdog_line_of(custos::WatchdogField::section) != 0;
    for (std::size_t f = 0; f < custos::watchdog_field_count; ++f) {
        unsigned l = first.watchdog_line_of(static_cast<custos::WatchdogField>(f));
        check(has_watchdog ? l >= 1 && l <= lines : l == 0, "watchdog_line_of() names a real line");
    }
    check(w.device == w2.device && same(w.board, w2.board) && same(w.path, w2.path) &&
              same(w.state_file, w2.state_file) && same(w.gpio_chip, w2.gpio_chip) &&
              same(w.led, w2.led) && w.timeout == w2.timeout && w.interval == w2.interval,
          "same watchdog twice");
    check(w.gpio_line >= -1 && w.gpio_line <= 511 && w.gpio_enable_line >= -1 &&
              w.gpio_enable_line <= 511,
          "GPIO lines in range");
    check(w.safe_mode_boots <= 1000, "safe_mode_boots in range");
    check(w.state_file.empty() || w.state_file.data() != w2.state_file.data(),
          "each config owns its copy");
    return 0;
}
