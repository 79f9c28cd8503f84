// The test process's resident set, for checks that memory stays flat.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace custos_test {

// VmRSS from /proc/self/status, in KiB (0 when it cannot be read).
inline long rss_kib() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr) {
        return 0;
    }
    char line[256];
    long kib = 0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::strncmp(line, "VmRSS:", 6) == 0) {
            kib = std::strtol(line + 6, nullptr, 10);
        }
    }
    std::fclose(f);
    return kib;
}

} // namespace custos_test
