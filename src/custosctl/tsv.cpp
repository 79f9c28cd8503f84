// custosctl's reading of GET /status?format=tsv (cli.hpp): its rows, and
// the table `custosctl status` prints of them.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "custosctl/cli.hpp"

namespace custos::ctl::cli {

namespace {

// The next row of `tsv` from `at`; false at the end. Lines with fewer than
// seven fields are skipped (a newer server may add fields at the end).
bool next_row(std::string_view tsv, std::size_t& at, row& r) {
    while (at < tsv.size()) {
        std::size_t eol = tsv.find('\n', at);
        if (eol == std::string_view::npos) {
            eol = tsv.size();
        }
        std::string_view line = tsv.substr(at, eol - at);
        at = eol + 1;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        std::string_view f[8];
        std::size_t n = 0;
        while (n < 8) {
            const std::size_t tab = line.find('\t');
            f[n++] = line.substr(0, tab);
            if (tab == std::string_view::npos) {
                break;
            }
            line.remove_prefix(tab + 1);
        }
        if (n < 7 || f[0].empty()) {
            continue;
        }
        r = row{f[0], f[1], f[2], f[3], f[4], f[5], f[6], n > 7 ? f[7] : std::string_view{}};
        return true;
    }
    return false;
}

// 45s, 3m12s, 2h05m, 4d03h from "12.345" seconds; "-" as it is.
void human_uptime(std::string_view s, char* out, std::size_t cap) {
    unsigned long long secs = 0;
    std::size_t digits = 0;
    for (char c : s) {
        if (c < '0' || c > '9' || digits == 12) {
            break;
        }
        secs = secs * 10 + static_cast<unsigned>(c - '0');
        ++digits;
    }
    if (digits == 0) {
        std::snprintf(out, cap, "-");
    } else if (secs < 60) {
        std::snprintf(out, cap, "%llus", secs);
    } else if (secs < 3600) {
        std::snprintf(out, cap, "%llum%02llus", secs / 60, secs % 60);
    } else if (secs < 86400) {
        std::snprintf(out, cap, "%lluh%02llum", secs / 3600, secs % 3600 / 60);
    } else {
        std::snprintf(out, cap, "%llud%02lluh", secs / 86400, secs % 86400 / 3600);
    }
}

bool use_colour() {
    const char* no = std::getenv("NO_COLOR");
    const char* term = std::getenv("TERM");
    return ::isatty(1) == 1 && (no == nullptr || *no == '\0') &&
           (term == nullptr || std::strcmp(term, "dumb") != 0);
}

const char* colour_of(std::string_view state) {
    if (state == "ready") {
        return "\033[32m";
    }
    if (state == "failed") {
        return "\033[31m";
    }
    if (state == "backoff" || state == "starting") {
        return "\033[33m";
    }
    return nullptr;
}

// Text from the server, with control bytes as '?': a terminal must show it,
// not obey it.
void put_field(std::string_view f, int width) {
    for (char c : f) {
        const auto u = static_cast<unsigned char>(c);
        std::fputc(u < 0x20 || u == 0x7f ? '?' : c, stdout);
    }
    for (int i = static_cast<int>(f.size()); i < width; ++i) {
        std::fputc(' ', stdout);
    }
}

} // namespace

bool find_row(std::string_view tsv, std::string_view name, row& r) {
    std::size_t at = 0;
    while (next_row(tsv, at, r)) {
        if (r.name == name) {
            return true;
        }
    }
    return false;
}

void print_table(std::string_view tsv) {
    constexpr int cols = 7;
    const char* head[cols] = {"NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST-EXIT", "REASON"};
    int width[cols];
    for (int i = 0; i < cols; ++i) {
        width[i] = static_cast<int>(std::strlen(head[i]));
    }
    auto fields = [](const row& r, char* up, std::size_t cap, std::string_view* f) {
        human_uptime(r.uptime, up, cap);
        f[0] = r.name;
        f[1] = r.state;
        f[2] = r.pid == "0" ? std::string_view("-") : r.pid;
        f[3] = up;
        f[4] = r.restarts;
        f[5] = r.last_exit;
        f[6] = r.reason;
    };
    row r;
    std::size_t at = 0;
    while (next_row(tsv, at, r)) {
        char up[32];
        std::string_view f[cols];
        fields(r, up, sizeof up, f);
        for (int i = 0; i < cols; ++i) {
            const int n = static_cast<int>(f[i].size() < 200 ? f[i].size() : 200);
            width[i] = n > width[i] ? n : width[i];
        }
    }
    for (int i = 0; i < cols; ++i) {
        put_field(head[i], i + 1 < cols ? width[i] + 2 : 0);
    }
    std::fputc('\n', stdout);
    const bool colour = use_colour();
    at = 0;
    while (next_row(tsv, at, r)) {
        char up[32];
        std::string_view f[cols];
        fields(r, up, sizeof up, f);
        for (int i = 0; i < cols; ++i) {
            const int w = i + 1 < cols ? width[i] + 2 : 0;
            const char* c = i == 1 && colour ? colour_of(f[i]) : nullptr;
            if (c != nullptr) {
                std::fputs(c, stdout);
                put_field(f[i], 0);
                std::fputs("\033[0m", stdout);
                put_field({}, w - static_cast<int>(f[i].size()));
            } else {
                put_field(f[i], w);
            }
        }
        std::fputc('\n', stdout);
    }
}

// GET /status?format=tsv into `r`; -1 when it came (200).
int get_tsv(const session& s, std::int64_t timeout, response& r) {
    constexpr std::string_view target = "/status?format=tsv";
    if (const int rc = ask(s, "GET", target, timeout, r); rc >= 0) {
        return rc;
    }
    return r.status == 200 ? -1 : refused(s, "GET", target, r);
}

} // namespace custos::ctl::cli
