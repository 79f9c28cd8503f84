// The board profiles (boards.hpp): one constexpr table, "generic" first.
// Numbers from reference/PLATFORM.md §2 (the kernel drivers' own limits).
#include "ports/boards/boards.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include <custos/watchdog.hpp>

// CUSTOS_BOARD: the meson option `board`, written by ports/meson.build.
#include "ports/board_default.hpp"

namespace custos::ports {

namespace {

constexpr std::array<board_profile, 5> table{{
    {
        .name = "generic",
        .description = "any Linux watchdog driver: the timeout is whatever it accepts",
        .compatible = {},
        .driver = "",
        .device = "/dev/watchdog0",
        .max_timeout_s = 0,
        .default_timeout_s = 30,
        .magic_close = true,
        .pretimeout_s = 0,
        .gpio_chip = "",
        .gpio_line = -1,
        .gpio_enable_line = -1,
        .led = "",
    },
    {
        .name = "raspberrypi",
        .description = "Raspberry Pi (bcm2835_wdt: at most 15 s in hardware, no boot status)",
        .compatible = {"raspberrypi,", "brcm,bcm283", "brcm,bcm2711", "brcm,bcm2712"},
        .driver = "bcm2835_wdt",
        .device = "/dev/watchdog0",
        .max_timeout_s = 15,
        .default_timeout_s = 15,
        .magic_close = true,
        .pretimeout_s = 0,
        .gpio_chip = "",
        .gpio_line = -1,
        .gpio_enable_line = -1,
        .led = "ACT",
    },
    {
        .name = "imx",
        .description = "NXP i.MX (imx2_wdt: at most 128 s; it cannot be stopped, so after a "
                       "magic close the kernel keeps feeding it: disarmed, not stopped)",
        .compatible = {"fsl,imx"},
        .driver = "imx2_wdt",
        .device = "/dev/watchdog0",
        .max_timeout_s = 128,
        .default_timeout_s = 60,
        .magic_close = true,
        .pretimeout_s = 0,
        .gpio_chip = "",
        .gpio_line = -1,
        .gpio_enable_line = -1,
        .led = "",
    },
    {
        .name = "sunxi",
        .description = "Allwinner (sunxi_wdt: at most 16 s, steps of 1-6, 8, 10, 12, 14, 16 s)",
        .compatible = {"allwinner,"},
        .driver = "sunxi_wdt",
        .device = "/dev/watchdog0",
        .max_timeout_s = 16,
        .default_timeout_s = 16,
        .magic_close = true,
        .pretimeout_s = 0,
        .gpio_chip = "",
        .gpio_line = -1,
        .gpio_enable_line = -1,
        .led = "",
    },
    {
        .name = "qemu-virt",
        .description = "QEMU -M virt with -device i6300esb (i6300esb: 1 to 2046 s)",
        .compatible = {"linux,dummy-virt"},
        .driver = "i6300esb",
        .device = "/dev/watchdog0",
        .max_timeout_s = 2046,
        .default_timeout_s = 30,
        .magic_close = true,
        .pretimeout_s = 0,
        .gpio_chip = "",
        .gpio_line = -1,
        .gpio_enable_line = -1,
        .led = "",
    },
}};

constexpr bool known_board(std::string_view name) {
    if (name == "auto") {
        return true;
    }
    for (const board_profile& b : table) {
        if (b.name == name) {
            return true;
        }
    }
    return false;
}

static_assert(table[0].name == "generic", "boards() promises generic first");
static_assert(known_board(CUSTOS_BOARD),
              "meson option `board` names no profile in ports/boards/boards.cpp (or 'auto')");

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

} // namespace

std::span<const board_profile> boards() noexcept {
    return table;
}

} // namespace custos::ports

namespace custos {

bool watchdog_board_known(std::string_view board) noexcept {
    return board.empty() || board == "auto" || ports::find_board(board) != nullptr;
}

} // namespace custos

namespace custos::ports {

const board_profile* find_board(std::string_view name) noexcept {
    for (const board_profile& b : table) {
        if (b.name == name) {
            return &b;
        }
    }
    return nullptr;
}

std::string_view default_board() noexcept {
    return CUSTOS_BOARD;
}

const board_profile& detect_board(const char* compatible) noexcept {
    // The device tree's compatible list is a few short strings; a longer
    // file is read up to the buffer and what fits is matched.
    char buf[1024];
    std::size_t len = 0;
    const int fd = ::open(compatible, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return table[0];
    }
    while (len < sizeof buf) {
        const ssize_t n = ::read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += static_cast<std::size_t>(n);
    }
    ::close(fd);
    const std::string_view all(buf, len);
    for (const board_profile& b : table) {
        for (std::size_t at = 0; at < all.size();) {
            std::size_t end = all.find('\0', at);
            if (end == std::string_view::npos) {
                end = all.size(); // the last string without its NUL
            }
            const std::string_view entry = all.substr(at, end - at);
            for (std::string_view prefix : b.compatible) {
                if (!prefix.empty() && !entry.empty() && starts_with(entry, prefix)) {
                    return b;
                }
            }
            at = end + 1;
        }
    }
    return table[0];
}

const board_profile* choose_board(std::string_view name, const char* compatible) noexcept {
    if (name.empty()) {
        name = default_board();
    }
    if (name == "auto") {
        return &detect_board(compatible);
    }
    return find_board(name);
}

} // namespace custos::ports
