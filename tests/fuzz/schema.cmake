# Server: JSON records against typed tables, and type names.
rn_add_fuzz_target(fuzz_jsonrow SOURCES fuzz_jsonrow.c LIBS rn_schema CORPUS ${C}/jsonrow)
