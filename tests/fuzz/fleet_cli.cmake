# `runnel-server fleet`'s parsers (server/cli/): the HTTP answer and the fleet API's JSON.
rn_add_fuzz_target(fuzz_fleet_cli SOURCES fuzz_fleet_cli.c LIBS rn_fleet_cli CORPUS ${C}/fleet_cli)
