// A pool of T with its capacity chosen at init, addressed by {index,
// generation} handles. Handles cross boundaries where a pointer would be
// unsafe (epoll's user data, later the control plane): when a slot is freed
// its generation changes, so a stale handle is detected instead of aliasing
// the slot's next occupant.
//
// reserve() takes the memory once, at init, and may fail; acquire/release
// never allocate. When the pool is full, try_acquire() says so and the caller
// applies its own defined behaviour (an error or a counted drop).
#pragma once

#include <cstdint>
#include <memory>
#include <new>

#include "core/assert.hpp"

namespace custos {

struct slot_handle {
    std::uint32_t index = 0;
    std::uint32_t generation = 0; // 0 is never issued: a default handle is invalid

    bool valid() const noexcept { return generation != 0; }
    std::uint64_t pack() const noexcept {
        return (std::uint64_t{generation} << 32) | std::uint64_t{index};
    }
    static slot_handle unpack(std::uint64_t v) noexcept {
        return {static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v >> 32)};
    }
    friend bool operator==(slot_handle, slot_handle) = default;
};

template <class T>
class slot_pool {
public:
    slot_pool() = default;
    slot_pool(const slot_pool&) = delete;
    slot_pool& operator=(const slot_pool&) = delete;

    // Takes storage for `capacity` elements. Init only; false when out of
    // memory or when called twice.
    [[nodiscard]] bool reserve(std::uint32_t capacity) noexcept {
        if (slots_ != nullptr || capacity == 0) {
            return false;
        }
        slots_.reset(new (std::nothrow) slot[capacity]);
        if (slots_ == nullptr) {
            return false;
        }
        capacity_ = capacity;
        for (std::uint32_t i = 0; i < capacity; ++i) {
            slots_[i].next_free = i + 1;
        }
        free_head_ = 0;
        return true;
    }

    std::uint32_t capacity() const noexcept { return capacity_; }
    std::uint32_t in_use() const noexcept { return in_use_; }

    // A free slot, reset to a default T; an invalid handle when the pool is full.
    [[nodiscard]] slot_handle try_acquire() noexcept {
        if (free_head_ >= capacity_) {
            return {};
        }
        std::uint32_t i = free_head_;
        slot& s = slots_[i];
        free_head_ = s.next_free;
        s.used = true;
        // Fresh state for the new occupant (T may not be assignable).
        s.value.~T();
        ::new (static_cast<void*>(&s.value)) T();
        ++in_use_;
        return {i, s.generation};
    }

    // The element a handle names, or nullptr when the handle is stale or invalid.
    T* get(slot_handle h) noexcept {
        if (h.index >= capacity_) {
            return nullptr;
        }
        slot& s = slots_[h.index];
        return s.used && s.generation == h.generation ? &s.value : nullptr;
    }

    // The element in use at `index` (for maps that store bare indices), or
    // nullptr when that slot is free.
    T* get_by_index(std::uint32_t index) noexcept {
        return index < capacity_ && slots_[index].used ? &slots_[index].value : nullptr;
    }

    // Frees the slot; every handle to it becomes stale.
    void release(slot_handle h) noexcept {
        CUSTOS_ASSERT(get(h) != nullptr);
        slot& s = slots_[h.index];
        s.used = false;
        // Skip 0 on wrap-around so that no live slot has an invalid handle.
        s.generation = s.generation == UINT32_MAX ? 1 : s.generation + 1;
        s.next_free = free_head_;
        free_head_ = h.index;
        --in_use_;
    }

private:
    struct slot {
        T value{};
        std::uint32_t generation = 1;
        std::uint32_t next_free = 0;
        bool used = false;
    };

    std::unique_ptr<slot[]> slots_;
    std::uint32_t capacity_ = 0;
    std::uint32_t free_head_ = 0;
    std::uint32_t in_use_ = 0;
};

} // namespace custos
