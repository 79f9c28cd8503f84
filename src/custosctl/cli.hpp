// What custosctl's sources share, private to them: main.cpp (the usage,
// the command line, the dispatch), session.cpp (talking to custosd),
// tsv.cpp (reading /status?format=tsv, the status table) and verbs.cpp.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string_view>

#include <custos/control.hpp>
#include <custos/duration.hpp>

#include "custosctl/client.hpp"

namespace custos::ctl::cli {

namespace control = custos::control;

// --- the command line ---

struct options {
    const char* socket = nullptr;
    bool json = false;
    bool wait = false;
    bool follow = false;         // -f, --follow (events)
    const char* since = nullptr; // --since SEQ (events)
    const char* lines = nullptr; // -n LINES (logs)
    bool dry_run = false;        // prune NAME --dry-run
    bool has_timeout = false;
    custos::Duration timeout{0};
    const char* args[256] = {};
    int nargs = 0;
};

// A duration argument, or a usage error printed.
bool duration_arg(const char* what, const char* v, custos::Duration& out);

// --- talking to custosd ---

struct session {
    std::string_view socket;
    const char* verb = "";
};

// One request. -1 when a response came (any status); otherwise the exit
// code, the problem printed.
int ask(const session& s, const char* method, std::string_view target, std::int64_t timeout,
        response& r);
// Writes `text` to `to`, ending it with a newline if it has none.
void print_body(std::FILE* to, std::string_view text);
// A response that is not a success: what it says, and its exit code.
int refused(const session& s, const char* method, std::string_view target, const response& r,
            std::string_view name = {});

// --- the TSV (control.hpp): NAME STATE PID UPTIME_S RESTARTS LAST_EXIT REASON WANTED ---

struct row {
    std::string_view name, state, pid, uptime, restarts, last_exit, reason, wanted;
};

// The row of `name` in `tsv`; false when there is none.
bool find_row(std::string_view tsv, std::string_view name, row& r);
// The TSV as the table `custosctl status` prints.
void print_table(std::string_view tsv);
// GET /status?format=tsv into `r`; -1 when it came (200).
int get_tsv(const session& s, std::int64_t timeout, response& r);

// --- the verbs: each returns custosctl's exit code ---

int cmd_status(const session& s, const options& o);
// start, stop, restart (`action`): each NAME in turn.
int cmd_action(const session& s, const options& o, std::string_view action);
int cmd_check(const session& s, const options& o);
int cmd_health(const session& s, const options& o);
int cmd_wait_ready(const session& s, const options& o);
int cmd_watchdog(const session& s, const options& o);
int cmd_reload(const session& s, const options& o);
int cmd_metrics(const session& s, const options& o);
int cmd_events(const session& s, const options& o);
int cmd_logs(const session& s, const options& o);
// prune: the jobs; prune NAME: run one; prune NAME --dry-run: what would go.
int cmd_prune(const session& s, const options& o);

} // namespace custos::ctl::cli
