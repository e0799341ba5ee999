/*
 * s3_probe: one S3 operation through server/store/s3.c against a real endpoint, its result
 * printed as one JSON line, for tests/integration/s3_probe.test.mjs. Not installed.
 *
 *   s3_probe ENDPOINT BUCKET OP ARGS...      (credentials from AWS_* or
 * AWS_SHARED_CREDENTIALS_FILE) put KEY TEXT | pia KEY TEXT (put if absent) | putfile KEY PATH | get
 * KEY [OFF LEN] | head KEY | delete KEY | list PREFIX MAXKEYS (pages to the end) | putmany PREFIX N
 *
 * Output: {"rc":0,"error":"...","msg":"...","status":200,...op fields}. Exit status 0 when the
 * probe ran (whatever rc), 2 on bad usage. S3_PROBE_ATTEMPTS, S3_PROBE_TIMEOUT_MS,
 * S3_PROBE_PART_MB and S3_PROBE_THRESHOLD_MB set the client's settings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "s3.h"
#include "sigv4.h"
#include "probe_util.h"

static void finish(struct rn_s3 *s, int rc)
{
	struct rn_s3_stats st;
	rn_s3_stats(s, &st);
	printf("\"rc\":%d,\"error\":", rc);
	probe_json_str(rc ? rn_strerror(rc) : "");
	printf(",\"msg\":");
	probe_json_str(rn_s3_errmsg(s));
	printf(",\"status\":%d,\"requests\":%llu,\"retries\":%llu}\n", rn_s3_status(s),
	       (unsigned long long)st.requests, (unsigned long long)st.retries);
}

int main(int argc, char **argv)
{
	struct rn_s3_config c = {0};
	struct rn_s3 *s = NULL;
	char err[512];
	const char *op;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: s3_probe ENDPOINT BUCKET OP ARGS...\n");
		return 2;
	}
	c.endpoint = argv[1];
	c.bucket = argv[2];
	c.region = getenv("AWS_REGION");
	c.max_attempts = probe_envint("S3_PROBE_ATTEMPTS", 0);
	c.timeout_ms = probe_envint("S3_PROBE_TIMEOUT_MS", 0);
	c.backoff_ms = 50;
	c.part_size = (int64_t)probe_envint("S3_PROBE_PART_MB", 0) << 20;
	c.multipart_threshold = (int64_t)probe_envint("S3_PROBE_THRESHOLD_MB", 0) << 20;
	op = argv[3];
	if ((rc = rn_s3_create(&c, &s, err, sizeof(err)))) {
		printf("{\"rc\":%d,\"error\":", rc);
		probe_json_str(rn_strerror(rc));
		printf(",\"msg\":");
		probe_json_str(err);
		printf("}\n");
		return 0;
	}
	printf("{\"op\":");
	probe_json_str(op);
	putchar(',');
	if (strcmp(op, "put") == 0 && argc == 6) {
		rc = rn_s3_put(s, argv[4], argv[5], strlen(argv[5]));
	} else if (strcmp(op, "pia") == 0 && argc == 6) {
		rc = rn_s3_put_if_absent(s, argv[4], argv[5], strlen(argv[5]));
		printf("\"result\":\"%s\",", rc == 0           ? "created"
					     : rc == RN_EEXIST ? "exists"
							       : "failed");
	} else if (strcmp(op, "putfile") == 0 && argc == 6) {
		rc = rn_s3_put_file(s, argv[4], argv[5]);
	} else if (strcmp(op, "get") == 0 && (argc == 5 || argc == 7)) {
		struct rn_buf b = {0};
		char hex[65];
		rc = rn_s3_get(s, argv[4], argc == 7 ? atoll(argv[5]) : 0,
			       argc == 7 ? atoll(argv[6]) : -1, &b);
		if (!rc) {
			rn_sigv4_sha256_hex(b.data ? (const char *)b.data : "", b.len, hex);
			printf("\"len\":%zu,\"sha256\":\"%s\",", b.len, hex);
			if (b.len <= 4096 &&
			    !memchr(b.data ? (const char *)b.data : "", 0, b.len)) {
				rn_buf_append_u8(&b, 0);
				printf("\"text\":");
				probe_json_str(b.data ? (const char *)b.data : "");
				putchar(',');
			}
		}
		rn_buf_free(&b);
	} else if (strcmp(op, "head") == 0 && argc == 5) {
		int64_t size = -1;
		rc = rn_s3_head(s, argv[4], &size);
		printf("\"size\":%lld,", (long long)size);
	} else if (strcmp(op, "delete") == 0 && argc == 5) {
		rc = rn_s3_delete(s, argv[4]);
	} else if (strcmp(op, "list") == 0 && argc == 6) {
		char *token = NULL;
		size_t keys = 0, pages = 0;
		int sorted = 1;
		char last[1024] = "";
		do {
			struct rn_s3_list l;
			rc = rn_s3_list(s, argv[4], NULL, token, atoi(argv[5]), &l);
			free(token);
			token = NULL;
			if (rc)
				break;
			pages++;
			for (size_t i = 0; i < l.n; i++, keys++) {
				if (strcmp(last, l.items[i].key) >= 0)
					sorted = 0;
				snprintf(last, sizeof(last), "%s", l.items[i].key);
			}
			if (l.truncated && l.next_token)
				token = strdup(l.next_token);
			rn_s3_list_free(&l);
		} while (token);
		printf("\"keys\":%zu,\"pages\":%zu,\"sorted\":%s,\"last\":", keys, pages,
		       sorted ? "true" : "false");
		probe_json_str(last);
		putchar(',');
	} else if (strcmp(op, "putmany") == 0 && argc == 6) {
		int n = atoi(argv[5]);
		rc = 0;
		for (int i = 0; i < n && !rc; i++) {
			char key[512], body[32];
			snprintf(key, sizeof(key), "%s%05d", argv[4], i);
			snprintf(body, sizeof(body), "%d", i);
			rc = rn_s3_put(s, key, body, strlen(body));
		}
	} else {
		fprintf(stderr, "s3_probe: unknown op or wrong arguments: %s\n", op);
		rn_s3_destroy(s);
		return 2;
	}
	finish(s, rc);
	rn_s3_destroy(s);
	return 0;
}
