// What the key setters of keys.cpp and keys_log.cpp share (private to
// keys*.cpp; the tables' interface is keys.hpp).
#pragma once

#include "custosd/keys.hpp"
#include "table/values.hpp"

namespace custos::cfg {

// Stores a parsed value in `to`, or refuses it at the key's line
// (key_context::refuse) and leaves `to` as it was: whether it stored.
template <class T>
bool store(key_context& c, const tbl::value_result<T>& r, T& to) noexcept {
    if (!r) {
        c.refuse(r.error());
        return false;
    }
    to = *r;
    return true;
}

} // namespace custos::cfg
