/*
 * The table-driven config loader; see rn_conf.h. Per group: defaults for every row first,
 * then every setting present is matched to a row (unknown = error), type-checked,
 * range-checked and stored; then required rows that were absent are reported. Errors carry
 * the setting's source file and line from libconfig and the full key path. This file is the
 * only includer of libconfig.h; nothing of libconfig leaks through the header.
 */
#include "rn_conf.h"

#include <errno.h>
#include <limits.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rn_addr.h"
#include "rn_err.h"
#include "rn_mem.h"

#define PATH_CAP 384

struct loader {
	const char *name; /* file name for messages when libconfig has none */
	const char *text; /* the text loaded by rn_conf_load_string, else NULL */
	char *err;
	size_t errcap;
};

static int errf(struct loader *l, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int errf(struct loader *l, const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *file = s ? config_setting_source_file(s) : NULL;
	int line = s ? (int)config_setting_source_line(s) : 0;
	if (l->errcap)
		snprintf(l->err, l->errcap, "%s:%d: %s", file ? file : l->name, line, msg);
	return RN_ECONFIG;
}

static void *at(void *dst, size_t off)
{
	return (char *)dst + off;
}

/* Joins a key path; truncation only shortens messages, never changes meaning. */
static void join(char *out, const char *prefix, const char *name)
{
	int n = snprintf(out, PATH_CAP, "%.250s%s%.120s", prefix, *prefix ? "." : "", name);
	(void)n;
}

int rn_conf_parse_size(const char *s, int64_t *out)
{
	char *e;
	if (!s)
		return RN_EINVAL;
	while (*s == ' ')
		s++;
	if (*s == '-' || *s == '+')
		return RN_EINVAL;
	errno = 0;
	double v = strtod(s, &e);
	if (e == s || errno || v != v)
		return RN_EINVAL;
	while (*e == ' ')
		e++;
	double mul = 1;
	if (*e) {
		switch (*e) {
		case 'b':
		case 'B': mul = 1; break;
		case 'k':
		case 'K': mul = 1024.0; break;
		case 'm':
		case 'M': mul = 1024.0 * 1024; break;
		case 'g':
		case 'G': mul = 1024.0 * 1024 * 1024; break;
		case 't':
		case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
		default: return RN_EINVAL;
		}
		if (*e != 'b' && *e != 'B') {
			e++;
			if (*e == 'i' || *e == 'I')
				e++;
			if (*e == 'b' || *e == 'B')
				e++;
		} else {
			e++;
		}
		if (*e)
			return RN_EINVAL;
	}
	if (!(v >= 0) || v * mul > 9.2e18)
		return RN_EINVAL;
	*out = (int64_t)(v * mul);
	return 0;
}

int rn_conf_parse_duration_ms(const char *s, int64_t *out)
{
	char *e;
	if (!s)
		return RN_EINVAL;
	while (*s == ' ')
		s++;
	if (*s == '-' || *s == '+')
		return RN_EINVAL;
	errno = 0;
	double v = strtod(s, &e);
	if (e == s || errno || !(v >= 0))
		return RN_EINVAL;
	while (*e == ' ')
		e++;
	double mul;
	if (!*e || !strcmp(e, "ms"))
		mul = 1;
	else if (!strcmp(e, "us"))
		mul = 0.001;
	else if (!strcmp(e, "s"))
		mul = 1000;
	else if (!strcmp(e, "m") || !strcmp(e, "min"))
		mul = 60000;
	else if (!strcmp(e, "h"))
		mul = 3600000;
	else if (!strcmp(e, "d"))
		mul = 86400000;
	else
		return RN_EINVAL;
	if (v * mul > 9.2e18)
		return RN_EINVAL;
	*out = (int64_t)(v * mul);
	return 0;
}

static int enum_index(const char *const *names, const char *v)
{
	for (int i = 0; names && names[i]; i++)
		if (!strcasecmp(names[i], v))
			return i;
	return -1;
}

static int check_range(struct loader *l, const config_setting_t *s, const struct rn_conf_key *k,
		       const char *path, int64_t v)
{
	int64_t lo = k->min, hi = k->max;
	if (k->type == RN_CONF_INT32 && !(lo < hi)) {
		lo = INT32_MIN;
		hi = INT32_MAX;
	}
	if (lo < hi && (v < lo || v > hi))
		return errf(l, s, "%s = %lld is out of range [%lld, %lld]", path, (long long)v,
			    (long long)lo, (long long)hi);
	return 0;
}

/* Applies a row's default (text) to dst. Defaults are trusted program data; a default that
 * does not parse is a programming error reported as RN_EINVAL. */
static int apply_default(const struct rn_conf_key *k, void *dst)
{
	switch (k->type) {
	case RN_CONF_INT:
		*(int64_t *)at(dst, k->offset) = k->def ? strtoll(k->def, NULL, 10) : 0;
		break;
	case RN_CONF_INT32:
		*(int *)at(dst, k->offset) = k->def ? (int)strtol(k->def, NULL, 10) : 0;
		break;
	case RN_CONF_BOOL: *(int *)at(dst, k->offset) = k->def && !strcmp(k->def, "true"); break;
	case RN_CONF_SIZE:
		*(int64_t *)at(dst, k->offset) = 0;
		if (k->def && rn_conf_parse_size(k->def, (int64_t *)at(dst, k->offset)))
			return RN_EINVAL;
		break;
	case RN_CONF_DURATION:
		*(int64_t *)at(dst, k->offset) = 0;
		if (k->def && rn_conf_parse_duration_ms(k->def, (int64_t *)at(dst, k->offset)))
			return RN_EINVAL;
		break;
	case RN_CONF_ENUM: {
		int i = k->def ? enum_index(k->enums, k->def) : 0;
		*(int *)at(dst, k->offset) = i < 0 ? 0 : i;
		break;
	}
	case RN_CONF_STRING:
	case RN_CONF_LISTEN:
	case RN_CONF_URL: {
		char **p = at(dst, k->offset);
		rn_free(*p);
		*p = NULL;
		if (k->def && !(*p = rn_strdup(k->def)))
			return RN_ENOMEM;
		break;
	}
	case RN_CONF_GROUP:
		for (const struct rn_conf_key *s = k->sub; s && s->key; s++) {
			int rc = apply_default(s, dst);
			if (rc)
				return rc;
		}
		break;
	case RN_CONF_STRLIST:
	case RN_CONF_LIST: break;
	}
	return 0;
}

static int apply_defaults(const struct rn_conf_key *table, void *dst)
{
	for (const struct rn_conf_key *k = table; k && k->key; k++) {
		int rc = apply_default(k, dst);
		if (rc)
			return rc;
	}
	return 0;
}

static int load_group(struct loader *l, const config_setting_t *g, const struct rn_conf_key *table,
		      void *dst, const char *prefix, const struct rn_conf_key *vtable, void *vdst);

/*
 * An RN_CONF_LISTEN value: one string of addresses separated by commas, or a list of strings
 * (each one address or a comma list). Stored as one string, the items joined by ", ", so a
 * single address stays the string it was; rn_addr_parse_listen_list splits it again.
 */
static int load_listen(struct loader *l, const config_setting_t *s, const struct rn_conf_key *k,
		       void *dst, const char *path)
{
	char **p = at(dst, k->offset);
	struct rn_hostport hp[RN_ADDR_LIST_MAX];
	const char *why = NULL;
	size_t n, bad_at, len = 0;
	int t = config_setting_type(s), cnt = 1;
	char *joined;

	if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST)
		cnt = config_setting_length(s);
	else if (t != CONFIG_TYPE_STRING)
		return errf(l, s, "%s must be a string or a list of strings", path);
	if (cnt == 0)
		return errf(l, s, "%s is an empty list", path);
	for (int i = 0; i < cnt; i++) {
		const config_setting_t *e =
			t == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, (unsigned)i);
		const char *v;
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return errf(l, e, "%s[%d] must be a string", path, i);
		v = config_setting_get_string(e);
		if (rn_addr_parse_listen_list(v, hp, RN_ADDR_LIST_MAX, &n, &bad_at, &why))
			return errf(l, e, "%s = \"%.200s\": %s", path, v, why);
		len += strlen(v) + 2;
	}
	if (!(joined = rn_malloc(len + 1)))
		return RN_ENOMEM;
	joined[0] = 0;
	for (int i = 0; i < cnt; i++) {
		const config_setting_t *e =
			t == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, (unsigned)i);
		if (i)
			strcat(joined, ", ");
		strcat(joined, config_setting_get_string(e));
	}
	/* the whole list: at most RN_ADDR_LIST_MAX addresses, none twice */
	if (rn_addr_parse_listen_list(joined, hp, RN_ADDR_LIST_MAX, &n, &bad_at, &why)) {
		int rc = errf(l, s, "%s = \"%.200s\": %s", path, joined, why);
		rn_free(joined);
		return rc;
	}
	rn_free(*p);
	*p = joined;
	return 0;
}

/* Whether text holds a control character (RN_CONF_F_NOCTL); its offset in *at. */
static int has_ctl(const char *text, size_t *at)
{
	for (size_t i = 0; text[i]; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) {
			*at = i;
			return 1;
		}
	return 0;
}

static int is_int(int t)
{
	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/* Copies line `line` (1-based) of the setting's source (its file, or l->text) into out. */
static int source_line(const struct loader *l, const config_setting_t *s, char *out, size_t cap)
{
	const char *file = config_setting_source_file(s);
	int line = (int)config_setting_source_line(s), n = 1;
	if (line < 1)
		return -1;
	if (file) {
		FILE *f = fopen(file, "r");
		int found = 0;
		if (!f)
			return -1;
		while (fgets(out, (int)cap, f))
			if (strchr(out, '\n') || feof(f)) {
				if (n++ == line) {
					found = 1;
					break;
				}
			}
		fclose(f);
		return found ? 0 : -1;
	}
	for (const char *p = l->text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (n++ == line) {
			size_t len = strcspn(p, "\n");
			if (len >= cap)
				return -1;
			memcpy(out, p, len);
			out[len] = 0;
			return 0;
		}
	return -1;
}

/* Whether libconfig, reading literal value t as a 32-bit int, could have kept v: wrapped to
 * its low 32 bits where long is 64 bits; where long is 32 bits (armhf), saturated by strtol
 * to INT_MAX / INT_MIN, or by strtoul for a hex literal to 0xffffffff (kept as -1). */
static int kept_as(long long t, long long v, int hex)
{
	if ((int)(unsigned)(unsigned long long)t == (int)v)
		return 1;
	if (hex)
		return (unsigned long long)t > 0xffffffffULL && v == -1;
	return (t > INT_MAX && v == INT_MAX) || (t < INT_MIN && v == INT_MIN);
}

/*
 * The true value of an integer setting. libconfig 1.5 stores a decimal or hex literal beyond
 * the int range without an L suffix as a 32-bit int, wrapped (4296015872 reads as 1048576)
 * or, where long has 32 bits, saturated (INT_MAX):
 * the literal is read again from the setting's source line ("name = literal" or "name:
 * literal") and taken when its low 32 bits are what libconfig kept (so a match inside a
 * string or a comment on the line is passed over). RN_ERANGE for a literal beyond 64 bits.
 */
static int int_value(const struct loader *l, const config_setting_t *s, long long *out)
{
	char line[1024];
	const char *name = config_setting_name(s), *p = line;
	long long v = config_setting_get_int64(s);
	int huge = 0;
	*out = v;
	if (config_setting_type(s) != CONFIG_TYPE_INT || !name ||
	    source_line(l, s, line, sizeof(line)))
		return 0;
	size_t nl = strlen(name);
	while ((p = strstr(p, name))) {
		const char *q = p + nl, *e;
		int before = p > line ? (unsigned char)p[-1] : ' ';
		p = q;
		if (before == '_' || before == '-' || before == '*' ||
		    (before >= '0' && before <= '9') ||
		    ((before | 0x20) >= 'a' && (before | 0x20) <= 'z'))
			continue;
		q += strspn(q, " \t");
		if (*q != '=' && *q != ':')
			continue;
		q++;
		q += strspn(q, " \t");
		int hex = (q[0] == '-' || q[0] == '+') ? (q[1] == '0' && (q[2] | 0x20) == 'x')
						       : (q[0] == '0' && (q[1] | 0x20) == 'x');
		errno = 0;
		long long t = strtoll(q, (char **)&e, hex ? 16 : 10);
		if (e == q || (*e | 0x20) == 'l')
			continue;
		if (errno == ERANGE) {
			huge = 1;
			continue;
		}
		if (kept_as(t, v, hex)) {
			*out = t;
			return 0;
		}
		/* not this one (e.g. the name inside a string before it): look further */
	}
	return huge ? RN_ERANGE : 0;
}

static int load_list(struct loader *l, const config_setting_t *s, const struct rn_conf_key *k,
		     void *dst, const char *path)
{
	struct rn_conf_list *li = at(dst, k->offset);
	int t = config_setting_type(s);
	int n, rc;

	if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
		return errf(l, s, "%s must be a list ( { ... }, ... )", path);
	if (li->items)
		return errf(l, s, "%s is given twice", path);
	n = config_setting_length(s);
	if (!(li->items = rn_calloc(n ? (size_t)n : 1, k->elem_size)))
		return RN_ENOMEM;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		char sub[PATH_CAP];
		void *elem = (char *)li->items + (size_t)i * k->elem_size;
		const struct rn_conf_key *vt = NULL;
		struct rn_conf_variant *var = NULL;

		snprintf(sub, sizeof(sub), "%.300s[%d]", path, i);
		li->n++;
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return errf(l, e, "%s must be a group { ... }", sub);
		if ((rc = apply_defaults(k->sub, elem)))
			return rc;
		if (k->tag && k->resolve) {
			const config_setting_t *ts = config_setting_get_member(e, k->tag);
			const char *tv;
			size_t vsize = 0;
			char tp[PATH_CAP];
			join(tp, sub, k->tag);
			if (!ts)
				return errf(l, e, "%s: missing key '%s'", sub, k->tag);
			if (config_setting_type(ts) != CONFIG_TYPE_STRING)
				return errf(l, ts, "%s must be a string", tp);
			tv = config_setting_get_string(ts);
			if (!(vt = k->resolve(tv, &vsize)))
				return errf(l, ts, "%s: unknown type \"%s\"", tp, tv);
			var = at(elem, k->variant_offset);
			var->table = vt;
			if (!(var->data = rn_calloc(1, vsize ? vsize : 1)))
				return RN_ENOMEM;
			if ((rc = apply_defaults(vt, var->data)))
				return rc;
		}
		if ((rc = load_group(l, e, k->sub, elem, sub, vt, var ? var->data : NULL)))
			return rc;
	}
	return 0;
}

static int load_value(struct loader *l, const config_setting_t *s, const struct rn_conf_key *k,
		      void *dst, const char *path)
{
	int t = config_setting_type(s);
	int rc;

	switch (k->type) {
	case RN_CONF_INT:
	case RN_CONF_INT32: {
		if (!is_int(t))
			return errf(l, s, "%s must be an integer", path);
		long long v;
		if (int_value(l, s, &v))
			return errf(l, s, "%s is too large", path);
		if ((rc = check_range(l, s, k, path, v)))
			return rc;
		if (k->type == RN_CONF_INT)
			*(int64_t *)at(dst, k->offset) = v;
		else
			*(int *)at(dst, k->offset) = (int)v;
		return 0;
	}
	case RN_CONF_BOOL:
		if (t != CONFIG_TYPE_BOOL)
			return errf(l, s, "%s must be true or false", path);
		*(int *)at(dst, k->offset) = config_setting_get_bool(s);
		return 0;
	case RN_CONF_SIZE:
	case RN_CONF_DURATION: {
		int64_t v;
		int dur = k->type == RN_CONF_DURATION;
		if (is_int(t)) {
			long long w;
			if (int_value(l, s, &w))
				return errf(l, s, "%s is too large", path);
			v = w;
			if (v < 0)
				return errf(l, s, "%s must not be negative", path);
		} else if (t != CONFIG_TYPE_STRING ||
			   (dur ? rn_conf_parse_duration_ms(config_setting_get_string(s), &v)
				: rn_conf_parse_size(config_setting_get_string(s), &v))) {
			return errf(
				l, s,
				dur ? "%s must be a duration like 250 (ms), \"250ms\", \"2s\" or "
				      "\"5m\""
				    : "%s must be a size like 1048576, \"64M\" or \"1G\"",
				path);
		}
		if ((rc = check_range(l, s, k, path, v)))
			return rc;
		*(int64_t *)at(dst, k->offset) = v;
		return 0;
	}
	case RN_CONF_ENUM: {
		int i;
		if (t != CONFIG_TYPE_STRING ||
		    (i = enum_index(k->enums, config_setting_get_string(s))) < 0) {
			char names[256] = "";
			size_t used = 0;
			for (int j = 0; k->enums && k->enums[j] && used < sizeof(names) - 1; j++) {
				int w = snprintf(names + used, sizeof(names) - used, "%s\"%s\"",
						 j ? ", " : "", k->enums[j]);
				if (w < 0)
					break;
				used += (size_t)w;
			}
			return errf(l, s, "%s must be one of %s", path, names);
		}
		*(int *)at(dst, k->offset) = i;
		return 0;
	}
	case RN_CONF_STRING: {
		char **p = at(dst, k->offset);
		size_t c;
		if (t != CONFIG_TYPE_STRING)
			return errf(l, s, "%s must be a string", path);
		if ((k->flags & RN_CONF_F_NOCTL) && has_ctl(config_setting_get_string(s), &c))
			return errf(l, s,
				    "%s holds a control character (byte %zu); CR, LF, TAB and "
				    "the like are not allowed here",
				    path, c);
		if ((k->flags & RN_CONF_F_NOCTL) &&
		    strlen(config_setting_get_string(s)) > RN_CONF_HDR_MAX)
			return errf(l, s, "%s is longer than %d bytes", path, RN_CONF_HDR_MAX);
		rn_free(*p);
		if (!(*p = rn_strdup(config_setting_get_string(s))))
			return RN_ENOMEM;
		return 0;
	}
	case RN_CONF_LISTEN: return load_listen(l, s, k, dst, path);
	case RN_CONF_URL: {
		char **p = at(dst, k->offset);
		const char *v, *why = NULL;
		struct rn_url u;
		if (t != CONFIG_TYPE_STRING)
			return errf(l, s, "%s must be a string", path);
		v = config_setting_get_string(s);
		if (rn_addr_parse_url(v, &u, &why))
			return errf(l, s, "%s = \"%.200s\": %s", path, v, why);
		rn_free(*p);
		if (!(*p = rn_strdup(v)))
			return RN_ENOMEM;
		return 0;
	}
	case RN_CONF_STRLIST: {
		struct rn_conf_strlist *sl = at(dst, k->offset);
		int n;
		if (sl->v)
			return errf(l, s, "%s is given twice", path);
		if (t == CONFIG_TYPE_STRING)
			n = 1;
		else if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST)
			n = config_setting_length(s);
		else
			return errf(l, s, "%s must be a string or a list of strings", path);
		if (!(sl->v = rn_calloc((size_t)n + 1, sizeof(char *))))
			return RN_ENOMEM;
		for (int i = 0; i < n; i++) {
			const config_setting_t *e =
				t == CONFIG_TYPE_STRING ? s
							: config_setting_get_elem(s, (unsigned)i);
			size_t c;
			if (config_setting_type(e) != CONFIG_TYPE_STRING)
				return errf(l, e, "%s[%d] must be a string", path, i);
			if ((k->flags & RN_CONF_F_NOCTL) &&
			    has_ctl(config_setting_get_string(e), &c))
				return errf(l, e,
					    "%s[%d] holds a control character (byte %zu); CR, LF, "
					    "TAB and the like are not allowed here",
					    path, i, c);
			if ((k->flags & RN_CONF_F_NOCTL) &&
			    strlen(config_setting_get_string(e)) > RN_CONF_HDR_MAX)
				return errf(l, e, "%s[%d] is longer than %d bytes", path, i,
					    RN_CONF_HDR_MAX);
			if (!(sl->v[i] = rn_strdup(config_setting_get_string(e))))
				return RN_ENOMEM;
			sl->n++;
		}
		return 0;
	}
	case RN_CONF_GROUP:
		if (t != CONFIG_TYPE_GROUP)
			return errf(l, s, "%s must be a group { ... }", path);
		return load_group(l, s, k->sub, dst, path, NULL, NULL);
	case RN_CONF_LIST: return load_list(l, s, k, dst, path);
	}
	return RN_EINVAL;
}

static const struct rn_conf_key *find(const struct rn_conf_key *table, const char *name)
{
	for (const struct rn_conf_key *k = table; k && k->key; k++)
		if (!strcmp(k->key, name))
			return k;
	return NULL;
}

/* Whether a table's end row carries RN_CONF_F_OPEN (unknown keys are skipped). */
static int is_open(const struct rn_conf_key *table)
{
	const struct rn_conf_key *k = table;
	while (k && k->key)
		k++;
	return k && (k->flags & RN_CONF_F_OPEN);
}

static int check_required(struct loader *l, const config_setting_t *g,
			  const struct rn_conf_key *table, const char *prefix)
{
	for (const struct rn_conf_key *k = table; k && k->key; k++) {
		if (k->type == RN_CONF_GROUP) {
			const config_setting_t *m = config_setting_get_member(g, k->key);
			char p[PATH_CAP];
			join(p, prefix, k->key);
			int rc = check_required(l, m ? m : g, k->sub, p);
			if (rc)
				return rc;
			continue;
		}
		if ((k->flags & RN_CONF_F_REQUIRED) && !config_setting_get_member(g, k->key)) {
			char p[PATH_CAP];
			join(p, prefix, k->key);
			return errf(l, g, "missing required key '%s'", p);
		}
	}
	return 0;
}

static int load_group(struct loader *l, const config_setting_t *g, const struct rn_conf_key *table,
		      void *dst, const char *prefix, const struct rn_conf_key *vtable, void *vdst)
{
	int n = config_setting_length(g);
	int rc;
	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct rn_conf_key *k;
		char path[PATH_CAP];

		join(path, prefix, name ? name : "?");
		if ((k = find(table, name)))
			rc = load_value(l, s, k, dst, path);
		else if ((k = find(vtable, name)))
			rc = load_value(l, s, k, vdst, path);
		else if (is_open(vtable))
			continue; /* a variant whose rows are not known here: unchecked */
		else
			return errf(l, s, "unknown key '%s'", path);
		if (rc)
			return rc;
	}
	if ((rc = check_required(l, g, table, prefix)))
		return rc;
	return check_required(l, g, vtable, prefix);
}

static int load(config_t *cfg, int read_ok, const char *name, const char *text,
		const struct rn_conf_key *table, void *dst, char *err, size_t errcap)
{
	struct loader l = {name, text, err, errcap};
	int rc = 0;

	if (errcap)
		err[0] = 0;
	if (!read_ok) {
		if (config_error_type(cfg) == CONFIG_ERR_FILE_IO) {
			if (errcap)
				snprintf(err, errcap, "%s: cannot read the file: %s", name,
					 strerror(errno));
		} else if (errcap) {
			snprintf(err, errcap, "%s:%d: %s",
				 config_error_file(cfg) ? config_error_file(cfg) : name,
				 config_error_line(cfg), config_error_text(cfg));
		}
		config_destroy(cfg);
		return RN_ECONFIG;
	}
	rc = apply_defaults(table, dst);
	if (!rc)
		rc = load_group(&l, config_root_setting(cfg), table, dst, "", NULL, NULL);
	config_destroy(cfg);
	return rc;
}

int rn_conf_load_file(const char *path, const struct rn_conf_key *table, void *dst, char *err,
		      size_t errcap)
{
	config_t cfg;
	config_init(&cfg);
	int ok = config_read_file(&cfg, path) == CONFIG_TRUE;
	return load(&cfg, ok, path, NULL, table, dst, err, errcap);
}

int rn_conf_peek_string(const char *path, const char *setting, char *out, size_t cap)
{
	config_t cfg;
	const char *v = NULL;
	int rc = RN_ENOTFOUND;
	config_init(&cfg);
	if (config_read_file(&cfg, path) == CONFIG_TRUE &&
	    config_lookup_string(&cfg, setting, &v) == CONFIG_TRUE) {
		rc = strlen(v) < cap ? 0 : RN_ERANGE;
		if (!rc)
			memcpy(out, v, strlen(v) + 1);
	}
	config_destroy(&cfg);
	return rc;
}

/* libconfig only knows a file name for settings read from files; for strings it reports
 * NULL, and errf falls back to `name`. @include is refused so text from outside (and the
 * fuzzer) can never make us read a file. */
int rn_conf_load_string(const char *text, const char *name, const struct rn_conf_key *table,
			void *dst, char *err, size_t errcap)
{
	config_t cfg;
	if (!name)
		name = "<string>";
	if (strstr(text, "@include")) {
		if (errcap)
			snprintf(err, errcap, "%s: @include is not allowed here", name);
		return RN_ECONFIG;
	}
	config_init(&cfg);
	int ok = config_read_string(&cfg, text) == CONFIG_TRUE;
	return load(&cfg, ok, name, text, table, dst, err, errcap);
}

void rn_conf_free(const struct rn_conf_key *table, void *dst)
{
	for (const struct rn_conf_key *k = table; k && k->key; k++) {
		switch (k->type) {
		case RN_CONF_STRING:
		case RN_CONF_LISTEN:
		case RN_CONF_URL: {
			char **p = at(dst, k->offset);
			rn_free(*p);
			*p = NULL;
			break;
		}
		case RN_CONF_STRLIST: {
			struct rn_conf_strlist *sl = at(dst, k->offset);
			for (size_t i = 0; i < sl->n; i++)
				rn_free(sl->v[i]);
			rn_free(sl->v);
			sl->v = NULL;
			sl->n = 0;
			break;
		}
		case RN_CONF_GROUP: rn_conf_free(k->sub, dst); break;
		case RN_CONF_LIST: {
			struct rn_conf_list *li = at(dst, k->offset);
			for (size_t i = 0; i < li->n; i++) {
				void *elem = (char *)li->items + i * k->elem_size;
				if (k->tag && k->resolve) {
					struct rn_conf_variant *v = at(elem, k->variant_offset);
					if (v->data)
						rn_conf_free(v->table, v->data);
					rn_free(v->data);
					v->data = NULL;
					v->table = NULL;
				}
				rn_conf_free(k->sub, elem);
			}
			rn_free(li->items);
			li->items = NULL;
			li->n = 0;
			break;
		}
		default: break;
		}
	}
}

static void help(const struct rn_conf_key *table, FILE *out, int indent)
{
	static const char *const tn[] = {"integer", "bool",        "string",  "size",
					 "enum",    "string list", "group",   "list of groups",
					 "integer", "duration",    "address", "URL"};
	for (const struct rn_conf_key *k = table; k && k->key; k++) {
		fprintf(out, "%*s%-*s %-14s %s", indent, "", 22 - indent > 8 ? 22 - indent : 8,
			k->key, tn[k->type], k->help ? k->help : "");
		if (k->flags & RN_CONF_F_REQUIRED)
			fprintf(out, " (required)");
		if (k->flags & RN_CONF_F_RESTART)
			fprintf(out, " (changes at restart, not on reload)");
		if (k->def)
			fprintf(out, " (default %s)", k->def);
		if (k->min < k->max)
			fprintf(out, " [%lld..%lld]", (long long)k->min, (long long)k->max);
		if (k->enums) {
			fprintf(out, " {");
			for (int i = 0; k->enums[i]; i++)
				fprintf(out, "%s%s", i ? "|" : "", k->enums[i]);
			fprintf(out, "}");
		}
		fputc('\n', out);
		if (k->type == RN_CONF_GROUP || k->type == RN_CONF_LIST)
			help(k->sub, out, indent + 2);
	}
}

void rn_conf_print_help(const struct rn_conf_key *table, FILE *out)
{
	help(table, out, 0);
}

static int str_equal(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static int table_equal(const struct rn_conf_key *table, const void *a, const void *b)
{
	for (const struct rn_conf_key *k = table; k && k->key; k++)
		if (!rn_conf_key_equal(k, a, b))
			return 0;
	return 1;
}

int rn_conf_key_equal(const struct rn_conf_key *k, const void *a, const void *b)
{
	const void *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
	switch (k->type) {
	case RN_CONF_INT:
	case RN_CONF_SIZE:
	case RN_CONF_DURATION: return *(const int64_t *)pa == *(const int64_t *)pb;
	case RN_CONF_BOOL:
	case RN_CONF_ENUM:
	case RN_CONF_INT32: return *(const int *)pa == *(const int *)pb;
	case RN_CONF_STRING:
	case RN_CONF_LISTEN:
	case RN_CONF_URL: return str_equal(*(char *const *)pa, *(char *const *)pb);
	case RN_CONF_STRLIST: {
		const struct rn_conf_strlist *x = pa, *y = pb;
		if (x->n != y->n)
			return 0;
		for (size_t i = 0; i < x->n; i++)
			if (!str_equal(x->v[i], y->v[i]))
				return 0;
		return 1;
	}
	case RN_CONF_GROUP: return table_equal(k->sub, a, b);
	case RN_CONF_LIST: {
		const struct rn_conf_list *x = pa, *y = pb;
		if (x->n != y->n)
			return 0;
		for (size_t i = 0; i < x->n; i++) {
			const char *ea = (const char *)x->items + i * k->elem_size;
			const char *eb = (const char *)y->items + i * k->elem_size;
			if (!table_equal(k->sub, ea, eb))
				return 0;
			if (k->tag && k->resolve) {
				const struct rn_conf_variant *va =
					(const void *)(ea + k->variant_offset);
				const struct rn_conf_variant *vb =
					(const void *)(eb + k->variant_offset);
				if (va->table != vb->table ||
				    (va->data && vb->data &&
				     !table_equal(va->table, va->data, vb->data)))
					return 0;
			}
		}
		return 1;
	}
	}
	return 0;
}

static size_t value_size(enum rn_conf_type t)
{
	switch (t) {
	case RN_CONF_INT:
	case RN_CONF_SIZE:
	case RN_CONF_DURATION: return sizeof(int64_t);
	case RN_CONF_BOOL:
	case RN_CONF_ENUM:
	case RN_CONF_INT32: return sizeof(int);
	case RN_CONF_STRING:
	case RN_CONF_LISTEN:
	case RN_CONF_URL: return sizeof(char *);
	case RN_CONF_STRLIST: return sizeof(struct rn_conf_strlist);
	case RN_CONF_LIST: return sizeof(struct rn_conf_list);
	case RN_CONF_GROUP: return 0;
	}
	return 0;
}

void rn_conf_key_swap(const struct rn_conf_key *k, void *a, void *b)
{
	unsigned char tmp[sizeof(struct rn_conf_strlist) > sizeof(int64_t)
				  ? sizeof(struct rn_conf_strlist)
				  : sizeof(int64_t)];
	size_t n = value_size(k->type);
	if (k->type == RN_CONF_GROUP) {
		for (const struct rn_conf_key *s = k->sub; s && s->key; s++)
			rn_conf_key_swap(s, a, b);
		return;
	}
	_Static_assert(sizeof(struct rn_conf_list) <= sizeof(tmp), "swap buffer");
	memcpy(tmp, at(a, k->offset), n);
	memcpy(at(a, k->offset), at(b, k->offset), n);
	memcpy(at(b, k->offset), tmp, n);
}
