/*
 * Principals: who may write to the server, how each one proves it, and which tables it may
 * write. Built from the config (`principals = ( {...}, ... )` and the top-level `token`, an
 * implicit principal named "token" allowed every table), rebuilt whole on every reload, so a
 * principal removed from the config is gone at once. Pure: no I/O, no clock; the secret and
 * token hashes go through crypto.h.
 *
 * A principal authenticates by any of: `cert` (matched exactly against the identity of a
 * verified client certificate, rn_call_info.peer_identity), `client_id` + `secret_hash` (the
 * token endpoint, oauth.h) and static `tokens` (plain, or `sha256:<64 hex>` of the token);
 * each static token is compared in constant time with every configured one, without an
 * early exit, so the time does not tell which one (if any) matched.
 *
 * Table patterns: `*` (every table), or a dotted name of the same number of parts as the
 * table, each part either `*` or the exact part (`main.*.*`, `main.fleet.*`,
 * `main.fleet.gps`). Names ending in `_dead_letters` (in their last part) are the server's
 * own dead-letter tables, and names under `runnel.fleet.` its fleet system tables: never
 * writable by clients, whatever the patterns say. `console = true` lets a principal read the
 * fleet API (/api/v1/...); such a principal needs no table pattern.
 *
 * Lifetime: rn_principals_create makes a set the caller owns; rn_principals_destroy frees it
 * (and every principal pointer into it). One thread (the loop).
 */
#ifndef RN_SERVER_PRINCIPAL_H
#define RN_SERVER_PRINCIPAL_H

#include <stddef.h>

#include "rn_conf.h"

#define RN_PRINCIPAL_NAME_MAX 64 /* bytes of a principal's name */

/* One `principals` entry as the config loader fills it. */
struct rn_principal_conf {
	char *name;                    /* [A-Za-z0-9._@:-], 1..64 bytes */
	char *cert;                    /* client certificate identity (URI or DNS SAN), or NULL */
	char *client_id;               /* for the token endpoint, with secret_hash; or NULL */
	char *secret_hash;             /* pbkdf2-sha256$... (runnel-server hash-secret); or NULL */
	struct rn_conf_strlist tokens; /* static bearer tokens: plain or sha256:<hex> */
	struct rn_conf_strlist tables; /* patterns of the tables it may write */
	int console;                   /* may read the fleet API, /api/v1/... (docs/security.md) */
};

/* The rows of one `principals` entry (server.c's config table points here). */
extern const struct rn_conf_key rn_principal_conf_keys[];

/* A principal, read-only for callers. */
struct rn_principal {
	char *name;
	char *cert;        /* or NULL */
	char *client_id;   /* or NULL */
	char *secret_hash; /* or NULL */
	char **tokens;     /* plain or "sha256:<hex>" */
	size_t ntokens;
	char **tables; /* patterns */
	size_t ntables;
	int console;  /* may read /api/v1/...; the implicit principals (top-level token, anonymous)
			 may */
	size_t index; /* its position in the set: 0..n-1, stable until the set is rebuilt */
};

struct rn_principals;

/*
 * Builds the set from n config entries and the top-level tokens (ntokens plain tokens: the
 * implicit principal "token", every table). Checks every entry (name, unique names, client
 * ids and certs, a well-formed secret_hash with each client_id and only with one, valid
 * patterns, at least one table and one way to authenticate). 0, RN_ECONFIG with the reason in
 * err ("principals[i] (name): ..."), RN_ENOMEM.
 */
int rn_principals_create(struct rn_principals **out, const struct rn_principal_conf *c, size_t n,
			 char *const *tokens, size_t ntokens, char *err, size_t cap);
void rn_principals_destroy(struct rn_principals *ps);

/* Principals in the set (the implicit "token" one included). */
size_t rn_principals_count(const struct rn_principals *ps);
/* The i-th principal, i < count. */
const struct rn_principal *rn_principals_at(const struct rn_principals *ps, size_t i);
/* Whether callers must authenticate: 0 only when there is no principal at all (then every
 * call is the anonymous principal, allowed every table but the reserved ones). */
int rn_principals_required(const struct rn_principals *ps);

/* Lookups; NULL when none. by_token takes the token itself (without "Bearer "). */
const struct rn_principal *rn_principals_find(const struct rn_principals *ps, const char *name);
const struct rn_principal *rn_principals_by_cert(const struct rn_principals *ps,
						 const char *identity);
const struct rn_principal *rn_principals_by_client_id(const struct rn_principals *ps,
						      const char *client_id);
const struct rn_principal *rn_principals_by_token(const struct rn_principals *ps, const char *token,
						  size_t len);

/* Patterns (see above). check: 0 or RN_EINVAL. match: 1 or 0. */
int rn_table_pattern_check(const char *pattern);
int rn_table_pattern_match(const char *pattern, const char *table);
/* 1 when one of the n patterns matches table. */
int rn_table_patterns_match(char *const *patterns, size_t n, const char *table);
/* 1 when table is reserved to the server (a dead-letter table): no client writes it. */
int rn_table_reserved(const char *table);

#endif
