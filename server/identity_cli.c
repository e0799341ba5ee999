/* runnel-server hash-secret and token issue (see identity_cli.h). */
#include "identity_cli.h"

#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "oauth.h"
#include "principal.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "server.h"

int rn_hash_secret_main(int argc, char **argv, FILE *in, FILE *out, FILE *err)
{
	char secret[4200], enc[RN_CRYPTO_HASH_MAX];
	size_t n;
	int token = argc == 2 && !strcmp(argv[1], "--token");
	if (argc > 2 || (argc == 2 && !token)) {
		fprintf(err, "usage: runnel-server hash-secret [--token] < secret\n"
			     "  prints the secret_hash of a client secret, or with --token the\n"
			     "  sha256:<hex> form of a static token (for principals' tokens)\n");
		return 2;
	}
	n = fread(secret, 1, sizeof(secret) - 1, in);
	if (n == sizeof(secret) - 1) {
		fprintf(err, "runnel-server hash-secret: the secret is longer than %zu bytes\n",
			sizeof(secret) - 2);
		return 1;
	}
	while (n && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
		n--; /* `echo secret |` adds a newline no client sends */
	if (!n) {
		fprintf(err, "runnel-server hash-secret: empty secret on stdin\n");
		return 1;
	}
	if (token) {
		uint8_t d[32];
		if (rn_crypto_sha256(secret, n, d))
			return 1;
		fprintf(out, "sha256:");
		for (size_t i = 0; i < 32; i++)
			fprintf(out, "%02x", d[i]);
		fprintf(out, "\n");
		return 0;
	}
	if (rn_crypto_hash_secret(secret, n, 0, enc, sizeof(enc))) {
		fprintf(err, "runnel-server hash-secret: cannot hash (no random bytes?)\n");
		return 1;
	}
	fprintf(out, "%s\n", enc);
	return 0;
}

static void token_usage(FILE *f)
{
	fprintf(f, "usage: runnel-server token issue --principal NAME [--tables T[,T...]] "
		   "[--ttl SECONDS] [-c FILE]\n"
		   "  prints a signed token (the key: token_key_file of the config, default\n"
		   "  data_root/_token_key, which must exist: the server creates it) for a\n"
		   "  principal of the config; --tables defaults to every table it may write\n");
}

int rn_token_main(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option lo[] = {{"principal", required_argument, NULL, 'p'},
					   {"tables", required_argument, NULL, 't'},
					   {"ttl", required_argument, NULL, 'l'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *file = NULL, *name = NULL, *tables = NULL;
	long long ttl = 3600;
	struct rn_server_conf conf = {0};
	struct rn_principals *ps = NULL;
	struct rn_buf tok = {0};
	char msg[1024], *list = NULL, *grant[RN_OAUTH_TABLES_MAX], jti[40];
	uint8_t key[4096], raw[16];
	size_t klen, n = 0;
	int opt, rc = 1;
	const struct rn_principal *p;

	if (argc < 2 || strcmp(argv[1], "issue")) {
		token_usage(err);
		return 2;
	}
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "c:p:t:l:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'p': name = optarg; break;
		case 't': tables = optarg; break;
		case 'l': ttl = strtoll(optarg, NULL, 10); break;
		case 'h': token_usage(out); return 0;
		default: token_usage(err); return 2;
		}
	}
	if (!name || ttl < 1 || ttl > 86400 * 366) {
		token_usage(err);
		return 2;
	}
	if ((file ? rn_conf_load_file(file, rn_server_conf_table, &conf, msg, sizeof(msg))
		  : rn_conf_load_string("", "(defaults)", rn_server_conf_table, &conf, msg,
					sizeof(msg))) ||
	    rn_server_conf_check(&conf, file ? file : "(defaults)", msg, sizeof(msg)) ||
	    rn_principals_create(&ps, conf.principals.items, conf.principals.n, conf.token.v,
				 conf.token.n, msg, sizeof(msg))) {
		fprintf(err, "runnel-server token: %s\n", msg);
		goto out;
	}
	if (!(p = rn_principals_find(ps, name))) {
		fprintf(err, "runnel-server token: no principal named %s in %s\n", name,
			file ? file : "the config");
		goto out;
	}
	if (tables) {
		char *save = NULL;
		if (!(list = strdup(tables)))
			goto out;
		for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (n == RN_OAUTH_TABLES_MAX || rn_table_pattern_check(t) ||
			    (!strchr(t, '*') &&
			     !rn_table_patterns_match(p->tables, p->ntables, t))) {
				fprintf(err,
					"runnel-server token: %s: not a table pattern, one too "
					"many, "
					"or not a table %s may write\n",
					t, name);
				goto out;
			}
			grant[n++] = t;
		}
	} else {
		for (; n < p->ntables && n < RN_OAUTH_TABLES_MAX; n++)
			grant[n] = p->tables[n];
	}
	if (rn_server_token_key(&conf, key, sizeof(key), &klen, 0, msg, sizeof(msg))) {
		fprintf(err, "runnel-server token: %s\n", msg);
		goto out;
	}
	if (rn_crypto_random(raw, sizeof(raw)))
		goto out;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(jti + 2 * i, 3, "%02x", raw[i]);
	if (rn_oauth_issue(key, klen, p->name, grant, n, (int64_t)time(NULL), ttl, jti, &tok)) {
		fprintf(err, "runnel-server token: cannot issue\n");
		goto out;
	}
	fprintf(out, "%.*s\n", (int)tok.len, (const char *)tok.data);
	rc = 0;
out:
	free(list);
	rn_buf_free(&tok);
	rn_principals_destroy(ps);
	rn_conf_free(rn_server_conf_table, &conf);
	return rc;
}
