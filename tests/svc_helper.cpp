// A service for the runtime's integration tests (test_runtime, test_custosd):
// one small program whose behaviour argv chooses. It uses nothing from
// custos, so on cross builds a build-machine binary serves (qemu-user cannot
// exec a target binary without binfmt_misc).
//
//   svc_helper exit N                   exits with status N
//   svc_helper signal SIG               kills itself with signal number SIG
//   svc_helper ignore-term [FD]         ignores SIGTERM (then writes "\n" to FD
//                                       if given: "the handler is in place"),
//                                       sleeps forever
//   svc_helper notify-ready MS [STATUS] after MS, sends READY=1 (and STATUS=)
//                                       to $NOTIFY_SOCKET, sleeps forever
//   svc_helper notify-watchdog MS N     sends READY=1, then WATCHDOG=1 N times,
//                                       one every MS, then sleeps forever
//   svc_helper s6 FD MS                 after MS, writes "\n" to FD and closes
//                                       it, sleeps forever
//   svc_helper grandchild orphan FILE   forks a child that sleeps forever (same
//                                       process group), writes its pid to FILE,
//                                       then exits 0
//   svc_helper grandchild family FILE   the same, but the parent sleeps too
//   svc_helper grandchild stubborn FILE like family, but the child ignores
//                                       SIGTERM (from birth: no race)
//   svc_helper notify-send TEXT...      sends each TEXT as one datagram ("\n"
//                                       escapes a newline), then exits 0 at
//                                       once: a short-lived helper
//   svc_helper notify-then MS TEXT...   sends each TEXT, then WATCHDOG=1
//                                       every MS for ever (MS 0: never)
//   svc_helper grandchild setsid FILE   like family, but the child calls
//                                       setsid() first (its own session)
//   svc_helper fork-mainpid FILE        forks a child that sleeps forever,
//                                       writes its pid to FILE, sends
//                                       READY=1 and MAINPID=<child>, exits 0:
//                                       a daemon that forks
//   svc_helper sleep                    sleeps forever
//   svc_helper env FILE                 writes pid=, pgid=, sid= and env: lines
//                                       to FILE, sends READY=1 if NOTIFY_SOCKET
//                                       is set, sleeps forever
//   svc_helper channel FD               writes "hello PID\n" to FD, then answers
//                                       each line L read from FD with
//                                       "echo L\n"; "exit N" exits N, EOF 0
//   svc_helper rundir                   writes its pid to
//                                       $RUNTIME_DIRECTORY/written (and a
//                                       subdirectory with a file and a
//                                       symlink to /), sleeps forever
//   svc_helper flood BYTES              writes BYTES bytes ('x' lines of 64) to
//                                       stdout as fast as it can, exits 0
//   svc_helper say TEXT                 writes "TEXT out\n" to stdout and
//                                       "TEXT err\n" to stderr, exits 0
//   svc_helper count N TEXT             for K in 1..N writes "TEXT out K\n" to
//                                       stdout and "TEXT err K\n" to stderr,
//                                       exits 0
//
// A failed write to stdout or stderr is a failed system call (101).
// Files are written whole, to FILE.tmp then renamed, so a reader never sees
// half of one. Exit status 100 means bad usage, 101 a failed system call.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

extern char** environ;

namespace {

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "svc_helper: %s: %s\n", what, std::strerror(errno));
    std::_Exit(101);
}

[[noreturn]] void sleep_forever() {
    for (;;) {
        ::pause();
    }
}

void sleep_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

// A dependency-free sd_notify: one datagram to $NOTIFY_SOCKET (a path, or
// "@name" for an abstract socket).
void notify(const std::string& msg) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || *path == '\0') {
        std::fprintf(stderr, "svc_helper: NOTIFY_SOCKET is not set\n");
        std::_Exit(101);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::size_t len = std::strlen(path);
    if (len >= sizeof addr.sun_path) {
        std::fprintf(stderr, "svc_helper: NOTIFY_SOCKET too long\n");
        std::_Exit(101);
    }
    std::memcpy(addr.sun_path, path, len);
    if (path[0] == '@') {
        addr.sun_path[0] = '\0';
    }
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die("socket");
    }
    auto alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    if (::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&addr), alen) <
        0) {
        die("sendto NOTIFY_SOCKET");
    }
    ::close(fd);
}

void write_file(const char* path, const std::string& text) {
    std::string tmp = std::string(path) + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
        die(tmp.c_str());
    }
    std::fputs(text.c_str(), f);
    if (std::fclose(f) != 0 || std::rename(tmp.c_str(), path) != 0) {
        die(path);
    }
}

// All of `text` to `fd`, or exit 101.
void write_all(int fd, const char* text, std::size_t len) {
    while (len > 0) {
        ssize_t n = ::write(fd, text, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            std::_Exit(101); // no stderr to say it on, perhaps
        }
        text += n;
        len -= static_cast<std::size_t>(n);
    }
}

void write_line(int fd) {
    if (::write(fd, "\n", 1) != 1) {
        die("write readiness fd");
    }
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "svc_helper: bad usage (see tests/svc_helper.cpp)\n");
    std::_Exit(100);
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage();
    }
    std::string mode = argv[1];
    auto arg = [&](int i) -> const char* {
        if (i >= argc) {
            usage();
        }
        return argv[i];
    };
    if (mode == "exit") {
        return std::atoi(arg(2));
    }
    if (mode == "signal") {
        int sig = std::atoi(arg(2));
        std::signal(sig, SIG_DFL);
        ::kill(::getpid(), sig);
        sleep_forever();
    }
    if (mode == "ignore-term") {
        std::signal(SIGTERM, SIG_IGN);
        if (argc > 2) {
            write_line(std::atoi(argv[2]));
        }
        sleep_forever();
    }
    if (mode == "notify-ready") {
        sleep_ms(std::atol(arg(2)));
        std::string msg = "READY=1";
        if (argc > 3) {
            msg += std::string("\nSTATUS=") + argv[3];
        }
        notify(msg);
        sleep_forever();
    }
    if (mode == "notify-watchdog") {
        long period = std::atol(arg(2));
        long count = std::atol(arg(3));
        notify("READY=1");
        for (long i = 0; i < count; ++i) {
            sleep_ms(period);
            notify("WATCHDOG=1");
        }
        sleep_forever();
    }
    if (mode == "s6") {
        int fd = std::atoi(arg(2));
        sleep_ms(std::atol(arg(3)));
        write_line(fd);
        ::close(fd);
        sleep_forever();
    }
    if (mode == "grandchild") {
        std::string sub = arg(2);
        const char* file = arg(3);
        if (sub != "orphan" && sub != "family" && sub != "stubborn" && sub != "setsid") {
            usage();
        }
        if (sub == "stubborn") {
            std::signal(SIGTERM, SIG_IGN);
        }
        pid_t child = ::fork();
        if (child < 0) {
            die("fork");
        }
        if (child == 0) {
            if (sub == "setsid") {
                // Its pid is written once it has left: no race with a stop.
                ::setsid();
                write_file(file, std::to_string(::getpid()) + "\n");
            }
            sleep_forever();
        }
        std::signal(SIGTERM, SIG_DFL);
        if (sub == "setsid") {
            sleep_forever();
        }
        write_file(file, std::to_string(child) + "\n");
        if (sub == "orphan") {
            return 0;
        }
        sleep_forever();
    }
    if (mode == "notify-send" || mode == "notify-then") {
        int first = mode == "notify-send" ? 2 : 3;
        for (int i = first; i < argc; ++i) {
            std::string text = argv[i];
            for (std::size_t at = text.find("\\n"); at != std::string::npos;
                 at = text.find("\\n", at + 1)) {
                text.replace(at, 2, "\n");
            }
            notify(text);
        }
        if (mode == "notify-send") {
            return 0;
        }
        long period = std::atol(arg(2));
        if (period <= 0) {
            sleep_forever();
        }
        for (;;) {
            sleep_ms(period);
            notify("WATCHDOG=1");
        }
    }
    if (mode == "fork-mainpid") {
        pid_t child = ::fork();
        if (child < 0) {
            die("fork");
        }
        if (child == 0) {
            sleep_forever();
        }
        write_file(arg(2), std::to_string(child) + "\n");
        notify("READY=1\nMAINPID=" + std::to_string(child));
        return 0;
    }
    if (mode == "sleep") {
        sleep_forever();
    }
    if (mode == "flood") {
        unsigned long long left = std::strtoull(arg(2), nullptr, 10);
        static char block[64 * 1024];
        for (std::size_t k = 0; k < sizeof block; ++k) {
            block[k] = (k % 64 == 63) ? '\n' : 'x';
        }
        while (left > 0) {
            const std::size_t n =
                left < sizeof block ? static_cast<std::size_t>(left) : sizeof block;
            write_all(1, block, n);
            left -= n;
        }
        return 0;
    }
    if (mode == "say") {
        const std::string text = arg(2);
        const std::string out = text + " out\n";
        const std::string err = text + " err\n";
        write_all(1, out.data(), out.size());
        write_all(2, err.data(), err.size());
        return 0;
    }
    if (mode == "count") {
        const long n = std::atol(arg(2));
        const std::string text = arg(3);
        for (long k = 1; k <= n; ++k) {
            const std::string out = text + " out " + std::to_string(k) + "\n";
            const std::string err = text + " err " + std::to_string(k) + "\n";
            write_all(1, out.data(), out.size());
            write_all(2, err.data(), err.size());
        }
        return 0;
    }
    if (mode == "channel") {
        const int fd = std::atoi(arg(2));
        const std::string hello = "hello " + std::to_string(::getpid()) + "\n";
        if (::write(fd, hello.data(), hello.size()) != static_cast<ssize_t>(hello.size())) {
            die("write channel");
        }
        std::string line;
        char c = 0;
        for (;;) {
            ssize_t n = ::read(fd, &c, 1);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                std::_Exit(n == 0 ? 0 : 101);
            }
            if (c != '\n') {
                line += c;
                continue;
            }
            if (line.rfind("exit ", 0) == 0) {
                std::_Exit(std::atoi(line.c_str() + 5));
            }
            const std::string reply = "echo " + line + "\n";
            if (::write(fd, reply.data(), reply.size()) != static_cast<ssize_t>(reply.size())) {
                die("write channel");
            }
            line.clear();
        }
    }
    if (mode == "rundir") {
        const char* dir = std::getenv("RUNTIME_DIRECTORY");
        if (dir == nullptr || *dir == '\0') {
            std::fprintf(stderr, "svc_helper: RUNTIME_DIRECTORY is not set\n");
            std::_Exit(101);
        }
        const std::string d = dir;
        if (::mkdir((d + "/sub").c_str(), 0700) != 0 ||
            ::symlink("/", (d + "/sub/root").c_str()) != 0) {
            die("populate RUNTIME_DIRECTORY");
        }
        write_file((d + "/sub/file").c_str(), "x\n");
        write_file((d + "/written").c_str(), std::to_string(::getpid()) + "\n");
        sleep_forever();
    }
    if (mode == "env") {
        std::string text = "pid=" + std::to_string(::getpid()) + "\n";
        text += "pgid=" + std::to_string(::getpgid(0)) + "\n";
        text += "sid=" + std::to_string(::getsid(0)) + "\n";
        for (char** e = environ; *e != nullptr; ++e) {
            text += std::string("env:") + *e + "\n";
        }
        write_file(arg(2), text);
        const char* ns = std::getenv("NOTIFY_SOCKET");
        if (ns != nullptr && *ns != '\0') {
            notify("READY=1");
        }
        sleep_forever();
    }
    usage();
}
