// The lookup of a key in a section's table (keys.hpp), and the did-you-mean
// for a key that is not there.
#include <cstddef>
#include <string_view>

#include "custosd/keys.hpp"

namespace custos::cfg {

namespace {

// Optimal string alignment distance (a transposition counts as one edit), for
// "did you mean". Only for keys of at most 32 bytes.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    constexpr std::size_t n = 33;
    std::size_t d[n][n];
    for (std::size_t i = 0; i <= a.size(); ++i) {
        d[i][0] = i;
    }
    for (std::size_t j = 0; j <= b.size(); ++j) {
        d[0][j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            std::size_t best = d[i - 1][j] + 1;
            best = d[i][j - 1] + 1 < best ? d[i][j - 1] + 1 : best;
            best = d[i - 1][j - 1] + cost < best ? d[i - 1][j - 1] + cost : best;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best) {
                best = d[i - 2][j - 2] + 1;
            }
            d[i][j] = best;
        }
    }
    return d[a.size()][b.size()];
}

} // namespace

const key_def* find_key(const section_def& s, std::string_view key) noexcept {
    for (const key_def& k : s.keys) {
        if (key == k.name) {
            return &k;
        }
    }
    return nullptr;
}

const char* suggest_key(const section_def& s, std::string_view key) noexcept {
    if (key.size() > 32) {
        return nullptr;
    }
    const char* best = nullptr;
    std::size_t best_d = (key.size() >= 4 ? 2 : 1) + 1; // farther is no hint
    for (const key_def& k : s.keys) {
        std::string_view name = k.name;
        if ((k.flags & key_retired) != 0 || name.size() > 32) {
            continue;
        }
        if (std::size_t d = edit_distance(key, name); d < best_d) {
            best = k.name;
            best_d = d;
        }
    }
    return best;
}

} // namespace custos::cfg
