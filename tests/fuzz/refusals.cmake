# The refusal sources (server/fleet/refusals.c): the strings of refused calls, as peers send them.
rn_add_fuzz_target(fuzz_refusals SOURCES fuzz_refusals.c LIBS rn_fleet CORPUS ${C}/refusals)
