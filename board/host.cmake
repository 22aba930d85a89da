# Board profile: the build machine (x86_64 or whatever runs the build). No CPU tuning, so
# the binaries run on any machine of the same architecture.
set(EDGEGW_CPU_FLAGS "")
set(EDGEGW_DEFAULT_POOL_SLOTS 4096)
set(EDGEGW_DEFAULT_SLOT_BYTES 4096)
set(EDGEGW_DEFAULT_SPOOL_MAX_BYTES "256MiB")
# systemd MemoryMax= for the service: a backstop above the fixed pool and spool buffers.
set(EDGEGW_MEMORY_MAX "128M")
