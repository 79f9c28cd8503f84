// A fresh directory under $TMPDIR (or /tmp) for a doctest case, removed
// with everything in it when the case ends. Tests add their own helpers
// by deriving from it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "doctest.hpp"

namespace custos_test {

inline std::string tmp_root() {
    const char* t = std::getenv("TMPDIR");
    return (t != nullptr && *t != '\0') ? t : "/tmp";
}

// The whole of a file the test expects to be there.
inline std::string read_file(const std::string& path) {
    std::string out;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    char b[4096];
    for (std::size_t n; (n = std::fread(b, 1, sizeof b, f)) > 0;) {
        out.append(b, n);
    }
    std::fclose(f);
    return out;
}

struct scratch_dir {
    std::string path;
    // `prefix`: the directory's name before the mkdtemp suffix.
    explicit scratch_dir(std::string_view prefix) {
        std::string tmpl = tmp_root() + "/" + std::string(prefix) + "-XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~scratch_dir() {
        const std::string cmd = "rm -rf '" + path + "'";
        (void)std::system(cmd.c_str());
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    std::string at(std::string_view name) const { return path + "/" + std::string(name); }
    std::string read(std::string_view name) const { return read_file(at(name)); }
};

} // namespace custos_test
