// A fixed-capacity map from small non-negative integer keys (file
// descriptors) to 32-bit values: open addressing with linear probing in a
// power-of-two table sized at init to at least twice the capacity, deletion
// by backward shift (no tombstones, so lookups stay short however long the
// map lives). O(1) expected; never allocates after reserve().
#pragma once

#include <cstdint>
#include <memory>
#include <new>

namespace custos {

class index_map {
public:
    index_map() = default;
    index_map(const index_map&) = delete;
    index_map& operator=(const index_map&) = delete;

    static constexpr std::uint32_t max_capacity = 1u << 30;

    // Room for `capacity` keys (at most max_capacity). Init only; false when
    // out of memory or too large.
    [[nodiscard]] bool reserve(std::uint32_t capacity) noexcept {
        if (capacity > max_capacity) {
            return false;
        }
        std::uint32_t size = 4;
        std::uint32_t bits = 2;
        while (size < 2 * capacity) {
            size *= 2;
            ++bits;
        }
        table_.reset(new (std::nothrow) entry[size]);
        if (table_ == nullptr) {
            return false;
        }
        mask_ = size - 1;
        shift_ = 32 - bits;
        capacity_ = capacity;
        count_ = 0;
        return true;
    }

    std::uint32_t size() const noexcept { return count_; }
    std::uint32_t capacity() const noexcept { return capacity_; }

    // Pointer to the value for `key`, or nullptr.
    std::uint32_t* find(std::uint32_t key) noexcept {
        if (table_ == nullptr) {
            return nullptr;
        }
        for (std::uint32_t i = hash(key);; i = (i + 1) & mask_) {
            entry& e = table_[i];
            if (!e.used) {
                return nullptr;
            }
            if (e.key == key) {
                return &e.value;
            }
        }
    }

    // Inserts key → value. False when the key is present or the map is full.
    [[nodiscard]] bool try_insert(std::uint32_t key, std::uint32_t value) noexcept {
        if (table_ == nullptr || count_ >= capacity_) {
            return false;
        }
        for (std::uint32_t i = hash(key);; i = (i + 1) & mask_) {
            entry& e = table_[i];
            if (!e.used) {
                e = {key, value, true};
                ++count_;
                return true;
            }
            if (e.key == key) {
                return false;
            }
        }
    }

    // Removes `key`; false when absent.
    bool erase(std::uint32_t key) noexcept {
        if (table_ == nullptr) {
            return false;
        }
        std::uint32_t i = hash(key);
        for (;; i = (i + 1) & mask_) {
            if (!table_[i].used) {
                return false;
            }
            if (table_[i].key == key) {
                break;
            }
        }
        // Backward shift: pull later members of the probe run into the hole
        // when their home slot does not lie cyclically in (hole, j].
        std::uint32_t hole = i;
        for (std::uint32_t j = (hole + 1) & mask_; table_[j].used; j = (j + 1) & mask_) {
            std::uint32_t home = hash(table_[j].key);
            bool home_in_range =
                hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
            if (!home_in_range) {
                table_[hole] = table_[j];
                hole = j;
            }
        }
        table_[hole].used = false;
        --count_;
        return true;
    }

private:
    struct entry {
        std::uint32_t key = 0;
        std::uint32_t value = 0;
        bool used = false;
    };

    std::uint32_t hash(std::uint32_t key) const noexcept {
        // Fibonacci hashing: the top bits of key * 2^32/phi spread consecutive
        // descriptors across the table.
        return (key * 2654435769u) >> shift_;
    }

    std::unique_ptr<entry[]> table_;
    std::uint32_t mask_ = 0;
    std::uint32_t shift_ = 32;
    std::uint32_t capacity_ = 0;
    std::uint32_t count_ = 0;
};

} // namespace custos
