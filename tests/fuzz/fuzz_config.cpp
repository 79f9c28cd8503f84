// libFuzzer target for custosd's config reader (DESIGN.md: every parser is
// fuzzed). Besides memory errors (run it under ASan/UBSan), it checks what
// the reader promises:
//   - true exactly when no problem was found; false leaves no services;
//   - every problem has a line within the text (0 only for the whole text)
//     and a non-empty message, and formats;
//   - on success every service has a name and an argv, every line_of() is a
//     real line, every string points into the config's own copy, and a
//     second parse of the same text gives the same table.
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
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
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
        check(a.backoff_multiplier_x100 >= 100 && a.backoff_multiplier_x100 <= 10000,
              "multiplier in range");
        check(a.backoff_jitter_percent <= 100, "jitter in range");
        check(a.stop_signal >= 1 && a.stop_signal <= 64, "signal in range");
        for (std::size_t f = 0; f < custos::sup::spec_field_count; ++f) {
            unsigned l = first.line_of(i, static_cast<custos::sup::spec_field>(f));
            check(l >= 1 && l <= lines, "line_of() names a real line");
        }
        for (std::string_view e : a.env) {
            check(e.find('=') != std::string_view::npos && e.front() != '=', "env KEY=value");
        }
    }
    check(first.runtime().max_services >= 1 && first.runtime().max_services <= 4096,
          "max_services in range");
    return 0;
}
