// Intrusive doubly linked list. An element carries its own links (it derives
// from list_hook<Tag>), so putting it on a list never allocates, unlinking is
// O(1) from the element alone, and an element can sit on several lists at once
// through hooks with different tags.
//
// Invariants: a hook is either unlinked (both pointers null) or on exactly one
// list. Destroying a list leaves its elements' hooks pointing into it; clear()
// first if the elements outlive the list.
#pragma once

#include <cstddef>

#include "core/assert.hpp"

namespace custos {

template <class Tag>
class list_hook {
public:
    list_hook() = default;
    list_hook(const list_hook&) = delete;
    list_hook& operator=(const list_hook&) = delete;

    bool is_linked() const noexcept { return next_ != nullptr; }

    // Removes the element from whatever list holds it. O(1).
    void unlink() noexcept {
        CUSTOS_ASSERT(is_linked());
        prev_->next_ = next_;
        next_->prev_ = prev_;
        prev_ = next_ = nullptr;
    }

private:
    template <class, class>
    friend class intrusive_list;
    list_hook* prev_ = nullptr;
    list_hook* next_ = nullptr;
};

// T must derive from list_hook<Tag>; by default the tag is T itself.
template <class T, class Tag = T>
class intrusive_list {
    using hook = list_hook<Tag>;

public:
    intrusive_list() noexcept { head_.prev_ = head_.next_ = &head_; }
    intrusive_list(const intrusive_list&) = delete;
    intrusive_list& operator=(const intrusive_list&) = delete;

    bool empty() const noexcept { return head_.next_ == &head_; }

    void push_back(T& t) noexcept { insert_before(head_, as_hook(t)); }
    void push_front(T& t) noexcept { insert_before(*head_.next_, as_hook(t)); }

    T* front() noexcept { return empty() ? nullptr : as_elem(head_.next_); }
    T* back() noexcept { return empty() ? nullptr : as_elem(head_.prev_); }

    // Unlinks and returns the first element, or nullptr when empty.
    T* pop_front() noexcept {
        if (empty()) {
            return nullptr;
        }
        hook* h = head_.next_;
        h->unlink();
        return as_elem(h);
    }

    // The element after `t` in this list, or nullptr at the end.
    T* next(T& t) noexcept {
        hook* n = as_hook(t).next_;
        return n == &head_ ? nullptr : as_elem(n);
    }

    // Moves every element of `other` to the end of this list. O(1).
    void splice_back(intrusive_list& other) noexcept {
        if (other.empty()) {
            return;
        }
        hook* first = other.head_.next_;
        hook* last = other.head_.prev_;
        other.head_.prev_ = other.head_.next_ = &other.head_;
        first->prev_ = head_.prev_;
        last->next_ = &head_;
        head_.prev_->next_ = first;
        head_.prev_ = last;
    }

    // Unlinks every element. O(n).
    void clear() noexcept {
        while (pop_front() != nullptr) {
        }
    }

    std::size_t size_slow() const noexcept {
        std::size_t n = 0;
        for (const hook* h = head_.next_; h != &head_; h = h->next_) {
            ++n;
        }
        return n;
    }

private:
    static hook& as_hook(T& t) noexcept { return static_cast<hook&>(t); }
    static T* as_elem(hook* h) noexcept { return static_cast<T*>(h); }

    static void insert_before(hook& pos, hook& h) noexcept {
        CUSTOS_ASSERT(!h.is_linked());
        h.prev_ = pos.prev_;
        h.next_ = &pos;
        pos.prev_->next_ = &h;
        pos.prev_ = &h;
    }

    hook head_;
};

} // namespace custos
