// The watchdog ports (ports/null, ports/linux, ports/gpio), the sysfs LED
// and the board profiles (ports/boards).
//
// meson runs this binary three times:
//   --suite=ports     runs anywhere: the null port, the board table and its
//                     detection, the LED against a directory laid out like
//                     /sys/class/leds/X, and the error paths of the kernel
//                     and GPIO ports (a missing node, /dev/null as a
//                     "watchdog", a missing GPIO chip).
//   --suite=softdog   the kernel port against the real softdog: root only,
//                     and only with soft_noboot=1 (loaded here with it, or
//                     already loaded with it: never risk a reboot). Exits
//                     77 (a skip) otherwise.
//   --suite=gpio-sim  the GPIO port against a gpio-sim chip made through
//                     configfs: root, configfs and the gpio-sim module.
//                     Exits 77 otherwise.
#define DOCTEST_CONFIG_IMPLEMENT
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <custos/watchdog.hpp>

#include "doctest.hpp"
#include "ports/boards/boards.hpp"
#include "ports/gpio/watchdog.hpp"
#include "ports/linux/led.hpp"
#include "ports/linux/watchdog.hpp"
#include "ports/null/watchdog.hpp"

using namespace custos;
using namespace custos::ports;

namespace {

// Cases that ran: a suite none of whose cases ran exits 77, never 0.
int g_ran = 0;

std::string slurp(const std::string& path) {
    std::string out;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return out;
    }
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

bool put(const std::string& path, std::string_view text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return false;
    }
    const bool ok =
        text.empty() || ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// Runs argv; true when it exits 0. Output goes to this test's stdout.
bool run(std::vector<const char*> argv) {
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::execvp(argv[0], const_cast<char* const*>(argv.data()));
        ::_exit(127);
    }
    if (pid < 0) {
        return false;
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// A temporary directory, removed (with what is in it) at the end.
struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/custos-wdports-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~temp_dir() { remove_tree(path); }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    static void remove_tree(const std::string& p) {
        if (DIR* d = ::opendir(p.c_str())) {
            while (dirent* e = ::readdir(d)) {
                const std::string name = e->d_name;
                if (name == "." || name == "..") {
                    continue;
                }
                const std::string child = p + "/" + name;
                struct stat st {};
                if (::lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
                    remove_tree(child);
                } else {
                    ::unlink(child.c_str());
                }
            }
            ::closedir(d);
        }
        ::rmdir(p.c_str());
    }
    std::string operator/(std::string_view name) const { return path + "/" + std::string(name); }
};

// "Not an ioctl of this device": ENOTTY from the kernel; ENOSYS under
// qemu-user, which refuses the ioctls it does not translate.
bool not_its_ioctl(int err) {
    return err == ENOTTY || err == ENOSYS;
}

std::string describe(const Error& e) {
    char buf[512];
    e.format(buf, sizeof buf);
    return buf;
}

} // namespace

// ---------------------------------------------------------------- null ---

TEST_SUITE("ports") {

    TEST_CASE("null port: every call, and both close outcomes") {
        ++g_ran;
        null_watchdog wd;
        CHECK(!wd.is_open());
        CHECK(wd.path() == "null");
        CHECK(wd.keepalive().error().reason() == Reason::watchdog_feed_failed);
        REQUIRE(wd.open().has_value());
        CHECK(wd.is_open());
        auto info = wd.info();
        REQUIRE(info.has_value());
        CHECK(std::string_view(info->identity) == "null");
        CHECK(info->options == (wdiof_settimeout | wdiof_magicclose | wdiof_keepaliveping));
        CHECK(*wd.set_timeout(7) == 7);
        CHECK(*wd.timeout() == 7);
        CHECK(*wd.set_timeout(1) == 1);
        CHECK(*wd.set_timeout(65535) == 65535);
        CHECK(wd.set_timeout(0).error().reason() == Reason::invalid_argument);
        CHECK(wd.set_timeout(65536).error().sys_errno() == EINVAL);
        CHECK(*wd.timeout() == 65535);
        CHECK(wd.max_timeout().error().reason() == Reason::watchdog_unsupported);
        CHECK(wd.set_pretimeout(3).error().reason() == Reason::watchdog_unsupported);
        CHECK(*wd.boot_status() == 0);
        wd.set_boot_status(wdiof_cardreset);
        CHECK(*wd.boot_status() == wdiof_cardreset);
        CHECK(*wd.nowayout() == false);
        CHECK(wd.keepalives() == 0);
        CHECK(wd.keepalive().has_value());
        CHECK(wd.keepalive().has_value());
        CHECK(wd.keepalives() == 2);
        wd.boot_good();
        CHECK(wd.close(true) == close_outcome::disarmed);
        CHECK(wd.closed_with_magic());
        CHECK(!wd.is_open());
        CHECK(wd.close(false) == close_outcome::disarmed); // idempotent
        REQUIRE(wd.open().has_value());
        CHECK(wd.close(false) == close_outcome::left_armed);
        CHECK(!wd.closed_with_magic());
        CHECK(wd.close(true) == close_outcome::left_armed);
        CHECK(wd.keepalive().error().reason() == Reason::watchdog_feed_failed);
    }

    TEST_CASE("null port: a close before any open disarms nothing") {
        ++g_ran;
        null_watchdog wd;
        CHECK(wd.close(false) == close_outcome::disarmed);
    }

    // -------------------------------------------------------------- boards ---

    TEST_CASE("boards: every profile is sane") {
        ++g_ran;
        auto all = boards();
        REQUIRE(all.size() >= 5);
        CHECK(all[0].name == "generic");
        std::set<std::string_view> names;
        for (const board_profile& b : all) {
            CAPTURE(b.name);
            CHECK(!b.name.empty());
            CHECK(b.name != "auto");
            CHECK(names.insert(b.name).second);
            CHECK(!b.description.empty());
            CHECK(b.device.substr(0, 5) == "/dev/");
            CHECK(b.default_timeout_s > 0);
            if (b.max_timeout_s > 0) {
                CHECK(b.default_timeout_s <= b.max_timeout_s);
            }
            CHECK(b.pretimeout_s < b.default_timeout_s);
            CHECK((b.gpio_line < 0 || !b.gpio_chip.empty()));
            if (&b != &all[0]) {
                CHECK(!b.compatible[0].empty()); // else never detected
            }
            CHECK(find_board(b.name) == &b);
        }
        for (std::string_view want : {"generic", "raspberrypi", "imx", "sunxi", "qemu-virt"}) {
            CHECK(find_board(want) != nullptr);
        }
        CHECK(find_board("raspberrypi")->max_timeout_s == 15);
        CHECK(find_board("raspberrypi")->led == "ACT");
        CHECK(find_board("imx")->max_timeout_s == 128);
        CHECK(find_board("imx")->default_timeout_s == 60);
        CHECK(find_board("sunxi")->max_timeout_s == 16);
        CHECK(find_board("qemu-virt")->max_timeout_s == 2046);
        CHECK(find_board("qemu-virt")->driver == "i6300esb");
        CHECK(find_board("generic")->max_timeout_s == 0);
        CHECK(find_board("generic")->device == "/dev/watchdog0");
        CHECK(find_board("nosuch") == nullptr);
        CHECK(find_board("") == nullptr);
    }

    TEST_CASE("boards: detection from the device tree's compatible list") {
        ++g_ran;
        temp_dir dir;
        struct sample {
            const char* what;
            std::string text;
            std::string_view want;
        };
        using namespace std::string_literals;
        const sample samples[] = {
            {"raspberry pi 4", "raspberrypi,4-model-b\0brcm,bcm2711\0"s, "raspberrypi"},
            {"raspberry pi 5 by its SoC only", "acme,pi5-carrier\0brcm,bcm2712\0"s, "raspberrypi"},
            {"raspberry pi 3", "raspberrypi,3-model-b\0brcm,bcm2837\0"s, "raspberrypi"},
            {"i.MX8MQ EVK", "fsl,imx8mq-evk\0fsl,imx8mq\0"s, "imx"},
            {"allwinner h3", "friendlyarm,nanopi-neo\0allwinner,sun8i-h3\0"s, "sunxi"},
            {"qemu virt", "linux,dummy-virt\0"s, "qemu-virt"},
            {"an unknown board", "acme,widget\0acme,soc\0"s, "generic"},
            {"an empty file", ""s, "generic"},
            {"no trailing NUL", "fsl,imx8mq-evk\0fsl,imx8mq"s, "imx"},
            {"no trailing NUL, one string", "linux,dummy-virt"s, "qemu-virt"},
            {"a prefix cut short does not match", "fsl,im"s, "generic"},
            {"empty strings between", "\0\0allwinner,sun50i-a64\0"s, "sunxi"},
        };
        for (const sample& s : samples) {
            CAPTURE(s.what);
            const std::string file = dir / "compatible";
            REQUIRE(put(file, s.text));
            CHECK(detect_board(file.c_str()).name == s.want);
        }
        CHECK(detect_board((dir / "missing").c_str()).name == "generic");
        // A file longer than the bounded read: what fits is matched.
        std::string big(5000, 'x');
        big += '\0';
        big += "fsl,imx6q";
        REQUIRE(put(dir / "big", big));
        CHECK(detect_board((dir / "big").c_str()).name == "generic");
        std::string early = "allwinner,sun8i-h3"s + '\0' + std::string(5000, 'y');
        REQUIRE(put(dir / "early", early));
        CHECK(detect_board((dir / "early").c_str()).name == "sunxi");
        // A directory: read fails, generic.
        CHECK(detect_board(dir.path.c_str()).name == "generic");
    }

    TEST_CASE("boards: choose_board") {
        ++g_ran;
        temp_dir dir;
        const std::string file = dir / "compatible";
        using namespace std::string_literals;
        REQUIRE(put(file, "fsl,imx8mq-evk\0fsl,imx8mq\0"s));
        const board_profile* autod = choose_board("auto", file.c_str());
        REQUIRE(autod != nullptr);
        CHECK(autod->name == "imx");
        const board_profile* imx = choose_board("imx", file.c_str());
        REQUIRE(imx != nullptr);
        CHECK(imx->name == "imx");
        REQUIRE(choose_board("sunxi", file.c_str()) != nullptr);
        CHECK(choose_board("sunxi", file.c_str())->name == "sunxi"); // the name wins
        CHECK(choose_board("nosuch", file.c_str()) == nullptr);
        // The public check a config reader makes before init.
        CHECK(custos::watchdog_board_known(""));
        CHECK(custos::watchdog_board_known("auto"));
        CHECK(custos::watchdog_board_known("raspberrypi"));
        CHECK_FALSE(custos::watchdog_board_known("nosuch"));
        // "" is the build's default: "auto" detects, a name is that board.
        const board_profile* dflt = choose_board("", file.c_str());
        REQUIRE(dflt != nullptr);
        if (default_board() == "auto") {
            CHECK(dflt->name == "imx");
        } else {
            CHECK(dflt->name == default_board());
        }
        CHECK(choose_board("auto", (dir / "missing").c_str())->name == "generic");
    }

    // ------------------------------------------------- linux: error paths ---

    TEST_CASE("linux port: a missing node is watchdog_unavailable with ENOENT") {
        ++g_ran;
        linux_watchdog wd;
        wd.configure("/dev/custos-no-such-watchdog");
        CHECK(wd.path() == "/dev/custos-no-such-watchdog");
        auto r = wd.open();
        REQUIRE(!r.has_value());
        CHECK(r.error().reason() == Reason::watchdog_unavailable);
        CHECK(r.error().sys_errno() == ENOENT);
        CHECK(r.error().subject() == "/dev/custos-no-such-watchdog");
        CHECK(!wd.is_open());
        // Nothing open: every call fails cleanly.
        CHECK(wd.info().error().sys_errno() == EBADF);
        CHECK(wd.set_timeout(7).error().reason() == Reason::watchdog_unavailable);
        CHECK(wd.timeout().error().sys_errno() == EBADF);
        CHECK(wd.max_timeout().error().sys_errno() == EBADF);
        CHECK(wd.boot_status().error().sys_errno() == EBADF);
        CHECK(wd.nowayout().error().sys_errno() == EBADF);
        CHECK(wd.keepalive().error().reason() == Reason::watchdog_feed_failed);
        CHECK(wd.close(true) == close_outcome::disarmed);
    }

    TEST_CASE("linux port: no path, or one too long, is invalid_argument") {
        ++g_ran;
        linux_watchdog wd;
        CHECK(wd.open().error().reason() == Reason::invalid_argument);
        const std::string longer(200, 'w');
        wd.configure(longer);
        CHECK(wd.open().error().reason() == Reason::invalid_argument);
    }

    TEST_CASE("linux port: /dev/null is no watchdog: the ioctls fail with a reason") {
        ++g_ran;
        temp_dir sys; // no sysfs attributes at all
        linux_watchdog wd;
        wd.configure("/dev/null", sys.path);
        REQUIRE(wd.open().has_value());
        CHECK(wd.is_open());
        CHECK(wd.open().has_value()); // already open: nothing
        auto info = wd.info();
        REQUIRE(!info.has_value());
        INFO(describe(info.error()));
        CHECK(info.error().reason() == Reason::watchdog_unavailable);
        CHECK(not_its_ioctl(info.error().sys_errno()));
        CHECK(not_its_ioctl(wd.set_timeout(7).error().sys_errno()));
        CHECK(not_its_ioctl(wd.timeout().error().sys_errno()));
        CHECK(not_its_ioctl(wd.set_pretimeout(1).error().sys_errno()));
        CHECK(not_its_ioctl(wd.boot_status().error().sys_errno()));
        CHECK(wd.max_timeout().error().reason() == Reason::watchdog_unsupported);
        CHECK(wd.nowayout().error().reason() == Reason::watchdog_unsupported);
        auto k = wd.keepalive();
        REQUIRE(!k.has_value());
        CHECK(k.error().reason() == Reason::watchdog_feed_failed);
        CHECK(not_its_ioctl(k.error().sys_errno()));
        const close_outcome first = wd.close(true);
        CHECK(!wd.is_open());
        CHECK(wd.close(false) == first); // idempotent
        CHECK(wd.keepalive().error().sys_errno() == EBADF);
    }

    TEST_CASE("linux port: max_timeout and nowayout come from the device's sysfs directory") {
        ++g_ran;
        // /dev/null's device number stands for a watchdog's: the port finds
        // <root>/dev/char/MAJ:MIN from fstat, as for /dev/watchdogN.
        struct stat st {};
        REQUIRE(::stat("/dev/null", &st) == 0);
        temp_dir sys;
        const std::string dev = sys / "dev";
        const std::string chr = dev + "/char";
        const std::string node =
            chr + "/" + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
        REQUIRE(::mkdir(dev.c_str(), 0755) == 0);
        REQUIRE(::mkdir(chr.c_str(), 0755) == 0);
        REQUIRE(::mkdir(node.c_str(), 0755) == 0);
        REQUIRE(put(node + "/max_timeout", "65535\n"));
        REQUIRE(put(node + "/nowayout", "0\n"));
        linux_watchdog wd;
        wd.configure("/dev/null", sys.path);
        REQUIRE(wd.open().has_value());
        CHECK(*wd.max_timeout() == 65535);
        CHECK(*wd.nowayout() == false);
        REQUIRE(put(node + "/max_timeout", "0\n"));
        CHECK(wd.max_timeout().error().reason() == Reason::watchdog_unsupported);
        REQUIRE(put(node + "/max_timeout", "garbage\n"));
        CHECK(wd.max_timeout().error().reason() == Reason::watchdog_unsupported);
        REQUIRE(put(node + "/nowayout", "1\n"));
        CHECK(*wd.nowayout() == true);
        // nowayout wins over the magic 'V'.
        CHECK(wd.close(true) == close_outcome::left_armed);
        CHECK(wd.close(true) == close_outcome::left_armed);
        // Without nowayout, a 'V' that was written disarms.
        REQUIRE(put(node + "/nowayout", "0\n"));
        REQUIRE(wd.open().has_value());
        CHECK(wd.close(true) == close_outcome::disarmed);
        // Without it, the driver's options are unknown here (GETSUPPORT
        // failed): counted as magic close, so the watchdog runs on.
        REQUIRE(wd.open().has_value());
        CHECK(wd.close(false) == close_outcome::left_armed);
    }

    // --------------------------------------------------- gpio: error paths ---

    TEST_CASE("gpio port: a missing chip, no line, no GPIO chip: gpio_unavailable") {
        ++g_ran;
        gpio_watchdog wd;
        wd.configure({.chip = "/dev/custos-no-such-gpiochip", .line = 3});
        CHECK(wd.path() == "/dev/custos-no-such-gpiochip:3");
        auto r = wd.open();
        REQUIRE(!r.has_value());
        CHECK(r.error().reason() == Reason::gpio_unavailable);
        CHECK(r.error().sys_errno() == ENOENT);
        CHECK(!wd.is_open());
        CHECK(wd.keepalive().error().reason() == Reason::watchdog_feed_failed);
        CHECK(wd.close(true) == close_outcome::disarmed);

        gpio_watchdog noline;
        noline.configure({.chip = "/dev/gpiochip0"});
        CHECK(noline.open().error().reason() == Reason::gpio_unavailable);
        CHECK(noline.open().error().sys_errno() == EINVAL);

        gpio_watchdog toolong;
        const std::string longer = "/dev/" + std::string(200, 'g');
        toolong.configure({.chip = longer, .line = 1});
        CHECK(toolong.open().error().reason() == Reason::gpio_unavailable);
        CHECK(toolong.open().error().sys_errno() == EINVAL);

        gpio_watchdog notchip; // not a GPIO chip: the request ioctl fails
        notchip.configure({.chip = "/dev/null", .line = 0, .enable_line = 1});
        auto n = notchip.open();
        REQUIRE(!n.has_value());
        CHECK(n.error().reason() == Reason::gpio_unavailable);
        CHECK(not_its_ioctl(n.error().sys_errno()));
        CHECK(!notchip.is_open());
    }

    TEST_CASE("gpio port: what an external chip cannot do is unsupported") {
        ++g_ran;
        gpio_watchdog wd;
        wd.configure({.chip = "/dev/gpiochip0", .line = 1});
        auto info = wd.info();
        REQUIRE(info.has_value());
        CHECK(std::string_view(info->identity) == "gpio watchdog");
        CHECK(info->options == wdiof_keepaliveping);
        CHECK(wd.set_timeout(10).error().reason() == Reason::watchdog_unsupported);
        CHECK(wd.max_timeout().error().reason() == Reason::watchdog_unsupported);
        CHECK(wd.set_pretimeout(1).error().reason() == Reason::watchdog_unsupported);
        CHECK(wd.timeout().error().reason() == Reason::watchdog_unsupported);
        CHECK(*wd.boot_status() == 0);
        CHECK(wd.nowayout().error().reason() == Reason::watchdog_unsupported);
        wd.configure({.chip = "/dev/gpiochip0", .line = 1, .timeout_s = 2});
        CHECK(*wd.timeout() == 2);
    }

    // ----------------------------------------------------------------- LED ---

    TEST_CASE("LED: lit, dark and blinking write what they should, only on change") {
        ++g_ran;
        temp_dir root;
        const std::string led = root / "status";
        REQUIRE(::mkdir(led.c_str(), 0755) == 0);
        for (const char* f : {"brightness", "trigger", "delay_on", "delay_off"}) {
            REQUIRE(put(led + "/" + f, ""));
        }
        REQUIRE(put(led + "/max_brightness", "255\n"));
        sysfs_led l;
        l.configure("status", root.path.c_str());
        l.set(led_state::lit);
        CHECK(slurp(led + "/brightness") == "255");
        CHECK(slurp(led + "/trigger") == "none"); // a default trigger removed first
        const auto after_lit = l.writes();
        l.set(led_state::lit);
        CHECK(l.writes() == after_lit); // no change, no write
        // max_brightness is read once.
        REQUIRE(put(led + "/max_brightness", "1\n"));
        l.set(led_state::dark);
        CHECK(slurp(led + "/brightness") == "0");
        l.set(led_state::lit);
        CHECK(slurp(led + "/brightness") == "255");
        REQUIRE(put(led + "/trigger", ""));
        l.set(led_state::blinking);
        CHECK(slurp(led + "/trigger") == "timer");
        CHECK(slurp(led + "/delay_on") == "500");
        CHECK(slurp(led + "/delay_off") == "500");
        const auto after_blink = l.writes();
        l.set(led_state::blinking);
        CHECK(l.writes() == after_blink);
        // From blinking to lit: the trigger goes first (a brightness under
        // the timer trigger would only change the blink's).
        l.set(led_state::lit);
        CHECK(slurp(led + "/trigger") == "none");
        CHECK(slurp(led + "/brightness") == "255");
        l.set(led_state::dark);
        CHECK(slurp(led + "/brightness") == "0");
        CHECK(l.failures() == 0);
    }

    TEST_CASE("LED: a missing LED counts one failure and is left alone") {
        ++g_ran;
        temp_dir root;
        sysfs_led l;
        l.configure("nosuch", root.path.c_str());
        l.set(led_state::dark);
        CHECK(l.failures() == 1);
        l.set(led_state::lit);
        l.set(led_state::blinking);
        CHECK(l.failures() == 1);
        CHECK(l.writes() == 0);
        // Appearing later changes nothing: given up.
        const std::string led = root / "nosuch";
        REQUIRE(::mkdir(led.c_str(), 0755) == 0);
        REQUIRE(put(led + "/brightness", "7"));
        l.set(led_state::dark);
        CHECK(slurp(led + "/brightness") == "7");
        CHECK(l.failures() == 1);
    }

    TEST_CASE("LED: no timer trigger is one failure too; an empty name does nothing") {
        ++g_ran;
        temp_dir root;
        const std::string led = root / "act";
        REQUIRE(::mkdir(led.c_str(), 0755) == 0);
        REQUIRE(put(led + "/brightness", ""));
        REQUIRE(put(led + "/max_brightness", "1\n"));
        REQUIRE(put(led + "/trigger", ""));
        sysfs_led l; // delay_on/delay_off missing: as if "timer" were refused
        l.configure("act", root.path.c_str());
        l.set(led_state::lit);
        CHECK(slurp(led + "/brightness") == "1");
        l.set(led_state::blinking);
        CHECK(l.failures() == 1);
        l.set(led_state::dark);
        CHECK(slurp(led + "/brightness") == "1");
        CHECK(l.failures() == 1);

        sysfs_led none;
        none.configure("", root.path.c_str());
        none.set(led_state::lit);
        none.set(led_state::blinking);
        CHECK(none.failures() == 0);
        CHECK(none.writes() == 0);
    }

} // TEST_SUITE("ports")

// ------------------------------------------------------------- softdog ---

namespace {
std::string g_softdog_dev;   // "/dev/watchdogN"
std::string g_softdog_class; // "/sys/class/watchdog/watchdogN"
bool g_softdog_loaded_here = false;

// Why softdog cannot be used here, or "" when it can (g_softdog_* set).
std::string softdog_setup() {
    if (::geteuid() != 0) {
        return "not root: cannot open a watchdog or load softdog";
    }
    const std::string param = "/sys/module/softdog/parameters/soft_noboot";
    if (!exists("/sys/module/softdog")) {
        if (!run({"modprobe", "softdog", "soft_noboot=1"})) {
            return "modprobe softdog soft_noboot=1 failed (no module here)";
        }
        g_softdog_loaded_here = true;
    }
    // Never open a softdog that would reboot this machine.
    if (trimmed(slurp(param)) != "1") {
        return "softdog is loaded without soft_noboot=1 (" + param +
               "): opening it could reboot this machine";
    }
    DIR* d = ::opendir("/sys/class/watchdog");
    if (d == nullptr) {
        return "no /sys/class/watchdog (CONFIG_WATCHDOG_SYSFS?)";
    }
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.rfind("watchdog", 0) != 0) {
            continue;
        }
        const std::string dir = "/sys/class/watchdog/" + name;
        if (trimmed(slurp(dir + "/identity")) == "Software Watchdog") {
            g_softdog_class = dir;
            g_softdog_dev = "/dev/" + name;
        }
    }
    ::closedir(d);
    if (g_softdog_dev.empty()) {
        return "softdog is loaded but no /sys/class/watchdog/*/identity says Software Watchdog";
    }
    if (!exists(g_softdog_dev)) {
        return "no device node " + g_softdog_dev;
    }
    if (trimmed(slurp(g_softdog_class + "/state")) == "active") {
        return g_softdog_dev + " is already active (another process holds it)";
    }
    return "";
}
} // namespace

TEST_SUITE("softdog") {

    TEST_CASE("linux port against softdog (soft_noboot=1)") {
        ++g_ran;
        INFO(g_softdog_dev);
        linux_watchdog wd;
        wd.configure(g_softdog_dev);
        auto o = wd.open();
        if (!o) {
            INFO(describe(o.error()));
            REQUIRE(o.has_value());
        }
        CHECK(trimmed(slurp(g_softdog_class + "/state")) == "active");
        // A second opener is refused while this one holds it.
        linux_watchdog second;
        second.configure(g_softdog_dev);
        auto busy = second.open();
        REQUIRE(!busy.has_value());
        CHECK(busy.error().reason() == Reason::watchdog_busy);

        auto info = wd.info();
        REQUIRE(info.has_value());
        CHECK(std::string_view(info->identity) == "Software Watchdog");
        CHECK((info->options & wdiof_settimeout) != 0);
        CHECK((info->options & wdiof_magicclose) != 0);
        CHECK((info->options & wdiof_keepaliveping) != 0);
        auto t = wd.set_timeout(7);
        REQUIRE(t.has_value());
        CHECK(*t == 7);
        CHECK(*wd.timeout() == 7);
        CHECK(trimmed(slurp(g_softdog_class + "/timeout")) == "7");
        auto too_big = wd.set_timeout(70000);
        REQUIRE(!too_big.has_value());
        CHECK(too_big.error().reason() == Reason::invalid_argument);
        CHECK(*wd.timeout() == 7);
        auto mx = wd.max_timeout();
        if (mx) {
            CHECK(*mx == 65535);
        } else {
            // Kernels before max_timeout in sysfs.
            MESSAGE("no max_timeout in sysfs: " << describe(mx.error()));
            CHECK(mx.error().reason() == Reason::watchdog_unsupported);
        }
        CHECK(wd.keepalive().has_value());
        CHECK(wd.keepalive().has_value());
        CHECK(wd.boot_status().has_value());
        auto pt = wd.set_pretimeout(2);
        if (pt) {
            CHECK(*pt == 2);
            CHECK(wd.set_pretimeout(0).has_value());
        } else {
            CHECK(pt.error().reason() == Reason::watchdog_unsupported);
        }
        auto nwo = wd.nowayout();
        REQUIRE(nwo.has_value());
        const close_outcome out = wd.close(true);
        if (*nwo) {
            MESSAGE("softdog has nowayout set: it stays armed (soft_noboot: no reboot)");
            CHECK(out == close_outcome::left_armed);
            CHECK(trimmed(slurp(g_softdog_class + "/state")) == "active");
        } else {
            CHECK(out == close_outcome::disarmed);
            CHECK(trimmed(slurp(g_softdog_class + "/state")) == "inactive");
        }
        CHECK(wd.close(true) == out);
        CHECK(!wd.is_open());
    }

} // TEST_SUITE("softdog")

// ------------------------------------------------------------ gpio-sim ---

namespace {
std::string g_sim_dir;  // /sys/kernel/config/gpio-sim/custos-test-PID
std::string g_sim_chip; // /dev/gpiochipN
std::string g_sim_sys;  // /sys/devices/platform/<dev_name>/<chip_name>

std::string gpio_sim_setup() {
    if (::geteuid() != 0) {
        return "not root: cannot make a gpio-sim chip";
    }
    const std::string cfg = "/sys/kernel/config";
    if (!exists(cfg + "/gpio-sim")) {
        run({"modprobe", "gpio-sim"});
        if (!exists(cfg)) {
            return "no configfs at /sys/kernel/config";
        }
        if (!exists(cfg + "/gpio-sim")) {
            return "no gpio-sim in configfs (module gpio-sim missing?)";
        }
    }
    g_sim_dir = cfg + "/gpio-sim/custos-test-" + std::to_string(::getpid());
    if (::mkdir(g_sim_dir.c_str(), 0755) != 0) {
        return "cannot create " + g_sim_dir + ": " + std::strerror(errno);
    }
    const std::string bank = g_sim_dir + "/bank0";
    if (::mkdir(bank.c_str(), 0755) != 0 || !put(bank + "/num_lines", "8") ||
        !put(g_sim_dir + "/live", "1")) {
        return "cannot set up a gpio-sim bank under " + g_sim_dir;
    }
    const std::string chip = trimmed(slurp(bank + "/chip_name"));
    const std::string dev = trimmed(slurp(g_sim_dir + "/dev_name"));
    if (chip.empty() || dev.empty()) {
        return "gpio-sim gave no chip_name/dev_name";
    }
    g_sim_chip = "/dev/" + chip;
    g_sim_sys = "/sys/devices/platform/" + dev + "/" + chip;
    if (!exists(g_sim_chip) || !exists(g_sim_sys + "/sim_gpio0/value")) {
        return "gpio-sim chip " + g_sim_chip + " has no node or no sim_gpio values";
    }
    return "";
}

void gpio_sim_teardown() {
    if (g_sim_dir.empty()) {
        return;
    }
    put(g_sim_dir + "/live", "0");
    ::rmdir((g_sim_dir + "/bank0").c_str());
    ::rmdir(g_sim_dir.c_str());
}

// The physical value gpio-sim sees on a line ("0"/"1").
std::string sim_value(int line) {
    return trimmed(slurp(g_sim_sys + "/sim_gpio" + std::to_string(line) + "/value"));
}
} // namespace

TEST_SUITE("gpio-sim") {

    TEST_CASE("gpio port against gpio-sim: feed toggles, boot_good enables, magic disarms") {
        ++g_ran;
        gpio_watchdog wd;
        wd.configure({.chip = g_sim_chip, .line = 3, .enable_line = 5, .timeout_s = 2});
        auto o = wd.open();
        if (!o) {
            INFO(describe(o.error()));
            REQUIRE(o.has_value());
        }
        CHECK(sim_value(3) == "0");
        CHECK(sim_value(5) == "0"); // enable requested inactive
        // A second holder of the feed line is refused.
        gpio_watchdog other;
        other.configure({.chip = g_sim_chip, .line = 3});
        auto busy = other.open();
        REQUIRE(!busy.has_value());
        CHECK(busy.error().reason() == Reason::gpio_unavailable);
        CHECK(busy.error().sys_errno() == EBUSY);

        REQUIRE(wd.keepalive().has_value());
        CHECK(wd.level());
        CHECK(sim_value(3) == "1");
        REQUIRE(wd.keepalive().has_value());
        CHECK(sim_value(3) == "0");
        REQUIRE(wd.keepalive().has_value());
        CHECK(sim_value(3) == "1");
        CHECK(sim_value(5) == "0");
        wd.boot_good();
        CHECK(wd.enabled());
        CHECK(wd.enable_errno() == 0);
        CHECK(sim_value(5) == "1");
        wd.boot_good(); // once
        CHECK(sim_value(5) == "1");
        CHECK(wd.close(true) == close_outcome::disarmed);
        CHECK(!wd.is_open());
        CHECK(sim_value(5) == "0");
        CHECK(wd.close(true) == close_outcome::disarmed);
        // Released: another request may have the lines now.
        REQUIRE(other.open().has_value());
        CHECK(other.close(false) == close_outcome::left_armed);
    }

    TEST_CASE("gpio port against gpio-sim: active low, and no enable line stays armed") {
        ++g_ran;
        gpio_watchdog wd;
        wd.configure({.chip = g_sim_chip, .line = 4, .active_low = true});
        auto o = wd.open();
        if (!o) {
            INFO(describe(o.error()));
            REQUIRE(o.has_value());
        }
        CHECK(sim_value(4) == "1"); // logical 0 on an active-low line
        REQUIRE(wd.keepalive().has_value());
        CHECK(sim_value(4) == "0");
        wd.boot_good(); // no enable line: nothing
        CHECK(!wd.enabled());
        CHECK(wd.close(true) == close_outcome::left_armed);

        gpio_watchdog killed;
        killed.configure({.chip = g_sim_chip, .line = 6, .enable_line = 7});
        REQUIRE(killed.open().has_value());
        killed.boot_good();
        CHECK(sim_value(7) == "1");
        // Without the magic nothing is driven: the chip is left running.
        CHECK(killed.close(false) == close_outcome::left_armed);
    }

} // TEST_SUITE("gpio-sim")

int main(int argc, char** argv) {
    std::string suite;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a.substr(0, 8) == "--suite=") {
            suite = std::string(a.substr(8));
        } else {
            args.push_back(argv[i]);
        }
    }
    if (suite != "ports" && suite != "softdog" && suite != "gpio-sim") {
        std::printf("usage: %s --suite=ports|softdog|gpio-sim [doctest options]\n", argv[0]);
        return 2;
    }
    if (suite == "softdog") {
        const std::string why = softdog_setup();
        if (!why.empty()) {
            std::printf("SKIP: %s\n", why.c_str());
            return 77;
        }
        std::printf("softdog at %s (%s)\n", g_softdog_dev.c_str(), g_softdog_class.c_str());
    }
    if (suite == "gpio-sim") {
        const std::string why = gpio_sim_setup();
        if (!why.empty()) {
            gpio_sim_teardown();
            std::printf("SKIP: %s\n", why.c_str());
            return 77;
        }
        std::printf("gpio-sim chip %s (%s)\n", g_sim_chip.c_str(), g_sim_sys.c_str());
    }
    doctest::Context ctx(static_cast<int>(args.size()), args.data());
    ctx.setOption("test-suite", suite.c_str());
    const int rc = ctx.run();
    if (suite == "gpio-sim") {
        gpio_sim_teardown();
    }
    if (g_softdog_loaded_here) {
        run({"modprobe", "-r", "softdog"});
    }
    if (rc == 0 && g_ran == 0 && !ctx.shouldExit()) {
        std::printf("SKIP: no case of suite %s ran\n", suite.c_str());
        return 77;
    }
    return rc;
}
