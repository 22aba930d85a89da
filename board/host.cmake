# Board profile: the build machine (x86_64 or whatever runs the build). No CPU tuning, so
# the binaries run on any machine of the same architecture.
set(EDGEGW_CPU_FLAGS "")
set(EDGEGW_DEFAULT_POOL_SLOTS 4096)
set(EDGEGW_DEFAULT_SLOT_BYTES 4096)
set(EDGEGW_DEFAULT_SPOOL_MAX_BYTES "256MiB")
# systemd MemoryMax= for the service: a backstop above the fixed pool and spool buffers.
set(EDGEGW_MEMORY_MAX "128M")
# Latency budgets for `edgegw selftest` (a shared build machine: generous), each "p99 p999 max":
# scheduler wake-up lateness, append + fdatasync of one batch, and end to end through the
# daemon (local broker -> upstream broker). Overridable in [selftest].
set(EDGEGW_BUDGET_INTRINSIC "5ms 20ms 100ms")
set(EDGEGW_BUDGET_FSYNC "100ms 250ms 1s")
set(EDGEGW_BUDGET_END_TO_END "250ms 500ms 2s")
