// No allocation in the event log's run-time paths after log_dir::open():
// with the whole malloc family counted (counting_alloc.cpp), from_event(),
// encode(), the folder (offer, flush_due, flush_all) and log_dir::append()
// with rotations and the pruning they start, sync(), and read_since()
// paging through the rotated files, must not move the count.
//
// Not doctest (it allocates as it reports). Exit 0 pass, 1 fail.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "counting_alloc.hpp"
#include "eventlog/files.hpp"
#include "eventlog/record.hpp"
#include "status/event.hpp"

using namespace custos;
using namespace custos::eventlog;

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAIL: %s\n", what);
        ++failures;
    }
}

// static: 64 records in place. A half-second window: the 40 s of
// transitions below then write a fold every half second per transition,
// enough records to rotate the 2 KiB files several times.
folder fold(500'000'000);
char line[max_line];
record out[8];
char replay_out[16384];

} // namespace

int main() {
    char dir[256];
    const char* t = std::getenv("TMPDIR");
    std::snprintf(dir, sizeof dir, "%s/custos-eventlog-noalloc-XXXXXX",
                  (t != nullptr && *t != '\0') ? t : "/tmp");
    if (::mkdtemp(dir) == nullptr) {
        std::printf("FAIL: mkdtemp: %s\n", std::strerror(errno));
        return 1;
    }
    static log_dir log;
    auto o = log.open(dir, 2048, 3);
    if (!o) {
        std::printf("FAIL: open: %.*s\n", static_cast<int>(o.error().id().size()),
                    o.error().id().data());
        return 1;
    }
    // The wall clock's first read (vDSO set-up) and the day cache, before
    // the count.
    (void)status::wall_now_ns();

    Transition tr;
    tr.name = "svc";
    tr.from = ServiceState::running;
    tr.to = ServiceState::backoff;
    tr.reason = Reason::process_exited;
    tr.detail = "exit status 1 \xff and a quote \"";

    const std::uint64_t before = custos_test::allocation_count();
    std::uint64_t appended = 0;
    for (int i = 0; i < 400; ++i) {
        tr.at_ns = static_cast<std::int64_t>(i) * 100'000'000;
        if (i % 50 == 0) { // break the run now and then: folds go out
            tr.to = tr.to == ServiceState::backoff ? ServiceState::failed : ServiceState::backoff;
        }
        record r = from_event(status::make_event(tr, status::wall_now_ns()));
        std::size_t n = fold.offer(r, out);
        n += fold.flush_due(tr.at_ns, out + n, 4);
        for (std::size_t k = 0; k < n; ++k) {
            out[k].seq = log.next_seq();
            const std::size_t len = encode(out[k], "boot-0123", line, sizeof line);
            expect(len > 0, "encode");
            expect(log.append(line, len).has_value(), "append");
            ++appended;
        }
    }
    const std::size_t rest = fold.flush_all(out, 8);
    for (std::size_t k = 0; k < rest; ++k) {
        out[k].seq = log.next_seq();
        const std::size_t len = encode(out[k], {}, line, sizeof line);
        expect(log.append(line, len).has_value(), "append the rest");
    }
    expect(log.sync().has_value(), "sync");
    // Reading back (GET /events from the files): pages from the oldest on,
    // across the rotated files.
    std::uint64_t replayed = 0;
    std::uint64_t since = 1;
    for (int k = 0; k < 64; ++k) {
        auto page = log.read_since(since, 7, replay_out, sizeof replay_out);
        expect(page.has_value(), "read_since");
        if (!page || page->lines == 0) {
            break;
        }
        replayed += page->lines;
        since = page->next;
    }
    const std::uint64_t after = custos_test::allocation_count();
    expect(replayed > 7, "records were read back, in more than one page");

    expect(appended > 10, "records were written");
    expect(log.counters().rotated > 0, "the log rotated");
    if (after != before) {
        std::printf("FAIL: %llu allocations after open()\n",
                    static_cast<unsigned long long>(after - before));
        ++failures;
    }
    expect(custos_test::counter_works(after), "the counting allocator counts");
    log.close();
    char cmd[512];
    std::snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)std::system(cmd);
    if (failures == 0) {
        std::printf("ok: %llu records, %llu rotations, %llu read back, no allocation\n",
                    static_cast<unsigned long long>(appended),
                    static_cast<unsigned long long>(log.counters().rotated),
                    static_cast<unsigned long long>(replayed));
    }
    return failures == 0 ? 0 : 1;
}
