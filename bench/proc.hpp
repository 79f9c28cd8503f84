// Shared by the benchmarks that run and watch another process (footprint,
// probe_idle): starting it with its stderr on a pipe, and reading CPU time
// and scheduling counters summed over its threads from /proc.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

extern char** environ;

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

// Starts argv (argv[0] a path) with stdin/stdout on /dev/null and stderr on
// a pipe whose read end goes to *err_fd. Returns posix_spawn's error (0: ok;
// -1: no pipe); on failure *pid is -1.
inline int spawn_stderr_piped(const char* const* argv, pid_t* pid, int* err_fd) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        *pid = -1;
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    int rc = posix_spawn(pid, argv[0], &fa, nullptr, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    *err_fd = p[0];
    if (rc != 0) {
        *pid = -1;
    }
    return rc;
}

} // namespace custos::bench
