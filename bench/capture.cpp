// bench/capture: how fast does custosd take a service's output to disk,
// and what does it cost custosd?
//
// custos: the custosd built beside this benchmark runs one service,
// `yes LINE | head -c N` (N = 100 MiB of 60-byte lines, written as fast as
// the pipe takes them), with output = file into a [log] dir in a fresh
// temporary directory (files of 16 MiB, 16 kept: room for all of it).
// Measured from custosd's start until its stderr logs the service stopped
// (it exited 0 and custosd has read its last byte), and custosd's CPU
// time (utime + stime, all threads) over the run: MB/s, and CPU ms per
// MB; and, once custosd has stopped (its last writes done), the share of
// the stamped lines the files hold: the capture drops what the disk does
// not take in time rather than make the service wait.
// Baseline, in the same run and interleaved repetition by repetition: the
// same `yes LINE | head -c N` into `cat > file` on the same filesystem:
// MB/s, and cat's CPU ms per MB (its own rusage).
//
//   capture [CUSTOSD] [--quick]
//   CUSTOSD defaults to ../src/custosd beside this binary (meson passes it).
//   --quick  N = 16 MiB and 3 repetitions (emulators)
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "common.hpp"
#include "proc.hpp"

extern char** environ;

namespace {

constexpr const char* line_text = "the quick brown fox jumps over the lazy dog 0123456789 abc";

double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void remove_tree(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d != nullptr) {
        while (dirent* e = ::readdir(d)) {
            if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) {
                continue;
            }
            const std::string p = dir + "/" + e->d_name;
            struct stat st {};
            if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
                remove_tree(p);
            } else {
                ::unlink(p.c_str());
            }
        }
        ::closedir(d);
    }
    ::rmdir(dir.c_str());
}

// Bytes in the regular files under `dir` (one level of subdirectories).
long long bytes_under(const std::string& dir) {
    long long n = 0;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return 0;
    }
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        const std::string p = dir + "/" + e->d_name;
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0) {
            n += S_ISDIR(st.st_mode) ? bytes_under(p) : st.st_size;
        }
    }
    ::closedir(d);
    return n;
}

struct result {
    double mb_per_s = 0;
    double cpu_ms_per_mb = 0;
    double kept = 0; // of the stamped lines, the share in the files
    bool ok = false;
};

result run_custosd(const char* custosd, const std::string& dir, long long bytes) {
    result r;
    const std::string ini = dir + "/c.ini";
    if (std::FILE* f = std::fopen(ini.c_str(), "w")) {
        std::fprintf(f,
                     "[custos]\nnotify_dir = %s/n\n[control]\nenabled = no\n[log]\ndir = "
                     "%s/log\noutput_file_bytes = 16M\noutput_files = 16\nclock = trusted\n"
                     "[service:flood]\nexec = /bin/sh -c \"yes '%s' | head -c %lld\"\n"
                     "restart = never\noutput = file\n",
                     dir.c_str(), dir.c_str(), line_text, bytes);
        std::fclose(f);
    } else {
        return r;
    }
    const char* argv[] = {custosd, "--config", ini.c_str(), nullptr};
    pid_t pid = -1;
    int err = -1;
    const double t0 = now_s();
    if (custos::bench::spawn_stderr_piped(argv, &pid, &err) != 0) {
        return r;
    }
    std::string seen;
    char buf[4096];
    bool stopped = false;
    while (!stopped && now_s() - t0 < 120) {
        pollfd p{err, POLLIN, 0};
        if (::poll(&p, 1, 1000) <= 0) {
            continue;
        }
        const ssize_t n = ::read(err, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        seen.append(buf, static_cast<std::size_t>(n));
        stopped = seen.find("flood: running -> stopped") != std::string::npos ||
                  seen.find("flood: ready -> stopped") != std::string::npos;
    }
    const double t1 = now_s();
    const custos::bench::cpu_sample cpu = custos::bench::sample_cpu(pid);
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(err);
    const long long written = bytes_under(dir + "/log/flood");
    const double mb = static_cast<double>(bytes) / (1 << 20);
    if (!stopped || cpu.ticks < 0) {
        std::fprintf(stderr, "capture: custosd did not report the service stopped:\n%s\n",
                     seen.c_str());
        return r;
    }
    r.mb_per_s = mb / (t1 - t0);
    r.cpu_ms_per_mb =
        static_cast<double>(cpu.ticks) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK)) / mb;
    // The files hold the lines with their stamps: 32 bytes more a line
    // with a trusted clock ("2026-12-08T01:56:19.123Z stdout "). Less
    // than that: lines were dropped (the capture drops what the disk does
    // not take in time rather than hold the service).
    const long long line = static_cast<long long>(std::strlen(line_text)) + 1;
    const long long framed = bytes + 32 * ((bytes + line - 1) / line);
    r.kept = written >= framed ? 1.0 : static_cast<double>(written) / static_cast<double>(framed);
    r.ok = true;
    if (written < framed) {
        std::fprintf(stderr, "capture: %lld bytes in the files of %lld stamped (%.1f%% kept)\n",
                     written, framed, 100.0 * r.kept);
    }
    return r;
}

result run_cat(const std::string& dir, long long bytes) {
    result r;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        return r;
    }
    const std::string out = dir + "/cat.out";
    char script[256];
    std::snprintf(script, sizeof script, "yes '%s' | head -c %lld", line_text, bytes);
    const char* prod_argv[] = {"/bin/sh", "-c", script, nullptr};
    const char* cat_argv[] = {"/bin/cat", nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    pid_t prod = -1;
    pid_t cat = -1;
    const double t0 = now_s();
    posix_spawn(&prod, prod_argv[0], &fa, nullptr, const_cast<char* const*>(prod_argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
    posix_spawn(&cat, cat_argv[0], &fa, nullptr, const_cast<char* const*>(cat_argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[0]);
    ::close(p[1]);
    int status = 0;
    rusage ru{};
    ::wait4(cat, &status, 0, &ru);
    const double t1 = now_s();
    ::waitpid(prod, &status, 0);
    const double mb = static_cast<double>(bytes) / (1 << 20);
    r.mb_per_s = mb / (t1 - t0);
    const double cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    r.cpu_ms_per_mb = cpu_s * 1000.0 / mb;
    r.ok = bytes_under(dir) >= bytes;
    ::unlink(out.c_str());
    return r;
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = custos::bench::has_flag(argc, argv, "--quick");
    std::string custosd;
    for (int i = 1; i < argc; ++i) {
        if (argv[i][0] != '-') {
            custosd = argv[i];
        }
    }
    if (custosd.empty()) {
        char self[PATH_MAX] = {};
        const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
        std::string d = n > 0 ? std::string(self, static_cast<std::size_t>(n)) : ".";
        d = d.substr(0, d.rfind('/'));
        custosd = d + "/../src/custosd";
    }
    const long long bytes = quick ? (16LL << 20) : (100LL << 20);
    const int reps = quick ? 3 : 5;
    custos::bench::print_header("capture");
    std::printf("custos: custosd, one service `yes LINE | head -c %lld` with output = file "
                "(16 MiB files, 16 kept: room for all of it), start to the service stopped\n",
                bytes);
    std::printf("baseline: the same producer into `cat > file`; CPU: cat's own\n");
    char root[] = "/tmp/custos-bench-capture.XXXXXX";
    if (::mkdtemp(root) == nullptr) {
        std::perror("capture: mkdtemp");
        return 1;
    }
    std::vector<double> c_rate, c_cpu, c_kept, b_rate, b_cpu;
    bool ok = true;
    for (int rep = 0; rep < reps; ++rep) {
        const std::string cdir = std::string(root) + "/c" + std::to_string(rep);
        const std::string bdir = std::string(root) + "/b" + std::to_string(rep);
        ::mkdir(cdir.c_str(), 0750);
        ::mkdir(bdir.c_str(), 0750);
        const result c = run_custosd(custosd.c_str(), cdir, bytes);
        const result b = run_cat(bdir, bytes);
        remove_tree(cdir);
        remove_tree(bdir);
        ok = ok && c.ok && b.ok;
        c_rate.push_back(c.mb_per_s);
        c_cpu.push_back(c.cpu_ms_per_mb);
        c_kept.push_back(100.0 * c.kept);
        b_rate.push_back(b.mb_per_s);
        b_cpu.push_back(b.cpu_ms_per_mb);
    }
    ::rmdir(root);
    const auto cr = custos::bench::summarize(c_rate.data(), c_rate.size());
    const auto cc = custos::bench::summarize(c_cpu.data(), c_cpu.size());
    const auto ck = custos::bench::summarize(c_kept.data(), c_kept.size());
    const auto br = custos::bench::summarize(b_rate.data(), b_rate.size());
    const auto bc = custos::bench::summarize(b_cpu.data(), b_cpu.size());
    std::printf("  custosd capture  %.1f MB/s [%.1f..%.1f], custosd CPU %.2f ms/MB [%.2f..%.2f]\n",
                cr.median, cr.lo, cr.hi, cc.median, cc.lo, cc.hi);
    std::printf("  custosd kept %.1f%% of the lines in the files [%.1f..%.1f] (the rest "
                "dropped and counted: the disk's writes did not keep up)\n",
                ck.median, ck.lo, ck.hi);
    std::printf("  cat > file       %.1f MB/s [%.1f..%.1f], cat CPU %.2f ms/MB [%.2f..%.2f]\n",
                br.median, br.lo, br.hi, bc.median, bc.lo, bc.hi);
    std::printf("  ratio (custosd/cat): throughput %.2fx, CPU per MB %.2fx\n",
                cr.median / br.median, cc.median / bc.median);
    if (!ok) {
        std::printf("note: a run did not finish (see stderr)\n");
        return 1;
    }
    return 0;
}
