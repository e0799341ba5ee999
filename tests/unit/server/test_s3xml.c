/*
 * Unit tests for the S3 XML parser (server/store/s3xml.c): ListObjectsV2 pages (as AWS and
 * Ceph RGW write them: namespace, entities, quoted ETags, continuation token, common
 * prefixes, LastModified), error documents, InitiateMultipartUpload results, the two date
 * formats (a listing's ISO 8601 LastModified, a HEAD's HTTP-date Last-Modified), malformed
 * and hostile input, and every allocation failing in turn.
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
	"&#xE9;&#233;</Key><Size>0</Size><ETag>\"x\"</ETag>"
	"<LastModified>2024-02-29T23:59:59.9876Z</LastModified></Contents>"
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
	assert_int_equal(l.items[0].mtime_ms, INT64_C(1796551200000));
	assert_int_equal(l.items[1].mtime_ms, INT64_C(1709251199987)); /* past ms: dropped */
	assert_int_equal(l.items[2].mtime_ms, -1);                     /* none given */
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

static void test_list_bad_last_modified(void **state)
{
	static const char x[] =
		"<ListBucketResult><Contents><Key>a</Key><LastModified>yesterday</LastModified>"
		"</Contents><Contents><Key>b</Key><LastModified>2026-02-30T00:00:00Z</LastModified>"
		"</Contents><Contents><Key>c</Key><LastModified>2026-12-06T10:00:00</LastModified>"
		"</Contents></ListBucketResult>";
	struct rn_s3_list l;
	(void)state;
	/* a date that does not parse is "unknown" (-1), not a failed listing */
	assert_int_equal(rn_s3xml_list(x, strlen(x), &l), 0);
	assert_int_equal(l.n, 3);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.items[i].mtime_ms, -1);
	rn_s3_list_free(&l);
}

static void test_iso_time(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{"2026-12-06T10:00:00.000Z", INT64_C(1796551200000)},
		{"2026-12-06T10:00:00Z", INT64_C(1796551200000)},
		{"2026-12-06T10:00:00.5Z", INT64_C(1796551200500)},
		{"2026-12-06T11:30:00.250+01:30", INT64_C(1796551200250)},
		{"1970-01-01T00:00:00.000Z", 0},
		{"1969-12-31T23:59:59.999Z", -1}, /* floor, not toward zero */
		{"1969-12-31T23:59:59.9995Z", -1},
		{"2024-02-29T23:59:59.987654Z", INT64_C(1709251199987)},
	};
	static const char *bad[] = {
		"",
		"2026-12-06",
		"2026-12-06T10:00:00",
		"2026-12-06T10:00:00.Z",
		"2026-13-06T10:00:00Z",
		"2025-02-29T10:00:00Z",
		"2026-12-06T24:00:00Z",
		"2026-12-06T10:00:00Zx",
		"Sun, 06 Dec 2026 10:00:00 GMT",
	};
	int64_t ms;
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 12345;
		if (rn_s3xml_iso_time(good[i].s, strlen(good[i].s), &ms) != 0 || ms != good[i].ms)
			fail_msg("%s: %lld", good[i].s, (long long)ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 12345;
		if (rn_s3xml_iso_time(bad[i], strlen(bad[i]), &ms) != RN_EINVAL || ms != 12345)
			fail_msg("accepted or touched: %s", bad[i]);
	}
	/* exactly n bytes: what follows is not read */
	assert_int_equal(rn_s3xml_iso_time("2026-12-06T10:00:00Zjunk", 20, &ms), 0);
	assert_int_equal(ms, INT64_C(1796551200000));
}

static void test_http_date(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{"Sun, 06 Dec 2026 10:00:00 GMT", INT64_C(1796551200000)},
		{"Thu, 29 Feb 2024 23:59:59 GMT", INT64_C(1709251199000)},
		{"Thu, 01 Jan 1970 00:00:00 GMT", 0},
		{"Wed, 31 Dec 1969 23:59:59 GMT", -1000},
		{"Sat, 31 Dec 2016 23:59:60 GMT", INT64_C(1483228799000)}, /* a leap second */
		{"Mon, 06 Dec 2026 10:00:00 GMT", INT64_C(1796551200000)}, /* weekday: form only */
	};
	static const char *bad[] = {
		"",
		"Sun, 06 Dec 2026 10:00:00 UTC",
		"Sun, 6 Dec 2026 10:00:00 GMT",
		"Sun,  06 Dec 2026 10:00:00 GMT",
		"Sunday, 06-Dec-26 10:00:00 GMT", /* RFC 850: S3 never sends it */
		"Sun Dec  6 10:00:00 2026",       /* asctime: neither */
		"Sun, 06 Xyz 2026 10:00:00 GMT",
		"Xyz, 06 Dec 2026 10:00:00 GMT",
		"Sun, 31 Nov 2026 10:00:00 GMT",
		"Sun, 29 Feb 2100 10:00:00 GMT", /* 2100 is no leap year */
		"Sun, 06 Dec 2026 24:00:00 GMT",
		"Sun, 06 Dec 2026 10:60:00 GMT",
		"Sun, 06 Dec 2026 10:00:61 GMT",
		"Sun, 00 Dec 2026 10:00:00 GMT",
		"Sun, 06 Dec 20x6 10:00:00 GMT",
		"Sun, 06 Dec 2026 10:00:00 GMTX",
		"2026-12-06T10:00:00Z",
	};
	int64_t ms;
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 12345;
		if (rn_s3xml_http_date(good[i].s, strlen(good[i].s), &ms) != 0 || ms != good[i].ms)
			fail_msg("%s: %lld", good[i].s, (long long)ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 12345;
		if (rn_s3xml_http_date(bad[i], strlen(bad[i]), &ms) != RN_EINVAL || ms != 12345)
			fail_msg("accepted or touched: %s", bad[i]);
	}
	assert_int_equal(rn_s3xml_http_date("Sun, 06 Dec 2026 10:00:00 GMT\r\n", 29, &ms), 0);
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
		cmocka_unit_test(test_list_page),
		cmocka_unit_test(test_list_last_page),
		cmocka_unit_test(test_list_many),
		cmocka_unit_test(test_error_doc),
		cmocka_unit_test(test_upload_id),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_text_cap),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_list_bad_last_modified),
		cmocka_unit_test(test_iso_time),
		cmocka_unit_test(test_http_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
