// Multi-threaded stress of the lock-free edges. Run natively, under
// ThreadSanitizer (CI's TSan build) and on ARM under qemu-user, whose weaker
// memory model is where a missing fence shows.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/mpsc_ring.hpp"
#include "core/seqlock.hpp"
#include "doctest.hpp"
#include "process/fd_closer.hpp"

using namespace custos;

namespace {

struct item {
    std::uint32_t producer;
    std::uint32_t seq;
    std::uint32_t check; // a function of the other two: detects torn cells
};

std::uint32_t checksum(std::uint32_t p, std::uint32_t s) {
    return (p * 2654435761u) ^ (s + 7);
}

} // namespace

TEST_CASE("mpsc_ring: single thread fills, reports full, drains in order") {
    mpsc_ring<std::uint32_t, 8> ring;
    ring.begin_drain();
    CHECK(ring.try_push(0) == push_result::pushed_wake); // first since the drain began
    for (std::uint32_t i = 1; i < 8; ++i) {
        CHECK(ring.try_push(i) == push_result::pushed); // no second doorbell
    }
    CHECK(ring.try_push(99) == push_result::full);
    std::uint32_t v = 0;
    for (std::uint32_t i = 0; i < 8; ++i) {
        REQUIRE(ring.try_pop(v));
        CHECK(v == i);
    }
    CHECK_FALSE(ring.try_pop(v));
    // Without a new begin_drain() the doorbell stays rung: no wake needed.
    CHECK(ring.try_push(8) == push_result::pushed);
    ring.begin_drain();
    REQUIRE(ring.try_pop(v));
    CHECK(v == 8);
    // The counter was reset after the last publication: the next one rings.
    CHECK(ring.try_push(9) == push_result::pushed_wake);
    // Wraps many times around its 8 cells.
    for (std::uint32_t lap = 0; lap < 1000; ++lap) {
        REQUIRE(ring.try_pop(v));
        CHECK(ring.try_push(v + 1) != push_result::full);
    }
}

TEST_CASE("mpsc_ring: many producers, no loss, no duplicate, FIFO per producer, no lost wake-up") {
    constexpr std::uint32_t producers = 4;
    constexpr std::uint32_t per_producer = 200000;
    mpsc_ring<item, 64> ring; // small: producers keep hitting "full"
    // The doorbell, as an eventfd would count it: producers add on
    // pushed_wake, the consumer takes everything before draining.
    std::atomic<std::uint32_t> doorbell{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (std::uint32_t p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            while (!go.load(std::memory_order_acquire)) {
            }
            for (std::uint32_t s = 0; s < per_producer;) {
                switch (ring.try_push({p, s, checksum(p, s)})) {
                case push_result::full:
                    std::this_thread::yield();
                    continue;
                case push_result::pushed_wake:
                    doorbell.fetch_add(1, std::memory_order_release);
                    break;
                case push_result::pushed:
                    break;
                }
                ++s;
            }
        });
    }
    go.store(true, std::memory_order_release);

    std::uint32_t next[producers] = {};
    std::uint64_t received = 0;
    std::uint64_t errors = 0;
    std::uint64_t wakeups = 0;
    // The consumer only drains after taking the doorbell, exactly as the
    // reactor does: if a wake-up were ever lost, this loop would stall with
    // items left in the ring; 30 s without a doorbell ends it as a failure.
    auto last_ring = std::chrono::steady_clock::now();
    bool stalled = false;
    while (received < std::uint64_t{producers} * per_producer) {
        if (doorbell.exchange(0, std::memory_order_acquire) == 0) {
            if (std::chrono::steady_clock::now() - last_ring > std::chrono::seconds(30)) {
                stalled = true;
                break;
            }
            std::this_thread::yield();
            continue;
        }
        last_ring = std::chrono::steady_clock::now();
        ++wakeups;
        ring.begin_drain();
        item it;
        while (ring.try_pop(it)) {
            ++received;
            if (it.producer >= producers || it.check != checksum(it.producer, it.seq) ||
                it.seq != next[it.producer]) {
                ++errors;
            } else {
                ++next[it.producer];
            }
        }
    }
    REQUIRE_FALSE(stalled); // a lost wake-up: producers would block forever on a full ring
    for (auto& t : threads) {
        t.join();
    }
    CHECK(errors == 0);
    CHECK(received == std::uint64_t{producers} * per_producer);
    for (std::uint32_t p = 0; p < producers; ++p) {
        CHECK(next[p] == per_producer);
    }
    // Batching: far fewer doorbells than items.
    CHECK(wakeups < received);
    MESSAGE("items " << received << ", consumer wake-ups " << wakeups);
}

TEST_CASE("seqlock: readers never see a torn snapshot") {
    struct snapshot {
        std::uint64_t version;
        std::uint32_t words[13]; // all equal to (version * 3) truncated
        std::uint64_t tail;      // == version
    };
    seqlock<snapshot> lock;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> torn{0};
    std::atomic<std::uint64_t> reads{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < 3; ++i) {
        readers.emplace_back([&] {
            std::uint64_t last = 0;
            while (!stop.load(std::memory_order_acquire)) {
                snapshot s = lock.load();
                bool ok = s.tail == s.version && s.version >= last;
                for (std::uint32_t w : s.words) {
                    ok = ok && w == static_cast<std::uint32_t>(s.version * 3);
                }
                if (!ok) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                last = s.version;
                // Relaxed: a progress count the writer polls, no data ordered by it.
                reads.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    // At least this many writes, and on until the readers have made this many
    // reads concurrently with them: the test must really overlap the two,
    // however the threads get scheduled.
    constexpr std::uint64_t min_writes = 300000;
    constexpr std::uint64_t min_reads = 100000;
    std::uint64_t writes = 0;
    for (std::uint64_t v = 1; v <= min_writes || reads.load(std::memory_order_relaxed) < min_reads;
         ++v) {
        writes = v;
        snapshot s{};
        s.version = v;
        for (auto& w : s.words) {
            w = static_cast<std::uint32_t>(v * 3);
        }
        s.tail = v;
        lock.store(s);
    }
    stop.store(true, std::memory_order_release);
    for (auto& t : readers) {
        t.join();
    }
    CHECK(torn.load() == 0);
    CHECK(lock.load().version == writes);
    CHECK(lock.version() >= writes);
    CHECK(reads.load() >= min_reads);
    MESSAGE("reads " << reads.load() << " during " << writes << " writes");
}

TEST_CASE("seqlock: a partial read returns the sequence of the store it copied") {
    struct record {
        std::uint64_t version; // store k writes k: its sequence is 2 + 2k
        std::uint32_t pad[20];
        std::uint64_t tail; // == version
    };
    seqlock<record> lock;
    CHECK(lock.sequence() == 2); // the constructor's store
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> wrong{0};
    std::atomic<std::uint64_t> reads{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < 2; ++i) {
        readers.emplace_back([&] {
            record r{};
            while (!stop.load(std::memory_order_acquire)) {
                const std::uint32_t seq = lock.load_parts(r, [](const auto& p) {
                    p.copy(offsetof(record, version), sizeof(std::uint64_t));
                    p.copy(offsetof(record, tail), sizeof(std::uint64_t));
                });
                const std::uint32_t now = lock.sequence();
                // The copy is the store the sequence names; the record's
                // sequence has not gone back since.
                if (r.tail != r.version || seq != 2 + 2 * r.version || (seq & 1) != 0 ||
                    now - seq > 0x8000'0000u) {
                    wrong.fetch_add(1, std::memory_order_relaxed);
                }
                // Relaxed: a progress count the writer polls, no data ordered by it.
                reads.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    constexpr std::uint64_t min_writes = 100000;
    constexpr std::uint64_t min_reads = 50000;
    std::uint64_t writes = 0;
    for (std::uint64_t v = 1; v <= min_writes || reads.load(std::memory_order_relaxed) < min_reads;
         ++v) {
        writes = v;
        record r{};
        r.version = v;
        r.tail = v;
        lock.store(r);
    }
    stop.store(true, std::memory_order_release);
    for (auto& t : readers) {
        t.join();
    }
    CHECK(wrong.load() == 0);
    CHECK(lock.sequence() == static_cast<std::uint32_t>(2 + 2 * writes));
}

TEST_CASE("fd_closer: every descriptor handed over is closed on its thread, in bounded batches; "
          "a full ring refuses and the caller keeps the descriptor") {
    custos::process::fd_closer closer;
    CHECK_FALSE(closer.try_close(0)); // not started: refused, nothing closed
    REQUIRE(closer.start().has_value());
    constexpr int rounds = 2000;
    std::vector<int> peers;
    int handed = 0;
    for (int k = 0; k < rounds; ++k) {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        // The write end goes to the closer; the read end sees EOF once it
        // has been closed.
        while (!closer.try_close(p[1])) {
            std::this_thread::yield(); // full: the caller keeps it and retries
        }
        ++handed;
        peers.push_back(p[0]);
        if (peers.size() == 64) {
            for (int fd : peers) {
                char c;
                CHECK(::read(fd, &c, 1) == 0); // blocks until the closer closed it
                ::close(fd);
            }
            peers.clear();
        }
    }
    for (int fd : peers) {
        char c;
        CHECK(::read(fd, &c, 1) == 0);
        ::close(fd);
    }
    closer.stop();
    CHECK(closer.closed() == static_cast<std::uint64_t>(handed));
    CHECK(closer.pending() == 0);
}
