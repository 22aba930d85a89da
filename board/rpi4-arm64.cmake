# Board profile: Raspberry Pi 4 (BCM2711, 4x Cortex-A72, 1-8 GiB), arm64 userland.
# The A72 has no ARMv8 crypto extensions on the Pi 4, so TLS prefers ChaCha20-Poly1305.
set(EDGEGW_CPU_FLAGS -mcpu=cortex-a72)
set(EDGEGW_DEFAULT_POOL_SLOTS 4096)
set(EDGEGW_DEFAULT_SLOT_BYTES 4096)
set(EDGEGW_DEFAULT_SPOOL_MAX_BYTES "256MiB")
# The ingest window: messages the local broker sends before it waits for our PUBACKs, so
# the most one fdatasync can cover (the board's mosquitto must allow as many; INSTALL.md).
set(EDGEGW_DEFAULT_RECEIVE_MAXIMUM 1024)
# spool.commit_interval: the least time between two syncs (docs/PERFORMANCE.md has the
# trade between latency and flash writes, measured).
set(EDGEGW_DEFAULT_COMMIT_INTERVAL "10ms")
# systemd MemoryMax= for the service: a backstop above the fixed pool and spool buffers.
set(EDGEGW_MEMORY_MAX "128M")
# Latency budgets for `edgegw selftest` (a Pi 4 on an SD card), each "p99 p999 max":
# scheduler wake-up lateness, append + fdatasync of one batch, and end to end through the
# daemon (local broker -> upstream broker). The end-to-end budget is about the commit
# interval plus the fsync budget, with room for a network hop. Overridable in [selftest].
set(EDGEGW_BUDGET_INTRINSIC "1ms 2ms 10ms")
set(EDGEGW_BUDGET_FSYNC "50ms 100ms 500ms")
set(EDGEGW_BUDGET_END_TO_END "75ms 150ms 1s")
