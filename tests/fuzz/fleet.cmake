# The fleet model's health report parser and renderers (server/fleet/).
rn_add_fuzz_target(fuzz_fleet SOURCES fuzz_fleet.c LIBS rn_fleet CORPUS ${C}/fleet)
