// Helpers shared by the benchmark programs under bench/: an allocation
// counter, a fixed-seed random generator, summaries (median, spread,
// percentiles) and the header line every benchmark prints.
//
// Each benchmark is one translation unit that includes this header once: the
// replaced global operator new/delete below are ordinary (non-inline)
// definitions, as the standard requires of replacement functions, so a second
// translation unit including this header would define them twice.
//
// The counting operators forward to malloc/free; a failed allocation aborts
// (there are no exceptions to throw). Only operator new is counted: the
// question the benchmarks ask is whether the code under test allocates, and
// everything in custos and in the standard containers allocates through it.
#pragma once

#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/prng.hpp"

#ifndef CUSTOS_BENCH_BUILDTYPE
#define CUSTOS_BENCH_BUILDTYPE "unknown"
#endif

namespace custos::bench {

// Every operator new and new[] since the program started. Relaxed: the
// benchmarks read it from the thread that allocates; the atomic only keeps a
// helper thread (none today) from making the count a data race.
inline std::atomic<std::uint64_t> allocations{0};

inline std::uint64_t allocation_count() noexcept {
    return allocations.load(std::memory_order_relaxed);
}

inline void* counted_alloc(std::size_t n, std::size_t align) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (n == 0) {
        n = 1;
    }
    if (align <= alignof(std::max_align_t)) {
        return std::malloc(n);
    }
    void* p = nullptr;
    return posix_memalign(&p, align, n) == 0 ? p : nullptr;
}

inline void* counted_alloc_or_abort(std::size_t n, std::size_t align) noexcept {
    void* p = counted_alloc(n, align);
    if (p == nullptr) {
        std::fprintf(stderr, "bench: out of memory (%zu bytes)\n", n);
        std::abort();
    }
    return p;
}

// custos's own generator (core/prng.hpp): a fixed seed gives the same
// sequence on every run and target.
class rng {
public:
    explicit rng(std::uint64_t seed) noexcept : p_(seed) {}
    std::uint64_t next() noexcept { return p_.next(); }
    // Uniform in [lo, hi]; the modulo bias is irrelevant at these ranges.
    std::uint64_t between(std::uint64_t lo, std::uint64_t hi) noexcept {
        return lo + next() % (hi - lo + 1);
    }

private:
    prng p_;
};

struct summary {
    double median = 0;
    double lo = 0;
    double hi = 0;
};

// Sorts `v` in place.
inline summary summarize(double* v, std::size_t n) noexcept {
    summary s;
    if (n == 0) {
        return s;
    }
    std::sort(v, v + n);
    s.lo = v[0];
    s.hi = v[n - 1];
    s.median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return s;
}

// Nearest-rank percentile of an ascending array, p in (0, 100].
inline double percentile(const double* sorted, std::size_t n, double p) noexcept {
    if (n == 0) {
        return 0;
    }
    auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(n) + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    return sorted[(rank > n ? n : rank) - 1];
}

inline bool has_flag(int argc, char** argv, const char* flag) noexcept {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], flag) == 0) {
            return true;
        }
    }
    return false;
}

// The value of `--name=value`, or nullptr.
inline const char* flag_value(int argc, char** argv, const char* name) noexcept {
    std::size_t len = std::strlen(name);
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
            return argv[i] + len + 1;
        }
    }
    return nullptr;
}

// "custos bench <name>: kernel 6.1.0 x86_64, build release (NDEBUG), g++ 12.2.0"
inline void print_header(const char* name) noexcept {
    utsname u{};
    if (uname(&u) != 0) {
        std::strcpy(u.release, "?");
        std::strcpy(u.machine, "?");
    }
#ifdef NDEBUG
    const char* ndebug = "NDEBUG";
#else
    const char* ndebug = "asserts on";
#endif
#if defined(__clang__)
    const char* compiler = "clang++ " __clang_version__;
#elif defined(__GNUC__)
    const char* compiler = "g++ " __VERSION__;
#else
    const char* compiler = "unknown compiler";
#endif
    std::printf("custos bench %s: kernel %s %s, build %s (%s), %s\n", name, u.release, u.machine,
                CUSTOS_BENCH_BUILDTYPE, ndebug, compiler);
}

} // namespace custos::bench

// ---- counting replacements of the global allocation functions --------------

void* operator new(std::size_t n) {
    return custos::bench::counted_alloc_or_abort(n, 0);
}
void* operator new[](std::size_t n) {
    return custos::bench::counted_alloc_or_abort(n, 0);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    return custos::bench::counted_alloc(n, 0);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return custos::bench::counted_alloc(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return custos::bench::counted_alloc_or_abort(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return custos::bench::counted_alloc_or_abort(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return custos::bench::counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return custos::bench::counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    std::free(p);
}
