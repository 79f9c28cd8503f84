#include "capture/sink.hpp"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace custos::capture {

// A write buffer: files::marker_room bytes, then up to write_bytes of
// lines (batches appended while it waits).
struct sink::wbuf {
    io::op op;
    char* mem = nullptr;
    std::size_t len = 0;   // the batch's bytes, at lines()
    std::uint64_t gap = 0; // bytes dropped unwritten just before it
    wbuf* next = nullptr;
    slot* owner = nullptr;
    write_plan plan{};
    char* lines() const noexcept { return mem + files::marker_room; }
};

struct sink::slot {
    framer out;
    framer err;
    ring lines;
    files disk;
    sink* owner = nullptr;
    char* fill = nullptr; // the batch being filled (batch_bytes), file slots only
    std::size_t fill_len = 0;
    wbuf* head = nullptr; // queued batches, oldest first; the head is in flight
    wbuf* tail = nullptr;
    std::uint32_t queued = 0;
    std::uint64_t gap = 0; // dropped unwritten since the last batch queued
    bool writing = false;  // the head's write is in flight
    stamp last{};          // the latest output's: the drop marker's time
    std::uint64_t bytes_in = 0;
    std::uint64_t emitted = 0;
    bool capture = false;
    bool file_mode = false;
    bool dirty = false;
    Reason last_error = Reason::unknown;
    int last_errno = 0;
};

namespace {

// The mode a slot gets: automatic resolved against the directory.
OutputMode resolve(OutputMode m, bool have_dir) noexcept {
    switch (m) {
    case OutputMode::automatic:
        return have_dir ? OutputMode::file : OutputMode::ring;
    case OutputMode::file:
    case OutputMode::ring:
    case OutputMode::inherit:
    case OutputMode::null:
        return m;
    }
    return OutputMode::null;
}

} // namespace

// A write buffer and its memory from `mem`; nullptr when they do not fit
// (the measuring pass).
sink::wbuf* sink::take_wbuf(arena& mem) noexcept {
    auto* w = mem.make_array<wbuf>(1);
    auto* m = static_cast<char*>(mem.take_unzeroed(files::marker_room + write_bytes, 64));
    if (w == nullptr || m == nullptr) {
        return nullptr;
    }
    w->mem = m;
    w->op.done = &sink::on_written;
    w->op.user = w;
    return w;
}

sink::~sink() {
    close();
}

void sink::close() noexcept {
    io::reactor* r = r_;
    r_ = nullptr; // what is queued is written now, synchronously
    for (std::uint32_t i = 0; slots_ != nullptr && i < count_; ++i) {
        slot& s = slots_[i];
        if (s.writing) {
            // Its write never completed (a stalled disk): the rest of the
            // queue could land before it, out of order. Dropped, counted.
            for (wbuf* w = s.head->next; w != nullptr; w = w->next) {
                s.disk.drop_unwritten(w->len);
                totals_.dropped_bytes += w->len;
            }
            s.disk.drop_unwritten(s.fill_len);
            totals_.dropped_bytes += s.fill_len;
            s.fill_len = 0;
            s.head->next = nullptr;
            s.tail = s.head;
            queued_ -= s.queued - 1;
            s.queued = 1;
        } else if (s.file_mode && s.disk.is_open()) {
            hand_off(s); // written at once: no reactor now
        }
        s.disk.close();
    }
    r_ = r;
}

Result<void> sink::reserve(arena& mem, std::span<const slot_spec> specs,
                           const LogConfig& cfg) noexcept {
    close();
    slots_ = nullptr;
    count_ = 0;
    dirty_ = nullptr;
    dirty_count_ = 0;
    next_free_ = 0;
    any_files_ = false;
    free_ = nullptr;
    queued_ = 0;
    totals_ = sink_totals{};
    const bool have_dir = !cfg.dir.empty();
    for (const slot_spec& sp : specs) {
        const OutputMode m = resolve(sp.mode, have_dir);
        if (m == OutputMode::file) {
            if (!have_dir) {
                return fail(Error(Reason::invalid_argument, 0, sp.name)
                                .with_resolution("Set [log] dir for output = file, or use "
                                                 "output = ring"));
            }
            any_files_ = true;
        }
    }
    if (any_files_ && (cfg.output_file_bytes == 0 || cfg.output_files == 0)) {
        return fail(Error(Reason::invalid_argument, 0, "capture: output_file_bytes, output_files")
                        .with_resolution("Set output_file_bytes and output_files above 0"));
    }
    file_bytes_ = cfg.output_file_bytes;
    files_kept_ = cfg.output_files;
    batch_limit_ = file_bytes_ != 0 && file_bytes_ < batch_bytes
                       ? static_cast<std::size_t>(file_bytes_)
                       : batch_bytes;
    write_limit_ = file_bytes_ != 0 && file_bytes_ < write_bytes
                       ? static_cast<std::size_t>(file_bytes_)
                       : write_bytes;

    // On the measuring pass nothing fits: every take still counts, and
    // each part is measured on a stand-in, so mem.needed() is the total.
    bool ok = true;
    const auto n = static_cast<std::uint32_t>(specs.size());
    slot* arr = mem.make_array<slot>(n);
    auto* dirty = static_cast<std::uint32_t*>(
        mem.take_unzeroed(sizeof(std::uint32_t) * (n != 0 ? n : 1), alignof(std::uint32_t)));
    ok = ok && (arr != nullptr || n == 0) && dirty != nullptr;
    for (std::uint32_t i = 0; i < n; ++i) {
        const OutputMode m = resolve(specs[i].mode, have_dir);
        if (m != OutputMode::file && m != OutputMode::ring) {
            continue;
        }
        auto* bo = static_cast<char*>(mem.take_unzeroed(max_line, 64));
        auto* be = static_cast<char*>(mem.take_unzeroed(max_line, 64));
        ok = ok && bo != nullptr && be != nullptr;
        ring stand_in;
        ring& r = arr != nullptr ? arr[i].lines : stand_in;
        if (auto rr = r.reserve(mem, cfg.output_ring_bytes); !rr) {
            if (rr.error().reason() != Reason::out_of_memory) {
                return fail(rr.error());
            }
            ok = false;
        }
        char* batch = nullptr;
        if (m == OutputMode::file) {
            batch = static_cast<char*>(mem.take_unzeroed(batch_bytes, 64));
            ok = ok && batch != nullptr;
            files stand_in_files;
            files& f = arr != nullptr ? arr[i].disk : stand_in_files;
            if (auto fr = f.reserve(mem, cfg.dir, specs[i].name); !fr) {
                if (fr.error().reason() != Reason::out_of_memory) {
                    return fail(fr.error());
                }
                ok = false;
            }
        }
        if (arr != nullptr && ok) {
            slot& s = arr[i];
            s.owner = this;
            s.out.bind(bo, stream_id::out);
            s.err.bind(be, stream_id::err);
            s.fill = batch;
            s.capture = true;
            s.file_mode = m == OutputMode::file;
        }
    }
    wbuf* spares = nullptr;
    for (std::uint32_t k = 0; any_files_ && k < spare_buffers; ++k) {
        wbuf* w = take_wbuf(mem);
        ok = ok && w != nullptr;
        if (w != nullptr) {
            w->next = spares;
            spares = w;
        }
    }
    if (any_files_) {
        if (auto w = ws_.init(mem, files::scan_capacity(files_kept_)); !w) {
            if (w.error().reason() != Reason::out_of_memory) {
                return fail(w.error());
            }
            ok = false;
        }
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "capture");
    }
    slots_ = arr;
    dirty_ = dirty;
    count_ = n;
    free_ = spares;
    return {};
}

Result<files_report> sink::open_files(std::uint32_t i) noexcept {
    if (i >= count_ || !slots_[i].file_mode) {
        return fail(Reason::invalid_argument, 0, "capture: open_files on a slot without files");
    }
    return slots_[i].disk.open(ws_, file_bytes_, files_kept_);
}

bool sink::captures(std::uint32_t i) const noexcept {
    return i < count_ && slots_[i].capture;
}

bool sink::has_files(std::uint32_t i) const noexcept {
    return i < count_ && slots_[i].file_mode && slots_[i].disk.is_open();
}

const ring& sink::output(std::uint32_t i) const noexcept {
    return i < count_ ? slots_[i].lines : none_;
}

const files* sink::files_of(std::uint32_t i) const noexcept {
    return i < count_ && slots_[i].file_mode ? &slots_[i].disk : nullptr;
}

slot_counters sink::counters(std::uint32_t i) const noexcept {
    slot_counters c;
    if (i >= count_) {
        return c;
    }
    const slot& s = slots_[i];
    c.bytes_in = s.bytes_in;
    c.lines = s.emitted;
    c.split_lines = s.out.splits() + s.err.splits();
    c.ring_evicted_bytes = s.lines.evicted_bytes();
    if (s.file_mode) {
        c.written_bytes = s.disk.counters().written_bytes;
        c.dropped_bytes = s.disk.counters().dropped_bytes;
        c.unwritten_bytes = s.disk.counters().unwritten_bytes;
        c.markers = s.disk.counters().markers;
    }
    c.last_error = s.last_error;
    c.last_errno = s.last_errno;
    return c;
}

void sink::on_line(void* ctx, const char* line, std::size_t len) noexcept {
    slot& s = *static_cast<slot*>(ctx);
    sink& self = *s.owner;
    ++s.emitted;
    ++self.totals_.lines;
    (void)s.lines.push(line, len);
    if (!s.file_mode || !s.disk.is_open()) {
        return;
    }
    if (s.fill_len + len > self.batch_limit_) {
        self.hand_off(s);
    }
    std::memcpy(s.fill + s.fill_len, line, len);
    s.fill_len += len;
    if (!s.dirty) {
        s.dirty = true;
        self.dirty_[self.dirty_count_++] = static_cast<std::uint32_t>(&s - self.slots_);
    }
}

void sink::hand_off(slot& s) noexcept {
    const std::size_t n = s.fill_len;
    if (n == 0) {
        return;
    }
    s.fill_len = 0;
    // Appended to the batch waiting behind the write in flight when it
    // has room and no gap came between: one write takes them all.
    wbuf* t = s.tail;
    if (t != nullptr && !(s.writing && t == s.head) && s.gap == 0 && t->len + n <= write_limit_) {
        std::memcpy(t->lines() + t->len, s.fill, n);
        t->len += n;
        return;
    }
    if (s.queued >= max_queued || free_ == nullptr) {
        // The disk has not kept up: this batch is lost to it (the ring
        // has the lines). The gap is after the batches queued now: the
        // marker goes with the first one after them.
        s.disk.drop_unwritten(n);
        totals_.dropped_bytes += n;
        s.gap += n;
        return;
    }
    wbuf* w = free_;
    free_ = w->next;
    w->owner = &s;
    std::memcpy(w->lines(), s.fill, n);
    w->len = n;
    w->next = nullptr;
    w->gap = s.gap;
    s.gap = 0;
    if (s.tail != nullptr) {
        s.tail->next = w;
    } else {
        s.head = w;
    }
    s.tail = w;
    ++s.queued;
    ++queued_;
    if (!s.writing) {
        start(s);
    }
}

void sink::start(slot& s) noexcept {
    while (s.head != nullptr && !s.writing) {
        wbuf& w = *s.head;
        const std::uint64_t before = s.disk.counters().dropped_bytes;
        auto p = s.disk.begin_write(w.lines(), w.len, s.last, w.gap);
        if (!p) {
            // The lines are dropped (counted by the files): the next one.
            totals_.dropped_bytes += s.disk.counters().dropped_bytes - before;
            s.last_error = p.error().reason();
            s.last_errno = p.error().sys_errno();
            retire(w);
            continue;
        }
        w.plan = *p;
        s.writing = true;
        if (r_ != nullptr) {
            issue(w);
            return;
        }
        // No reactor: written here, through the same completion.
        for (bool done = false; !done;) {
            ssize_t n;
            do {
                n = ::write(w.plan.fd, w.plan.data + w.plan.done, w.plan.len - w.plan.done);
            } while (n < 0 && errno == EINTR);
            done = complete(w, n < 0 ? -static_cast<std::int64_t>(errno) : n);
        }
    }
}

void sink::issue(wbuf& w) noexcept {
    r_->write(w.op, w.plan.fd, w.plan.data + w.plan.done,
              static_cast<std::uint32_t>(w.plan.len - w.plan.done));
}

void sink::on_written(io::op& o, std::int32_t result) noexcept {
    wbuf& w = *static_cast<wbuf*>(o.user);
    slot& s = *w.owner;
    if (s.owner->complete(w, result)) {
        s.owner->start(s);
    }
}

// The head's write returned `result`: accounted, and, once it is done
// (true), its buffer goes back to the spares; the caller starts the next.
// A stream that took part of it: the rest is issued (false).
bool sink::complete(wbuf& w, std::int64_t result) noexcept {
    slot& s = *w.owner;
    const files_counters before = s.disk.counters();
    auto r = s.disk.end_write(w.plan, result);
    const files_counters& after = s.disk.counters();
    totals_.dropped_bytes += after.dropped_bytes - before.dropped_bytes;
    totals_.markers += after.markers - before.markers;
    if (r && *r != 0) {
        if (r_ != nullptr) {
            issue(w);
        }
        return false;
    }
    s.writing = false;
    if (!r) {
        s.last_error = r.error().reason();
        s.last_errno = r.error().sys_errno();
    }
    retire(w);
    return true;
}

void sink::retire(wbuf& w) noexcept {
    slot& s = *w.owner;
    s.head = w.next;
    if (s.head == nullptr) {
        s.tail = nullptr;
    }
    --s.queued;
    --queued_;
    w.len = 0;
    w.next = free_;
    free_ = &w;
}

void sink::on_output(std::uint32_t i, int stream, const char* data, std::size_t len,
                     std::int64_t wall_ns, std::int64_t mono_ns, bool clock_trusted) noexcept {
    if (i >= count_ || !slots_[i].capture || len == 0 || (stream != 1 && stream != 2)) {
        return;
    }
    slot& s = slots_[i];
    const stamp at{wall_ns, mono_ns, clock_trusted};
    s.last = at;
    s.bytes_in += len;
    totals_.bytes_in += len;
    framer& f = stream == 1 ? s.out : s.err;
    f.feed(data, len, at, line_out{&sink::on_line, &s});
}

void sink::on_stop(std::uint32_t i, std::int64_t wall_ns, std::int64_t mono_ns,
                   bool clock_trusted) noexcept {
    if (i >= count_ || !slots_[i].capture) {
        return;
    }
    slot& s = slots_[i];
    const stamp at{wall_ns, mono_ns, clock_trusted};
    s.last = at;
    s.out.flush(at, line_out{&sink::on_line, &s});
    s.err.flush(at, line_out{&sink::on_line, &s});
    if (s.file_mode && s.disk.is_open()) {
        hand_off(s);
    }
}

void sink::flush() noexcept {
    std::uint32_t kept = 0;
    for (std::uint32_t k = 0; k < dirty_count_; ++k) {
        slot& s = slots_[dirty_[k]];
        if (s.writing) {
            dirty_[kept++] = dirty_[k]; // fills on; goes out after that write
            continue;
        }
        s.dirty = false;
        hand_off(s);
    }
    dirty_count_ = kept;
}

std::uint64_t sink::free_oldest() noexcept {
    for (std::uint32_t k = 0; k < count_; ++k) {
        const std::uint32_t i = (next_free_ + k) % count_;
        slot& s = slots_[i];
        if (!s.file_mode || !s.disk.is_open()) {
            continue;
        }
        const std::uint64_t freed = s.disk.free_oldest();
        if (freed != 0) {
            next_free_ = (i + 1) % count_;
            return freed;
        }
    }
    return 0;
}

} // namespace custos::capture
