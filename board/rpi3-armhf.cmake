# Board profile: Raspberry Pi 3 / Zero 2 W (4x Cortex-A53, 512 MiB-1 GiB) running a 32-bit
# armhf userland. NEON and VFPv4 in hard-float ABI.
set(EDGEGW_CPU_FLAGS -mcpu=cortex-a53 -mfpu=neon-fp-armv8 -mfloat-abi=hard)
set(EDGEGW_DEFAULT_POOL_SLOTS 1024)
set(EDGEGW_DEFAULT_SLOT_BYTES 4096)
set(EDGEGW_DEFAULT_SPOOL_MAX_BYTES "64MiB")
# The ingest window: messages the local broker sends before it waits for our PUBACKs, so
# the most one fdatasync can cover (the board's mosquitto must allow as many; INSTALL.md).
set(EDGEGW_DEFAULT_RECEIVE_MAXIMUM 512)
# spool.commit_interval: the least time between two syncs (docs/PERFORMANCE.md has the
# trade between latency and flash writes, measured).
set(EDGEGW_DEFAULT_COMMIT_INTERVAL "10ms")
# systemd MemoryMax= for the service: a backstop above the fixed pool and spool buffers.
set(EDGEGW_MEMORY_MAX "64M")
# Latency budgets for `edgegw selftest` (a Pi 3 / Zero 2 W on an SD card), each "p99 p999 max":
# scheduler wake-up lateness, append + fdatasync of one batch, and end to end through the
# daemon (local broker -> upstream broker). The end-to-end budget is about the commit
# interval plus the fsync budget, with room for a network hop. Overridable in [selftest].
set(EDGEGW_BUDGET_INTRINSIC "2ms 5ms 20ms")
set(EDGEGW_BUDGET_FSYNC "100ms 200ms 1s")
set(EDGEGW_BUDGET_END_TO_END "150ms 300ms 2s")
