// The key tables of [log] and [prune:NAME], and their setters (see
// keys.hpp; the other sections are in keys.cpp). Each setter is one value
// parser of table/values.hpp and one field, with the section's own bounds.
#include <chrono>
#include <cstdint>
#include <iterator>
#include <type_traits>

#include "custosd/keys.hpp"
#include "custosd/keys_setter.hpp"
#include "table/validate.hpp"
#include "table/values.hpp"

namespace custos::cfg {

using tbl::clip;

namespace {

// --- [log] ---

void log_dir(key_context& c, std::string_view v) noexcept {
    if (v.empty() || v.size() > 200) {
        c.bad("bad dir '%s': a path of at most 200 bytes, e.g. /var/log/custos (a relative "
              "one is taken from custosd's working directory)",
              clip(v).str());
        return;
    }
    c.log.dir = v;
}
template <auto Field>
void log_bytes(key_context& c, std::string_view v, std::uint64_t min, std::uint64_t max) noexcept {
    std::uint64_t n = 0;
    if (!store(c, tbl::bytes_value(c.key->name, v, max), n)) {
        return;
    }
    if (n < min) {
        c.bad("%s '%s' is below its least, %llu bytes", c.key->name, clip(v).str(),
              static_cast<unsigned long long>(min));
        return;
    }
    c.log.*Field = static_cast<std::remove_reference_t<decltype(c.log.*Field)>>(n);
}
void log_max_file_bytes(key_context& c, std::string_view v) noexcept {
    log_bytes<&LogConfig::max_file_bytes>(c, v, 4096, std::uint64_t{1} << 32);
}
void log_ring_bytes(key_context& c, std::string_view v) noexcept {
    log_bytes<&LogConfig::ring_bytes>(c, v, 4096, std::uint64_t{64} << 20);
}
void log_output_file_bytes(key_context& c, std::string_view v) noexcept {
    log_bytes<&LogConfig::output_file_bytes>(c, v, 4096, std::uint64_t{1} << 32);
}
void log_output_ring_bytes(key_context& c, std::string_view v) noexcept {
    log_bytes<&LogConfig::output_ring_bytes>(c, v, 1024, std::uint64_t{16} << 20);
}
template <auto Field>
void log_files(key_context& c, std::string_view v) noexcept {
    std::uint64_t n = 0;
    if (tbl::parse_uint(v, 1000, n) != tbl::num_status::ok || n < 1) {
        c.bad("bad %s '%s': give a whole number from 1 to 1000 (the current file counts)",
              c.key->name, clip(v).str());
        return;
    }
    c.log.*Field = static_cast<std::uint32_t>(n);
}
void log_fold_window(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.log.fold_window);
}
void log_sync_interval(key_context& c, std::string_view v) noexcept {
    Duration d{0};
    if (!store(c, tbl::duration_value(c.key->name, v), d)) {
        return;
    }
    if (d < std::chrono::milliseconds(100)) {
        c.bad("sync_interval '%s' must be 100ms or more", clip(v).str());
        return;
    }
    c.log.sync_interval = d;
}
void log_clock(key_context& c, std::string_view v) noexcept {
    if (v == "auto") {
        c.log.clock = ClockTrust::automatic;
    } else if (v == "trusted") {
        c.log.clock = ClockTrust::trusted;
    } else if (v == "untrusted") {
        c.log.clock = ClockTrust::untrusted;
    } else {
        c.bad("bad clock '%s': use auto, trusted or untrusted", clip(v).str());
    }
}

constexpr key_def log_keys[] = {
    {"dir", no_slot, 0, 0, log_dir},
    {"max_file_bytes", no_slot, 0, 0, log_max_file_bytes},
    {"max_files", no_slot, 0, 0, log_files<&LogConfig::max_files>},
    {"ring_bytes", no_slot, 0, 0, log_ring_bytes},
    {"fold_window", no_slot, 0, 0, log_fold_window},
    {"sync_interval", no_slot, 0, 0, log_sync_interval},
    {"output_file_bytes", no_slot, 0, 0, log_output_file_bytes},
    {"output_files", no_slot, 0, 0, log_files<&LogConfig::output_files>},
    {"output_ring_bytes", no_slot, 0, 0, log_output_ring_bytes},
    {"clock", no_slot, 0, 0, log_clock},
};
static_assert(std::size(log_keys) <= max_keys);

// --- [prune:NAME] ---

using custos::PruneField;

template <auto Field>
void pr_text(key_context& c, std::string_view v) noexcept {
    c.prune.*Field = v;
}
void pr_order(key_context& c, std::string_view v) noexcept {
    if (v == "mtime") {
        c.prune.order = PruneOrder::mtime;
    } else if (v == "name") {
        c.prune.order = PruneOrder::name_time;
    } else if (v == "seq") {
        c.prune.order = PruneOrder::seq;
    } else {
        c.bad("bad order '%s': use mtime (the file's time), name (a time in its name: "
              "time_pattern) or seq (a number in its name: seq_prefix)",
              clip(v).str());
    }
}
void pr_combine(key_context& c, std::string_view v) noexcept {
    if (v == "any") {
        c.prune.combine = PruneCombine::any;
    } else if (v == "all") {
        c.prune.combine = PruneCombine::all;
    } else {
        c.bad("bad combine '%s': use any (a file goes when one rule says so) or all (only "
              "when every rule set does)",
              clip(v).str());
    }
}
void pr_max_age(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.prune.max_age);
}
void pr_interval(key_context& c, std::string_view v) noexcept {
    store(c, tbl::duration_value(c.key->name, v), c.prune.interval);
}
void pr_keep_newest(key_context& c, std::string_view v) noexcept {
    store(c, tbl::limit_value(c.key->name, v), c.prune.keep_newest);
}
void pr_max_total_bytes(key_context& c, std::string_view v) noexcept {
    store(c, tbl::size_value(c.key->name, v), c.prune.max_total_bytes);
}
// Bytes (64M), or a share of the filesystem's size (15%), journald's
// KeepFree: one key, as an operator thinks of it.
void pr_min_free(key_context& c, std::string_view v) noexcept {
    if (!v.empty() && v.back() == '%') {
        std::uint64_t pct = 0;
        if (tbl::parse_uint(v.substr(0, v.size() - 1), 99, pct) != tbl::num_status::ok) {
            c.bad("bad min_free '%s': a share is from 0%% to 99%%", clip(v).str());
            return;
        }
        c.prune.min_free_percent = static_cast<std::uint8_t>(pct);
        c.prune.min_free_bytes = 0;
        return;
    }
    if (store(c, tbl::size_value(c.key->name, v), c.prune.min_free_bytes)) {
        c.prune.min_free_percent = 0;
    }
}
void pr_max_files(key_context& c, std::string_view v) noexcept {
    store(c, tbl::count_value(c.key->name, v, tbl::max_prune_files), c.prune.max_files);
}

constexpr std::uint8_t slot(PruneField f) {
    return static_cast<std::uint8_t>(f);
}

constexpr key_def prune_keys[] = {
    {"dir", slot(PruneField::dir), key_required, 0, pr_text<&PruneSpec::dir>,
     "add dir = /absolute/path, the directory to keep within its budgets"},
    {"glob", slot(PruneField::glob), 0, 0, pr_text<&PruneSpec::glob>},
    {"order", slot(PruneField::order), 0, 0, pr_order},
    {"time_pattern", slot(PruneField::time_pattern), 0, 0, pr_text<&PruneSpec::time_pattern>},
    {"seq_prefix", slot(PruneField::seq_prefix), 0, 0, pr_text<&PruneSpec::seq_prefix>},
    {"max_age", slot(PruneField::max_age), 0, 0, pr_max_age},
    {"keep_newest", slot(PruneField::keep_newest), 0, 0, pr_keep_newest},
    {"max_total_bytes", slot(PruneField::max_total_bytes), 0, 0, pr_max_total_bytes},
    {"min_free", slot(PruneField::min_free), 0, 0, pr_min_free},
    {"combine", slot(PruneField::combine), 0, 0, pr_combine},
    {"max_files", slot(PruneField::max_files), 0, 0, pr_max_files},
    {"interval", slot(PruneField::interval), 0, 0, pr_interval},
};

static_assert(std::size(prune_keys) + 2 == custos::prune_field_count,
              "one line slot per [prune:x] key, and the section's and the name's");
static_assert(std::size(prune_keys) <= max_keys);
} // namespace

const section_def log_section{"log", log_keys};
const section_def prune_section{"prune:", prune_keys};

} // namespace custos::cfg
