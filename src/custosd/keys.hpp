// The keys of custosd's config sections, as data: one table per section
// kind, each entry naming its key, the line slot it fills, its value parser
// and its flags. One lookup, one did-you-mean and one duplicate check
// (parser.cpp) serve every table, so a new section kind ([monitor:NAME],
// [watchdog], [control], [log], [prune:NAME]) is a table and its setters,
// not another copy of the parser.
//
// A setter reads one value into the section being built (key_context) and
// reports what it refuses through key_context::refuse(), at the key's line;
// it never sees an empty value nor a duplicate key (the caller handles
// both). Setters run twice over the same bytes: in the checking pass the
// pools only count (their base is null) and nothing may be written to the
// text; in the building pass they store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/control.hpp>
#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/prune.hpp>
#include <custos/runtime.hpp>
#include <custos/service.hpp>
#include <custos/watchdog.hpp>

#include "custosd/config.hpp"
#include "table/values.hpp"

namespace custos::cfg {

// A growing array filled in the building pass only (base null in the
// checking pass: only counted).
template <class T>
struct pool {
    T* base = nullptr;
    std::size_t cap = 0;
    std::size_t used = 0;

    void push(T v) noexcept {
        if (base != nullptr && used < cap) {
            base[used] = v;
        }
        ++used;
    }
    std::span<const T> since(std::size_t start) const noexcept {
        if (base == nullptr || used > cap) {
            return {};
        }
        return {base + start, used - start};
    }
};
using view_pool = pool<std::string_view>;

// Where the building pass stores; all null in the checking pass.
struct table_out {
    ServiceSpec* services = nullptr;
    unsigned* lines = nullptr;
    std::uint32_t capacity = 0;
    ProbeSpec* probes = nullptr;
    unsigned* probe_lines = nullptr;
    std::uint32_t probe_capacity = 0;
    view_pool argv, env, deps, members;
    pool<std::uint16_t> statuses;
    PruneSpec* prunes = nullptr;
    unsigned* prune_lines = nullptr;
    std::uint32_t prune_capacity = 0;
    unsigned* watchdog_lines = nullptr; // custos::watchdog_field_count
    unsigned* control_lines = nullptr;  // cfg::control_field_count
};

// [control] as it is read: the config's fixed operators array is filled in
// both passes (it is not the text, and it is bounded).
struct control_in {
    ControlConfig& cfg;
    std::string_view* operators; // config::max_operators entries
    std::size_t operator_count = 0;
    bool enabled = true;
};

struct key_def;

// What a setter works on: the section being built, where its key is, and
// where problems go.
struct key_context {
    key_context(char* text_in, problem_list* problems_in, RuntimeConfig& rt_in,
                WatchdogConfig& wd_in, LogConfig& log_in, control_in ctl_in,
                table_out& out_in) noexcept
        : text(text_in), problems(problems_in), rt(rt_in), wd(wd_in), log(log_in), ctl(ctl_in),
          out(out_in) {}

    // Counts a problem, and records it unless problems is null (the
    // building pass).
    [[gnu::format(printf, 5, 6)]] void report(unsigned at, Reason r, std::string_view subject,
                                              const char* fmt, ...) noexcept;
    // A refused value of the current key: ConfigBadValue at its line.
    void refuse(const tbl::value_error& e) noexcept;
    // The same, from a printf-style message.
    [[gnu::format(printf, 2, 3)]] void bad(const char* fmt, ...) noexcept;
    // The writable bytes behind a view into the text.
    char* writable(std::string_view v) const noexcept { return text + (v.data() - text); }

    char* text;
    problem_list* problems;
    RuntimeConfig& rt;
    WatchdogConfig& wd; // [watchdog]
    LogConfig& log;     // [log]
    control_in ctl;     // [control]
    table_out& out;
    std::size_t found = 0; // problems found, recorded or not

    unsigned line = 0;                // of the current item
    const char* line_begin = nullptr; // its first byte, for columns
    const key_def* key = nullptr;     // the current key
    ServiceSpec service;              // the [service:x] being read
    ProbeSpec probe;                  // the [probe:x] being read
    PruneSpec prune;                  // the [prune:x] being read
};

using setter = void (*)(key_context& c, std::string_view value) noexcept;

enum key_flag : std::uint8_t {
    key_repeats = 1,   // may appear more than once (env): no duplicate check
    key_required = 2,  // missing at the end of the section is a problem
    key_sets_kind = 4, // names the section's kind (a probe's tcp, http ...):
                       // one per section, any of them ("two kinds")
    key_kind_only = 8, // valid only in a section of kind `kind`
    key_retired = 16,  // no longer a key: its setter says what replaced it;
                       // never suggested
};

// Its line is not exported (exists; every [custos] key).
inline constexpr std::uint8_t no_slot = 0xff;

struct key_def {
    const char* name;
    // The line slot it fills: a custos::ServiceField for [service:x], a
    // custos::ProbeField for [probe:x], a custos::WatchdogField for
    // [watchdog], a cfg::control_field for [control], a custos::PruneField
    // for [prune:x]; no_slot when none. Several keys may
    // share one (a probe's kind keys all fill target).
    std::uint8_t slot;
    std::uint8_t flags; // key_flag bits
    // key_sets_kind: the kind it sets; key_kind_only: the one it needs (a
    // ProbeKind for probes).
    std::uint8_t kind;
    setter set;
    // key_required: what to write when it is missing.
    const char* hint = nullptr;
};

struct section_def {
    // As messages print the section: "custos", "service:", "probe:" (the
    // section's name follows).
    const char* label;
    std::span<const key_def> keys;
};

// The sections, each with at most max_keys keys (seen-key bitmasks).
inline constexpr std::size_t max_keys = 32;
extern const section_def custos_section;
extern const section_def service_section;
extern const section_def probe_section;
extern const section_def watchdog_section;
extern const section_def log_section;
extern const section_def control_section;
extern const section_def prune_section;

// The key named `key`, or nullptr.
const key_def* find_key(const section_def& s, std::string_view key) noexcept;

// The closest key to a misspelt one (optimal string alignment distance: at
// most 1 for keys under 4 bytes, 2 otherwise; the first of equals wins;
// retired keys are never suggested), or nullptr.
const char* suggest_key(const section_def& s, std::string_view key) noexcept;

} // namespace custos::cfg
