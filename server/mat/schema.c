/* Table schemas; see schema.h. */
#include "schema.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"

static const struct {
	const char *name;
	enum rn_type type;
} prims[] = {
	{"string", RN_T_STRING},
	{"long", RN_T_LONG},
	{"bigint", RN_T_LONG},
	{"integer", RN_T_INT},
	{"int", RN_T_INT},
	{"short", RN_T_SHORT},
	{"smallint", RN_T_SHORT},
	{"byte", RN_T_BYTE},
	{"tinyint", RN_T_BYTE},
	{"float", RN_T_FLOAT},
	{"real", RN_T_FLOAT},
	{"double", RN_T_DOUBLE},
	{"boolean", RN_T_BOOL},
	{"binary", RN_T_BINARY},
	{"date", RN_T_DATE},
	{"timestamp_ntz", RN_T_TIMESTAMP_NTZ},
	{"timestamp", RN_T_TIMESTAMP},
};

struct cursor {
	const char *p;
	char *err;
	size_t cap;
	int depth;
};

static int fail(struct cursor *c, const char *what)
{
	snprintf(c->err, c->cap, "%s at \"%.24s\"", what, c->p);
	return RN_EINVAL;
}

static void skip_ws(struct cursor *c)
{
	while (*c->p == ' ' || *c->p == '\t')
		c->p++;
}

static int eat(struct cursor *c, char ch)
{
	skip_ws(c);
	if (*c->p != ch)
		return 0;
	c->p++;
	return 1;
}

static size_t ident(struct cursor *c)
{
	size_t n = 0;
	skip_ws(c);
	while (isalnum((unsigned char)c->p[n]) || c->p[n] == '_')
		n++;
	return n;
}

static int parse(struct cursor *c, struct rn_field *f);

static int child(struct cursor *c, struct rn_field *f, size_t i)
{
	f->fields[i].nullable = 1;
	return parse(c, &f->fields[i]);
}

static int parse_struct(struct cursor *c, struct rn_field *f)
{
	size_t cap = 0;
	if (eat(c, '>'))
		return fail(c, "a struct needs fields");
	do {
		size_t n = ident(c);
		if (!n)
			return fail(c, "expected a field name");
		if (f->nfields == RN_SCHEMA_MAX_FIELDS)
			return fail(c, "too many fields");
		if (f->nfields == cap) {
			size_t nc = cap ? cap * 2 : 4;
			struct rn_field *nf = rn_realloc(f->fields, nc * sizeof(*nf));
			if (!nf)
				return RN_ENOMEM;
			memset(nf + cap, 0, (nc - cap) * sizeof(*nf));
			f->fields = nf;
			cap = nc;
		}
		struct rn_field *x = &f->fields[f->nfields++];
		if (!(x->name = rn_strndup(c->p, n)))
			return RN_ENOMEM;
		c->p += n;
		for (size_t k = 0; k + 1 < f->nfields; k++)
			if (!strcmp(f->fields[k].name, x->name))
				return fail(c, "duplicate field name");
		if (!eat(c, ':'))
			return fail(c, "expected ':' after a field name");
		int rc = child(c, f, f->nfields - 1);
		if (rc)
			return rc;
	} while (eat(c, ','));
	return eat(c, '>') ? 0 : fail(c, "expected ',' or '>'");
}

static int parse(struct cursor *c, struct rn_field *f)
{
	size_t n = ident(c);
	int rc;

	if (!n)
		return fail(c, "expected a type");
	if (++c->depth > RN_SCHEMA_MAX_DEPTH)
		return fail(c, "nested too deeply");
	if (n == 7 && !strncasecmp(c->p, "decimal", 7)) {
		c->p += n;
		f->type = RN_T_DECIMAL;
		f->precision = 10;
		f->scale = 0;
		if (eat(c, '(')) {
			char *e;
			skip_ws(c);
			long p = strtol(c->p, &e, 10), s = 0;
			if (e == c->p)
				return fail(c, "expected a precision");
			c->p = e;
			if (eat(c, ',')) {
				skip_ws(c);
				s = strtol(c->p, &e, 10);
				if (e == c->p)
					return fail(c, "expected a scale");
				c->p = e;
			}
			if (!eat(c, ')'))
				return fail(c, "expected ')'");
			if (p < 1 || p > 38 || s < 0 || s > p)
				return fail(
					c,
					"decimal precision must be 1..38 and scale 0..precision");
			f->precision = (int)p;
			f->scale = (int)s;
		}
	} else if ((n == 5 && !strncasecmp(c->p, "array", 5)) ||
		   (n == 3 && !strncasecmp(c->p, "map", 3)) ||
		   (n == 6 && !strncasecmp(c->p, "struct", 6))) {
		f->type = n == 5 ? RN_T_ARRAY : n == 3 ? RN_T_MAP : RN_T_STRUCT;
		c->p += n;
		if (!eat(c, '<'))
			return fail(c, "expected '<'");
		if (f->type == RN_T_STRUCT) {
			if ((rc = parse_struct(c, f)))
				return rc;
		} else {
			f->nfields = f->type == RN_T_ARRAY ? 1 : 2;
			if (!(f->fields = rn_calloc(f->nfields, sizeof(*f->fields))))
				return RN_ENOMEM;
			if ((rc = child(c, f, 0)))
				return rc;
			if (f->type == RN_T_MAP) {
				f->fields[0].nullable = 0;
				if (f->fields[0].type >= RN_T_STRUCT)
					return fail(c, "a map key must be a primitive type");
				if (!eat(c, ','))
					return fail(c, "expected ',' between key and value types");
				if ((rc = child(c, f, 1)))
					return rc;
			}
			if (!eat(c, '>'))
				return fail(c, "expected '>'");
		}
	} else {
		size_t i;
		for (i = 0; i < sizeof(prims) / sizeof(prims[0]); i++)
			if (strlen(prims[i].name) == n && !strncasecmp(c->p, prims[i].name, n))
				break;
		if (i == sizeof(prims) / sizeof(prims[0]))
			return fail(c, "unknown type");
		f->type = prims[i].type;
		c->p += n;
	}
	c->depth--;
	return 0;
}

int rn_type_parse(const char *s, struct rn_field *f, char *err, size_t cap)
{
	struct cursor c = {s ? s : "", err, cap, 0};
	char *name = f->name;
	int nullable = f->nullable;
	int rc;

	memset(f, 0, sizeof(*f));
	f->name = name;
	f->nullable = nullable;
	rc = parse(&c, f);
	skip_ws(&c);
	if (!rc && *c.p)
		rc = fail(&c, "unexpected text after the type");
	return rc;
}

int rn_schema_add_column(struct rn_schema *s, const char *name, const char *type, int nullable,
			 char *err, size_t cap)
{
	struct rn_field *r = &s->root, f = {0};
	int rc;

	r->type = RN_T_STRUCT;
	if (!name || !*name) {
		snprintf(err, cap, "a column needs a name");
		return RN_EINVAL;
	}
	if (rn_schema_find(s, name, strlen(name)) >= 0) {
		snprintf(err, cap, "column '%s' declared twice", name);
		return RN_EINVAL;
	}
	if (r->nfields == RN_SCHEMA_MAX_FIELDS) {
		snprintf(err, cap, "more than %d columns", RN_SCHEMA_MAX_FIELDS);
		return RN_EINVAL;
	}
	if ((rc = rn_type_parse(type, &f, err, cap))) {
		rn_field_free(&f);
		return rc;
	}
	struct rn_field *nf = rn_realloc(r->fields, (r->nfields + 1) * sizeof(*nf));
	if (!nf || !(f.name = rn_strdup(name))) {
		if (nf)
			r->fields = nf;
		rn_field_free(&f);
		return RN_ENOMEM;
	}
	f.nullable = nullable;
	r->fields = nf;
	r->fields[r->nfields++] = f;
	return 0;
}

int rn_schema_find(const struct rn_schema *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->root.nfields; i++)
		if (strlen(s->root.fields[i].name) == len &&
		    !memcmp(s->root.fields[i].name, name, len))
			return (int)i;
	return -1;
}

const char *rn_type_name(const struct rn_field *f, char *buf, size_t cap)
{
	if (f->type == RN_T_DECIMAL) {
		snprintf(buf, cap, "decimal(%d,%d)", f->precision, f->scale);
		return buf;
	}
	static const char *const names[] = {
		[RN_T_STRING] = "string",
		[RN_T_LONG] = "long",
		[RN_T_INT] = "integer",
		[RN_T_SHORT] = "short",
		[RN_T_BYTE] = "byte",
		[RN_T_FLOAT] = "float",
		[RN_T_DOUBLE] = "double",
		[RN_T_BOOL] = "boolean",
		[RN_T_BINARY] = "binary",
		[RN_T_DATE] = "date",
		[RN_T_TIMESTAMP] = "timestamp",
		[RN_T_TIMESTAMP_NTZ] = "timestamp_ntz",
		[RN_T_STRUCT] = "struct",
		[RN_T_ARRAY] = "array",
		[RN_T_MAP] = "map",
	};
	snprintf(buf, cap, "%s", names[f->type]);
	return buf;
}

static int put(struct rn_buf *b, const char *s)
{
	return rn_buf_append(b, s, strlen(s));
}

static int type_json(const struct rn_field *f, struct rn_buf *b);

static int fields_json(const struct rn_field *f, struct rn_buf *b)
{
	int rc = put(b, "{\"type\":\"struct\",\"fields\":[");
	for (size_t i = 0; !rc && i < f->nfields; i++) {
		const struct rn_field *x = &f->fields[i];
		if ((i && (rc = put(b, ","))) || (rc = put(b, "{\"name\":")) ||
		    (rc = rn_json_put_str(b, x->name, strlen(x->name))) ||
		    (rc = put(b, ",\"type\":")) || (rc = type_json(x, b)) ||
		    (rc = put(b, x->nullable ? ",\"nullable\":true,\"metadata\":{}}"
					     : ",\"nullable\":false,\"metadata\":{}}")))
			return rc;
	}
	return rc ? rc : put(b, "]}");
}

static int type_json(const struct rn_field *f, struct rn_buf *b)
{
	char name[32];
	int rc;
	switch (f->type) {
	case RN_T_STRUCT: return fields_json(f, b);
	case RN_T_ARRAY:
		if ((rc = put(b, "{\"type\":\"array\",\"elementType\":")) ||
		    (rc = type_json(&f->fields[0], b)))
			return rc;
		return put(b, f->fields[0].nullable ? ",\"containsNull\":true}"
						    : ",\"containsNull\":false}");
	case RN_T_MAP:
		if ((rc = put(b, "{\"type\":\"map\",\"keyType\":")) ||
		    (rc = type_json(&f->fields[0], b)) || (rc = put(b, ",\"valueType\":")) ||
		    (rc = type_json(&f->fields[1], b)))
			return rc;
		return put(b, f->fields[1].nullable ? ",\"valueContainsNull\":true}"
						    : ",\"valueContainsNull\":false}");
	default:
		if ((rc = put(b, "\"")) || (rc = put(b, rn_type_name(f, name, sizeof(name)))))
			return rc;
		return put(b, "\"");
	}
}

int rn_schema_to_json(const struct rn_schema *s, struct rn_buf *out)
{
	struct rn_field root = s->root;
	root.type = RN_T_STRUCT;
	return fields_json(&root, out);
}

void rn_field_free(struct rn_field *f)
{
	for (size_t i = 0; i < f->nfields; i++)
		rn_field_free(&f->fields[i]);
	rn_free(f->fields);
	rn_free(f->name);
	memset(f, 0, sizeof(*f));
}

void rn_schema_free(struct rn_schema *s)
{
	rn_field_free(&s->root);
}

/* ---- Spark JSON schema -> rn_schema ---- */

struct jctx {
	char *err;
	size_t cap;
	int depth;
	/* one field's members */
	struct rn_json_span name, type, nullable, elem, contains_null, key, val, val_null, fields;
};

static int jtype(struct jctx *c, struct rn_json_span t, struct rn_field *f);

static int type_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct jctx *c = ctx;
	if (rn_json_span_eq(k, "type"))
		c->type = v;
	else if (rn_json_span_eq(k, "name"))
		c->name = v;
	else if (rn_json_span_eq(k, "nullable"))
		c->nullable = v;
	else if (rn_json_span_eq(k, "fields"))
		c->fields = v;
	else if (rn_json_span_eq(k, "elementType"))
		c->elem = v;
	else if (rn_json_span_eq(k, "containsNull"))
		c->contains_null = v;
	else if (rn_json_span_eq(k, "keyType"))
		c->key = v;
	else if (rn_json_span_eq(k, "valueType"))
		c->val = v;
	else if (rn_json_span_eq(k, "valueContainsNull"))
		c->val_null = v;
	return 0;
}

struct jfields {
	struct jctx *c;
	struct rn_field *parent;
};

static int jfield(void *ctx, size_t i, struct rn_json_span v)
{
	struct jfields *jf = ctx;
	struct jctx c = {jf->c->err, jf->c->cap, jf->c->depth, {0}, {0}, {0},
			 {0},        {0},        {0},          {0}, {0}, {0}};
	struct rn_field *p = jf->parent;
	struct rn_buf name = {0};
	int rc;
	(void)i;
	if ((rc = rn_json_object_walk(v, type_member, &c)) || !c.name.p || !c.type.p ||
	    rn_json_string(c.name, &name)) {
		rn_buf_free(&name);
		snprintf(c.err, c.cap, "a struct field without a name or type");
		return RN_EINVAL;
	}
	if (p->nfields == RN_SCHEMA_MAX_FIELDS) {
		rn_buf_free(&name);
		snprintf(c.err, c.cap, "too many fields");
		return RN_EINVAL;
	}
	struct rn_field *nf = rn_realloc(p->fields, (p->nfields + 1) * sizeof(*nf));
	if (!nf) {
		rn_buf_free(&name);
		return RN_ENOMEM;
	}
	p->fields = nf;
	struct rn_field *f = &p->fields[p->nfields++];
	memset(f, 0, sizeof(*f));
	f->name = (char *)name.data; /* NUL-terminated by rn_json_string */
	f->nullable = !c.nullable.p || rn_json_span_eq(c.nullable, "true");
	return jtype(&c, c.type, f);
}

static int jtype(struct jctx *c, struct rn_json_span t, struct rn_field *f)
{
	struct rn_buf s = {0};
	int rc;
	if (++c->depth > RN_SCHEMA_MAX_DEPTH) {
		snprintf(c->err, c->cap, "nested too deeply");
		return RN_EINVAL;
	}
	if (t.len && t.p[0] == '"') {
		char *name = f->name;
		int nullable = f->nullable;
		if ((rc = rn_json_string(t, &s))) {
			rn_buf_free(&s);
			return RN_EINVAL;
		}
		rc = rn_type_parse((const char *)s.data, f, c->err, c->cap);
		f->name = name;
		f->nullable = nullable;
		rn_buf_free(&s);
		c->depth--;
		return rc;
	}
	struct jctx in = {c->err, c->cap, c->depth, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}};
	if ((rc = rn_json_object_walk(t, type_member, &in)) || !in.type.p) {
		snprintf(c->err, c->cap, "a type is neither a name nor an object with a type");
		return RN_EINVAL;
	}
	if (rn_json_span_eq(in.type, "\"struct\"")) {
		struct jfields jf = {&in, f};
		f->type = RN_T_STRUCT;
		if (!in.fields.p || (rc = rn_json_array_walk(in.fields, jfield, &jf)))
			return rc ? rc : RN_EINVAL;
		if (!f->nfields) {
			snprintf(c->err, c->cap, "a struct needs fields");
			return RN_EINVAL;
		}
	} else if (rn_json_span_eq(in.type, "\"array\"") && in.elem.p) {
		f->type = RN_T_ARRAY;
		if (!(f->fields = rn_calloc(1, sizeof(*f->fields))))
			return RN_ENOMEM;
		f->nfields = 1;
		f->fields[0].nullable =
			!in.contains_null.p || rn_json_span_eq(in.contains_null, "true");
		if ((rc = jtype(&in, in.elem, &f->fields[0])))
			return rc;
	} else if (rn_json_span_eq(in.type, "\"map\"") && in.key.p && in.val.p) {
		f->type = RN_T_MAP;
		if (!(f->fields = rn_calloc(2, sizeof(*f->fields))))
			return RN_ENOMEM;
		f->nfields = 2;
		f->fields[1].nullable = !in.val_null.p || rn_json_span_eq(in.val_null, "true");
		if ((rc = jtype(&in, in.key, &f->fields[0])) ||
		    (rc = jtype(&in, in.val, &f->fields[1])))
			return rc;
	} else {
		snprintf(c->err, c->cap, "unknown complex type");
		return RN_EINVAL;
	}
	c->depth--;
	return 0;
}

int rn_schema_from_json(struct rn_schema *s, const char *json, size_t len, char *err, size_t cap)
{
	struct jctx c = {err, cap, 0, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}};
	int rc;
	if (rn_json_validate(json, len)) {
		snprintf(err, cap, "the schema is not valid JSON");
		return RN_EINVAL;
	}
	rc = jtype(&c, (struct rn_json_span){json, len}, &s->root);
	if (!rc && s->root.type != RN_T_STRUCT) {
		snprintf(err, cap, "a table schema must be a struct");
		rc = RN_EINVAL;
	}
	return rc;
}

int rn_decimal_parse(const struct rn_field *f, const char *s, size_t n, rn_i128 *out,
		     const char **why)
{
	size_t i = 0;
	int neg = 0, intd = 0, fracd = 0, sig = 0;
	rn_i128 u = rn_i128_from_i64(0);

	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	/* sig: digits after leading zeros; more than the integer part's share of the precision
	 * cannot fit (and beyond 38 would overflow the accumulator) */
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, intd++) {
		if (rn_i128_sign(u) == 0 && s[i] == '0')
			continue;
		if (++sig > f->precision - f->scale) {
			*why = "too many digits for the column's precision";
			return RN_EINVAL;
		}
		u = rn_i128_add(rn_i128_mul_u32(u, 10), rn_i128_from_i64(s[i] - '0'));
	}
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, fracd++) {
			if (fracd >= f->scale) {
				*why = "more fractional digits than the column's scale";
				return RN_EINVAL;
			}
			u = rn_i128_add(rn_i128_mul_u32(u, 10), rn_i128_from_i64(s[i] - '0'));
		}
	if (i != n || intd + fracd == 0) {
		*why = "not a decimal number";
		return RN_EINVAL;
	}
	for (int k = fracd; k < f->scale; k++)
		u = rn_i128_mul_u32(u, 10);
	*out = neg ? rn_i128_neg(u) : u;
	return 0;
}
