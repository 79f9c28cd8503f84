#include "capture/sink.hpp"

#include <cerrno>
#include <cstring>

namespace custos::capture {

struct sink::slot {
    framer out;
    framer err;
    ring lines;
    files disk;
    sink* owner = nullptr;
    char* batch = nullptr; // batch_bytes, file slots only
    std::size_t batch_len = 0;
    stamp last{}; // the latest output's: the drop marker's time
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

sink::~sink() {
    close();
}

void sink::close() noexcept {
    for (std::uint32_t i = 0; slots_ != nullptr && i < count_; ++i) {
        slots_[i].disk.close();
    }
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
            s.batch = batch;
            s.capture = true;
            s.file_mode = m == OutputMode::file;
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
        c.markers = s.disk.counters().markers;
    }
    c.last_error = s.last_error;
    c.last_errno = s.last_errno;
    return c;
}

void sink::on_line(void* ctx, const char* line, std::size_t len) noexcept {
    slot& s = *static_cast<slot*>(ctx);
    ++s.emitted;
    ++s.owner->totals_.lines;
    (void)s.lines.push(line, len);
    if (!s.file_mode || !s.disk.is_open()) {
        return;
    }
    if (s.batch_len + len > batch_bytes) {
        s.owner->write_batch(s);
    }
    std::memcpy(s.batch + s.batch_len, line, len);
    s.batch_len += len;
    if (!s.dirty) {
        s.dirty = true;
        s.owner->dirty_[s.owner->dirty_count_++] = static_cast<std::uint32_t>(&s - s.owner->slots_);
    }
}

void sink::write_batch(slot& s) noexcept {
    if (s.batch_len == 0) {
        return;
    }
    const files_counters before = s.disk.counters();
    auto r = s.disk.append(s.batch, s.batch_len, s.last);
    s.batch_len = 0;
    const files_counters& after = s.disk.counters();
    totals_.dropped_bytes += after.dropped_bytes - before.dropped_bytes;
    totals_.markers += after.markers - before.markers;
    if (!r) {
        s.last_error = r.error().reason();
        s.last_errno = r.error().sys_errno();
    }
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
    write_batch(s);
}

void sink::flush() noexcept {
    for (std::uint32_t k = 0; k < dirty_count_; ++k) {
        slot& s = slots_[dirty_[k]];
        s.dirty = false;
        write_batch(s);
    }
    dirty_count_ = 0;
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
