#include "eventlog/sink.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/text_out.hpp"
#include "io/clock.hpp"
#include "status/event.hpp"

namespace custos::eventlog {

namespace {

// The wall clock is looked at again this often (io/clock.hpp), and a
// directory that could not be opened is tried again this often.
constexpr nanos clock_check_every = std::chrono::seconds(60);
constexpr nanos reopen_every = std::chrono::seconds(60);
// Folded records fall due about this late at most (the tick's slack).
constexpr nanos tick_slack = std::chrono::milliseconds(250);

} // namespace

sink::sink() noexcept : fold_(folder::default_window_ns) {
    write_op_.done = &sink::on_written;
    write_op_.user = this;
    sync_op_.done = &sink::on_synced;
    sync_op_.user = this;
    tick_.fire = &sink::on_tick;
    tick_.user = this;
}

Result<void> sink::reserve(arena& mem, const LogConfig& cfg) noexcept {
    const std::size_t ring_bytes = cfg.ring_bytes < 4096 ? 4096 : cfg.ring_bytes;
    char* ring = static_cast<char*>(mem.take_unzeroed(ring_bytes, 8));
    char* s0 = nullptr;
    char* s1 = nullptr;
    if (!cfg.dir.empty()) {
        s0 = static_cast<char*>(mem.take_unzeroed(stage_bytes, 8));
        s1 = static_cast<char*>(mem.take_unzeroed(stage_bytes, 8));
    }
    if (ring == nullptr || (!cfg.dir.empty() && (s0 == nullptr || s1 == nullptr))) {
        return fail(Reason::out_of_memory, ENOMEM, "event log");
    }
    ring_ = lines(ring, ring_bytes);
    stages_[0].buf = s0;
    stages_[1].buf = s1;
    return {};
}

Result<void> sink::open(io::reactor& r, const LogConfig& cfg, std::string_view boot_id) noexcept {
    r_ = &r;
    fold_ = folder(std::chrono::duration_cast<nanos>(cfg.fold_window).count());
    trust_mode_ = cfg.clock;
    sync_interval_ns_ = std::chrono::duration_cast<nanos>(cfg.sync_interval).count();
    max_file_bytes_ = cfg.max_file_bytes;
    max_files_ = cfg.max_files;
    boot_id_len_ = copy_cut(boot_id_, sizeof boot_id_, boot_id);
    if (auto a = inbox_.attach(r, &sink::on_custom, this); !a) {
        return a;
    }
    check_clock();
    dir_wanted_ = !cfg.dir.empty();
    if (dir_wanted_) {
        dir_len_ = cfg.dir.size() < sizeof dir_path_ ? cfg.dir.size() : sizeof dir_path_ - 1;
        std::memcpy(dir_path_, cfg.dir.data(), dir_len_);
        open_dir();
    }
    arm_tick();
    return {};
}

void sink::open_dir() noexcept {
    next_open_ = r_->now() + reopen_every;
    dir_.set_clock_trusted(trusted_);
    auto rep = dir_.open(std::string_view(dir_path_, dir_len_), max_file_bytes_, max_files_, seq_);
    if (!rep) {
        char msg[record::message_cap];
        text_out o(msg, sizeof msg);
        o.put(rep.error().subject()).put(": the log is kept in RAM only; tried again every minute");
        self_record(rep.error().reason(), rep.error().sys_errno(), o.view(), level::error);
        return;
    }
    if (rep->next_seq > seq_) {
        seq_ = rep->next_seq; // continued from the last file
    }
    if (!prev_taken_) {
        // The previous run's last record: a reopen later (the directory
        // was missing at init) finds this run's own records instead.
        prev_ = rep->last;
        prev_taken_ = true;
    }
    if (rep->cut_bytes != 0) {
        char msg[record::message_cap];
        text_out o(msg, sizeof msg);
        o.put("cut a torn last line of ").put_u64(rep->cut_bytes).put(" bytes from ");
        o.put(std::string_view(rep->file));
        self_record(Reason::event_log_torn_line, 0, o.view(), level::warning);
    }
}

void sink::check_clock() noexcept {
    next_clock_check_ = r_->now() + clock_check_every;
    const bool t = io::wall_clock_trusted(trust_mode_, status::wall_now_ns());
    if (t != trusted_) {
        trusted_ = t;
        dir_.set_clock_trusted(t);
    }
}

bool sink::post(const record& r) noexcept {
    return inbox_.try_post(r);
}

void sink::on_custom(void* ctx, const record& r) noexcept {
    sink& s = *static_cast<sink*>(ctx);
    ++s.stats_.custom;
    s.write(r, r.level == level::critical);
    if (s.stages_full()) {
        // The next custom record might find no room: it waits in the
        // mailbox (whose producers are refused once it is full, and know
        // it) instead of being taken and lost to the disk.
        s.inbox_.hold();
    }
}

bool sink::stages_full() const noexcept {
    // The other buffer is taken by a write in flight, or waits for one
    // (an fdatasync in flight holds writes back).
    return dir_wanted_ && dir_.is_open() && !closing_ &&
           (in_flight_ || stages_[filling_ ^ 1U].nlines != 0) &&
           stages_[filling_].len + max_line > stage_bytes;
}

void sink::release_inbox() noexcept {
    if (inbox_.held() && !stages_full()) {
        inbox_.release();
    }
}

void sink::on_event(const status::event& e) noexcept {
    const record r = from_event(e);
    record out[2];
    const std::size_t n = fold_.offer(r, out);
    if (n == 0) {
        ++stats_.folded;
    }
    for (std::size_t i = 0; i < n; ++i) {
        write(out[i], out[i].level == level::critical);
    }
}

void sink::emit(record r, bool durable) noexcept {
    write(r, durable || r.level == level::critical);
}

void sink::self_record(Reason why, int err, std::string_view message, level l) noexcept {
    record r;
    r.kind = status::event_kind::log;
    r.level = l;
    r.reason = why;
    r.sys_errno = err;
    r.mono_ns = r_ != nullptr ? r_->now().time_since_epoch().count() : 0;
    r.wall_ns = status::wall_now_ns();
    r.set_name("eventlog");
    r.set_message(message);
    r.set_resolution(Error(why, err).resolution());
    write(r, false);
}

void sink::write(const record& in, bool durable) noexcept {
    record r = in;
    r.seq = seq_++;
    r.clock_trusted = trusted_;
    ++stats_.records;
    fresh_ = true;
    const std::size_t n = encode(r, std::string_view(boot_id_, boot_id_len_), line_, sizeof line_);
    if (n == 0) {
        return; // cannot happen: max_line holds any record
    }
    ring_.append(line_, n, r.seq);
    if (dir_wanted_) {
        stage_line(line_, n, r.seq, durable);
    }
}

void sink::stage_line(const char* line, std::size_t len, std::uint64_t seq, bool durable) noexcept {
    if (dir_.is_open() && stages_[filling_].len + len > stage_bytes && !in_flight_ && !closing_) {
        // Full, and no write in flight: this buffer goes out now (a turn
        // can bring more than a buffer: the mailbox is drained 32 at a
        // time, again and again), or, while an fdatasync runs, the other
        // (empty) buffer fills meanwhile; lines are lost only when both
        // are taken.
        kick();
        if (!in_flight_ && stages_[filling_ ^ 1U].nlines == 0) {
            filling_ ^= 1U;
        }
    }
    stage& s = stages_[filling_];
    if (!dir_.is_open() || s.len + len > stage_bytes) {
        lose(seq, seq + 1, 1);
        return;
    }
    if (s.nlines == 0) {
        s.first = seq;
    }
    std::memcpy(s.buf + s.len, line, len);
    s.len += len;
    ++s.nlines;
    s.next = seq + 1;
    s.durable = s.durable || durable;
}

void sink::lose(std::uint64_t first, std::uint64_t next, std::uint32_t nlines) noexcept {
    stats_.lost += nlines;
    lost_unreported_ += nlines;
    if (report_count_ != 0 && first <= report_seq_ && report_seq_ < next) {
        // The report of earlier losses is among them: its count is told
        // with the next one, or those losses would never be.
        lost_unreported_ += report_count_;
        report_count_ = 0;
    }
}

void sink::report_losses() noexcept {
    const std::uint32_t refused = inbox_.refused();
    if (refused != custom_dropped_seen_) {
        const std::uint32_t d = refused - custom_dropped_seen_;
        custom_dropped_seen_ = refused;
        stats_.custom_dropped += d;
        char msg[record::message_cap];
        text_out o(msg, sizeof msg);
        o.put_u64(d).put(" custom records dropped: the ring from the appliance's threads was full");
        self_record(Reason::event_log_records_lost, 0, o.view(), level::warning);
    }
}

void sink::after_turn() noexcept {
    if (r_ == nullptr) {
        return;
    }
    const mono_time now = r_->now();
    record out[8];
    for (;;) {
        const std::size_t n = fold_.flush_due(now.time_since_epoch().count(), out, 8);
        for (std::size_t i = 0; i < n; ++i) {
            write(out[i], out[i].level == level::critical);
        }
        if (n < 8) {
            break;
        }
    }
    report_losses();
    kick();
    release_inbox();
}

void sink::kick() noexcept {
    if (!dir_wanted_ || closing_) {
        return;
    }
    if (!dir_.is_open()) {
        return; // open_dir() again at the tick
    }
    if (in_flight_ || sync_in_flight_) {
        return;
    }
    // The rest of a stage that was cut at a file's size goes before the
    // stage filling now: the lines stay in seq order.
    const std::uint32_t pick = stages_[filling_ ^ 1U].nlines != 0 ? filling_ ^ 1U : filling_;
    stage& s = stages_[pick];
    if (s.nlines == 0) {
        if (sync_due_ && !sync_in_flight_) {
            sync_due_ = false;
            unsynced_ = false;
            sync_in_flight_ = true;
            ++stats_.syncs;
            r_->fsync(sync_op_, dir_.fd());
        }
        return;
    }
    cut_batch(s);
    auto fd = dir_.begin_batch(s.first, s.out_len);
    if (!fd) {
        // No file to write to (a rotation could not make one): these
        // records are lost to the disk; the next batch tries again.
        lose(s.first, s.next, s.nlines);
        s = stage{s.buf};
        return;
    }
    in_flight_ = true;
    if (pick == filling_) {
        filling_ ^= 1U;
    }
    ++stats_.batches;
    r_->write(write_op_, *fd, s.buf, static_cast<std::uint32_t>(s.out_len));
}

// A stage holds up to stage_bytes, a file may be as small as 4 KiB: written
// whole, one batch would take the file past max_file_bytes (begin_batch()
// rotates before a batch, never within one).
void sink::cut_batch(stage& s) const noexcept {
    s.out_len = s.len;
    s.out_lines = s.nlines;
    s.out_next = s.next;
    if (s.len <= max_file_bytes_) {
        return;
    }
    const auto limit = static_cast<std::size_t>(max_file_bytes_);
    const void* last = ::memrchr(s.buf, '\n', limit);
    std::size_t len =
        last != nullptr ? static_cast<std::size_t>(static_cast<const char*>(last) - s.buf) + 1 : 0;
    if (len == 0) { // one line longer than a file: it goes alone
        len = static_cast<std::size_t>(static_cast<const char*>(std::memchr(s.buf, '\n', s.len)) -
                                       s.buf) +
              1;
    }
    std::uint64_t next = 0;
    if (len >= s.len || !log_dir::line_seq(s.buf + len, s.len - len, next)) {
        return; // cannot happen: the stage holds whole lines, each with its seq
    }
    std::uint32_t n = 0;
    for (const char* p = s.buf; p < s.buf + len; ++n) {
        p = static_cast<const char*>(
                std::memchr(p, '\n', static_cast<std::size_t>(s.buf + len - p))) +
            1;
    }
    s.out_len = len;
    s.out_lines = n;
    s.out_next = next;
}

void sink::drop_batch(stage& s) noexcept {
    if (s.out_len >= s.len) {
        s = stage{s.buf};
        return;
    }
    std::memmove(s.buf, s.buf + s.out_len, s.len - s.out_len);
    s.len -= s.out_len;
    s.nlines -= s.out_lines;
    s.first = s.out_next;
    s.out_len = 0;
    s.out_lines = 0;
    s.out_next = 0;
}

void sink::on_written(io::op& o, std::int32_t result) noexcept {
    sink& self = *static_cast<sink*>(o.user);
    stage& s = self.stages_[self.filling_ ^ 1U];
    self.in_flight_ = false;
    auto r = self.dir_.end_batch(result, s.out_len, s.out_lines, s.out_next);
    if (!r) {
        ++self.stats_.write_errors;
        self.out_of_space_ = self.out_of_space_ || r.error().sys_errno() == ENOSPC;
        self.lose(s.first, s.out_next, s.out_lines);
    } else {
        if (s.first <= self.report_seq_ && self.report_seq_ < s.out_next) {
            self.report_count_ = 0; // the losses report is on disk
        }
        self.stats_.written_bytes += s.out_len;
        self.unsynced_ = true;
        self.sync_due_ = self.sync_due_ || s.durable;
        if (self.next_sync_ == mono_time{}) {
            self.next_sync_ = self.r_->now() + nanos(self.sync_interval_ns_);
            self.arm_tick();
        }
    }
    drop_batch(s);
    if (r && self.lost_unreported_ != 0) {
        // Writing works again: one record says what the disk missed.
        char msg[record::message_cap];
        text_out t(msg, sizeof msg);
        t.put_u64(self.lost_unreported_)
            .put(" records did not reach the disk (the disk was full, stalled or failing); "
                 "the RAM ring still had the newest");
        self.report_count_ = self.lost_unreported_;
        self.report_seq_ = self.seq_; // the seq the report gets
        self.lost_unreported_ = 0;
        self.self_record(Reason::event_log_records_lost, 0, t.view(), level::warning);
    }
    if (!self.closing_) {
        self.kick();
        self.release_inbox();
    }
}

void sink::on_synced(io::op& o, std::int32_t) noexcept {
    sink& self = *static_cast<sink*>(o.user);
    self.sync_in_flight_ = false;
    if (!self.closing_) {
        self.kick();
        self.release_inbox();
    }
}

void sink::arm_tick() noexcept {
    if (r_ == nullptr || closing_) {
        return;
    }
    mono_time at = next_clock_check_;
    const std::int64_t due = fold_.next_due();
    if (due != 0 && mono_time(nanos(due)) < at) {
        at = mono_time(nanos(due));
    }
    if (next_sync_ != mono_time{} && next_sync_ < at) {
        at = next_sync_;
    }
    if (dir_wanted_ && !dir_.is_open() && next_open_ < at) {
        at = next_open_;
    }
    r_->cancel(tick_);
    r_->arm(tick_, at, tick_slack);
}

void sink::on_tick(io::timer& t) noexcept {
    sink& self = *static_cast<sink*>(t.user);
    const mono_time now = self.r_->now();
    if (now >= self.next_clock_check_) {
        self.check_clock();
    }
    if (self.dir_wanted_ && !self.dir_.is_open() && now >= self.next_open_) {
        self.open_dir();
    }
    if (self.next_sync_ != mono_time{} && now >= self.next_sync_) {
        self.next_sync_ = mono_time{};
        self.sync_due_ = self.sync_due_ || self.unsynced_;
    }
    self.after_turn();
    self.arm_tick();
}

void sink::close(const record* last) noexcept {
    if (r_ == nullptr) {
        return;
    }
    // Custom records posted before the stop that the loop did not take:
    // they were accepted (log_event() said so), so they are written too.
    closing_ = true; // stages_full() false: on_custom() holds nothing back now
    (void)inbox_.drain_now();
    record out[8];
    for (;;) {
        const std::size_t n = fold_.flush_all(out, 8);
        for (std::size_t i = 0; i < n; ++i) {
            write(out[i], false);
        }
        if (n < 8) {
            break;
        }
    }
    r_->cancel(tick_);
    if (last != nullptr) {
        // Room for it in the stages, whatever the records above took:
        // they go out first (a write in flight has completed: run()
        // returns only with none).
        flush_now();
        write(*last, true);
    }
    if (!dir_.is_open()) {
        return;
    }
    flush_now();
    (void)dir_.sync();
    dir_.close();
}

void sink::flush_now() noexcept {
    if (!dir_.is_open()) {
        return;
    }
    // The loop has ended: what is staged goes out now, synchronously.
    for (std::uint32_t k = 0; k < 2; ++k) {
        stage& s = stages_[filling_ ^ (k == 0 ? 1U : 0U)];
        while (s.nlines != 0 && !in_flight_) {
            cut_batch(s);
            auto fd = dir_.begin_batch(s.first, s.out_len);
            if (!fd) {
                s = stage{s.buf};
                break;
            }
            ssize_t w;
            do {
                w = ::write(*fd, s.buf, s.out_len);
            } while (w < 0 && errno == EINTR);
            (void)dir_.end_batch(w < 0 ? -errno : w, s.out_len, s.out_lines, s.out_next);
            drop_batch(s);
        }
    }
}

} // namespace custos::eventlog
