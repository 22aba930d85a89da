#include "mem/pool.hpp"

#include <cassert>
#include <cstdlib>

namespace edgegw::mem {

Pool::Pool(std::uint32_t slots, std::uint32_t slot_bytes, std::uint32_t headroom)
    : m_count(slots), m_slot_bytes(slot_bytes),
      m_storage(new std::uint8_t[static_cast<std::size_t>(slots) * (slot_bytes + headroom)]), m_slots(new Slot[slots]),
      m_free(new std::uint32_t[slots]), m_free_top(slots) {
  assert(slots > 0 && slot_bytes > 0);
  const std::uint32_t stride = slot_bytes + headroom;
  for (std::uint32_t i = 0; i < slots; ++i) {
    m_slots[i] = Slot{m_storage.get() + static_cast<std::size_t>(i) * stride, stride, i};
    // Lowest index on top, so a lightly loaded pool keeps touching the same pages.
    m_free[i] = slots - 1 - i;
  }
}

Slot* Pool::acquire() {
  if (m_free_top == 0) return nullptr;
  Slot* slot = &m_slots[m_free[--m_free_top]];
  if (in_use() > m_high_water) m_high_water = in_use();
  return slot;
}

void Pool::release(Slot* slot) {
  // A foreign slot, or a release while every slot is free (a double release), is a broken
  // invariant, not an input error.
  if (slot == nullptr || slot < &m_slots[0] || slot >= &m_slots[m_count] || m_free_top == m_count) std::abort();
  m_free[m_free_top++] = slot->index;
  if (PoolWaiter* waiter = m_waiter) {
    m_waiter = nullptr;
    waiter->on_slot_available();
  }
}

std::size_t Pool::footprint_bytes() const {
  return static_cast<std::size_t>(m_count) * (m_slots[0].capacity + sizeof(Slot) + sizeof(std::uint32_t));
}

}  // namespace edgegw::mem
