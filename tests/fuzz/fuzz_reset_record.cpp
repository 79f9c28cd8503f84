// libFuzzer target for the watchdog's reset record (ports/reset_record.hpp):
// parse_record() over any bytes. It may refuse, never crash or read outside
// its input; what it accepts must survive a round trip: formatted again it
// fits reset_record_max_bytes and parses to the same record, and the
// classification of it as the previous boot's record stays within the
// header's promises (counters only grow, `recent` within its capacity).
//
//   meson setup build-clang -Dtests=true   (CXX=clang++)
//   ninja -C build-clang tests/fuzz_reset_record
//   build-clang/tests/fuzz_reset_record -max_total_time=60 -max_len=2048 CORPUS_DIR
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "ports/reset_record.hpp"

namespace {

using namespace custos;
using namespace custos::ports;

[[noreturn]] void broken(const char* what) {
    std::fprintf(stderr, "fuzz_reset_record: %s\n", what);
    std::abort();
}

bool same(const reset_record& a, const reset_record& b) {
    if (a.state != b.state || a.boot_id.view() != b.boot_id.view() || a.wall_ns != b.wall_ns ||
        a.reason != b.reason || a.subject.view() != b.subject.view() ||
        a.message.view() != b.message.view() || !(a.counters == b.counters) ||
        a.recent_count != b.recent_count) {
        return false;
    }
    for (std::uint32_t i = 0; i < a.recent_count && i < reset_record_recent; ++i) {
        if (a.recent[i] != b.recent[i]) {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = parse_record(text);
    if (!r) {
        if (r.error().reason() != Reason::reset_record_corrupt) {
            broken("a refusal that is not ResetRecordCorrupt");
        }
        return 0;
    }
    if (r->recent_count > reset_record_recent) {
        broken("more recent entries than the record holds");
    }
    char buf[reset_record_max_bytes + 1];
    const std::size_t n = format_record(*r, buf, sizeof buf);
    if (n > reset_record_max_bytes) {
        broken("an accepted record does not fit when formatted again");
    }
    auto again = parse_record(std::string_view(buf, n));
    if (!again) {
        broken("a formatted record does not parse");
    }
    if (!same(*r, *again)) {
        broken("the round trip changed the record");
    }
    const Result<reset_record> prev(*r);
    const boot_verdict v =
        classify_boot(prev, "fuzz-boot", 0x20, 1'000'000'000'000'000'000, 3, 3'600'000'000'000);
    if (v.next.recent_count > reset_record_recent) {
        broken("the verdict's record holds too many recent boots");
    }
    if (v.next.counters.boots < r->counters.boots ||
        v.next.counters.watchdog < r->counters.watchdog) {
        broken("a counter went down");
    }
    return 0;
}
