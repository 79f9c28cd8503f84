// The event log's files read back: log_dir::read_since() (files.hpp), and
// the directory scan and bisection it is made of. Apart from files.cpp,
// which writes them: reading touches no state the writer keeps but the
// directory's descriptor.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "eventlog/files.hpp"
#include "eventlog/record.hpp"
#include "io/files.hpp"

namespace custos::eventlog {

// read_since() returns every line this log writes.
static_assert(log_dir::replay_chunk >= max_line);

Result<bool> log_dir::find_file(bool start, std::uint64_t& seq, char* name,
                                std::size_t& name_len) const noexcept {
    if (::lseek(dir_fd_, 0, SEEK_SET) < 0) {
        return fail(Reason::event_log_unavailable, errno, "eventlog: the directory");
    }
    const std::uint64_t key = seq;
    const std::string_view key_name(name, start ? 0 : name_len);
    // (seq, name) order: a rotation that had to begin a second file for
    // one seq sorts it after the first by its later time.
    auto before = [](std::uint64_t a, std::string_view an, std::uint64_t b, std::string_view bn) {
        return a < b || (a == b && an < bn);
    };
    bool found = false;
    bool found_at_or_below = false; // start: a file whose seq is <= key
    std::uint64_t best = 0;
    char best_name[name_room];
    std::size_t best_len = 0;
    std::uint32_t matched = 0;
    alignas(8) char buf[2048];
    for (;;) {
        const ssize_t got = ::getdents64(dir_fd_, buf, sizeof buf);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return fail(Reason::event_log_unavailable, errno, "eventlog: the directory");
        }
        if (got == 0) {
            break;
        }
        std::size_t step = 0;
        for (std::size_t at = 0; at < static_cast<std::size_t>(got); at += step) {
            // Fields by offset and memcpy: -Wcast-align, as the pruner's scan.
            unsigned short reclen = 0;
            std::memcpy(&reclen, buf + at + offsetof(struct dirent64, d_reclen), sizeof reclen);
            if (reclen == 0) {
                return fail(Reason::event_log_unavailable, EIO, "eventlog: the directory");
            }
            step = reclen;
            const char* n = buf + at + offsetof(struct dirent64, d_name);
            const std::string_view nv(n, ::strnlen(n, reclen));
            std::uint64_t v = 0;
            if (nv.size() >= name_room || !name_seq(nv, v)) {
                continue;
            }
            if (++matched > scan_cap_) {
                return fail(Reason::prune_too_many_files, 0, "eventlog: the directory");
            }
            const std::string_view bn(best_name, best_len);
            bool take = false;
            if (!start) {
                take = before(key, key_name, v, nv) && (!found || before(v, nv, best, bn));
            } else if (v <= key) {
                // The newest at or below `seq`; it beats any file above.
                take = !found_at_or_below || before(best, bn, v, nv);
                found_at_or_below = found_at_or_below || take;
            } else if (!found_at_or_below) {
                take = !found || before(v, nv, best, bn); // else the oldest
            }
            if (take) {
                found = true;
                best = v;
                std::memcpy(best_name, nv.data(), nv.size());
                best_len = nv.size();
            }
        }
    }
    if (!found) {
        return false;
    }
    seq = best;
    std::memcpy(name, best_name, best_len);
    name[best_len] = '\0';
    name_len = best_len;
    return true;
}

std::uint64_t log_dir::seek_near(int fd, std::uint64_t from, std::uint64_t& read) noexcept {
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        return 0;
    }
    // lo: a line's start with every line before it below `from` (0 at
    // first); hi: past the first line at or above `from`, give or take the
    // line that straddles it. The lines of a file are in seq order.
    std::uint64_t lo = 0;
    auto hi = static_cast<std::uint64_t>(st.st_size);
    while (hi - lo > replay_chunk) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        const ssize_t n = io::files::pread_at(fd, replay_, replay_chunk, static_cast<off_t>(mid));
        if (n <= 0) {
            break;
        }
        read += static_cast<std::uint64_t>(n);
        const auto got = static_cast<std::size_t>(n);
        const void* nl = std::memchr(replay_, '\n', got);
        if (nl == nullptr) {
            break; // a line longer than the buffer: read on from lo
        }
        const std::size_t k = static_cast<std::size_t>(static_cast<const char*>(nl) - replay_) + 1;
        std::uint64_t seq = 0;
        // No line begins after mid within the read and before hi, or one
        // without a seq (or cut by the buffer): read on from lo.
        if (k >= got || mid + k >= hi || !line_seq(replay_ + k, got - k, seq)) {
            break;
        }
        if (seq < from) {
            lo = mid + k;
        } else {
            hi = mid;
        }
    }
    return lo;
}

Result<replay_page> log_dir::read_since(std::uint64_t since, std::uint32_t limit, char* out,
                                        std::size_t cap) noexcept {
    if (dir_fd_ < 0 || replay_ == nullptr) {
        return fail(Reason::invalid_argument, 0, "eventlog: read_since");
    }
    replay_page page;
    page.next = since;
    // Seqs begin at 1: since=0 asks for everything and loses nothing before it.
    const std::uint64_t from = since == 0 ? 1 : since;
    bool found = false; // a record at or after `since` was seen
    bool done = false;
    std::uint64_t file_seq = since;
    char name[name_room];
    std::size_t name_len = 0;
    auto f = find_file(true, file_seq, name, name_len);
    if (!f) {
        return fail(f.error());
    }
    bool have_file = *f;
    std::uint64_t budget = read_budget();
    while (have_file && !done && page.files < scan_cap_) {
        ++page.files;
        const int fd = ::openat(dir_fd_, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT) {
            ++page.vanished;                   // rotated away since the scan: the next file goes on
        } else if (fd < 0 && errno != ELOOP) { // ELOOP: a symlink, not a log file
            const int err = errno;
            if (page.lines != 0) {
                break; // what was read so far; the next call meets it again
            }
            return fail(Reason::event_log_unavailable, err, std::string_view(name, name_len));
        }
        // In the first file, `since` may be far in: bisect to near it.
        std::uint64_t sought = 0; // bytes the bisection read: not in the budget
        std::uint64_t at =
            fd >= 0 && page.files == 1 && from > file_seq ? seek_near(fd, from, sought) : 0;
        page.read_bytes += sought;
        budget += sought;
        std::size_t have = 0;  // bytes of an unfinished line at the buffer's start
        bool skipping = false; // within a line longer than the buffer
        while (fd >= 0 && !done) {
            if (page.read_bytes >= budget) {
                page.spent = true;
                done = true;
                break;
            }
            const ssize_t n = io::files::pread_at(fd, replay_ + have, replay_chunk - have,
                                                  static_cast<off_t>(at));
            if (n <= 0) {
                break; // the end (an unfinished last line stays out), or a read error
            }
            at += static_cast<std::uint64_t>(n);
            page.read_bytes += static_cast<std::uint64_t>(n);
            have += static_cast<std::size_t>(n);
            std::size_t pos = 0;
            for (;;) {
                const void* nl = std::memchr(replay_ + pos, '\n', have - pos);
                if (nl == nullptr) {
                    break;
                }
                const char* line = replay_ + pos;
                const std::size_t end =
                    static_cast<std::size_t>(static_cast<const char*>(nl) - replay_) + 1;
                const std::size_t len = end - pos;
                pos = end;
                std::uint64_t seq = 0;
                if (skipping) {
                    skipping = false;
                    continue;
                }
                if (!line_seq(line, len, seq) || seq < from) {
                    continue;
                }
                if (!found) {
                    found = true;
                    page.lost = seq - from;
                }
                if (page.lines >= limit || page.bytes + len > cap) {
                    page.next = seq;
                    done = true;
                    break;
                }
                std::memcpy(out + page.bytes, line, len);
                page.bytes += len;
                ++page.lines;
                page.next = seq + 1;
            }
            if (pos == 0 && have == replay_chunk) {
                skipping = true; // no '\n' in a full buffer: the line is dropped
                have = 0;
            } else {
                std::memmove(replay_, replay_ + pos, have - pos);
                have -= pos;
            }
        }
        if (fd >= 0) {
            ::close(fd);
        }
        if (done) {
            break;
        }
        f = find_file(false, file_seq, name, name_len);
        if (!f) {
            if (page.lines != 0) {
                break;
            }
            return fail(f.error());
        }
        have_file = *f;
    }
    return page;
}

} // namespace custos::eventlog
