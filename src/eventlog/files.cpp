#include "eventlog/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/text_out.hpp"
#include "eventlog/record.hpp"
#include "io/files.hpp"
#include "prune/decide.hpp"
#include "status/event.hpp"
#include "status/json.hpp"

namespace custos::eventlog {

namespace {

constexpr std::string_view prefix = "events-";
constexpr std::string_view suffix = ".jsonl";
constexpr std::string_view glob = "events-*.jsonl";
constexpr std::size_t chunk_size = 4096;

// A log file's name: events-, digits only up to the next '-' or the
// suffix, then anything up to ".jsonl". The pruner matches the glob;
// this says which of those are the log's.
bool log_name(std::string_view name, std::uint64_t& seq) noexcept {
    if (name.size() <= prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix ||
        name.substr(name.size() - suffix.size()) != suffix) {
        return false;
    }
    std::size_t i = prefix.size();
    std::uint64_t v = 0;
    const std::size_t start = i;
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
        const auto d = static_cast<std::uint64_t>(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (i == start || (name[i] != '-' && i != name.size() - suffix.size())) {
        return false;
    }
    seq = v;
    return true;
}

// "20261207T190102Z" (16 bytes) at `b`.
void stamp_into(char* b, std::int64_t wall_ns, bool trusted) noexcept {
    if (!trusted || wall_ns <= 0) {
        std::memcpy(b, "19700101T000000Z", 16);
        return;
    }
    char w[status::wall_size]; // 2026-12-07T19:01:02.123Z
    status::wall_into(w, wall_ns);
    const char* from = w;
    const int take[] = {0, 1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 14, 15, 17, 18, 23};
    for (int k = 0; k < 16; ++k) {
        b[k] = from[take[k]];
    }
}

// Whether `c` may be kept in a last_record text: what custos's ids, times
// and names are made of, and nothing that JSON escapes.
bool plain(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':' || c == '+';
}

// Where the value of the top-level member `key` begins in `line`, or npos.
// Members before it are numbers, booleans and escaped strings, in which
// `,"key":` cannot occur (an escaped string's quotes are \"), so the first
// match is the member.
std::size_t value_at(std::string_view line, std::string_view key) noexcept {
    char pat[24];
    if (key.size() + 4 > sizeof pat) {
        return std::string_view::npos;
    }
    pat[0] = ',';
    pat[1] = '"';
    std::memcpy(pat + 2, key.data(), key.size());
    pat[key.size() + 2] = '"';
    pat[key.size() + 3] = ':';
    const std::size_t at = line.find(std::string_view(pat, key.size() + 4));
    return at == std::string_view::npos ? at : at + key.size() + 4;
}

// The string member `key` into `out` when it is plain and fits.
template <std::size_t N>
void text_member(std::string_view line, std::string_view key, FixedText<N>& out) noexcept {
    std::size_t at = value_at(line, key);
    if (at == std::string_view::npos || at >= line.size() || line[at] != '"') {
        return;
    }
    ++at;
    std::size_t end = at;
    while (end < line.size() && end - at <= N && plain(line[end])) {
        ++end;
    }
    if (end < line.size() && line[end] == '"' && end - at <= N) {
        out.assign(line.substr(at, end - at));
    }
}

// The integer (digits, an optional '-') at `at` of `line`; false when none.
bool int_at(std::string_view line, std::size_t at, std::int64_t& out) noexcept {
    if (at >= line.size()) {
        return false;
    }
    const bool neg = line[at] == '-';
    at += neg ? 1 : 0;
    std::int64_t v = 0;
    const std::size_t start = at;
    for (; at < line.size() && line[at] >= '0' && line[at] <= '9'; ++at) {
        if (v > (INT64_MAX - (line[at] - '0')) / 10) {
            return false;
        }
        v = v * 10 + (line[at] - '0');
    }
    if (at == start) {
        return false;
    }
    out = neg ? -v : v;
    return true;
}

} // namespace

bool log_dir::name_seq(std::string_view name, std::uint64_t& seq) noexcept {
    return log_name(name, seq);
}

bool parse_last_record(const char* line, std::size_t len, last_record& out) noexcept {
    out = last_record{};
    std::uint64_t seq = 0;
    if (!log_dir::line_seq(line, len, seq)) {
        return false;
    }
    const std::string_view l(line, len);
    out.found = true;
    out.seq = seq;
    std::int64_t v = 0;
    if (int_at(l, value_at(l, "mono_ns"), v)) {
        out.mono_ns = v;
    }
    text_member(l, "boot_id", out.boot_id);
    text_member(l, "ts", out.ts);
    text_member(l, "kind", out.kind);
    text_member(l, "name", out.name);
    text_member(l, "reason", out.reason);
    // "exit":{"code":N}; a signal's exit has no code.
    constexpr std::string_view code = "{\"code\":";
    const std::size_t ex = value_at(l, "exit");
    if (ex != std::string_view::npos && l.substr(ex, code.size()) == code &&
        int_at(l, ex + code.size(), v) && v >= INT32_MIN && v <= INT32_MAX) {
        out.has_exit = true;
        out.exit_code = static_cast<std::int32_t>(v);
    }
    return true;
}

log_dir::~log_dir() {
    close();
}

void log_dir::close() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (dir_fd_ >= 0) {
        ::close(dir_fd_);
        dir_fd_ = -1;
    }
    size_ = 0;
    name_len_ = 0;
}

bool log_dir::line_seq(const char* line, std::size_t len, std::uint64_t& out) noexcept {
    constexpr std::string_view head = "{\"seq\":";
    if (len <= head.size() || std::string_view(line, head.size()) != head) {
        return false;
    }
    std::uint64_t v = 0;
    std::size_t i = head.size();
    for (; i < len && line[i] >= '0' && line[i] <= '9'; ++i) {
        const auto d = static_cast<std::uint64_t>(line[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (i == head.size()) {
        return false;
    }
    out = v;
    return true;
}

PruneSpec log_dir::spec() const noexcept {
    PruneSpec s;
    s.name = "eventlog";
    s.dir = std::string_view(path_, path_len_);
    s.glob = glob;
    s.order = PruneOrder::seq;
    s.seq_prefix = prefix;
    s.keep_newest = max_files_;
    s.max_files = scan_cap_;
    return s;
}

Result<open_report> log_dir::open(std::string_view dir, std::uint64_t max_file_bytes,
                                  std::uint32_t max_files, std::uint64_t first_seq) noexcept {
    close();
    if (max_files == 0 || max_file_bytes == 0) {
        return fail(Reason::invalid_argument, 0, "eventlog: max_files and max_file_bytes");
    }
    if (dir.empty() || dir.size() >= path_room) {
        return fail(Reason::invalid_argument, 0, "eventlog: dir");
    }
    max_files_ = max_files;
    max_file_bytes_ = max_file_bytes;
    // Room to list a directory that holds more files than it keeps (a
    // smaller max_files than the last run's, strays): beyond it the scan
    // refuses rather than guess which file is the newest.
    scan_cap_ = max_files + 256;

    char raw[path_room];
    std::memcpy(raw, dir.data(), dir.size());
    raw[dir.size()] = '\0';
    if (::mkdir(raw, 0750) != 0 && errno != EEXIST) {
        return fail(Reason::event_log_unavailable, errno, dir);
    }
    // The pruner wants an absolute path; realpath() with our buffer does
    // not allocate.
    if (::realpath(raw, path_) == nullptr) {
        return fail(Reason::event_log_unavailable, errno, dir);
    }
    path_len_ = std::strlen(path_);
    dir_fd_ = ::open(path_, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) {
        return fail(Reason::event_log_unavailable, errno, dir);
    }

    if (!mem_.reserve(prune::workspace::footprint(scan_cap_) + chunk_size + replay_chunk + 128)) {
        close();
        return fail(Reason::out_of_memory, 0, "eventlog");
    }
    if (auto r = ws_.init(mem_, scan_cap_); !r) {
        close();
        return fail(r.error());
    }
    chunk_ = static_cast<char*>(mem_.take_unzeroed(chunk_size, 64));
    replay_ = static_cast<char*>(mem_.take_unzeroed(replay_chunk, 64));
    if (chunk_ == nullptr || replay_ == nullptr) {
        close();
        return fail(Reason::out_of_memory, 0, "eventlog");
    }

    // The directory's log files, by the pruner's scan (a dry run decides
    // nothing that matters here).
    const PruneSpec s = spec();
    prune::options opt;
    opt.dry_run = true;
    opt.check_open = false; // only the list is wanted
    prune::report rep;
    if (auto r = prune::plan(s, opt, ws_, rep); !r) {
        close();
        return fail(r.error());
    }
    open_report out;
    const prune::entry* newest = nullptr;
    const prune::entry* before = nullptr; // the one before the newest
    std::uint64_t newest_seq = 0;
    std::uint64_t before_seq = 0;
    for (const prune::entry& e : ws_.entries()) {
        std::uint64_t seq = 0;
        if (!log_name(e.name, seq)) {
            continue;
        }
        ++out.files;
        if (newest == nullptr || seq > newest_seq || (seq == newest_seq && e.name > newest->name)) {
            before = newest;
            before_seq = newest_seq;
            newest = &e;
            newest_seq = seq;
        } else if (before == nullptr || seq > before_seq ||
                   (seq == before_seq && e.name > before->name)) {
            before = &e;
            before_seq = seq;
        }
    }

    if (newest != nullptr) {
        name_len_ = newest->name.size() < name_room ? newest->name.size() : 0;
        std::memcpy(name_, newest->name.data(), name_len_);
        name_[name_len_] = '\0';
    }
    char before_name[name_room];
    std::size_t before_len = 0;
    if (before != nullptr && before->name.size() < name_room) {
        before_len = before->name.size();
        std::memcpy(before_name, before->name.data(), before_len);
    }
    // Ends the dry run: the pruner's directory descriptor is closed.
    (void)prune::apply(s, opt, ws_, rep);

    if (newest == nullptr) {
        next_seq_ = first_seq;
        if (auto r = open_file(first_seq, true); !r) {
            close();
            return fail(r.error());
        }
        out.created = true;
    } else {
        if (name_len_ == 0) {
            close();
            return fail(Reason::event_log_unavailable, ENAMETOOLONG, "eventlog: file name");
        }
        fd_ = ::openat(dir_fd_, name_, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
        if (fd_ < 0) {
            const int err = errno;
            close();
            return fail(Reason::event_log_unavailable, err, std::string_view(name_, name_len_));
        }
        next_seq_ = newest_seq;
        auto cut = recover(out.last);
        if (!cut) {
            close();
            return fail(cut.error());
        }
        out.cut_bytes = *cut;
        stats_.cut_bytes += *cut;
        if (size_ == 0 && before_len != 0) {
            // A file begun by a rotation and never written: the previous
            // run's last record is in the one before it.
            last_of(std::string_view(before_name, before_len), out.last);
        }
    }
    out.next_seq = next_seq_;
    std::memcpy(out.file, name_, name_len_);
    out.file[name_len_] = '\0';
    return out;
}

// Cuts a torn last line and finds the next seq; returns the bytes cut.
// Reads back from the end a chunk at a time (at most the file, which
// rotation bounds).
Result<std::uint64_t> log_dir::recover(last_record& last) noexcept {
    // Read through a descriptor of its own: the writer's is O_WRONLY.
    const int rd = ::openat(dir_fd_, name_, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rd < 0) {
        return fail(Reason::event_log_unavailable, errno, current_name());
    }
    auto r = recover_from(rd, last);
    ::close(rd);
    return r;
}

bool log_dir::line_end_before(int rd, std::uint64_t end, std::uint64_t& at) noexcept {
    while (end > 0) {
        const std::uint64_t n = end < chunk_size ? end : chunk_size;
        const std::uint64_t from = end - n;
        if (io::files::pread_at(rd, chunk_, n, static_cast<off_t>(from)) !=
            static_cast<ssize_t>(n)) {
            return false;
        }
        for (std::uint64_t k = n; k > 0; --k) {
            if (chunk_[k - 1] == '\n') {
                at = from + k;
                return true;
            }
        }
        end = from;
    }
    at = 0;
    return true;
}

void log_dir::read_last(int rd, std::uint64_t start, std::uint64_t end,
                        last_record& last) noexcept {
    const std::uint64_t len = end - start;
    const std::size_t peek = len < chunk_size ? static_cast<std::size_t>(len) : chunk_size;
    if (io::files::pread_at(rd, chunk_, peek, static_cast<off_t>(start)) ==
        static_cast<ssize_t>(peek)) {
        (void)parse_last_record(chunk_, peek, last);
    }
}

void log_dir::last_of(std::string_view name, last_record& last) noexcept {
    char n[name_room];
    if (name.size() >= sizeof n) {
        return;
    }
    std::memcpy(n, name.data(), name.size());
    n[name.size()] = '\0';
    const int rd = ::openat(dir_fd_, n, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rd < 0) {
        return;
    }
    struct stat st;
    std::uint64_t whole = 0;
    std::uint64_t start = 0;
    if (::fstat(rd, &st) == 0 &&
        line_end_before(rd, static_cast<std::uint64_t>(st.st_size), whole) && whole != 0 &&
        line_end_before(rd, whole - 1, start)) {
        read_last(rd, start, whole, last);
    }
    ::close(rd);
}

Result<std::uint64_t> log_dir::recover_from(int rd, last_record& last) noexcept {
    struct stat st;
    if (::fstat(rd, &st) != 0) {
        return fail(Reason::event_log_unavailable, errno, current_name());
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t whole = 0;
    if (!line_end_before(rd, size, whole)) {
        return fail(Reason::event_log_unavailable, errno, current_name());
    }
    const std::uint64_t cut = size - whole;
    if (cut != 0 && ::ftruncate(fd_, static_cast<off_t>(whole)) != 0) {
        return fail(Reason::event_log_unavailable, errno, current_name());
    }
    size_ = whole;
    if (whole == 0) {
        return cut; // empty: the name's seq is the next record's
    }
    std::uint64_t start = 0;
    if (!line_end_before(rd, whole - 1, start)) {
        return fail(Reason::event_log_unavailable, errno, current_name());
    }
    read_last(rd, start, whole, last);
    if (last.found) {
        next_seq_ = last.seq + 1;
        return cut;
    }
    // No seq on the last line (written by someone else): one per line.
    std::uint64_t lines = 0;
    for (std::uint64_t at = 0; at < whole;) {
        const std::uint64_t n = whole - at < chunk_size ? whole - at : chunk_size;
        if (io::files::pread_at(rd, chunk_, n, static_cast<off_t>(at)) != static_cast<ssize_t>(n)) {
            return fail(Reason::event_log_unavailable, errno, current_name());
        }
        for (std::uint64_t k = 0; k < n; ++k) {
            lines += chunk_[k] == '\n' ? 1 : 0;
        }
        at += n;
    }
    next_seq_ += lines;
    return cut;
}

Result<void> log_dir::open_file(std::uint64_t seq, bool create) noexcept {
    char b[name_room];
    text_out o(b, sizeof b);
    char digits[20];
    std::uint64_t v = seq;
    for (int k = 19; k >= 0; --k) {
        digits[k] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
    char stamp[16];
    stamp_into(stamp, status::wall_now_ns(), clock_trusted_);
    o.put(prefix).put(std::string_view(digits, 20)).put('-').put(std::string_view(stamp, 16));
    o.put(suffix);
    // The name always fits: 7 + 20 + 1 + 16 + 6 bytes.
    const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0);
    std::memcpy(name_, b, o.size());
    name_len_ = o.size();
    name_[name_len_] = '\0';
    fd_ = ::openat(dir_fd_, name_, flags, 0640);
    if (fd_ < 0) {
        const int err = errno;
        name_len_ = 0;
        return fail(Reason::event_log_unavailable, err, std::string_view(b, o.size()));
    }
    struct stat st;
    size_ = ::fstat(fd_, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    // The new name survives a power cut with the directory's fsync.
    (void)::fsync(dir_fd_);
    return {};
}

void log_dir::prune_old() noexcept {
    const std::string_view current = current_name();
    prune::options opt;
    opt.protected_names = std::span<const std::string_view>(&current, 1);
    opt.now_wall_ns = status::wall_now_ns();
    opt.clock_trusted = clock_trusted_;
    opt.check_open = false; // ours alone: see files.hpp
    prune::report rep;
    if (!prune::run(spec(), opt, ws_, rep)) {
        ++stats_.prune_errors;
    }
    stats_.deleted += rep.summary.deleted;
    if (rep.summary.unlink_failed != 0) {
        ++stats_.prune_errors;
    }
}

Result<void> log_dir::rotate(std::uint64_t seq) noexcept {
    if (fd_ >= 0) {
        (void)::fsync(fd_);
        ::close(fd_);
        fd_ = -1;
    }
    size_ = 0;
    if (auto r = open_file(seq, true); !r) {
        return r;
    }
    ++stats_.rotated;
    prune_old();
    return {};
}

Result<void> log_dir::append(const char* line, std::size_t len) noexcept {
    if (dir_fd_ < 0 || len == 0) {
        return fail(Reason::invalid_argument, 0, "eventlog: append");
    }
    std::uint64_t seq = next_seq_;
    const bool has_seq = line_seq(line, len, seq);
    if (fd_ < 0 || (size_ > 0 && size_ + len > max_file_bytes_)) {
        if (auto r = rotate(seq); !r) {
            ++stats_.write_errors;
            return r;
        }
    }
    ssize_t n;
    do {
        n = ::write(fd_, line, len);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(len)) {
        // ENOSPC (or EFBIG, EIO) part-way: a short write is the disk
        // filling (its errno would come only with the next call). Cut back
        // either way, so no torn line stays.
        const int err = n < 0 ? errno : ENOSPC;
        if (n > 0) {
            if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) {
                stats_.cut_bytes += static_cast<std::uint64_t>(n);
            }
        }
        ++stats_.write_errors;
        return fail(Reason::event_log_write_failed, err, current_name());
    }
    size_ += len;
    ++stats_.written;
    stats_.written_bytes += len;
    if (!has_seq || seq + 1 > next_seq_) {
        next_seq_ = has_seq ? seq + 1 : next_seq_ + 1;
    }
    return {};
}

Result<int> log_dir::begin_batch(std::uint64_t first_seq, std::size_t len) noexcept {
    if (dir_fd_ < 0 || len == 0) {
        return fail(Reason::invalid_argument, 0, "eventlog: begin_batch");
    }
    if (fd_ < 0 || (size_ > 0 && size_ + len > max_file_bytes_)) {
        if (auto r = rotate(first_seq); !r) {
            ++stats_.write_errors;
            return fail(r.error());
        }
    }
    return fd_;
}

Result<void> log_dir::end_batch(std::int64_t result, std::size_t len, std::uint32_t nlines,
                                std::uint64_t next_seq) noexcept {
    if (result != static_cast<std::int64_t>(len)) {
        const int err = result < 0 ? static_cast<int>(-result) : ENOSPC;
        if (result > 0 && fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) == 0) {
            stats_.cut_bytes += static_cast<std::uint64_t>(result);
        }
        ++stats_.write_errors;
        return fail(Reason::event_log_write_failed, err, current_name());
    }
    size_ += len;
    stats_.written += nlines;
    stats_.written_bytes += len;
    if (next_seq > next_seq_) {
        next_seq_ = next_seq;
    }
    return {};
}

Result<void> log_dir::sync() noexcept {
    if (fd_ < 0) {
        return fail(Reason::invalid_argument, 0, "eventlog: sync");
    }
    if (::fsync(fd_) != 0) {
        return fail(Reason::event_log_write_failed, errno, current_name());
    }
    return {};
}

} // namespace custos::eventlog
