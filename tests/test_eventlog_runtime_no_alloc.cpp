// No allocation on the event log's paths after Runtime::start(): with the
// whole malloc family counted (counting_alloc.cpp), a real Runtime with a
// log directory of small files (4 KiB, 3 kept: it rotates and prunes all
// along) runs a crash-looping service (its transitions folded and written
// by the sink) while a thread of the appliance calls log_event() with
// fields, dropped when the mailbox is full; the count must not move from
// start() until run() returns (the sink's close() included).
//
// Not doctest (it allocates as it reports). Exit 0 pass, 1 fail, 77 skip
// (the requested backend is unavailable here).
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

#include <custos/log.hpp>
#include <custos/runtime.hpp>

#include "backend_probe.hpp"
#include "counting_alloc.hpp"

using namespace custos;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t crashes_wanted = 30;
constexpr std::uint32_t custom_wanted = 3000;

struct run_state {
    Runtime* rt = nullptr;
    std::uint32_t crashes = 0;
    std::atomic<std::uint32_t> posted{0};
    std::atomic<std::uint32_t> refused{0};
    std::atomic<bool> go{false};
    std::atomic<bool> done{false};
    bool stop_sent = false;
};

void hook(const Transition& t, void* ctx) noexcept {
    auto& s = *static_cast<run_state*>(ctx);
    if (t.name == "crash" && t.to == ServiceState::backoff) {
        ++s.crashes;
    }
    if (!s.stop_sent && s.crashes >= crashes_wanted && s.done.load()) {
        s.stop_sent = true;
        s.rt->stop();
    }
}

// The appliance's thread: log_event() with fields, from stack buffers only.
void producer(run_state* s) {
    while (!s->go.load()) {
        std::this_thread::yield();
    }
    char n[16];
    for (std::uint32_t i = 0; i < custom_wanted; ++i) {
        std::snprintf(n, sizeof n, "%u", i);
        const LogField f[] = {{"i", n}, {"what", "an upload \"quoted\"\n"}};
        if (log_event("Upload.Done", "an upload finished", f, LogLevel::notice, "uploader")) {
            s->posted.fetch_add(1);
        } else {
            s->refused.fetch_add(1);
            std::this_thread::sleep_for(1ms); // the ring is full: let it drain
        }
        if (i % 64 == 0) {
            std::this_thread::sleep_for(1ms);
        }
    }
    s->done.store(true);
}

int count_files(const char* dir) {
    DIR* d = ::opendir(dir);
    if (d == nullptr) {
        return -1;
    }
    int n = 0;
    for (dirent* e; (e = ::readdir(d)) != nullptr;) {
        n += std::strncmp(e->d_name, "events-", 7) == 0 ? 1 : 0;
    }
    ::closedir(d);
    return n;
}

} // namespace

int main() {
    if (const int b = custos_test::probe_backend(); b != 0) {
        return b;
    }
    char dir[256];
    const char* tmp = std::getenv("TMPDIR");
    std::snprintf(dir, sizeof dir, "%s/custos-elog-rt-noalloc-XXXXXX",
                  (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp");
    if (::mkdtemp(dir) == nullptr) {
        std::printf("FAIL: mkdtemp: %s\n", std::strerror(errno));
        return 1;
    }
    char logdir[300];
    std::snprintf(logdir, sizeof logdir, "%s/log", dir);

    static const std::string_view crash_argv[] = {"/bin/sh", "-c", "exit 1"};
    ServiceSpec specs[1];
    specs[0].name = "crash";
    specs[0].argv = crash_argv;
    specs[0].restart = RestartPolicy::always;
    specs[0].backoff_initial = 10ms;
    specs[0].backoff_max = 10ms;
    specs[0].backoff_multiplier_x100 = 100;
    specs[0].backoff_jitter_percent = 0;

    Table t;
    t.runtime.handle_signals = false;
    t.runtime.cgroup = "off";
    t.runtime.stop_timeout = 5s;
    t.services = specs;
    t.log.dir = logdir;
    t.log.max_file_bytes = 4096;
    t.log.max_files = 3;
    t.log.fold_window = 50ms; // folds fall due all along
    t.log.sync_interval = 100ms;

    Runtime rt;
    run_state s;
    s.rt = &rt;
    if (auto r = rt.init(t); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::printf("FAIL: init: %s\n", text);
        return 1;
    }
    rt.set_transition_hook(&hook, &s);
    std::thread th(producer, &s); // made (and its stack allocated) before the count
    if (!rt.start()) {
        std::printf("FAIL: start\n");
        s.go.store(true);
        th.join();
        return 1;
    }
    const std::uint64_t before = custos_test::allocation_count();
    s.go.store(true);
    rt.run();
    const std::uint64_t after = custos_test::allocation_count();
    th.join();

    int failures = 0;
    if (after != before) {
        std::printf("FAIL: %llu allocations between start() and the end of run()\n",
                    static_cast<unsigned long long>(after - before));
        ++failures;
    }
    if (!custos_test::counter_works(after)) {
        std::printf("FAIL: the counting allocator does not count\n");
        ++failures;
    }
    if (s.crashes < crashes_wanted || s.posted.load() == 0) {
        std::printf("FAIL: %u crashes, %u records posted\n", s.crashes, s.posted.load());
        ++failures;
    }
    const int files = count_files(logdir);
    if (files < 1 || files > 3) {
        std::printf("FAIL: %d event log files (1 to 3 kept)\n", files);
        ++failures;
    }
    char cmd[600];
    std::snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)std::system(cmd);
    if (failures == 0) {
        std::printf("ok: %u crashes, %u custom records posted (%u refused), %d files, no "
                    "allocation\n",
                    s.crashes, s.posted.load(), s.refused.load(), files);
    }
    return failures == 0 ? 0 : 1;
}
