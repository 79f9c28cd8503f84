// A bump allocator over memory its owner keeps: a service slot's exec room
// (process::host), refilled at each reload. It has the arena's take, copy
// and make_array, so build_argv and build_env lay out into either.
//
// A slab without memory only counts (every take fails, needed() grows):
// the sizing pass of a definition, to decide whether it fits a room before
// the room is touched. Offsets are aligned relative to the base, which the
// owner aligns to max_align_t, so a count and a real layout agree.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <string_view>

namespace custos::process {

class slab {
public:
    slab() = default;
    slab(void* base, std::size_t cap) noexcept : base_(static_cast<char*>(base)), cap_(cap) {}

    // `bytes` aligned to `align` (a power of two, at most max_align_t's),
    // zeroed; nullptr when it does not fit (needed() still grows).
    void* take(std::size_t bytes, std::size_t align = alignof(std::max_align_t)) noexcept {
        const std::size_t at = (needed_ + align - 1) & ~(align - 1);
        needed_ = at + bytes;
        if (base_ == nullptr || needed_ > cap_) {
            return nullptr;
        }
        std::memset(base_ + at, 0, bytes);
        return base_ + at;
    }

    template <class T>
    T* make_array(std::size_t n) noexcept {
        void* p = take(sizeof(T) * n, alignof(T));
        if (p == nullptr) {
            return nullptr;
        }
        T* arr = static_cast<T*>(p);
        for (std::size_t i = 0; i < n; ++i) {
            ::new (static_cast<void*>(arr + i)) T();
        }
        return arr;
    }

    // A NUL-terminated copy of `s`.
    char* copy(std::string_view s) noexcept {
        auto* p = static_cast<char*>(take(s.size() + 1, 1));
        if (p != nullptr && !s.empty()) {
            std::memcpy(p, s.data(), s.size());
        }
        return p;
    }

    // Bytes the layout so far needs, whether or not they fitted.
    std::size_t needed() const noexcept { return needed_; }
    std::size_t capacity() const noexcept { return cap_; }

private:
    char* base_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t needed_ = 0;
};

} // namespace custos::process
