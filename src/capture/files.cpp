#include "capture/files.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/text_out.hpp"
#include "io/files.hpp"
#include "prune/decide.hpp"
#include "status/json.hpp"

namespace custos::capture {

namespace {

constexpr std::string_view prefix = "output-";
constexpr std::string_view glob = "output-*.log";
constexpr std::size_t chunk_size = 4096;
// output-<20 digits>.log and its NUL.
constexpr std::size_t archive_room = 7 + 20 + 4 + 1;

void archive_name(char* b, std::uint64_t seq) noexcept {
    std::memcpy(b, prefix.data(), prefix.size());
    std::uint64_t v = seq;
    for (int k = 19; k >= 0; --k) {
        b[prefix.size() + static_cast<std::size_t>(k)] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
    std::memcpy(b + prefix.size() + 20, ".log", 5);
}

} // namespace

std::string_view errno_name(int err) noexcept {
    switch (err) {
    case ENOSPC:
        return "ENOSPC";
    case EIO:
        return "EIO";
    case EFBIG:
        return "EFBIG";
    case EDQUOT:
        return "EDQUOT";
    case EROFS:
        return "EROFS";
    case EACCES:
        return "EACCES";
    case EPERM:
        return "EPERM";
    case ENOENT:
        return "ENOENT";
    case EBADF:
        return "EBADF";
    case EMFILE:
        return "EMFILE";
    case ENFILE:
        return "ENFILE";
    case ENOMEM:
        return "ENOMEM";
    default:
        return "errno";
    }
}

files::~files() {
    close();
}

void files::close() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (dir_fd_ >= 0) {
        ::close(dir_fd_);
        dir_fd_ = -1;
    }
    size_ = 0;
}

Result<void> files::reserve(arena& mem, std::string_view dir, std::string_view service) noexcept {
    path_ = nullptr;
    path_len_ = 0;
    if (dir.empty() || dir[0] != '/') {
        return fail(Error(Reason::invalid_argument, 0, dir)
                        .with_resolution("Give the log directory as an absolute path"));
    }
    if (service.empty() || service == "." || service == ".." ||
        service.find('/') != std::string_view::npos ||
        service.find('\0') != std::string_view::npos) {
        return fail(Error(Reason::invalid_argument, 0, service)
                        .with_resolution("A captured service's name must be usable as a "
                                         "directory name (no '/', not . or ..)"));
    }
    while (dir.size() > 1 && dir.back() == '/') {
        dir.remove_suffix(1);
    }
    const std::size_t len = dir.size() + 1 + service.size();
    if (len >= PATH_MAX) {
        return fail(Reason::invalid_argument, ENAMETOOLONG, service);
    }
    auto* p = static_cast<char*>(mem.take_unzeroed(len + 1, 1));
    if (p == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "capture files");
    }
    std::memcpy(p, dir.data(), dir.size());
    std::size_t at = dir.size();
    if (dir != "/") {
        p[at++] = '/';
    }
    std::memcpy(p + at, service.data(), service.size());
    at += service.size();
    p[at] = '\0';
    path_ = p;
    path_len_ = at;
    return {};
}

PruneSpec files::spec() const noexcept {
    PruneSpec s;
    s.name = "capture";
    s.dir = path();
    s.glob = glob;
    s.order = PruneOrder::seq;
    s.seq_prefix = prefix;
    // The current file counts among the files kept. files_kept 1: no
    // archives, so no rule (rotation empties `current` instead).
    s.keep_newest = files_kept_ > 1 ? files_kept_ - 1 : 0;
    s.max_files = ws_ != nullptr ? ws_->capacity() : 1;
    // No age rule: the wall clock plays no part (options::now_wall_ns).
    return s;
}

Result<files_report> files::open(prune::workspace& ws, std::uint64_t file_bytes,
                                 std::uint32_t files_kept) noexcept {
    close();
    pending_drop_ = 0;
    pending_errno_ = 0;
    if (path_ == nullptr) {
        return fail(Reason::invalid_argument, 0, "capture files: not reserved");
    }
    if (file_bytes == 0 || files_kept == 0) {
        return fail(Error(Reason::invalid_argument, 0, "capture: output_file_bytes, output_files")
                        .with_resolution("Set output_file_bytes and output_files above 0"));
    }
    if (ws.capacity() < scan_capacity(files_kept)) {
        return fail(Reason::invalid_argument, 0, "capture files: pruner workspace too small");
    }
    ws_ = &ws;
    file_bytes_ = file_bytes;
    files_kept_ = files_kept;
    if (::mkdir(path_, 0750) != 0 && errno != EEXIST) {
        return fail(Reason::capture_unavailable, errno, path());
    }
    dir_fd_ = ::open(path_, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) {
        return fail(Reason::capture_unavailable, errno, path());
    }

    // The archives, by the pruner's scan; the extra ones an earlier run
    // with a larger output_files kept go now.
    const PruneSpec s = spec();
    prune::options opt;
    opt.check_open = false; // ours alone: see files.hpp
    prune::report rep;
    if (auto r = prune::plan(s, opt, *ws_, rep); !r) {
        close();
        return fail(r.error());
    }
    files_report out;
    std::uint64_t top = 0;
    for (const prune::entry& e : ws_->entries()) {
        if (e.classified) {
            ++out.archives;
            top = e.seq > top ? e.seq : top;
        }
    }
    (void)prune::apply(s, opt, *ws_, rep);
    stats_.deleted += rep.summary.deleted;
    next_seq_ = top + 1;
    out.next_seq = next_seq_;

    struct stat st;
    out.created = ::fstatat(dir_fd_, current_name.data(), &st, AT_SYMLINK_NOFOLLOW) != 0;
    if (auto r = open_current(true); !r) {
        close();
        return fail(r.error());
    }
    auto cut = cut_torn();
    if (!cut) {
        close();
        return fail(cut.error());
    }
    out.cut_bytes = *cut;
    stats_.cut_bytes += *cut;
    out.size = size_;
    return out;
}

Result<void> files::open_current(bool create) noexcept {
    // O_NONBLOCK is the reactor's rule; a regular file ignores it, a FIFO
    // (a test's slow disk) honours it.
    const int flags =
        O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0);
    fd_ = ::openat(dir_fd_, current_name.data(), flags, 0640);
    if (fd_ < 0) {
        return fail(Reason::capture_unavailable, errno, path());
    }
    struct stat st;
    const bool known = ::fstat(fd_, &st) == 0;
    stream_ = known && S_ISFIFO(st.st_mode);
    size_ = known && !stream_ ? static_cast<std::uint64_t>(st.st_size) : 0;
    return {};
}

// Cuts `current` back to just past its last '\n'; returns the bytes cut.
// Reads back from the end a chunk at a time (at most the file, which
// rotation bounds) through a descriptor of its own: the writer's is
// O_WRONLY.
Result<std::uint64_t> files::cut_torn() noexcept {
    if (size_ == 0) {
        return std::uint64_t{0};
    }
    const int rd = ::openat(dir_fd_, current_name.data(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rd < 0) {
        return fail(Reason::capture_unavailable, errno, path());
    }
    char chunk[chunk_size];
    std::uint64_t end = size_;
    std::uint64_t whole = 0;
    bool found = false;
    while (end > 0 && !found) {
        const std::uint64_t n = end < chunk_size ? end : chunk_size;
        const std::uint64_t from = end - n;
        if (io::files::pread_at(rd, chunk, static_cast<std::size_t>(n), static_cast<off_t>(from)) !=
            static_cast<ssize_t>(n)) {
            const int err = errno;
            ::close(rd);
            return fail(Reason::capture_unavailable, err, path());
        }
        for (std::uint64_t k = n; k > 0; --k) {
            if (chunk[k - 1] == '\n') {
                whole = from + k;
                found = true;
                break;
            }
        }
        end = from;
    }
    ::close(rd);
    const std::uint64_t cut = size_ - whole;
    if (cut != 0 && ::ftruncate(fd_, static_cast<off_t>(whole)) != 0) {
        return fail(Reason::capture_unavailable, errno, path());
    }
    size_ = whole;
    return cut;
}

void files::prune_old() noexcept {
    prune::options opt;
    opt.check_open = false; // ours alone: see files.hpp
    prune::report rep;
    if (!prune::run(spec(), opt, *ws_, rep)) {
        ++stats_.prune_errors;
    }
    stats_.deleted += rep.summary.deleted;
    if (rep.summary.unlink_failed != 0) {
        ++stats_.prune_errors;
    }
}

Result<void> files::rotate() noexcept {
    if (files_kept_ == 1) {
        // No archives: the one file starts over.
        if (::ftruncate(fd_, 0) != 0) {
            return fail(Reason::capture_write_failed, errno, path());
        }
        size_ = 0;
        ++stats_.rotated;
        return {};
    }
    char name[archive_room];
    archive_name(name, next_seq_);
    if (fd_ >= 0) {
        if (::renameat(dir_fd_, current_name.data(), dir_fd_, name) != 0) {
            return fail(Reason::capture_write_failed, errno, path());
        }
        ::close(fd_);
        fd_ = -1;
        ++next_seq_;
        ++stats_.rotated;
    }
    size_ = 0;
    // O_CREAT without O_EXCL: a `current` someone else made is continued.
    if (auto r = open_current(true); !r) {
        return fail(Reason::capture_write_failed, r.error().sys_errno(), path());
    }
    prune_old();
    return {};
}

void files::drop(std::size_t n, int err) noexcept {
    if (pending_drop_ == 0) {
        pending_errno_ = err;
    }
    pending_drop_ += n;
    stats_.dropped_bytes += n;
}

// A gap the caller reported with a write that did not happen: the next
// write's marker reports it.
void files::carry(std::uint64_t gap, int err) noexcept {
    if (gap == 0) {
        return;
    }
    if (pending_drop_ == 0) {
        pending_errno_ = err;
    }
    pending_drop_ += gap;
}

void files::drop_unwritten(std::size_t n) noexcept {
    stats_.dropped_bytes += n;
    stats_.unwritten_bytes += n;
}

Result<write_plan> files::begin_write(char* lines, std::size_t len, const stamp& now,
                                      std::uint64_t gap) noexcept {
    if (dir_fd_ < 0) {
        return fail(Reason::invalid_argument, 0, "capture files: write before open");
    }
    // After drops, the marker `<ts> custos dropped N bytes (ENOSPC)` goes
    // in the same write as the lines after it, in the room before them:
    // it is in the file only when they are.
    write_plan w;
    w.gap = gap;
    if (pending_drop_ + gap != 0) {
        char m[marker_room];
        const std::size_t tn = put_time(m, now);
        text_out o(m + tn, sizeof m - tn);
        o.put(" custos dropped ").put_u64(pending_drop_ + gap).put(" bytes (");
        o.put(pending_drop_ != 0 ? errno_name(pending_errno_)
                                 : std::string_view("the disk was too slow"));
        o.put(")\n");
        w.marker = tn + o.size();
        w.marked = pending_drop_ + gap;
        std::memcpy(lines - w.marker, m, w.marker);
    }
    w.data = lines - w.marker;
    w.len = w.marker + len;
    if (fd_ < 0) {
        // A rotation could not begin a new file: open it again now.
        if (auto r = open_current(true); !r) {
            carry(gap, r.error().sys_errno());
            drop(len, r.error().sys_errno());
            ++stats_.write_errors;
            return fail(Reason::capture_write_failed, r.error().sys_errno(), path());
        }
    }
    // Rotation between batches: a non-empty file is never taken past
    // file_bytes (a batch longer than a file goes alone). A stream is
    // never rotated: its reader keeps it.
    if (!stream_ && size_ > 0 && size_ + w.len > file_bytes_) {
        if (auto r = rotate(); !r) {
            carry(gap, r.error().sys_errno());
            drop(len, r.error().sys_errno());
            ++stats_.write_errors;
            return fail(r.error());
        }
    }
    w.fd = fd_;
    return w;
}

Result<std::size_t> files::end_write(write_plan& w, std::int64_t result) noexcept {
    const std::size_t want = w.len - w.done;
    if (result == static_cast<std::int64_t>(want) ||
        (stream_ && result > 0 && result < static_cast<std::int64_t>(want))) {
        const auto n = static_cast<std::size_t>(result);
        size_ += n;
        stats_.written_bytes += n;
        w.done += n;
        if (w.done < w.len) {
            return w.len - w.done; // a stream took part: the rest follows
        }
        if (w.marker != 0) {
            pending_drop_ -= w.marked - w.gap; // drops since the write began stay pending
            pending_errno_ = pending_drop_ != 0 ? pending_errno_ : 0;
            ++stats_.markers;
        }
        return std::size_t{0};
    }
    // A short write to a file is the disk filling (its errno would come
    // only with the next call). Cut back either way, so no torn line stays
    // (a stream cannot be cut: what it took stays).
    const int err = result < 0 ? static_cast<int>(-result) : ENOSPC;
    if (result > 0 && !stream_ && w.fd == fd_ && ::ftruncate(fd_, static_cast<off_t>(size_)) == 0) {
        stats_.cut_bytes += static_cast<std::uint64_t>(result);
    }
    const std::size_t lines_done = w.done > w.marker ? w.done - w.marker : 0;
    carry(w.gap, err);
    drop(w.len - w.marker - lines_done, err);
    ++stats_.write_errors;
    return fail(Reason::capture_write_failed, err, path());
}

Result<void> files::append(char* lines, std::size_t len, const stamp& now) noexcept {
    if (len == 0) {
        return {};
    }
    auto w = begin_write(lines, len, now);
    if (!w) {
        return fail(w.error());
    }
    for (;;) {
        const std::size_t left = w->len - w->done;
        ssize_t n;
        do {
            n = ::write(w->fd, w->data + w->done, left);
        } while (n < 0 && errno == EINTR);
        auto r = end_write(*w, n < 0 ? -static_cast<std::int64_t>(errno) : n);
        if (!r) {
            return fail(r.error());
        }
        if (*r == 0) {
            return {};
        }
    }
}

std::uint64_t files::free_oldest() noexcept {
    if (dir_fd_ < 0 || ws_ == nullptr) {
        return 0;
    }
    // How many archives there are (a dry run), then a run that keeps all
    // but the oldest: keep_newest n - 1, or, for the last one, a free-space
    // floor no filesystem reaches.
    PruneSpec s = spec();
    s.keep_newest = 0;
    prune::options opt;
    opt.dry_run = true;
    opt.check_open = false;
    prune::report rep;
    if (!prune::plan(s, opt, *ws_, rep)) {
        ++stats_.prune_errors;
        return 0;
    }
    const std::uint32_t n = rep.summary.classified;
    (void)prune::apply(s, opt, *ws_, rep);
    if (n == 0) {
        return 0;
    }
    if (n >= 2) {
        s.keep_newest = n - 1;
    } else {
        s.min_free_bytes = UINT64_MAX;
    }
    opt.dry_run = false;
    prune::report del;
    if (!prune::run(s, opt, *ws_, del)) {
        ++stats_.prune_errors;
        return 0;
    }
    if (del.summary.unlink_failed != 0) {
        ++stats_.prune_errors;
    }
    stats_.deleted += del.summary.deleted;
    stats_.freed_bytes += del.summary.deleted_bytes;
    return del.summary.deleted_bytes;
}

} // namespace custos::capture
