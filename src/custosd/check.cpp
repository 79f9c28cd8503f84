// custosd's checks of a config before anything starts, each problem at its
// FILE:LINE: the table's problems mapped to lines (line_sink), the
// [watchdog] board, the [control] names and every service's cwd.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

#include "custosd/daemon.hpp"
#include "table/users.hpp"
#include "table/values.hpp"

namespace custos::daemon {

namespace {

// The line of the first section over a capacity: the table's own problem
// ("65 services, max_services 64") is about the file, but the operator
// wants the place where the excess begins.
unsigned excess_line(const custos::cfg::config& cfg, std::uint32_t limit, bool probes) {
    if (probes) {
        return limit < cfg.probes().size() ? cfg.probe_line_of(limit, custos::ProbeField::section)
                                           : 0;
    }
    return limit < cfg.services().size() ? cfg.line_of(limit, custos::ServiceField::section) : 0;
}

// May `uid`/`gid` search (enter) the directory `st` describes? The owner's,
// else the group's, else the others' x bit, as the kernel decides for a
// process whose only group is `gid` (the spawner gives a service exactly
// that one). ACLs and capabilities other than root's are not evaluated.
bool may_enter(const struct stat& st, uid_t uid, gid_t gid) {
    if (uid == 0) {
        return true;
    }
    if (st.st_uid == uid) {
        return (st.st_mode & S_IXUSR) != 0;
    }
    if (st.st_gid == gid) {
        return (st.st_mode & S_IXGRP) != 0;
    }
    return (st.st_mode & S_IXOTH) != 0;
}

} // namespace

void line_sink::report(const custos::TableProblem& p) noexcept {
    ++count;
    char text[512];
    p.error.format(text, sizeof text);
    if (p.kind == custos::TableKind::watchdog) {
        // The key's line; the header's for a key not set; 0 without a
        // [watchdog] section.
        say("%s:%u: [watchdog] %s", file, cfg.watchdog_line_of(p.watchdog_field()), text);
        return;
    }
    if (p.kind == custos::TableKind::prune) {
        // The key's line ([prune:x]'s header for a key not set).
        if (p.index < cfg.prunes().size()) {
            say("%s:%u: [prune:%.*s] %s", file, cfg.prune_line_of(p.index, p.prune_field()),
                static_cast<int>(p.name.size()), p.name.data(), text);
        } else {
            say("%s:0: %s", file, text);
        }
        return;
    }
    if (p.kind != custos::TableKind::service && p.kind != custos::TableKind::probe) {
        say("%s:0: %s", file, text); // no section of a config file gives the others
        return;
    }
    const bool probe = p.kind == custos::TableKind::probe;
    const std::size_t entries = probe ? cfg.probes().size() : cfg.services().size();
    const std::uint32_t limit = probe ? cfg.runtime().max_probes : cfg.runtime().max_services;
    if (p.index != UINT32_MAX && p.index < entries) {
        const unsigned line = probe ? cfg.probe_line_of(p.index, p.probe_field())
                                    : cfg.line_of(p.index, p.service_field());
        say("%s:%u: [%s:%.*s] %s", file, line, probe ? "probe" : "service",
            static_cast<int>(p.name.size()), p.name.data(), text);
    } else if (p.error.reason() == custos::Reason::capacity_exceeded &&
               (!probe || entries > limit)) {
        // max_probe_checks, by contrast, is about no section.
        say("%s:%u: %s", file, excess_line(cfg, limit, probe), text);
    } else {
        say("%s:0: %s", file, text);
    }
}

// A [watchdog] board that names no profile: BoardUnknown at the board key's
// line, before anything is opened, so that --check finds it too (the
// resolution lists the profiles). "auto" and "" (the build's default) are
// resolved at init. Returns the number of problems printed.
unsigned check_board(const custos::cfg::config& cfg, const char* file) {
    const custos::WatchdogConfig& w = cfg.watchdog();
    if (w.device == custos::WatchdogDevice::none || custos::watchdog_board_known(w.board)) {
        return 0;
    }
    char text[512];
    custos::Error(custos::Reason::board_unknown, 0, w.board).format(text, sizeof text);
    say("%s:%u: [watchdog] %s", file, cfg.watchdog_line_of(custos::WatchdogField::board), text);
    return 1;
}

// The [control] names custosd can check before anything is opened, each at
// its key's line: the group exists, every operator exists (uids and gids
// are taken as they are: a peer's credentials are numbers), and the
// socket's directory exists (the default's, /run/custos, is made at the
// start). The same files the runtime reads, never NSS. Returns the number
// of problems printed.
unsigned check_control(const custos::cfg::config& cfg, const char* file) {
    using custos::cfg::control_field;
    const custos::ControlConfig& c = cfg.control();
    if (!cfg.has_control_section() || c.socket.empty()) {
        return 0;
    }
    unsigned problems = 0;
    if (c.socket != custos::control::default_socket) {
        // The config reader bounds the path (107 bytes) and makes it absolute.
        char dir[128];
        const std::size_t slash = c.socket.rfind('/');
        const std::size_t n = slash == 0 ? 1 : slash;
        std::memcpy(dir, c.socket.data(), n);
        dir[n] = '\0';
        struct stat st {};
        int e = 0;
        if (::stat(dir, &st) != 0) {
            e = errno;
        } else if (!S_ISDIR(st.st_mode)) {
            e = ENOTDIR;
        }
        if (e != 0) {
            say("%s:%u: [control] socket %.*s: directory %s: %s", file,
                cfg.control_line_of(control_field::socket), static_cast<int>(c.socket.size()),
                c.socket.data(), dir, std::strerror(e));
            say("  resolution: create the directory, or choose a socket path in one that exists");
            ++problems;
        }
    }
    auto numeric = [](std::string_view s) {
        std::uint32_t id = 0;
        return custos::tbl::parse_numeric_id(s, id);
    };
    // Unknown: not in the file (errno 0); else the file could not be read.
    auto report = [&](control_field f, const char* what, std::string_view name,
                      const custos::Error& e) {
        const unsigned line = cfg.control_line_of(f);
        const char* db = e.reason() == custos::Reason::group_unknown ? "/etc/group" : "/etc/passwd";
        if (e.sys_errno() != 0) {
            say("%s:%u: [control] %s %.*s: %s: %s", file, line, what, static_cast<int>(name.size()),
                name.data(), db, std::strerror(e.sys_errno()));
        } else {
            say("%s:%u: [control] %s %.*s: %.*s: not in %s", file, line, what,
                static_cast<int>(name.size()), name.data(), static_cast<int>(e.id().size()),
                e.id().data(), db);
        }
        say("  resolution: create it on the image, or give its number, or fix the %s",
            f == control_field::group ? "group" : "operators");
        ++problems;
    };
    if (!c.group.empty() && !numeric(c.group)) {
        if (auto g = custos::tbl::find_group(c.group); !g) {
            report(control_field::group, "group", c.group, g.error());
        }
    }
    for (std::string_view op : c.operators) {
        const bool group = op.front() == '@';
        const std::string_view name = group ? op.substr(1) : op;
        if (numeric(name)) {
            continue;
        }
        if (group) {
            if (auto g = custos::tbl::find_group(name); !g) {
                report(control_field::operators, "operator group", name, g.error());
            }
        } else if (auto u = custos::tbl::find_user(name); !u) {
            report(control_field::operators, "operator", name, u.error());
        }
    }
    return problems;
}

// Checks every service's cwd now, so that --check finds what the chdir
// would: it exists and is a directory, and, when custosd runs as root and
// the service has a user, that user can enter it and every directory above.
// Relative cwds are the table validator's to refuse. Returns the number of
// problems printed (FILE:LINE on the cwd line).
unsigned check_cwds(const custos::cfg::config& cfg, const char* file) {
    unsigned problems = 0;
    for (std::uint32_t i = 0; i < cfg.services().size(); ++i) {
        const custos::ServiceSpec& s = cfg.services()[i];
        if (s.cwd.empty() || s.cwd[0] != '/') {
            continue;
        }
        const unsigned line = cfg.line_of(i, custos::ServiceField::cwd);
        const int len = static_cast<int>(s.cwd.size());
        char dir[PATH_MAX];
        if (s.cwd.size() >= sizeof dir) {
            say("%s:%u: cwd %.40s...: %s", file, line, s.cwd.data(), std::strerror(ENAMETOOLONG));
            ++problems;
            continue;
        }
        std::memcpy(dir, s.cwd.data(), s.cwd.size());
        dir[s.cwd.size()] = '\0';
        struct stat st {};
        if (::stat(dir, &st) != 0) {
            say("%s:%u: cwd %.*s: %s", file, line, len, s.cwd.data(), std::strerror(errno));
            say("  resolution: create the directory, or fix cwd");
            ++problems;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            say("%s:%u: cwd %.*s: %s", file, line, len, s.cwd.data(), std::strerror(ENOTDIR));
            say("  resolution: point cwd at a directory");
            ++problems;
            continue;
        }
        if (s.user.empty() || ::geteuid() != 0) {
            continue; // the service runs as custosd (root can enter anything)
        }
        // The same files the runtime reads (src/supervise/users), never NSS.
        auto pw = custos::tbl::find_user(s.user);
        if (!pw) {
            continue; // UserUnknown, from the table validator
        }
        const uid_t uid = pw->uid;
        gid_t gid = pw->gid;
        if (!s.group.empty()) {
            auto gr = custos::tbl::find_group(s.group);
            if (!gr) {
                continue; // GroupUnknown, from the table validator
            }
            gid = gr->gid;
        }
        // Every directory from the root down: each must let the user through.
        for (std::size_t end = 1; end <= s.cwd.size(); ++end) {
            if (end != 1 && end != s.cwd.size() && dir[end] != '/') {
                continue;
            }
            const char saved = dir[end];
            dir[end] = '\0';
            const bool ok = ::stat(dir, &st) == 0 && may_enter(st, uid, gid);
            if (!ok) {
                say("%s:%u: cwd %.*s: %s: user %.*s (uid %u, gid %u) cannot enter %s "
                    "(mode %04o, owner %u:%u)",
                    file, line, len, s.cwd.data(), std::strerror(EACCES),
                    static_cast<int>(s.user.size()), s.user.data(), static_cast<unsigned>(uid),
                    static_cast<unsigned>(gid), dir, static_cast<unsigned>(st.st_mode & 07777),
                    static_cast<unsigned>(st.st_uid), static_cast<unsigned>(st.st_gid));
                say("  resolution: give the user search (x) permission there (chmod o+x, or "
                    "the user's group), or choose another cwd");
                ++problems;
                break;
            }
            dir[end] = saved;
        }
    }
    return problems;
}

} // namespace custos::daemon
