// The renderers (render.hpp): the documents' steps and fill(). A document
// is a table of steps; a step is a count of items and the function that
// renders one of them. fill() walks the table, renders each item after a
// mark and rewinds to it when the item did not fit whole. The field names
// and formats are control.hpp's; the records' JSON is render_json.cpp's,
// the text documents render_text.cpp's, /metrics render_prom.cpp's.
#include "status/render.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/assert.hpp"
#include "status/render_detail.hpp"

namespace custos::status::detail {

// --- the records -----------------------------------------------------------------

const ServiceStatus& service_part(const snapshot& snap, std::uint32_t i,
                                  snapshot::service_part what, std::uint32_t* seq) noexcept {
    static thread_local ServiceStatus s;
    if (i >= snap.service_count()) {
        s = ServiceStatus{};
        if (seq != nullptr) {
            *seq = 1;
        }
        return s;
    }
    const std::uint32_t read = snap.service_into(i, s, what);
    if (seq != nullptr) {
        *seq = read;
    }
    return s;
}

const ProbeStatus& probe_part(const snapshot& snap, std::uint32_t p, snapshot::probe_part what,
                              std::uint32_t* seq) noexcept {
    static thread_local ProbeStatus r;
    if (p >= snap.probe_count()) {
        r = ProbeStatus{};
        if (seq != nullptr) {
            *seq = 1;
        }
        return r;
    }
    const std::uint32_t read = snap.probe_into(p, r, what);
    if (seq != nullptr) {
        *seq = read;
    }
    return r;
}

namespace {

// --- the documents' steps ------------------------------------------------------

std::uint32_t count(const render_context& c, const step& s) noexcept {
    const snapshot& snap = *c.snap;
    switch (s.n) {
    case items::one:
        return 1;
    case items::services:
        return snap.service_count();
    case items::probes:
        return snap.probe_count();
    case items::monitors:
        return snap.monitor_count();
    case items::reasons:
        return health_of(snap).reason_count;
    case items::checks:
        return check_count(snap);
    case items::family:
        return s.fam->over == per::once      ? 1
               : s.fam->over == per::service ? 1 + snap.service_count()
               : s.fam->over == per::probe   ? 1 + snap.probe_count()
                                             : 1 + snap.monitor_count();
    case items::reactor:
        return c.reactor != nullptr ? 1 : 0;
    case items::control:
        return c.control != nullptr ? 1 : 0;
    case items::process:
        return c.process != nullptr ? 1 : 0;
    }
    return 0;
}

bool lit(const item& it) noexcept {
    it.o.put(it.s.text);
    return false;
}

// Service `i` of /status: from the memo when it holds the text of the
// record as it is, else rendered from the snapshot (and kept).
void service_element(text_out& o, const render_context& c, std::uint32_t i) noexcept {
    const snapshot& snap = *c.snap;
    text_memo* m = c.memo;
    if (m == nullptr || i >= memo_ops::services(*m) || i >= snap.service_count()) {
        put_service(o, c, service_part(snap, i, snapshot::service_part::shown));
        return;
    }
    if (memo_ops::replay(*m, i, snap.service_sequence(i), o, c)) {
        return;
    }
    const std::size_t start = o.size();
    memo_ops::begin(*m);
    std::uint32_t seq = 1;
    put_service(o, c, service_part(snap, i, snapshot::service_part::shown, &seq));
    memo_ops::end(*m, i, seq, o, start, c);
}

void probe_element(text_out& o, const render_context& c, std::uint32_t p) noexcept {
    const snapshot& snap = *c.snap;
    text_memo* m = c.memo;
    if (m == nullptr || p >= memo_ops::probes(*m) || p >= snap.probe_count()) {
        put_probe(o, c, probe_part(snap, p, snapshot::probe_part::all));
        return;
    }
    const std::uint32_t slot = memo_ops::services(*m) + p;
    if (memo_ops::replay(*m, slot, snap.probe_sequence(p), o, c)) {
        return;
    }
    const std::size_t start = o.size();
    memo_ops::begin(*m);
    std::uint32_t seq = 1;
    put_probe(o, c, probe_part(snap, p, snapshot::probe_part::all, &seq));
    memo_ops::end(*m, slot, seq, o, start, c);
}

// An element of one of the arrays: a service, probe, monitor, health
// reason or /health?json check.
bool element(const item& it) noexcept {
    const snapshot& snap = *it.c.snap;
    if (it.s.n == items::reasons) {
        HealthStatus h;
        if (!snap.health_reason(it.i, h)) {
            return false; // gone since the count (a newer health): left out
        }
        it.o.put(it.first ? "" : ",");
        put_health_reason(it.o, it.c, h.reasons[it.i]);
        return true;
    }
    it.o.put(it.first ? "" : ",");
    if (it.s.n == items::services) {
        service_element(it.o, it.c, it.i);
    } else if (it.s.n == items::probes) {
        probe_element(it.o, it.c, it.i);
    } else if (it.s.n == items::monitors) {
        put_monitor(it.o, it.c, snap.monitor(it.i));
    } else {
        const check k = check_at(snap, it.i);
        jobj j(it.o);
        j.str("kind", subject_kind_name(k.kind)).str("name", k.name).str("state", k.state);
        j.flag("ok", k.ok).reason("reason", k.ok ? Reason::unknown : k.reason).close();
    }
    return true;
}

bool reasons_tail(const item& it) noexcept {
    it.o.put("],\"reasons_total\":").put_u64(health_of(*it.c.snap).reason_total).put(it.s.text);
    return false;
}

bool status_head(const item& it) noexcept {
    const render_context& c = it.c;
    it.o.put("{\"runtime\":");
    jobj r(it.o);
    r.str("version", c.version).str("backend", c.backend);
    r.str("backend_reason", c.backend_reason).inum("pid", c.pid);
    r.secs("uptime_s", c.now_ns - c.started_ns, c.started_ns != 0);
    if (c.boot_id.empty()) {
        r.null("boot_id");
    } else {
        r.str("boot_id", c.boot_id);
    }
    const PreviousBoot prev = c.snap->watchdog().previous;
    if (prev.cls == ResetClass::unknown) {
        r.null("previous_boot");
    } else {
        jobj p(r.key("previous_boot"));
        p.str("reset", reset_class_name(prev.cls)).reason("reason", prev.reason).close();
    }
    r.inum("now_ns", c.now_ns).time("now", c.now_ns, c).close();
    it.o.put(",\"health\":");
    jobj h(it.o);
    put_health_head(h, c, health_of(*c.snap));
    return false;
}

bool health_head(const item& it) noexcept {
    jobj h(it.o);
    put_health_head(h, it.c, health_of(*it.c.snap));
    return false;
}

bool status_watchdog(const item& it) noexcept {
    it.o.put("],\"watchdog\":");
    put_watchdog(it.o, it.c.snap->watchdog());
    return false;
}

bool status_counters(const item& it) noexcept {
    it.o.put(",\"counters\":");
    put_counters(it.o, it.c);
    it.o.put("}\n");
    return false;
}

// The one-object documents: the record `index`, then a newline.
bool service_one(const item& it) noexcept {
    put_service(it.o, it.c, service_part(*it.c.snap, it.index, snapshot::service_part::shown));
    it.o.put('\n');
    return false;
}
bool probe_one(const item& it) noexcept {
    put_probe(it.o, it.c, it.c.snap->probe(it.index));
    it.o.put('\n');
    return false;
}
bool monitor_one(const item& it) noexcept {
    put_monitor(it.o, it.c, it.c.snap->monitor(it.index));
    it.o.put('\n');
    return false;
}
bool watchdog_one(const item& it) noexcept {
    put_watchdog(it.o, it.c.snap->watchdog());
    it.o.put('\n');
    return false;
}

constexpr step health_text_steps[] = {{items::checks, check_line}, {items::one, health_line}};

constexpr step health_json_steps[] = {
    {items::one, health_head},
    {items::reasons, element},
    {items::one, reasons_tail, ",\"checks\":["},
    {items::checks, element},
    {items::one, lit, "]}\n"},
};

constexpr step status_json_steps[] = {
    {items::one, status_head},
    {items::reasons, element},
    {items::one, reasons_tail, "},\"services\":["},
    {items::services, element},
    {items::one, lit, "],\"probes\":["},
    {items::probes, element},
    {items::one, lit, "],\"monitors\":["},
    {items::monitors, element},
    {items::one, status_watchdog},
    {items::one, status_counters},
};

constexpr step status_tsv_steps[] = {{items::services, tsv_line}};
constexpr step service_json_steps[] = {{items::one, service_one}};
constexpr step service_text_steps[] = {{items::one, service_detail}};
constexpr step probe_json_steps[] = {{items::one, probe_one}};
constexpr step monitor_json_steps[] = {{items::one, monitor_one}};
constexpr step watchdog_json_steps[] = {{items::one, watchdog_one}};

std::span<const step> steps_of(doc kind) noexcept {
    switch (kind) {
    case doc::health_text:
        return health_text_steps;
    case doc::health_json:
        return health_json_steps;
    case doc::status_json:
        return status_json_steps;
    case doc::status_tsv:
        return status_tsv_steps;
    case doc::service_json:
        return service_json_steps;
    case doc::service_text:
        return service_text_steps;
    case doc::probe_json:
        return probe_json_steps;
    case doc::monitor_json:
        return monitor_json_steps;
    case doc::watchdog_json:
        return watchdog_json_steps;
    case doc::metrics:
        return metrics_steps();
    }
    return {};
}

} // namespace
} // namespace custos::status::detail

namespace custos::status {

using namespace detail;

std::size_t code_index(int http_status) noexcept {
    if (http_status < 400) {
        return 0;
    }
    switch (http_status) {
    case 400:
        return 1;
    case 403:
        return 2;
    case 404:
        return 3;
    case 408:
    case 413:
    case 431:
        return 5;
    case 503:
        return 6;
    default:
        return http_status < 500 ? 4 : 7;
    }
}

std::string_view code_label(std::size_t slot) noexcept {
    static constexpr sv labels[] = {"200", "400", "403", "404", "4xx", "413", "503", "5xx"};
    return slot < std::size(labels) ? labels[slot] : "5xx";
}

void document::begin(doc kind, const render_context& ctx, std::uint32_t index) noexcept {
    kind_ = kind;
    ctx_ = &ctx;
    index_ = index;
    step_ = 0;
    item_ = 0;
    count_ = 0;
    first_ = true;
    done_ = false;
    if (kind == doc::metrics && ctx.scratch != nullptr && ctx.snap != nullptr) {
        metrics_scratch& m = *ctx.scratch;
        const std::uint32_t ns = ctx.snap->service_count();
        const std::uint32_t np = ctx.snap->probe_count();
        m.services_filled =
            ns < m.services.size() ? ns : static_cast<std::uint32_t>(m.services.size());
        m.probes_filled = np < m.probes.size() ? np : static_cast<std::uint32_t>(m.probes.size());
        for (std::uint32_t i = 0; i < m.services_filled; ++i) {
            m.services[i] =
                figures_of(service_part(*ctx.snap, i, snapshot::service_part::no_deaths));
        }
        for (std::uint32_t i = 0; i < m.probes_filled; ++i) {
            m.probes[i] = figures_of(probe_part(*ctx.snap, i, snapshot::probe_part::figures));
        }
    }
}

bool document::fill(text_out& out) noexcept {
    if (done_ || ctx_ == nullptr || ctx_->snap == nullptr) {
        done_ = true;
        return true;
    }
    const std::span<const step> steps = steps_of(kind_);
    while (step_ < steps.size()) {
        const step& s = steps[step_];
        if (item_ == 0) {
            // Counted once per step (the reasons' count costs a health read).
            count_ = count(*ctx_, s);
        }
        if (item_ >= count_) {
            ++step_;
            item_ = 0;
            first_ = true;
            continue;
        }
        const text_out::mark_t m = out.mark();
        const bool element = s.render(item{out, *ctx_, s, index_, item_, first_});
        if (out.overflowed()) {
            if (m.len != 0) {
                out.rewind(m); // whole or absent: it goes first in the next buffer
                return false;
            }
            // Alone in an empty buffer and still too big: only a buffer
            // smaller than item_max may see this. The document ends cut.
            CUSTOS_ASSERT(out.capacity() < item_max);
            done_ = true;
            return true;
        }
        if (element) {
            first_ = false;
        }
        ++item_;
    }
    done_ = true;
    return true;
}

bool render_all(doc kind, const render_context& ctx, text_out& out, std::uint32_t index) noexcept {
    document d;
    d.begin(kind, ctx, index);
    return d.fill(out) && !out.overflowed();
}

int health_http_status(const HealthStatus& h) noexcept {
    return h.health == Health::ok || h.health == Health::degraded ? 200 : 503;
}

void put_time(text_out& out, std::int64_t at_ns, const render_context& ctx) noexcept {
    if (at_ns == 0 || ctx.wall_now_ns == 0) {
        out.put("null");
        return;
    }
    out.put('"');
    put_wall(out, wall_of(ctx, at_ns));
    out.put('"');
}

} // namespace custos::status
