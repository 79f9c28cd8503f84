// A bump allocator over one block taken at init: where the runtime keeps
// everything whose size is only known once the table is read (service
// records, argv and envp arrays, names). Nothing is freed one by one; the
// whole block goes when the arena does.
//
// Sizing is two-pass: run the same layout code against a counting arena
// (reserve(0) then only measure()), then reserve() the total and run it
// again for real. Exhaustion is reported (nullptr), never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace custos {

class arena {
public:
    arena() = default;
    // Over memory its owner keeps (a service slot's exec room, laid out
    // again at each reload): never freed, never grown. Offsets align
    // relative to `base`, which the owner aligns to max_align_t.
    arena(void* base, std::size_t cap) noexcept
        : base_(static_cast<std::byte*>(base)), cap_(base != nullptr ? cap : 0), fixed_(true),
          borrowed_(true) {}
    ~arena() {
        if (!borrowed_) {
            ::operator delete(base_, std::nothrow);
        }
    }
    arena(const arena&) = delete;
    arena& operator=(const arena&) = delete;

    // Takes `bytes` of memory (frees an earlier block). False when the
    // allocation failed.
    // Once fix()ed, the block is kept: a reserve() it can hold starts it
    // over (nothing zeroed until take()), a larger one fails, and neither
    // allocates.
    [[nodiscard]] bool reserve(std::size_t bytes) noexcept {
        if (fixed_) {
            used_ = 0;
            needed_ = 0;
            return bytes <= cap_;
        }
        ::operator delete(base_, std::nothrow);
        base_ = static_cast<std::byte*>(::operator new(bytes == 0 ? 1 : bytes, std::nothrow));
        cap_ = base_ != nullptr ? bytes : 0;
        used_ = 0;
        needed_ = 0;
        return base_ != nullptr;
    }

    // `bytes` aligned to `align` (a power of two), zeroed; nullptr when the
    // block is exhausted (needed() still grows, so a sizing pass can use it).
    void* take(std::size_t bytes, std::size_t align = alignof(std::max_align_t)) noexcept {
        void* p = take_unzeroed(bytes, align);
        if (p != nullptr) {
            std::memset(p, 0, bytes);
        }
        return p;
    }

    // The same, not zeroed: for buffers always written before they are
    // read, whose pages then stay out of the resident set until first used.
    void* take_unzeroed(std::size_t bytes, std::size_t align = alignof(std::max_align_t)) noexcept {
        std::size_t at = (needed_ + align - 1) & ~(align - 1);
        needed_ = at + bytes;
        if (base_ == nullptr || needed_ > cap_) {
            return nullptr;
        }
        used_ = needed_;
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
    std::size_t used() const noexcept { return used_; }
    std::size_t capacity() const noexcept { return cap_; }
    // From now on reserve() never allocates (see there): for memory laid
    // out again after init (a reload's plan).
    void fix() noexcept { fixed_ = true; }
    bool fixed() const noexcept { return fixed_; }
    // Exchanges the blocks and their state (a reload's plan becomes the
    // current one).
    void swap(arena& o) noexcept {
        std::swap(base_, o.base_);
        std::swap(cap_, o.cap_);
        std::swap(used_, o.used_);
        std::swap(needed_, o.needed_);
        std::swap(fixed_, o.fixed_);
        std::swap(borrowed_, o.borrowed_);
    }

private:
    std::byte* base_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t used_ = 0;
    std::size_t needed_ = 0;
    bool fixed_ = false;
    bool borrowed_ = false; // the owner's memory: not freed here
};

} // namespace custos
