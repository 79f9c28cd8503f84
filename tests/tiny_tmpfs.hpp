// A full disk for the tests, on a 64 KiB tmpfs: the `--only=enospc` main()
// that skips (exit 77) where no such tmpfs can be mounted (not root, or the
// mount refused), the mount of one for a case, and the filler file that
// leaves it only a little room. The suites that use it register the binary
// twice in tests/meson.build: without arguments (every case but the
// [enospc] ones) and with --only=enospc (those alone).
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "doctest.hpp"
#include "scratch_dir.hpp"

namespace custos_test {

// Mounts a 64 KiB tmpfs named `source` (what /proc/mounts shows) on `dir`:
// whether it worked, errno set when not.
inline bool mount_tiny_tmpfs(const char* source, const std::string& dir) {
    return ::mount(source, dir.c_str(), "tmpfs", 0, "size=64k") == 0;
}

// main() of a suite with [enospc] cases. `--only=enospc` runs those alone,
// after checking outside doctest (its REQUIREs need a running case) that a
// tiny tmpfs can be mounted here: exit 77 (a skip) when not. Without --only,
// every other case runs. Any other --only is refused (2). `tag` names the
// probe's directory and mount. `before`, when given, runs once the
// arguments are checked, before the probe (a backend check): a result
// other than 0 is returned as the exit status. Further arguments go to
// doctest.
inline int enospc_main(int argc, char** argv, const char* tag, int (*before)() = nullptr) {
    std::string_view only;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a.substr(0, 7) == "--only=") {
            only = a.substr(7);
        }
    }
    if (!only.empty() && only != "enospc") {
        std::printf("unknown --only=%.*s\n", static_cast<int>(only.size()), only.data());
        return 2;
    }
    if (before != nullptr) {
        if (const int b = before(); b != 0) {
            return b;
        }
    }
    if (only == "enospc") {
        std::string probe_dir = tmp_root() + "/" + tag + "-probe-XXXXXX";
        if (::mkdtemp(probe_dir.data()) == nullptr) {
            std::printf("FAIL: mkdtemp under %s: %s\n", tmp_root().c_str(), std::strerror(errno));
            return 1;
        }
        const bool root = ::geteuid() == 0;
        const bool mounted = root && mount_tiny_tmpfs(tag, probe_dir);
        const int err = errno;
        if (mounted) {
            (void)::umount2(probe_dir.c_str(), MNT_DETACH);
        }
        ::rmdir(probe_dir.c_str());
        if (!mounted) {
            std::printf("SKIP: %s\n", root ? std::strerror(err) : "not root: cannot mount a tmpfs");
            return 77;
        }
    }
    doctest::Context ctx;
    if (only.empty()) {
        ctx.addFilter("test-case-exclude", "*[enospc]*");
    } else {
        ctx.addFilter("test-case", "*[enospc]*");
    }
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}

// A tiny tmpfs on `path` (made here, mode 0700) for one [enospc] case,
// lazily unmounted when the case ends, whatever is still open on it.
// enospc_main() has checked that the mount works.
struct tiny_tmpfs {
    std::string path;
    tiny_tmpfs(std::string dir, const char* source) : path(std::move(dir)) {
        REQUIRE(::mkdir(path.c_str(), 0700) == 0);
        REQUIRE(mount_tiny_tmpfs(source, path));
    }
    ~tiny_tmpfs() { (void)::umount2(path.c_str(), MNT_DETACH); }
    tiny_tmpfs(const tiny_tmpfs&) = delete;
    tiny_tmpfs& operator=(const tiny_tmpfs&) = delete;

    // Fills the tmpfs with PATH/filler, then shrinks it to `keep` bytes, so
    // what is left is the room the case wants; its path, which the case
    // truncates to 0 to give the space back.
    std::string fill(off_t keep) const {
        const std::string filler = path + "/filler";
        const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        const std::string block(4096, 'f');
        while (::write(fd, block.data(), block.size()) > 0) {
        }
        ::close(fd);
        REQUIRE(::truncate(filler.c_str(), keep) == 0);
        return filler;
    }
};

} // namespace custos_test
