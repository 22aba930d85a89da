// A fixed-capacity FIFO ring: its storage is allocated once (by the constructor or
// allocate()), never again. Elements are addressed by absolute positions that only grow
// (head() is the oldest element's, tail() one past the newest), so a caller can keep a
// position as a token or a cursor (an ack token, "the next one to send") across pushes
// and pops; position % capacity is the storage index. A full ring is a normal outcome for
// try_push(), which refuses; push() is for callers whose sizing makes "full" impossible,
// and aborts rather than overwrite the oldest element if that sizing is ever wrong.
// Single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "util/log.hpp"

namespace edgegw::mem {

template <typename T>
class Ring {
 public:
  Ring() = default;
  explicit Ring(std::size_t capacity) { allocate(capacity); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Allocates room for `capacity` (at least 1) elements and empties the ring. Call once,
  // before use (start-up); the storage is then fixed.
  void allocate(std::size_t capacity) {
    m_capacity = capacity ? capacity : 1;
    m_items = std::make_unique<T[]>(m_capacity);
    m_head = m_tail = 0;
  }

  std::size_t capacity() const { return m_capacity; }
  std::size_t size() const { return static_cast<std::size_t>(m_tail - m_head); }
  std::size_t room() const { return m_capacity - size(); }
  bool empty() const { return m_head == m_tail; }
  bool full() const { return size() == m_capacity; }
  std::uint64_t head() const { return m_head; }
  std::uint64_t tail() const { return m_tail; }
  // Whether `position` holds an element now (head() <= position < tail()).
  bool holds(std::uint64_t position) const { return position - m_head < m_tail - m_head; }

  // The element at an absolute position; the caller keeps head() <= position < tail().
  T& operator[](std::uint64_t position) { return m_items[position % m_capacity]; }
  const T& operator[](std::uint64_t position) const { return m_items[position % m_capacity]; }
  T& front() { return (*this)[m_head]; }
  const T& front() const { return (*this)[m_head]; }
  T& back() { return (*this)[m_tail - 1]; }
  const T& back() const { return (*this)[m_tail - 1]; }

  // Appends `value`; false (and nothing changes) when the ring is full.
  [[nodiscard]] bool try_push(const T& value) {
    if (full()) return false;
    (*this)[m_tail++] = value;
    return true;
  }
  // Appends `value` where the caller's sizing says the ring cannot be full; if it is, that
  // sizing is wrong and the process aborts (overwriting would lose an element silently).
  T& push(const T& value) {
    if (full()) {
      util::log(util::Level::error, "a ring of %zu is full: a sizing rule is broken", m_capacity);
      std::abort();
    }
    T& slot = (*this)[m_tail++];
    slot = value;
    return slot;
  }
  void pop_front() { ++m_head; }
  // Takes back the newest element: a push whose element turned out not to be wanted.
  void pop_back() { --m_tail; }
  // Empties the ring (positions go on from where they were, so old tokens stay stale).
  void clear() { m_head = m_tail; }

  // Iteration from oldest to newest.
  template <typename R, typename V>
  class Iter {
   public:
    Iter(R* ring, std::uint64_t position) : m_ring(ring), m_position(position) {}
    V& operator*() const { return (*m_ring)[m_position]; }
    V* operator->() const { return &(*m_ring)[m_position]; }
    Iter& operator++() {
      ++m_position;
      return *this;
    }
    bool operator==(const Iter& other) const { return m_position == other.m_position; }
    std::uint64_t position() const { return m_position; }

   private:
    R* m_ring;
    std::uint64_t m_position;
  };
  using iterator = Iter<Ring, T>;
  using const_iterator = Iter<const Ring, const T>;
  iterator begin() { return {this, m_head}; }
  iterator end() { return {this, m_tail}; }
  const_iterator begin() const { return {this, m_head}; }
  const_iterator end() const { return {this, m_tail}; }

 private:
  std::unique_ptr<T[]> m_items;
  std::size_t m_capacity = 0;
  std::uint64_t m_head = 0, m_tail = 0;
};

}  // namespace edgegw::mem
