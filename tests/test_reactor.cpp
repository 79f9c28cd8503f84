// The reactor's contract, run once per backend by the same code: meson runs
// this binary with CUSTOS_BACKEND=uring and =epoll. When the kernel refuses
// the requested backend (io_uring under qemu-user or seccomp) the binary
// exits 77, which meson reports as a skip.
#define DOCTEST_CONFIG_IMPLEMENT
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend_probe.hpp"
#include "doctest.hpp"
#include "io/mailbox.hpp"
#include "io/reactor.hpp"

using namespace custos;
using namespace custos::io;
using namespace std::chrono_literals;

namespace {

backend_kind expected_kind() {
    const char* env = std::getenv("CUSTOS_BACKEND");
    return env != nullptr && std::string_view(env) == "epoll" ? backend_kind::epoll
                                                              : backend_kind::uring;
}

// Timers may fire late on a loaded machine or under qemu; never early.
nanos lateness_tolerance() {
    const char* env = std::getenv("CUSTOS_TEST_TOLERANCE_MS");
    return std::chrono::milliseconds(env != nullptr ? std::atoi(env) : 100);
}

struct fixture {
    reactor r;
    explicit fixture(reactor_config cfg = {}) {
        auto res = r.init(cfg);
        REQUIRE(res.has_value());
        // A silent fallback must fail the test, not pass it under the wrong name.
        REQUIRE(r.kind() == expected_kind());
    }

    // Runs the loop until `done()` or `limit` passes; returns done().
    template <class F>
    bool run_until(F done, nanos limit = 5s) {
        bool expired = false;
        timer guard([](timer& t) { *static_cast<bool*>(t.user) = true; }, &expired);
        r.arm_after(guard, limit);
        while (!done() && !expired) {
            r.run_once();
        }
        r.cancel(guard);
        return done();
    }
};

// Records one completion.
struct probe {
    op o{[](op& self, std::int32_t res) {
             auto* p = static_cast<probe*>(self.user);
             p->result = res;
             ++p->calls;
             p->at = mono_clock::now();
         },
         this};
    std::int32_t result = 0;
    int calls = 0;
    mono_time at{};
};

void make_pipe(int fds[2]) {
    REQUIRE(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
}

int tcp_socket() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    return fd;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// A listening socket on an ephemeral loopback port.
int listener(int backlog, std::uint16_t& port) {
    int fd = tcp_socket();
    sockaddr_in a = loopback(0);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd, backlog) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    return fd;
}

} // namespace

TEST_CASE("timers fire at or after their deadline, within tolerance, in order") {
    fixture f;
    struct rec {
        timer t;
        mono_time deadline{};
        mono_time fired{};
        int order = -1;
    };
    static int counter;
    counter = 0;
    rec recs[6];
    const nanos delays[6] = {30ms, 5ms, 50ms, 1ms, 20ms, 10ms};
    mono_time start = mono_clock::now();
    for (int i = 0; i < 6; ++i) {
        recs[i].t.fire = [](timer& t) {
            auto* r = static_cast<rec*>(t.user);
            r->fired = mono_clock::now();
            r->order = counter++;
        };
        recs[i].t.user = &recs[i];
        recs[i].deadline = start + delays[i];
        f.r.arm(recs[i].t, recs[i].deadline);
    }
    REQUIRE(f.run_until([&] { return counter == 6; }));
    for (auto& rc : recs) {
        CHECK(rc.fired >= rc.deadline); // never early
        CHECK(rc.fired - rc.deadline < lateness_tolerance());
    }
    // Order follows the deadlines: 1, 5, 10, 20, 30, 50 ms.
    CHECK(recs[3].order == 0);
    CHECK(recs[1].order == 1);
    CHECK(recs[5].order == 2);
    CHECK(recs[4].order == 3);
    CHECK(recs[0].order == 4);
    CHECK(recs[2].order == 5);
    CHECK(f.r.stats().timers_fired >= 6);
}

TEST_CASE("a cancelled timer never fires; an idle reactor sleeps until its next timer") {
    fixture f;
    int fired = 0;
    timer cancelled([](timer& t) { ++*static_cast<int*>(t.user); }, &fired);
    f.r.arm_after(cancelled, 10ms);
    CHECK(f.r.cancel(cancelled));
    CHECK_FALSE(f.r.cancel(cancelled));

    bool done = false;
    timer later([](timer& t) { *static_cast<bool*>(t.user) = true; }, &done);
    f.r.arm_after(later, 60ms);
    std::uint64_t wakeups_before = f.r.stats().wakeups;
    // Not run_until: its guard timer would add a wake-up of its own.
    while (!done) {
        f.r.run_once();
    }
    CHECK(fired == 0);
    // No periodic tick: one wake-up (the timerfd) for 60 ms of idling; allow
    // one more for a spurious return.
    CHECK(f.r.stats().wakeups - wakeups_before <= 2);
}

TEST_CASE("timers with slack share wake-ups") {
    fixture f;
    static int fired;
    fired = 0;
    timer ts[20];
    mono_time base = mono_clock::now() + 20ms;
    for (int i = 0; i < 20; ++i) {
        ts[i].fire = [](timer&) { ++fired; };
        f.r.arm(ts[i], base + std::chrono::milliseconds(i), 64ms);
    }
    std::uint64_t wakeups_before = f.r.stats().wakeups;
    while (fired < 20) {
        f.r.run_once();
    }
    // 20 deadlines 1 ms apart; with 64 ms of slack they land on at most two
    // 64-tick boundaries (plus a possible spurious wake-up).
    CHECK(f.r.stats().wakeups - wakeups_before <= 3);
}

TEST_CASE("pipe: a read waits for the write, then both complete with the data") {
    fixture f;
    int p[2];
    make_pipe(p);
    char in[16] = {};
    const char out[] = "hello reactor";
    probe rd, wr;
    f.r.read(rd.o, p[0], in, sizeof in);
    CHECK(rd.calls == 0); // never from inside the submit call
    f.r.run_once(false);
    CHECK(rd.calls == 0); // nothing to read yet
    f.r.write(wr.o, p[1], out, sizeof out);
    REQUIRE(f.run_until([&] { return rd.calls == 1 && wr.calls == 1; }));
    CHECK(wr.result == static_cast<std::int32_t>(sizeof out));
    CHECK(rd.result == static_cast<std::int32_t>(sizeof out));
    CHECK(std::memcmp(in, out, sizeof out) == 0);

    // End of file reads as 0.
    ::close(p[1]);
    f.r.read(rd.o, p[0], in, sizeof in);
    REQUIRE(f.run_until([&] { return rd.calls == 2; }));
    CHECK(rd.result == 0);
    ::close(p[0]);
}

TEST_CASE("poll reports readiness events") {
    fixture f;
    int p[2];
    make_pipe(p);
    probe pl;
    f.r.poll(pl.o, p[0], POLLIN);
    f.r.run_once(false);
    CHECK(pl.calls == 0);
    REQUIRE(::write(p[1], "x", 1) == 1);
    REQUIRE(f.run_until([&] { return pl.calls == 1; }));
    CHECK((pl.result & POLLIN) != 0);
    ::close(p[0]);
    ::close(p[1]);
}

TEST_CASE("a read with a deadline on a silent pipe times out") {
    fixture f;
    int p[2];
    make_pipe(p);
    char buf[8];
    probe rd;
    mono_time deadline = mono_clock::now() + 50ms;
    f.r.read(rd.o, p[0], buf, sizeof buf, deadline);
    REQUIRE(f.run_until([&] { return rd.calls == 1; }));
    CHECK(rd.result == -ETIMEDOUT);
    CHECK(rd.at >= deadline);
    CHECK(rd.at - deadline < lateness_tolerance());
    // The op is reusable and the descriptor still works afterwards.
    REQUIRE(::write(p[1], "abc", 3) == 3);
    f.r.read(rd.o, p[0], buf, sizeof buf, mono_clock::now() + 5s);
    REQUIRE(f.run_until([&] { return rd.calls == 2; }));
    CHECK(rd.result == 3);
    ::close(p[0]);
    ::close(p[1]);
}

TEST_CASE("connect to a loopback listener succeeds, and accept returns the peer") {
    fixture f;
    std::uint16_t port = 0;
    int lfd = listener(16, port);
    int cfd = tcp_socket();
    sockaddr_in addr = loopback(port);
    probe con, acc;
    f.r.accept(acc.o, lfd, nullptr, nullptr);
    f.r.connect(con.o, cfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr,
                mono_clock::now() + 5s);
    REQUIRE(f.run_until([&] { return con.calls == 1 && acc.calls == 1; }));
    CHECK(con.result == 0);
    REQUIRE(acc.result >= 0);
    int flags = fcntl(acc.result, F_GETFL);
    CHECK((flags & O_NONBLOCK) != 0); // accepted descriptors are non-blocking
    CHECK((fcntl(acc.result, F_GETFD) & FD_CLOEXEC) != 0);

    // send / recv over the new connection.
    const char msg[] = "ping";
    char buf[8] = {};
    probe snd, rcv;
    f.r.recv(rcv.o, acc.result, buf, sizeof buf);
    f.r.send(snd.o, cfd, msg, sizeof msg);
    REQUIRE(f.run_until([&] { return snd.calls == 1 && rcv.calls == 1; }));
    CHECK(snd.result == static_cast<std::int32_t>(sizeof msg));
    CHECK(rcv.result == static_cast<std::int32_t>(sizeof msg));
    CHECK(std::memcmp(buf, msg, sizeof msg) == 0);
    ::close(acc.result);
    ::close(cfd);
    ::close(lfd);
}

TEST_CASE("connect to a closed port is refused") {
    fixture f;
    // Bind without listening to reserve a port that refuses connections.
    int holder = tcp_socket();
    sockaddr_in a = loopback(0);
    REQUIRE(bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    int cfd = tcp_socket();
    probe con;
    f.r.connect(con.o, cfd, reinterpret_cast<sockaddr*>(&a), sizeof a, mono_clock::now() + 5s);
    REQUIRE(f.run_until([&] { return con.calls == 1; }));
    CHECK(con.result == -ECONNREFUSED);
    ::close(cfd);
    ::close(holder);
}

TEST_CASE("connect to a listener whose accept queue is full hits its deadline") {
    fixture f;
    std::uint16_t port = 0;
    int lfd = listener(0, port); // backlog 0, never accepted
    sockaddr_in addr = loopback(port);
    // Fill the accept queue: the kernel completes handshakes until it is
    // full, then drops SYNs. Fill with plain connects and give them time.
    std::vector<int> fillers;
    for (int i = 0; i < 4; ++i) {
        int fd = tcp_socket();
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        fillers.push_back(fd);
    }
    usleep(100'000);
    int cfd = tcp_socket();
    probe con;
    mono_time deadline = mono_clock::now() + 200ms;
    f.r.connect(con.o, cfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr, deadline);
    REQUIRE(f.run_until([&] { return con.calls == 1; }));
    CHECK(con.result == -ETIMEDOUT);
    CHECK(con.at >= deadline);
    CHECK(con.at - deadline < lateness_tolerance());
    ::close(cfd);
    for (int fd : fillers) {
        ::close(fd);
    }
    ::close(lfd);
}

TEST_CASE("a descriptor number reused after a plain close(2) works again") {
    fixture f;
    // A read on a pipe, then the pipe closed behind the reactor's back.
    int p[2];
    make_pipe(p);
    char buf[4];
    probe rd;
    REQUIRE(::write(p[1], "a", 1) == 1);
    f.r.read(rd.o, p[0], buf, sizeof buf);
    REQUIRE(f.run_until([&] { return rd.calls == 1; }));
    int old_read_end = p[0];
    ::close(p[0]);
    ::close(p[1]);
    // The kernel hands out the lowest free numbers: the new pipe reuses them.
    make_pipe(p);
    CHECK(p[0] == old_read_end);
    f.r.read(rd.o, p[0], buf, sizeof buf);
    f.r.run_once(false);
    REQUIRE(::write(p[1], "bc", 2) == 2);
    REQUIRE(f.run_until([&] { return rd.calls == 2; }));
    CHECK(rd.result == 2);
    ::close(p[0]);
    ::close(p[1]);

    // Connects on sockets that keep getting the same number.
    std::uint16_t port = 0;
    int lfd = listener(16, port);
    sockaddr_in addr = loopback(port);
    for (int i = 0; i < 3; ++i) {
        int cfd = tcp_socket();
        probe con;
        f.r.connect(con.o, cfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr,
                    mono_clock::now() + 5s);
        REQUIRE(f.run_until([&] { return con.calls == 1; }));
        CHECK(con.result == 0);
        ::close(cfd);
        int afd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        CHECK(afd >= 0);
        ::close(afd);
    }
    ::close(lfd);
}

TEST_CASE("a descriptor reused after its op timed out and a plain close(2) is watched again") {
    // Regression: epoll remembered the one-shot registration as armed after
    // the op's deadline, so the first op on a new file with the same number
    // never reached epoll_ctl and waited for its deadline.
    fixture f;
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    char buf[8];
    probe rd;
    f.r.recv(rd.o, sv[0], buf, sizeof buf, 0, mono_clock::now() + 20ms);
    REQUIRE(f.run_until([&] { return rd.calls == 1; }));
    CHECK(rd.result == -ETIMEDOUT);
    int old = sv[0];
    ::close(sv[0]);
    ::close(sv[1]);
    REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(sv[0] == old);
    REQUIRE(::write(sv[1], "x", 1) == 1);
    mono_time t0 = mono_clock::now();
    f.r.recv(rd.o, sv[0], buf, sizeof buf, 0, mono_clock::now() + 2s);
    REQUIRE(f.run_until([&] { return rd.calls == 2; }));
    CHECK(rd.result == 1);
    CHECK(mono_clock::now() - t0 < 1s);
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST_CASE("socket, statx, openat, unlinkat complete from the loop with the system call's result") {
    fixture f;
    probe so;
    f.r.socket(so.o, AF_INET, SOCK_STREAM, 0);
    CHECK(so.calls == 0); // never inside the submit call
    REQUIRE(f.run_until([&] { return so.calls == 1; }));
    REQUIRE(so.result >= 0);
    int fl = fcntl(so.result, F_GETFL);
    CHECK((fl & O_NONBLOCK) != 0);
    CHECK((fcntl(so.result, F_GETFD) & FD_CLOEXEC) != 0);
    ::close(so.result);
    f.r.socket(so.o, 12345, SOCK_STREAM, 0); // no such address family
    REQUIRE(f.run_until([&] { return so.calls == 2; }));
    CHECK(so.result == -EAFNOSUPPORT);

    char dir[] = "/tmp/custos-reactor-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    char path[64];
    std::snprintf(path, sizeof path, "%s/f", dir);
    probe op;
    f.r.openat(op.o, AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL, 0640);
    REQUIRE(f.run_until([&] { return op.calls == 1; }));
    REQUIRE(op.result >= 0);
    CHECK((fcntl(op.result, F_GETFD) & FD_CLOEXEC) != 0);
    ::close(op.result);
    struct statx stx {};
    probe st;
    f.r.statx(st.o, AT_FDCWD, path, 0, STATX_MODE | STATX_TYPE, &stx);
    REQUIRE(f.run_until([&] { return st.calls == 1; }));
    CHECK(st.result == 0);
    CHECK(S_ISREG(stx.stx_mode));
    CHECK((stx.stx_mode & 0777) == (0640 & ~[] {
              mode_t m = umask(0);
              umask(m);
              return m;
          }()));
    probe ul;
    f.r.unlinkat(ul.o, AT_FDCWD, path, 0);
    REQUIRE(f.run_until([&] { return ul.calls == 1; }));
    CHECK(ul.result == 0);
    f.r.statx(st.o, AT_FDCWD, path, 0, STATX_MODE, &stx);
    REQUIRE(f.run_until([&] { return st.calls == 2; }));
    CHECK(st.result == -ENOENT);
    f.r.unlinkat(ul.o, AT_FDCWD, dir, AT_REMOVEDIR);
    REQUIRE(f.run_until([&] { return ul.calls == 2; }));
    CHECK(ul.result == 0);
    MESSAGE("native socket op: " << f.r.native_socket()
                                 << ", native file ops: " << f.r.native_file_ops());
}

TEST_CASE("non-blocking loop turns alone deliver completions (io_uring DEFER_TASKRUN)") {
    // Regression: with DEFER_TASKRUN, completions are task work that runs
    // only on a GETEVENTS enter; run_once(false) made none, so a loop that
    // polls never saw a connect complete.
    fixture f;
    std::uint16_t port = 0;
    int lfd = listener(16, port);
    sockaddr_in addr = loopback(port);
    int cfd = tcp_socket();
    probe con;
    f.r.connect(con.o, cfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr,
                mono_clock::now() + 5s);
    mono_time until = mono_clock::now() + 2s;
    while (con.calls == 0 && mono_clock::now() < until) {
        f.r.run_once(false);
        timespec ts{0, 1'000'000};
        ::nanosleep(&ts, nullptr);
    }
    CHECK(con.calls == 1);
    CHECK(con.result == 0);
    ::close(cfd);
    ::close(lfd);
}

TEST_CASE("a turn that fires an already-due timer does not then block") {
    // Regression: run_once(true) fired the due timer, then waited for the
    // next, unrelated event (here 2 s away): a zero-delay timer armed just
    // before a slow turn (qemu-user) hung a loop with nothing else pending.
    fixture f;
    int fired = 0;
    timer t([](timer& self) { ++*static_cast<int*>(self.user); }, &fired);
    timer later([](timer&) {}, nullptr);
    f.r.arm_after(later, 2s);
    f.r.arm_after(t, 0ns);
    timespec ts{0, 3'000'000}; // the timer's tick passes before the turn
    ::nanosleep(&ts, nullptr);
    mono_time t0 = mono_clock::now();
    f.r.run_once(true);
    CHECK(fired == 1);
    CHECK(mono_clock::now() - t0 < 500ms);
    f.r.cancel(later);
}

TEST_CASE("cancel of an in-flight op completes it with -ECANCELED, exactly once") {
    fixture f;
    int p[2];
    make_pipe(p);
    char buf[8];
    probe rd;
    CHECK_FALSE(f.r.cancel(rd.o)); // idle
    f.r.read(rd.o, p[0], buf, sizeof buf);
    f.r.run_once(false); // now really in flight
    CHECK(rd.o.busy());
    CHECK(f.r.cancel(rd.o));
    CHECK(rd.calls == 0); // never from inside cancel()
    REQUIRE(f.run_until([&] { return rd.calls == 1; }));
    CHECK(rd.result == -ECANCELED);
    // Still exactly once after more loop iterations and data arriving.
    REQUIRE(::write(p[1], "z", 1) == 1);
    for (int i = 0; i < 5; ++i) {
        f.r.run_once(false);
    }
    CHECK(rd.calls == 1);
    REQUIRE(::read(p[0], buf, sizeof buf) == 1); // empty the pipe again

    // Cancelling an op right after submitting it.
    probe rd2;
    f.r.read(rd2.o, p[0], buf, sizeof buf);
    CHECK(f.r.cancel(rd2.o));
    REQUIRE(f.run_until([&] { return rd2.calls == 1; }));
    CHECK(rd2.result == -ECANCELED);
    ::close(p[0]);
    ::close(p[1]);
}

TEST_CASE("close completes, and closing a bad descriptor reports EBADF") {
    fixture f;
    int p[2];
    make_pipe(p);
    probe c1, c2, c3;
    f.r.close(c1.o, p[0]);
    f.r.close(c2.o, p[1]);
    REQUIRE(f.run_until([&] { return c1.calls == 1 && c2.calls == 1; }));
    CHECK(c1.result == 0);
    CHECK(c2.result == 0);
    f.r.close(c3.o, p[0]);
    REQUIRE(f.run_until([&] { return c3.calls == 1; }));
    CHECK(c3.result == -EBADF);
}

TEST_CASE("a batch of 1,000 operations completes, each exactly once") {
    reactor_config cfg;
    cfg.max_ops = 1024;
    cfg.max_fds = 1024;
    fixture f(cfg);
    constexpr int pairs = 250; // 4 ops per socketpair
    struct pair_state {
        int a = -1, b = -1;
        std::uint32_t out_ab = 0, out_ba = 0, in_ab = 0, in_ba = 0;
        probe send_ab, send_ba, recv_ab, recv_ba;
    };
    std::vector<pair_state> ps(pairs);
    for (int i = 0; i < pairs; ++i) {
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        ps[i].a = sv[0];
        ps[i].b = sv[1];
        ps[i].out_ab = 0xab000000u + static_cast<std::uint32_t>(i);
        ps[i].out_ba = 0xba000000u + static_cast<std::uint32_t>(i);
    }
    // Every receive is submitted before any send, so most must wait.
    for (auto& p : ps) {
        f.r.recv(p.recv_ab.o, p.b, &p.in_ab, sizeof p.in_ab);
        f.r.recv(p.recv_ba.o, p.a, &p.in_ba, sizeof p.in_ba);
    }
    for (auto& p : ps) {
        f.r.send(p.send_ab.o, p.a, &p.out_ab, sizeof p.out_ab);
        f.r.send(p.send_ba.o, p.b, &p.out_ba, sizeof p.out_ba);
    }
    auto all_done = [&] {
        for (auto& p : ps) {
            if (p.send_ab.calls + p.send_ba.calls + p.recv_ab.calls + p.recv_ba.calls != 4) {
                return false;
            }
        }
        return true;
    };
    REQUIRE(f.run_until(all_done, 20s));
    for (auto& p : ps) {
        CHECK(p.send_ab.calls == 1);
        CHECK(p.recv_ba.calls == 1);
        CHECK(p.send_ab.result == 4);
        CHECK(p.recv_ab.result == 4);
        CHECK(p.in_ab == p.out_ab);
        CHECK(p.in_ba == p.out_ba);
        ::close(p.a);
        ::close(p.b);
    }
    CHECK(f.r.ops_in_flight() == 0);
}

TEST_CASE("ops beyond max_ops complete with -ENOBUFS and are counted") {
    reactor_config cfg;
    cfg.max_ops = 2;
    fixture f(cfg);
    int p[2];
    make_pipe(p);
    char buf[3][4];
    probe rd[3];
    for (int i = 0; i < 3; ++i) {
        f.r.read(rd[i].o, p[0], buf[i], sizeof buf[i]);
    }
    REQUIRE(f.run_until([&] { return rd[2].calls == 1; }));
    CHECK(rd[2].result == -ENOBUFS);
    CHECK(f.r.stats().ops_rejected == 1);
    CHECK(rd[0].calls == 0);
    CHECK(f.r.cancel(rd[0].o));
    CHECK(f.r.cancel(rd[1].o));
    REQUIRE(f.run_until([&] { return rd[0].calls == 1 && rd[1].calls == 1; }));
    ::close(p[0]);
    ::close(p[1]);
}

TEST_CASE("another thread wakes the reactor through a mailbox; nothing lost, FIFO per thread") {
    fixture f;
    struct msg {
        std::uint32_t producer;
        std::uint32_t seq;
    };
    constexpr std::uint32_t producers = 4;
    constexpr std::uint32_t per_producer = 20000;
    struct sink {
        std::uint32_t next[producers] = {};
        std::uint32_t total = 0;
        std::uint32_t out_of_order = 0;
    } s;
    mailbox<msg, 256> box;
    auto attached = box.attach(
        f.r,
        [](void* ctx, const msg& m) {
            auto* sk = static_cast<sink*>(ctx);
            if (m.seq != sk->next[m.producer]) {
                ++sk->out_of_order;
            }
            sk->next[m.producer] = m.seq + 1;
            ++sk->total;
        },
        &s);
    REQUIRE(attached.has_value());

    // One message from another thread wakes a reactor blocked with nothing
    // else to do (no timers armed).
    std::thread one([&] {
        usleep(20'000);
        while (!box.try_post({0, 0})) {
        }
    });
    while (s.total == 0) {
        f.r.run_once();
    }
    one.join();
    s.next[0] = 0;
    s.total = 0;

    std::vector<std::thread> threads;
    for (std::uint32_t p = 0; p < producers; ++p) {
        threads.emplace_back([&box, p] {
            for (std::uint32_t i = 0; i < per_producer;) {
                if (box.try_post({p, i})) {
                    ++i;
                } else {
                    std::this_thread::yield(); // full: back off, retry
                }
            }
        });
    }
    REQUIRE(f.run_until([&] { return s.total == producers * per_producer; }, 60s));
    for (auto& t : threads) {
        t.join();
    }
    CHECK(s.out_of_order == 0);
    for (std::uint32_t p = 0; p < producers; ++p) {
        CHECK(s.next[p] == per_producer);
    }
}

namespace {
// Spawns /bin/sh -c SCRIPT and returns a pidfd for it (-1 when the kernel
// has no pidfd_open).
int spawn_sh(const char* script, pid_t* pid_out) {
    char arg0[] = "sh", arg1[] = "-c";
    char* argv[] = {arg0, arg1, const_cast<char*>(script), nullptr};
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, environ) == 0);
    *pid_out = pid;
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}
} // namespace

TEST_CASE("waitid reaps an exited child and reports its status, its signal, once each") {
    fixture f;
    std::string how = f.r.native_waitid() ? "IORING_OP_WAITID" : "pidfd poll + waitid";
    MESSAGE("waitid here is " << how);
    pid_t pid_exit = 0, pid_kill = 0;
    int fd_exit = spawn_sh("exit 7", &pid_exit);
    int fd_kill = spawn_sh("kill -SEGV $$", &pid_kill);
    if (fd_exit < 0 || fd_kill < 0) {
        waitpid(pid_exit, nullptr, 0);
        waitpid(pid_kill, nullptr, 0);
        MESSAGE("pidfd_open unavailable here (errno " << errno << "): waitid untestable");
        return;
    }
    siginfo_t a{}, b{};
    int ra = 1, rb = 1;
    op oa([](op& o, std::int32_t r) { *static_cast<int*>(o.user) = r; }, &ra);
    op ob([](op& o, std::int32_t r) { *static_cast<int*>(o.user) = r; }, &rb);
    f.r.waitid(oa, fd_exit, &a);
    f.r.waitid(ob, fd_kill, &b);
    REQUIRE(f.run_until([&] { return ra != 1 && rb != 1; }));
    CHECK(ra == 0);
    CHECK(a.si_pid == pid_exit);
    CHECK(a.si_code == CLD_EXITED);
    CHECK(a.si_status == 7);
    CHECK(rb == 0);
    CHECK(b.si_pid == pid_kill);
    CHECK((b.si_code == CLD_KILLED || b.si_code == CLD_DUMPED));
    CHECK(b.si_status == SIGSEGV);
    // Reaped: nothing is left to wait for.
    int rc = waitpid(pid_exit, nullptr, WNOHANG);
    int err = errno;
    CHECK(rc == -1);
    CHECK(err == ECHILD);
    CHECK(waitpid(pid_kill, nullptr, WNOHANG) == -1);
    ::close(fd_exit);
    ::close(fd_kill);
}

TEST_CASE("waitid of a child that keeps running can be cancelled; it reaps nothing") {
    fixture f;
    pid_t pid = 0;
    int fd = spawn_sh("sleep 30", &pid);
    if (fd < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        MESSAGE("pidfd_open unavailable here: waitid untestable");
        return;
    }
    siginfo_t info{};
    int res = 1;
    op o([](op& op_, std::int32_t r) { *static_cast<int*>(op_.user) = r; }, &res);
    f.r.waitid(o, fd, &info);
    f.r.run_once(false);
    CHECK(f.r.cancel(o));
    REQUIRE(f.run_until([&] { return res != 1; }));
    CHECK(res == -ECANCELED);
    // Still ours to reap.
    REQUIRE(kill(pid, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    ::close(fd);
}

int main(int argc, char** argv) {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
