/*
 * Operator commands for identities: `runnel-server hash-secret [--token]` (reads a secret
 * from stdin, prints what `secret_hash` or `tokens` take) and `runnel-server token issue
 * --principal NAME [--tables T,...] [--ttl SECONDS] [-c FILE]` (prints a signed token for a
 * configured principal, made with the server's key: for tests and for clients that cannot
 * run the client-credentials flow). A thin adapter: the decisions are oauth.c's and
 * principal.c's. Run from main() before the server starts; one thread.
 */
#ifndef RN_SERVER_IDENTITY_CLI_H
#define RN_SERVER_IDENTITY_CLI_H

#include <stdio.h>

/* argv[0] is "hash-secret". Exit status: 0, 1 (error, on err), 2 (usage). */
int rn_hash_secret_main(int argc, char **argv, FILE *in, FILE *out, FILE *err);
/* argv[0] is "token". Exit status: 0, 1 (error, on err), 2 (usage). */
int rn_token_main(int argc, char **argv, FILE *out, FILE *err);

#endif
