// The retention pruner wired into custos::Runtime, on a real temporary
// directory: a job's timer deletes what its rules choose (each deletion an
// event), a file it cannot classify stays, a job whose directory is missing
// reports its failure while supervision goes on, prune_now's dry run lists
// what would go and deletes nothing, the table check names the field at
// fault, and (built with the counting allocator) a run after start()
// allocates nothing.
//
// meson runs this binary once per backend (CUSTOS_BACKEND=uring|epoll); a
// backend the kernel refuses, or a filesystem without file leases (the
// pruner keeps what it cannot prove closed), makes the run exit 77 (a skip).
#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <custos/prune.hpp>
#include <custos/runtime.hpp>

#include "backend_probe.hpp"
#include "eventlog/record.hpp"
#include "scratch_dir.hpp"
#include "status/event.hpp"
#ifdef PRUNE_COUNTING_ALLOC
#include "counting_alloc.hpp"
#endif

using namespace custos;
using namespace std::chrono_literals;

namespace {

void on_alarm(int) {
    const char msg[] = "test_runtime_prune: a scenario hung (alarm); failing\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    std::_Exit(1);
}

[[maybe_unused]] bool exists(const std::string& path) {
    return ::access(path.c_str(), F_OK) == 0;
}

void touch(const std::string& path, std::size_t bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    std::string data(bytes, 'x');
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fd);
}

// Files named by their date, five classified and one that is not.
void fill(const custos_test::scratch_dir& d) {
    for (int day = 1; day <= 5; ++day) {
        char name[64];
        std::snprintf(name, sizeof name, "app-202501%02d.log", day);
        touch(d.at(name), 100 * static_cast<std::size_t>(day));
    }
    touch(d.at("app-latest.log"), 50); // no date where the pattern says: never deleted
    touch(d.at("other.txt"), 10);      // outside the glob
}

PruneSpec dated_job(std::string_view name, std::string_view dir) {
    PruneSpec s;
    s.name = name;
    s.dir = dir;
    s.glob = "app-*.log";
    s.order = PruneOrder::name_time;
    s.time_pattern = "app-%Y%m%d";
    s.keep_newest = 2;
    s.interval = 1s;
    return s;
}

struct seen {
    std::string job;
    Reason reason;
    int sys_errno;
    std::string detail;
    std::string resolution;
};

// A runtime with a sleeping service and the given jobs; every prune event
// and service transition recorded. `stop_when` ends the loop.
struct world {
    RuntimeConfig cfg;
    std::vector<PruneSpec> jobs;
    std::vector<ServiceSpec> services;
    Runtime rt;
    std::vector<seen> events;
    std::vector<ServiceState> states;
    bool (*stop_when)(world& w) = nullptr;
    bool stop_asked = false;

    world() {
        cfg.handle_signals = false;
        cfg.stop_timeout = 5s;
    }

    Result<void> init() {
        Table t;
        t.runtime = cfg;
        t.services = services;
        t.prunes = jobs;
        auto r = rt.init(t);
        if (!r) {
            return r;
        }
        rt.set_prune_hook(
            [](const PruneEvent& e, void* ctx) {
                auto& w = *static_cast<world*>(ctx);
                w.events.push_back({std::string(e.job), e.reason, e.sys_errno,
                                    std::string(e.detail), std::string(e.resolution)});
                if (!w.stop_asked && w.stop_when != nullptr && w.stop_when(w)) {
                    w.stop_asked = true;
                    w.rt.stop();
                }
            },
            this);
        rt.set_transition_hook([](const Transition& tr,
                                  void* ctx) { static_cast<world*>(ctx)->states.push_back(tr.to); },
                               this);
        return r;
    }
    std::size_t count(std::string_view job, Reason r) const {
        std::size_t n = 0;
        for (const seen& e : events) {
            n += e.job == job && e.reason == r ? 1 : 0;
        }
        return n;
    }
};

struct lister final : PruneVisitor {
    std::vector<std::pair<std::string, std::uint8_t>> files;
    void file(std::string_view f, std::uint64_t, std::uint8_t rules) noexcept override {
        files.emplace_back(std::string(f), rules);
    }
};

} // namespace

#ifndef PRUNE_COUNTING_ALLOC

const std::string_view sleep_argv[] = {"/bin/sleep", "30"};

TEST_CASE("a job's timer deletes by its rules; a missing directory fails alone") {
    custos_test::scratch_dir d("crp");
    fill(d);
    const std::string missing = d.at("no-such-dir");
    world w;
    w.jobs.push_back(dated_job("logs", d.path));
    w.jobs.push_back(dated_job("gone", missing));
    ServiceSpec s;
    s.name = "sleeper";
    s.argv = sleep_argv;
    w.services.push_back(s);
    w.stop_when = [](world& self) {
        return self.count("logs", Reason::prune_deleted) >= 3 &&
               self.count("gone", Reason::prune_scan_failed) >= 1;
    };
    REQUIRE(w.init().has_value());
    REQUIRE(w.rt.prune_count() == 2);
    ::alarm(20);
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(w.rt.start().has_value());
    w.rt.run();
    ::alarm(0);
    // Both first runs fall within one interval (1 s) of the start.
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);

    // keep_newest = 2 of the five dated files: the three oldest went, one
    // event each, naming the file, its size and the rule.
    CHECK(w.count("logs", Reason::prune_deleted) == 3);
    CHECK_FALSE(exists(d.at("app-20250101.log")));
    CHECK_FALSE(exists(d.at("app-20250102.log")));
    CHECK_FALSE(exists(d.at("app-20250103.log")));
    CHECK(exists(d.at("app-20250104.log")));
    CHECK(exists(d.at("app-20250105.log")));
    CHECK(exists(d.at("app-latest.log"))); // unclassifiable: kept
    CHECK(exists(d.at("other.txt")));
    bool saw_detail = false;
    for (const seen& e : w.events) {
        if (e.reason == Reason::prune_deleted && e.detail.rfind("app-20250101.log", 0) == 0) {
            CHECK(e.detail == "app-20250101.log (100 bytes, keep_newest)");
            saw_detail = true;
        }
    }
    CHECK(saw_detail);

    // The missing directory: a failure event with its errno and resolution.
    bool saw_failure = false;
    for (const seen& e : w.events) {
        if (e.job == "gone") {
            CHECK(e.reason == Reason::prune_scan_failed);
            CHECK(e.sys_errno == ENOENT);
            CHECK_FALSE(e.resolution.empty());
            saw_failure = true;
        }
    }
    CHECK(saw_failure);

    // Supervision went on: the service ran until the stop.
    bool ran = false;
    for (ServiceState st : w.states) {
        ran = ran || st == ServiceState::running || st == ServiceState::ready;
        CHECK(st != ServiceState::failed);
    }
    CHECK(ran);

    // The status: counters and the last summary.
    auto logs = w.rt.prune_status(0);
    REQUIRE(logs.has_value());
    CHECK(logs->name == "logs");
    CHECK(logs->runs >= 1);
    CHECK(logs->files_deleted == 3);
    CHECK(logs->bytes_deleted == 600);
    CHECK(logs->failures == 0);
    CHECK(logs->last_run_mono_ns > 0);
    CHECK(logs->next_run_mono_ns == 0); // stopped
    CHECK(logs->last_error == Reason::unknown);
    CHECK(logs->last.unclassified == 1);
    auto gone = w.rt.prune_status(1);
    REQUIRE(gone.has_value());
    CHECK(gone->failures >= 1);
    CHECK(gone->last_error == Reason::prune_scan_failed);
    CHECK_FALSE(w.rt.prune_status(2).has_value());
}

TEST_CASE("prune_now: a dry run lists what would go and deletes nothing; a run deletes it") {
    custos_test::scratch_dir d("crp");
    fill(d);
    world w;
    PruneSpec job = dated_job("logs", d.path);
    job.interval = 0s; // on demand only
    w.jobs.push_back(job);
    REQUIRE(w.init().has_value());
    REQUIRE(w.rt.start().has_value());

    lister l;
    auto dry = w.rt.prune_now("logs", true, &l);
    REQUIRE(dry.has_value());
    CHECK(dry->deleted == 3);
    CHECK(dry->unclassified == 1);
    REQUIRE(l.files.size() == 3);
    CHECK(l.files[0].first == "app-20250101.log");
    CHECK(l.files[0].second == prune_rule_keep_newest);
    CHECK(exists(d.at("app-20250101.log")));
    CHECK(w.events.empty()); // a dry run emits nothing ...
    auto st = w.rt.prune_status(0);
    REQUIRE(st.has_value());
    CHECK(st->runs == 0); // ... and counts nothing
    CHECK(st->next_run_mono_ns == 0);

    auto real = w.rt.prune_now("logs", false);
    REQUIRE(real.has_value());
    CHECK(real->deleted == 3);
    CHECK_FALSE(exists(d.at("app-20250101.log")));
    CHECK(w.count("logs", Reason::prune_deleted) == 3);
    st = w.rt.prune_status(0);
    REQUIRE(st.has_value());
    CHECK(st->runs == 1);
    CHECK(st->files_deleted == 3);

    auto unknown = w.rt.prune_now("nope", true);
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().reason() == Reason::invalid_argument);
    w.rt.stop();
    w.rt.run();
}

TEST_CASE("min_free_percent: a floor above the filesystem's free space deletes oldest first") {
    custos_test::scratch_dir d("crp");
    fill(d);
    world w;
    PruneSpec job = dated_job("logs", d.path);
    job.keep_newest = 0;
    job.min_free_percent = 99; // never met on a real filesystem: everything classified goes
    job.interval = 0s;
    w.jobs.push_back(job);
    REQUIRE(w.init().has_value());
    struct statvfs sv {};
    REQUIRE(::statvfs(d.path.c_str(), &sv) == 0);
    const std::uint64_t size =
        static_cast<std::uint64_t>(sv.f_blocks) * static_cast<std::uint64_t>(sv.f_frsize);
    const std::uint64_t free =
        static_cast<std::uint64_t>(sv.f_bavail) * static_cast<std::uint64_t>(sv.f_frsize);
    const std::uint64_t floor = size / 100 * 99;
    auto r = w.rt.prune_now("logs", false);
    REQUIRE(r.has_value());
    // Under the floor (any filesystem in use): every classified file goes,
    // oldest first; a nearly empty one keeps them all.
    if (free + 1600 < floor) {
        CHECK(r->deleted == 5);
    } else if (free >= floor) {
        CHECK(r->deleted == 0);
    }
    CHECK(exists(d.at("app-latest.log")));
    auto st = w.rt.prune_status(0);
    REQUIRE(st.has_value());
    CHECK(st->min_free_percent == 99);
    CHECK(st->last_free_floor == floor);
}

TEST_CASE("a reload keeps the same jobs and refuses changed ones (ReloadUnsupported)") {
    custos_test::scratch_dir d("crp");
    world w;
    PruneSpec job = dated_job("logs", d.path);
    job.interval = 0s;
    w.jobs.push_back(job);
    ServiceSpec s;
    s.name = "sleeper";
    s.argv = sleep_argv;
    w.services.push_back(s);
    REQUIRE(w.init().has_value());
    REQUIRE(w.rt.start().has_value());
    Table t;
    t.runtime = w.cfg;
    t.services = w.services;
    // The same jobs, from other memory (a config read again).
    const std::string dir_copy = d.path;
    PruneSpec same = job;
    same.dir = dir_copy;
    const PruneSpec same_jobs[] = {same};
    t.prunes = same_jobs;
    auto ok = w.rt.reload(t);
    INFO((ok ? "" : reason_id(ok.error().reason())));
    CHECK(ok.has_value());
    PruneSpec changed = job;
    changed.keep_newest = 3;
    const PruneSpec changed_jobs[] = {changed};
    t.prunes = changed_jobs;
    auto refused = w.rt.reload(t);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().reason() == Reason::reload_unsupported);
    t.prunes = {};
    auto gone = w.rt.reload(t);
    REQUIRE_FALSE(gone.has_value());
    CHECK(gone.error().reason() == Reason::reload_unsupported);
    w.rt.stop();
    w.rt.run();
}

TEST_CASE("prune events in the event log: a deletion is info, a failure a warning") {
    status::event e;
    e.kind = status::event_kind::prune;
    e.name = "logs";
    e.detail = "app-20250101.log (100 bytes, keep_newest)";
    e.reason = Reason::prune_deleted;
    CHECK(eventlog::level_for(e) == eventlog::level::info);
    const eventlog::record r = eventlog::from_event(e, eventlog::level_for(e));
    CHECK(r.kind == status::event_kind::prune);
    CHECK(r.name_view() == "logs");
    CHECK(r.message_view() == "app-20250101.log (100 bytes, keep_newest)");
    CHECK(r.from_view().empty());
    for (Reason why : {Reason::prune_scan_failed, Reason::prune_too_many_files,
                       Reason::prune_unlink_failed, Reason::prune_file_changed}) {
        e.reason = why;
        CHECK(eventlog::level_for(e) == eventlog::level::warning);
    }
    CHECK(status::event_kind_name(status::event_kind::prune) == "prune");
}

namespace {
struct problems final : TableProblemSink {
    std::vector<TableProblem> got;
    void report(const TableProblem& p) noexcept override { got.push_back(p); }
    bool has(PruneField f) const {
        for (const TableProblem& p : got) {
            if (p.kind == TableKind::prune && p.prune_field() == f) {
                return true;
            }
        }
        return false;
    }
};
} // namespace

TEST_CASE("the table check names the prune field at fault") {
    PruneSpec ok = dated_job("a", "/tmp");
    struct bad_case {
        const char* what;
        PruneSpec spec;
        PruneField field;
    };
    std::vector<bad_case> cases;
    PruneSpec s = ok;
    s.name = "";
    cases.push_back({"empty name", s, PruneField::name});
    s = ok;
    s.name = "a/b";
    cases.push_back({"bad name", s, PruneField::name});
    s = ok;
    s.dir = "relative";
    cases.push_back({"relative dir", s, PruneField::dir});
    s = ok;
    s.glob = "";
    cases.push_back({"empty glob", s, PruneField::glob});
    s = ok;
    s.glob = "a/*";
    cases.push_back({"glob with slash", s, PruneField::glob});
    s = ok;
    s.time_pattern = "%Y%m";
    cases.push_back({"pattern without day", s, PruneField::time_pattern});
    s = ok;
    s.time_pattern = "%Y%m%d%q";
    cases.push_back({"unknown conversion", s, PruneField::time_pattern});
    s = ok;
    s.order = PruneOrder::mtime;
    cases.push_back({"pattern without order name", s, PruneField::time_pattern});
    s = ok;
    s.order = PruneOrder::mtime;
    s.time_pattern = "";
    s.seq_prefix = "events-";
    cases.push_back({"seq_prefix without order seq", s, PruneField::seq_prefix});
    s = ok;
    s.max_files = 0;
    cases.push_back({"max_files 0", s, PruneField::max_files});
    s = ok;
    s.interval = 500ms;
    cases.push_back({"interval under 1 s", s, PruneField::interval});
    s = ok;
    s.min_free_percent = 100;
    cases.push_back({"min_free 100 %", s, PruneField::min_free});
    s = ok;
    s.max_age = -1s;
    cases.push_back({"negative max_age", s, PruneField::max_age});
    for (const bad_case& c : cases) {
        CAPTURE(c.what);
        Table t;
        const PruneSpec one[] = {c.spec};
        t.prunes = one;
        problems p;
        CHECK(validate_table(t, &p) >= 1);
        CHECK(p.has(c.field));
    }
    {
        Table t;
        const PruneSpec two[] = {ok, ok};
        t.prunes = two;
        problems p;
        CHECK(validate_table(t, &p) == 1);
        CHECK(p.has(PruneField::name));
        REQUIRE(p.got.size() == 1);
        CHECK(p.got[0].error.reason() == Reason::name_duplicate);
        CHECK(p.got[0].name == "a");
        CHECK(p.got[0].index == 1);
    }
    {
        Table t;
        const PruneSpec one[] = {ok};
        t.prunes = one;
        CHECK(validate_table(t, nullptr) == 0);
        Runtime rt;
        RuntimeConfig cfg;
        cfg.handle_signals = false;
        t.runtime = cfg;
        PruneSpec bad = ok;
        bad.interval = 10ms;
        const PruneSpec worse[] = {bad};
        t.prunes = worse;
        auto r = rt.init(t);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().reason() == Reason::invalid_argument);
    }
    CHECK(field_name(PruneField::min_free) == "min_free");
    CHECK(field_name(PruneField::interval) == "interval");
}

#else // PRUNE_COUNTING_ALLOC

TEST_CASE("no allocation after start(): a real run and a dry run") {
    custos_test::scratch_dir d("crp");
    fill(d);
    struct counts {
        int deleted = 0;
    } seen_counts;
    RuntimeConfig cfg;
    cfg.handle_signals = false;
    PruneSpec job = dated_job("logs", d.path);
    job.interval = 0s;
    job.min_free_percent = 1;
    const PruneSpec jobs[] = {job};
    Table t;
    t.runtime = cfg;
    t.prunes = jobs;
    Runtime rt;
    REQUIRE(rt.init(t).has_value());
    rt.set_prune_hook(
        [](const PruneEvent& e, void* ctx) {
            static_cast<counts*>(ctx)->deleted += e.reason == Reason::prune_deleted ? 1 : 0;
        },
        &seen_counts);
    REQUIRE(rt.start().has_value());
    struct quiet final : PruneVisitor {
        int n = 0;
        void file(std::string_view, std::uint64_t, std::uint8_t) noexcept override { ++n; }
    } v;
    const std::uint64_t before = custos_test::allocation_count();
    auto dry = rt.prune_now("logs", true, &v);
    auto real = rt.prune_now("logs", false, &v);
    auto again = rt.prune_now("logs", false);
    const std::uint64_t after = custos_test::allocation_count();
    REQUIRE(dry.has_value());
    REQUIRE(real.has_value());
    REQUIRE(again.has_value());
    CHECK(v.n == 6);
    CHECK(seen_counts.deleted == 3);
    CHECK(after == before);
    CHECK(custos_test::counter_works(after));
    rt.stop();
    rt.run();
}

#endif

int main(int argc, char** argv) {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    {
        // The pruner keeps what it cannot prove closed: without leases here
        // nothing would go, and the cases would fail for the filesystem.
        const std::string f = custos_test::tmp_root() + "/crp-lease-" + std::to_string(::getpid());
        const int fd = ::open(f.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        const bool lease = fd >= 0 && ::fcntl(fd, F_SETLEASE, F_WRLCK) == 0;
        if (fd >= 0) {
            (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
            ::close(fd);
            ::unlink(f.c_str());
        }
        if (!lease) {
            std::printf("SKIP: no file leases in %s\n", custos_test::tmp_root().c_str());
            return 77;
        }
    }
    struct sigaction sa {};
    sa.sa_handler = &on_alarm;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGALRM, &sa, nullptr);
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
