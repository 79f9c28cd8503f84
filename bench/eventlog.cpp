// bench/eventlog: what does a record cost the thread that logs it, and how
// many records a second reach the disk?
//
// custos: a started Runtime (one idle service, so its loop runs) with a
// [log] directory in a fresh temporary directory; T = 1 and 4 threads call
// custos::log_event() N times in all (a reason, a message and two fields),
// retrying with a yield while the ring to the reactor is full, as a
// producer that must not lose a record would. Measured: ns per accepted
// record on the producer (the mean over the threads), and records per
// second from the first call until the runtime has stopped with every
// record written (its lines counted in the files afterwards: lost ones, if
// any, are reported).
// Baseline, in the same run and interleaved repetition by repetition: the
// usual hand-rolled logger, a std::mutex around fprintf() of the same JSON
// line into a FILE in the same directory, then fflush() (a write() per
// record, as a logger that must not lose its last lines does).
//
// Prints per T: producer ns per record and records/s, median [min..max]
// over the repetitions, for both, and the ratios.
//
//   --quick   N = 20,000 and 3 repetitions (emulators)
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <custos/log.hpp>
#include <custos/runtime.hpp>

#include "common.hpp"

namespace {

using steady = std::chrono::steady_clock;

struct result {
    double ns_per_record = 0; // producer side, mean over the threads
    double records_per_s = 0; // end to end
    std::uint64_t lines = 0;  // lines found in the files (custos) or written (baseline)
};

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

// Lines of the benchmark's records (reason BenchRecord) in every regular
// file of `dir`.
std::uint64_t count_lines(const std::string& dir) {
    std::uint64_t n = 0;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return 0;
    }
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        std::FILE* f = std::fopen((dir + "/" + e->d_name).c_str(), "r");
        if (f == nullptr) {
            continue;
        }
        char* line = nullptr;
        std::size_t cap = 0;
        while (::getline(&line, &cap, f) > 0) {
            n += std::strstr(line, "\"reason\":\"BenchRecord\"") != nullptr ? 1 : 0;
        }
        std::free(line);
        std::fclose(f);
    }
    ::closedir(d);
    return n;
}

void remove_tree(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d != nullptr) {
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.') {
                ::unlink((dir + "/" + e->d_name).c_str());
            }
        }
        ::closedir(d);
    }
    ::rmdir(dir.c_str());
}

// Runs `work(t, n)` on T threads started together; returns the mean ns per
// operation over the threads.
template <class Work>
double run_threads(unsigned threads, std::uint64_t per_thread, Work work) {
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::vector<double> ns(threads, 0.0);
    std::vector<std::thread> ts;
    ts.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) {
                std::this_thread::yield();
            }
            const auto t0 = steady::now();
            work(t, per_thread);
            ns[t] = std::chrono::duration<double, std::nano>(steady::now() - t0).count() /
                    static_cast<double>(per_thread);
        });
    }
    while (ready.load() != threads) {
        std::this_thread::yield();
    }
    go.store(true, std::memory_order_release);
    for (std::thread& th : ts) {
        th.join();
    }
    double sum = 0;
    for (double v : ns) {
        sum += v;
    }
    return sum / threads;
}

result run_custos(const std::string& dir, unsigned threads, std::uint64_t total) {
    custos::Runtime rt;
    static const std::string_view argv[] = {"/bin/sleep", "3600"};
    custos::ServiceSpec svc;
    svc.name = "idle";
    svc.argv = argv;
    custos::RuntimeConfig cfg; // handle_signals: the producers' SIGTERM ends the run
    custos::Table table{cfg, {&svc, 1}, {}, {}, {}, {}, {}, {}};
    table.log.dir = dir;
    table.log.clock = custos::ClockTrust::trusted;
    // Room for every record (about 300 bytes each): the count afterwards
    // says whether any was lost, not how many rotation deleted.
    table.log.max_file_bytes = std::uint64_t{64} << 20;
    table.log.max_files = 4;
    // init, start and run on this thread (the reactor's); the producers'
    // threads start after init, so SIGTERM stays blocked in them too.
    if (auto r = rt.init(table); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::fprintf(stderr, "eventlog: init: %s\n", text);
        std::exit(1);
    }
    if (!rt.start()) {
        std::fprintf(stderr, "eventlog: start failed\n");
        std::exit(1);
    }
    const auto t0 = steady::now();
    double ns = 0;
    std::thread producers([&] {
        ns = run_threads(threads, total / threads, [](unsigned t, std::uint64_t n) {
            char id[24];
            std::snprintf(id, sizeof id, "%u", t);
            for (std::uint64_t i = 0; i < n; ++i) {
                char seq[24];
                std::snprintf(seq, sizeof seq, "%llu", static_cast<unsigned long long>(i));
                const custos::LogField fields[] = {{"thread", id}, {"n", seq}};
                while (!custos::log_event("BenchRecord", "a record from the benchmark", fields)) {
                    std::this_thread::yield();
                }
            }
        });
        // Every record is in the reactor's hands: the stop writes the rest.
        ::kill(::getpid(), SIGTERM);
    });
    rt.run();
    producers.join();
    result r;
    r.ns_per_record = ns;
    r.records_per_s = static_cast<double>(total) / seconds_since(t0);
    r.lines = count_lines(dir);
    return r;
}

result run_baseline(const std::string& dir, unsigned threads, std::uint64_t total) {
    ::mkdir(dir.c_str(), 0750);
    std::FILE* f = std::fopen((dir + "/baseline.jsonl").c_str(), "a");
    if (f == nullptr) {
        std::perror("eventlog: baseline file");
        std::exit(1);
    }
    std::mutex m;
    std::uint64_t seq = 0;
    const auto t0 = steady::now();
    const double ns = run_threads(threads, total / threads, [&](unsigned t, std::uint64_t n) {
        for (std::uint64_t i = 0; i < n; ++i) {
            const auto wall = std::chrono::system_clock::now().time_since_epoch();
            std::lock_guard<std::mutex> g(m);
            std::fprintf(f,
                         "{\"seq\":%llu,\"mono_ns\":%lld,\"level\":\"info\",\"kind\":\"custom\","
                         "\"reason\":\"BenchRecord\",\"message\":\"a record from the "
                         "benchmark\",\"fields\":{\"thread\":\"%u\",\"n\":\"%llu\"}}\n",
                         static_cast<unsigned long long>(++seq),
                         static_cast<long long>(
                             std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count()),
                         t, static_cast<unsigned long long>(i));
            std::fflush(f);
        }
    });
    std::fclose(f);
    result r;
    r.ns_per_record = ns;
    r.records_per_s = static_cast<double>(total) / seconds_since(t0);
    r.lines = seq;
    return r;
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = custos::bench::has_flag(argc, argv, "--quick");
    const std::uint64_t total = quick ? 20000 : 200000;
    const int reps = quick ? 3 : 5;
    custos::bench::print_header("eventlog");
    std::printf("custos: log_event() from T threads (retrying while the ring is full) into a "
                "started Runtime's [log] dir, N = %llu records in all\n",
                static_cast<unsigned long long>(total));
    std::printf("baseline: std::mutex around fprintf() of the same JSON line + fflush()\n");
    std::printf("cores: %u\n", std::thread::hardware_concurrency());
    char root[] = "/tmp/custos-bench-eventlog.XXXXXX";
    if (::mkdtemp(root) == nullptr) {
        std::perror("eventlog: mkdtemp");
        return 1;
    }
    bool lost = false;
    for (unsigned threads : {1U, 4U}) {
        std::vector<double> c_ns, c_rate, b_ns, b_rate;
        std::uint64_t c_lines_min = UINT64_MAX;
        for (int rep = 0; rep < reps; ++rep) {
            const std::string cdir = std::string(root) + "/c" + std::to_string(rep);
            const std::string bdir = std::string(root) + "/b" + std::to_string(rep);
            const result c = run_custos(cdir, threads, total);
            const result b = run_baseline(bdir, threads, total);
            remove_tree(cdir);
            remove_tree(bdir);
            c_ns.push_back(c.ns_per_record);
            c_rate.push_back(c.records_per_s);
            b_ns.push_back(b.ns_per_record);
            b_rate.push_back(b.records_per_s);
            // The benchmark's records found: fewer than N means some
            // were lost (counted and reported in the log itself).
            c_lines_min = c.lines < c_lines_min ? c.lines : c_lines_min;
        }
        const auto cn = custos::bench::summarize(c_ns.data(), c_ns.size());
        const auto cr = custos::bench::summarize(c_rate.data(), c_rate.size());
        const auto bn = custos::bench::summarize(b_ns.data(), b_ns.size());
        const auto br = custos::bench::summarize(b_rate.data(), b_rate.size());
        std::printf("  threads=%u  custos %.0f ns/record [%.0f..%.0f], %.0f records/s "
                    "[%.0f..%.0f]\n",
                    threads, cn.median, cn.lo, cn.hi, cr.median, cr.lo, cr.hi);
        std::printf("  threads=%u  mutex+fprintf+fflush %.0f ns/record [%.0f..%.0f], %.0f "
                    "records/s [%.0f..%.0f]\n",
                    threads, bn.median, bn.lo, bn.hi, br.median, br.lo, br.hi);
        std::printf("  threads=%u  ratio (baseline/custos): producer cost %.2fx, throughput "
                    "%.2fx; fewest of its records in the log %llu of %llu\n",
                    threads, bn.median / cn.median, cr.median / br.median,
                    static_cast<unsigned long long>(c_lines_min),
                    static_cast<unsigned long long>(total));
        lost = lost || c_lines_min < total;
    }
    ::rmdir(root);
    if (lost) {
        std::printf("note: records were lost to the disk (staging full while a write was in "
                    "flight); each loss is counted and reported in the log itself\n");
    }
    return 0;
}
