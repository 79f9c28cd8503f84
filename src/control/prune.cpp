// The retention pruner's routes (control.hpp): GET /prune and
// GET /prune/NAME read the jobs the runtime keeps (reactor thread: the
// live records, through actions); POST /prune/NAME runs one now or, with
// ?dry_run=1, lists what it would delete. Both POSTs are actions (operators
// only, each recorded as a control event): a run, dry or not, scans a
// directory on the reactor thread and probes other processes' files with
// leases, which is not for anyone who can connect.
//
// Bodies are rendered straight into the connection's response buffer; a
// run's file list stops where the buffer would not hold the rest, and
// "files_more" counts what was left out.
#include <cstdint>
#include <cstring>

#include "control/http.hpp"
#include "control/server.hpp"
#include "control/server_conn.hpp"
#include "core/text_out.hpp"

namespace custos::control {

using server_detail::head_room;
using server_detail::out_size;
using server_detail::param_cap;
using server_detail::tail_room;

namespace {

std::string_view order_name(PruneOrder o) noexcept {
    switch (o) {
    case PruneOrder::mtime:
        return "mtime";
    case PruneOrder::name_time:
        return "name";
    case PruneOrder::seq:
        return "seq";
    }
    return "mtime";
}

std::string_view combine_name(PruneCombine c) noexcept {
    switch (c) {
    case PruneCombine::any:
        return "any";
    case PruneCombine::all:
        return "all";
    }
    return "any";
}

void put_summary(text_out& o, const PruneSummary& s) noexcept {
    o.put("{\"scanned\":").put_u64(s.scanned).put(",\"classified\":").put_u64(s.classified);
    o.put(",\"unclassified\":").put_u64(s.unclassified);
    o.put(",\"protected_files\":").put_u64(s.protected_files);
    o.put(",\"unprovable\":").put_u64(s.unprovable).put(",\"deleted\":").put_u64(s.deleted);
    o.put(",\"deleted_bytes\":").put_u64(s.deleted_bytes).put(",\"kept\":").put_u64(s.kept);
    o.put(",\"kept_bytes\":").put_u64(s.kept_bytes).put(",\"changed\":").put_u64(s.changed);
    o.put(",\"unlink_failed\":").put_u64(s.unlink_failed).put('}');
}

void put_job(text_out& o, const PruneJobStatus& j, std::int64_t now_ns) noexcept {
    o.put("{\"name\":").put_json(j.name).put(",\"dir\":").put_json(j.dir);
    o.put(",\"glob\":").put_json(j.glob).put(",\"order\":\"").put(order_name(j.order));
    o.put("\",\"combine\":\"").put(combine_name(j.combine)).put("\",\"interval_s\":");
    o.put_seconds(std::chrono::duration_cast<nanos>(j.interval).count());
    o.put(",\"max_age_s\":").put_seconds(std::chrono::duration_cast<nanos>(j.max_age).count());
    o.put(",\"keep_newest\":").put_u64(j.keep_newest);
    o.put(",\"max_total_bytes\":").put_u64(j.max_total_bytes);
    o.put(",\"min_free_bytes\":").put_u64(j.min_free_bytes);
    o.put(",\"min_free_percent\":").put_u64(j.min_free_percent);
    o.put(",\"max_files\":").put_u64(j.max_files).put(",\"runs\":").put_u64(j.runs);
    o.put(",\"files_deleted\":").put_u64(j.files_deleted);
    o.put(",\"bytes_deleted\":").put_u64(j.bytes_deleted);
    o.put(",\"failures\":").put_u64(j.failures).put(",\"last_run_ns\":");
    if (j.last_run_mono_ns != 0) {
        o.put_i64(j.last_run_mono_ns);
    } else {
        o.put("null");
    }
    o.put(",\"next_run_in_s\":");
    if (j.next_run_mono_ns != 0) {
        const std::int64_t in = j.next_run_mono_ns - now_ns;
        o.put_seconds(in > 0 ? in : 0);
    } else {
        o.put("null");
    }
    o.put(",\"last_free_floor\":").put_u64(j.last_free_floor).put(",\"last_error\":");
    if (j.last_error != Reason::unknown) {
        o.put_json(reason_id(j.last_error));
    } else {
        o.put("null");
    }
    o.put(",\"last\":");
    if (j.runs != 0) {
        put_summary(o, j.last);
    } else {
        o.put("null");
    }
    o.put('}');
}

// The job for custosctl: its settings on one line, its counters on the next.
void put_job_text(text_out& o, const PruneJobStatus& j, std::int64_t now_ns) noexcept {
    o.put(j.name).put(": ").put(j.dir).put(" (").put(j.glob).put("), order ");
    o.put(order_name(j.order)).put(", combine ").put(combine_name(j.combine));
    bool any = false;
    if (j.max_age.count() > 0) {
        o.put(", max_age ").put_seconds(std::chrono::duration_cast<nanos>(j.max_age).count());
        o.put('s');
        any = true;
    }
    if (j.keep_newest > 0) {
        o.put(", keep_newest ").put_u64(j.keep_newest);
        any = true;
    }
    if (j.max_total_bytes > 0) {
        o.put(", max_total_bytes ").put_u64(j.max_total_bytes);
        any = true;
    }
    if (j.min_free_percent > 0) {
        o.put(", min_free ").put_u64(j.min_free_percent).put('%');
        any = true;
    } else if (j.min_free_bytes > 0) {
        o.put(", min_free ").put_u64(j.min_free_bytes);
        any = true;
    }
    o.put(any ? "" : ", no rule");
    if (j.interval.count() > 0) {
        o.put("; every ").put_seconds(std::chrono::duration_cast<nanos>(j.interval).count());
        o.put('s');
    } else {
        o.put("; on demand");
    }
    o.put("\n  runs ").put_u64(j.runs).put(", deleted ").put_u64(j.files_deleted);
    o.put(" files (").put_u64(j.bytes_deleted).put(" bytes), failures ").put_u64(j.failures);
    if (j.runs == 0) {
        o.put("; not run yet");
    } else {
        o.put("; last run ").put_seconds(now_ns - j.last_run_mono_ns).put("s ago: ");
        o.put(j.last_error != Reason::unknown ? reason_id(j.last_error) : "ok");
        o.put(" (scanned ").put_u64(j.last.scanned).put(", deleted ").put_u64(j.last.deleted);
        o.put(", kept ").put_u64(j.last.kept).put(", unclassified ");
        o.put_u64(j.last.unclassified).put(')');
    }
    if (j.next_run_mono_ns != 0) {
        const std::int64_t in = j.next_run_mono_ns - now_ns;
        o.put("; next in ").put_seconds(in > 0 ? in : 0).put('s');
    }
    o.put('\n');
}

// A run's files, into the response as they come, as long as they fit
// (keeping room for the summary after them): JSON objects, or for
// custosctl lines of FILE, BYTES and RULES separated by tabs.
class file_lister final : public PruneVisitor {
public:
    file_lister(text_out& o, std::size_t reserve, bool text) noexcept
        : o_(o), reserve_(reserve), text_(text) {}

    void file(std::string_view name, std::uint64_t bytes, std::uint8_t rules) noexcept override {
        char rule_text[64];
        const std::size_t rn = prune_rule_names(rules, rule_text, sizeof rule_text);
        char item[512];
        text_out one(item, sizeof item);
        if (text_) {
            // A file name may hold any byte but '/' and NUL: escaped as
            // JSON would, so no control byte reaches a terminal.
            char esc[400];
            text_out e(esc, sizeof esc);
            e.put_json(name);
            const std::string_view q = e.view();
            const std::string_view plain = q.size() >= 2 ? q.substr(1, q.size() - 2) : q;
            one.put(plain).put('\t').put_u64(bytes).put('\t');
            one.put(std::string_view(rule_text, rn)).put('\n');
        } else {
            one.put(listed_ != 0 ? "," : "").put("{\"file\":").put_json(name);
            one.put(",\"bytes\":").put_u64(bytes).put(",\"rules\":\"");
            one.put(std::string_view(rule_text, rn)).put("\"}");
        }
        if (one.overflowed() || o_.size() + one.size() + reserve_ > o_.capacity()) {
            ++more_;
            return;
        }
        o_.put(one.view());
        ++listed_;
    }
    std::uint64_t more() const noexcept { return more_; }

private:
    text_out& o_;
    std::size_t reserve_;
    bool text_;
    std::uint64_t listed_ = 0;
    std::uint64_t more_ = 0;
};

} // namespace

void server::reply_in_place(conn& c, int code, std::string_view type, std::size_t len) noexcept {
    ++counters_.requests;
    ++counters_.by_code[status::code_index(code)];
    char head[head_room];
    text_out h(head, sizeof(head));
    write_head(h, code, type, static_cast<std::int64_t>(len), c.keep_alive);
    c.doc_active = false;
    c.chunked = false;
    c.send_at = head_room - static_cast<std::uint32_t>(h.size());
    std::memcpy(c.out + c.send_at, head, h.size());
    c.send_end = head_room + static_cast<std::uint32_t>(c.head_only ? 0 : len);
    c.state = conn::phase::sending;
    send_more(c);
}

bool server::route_prune_(conn& c) noexcept {
    const std::string_view path = c.req.path;
    std::string_view seg;
    std::string_view rest;
    const bool all = path == route_prune;
    if (!all && !split_path(path, prefix_prune, seg, rest)) {
        return false;
    }
    const bool reads = c.req.verb == method::get || c.req.verb == method::head;
    if (!reads && c.req.verb != method::post) {
        reply_error(c, 405, Reason::control_bad_request,
                    "the pruner is read with GET, run with POST", "Allow: GET, HEAD, POST\r\n");
        return true;
    }
    std::uint32_t index = UINT32_MAX;
    if (!all) {
        for (std::uint32_t j = 0; j < act_->prune_jobs(); ++j) {
            auto st = act_->prune_job_status(j);
            if (st && st->name == seg) {
                index = j;
                break;
            }
        }
        if (index == UINT32_MAX || !rest.empty()) {
            reply_error(c, 404, Reason::control_bad_request,
                        index == UINT32_MAX ? "no such prune job" : "no such route");
            return true;
        }
    }
    text_out body(c.out + head_room, out_size - head_room - tail_room);
    const std::int64_t now = to_ns(reactor_->now());
    char buf[param_cap];
    const bool text = query_param(c.req.query, "format", buf, sizeof(buf)).value == "text";
    if (reads && text) {
        for (std::uint32_t j = 0; j < act_->prune_jobs(); ++j) {
            auto st = act_->prune_job_status(j);
            if (st && (all || j == index)) {
                put_job_text(body, *st, now);
            }
        }
        if (body.overflowed()) {
            reply_error(c, 500, Reason::capacity_exceeded, "the prune jobs do not fit a response");
            return true;
        }
        reply_in_place(c, 200, content_text, body.size());
        return true;
    }
    if (reads) {
        if (all) {
            body.put("{\"prune\":[");
            for (std::uint32_t j = 0; j < act_->prune_jobs(); ++j) {
                auto st = act_->prune_job_status(j);
                if (st) {
                    body.put(j != 0 ? "," : "");
                    put_job(body, *st, now);
                }
            }
            body.put("]}\n");
        } else {
            auto st = act_->prune_job_status(index);
            if (st) {
                put_job(body, *st, now);
            }
            body.put('\n');
        }
        if (body.overflowed()) {
            reply_error(c, 500, Reason::capacity_exceeded, "the prune jobs do not fit a response");
            return true;
        }
        reply_in_place(c, 200, content_json, body.size());
        return true;
    }
    if (all) {
        reply_error(c, 405, Reason::control_bad_request, "POST /prune/NAME runs one job",
                    "Allow: GET, HEAD\r\n");
        return true;
    }
    if (!is_operator(c)) {
        ++counters_.actions_denied;
        record_action(c, seg, 403);
        reply_error(c, 403, Reason::control_denied, "actions need root or an operator");
        return true;
    }
    ++counters_.actions;
    const query_value dq = query_param(c.req.query, "dry_run", buf, sizeof(buf));
    const bool dry = dq.present && dq.value != "0" && dq.value != "false";
    // `seg` points into the request (c.in): the response goes to c.out.
    if (!text) {
        body.put("{\"name\":").put_json(seg).put(",\"dry_run\":").put(dry ? "true" : "false");
        body.put(",\"files\":[");
    }
    // Room after the list: the summary (~300 bytes), files_more, the end.
    constexpr std::size_t after_files = 400;
    file_lister lister(body, after_files, text);
    const Result<PruneSummary> r = act_->prune_job_run(index, dry, &lister);
    if (!r) {
        const Error& e = r.error();
        record_action(c, seg, 503);
        char msg[Error::subject_capacity + 1];
        e.format(msg, sizeof msg);
        reply_error(c, 503, e.reason(), msg);
        return true;
    }
    if (text) {
        if (lister.more() != 0) {
            body.put("(").put_u64(lister.more()).put(" more files not shown)\n");
        }
        body.put(seg).put(dry ? ": would delete " : ": deleted ").put_u64(r->deleted);
        body.put(" files (").put_u64(r->deleted_bytes).put(" bytes); scanned ").put_u64(r->scanned);
        body.put(", kept ").put_u64(r->kept).put(" (").put_u64(r->kept_bytes);
        body.put(" bytes), unclassified ").put_u64(r->unclassified).put(", protected ");
        body.put_u64(r->protected_files).put(", changed ").put_u64(r->changed);
        body.put(", unlink failed ").put_u64(r->unlink_failed).put('\n');
    } else {
        body.put("],\"files_more\":").put_u64(lister.more()).put(",\"summary\":");
        put_summary(body, *r);
        body.put("}\n");
    }
    record_action(c, seg, 200);
    if (body.overflowed()) {
        reply_error(c, 500, Reason::capacity_exceeded, "the run's summary did not fit a response");
        return true;
    }
    reply_in_place(c, 200, text ? content_text : content_json, body.size());
    return true;
}

} // namespace custos::control
