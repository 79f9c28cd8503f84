// Runtime::impl: the services' captured output. The process host drains
// every captured service's stdout and stderr pipes and hands each chunk
// here, on the reactor thread, in the order written per stream; it has
// already counted the bytes (RuntimeStats::output_bytes) and reads on
// whatever this does, so nothing here can make a service block. Each chunk
// goes to the capture sink (src/capture/): cut into stamped lines, kept in
// the slot's RAM ring and, for output = file, batched into its files
// (handed to the reactor's write op after each loop turn, from publish();
// a disk that does not keep up costs lines, counted, never a wait).
//
// Slots: the table's services are laid out with their own output mode;
// the spare slots a reload may fill capture to their RAM ring only (their
// names are not known at init, so they have no directory).
#include <cstring>
#include <new>

#include "control/http.hpp"
#include "runtime/impl.hpp"

namespace custos {

Result<void> Runtime::impl::layout_capture(std::span<const process::launch> launches) noexcept {
    if (cap_specs == nullptr) {
        cap_specs = new (std::nothrow) capture::slot_spec[rl.slots != 0 ? rl.slots : 1];
        if (cap_specs == nullptr) {
            return fail(Reason::out_of_memory, ENOMEM, "capture");
        }
    }
    for (std::uint32_t i = 0; i < rl.slots; ++i) {
        if (i < launches.size()) {
            cap_specs[i] = {launches[i].name, launches[i].output};
        } else {
            cap_specs[i] = {{}, OutputMode::ring};
        }
    }
    cap.attach(reactor);
    return cap.reserve(mem, {cap_specs, rl.slots}, logcfg);
}

// At start, after the boot record: each file slot's directory, and a
// record for one that cannot be opened (that service keeps its ring).
void Runtime::impl::open_capture() noexcept {
    delete[] cap_specs;
    cap_specs = nullptr;
    for (std::uint32_t i = 0; i < cap.size(); ++i) {
        if (!cap.captures(i) || i >= count) {
            continue;
        }
        const OutputMode m = plan.table().services[i].output;
        const bool wants_files =
            m == OutputMode::file || (m == OutputMode::automatic && elog_dir_set);
        if (!wants_files) {
            continue;
        }
        auto r = cap.open_files(i);
        if (r) {
            continue;
        }
        eventlog::record rec;
        rec.kind = status::event_kind::log;
        rec.level = eventlog::level::error;
        rec.reason = r.error().reason();
        rec.sys_errno = r.error().sys_errno();
        rec.mono_ns = to_ns(reactor.now());
        rec.wall_ns = status::wall_now_ns();
        rec.set_name(plan.services()[i].name);
        char msg[eventlog::record::message_cap];
        text_out o(msg, sizeof msg);
        o.put(r.error().subject()).put(": this service's output is kept in RAM only");
        rec.set_message(o.view());
        rec.set_resolution(r.error().resolution());
        elog.emit(rec);
    }
}

// At the stop: every partial line and batch handed off to the disk. The
// loop then runs until the writes are done (cap.busy()), and the files
// are closed after them (cap.close()).
void Runtime::impl::close_capture() noexcept {
    const std::int64_t mono = to_ns(reactor.now());
    const std::int64_t wall = status::wall_now_ns();
    for (std::uint32_t i = 0; i < cap.size(); ++i) {
        cap.on_stop(i, wall, mono, elog.clock_trusted());
    }
}

// Slot `slot`'s service wrote `len` bytes to stream 1 (stdout) or 2
// (stderr); `data` lasts only for this call.
void Runtime::impl::on_output(std::uint32_t slot, int stream, const char* data,
                              std::size_t len) noexcept {
    cap.on_output(slot, stream, data, len, status::wall_now_ns(), to_ns(reactor.now()),
                  elog.clock_trusted());
    logs_new = true; // the logs followers are asked again once this turn is done
}

} // namespace custos

namespace custos {

namespace {

bool count_value(std::string_view s, std::uint64_t max, std::uint64_t& out) noexcept {
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
    if (v > max) {
        return false;
    }
    out = v;
    return true;
}

void logs_error(ControlResponse& resp, int status, std::string_view reason, std::string_view msg,
                std::string_view resolution) noexcept {
    resp.status = status;
    resp.content_type = control::content_json;
    resp.append("{\"error\":\"");
    resp.append(reason);
    resp.append("\",\"message\":\"");
    resp.append(msg);
    resp.append("\",\"resolution\":\"");
    resp.append(resolution);
    resp.append("\"}\n");
}

} // namespace

// GET /services/NAME/logs[?n=LINES][&since=LINE][&follow[=D]] (and
// /logs/NAME): the service's captured output from its RAM ring, as text:
// its last LINES lines (100; at most 10000), or, with since, the lines
// numbered LINE on (a follower's next request). X-Custos-Next says the
// number to ask for next, X-Custos-Lost how many lines between since and
// the oldest held the ring no longer has. With ?follow and since, parked
// until a line comes (server.hpp).
bool Runtime::impl::logs_feed(const ControlRequest& req, ControlResponse& resp, bool can_wait,
                              void* ctx) noexcept {
    impl& rt = *static_cast<impl*>(ctx);
    std::string_view name;
    constexpr std::string_view svc = "/services/";
    constexpr std::string_view logs = "/logs/";
    if (req.path.substr(0, svc.size()) == svc) {
        name = req.path.substr(svc.size());
        name = name.substr(0, name.find('/'));
    } else if (req.path.substr(0, logs.size()) == logs) {
        name = req.path.substr(logs.size());
    }
    std::uint32_t slot = UINT32_MAX;
    for (std::uint32_t k = 0; k < rt.count && !name.empty(); ++k) {
        if (rt.slot_status(rt.rl.view[k]).name == name) {
            slot = rt.rl.view[k];
        }
    }
    if (slot == UINT32_MAX) {
        logs_error(resp, 404, "ServiceUnknown", "no such service",
                   "custosctl status lists the services");
        return true;
    }
    if (!rt.cap.captures(slot)) {
        logs_error(resp, 409, "InvalidArgument", "this service's output is not captured",
                   "Set output = ring or file for it (inherit and null keep nothing)");
        return true;
    }
    char buf[32];
    std::uint64_t n = 100;
    std::uint64_t since = 0;
    auto nq = control::query_param(req.query, "n", buf, sizeof buf);
    if (nq.present && (!nq.valid || !count_value(nq.value, 10000, n) || n == 0)) {
        logs_error(resp, 400, "InvalidArgument", "n= takes a line count from 1 to 10000",
                   "n=LINES, since=LINE, follow[=DURATION]");
        return true;
    }
    auto sq = control::query_param(req.query, "since", buf, sizeof buf);
    if (sq.present && (!sq.valid || !count_value(sq.value, UINT64_MAX / 10, since))) {
        logs_error(resp, 400, "InvalidArgument", "since= takes a line number",
                   "n=LINES, since=LINE, follow[=DURATION]");
        return true;
    }
    const capture::ring& ring = rt.cap.output(slot);
    char out[16384];
    const std::size_t room = resp.capacity() - resp.size() - 1;
    const std::size_t cap = room < sizeof out ? room : sizeof out;
    const capture::read_result r =
        sq.present ? ring.since(since, out, cap) : ring.tail(n, out, cap);
    if (r.lines == 0 && can_wait && sq.present) {
        return false;
    }
    text_out h(rt.logs_head, sizeof rt.logs_head);
    h.put("X-Custos-Next: ").put_u64(r.next).put("\r\nX-Custos-Lost: ").put_u64(r.lost);
    h.put("\r\n");
    resp.status = 200;
    resp.content_type = control::content_text;
    resp.headers = h.view();
    resp.append(std::string_view(out, r.bytes));
    return true;
}

} // namespace custos

namespace custos {

// Up to four archives (one per service in turn), and a record saying so:
// the event log's records matter more than old output.
void Runtime::impl::make_room_for_log() noexcept {
    std::uint64_t freed = 0;
    std::uint32_t files = 0;
    for (; files < 4; ++files) {
        const std::uint64_t b = cap.free_oldest();
        if (b == 0) {
            break;
        }
        freed += b;
    }
    if (files == 0) {
        return;
    }
    eventlog::record rec;
    rec.kind = status::event_kind::log;
    rec.level = eventlog::level::warning;
    rec.reason = Reason::event_log_write_failed;
    rec.sys_errno = ENOSPC;
    rec.mono_ns = to_ns(reactor.now());
    rec.wall_ns = status::wall_now_ns();
    rec.set_name("eventlog");
    char msg[eventlog::record::message_cap];
    text_out o(msg, sizeof msg);
    o.put("the log's filesystem is full: deleted the ").put_u64(files);
    o.put(" oldest captured-output archives (").put_u64(freed).put(" bytes) for the event log");
    rec.set_message(o.view());
    rec.set_resolution(Error(Reason::event_log_write_failed, ENOSPC).resolution());
    elog.emit(rec);
}

} // namespace custos
