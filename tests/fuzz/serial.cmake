# The serial framer (plugins/in_serial/framer.c): bytes from a serial port are outside input.
if(TARGET rn_in_serial)
  rn_add_fuzz_target(fuzz_serial_framer SOURCES fuzz_serial_framer.c LIBS rn_in_serial
    CORPUS ${C}/serial)
endif()
