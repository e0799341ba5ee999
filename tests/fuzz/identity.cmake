# The token core's parsers (server/oauth.c): Basic header, form body with
# authorization_details, signed token verification.
rn_add_fuzz_target(fuzz_basic SOURCES fuzz_basic.c LIBS rn_identity CORPUS ${C}/basic)
rn_add_fuzz_target(fuzz_form SOURCES fuzz_form.c LIBS rn_identity CORPUS ${C}/form)
rn_add_fuzz_target(fuzz_token SOURCES fuzz_token.c LIBS rn_identity CORPUS ${C}/token)
# The TLS module's pure helpers (server/net/tls.c): a client's ALPN list, the client-auth word.
rn_add_fuzz_target(fuzz_alpn SOURCES fuzz_alpn.c LIBS rn_net CORPUS ${C}/alpn)
# server/ only for #include "...": on the <...> path, <limits.h> would find server/limits.h
# (the targets exist only where the server is built, and fuzz_alpn only with RN_FUZZ)
foreach(t fuzz_alpn_replay fuzz_alpn)
  if(TARGET ${t})
    target_compile_options(${t} PRIVATE -iquote ${CMAKE_SOURCE_DIR}/server)
  endif()
endforeach()
