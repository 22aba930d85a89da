# Debian's cross compiler for armhf (g++-arm-linux-gnueabihf). Libraries come from Debian
# multiarch (/usr/lib/arm-linux-gnueabihf). Tests run under QEMU user mode; binaries are
# static, so QEMU needs no sysroot.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
# qemu-arm knows no cortex-a53; "max" is an ARMv8 core in AArch32 mode, which is what the A53 runs here.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -cpu max)
