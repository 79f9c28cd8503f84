// The spawner, for real: meson runs this binary once per method
// (CUSTOS_SPAWN=clone | vfork | vfork-nopidfd). When the kernel lacks the
// requested method (clone(CLONE_PIDFD) under qemu-user) the spawner steps
// down on its first spawn, and the binary exits 77: meson reports a skip.
//
// The child's state is read by tests/spawn_child (CUSTOS_SPAWN_CHILD), which
// reports what the kernel says about it through the readiness fd.
#define DOCTEST_CONFIG_IMPLEMENT
#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doctest.hpp"
#include "process/cgroup.hpp"
#include "process/spawn.hpp"

using namespace custos;
using namespace custos::process;

namespace {

spawn_method g_method = spawn_method::clone_pidfd; // what this run exercises

// Absolute: one test changes the child's cwd. Defaults to the spawn_child
// beside this binary.
std::string g_helper;

const char* helper() {
    return g_helper.c_str();
}

env_spec inherit_env() {
    env_spec s;
    s.inherited = environ;
    return s;
}

// argv and envp laid out the way the runtime does it: measured, reserved,
// built.
struct command {
    arena a;
    char** argv = nullptr;
    env_block env{};

    explicit command(const std::vector<std::string_view>& args,
                     const env_spec& spec = inherit_env()) {
        arena probe;
        (void)build_argv(probe, args);
        (void)build_env(probe, spec);
        REQUIRE(a.reserve(probe.needed()));
        auto av = build_argv(a, args);
        REQUIRE(av.has_value());
        argv = *av;
        auto ev = build_env(a, spec);
        REQUIRE(ev.has_value());
        env = *ev;
    }

    spawn_request request() const {
        spawn_request r;
        r.path = argv[0];
        r.argv = argv;
        r.envp = env.envp;
        r.watchdog_pid_slot = env.watchdog_pid_slot;
        return r;
    }
};

std::string describe(const Error& e) {
    char buf[512];
    e.format(buf, sizeof buf);
    return buf;
}

struct fixture {
    spawner sp;
    fixture() { REQUIRE(sp.init().has_value()); }

    spawned spawn(const spawn_request& rq) {
        auto r = sp.spawn(rq);
        if (!r) {
            FAIL_CHECK(describe(r.error()));
        }
        REQUIRE(r.has_value());
        // A silent step-down must fail the test, not pass it under the wrong name.
        CHECK(sp.method() == g_method);
        CHECK(r->pid > 0);
        if (g_method == spawn_method::vfork) {
            CHECK(r->pidfd == -1);
        } else {
            CHECK(r->pidfd >= 0);
        }
        return *r;
    }
};

// Waits for the child through its pidfd when it has one; keeps the pidfd.
siginfo_t wait_for(const spawned& s) {
    siginfo_t si{};
    int r;
    do {
        r = s.pidfd >= 0 ? waitid(P_PIDFD, static_cast<id_t>(s.pidfd), &si, WEXITED)
                         : waitid(P_PID, static_cast<id_t>(s.pid), &si, WEXITED);
    } while (r < 0 && errno == EINTR);
    REQUIRE(r == 0);
    CHECK(si.si_pid == s.pid);
    return si;
}

siginfo_t reap(spawned& s) {
    siginfo_t si = wait_for(s);
    if (s.pidfd >= 0) {
        close(s.pidfd);
        s.pidfd = -1;
    }
    return si;
}

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

struct report {
    std::vector<std::pair<std::string, std::string>> kv;

    std::string get(const std::string& key) const {
        for (const auto& [k, v] : kv) {
            if (k == key) {
                return v;
            }
        }
        return "<missing>";
    }
    // Values of the child's environment entries named `name`.
    std::vector<std::string> env(const std::string& name) const {
        std::vector<std::string> out;
        for (const auto& [k, v] : kv) {
            if (k == "env" && v.compare(0, name.size() + 1, name + "=") == 0) {
                out.push_back(v.substr(name.size() + 1));
            }
        }
        return out;
    }
};

report parse(const std::string& text) {
    report r;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? nl : nl - at);
        at = nl == std::string::npos ? text.size() : nl + 1;
        std::size_t eq = line.find('=');
        if (eq != std::string::npos) {
            r.kv.emplace_back(line.substr(0, eq), line.substr(eq + 1));
        }
    }
    return r;
}

// Runs the helper (argv in `cmd`, ending in the fd number) with the ready fd
// `target` fed from a pipe; returns its report once it exited 0.
report run_report(fixture& f, const command& cmd, spawn_request rq, int target,
                  bool source_is_target = false) {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    if (source_is_target) {
        REQUIRE(dup3(p[1], target, O_CLOEXEC) == target);
        close(p[1]);
        p[1] = target;
    }
    rq.ready_fd_target = target;
    rq.ready_fd_source = p[1];
    spawned s = f.spawn(rq);
    close(p[1]);
    report r = parse(read_all(p[0]));
    close(p[0]);
    siginfo_t si = reap(s);
    CHECK(si.si_code == CLD_EXITED);
    CHECK(si.si_status == 0);
    CHECK(r.get("pid") == std::to_string(s.pid));
    (void)cmd;
    return r;
}

std::string read_file(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {};
    }
    std::string out = read_all(fd);
    close(fd);
    return out;
}

int count_fds() {
    DIR* d = opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    int n = 0;
    while (dirent* e = readdir(d)) {
        n += e->d_name[0] != '.' ? 1 : 0;
    }
    closedir(d);
    return n;
}

constexpr const char* empty_sigset = "0000000000000000";

} // namespace

TEST_CASE("spawn: the exit status comes back through the pidfd (or the pid)") {
    fixture f;
    command c({"/bin/sh", "-c", "exit 7"});
    spawned s = f.spawn(c.request());
    siginfo_t si = reap(s);
    CHECK(si.si_code == CLD_EXITED);
    CHECK(si.si_status == 7);
}

TEST_CASE("spawn: the child leads its own session and process group; signal_group kills it") {
    fixture f;
    command c({helper(), "pause"});
    spawned s = f.spawn(c.request());
    CHECK(getpgid(s.pid) == s.pid);
    CHECK(getsid(s.pid) == s.pid);
    CHECK(getpgid(s.pid) != getpgrp());
    CHECK(signal_group(s.pidfd, s.pid, SIGKILL) == 0);
    siginfo_t si = wait_for(s);
    CHECK(si.si_code == CLD_KILLED);
    CHECK(si.si_status == SIGKILL);
    // Reaped, and its group is gone: nothing left to signal.
    CHECK(signal_group(s.pidfd, s.pid, 0) == -ESRCH);
    if (s.pidfd >= 0) {
        close(s.pidfd);
    }
    // kill(0) and kill(-1) would hit our own group or everything.
    CHECK(signal_group(-1, 0, SIGTERM) == -EINVAL);
    CHECK(signal_group(-1, 1, 0) == -EINVAL);
}

TEST_CASE("spawn: stdin is /dev/null, no descriptor leaks, default signals, empty mask") {
    fixture f;
    // Descriptors the parent leaks (no O_CLOEXEC), one of them far up.
    int leaked[3];
    for (int& fd : leaked) {
        fd = open("/dev/null", O_RDONLY);
        REQUIRE(fd >= 0);
    }
    int high = dup2(leaked[0], 200);
    REQUIRE(high == 200);
    // The parent ignores SIGPIPE and blocks SIGCHLD and SIGTERM.
    struct sigaction ign {};
    struct sigaction old_pipe {};
    ign.sa_handler = SIG_IGN;
    REQUIRE(sigaction(SIGPIPE, &ign, &old_pipe) == 0);
    sigset_t blk;
    sigset_t old_mask;
    sigemptyset(&blk);
    sigaddset(&blk, SIGCHLD);
    sigaddset(&blk, SIGTERM);
    REQUIRE(pthread_sigmask(SIG_BLOCK, &blk, &old_mask) == 0);
    // And its stdin is a pipe, not /dev/null already.
    int in[2];
    REQUIRE(pipe2(in, O_CLOEXEC) == 0);
    int saved_stdin = dup(0);
    REQUIRE(dup2(in[0], 0) == 0);

    command c({helper(), "report", "7"});
    report r = run_report(f, c, c.request(), 7);

    // Control: the same helper started by posix_spawn (no resets asked for)
    // does see the parent's state, so the checks above can fail.
    report control;
    {
        int p[2];
        REQUIRE(pipe2(p, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 7);
        pid_t pid = -1;
        REQUIRE(posix_spawn(&pid, helper(), &fa, nullptr, c.argv, environ) == 0);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        control = parse(read_all(p[0]));
        close(p[0]);
        int st = 0;
        REQUIRE(waitpid(pid, &st, 0) == pid);
    }
    if (saved_stdin >= 0) {
        dup2(saved_stdin, 0);
        close(saved_stdin);
    } else {
        close(0);
    }
    close(in[0]);
    close(in[1]);
    REQUIRE(pthread_sigmask(SIG_SETMASK, &old_mask, nullptr) == 0);
    REQUIRE(sigaction(SIGPIPE, &old_pipe, nullptr) == 0);
    for (int fd : leaked) {
        close(fd);
    }
    close(high);

    CHECK(r.get("fds") == "0,1,2,7");
    CHECK(r.get("stdin") == "/dev/null");
    CHECK(r.get("sigblk") == empty_sigset);
    CHECK(r.get("sigign") == empty_sigset);
    CHECK(r.get("sid") == r.get("pid"));
    CHECK(r.get("pgid") == r.get("pid"));
    CHECK(r.get("ppid") == std::to_string(getpid()));

    MESSAGE("control (posix_spawn): stdin=" << control.get("stdin") << " fds=" << control.get("fds")
                                            << " sigblk=" << control.get("sigblk")
                                            << " sigign=" << control.get("sigign"));
    CHECK(control.get("stdin") != "/dev/null");
    CHECK(control.get("fds") != "0,1,2,7");
    CHECK(control.get("sigign") != empty_sigset);
    CHECK(control.get("sigblk") != empty_sigset);
}

TEST_CASE("spawn: the ready fd reaches the parent, also when source and target are one fd") {
    fixture f;
    command c({helper(), "report", "40"});
    report r = run_report(f, c, c.request(), 40, /*source_is_target=*/true);
    CHECK(r.get("fds") == "0,1,2,40");
}

TEST_CASE("spawn: a ready fd target equal to the spawner's own pipe does not clobber it") {
    fixture f;
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    // The spawner's error pipe will take the lowest free pair; ask for the
    // write end's number as the ready fd.
    int q[2];
    REQUIRE(pipe2(q, O_CLOEXEC) == 0);
    close(q[0]);
    close(q[1]);
    const int target = q[1];
    const std::string num = std::to_string(target);
    command c({helper(), "report", num});
    command missing({"/nonexistent/custos-no-such-binary"});

    // A failing exec still reports through the error pipe, not the ready fd.
    spawn_request bad = missing.request();
    bad.ready_fd_target = target;
    bad.ready_fd_source = p[1];
    auto rb = f.sp.spawn(bad);
    REQUIRE_FALSE(rb.has_value());
    CHECK(rb.error().reason() == Reason::exec_failed);
    CHECK(rb.error().sys_errno() == ENOENT);

    spawn_request rq = c.request();
    rq.ready_fd_target = target;
    rq.ready_fd_source = p[1];
    spawned s = f.spawn(rq);
    close(p[1]);
    report r = parse(read_all(p[0]));
    close(p[0]);
    siginfo_t si = reap(s);
    CHECK(si.si_status == 0);
    CHECK(r.get("fds") == "0,1,2," + num);
}

TEST_CASE("spawn: environment: notify variables stripped, service and custos entries, "
          "WATCHDOG_PID") {
    fixture f;
    REQUIRE(setenv("NOTIFY_SOCKET", "/parent/notify", 1) == 0);
    REQUIRE(setenv("WATCHDOG_USEC", "1", 1) == 0);
    REQUIRE(setenv("WATCHDOG_PID", "1", 1) == 0);
    REQUIRE(setenv("CUSTOS_T_FOO", "parent", 1) == 0);
    REQUIRE(setenv("CUSTOS_T_KEEP", "yes", 1) == 0);
    const std::string_view service[] = {"CUSTOS_T_FOO=service", "CUSTOS_T_BAR=1", "CUSTOS_T_BAR=2"};
    const std::string_view own[] = {"NOTIFY_SOCKET=/run/custos/notify", "WATCHDOG_USEC=3000000"};
    env_spec spec;
    spec.inherited = environ;
    spec.service = service;
    spec.custos = own;
    spec.watchdog_pid = true;
    command c({helper(), "report", "7"}, spec);
    // The block is a copy: later changes to our environment do not reach it.
    for (const char* k :
         {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CUSTOS_T_FOO", "CUSTOS_T_KEEP"}) {
        unsetenv(k);
    }
    REQUIRE(c.env.watchdog_pid_slot != nullptr);
    report r = run_report(f, c, c.request(), 7);

    using v = std::vector<std::string>;
    CHECK(r.env("NOTIFY_SOCKET") == v{"/run/custos/notify"});
    CHECK(r.env("WATCHDOG_USEC") == v{"3000000"});
    CHECK(r.env("WATCHDOG_PID") == v{r.get("pid")});
    CHECK(r.env("CUSTOS_T_FOO") == v{"service"});
    CHECK(r.env("CUSTOS_T_BAR") == v{"2"});
    CHECK(r.env("CUSTOS_T_KEEP") == v{"yes"});
    CHECK(r.env("PATH").size() == (std::getenv("PATH") != nullptr ? 1u : 0u));
}

TEST_CASE("spawn: cwd is applied") {
    fixture f;
    char dir[] = "/tmp/custos-spawn-cwd-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    command c({helper(), "report", "7"});
    spawn_request rq = c.request();
    rq.cwd = dir;
    report r = run_report(f, c, rq, 7);
    CHECK(r.get("cwd") == dir);
    rmdir(dir);
}

TEST_CASE("spawn: exec failures name the stage and errno, and leave no zombie or descriptor") {
    fixture f;
    char script[] = "/tmp/custos-spawn-noexec-XXXXXX";
    int sfd = mkstemp(script);
    REQUIRE(sfd >= 0);
    REQUIRE(write(sfd, "#!/bin/sh\nexit 0\n", 17) == 17);
    REQUIRE(fchmod(sfd, 0644) == 0);
    close(sfd);

    command ok({"/bin/true"});
    command missing({"/nonexistent/custos-no-such-binary"});
    command noexec({script});

    int fds_before = count_fds();
    int failures = 0;
    for (int i = 0; i < 100; ++i) {
        spawn_request rq;
        int want_errno = 0;
        std::string want_subject;
        switch (i % 4) {
        case 0:
            rq = ok.request();
            rq.cwd = "/nonexistent/custos-cwd";
            want_errno = ENOENT;
            want_subject = "chdir: /bin/true";
            break;
        case 1:
            rq = missing.request();
            want_errno = ENOENT;
            want_subject = "exec: /nonexistent/custos-no-such-binary";
            break;
        case 2:
            rq = noexec.request();
            want_errno = EACCES;
            want_subject = std::string("exec: ") + script;
            break;
        default: {
            spawned s = f.spawn(ok.request());
            siginfo_t si = reap(s);
            CHECK(si.si_code == CLD_EXITED);
            CHECK(si.si_status == 0);
            continue;
        }
        }
        auto r = f.sp.spawn(rq);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().reason() == Reason::exec_failed);
        CHECK(r.error().sys_errno() == want_errno);
        CHECK(r.error().subject() == want_subject);
        ++failures;
    }
    CHECK(failures == 75);
    CHECK(f.sp.method() == g_method);
    CHECK(count_fds() == fds_before);
    siginfo_t si{};
    int w = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
    CHECK((w < 0 ? errno == ECHILD : si.si_pid == 0));
    unlink(script);
}

TEST_CASE("spawn: a cgroup fd the child cannot write fails at stage cgroup, leaving no zombie") {
    fixture f;
    command ok({"/bin/true"});
    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC); // write(2) on it: EBADF
    REQUIRE(ro >= 0);
    int fds_before = count_fds();
    spawn_request rq = ok.request();
    rq.cgroup_procs_fd = ro;
    auto r = f.sp.spawn(rq);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().reason() == Reason::exec_failed);
    CHECK(r.error().sys_errno() == EBADF);
    CHECK(r.error().subject() == "cgroup: /bin/true");
    CHECK(count_fds() == fds_before);
    siginfo_t si{};
    int w = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
    CHECK((w < 0 ? errno == ECHILD : si.si_pid == 0));
    close(ro);
}

// Only in the spawn-cgroup-* runs (--cgroup), which exit 77 without root
// and a usable cgroup2 mount.
TEST_CASE("spawn: with a cgroup fd the child, and what it forks, start in that cgroup") {
    char mount[4096];
    auto m = find_cgroup2_mount(mount, sizeof mount);
    REQUIRE(m.has_value());
    std::string root = std::string(mount) + "/custos-spawn-test-" + std::to_string(getpid());
    cgroup_tree t;
    auto o = t.open(root, 1);
    REQUIRE_MESSAGE(o.has_value(), describe(o.error()));
    REQUIRE(t.add("child").has_value());
    fixture f;
    command c({"/bin/sh", "-c", "sleep 100 & wait"});
    spawn_request rq = c.request();
    rq.cgroup_procs_fd = t.procs_fd(0);
    spawned s = f.spawn(rq);
    // In it by the time spawn() returns (the move precedes exec).
    std::string want = "0::" + std::string(t.relative_path()) + "/child\n";
    std::string cg = read_file("/proc/" + std::to_string(s.pid) + "/cgroup");
    CHECK(cg.find(want) != std::string::npos);
    CHECK(t.contains(0, s.pid));
    CHECK(t.populated(0));
    // The sleep it forks is there too.
    std::string procs;
    for (int i = 0; i < 2500; ++i) {
        procs = read_file(root + "/child/cgroup.procs");
        if (std::count(procs.begin(), procs.end(), '\n') == 2) {
            break;
        }
        usleep(2000);
    }
    CHECK(std::count(procs.begin(), procs.end(), '\n') == 2);
    CHECK(t.kill_until_empty(0, std::chrono::milliseconds(5000)) == 2);
    siginfo_t si = reap(s);
    CHECK(si.si_code == CLD_KILLED);
    t.close();
    CHECK(access(root.c_str(), F_OK) != 0);
}

TEST_CASE("spawn: uid and gid (root only); identity is applied before chdir") {
    if (geteuid() != 0) {
        MESSAGE("skipped: not root, cannot change a child's uid/gid");
        return;
    }
    fixture f;
    command c({"/bin/sh", "-c", "echo $(id -u) $(id -g) $(id -G) >&7"});
    spawn_request rq = c.request();
    rq.uid = 65534;
    rq.gid = 65534;
    rq.cwd = "/";
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    rq.ready_fd_target = 7;
    rq.ready_fd_source = p[1];
    spawned s = f.spawn(rq);
    close(p[1]);
    std::string out = read_all(p[0]);
    close(p[0]);
    siginfo_t si = reap(s);
    CHECK(si.si_status == 0);
    CHECK(out == "65534 65534 65534\n");

    // A directory only root may enter: chdir as nobody must fail.
    char dir[] = "/tmp/custos-spawn-private-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    REQUIRE(chmod(dir, 0700) == 0);
    command t({"/bin/true"});
    spawn_request rq2 = t.request();
    rq2.uid = 65534;
    rq2.gid = 65534;
    rq2.cwd = dir;
    auto r = f.sp.spawn(rq2);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().reason() == Reason::exec_failed);
    CHECK(r.error().sys_errno() == EACCES);
    CHECK(r.error().subject().substr(0, 7) == "chdir: ");
    rmdir(dir);
}

namespace {

// True once `pid` is dead: gone, or a zombie nobody has reaped yet.
bool dead(int pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        return true;
    }
    char buf[512] = {};
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    const char* paren = std::strrchr(buf, ')'); // the name may hold spaces
    return n == 0 || paren == nullptr || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X';
}

} // namespace

TEST_CASE("spawn: signal_group reaches a grandchild in the group") {
    fixture f;
    // Orphans reparent to us, so the grandchild's fate can be waited for.
    // qemu-user does not pass the subreaper prctl through: there the test
    // only checks that the grandchild died.
    bool subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;

    command c({helper(), "group", "7"});
    spawn_request rq = c.request();
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    rq.ready_fd_target = 7;
    rq.ready_fd_source = p[1];
    spawned s = f.spawn(rq);
    close(p[1]);
    std::string line;
    char ch;
    while (read(p[0], &ch, 1) == 1 && ch != '\n') {
        line += ch;
    }
    close(p[0]);
    int gc = std::atoi(line.c_str());
    REQUIRE(gc > 0);
    CHECK(getpgid(gc) == s.pid);
    CHECK_FALSE(dead(gc));

    CHECK(signal_group(s.pidfd, s.pid, SIGTERM) == 0);
    siginfo_t si = reap(s);
    CHECK(si.si_code == CLD_KILLED);
    CHECK(si.si_status == SIGTERM);
    if (subreaper) {
        siginfo_t gsi{};
        int w;
        do {
            w = waitid(P_PID, static_cast<id_t>(gc), &gsi, WEXITED);
        } while (w < 0 && errno == EINTR);
        CHECK(w == 0);
        CHECK(gsi.si_code == CLD_KILLED);
        CHECK(gsi.si_status == SIGTERM);
        REQUIRE(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
    } else {
        MESSAGE("PR_SET_CHILD_SUBREAPER unavailable (qemu-user?): checking only that the "
                "grandchild died, not by which signal");
        bool gone = false;
        for (int i = 0; i < 500 && !gone; ++i) {
            gone = dead(gc);
            if (!gone) {
                usleep(10000);
            }
        }
        CHECK(gone);
    }
}

TEST_CASE("spawn: invalid requests are refused before anything starts") {
    command c({"/bin/true"});
    spawner uninit;
    auto r0 = uninit.spawn(c.request());
    REQUIRE_FALSE(r0.has_value());
    CHECK(r0.error().reason() == Reason::invalid_argument);

    fixture f;
    spawn_request rq = c.request();
    rq.ready_fd_target = 2;
    rq.ready_fd_source = 5;
    auto r1 = f.sp.spawn(rq);
    REQUIRE_FALSE(r1.has_value());
    CHECK(r1.error().reason() == Reason::invalid_argument);

    rq = c.request();
    rq.ready_fd_target = 9;
    rq.ready_fd_source = -1;
    auto r2 = f.sp.spawn(rq);
    REQUIRE_FALSE(r2.has_value());
    CHECK(r2.error().reason() == Reason::invalid_argument);

    rq = c.request();
    rq.path = nullptr;
    auto r3 = f.sp.spawn(rq);
    REQUIRE_FALSE(r3.has_value());
    CHECK(r3.error().reason() == Reason::invalid_argument);
}

TEST_CASE("build_env and build_argv: two-pass sizing, precedence, errors") {
    char e0[] = "A=1";
    char e1[] = "NOTIFY_SOCKET=/x";
    char e2[] = "WATCHDOG_USEC=5";
    char e3[] = "WATCHDOG_PID=9";
    char e4[] = "B=2";
    char e5[] = "NOEQUALS";
    char e6[] = "C=parent";
    char* inherited[] = {e0, e1, e2, e3, e4, e5, e6, nullptr};
    const std::string_view service[] = {"B=3", "C=4", "B=5", "D=6"};
    const std::string_view own[] = {"NOTIFY_SOCKET=/run/n", "D=custos"};
    env_spec spec;
    spec.inherited = inherited;
    spec.service = service;
    spec.custos = own;
    spec.watchdog_pid = true;

    arena probe;
    auto r0 = build_env(probe, spec);
    REQUIRE_FALSE(r0.has_value());
    CHECK(r0.error().reason() == Reason::capacity_exceeded);
    std::size_t need = probe.needed();
    REQUIRE(need > 0);

    arena a;
    REQUIRE(a.reserve(need));
    auto r = build_env(a, spec);
    REQUIRE(r.has_value());
    CHECK(a.used() == need);
    std::vector<std::string> got;
    for (char** p = r->envp; *p != nullptr; ++p) {
        got.emplace_back(*p);
    }
    CHECK(got == std::vector<std::string>{"A=1", "NOEQUALS", "C=4", "B=5", "NOTIFY_SOCKET=/run/n",
                                          "D=custos", "WATCHDOG_PID="});
    REQUIRE(r->watchdog_pid_slot == r->envp[6]);
    // The slot holds 11 digits and the NUL without touching anything else.
    std::memcpy(r->watchdog_pid_slot + 13, "12345678901", 12);
    CHECK(std::string(r->envp[6]) == "WATCHDOG_PID=12345678901");
    CHECK(std::string(r->envp[5]) == "D=custos");

    arena small;
    REQUIRE(small.reserve(need - 1));
    auto r1 = build_env(small, spec);
    REQUIRE_FALSE(r1.has_value());
    CHECK(r1.error().reason() == Reason::capacity_exceeded);
    CHECK(small.needed() == need);

    // No slot asked for: none given, and WATCHDOG_PID is still stripped.
    spec.watchdog_pid = false;
    arena b;
    REQUIRE(b.reserve(need));
    auto r2 = build_env(b, spec);
    REQUIRE(r2.has_value());
    CHECK(r2->watchdog_pid_slot == nullptr);
    int n = 0;
    for (char** p = r2->envp; *p != nullptr; ++p, ++n) {
        CHECK(std::string_view(*p).substr(0, 13) != "WATCHDOG_PID=");
    }
    CHECK(n == 6);

    for (std::string_view bad : {std::string_view("NOEQ"), std::string_view("=x")}) {
        env_spec s2;
        s2.service = std::span<const std::string_view>(&bad, 1);
        arena c;
        auto rb = build_env(c, s2);
        REQUIRE_FALSE(rb.has_value());
        CHECK(rb.error().reason() == Reason::invalid_argument);
        CHECK(rb.error().subject() == bad);
        env_spec s3;
        s3.custos = std::span<const std::string_view>(&bad, 1);
        CHECK_FALSE(build_env(c, s3).has_value());
    }

    arena av;
    CHECK(build_argv(av, {}).error().reason() == Reason::invalid_argument);
    const std::string_view args[] = {"/bin/echo", "hello", ""};
    auto m = build_argv(av, args);
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().reason() == Reason::capacity_exceeded);
    REQUIRE(av.reserve(av.needed()));
    auto argv = build_argv(av, args);
    REQUIRE(argv.has_value());
    CHECK(std::string((*argv)[0]) == "/bin/echo");
    CHECK(std::string((*argv)[1]) == "hello");
    CHECK(std::string((*argv)[2]).empty());
    CHECK((*argv)[3] == nullptr);
}

TEST_CASE("spawner: CUSTOS_SPAWN names a method; anything else is refused") {
    const char* was = std::getenv("CUSTOS_SPAWN");
    std::string saved = was != nullptr ? was : "";
    struct {
        const char* value;
        spawn_method want;
    } cases[] = {{"clone", spawn_method::clone_pidfd},
                 {"vfork", spawn_method::vfork_pidfd_open},
                 {"vfork-nopidfd", spawn_method::vfork},
                 {"", spawn_method::clone_pidfd}};
    for (const auto& k : cases) {
        REQUIRE(setenv("CUSTOS_SPAWN", k.value, 1) == 0);
        spawner s;
        REQUIRE(s.init().has_value());
        CHECK(s.method() == k.want);
    }
    REQUIRE(setenv("CUSTOS_SPAWN", "fork", 1) == 0);
    spawner bad;
    auto r = bad.init();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().reason() == Reason::invalid_argument);
    CHECK(r.error().subject() == "CUSTOS_SPAWN");
    if (was != nullptr) {
        setenv("CUSTOS_SPAWN", saved.c_str(), 1);
    } else {
        unsetenv("CUSTOS_SPAWN");
    }
    CHECK(std::string_view(spawn_method_name(spawn_method::clone_pidfd)) == "clone(CLONE_PIDFD)");
    CHECK(std::string_view(spawn_method_name(spawn_method::vfork_pidfd_open)) ==
          "vfork+pidfd_open");
    CHECK(std::string_view(spawn_method_name(spawn_method::vfork)) == "vfork (no pidfd)");
}

// ---- kernels that lack something, emulated with seccomp ---------------------

namespace {

// A system call the filter answers with an errno; flag != 0 matches only
// calls whose first argument has that bit (clone's flags).
struct refusal {
    long nr;
    unsigned flag;
    int err;
};

#define SANDBOX_EXPECT(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "sandbox: check failed at line %d: %s\n", __LINE__, #cond);       \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

// Runs `body` in a forked process under a seccomp filter applying
// `refusals`; reports a skip where seccomp is unavailable (qemu-user).
template <class F>
void run_sandboxed(std::initializer_list<refusal> refusals, F body) {
    std::fflush(nullptr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::vector<sock_filter> prog;
        prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
        for (const refusal& r : refusals) {
            auto nr = static_cast<unsigned>(r.nr);
            auto ret = SECCOMP_RET_ERRNO | static_cast<unsigned>(r.err);
            if (r.flag == 0) {
                prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
                prog.push_back(BPF_STMT(BPF_RET | BPF_K, ret));
            } else {
                // Little-endian: the low word of args[0] comes first.
                prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 4));
                prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args)));
                prog.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, r.flag, 0, 1));
                prog.push_back(BPF_STMT(BPF_RET | BPF_K, ret));
                prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
            }
        }
        prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        sock_fprog fp{static_cast<unsigned short>(prog.size()), prog.data()};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp) != 0) {
            _exit(77);
        }
        _exit(body() ? 0 : 1);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        MESSAGE("skipped: seccomp unavailable here (qemu-user?), cannot emulate a missing "
                "syscall");
        return;
    }
    CHECK(WEXITSTATUS(st) == 0);
}

// Spawns `sh -c 'exit 7'` and checks the status; returns the result.
bool spawn_exit7(spawner& sp, int* pidfd_out) {
    command c({"/bin/sh", "-c", "exit 7"});
    auto r = sp.spawn(c.request());
    SANDBOX_EXPECT(r.has_value());
    *pidfd_out = r->pidfd;
    siginfo_t si{};
    SANDBOX_EXPECT(waitid(P_PID, static_cast<id_t>(r->pid), &si, WEXITED) == 0);
    SANDBOX_EXPECT(si.si_code == CLD_EXITED && si.si_status == 7);
    if (r->pidfd >= 0) {
        close(r->pidfd);
    }
    return true;
}

} // namespace

TEST_CASE("spawner: steps down when clone(CLONE_PIDFD) or pidfd_open is refused") {
    SUBCASE("clone(CLONE_PIDFD) ENOSYS -> vfork+pidfd_open") {
        run_sandboxed({{SYS_clone, CLONE_PIDFD, ENOSYS}}, [] {
            spawner sp;
            SANDBOX_EXPECT(sp.init(spawn_method::clone_pidfd).has_value());
            int pidfd = -1;
            SANDBOX_EXPECT(spawn_exit7(sp, &pidfd));
            SANDBOX_EXPECT(sp.method() == spawn_method::vfork_pidfd_open);
            SANDBOX_EXPECT(sp.fallback_errno() == ENOSYS);
            SANDBOX_EXPECT(pidfd >= 0);
            // Sticky: the next spawn goes straight to vfork.
            SANDBOX_EXPECT(spawn_exit7(sp, &pidfd));
            SANDBOX_EXPECT(sp.method() == spawn_method::vfork_pidfd_open);
            return true;
        });
    }
    SUBCASE("clone(CLONE_PIDFD) EINVAL and pidfd_open ENOSYS -> vfork without pidfd") {
        run_sandboxed({{SYS_clone, CLONE_PIDFD, EINVAL}, {SYS_pidfd_open, 0, ENOSYS}}, [] {
            spawner sp;
            SANDBOX_EXPECT(sp.init(spawn_method::clone_pidfd).has_value());
            int pidfd = 0;
            SANDBOX_EXPECT(spawn_exit7(sp, &pidfd));
            SANDBOX_EXPECT(sp.method() == spawn_method::vfork);
            SANDBOX_EXPECT(sp.fallback_errno() == EINVAL);
            SANDBOX_EXPECT(pidfd == -1);
            return true;
        });
    }
    SUBCASE("clone failing for lack of resources is an error, not a step down") {
        run_sandboxed({{SYS_clone, CLONE_PIDFD, EAGAIN}}, [] {
            spawner sp;
            SANDBOX_EXPECT(sp.init(spawn_method::clone_pidfd).has_value());
            command c({"/bin/true"});
            int before = count_fds();
            auto r = sp.spawn(c.request());
            SANDBOX_EXPECT(!r.has_value());
            SANDBOX_EXPECT(r.error().reason() == Reason::spawn_failed);
            SANDBOX_EXPECT(r.error().sys_errno() == EAGAIN);
            SANDBOX_EXPECT(r.error().subject() == "/bin/true");
            SANDBOX_EXPECT(sp.method() == spawn_method::clone_pidfd);
            SANDBOX_EXPECT(count_fds() == before);
            return true;
        });
    }
}

TEST_CASE("spawn: without close_range (before 5.9) leaked descriptors are still closed") {
    run_sandboxed({{SYS_close_range, 0, ENOSYS}}, [] {
        SANDBOX_EXPECT(syscall(SYS_close_range, 1000, 1001, 0) < 0 && errno == ENOSYS);
        int leaked = open("/dev/null", O_RDONLY);
        SANDBOX_EXPECT(leaked >= 0 && dup2(leaked, 300) == 300);
        spawner sp;
        SANDBOX_EXPECT(sp.init(g_method).has_value());
        command c({helper(), "report", "7"});
        int p[2];
        SANDBOX_EXPECT(pipe2(p, O_CLOEXEC) == 0);
        spawn_request rq = c.request();
        rq.ready_fd_target = 7;
        rq.ready_fd_source = p[1];
        auto r = sp.spawn(rq);
        SANDBOX_EXPECT(r.has_value());
        close(p[1]);
        report rep = parse(read_all(p[0]));
        SANDBOX_EXPECT(waitpid(r->pid, nullptr, 0) == r->pid);
        std::fprintf(stderr, "sandbox: fds=%s\n", rep.get("fds").c_str());
        SANDBOX_EXPECT(rep.get("fds") == "0,1,2,7");
        return true;
    });
}

int main(int argc, char** argv) {
    if (const char* h = std::getenv("CUSTOS_SPAWN_CHILD"); h != nullptr) {
        g_helper = h;
    } else {
        char self[4096] = {};
        if (readlink("/proc/self/exe", self, sizeof self - 1) > 0) {
            g_helper = self;
            g_helper = g_helper.substr(0, g_helper.rfind('/') + 1);
        }
        g_helper += "spawn_child";
    }
    spawner probe;
    auto init = probe.init();
    if (!init) {
        std::printf("spawner init failed: %s\n", describe(init.error()).c_str());
        return 1;
    }
    g_method = probe.method();
    // Does the kernel offer the requested method? One spawn tells.
    char a0[] = "/bin/true";
    char* args[] = {a0, nullptr};
    spawn_request rq;
    rq.path = a0;
    rq.argv = args;
    rq.envp = environ;
    auto s = probe.spawn(rq);
    if (!s) {
        std::printf("spawning /bin/true failed: %s\n", describe(s.error()).c_str());
        return 1;
    }
    waitpid(s->pid, nullptr, 0);
    if (s->pidfd >= 0) {
        close(s->pidfd);
    }
    if (probe.method() != g_method) {
        std::printf("SKIP: %s is unavailable here (errno %d: %s); the spawner fell back to %s\n",
                    spawn_method_name(g_method), probe.fallback_errno(),
                    std::strerror(probe.fallback_errno()), spawn_method_name(probe.method()));
        return 77;
    }
    std::printf("spawn method: %s\n", spawn_method_name(g_method));
    // --cgroup: only the cgroup case, which needs root and a cgroup2 mount
    // where a process can be moved (skip, 77, without); otherwise all but it.
    std::vector<char*> ctx_args;
    bool cgroup = false;
    for (int i = 0; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--cgroup") {
            cgroup = true;
        } else {
            ctx_args.push_back(argv[i]);
        }
    }
    const char* cgroup_case = "spawn: with a cgroup fd the child*";
    if (cgroup) {
        if (geteuid() != 0) {
            std::printf("SKIP: not root: cannot create cgroups\n");
            return 77;
        }
        char mount[4096];
        auto m = find_cgroup2_mount(mount, sizeof mount);
        if (!m) {
            std::printf("SKIP: no cgroup2 mount: %s\n", describe(m.error()).c_str());
            return 77;
        }
        std::string probe_dir = std::string(mount) + "/custos-probe-" + std::to_string(getpid());
        if (mkdir(probe_dir.c_str(), 0755) != 0) {
            std::printf("SKIP: cannot create a cgroup under %s: %s\n", mount, std::strerror(errno));
            return 77;
        }
        rmdir(probe_dir.c_str());
    }
    doctest::Context ctx(static_cast<int>(ctx_args.size()), ctx_args.data());
    ctx.setOption(cgroup ? "test-case" : "test-case-exclude", cgroup_case);
    return ctx.run();
}
