// The fixed-capacity containers of src/core: intrusive_list, fixed_vector,
// slot_pool and index_map. Each is exercised at its edges (empty, full,
// stale) and index_map's backward-shift deletion against a reference map.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/fixed_vector.hpp"
#include "core/index_map.hpp"
#include "core/intrusive_list.hpp"
#include "core/prng.hpp" // the tests' fixed-seed generator
#include "core/slot_pool.hpp"

using custos::fixed_vector;
using custos::index_map;
using custos::intrusive_list;
using custos::list_hook;
using custos::slot_handle;
using custos::slot_pool;

// ---------------------------------------------------------------------------
// intrusive_list

namespace {

struct item : list_hook<item> {
    explicit item(int v) : value(v) {}
    int value;
};

struct by_age {};
struct by_name {};

// One object on two lists at once, through two differently tagged hooks.
struct person : list_hook<by_age>, list_hook<by_name> {
    explicit person(int v) : value(v) {}
    int value;
};

template <class T, class Tag>
std::vector<int> values(intrusive_list<T, Tag>& l) {
    std::vector<int> out;
    for (T* p = l.front(); p != nullptr; p = l.next(*p)) {
        out.push_back(p->value);
    }
    return out;
}

using ints = std::vector<int>;

} // namespace

TEST_CASE("intrusive_list: a new list is empty and has no front, back or pop") {
    intrusive_list<item> l;
    CHECK(l.empty());
    CHECK(l.size_slow() == 0);
    CHECK(l.front() == nullptr);
    CHECK(l.back() == nullptr);
    CHECK(l.pop_front() == nullptr);
    CHECK(l.empty());
}

TEST_CASE("intrusive_list: push_back and push_front order, front and back") {
    item a(1), b(2), c(3), d(4);
    intrusive_list<item> l;
    CHECK_FALSE(a.is_linked());
    l.push_back(b);
    l.push_back(c);
    l.push_front(a);
    l.push_back(d);
    CHECK_FALSE(l.empty());
    CHECK(l.size_slow() == 4);
    CHECK(values(l) == ints{1, 2, 3, 4});
    CHECK(l.front() == &a);
    CHECK(l.back() == &d);
    CHECK(a.is_linked());
    CHECK(d.is_linked());
    CHECK(l.next(d) == nullptr);
    CHECK(l.next(a) == &b);
    l.clear();
}

TEST_CASE("intrusive_list: pop_front takes elements in order and unlinks them") {
    item a(1), b(2);
    intrusive_list<item> l;
    l.push_back(a);
    l.push_back(b);
    CHECK(l.pop_front() == &a);
    CHECK_FALSE(a.is_linked());
    CHECK(b.is_linked());
    CHECK(l.pop_front() == &b);
    CHECK_FALSE(b.is_linked());
    CHECK(l.pop_front() == nullptr);
    CHECK(l.empty());
}

TEST_CASE("intrusive_list: unlink from the middle, the front and the back in O(1)") {
    item a(1), b(2), c(3), d(4);
    intrusive_list<item> l;
    for (item* p : {&a, &b, &c, &d}) {
        l.push_back(*p);
    }
    b.unlink();
    CHECK_FALSE(b.is_linked());
    CHECK(values(l) == ints{1, 3, 4});
    a.unlink();
    CHECK(values(l) == ints{3, 4});
    CHECK(l.front() == &c);
    d.unlink();
    CHECK(values(l) == ints{3});
    CHECK(l.back() == &c);
    c.unlink();
    CHECK(l.empty());
    CHECK(l.front() == nullptr);
    CHECK(l.back() == nullptr);

    // An unlinked element can go back on a list.
    l.push_back(b);
    CHECK(values(l) == ints{2});
    l.clear();
}

TEST_CASE("intrusive_list: an element moves from one list to another after unlink") {
    item a(1);
    intrusive_list<item> l1, l2;
    l1.push_back(a);
    a.unlink();
    l2.push_back(a);
    CHECK(l1.empty());
    CHECK(values(l2) == ints{1});
    l2.clear();
}

TEST_CASE("intrusive_list: clear unlinks every element") {
    item a(1), b(2), c(3);
    intrusive_list<item> l;
    l.push_back(a);
    l.push_back(b);
    l.push_back(c);
    l.clear();
    CHECK(l.empty());
    CHECK(l.size_slow() == 0);
    CHECK_FALSE(a.is_linked());
    CHECK_FALSE(b.is_linked());
    CHECK_FALSE(c.is_linked());
    l.clear(); // clearing an empty list is a no-op
    CHECK(l.empty());
}

TEST_CASE("intrusive_list: splice_back moves all of another list, keeping order") {
    item a(1), b(2), c(3), d(4), e(5);
    intrusive_list<item> l1, l2;

    SUBCASE("onto a non-empty list") {
        l1.push_back(a);
        l1.push_back(b);
        l2.push_back(c);
        l2.push_back(d);
        l2.push_back(e);
        l1.splice_back(l2);
        CHECK(values(l1) == ints{1, 2, 3, 4, 5});
        CHECK(l1.back() == &e);
    }
    SUBCASE("onto an empty list") {
        l2.push_back(c);
        l2.push_back(d);
        l1.splice_back(l2);
        CHECK(values(l1) == ints{3, 4});
        CHECK(l1.front() == &c);
        CHECK(l1.back() == &d);
    }
    SUBCASE("a single element") {
        l1.push_back(a);
        l2.push_back(b);
        l1.splice_back(l2);
        CHECK(values(l1) == ints{1, 2});
    }
    SUBCASE("an empty list changes nothing") {
        l1.push_back(a);
        l1.splice_back(l2);
        CHECK(values(l1) == ints{1});
    }
    // The source is left empty and usable; the moved elements stay linked.
    CHECK(l2.empty());
    CHECK(l2.front() == nullptr);
    item f(6);
    l2.push_back(f);
    CHECK(values(l2) == ints{6});
    l2.clear();
    for (item* p = l1.front(); p != nullptr; p = l1.next(*p)) {
        CHECK(p->is_linked());
    }
    // The moved elements can be unlinked from their new list.
    while (item* p = l1.back()) {
        p->unlink();
    }
    CHECK(l1.empty());
}

TEST_CASE("intrusive_list: one element sits on two lists through differently tagged hooks") {
    person p1(1), p2(2), p3(3);
    intrusive_list<person, by_age> ages;
    intrusive_list<person, by_name> names;
    ages.push_back(p1);
    ages.push_back(p2);
    ages.push_back(p3);
    names.push_back(p3);
    names.push_back(p1);
    CHECK(values(ages) == ints{1, 2, 3});
    CHECK(values(names) == ints{3, 1});

    // Unlinking from one list leaves the other untouched.
    static_cast<list_hook<by_age>&>(p1).unlink();
    CHECK(values(ages) == ints{2, 3});
    CHECK(values(names) == ints{3, 1});
    CHECK_FALSE(static_cast<list_hook<by_age>&>(p1).is_linked());
    CHECK(static_cast<list_hook<by_name>&>(p1).is_linked());
    ages.clear();
    names.clear();
}

// ---------------------------------------------------------------------------
// fixed_vector

namespace {

// Counts live instances so that construction and destruction are observable.
struct counted {
    static inline int live = 0;
    explicit counted(int v) noexcept : value(v) { ++live; }
    counted(const counted& o) noexcept : value(o.value) { ++live; }
    counted& operator=(const counted&) = delete;
    ~counted() { --live; }
    int value;
};

struct move_only {
    explicit move_only(int v) noexcept : value(v) {}
    move_only(move_only&& o) noexcept : value(o.value) { o.value = -1; }
    move_only(const move_only&) = delete;
    int value;
};

} // namespace

TEST_CASE("fixed_vector: starts empty with its compile-time capacity") {
    fixed_vector<int, 3> v;
    static_assert(fixed_vector<int, 3>::capacity() == 3);
    CHECK(v.capacity() == 3);
    CHECK(v.size() == 0);
    CHECK(v.empty());
    CHECK_FALSE(v.full());
    CHECK(v.begin() == v.end());
}

TEST_CASE("fixed_vector: push up to capacity, then refuse without constructing") {
    counted::live = 0;
    {
        fixed_vector<counted, 3> v;
        CHECK(v.try_emplace_back(1));
        CHECK(v.try_push_back(counted(2)));
        CHECK(v.try_emplace_back(3));
        CHECK(v.full());
        CHECK(v.size() == 3);
        CHECK(counted::live == 3);

        CHECK_FALSE(v.try_emplace_back(4));
        counted extra(5);
        CHECK_FALSE(v.try_push_back(extra));
        CHECK(counted::live == 4); // the three elements and `extra`, no copy
        CHECK(v.size() == 3);
        CHECK(v[0].value == 1);
        CHECK(v[1].value == 2);
        CHECK(v[2].value == 3);
    }
    // The destructor destroyed every element.
    CHECK(counted::live == 0);
}

TEST_CASE("fixed_vector: capacity 1 is full after one element") {
    fixed_vector<int, 1> v;
    CHECK(v.try_push_back(7));
    CHECK(v.full());
    CHECK_FALSE(v.empty());
    CHECK_FALSE(v.try_push_back(8));
    CHECK(v[0] == 7);
    v.pop_back();
    CHECK(v.empty());
    CHECK(v.try_push_back(9));
    CHECK(v[0] == 9);
}

TEST_CASE("fixed_vector: pop_back destroys the last element and frees room") {
    counted::live = 0;
    fixed_vector<counted, 2> v;
    CHECK(v.try_emplace_back(1));
    CHECK(v.try_emplace_back(2));
    v.pop_back();
    CHECK(counted::live == 1);
    CHECK(v.size() == 1);
    CHECK_FALSE(v.full());
    CHECK(v[0].value == 1);
    CHECK(v.try_emplace_back(3));
    CHECK(v[1].value == 3);
    v.clear();
    CHECK(counted::live == 0);
    CHECK(v.empty());
    v.clear(); // clearing an empty vector is a no-op
    CHECK(v.empty());
}

TEST_CASE("fixed_vector: iteration and indexed access, const and not") {
    fixed_vector<int, 8> v;
    for (int i = 0; i < 5; ++i) {
        CHECK(v.try_push_back(i * 10));
    }
    int sum = 0;
    for (int& x : v) {
        x += 1;
        sum += x;
    }
    CHECK(sum == 0 + 10 + 20 + 30 + 40 + 5);
    CHECK(v.end() - v.begin() == 5);
    const auto& cv = v;
    CHECK(cv[4] == 41);
    CHECK(cv.end() - cv.begin() == 5);
    CHECK(*cv.begin() == 1);
}

TEST_CASE("fixed_vector: holds move-only types, constructed in place") {
    fixed_vector<move_only, 2> v;
    CHECK(v.try_emplace_back(5));
    move_only m(6);
    CHECK(v.try_emplace_back(std::move(m)));
    CHECK(m.value == -1);
    CHECK(v[0].value == 5);
    CHECK(v[1].value == 6);
    CHECK_FALSE(v.try_emplace_back(7));
}

TEST_CASE("fixed_vector: an over-aligned element type is stored aligned") {
    struct alignas(32) wide {
        int v = 0;
    };
    fixed_vector<wide, 3> v;
    CHECK(v.try_emplace_back());
    CHECK(v.try_emplace_back());
    for (const wide& w : v) {
        CHECK(reinterpret_cast<std::uintptr_t>(&w) % 32 == 0);
    }
}

// ---------------------------------------------------------------------------
// slot_pool

namespace {

struct payload {
    int x = 0;
    int y = 7;
};

} // namespace

TEST_CASE("slot_handle: default is invalid; pack and unpack round-trip") {
    slot_handle h;
    CHECK_FALSE(h.valid());
    CHECK(h.pack() == 0);

    slot_handle g{0x12345678u, 0x9abcdef0u};
    CHECK(g.valid());
    CHECK(g.pack() == 0x9abcdef012345678ull);
    CHECK(slot_handle::unpack(g.pack()) == g);
    CHECK(slot_handle::unpack(0) == slot_handle{});
    CHECK_FALSE(slot_handle{1, 1} == slot_handle{1, 2});
    CHECK_FALSE(slot_handle{1, 1} == slot_handle{2, 1});
}

TEST_CASE("slot_pool: reserve refuses zero capacity and a second call") {
    slot_pool<payload> p;
    CHECK(p.capacity() == 0);
    CHECK_FALSE(p.reserve(0));
    CHECK(p.capacity() == 0);
    CHECK(p.reserve(4));
    CHECK(p.capacity() == 4);
    CHECK_FALSE(p.reserve(8));
    CHECK(p.capacity() == 4);
    CHECK(p.in_use() == 0);
}

TEST_CASE("slot_pool: an unreserved pool hands out nothing and finds nothing") {
    slot_pool<payload> p;
    CHECK_FALSE(p.try_acquire().valid());
    CHECK(p.get(slot_handle{0, 1}) == nullptr);
    CHECK(p.get_by_index(0) == nullptr);
}

TEST_CASE("slot_pool: acquire until full, then try_acquire fails") {
    slot_pool<payload> p;
    REQUIRE(p.reserve(3));
    std::vector<slot_handle> hs;
    for (int i = 0; i < 3; ++i) {
        slot_handle h = p.try_acquire();
        REQUIRE(h.valid());
        hs.push_back(h);
        CHECK(p.in_use() == static_cast<std::uint32_t>(i + 1));
    }
    // Distinct slots.
    CHECK(hs[0].index != hs[1].index);
    CHECK(hs[1].index != hs[2].index);
    CHECK(hs[0].index != hs[2].index);
    for (const slot_handle& h : hs) {
        CHECK(h.index < 3);
        CHECK(h.generation != 0);
    }

    slot_handle none = p.try_acquire();
    CHECK_FALSE(none.valid());
    CHECK(p.in_use() == 3);

    // Freeing one makes room for exactly one more.
    p.release(hs[1]);
    CHECK(p.in_use() == 2);
    slot_handle again = p.try_acquire();
    CHECK(again.valid());
    CHECK(again.index == hs[1].index);
    CHECK_FALSE(p.try_acquire().valid());
}

TEST_CASE("slot_pool: get returns the element for a live handle, stable across calls") {
    slot_pool<payload> p;
    REQUIRE(p.reserve(2));
    slot_handle a = p.try_acquire();
    slot_handle b = p.try_acquire();
    payload* pa = p.get(a);
    payload* pb = p.get(b);
    REQUIRE(pa != nullptr);
    REQUIRE(pb != nullptr);
    if (pa == nullptr || pb == nullptr) {
        return; // REQUIRE does not stop a test without exceptions
    }
    CHECK(pa != pb);
    pa->x = 11;
    pb->x = 22;
    CHECK(p.get(a)->x == 11);
    CHECK(p.get(b)->x == 22);
    CHECK(p.get_by_index(a.index) == pa);
    CHECK(p.get_by_index(b.index) == pb);
}

TEST_CASE("slot_pool: a stale handle returns nullptr after release and after reuse") {
    slot_pool<payload> p;
    REQUIRE(p.reserve(1));
    slot_handle old = p.try_acquire();
    REQUIRE(p.get(old) != nullptr);
    p.release(old);
    CHECK(p.get(old) == nullptr);
    CHECK(p.get_by_index(old.index) == nullptr);

    slot_handle fresh = p.try_acquire();
    REQUIRE(fresh.valid());
    CHECK(fresh.index == old.index);
    CHECK(fresh.generation != old.generation);
    CHECK(p.get(fresh) != nullptr);
    // The old handle does not alias the slot's new occupant.
    CHECK(p.get(old) == nullptr);
}

TEST_CASE("slot_pool: invalid, out-of-range and forged handles return nullptr") {
    slot_pool<payload> p;
    REQUIRE(p.reserve(2));
    slot_handle a = p.try_acquire();
    CHECK(p.get(slot_handle{}) == nullptr);
    CHECK(p.get(slot_handle{a.index, 0}) == nullptr);
    CHECK(p.get(slot_handle{a.index, a.generation + 1}) == nullptr);
    CHECK(p.get(slot_handle{2, a.generation}) == nullptr);
    CHECK(p.get(slot_handle{UINT32_MAX, a.generation}) == nullptr);
    // Right generation, but a slot that is free.
    std::uint32_t other = a.index == 0 ? 1 : 0;
    CHECK(p.get(slot_handle{other, a.generation}) == nullptr);
    CHECK(p.get_by_index(other) == nullptr);
    CHECK(p.get_by_index(2) == nullptr);
    CHECK(p.get_by_index(UINT32_MAX) == nullptr);
}

TEST_CASE("slot_pool: a reacquired slot holds a fresh default element") {
    slot_pool<payload> p;
    REQUIRE(p.reserve(1));
    slot_handle h = p.try_acquire();
    payload* first = p.get(h);
    REQUIRE(first != nullptr);
    if (first == nullptr) {
        return; // REQUIRE does not stop a test without exceptions
    }
    CHECK(first->x == 0);
    CHECK(first->y == 7);
    first->x = 99;
    first->y = 99;
    p.release(h);
    slot_handle h2 = p.try_acquire();
    payload* second = p.get(h2);
    REQUIRE(second != nullptr);
    if (second == nullptr) {
        return;
    }
    CHECK(second->x == 0);
    CHECK(second->y == 7);
}

TEST_CASE("slot_pool: generations are never 0 and every past handle stays stale") {
    slot_pool<payload> p;
    REQUIRE(p.reserve(4));
    custos::prng rng(1234);
    std::vector<slot_handle> live;
    std::vector<slot_handle> dead;
    for (int step = 0; step < 20000; ++step) {
        bool acquire = live.empty() || (live.size() < 4 && rng.next() % 2 == 0);
        if (acquire) {
            slot_handle h = p.try_acquire();
            REQUIRE(h.valid());
            REQUIRE(h.generation != 0);
            live.push_back(h);
        } else {
            std::size_t i = rng.next() % live.size();
            p.release(live[i]);
            dead.push_back(live[i]);
            live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
        }
        REQUIRE(p.in_use() == live.size());
    }
    for (const slot_handle& h : live) {
        CHECK(p.get(h) != nullptr);
    }
    std::size_t stale_found = 0;
    for (const slot_handle& h : dead) {
        stale_found += p.get(h) != nullptr ? 1 : 0;
    }
    CHECK(stale_found == 0);
}

// ---------------------------------------------------------------------------
// index_map

namespace {

// The map's home slot for a key, mirrored here only to build keys that
// collide or wrap around the table's end; the tests stay valid (if less
// sharp) should the hash change.
std::uint32_t home_of(std::uint32_t key, std::uint32_t table_size) {
    unsigned bits = 0;
    while ((1u << bits) < table_size) {
        ++bits;
    }
    return (key * 2654435769u) >> (32 - bits);
}

// Keys whose home slot is one of `homes`, found by scanning upward.
std::vector<std::uint32_t> keys_with_home(std::initializer_list<std::uint32_t> homes,
                                          std::uint32_t table_size, std::size_t count) {
    std::vector<std::uint32_t> out;
    for (std::uint32_t k = 0; out.size() < count; ++k) {
        std::uint32_t h = home_of(k, table_size);
        for (std::uint32_t want : homes) {
            if (h == want) {
                out.push_back(k);
                break;
            }
        }
    }
    return out;
}

// The value stored for `key`, or -1 when absent. (REQUIRE does not stop a
// test without exceptions, so no test dereferences find() directly.)
std::int64_t value_in(index_map& m, std::uint32_t key) {
    std::uint32_t* v = m.find(key);
    return v != nullptr ? std::int64_t{*v} : -1;
}

// Every key of `ref` is found with its value, the sizes agree, and keys in
// [0, universe) that are absent from `ref` are absent from the map.
void check_same(index_map& m, const std::unordered_map<std::uint32_t, std::uint32_t>& ref,
                std::uint32_t universe) {
    REQUIRE(m.size() == ref.size());
    for (const auto& kv : ref) {
        REQUIRE(value_in(m, kv.first) == std::int64_t{kv.second});
    }
    for (std::uint32_t k = 0; k < universe; ++k) {
        if (ref.count(k) == 0) {
            REQUIRE(m.find(k) == nullptr);
        }
    }
}

} // namespace

TEST_CASE("index_map: insert, find, erase basics") {
    index_map m;
    REQUIRE(m.reserve(8));
    CHECK(m.capacity() == 8);
    CHECK(m.size() == 0);
    CHECK(m.find(3) == nullptr);
    CHECK_FALSE(m.erase(3));

    CHECK(m.try_insert(3, 30));
    CHECK(m.try_insert(0, 0));
    CHECK(m.try_insert(UINT32_MAX, 7));
    CHECK(m.size() == 3);
    CHECK(value_in(m, 3) == 30);
    CHECK(value_in(m, 0) == 0);
    CHECK(value_in(m, UINT32_MAX) == 7);
    CHECK(m.find(4) == nullptr);

    // find() gives a pointer through which the value can be changed.
    if (std::uint32_t* v = m.find(3)) {
        *v = 31;
    }
    CHECK(value_in(m, 3) == 31);

    CHECK(m.erase(3));
    CHECK(m.find(3) == nullptr);
    CHECK_FALSE(m.erase(3));
    CHECK(m.size() == 2);
    CHECK(value_in(m, 0) == 0);
    CHECK(value_in(m, UINT32_MAX) == 7);
}

TEST_CASE("index_map: a duplicate key is refused and keeps its first value") {
    index_map m;
    REQUIRE(m.reserve(4));
    CHECK(m.try_insert(5, 50));
    CHECK_FALSE(m.try_insert(5, 51));
    CHECK(m.size() == 1);
    CHECK(value_in(m, 5) == 50);
}

TEST_CASE("index_map: a full map refuses new keys until one is erased") {
    index_map m;
    REQUIRE(m.reserve(5));
    for (std::uint32_t k = 0; k < 5; ++k) {
        CHECK(m.try_insert(k * 3, k));
    }
    CHECK(m.size() == 5);
    CHECK_FALSE(m.try_insert(100, 1));
    CHECK(m.find(100) == nullptr);
    CHECK_FALSE(m.try_insert(3, 9)); // present and full: refused either way
    CHECK(value_in(m, 3) == 1);
    CHECK(m.size() == 5);

    CHECK(m.erase(6));
    CHECK(m.try_insert(100, 1));
    CHECK(value_in(m, 100) == 1);
    CHECK_FALSE(m.try_insert(101, 1));
}

TEST_CASE("index_map: capacity 0 and 1") {
    index_map m0;
    REQUIRE(m0.reserve(0));
    CHECK_FALSE(m0.try_insert(1, 1));
    CHECK(m0.find(1) == nullptr);
    CHECK_FALSE(m0.erase(1));

    index_map m1;
    REQUIRE(m1.reserve(1));
    CHECK(m1.try_insert(42, 1));
    CHECK_FALSE(m1.try_insert(43, 2));
    CHECK(m1.erase(42));
    CHECK(m1.try_insert(43, 2));
    CHECK(value_in(m1, 43) == 2);
    CHECK(m1.find(42) == nullptr);
}

TEST_CASE("index_map: reserve again starts over empty") {
    index_map m;
    REQUIRE(m.reserve(4));
    CHECK(m.try_insert(1, 1));
    REQUIRE(m.reserve(16));
    CHECK(m.size() == 0);
    CHECK(m.capacity() == 16);
    CHECK(m.find(1) == nullptr);
}

TEST_CASE("index_map: erasing inside a run of colliding keys keeps the rest findable") {
    // capacity 8: a 16-entry table. Eight keys share one home slot, so they
    // form one probe run; erase each position in turn.
    constexpr std::uint32_t cap = 8;
    constexpr std::uint32_t table = 16;
    std::vector<std::uint32_t> keys = keys_with_home({5}, table, cap);
    for (std::size_t victim = 0; victim < keys.size(); ++victim) {
        CAPTURE(victim);
        index_map m;
        REQUIRE(m.reserve(cap));
        for (std::uint32_t i = 0; i < cap; ++i) {
            REQUIRE(m.try_insert(keys[i], i));
        }
        REQUIRE(m.erase(keys[victim]));
        CHECK(m.find(keys[victim]) == nullptr);
        for (std::uint32_t i = 0; i < cap; ++i) {
            if (i != victim) {
                CHECK(value_in(m, keys[i]) == i);
            }
        }
        CHECK(m.size() == cap - 1);
    }
}

TEST_CASE("index_map: erasing in probe runs that wrap around the table's end") {
    // Keys homed at the last two slots and the first one: their runs wrap
    // past the end to index 0 and interleave with keys homed there.
    constexpr std::uint32_t cap = 8;
    constexpr std::uint32_t table = 16;
    std::vector<std::uint32_t> keys = keys_with_home({table - 2, table - 1, 0, 1}, table, cap);
    custos::prng rng(77);
    for (int round = 0; round < 200; ++round) {
        index_map m;
        REQUIRE(m.reserve(cap));
        std::unordered_map<std::uint32_t, std::uint32_t> ref;
        // Insert in a random order, then erase in a random order, checking
        // everything after each erase.
        std::vector<std::uint32_t> order = keys;
        for (std::size_t i = order.size(); i > 1; --i) {
            std::swap(order[i - 1], order[rng.next() % i]);
        }
        for (std::uint32_t k : order) {
            REQUIRE(m.try_insert(k, k + 1000));
            ref[k] = k + 1000;
        }
        check_same(m, ref, keys.back() + 1);
        for (std::size_t i = order.size(); i > 1; --i) {
            std::swap(order[i - 1], order[rng.next() % i]);
        }
        for (std::uint32_t k : order) {
            REQUIRE(m.erase(k));
            ref.erase(k);
            check_same(m, ref, keys.back() + 1);
        }
    }
}

TEST_CASE("index_map: heavy insert/erase churn matches a reference map (fixed seed)") {
    struct config {
        std::uint32_t capacity;
        std::uint32_t universe; // keys are drawn from [0, universe)
        bool fills;             // the mix of operations fills the map at times
    };
    // Small universes force collisions and a map that is often full; the
    // large one spreads keys like real descriptors do not. With 55 % inserts
    // and 40 % erases about 58 % of the universe is present at a time.
    const config configs[] = {{1, 4, true},       {3, 8, true},      {16, 40, true},
                              {64, 96, true},     {64, 1000, false}, {500, 900, true},
                              {1000, 1200, false}};
    custos::prng rng(20240601);
    for (const config& c : configs) {
        CAPTURE(c.capacity);
        CAPTURE(c.universe);
        index_map m;
        REQUIRE(m.reserve(c.capacity));
        std::unordered_map<std::uint32_t, std::uint32_t> ref;
        int full_refusals = 0;
        int dup_refusals = 0;
        for (int op = 0; op < 40000; ++op) {
            auto k = static_cast<std::uint32_t>(rng.next() % c.universe);
            std::uint64_t dice = rng.next() % 100;
            if (dice < 55) {
                auto v = static_cast<std::uint32_t>(rng.next());
                bool present = ref.count(k) != 0;
                bool expect = !present && ref.size() < c.capacity;
                bool got = m.try_insert(k, v);
                REQUIRE(got == expect);
                if (got) {
                    ref[k] = v;
                } else if (present) {
                    ++dup_refusals;
                } else {
                    ++full_refusals;
                }
            } else if (dice < 95) {
                bool expect = ref.erase(k) != 0;
                REQUIRE(m.erase(k) == expect);
            } else {
                auto it = ref.find(k);
                REQUIRE(value_in(m, k) == (it == ref.end() ? -1 : std::int64_t{it->second}));
            }
            REQUIRE(m.size() == ref.size());
            if (op % 97 == 0) {
                check_same(m, ref, c.universe);
            }
        }
        check_same(m, ref, c.universe);
        // The run really exercised the refusals it was meant to.
        CHECK(dup_refusals > 0);
        if (c.fills) {
            CHECK(full_refusals > 0);
        }
    }
}

TEST_CASE("index_map: used before reserve it finds nothing and refuses inserts") {
    index_map m;
    CHECK(m.find(3) == nullptr);
    CHECK_FALSE(m.try_insert(3, 1));
    CHECK_FALSE(m.erase(3));
}

TEST_CASE("index_map: an impossible capacity is refused instead of looping forever") {
    index_map m;
    CHECK_FALSE(m.reserve(index_map::max_capacity + 1));
    CHECK_FALSE(m.reserve(UINT32_MAX));
    CHECK(m.reserve(8));
}
