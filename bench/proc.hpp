// /proc readers shared by the benchmarks that watch another process
// (footprint, probe_idle): CPU time and scheduling counters summed over its
// threads.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <cstdio>
#include <cstring>

namespace custos::bench {

// CPU and scheduling counters summed over a process's threads.
struct cpu_sample {
    long long ticks = -1;  // utime + stime, all threads
    long long run_ns = -1; // schedstat, all threads
    long long vol = 0, invol = 0;
    int tasks = 0;
};

inline cpu_sample sample_cpu(pid_t pid) {
    cpu_sample s;
    char path[96], line[512];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (std::FILE* f = std::fopen(path, "re")) {
        const char* p = std::fgets(line, sizeof line, f) ? std::strrchr(line, ')') : nullptr;
        unsigned long long ut = 0, st = 0;
        // After the comm: state, then fields 4..13, then utime and stime.
        if (p != nullptr &&
            std::sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &ut, &st) ==
                2) {
            s.ticks = static_cast<long long>(ut + st);
        }
        std::fclose(f);
    }
    std::snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR* d = opendir(path);
    while (dirent* e = d != nullptr ? readdir(d) : nullptr) {
        if (e->d_name[0] == '.') {
            continue;
        }
        ++s.tasks;
        std::snprintf(path, sizeof path, "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
        if (std::FILE* f = std::fopen(path, "re")) {
            long long ns = 0;
            if (std::fscanf(f, "%lld", &ns) == 1) {
                s.run_ns = (s.run_ns < 0 ? 0 : s.run_ns) + ns;
            }
            std::fclose(f);
        }
        std::snprintf(path, sizeof path, "/proc/%d/task/%.16s/status", pid, e->d_name);
        if (std::FILE* f = std::fopen(path, "re")) {
            long long v = 0;
            while (std::fgets(line, sizeof line, f) != nullptr) {
                if (std::sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1) {
                    s.vol += v;
                } else if (std::sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1) {
                    s.invol += v;
                }
            }
            std::fclose(f);
        }
    }
    if (d != nullptr) {
        closedir(d);
    }
    return s;
}

} // namespace custos::bench
