// Helper program for test_spawn: reports the process state the spawner set
// up, as the kernel sees it. It only reads kernel state (ids, descriptors,
// masks), so on cross builds a build-machine binary serves: qemu-user cannot
// exec a target binary without binfmt_misc.
//
//   spawn_child report FD   writes "key=value" lines to FD, exits 0
//   spawn_child group FD    forks a grandchild, writes its pid and a newline
//                           to FD, then both wait for a signal
//   spawn_child pause       waits for a signal
#include <dirent.h>
#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

std::string status_field(const char* name) {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr) {
        return "?";
    }
    char line[512];
    std::string out = "?";
    std::size_t n = std::strlen(name);
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::strncmp(line, name, n) == 0 && line[n] == ':') {
            char* v = line + n + 1;
            while (*v == '\t' || *v == ' ') {
                ++v;
            }
            v[std::strcspn(v, "\n")] = '\0';
            out = v;
            break;
        }
    }
    std::fclose(f);
    return out;
}

std::string open_fds() {
    std::vector<int> fds;
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr) {
        return "?";
    }
    int own = dirfd(d);
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.' && std::atoi(e->d_name) != own) {
            fds.push_back(std::atoi(e->d_name));
        }
    }
    closedir(d);
    std::sort(fds.begin(), fds.end());
    std::string out;
    for (int fd : fds) {
        out += (out.empty() ? "" : ",") + std::to_string(fd);
    }
    return out;
}

int report(int fd) {
    std::string fds = open_fds(); // first: nothing below opens anything yet
    char link[PATH_MAX] = {};
    if (readlink("/proc/self/fd/0", link, sizeof link - 1) < 0) {
        std::strcpy(link, "?");
    }
    char cwd[PATH_MAX] = {};
    if (getcwd(cwd, sizeof cwd) == nullptr) {
        std::strcpy(cwd, "?");
    }
    gid_t groups[64];
    int ng = getgroups(64, groups);
    std::string gl;
    for (int i = 0; i < ng; ++i) {
        gl += (gl.empty() ? "" : ",") + std::to_string(groups[i]);
    }
    std::string out;
    auto add = [&](const char* k, const std::string& v) { out += std::string(k) + "=" + v + "\n"; };
    add("pid", std::to_string(getpid()));
    add("ppid", std::to_string(getppid()));
    add("sid", std::to_string(getsid(0)));
    add("pgid", std::to_string(getpgid(0)));
    add("uid", std::to_string(getuid()));
    add("gid", std::to_string(getgid()));
    add("groups", gl);
    add("cwd", cwd);
    add("stdin", link);
    add("fds", fds);
    add("sigblk", status_field("SigBlk"));
    add("sigign", status_field("SigIgn"));
    for (char** e = environ; *e != nullptr; ++e) {
        add("env", *e);
    }
    std::size_t off = 0;
    while (off < out.size()) {
        ssize_t n = write(fd, out.data() + off, out.size() - off);
        if (n <= 0) {
            return 2;
        }
        off += static_cast<std::size_t>(n);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::strcmp(argv[1], "report") == 0) {
        return report(std::atoi(argv[2]));
    }
    if (argc >= 3 && std::strcmp(argv[1], "group") == 0) {
        pid_t gc = fork();
        if (gc < 0) {
            return 3;
        }
        if (gc == 0) {
            for (;;) {
                pause();
            }
        }
        char line[32];
        int n = std::snprintf(line, sizeof line, "%d\n", static_cast<int>(gc));
        if (write(std::atoi(argv[2]), line, static_cast<std::size_t>(n)) != n) {
            return 4;
        }
        for (;;) {
            pause();
        }
    }
    if (argc >= 2 && std::strcmp(argv[1], "pause") == 0) {
        for (;;) {
            pause();
        }
    }
    std::fprintf(stderr, "usage: spawn_child report FD | group FD | pause\n");
    return 64;
}
