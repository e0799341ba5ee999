# The token core's parsers (server/oauth.c): Basic header, form body with
# authorization_details, signed token verification.
rn_add_fuzz_target(fuzz_basic SOURCES fuzz_basic.c LIBS rn_identity CORPUS ${C}/basic)
rn_add_fuzz_target(fuzz_form SOURCES fuzz_form.c LIBS rn_identity CORPUS ${C}/form)
rn_add_fuzz_target(fuzz_token SOURCES fuzz_token.c LIBS rn_identity CORPUS ${C}/token)
# The TLS module's pure helpers (server/tls.c): a client's ALPN list, the client-auth word.
rn_add_fuzz_target(fuzz_alpn SOURCES fuzz_alpn.c LIBS rn_tls CORPUS ${C}/alpn)
# server/ only for #include "...": on the <...> path, <limits.h> would find server/limits.h
target_compile_options(fuzz_alpn_replay PRIVATE -iquote ${CMAKE_SOURCE_DIR}/server)
if(TARGET fuzz_alpn)
  target_compile_options(fuzz_alpn PRIVATE -iquote ${CMAKE_SOURCE_DIR}/server)
endif()
