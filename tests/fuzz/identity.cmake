# The token core's parsers (server/oauth.c): Basic header, form body with
# authorization_details, signed token verification.
rn_add_fuzz_target(fuzz_basic SOURCES fuzz_basic.c LIBS rn_identity CORPUS ${C}/basic)
rn_add_fuzz_target(fuzz_form SOURCES fuzz_form.c LIBS rn_identity CORPUS ${C}/form)
rn_add_fuzz_target(fuzz_token SOURCES fuzz_token.c LIBS rn_identity CORPUS ${C}/token)
