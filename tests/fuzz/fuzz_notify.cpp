// libFuzzer target for parse_notify(): whatever a child sends, the parser
// must not crash, read outside the datagram, or report what is not there.
//
//   meson setup build-clang -Dtests=true --native-file <clang>  (CXX=clang++)
//   ninja -C build-clang tests/fuzz_notify
//   build-clang/tests/fuzz_notify -max_total_time=60 -max_len=4096 CORPUS_DIR
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "process/notify.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
    std::fprintf(stderr, "fuzz_notify: %s\n", what);
    std::abort();
}

// True when `v` is a line's value in `d`: it lies inside `d` and contains no
// line break, so the parser cannot have merged lines or invented bytes.
bool is_value_in(std::string_view v, std::string_view d) {
    if (v.empty()) {
        return true;
    }
    const char* b = d.data();
    if (v.data() < b || v.data() + v.size() > b + d.size()) {
        return false;
    }
    return v.find_first_of("\r\n") == std::string_view::npos;
}

// True when `d` has a line that is exactly `line`.
bool has_line(std::string_view d, std::string_view line) {
    std::size_t pos = 0;
    while (pos <= d.size()) {
        std::size_t end = d.find_first_of("\r\n", pos);
        if (end == std::string_view::npos) {
            end = d.size();
        }
        if (d.substr(pos, end - pos) == line) {
            return true;
        }
        pos = end + 1;
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view d(reinterpret_cast<const char*>(data), size);
    custos::process::notify_message m;
    bool ok = custos::process::parse_notify(d, m);
    if (ok != (std::memchr(data, 0, size) == nullptr)) {
        broken("accepted a NUL, or rejected a datagram without one");
    }
    if (!ok) {
        return 0;
    }
    if (m.has_status && !is_value_in(m.status, d)) {
        broken("status outside the datagram or across lines");
    }
    if (!m.has_status && !m.status.empty()) {
        broken("status without STATUS=");
    }
    // A flag is set only when its exact line is there.
    if ((m.ready && !has_line(d, "READY=1")) || (m.stopping && !has_line(d, "STOPPING=1")) ||
        (m.reloading && !has_line(d, "RELOADING=1")) || (m.barrier && !has_line(d, "BARRIER=1")) ||
        (m.watchdog_ping && !has_line(d, "WATCHDOG=1")) ||
        (m.watchdog_trigger && !has_line(d, "WATCHDOG=trigger"))) {
        broken("a flag without its line");
    }
    if ((m.has_errno && (m.errno_value < 0 || m.errno_value > 4095)) ||
        (m.has_mainpid && m.mainpid <= 0)) {
        broken("a value out of range");
    }
    if (m.ignored > size) {
        broken("more ignored lines than bytes");
    }
    return 0;
}
