// custosd's config reader (see config.hpp for the syntax and the reasons):
// the file read into the config's own copy, the problem list and the line
// lookups. parser.cpp holds the walk over the text (its two passes).
#include "custosd/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "core/assert.hpp"

namespace custos::cfg {

using custos::ServiceField;

void problem_list::add(unsigned line, const Error& error, const char* fmt, ...) noexcept {
    if (size_ == capacity) {
        ++dropped_;
        return;
    }
    // Most problems arrive in line order; a missing exec is only known at the
    // end of its section, and goes back to its header's place.
    std::size_t at = size_;
    while (at > 0 && items_[at - 1].line > line) {
        items_[at] = items_[at - 1];
        --at;
    }
    problem& p = items_[at];
    p.line = line;
    p.error = error;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(p.message, sizeof p.message, fmt, ap);
    va_end(ap);
    ++size_;
}

void format_problem(const char* file, const problem& p, char* buf, std::size_t len) noexcept {
    if (buf == nullptr || len == 0) {
        return;
    }
    const char* f = file != nullptr && *file != '\0' ? file : "config";
    if (p.line == 0) {
        std::snprintf(buf, len, "%s: %s", f, p.message);
    } else {
        std::snprintf(buf, len, "%s:%u: %s", f, p.line, p.message);
    }
}

namespace {

const char* file_type_name(mode_t m) noexcept {
    if (S_ISDIR(m)) {
        return "directory";
    }
    if (S_ISFIFO(m)) {
        return "fifo";
    }
    if (S_ISSOCK(m)) {
        return "socket";
    }
    if (S_ISCHR(m)) {
        return "character device";
    }
    if (S_ISBLK(m)) {
        return "block device";
    }
    return "not a file";
}

} // namespace

void config::clear() noexcept {
    runtime_ = RuntimeConfig{};
    watchdog_ = WatchdogConfig{};
    log_ = LogConfig{};
    for (unsigned& l : watchdog_lines_) {
        l = 0;
    }
    control_ = ControlConfig{};
    control_.socket = control::default_socket;
    for (unsigned& l : control_lines_) {
        l = 0;
    }
    for (std::string_view& o : operators_) {
        o = {};
    }
    services_ = nullptr;
    service_count_ = 0;
    lines_ = nullptr;
    probes_ = nullptr;
    probe_count_ = 0;
    probe_lines_ = nullptr;
    prunes_ = nullptr;
    prune_count_ = 0;
    prune_lines_ = nullptr;
}

bool config::parse(std::string_view text, problem_list& problems) noexcept {
    clear();
    path_ = "";
    if (text.size() > max_file_bytes) {
        problems.add(0, Error(Reason::config_unreadable, EFBIG, "config"),
                     "the config is %zu bytes; the limit is %zu (1 MiB)", text.size(),
                     max_file_bytes);
        return false;
    }
    if (!text_.reserve(text.size() + 1)) {
        problems.add(0, Error(Reason::out_of_memory, ENOMEM, "config"),
                     "out of memory copying the config (%zu bytes)", text.size());
        return false;
    }
    char* copy = text_.copy(text);
    CUSTOS_ASSERT(copy != nullptr);
    return parse_owned(copy, text.size(), problems);
}

bool config::load(const char* path, problem_list& problems) noexcept {
    clear();
    path_ = "";
    if (path == nullptr) {
        path = "";
    }
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer;
    // what is not a regular file is refused below, before any read.
    int fd = ::open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        problems.add(0, Error(Reason::config_unreadable, e, path), "cannot open: %s",
                     std::strerror(e));
        return false;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        problems.add(0, Error(Reason::config_unreadable, e, path), "cannot stat: %s",
                     std::strerror(e));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        // A FIFO or a device may never end, or block a --check for ever.
        ::close(fd);
        problems.add(0,
                     Error(Reason::config_unreadable, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, path),
                     "not a regular file (%s)", file_type_name(st.st_mode));
        return false;
    }
    if (static_cast<std::uint64_t>(st.st_size) > max_file_bytes) {
        ::close(fd);
        problems.add(0, Error(Reason::config_unreadable, EFBIG, path),
                     "the config is %llu bytes; the limit is %zu (1 MiB)",
                     static_cast<unsigned long long>(st.st_size), max_file_bytes);
        return false;
    }
    // One byte more than expected, to notice a file that grew.
    const std::size_t expect = static_cast<std::size_t>(st.st_size);
    const std::size_t path_len = std::strlen(path);
    if (!text_.reserve(path_len + 1 + expect + 1)) {
        ::close(fd);
        problems.add(0, Error(Reason::out_of_memory, ENOMEM, path),
                     text_.fixed() ? "the config is %zu bytes, more than custosd made room for at "
                                     "start: restart custosd to load it"
                                   : "out of memory reading the config (%zu bytes)",
                     expect);
        return false;
    }
    path_ = text_.copy(path);
    auto* buf = static_cast<char*>(text_.take(expect + 1, 1));
    CUSTOS_ASSERT(path_ != nullptr && buf != nullptr);
    std::size_t got = 0;
    while (got < expect + 1) {
        ssize_t n = ::read(fd, buf + got, expect + 1 - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int e = errno;
            ::close(fd);
            problems.add(0, Error(Reason::config_unreadable, e, path), "cannot read: %s",
                         std::strerror(e));
            return false;
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got > max_file_bytes) {
        problems.add(0, Error(Reason::config_unreadable, EFBIG, path),
                     "the config is over %zu bytes (1 MiB), the limit", max_file_bytes);
        return false;
    }
    if (got > expect) {
        problems.add(0, Error(Reason::config_unreadable, EAGAIN, path),
                     "the file grew while custosd read it: load it again once it is complete");
        return false;
    }
    return parse_owned(buf, got, problems);
}

unsigned config::line_of(std::uint32_t service, custos::ServiceField f) const noexcept {
    auto i = static_cast<std::size_t>(f);
    if (service >= service_count_ || lines_ == nullptr || i >= custos::service_field_count) {
        return 0;
    }
    return lines_[std::size_t{service} * custos::service_field_count + i];
}

unsigned config::probe_line_of(std::uint32_t probe, custos::ProbeField f) const noexcept {
    auto i = static_cast<std::size_t>(f);
    if (probe >= probe_count_ || probe_lines_ == nullptr || i >= custos::probe_field_count) {
        return 0;
    }
    return probe_lines_[std::size_t{probe} * custos::probe_field_count + i];
}

unsigned config::prune_line_of(std::uint32_t job, custos::PruneField f) const noexcept {
    auto i = static_cast<std::size_t>(f);
    if (job >= prune_count_ || prune_lines_ == nullptr || i >= custos::prune_field_count) {
        return 0;
    }
    return prune_lines_[std::size_t{job} * custos::prune_field_count + i];
}

unsigned config::watchdog_line_of(custos::WatchdogField f) const noexcept {
    auto i = static_cast<std::size_t>(f);
    return i < custos::watchdog_field_count ? watchdog_lines_[i] : 0;
}

unsigned config::control_line_of(control_field f) const noexcept {
    auto i = static_cast<std::size_t>(f);
    return i < control_field_count ? control_lines_[i] : 0;
}

} // namespace custos::cfg
