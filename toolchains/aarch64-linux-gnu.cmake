# Debian's cross compiler for arm64 (g++-aarch64-linux-gnu). Libraries come from Debian
# multiarch (/usr/lib/aarch64-linux-gnu). Tests run under QEMU user mode; binaries are
# static, so QEMU needs no sysroot.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -cpu cortex-a72)
