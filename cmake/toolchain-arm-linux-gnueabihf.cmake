# Cross-compiling for arm-linux-gnueabihf on Debian with multiarch libraries (dpkg --add-architecture,
# lib*-dev:<arch>; scripts/cross.sh does it in a chroot). Tests run under qemu-arm
# (qemu-user): ctest prefixes every test program with CMAKE_CROSSCOMPILING_EMULATOR.
# RN_QEMU_LD_PREFIX (cache) sets qemu's -L where the target's loader is not in /lib.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(RN_TRIPLET arm-linux-gnueabihf)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-multiarch.cmake)
