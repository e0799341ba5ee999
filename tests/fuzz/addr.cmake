# Listen addresses and uplink URLs from configs and command lines (common/rn_addr.c).
rn_add_fuzz_target(fuzz_addr SOURCES fuzz_addr.c LIBS rn_common CORPUS ${C}/addr)
