// custosd's reload (SIGHUP, POST /reload): the config read again into a
// spare one, checked, and given to Runtime::reload(); see reloader in
// daemon.hpp.
#include <cstdio>

#include "custosd/daemon.hpp"
#include "table/diff.hpp"

namespace custos::daemon {

custos::Result<custos::ReloadSummary>
reload_config(custos::Runtime& rt, custos::ReloadReport& report, void* ctx) noexcept {
    using custos::Reason;
    reloader& r = *static_cast<reloader*>(ctx);
    utc_stamp at;
    say_tee = &report;
    static custos::cfg::problem_list problems;
    problems.clear();
    custos::Result<custos::ReloadSummary> out = custos::fail(Reason::reload_invalid, 0, r.path);
    if (!r.spare->load(r.path, problems)) {
        for (const custos::cfg::problem& p : problems) {
            char line[512];
            custos::cfg::format_problem(r.path, p, line, sizeof line);
            say("%s", line);
        }
        if (problems.dropped() != 0) {
            say("%s: %zu more problems not shown", r.path, problems.dropped());
        }
        char what[128];
        std::snprintf(what, sizeof what, "%s: %zu problem%s", r.path, problems.total(),
                      problems.total() == 1 ? "" : "s");
        out = custos::fail(Reason::reload_invalid, 0, what);
    } else {
        const custos::cfg::config& now = *r.current;
        const custos::cfg::config& next = *r.spare;
        const char* unsupported =
            !custos::tbl::same_runtime(now.runtime(), next.runtime())      ? "[custos]"
            : !custos::tbl::same_watchdog(now.watchdog(), next.watchdog()) ? "[watchdog]"
            : !custos::tbl::same_control(now.control(), next.control()) ||
                    now.has_control_section() != next.has_control_section()
                ? "[control]"
                : nullptr;
        line_sink sink(next, r.path);
        sink.count = check_cwds(next, r.path);
        if (unsupported != nullptr) {
            char what[64];
            std::snprintf(what, sizeof what, "%s changed", unsupported);
            out = custos::fail(Reason::reload_unsupported, 0, what);
        } else if (sink.count == 0) {
            custos::Table t = next.table();
            t.runtime = r.started.runtime;
            t.watchdog = r.started.watchdog;
            t.control = r.started.control;
            out = rt.reload(t, &sink);
            if (out) {
                r.current = r.spare; // the other fixed one is the next reload's
                r.spare = r.current == r.a ? r.b : r.a;
            }
        } else {
            char what[128];
            std::snprintf(what, sizeof what, "%s: %u problem%s", r.path, sink.count,
                          sink.count == 1 ? "" : "s");
            out = custos::fail(Reason::reload_invalid, 0, what);
        }
    }
    say_tee = nullptr;
    if (out) {
        std::fprintf(stderr,
                     "%s custosd: reloaded %s: %u added, %u removed, %u changed, %u unchanged; "
                     "probes: %u added, %u removed, %u changed, %u unchanged\n",
                     at.text, r.path, out->added, out->removed, out->changed, out->unchanged,
                     out->probes_added, out->probes_removed, out->probes_changed,
                     out->probes_unchanged);
    } else {
        char text[512];
        out.error().format(text, sizeof text);
        std::fprintf(stderr, "%s custosd: reload of %s refused, nothing changed: %s\n", at.text,
                     r.path, text);
    }
    return out;
}

} // namespace custos::daemon
