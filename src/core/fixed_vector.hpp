// A vector with its capacity fixed at compile time and its storage inline:
// no allocation, ever. Growth past the capacity is refused (try_push_back
// returns false), never silent. Only the operations custos uses exist.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "core/assert.hpp"

namespace custos {

template <class T, std::size_t N>
class fixed_vector {
    static_assert(N > 0, "a fixed_vector needs room for at least one element");

public:
    fixed_vector() = default;
    fixed_vector(const fixed_vector&) = delete;
    fixed_vector& operator=(const fixed_vector&) = delete;
    ~fixed_vector() { clear(); }

    static constexpr std::size_t capacity() noexcept { return N; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    bool full() const noexcept { return size_ == N; }

    // Constructs an element at the end; false (and nothing constructed) when full.
    template <class... Args>
    [[nodiscard]] bool try_emplace_back(Args&&... args) noexcept {
        if (full()) {
            return false;
        }
        ::new (static_cast<void*>(slot(size_))) T(std::forward<Args>(args)...);
        ++size_;
        return true;
    }
    [[nodiscard]] bool try_push_back(const T& v) noexcept { return try_emplace_back(v); }

    void pop_back() noexcept {
        CUSTOS_ASSERT(size_ > 0);
        --size_;
        slot(size_)->~T();
    }

    void clear() noexcept {
        while (size_ > 0) {
            pop_back();
        }
    }

    T& operator[](std::size_t i) noexcept {
        CUSTOS_ASSERT(i < size_);
        return *slot(i);
    }
    const T& operator[](std::size_t i) const noexcept {
        CUSTOS_ASSERT(i < size_);
        return *slot(i);
    }

    // Iterators are plain addresses in the storage; std::launder is only
    // applied to slots that hold a live element (operator[]).
    T* begin() noexcept { return base(); }
    T* end() noexcept { return base() + size_; }
    const T* begin() const noexcept { return base(); }
    const T* end() const noexcept { return base() + size_; }

private:
    // Through void*: storage_ is alignas(T), which -Wcast-align cannot see
    // (it warns on strict-alignment targets such as armhf).
    T* base() noexcept { return static_cast<T*>(static_cast<void*>(storage_)); }
    const T* base() const noexcept {
        return static_cast<const T*>(static_cast<const void*>(storage_));
    }
    T* slot(std::size_t i) noexcept { return std::launder(base() + i); }
    const T* slot(std::size_t i) const noexcept { return std::launder(base() + i); }

    alignas(T) unsigned char storage_[N * sizeof(T)];
    std::size_t size_ = 0;
};

} // namespace custos
