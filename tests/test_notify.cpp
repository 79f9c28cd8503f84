// The sd_notify receiver: the parser on its own, then a real socket fed by
// this test, by a flooding child, and by the real clients (systemd-notify,
// libsystemd's sd_notify). Run once per backend like test_reactor: meson
// sets CUSTOS_BACKEND=uring and =epoll; a backend the kernel refuses makes
// the run exit 77 (skip).
//
// The real-client cases run as separate meson entries (--client=NAME) and
// exit 77 when the client is missing (systemd-notify not installed, built
// without libsystemd, cross builds), so a missing client is a skip, never a
// pass. `--sd-client` makes this binary the libsystemd client itself.
#define DOCTEST_CONFIG_IMPLEMENT
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef CUSTOS_TEST_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "backend_probe.hpp"
#include "doctest.hpp"
#include "io/reactor.hpp"
#include "process/notify.hpp"

extern char** environ;

using namespace custos;
using namespace custos::io;
using namespace custos::process;
using namespace std::chrono_literals;

namespace {

backend_kind expected_kind() {
    const char* env = std::getenv("CUSTOS_BACKEND");
    return env != nullptr && std::string_view(env) == "epoll" ? backend_kind::epoll
                                                              : backend_kind::uring;
}

// A private directory for the socket; removed (with what is left in it) at
// the end of the test case.
struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/custos-notify-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        if (DIR* d = opendir(path.c_str())) {
            while (dirent* e = readdir(d)) {
                std::string_view n(e->d_name);
                if (n != "." && n != "..") {
                    unlink((path + "/" + e->d_name).c_str());
                }
            }
            closedir(d);
        }
        rmdir(path.c_str());
    }
    std::string file(const char* name) const { return path + "/" + name; }
};

struct record {
    pid_t pid = 0;
    uid_t uid = 0;
    notify_message m;
    std::string status; // m.status dies with the handler call
    std::uint64_t wakeup = 0;
};

struct recorder final : notify_handler {
    std::vector<record> msgs;
    bool attribute = true;
    notify_socket* sock = nullptr;
    bool close_in_handler = false;
    // At a barrier, a read of this pipe's read end: the barrier's fd (the
    // write end) must still be open while the handler runs.
    int barrier_probe_fd = -1;
    long barrier_probe_read = 1;
    int barrier_probe_errno = 0;

    // Each message received sends one more (non-blocking) from this socket
    // to `refill_to`, while refill_left lasts: the queue never runs dry.
    int refill_fd = -1;
    sockaddr_un refill_to{};
    int refill_left = 0;
    // When the mark_at-th message arrives, submits mark_op: a poll on a
    // pipe made readable here, which completes at once unless the reactor
    // is kept busy. Its callback notes how many datagrams were taken by then.
    reactor* react = nullptr;
    std::size_t mark_at = 0;
    op* mark_op = nullptr;
    int mark_pipe[2] = {-1, -1};

    std::uint32_t last_tag = UINT32_MAX;
    bool on_notify(std::uint32_t tag, const ucred& cred,
                   const notify_message& m) noexcept override {
        last_tag = tag;
        if (mark_op != nullptr && msgs.size() + 1 == mark_at) {
            char c = 1;
            if (::write(mark_pipe[1], &c, 1) == 1) {
                react->poll(*mark_op, mark_pipe[0], POLLIN);
            }
        }
        if (refill_left > 0) {
            --refill_left;
            const char text[] = "WATCHDOG=1";
            if (sendto(refill_fd, text, sizeof text - 1, MSG_DONTWAIT,
                       reinterpret_cast<sockaddr*>(&refill_to), sizeof refill_to) < 0) {
                refill_left = -1000000; // reported as a failure by the test
            }
        }
        record r;
        r.pid = cred.pid;
        r.uid = cred.uid;
        r.m = m;
        r.m.status = {};
        r.status.assign(m.status);
        r.wakeup = sock != nullptr ? sock->stats().wakeups : 0;
        msgs.push_back(std::move(r));
        if (m.barrier && barrier_probe_fd >= 0) {
            char c;
            barrier_probe_read = ::read(barrier_probe_fd, &c, 1);
            barrier_probe_errno = errno;
        }
        if (close_in_handler && sock != nullptr) {
            sock->close();
        }
        return attribute;
    }
};

struct fixture {
    reactor r;
    temp_dir dir;
    std::string path = dir.file("notify");
    notify_socket sock;
    recorder rec;
    notify_buffers bufs;

    fixture() {
        auto res = r.init();
        REQUIRE(res.has_value());
        // A silent fallback must fail the test, not pass it under the wrong name.
        REQUIRE(r.kind() == expected_kind());
        auto o = sock.open(path);
        REQUIRE(o.has_value());
        rec.sock = &sock;
        sock.start(r, &rec, bufs, 7);
    }
    ~fixture() {
        sock.close();
        // Let the cancelled poll and the close complete before the socket dies.
        run_until([&] { return !sock.busy(); });
    }

    // Runs the loop until `done()` or `limit` passes; returns done(). Wakes
    // every 5 ms so that `done()` may watch things outside the reactor.
    template <class F>
    bool run_until(F done, nanos limit = 10s) {
        bool expired = false;
        timer guard([](timer& t) { *static_cast<bool*>(t.user) = true; }, &expired);
        timer nudge([](timer&) {}, nullptr);
        r.arm_after(guard, limit);
        while (!done() && !expired) {
            r.arm_after(nudge, 5ms);
            r.run_once();
        }
        r.cancel(guard);
        r.cancel(nudge);
        return done();
    }
};

sockaddr_un address_of(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof a.sun_path);
    std::memcpy(a.sun_path, path.data(), path.size());
    return a;
}

// Sends one datagram, with `nfds` descriptors, from a fresh unbound socket.
// Returns sendmsg's result (or -errno).
long send_dgram(const std::string& path, std::string_view payload, const int* fds = nullptr,
                int nfds = 0) {
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(s >= 0);
    sockaddr_un a = address_of(path);
    iovec iov{const_cast<char*>(payload.data()), payload.size()};
    msghdr mh{};
    mh.msg_name = &a;
    mh.msg_namelen = sizeof a;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) unsigned char ctrl[CMSG_SPACE(notify_socket::max_fds * sizeof(int))] = {};
    if (nfds > 0) {
        mh.msg_control = ctrl;
        mh.msg_controllen = CMSG_SPACE(static_cast<std::size_t>(nfds) * sizeof(int));
        cmsghdr* c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(static_cast<std::size_t>(nfds) * sizeof(int));
        std::memcpy(CMSG_DATA(c), fds, static_cast<std::size_t>(nfds) * sizeof(int));
    }
    long n = sendmsg(s, &mh, 0);
    long result = n < 0 ? -errno : n;
    close(s);
    return result;
}

int count_open_fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') {
            ++n;
        }
    }
    closedir(d);
    return n - 1; // the directory's own descriptor
}

bool fd_is_open(int fd) {
    return fcntl(fd, F_GETFD) != -1;
}

// Parses and asserts success; the datagram buffer must outlive the result.
notify_message parsed(std::string_view d) {
    notify_message m;
    REQUIRE(parse_notify(d, m));
    return m;
}

// The child's environment: ours, with NOTIFY_SOCKET replaced.
std::vector<std::string> child_env(const std::string& socket_path) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) {
            env.emplace_back(*e);
        }
    }
    env.push_back("NOTIFY_SOCKET=" + socket_path);
    return env;
}

pid_t spawn(const char* file, std::vector<std::string> args, const std::string& socket_path) {
    std::vector<std::string> env = child_env(socket_path);
    std::vector<char*> argv;
    std::vector<char*> envp;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    for (auto& e : env) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, file, nullptr, nullptr, argv.data(), envp.data());
    REQUIRE_MESSAGE(rc == 0, "posix_spawnp " << file << ": " << std::strerror(rc));
    return pid;
}

// Runs the reactor until `pid` exits; returns its wait status or -1.
int wait_child(fixture& f, pid_t pid, nanos limit) {
    int status = -1;
    bool exited = f.run_until(
        [&] {
            int st = 0;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                status = st;
                return true;
            }
            return false;
        },
        limit);
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    return status;
}

std::string find_in_path(const char* name) {
    const char* path = std::getenv("PATH");
    std::string_view p(path != nullptr ? path : "/usr/bin:/bin");
    while (!p.empty()) {
        std::size_t colon = p.find(':');
        std::string dir(p.substr(0, colon));
        std::string full = dir + "/" + name;
        if (!dir.empty() && access(full.c_str(), X_OK) == 0) {
            return full;
        }
        p = colon == std::string_view::npos ? std::string_view{} : p.substr(colon + 1);
    }
    return {};
}

} // namespace

// --- parser ---------------------------------------------------------------

TEST_CASE("parse: each flag assignment") {
    CHECK(parsed("READY=1").ready);
    CHECK(parsed("RELOADING=1").reloading);
    CHECK(parsed("STOPPING=1").stopping);
    CHECK(parsed("WATCHDOG=1").watchdog_ping);
    CHECK_FALSE(parsed("WATCHDOG=1").watchdog_trigger);
    CHECK(parsed("WATCHDOG=trigger").watchdog_trigger);
    CHECK_FALSE(parsed("WATCHDOG=trigger").watchdog_ping);
    CHECK(parsed("BARRIER=1").barrier);
    notify_message none = parsed("X_CUSTOM=1");
    CHECK_FALSE(none.ready);
    CHECK_FALSE(none.reloading);
    CHECK_FALSE(none.stopping);
    CHECK_FALSE(none.watchdog_ping);
    CHECK_FALSE(none.watchdog_trigger);
    CHECK_FALSE(none.barrier);
    CHECK_FALSE(none.has_status);
    CHECK(none.ignored == 1);
}

TEST_CASE("parse: each valued assignment") {
    notify_message m = parsed("STATUS=Serving 3 clients");
    CHECK(m.has_status);
    CHECK(m.status == "Serving 3 clients");
    m = parsed("ERRNO=2");
    CHECK(m.has_errno);
    CHECK(m.errno_value == 2);
    m = parsed("EXTEND_TIMEOUT_USEC=5000000");
    CHECK(m.has_extend);
    CHECK(m.extend_usec == 5000000);
    m = parsed("WATCHDOG_USEC=18446744073709551615");
    CHECK(m.has_watchdog_usec);
    CHECK(m.watchdog_usec == 18446744073709551615ull);
    m = parsed("MONOTONIC_USEC=123456789");
    CHECK(m.has_monotonic_usec);
    CHECK(m.monotonic_usec == 123456789);
    m = parsed("MAINPID=4242");
    CHECK(m.has_mainpid);
    CHECK(m.mainpid == 4242);
    m = parsed("MAINPID=2147483647");
    CHECK(m.has_mainpid);
    CHECK(m.mainpid == 2147483647);
    CHECK(m.ignored == 0);
}

TEST_CASE("parse: several assignments in one datagram, empty lines, trailing newline") {
    std::string_view d = "\nREADY=1\n\nSTATUS=up\nWATCHDOG=1\nMAINPID=7\n\n";
    notify_message m = parsed(d);
    CHECK(m.ready);
    CHECK(m.watchdog_ping);
    CHECK(m.status == "up");
    CHECK(m.mainpid == 7);
    CHECK(m.ignored == 0);
    // The view points into the datagram, not into a copy.
    CHECK(m.status.data() >= d.data());
    CHECK(m.status.data() + m.status.size() <= d.data() + d.size());
    // RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload requires.
    m = parsed("RELOADING=1\nMONOTONIC_USEC=99");
    CHECK(m.reloading);
    CHECK(m.monotonic_usec == 99);
}

TEST_CASE("parse: CR ends a line too, as in systemd's manager and nspawn") {
    notify_message m = parsed("READY=1\r\nSTATUS=crlf\r\n");
    CHECK(m.ready);
    CHECK(m.status == "crlf");
    CHECK(m.ignored == 0);
}

TEST_CASE("parse: STATUS keeps '=' and may be empty") {
    notify_message m = parsed("STATUS=a=b=c");
    CHECK(m.status == "a=b=c");
    m = parsed("STATUS=");
    CHECK(m.has_status);
    CHECK(m.status.empty());
}

TEST_CASE("parse: unknown keys and lines without '=' are ignored, not fatal") {
    notify_message m = parsed("X_APP=1\nREADY=1\nFDSTORE=1\nno equals sign\n=1\nready=1");
    CHECK(m.ready);
    CHECK(m.ignored == 5);
}

TEST_CASE("parse: bad values are ignored one by one") {
    notify_message m = parsed("READY=0\nSTOPPING=yes\nWATCHDOG=2\nBARRIER=11\nERRNO=abc\n"
                              "ERRNO=-1\nERRNO=4096\nERRNO= 5\nERRNO=+5\nERRNO=\n"
                              "EXTEND_TIMEOUT_USEC=18446744073709551616\n"
                              "WATCHDOG_USEC=1e6\nMAINPID=0\nMAINPID=-3\nMAINPID=2147483648\n"
                              "MONOTONIC_USEC=99999999999999999999999\nSTATUS=still here");
    CHECK_FALSE(m.ready);
    CHECK_FALSE(m.stopping);
    CHECK_FALSE(m.watchdog_ping);
    CHECK_FALSE(m.watchdog_trigger);
    CHECK_FALSE(m.barrier);
    CHECK_FALSE(m.has_errno);
    CHECK_FALSE(m.has_extend);
    CHECK_FALSE(m.has_watchdog_usec);
    CHECK_FALSE(m.has_mainpid);
    CHECK_FALSE(m.has_monotonic_usec);
    CHECK(m.status == "still here");
    CHECK(m.ignored == 16);
    // ERRNO's bounds are 0 and 4095 inclusive.
    CHECK(parsed("ERRNO=0").has_errno);
    CHECK(parsed("ERRNO=4095").errno_value == 4095);
}

TEST_CASE("parse: the last valid value of a repeated key wins") {
    notify_message m = parsed("ERRNO=5\nERRNO=7\nERRNO=bad\nSTATUS=one\nSTATUS=two");
    CHECK(m.errno_value == 7);
    CHECK(m.status == "two");
}

TEST_CASE("parse: an embedded NUL rejects the datagram, and the output is reset") {
    notify_message m = parsed("STOPPING=1");
    const char d[] = "READY=1\0STATUS=x";
    CHECK_FALSE(parse_notify(std::string_view(d, sizeof d - 1), m));
    CHECK_FALSE(m.ready);
    CHECK_FALSE(m.stopping); // reset, not left from before
    const char trailing[] = "READY=1\n\0";
    CHECK_FALSE(parse_notify(std::string_view(trailing, sizeof trailing - 1), m));
    notify_message empty = parsed("");
    CHECK_FALSE(empty.ready);
    CHECK(empty.ignored == 0);
}

// --- open and close ---------------------------------------------------------

TEST_CASE("open: rejected paths, with the errno and the path") {
    temp_dir dir;
    notify_socket s;
    auto check = [&](const std::string& path, int err) {
        auto r = s.open(path);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().reason() == Reason::notify_socket_unavailable);
        CHECK(r.error().sys_errno() == err);
        CHECK(r.error().subject() == std::string_view(path).substr(0, Error::subject_capacity));
        CHECK_FALSE(s.is_open());
    };
    check("", EINVAL);
    check("relative/notify", EINVAL);
    check("/" + std::string(sizeof(sockaddr_un::sun_path), 'x'), ENAMETOOLONG);
    check(dir.file("missing-dir/notify"), ENOENT);

    // A user's file at the path is an error and stays untouched.
    std::string file = dir.file("precious");
    int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "keep", 4) == 4);
    ::close(fd);
    check(file, EEXIST);
    struct stat st {};
    REQUIRE(stat(file.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK(st.st_size == 4);
}

TEST_CASE("open: a stale socket is replaced; mode 0666; a second open is EBUSY") {
    temp_dir dir;
    std::string path = dir.file("notify");
    // A socket file left behind by a crashed run.
    int stale = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a = address_of(path);
    REQUIRE(bind(stale, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ::close(stale);

    notify_socket s;
    auto r = s.open(path);
    REQUIRE(r.has_value());
    CHECK(s.is_open());
    CHECK(s.path() == path);
    struct stat st {};
    REQUIRE(lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0666);
    CHECK((fcntl(s.fd(), F_GETFL) & O_NONBLOCK) != 0);
    CHECK((fcntl(s.fd(), F_GETFD) & FD_CLOEXEC) != 0);
    int passcred = 0;
    socklen_t len = sizeof passcred;
    REQUIRE(getsockopt(s.fd(), SOL_SOCKET, SO_PASSCRED, &passcred, &len) == 0);
    CHECK(passcred == 1);

    auto again = s.open(path);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().sys_errno() == EBUSY);
    CHECK(s.is_open()); // the first socket is unharmed

    int fd = s.fd();
    s.close(); // never started: closes directly
    CHECK_FALSE(fd_is_open(fd));
    CHECK_FALSE(s.is_open());
    CHECK(s.path().empty());
    CHECK(lstat(path.c_str(), &st) == -1);
    CHECK(errno == ENOENT);
    s.close(); // idempotent
}

TEST_CASE("close leaves a socket file that another instance bound since") {
    temp_dir dir;
    std::string path = dir.file("notify");
    notify_socket s;
    REQUIRE(s.open(path).has_value());
    // Someone else took the path over.
    REQUIRE(unlink(path.c_str()) == 0);
    int other = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a = address_of(path);
    REQUIRE(bind(other, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    s.close();
    struct stat st {};
    CHECK(lstat(path.c_str(), &st) == 0);
    ::close(other);
}

TEST_CASE("close while receiving: the poll completes, the socket and its file go") {
    fixture f;
    int fd = f.sock.fd();
    f.r.run_once(false); // the poll is now waiting in the backend
    CHECK(f.sock.busy());
    f.sock.close();
    CHECK(f.sock.busy()); // completions come from the loop, never from close()
    REQUIRE(f.run_until([&] { return !f.sock.busy(); }));
    CHECK_FALSE(fd_is_open(fd));
    struct stat st {};
    CHECK(lstat(f.path.c_str(), &st) == -1);
    // Reopening at the same path works, and receives again.
    REQUIRE(f.sock.open(f.path).has_value());
    f.sock.start(f.r, &f.rec, f.bufs, 7);
    REQUIRE(send_dgram(f.path, "READY=1") == 7);
    REQUIRE(f.run_until([&] { return f.rec.msgs.size() == 1; }));
    CHECK(f.rec.msgs[0].m.ready);
}

// --- receiving --------------------------------------------------------------

TEST_CASE("a datagram is delivered with the sender's credentials") {
    fixture f;
    REQUIRE(send_dgram(f.path, "READY=1\nSTATUS=listening on :80") > 0);
    REQUIRE(f.run_until([&] { return f.rec.msgs.size() == 1; }));
    const record& r = f.rec.msgs[0];
    CHECK(r.pid == getpid());
    CHECK(r.uid == getuid());
    CHECK(r.m.ready);
    CHECK(r.status == "listening on :80");
    CHECK(f.sock.stats().received == 1);
    CHECK(f.sock.stats().dropped_malformed == 0);
    CHECK(f.sock.stats().dropped_unattributed == 0);
}

TEST_CASE("4096 bytes are accepted; 4097 and 5000 are dropped and counted") {
    fixture f;
    std::string max = "STATUS=" + std::string(4096 - 7, 'a');
    REQUIRE(send_dgram(f.path, max) == 4096);
    std::string over = max + "b";
    REQUIRE(send_dgram(f.path, over) == 4097);
    REQUIRE(send_dgram(f.path, "STATUS=" + std::string(5000 - 7, 'c')) == 5000);
    REQUIRE(send_dgram(f.path, "READY=1") > 0); // the last one, to know when to stop
    REQUIRE(f.run_until([&] { return f.sock.stats().received == 4; }));
    REQUIRE(f.rec.msgs.size() == 2);
    CHECK(f.rec.msgs[0].status.size() == 4096 - 7);
    CHECK(f.rec.msgs[1].m.ready);
    CHECK(f.sock.stats().dropped_malformed == 2);
}

TEST_CASE("a datagram with an embedded NUL is dropped and counted") {
    fixture f;
    const char d[] = "READY=1\0STATUS=x";
    REQUIRE(send_dgram(f.path, std::string_view(d, sizeof d - 1)) > 0);
    REQUIRE(send_dgram(f.path, "STOPPING=1") > 0);
    REQUIRE(f.run_until([&] { return f.sock.stats().received == 2; }));
    REQUIRE(f.rec.msgs.size() == 1);
    CHECK(f.rec.msgs[0].m.stopping);
    CHECK_FALSE(f.rec.msgs[0].m.ready);
    CHECK(f.sock.stats().dropped_malformed == 1);
}

TEST_CASE("a datagram without credentials is dropped and counted") {
    fixture f;
    // The kernel attaches credentials only while the receiver asks for them.
    int off = 0;
    REQUIRE(setsockopt(f.sock.fd(), SOL_SOCKET, SO_PASSCRED, &off, sizeof off) == 0);
    REQUIRE(send_dgram(f.path, "READY=1") > 0);
    REQUIRE(f.run_until([&] { return f.sock.stats().received == 1; }));
    CHECK(f.rec.msgs.empty());
    CHECK(f.sock.stats().dropped_malformed == 1);
}

TEST_CASE("unattributed messages are counted") {
    fixture f;
    f.rec.attribute = false;
    REQUIRE(send_dgram(f.path, "READY=1") > 0);
    REQUIRE(send_dgram(f.path, "WATCHDOG=1") > 0);
    REQUIRE(f.run_until([&] { return f.sock.stats().received == 2; }));
    CHECK(f.rec.msgs.size() == 2);
    CHECK(f.sock.stats().dropped_unattributed == 2);
    CHECK(f.sock.stats().dropped_malformed == 0);
}

TEST_CASE("received descriptors are closed and counted: the sender sees EOF") {
    fixture f;
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    int fds[3] = {p[1], ::open("/dev/null", O_RDONLY | O_CLOEXEC),
                  ::open("/dev/null", O_RDONLY | O_CLOEXEC)};
    REQUIRE(fds[1] >= 0);
    REQUIRE(fds[2] >= 0);
    REQUIRE(send_dgram(f.path, "X_FDS=3", fds, 3) > 0);
    for (int fd : fds) {
        ::close(fd); // the receiver now holds the only copies
    }
    int baseline = count_open_fds();
    char c;
    CHECK(::read(p[0], &c, 1) == -1); // the write end lives on, in flight
    CHECK(errno == EAGAIN);
    REQUIRE(f.run_until([&] { return f.sock.stats().received == 1; }));
    CHECK(::read(p[0], &c, 1) == 0); // EOF: the receiver closed it
    CHECK(f.sock.stats().fds_closed == 3);
    CHECK(count_open_fds() == baseline);
    CHECK(f.rec.msgs.size() == 1);
    ::close(p[0]);
}

TEST_CASE("descriptors of a dropped datagram are closed too") {
    fixture f;
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    const char d[] = "BARRIER=1\0";
    REQUIRE(send_dgram(f.path, std::string_view(d, sizeof d - 1), &p[1], 1) > 0);
    ::close(p[1]);
    REQUIRE(f.run_until([&] { return f.sock.stats().received == 1; }));
    char c;
    CHECK(::read(p[0], &c, 1) == 0);
    CHECK(f.sock.stats().dropped_malformed == 1);
    CHECK(f.sock.stats().fds_closed == 1);
    ::close(p[0]);
}

TEST_CASE("253 descriptors (SCM_MAX_FD) fit the control buffer: no MSG_CTRUNC") {
    fixture f;
    int fds[notify_socket::max_fds];
    for (int& fd : fds) {
        fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    int before = count_open_fds() - static_cast<int>(notify_socket::max_fds);
    REQUIRE(send_dgram(f.path, "X_MANY=1", fds, static_cast<int>(notify_socket::max_fds)) > 0);
    for (int fd : fds) {
        ::close(fd);
    }
    REQUIRE(f.run_until([&] { return f.sock.stats().received == 1; }));
    CHECK(f.sock.stats().dropped_malformed == 0);
    CHECK(f.rec.msgs.size() == 1);
    CHECK(f.sock.stats().fds_closed == notify_socket::max_fds);
    CHECK(count_open_fds() == before);
}

TEST_CASE("BARRIER=1: its fd is closed only after the handler saw every earlier datagram") {
    fixture f;
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    f.rec.barrier_probe_fd = p[0];
    REQUIRE(send_dgram(f.path, "READY=1\nSTATUS=before the barrier") > 0);
    REQUIRE(send_dgram(f.path, "BARRIER=1", &p[1], 1) > 0);
    ::close(p[1]);
    REQUIRE(f.run_until([&] { return f.sock.stats().received == 2; }));
    REQUIRE(f.rec.msgs.size() == 2);
    CHECK(f.rec.msgs[0].m.ready);
    CHECK(f.rec.msgs[1].m.barrier);
    // While the handler ran, the barrier's fd was still open...
    CHECK(f.rec.barrier_probe_read == -1);
    CHECK(f.rec.barrier_probe_errno == EAGAIN);
    // ...and after it, closed: what releases sd_notify_barrier().
    char c;
    CHECK(::read(p[0], &c, 1) == 0);
    CHECK(f.sock.stats().fds_closed == 1);
    ::close(p[0]);
}

TEST_CASE("the handler may close the socket; the rest is left unread") {
    fixture f;
    f.rec.close_in_handler = true;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(send_dgram(f.path, "WATCHDOG=1") > 0);
    }
    REQUIRE(f.run_until([&] { return !f.sock.is_open() && !f.sock.busy(); }));
    CHECK(f.rec.msgs.size() == 1);
    CHECK(f.sock.stats().received == 1);
}

TEST_CASE("a flood of 10,000 datagrams from a child: bounded drains, nothing lost") {
    fixture f;
    constexpr int total = 10000;
    f.rec.msgs.reserve(total);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Blocking sends: an AF_UNIX datagram sender waits when the receiver's
        // queue is full, so the kernel loses nothing and every count below
        // is exact. Every 10th datagram carries a NUL and must be dropped.
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, f.path.data(), f.path.size());
        int failures = 0;
        for (int i = 0; i < total; ++i) {
            char buf[64];
            int n = std::snprintf(buf, sizeof buf, "WATCHDOG=1\nSTATUS=%d", i);
            if (i % 10 == 9) {
                buf[n] = '\0';
                ++n; // the NUL is part of the datagram
            }
            long rc;
            do {
                rc = sendto(s, buf, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&a),
                            sizeof a);
            } while (rc < 0 && errno == EINTR);
            failures += rc == n ? 0 : 1;
        }
        _exit(s >= 0 && failures == 0 ? 0 : 1);
    }
    REQUIRE(f.run_until([&] { return f.sock.stats().received == total; }, 120s));
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);

    const notify_stats& st = f.sock.stats();
    CHECK(st.received == total);
    CHECK(st.dropped_malformed == total / 10);
    REQUIRE(f.rec.msgs.size() == total - total / 10);
    std::vector<int> seen(total, 0);
    std::uint64_t current = 0;
    std::uint32_t in_wakeup = 0;
    std::uint32_t max_in_wakeup = 0;
    int wrong = 0;
    for (const record& r : f.rec.msgs) {
        wrong += r.pid == child && r.m.watchdog_ping ? 0 : 1;
        int i = std::atoi(r.status.c_str());
        if (i >= 0 && i < total) {
            ++seen[static_cast<std::size_t>(i)];
        }
        in_wakeup = r.wakeup == current ? in_wakeup + 1 : 1;
        current = r.wakeup;
        max_in_wakeup = in_wakeup > max_in_wakeup ? in_wakeup : max_in_wakeup;
    }
    CHECK(wrong == 0);
    int missing_or_twice = 0;
    for (int i = 0; i < total; ++i) {
        missing_or_twice += seen[static_cast<std::size_t>(i)] == (i % 10 == 9 ? 0 : 1) ? 0 : 1;
    }
    CHECK(missing_or_twice == 0);
    // No wake-up handled more than its share: the reactor kept turning.
    CHECK(max_in_wakeup <= notify_socket::max_per_wakeup);
    CHECK(st.received <= st.wakeups * notify_socket::max_per_wakeup);
    MESSAGE("flood: " << st.wakeups << " wake-ups, " << st.drains_capped << " capped, largest "
                      << max_in_wakeup);
}

TEST_CASE("a queue that never runs dry is drained 64 at a time; other ops still run") {
    // net.unix.max_dgram_qlen (often 10) keeps a plain flood from ever
    // queueing 64 datagrams. Here each datagram handled sends the next one,
    // so the socket stays readable: without the bound, one wake-up would
    // drain all of them before the reactor did anything else.
    fixture f;
    constexpr int total = 3000;
    f.rec.msgs.reserve(total);
    f.rec.refill_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(f.rec.refill_fd >= 0);
    f.rec.refill_to = address_of(f.path);
    f.rec.refill_left = total - 1;
    REQUIRE(send_dgram(f.path, "WATCHDOG=1") > 0);

    // The op submitted from the handler at the 100th datagram must run within
    // a few wake-ups, not after the queue finally runs dry.
    struct mark_state {
        const notify_socket* sock;
        bool ran = false;
        std::uint64_t received_then = 0;
    } ms{&f.sock};
    op mark(
        [](op& o, std::int32_t) {
            auto* st = static_cast<mark_state*>(o.user);
            st->ran = true;
            st->received_then = st->sock->stats().received;
        },
        &ms);
    REQUIRE(pipe2(f.rec.mark_pipe, O_CLOEXEC | O_NONBLOCK) == 0);
    f.rec.react = &f.r;
    f.rec.mark_op = &mark;
    f.rec.mark_at = 100;
    REQUIRE(f.run_until([&] { return f.sock.stats().received == total && ms.ran; }, 60s));
    CHECK(f.rec.refill_left == 0); // every refill was sent
    CHECK(f.rec.msgs.size() == total);
    // The reactor turned while the queue was still busy.
    CHECK(ms.received_then >= 100);
    CHECK(ms.received_then <= 100 + 3 * notify_socket::max_per_wakeup);
    const notify_stats& st = f.sock.stats();
    CHECK(st.drains_capped >= 1);
    std::uint64_t current = 0;
    std::uint32_t in_wakeup = 0;
    std::uint32_t max_in_wakeup = 0;
    for (const record& r : f.rec.msgs) {
        in_wakeup = r.wakeup == current ? in_wakeup + 1 : 1;
        current = r.wakeup;
        max_in_wakeup = in_wakeup > max_in_wakeup ? in_wakeup : max_in_wakeup;
    }
    CHECK(max_in_wakeup == notify_socket::max_per_wakeup);
    CHECK(st.wakeups >= total / notify_socket::max_per_wakeup);
    MESSAGE("self-feeding: " << st.wakeups << " wake-ups, " << st.drains_capped
                             << " capped; the op submitted at 100 ran at " << ms.received_then);
    ::close(f.rec.refill_fd);
    ::close(f.rec.mark_pipe[0]);
    ::close(f.rec.mark_pipe[1]);
}

// --- real clients (own meson entries; see main) ------------------------------

TEST_CASE("real client: systemd-notify --ready --status=hi") {
    fixture f;
    mono_time start = mono_clock::now();
    pid_t child = spawn("systemd-notify", {"systemd-notify", "--ready", "--status=hi"}, f.path);
    int status = wait_child(f, child, 20s);
    nanos took = mono_clock::now() - start;
    // Exit 0 at all proves the barrier was released: systemd-notify fails
    // when its 5 s barrier wait times out. Promptly, well before that.
    REQUIRE(status != -1);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(took < 4s);
    bool ready = false;
    bool barrier = false;
    for (const record& r : f.rec.msgs) {
        if (r.m.ready && r.status == "hi") {
            // Run as root it claims its parent's PID (ours), else its own.
            CHECK((r.pid == getpid() || r.pid == child));
            ready = true;
        }
        if (r.m.barrier) {
            CHECK(r.pid == child);
            barrier = true;
        }
    }
    CHECK(ready);
    CHECK(barrier);
    CHECK(f.sock.stats().fds_closed >= 1);
    CHECK(f.sock.stats().dropped_malformed == 0);
}

TEST_CASE("real client: libsystemd sd_notify and sd_notify_barrier") {
    fixture f;
    mono_time start = mono_clock::now();
    pid_t child = spawn("/proc/self/exe", {"test_notify", "--sd-client"}, f.path);
    int status = wait_child(f, child, 20s);
    nanos took = mono_clock::now() - start;
    REQUIRE(status != -1);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0); // see sd_client() for the other codes
    CHECK(took < 4s);
    REQUIRE(f.rec.msgs.size() == 3);
    for (const record& r : f.rec.msgs) {
        CHECK(r.pid == child);
    }
    CHECK(f.rec.msgs[0].m.ready);
    CHECK(f.rec.msgs[0].status == "x");
    CHECK(f.rec.msgs[1].m.watchdog_ping);
    CHECK(f.rec.msgs[2].m.barrier);
    CHECK(f.sock.stats().fds_closed == 1);
}

namespace {

#ifdef CUSTOS_TEST_HAVE_LIBSYSTEMD
// The libsystemd client, run as a child of the test above.
int sd_client() {
    if (sd_notify(0, "READY=1\nSTATUS=x") <= 0) {
        return 2;
    }
    if (sd_notify(0, "WATCHDOG=1") <= 0) {
        return 3;
    }
    // Waits until the receiver closes the barrier's fd; 5 s, in µs.
    if (sd_notify_barrier(0, 5'000'000) < 0) {
        return 4;
    }
    return 0;
}
#endif

// Why a real-client entry cannot run here, or nullptr when it can.
const char* client_unavailable(std::string_view client) {
    if (client == "systemd-notify") {
        return find_in_path("systemd-notify").empty()
                   ? "systemd-notify is not installed (apt-get install systemd)"
                   : nullptr;
    }
    if (client == "libsystemd") {
#ifdef CUSTOS_TEST_HAVE_LIBSYSTEMD
        return nullptr;
#else
        return "built without libsystemd (not found, or a cross build)";
#endif
    }
    return "unknown client";
}

} // namespace

int main(int argc, char** argv) {
    std::string_view client;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a == "--sd-client") {
#ifdef CUSTOS_TEST_HAVE_LIBSYSTEMD
            return sd_client();
#else
            return 5;
#endif
        }
        if (a.substr(0, 9) == "--client=") {
            client = a.substr(9);
            continue;
        }
        args.push_back(argv[i]);
    }
    if (!client.empty()) {
        if (const char* why = client_unavailable(client)) {
            std::printf("SKIP: real client %.*s: %s\n", static_cast<int>(client.size()),
                        client.data(), why);
            return 77;
        }
    }
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    doctest::Context ctx;
    if (client.empty()) {
        ctx.addFilter("test-case-exclude", "real client:*");
    } else {
        std::string filter = "real client: " + std::string(client) + "*";
        ctx.addFilter("test-case", filter.c_str());
    }
    ctx.applyCommandLine(static_cast<int>(args.size()), args.data());
    return ctx.run();
}
