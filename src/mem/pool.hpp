// The fixed message pool: every message slot is allocated once, at construction, in one
// block; after that acquire/release only move indices on a free list. A full pool is a
// normal outcome (acquire returns nullptr) that the caller turns into backpressure.
// Single-threaded: owned and used by the event loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace edgegw::mem {

// One slot's storage. The owner of the pointer (whoever acquired it) may write anywhere in
// data[0, capacity) until it releases the slot.
struct Slot {
  std::uint8_t* data = nullptr;
  std::uint32_t capacity = 0;
  std::uint32_t index = 0;  // stable position in the pool, for per-slot side tables

  std::span<std::uint8_t> bytes() const { return {data, capacity}; }
};

// Told (once per registration) that a slot became free after acquire() had failed.
class PoolWaiter {
 public:
  virtual void on_slot_available() = 0;

 protected:
  ~PoolWaiter() = default;
};

class Pool {
 public:
  // slot_bytes is the largest topic + payload accepted; each slot gets headroom more
  // bytes for the rest of a packet (packet id, MQTT 5 properties).
  Pool(std::uint32_t slots, std::uint32_t slot_bytes, std::uint32_t headroom = k_default_headroom);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  static constexpr std::uint32_t k_default_headroom = 512;

  // nullptr when every slot is in use.
  Slot* acquire();
  // Returns a slot from acquire(); if a waiter is registered it is told, once.
  void release(Slot* slot);
  // Registers the one waiter to call back on the next release (replaces any earlier one).
  void wait_for_slot(PoolWaiter* waiter) { m_waiter = waiter; }
  // Withdraws `waiter` if it is the one registered (another user's wait is left alone).
  void stop_waiting(PoolWaiter* waiter) {
    if (m_waiter == waiter) m_waiter = nullptr;
  }

  std::uint32_t slot_count() const { return m_count; }
  std::uint32_t slot_bytes() const { return m_slot_bytes; }
  std::uint32_t slot_capacity() const { return m_slots[0].capacity; }
  std::uint32_t in_use() const { return m_count - m_free_top; }
  std::uint32_t high_water() const { return m_high_water; }
  std::size_t footprint_bytes() const;

 private:
  std::uint32_t m_count;
  std::uint32_t m_slot_bytes;
  std::unique_ptr<std::uint8_t[]> m_storage;
  std::unique_ptr<Slot[]> m_slots;
  std::unique_ptr<std::uint32_t[]> m_free;  // stack of free slot indices
  std::uint32_t m_free_top;
  std::uint32_t m_high_water = 0;
  PoolWaiter* m_waiter = nullptr;
};

}  // namespace edgegw::mem
