/*
 * Fuzz target: arbitrary text through rn_conf_load_string against a table that uses every
 * row type, including a polymorphic list. Must never crash, leak or read out of bounds;
 * every outcome is 0 or RN_ECONFIG/RN_ENOMEM with a NUL-terminated message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct plug {
	char *path;
	int64_t n;
};
struct src {
	char *type;
	char *name;
	struct rn_conf_variant v;
};
struct conf {
	int64_t i;
	int i32, b, e;
	int64_t sz, dur;
	char *s;
	struct rn_conf_strlist sl;
	struct rn_conf_list srcs;
	char *l, *u;
};

static const char *const names[] = {"normal", "full", NULL};
static const struct rn_conf_key plug_rows[] = {{.key = "path",
						.type = RN_CONF_STRING,
						.offset = offsetof(struct plug, path),
						.flags = RN_CONF_F_REQUIRED},
					       {.key = "n",
						.type = RN_CONF_INT,
						.def = "1",
						.min = 0,
						.max = 99,
						.offset = offsetof(struct plug, n)},
					       {0}};
static const struct rn_conf_key *resolve(const char *tag, size_t *size)
{
	*size = sizeof(struct plug);
	return strcmp(tag, "file") ? NULL : plug_rows;
}
static const struct rn_conf_key src_rows[] = {
	{.key = "type", .type = RN_CONF_STRING, .offset = offsetof(struct src, type)},
	{.key = "name", .type = RN_CONF_STRING, .offset = offsetof(struct src, name)},
	{0}};
static const struct rn_conf_key grp_rows[] = {
	{.key = "b", .type = RN_CONF_BOOL, .offset = offsetof(struct conf, b)},
	{.key = "e",
	 .type = RN_CONF_ENUM,
	 .enums = names,
	 .def = "normal",
	 .offset = offsetof(struct conf, e)},
	{0}};
static const struct rn_conf_key rows[] = {
	{.key = "i", .type = RN_CONF_INT, .offset = offsetof(struct conf, i)},
	{.key = "i32", .type = RN_CONF_INT32, .offset = offsetof(struct conf, i32)},
	{.key = "sz",
	 .type = RN_CONF_SIZE,
	 .def = "1M",
	 .min = 0,
	 .max = (int64_t)1 << 40,
	 .offset = offsetof(struct conf, sz)},
	{.key = "dur", .type = RN_CONF_DURATION, .def = "1s", .offset = offsetof(struct conf, dur)},
	{.key = "s", .type = RN_CONF_STRING, .def = "x", .offset = offsetof(struct conf, s)},
	{.key = "sl", .type = RN_CONF_STRLIST, .offset = offsetof(struct conf, sl)},
	{.key = "g", .type = RN_CONF_GROUP, .sub = grp_rows},
	{.key = "sources",
	 .type = RN_CONF_LIST,
	 .sub = src_rows,
	 .elem_size = sizeof(struct src),
	 .offset = offsetof(struct conf, srcs),
	 .tag = "type",
	 .resolve = resolve,
	 .variant_offset = offsetof(struct src, v)},
	{.key = "l", .type = RN_CONF_LISTEN, .offset = offsetof(struct conf, l)},
	{.key = "u", .type = RN_CONF_URL, .def = "http://h", .offset = offsetof(struct conf, u)},
	{0}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char err[256];
	struct conf c;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	memset(&c, 0, sizeof(c));
	int rc = rn_conf_load_string(text, "fuzz", rows, &c, err, sizeof(err));
	if (rc && strlen(err) >= sizeof(err))
		abort();
	rn_conf_free(rows, &c);
	free(text);
	return 0;
}
