// The emulated board's /init: PID 1 of a qemu-system-aarch64 guest whose
// initramfs tests/board/board.py builds around it. It sets the board up
// (mounts, loopback, the modules listed in /board/modules, the virtio state
// disk at /state), runs the scenario named on the kernel command line
// (custos.scenario=NAME) and says what happens on the console:
//
//   BOARD <uptime> <word> [details]   a marker of this program
//   custosd <uptime> | <line>         a line custosd (or a suite) printed
//
// It never hangs: every wait has a deadline, and an alarm bounds the whole
// scenario (custos.bound=SECONDS); past it, it says `bound` and powers off.
// A scenario that expects a watchdog reset idles after provoking it; qemu
// runs with -no-reboot, so the reset ends qemu, and `power-off` (the marker
// of every orderly end) never appears. The host tells the two apart.
//
//   starve   custosd (starve.ini): a critical service fails, the gate shuts
//   kill     custosd (kill.ini) feeds a few times, then init SIGKILLs it
//            (run as custos.scenario=kill,orderly: see this_step())
//   orderly  custosd (orderly.ini) feeds for 3 timeouts, SIGTERM (magic
//            close), then init waits 2 timeouts for a reset that must not come
//   suites   custosd (appliance.ini): first feed, PSS; then --platform and
//            the test binaries listed in /board/suites
#include <fcntl.h>
#include <linux/module.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

double uptime() {
    char buf[64] = {};
    int fd = ::open("/proc/uptime", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    return n > 0 ? std::strtod(buf, nullptr) : 0;
}

void put(const char* text, std::size_t len) {
    while (len > 0) {
        ssize_t n = ::write(1, text, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        text += n;
        len -= static_cast<std::size_t>(n);
    }
}

__attribute__((format(printf, 2, 3))) void mark(const char* word, const char* fmt, ...) {
    char line[1024];
    int n = std::snprintf(line, sizeof line, "BOARD %.3f %s ", uptime(), word);
    va_list ap;
    va_start(ap, fmt);
    int m = std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n) - 1, fmt, ap);
    va_end(ap);
    std::size_t len = static_cast<std::size_t>(n) + static_cast<std::size_t>(m);
    if (len > sizeof line - 2) {
        len = sizeof line - 2;
    }
    line[len++] = '\n';
    put(line, len);
}

void reap_all() {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
}

[[noreturn]] void power_off(const char* why) {
    ::kill(-1, SIGKILL);
    for (int i = 0; i < 20; ++i) {
        reap_all();
        ::usleep(10000);
    }
    ::sync();
    if (::umount2("/state", 0) != 0 && errno != EINVAL) {
        mark("umount-failed", "/state: %s", std::strerror(errno));
    }
    ::sync();
    mark("power-off", "%s", why);
    ::reboot(RB_POWER_OFF);
    for (;;) {
        ::pause();
    }
}

void on_alarm(int) {
    static const char text[] = "BOARD - bound the scenario outlived its bound\n";
    put(text, sizeof text - 1);
    power_off("bound");
}

// custos.NAME=VALUE from /proc/cmdline.
std::string cmdline_value(const std::string& cmdline, const char* name) {
    std::string key = std::string("custos.") + name + "=";
    std::size_t at = 0;
    while ((at = cmdline.find(key, at)) != std::string::npos) {
        if (at == 0 || cmdline[at - 1] == ' ') {
            std::size_t begin = at + key.size();
            std::size_t end = cmdline.find_first_of(" \n", begin);
            return cmdline.substr(begin, end == std::string::npos ? end : end - begin);
        }
        at += key.size();
    }
    return {};
}

std::string read_file(const char* path) {
    std::string text;
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return text;
    }
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= text.size()) {
        std::size_t end = text.find(sep, at);
        if (end == std::string::npos) {
            end = text.size();
        }
        if (end > at) {
            out.push_back(text.substr(at, end - at));
        }
        at = end + 1;
    }
    return out;
}

void mount_one(const char* source, const char* target, const char* type, const char* data) {
    ::mkdir(target, 0755);
    if (::mount(source, target, type, MS_NOSUID, data) != 0 && errno != EBUSY) {
        mark("mount-failed", "%s on %s: %s", type, target, std::strerror(errno));
    }
}

void console() {
    if (::fcntl(1, F_GETFD) >= 0) {
        return;
    }
    int fd = ::open("/dev/console", O_RDWR);
    if (fd >= 0) {
        ::dup2(fd, 0);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        if (fd > 2) {
            ::close(fd);
        }
    }
}

void loopback_up() {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq req{};
    std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
    if (s < 0 || ::ioctl(s, SIOCGIFFLAGS, &req) != 0) {
        mark("lo-failed", "%s", std::strerror(errno));
    } else {
        req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
        if (::ioctl(s, SIOCSIFFLAGS, &req) != 0) {
            mark("lo-failed", "%s", std::strerror(errno));
        }
    }
    if (s >= 0) {
        ::close(s);
    }
}

bool load_modules() {
    bool ok = true;
    for (const std::string& path : split(read_file("/board/modules"), '\n')) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (::syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)) {
            mark("module-failed", "%s: %s", path.c_str(), std::strerror(errno));
            ok = false;
        }
        if (fd >= 0) {
            ::close(fd);
        }
    }
    return ok;
}

bool mount_state() {
    // The virtio disk's probe may still be running when the module returns.
    double until = uptime() + 10;
    struct stat st {};
    while (::stat("/dev/vda", &st) != 0 && uptime() < until) {
        ::usleep(20000);
    }
    ::mkdir("/state", 0755);
    if (::mount("/dev/vda", "/state", "ext4", MS_NOATIME, "") != 0) {
        mark("state-failed", "mount /dev/vda on /state: %s", std::strerror(errno));
        return false;
    }
    return true;
}

// A process whose stdout and stderr come to init through a pipe, line by
// line: each is echoed to the console and kept, so that waits can look back.
struct Child {
    const char* tag = "custosd";
    pid_t pid = -1;
    int out = -1;
    std::string partial;
    std::vector<std::string> lines;
    bool exited = false;
    int status = 0;
};

bool spawn(Child& c, const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        mark("spawn-failed", "pipe: %s", std::strerror(errno));
        return false;
    }
    std::vector<char*> args;
    for (const std::string& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (const std::string& e : env) {
        envp.push_back(const_cast<char*>(e.c_str()));
    }
    envp.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        ::setsid();
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execve(args[0], args.data(), envp.data());
        std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(fds[1]);
    if (pid < 0) {
        ::close(fds[0]);
        mark("spawn-failed", "fork: %s", std::strerror(errno));
        return false;
    }
    c.pid = pid;
    c.out = fds[0];
    return true;
}

void take_line(Child& c, std::string line) {
    char head[64];
    int n = std::snprintf(head, sizeof head, "%s %.3f | ", c.tag, uptime());
    std::string shown = std::string(head, static_cast<std::size_t>(n)) + line + "\n";
    put(shown.data(), shown.size());
    c.lines.push_back(std::move(line));
}

// Reads what is there (waiting at most ms), reaps; false once nothing more
// can come (the pipe is closed and the process reaped).
bool pump(Child& c, int ms) {
    if (c.out >= 0) {
        pollfd p{c.out, POLLIN, 0};
        if (::poll(&p, 1, ms) > 0) {
            char buf[2048];
            ssize_t n = ::read(c.out, buf, sizeof buf);
            if (n > 0) {
                c.partial.append(buf, static_cast<std::size_t>(n));
                std::size_t nl;
                while ((nl = c.partial.find('\n')) != std::string::npos) {
                    take_line(c, c.partial.substr(0, nl));
                    c.partial.erase(0, nl + 1);
                }
            } else if (n == 0) {
                if (!c.partial.empty()) {
                    take_line(c, c.partial);
                    c.partial.clear();
                }
                ::close(c.out);
                c.out = -1;
            }
        }
    } else {
        ::usleep(static_cast<useconds_t>(ms) * 1000);
    }
    int status = 0;
    pid_t got;
    while ((got = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (got == c.pid) {
            c.exited = true;
            c.status = status;
        }
    }
    return c.out >= 0 || !c.exited;
}

// The index of the first line containing needle (looking back too), or -1
// once the deadline passes or the child is gone without it.
int wait_line(Child& c, const char* needle, double seconds) {
    double until = uptime() + seconds;
    std::size_t seen = 0;
    for (;;) {
        for (; seen < c.lines.size(); ++seen) {
            if (c.lines[seen].find(needle) != std::string::npos) {
                return static_cast<int>(seen);
            }
        }
        if (uptime() >= until || !pump(c, 100)) {
            for (; seen < c.lines.size(); ++seen) {
                if (c.lines[seen].find(needle) != std::string::npos) {
                    return static_cast<int>(seen);
                }
            }
            mark("missing", "no line with '%s' within %.0f s%s", needle, seconds,
                 c.exited ? " (custosd exited)" : "");
            return -1;
        }
    }
}

// Echoes for that long, or until the child is gone when until_exit.
void idle(Child& c, double seconds, bool until_exit = false) {
    double until = uptime() + seconds;
    while (uptime() < until) {
        if (!pump(c, 100) && until_exit) {
            return;
        }
    }
}

std::string exit_text(int status) {
    char text[64];
    if (WIFEXITED(status)) {
        std::snprintf(text, sizeof text, "exit %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        std::snprintf(text, sizeof text, "signal %d", WTERMSIG(status));
    } else {
        std::snprintf(text, sizeof text, "status %d", status);
    }
    return text;
}

const std::vector<std::string> base_env = {"PATH=/bin:/sbin", "HOME=/", "TERM=dumb"};

bool start_custosd(Child& c, const char* config) {
    ::mkdir("/run/custosd", 0755);
    ::chdir("/run/custosd");
    return spawn(c, {"/bin/custosd", "--config", config}, base_env);
}

void expect_reset(Child& c, double timeout) {
    mark("awaiting-reset", "within %.0f s", 4 * timeout + 10);
    idle(c, 4 * timeout + 10);
    mark("no-reset", "the board is still up");
}

void scenario_starve(double timeout) {
    Child c;
    if (!start_custosd(c, "/board/starve.ini")) {
        return;
    }
    wait_line(c, "WatchdogOpened", 30);
    if (wait_line(c, "WatchdogStarving", 60) >= 0) {
        mark("starving", "custosd shut the gate");
        expect_reset(c, timeout);
    }
}

void scenario_kill(double timeout) {
    Child c;
    if (!start_custosd(c, "/board/kill.ini")) {
        return;
    }
    wait_line(c, "PreviousBoot", 30);
    if (wait_line(c, "WatchdogOpened", 30) < 0) {
        return;
    }
    idle(c, timeout);
    if (c.exited) {
        mark("custosd-gone", "%s before the SIGKILL", exit_text(c.status).c_str());
        return;
    }
    mark("sigkill", "custosd pid %d", c.pid);
    ::kill(c.pid, SIGKILL);
    expect_reset(c, timeout);
}

void scenario_orderly(double timeout) {
    Child c;
    if (!start_custosd(c, "/board/orderly.ini")) {
        return;
    }
    wait_line(c, "PreviousBoot", 30);
    if (wait_line(c, "WatchdogOpened", 30) < 0) {
        return;
    }
    mark("feeding", "for %.0f s", 3 * timeout);
    idle(c, 3 * timeout);
    if (c.exited) {
        mark("custosd-gone", "%s while feeding", exit_text(c.status).c_str());
        return;
    }
    mark("sigterm", "custosd pid %d", c.pid);
    ::kill(c.pid, SIGTERM);
    wait_line(c, "WatchdogDisarmed", 30);
    idle(c, 30, true);
    mark("custosd-exit", "%s", c.exited ? exit_text(c.status).c_str() : "still running");
    mark("waiting", "%.0f s after the stop (no reset expected)", 2 * timeout);
    idle(c, 2 * timeout);
    mark("survived", "no reset %.0f s after the orderly stop", 2 * timeout);
}

long pss_kb(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    std::string text = read_file(path);
    std::size_t at = text.find("\nPss:");
    return at == std::string::npos ? -1 : std::strtol(text.c_str() + at + 5, nullptr, 10);
}

// /board/suites: one test binary a line, `NAME SECONDS [VAR=VALUE...] PATH
// [ARGS...]`.
void run_suites() {
    for (const std::string& line : split(read_file("/board/suites"), '\n')) {
        std::vector<std::string> words = split(line, ' ');
        if (words.size() < 3 || words[0][0] == '#') {
            continue;
        }
        std::string name = words[0];
        double limit = std::strtod(words[1].c_str(), nullptr);
        std::vector<std::string> env = base_env;
        std::size_t i = 2;
        for (; i < words.size() && words[i].find('=') != std::string::npos; ++i) {
            env.push_back(words[i]);
        }
        std::vector<std::string> argv(words.begin() + static_cast<long>(i), words.end());
        Child c;
        c.tag = "suite";
        double began = uptime();
        mark("suite-start", "%s", name.c_str());
        if (!spawn(c, argv, env)) {
            mark("suite", "%s fail spawn 0", name.c_str());
            continue;
        }
        idle(c, limit, true);
        if (!c.exited) {
            ::kill(-c.pid, SIGKILL);
            ::kill(c.pid, SIGKILL);
            idle(c, 5, true);
            mark("suite", "%s fail timeout-%.0fs %.1f", name.c_str(), limit, uptime() - began);
            continue;
        }
        const char* verdict = "fail";
        if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) {
            verdict = "pass";
        } else if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 77) {
            verdict = "skip";
        }
        mark("suite", "%s %s %s %.1f", name.c_str(), verdict, exit_text(c.status).c_str(),
             uptime() - began);
    }
}

void scenario_suites() {
    Child c;
    if (!start_custosd(c, "/board/appliance.ini")) {
        return;
    }
    wait_line(c, "PreviousBoot", 30);
    int at = wait_line(c, "WatchdogOpened", 30);
    if (at >= 0) {
        mark("first-feed", "%.3f", uptime());
    }
    idle(c, 5);
    long pss = pss_kb(c.pid);
    mark("pss", "%ld kB", pss);
    ::kill(c.pid, SIGTERM);
    wait_line(c, "WatchdogDisarmed", 30);
    idle(c, 30, true);
    mark("custosd-exit", "%s", c.exited ? exit_text(c.status).c_str() : "still running");

    Child p;
    if (spawn(p, {"/bin/custosd", "--platform"}, base_env)) {
        idle(p, 30, true);
        mark("platform", "%s", p.exited ? exit_text(p.status).c_str() : "hung");
    }
    run_suites();
    mark("suites-done", "all listed suites ran");
}

// custos.scenario=A,B: one qemu run without -no-reboot, so that a watchdog
// reset reboots the same emulated machine (the i6300esb keeps its "this reset
// was mine" flag only there): each boot takes the next step, counted on the
// state disk.
std::string this_step(const std::string& scenario) {
    std::vector<std::string> steps = split(scenario, ',');
    if (steps.size() < 2) {
        return scenario;
    }
    std::string done = read_file("/state/board.steps");
    std::size_t step = split(done, '\n').size();
    int fd = ::open("/state/board.steps", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    std::string line = (step < steps.size() ? steps[step] : std::string("over")) + "\n";
    if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        ::fsync(fd) != 0) {
        mark("step-failed", "/state/board.steps: %s", std::strerror(errno));
    }
    if (fd >= 0) {
        ::close(fd);
    }
    if (step >= steps.size()) {
        mark("steps-over", "every step of %s ran; this boot was not expected", scenario.c_str());
        power_off("steps over");
    }
    mark("step", "%zu of %zu: %s", step + 1, steps.size(), steps[step].c_str());
    return steps[step];
}

} // namespace

int main() {
    mount_one("proc", "/proc", "proc", nullptr);
    mount_one("sysfs", "/sys", "sysfs", nullptr);
    mount_one("devtmpfs", "/dev", "devtmpfs", nullptr);
    console();
    mount_one("tmpfs", "/tmp", "tmpfs", "mode=1777");
    mount_one("tmpfs", "/run", "tmpfs", "mode=0755");
    mount_one("cgroup2", "/sys/fs/cgroup", "cgroup2", nullptr);
    ::setenv("PATH", "/bin:/sbin", 1);

    std::string cmdline = read_file("/proc/cmdline");
    std::string scenario = cmdline_value(cmdline, "scenario");
    double timeout = std::strtod(cmdline_value(cmdline, "timeout").c_str(), nullptr);
    unsigned bound =
        static_cast<unsigned>(std::strtoul(cmdline_value(cmdline, "bound").c_str(), nullptr, 10));
    if (timeout <= 0) {
        timeout = 4;
    }
    if (bound == 0) {
        bound = 120;
    }
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    ::sigaction(SIGALRM, &sa, nullptr);
    ::alarm(bound);
    mark("init", "scenario %s, watchdog timeout %.0f s, bound %u s", scenario.c_str(), timeout,
         bound);

    loopback_up();
    bool ready = load_modules() && mount_state();
    mark(ready ? "ready" : "setup-failed", "modules and /state");
    if (!ready) {
        power_off("setup failed");
    }
    scenario = this_step(scenario);
    if (scenario == "starve") {
        scenario_starve(timeout);
    } else if (scenario == "kill") {
        scenario_kill(timeout);
    } else if (scenario == "orderly") {
        scenario_orderly(timeout);
    } else if (scenario == "suites") {
        scenario_suites();
    } else {
        mark("unknown-scenario", "'%s'", scenario.c_str());
    }
    power_off("scenario over");
}
