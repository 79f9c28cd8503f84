// The pruner's decision (decide.hpp): classification and the rules.
#include "prune/decide.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

namespace custos::prune {
namespace {

constexpr std::int64_t ns_per_s = 1000000000;

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

// `n` digits of `s` from `at`, as a number; false unless all are digits.
bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) noexcept {
    if (at + n > s.size()) {
        return false;
    }
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        char c = s[at + i];
        if (!is_digit(c)) {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

struct civil {
    int year = -1, month = -1, day = -1, hour = 0, minute = 0, second = 0;
};

// Matches the whole pattern at the start of `s`; false on a mismatch or an
// unknown conversion.
bool match_at(std::string_view pattern, std::string_view s, civil& t) noexcept {
    std::size_t at = 0;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        char p = pattern[i];
        if (p != '%') {
            if (at >= s.size() || s[at] != p) {
                return false;
            }
            ++at;
            continue;
        }
        if (++i >= pattern.size()) {
            return false;
        }
        int* field = nullptr;
        std::size_t width = 2;
        switch (pattern[i]) {
        case 'Y':
            field = &t.year;
            width = 4;
            break;
        case 'm':
            field = &t.month;
            break;
        case 'd':
            field = &t.day;
            break;
        case 'H':
            field = &t.hour;
            break;
        case 'M':
            field = &t.minute;
            break;
        case 'S':
            field = &t.second;
            break;
        case '%':
            if (at >= s.size() || s[at] != '%') {
                return false;
            }
            ++at;
            continue;
        default:
            return false;
        }
        if (!digits(s, at, width, *field)) {
            return false;
        }
        at += width;
    }
    return true;
}

// The time in ns since 1970 (UTC); false when a field is out of range or
// the result does not fit an int64.
bool to_ns(const civil& t, std::int64_t& out) noexcept {
    if (t.year < 0 || t.month < 1 || t.day < 1 || t.hour > 23 || t.minute > 59 || t.second > 60) {
        return false;
    }
    const std::chrono::year_month_day ymd{std::chrono::year{t.year},
                                          std::chrono::month{static_cast<unsigned>(t.month)},
                                          std::chrono::day{static_cast<unsigned>(t.day)}};
    if (!ymd.ok()) {
        return false;
    }
    const std::int64_t days = std::chrono::sys_days{ymd}.time_since_epoch().count();
    const std::int64_t secs = days * 86400 + t.hour * 3600 + t.minute * 60 + t.second;
    return !__builtin_mul_overflow(secs, ns_per_s, &out);
}

bool is_protected(const entry& e, const moment& now) noexcept {
    if (e.open) {
        return true;
    }
    return std::any_of(now.protected_names.begin(), now.protected_names.end(),
                       [&e](std::string_view n) { return n == e.name; });
}

std::uint64_t add_sat(std::uint64_t a, std::uint64_t b) noexcept {
    std::uint64_t r = 0;
    return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<std::uint64_t>::max() : r;
}

} // namespace

Result<void> validate(const PruneSpec& spec) noexcept {
    if (spec.dir.empty() || spec.dir.front() != '/') {
        return fail(Reason::invalid_argument, 0, "prune dir: not an absolute path");
    }
    if (spec.glob.empty() || spec.glob.size() > 255 ||
        spec.glob.find('/') != std::string_view::npos) {
        return fail(Reason::invalid_argument, 0, "prune glob: empty, over 255 bytes or with '/'");
    }
    if (spec.max_files == 0) {
        return fail(Reason::invalid_argument, 0, "prune max_files: 0");
    }
    if (spec.order != PruneOrder::name_time) {
        return {};
    }
    unsigned seen = 0;
    const std::string_view p = spec.time_pattern;
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] != '%') {
            continue;
        }
        if (++i >= p.size()) {
            return fail(Reason::invalid_argument, 0, "prune time_pattern: ends in %");
        }
        constexpr std::string_view convs = "YmdHMS";
        const std::size_t k = convs.find(p[i]);
        if (p[i] == '%') {
            continue;
        }
        if (k == std::string_view::npos) {
            return fail(Reason::invalid_argument, 0,
                        "prune time_pattern: only %Y %m %d %H %M %S %% are known");
        }
        if ((seen & (1U << k)) != 0) {
            return fail(Reason::invalid_argument, 0, "prune time_pattern: a conversion twice");
        }
        seen |= 1U << k;
    }
    if ((seen & 7U) != 7U) {
        return fail(Reason::invalid_argument, 0, "prune time_pattern: needs %Y, %m and %d");
    }
    return {};
}

bool parse_name_time(std::string_view pattern, std::string_view name,
                     std::int64_t& out_ns) noexcept {
    for (std::size_t at = 0; at < name.size(); ++at) {
        civil t;
        std::int64_t ns = 0;
        if (match_at(pattern, name.substr(at), t) && to_ns(t, ns)) {
            out_ns = ns;
            return true;
        }
    }
    return false;
}

bool parse_seq(std::string_view prefix, std::string_view name, std::uint64_t& out) noexcept {
    std::size_t from = 0;
    while (from <= name.size()) {
        const std::size_t at = name.find(prefix, from);
        if (at == std::string_view::npos) {
            return false;
        }
        std::size_t i = at + prefix.size();
        if (i < name.size() && is_digit(name[i])) {
            std::uint64_t v = 0;
            for (; i < name.size() && is_digit(name[i]); ++i) {
                if (__builtin_mul_overflow(v, std::uint64_t{10}, &v) ||
                    __builtin_add_overflow(v, std::uint64_t(name[i] - '0'), &v)) {
                    return false;
                }
            }
            out = v;
            return true;
        }
        if (prefix.empty()) {
            return false; // only at the start of the name
        }
        from = at + 1;
    }
    return false;
}

void classify(const PruneSpec& spec, entry& e, std::int64_t trust_floor_ns) noexcept {
    e.classified = false;
    e.trusted_time = false;
    e.time_ns = 0;
    e.seq = 0;
    switch (spec.order) {
    case PruneOrder::mtime:
        e.classified = true;
        e.time_ns = e.mtime_ns;
        break;
    case PruneOrder::name_time:
        e.classified = parse_name_time(spec.time_pattern, e.name, e.time_ns);
        break;
    case PruneOrder::seq:
        e.classified = parse_seq(spec.seq_prefix, e.name, e.seq);
        e.time_ns = e.mtime_ns;
        break;
    }
    e.trusted_time = e.classified && e.time_ns >= trust_floor_ns;
}

Result<std::uint32_t> decide(const PruneSpec& spec, std::span<const entry> entries,
                             std::span<std::uint32_t> order, const moment& now,
                             std::span<decision> out, PruneSummary& sum) noexcept {
    sum = PruneSummary{};
    if (order.size() < entries.size()) {
        return fail(Reason::capacity_exceeded, 0, "prune order array");
    }
    sum.scanned = static_cast<std::uint32_t>(entries.size());
    std::uint32_t k = 0;
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < entries.size(); ++i) {
        if (entries[i].classified) {
            order[k++] = i;
            total = add_sat(total, entries[i].size);
        }
    }
    sum.classified = k;
    sum.unclassified = sum.scanned - k;
    const bool by_seq = spec.order == PruneOrder::seq;
    const auto ranked = order.first(k);
    std::sort(ranked.begin(), ranked.end(), [&](std::uint32_t a, std::uint32_t b) {
        const entry& x = entries[a];
        const entry& y = entries[b];
        if (by_seq && x.seq != y.seq) {
            return x.seq > y.seq;
        }
        if (!by_seq && x.time_ns != y.time_ns) {
            return x.time_ns > y.time_ns;
        }
        return x.name > y.name;
    });

    std::uint8_t enabled = 0;
    enabled |= spec.max_age.count() > 0 ? prune_rule_max_age : 0;
    enabled |= spec.keep_newest > 0 ? prune_rule_keep_newest : 0;
    enabled |= spec.max_total_bytes > 0 ? prune_rule_max_total_bytes : 0;
    enabled |= spec.min_free_bytes > 0 ? prune_rule_min_free_bytes : 0;

    // Older than `cutoff` is over age; an age too large to subtract from
    // now makes nothing eligible.
    std::int64_t age_ns = 0;
    std::int64_t cutoff = std::numeric_limits<std::int64_t>::min();
    if (__builtin_mul_overflow(static_cast<std::int64_t>(spec.max_age.count()),
                               std::int64_t{1000000}, &age_ns) ||
        __builtin_sub_overflow(now.now_wall_ns, age_ns, &cutoff)) {
        cutoff = std::numeric_limits<std::int64_t>::min();
    }
    // The age and count rules' bits of the entry at rank `r` (newest 0).
    auto static_bits = [&](std::uint32_t r) -> std::uint8_t {
        const entry& e = entries[ranked[r]];
        std::uint8_t b = 0;
        if ((enabled & prune_rule_max_age) != 0 && now.clock_trusted && e.trusted_time &&
            e.time_ns < cutoff) {
            b |= prune_rule_max_age;
        }
        if ((enabled & prune_rule_keep_newest) != 0 && r >= spec.keep_newest) {
            b |= prune_rule_keep_newest;
        }
        return b;
    };

    for (std::uint32_t r = 0; r < k; ++r) {
        const entry& e = entries[ranked[r]];
        sum.protected_files += is_protected(e, now) ? 1 : 0;
        sum.unprovable += e.unprovable ? 1 : 0;
    }

    const bool all = spec.combine == PruneCombine::all;
    std::uint64_t freed = 0;
    if (!all && enabled != 0) {
        // `any`: what the age and count rules delete goes whatever the
        // budgets say; the budget walk then sees what is left.
        for (std::uint32_t r = 0; r < k; ++r) {
            const entry& e = entries[ranked[r]];
            if (static_bits(r) != 0 && !is_protected(e, now)) {
                total -= std::min(total, e.size);
                freed = add_sat(freed, e.size);
            }
        }
    }

    std::uint32_t n = 0;
    std::uint64_t deleted_bytes = 0;
    for (std::uint32_t r = k; enabled != 0 && r-- > 0;) {
        const entry& e = entries[ranked[r]];
        if (is_protected(e, now)) {
            continue;
        }
        const std::uint8_t st = static_bits(r);
        std::uint8_t bits = st;
        bool goes = false;
        if (!all && st != 0) {
            goes = true; // already taken off the total above
        } else {
            if ((enabled & prune_rule_max_total_bytes) != 0 && total > spec.max_total_bytes) {
                bits |= prune_rule_max_total_bytes;
            }
            if ((enabled & prune_rule_min_free_bytes) != 0 &&
                add_sat(now.free_bytes, freed) < spec.min_free_bytes) {
                bits |= prune_rule_min_free_bytes;
            }
            goes = all ? (bits & enabled) == enabled : bits != 0;
            if (goes) {
                total -= std::min(total, e.size);
                freed = add_sat(freed, e.size);
            }
        }
        if (!goes) {
            continue;
        }
        if (n < out.size()) {
            out[n] = decision{ranked[r], bits};
        }
        ++n;
        deleted_bytes = add_sat(deleted_bytes, e.size);
    }
    if (n > out.size()) {
        return fail(Reason::capacity_exceeded, 0, "prune decisions");
    }
    std::uint64_t classified_bytes = 0;
    for (std::uint32_t r = 0; r < k; ++r) {
        classified_bytes = add_sat(classified_bytes, entries[ranked[r]].size);
    }
    sum.deleted = n;
    sum.deleted_bytes = deleted_bytes;
    sum.kept = k - n;
    sum.kept_bytes = classified_bytes - std::min(classified_bytes, deleted_bytes);
    return n;
}

} // namespace custos::prune

namespace custos {

std::size_t prune_rule_names(std::uint8_t rules, char* out, std::size_t cap) noexcept {
    static constexpr struct {
        std::uint8_t bit;
        std::string_view name;
    } names[] = {
        {prune_rule_max_age, "max_age"},
        {prune_rule_keep_newest, "keep_newest"},
        {prune_rule_max_total_bytes, "max_total_bytes"},
        {prune_rule_min_free_bytes, "min_free"},
    };
    std::size_t n = 0;
    for (const auto& r : names) {
        if ((rules & r.bit) == 0) {
            continue;
        }
        const std::size_t need = r.name.size() + (n != 0 ? 1 : 0);
        if (n + need > cap) {
            break;
        }
        if (n != 0) {
            out[n++] = '+';
        }
        for (char c : r.name) {
            out[n++] = c;
        }
    }
    return n;
}

} // namespace custos
