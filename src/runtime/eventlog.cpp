// Runtime::impl's event log: the sink laid out and opened at init, the boot
// record at start, its writes after each loop turn, GET /events, and
// log_event() for the appliance's threads.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "control/http.hpp"
#include "core/text_out.hpp"
#include "eventlog/previous.hpp"
#include "ports/reset_record.hpp"
#include "runtime/impl.hpp"

namespace custos {

namespace {

// The sink of the running Runtime, for log_event() (log.hpp): set by
// start(), cleared by the runtime's destruction.
std::atomic<eventlog::sink*> current_sink{nullptr};

constexpr std::uint32_t events_limit_default = 100;
constexpr std::uint32_t events_limit_max = 1000;

// A decimal query value; false when absent digits or overflowing.
bool decimal(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty() || s.size() > 19) {
        return false;
    }
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}

void bad_request(ControlResponse& resp, std::string_view message) noexcept {
    resp.status = 400;
    resp.content_type = control::content_json;
    resp.append("{\"error\":\"InvalidArgument\",\"message\":\"");
    resp.append(message);
    resp.append(
        "\",\"resolution\":\"since=SEQ (a record's seq), limit=1..1000, follow[=DURATION]\"}\n");
}

} // namespace

// GET /events[?since=SEQ][&limit=N][&follow[=DURATION]]: the records whose
// seq is SEQ or more, oldest first, one JSON object a line
// (application/x-ndjson; ?format=text: lines for people, each beginning
// #SEQ), at most N (100; at most 1000) and as many as the response buffer
// holds. They come from the RAM ring or, when SEQ is older than the ring's
// oldest and the log has a directory, from the files (log_dir::
// read_since(): bounded, synchronous on this thread); when the files have
// nothing from SEQ on (they lag the ring by the staging buffers, or are
// gone), from the ring. Headers: X-Custos-Next, the seq to ask for next;
// X-Custos-Lost, the records from SEQ up to the first one returned that
// neither holds any more (rotated away, evicted from the ring).
// None yet and ?follow: parked until a record comes (server.hpp).
bool Runtime::impl::events_feed(const ControlRequest& req, ControlResponse& resp, bool can_wait,
                                void* ctx) noexcept {
    impl& rt = *static_cast<impl*>(ctx);
    if (req.path != "/events") {
        resp.status = 404;
        resp.content_type = control::content_json;
        resp.append("{\"error\":\"ControlBadRequest\",\"message\":\"no such route\"}\n");
        return true;
    }
    char buf[32];
    std::uint64_t since = 0;
    std::uint64_t limit = events_limit_default;
    auto sq = control::query_param(req.query, "since", buf, sizeof buf);
    if (sq.present && (!sq.valid || !decimal(sq.value, since))) {
        bad_request(resp, "since= takes a record's seq");
        return true;
    }
    auto lq = control::query_param(req.query, "limit", buf, sizeof buf);
    if (lq.present &&
        (!lq.valid || !decimal(lq.value, limit) || limit == 0 || limit > events_limit_max)) {
        bad_request(resp, "limit= takes a count from 1 to 1000");
        return true;
    }
    auto fq = control::query_param(req.query, "format", buf, sizeof buf);
    const bool text = fq.present && fq.value == "text";
    if (fq.present && !text && fq.value != "json") {
        bad_request(resp, "format= takes text or json");
        return true;
    }
    char out[16384];
    const std::size_t room = resp.capacity() - resp.size();
    const std::size_t cap = room < sizeof out ? room : sizeof out;
    const eventlog::lines& ring = rt.elog.ring();
    std::size_t n = 0;
    std::uint64_t next = since;
    std::uint64_t lost = 0;
    bool from_files = false;
    if (rt.elog.has_dir() && (ring.empty() || since < ring.first_seq())) {
        // An unreadable directory is not this request's failure: the ring
        // answers, and the gap shows in X-Custos-Lost.
        auto page = rt.elog.read_files(since, static_cast<std::uint32_t>(limit), out, cap);
        if (page && page->lines != 0) {
            n = page->bytes;
            next = page->next;
            lost = page->lost;
            from_files = true;
        }
    }
    if (!from_files) {
        n = ring.copy_since(since, static_cast<std::uint32_t>(limit), out, cap, next);
        const std::uint64_t from = since == 0 ? 1 : since;
        if (n != 0 && from < ring.first_seq()) {
            lost = ring.first_seq() - from;
        }
    }
    if (n == 0 && can_wait) {
        return false;
    }
    resp.status = 200;
    resp.content_type = text ? control::content_text : std::string_view("application/x-ndjson");
    if (!text) {
        resp.append(std::string_view(out, n));
    } else {
        for (std::size_t at = 0; at < n;) {
            const void* nl = std::memchr(out + at, '\n', n - at);
            const std::size_t end =
                nl == nullptr ? n
                              : static_cast<std::size_t>(static_cast<const char*>(nl) - out) + 1;
            char line[eventlog::max_line];
            const std::size_t k = eventlog::lines::to_text(out + at, end - at, line, sizeof line);
            if (k > resp.capacity() - resp.size()) {
                // The rest next time, from this line on.
                std::uint64_t s = 0;
                if (eventlog::lines::seq_of(out + at, end - at, s)) {
                    next = s;
                }
                break;
            }
            resp.append(std::string_view(line, k));
            at = end;
        }
    }
    text_out h(rt.events_head, sizeof rt.events_head);
    h.put("X-Custos-Next: ").put_u64(next).put("\r\nX-Custos-Lost: ").put_u64(lost).put("\r\n");
    resp.headers = h.view();
    return true;
}

Result<void> Runtime::impl::open_eventlog(const Table& t) noexcept {
    if (auto r = listeners.try_add(elog); !r) {
        return r;
    }
    if (auto r = ctl.server.add_feed("events", &impl::events_feed, this); !r) {
        return r;
    }
    if (auto r = ctl.server.add_feed("logs", &impl::logs_feed, this); !r) {
        return r;
    }
    (void)t;
    return elog.open(reactor, logcfg, ctl.ctx.boot_id);
}

void Runtime::impl::boot_record() noexcept {
    eventlog::record r;
    r.kind = status::event_kind::log;
    r.level = eventlog::level::notice;
    r.reason = Reason::runtime_started;
    r.mono_ns = to_ns(reactor.now());
    r.wall_ns = status::wall_now_ns();
    r.pid = static_cast<int>(::getpid());
    r.set_name("custos");
    char msg[eventlog::record::message_cap];
    text_out o(msg, sizeof msg);
    o.put("custos ").put(ctl.ctx.version).put(" started on ").put(reactor.backend_name());
    o.put(": ").put_u64(count).put(" services, ").put_u64(nprobes).put(" probes, ");
    o.put_u64(nmonitors).put(" monitors; log ");
    if (elog.has_dir()) {
        o.put(elog.dir_file());
    } else {
        o.put("in RAM only");
    }
    r.set_message(o.view());
    elog.emit(r, true);
    previous_run_record();
    current_sink.store(&elog, std::memory_order_release);
    open_capture();
}

// Without a watchdog's reset record (none configured, no state_file, or
// nothing it could classify: its first boot, a damaged file), the event
// log's last line says how the previous run ended. The watchdog's record
// wins where it has one: it knows whether custos starved it.
void Runtime::impl::previous_run_record() noexcept {
    if (wd.on && wd.feeder.status().previous.cls != ResetClass::unknown) {
        return;
    }
    eventlog::boot_status bs;
    // The sysfs root: CUSTOS_SYSFS_ROOT for tests (a directory laid out
    // like /sys), else /sys. Reading bootstatus does not open the device.
    const char* root = std::getenv("CUSTOS_SYSFS_ROOT");
    if (auto b = ports::read_sysfs_boot_status(root != nullptr && *root != '\0' ? root : "/sys");
        b) {
        bs.known = true;
        bs.bits = *b;
    }
    if (wd.on) {
        // The open device's own WDIOC_GETBOOTSTATUS (0 when it has none).
        bs.bits |= wd.feeder.status().previous.boot_status;
        bs.known = bs.known || wd.feeder.status().previous.boot_status != 0;
    }
    eventlog::record r;
    if (eventlog::previous_run_record(elog.previous(), ctl.ctx.boot_id, bs, to_ns(reactor.now()),
                                      status::wall_now_ns(), r)) {
        elog.emit(r, true);
    }
}

void Runtime::impl::close_eventlog() noexcept {
    const eventlog::record last = eventlog::stop_record(
        exit_status, to_ns(reactor.now()), status::wall_now_ns(), static_cast<int>(::getpid()));
    elog.close(&last);
}

void Runtime::impl::forget_eventlog() noexcept {
    eventlog::sink* mine = &elog;
    current_sink.compare_exchange_strong(mine, nullptr, std::memory_order_acq_rel);
}

bool log_event(std::string_view reason, std::string_view message, std::span<const LogField> fields,
               LogLevel level, std::string_view name) noexcept {
    eventlog::sink* s = current_sink.load(std::memory_order_acquire);
    if (s == nullptr) {
        return false;
    }
    eventlog::record r;
    if (!eventlog::make_custom(r, reason, message, fields, level, name, to_ns(mono_clock::now()),
                               status::wall_now_ns())) {
        return false;
    }
    return s->post(r);
}

} // namespace custos
