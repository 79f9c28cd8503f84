// bench/footprint: custosd's memory and idle cost as its table grows.
//
// Per backend, for 1, 16 and 64 services (`exec = /bin/sleep 100000`,
// restart = always): writes the config in a mkdtemp directory, starts the
// custosd built beside this benchmark, waits until its stderr has logged
// "-> ready" once per service, lets it settle 200 ms, then reads
// /proc/PID/smaps_rollup: Rss, Pss, and private (Private_Clean +
// Private_Dirty: pages no other process maps). Pss shares each library page
// among all its mappers, the N sleeps custosd spawned included, so it can
// fall as the table grows; private is the unambiguous growth figure.
// Idle, 64 services: CPU time (/proc/PID/stat utime+stime, in clock ticks;
// schedstat run time, in ns) and context switches (voluntary + involuntary),
// both summed over all of custosd's threads, across a 10 s window.
// Floor, same run: /bin/sleep, and this binary re-run with --pause (a C++
// program linked like custosd: libstdc++, libcustos; it only calls pause()).
// Stop: SIGTERM; custosd must exit 0 within its stop_timeout + 2 s and leave
// none of its sleep processes behind (survivors are reported, then killed).
//
//   footprint [CUSTOSD] [--quick] [--backend=uring|epoll] [--only=memory|idle]
//   CUSTOSD defaults to ../src/custosd beside this binary (meson passes it).
//   --quick  idle window 3 s
//
// Exit status: 0; 1 when custosd could not be measured or misbehaved (did
// not start its services, restarted one, failed to stop cleanly, left
// processes); a missed target never fails the run.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"
#include "proc.hpp"

extern char** environ;

using custos::bench::cpu_sample;
using custos::bench::sample_cpu;

namespace {

constexpr int stop_timeout_s = 10;

std::int64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct mem {
    long rss = -1, pss = -1, priv = -1; // KiB; -1: not measured
};

// Sums the fields over the file, so /proc/PID/smaps (kernels before 4.14
// have no smaps_rollup) gives the same totals. `how` says which was read.
bool read_mem(pid_t pid, mem& m, const char** how) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    *how = "smaps_rollup";
    std::FILE* f = std::fopen(path, "re");
    if (f == nullptr && errno == ENOENT) {
        std::snprintf(path, sizeof path, "/proc/%d/smaps", pid);
        *how = "smaps, summed (no smaps_rollup: kernel before 4.14)";
        f = std::fopen(path, "re");
    }
    if (f == nullptr) {
        *how = std::strerror(errno);
        return false;
    }
    m = mem{0, 0, 0};
    char line[256], key[64];
    long kb = 0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::sscanf(line, "%63[^:]: %ld kB", key, &kb) != 2) {
            continue;
        }
        std::string_view k(key);
        m.rss += k == "Rss" ? kb : 0;
        m.pss += k == "Pss" ? kb : 0;
        m.priv += k == "Private_Clean" || k == "Private_Dirty" ? kb : 0;
    }
    std::fclose(f);
    return true;
}

// A process started by this benchmark, its stderr on a pipe we read.
struct child {
    pid_t pid = -1;
    int err = -1;
    std::string partial, banner, last, bad, final_line;
    unsigned ready = 0, lines = 0, unexpected = 0;
    std::vector<pid_t> children;
    int status = 0;
    bool exited = false;
};

void take_line(child& d, const std::string& l) {
    ++d.lines;
    d.last = l;
    if (d.banner.empty() && l.rfind("custosd: ", 0) == 0) {
        d.banner = l;
    } else if (l.rfind("custosd: stopped;", 0) == 0) {
        d.final_line = l;
    }
    if (std::size_t at = l.find(" -> ready ("); at != std::string::npos) {
        ++d.ready;
        if (std::size_t p = l.find(" pid ", at); p != std::string::npos) {
            d.children.push_back(static_cast<pid_t>(std::atoi(l.c_str() + p + 5)));
        }
    } else if (l.find(" -> backoff (") != std::string::npos ||
               l.find(" -> failed (") != std::string::npos) {
        if (d.unexpected++ == 0) {
            d.bad = l;
        }
    }
}

// Reads d's stderr until `done(d)` or `until_ns`, waking at least every
// `slice_ms` to look at done() (and whether d exited). Returns done(d).
template <class Done>
bool pump(child& d, std::int64_t until_ns, int slice_ms, Done done) {
    for (;;) {
        if (!d.exited && waitpid(d.pid, &d.status, WNOHANG) == d.pid) {
            d.exited = true;
        }
        if (done(d)) {
            return true;
        }
        std::int64_t left_ms = (until_ns - now_ns()) / 1'000'000;
        if (left_ms <= 0) {
            return false;
        }
        pollfd p{d.err, POLLIN, 0};
        int wait = static_cast<int>(left_ms < slice_ms ? left_ms : slice_ms);
        if (d.err < 0 || poll(&p, 1, wait) <= 0) {
            if (d.err < 0) {
                poll(nullptr, 0, wait);
            }
            continue;
        }
        char buf[4096];
        ssize_t n = read(d.err, buf, sizeof buf);
        if (n <= 0) {
            close(d.err); // EOF: custosd and every child it left are gone
            d.err = -1;
            continue;
        }
        d.partial.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = d.partial.find('\n')) != std::string::npos;) {
            take_line(d, d.partial.substr(0, nl));
            d.partial.erase(0, nl + 1);
        }
    }
}

// Starts argv with stdin/stdout on /dev/null and stderr on a pipe.
bool launch(const char* const* argv, child& d) {
    int rc = custos::bench::spawn_stderr_piped(argv, &d.pid, &d.err);
    if (rc < 0) {
        return false;
    }
    if (rc != 0) {
        std::printf("  cannot start %s: %s\n", argv[0], std::strerror(rc));
    }
    return rc == 0;
}

void print_floor(const char* label, const char* const* argv) {
    child d;
    mem m;
    const char* how = "";
    if (!launch(argv, d)) {
        return;
    }
    poll(nullptr, 0, 200);
    if (waitpid(d.pid, &d.status, WNOHANG) == d.pid) {
        std::printf("  floor %-40s exited at once (qemu-user?): not measured\n", label);
    } else if (read_mem(d.pid, m, &how)) {
        std::printf("  floor %-40s RSS %6ld KiB  PSS %6ld KiB  private %6ld KiB\n", label, m.rss,
                    m.pss, m.priv);
    } else {
        std::printf("  floor %-40s not measured: %s\n", label, how);
    }
    if (kill(d.pid, SIGKILL) == 0) {
        waitpid(d.pid, &d.status, 0);
    }
    close(d.err);
}

// Kills the sleeps custosd spawned that are still alive (ours: started by
// the custosd we started); returns how many there were.
unsigned kill_leftovers(const child& d) {
    unsigned left = 0;
    for (pid_t c : d.children) {
        char path[64], line[256];
        std::snprintf(path, sizeof path, "/proc/%d/stat", c);
        std::FILE* s = std::fopen(path, "re");
        if (s == nullptr) {
            continue;
        }
        const char* p = std::fgets(line, sizeof line, s) ? std::strstr(line, "(sleep) ") : nullptr;
        std::fclose(s);
        if (p != nullptr && p[8] != 'Z') {
            ++left;
            kill(c, SIGKILL);
        }
    }
    return left;
}

struct run_result {
    bool ok = false, skipped = false;
    mem m;
};

// One custosd with `n` services: memory, optionally the idle window, stop.
run_result run_custosd(const char* custosd, const char* dir, const char* backend, int n,
                       int idle_s) {
    run_result r;
    std::string cfg = std::string(dir) + "/custosd.ini";
    std::FILE* f = std::fopen(cfg.c_str(), "we");
    if (f == nullptr) {
        std::printf("  cannot write %s: %s\n", cfg.c_str(), std::strerror(errno));
        return r;
    }
    std::fprintf(f, "[custos]\nstop_timeout = %ds\n", stop_timeout_s);
    for (int i = 0; i < n; ++i) {
        std::fprintf(f, "\n[service:s%02d]\nexec = /bin/sleep 100000\nrestart = always\n", i);
    }
    std::fclose(f);
    setenv("CUSTOS_BACKEND", backend, 1);
    const char* argv[] = {custosd, "--config", cfg.c_str(), nullptr};
    child d;
    if (!launch(argv, d)) {
        return r;
    }
    auto all_ready = [n](const child& x) {
        return x.exited || x.ready >= static_cast<unsigned>(n);
    };
    if (!pump(d, now_ns() + 10'000'000'000, 20, all_ready) || d.exited) {
        if (!d.exited) {
            kill(d.pid, SIGKILL);
            waitpid(d.pid, &d.status, 0);
        }
        kill_leftovers(d);
        if (d.err >= 0) {
            close(d.err);
        }
        bool ran = !(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 127 && d.lines == 0);
        r.skipped = !ran || (std::strcmp(backend, "uring") == 0 &&
                             d.last.find("io_uring") != std::string::npos && d.ready == 0);
        std::printf("  %d services: custosd %s (%u of %d ready; last line: %s)%s\n", n,
                    ran ? "did not get its services ready" : "could not be executed (qemu-user?)",
                    d.ready, n, d.last.c_str(), r.skipped ? " — skipped" : "");
        return r;
    }
    if (n == 1) {
        std::printf("  %s\n", d.banner.c_str());
    }
    pump(d, now_ns() + 200'000'000, 200, [](const child&) { return false; });
    const char* how = "";
    if (!read_mem(d.pid, r.m, &how)) {
        std::printf("  %d services: memory not measured: %s\n", n, how);
    } else if (std::strcmp(how, "smaps_rollup") != 0) {
        std::printf("  note: memory from %s\n", how);
    }
    bool ok = true;
    if (idle_s > 0) {
        cpu_sample a = sample_cpu(d.pid);
        std::int64_t t0 = now_ns();
        unsigned lines0 = d.lines;
        pump(d, t0 + idle_s * 1'000'000'000LL, 60'000, [](const child& x) { return x.exited; });
        cpu_sample b = sample_cpu(d.pid);
        double secs = static_cast<double>(now_ns() - t0) / 1e9;
        long long cs = (b.vol + b.invol) - (a.vol + a.invol);
        double tick_ms = 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
        std::printf("  idle %.1f s, %d services, %d thread(s): CPU %.1f ms (utime+stime, %.0f ms "
                    "ticks)",
                    secs, n, b.tasks, static_cast<double>(b.ticks - a.ticks) * tick_ms, tick_ms);
        if (a.run_ns >= 0 && b.run_ns >= 0) {
            std::printf(", %.3f ms (schedstat)", static_cast<double>(b.run_ns - a.run_ns) / 1e6);
        }
        std::printf("; context switches %lld (voluntary %lld, involuntary %lld); log lines %u\n",
                    cs, b.vol - a.vol, b.invol - a.invol, d.lines - lines0);
        std::printf("  target: 0 context switches while idle: %s\n", cs == 0 ? "MET" : "NOT MET");
    }
    std::int64_t t_stop = now_ns();
    kill(d.pid, SIGTERM);
    bool stopped = pump(d, t_stop + (stop_timeout_s + 2) * 1'000'000'000LL, 10,
                        [](const child& x) { return x.exited; });
    double stop_ms = static_cast<double>(now_ns() - t_stop) / 1e6;
    if (!stopped) {
        std::printf("  FAIL: custosd still running %d s after SIGTERM: killed\n",
                    stop_timeout_s + 2);
        kill(d.pid, SIGKILL);
        waitpid(d.pid, &d.status, 0);
        ok = false;
    } else if (!WIFEXITED(d.status) || WEXITSTATUS(d.status) != 0) {
        std::printf("  FAIL: custosd ended with status 0x%x after SIGTERM\n", d.status);
        ok = false;
    }
    unsigned left = kill_leftovers(d);
    if (left != 0 || d.unexpected != 0) {
        std::printf("  FAIL: %u sleep processes left behind; %u restarts or failures (%s)\n", left,
                    d.unexpected, d.bad.c_str());
        ok = false;
    }
    std::printf("  %d services: stopped in %.0f ms, status %d; %s\n", n, stop_ms,
                WIFEXITED(d.status) ? WEXITSTATUS(d.status) : -1, d.final_line.c_str());
    if (d.err >= 0) {
        close(d.err);
    }
    r.ok = ok;
    return r;
}

std::string find_custosd(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (argv[i][0] != '-') {
            return argv[i];
        }
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    std::string s(self, n > 0 ? static_cast<std::size_t>(n) : 0);
    return s.substr(0, s.rfind('/') + 1) + "../src/custosd";
}

} // namespace

int main(int argc, char** argv) {
    if (custos::bench::has_flag(argc, argv, "--pause")) {
        for (;;) {
            pause();
        }
    }
    custos::bench::print_header("footprint");
    int idle_s = custos::bench::has_flag(argc, argv, "--quick") ? 3 : 10;
    const char* only = custos::bench::flag_value(argc, argv, "--only");
    bool want_mem = only == nullptr || std::strcmp(only, "memory") == 0;
    if (only != nullptr && std::strcmp(only, "idle") != 0 && !want_mem) {
        std::fprintf(stderr, "footprint: --only=memory|idle\n");
        return 2;
    }
    bool want_idle = only == nullptr || std::strcmp(only, "idle") == 0;
    const char* backend = custos::bench::flag_value(argc, argv, "--backend");
    std::string custosd = find_custosd(argc, argv);
    if (access(custosd.c_str(), X_OK) != 0) {
        std::printf("custosd not found at %s (%s): pass its path as the first argument\n",
                    custosd.c_str(), std::strerror(errno));
        return 1;
    }
    std::printf("custosd: %s\nservices: /bin/sleep 100000, restart = always; memory read after "
                "every service logged \"-> ready\" + 200 ms\n",
                custosd.c_str());
    std::size_t env_vars = 0, env_bytes = 0;
    for (char** e = environ; *e != nullptr; ++e, ++env_vars) {
        env_bytes += std::strlen(*e) + 1;
    }
    // Every service's envp holds its own copy of what custosd inherits.
    std::printf("environment custosd inherits: %zu variables, %zu bytes (+ CUSTOS_BACKEND)\n",
                env_vars, env_bytes);
    const char* sleep_argv[] = {"/bin/sleep", "100000", nullptr};
    const char* self_argv[] = {"/proc/self/exe", "--pause", nullptr};
    print_floor("/bin/sleep", sleep_argv);
    print_floor("this binary --pause (C++, like custosd)", self_argv);

    const char* tmp = std::getenv("TMPDIR");
    std::string dir =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/custos-footprint-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
        std::printf("mkdtemp %s: %s\n", dir.c_str(), std::strerror(errno));
        return 1;
    }
    bool ok = true;
    for (const char* b : {"uring", "epoll"}) {
        if (backend != nullptr && std::strcmp(backend, b) != 0) {
            continue;
        }
        std::printf("\nbackend %s (CUSTOS_BACKEND=%s)\n", b, b);
        const int sizes[] = {1, 16, 64};
        mem m[3];
        bool skipped = false;
        for (int k = 0; k < 3 && !skipped; ++k) {
            if (!want_mem && sizes[k] != 64) {
                continue;
            }
            run_result r = run_custosd(custosd.c_str(), dir.c_str(), b, sizes[k],
                                       want_idle && sizes[k] == 64 ? idle_s : 0);
            ok = ok && (r.ok || r.skipped);
            skipped = r.skipped;
            m[k] = r.m;
        }
        if (!want_mem || skipped) {
            continue;
        }
        std::printf("  services   RSS KiB   PSS KiB   private KiB   PSS vs 1   private vs 1\n");
        for (int k = 0; k < 3; ++k) {
            if (m[k].pss < 0 || m[0].pss < 0) {
                std::printf("  %8d   not measured\n", sizes[k]);
                continue;
            }
            std::printf("  %8d   %7ld   %7ld   %11ld   %+8ld   %+12ld\n", sizes[k], m[k].rss,
                        m[k].pss, m[k].priv, m[k].pss - m[0].pss, m[k].priv - m[0].priv);
        }
        if (m[0].pss >= 0 && m[2].pss >= 0) {
            long delta = m[2].pss - m[0].pss;
            std::printf("  target: PSS at 64 within 256 KiB of PSS at 1: %s (%+ld KiB)\n",
                        delta <= 256 ? "MET" : "NOT MET", delta);
        }
    }
    std::string cfg = dir + "/custosd.ini";
    unlink(cfg.c_str());
    if (rmdir(dir.c_str()) != 0) {
        std::printf("could not remove %s: %s\n", dir.c_str(), std::strerror(errno));
    }
    return ok ? 0 : 1;
}
