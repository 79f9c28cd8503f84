// bench/monitor_beat: what does MonitorContext::beat() cost a monitor's
// thread?
//
// T = 1, 2 and 4 threads, each beating its own monitor slot N times with a
// changing progress token (beat(i): the token store and the beat word
// store), while a reader thread samples every slot once a millisecond as the
// reactor's checks do. Baseline, in the same run and interleaved repetition
// by repetition: the hand-rolled heartbeat a monitor loop would otherwise
// do, a per-thread mutex around "last beat = now" (a CLOCK_MONOTONIC read
// and a store), with the reader locking each mutex to read it.
//
// Prints ns per beat (median [min..max] over the repetitions, each the mean
// over the T threads), the baseline's, and their ratio.
//
//   --quick   N = 200,000 and 5 repetitions (emulators)
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include <custos/monitor.hpp>

#include "common.hpp"
#include "core/time.hpp"
#include "monitor/slot.hpp"

namespace {

using steady = std::chrono::steady_clock;

struct alignas(custos::cache_line) locked_stamp {
    std::mutex m;
    std::int64_t last_ns = 0;
    std::uint64_t beats = 0;
};

// Runs `work(t)` on T threads started together, with a sampler thread
// calling `sample()` every millisecond until they finish. Returns the mean
// ns per operation over the threads.
template <class Work, class Sample>
double run_threads(unsigned threads, std::uint64_t n, Work work, Sample sample) {
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::atomic<bool> done{false};
    std::vector<double> ns(threads, 0.0);
    std::vector<std::thread> ts;
    ts.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) {
            }
            auto a = steady::now();
            work(t, n);
            auto b = steady::now();
            ns[t] = static_cast<double>(
                        std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count()) /
                    static_cast<double>(n);
        });
    }
    std::thread reader([&] {
        while (!done.load(std::memory_order_acquire)) {
            sample();
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    while (ready.load() != threads) {
    }
    go.store(true, std::memory_order_release);
    for (auto& t : ts) {
        t.join();
    }
    done.store(true, std::memory_order_release);
    reader.join();
    double sum = 0;
    for (double v : ns) {
        sum += v;
    }
    return sum / threads;
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = custos::bench::has_flag(argc, argv, "--quick");
    const std::uint64_t n = quick ? 200'000 : 5'000'000;
    const unsigned reps = quick ? 5 : 15;
    custos::bench::print_header("monitor_beat");
    std::printf("beat: MonitorContext::beat(token) on its own slot per thread, N = %llu per "
                "thread, a reader sampling every slot each 1 ms; %u repetitions, median "
                "[min..max]%s\n",
                static_cast<unsigned long long>(n), reps, quick ? " (--quick)" : "");
    std::printf("baseline: per-thread std::mutex around a CLOCK_MONOTONIC timestamp store, the "
                "reader locking each\n");
    std::printf("cores: %u\n", std::thread::hardware_concurrency());
    std::fflush(stdout);

    const unsigned counts[] = {1, 2, 4};
    double ratio_1 = 0;
    for (unsigned threads : counts) {
        std::vector<custos::mon::slot> slots(threads);
        std::vector<locked_stamp> stamps(threads);
        std::vector<double> beat_ns(reps);
        std::vector<double> base_ns(reps);
        std::uint64_t sink = 0;
        for (unsigned r = 0; r < reps; ++r) {
            beat_ns[r] = run_threads(
                threads, n,
                [&](unsigned t, std::uint64_t count) {
                    custos::MonitorContext ctx(&slots[t]);
                    for (std::uint64_t i = 0; i < count; ++i) {
                        ctx.beat(i);
                    }
                },
                [&] {
                    for (auto& s : slots) {
                        custos::mon::sample out;
                        s.read_beats(out);
                        sink += out.beats;
                    }
                });
            base_ns[r] = run_threads(
                threads, n,
                [&](unsigned t, std::uint64_t count) {
                    locked_stamp& s = stamps[t];
                    for (std::uint64_t i = 0; i < count; ++i) {
                        std::lock_guard<std::mutex> g(s.m);
                        s.last_ns = custos::to_ns(custos::mono_clock::now());
                        ++s.beats;
                    }
                },
                [&] {
                    for (auto& s : stamps) {
                        std::lock_guard<std::mutex> g(s.m);
                        sink += static_cast<std::uint64_t>(s.last_ns) + s.beats;
                    }
                });
        }
        custos::bench::summary b = custos::bench::summarize(beat_ns.data(), beat_ns.size());
        custos::bench::summary m = custos::bench::summarize(base_ns.data(), base_ns.size());
        double ratio = b.median > 0 ? m.median / b.median : 0;
        if (threads == 1) {
            ratio_1 = ratio;
        }
        std::printf("  threads=%u  beat %.2f ns [%.2f..%.2f]  mutex+timestamp %.2f ns "
                    "[%.2f..%.2f]  ratio %.1fx%s\n",
                    threads, b.median, b.lo, b.hi, m.median, m.lo, m.hi, ratio,
                    sink == 42 ? " " : "");
        std::fflush(stdout);
    }
    std::printf("result: beat() is %.1fx cheaper than the mutex-protected timestamp from one "
                "thread\n",
                ratio_1);
    return 0;
}
