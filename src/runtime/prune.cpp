// The retention pruner's wiring (impl.hpp's prune_parts): one job per
// Table::prunes entry, each with its spec copied into the arena, a
// workspace sized by its max_files (prune/scan.hpp) and a timer on the
// wheel.
//
// Schedule: after start(), a job with an interval runs first at a random
// time within one interval (boards booted together do not all scan at
// once), then every interval +/- 10 %; interval 0 runs only on demand
// (Runtime::prune_now, POST /prune/NAME). The stop cancels the timers.
//
// A run is synchronous on the reactor thread: it is bounded by the job's
// max_files (a getdents64 pass, an fstatat and, with the lease probe, an
// open and two fcntl per file, then an unlink per chosen file), so a run
// of the default 4096 files costs a few milliseconds of the loop, not a
// wait on anything another process holds. It allocates nothing: the
// workspace was laid out at init.
//
// The clock rule: at each run the wall clock is asked whether it can be
// believed (io::wall_clock_trusted with Table::log.clock); while it
// cannot, the age rules delete nothing (prune.hpp).
//
// Events (kind prune, name = the job): one per file deleted (PruneDeleted,
// detail "FILE (N bytes, RULES)"), one per chosen file kept
// (PruneUnlinkFailed, PruneFileChanged), one per failed run
// (PruneScanFailed, PruneTooManyFiles), each with its resolution. A dry
// run emits none and counts nothing.
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "core/text_out.hpp"
#include "io/clock.hpp"
#include "runtime/impl.hpp"

namespace custos {

namespace {

using rt_detail::prune_job;

// A view of `s` copied into the arena (NUL-terminated); empty stays empty.
std::string_view keep(arena& mem, std::string_view s, bool& ok) noexcept {
    char* p = mem.copy(s);
    ok = ok && p != nullptr;
    return p != nullptr ? std::string_view(p, s.size()) : std::string_view();
}

void dispatch_prune(Runtime::impl& rt, const prune_job& job, Reason why, int err,
                    std::string_view detail, std::string_view resolution) noexcept {
    status::event e;
    e.kind = status::event_kind::prune;
    e.reason = why;
    e.subject = job.index;
    e.sys_errno = err;
    e.mono_ns = to_ns(rt.reactor.now());
    e.wall_ns = status::wall_now_ns();
    e.name = job.spec.name;
    e.detail = detail;
    e.resolution = resolution;
    rt.listeners.dispatch(e);
}

void on_deleted(void* ctx, std::string_view name, std::uint64_t bytes,
                std::uint8_t rules) noexcept {
    prune_job& job = *static_cast<prune_job*>(ctx);
    if (job.visitor != nullptr) {
        job.visitor->file(name, bytes, rules);
    }
    if (job.dry_run) {
        return;
    }
    char rule_text[64];
    const std::size_t rn = prune_rule_names(rules, rule_text, sizeof rule_text);
    char detail[384];
    text_out d(detail, sizeof detail);
    d.put(name).put(" (").put_u64(bytes).put(" bytes, ");
    d.put(std::string_view(rule_text, rn)).put(')');
    dispatch_prune(*job.rt, job, Reason::prune_deleted, 0, d.view(), {});
}

void on_kept(void* ctx, std::string_view name, const Error& why) noexcept {
    prune_job& job = *static_cast<prune_job*>(ctx);
    if (job.dry_run) {
        return;
    }
    if (why.reason() == Reason::prune_unlink_failed) {
        ++job.st.failures;
    }
    dispatch_prune(*job.rt, job, why.reason(), why.sys_errno(), name, why.resolution());
}

// The free-space floor for this run: the larger of the bytes and the
// share of the filesystem's size. statvfs failing leaves the bytes: the
// scan then reports the directory's problem itself.
std::uint64_t free_floor(const prune_job& job) noexcept {
    std::uint64_t floor = job.spec.min_free_bytes;
    if (job.st.min_free_percent == 0) {
        return floor;
    }
    struct statvfs sv {};
    if (::statvfs(job.dir_z, &sv) != 0) {
        return floor;
    }
    // f_blocks * f_frsize / 100 first: no overflow for any real size.
    const std::uint64_t size =
        static_cast<std::uint64_t>(sv.f_blocks) * static_cast<std::uint64_t>(sv.f_frsize);
    const std::uint64_t share = size / 100 * job.st.min_free_percent;
    return share > floor ? share : floor;
}

} // namespace

Result<void> Runtime::impl::layout_prunes() noexcept {
    const std::span<const PruneSpec> specs = plan.table().prunes;
    pr.count = static_cast<std::uint32_t>(specs.size());
    pr.clock = plan.table().log.clock;
    if (pr.count == 0) {
        return {};
    }
    bool ok = true;
    pr.jobs = mem.make_array<prune_job>(pr.count);
    ok = ok && pr.jobs != nullptr;
    for (std::uint32_t j = 0; j < pr.count; ++j) {
        const PruneSpec& s = specs[j];
        if (pr.jobs == nullptr) {
            // Measuring: the same takes as below.
            (void)mem.copy(s.name);
            (void)mem.copy(s.dir);
            (void)mem.copy(s.glob);
            (void)mem.copy(s.time_pattern);
            (void)mem.copy(s.seq_prefix);
            prune::workspace probe_ws;
            (void)probe_ws.init(mem, s.max_files);
            continue;
        }
        prune_job& job = pr.jobs[j];
        job.rt = this;
        job.index = j;
        job.spec = s;
        job.spec.name = keep(mem, s.name, ok);
        job.spec.dir = keep(mem, s.dir, ok);
        job.dir_z = const_cast<char*>(job.spec.dir.data());
        job.spec.glob = keep(mem, s.glob, ok);
        job.spec.time_pattern = keep(mem, s.time_pattern, ok);
        job.spec.seq_prefix = keep(mem, s.seq_prefix, ok);
        if (auto r = job.ws.init(mem, s.max_files); !r) {
            if (r.error().reason() != Reason::out_of_memory) {
                return r;
            }
            ok = false;
        }
        job.timer.fire = &impl::on_prune_timer;
        job.timer.user = &job;
        PruneJobStatus& st = job.st;
        st.name = job.spec.name;
        st.dir = job.spec.dir;
        st.glob = job.spec.glob;
        st.order = s.order;
        st.combine = s.combine;
        st.interval = s.interval;
        st.max_age = s.max_age;
        st.keep_newest = s.keep_newest;
        st.max_total_bytes = s.max_total_bytes;
        st.min_free_bytes = s.min_free_bytes;
        st.min_free_percent = s.min_free_percent;
        st.max_files = s.max_files;
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "prune workspaces");
    }
    return {};
}

namespace {

// The next run after `from`: interval +/- 10 %, or (first) anywhere in
// one interval, never sooner than 1 ms.
mono_time next_run(mono_time from, Duration interval, std::uint64_t random, bool first) noexcept {
    const auto iv = static_cast<std::uint64_t>(std::chrono::duration_cast<nanos>(interval).count());
    std::uint64_t delay = 0;
    if (first) {
        delay = random % iv;
    } else {
        const std::uint64_t tenth = iv / 10;
        delay = iv - tenth + random % (2 * tenth + 1);
    }
    const std::uint64_t min_delay = 1000000;
    return from + nanos(static_cast<std::int64_t>(delay < min_delay ? min_delay : delay));
}

// Slack for the wheel: background work, coalesced with others' within a
// hundredth of the interval (at most a second).
nanos prune_slack(Duration interval) noexcept {
    const nanos s = std::chrono::duration_cast<nanos>(interval) / 100;
    return s < std::chrono::seconds(1) ? s : nanos(std::chrono::seconds(1));
}

} // namespace

void Runtime::impl::start_prunes() noexcept {
    for (std::uint32_t j = 0; j < pr.count; ++j) {
        prune_job& job = pr.jobs[j];
        if (job.spec.interval.count() <= 0) {
            continue;
        }
        const mono_time at = next_run(reactor.now(), job.spec.interval, rng.next(), true);
        job.st.next_run_mono_ns = to_ns(at);
        reactor.arm(job.timer, at, prune_slack(job.spec.interval));
    }
}

void Runtime::impl::stop_prunes() noexcept {
    for (std::uint32_t j = 0; j < pr.count; ++j) {
        reactor.cancel(pr.jobs[j].timer);
        pr.jobs[j].st.next_run_mono_ns = 0;
    }
}

void Runtime::impl::on_prune_timer(io::timer& t) noexcept {
    auto& job = *static_cast<prune_job*>(t.user);
    impl& rt = *job.rt;
    if (rt.stopping) {
        job.st.next_run_mono_ns = 0;
        return;
    }
    (void)rt.run_prune(job, false, nullptr); // its failure is an event
    const mono_time at = next_run(rt.reactor.now(), job.spec.interval, rt.rng.next(), false);
    job.st.next_run_mono_ns = to_ns(at);
    rt.reactor.arm(job.timer, at, prune_slack(job.spec.interval));
}

Result<PruneSummary> Runtime::impl::run_prune(prune_job& job, bool dry_run,
                                              PruneVisitor* v) noexcept {
    prune::options opt;
    opt.dry_run = dry_run;
    opt.now_wall_ns = status::wall_now_ns();
    opt.clock_trusted = io::wall_clock_trusted(pr.clock, opt.now_wall_ns);
    PruneSpec spec = job.spec;
    spec.min_free_bytes = free_floor(job);
    prune::report rep;
    rep.on_deleted = &on_deleted;
    rep.on_kept = &on_kept;
    rep.ctx = &job;
    job.visitor = v;
    job.dry_run = dry_run;
    const Result<void> r = prune::run(spec, opt, job.ws, rep);
    job.visitor = nullptr;
    job.dry_run = false;
    if (dry_run) {
        if (!r) {
            return fail(r.error());
        }
        return rep.summary;
    }
    PruneJobStatus& st = job.st;
    ++st.runs;
    st.last_run_mono_ns = to_ns(reactor.now());
    st.last_free_floor = spec.min_free_bytes;
    st.last = rep.summary;
    if (!r) {
        ++st.failures;
        st.last_error = r.error().reason();
        dispatch_prune(*this, job, r.error().reason(), r.error().sys_errno(), job.spec.dir,
                       r.error().resolution());
        return fail(r.error());
    }
    st.last_error = Reason::unknown;
    st.files_deleted += rep.summary.deleted;
    st.bytes_deleted += rep.summary.deleted_bytes;
    return rep.summary;
}

std::uint32_t Runtime::impl::find_prune(std::string_view name) const noexcept {
    for (std::uint32_t j = 0; j < pr.count; ++j) {
        if (pr.jobs[j].spec.name == name) {
            return j;
        }
    }
    return UINT32_MAX;
}

bool Runtime::impl::same_prunes(std::span<const PruneSpec> next) const noexcept {
    if (next.size() != pr.count) {
        return false;
    }
    for (std::uint32_t j = 0; j < pr.count; ++j) {
        const PruneSpec& a = pr.jobs[j].spec;
        const PruneSpec& b = next[j];
        if (a.name != b.name || a.dir != b.dir || a.glob != b.glob || a.order != b.order ||
            a.time_pattern != b.time_pattern || a.seq_prefix != b.seq_prefix ||
            a.max_age != b.max_age || a.keep_newest != b.keep_newest ||
            a.max_total_bytes != b.max_total_bytes || a.min_free_bytes != b.min_free_bytes ||
            a.min_free_percent != b.min_free_percent || a.combine != b.combine ||
            a.max_files != b.max_files || a.interval != b.interval) {
            return false;
        }
    }
    return true;
}

Result<PruneJobStatus> Runtime::impl::prune_job_status(std::uint32_t j) const noexcept {
    if (j >= pr.count) {
        return fail(Reason::invalid_argument, 0, "no such prune job");
    }
    return pr.jobs[j].st;
}

Result<PruneSummary> Runtime::impl::prune_job_run(std::uint32_t j, bool dry_run,
                                                  PruneVisitor* v) noexcept {
    if (j >= pr.count) {
        return fail(Reason::invalid_argument, 0, "no such prune job");
    }
    return run_prune(pr.jobs[j], dry_run, v);
}

void Runtime::set_prune_hook(PruneHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->user_hooks.set_prune_hook(hook, ctx);
    }
}

std::uint32_t Runtime::prune_count() const noexcept {
    return impl_ != nullptr ? impl_->pr.count : 0;
}

Result<PruneJobStatus> Runtime::prune_status(std::uint32_t index) const noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::invalid_argument, 0, "runtime not initialised");
    }
    return impl_->prune_job_status(index);
}

Result<PruneSummary> Runtime::prune_now(std::string_view name, bool dry_run,
                                        PruneVisitor* v) noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::invalid_argument, 0, "runtime not initialised");
    }
    const std::uint32_t j = impl_->find_prune(name);
    if (j == UINT32_MAX) {
        Error e(Reason::invalid_argument, 0, name);
        e.with_resolution("Name a prune job of the table (Table::prunes, [prune:NAME])");
        return fail(e);
    }
    return impl_->run_prune(impl_->pr.jobs[j], dry_run, v);
}

} // namespace custos
