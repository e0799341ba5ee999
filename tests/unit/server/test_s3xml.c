/*
 * Unit tests for the S3 XML parser (server/store/s3xml.c): ListObjectsV2 pages (as AWS and
 * Ceph RGW write them: namespace, entities, quoted ETags, continuation token, common
 * prefixes), error documents, InitiateMultipartUpload results, malformed and hostile input,
 * and every allocation failing in turn.
 */
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
#include "s3xml.h"

static const char list_page[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>bucket</Name><Prefix>t/_delta_log/</Prefix><KeyCount>3</KeyCount><MaxKeys>3</"
	"MaxKeys>"
	"<IsTruncated>true</IsTruncated>"
	"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
	"NextContinuationToken>"
	"<Contents><Key>t/_delta_log/00000000000000000000.json</Key>"
	"<LastModified>2026-12-06T10:00:00.000Z</LastModified>"
	"<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>1234</Size>"
	"<StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>t/a&amp;b &lt;c&gt; "
	"&#xE9;&#233;</Key><Size>0</Size><ETag>\"x\"</ETag></Contents>"
	"<!-- a comment <Contents> -->"
	"<Contents><Key><![CDATA[t/<raw>&amp;]]></Key><Size>7</Size></Contents>"
	"<CommonPrefixes><Prefix>t/p1/</Prefix></CommonPrefixes>"
	"<CommonPrefixes><Prefix>t/p2/</Prefix></CommonPrefixes>"
	"</ListBucketResult>";

static void test_list_page(void **state)
{
	struct rn_s3_list l;
	(void)state;
	assert_int_equal(rn_s3xml_list(list_page, strlen(list_page), &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].key, "t/_delta_log/00000000000000000000.json");
	assert_int_equal(l.items[0].size, 1234);
	assert_string_equal(l.items[0].etag, "9b2cf535f27731c974343645a3985328");
	assert_string_equal(l.items[1].key, "t/a&b <c> \xc3\xa9\xc3\xa9");
	assert_int_equal(l.items[1].size, 0);
	assert_string_equal(l.items[1].etag, "x");
	assert_string_equal(l.items[2].key, "t/<raw>&amp;");
	assert_string_equal(l.items[2].etag, "");
	assert_true(l.truncated);
	assert_string_equal(l.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	assert_int_equal(l.n_prefixes, 2);
	assert_string_equal(l.prefixes[1], "t/p2/");
	rn_s3_list_free(&l);
	rn_s3_list_free(&l); /* freed twice: zeroed, a no-op */
	rn_s3_list_free(NULL);
}

static void test_list_last_page(void **state)
{
	static const char x[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount>"
		"<Contents><Size>5</Size></Contents></ListBucketResult>";
	struct rn_s3_list l;
	(void)state;
	assert_int_equal(rn_s3xml_list(x, strlen(x), &l), 0);
	assert_int_equal(l.n, 0); /* an entry without a key is skipped */
	assert_false(l.truncated);
	assert_null(l.next_token);
	rn_s3_list_free(&l);
}

static void test_list_many(void **state)
{
	size_t cap = 3000 * 64 + 100, len = 0;
	char *x = malloc(cap);
	struct rn_s3_list l;
	(void)state;
	len += (size_t)snprintf(x + len, cap - len, "<ListBucketResult>");
	for (int i = 0; i < 3000; i++)
		len += (size_t)snprintf(x + len, cap - len,
					"<Contents><Key>k%05d</Key><Size>%d</Size></Contents>", i,
					i);
	len += (size_t)snprintf(x + len, cap - len, "</ListBucketResult>");
	assert_int_equal(rn_s3xml_list(x, len, &l), 0);
	assert_int_equal(l.n, 3000);
	assert_string_equal(l.items[2999].key, "k02999");
	assert_int_equal(l.items[2999].size, 2999);
	rn_s3_list_free(&l);
	free(x);
}

static void test_error_doc(void **state)
{
	static const char x[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PreconditionFailed</Code>"
		"<Message>At least one of the pre-conditions you specified did not hold</Message>"
		"<BucketName>b</BucketName><RequestId>tx1</RequestId></Error>";
	static const char rgw[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch"
		"</Code><RequestId>tx2</RequestId><HostId>h</HostId></Error>";
	char code[64], msg[32];
	(void)state;
	assert_int_equal(rn_s3xml_error(x, strlen(x), code, sizeof(code), msg, sizeof(msg)), 0);
	assert_string_equal(code, "PreconditionFailed");
	assert_string_equal(msg, "At least one of the pre-conditi"); /* truncated to its cap */
	assert_int_equal(rn_s3xml_error(rgw, strlen(rgw), code, sizeof(code), msg, sizeof(msg)), 0);
	assert_string_equal(code, "SignatureDoesNotMatch");
	assert_string_equal(msg, "");
	assert_int_equal(
		rn_s3xml_error(list_page, strlen(list_page), code, sizeof(code), msg, sizeof(msg)),
		RN_EINVAL);
	assert_int_equal(rn_s3xml_error("", 0, code, sizeof(code), msg, sizeof(msg)), RN_EINVAL);
}

static void test_upload_id(void **state)
{
	static const char x[] =
		"<?xml version=\"1.0\"?><InitiateMultipartUploadResult "
		"xmlns=\"http://s3.amazonaws.com/"
		"doc/2006-03-01/\"><Bucket>b</Bucket><Key>k</Key><UploadId>2~abcDEF-123</UploadId>"
		"</InitiateMultipartUploadResult>";
	char id[64], small[4];
	(void)state;
	assert_int_equal(rn_s3xml_upload_id(x, strlen(x), id, sizeof(id)), 0);
	assert_string_equal(id, "2~abcDEF-123");
	assert_int_equal(rn_s3xml_upload_id(x, strlen(x), small, sizeof(small)), RN_EINVAL);
	assert_int_equal(rn_s3xml_upload_id(list_page, strlen(list_page), id, sizeof(id)),
			 RN_EINVAL);
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"<ListBucketResult>",                                 /* never closed */
		"<ListBucketResult></Other>",                         /* wrong end tag */
		"</ListBucketResult>",                                /* end without start */
		"<ListBucketResult><Contents><Key>k</Key</Contents>", /* broken tag */
		"<ListBucketResult><!-- open",                        /* unterminated comment */
		"<ListBucketResult><![CDATA[x",                       /* unterminated CDATA */
		"<ListBucketResult attr=\"a>b",                       /* unterminated attribute */
		"<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>&#xD800;</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>&#x110000;</Key></Contents></ListBucketResult>",
		"<Other></Other>", /* wrong root */
		"",                /* nothing */
		"plain text",
		"<>",
	};
	struct rn_s3_list l;
	char deep[RN_S3XML_MAX_DEPTH * 4 + 64] = "<ListBucketResult>";
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (rn_s3xml_list(bad[i], strlen(bad[i]), &l) != RN_EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_null(l.items);
	}
	for (int i = 0; i < RN_S3XML_MAX_DEPTH; i++)
		strcat(deep, "<a>");
	assert_int_equal(rn_s3xml_list(deep, strlen(deep), &l), RN_EINVAL);
	/* an unknown entity is kept as text, and attributes with '>' inside quotes are skipped */
	{
		static const char ok[] =
			"<ListBucketResult a=\"x>y\"><Contents><Key>&nbsp;&amp</Key></Contents>"
			"</ListBucketResult>";
		assert_int_equal(rn_s3xml_list(ok, strlen(ok), &l), 0);
		assert_int_equal(l.n, 1);
		assert_string_equal(l.items[0].key, "&nbsp;&amp");
		rn_s3_list_free(&l);
	}
}

static void test_text_cap(void **state)
{
	size_t n = RN_S3XML_MAX_TEXT + 100;
	char *x = malloc(n + 100);
	struct rn_s3_list l;
	(void)state;
	strcpy(x, "<ListBucketResult><Contents><Key>");
	memset(x + strlen(x), 'a', n);
	strcpy(x + 33 + n, "</Key></Contents></ListBucketResult>");
	assert_int_equal(rn_s3xml_list(x, strlen(x), &l), RN_EINVAL);
	free(x);
}

static void test_alloc_failures(void **state)
{
	long live = rn_mem_live();
	int done = 0;
	(void)state;
	for (long nth = 1; !done && nth < 1000; nth++) {
		struct rn_s3_list l;
		int rc;
		rn_mem_fail_after(nth);
		rc = rn_s3xml_list(list_page, strlen(list_page), &l);
		done = !rn_mem_fail_disarm();
		assert_int_equal(rc, done ? 0 : RN_ENOMEM);
		rn_s3_list_free(&l);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_true(done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_page), cmocka_unit_test(test_list_last_page),
		cmocka_unit_test(test_list_many), cmocka_unit_test(test_error_doc),
		cmocka_unit_test(test_upload_id), cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_text_cap),  cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
