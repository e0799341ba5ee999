/*
 * Unit tests for common/rn_conf: every type with defaults, good files, and each kind of bad
 * file (unknown key, wrong type, out of range, syntax error, unknown plugin key, unknown
 * plugin type, missing required key), each checked for FILE:LINE and the key path in the
 * message. Allocation failures are injected through rn_mem's hook and must not leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rn_conf.h"
#include "rn_err.h"
#include "rn_mem.h"

struct file_conf {
	char *glob;
	int64_t depth;
};
struct echo_conf {
	char *text;
};
struct source {
	char *type;
	char *name;
	struct rn_conf_variant v;
};
struct conf {
	char *name;
	int verbose;
	int level;
	int64_t big;
	int count;
	int64_t cap;
	int64_t linger;
	struct rn_conf_strlist paths;
	struct rn_conf_list sources;
	char *listen;
	char *url;
	char *secret;
	struct rn_conf_strlist tokens;
	int64_t limit;
};

static const char *const levels[] = {"error", "warn", "info", "debug", NULL};

static const struct rn_conf_key file_rows[] = {{.key = "glob",
						.type = RN_CONF_STRING,
						.offset = offsetof(struct file_conf, glob),
						.flags = RN_CONF_F_REQUIRED},
					       {.key = "depth",
						.type = RN_CONF_INT,
						.def = "1",
						.min = 0,
						.max = 10,
						.offset = offsetof(struct file_conf, depth)},
					       {0}};
static const struct rn_conf_key echo_rows[] = {{.key = "text",
						.type = RN_CONF_STRING,
						.def = "hello",
						.offset = offsetof(struct echo_conf, text)},
					       {0}};

static const struct rn_conf_key *resolve(const char *tag, size_t *size)
{
	if (!strcmp(tag, "file")) {
		*size = sizeof(struct file_conf);
		return file_rows;
	}
	if (!strcmp(tag, "echo")) {
		*size = sizeof(struct echo_conf);
		return echo_rows;
	}
	return NULL;
}

static const struct rn_conf_key source_rows[] = {
	{.key = "type", .type = RN_CONF_STRING, .offset = offsetof(struct source, type)},
	{.key = "name",
	 .type = RN_CONF_STRING,
	 .offset = offsetof(struct source, name),
	 .flags = RN_CONF_F_REQUIRED},
	{0}};
static const struct rn_conf_key agent_rows[] = {{.key = "name",
						 .type = RN_CONF_STRING,
						 .def = "dflt",
						 .offset = offsetof(struct conf, name)},
						{.key = "verbose",
						 .type = RN_CONF_BOOL,
						 .def = "false",
						 .offset = offsetof(struct conf, verbose)},
						{.key = "level",
						 .type = RN_CONF_ENUM,
						 .def = "info",
						 .enums = levels,
						 .offset = offsetof(struct conf, level)},
						{0}};
static const struct rn_conf_key rows[] = {
	{.key = "agent", .type = RN_CONF_GROUP, .sub = agent_rows},
	{.key = "big", .type = RN_CONF_INT64, .def = "7", .offset = offsetof(struct conf, big)},
	{.key = "count",
	 .type = RN_CONF_INT32,
	 .def = "5",
	 .min = 1,
	 .max = 1000,
	 .offset = offsetof(struct conf, count),
	 .help = "how many"},
	{.key = "cap", .type = RN_CONF_SIZE, .def = "1G", .offset = offsetof(struct conf, cap)},
	{.key = "linger",
	 .type = RN_CONF_DURATION,
	 .def = "200ms",
	 .min = 0,
	 .max = 3600000,
	 .offset = offsetof(struct conf, linger)},
	{.key = "paths", .type = RN_CONF_STRLIST, .offset = offsetof(struct conf, paths)},
	{.key = "sources",
	 .type = RN_CONF_LIST,
	 .sub = source_rows,
	 .elem_size = sizeof(struct source),
	 .offset = offsetof(struct conf, sources),
	 .tag = "type",
	 .resolve = resolve,
	 .variant_offset = offsetof(struct source, v)},
	{.key = "listen", .type = RN_CONF_LISTEN, .offset = offsetof(struct conf, listen)},
	{.key = "url",
	 .type = RN_CONF_URL,
	 .def = "http://127.0.0.1:7700",
	 .offset = offsetof(struct conf, url)},
	{.key = "secret",
	 .type = RN_CONF_STRING,
	 .offset = offsetof(struct conf, secret),
	 .flags = RN_CONF_F_NOCTL},
	{.key = "tokens",
	 .type = RN_CONF_STRLIST,
	 .offset = offsetof(struct conf, tokens),
	 .flags = RN_CONF_F_NOCTL},
	{.key = "limit",
	 .type = RN_CONF_SIZE,
	 .def = "10M",
	 .min = 1024,
	 .max = (int64_t)1 << 30,
	 .offset = offsetof(struct conf, limit)},
	{0}};

static void test_defaults(void **state)
{
	struct conf c = {0};
	char err[256];
	(void)state;
	assert_int_equal(rn_conf_load_string("", "mem", rows, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "dflt");
	assert_int_equal(c.verbose, 0);
	assert_int_equal(c.level, 2);
	assert_int_equal(c.big, 7);
	assert_int_equal(c.count, 5);
	assert_int_equal(c.cap, (int64_t)1 << 30);
	assert_int_equal(c.linger, 200);
	assert_int_equal(c.paths.n, 0);
	assert_int_equal(c.sources.n, 0);
	rn_conf_free(rows, &c);
	assert_null(c.name);
}

static void test_good_file(void **state)
{
	struct conf c = {0};
	char err[256];
	long live = rn_mem_live();
	(void)state;
	int rc = rn_conf_load_file(RN_CONF_DATA "/good.conf", rows, &c, err, sizeof(err));
	if (rc)
		fail_msg("%s", err);
	assert_string_equal(c.name, "edge-1");
	assert_int_equal(c.verbose, 1);
	assert_int_equal(c.level, 3);
	assert_true(c.big == 5000000000LL);
	assert_int_equal(c.count, 42);
	assert_int_equal(c.cap, 64 << 20);
	assert_int_equal(c.linger, 2000);
	assert_int_equal(c.paths.n, 2);
	assert_string_equal(c.paths.v[1], "/var/log/*.txt");
	assert_null(c.paths.v[2]);
	assert_int_equal(c.sources.n, 2);
	struct source *s = c.sources.items;
	assert_string_equal(s[0].type, "file");
	assert_string_equal(s[0].name, "app");
	assert_ptr_equal(s[0].v.table, file_rows);
	struct file_conf *fc = s[0].v.data;
	assert_string_equal(fc->glob, "x*");
	assert_int_equal(fc->depth, 3);
	struct echo_conf *ec = s[1].v.data;
	assert_string_equal(ec->text, "hi");
	rn_conf_free(rows, &c);
	assert_int_equal(rn_mem_live(), live);
}

/* Loads `file` and expects RN_ECONFIG with "<path>:<line>:" and `needle` in the message. */
static void expect_error(const char *file, int line, const char *needle)
{
	struct conf c = {0};
	char err[512], want[600];
	long live = rn_mem_live();
	snprintf(want, sizeof(want), "%s/%s:%d: ", RN_CONF_DATA, file, line);
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", RN_CONF_DATA, file);
	int rc = rn_conf_load_file(path, rows, &c, err, sizeof(err));
	rn_conf_free(rows, &c);
	if (rc != RN_ECONFIG)
		fail_msg("%s: rc %d", file, rc);
	assert_int_equal(rn_mem_live(), live);
	if (strncmp(err, want, strlen(want)) || !strstr(err, needle))
		fail_msg("got \"%s\", want prefix \"%s\" and \"%s\"", err, want, needle);
}

static void test_bad_files(void **state)
{
	(void)state;
	expect_error("unknown_key.conf", 5, "unknown key 'agent.nmae'");
	expect_error("wrong_type.conf", 1, "count must be an integer");
	expect_error("out_of_range.conf", 3, "count = 100000 is out of range [1, 1000]");
	expect_error("syntax.conf", 4, "syntax error");
	expect_error("plugin_unknown.conf", 4, "unknown key 'sources[1].globz'");
}

static void expect_str_error(const char *text, const char *want)
{
	struct conf c = {0};
	char err[512];
	long live = rn_mem_live();
	assert_int_equal(rn_conf_load_string(text, "t.conf", rows, &c, err, sizeof(err)),
			 RN_ECONFIG);
	rn_conf_free(rows, &c);
	assert_int_equal(rn_mem_live(), live);
	if (strcmp(err, want))
		fail_msg("got \"%s\", want \"%s\"", err, want);
}

/* Addresses and URLs are checked by the loader, so -n reports them with their line. */
static void test_addresses(void **state)
{
	struct conf c = {0};
	char err[512];
	(void)state;
	assert_int_equal(rn_conf_load_string("listen = \"[::1]:0\";\nurl = \"https://h:8443/p\";",
					     "t.conf", rows, &c, err, sizeof(err)),
			 0);
	assert_string_equal(c.listen, "[::1]:0");
	assert_string_equal(c.url, "https://h:8443/p");
	rn_conf_free(rows, &c);
	expect_str_error("\nlisten = \"127.0.0.1:abc\";",
			 "t.conf:2: listen = \"127.0.0.1:abc\": the port must be a number from 0 "
			 "(any free port) to 65535");
	expect_str_error("listen = \":99999\";",
			 "t.conf:1: listen = \":99999\": the host is empty");
	expect_str_error("listen = 7700;",
			 "t.conf:1: listen must be a string or a list of strings");
	/* several addresses: a list or a comma-separated string, stored joined by ", " */
	assert_int_equal(rn_conf_load_string("listen = [\"127.0.0.1:0\", \"[::1]:0\"];", "t.conf",
					     rows, &c, err, sizeof(err)),
			 0);
	assert_string_equal(c.listen, "127.0.0.1:0, [::1]:0");
	rn_conf_free(rows, &c);
	assert_int_equal(rn_conf_load_string("listen = \"127.0.0.1:1,[::1]:1\";", "t.conf", rows,
					     &c, err, sizeof(err)),
			 0);
	assert_string_equal(c.listen, "127.0.0.1:1,[::1]:1");
	rn_conf_free(rows, &c);
	expect_str_error("listen = [\"127.0.0.1:1\",\n\"[::1]:x\"];",
			 "t.conf:2: listen = \"[::1]:x\": the port must be a number from 0 "
			 "(any free port) to 65535");
	expect_str_error("listen = [\"127.0.0.1:1\", \"127.0.0.1:1\"];",
			 "t.conf:1: listen = \"127.0.0.1:1, 127.0.0.1:1\": the same address is "
			 "given twice");
	expect_str_error("listen = [];", "t.conf:1: listen is an empty list");
	expect_str_error("listen = [1];", "t.conf:1: listen[0] must be a string");
	expect_str_error("\n\n\nurl = \"https://\";",
			 "t.conf:4: url = \"https://\": the URL has no host");
	expect_str_error("url = \"http://h:99999\";",
			 "t.conf:1: url = \"http://h:99999\": the port must be a number from 1 to "
			 "65535");
}

static void test_bad_strings(void **state)
{
	(void)state;
	expect_str_error("\n\nsources = ( { type = \"nope\"; name = \"a\"; } );",
			 "t.conf:3: sources[0].type: unknown type \"nope\"");
	expect_str_error("sources = ( { name = \"a\"; } );",
			 "t.conf:1: sources[0]: missing key 'type'");
	expect_str_error("sources = ( { type = \"file\"; name = \"a\"; } );",
			 "t.conf:1: missing required key 'sources[0].glob'");
	expect_str_error("sources = ( { type = \"echo\"; } );",
			 "t.conf:1: missing required key 'sources[0].name'");
	expect_str_error("cap = \"12Q\";",
			 "t.conf:1: cap must be a size like 1048576, \"64M\" or \"1G\"");
	expect_str_error("linger = -5;", "t.conf:1: linger must not be negative");
	expect_str_error("linger = \"2 weeks\";",
			 "t.conf:1: linger must be a duration like 250 (ms), \"250ms\", \"2s\" or "
			 "\"5m\"");
	expect_str_error("agent: { level = \"loud\"; };",
			 "t.conf:1: agent.level must be one of \"error\", \"warn\", \"info\", "
			 "\"debug\"");
	expect_str_error("agent: { verbose = 1; };",
			 "t.conf:1: agent.verbose must be true or false");
	expect_str_error("agent = 3;", "t.conf:1: agent must be a group { ... }");
	expect_str_error("paths = [1, 2];", "t.conf:1: paths[0] must be a string");
	expect_str_error("paths = 1;", "t.conf:1: paths must be a string or a list of strings");
	expect_str_error("paths = (\"a\", 2);", "t.conf:1: paths[1] must be a string");
	expect_str_error("sources = ( 1 );", "t.conf:1: sources[0] must be a group { ... }");
	expect_str_error("@include \"/etc/passwd\"", "t.conf: @include is not allowed here");
	expect_str_error("count = 1;\ncount = 2;", "t.conf:2: duplicate setting name");
}

/* Loads text that must load; the caller checks c and frees it. */
static void load_ok(const char *text, struct conf *c)
{
	char err[512];
	memset(c, 0, sizeof(*c));
	if (rn_conf_load_string(text, "t.conf", rows, c, err, sizeof(err))) {
		rn_conf_free(rows, c);
		fail_msg("%s: %s", text, err);
	}
}

/*
 * libconfig 1.5 stores a literal beyond the int range (no L suffix) as a wrapped 32-bit int;
 * the loader must see the true value: stored whole, and range-checked as it is.
 */
static void test_big_integers(void **state)
{
	struct conf c;
	char err[512], path[512];
	(void)state;
	load_ok("big = 4296015872;\ncap = 4296015872;", &c);
	assert_int_equal(c.big, 4296015872LL);
	assert_int_equal(c.cap, 4296015872LL);
	rn_conf_free(rows, &c);
	load_ok("big = -4294968320;", &c);
	assert_int_equal(c.big, -4294968320LL);
	rn_conf_free(rows, &c);
	load_ok("big = 0x100000400; cap=8589934592L;", &c);
	assert_int_equal(c.big, 4294968320LL);
	assert_int_equal(c.cap, 8589934592LL);
	rn_conf_free(rows, &c);
	/* the name inside a string earlier on the line is not the setting */
	load_ok("paths = [\"big = 1\"]; big = 4296015872; // big = 7\n", &c);
	assert_int_equal(c.big, 4296015872LL);
	rn_conf_free(rows, &c);
	/* in a group, and with ':' */
	expect_str_error("sources = ( { type = \"file\"; name = \"a\"; glob = \"*\"; depth: "
			 "4294967300; } );",
			 "t.conf:1: sources[0].depth = 4294967300 is out of range [0, 10]");
	expect_str_error("\nlimit = 4294968320;",
			 "t.conf:2: limit = 4294968320 is out of range [1024, 1073741824]");
	expect_str_error("limit = 0x100000400;",
			 "t.conf:1: limit = 4294968320 is out of range [1024, 1073741824]");
	/* wrapped, 4294967297 would be 1: in range */
	expect_str_error("count = 4294967297;",
			 "t.conf:1: count = 4294967297 is out of range [1, 1000]");
	expect_str_error("sources = ( { type = \"file\"; name = \"a\"; glob = \"*\";\n depth = "
			 "4294967297; } );",
			 "t.conf:2: sources[0].depth = 4294967297 is out of range [0, 10]");
	expect_str_error("big = 99999999999999999999;", "t.conf:1: big is too large");
	expect_str_error("linger = 4294967396;",
			 "t.conf:1: linger = 4294967396 is out of range [0, 3600000]");
	/* the same from a file: the line is read from the file */
	snprintf(path, sizeof(path), "%s/%s", RN_CONF_DATA, "big_ints.conf");
	memset(&c, 0, sizeof(c));
	assert_int_equal(rn_conf_load_file(path, rows, &c, err, sizeof(err)), 0);
	assert_int_equal(c.big, 4296015872LL);
	assert_int_equal(c.cap, 4294968320LL);
	rn_conf_free(rows, &c);
	expect_error("too_big.conf", 3, "limit = 4294968320 is out of range [1024, 1073741824]");
}

/* Rows marked RN_CONF_F_NOCTL (tokens, which go into headers) refuse control characters. */
static void test_control_characters(void **state)
{
	struct conf c;
	(void)state;
	expect_str_error("secret = \"abc\\rdef\";",
			 "t.conf:1: secret holds a control character (byte 3); CR, LF, TAB and "
			 "the like are not allowed here");
	expect_str_error("\nsecret = \"a\\nb\";",
			 "t.conf:2: secret holds a control character (byte 1); CR, LF, TAB and "
			 "the like are not allowed here");
	expect_str_error("secret = \"\\tx\";",
			 "t.conf:1: secret holds a control character (byte 0); CR, LF, TAB and "
			 "the like are not allowed here");
	expect_str_error("secret = \"a\\x7f\";",
			 "t.conf:1: secret holds a control character (byte 1); CR, LF, TAB and "
			 "the like are not allowed here");
	expect_str_error("tokens = [ \"ok\", \"b\\r\\n\" ];",
			 "t.conf:1: tokens[1] holds a control character (byte 1); CR, LF, TAB "
			 "and the like are not allowed here");
	expect_str_error("tokens = \"b\\r\";",
			 "t.conf:1: tokens[0] holds a control character (byte 1); CR, LF, TAB "
			 "and the like are not allowed here");
	/* printable and UTF-8 pass; rows without the flag keep any character */
	load_ok("secret = \"s3cr\xc3\xa9t-_.~+/=\"; tokens = [ \"a\", \"b c\" ]; agent: { name = "
		"\"a\\rb\"; };",
		&c);
	assert_string_equal(c.secret, "s3cr\xc3\xa9t-_.~+/=");
	assert_int_equal(c.tokens.n, 2);
	assert_string_equal(c.name, "a\rb");
	rn_conf_free(rows, &c);
}

/* RN_CONF_F_NOCTL rows take values of up to RN_CONF_HDR_MAX bytes and refuse longer ones. */
static void test_header_value_length(void **state)
{
	static char text[2 * RN_CONF_HDR_MAX + 64], val[RN_CONF_HDR_MAX + 2];
	struct conf c;
	(void)state;
	memset(val, 't', RN_CONF_HDR_MAX);
	val[RN_CONF_HDR_MAX] = 0;
	snprintf(text, sizeof(text), "secret = \"%s\"; tokens = [ \"a\", \"%s\" ];", val, val);
	load_ok(text, &c);
	assert_int_equal(strlen(c.secret), RN_CONF_HDR_MAX);
	assert_int_equal(strlen(c.tokens.v[1]), RN_CONF_HDR_MAX);
	rn_conf_free(rows, &c);
	val[RN_CONF_HDR_MAX] = 't';
	val[RN_CONF_HDR_MAX + 1] = 0;
	snprintf(text, sizeof(text), "secret = \"%s\";", val);
	expect_str_error(text, "t.conf:1: secret is longer than 4096 bytes");
	snprintf(text, sizeof(text), "\ntokens = [ \"a\", \"%s\" ];", val);
	expect_str_error(text, "t.conf:2: tokens[1] is longer than 4096 bytes");
}

static void test_parsers(void **state)
{
	int64_t v;
	(void)state;
	assert_int_equal(rn_conf_parse_size("1k", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(rn_conf_parse_size("1.5MiB", &v), 0);
	assert_int_equal(v, 1572864);
	assert_int_equal(rn_conf_parse_size("10B", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(rn_conf_parse_size("-1", &v), RN_EINVAL);
	assert_int_equal(rn_conf_parse_size("1X", &v), RN_EINVAL);
	assert_int_equal(rn_conf_parse_size("99999999T", &v), RN_EINVAL);
	assert_int_equal(rn_conf_parse_duration_ms("250ms", &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(rn_conf_parse_duration_ms("1.5s", &v), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(rn_conf_parse_duration_ms("2h", &v), 0);
	assert_int_equal(v, 7200000);
	assert_int_equal(rn_conf_parse_duration_ms("nan", &v), RN_EINVAL);
}

static void test_missing_file(void **state)
{
	struct conf c = {0};
	char err[256];
	(void)state;
	assert_int_equal(rn_conf_load_file("/nonexistent/x.conf", rows, &c, err, sizeof(err)),
			 RN_ECONFIG);
	assert_non_null(strstr(err, "/nonexistent/x.conf: cannot read the file"));
	rn_conf_free(rows, &c);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	for (long n = 1; n < 200; n++) {
		struct conf c = {0};
		char err[256];
		long live = rn_mem_live();
		rn_mem_fail_after(n);
		int rc = rn_conf_load_file(RN_CONF_DATA "/good.conf", rows, &c, err, sizeof(err));
		rn_mem_fail_after(0);
		rn_conf_free(rows, &c);
		assert_int_equal(rn_mem_live(), live);
		if (rc == 0)
			return;
		assert_int_equal(rc, RN_ENOMEM);
	}
	fail_msg("never succeeded");
}

static void test_help(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	(void)state;
	FILE *f = open_memstream(&buf, &len);
	rn_conf_print_help(rows, f);
	fclose(f);
	assert_non_null(strstr(buf, "count"));
	assert_non_null(strstr(buf, "how many"));
	assert_non_null(strstr(buf, "(default 5) [1..1000]"));
	assert_non_null(strstr(buf, "{error|warn|info|debug}"));
	assert_null(strstr(buf, "changes at restart"));
	free(buf);
}

/* Reload's tools: rows compared deeply (lists of variants included) and swapped without a
 * copy, so both structs still free cleanly. */
static void test_key_equal_and_swap(void **state)
{
	static const char *a_text =
		"big = 1; paths = [\"x\", \"y\"]; agent: { name = \"n\"; };\n"
		"sources = ( { type = \"file\"; name = \"s\"; glob = \"*.log\"; } );";
	static const char *b_text =
		"big = 1; paths = [\"x\", \"z\"]; agent: { name = \"m\"; };\n"
		"sources = ( { type = \"file\"; name = \"s\"; glob = \"*.txt\"; } );";
	struct conf a = {0}, b = {0}, a2 = {0};
	char err[256];
	long live = rn_mem_live();
	(void)state;
	assert_int_equal(rn_conf_load_string(a_text, "a", rows, &a, err, sizeof(err)), 0);
	assert_int_equal(rn_conf_load_string(b_text, "b", rows, &b, err, sizeof(err)), 0);
	assert_int_equal(rn_conf_load_string(a_text, "a2", rows, &a2, err, sizeof(err)), 0);
	for (const struct rn_conf_key *k = rows; k->key; k++) {
		int differs = !strcmp(k->key, "paths") || !strcmp(k->key, "agent") ||
			      !strcmp(k->key, "sources");
		assert_int_equal(rn_conf_key_equal(k, &a, &b), !differs);
		assert_true(rn_conf_key_equal(k, &a, &a2)); /* equal values, other pointers */
	}
	rn_conf_key_swap(&rows[0], &a, &b); /* a group: each of its rows */
	assert_string_equal(a.name, "m");
	assert_string_equal(b.name, "n");
	rn_conf_key_swap(&rows[6], &a, &b); /* sources */
	assert_true(rn_conf_key_equal(&rows[6], &b, &a2));
	assert_false(rn_conf_key_equal(&rows[6], &a, &a2));
	rn_conf_free(rows, &a);
	rn_conf_free(rows, &b);
	rn_conf_free(rows, &a2);
	assert_int_equal(rn_mem_live(), live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_bad_strings),
		cmocka_unit_test(test_parsers),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_key_equal_and_swap),
		cmocka_unit_test(test_big_integers),
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_header_value_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
