# Board profile: the build machine (x86_64 or whatever runs the build). No CPU tuning, so
# the binaries run on any machine of the same architecture.
set(EDGEGW_CPU_FLAGS "")
set(EDGEGW_DEFAULT_POOL_SLOTS 4096)
set(EDGEGW_DEFAULT_SLOT_BYTES 4096)
set(EDGEGW_DEFAULT_SPOOL_MAX_BYTES "256MiB")
# The ingest window: messages the local broker sends before it waits for our PUBACKs, so
# the most one fdatasync can cover (the board's mosquitto must allow as many; INSTALL.md).
set(EDGEGW_DEFAULT_RECEIVE_MAXIMUM 1024)
# spool.commit_interval: the least time between two syncs (docs/PERFORMANCE.md has the
# trade between latency and flash writes, measured).
set(EDGEGW_DEFAULT_COMMIT_INTERVAL "0ms")
# systemd MemoryMax= for the service: a backstop above the fixed pool and spool buffers.
set(EDGEGW_MEMORY_MAX "128M")
# Latency budgets for `edgegw selftest` (a shared build machine: generous), each "p99 p999 max":
# scheduler wake-up lateness, append + fdatasync of one batch, and end to end through the
# daemon (local broker -> upstream broker). The end-to-end budget is about the commit
# interval plus the fsync budget, with room for a network hop. Overridable in [selftest].
set(EDGEGW_BUDGET_INTRINSIC "5ms 20ms 100ms")
set(EDGEGW_BUDGET_FSYNC "100ms 250ms 1s")
set(EDGEGW_BUDGET_END_TO_END "50ms 200ms 1s")
