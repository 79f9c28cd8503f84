#!/usr/bin/env python3
"""The emulated ARM board: custosd and the aarch64 suites on a real arm64
kernel under qemu-system-aarch64 -M virt, with the i6300esb watchdog.

  tests/board/board.py [--only SCENARIO,...] [--no-sizes]

`./dev board` runs it after installing qemu-system-arm and downloading the
kernel and busybox packages into build-ci/board/debs (this script only
unpacks them). It boots once per scenario, in order, on one virtio disk
image that carries custosd's reset record from one boot to the next:

  starve   a critical service fails: WatchdogStarving, then the board resets
  kill     PreviousBootStarved; custosd is SIGKILLed after a few feeds: reset
           (kill and orderly are one qemu run: the reset reboots the machine)
  orderly  the previous boot's class; feeds for 3 timeouts; SIGTERM:
           WatchdogDisarmed; no reset within 2 timeouts; powers off
  suites   PreviousBootOrderly; boot-to-first-feed and PSS with the example
           appliance; custosd --platform (io_uring); the test binaries

Every expectation is checked from the console (see tests/board/init.cpp for
its markers) and qemu's exit; a summary table follows, with the
measurements and the sizes of the stripped static custosd (aarch64 and
armhf, release and minsize). Exit status 0 only when every check passed.
"""

import argparse
import select
import os
import re
import shutil
import stat
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARD_SRC = os.path.join(REPO, "tests", "board")
CI = os.path.join(REPO, "build-ci")
WORK = os.path.join(CI, "board")
CROSS = os.path.join(CI, "aarch64-linux-gnu")
STRIP = "aarch64-linux-gnu-strip"

TIMEOUT_S = 4  # the watchdog timeout of the scenario configs
SCENARIOS = ["starve", "kill", "orderly", "suites"]
# The scenario's bound inside the guest (init powers off past it) and the
# host's bound on qemu (killed past it: a failure).
BOUNDS = {"starve": 90, "kill": 90, "orderly": 120, "suites": 420}

# The modules the board loads, in order (dependencies are added before
# each): the virtio disk on PCI, ext4 for it, the watchdog.
MODULES = ["crc32c_generic", "virtio_pci", "virtio_blk", "ext4", "i6300esb"]

# The test binaries the board runs: name, seconds, environment, argv. The
# helpers are the target builds of tests/board/meson.build.
HELPER = "CUSTOS_SVC_HELPER=/board/bin/svc_helper"
SUITES = [
    ("reactor-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_reactor"]),
    ("reactor-epoll", 120, ["CUSTOS_BACKEND=epoll"], ["test_reactor"]),
    ("no-alloc-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_no_alloc"]),
    ("runtime-no-alloc-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_runtime_no_alloc"]),
    ("status", 120, [], ["test_status"]),
    ("health", 60, [], ["test_health"]),
    ("monitor", 60, [], ["test_monitor"]),
    ("monitor-threads-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_monitor_threads"]),
    ("monitor-no-alloc-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_monitor_no_alloc"]),
    ("notify-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_notify"]),
    ("notify-up-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_notify_up"]),
    ("runtime-uring", 300, ["CUSTOS_BACKEND=uring", HELPER], ["test_runtime"]),
    ("runtime-monitors-uring", 120, ["CUSTOS_BACKEND=uring", HELPER], ["test_runtime_monitors"]),
    ("spawn-clone", 120, ["CUSTOS_SPAWN=clone", "CUSTOS_SPAWN_CHILD=/board/bin/spawn_child"],
     ["test_spawn"]),
    ("checks-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_checks"]),
    ("dns-uring", 120, ["CUSTOS_BACKEND=uring"], ["test_dns"]),
    ("lockfree", 180, [], ["test_lockfree"]),
    ("feeder", 60, [], ["test_feeder"]),
    ("watchdog-ports", 60, [], ["test_watchdog_ports", "--suite=ports"]),
    ("runtime-watchdog-uring", 120, ["CUSTOS_BACKEND=uring", HELPER], ["test_runtime_watchdog"]),
]
# Slower machines (sanitizer-free, but emulated): timers fire later.
SUITE_ENV = ["CUSTOS_TEST_TOLERANCE_MS=300"]


def say(text):
    print(text, flush=True)


def fail_early(text):
    print("board: " + text, file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# --- the kernel and busybox, from the downloaded packages ---


def unpack(pattern, into):
    debs = sorted(f for f in os.listdir(os.path.join(WORK, "debs")) if re.match(pattern, f))
    if not debs:
        fail_early(f"no package matching {pattern} in {WORK}/debs (./dev board downloads it)")
    deb = os.path.join(WORK, "debs", debs[-1])
    stamp = os.path.join(into, ".unpacked")
    if not os.path.exists(stamp) or open(stamp).read() != deb:
        shutil.rmtree(into, ignore_errors=True)
        os.makedirs(into)
        run(["dpkg-deb", "-x", deb, into])
        with open(stamp, "w") as f:
            f.write(deb)
    return into


def module_index(root):
    index = {}
    for d, _, files in os.walk(os.path.join(root, "lib", "modules")):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.join(d, f)
    return index


def module_depends(path):
    data = open(path, "rb").read()
    at = data.find(b"\0depends=")
    if at < 0:
        return []
    end = data.index(b"\0", at + 1)
    text = data[at + 9 : end].decode()
    return [m.replace("-", "_") for m in text.split(",") if m]


def module_order(index, wanted):
    order = []

    def visit(name):
        if name in order:
            return
        if name not in index:
            fail_early(f"module {name} is not in the kernel package")
        for dep in module_depends(index[name]):
            visit(dep)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


# --- the initramfs: a newc cpio written here (no cpio tool, no root) ---


class Cpio:
    def __init__(self):
        self.out = bytearray()
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        head = "070701" + "".join(
            f"{v:08x}"
            for v in (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
        )
        self.ino += 1
        self.out += head.encode() + name_b
        self.out += b"\0" * ((4 - len(self.out) % 4) % 4)
        self.out += data
        self.out += b"\0" * ((4 - len(self.out) % 4) % 4)

    def dir(self, name):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        self.dir(os.path.dirname(name.strip("/")))
        self._entry(name.strip("/"), stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self.dir(os.path.dirname(name.strip("/")))
        self._entry(name.strip("/"), stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor):
        self.dir(os.path.dirname(name.strip("/")))
        self._entry(name.strip("/"), stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return bytes(self.out)


def stripped(path, tmp):
    out = os.path.join(tmp, os.path.basename(path) + ".stripped")
    run([STRIP, "-o", out, path])
    return open(out, "rb").read()


def build_initramfs(kernel_root, busybox_root, suites):
    tmp = os.path.join(WORK, "strip")
    os.makedirs(tmp, exist_ok=True)
    c = Cpio()
    c.chardev("dev/console", 5, 1)
    for d in ("proc", "sys", "tmp", "run", "state", "root"):
        c.dir(d)
    c.file("init", stripped(os.path.join(CROSS, "tests", "board", "board_init"), tmp), 0o755)
    c.file("bin/custosd", stripped(os.path.join(CROSS, "src", "custosd"), tmp), 0o755)
    c.file("bin/busybox", open(os.path.join(busybox_root, "bin", "busybox"), "rb").read(), 0o755)
    for applet in ("sh", "sleep", "true", "false", "kill", "cat", "echo", "rm", "touch", "test",
                   "mkdir", "ls", "env", "id", "ps"):
        c.symlink("bin/" + applet, "busybox")
    c.file("board/bin/svc_helper",
           stripped(os.path.join(CROSS, "tests", "board", "board_svc_helper"), tmp), 0o755)
    c.file("board/bin/spawn_child",
           stripped(os.path.join(CROSS, "tests", "board", "board_spawn_child"), tmp), 0o755)
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    c.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    index = module_index(kernel_root)
    listed = []
    for name in module_order(index, MODULES):
        target = "board/ko/" + name + ".ko"
        c.file(target, open(index[name], "rb").read())
        listed.append("/" + target)
    c.file("board/modules", ("\n".join(listed) + "\n").encode())
    for ini in ("starve.ini", "kill.ini", "orderly.ini", "appliance.ini"):
        c.file("board/" + ini, open(os.path.join(BOARD_SRC, ini), "rb").read())
    lines = []
    for name, seconds, env, argv in suites:
        binary = os.path.join(CROSS, "tests", argv[0])
        if not os.path.exists(binary):
            fail_early(f"{binary} is missing: build the aarch64 cross build first")
        c.file("tests/" + argv[0], stripped(binary, tmp), 0o755)
        words = [name, str(seconds)] + SUITE_ENV + env + ["/tests/" + argv[0]] + argv[1:]
        lines.append(" ".join(words))
    c.file("board/suites", ("\n".join(lines) + "\n").encode())
    data = c.finish()
    path = os.path.join(WORK, "initramfs.cpio")
    with open(path, "wb") as f:
        f.write(data)
    shutil.rmtree(tmp)
    return path


# --- one boot ---

LINE = re.compile(r"^(BOARD|custosd|suite) (\S+) (.*)$")


class Boot:
    def __init__(self, scenario):
        self.scenario = scenario
        self.lines = []  # (host seconds since qemu started, text)
        self.exit_at = None
        self.rc = None
        self.killed = False
        self.wall = 0.0

    def markers(self, word):
        out = []
        for t, text in self.lines:
            m = LINE.match(text)
            if m and m.group(1) == "BOARD":
                w, _, rest = m.group(3).partition(" ")
                if w == word:
                    out.append((t, float(m.group(2)) if m.group(2) != "-" else None, rest))
        return out

    def custosd(self, needle):
        """(host time, guest uptime, line) of custosd's lines containing needle."""
        out = []
        for t, text in self.lines:
            m = LINE.match(text)
            if m and m.group(1) == "custosd" and needle in m.group(3):
                out.append((t, float(m.group(2)), m.group(3)[2:]))
        return out

    def text(self, needle):
        return [text for _, text in self.lines if needle in text]

    @property
    def powered_off(self):
        return bool(self.markers("power-off"))

    @property
    def panicked(self):
        return bool(self.text("Kernel panic"))


def boot(kernel, initrd, disk, scenario, log):
    """One qemu run. A scenario "a,b" runs without -no-reboot: a reset
    reboots the same machine and init takes the next step (init.cpp,
    this_step)."""
    steps = scenario.split(",")
    bound = sum(BOUNDS[s] for s in steps)
    cmd = [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "512",
        "-nographic", "-nic", "none",
        "-kernel", kernel, "-initrd", initrd,
        "-append", f"console=ttyAMA0 rdinit=/init quiet panic=-1 custos.scenario={scenario} "
        f"custos.timeout={TIMEOUT_S} custos.bound={bound}",
        "-device", "i6300esb",
        "-drive", f"if=none,id=state,file={disk},format=raw",
        "-device", "virtio-blk-pci,drive=state",
    ] + (["-no-reboot"] if len(steps) == 1 else [])
    b = Boot(scenario)
    say(f"\n== board: {scenario} (qemu-system-aarch64, bound {bound} s)")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    os.set_blocking(proc.stdout.fileno(), False)
    partial = b""
    host_bound = bound + 60
    with open(log, "w") as logf:
        def take(raw):
            t = time.monotonic() - start
            text = raw.decode(errors="replace").rstrip("\r")
            b.lines.append((t, text))
            logf.write(f"{t:8.3f} {text}\n")
            print(f"  {t:7.2f} {text}", flush=True)


        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = proc.stdout.read()
                if chunk:
                    partial += chunk
                    while b"\n" in partial:
                        raw, partial = partial.split(b"\n", 1)
                        take(raw)
                    continue
                if chunk == b"":
                    break
            if proc.poll() is not None:
                rest = proc.stdout.read() or b""
                partial += rest
                break
            if time.monotonic() - start > host_bound:
                proc.kill()
                b.killed = True
                break
        for raw in partial.split(b"\n"):
            if raw.strip():
                take(raw)
    b.rc = proc.wait()
    b.exit_at = time.monotonic() - start
    b.wall = b.exit_at
    return split_boots(b, steps)


def split_boots(run, steps):
    """The Boot of each step: a new boot begins at init's `init` marker. The
    reset that ended a boot is placed at the next boot's first marker minus
    the uptime it shows (the kernel's boot is counted by the guest)."""
    segments = [[]]
    for t, text in run.lines:
        m = LINE.match(text)
        if m and m.group(1) == "BOARD" and m.group(3).startswith("init ") and segments[-1] \
                and any(LINE.match(x) for _, x in segments[-1]):
            segments.append([])
        segments[-1].append((t, text))
    if len(steps) == 1:
        return [run]
    boots = []
    for i, step in enumerate(steps):
        b = Boot(step)
        b.lines = segments[i] if i < len(segments) else []
        last = i == len(steps) - 1
        if i + 1 < len(segments):
            m = LINE.match(segments[i + 1][0][1]) if segments[i + 1] else None
            t0 = segments[i + 1][0][0]
            b.exit_at = t0 - (float(m.group(2)) if m and m.group(1) == "BOARD" else 0)
            b.rc = 0
        else:
            b.exit_at = run.exit_at
            b.rc = run.rc
            b.killed = run.killed
        start = boots[-1].exit_at if boots else 0.0
        b.wall = b.exit_at - start
        boots.append(b)
        if last and len(segments) > len(steps):
            b.lines += [l for seg in segments[len(steps):] for l in seg]
    return boots


# --- the checks ---


class Checks:
    def __init__(self):
        self.rows = []

    def check(self, scenario, what, ok, detail=""):
        self.rows.append((scenario, what, bool(ok), detail))
        say(f"  check {scenario}: {what}: {'ok' if ok else 'FAILED'}{' (' + detail + ')' if detail else ''}")
        return ok

    @property
    def failed(self):
        return [r for r in self.rows if not r[2]]


def common(ck, b):
    ck.check(b.scenario, "ended by itself (not killed by the host)", not b.killed, f"qemu exit {b.rc}")
    ck.check(b.scenario, "no kernel panic", not b.panicked)
    ck.check(b.scenario, "board set up", bool(b.markers("ready")),
             "; ".join(t for t in b.text("BOARD") if "failed" in t))
    ck.check(b.scenario, "scenario within its bound", not b.markers("bound"))


def reset_checks(ck, b, since, what):
    ck.check(b.scenario, "board reset (no power-off)", not b.powered_off and not b.killed
             and not b.markers("no-reset"))
    if since is None or b.powered_off or b.killed:
        return None
    took = b.exit_at - since
    ck.check(b.scenario, f"reset within timeout + 6 s of {what}", took <= TIMEOUT_S + 6,
             f"{took:.1f} s")
    return took


def check_starve(ck, b, m):
    common(ck, b)
    opened = b.custosd("WatchdogOpened")
    ck.check("starve", "WatchdogOpened", opened)
    starving = b.custosd("WatchdogStarving")
    ck.check("starve", "WatchdogStarving", starving)
    failed = b.custosd("modem: ")
    ck.check("starve", "the critical service modem failed", any("failed" in l for _, _, l in failed))
    took = reset_checks(ck, b, starving[0][0] if starving else None, "WatchdogStarving")
    if took is not None:
        m["starve-to-reset"] = f"{took:.1f} s (timeout {TIMEOUT_S} s)"


def check_kill(ck, b, m):
    common(ck, b)
    prev = b.custosd("PreviousBootStarved")
    ck.check("kill", "PreviousBootStarved", prev)
    ck.check("kill", "PreviousBootStarved names the service", any("modem" in l for _, _, l in prev),
             prev[0][2] if prev else "")
    ck.check("kill", "WatchdogOpened", b.custosd("WatchdogOpened"))
    killed = b.markers("sigkill")
    ck.check("kill", "custosd fed, then SIGKILLed", killed)
    took = reset_checks(ck, b, killed[0][0] if killed else None, "the SIGKILL")
    if took is not None:
        m["kill-to-reset"] = f"{took:.1f} s (timeout {TIMEOUT_S} s)"


def check_orderly(ck, b, m):
    common(ck, b)
    wd = b.custosd("PreviousBootWatchdog")
    unrep = b.custosd("PreviousBootUnreported")
    ck.check("orderly", "PreviousBootWatchdog (CARDRESET after the kill's reset)",
             wd or unrep, "watchdog" if wd else "unreported" if unrep else "neither")
    m["class after the SIGKILL reset"] = ("PreviousBootWatchdog" if wd else
                                          "PreviousBootUnreported" if unrep else "?")
    ck.check("orderly", f"fed for {3 * TIMEOUT_S} s, still up", b.markers("sigterm"))
    ck.check("orderly", "WatchdogDisarmed", b.custosd("WatchdogDisarmed"))
    ex = b.markers("custosd-exit")
    ck.check("orderly", "custosd exit 0", ex and ex[0][2] == "exit 0", ex[0][2] if ex else "")
    ck.check("orderly", f"no reset {2 * TIMEOUT_S} s after the stop", b.markers("survived"))
    ck.check("orderly", "powered off", b.powered_off and b.rc == 0)


def check_suites(ck, b, m):
    common(ck, b)
    ck.check("suites", "PreviousBootOrderly", b.custosd("PreviousBootOrderly"))
    opened = b.custosd("WatchdogOpened")
    ck.check("suites", "WatchdogOpened", opened)
    if opened:
        m["boot-to-first-feed"] = f"{opened[0][1]:.2f} s (uptime at WatchdogOpened)"
    pss = b.markers("pss")
    ok = pss and re.match(r"^\d+ kB$", pss[0][2])
    ck.check("suites", "PSS read", ok, pss[0][2] if pss else "")
    if ok:
        m["custosd PSS (appliance)"] = pss[0][2]
    ex = b.markers("custosd-exit")
    ck.check("suites", "custosd exit 0 after SIGTERM", ex and ex[0][2] == "exit 0",
             ex[0][2] if ex else "")
    backend = [l for _, _, l in b.custosd("I/O backend")]
    ck.check("suites", "custosd --platform says io_uring", any("io_uring" in l for l in backend),
             backend[0] if backend else "no output")
    results = {}
    for _, _, rest in b.markers("suite"):
        w = rest.split()
        if len(w) >= 2:
            results[w[0]] = rest
    for name, *_ in SUITES:
        r = results.get(name)
        verdict = r.split()[1] if r else "missing"
        ck.check("suites", f"suite {name}", verdict in ("pass", "skip"), r or "did not run")
    ck.check("suites", "all suites ran", b.markers("suites-done"))
    ck.check("suites", "powered off", b.powered_off and b.rc == 0)


CHECKS = {"starve": check_starve, "kill": check_kill, "orderly": check_orderly,
          "suites": check_suites}


# --- sizes of the stripped static custosd ---


def sizes():
    out = []
    for triplet in ("aarch64-linux-gnu", "arm-linux-gnueabihf"):
        for buildtype in ("release", "minsize"):
            d = os.path.join(CI, f"board-{buildtype}" if triplet.startswith("aarch64")
                             else f"board-{buildtype}-armhf")
            opts = ["--cross-file", os.path.join(REPO, "toolchains", triplet + ".ini"),
                    f"-Dbuildtype={buildtype}", "-Dtests=false", "-Dbenchmarks=false",
                    "-During=enabled"]
            if os.path.exists(os.path.join(d, "build.ninja")):
                run(["meson", "setup", "--reconfigure", d] + opts, cwd=REPO,
                    stdout=subprocess.DEVNULL)
            else:
                run(["meson", "setup", d] + opts, cwd=REPO, stdout=subprocess.DEVNULL)
            say(f"== board: custosd, {triplet} {buildtype}")
            run(["ninja", "-C", d, "src/custosd"], stdout=subprocess.DEVNULL)
            exe = os.path.join(d, "src", "custosd")
            stripped_path = exe + ".stripped"
            run([triplet + "-strip", "-o", stripped_path, exe])
            out.append((triplet, buildtype, os.path.getsize(stripped_path)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated scenarios (default: all, in order)")
    ap.add_argument("--keep-disk", action="store_true",
                    help="reuse the state disk of the last run (for --only: each boot checks the "
                    "class of the one before it)")
    ap.add_argument("--no-sizes", action="store_true", help="skip the release/minsize builds")
    ap.add_argument("--suites", help="comma-separated test binaries of the suites scenario "
                    "(default: all of SUITES)")
    ap.add_argument("--targets", action="store_true",
                    help="print the aarch64 cross build's ninja targets the board needs, and exit")
    args = ap.parse_args()
    if args.targets:
        names = sorted({argv[0] for _, _, _, argv in SUITES})
        print(" ".join(["src/custosd", "tests/board/board_init", "tests/board/board_svc_helper",
                        "tests/board/board_spawn_child"] + ["tests/" + n for n in names]))
        return 0
    scenarios = args.only.split(",") if args.only else SCENARIOS
    for s in scenarios:
        if s not in SCENARIOS:
            fail_early(f"unknown scenario {s}")
    if args.suites:
        SUITES[:] = [s for s in SUITES if s[0] in args.suites.split(",")]
    began = time.monotonic()
    for tool in ("qemu-system-aarch64", "mke2fs", STRIP, "dpkg-deb"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool) \
                and not os.path.exists("/sbin/" + tool):
            fail_early(f"{tool} is missing (./dev board installs it, as root)")
    kernel_root = unpack(r"linux-image-[0-9.]+-[0-9]+-arm64_.*_arm64\.deb$",
                         os.path.join(WORK, "kernel-arm64"))
    busybox_root = unpack(r"busybox-static_.*_arm64\.deb$", os.path.join(WORK, "busybox-arm64"))
    vmlinuz = [f for f in os.listdir(os.path.join(kernel_root, "boot")) if f.startswith("vmlinuz")]
    if not vmlinuz:
        fail_early("no vmlinuz in the kernel package")
    kernel = os.path.join(kernel_root, "boot", vmlinuz[0])
    initrd = build_initramfs(kernel_root, busybox_root, SUITES)
    say(f"board: kernel {vmlinuz[0]}, initramfs {os.path.getsize(initrd) // 1024} KiB")
    disk = os.path.join(WORK, "state.img")
    if not (args.keep_disk and os.path.exists(disk)):
        if os.path.exists(disk):
            os.remove(disk)
        mke2fs = shutil.which("mke2fs") or "/sbin/mke2fs"
        run([mke2fs, "-q", "-F", "-t", "ext4", "-L", "state", disk, "16M"])
    elif os.path.exists(disk):
        # init counts the steps of a kill,orderly run on the disk: start anew.
        debugfs = shutil.which("debugfs") or "/sbin/debugfs"
        subprocess.run([debugfs, "-w", "-R", "rm board.steps", disk], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    logs = os.path.join(WORK, "logs")
    os.makedirs(logs, exist_ok=True)

    ck = Checks()
    measured = {}
    walls = {}
    # kill and orderly share one qemu run (see boot()), so that the orderly
    # boot can see the i6300esb's record of the reset that ended the kill.
    runs = []
    for s in scenarios:
        if s == "orderly" and runs and runs[-1] == ["kill"]:
            runs[-1].append(s)
        else:
            runs.append([s])
    for steps in runs:
        name = ",".join(steps)
        for b in boot(kernel, initrd, disk, name, os.path.join(logs, "-".join(steps) + ".log")):
            walls[b.scenario] = b.wall
            CHECKS[b.scenario](ck, b, measured)
    size_rows = [] if args.no_sizes else sizes()

    say("\n== board: summary")
    say(f"{'scenario':<9} {'check':<62} result")
    for scenario, what, ok, detail in ck.rows:
        say(f"{scenario:<9} {what[:62]:<62} {'ok' if ok else 'FAILED'}"
            f"{'  ' + detail if detail and (not ok or scenario == 'suites') else ''}")
    say("")
    for s in scenarios:
        say(f"{'boot ' + s + ' (wall)':<40} {walls[s]:.1f} s")
    for k, v in measured.items():
        say(f"{k:<40} {v}")
    for triplet, buildtype, size in size_rows:
        say(f"{'custosd ' + triplet + ' ' + buildtype + ' (stripped)':<40} {size / 1024:.0f} KiB")
    say(f"{'board job wall time':<40} {time.monotonic() - began:.0f} s")
    if ck.failed:
        say(f"\nboard: {len(ck.failed)} check(s) FAILED; console logs in {logs}")
        return 1
    say("\nboard: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
