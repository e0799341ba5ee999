/*
 * Unit tests for the SigV4 signer (server/store/sigv4.c): every case of AWS's published test
 * suite under tests/unit/data/sigv4/ (canonical request, string to sign and signature must
 * match byte for byte), S3's documented examples (content hash header, Range, ListObjects
 * query), argument checks, and every allocation failing in turn.
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rn_err.h"
#include "rn_mem.h"
#include "sigv4.h"

#define T20150830 1440938160 /* 2015-08-30T12:36:00Z, the suite's time */

/* The key pairs signed with: AWS's test suite's and S3's documentation's (their published
 * signatures depend on them), and a short one where only the code paths matter. */
enum keys { SUITE_KEYS, DOC_KEYS, SHORT_KEYS };
static const char *const key_pairs[][2] = {
	[SUITE_KEYS] = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
	[DOC_KEYS] = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
	[SHORT_KEYS] = {"A", "S"},
};

/* One signing: credentials, request and result. */
struct signing {
	struct rn_sigv4_cred c;
	struct rn_sigv4_req r;
	struct rn_sigv4_out out;
};

/* The setup every test shares: the key pair `keys` for `service` in us-east-1, no session
 * token, and the request `method path` with headers hs[0..n) and the x-amz-content-sha256
 * header (S3 requires it); a test then sets what it is about (query, token, normalize). */
static void setup(struct signing *g, enum keys keys, const char *service, const char *method,
		  const char *path, const struct rn_sigv4_header *hs, size_t n)
{
	*g = (struct signing){
		.c = {.access_key = key_pairs[keys][0],
		      .secret_key = key_pairs[keys][1],
		      .region = "us-east-1",
		      .service = service},
		.r = {.method = method,
		      .path = path,
		      .headers = hs,
		      .n_headers = n,
		      .content_sha256 = 1},
	};
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *p;
	long n;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = 0;
	fclose(f);
	if (len)
		*len = (size_t)n;
	return p;
}

/* The value of "key": "..." in context.json, or NULL. */
static char *json_str(const char *json, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p, *e;
	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	if (!(p = strstr(json, pat)))
		return NULL;
	p += strlen(pat);
	e = strchr(p, '"');
	assert_non_null(e);
	assert_true((size_t)(e - p) < cap);
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = 0;
	return out;
}

static int json_true(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": true", key);
	return strstr(json, pat) != NULL;
}

static void run_case(const char *dir)
{
	char *req = slurp(dir, "request.txt", NULL), *ctx = slurp(dir, "context.json", NULL);
	char *want_cr = slurp(dir, "header-canonical-request.txt", NULL);
	char *want_sts = slurp(dir, "header-string-to-sign.txt", NULL);
	char *want_sig = slurp(dir, "header-signature.txt", NULL);
	char token[1024], hash[65];
	struct rn_sigv4_header hs[16];
	struct signing g;
	char *line, *body = NULL, *sp, *method, *target, *q, *query = NULL;
	size_t n = 0;

	assert_non_null(req);
	assert_non_null(ctx);
	assert_non_null(want_cr);
	/* request line: METHOD SP target SP HTTP/1.1 (the target may hold spaces) */
	line = req;
	body = strstr(req, "\n\n");
	if (body) {
		*body = 0;
		body += 2;
	}
	sp = strchr(line, ' ');
	assert_non_null(sp);
	*sp = 0;
	method = line;
	target = sp + 1;
	line = strchr(target, '\n');
	if (line)
		*line++ = 0;
	sp = strstr(target, " HTTP/");
	assert_non_null(sp);
	*sp = 0;
	if ((q = strchr(target, '?'))) {
		*q = 0;
		query = q + 1;
	}
	/* header lines; one starting with a blank continues the previous value */
	while (line && *line) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (*line == ' ' || *line == '\t') {
			assert_true(n > 0);
			line[-1] = '\n'; /* rejoin with the previous line: fold_value treats it as
					    blank */
		} else {
			char *colon = strchr(line, ':');
			assert_non_null(colon);
			*colon = 0;
			assert_true(n < 16);
			hs[n].name = line;
			hs[n].value = colon + 1;
			n++;
		}
		line = next;
	}
	setup(&g, SUITE_KEYS, "service", method, target, hs, n);
	g.r.query = query;
	g.r.normalize = json_true(ctx, "normalize");
	g.r.content_sha256 = json_true(ctx, "sign_body");
	assert_int_equal(rn_sigv4_sha256_hex(body ? body : "", body ? strlen(body) : 0, hash), 0);
	g.r.payload_hash = hash;
	g.c.session_token = json_str(ctx, "token", token, sizeof(token));

	assert_int_equal(rn_sigv4_sign(&g.c, &g.r, T20150830, &g.out), 0);
	if (strcmp((char *)g.out.canonical.data, want_cr) != 0)
		fail_msg("%s: canonical request\n--- got\n%s\n--- want\n%s", dir,
			 g.out.canonical.data, want_cr);
	assert_string_equal((char *)g.out.to_sign.data, want_sts);
	assert_string_equal(g.out.signature, want_sig);
	assert_non_null(strstr((char *)g.out.authorization.data, want_sig));
	assert_null(strstr((char *)g.out.authorization.data, g.c.secret_key));
	rn_sigv4_out_free(&g.out);
	free(req);
	free(ctx);
	free(want_cr);
	free(want_sts);
	free(want_sig);
}

static void test_aws_suite(void **state)
{
	DIR *d = opendir(RN_SIGV4_DATA);
	struct dirent *e;
	int cases = 0;
	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char dir[1024];
		if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", RN_SIGV4_DATA, e->d_name);
		run_case(dir);
		cases++;
	}
	closedir(d);
	assert_true(cases >= 20); /* the folder was found and read */
}

/* AWS S3 documentation, "Signature calculations for the Authorization header", GET Object. */
static void test_s3_get_object_example(void **state)
{
	struct rn_sigv4_header hs[] = {{"Host", "examplebucket.s3.amazonaws.com"},
				       {"Range", "bytes=0-9"}};
	struct signing g;
	(void)state;
	setup(&g, DOC_KEYS, "s3", "GET", "/test.txt", hs, 2);
	assert_int_equal(rn_sigv4_sign(&g.c, &g.r, 1369353600, &g.out), 0); /* 2013-05-24 */
	assert_string_equal(g.out.amz_date, "20130524T000000Z");
	assert_string_equal(g.out.signature,
			    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	assert_string_equal(
		(char *)g.out.authorization.data,
		"AWS4-HMAC-SHA256 "
		"Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	rn_sigv4_out_free(&g.out);
}

/* The same page's GET Bucket (List Objects) example: the query is sorted and encoded. */
static void test_s3_list_example(void **state)
{
	struct rn_sigv4_header hs[] = {{"Host", "examplebucket.s3.amazonaws.com"}};
	struct signing g;
	(void)state;
	setup(&g, DOC_KEYS, "s3", "GET", "/", hs, 1);
	g.r.query = "prefix=J&max-keys=2";
	assert_int_equal(rn_sigv4_sign(&g.c, &g.r, 1369353600, &g.out), 0);
	assert_non_null(strstr((char *)g.out.canonical.data, "\nmax-keys=2&prefix=J\n"));
	assert_string_equal(g.out.signature,
			    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	rn_sigv4_out_free(&g.out);
}

static void test_encode(void **state)
{
	struct rn_buf b = {0};
	(void)state;
	assert_int_equal(rn_sigv4_encode(&b, "a b/c+d=é~", strlen("a b/c+d=é~"), 1), 0);
	assert_int_equal(rn_buf_append_u8(&b, 0), 0);
	assert_string_equal((char *)b.data, "a%20b/c%2Bd%3D%C3%A9~");
	b.len = 0;
	assert_int_equal(rn_sigv4_encode(&b, "_delta_log/", 11, 0), 0);
	assert_int_equal(rn_buf_append_u8(&b, 0), 0);
	assert_string_equal((char *)b.data, "_delta_log%2F");
	rn_buf_free(&b);
}

static void test_bad_arguments(void **state)
{
	struct rn_sigv4_header bad[] = {{"Host", "h"}, {"Bad Name", "v"}};
	struct rn_sigv4_header many[RN_SIGV4_MAX_HEADERS + 1];
	struct signing g;
	(void)state;
	setup(&g, SHORT_KEYS, "s", "GET", "/", bad, 2);
	g.r.content_sha256 = 0;
	assert_int_equal(rn_sigv4_sign(&g.c, &g.r, 0, &g.out), RN_EINVAL);
	rn_sigv4_out_free(&g.out);
	for (size_t i = 0; i < RN_SIGV4_MAX_HEADERS + 1; i++) {
		many[i].name = "x-h";
		many[i].value = "v";
	}
	g.r.headers = many;
	g.r.n_headers = RN_SIGV4_MAX_HEADERS + 1;
	assert_int_equal(rn_sigv4_sign(&g.c, &g.r, 0, &g.out), RN_EINVAL);
	rn_sigv4_out_free(&g.out);
	g.c.secret_key = NULL;
	assert_int_equal(rn_sigv4_sign(&g.c, &g.r, 0, &g.out), RN_EINVAL);
	rn_sigv4_out_free(&g.out);
}

/* Each allocation of a signing fails in turn: RN_ENOMEM, nothing leaked, then success. */
static void test_alloc_failures(void **state)
{
	struct rn_sigv4_header hs[] = {{"Host", "h"}, {"X-B", "2"}, {"x-a", " 1 "}};
	long live = rn_mem_live();
	int done = 0;
	(void)state;
	for (long nth = 1; !done && nth < 1000; nth++) {
		struct signing g;
		int rc;
		setup(&g, SHORT_KEYS, "s3", "PUT", "/bucket/a b", hs, 3);
		g.r.query = "uploads&prefix=x%2Fy&b=1";
		g.c.session_token = "T";
		rn_mem_fail_after(nth);
		rc = rn_sigv4_sign(&g.c, &g.r, 0, &g.out);
		done = !rn_mem_fail_disarm();
		assert_int_equal(rc, done ? 0 : RN_ENOMEM);
		rn_sigv4_out_free(&g.out);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_true(done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_suite),
		cmocka_unit_test(test_s3_get_object_example),
		cmocka_unit_test(test_s3_list_example),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
