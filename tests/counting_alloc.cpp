// The counting allocator (see counting_alloc.hpp).
//
// Kept in a translation unit of its own on purpose: with the definition of a
// global operator delete that does not release memory visible in the same
// TU, clang 14 -O2 miscompiled std::thread's deleting destructor (the call
// after the base destructor was dropped as unreachable; the thread crashed).
#include "counting_alloc.hpp"

#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {

constexpr std::size_t arena_size = 64u << 20;
constexpr std::size_t header = 16; // holds the block size; keeps 16-byte alignment
alignas(64) unsigned char arena[arena_size];
std::atomic<std::size_t> arena_used{0};
std::atomic<std::uint64_t> allocations{0};

void* bump(std::size_t size, std::size_t align) noexcept {
    if (align < header) {
        align = header;
    }
    allocations.fetch_add(1, std::memory_order_relaxed);
    std::size_t need = size + header + align;
    std::size_t start = arena_used.fetch_add(need, std::memory_order_relaxed);
    if (start + need > arena_size) {
        return nullptr;
    }
    auto base = reinterpret_cast<std::uintptr_t>(arena + start) + header;
    std::uintptr_t p = (base + align - 1) & ~(std::uintptr_t{align} - 1);
    std::memcpy(reinterpret_cast<void*>(p - header), &size, sizeof size);
    return reinterpret_cast<void*>(p);
}

bool ours(const void* p) noexcept {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    auto lo = reinterpret_cast<std::uintptr_t>(arena);
    return a >= lo + header && a < lo + arena_size;
}

std::size_t block_size(void* p) noexcept {
    std::size_t s;
    std::memcpy(&s, static_cast<unsigned char*>(p) - header, sizeof s);
    return s;
}

} // namespace

std::uint64_t custos_test::allocation_count() noexcept {
    return allocations.load(std::memory_order_relaxed);
}

extern "C" {
void* malloc(std::size_t n) {
    return bump(n, header);
}
void free(void*) {}
void* calloc(std::size_t n, std::size_t m) {
    if (m != 0 && n > SIZE_MAX / m) {
        return nullptr;
    }
    void* p = bump(n * m, header);
    if (p != nullptr) {
        std::memset(p, 0, n * m);
    }
    return p;
}
void* realloc(void* old, std::size_t n) {
    void* p = bump(n, header);
    // A block from before this allocator was in charge (the dynamic loader's
    // early allocations) has no size header: copy nothing rather than guess.
    if (p != nullptr && old != nullptr && ours(old)) {
        std::size_t s = block_size(old);
        std::memcpy(p, old, s < n ? s : n);
    }
    return p;
}
void* memalign(std::size_t align, std::size_t n) {
    return bump(n, align);
}
void* aligned_alloc(std::size_t align, std::size_t n) {
    return bump(n, align);
}
int posix_memalign(void** out, std::size_t align, std::size_t n) {
    *out = bump(n, align);
    return *out != nullptr ? 0 : ENOMEM;
}
void* valloc(std::size_t n) {
    return bump(n, 4096);
}
void* pvalloc(std::size_t n) {
    return bump((n + 4095) & ~std::size_t{4095}, 4096);
}
std::size_t malloc_usable_size(void* p) {
    return p != nullptr && ours(p) ? block_size(p) : 0;
}
}

// operator new ends in malloc in libstdc++, but say so explicitly: the count
// must not depend on how the C++ runtime was built.
void* operator new(std::size_t n) {
    return bump(n, header);
}
void* operator new[](std::size_t n) {
    return bump(n, header);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    return bump(n, header);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return bump(n, header);
}
void operator delete(void*) noexcept {}
void operator delete[](void*) noexcept {}
void operator delete(void*, std::size_t) noexcept {}
void operator delete[](void*, std::size_t) noexcept {}

bool custos_test::counter_works(std::uint64_t after) noexcept {
    // Every call goes through a volatile pointer: a compiler may leave out
    // an allocation it can see is unused (clang does, for malloc() and for
    // new-expressions), and with free() defined in this translation unit,
    // clang 14 at -O1 rewrote a direct free() of the pointer from the
    // volatile call into a store to an undefined address (its mark of
    // undefined behaviour): the function ended after the second call and
    // ran into the next one. Through pointers the releases are opaque calls
    // like the allocations; the count is still read between them.
    void* (*volatile c_alloc)(std::size_t) = &std::malloc;
    void* (*volatile cxx_alloc)(std::size_t, const std::nothrow_t&) noexcept = &::operator new;
    void* canary = c_alloc(24);
    void* canary2 = cxx_alloc(16, std::nothrow);
    const bool ok = canary != nullptr && canary2 != nullptr && allocation_count() >= after + 2;
    void (*volatile c_release)(void*) = &std::free;
    void (*volatile cxx_release)(void*) noexcept = &::operator delete;
    c_release(canary);
    cxx_release(canary2);
    return ok;
}
