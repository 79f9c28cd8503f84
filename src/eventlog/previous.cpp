#include "eventlog/previous.hpp"

#include <cstring>

#include "core/text_out.hpp"

namespace custos::eventlog {

namespace {

constexpr std::string_view custos_name = "custos";

// 0xNN: the WDIOF_* bits in hex.
void put_hex(text_out& o, std::uint32_t v) noexcept {
    static constexpr char digits[] = "0123456789abcdef";
    char b[8];
    int n = 0;
    do {
        b[n++] = digits[v & 0xf];
        v >>= 4;
    } while (v != 0 && n < 8);
    o.put("0x");
    while (n > 0) {
        o.put(b[--n]);
    }
}

// "key":"value" after the ones already in `o` (put_json quotes and
// escapes the value).
void field(text_out& o, std::string_view key, std::string_view value) noexcept {
    if (o.size() != 0) {
        o.put(',');
    }
    o.put('"').put(key).put("\":").put_json(value);
}

} // namespace

record stop_record(int exit_status, std::int64_t mono_ns, std::int64_t wall_ns, int pid) noexcept {
    record r;
    r.kind = status::event_kind::log;
    r.level = exit_status == 0 ? level::notice : level::warning;
    r.reason = Reason::runtime_stop;
    r.mono_ns = mono_ns;
    r.wall_ns = wall_ns;
    r.pid = pid;
    r.has_exit = true;
    r.exit_code = exit_status;
    r.set_name(custos_name);
    char msg[record::message_cap];
    text_out o(msg, sizeof msg);
    o.put("custos stopped in order, exit status ").put_i64(exit_status);
    if (exit_status != 0) {
        o.put(" (not 0: see the records before this one)");
    }
    r.set_message(o.view());
    return r;
}

bool is_stop_record(const last_record& r) noexcept {
    return r.found && r.kind.view() == status::event_kind_name(status::event_kind::log) &&
           r.name.view() == custos_name && r.reason.view() == reason_id(Reason::runtime_stop);
}

bool previous_run_record(const last_record& prev, std::string_view boot_id, boot_status bs,
                         std::int64_t mono_ns, std::int64_t wall_ns, record& out) noexcept {
    out = record{};
    if (!prev.found) {
        return false;
    }
    const bool orderly = is_stop_record(prev);
    const bool boot_known = !boot_id.empty() && !prev.boot_id.empty();
    const bool rebooted = boot_known && prev.boot_id.view() != boot_id;
    const bool cardreset = bs.known && (bs.bits & boot_status_cardreset) != 0;

    out.kind = status::event_kind::log;
    out.mono_ns = mono_ns;
    out.wall_ns = wall_ns;
    out.set_name(custos_name);
    char msg[record::message_cap];
    text_out o(msg, sizeof msg);
    o.put("previous run: ");
    if (orderly) {
        out.reason = Reason::previous_boot_orderly;
        out.level = level::notice;
        o.put("stopped in order");
        if (prev.has_exit) {
            o.put(", exit status ").put_i64(prev.exit_code);
            if (prev.exit_code != 0) {
                out.level = level::warning;
            }
        }
    } else {
        if (!boot_known) {
            out.reason = Reason::previous_boot_unreported;
            out.level = level::warning;
        } else if (!rebooted) {
            out.reason = Reason::previous_boot_restarted;
            out.level = level::warning;
        } else if (cardreset) {
            out.reason = Reason::previous_boot_watchdog;
            out.level = level::critical;
        } else {
            out.reason = Reason::previous_boot_unreported;
            out.level = level::warning;
        }
        o.put("ended without its stop record");
    }
    o.put("; last record seq ").put_u64(prev.seq);
    if (!prev.ts.empty()) {
        o.put(" at ").put(prev.ts.view());
    }
    if (!orderly && !prev.reason.empty()) {
        o.put(" (").put(prev.reason.view()).put(')');
    }
    if (!boot_known) {
        o.put("; whether the board rebooted since is unknown (no boot_id)");
    } else if (!rebooted) {
        o.put(orderly ? "; same boot" : "; same boot: custos was killed or crashed");
    } else if (cardreset) {
        o.put("; the board rebooted since: the watchdog reset it (bootstatus CARDRESET)");
    } else {
        o.put(orderly ? "; the board rebooted since"
                      : "; the board rebooted since: a power loss, a reset or a reboot custos "
                        "did not see");
    }
    if (cardreset && !boot_known) {
        o.put("; bootstatus CARDRESET");
    }
    out.set_message(o.view());
    if (cardreset && orderly && rebooted) {
        out.level = level::warning;
        out.set_resolution("custos stopped in order, then the watchdog reset the board (a hung "
                           "shutdown or another feeder): check the kernel log and pstore");
    } else if (orderly && prev.has_exit && prev.exit_code != 0) {
        out.set_resolution("custos stopped with a non-zero exit status: read the records before "
                           "its stop record (a wedged critical monitor exits 70)");
    } else {
        out.set_resolution(Error(out.reason, 0).resolution());
    }

    char f[record::fields_cap];
    text_out fo(f, sizeof f);
    char num[24];
    text_out no(num, sizeof num);
    no.put_u64(prev.seq);
    // Within record::fields_cap (192) at their longest; the time is in
    // the message.
    field(fo, "prev_seq", no.view());
    field(fo, "prev_boot_id", prev.boot_id.view());
    field(fo, "prev_reason", prev.reason.view());
    field(fo, "rebooted", !boot_known ? "unknown" : rebooted ? "yes" : "no");
    no.clear();
    if (bs.known) {
        put_hex(no, bs.bits);
    } else {
        no.put("unknown");
    }
    field(fo, "bootstatus", no.view());
    if (!fo.overflowed()) {
        std::memcpy(out.fields, f, fo.size());
        out.fields_len = static_cast<std::uint16_t>(fo.size());
    }
    return true;
}

} // namespace custos::eventlog
