/*
 * The server config's table store (server.h rn_server_tstore_config, rn_server_table_root,
 * rn_server_check_store): turns the flat table_root and s3_* keys into the
 * struct rn_tstore_config every table store is opened with, checks them (rn_server_conf_check
 * calls rn_server__conf_check_store: a well formed root, an endpoint for s3://, the config
 * file's mode when it holds a secret) and runs -n's reachability check. It holds no state and
 * never prints or logs a credential: messages name keys, the root, the endpoint and the
 * access key id at most (not a secret: every request carries it). Moved out of server.c;
 * runs at start, on reload and under -n, on the loop (or main) thread.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "rn_err.h"
#include "rn_log.h"
#include "server_int.h"
#include "tstore.h"

const char *rn_server_table_root(const struct rn_server_conf *c)
{
	return c->table_root ? c->table_root : c->data_root;
}

static int is_s3(const char *root)
{
	return root && !strncmp(root, "s3://", 5);
}

void rn_server_tstore_config(const struct rn_server_conf *c, struct rn_tstore_config *out,
			     char *spool, size_t spool_cap)
{
	*out = (struct rn_tstore_config){
		.s3 = {.endpoint = c->s3_endpoint,
		       .region = c->s3_region,
		       .virtual_host = c->s3_virtual_host,
		       .access_key = c->s3_access_key,
		       .secret_key = c->s3_secret_key,
		       .session_token = c->s3_session_token,
		       .credentials_file = c->s3_credentials_file,
		       .profile = c->s3_profile,
		       .timeout_ms = (int)c->s3_timeout_ms,
		       .max_attempts = (int)c->s3_max_attempts},
	};
	if (c->s3_spool_dir)
		out->spool_dir = c->s3_spool_dir;
	else if (spool_cap && c->data_root &&
		 (size_t)snprintf(spool, spool_cap, "%s/_spool", c->data_root) < spool_cap)
		out->spool_dir = spool;
}

/* A config file that holds s3_secret_key should be readable by its owner only, or owned by
 * root and readable by the service's group (0640 root:runnel, as the packages install it):
 * others reading it is warned about, as for tls_key. */
static void check_secret_mode(const struct rn_server_conf *c, const char *file)
{
	struct stat sb;
	if (!c->s3_secret_key || stat(file, &sb))
		return;
	if ((sb.st_mode & S_IRWXO) || (sb.st_uid != 0 && (sb.st_mode & S_IRWXG)))
		rn_log_warn("server",
			    "%s holds s3_secret_key and is readable or writable by others than "
			    "its owner (mode %03o): chmod 600 it (or 640, owned by root)",
			    file, (unsigned)(sb.st_mode & 0777));
}

int rn_server__conf_check_store(const struct rn_server_conf *c, const char *file, char *err,
				size_t cap)
{
	const char *root = rn_server_table_root(c);
	if (!root || !*root) {
		snprintf(err, cap, "%s: table_root is empty", file);
		return RN_ECONFIG;
	}
	check_secret_mode(c, file);
	if (!is_s3(root)) {
		if (strstr(root, "://")) {
			snprintf(err, cap,
				 "%s: table_root %s: unknown scheme (a local path or "
				 "s3://bucket/prefix)",
				 file, root);
			return RN_ECONFIG;
		}
		return 0;
	}
	if (!c->s3_endpoint) {
		snprintf(err, cap, "%s: table_root %s needs s3_endpoint (the store's URL)", file,
			 root);
		return RN_ECONFIG;
	}
	if ((c->s3_secret_key != NULL) != (c->s3_access_key != NULL)) {
		snprintf(err, cap, "%s: s3_access_key and s3_secret_key go together", file);
		return RN_ECONFIG;
	}
	/* opening parses the root and finds the credentials; it sends nothing */
	struct rn_tstore_config tc;
	struct rn_tstore *st;
	char why[300];
	rn_server_tstore_config(c, &tc, NULL, 0);
	int rc = rn_tstore_open(&st, root, &tc, why, sizeof(why));
	if (rc == RN_ENOMEM)
		return rc;
	if (rc) {
		snprintf(err, cap, "%s: table_root %s: %s", file, root, why);
		return RN_ECONFIG;
	}
	rn_tstore_close(st);
	return 0;
}

static int stop_at_first(void *ctx, const struct rn_tstore_entry *e)
{
	(void)e;
	*(int *)ctx = 1;
	return 1;
}

int rn_server_check_store(const struct rn_server_conf *c, const char *file, char *msg, size_t cap)
{
	const char *root = rn_server_table_root(c);
	struct rn_tstore_config tc;
	struct rn_tstore *st;
	char why[300];
	int rc, any = 0;

	if (!is_s3(root)) {
		snprintf(msg, cap, "table_root %s: a local directory (made at start)", root);
		return 0;
	}
	rn_server_tstore_config(c, &tc, NULL, 0);
	/* one attempt, a short wait: -n answers quickly whether or not the store is up */
	tc.s3.max_attempts = 1;
	tc.s3.connect_timeout_ms = 3000;
	tc.s3.timeout_ms = 10000;
	if ((rc = rn_tstore_open(&st, root, &tc, why, sizeof(why)))) {
		if (rc == RN_ENOMEM)
			return rc;
		snprintf(msg, cap, "%s: table_root %s: %s", file, root, why);
		return RN_ECONFIG;
	}
	const char *bucket = root + 5;
	int blen = (int)strcspn(bucket, "/");
	rc = rn_tstore_list(st, NULL, 0, stop_at_first, &any);
	if (rc == 1)
		rc = 0;
	if (!rc)
		snprintf(msg, cap,
			 "table_root %s: well formed; bucket %.*s exists (listed the prefix: %s)",
			 root, blen, bucket, any ? "holds objects" : "empty");
	else if (rc == RN_ECONNECT)
		snprintf(msg, cap,
			 "table_root %s: well formed, credentials found; the store at %s is not "
			 "reachable (%s): bucket not checked",
			 root, c->s3_endpoint, rn_tstore_errmsg(st));
	else
		snprintf(msg, cap, "%s: table_root %s: listing the bucket %.*s failed: %s", file,
			 root, blen, bucket, rn_tstore_errmsg(st));
	rn_tstore_close(st);
	return rc == RN_ECONNECT ? 0 : rc ? RN_ECONFIG : 0;
}
