// The prune jobs' part of the table check (table/validate.hpp), and the
// stable names of PruneField.
//
// The pruner (src/prune/, a layer above) checks a spec again before each
// run; the rules it shares with this check (dir, glob, time_pattern,
// max_files) are kept in step by tests/test_table.cpp's prune cases.
#include <climits>
#include <cstdio>

#include "table/validate.hpp"

namespace custos {

std::string_view field_name(PruneField f) noexcept {
    static constexpr std::string_view names[prune_field_count] = {
        "section",      "name",       "dir",       "glob",        "order",
        "time_pattern", "seq_prefix", "max_age",   "keep_newest", "max_total_bytes",
        "min_free",     "combine",    "max_files", "interval",
    };
    const auto i = static_cast<std::size_t>(f);
    return i < prune_field_count ? names[i] : std::string_view("unknown");
}

namespace tbl {
namespace {

// The pattern's problem, or nullptr: only %Y %m %d %H %M %S and %%, each
// conversion at most once, %Y %m %d required.
const char* pattern_problem(std::string_view p) noexcept {
    unsigned seen = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] != '%') {
            continue;
        }
        if (++i >= p.size()) {
            return "Do not end time_pattern in a lone %: write %% for a literal %";
        }
        if (p[i] == '%') {
            continue;
        }
        constexpr std::string_view convs = "YmdHMS";
        const std::size_t k = convs.find(p[i]);
        if (k == std::string_view::npos) {
            return "Use only %Y %m %d %H %M %S and %% in time_pattern";
        }
        if ((seen & (1U << k)) != 0) {
            return "Use each conversion of time_pattern once";
        }
        seen |= 1U << k;
    }
    if ((seen & 7U) != 7U) {
        return "Give time_pattern at least %Y, %m and %d (e.g. events-%Y%m%dT%H%M%S)";
    }
    return nullptr;
}

void check_prune(std::span<const PruneSpec> t, std::uint32_t i, reporter& rep) noexcept {
    const PruneSpec& s = t[i];
    const std::string_view n = s.name;
    if (!name_valid(n)) {
        rep.prune(i, PruneField::name, Reason::name_invalid, 0, n,
                  "Name the prune job with 1-31 characters from [A-Za-z0-9._-]");
    } else {
        for (std::uint32_t j = 0; j < i; ++j) {
            if (t[j].name == n) {
                rep.prune(i, PruneField::name, Reason::name_duplicate, 0, n,
                          "Give each prune job a name of its own");
                break;
            }
        }
    }
    if (s.dir.empty() || s.dir.front() != '/' || s.dir.size() >= PATH_MAX ||
        s.dir.find('\0') != std::string_view::npos) {
        rep.prune(i, PruneField::dir, Reason::invalid_argument, 0, s.dir.empty() ? n : s.dir,
                  "Give dir as an absolute path (/var/crash)");
    }
    if (s.glob.empty() || s.glob.size() > 255 || s.glob.find('/') != std::string_view::npos ||
        s.glob.find('\0') != std::string_view::npos) {
        rep.prune(i, PruneField::glob, Reason::invalid_argument, 0, s.glob.empty() ? n : s.glob,
                  "Give glob as a file name pattern without '/' (e.g. *.log), up to 255 bytes");
    }
    if (s.order > PruneOrder::seq) {
        rep.prune(i, PruneField::order, Reason::invalid_argument, 0, n,
                  "Set order to mtime, name or seq");
    }
    if (s.order == PruneOrder::name_time) {
        if (const char* why = pattern_problem(s.time_pattern); why != nullptr) {
            rep.prune(i, PruneField::time_pattern, Reason::invalid_argument, 0,
                      s.time_pattern.empty() ? n : s.time_pattern, why);
        }
    } else if (!s.time_pattern.empty()) {
        rep.prune(i, PruneField::time_pattern, Reason::invalid_argument, 0, s.time_pattern,
                  "Use time_pattern only with order = name (the time in the file name)");
    }
    if (s.seq_prefix.size() > 63 || s.seq_prefix.find('/') != std::string_view::npos ||
        s.seq_prefix.find('\0') != std::string_view::npos) {
        rep.prune(i, PruneField::seq_prefix, Reason::invalid_argument, 0, s.seq_prefix,
                  "Give seq_prefix as up to 63 bytes of the name before the number, without '/'");
    } else if (!s.seq_prefix.empty() && s.order != PruneOrder::seq) {
        rep.prune(i, PruneField::seq_prefix, Reason::invalid_argument, 0, s.seq_prefix,
                  "Use seq_prefix only with order = seq (a number in the file name)");
    }
    if (s.max_age.count() < 0) {
        rep.prune(i, PruneField::max_age, Reason::invalid_argument, 0, n,
                  "Durations cannot be negative (0: no age rule)");
    }
    if (s.min_free_percent > 99) {
        rep.prune(i, PruneField::min_free, Reason::invalid_argument, 0, n,
                  "Give min_free as a percentage from 0 to 99, or in bytes (e.g. 64M)");
    }
    if (s.combine > PruneCombine::all) {
        rep.prune(i, PruneField::combine, Reason::invalid_argument, 0, n,
                  "Set combine to any or all");
    }
    if (s.max_files == 0 || s.max_files > max_prune_files) {
        char text[64];
        std::snprintf(text, sizeof text, "max_files %u", s.max_files);
        rep.prune(i, PruneField::max_files, Reason::invalid_argument, 0, text,
                  "Set max_files from 1 to 65536: a run scans at most that many files");
    }
    if (s.interval.count() < 0 || (s.interval.count() > 0 && s.interval < min_prune_interval)) {
        rep.prune(i, PruneField::interval, Reason::invalid_argument, 0, n,
                  "Set interval to 0 (only on demand) or at least 1s");
    }
}

} // namespace

void validate_prunes(const Table& t, reporter& rep) noexcept {
    if (t.prunes.size() > prunes_limit) {
        char text[64];
        std::snprintf(text, sizeof text, "%zu prune jobs, at most %u", t.prunes.size(),
                      prunes_limit);
        rep.prune(UINT32_MAX, PruneField::section, Reason::capacity_exceeded, 0, text,
                  "Declare at most 64 prune jobs: one job can cover a directory with one glob");
        return;
    }
    for (std::uint32_t i = 0; i < t.prunes.size(); ++i) {
        check_prune(t.prunes, i, rep);
    }
}

} // namespace tbl
} // namespace custos
