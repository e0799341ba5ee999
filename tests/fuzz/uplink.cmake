# The uplink's response header/trailer parser (uplink/headers.c): lines from the network.
rn_add_fuzz_target(fuzz_uplink_headers SOURCES fuzz_uplink_headers.c LIBS rn_uplink
  CORPUS ${C}/uplink_headers)
# The OAuth token endpoint's answer (uplink/token.c): JSON from the network.
rn_add_fuzz_target(fuzz_token_response SOURCES fuzz_token_response.c LIBS rn_uplink
  CORPUS ${C}/token_response)
