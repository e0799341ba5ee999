/* Principals from the config and table patterns (see principal.h). */
#include "principal.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "crypto.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_url.h"

#define PC(f) offsetof(struct rn_principal_conf, f)
const struct rn_conf_key rn_principal_conf_keys[] = {
	{.key = "name",
	 .type = RN_CONF_STRING,
	 .offset = PC(name),
	 .help = "the principal's name ([A-Za-z0-9._@:-], up to 64 bytes): in logs, metrics and "
		 "as the owner of its persistent streams",
	 .flags = RN_CONF_F_REQUIRED},
	{.key = "cert",
	 .type = RN_CONF_STRING,
	 .offset = PC(cert),
	 .help = "identity of its client certificate (the first URI SAN, else the first DNS SAN), "
		 "matched exactly",
	 .flags = RN_CONF_F_NOCTL},
	{.key = "client_id",
	 .type = RN_CONF_STRING,
	 .offset = PC(client_id),
	 .help = "OAuth client id for POST /oidc/v1/token (with secret_hash)",
	 .flags = RN_CONF_F_NOCTL},
	{.key = "secret_hash",
	 .type = RN_CONF_STRING,
	 .offset = PC(secret_hash),
	 .help = "hash of the client secret, as printed by `runnel-server hash-secret`",
	 .flags = RN_CONF_F_NOCTL},
	{.key = "tokens",
	 .type = RN_CONF_STRLIST,
	 .offset = PC(tokens),
	 .help = "static bearer tokens of this principal: the token, or sha256:<64 hex> of it "
		 "(`runnel-server hash-secret --token`)",
	 .flags = RN_CONF_F_NOCTL},
	{.key = "tables",
	 .type = RN_CONF_STRLIST,
	 .offset = PC(tables),
	 .help = "patterns of the tables it may write: \"*\", or dotted names whose parts are "
		 "exact or \"*\" (\"main.fleet.*\", \"main.*.*\"); required unless console = true"},
	{.key = "console",
	 .type = RN_CONF_BOOL,
	 .def = "false",
	 .offset = PC(console),
	 .help = "true: its credentials may read the fleet API (/api/v1/*: streams, devices, "
		 "tables, overview) used by the web console and `runnel-server fleet`"},
	{.key = NULL},
};
#undef PC

struct rn_principals {
	struct rn_principal *p;
	size_t n;
	int required;
};

#define IMPLICIT "token"
#define ANONYMOUS "anonymous"
#define SHA_PREFIX "sha256:"

static int name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > RN_PRINCIPAL_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '@' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

/* A "sha256:<64 hex>" token into its 32 bytes. 1 if it is one. */
static int token_hash(const char *t, unsigned char out[32])
{
	size_t pl = strlen(SHA_PREFIX);
	if (strncmp(t, SHA_PREFIX, pl) || strlen(t) != pl + 64)
		return 0;
	for (size_t i = 0; i < 32; i++) {
		int hi = rn_hexval(t[pl + 2 * i]), lo = rn_hexval(t[pl + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 1;
}

static char **copy_list(char *const *v, size_t n)
{
	char **out = rn_calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++)
		if (!(out[i] = rn_strdup(v[i]))) {
			for (size_t k = 0; k < i; k++)
				rn_free(out[k]);
			rn_free(out);
			return NULL;
		}
	return out;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		rn_free(v[i]);
	rn_free(v);
}

static void free_one(struct rn_principal *p)
{
	rn_free(p->name);
	rn_free(p->cert);
	rn_free(p->client_id);
	rn_free(p->secret_hash);
	free_list(p->tokens, p->ntokens);
	free_list(p->tables, p->ntables);
}

void rn_principals_destroy(struct rn_principals *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++)
		free_one(&ps->p[i]);
	rn_free(ps->p);
	rn_free(ps);
}

static char *dup_opt(const char *s, int *fail)
{
	char *d;
	if (!s)
		return NULL;
	if (!(d = rn_strdup(s)))
		*fail = 1;
	return d;
}

/* Checks entry i against itself and the entries before it. 0 or RN_ECONFIG. */
static int check_entry(const struct rn_principal_conf *c, size_t i, size_t ntokens, char *err,
		       size_t cap)
{
	const struct rn_principal_conf *e = &c[i];
	const char *nm = e->name ? e->name : "";
	unsigned char h[32];
#define BAD(...)                                                                                   \
	do {                                                                                       \
		int w_ = snprintf(err, cap, "principals[%zu] (%s): ", i, nm);                      \
		if (w_ > 0 && (size_t)w_ < cap)                                                    \
			snprintf(err + w_, cap - (size_t)w_, __VA_ARGS__);                         \
		return RN_ECONFIG;                                                                 \
	} while (0)
	if (!name_ok(e->name))
		BAD("name must be 1..%d bytes of A-Z a-z 0-9 . _ @ : -", RN_PRINCIPAL_NAME_MAX);
	if (!strcmp(e->name, ANONYMOUS) || (ntokens && !strcmp(e->name, IMPLICIT)))
		BAD("the name \"%s\" is reserved", e->name);
	if (!!e->client_id != !!e->secret_hash)
		BAD("client_id and secret_hash go together");
	if (e->client_id && !e->client_id[0])
		BAD("client_id is empty");
	if (e->secret_hash && rn_crypto_hash_check(e->secret_hash))
		BAD("secret_hash is not a hash printed by `runnel-server hash-secret` "
		    "(pbkdf2-sha256$<iterations %d..%d>$<salt>$<hash>)",
		    RN_CRYPTO_ITER_MIN, RN_CRYPTO_ITER_MAX);
	if (e->cert && !e->cert[0])
		BAD("cert is empty");
	if (!e->cert && !e->client_id && !e->tokens.n)
		BAD("no way to authenticate: give cert, client_id + secret_hash, or tokens");
	for (size_t k = 0; k < e->tokens.n; k++) {
		const char *t = e->tokens.v[k];
		if (!t[0])
			BAD("tokens[%zu] is empty", k);
		if (!strncmp(t, SHA_PREFIX, strlen(SHA_PREFIX)) && !token_hash(t, h))
			BAD("tokens[%zu] starts with sha256: but is not sha256:<64 hex digits>", k);
	}
	if (!e->tables.n && !e->console)
		BAD("tables is empty: it could write nothing (and console is not set)");
	for (size_t k = 0; k < e->tables.n; k++)
		if (rn_table_pattern_check(e->tables.v[k]))
			BAD("tables[%zu] \"%s\" is not a table pattern (\"*\", or 1 to 3 dotted "
			    "parts, each a name or \"*\")",
			    k, e->tables.v[k]);
	for (size_t j = 0; j < i; j++) {
		const struct rn_principal_conf *o = &c[j];
		if (!strcmp(o->name, e->name))
			BAD("the name is used by principals[%zu] too", j);
		if (e->cert && o->cert && !strcmp(e->cert, o->cert))
			BAD("cert \"%s\" is %s's too", e->cert, o->name);
		if (e->client_id && o->client_id && !strcmp(e->client_id, o->client_id))
			BAD("client_id \"%s\" is %s's too", e->client_id, o->name);
		for (size_t a = 0; a < e->tokens.n; a++)
			for (size_t b = 0; b < o->tokens.n; b++)
				if (!strcmp(e->tokens.v[a], o->tokens.v[b]))
					BAD("tokens[%zu] is %s's too", a, o->name);
	}
#undef BAD
	return 0;
}

int rn_principals_create(struct rn_principals **out, const struct rn_principal_conf *c, size_t n,
			 char *const *tokens, size_t ntokens, char *err, size_t cap)
{
	struct rn_principals *ps;
	static char *const star[] = {"*", NULL};
	int fail = 0, rc;
	*out = NULL;
	for (size_t i = 0; i < n; i++)
		if ((rc = check_entry(c, i, ntokens, err, cap)))
			return rc;
	if (!(ps = rn_calloc(1, sizeof(*ps))) || !(ps->p = rn_calloc(n + 1, sizeof(*ps->p)))) {
		rn_free(ps);
		return RN_ENOMEM;
	}
	for (size_t i = 0; i < n && !fail; i++) {
		struct rn_principal *p = &ps->p[ps->n++];
		p->index = i;
		p->name = dup_opt(c[i].name, &fail);
		p->cert = dup_opt(c[i].cert, &fail);
		p->client_id = dup_opt(c[i].client_id, &fail);
		p->secret_hash = dup_opt(c[i].secret_hash, &fail);
		p->console = c[i].console;
		if (!(p->tokens = copy_list(c[i].tokens.v, c[i].tokens.n)))
			fail = 1;
		else
			p->ntokens = c[i].tokens.n;
		if (!(p->tables = copy_list(c[i].tables.v, c[i].tables.n)))
			fail = 1;
		else
			p->ntables = c[i].tables.n;
	}
	ps->required = n || ntokens;
	if (!fail) {
		/* the top-level token(s), or nobody: one implicit principal allowed every table */
		struct rn_principal *p = &ps->p[ps->n++];
		p->index = ps->n - 1;
		p->name = dup_opt(ntokens ? IMPLICIT : ANONYMOUS, &fail);
		p->console = 1;
		if (!(p->tables = copy_list(star, 1)))
			fail = 1;
		else
			p->ntables = 1;
		if (ntokens && !fail) {
			if (!(p->tokens = copy_list(tokens, ntokens)))
				fail = 1;
			else
				p->ntokens = ntokens;
		}
		if (!ntokens && n) {
			/* principals but no top-level token: no implicit principal */
			free_one(p);
			memset(p, 0, sizeof(*p));
			ps->n--;
		}
	}
	if (fail) {
		rn_principals_destroy(ps);
		return RN_ENOMEM;
	}
	*out = ps;
	return 0;
}

size_t rn_principals_count(const struct rn_principals *ps)
{
	return ps ? ps->n : 0;
}

const struct rn_principal *rn_principals_at(const struct rn_principals *ps, size_t i)
{
	return ps && i < ps->n ? &ps->p[i] : NULL;
}

int rn_principals_required(const struct rn_principals *ps)
{
	return ps && ps->required;
}

const struct rn_principal *rn_principals_find(const struct rn_principals *ps, const char *name)
{
	for (size_t i = 0; ps && name && i < ps->n; i++)
		if (!strcmp(ps->p[i].name, name))
			return &ps->p[i];
	return NULL;
}

const struct rn_principal *rn_principals_by_cert(const struct rn_principals *ps,
						 const char *identity)
{
	for (size_t i = 0; ps && identity && i < ps->n; i++)
		if (ps->p[i].cert && !strcmp(ps->p[i].cert, identity))
			return &ps->p[i];
	return NULL;
}

const struct rn_principal *rn_principals_by_client_id(const struct rn_principals *ps,
						      const char *client_id)
{
	for (size_t i = 0; ps && client_id && i < ps->n; i++)
		if (ps->p[i].client_id && !strcmp(ps->p[i].client_id, client_id))
			return &ps->p[i];
	return NULL;
}

const struct rn_principal *rn_principals_by_token(const struct rn_principals *ps, const char *token,
						  size_t len)
{
	unsigned char digest[32], want[32];
	const struct rn_principal *found = NULL;
	if (!ps || !token || !len || rn_crypto_sha256(token, len, digest))
		return NULL;
	/* every token of every principal is compared: no early exit */
	for (size_t i = 0; i < ps->n; i++)
		for (size_t k = 0; k < ps->p[i].ntokens; k++) {
			const char *t = ps->p[i].tokens[k];
			int eq = token_hash(t, want) ? rn_crypto_equal(digest, want, 32)
						     : rn_auth_equal(token, len, t, strlen(t));
			if (eq && !found)
				found = &ps->p[i];
		}
	return found;
}

/* The next dotted part of s: its length; *next past the dot (or at the end). */
static size_t part(const char *s, const char **next)
{
	size_t n = strcspn(s, ".");
	*next = s[n] ? s + n + 1 : s + n;
	return n;
}

int rn_table_pattern_check(const char *pat)
{
	int parts = 0;
	const char *p = pat;
	if (!pat || !*pat)
		return RN_EINVAL;
	if (!strcmp(pat, "*"))
		return 0;
	for (;;) {
		const char *s = p;
		size_t n = 0;
		if (*p == '*') {
			p++;
			n = 1;
		} else {
			while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			       (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
				p++;
			n = (size_t)(p - s);
			if (!n || n > 128 || *s == '-' || *s == '_')
				return RN_EINVAL;
		}
		parts++;
		if (!*p)
			return 0;
		if (*p != '.' || parts == 3)
			return RN_EINVAL;
		p++;
	}
}

int rn_table_pattern_match(const char *pat, const char *table)
{
	const char *p = pat, *t = table;
	if (!pat || !table)
		return 0;
	if (!strcmp(pat, "*"))
		return 1;
	for (;;) {
		const char *pn, *tn;
		size_t pl = part(p, &pn), tl = part(t, &tn);
		if (!tl)
			return 0;
		if (!(pl == 1 && *p == '*') && (pl != tl || memcmp(p, t, pl)))
			return 0;
		p = pn;
		t = tn;
		if (!*p || !*t)
			return !*p && !*t; /* the same number of parts */
	}
}

int rn_table_patterns_match(char *const *patterns, size_t n, const char *table)
{
	for (size_t i = 0; i < n; i++)
		if (rn_table_pattern_match(patterns[i], table))
			return 1;
	return 0;
}

int rn_table_reserved(const char *table)
{
	static const char suffix[] = "_dead_letters";
	size_t n = table ? strlen(table) : 0, s = sizeof(suffix) - 1;
	return (n >= s && !strcmp(table + n - s, suffix)) ||
	       (table && !strncmp(table, "runnel.fleet.", 13));
}
