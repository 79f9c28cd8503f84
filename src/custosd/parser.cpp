// custosd's config reader (see config.hpp for the syntax and the reasons).
//
// Three parts: ini.hpp cuts the text into items (header, key = value, or a
// line it cannot read); keys.hpp holds a table of keys per section kind,
// each with its setter (the value parsers are table/values.hpp); this file
// walks the items, owns the sections (which kinds exist, duplicates, the
// checks that need a whole section) and does the one lookup, did-you-mean
// and duplicate-key check for every kind.
//
// Two passes over one private copy of the text, through the same parser:
//   1. check: every line is read and every problem reported; it counts the
//      services, probes and the argv/env/depends_on/members/expect_status
//      entries, and finds duplicate sections with scratch hash sets of names
//      (one for services, one for probes).
//   2. build: only when the check found nothing. The arena is reserved for
//      exactly the counts of pass 1, and the parser runs again, now storing.
//      It cannot find a problem that pass 1 did not (it is the same code over
//      the same bytes), which is asserted.
// Exec arguments are unescaped in place during pass 2: an argument's output
// never runs ahead of its input, and the parser never reads a value twice.
// A section's argv, env, depends_on, members and expect_status entries are
// contiguous in their pools because sections cannot repeat: nothing of
// another section comes between. Checks that need a whole section (a
// required key such as a service's exec; is there one kind? do its
// file-only keys sit in a file probe?) run when the section ends.
#include <cerrno>

#include "core/assert.hpp"
#include "custosd/config.hpp"
#include "custosd/ini.hpp"
#include "custosd/keys.hpp"
#include "table/values.hpp"

namespace custos::cfg {

namespace {

using tbl::clip;

static_assert(config::max_line_bytes == ini::max_line_bytes);

// Names of the [service:x] sections seen so far, for duplicates: open
// addressing at most half full, so a probe always ends.
class name_set {
public:
    // What reserve() takes for `n` names.
    static std::size_t bytes_for(std::size_t n) noexcept {
        std::size_t slots = 2;
        while (slots < 2 * n) {
            slots <<= 1;
        }
        return slots * sizeof(entry);
    }

    // Room for `n` names in `a`. False when out of memory.
    bool reserve(arena& a, std::size_t n) noexcept {
        if (n == 0) {
            return true;
        }
        std::size_t slots = 2;
        while (slots < 2 * n) {
            slots <<= 1;
        }
        if (!a.reserve(slots * sizeof(entry))) {
            return false;
        }
        slots_ = a.make_array<entry>(slots);
        mask_ = slots - 1;
        room_ = n;
        return slots_ != nullptr;
    }

    // The line `name` was first seen on, or 0.
    unsigned find(std::string_view name) const noexcept {
        if (slots_ == nullptr) {
            return 0;
        }
        for (std::size_t i = hash(name) & mask_;; i = (i + 1) & mask_) {
            if (slots_[i].line == 0) {
                return 0;
            }
            if (slots_[i].name == name) {
                return slots_[i].line;
            }
        }
    }

    // `name` must not be in the set yet.
    void insert(std::string_view name, unsigned line) noexcept {
        CUSTOS_ASSERT(room_ > 0 && line > 0);
        --room_;
        std::size_t i = hash(name) & mask_;
        while (slots_[i].line != 0) {
            i = (i + 1) & mask_;
        }
        slots_[i] = entry{name, line};
    }

private:
    struct entry {
        std::string_view name;
        unsigned line = 0; // 0: empty slot
    };

    static std::size_t hash(std::string_view s) noexcept {
        std::uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
        for (char c : s) {
            h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
        }
        return static_cast<std::size_t>(h ^ (h >> 32));
    }

    entry* slots_ = nullptr;
    std::size_t mask_ = 0;
    std::size_t room_ = 0;
};

// What pass 1 counts and pass 2 is sized for.
struct table_counts {
    std::uint32_t services = 0;
    std::uint32_t probes = 0;
    std::size_t argv = 0; // services' and exec probes'
    std::size_t env = 0;
    std::size_t deps = 0;
    std::size_t members = 0;  // of composite probes
    std::size_t statuses = 0; // expect_status entries
    std::uint32_t prunes = 0;

    bool operator==(const table_counts&) const = default;
};

// Lays the table out in `a`; run once on an unreserved arena to measure.
void lay_out(arena& a, const table_counts& c, table_out& out) noexcept {
    out.services = a.make_array<ServiceSpec>(c.services);
    out.lines = a.make_array<unsigned>(std::size_t{c.services} * custos::service_field_count);
    out.capacity = c.services;
    out.probes = a.make_array<ProbeSpec>(c.probes);
    out.probe_lines = a.make_array<unsigned>(std::size_t{c.probes} * custos::probe_field_count);
    out.probe_capacity = c.probes;
    out.argv = view_pool{a.make_array<std::string_view>(c.argv), c.argv, 0};
    out.env = view_pool{a.make_array<std::string_view>(c.env), c.env, 0};
    out.deps = view_pool{a.make_array<std::string_view>(c.deps), c.deps, 0};
    out.members = view_pool{a.make_array<std::string_view>(c.members), c.members, 0};
    out.statuses = pool<std::uint16_t>{a.make_array<std::uint16_t>(c.statuses), c.statuses, 0};
    out.prunes = a.make_array<PruneSpec>(c.prunes);
    out.prune_lines = a.make_array<unsigned>(std::size_t{c.prunes} * custos::prune_field_count);
    out.prune_capacity = c.prunes;
}

class parser {
public:
    // `problems` and the name sets are null in pass 2; `out` is empty in
    // pass 1.
    parser(char* text, std::size_t size, const char* file, problem_list* problems, name_set* names,
           name_set* probe_names, RuntimeConfig& rt, WatchdogConfig& wd, LogConfig& log,
           control_in ctl, table_out& out) noexcept
        : text_(text), size_(size), file_(file), c_(text, problems, rt, wd, log, ctl, out),
          names_(names), probe_names_(probe_names) {}

    void run() noexcept {
        ini::lexer lex(text_, size_, file_);
        for (ini::item it; lex.next(it);) {
            item(it);
        }
        finish_section();
    }

    std::size_t found() const noexcept { return c_.found; }
    table_counts counts() const noexcept {
        return {services_,
                probes_,
                c_.out.argv.used,
                c_.out.env.used,
                c_.out.deps.used,
                c_.out.members.used,
                c_.out.statuses.used,
                prunes_};
    }

private:
    enum class section : std::uint8_t {
        none,    // before the first header: keys are errors
        skipped, // after a bad header: its keys were reported with it
        custos,
        service,
        probe,
        watchdog,
        control,
        log,
        prune,
    };

    // A section whose keys are read (not none nor skipped).
    bool keyed() const noexcept {
        return kind_ == section::custos || kind_ == section::service || kind_ == section::probe ||
               kind_ == section::watchdog || kind_ == section::control || kind_ == section::log ||
               kind_ == section::prune;
    }

    void item(const ini::item& it) noexcept {
        c_.line = it.line;
        c_.line_begin = it.line_begin;
        switch (it.kind) {
        case ini::token::too_long:
            c_.report(it.line, Reason::config_syntax, {},
                      "line is %zu bytes long; the limit is %zu (a long command line can move "
                      "into a wrapper script)",
                      it.number, config::max_line_bytes);
            skipped_line(it.text);
            return;
        case ini::token::nul:
            c_.report(it.line, Reason::config_syntax, {},
                      "NUL byte at column %zu: the config must be a text file", it.number);
            skipped_line(it.text);
            return;
        case ini::token::header:
            header(it.section);
            return;
        case ini::token::bad_header:
            finish_section();
            kind_ = section::skipped;
            c_.report(it.line, Reason::config_syntax, it.text,
                      "bad section header '%s': write [custos], [service:NAME], [probe:NAME], "
                      "[watchdog], [control] or [log]",
                      clip(it.text).str());
            return;
        case ini::token::no_equals:
            c_.report(it.line, Reason::config_syntax, {},
                      "no '=' in '%s': expected key = value, [section] or a # comment",
                      clip(it.text).str());
            return;
        case ini::token::no_key:
            c_.report(it.line, Reason::config_syntax, {}, "no key before '=' in '%s'",
                      clip(it.text).str());
            return;
        case ini::token::pair:
            pair(it.key, it.value);
            return;
        }
    }

    // A line already reported as unreadable: keep the damage to that line. A
    // header ends the section before it (its keys must not land there); a
    // required key (a service's exec), or a kind key (a probe's), is not
    // also reported missing.
    void skipped_line(std::string_view t) noexcept {
        if (!t.empty() && t.front() == '[') {
            finish_section();
            kind_ = section::skipped;
            return;
        }
        if (!keyed()) {
            return;
        }
        const key_def* d = find_key(*def_, ini::trim(t.substr(0, t.find('='))));
        if (d == nullptr) {
            return;
        }
        const std::size_t i = index(d);
        if ((d->flags & key_required) != 0 && (seen_ & bit(i)) == 0) {
            seen_ |= bit(i);
            key_line_[i] = c_.line;
        }
        if ((d->flags & key_sets_kind) != 0 && kind_def_ == nullptr) {
            kind_def_ = d;
            c_.probe.kind = static_cast<ProbeKind>(d->kind);
            key_line_[i] = c_.line;
            seen_ |= bit(i);
        }
    }

    void header(std::string_view inner) noexcept {
        finish_section();
        kind_ = section::skipped;
        const unsigned line = c_.line;
        if (inner == "custos") {
            if (custos_line_ != 0) {
                c_.report(line, Reason::config_syntax, inner,
                          "duplicate section [custos] (first at line %u): merge the two",
                          custos_line_);
                return;
            }
            custos_line_ = line;
            kind_ = section::custos;
            start_keys(custos_section);
            return;
        }
        if (inner == "watchdog") {
            if (watchdog_line_ != 0) {
                c_.report(line, Reason::config_syntax, inner,
                          "duplicate section [watchdog] (first at line %u): merge the two",
                          watchdog_line_);
                return;
            }
            watchdog_line_ = line;
            kind_ = section::watchdog;
            start_keys(watchdog_section);
            return;
        }
        if (inner == "log") {
            if (log_line_ != 0) {
                c_.report(line, Reason::config_syntax, inner,
                          "duplicate section [log] (first at line %u): merge the two", log_line_);
                return;
            }
            log_line_ = line;
            kind_ = section::log;
            start_keys(log_section);
            return;
        }
        if (inner == "control") {
            if (control_line_ != 0) {
                c_.report(line, Reason::config_syntax, inner,
                          "duplicate section [control] (first at line %u): merge the two",
                          control_line_);
                return;
            }
            control_line_ = line;
            kind_ = section::control;
            start_keys(control_section);
            return;
        }
        if (constexpr std::string_view prune_prefix = "prune:";
            inner.substr(0, prune_prefix.size()) == prune_prefix) {
            prune_header(ini::trim(inner.substr(prune_prefix.size())), inner, line);
            return;
        }
        constexpr std::string_view service_prefix = "service:";
        constexpr std::string_view probe_prefix = "probe:";
        const bool is_service = inner.substr(0, service_prefix.size()) == service_prefix;
        const bool is_probe = inner.substr(0, probe_prefix.size()) == probe_prefix;
        if (!is_service && !is_probe) {
            c_.report(line, Reason::config_syntax, inner,
                      "unknown section '[%s]': expected [custos], [service:NAME], [probe:NAME], "
                      "[watchdog], [control] or [log]",
                      clip(inner).str());
            return;
        }
        const char* what = is_probe ? "probe" : "service";
        std::string_view name =
            ini::trim(inner.substr(is_probe ? probe_prefix.size() : service_prefix.size()));
        if (name.empty()) {
            c_.report(line, Reason::config_syntax, inner,
                      "section [%s:] has no name: write [%s:NAME]", what, what);
            return;
        }
        // Services and probes are checked apart: a probe named like a service
        // is the table validator's to report, with both places.
        name_set* seen = is_probe ? probe_names_ : names_;
        if (unsigned first = seen != nullptr ? seen->find(name) : 0; first != 0) {
            c_.report(line, Reason::config_syntax, name,
                      "duplicate section [%s:%s] (first at line %u): merge the two or rename one",
                      what, clip(name).str(), first);
            return;
        }
        const std::uint32_t count = is_probe ? probes_ : services_;
        const std::uint32_t limit =
            is_probe ? config::max_probe_sections : config::max_service_sections;
        if (count == limit) {
            c_.report(line, Reason::capacity_exceeded, name,
                      "too many %ss: a config holds at most %u [%s:NAME] sections", what, limit,
                      what);
            return;
        }
        if (seen != nullptr) {
            seen->insert(name, line);
        }
        argv_start_ = c_.out.argv.used;
        if (is_probe) {
            kind_ = section::probe;
            c_.probe = ProbeSpec{};
            c_.probe.name = name;
            start_keys(probe_section);
            members_start_ = c_.out.members.used;
            statuses_start_ = c_.out.statuses.used;
            return;
        }
        kind_ = section::service;
        c_.service = ServiceSpec{};
        c_.service.name = name;
        start_keys(service_section);
        env_start_ = c_.out.env.used;
        deps_start_ = c_.out.deps.used;
    }

    // [prune:NAME]: duplicates found here (at most max_prune_sections names,
    // kept in the parser itself in both passes).
    void prune_header(std::string_view name, std::string_view inner, unsigned line) noexcept {
        if (name.empty()) {
            c_.report(line, Reason::config_syntax, inner,
                      "section [prune:] has no name: write [prune:NAME]");
            return;
        }
        for (std::uint32_t j = 0; j < prunes_ && j < config::max_prune_sections; ++j) {
            if (prune_names_[j] == name) {
                c_.report(line, Reason::config_syntax, name,
                          "duplicate section [prune:%s] (first at line %u): merge the two or "
                          "rename one",
                          clip(name).str(), prune_lines_[j]);
                return;
            }
        }
        if (prunes_ == config::max_prune_sections) {
            c_.report(line, Reason::capacity_exceeded, name,
                      "too many prune jobs: a config holds at most %u [prune:NAME] sections",
                      config::max_prune_sections);
            return;
        }
        prune_names_[prunes_] = name;
        prune_lines_[prunes_] = line;
        kind_ = section::prune;
        c_.prune = PruneSpec{};
        c_.prune.name = name;
        start_keys(prune_section);
    }

    void start_keys(const section_def& def) noexcept {
        def_ = &def;
        header_line_ = c_.line;
        seen_ = 0;
        bad_ = 0;
        kind_def_ = nullptr;
        for (unsigned& l : key_line_) {
            l = c_.line;
        }
    }

    // The name the section's messages print after its label.
    std::string_view section_name() const noexcept {
        return kind_ == section::service ? c_.service.name
               : kind_ == section::probe ? c_.probe.name
               : kind_ == section::prune ? c_.prune.name
                                         : std::string_view{};
    }

    // The checks that need the whole section (a required key; the kind may
    // come after the keys that depend on it), then it is stored.
    void finish_section() noexcept {
        if (keyed()) {
            for (const key_def& d : def_->keys) {
                if ((d.flags & key_required) != 0 && (seen_ & bit(index(&d))) == 0) {
                    c_.report(header_line_, Reason::config_bad_value, section_name(),
                              "[%s%s] has no %s: %s", def_->label, clip(section_name()).str(),
                              d.name, d.hint);
                }
            }
        }
        if (kind_ == section::service) {
            ServiceSpec& s = c_.service;
            s.argv = c_.out.argv.since(argv_start_);
            s.env = c_.out.env.since(env_start_);
            s.depends_on = c_.out.deps.since(deps_start_);
            if (c_.out.services != nullptr && services_ < c_.out.capacity) {
                c_.out.services[services_] = s;
                store_lines(c_.out.lines + std::size_t{services_} * custos::service_field_count,
                            custos::service_field_count);
            }
            ++services_;
        } else if (kind_ == section::probe) {
            finish_probe();
        } else if (kind_ == section::watchdog && c_.out.watchdog_lines != nullptr) {
            store_lines(c_.out.watchdog_lines, custos::watchdog_field_count);
        } else if (kind_ == section::control) {
            finish_control();
        } else if (kind_ == section::prune) {
            if (c_.out.prunes != nullptr && prunes_ < c_.out.prune_capacity) {
                c_.out.prunes[prunes_] = c_.prune;
                store_lines(c_.out.prune_lines + std::size_t{prunes_} * custos::prune_field_count,
                            custos::prune_field_count);
            }
            ++prunes_;
        }
        kind_ = section::none;
    }

    // enabled = no takes the socket away; without a socket key, the default.
    // Both enabled = no and a socket is a contradiction the operator settles.
    void finish_control() noexcept {
        const std::size_t enabled = index(find_key(*def_, "enabled"));
        const std::size_t socket = index(find_key(*def_, "socket"));
        const bool has_socket = (seen_ & bit(socket)) != 0;
        if (!c_.ctl.enabled) {
            if (has_socket) {
                c_.report(key_line_[enabled], Reason::config_bad_value, "enabled",
                          "enabled = no turns the control plane off, but socket is set (line "
                          "%u): remove one of them",
                          key_line_[socket]);
            }
            c_.ctl.cfg.socket = {};
        } else if (!has_socket) {
            c_.ctl.cfg.socket = control::default_socket;
        }
        c_.ctl.cfg.operators = {c_.ctl.operators, c_.ctl.operator_count};
        if (c_.out.control_lines != nullptr) {
            store_lines(c_.out.control_lines, control_field_count);
        }
    }

    void finish_probe() noexcept {
        ProbeSpec& p = c_.probe;
        if (kind_def_ == nullptr) {
            c_.report(header_line_, Reason::config_bad_value, p.name,
                      "probe '%s' has no kind: set one of tcp, http, unix, exec, file, all",
                      clip(p.name).str());
        } else {
            // A key whose value was refused is not reported a second time.
            for (const key_def& d : def_->keys) {
                const std::uint32_t b = bit(index(&d));
                if ((seen_ & b) == 0 || (bad_ & b) != 0 || (d.flags & key_kind_only) == 0 ||
                    static_cast<ProbeKind>(d.kind) == p.kind) {
                    continue;
                }
                c_.report(key_line_[index(&d)], Reason::config_bad_value, d.name,
                          "%s applies to %s probes only, and probe '%s' is a %s probe: remove it",
                          d.name, probe_kind_name(static_cast<ProbeKind>(d.kind)).data(),
                          clip(p.name).str(), probe_kind_name(p.kind).data());
            }
        }
        p.argv = p.kind == ProbeKind::exec ? c_.out.argv.since(argv_start_)
                                           : std::span<const std::string_view>{};
        p.members = c_.out.members.since(members_start_);
        p.expect_status = c_.out.statuses.since(statuses_start_);
        if (c_.out.probes != nullptr && probes_ < c_.out.probe_capacity) {
            c_.out.probes[probes_] = p;
            store_lines(c_.out.probe_lines + std::size_t{probes_} * custos::probe_field_count,
                        custos::probe_field_count);
        }
        ++probes_;
    }

    // The header's line in every slot, then each key's: a kind key's only
    // when it is the section's kind.
    void store_lines(unsigned* lines, std::size_t slots) const noexcept {
        for (std::size_t f = 0; f < slots; ++f) {
            lines[f] = header_line_;
        }
        for (const key_def& d : def_->keys) {
            const std::size_t i = index(&d);
            if ((seen_ & bit(i)) != 0 && d.slot != no_slot &&
                ((d.flags & key_sets_kind) == 0 || &d == kind_def_)) {
                lines[d.slot] = key_line_[i];
            }
        }
    }

    void pair(std::string_view key, std::string_view value) noexcept {
        switch (kind_) {
        case section::none:
            c_.report(c_.line, Reason::config_syntax, key,
                      "key '%s' is outside any section: put it under [custos], [service:NAME], "
                      "[probe:NAME], [watchdog], [control] or [log]",
                      clip(key).str());
            return;
        case section::skipped:
            return;
        case section::custos:
        case section::service:
        case section::probe:
        case section::watchdog:
        case section::control:
        case section::log:
        case section::prune:
            key_value(key, value);
            return;
        }
    }

    std::size_t index(const key_def* d) const noexcept {
        return static_cast<std::size_t>(d - def_->keys.data());
    }
    static std::uint32_t bit(std::size_t i) noexcept { return std::uint32_t{1} << i; }

    // The one lookup, did-you-mean and duplicate check of every section.
    void key_value(std::string_view key, std::string_view value) noexcept {
        const key_def* d = find_key(*def_, key);
        if (d == nullptr) {
            const char* hint = suggest_key(*def_, key);
            clip k(key);
            c_.report(c_.line, Reason::config_unknown_key, key, "unknown key '%s' in [%s%s]%s%s%s",
                      k.str(), def_->label, clip(section_name()).str(),
                      hint != nullptr ? " (did you mean '" : "", hint != nullptr ? hint : "",
                      hint != nullptr ? "'?)" : "");
            return;
        }
        c_.key = d;
        if ((d->flags & key_retired) != 0) {
            d->set(c_, value);
            return;
        }
        const std::size_t i = index(d);
        const std::uint32_t b = bit(i);
        if ((d->flags & key_sets_kind) != 0) {
            if (kind_def_ != nullptr && kind_def_ != d) {
                c_.report(c_.line, Reason::config_bad_value, d->name,
                          "probe '%s' has two kinds, %s (line %u) and %s: keep one",
                          clip(section_name()).str(), kind_def_->name, key_line_[index(kind_def_)],
                          d->name);
                return;
            }
            // Before the value is read: an empty one is not also "no kind".
            kind_def_ = d;
            c_.probe.kind = static_cast<ProbeKind>(d->kind);
        }
        if ((seen_ & b) != 0 && (d->flags & key_repeats) == 0) {
            c_.report(c_.line, Reason::config_syntax, d->name,
                      "duplicate key '%s' in [%s%s] (first at line %u): keep one", d->name,
                      def_->label, clip(section_name()).str(), key_line_[i]);
            bad_ |= b;
            return;
        }
        if ((seen_ & b) == 0) {
            key_line_[i] = c_.line;
        }
        seen_ |= b;
        if (value.empty()) {
            c_.report(c_.line, Reason::config_bad_value, d->name, "key '%s' has no value", d->name);
            bad_ |= b;
            return;
        }
        const std::size_t found_before = c_.found;
        d->set(c_, value);
        if (c_.found != found_before) {
            bad_ |= b;
        }
    }

    char* text_;
    std::size_t size_;
    const char* file_;
    key_context c_;
    name_set* names_;
    name_set* probe_names_;
    std::uint32_t services_ = 0;
    std::uint32_t probes_ = 0;
    std::uint32_t prunes_ = 0;
    std::string_view prune_names_[config::max_prune_sections];
    unsigned prune_lines_[config::max_prune_sections] = {};

    section kind_ = section::none;
    unsigned custos_line_ = 0;
    unsigned watchdog_line_ = 0;
    unsigned control_line_ = 0;
    unsigned log_line_ = 0;

    // The current section's keys: bit(index in def_->keys) of those seen,
    // and of those whose value was refused; each one's first line.
    const section_def* def_ = nullptr;
    unsigned header_line_ = 0;
    std::uint32_t seen_ = 0;
    std::uint32_t bad_ = 0;
    unsigned key_line_[max_keys] = {};
    const key_def* kind_def_ = nullptr; // the kind key, once seen

    std::size_t argv_start_ = 0; // of the current service or probe
    std::size_t env_start_ = 0;
    std::size_t deps_start_ = 0;
    std::size_t members_start_ = 0;
    std::size_t statuses_start_ = 0;
};

} // namespace

bool config::parse_owned(char* text, std::size_t size, problem_list& problems) noexcept {
    // Pass 1: check everything, count what pass 2 stores.
    arena local_scratch;
    arena local_probe_scratch;
    arena& scratch = scratch_.fixed() ? scratch_ : local_scratch;
    arena& probe_scratch = probe_scratch_.fixed() ? probe_scratch_ : local_probe_scratch;
    name_set names;
    name_set probe_names;
    std::size_t headers = ini::count_headers(text, size);
    if (!names.reserve(scratch, headers < max_service_sections ? headers : max_service_sections) ||
        !probe_names.reserve(probe_scratch,
                             headers < max_probe_sections ? headers : max_probe_sections)) {
        if (scratch.fixed()) {
            problems.add(0, Error(Reason::out_of_memory, ENOMEM, "config"),
                         "%zu sections: more than custosd made room for at start (%zu bytes); "
                         "restart custosd to load this config",
                         headers, scratch.capacity());
        } else {
            problems.add(0, Error(Reason::out_of_memory, ENOMEM, "config"),
                         "out of memory reading the config");
        }
        return false;
    }
    table_out none;
    parser check(text, size, path_, &problems, &names, &probe_names, runtime_, watchdog_, log_,
                 control_in{control_, operators_}, none);
    check.run();
    if (check.found() != 0) {
        clear();
        return false;
    }

    // Pass 2: the same walk, storing into memory of exactly the right size.
    const table_counts counts = check.counts();
    table_out out;
    arena measure;
    lay_out(measure, counts, out);
    if (!data_.reserve(measure.needed())) {
        problems.add(0, Error(Reason::out_of_memory, ENOMEM, "config"),
                     data_.fixed() ? "the table needs %zu bytes, more than custosd made room for "
                                     "at start: restart custosd to load this config"
                                   : "out of memory: the table needs %zu bytes",
                     measure.needed());
        clear();
        return false;
    }
    out = table_out{};
    lay_out(data_, counts, out);
    CUSTOS_ASSERT(out.services != nullptr && out.lines != nullptr && out.probes != nullptr &&
                  out.probe_lines != nullptr && out.argv.base != nullptr &&
                  out.env.base != nullptr && out.deps.base != nullptr &&
                  out.members.base != nullptr && out.statuses.base != nullptr &&
                  (counts.prunes == 0 || (out.prunes != nullptr && out.prune_lines != nullptr)));
    runtime_ = RuntimeConfig{};
    watchdog_ = WatchdogConfig{};
    log_ = LogConfig{};
    control_ = ControlConfig{};
    control_.socket = control::default_socket;
    out.watchdog_lines = watchdog_lines_;
    out.control_lines = control_lines_;
    parser build(text, size, path_, nullptr, nullptr, nullptr, runtime_, watchdog_, log_,
                 control_in{control_, operators_}, out);
    build.run();
    CUSTOS_ASSERT(build.found() == 0 && build.counts() == counts);
    services_ = out.services;
    service_count_ = counts.services;
    lines_ = out.lines;
    probes_ = out.probes;
    probe_count_ = counts.probes;
    probe_lines_ = out.probe_lines;
    prunes_ = out.prunes;
    prune_count_ = counts.prunes;
    prune_lines_ = out.prune_lines;
    return true;
}

void config::fix(std::size_t text_bytes, std::size_t data_bytes, std::size_t sections) noexcept {
    // A failed reserve leaves no room: every later load fails, and says so.
    (void)text_.reserve(text_bytes);
    (void)data_.reserve(data_bytes);
    (void)scratch_.reserve(name_set::bytes_for(sections));
    (void)probe_scratch_.reserve(name_set::bytes_for(sections));
    text_.fix();
    data_.fix();
    scratch_.fix();
    probe_scratch_.fix();
}

} // namespace custos::cfg
