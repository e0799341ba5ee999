# Shared part of cmake/toolchain-aarch64-linux-gnu.cmake and
# cmake/toolchain-arm-linux-gnueabihf.cmake: Debian's cross compilers for RN_TRIPLET, the
# target's libraries from /usr/lib/RN_TRIPLET (multiarch), programs (protoc-c) from the build
# machine, and qemu-user as the emulator for ctest.
set(CMAKE_C_COMPILER ${RN_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${RN_TRIPLET})
set(CMAKE_FIND_ROOT_PATH /usr/${RN_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config reads the target's .pc files only (the host's would name host libraries).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${RN_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
if(CMAKE_SYSTEM_PROCESSOR STREQUAL aarch64)
  set(RN_QEMU qemu-aarch64)
else()
  set(RN_QEMU qemu-arm)
endif()
find_program(RN_QEMU_PATH ${RN_QEMU})
if(RN_QEMU_PATH)
  if(RN_QEMU_LD_PREFIX)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${RN_QEMU_PATH} -L ${RN_QEMU_LD_PREFIX})
  else()
    set(CMAKE_CROSSCOMPILING_EMULATOR ${RN_QEMU_PATH})
  endif()
endif()
