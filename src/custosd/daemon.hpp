// custosd's parts that its files share: the log line on stderr (log.cpp),
// the checks of a config before it runs (check.cpp) and the reload
// (reload.cpp). Internal to custosd; main.cpp wires them to the Runtime.
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>

#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/runtime.hpp>

#include "custosd/config.hpp"

namespace custos::daemon {

// log.cpp: while set, what say() prints is also added to this reload answer.
extern custos::ReloadReport* say_tee;
// log.cpp: one line on stderr, printf-style, control bytes escaped.
[[gnu::format(printf, 1, 2)]] void say(const char* fmt, ...) noexcept;

// "2026-11-22T01:02:03.456Z", the wall clock in UTC.
struct utc_stamp {
    char text[64] = ""; // room for any tm the compiler can imagine

    utc_stamp() noexcept {
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        tm utc{};
        gmtime_r(&now.tv_sec, &utc);
        std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                      utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                      now.tv_nsec / 1'000'000);
    }
};

// log.cpp: the Runtime's hooks, each event as lines on stderr.
void log_probe_transition(const custos::ProbeTransition& t, void*) noexcept;
void log_health(const custos::HealthStatus& h, void*) noexcept;
void log_transition(const custos::Transition& t, void*) noexcept;
void log_control(const custos::ControlAction& a, void*) noexcept;
void log_watchdog(const custos::WatchdogTransition& t, void*) noexcept;
void log_signal(int sig, void*) noexcept;
void log_prune(const custos::PruneEvent& e, void*) noexcept;

// Maps the table's problems (kind, entry, field) to config lines.
struct line_sink final : custos::TableProblemSink {
    const custos::cfg::config& cfg;
    const char* file;
    unsigned count = 0;

    line_sink(const custos::cfg::config& c, const char* f) : cfg(c), file(f) {}

    void report(const custos::TableProblem& p) noexcept override;
};

// check.cpp: each returns the number of problems printed (FILE:LINE).
unsigned check_board(const custos::cfg::config& cfg, const char* file);
unsigned check_control(const custos::cfg::config& cfg, const char* file);
unsigned check_cwds(const custos::cfg::config& cfg, const char* file);

// SIGHUP and POST /reload: the config file read again (into the spare
// config, whose memory was taken at start) and applied. The sections a
// reload does not apply are compared as the file gives them; when they are
// unchanged the runtime gets what init() got for them (custosd's own
// choices: reap_orphans, the notify directory, the control socket).
// Three configs: the one read at start (init()'s table and `started` point
// into it: never read into again) and two whose memory is fixed at start,
// which reloads alternate between.
struct reloader {
    custos::cfg::config* current = nullptr;
    custos::cfg::config* spare = nullptr;
    custos::cfg::config* a = nullptr;
    custos::cfg::config* b = nullptr;
    const char* path = nullptr;
    custos::Table started; // what init() was given (runtime, watchdog, control)
};

// reload.cpp: the Runtime's reload hook; `ctx` is a reloader.
custos::Result<custos::ReloadSummary>
reload_config(custos::Runtime& rt, custos::ReloadReport& report, void* ctx) noexcept;

} // namespace custos::daemon
