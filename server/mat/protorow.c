/*
 * PROTO records into typed rows; see protorow.h. Three parts: the descriptor reader (a
 * serialized DescriptorProto into a small flat model: messages, fields, enums, with type
 * names resolved and recursion/depth checked), the compiler (that model against a table
 * schema into a plan: per struct node one message plan whose slots are the struct's fields
 * in schema order, with a field-number lookup), and the decoder.
 *
 * The decoder makes one pass over a message's bytes to note, per slot, the last value of a
 * scalar or the "runs" of a repeated/message field (stretches of consecutive occurrences;
 * a well-formed encoder writes one run per field), then emits the slots in schema order,
 * re-reading only the runs. Slot states and runs live in a per-call arena (a stack buffer,
 * grown on the heap when a record needs more) that nested messages use as a stack.
 */
#include "protorow.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_utf8.h"

/* ---- descriptor model ------------------------------------------------------------------ */

/* FieldDescriptorProto.Type values (descriptor.proto). */
enum {
	PT_DOUBLE = 1,
	PT_FLOAT,
	PT_INT64,
	PT_UINT64,
	PT_INT32,
	PT_FIXED64,
	PT_FIXED32,
	PT_BOOL,
	PT_STRING,
	PT_GROUP,
	PT_MESSAGE,
	PT_BYTES,
	PT_UINT32,
	PT_ENUM,
	PT_SFIXED32,
	PT_SFIXED64,
	PT_SINT32,
	PT_SINT64
};
enum { LB_OPTIONAL = 1, LB_REQUIRED = 2, LB_REPEATED = 3 };

#define MAX_TOTAL_FIELDS 65536 /* fields in one descriptor, and columns a schema may expand to */
#define MAX_NAME 255

static const char *const ptnames[] = {
	"?",       "double",   "float",    "int64",  "uint64",  "int32", "fixed64",
	"fixed32", "bool",     "string",   "group",  "message", "bytes", "uint32",
	"enum",    "sfixed32", "sfixed64", "sint32", "sint64",
};

struct dfield {
	char *name;
	char *type_name; /* as written (".pkg.Msg.Inner", "Inner"), or NULL */
	uint32_t num;
	int label, type, oneof; /* oneof: oneof_index or -1 */
	int msg, en;            /* resolved message / enum index, or -1 */
};

struct dmsg {
	char *name, *path; /* path: dotted from the root message ("Root.Inner") */
	int parent;        /* index of the enclosing message, -1 for the root */
	struct dfield *fields;
	size_t nfields, capf;
	int map_entry;    /* MessageOptions.map_entry */
	int state, depth; /* recursion check: 0 new, 1 on the stack, 2 done; column depth */
};

struct dval {
	char *name;
	int32_t num;
	size_t order; /* declaration order: the first declared is the proto2 default */
};

struct denum {
	char *name, *path;
	int parent;
	struct dval *vals;
	size_t nvals, capv;
};

struct dname {
	const char *path;
	int msg, en; /* one of them is >= 0 */
};

struct desc {
	struct dmsg *m;
	size_t nm, capm;
	struct denum *e;
	size_t ne, cape;
	size_t total_fields;
	struct dname *names; /* every path, sorted, for resolving type names */
	size_t nnames;
	char *err;
	size_t cap;
};

__attribute__((format(printf, 3, 4))) static int errf(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (cap)
		vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return RN_EINVAL;
}

#define DBAD(D, ...) errf((D)->err, (D)->cap, __VA_ARGS__)

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	size_t old = *cap;
	int rc = rn_grow(p, cap, n, size, 4, SIZE_MAX);
	if (!rc && *cap > old) /* new items start zeroed */
		memset((char *)*p + old * size, 0, (*cap - old) * size);
	return rc;
}

static int set_str(char **dst, const struct rn_pb_field *f)
{
	char *s = rn_strndup((const char *)f->ptr, f->len);
	if (!s)
		return RN_ENOMEM;
	rn_free(*dst);
	*dst = s;
	return 0;
}

static int is_ident(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static int want(struct desc *D, const struct rn_pb_field *f, enum rn_pb_wt wt, const char *what)
{
	return f->wt == wt ? 0 : DBAD(D, "malformed descriptor: %s has wire type %d", what, f->wt);
}

static int parse_field(struct desc *D, size_t mi, const uint8_t *p, size_t len)
{
	struct dmsg *m = &D->m[mi];
	struct rn_pb_reader r;
	struct rn_pb_field f;
	int rc;

	if (m->nfields >= RN_SCHEMA_MAX_FIELDS)
		return DBAD(D, "message has more than %d fields", RN_SCHEMA_MAX_FIELDS);
	if (++D->total_fields > MAX_TOTAL_FIELDS)
		return DBAD(D, "descriptor has more than %d fields", MAX_TOTAL_FIELDS);
	if ((rc = grow((void **)&m->fields, &m->capf, m->nfields, sizeof(*m->fields))))
		return rc;
	struct dfield *x = &m->fields[m->nfields++];
	x->oneof = x->msg = x->en = -1;
	rn_pb_reader_init(&r, p, len);
	while ((rc = rn_pb_next(&r, &f)) == 1) {
		switch (f.num) {
		case 1:
			if ((rc = want(D, &f, RN_PB_LEN, "field name")) ||
			    (rc = set_str(&x->name, &f)))
				return rc;
			break;
		case 3:
			if ((rc = want(D, &f, RN_PB_VARINT, "field number")))
				return rc;
			x->num = f.u > 0x1fffffff ? 0 : (uint32_t)f.u;
			break;
		case 4:
			if ((rc = want(D, &f, RN_PB_VARINT, "field label")))
				return rc;
			x->label = f.u > 3 ? -1 : (int)f.u;
			break;
		case 5:
			if ((rc = want(D, &f, RN_PB_VARINT, "field type")))
				return rc;
			x->type = f.u > 18 ? -1 : (int)f.u;
			break;
		case 6:
			if ((rc = want(D, &f, RN_PB_LEN, "field type_name")) ||
			    (rc = set_str(&x->type_name, &f)))
				return rc;
			break;
		case 9:
			if ((rc = want(D, &f, RN_PB_VARINT, "field oneof_index")))
				return rc;
			x->oneof = f.u >= RN_SCHEMA_MAX_FIELDS ? RN_SCHEMA_MAX_FIELDS : (int)f.u;
			break;
		default:
			break; /* extendee, default_value, options (packed: both forms are read),
				  ... */
		}
	}
	return rc ? DBAD(D, "malformed descriptor (a field)") : 0;
}

static int parse_enum(struct desc *D, int parent, const uint8_t *p, size_t len)
{
	struct rn_pb_reader r, vr;
	struct rn_pb_field f, g;
	int rc;

	if (D->nm + D->ne >= RN_PROTOROW_MAX_TYPES)
		return DBAD(D, "descriptor declares more than %d types", RN_PROTOROW_MAX_TYPES);
	if ((rc = grow((void **)&D->e, &D->cape, D->ne, sizeof(*D->e))))
		return rc;
	size_t ei = D->ne++;
	D->e[ei].parent = parent;
	rn_pb_reader_init(&r, p, len);
	while ((rc = rn_pb_next(&r, &f)) == 1) {
		if (f.num == 1) {
			if ((rc = want(D, &f, RN_PB_LEN, "enum name")) ||
			    (rc = set_str(&D->e[ei].name, &f)))
				return rc;
		} else if (f.num == 2) {
			struct denum *e = &D->e[ei];
			if ((rc = want(D, &f, RN_PB_LEN, "enum value")))
				return rc;
			if (++D->total_fields > MAX_TOTAL_FIELDS)
				return DBAD(D, "descriptor has more than %d fields",
					    MAX_TOTAL_FIELDS);
			if ((rc = grow((void **)&e->vals, &e->capv, e->nvals, sizeof(*e->vals))))
				return rc;
			struct dval *v = &e->vals[e->nvals];
			v->order = e->nvals++;
			rn_pb_reader_init(&vr, f.ptr, f.len);
			while ((rc = rn_pb_next(&vr, &g)) == 1) {
				if (g.num == 1 && g.wt == RN_PB_LEN) {
					if ((rc = set_str(&v->name, &g)))
						return rc;
				} else if (g.num == 2 && g.wt == RN_PB_VARINT) {
					v->num = (int32_t)(uint32_t)g.u;
				}
			}
			if (rc)
				return DBAD(D, "malformed descriptor (an enum value)");
			if (!v->name || !is_ident(v->name))
				return DBAD(D, "enum value name '%.64s' is not an identifier",
					    v->name ? v->name : "");
		}
	}
	if (rc)
		return DBAD(D, "malformed descriptor (an enum)");
	if (!D->e[ei].name || !is_ident(D->e[ei].name))
		return DBAD(D, "enum name '%.64s' is not an identifier",
			    D->e[ei].name ? D->e[ei].name : "");
	return 0;
}

static int parse_msg(struct desc *D, int parent, int depth, const uint8_t *p, size_t len)
{
	struct rn_pb_reader r, o;
	struct rn_pb_field f, g;
	int rc;

	if (depth > RN_SCHEMA_MAX_DEPTH)
		return DBAD(D, "nested types deeper than %d levels", RN_SCHEMA_MAX_DEPTH);
	if (D->nm + D->ne >= RN_PROTOROW_MAX_TYPES)
		return DBAD(D, "descriptor declares more than %d types", RN_PROTOROW_MAX_TYPES);
	if ((rc = grow((void **)&D->m, &D->capm, D->nm, sizeof(*D->m))))
		return rc;
	size_t mi = D->nm++;
	D->m[mi].parent = parent;
	rn_pb_reader_init(&r, p, len);
	while ((rc = rn_pb_next(&r, &f)) == 1) {
		switch (f.num) {
		case 1:
			if ((rc = want(D, &f, RN_PB_LEN, "message name")) ||
			    (rc = set_str(&D->m[mi].name, &f)))
				return rc;
			break;
		case 2:
			if ((rc = want(D, &f, RN_PB_LEN, "field")) ||
			    (rc = parse_field(D, mi, f.ptr, f.len)))
				return rc;
			break;
		case 3:
			if ((rc = want(D, &f, RN_PB_LEN, "nested_type")) ||
			    (rc = parse_msg(D, (int)mi, depth + 1, f.ptr, f.len)))
				return rc;
			break;
		case 4:
			if ((rc = want(D, &f, RN_PB_LEN, "enum_type")) ||
			    (rc = parse_enum(D, (int)mi, f.ptr, f.len)))
				return rc;
			break;
		case 7: /* MessageOptions; map_entry = 7 */
			if ((rc = want(D, &f, RN_PB_LEN, "options")))
				return rc;
			rn_pb_reader_init(&o, f.ptr, f.len);
			while ((rc = rn_pb_next(&o, &g)) == 1)
				if (g.num == 7 && g.wt == RN_PB_VARINT)
					D->m[mi].map_entry = g.u != 0;
			if (rc)
				return DBAD(D, "malformed descriptor (message options)");
			break;
		default: break;
		}
	}
	if (rc)
		return DBAD(D, "malformed descriptor (a message)");
	if (!D->m[mi].name || !is_ident(D->m[mi].name))
		return DBAD(D, "message name '%.64s' is not an identifier",
			    D->m[mi].name ? D->m[mi].name : "");
	return 0;
}

static char *join(const char *a, const char *b)
{
	size_t na = a ? strlen(a) : 0, nb = strlen(b);
	char *s = rn_malloc(na + nb + 2);
	if (!s)
		return NULL;
	if (na) {
		memcpy(s, a, na);
		s[na++] = '.';
	}
	memcpy(s + na, b, nb + 1);
	return s;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct dname *)a)->path, ((const struct dname *)b)->path);
}

static const struct dname *find_path(const struct desc *D, const char *path)
{
	struct dname key = {path, -1, -1};
	return bsearch(&key, D->names, D->nnames, sizeof(key), cmp_name);
}

/* Resolves a type name as protoc does: a relative name from the innermost scope outwards;
 * a qualified one (".pkg.Root.Inner") by its longest suffix that is a path here (the package
 * is not in a DescriptorProto). */
static int resolve(const struct desc *D, int scope, const char *tn, const struct dname **hit)
{
	*hit = NULL;
	if (tn[0] != '.') {
		for (int s = scope; s >= 0; s = D->m[s].parent) {
			char *full = join(D->m[s].path, tn);
			if (!full)
				return RN_ENOMEM;
			*hit = find_path(D, full);
			rn_free(full);
			if (*hit)
				return 0;
		}
	}
	for (const char *p = tn; p; p = strchr(p, '.')) {
		if (*p == '.')
			p++;
		if ((*hit = find_path(D, p)))
			return 0;
	}
	return 0;
}

static int cmp_num(const void *a, const void *b)
{
	const struct dfield *x = *(const struct dfield *const *)a,
			    *y = *(const struct dfield *const *)b;
	return x->num < y->num ? -1 : x->num > y->num;
}

static int cmp_fname(const void *a, const void *b)
{
	const struct dfield *x = *(const struct dfield *const *)a,
			    *y = *(const struct dfield *const *)b;
	return strcmp(x->name, y->name);
}

static int check_msg(struct desc *D, size_t mi)
{
	struct dmsg *m = &D->m[mi];
	const struct dfield **v;
	int rc = 0;

	for (size_t i = 0; i < m->nfields; i++) {
		struct dfield *x = &m->fields[i];
		if (!x->name || !is_ident(x->name))
			return DBAD(D, "field name '%.64s' in %s is not an identifier",
				    x->name ? x->name : "", m->path);
		if (!x->num)
			return DBAD(D, "field '%s.%s' has no valid number", m->path, x->name);
		if (x->label < 0)
			return DBAD(D, "field '%s.%s' has an unknown label", m->path, x->name);
		if (!x->label)
			x->label = LB_OPTIONAL;
		if (x->type < 0)
			return DBAD(D, "field '%s.%s' has an unknown type", m->path, x->name);
		if (x->type == PT_GROUP)
			return DBAD(D, "field '%s.%s' is a group; groups are not supported",
				    m->path, x->name);
		if (x->type == PT_MESSAGE || x->type == PT_ENUM || (!x->type && x->type_name)) {
			const struct dname *h = NULL;
			if (x->type_name && (rc = resolve(D, (int)mi, x->type_name, &h)))
				return rc;
			if (h && h->msg >= 0 && x->type != PT_ENUM) {
				x->msg = h->msg;
				x->type = PT_MESSAGE;
			} else if (h && h->en >= 0 && x->type != PT_MESSAGE) {
				x->en = h->en;
				x->type = PT_ENUM;
			} else if (x->type != PT_ENUM) {
				/* an enum declared outside the message still carries its numbers */
				return DBAD(
					D,
					"type '%.80s' of field '%s.%s' is not in the descriptor "
					"(nested types must be declared inside the message)",
					x->type_name ? x->type_name : "", m->path, x->name);
			}
		}
		if (!x->type)
			return DBAD(D, "field '%s.%s' has no type", m->path, x->name);
	}
	if (m->nfields < 2)
		return 0;
	if (!(v = rn_calloc(m->nfields, sizeof(*v))))
		return RN_ENOMEM;
	for (size_t i = 0; i < m->nfields; i++)
		v[i] = &m->fields[i];
	qsort(v, m->nfields, sizeof(*v), cmp_num);
	for (size_t i = 1; !rc && i < m->nfields; i++)
		if (v[i]->num == v[i - 1]->num)
			rc = DBAD(D, "fields '%s' and '%s' of %s share number %u", v[i - 1]->name,
				  v[i]->name, m->path, (unsigned)v[i]->num);
	qsort(v, m->nfields, sizeof(*v), cmp_fname);
	for (size_t i = 1; !rc && i < m->nfields; i++)
		if (!strcmp(v[i]->name, v[i - 1]->name))
			rc = DBAD(D, "field '%s' declared twice in %s", v[i]->name, m->path);
	rn_free(v);
	return rc;
}

/* A map entry's shape: exactly key = 1 and value = 2, neither repeated, the key integral,
 * bool or string. */
static int map_shape(const struct desc *D, const struct dfield *x, const struct dfield **k,
		     const struct dfield **v)
{
	if (x->label != LB_REPEATED || x->msg < 0)
		return 0;
	const struct dmsg *m = &D->m[x->msg];
	if (m->nfields != 2)
		return 0;
	*k = m->fields[0].num == 1 ? &m->fields[0] : &m->fields[1];
	*v = m->fields[0].num == 1 ? &m->fields[1] : &m->fields[0];
	int kt = (*k)->type;
	return (*k)->num == 1 && (*v)->num == 2 && !strcmp((*k)->name, "key") &&
	       !strcmp((*v)->name, "value") && (*k)->label != LB_REPEATED &&
	       (*v)->label != LB_REPEATED && kt != PT_DOUBLE && kt != PT_FLOAT && kt != PT_BYTES &&
	       kt != PT_MESSAGE && kt != PT_ENUM;
}

/* Depth-first over the message types the root uses: refuses recursion and computes each
 * type's column depth (as rn_type_parse counts it). */
static int walk(struct desc *D, int mi, int stack)
{
	struct dmsg *m = &D->m[mi];
	int depth = 0, rc;
	if (stack > RN_SCHEMA_MAX_DEPTH)
		return DBAD(D, "message types nested more than %d levels", RN_SCHEMA_MAX_DEPTH);
	m->state = 1;
	for (size_t i = 0; i < m->nfields; i++) {
		const struct dfield *x = &D->m[mi].fields[i], *k, *v;
		int d = 1, t = x->msg;
		if (map_shape(D, x, &k, &v)) {
			t = v->msg;
			d = 2;
		} else if (x->label == LB_REPEATED) {
			d = 2;
		}
		if (t >= 0) {
			if (D->m[t].state == 1)
				return DBAD(
					D,
					"message %s refers to itself (field '%s.%s'); recursive "
					"types cannot be columns",
					D->m[t].path, D->m[mi].path, x->name);
			if (!D->m[t].state && (rc = walk(D, t, stack + 1)))
				return rc;
			d += D->m[t].depth;
		}
		if (d > depth)
			depth = d;
	}
	m = &D->m[mi];
	m->state = 2;
	m->depth = depth;
	if (depth > RN_SCHEMA_MAX_DEPTH)
		return DBAD(D, "message %s nests more than %d levels", m->path,
			    RN_SCHEMA_MAX_DEPTH);
	return 0;
}

static void desc_free(struct desc *D)
{
	for (size_t i = 0; i < D->nm; i++) {
		for (size_t j = 0; j < D->m[i].nfields; j++) {
			rn_free(D->m[i].fields[j].name);
			rn_free(D->m[i].fields[j].type_name);
		}
		rn_free(D->m[i].fields);
		rn_free(D->m[i].name);
		rn_free(D->m[i].path);
	}
	for (size_t i = 0; i < D->ne; i++) {
		for (size_t j = 0; j < D->e[i].nvals; j++)
			rn_free(D->e[i].vals[j].name);
		rn_free(D->e[i].vals);
		rn_free(D->e[i].name);
		rn_free(D->e[i].path);
	}
	rn_free(D->m);
	rn_free(D->e);
	rn_free(D->names);
	memset(D, 0, sizeof(*D));
}

static int desc_read(struct desc *D, const uint8_t *p, size_t len, char *err, size_t cap)
{
	int rc;
	memset(D, 0, sizeof(*D));
	D->err = err;
	D->cap = cap;
	if (cap)
		err[0] = 0;
	if (!p || !len)
		return DBAD(D, "empty descriptor");
	if (len > RN_PROTOROW_MAX_DESCRIPTOR)
		return DBAD(D, "descriptor larger than %u bytes", RN_PROTOROW_MAX_DESCRIPTOR);
	if ((rc = parse_msg(D, -1, 1, p, len)))
		return rc;
	/* parents come before their children, so paths build in index order */
	for (size_t i = 0; i < D->nm; i++)
		if (!(D->m[i].path = join(D->m[i].parent >= 0 ? D->m[D->m[i].parent].path : NULL,
					  D->m[i].name)))
			return RN_ENOMEM;
	for (size_t i = 0; i < D->ne; i++)
		if (!(D->e[i].path = join(D->m[D->e[i].parent].path, D->e[i].name)))
			return RN_ENOMEM;
	if (!(D->names = rn_calloc(D->nm + D->ne, sizeof(*D->names))))
		return RN_ENOMEM;
	for (size_t i = 0; i < D->nm; i++)
		D->names[D->nnames++] = (struct dname){D->m[i].path, (int)i, -1};
	for (size_t i = 0; i < D->ne; i++)
		D->names[D->nnames++] = (struct dname){D->e[i].path, -1, (int)i};
	qsort(D->names, D->nnames, sizeof(*D->names), cmp_name);
	for (size_t i = 1; i < D->nnames; i++)
		if (!strcmp(D->names[i].path, D->names[i - 1].path))
			return DBAD(D, "type %s declared twice", D->names[i].path);
	for (size_t i = 0; i < D->nm; i++)
		if ((rc = check_msg(D, i)))
			return rc;
	return walk(D, 0, 1);
}

/* ---- the plan -------------------------------------------------------------------------- */

enum { K_SCALAR, K_STRUCT, K_ARRAY, K_ARRAY_MSG, K_MAP };

struct pval {
	int32_t num;
	const char *name; /* points into penum's storage */
	size_t len;
};

struct penum {
	char *name;
	struct pval *v; /* sorted by number, first declared first among aliases */
	size_t n;
	int32_t first; /* the first declared value: proto2's default */
	char *names;   /* all value names, NUL-separated */
};

struct pmsg;

struct pslot {
	const struct rn_field *col; /* the schema node filled (a column, struct field, map key or
				     * value) */
	uint32_t num;               /* proto field number; 0: no field covers the column */
	uint8_t ptype, kind, required, packable;
	uint8_t wt;             /* the wire type of one (unpacked) value */
	int oneof;              /* group index in this message, or -1 */
	const struct pmsg *sub; /* K_STRUCT: the struct; K_ARRAY_MSG: the element; K_MAP: the
				 * entry */
	const struct penum *en; /* enum fields, when the descriptor declares the enum */
};

struct pnum {
	uint32_t num, slot;
};

struct pmsg {
	const struct rn_field *st; /* the struct node (the map node for an entry) */
	struct pslot *slots;       /* st's fields in schema order (entry: key, value) */
	size_t nslots;
	int entry;        /* a map entry: key then value, no begin/end, defaults */
	int ngroups;      /* oneof groups */
	uint16_t *direct; /* number -> slot + 1 when numbers are small, else NULL */
	uint32_t maxnum;
	struct pnum *sorted; /* otherwise: sorted by number */
	size_t nsorted;
	struct pmsg *next; /* every pmsg of the plan, for freeing */
};

struct rn_protoplan {
	struct rn_field rootf; /* the table's root as an RN_T_STRUCT (what jsonrow begins) */
	struct pmsg *root;
	struct pmsg *all;
	struct penum **enums; /* by descriptor enum index, built on first use */
	size_t nenums;
	char *name;
};

struct comp {
	struct rn_protoplan *pl;
	struct desc *D;
	char *err;
	size_t cap;
	char path[256]; /* the dotted path of the field being compiled */
	size_t plen;
};

static size_t cpush(struct comp *c, const char *name)
{
	size_t old = c->plen;
	int n = snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", name);
	if (n > 0)
		c->plen = old + (size_t)n < sizeof(c->path) ? old + (size_t)n : sizeof(c->path) - 1;
	return old;
}

static void cpop(struct comp *c, size_t old)
{
	c->plen = old;
	c->path[old] = 0;
}

/* Appends the full Spark type ("array<struct<x:double>>") to buf at *o (truncating). */
static void type_put(const struct rn_field *f, char *buf, size_t cap, size_t *o)
{
	char n[32];
#define PUT(...)                                                                                   \
	do {                                                                                       \
		if (*o < cap) {                                                                    \
			int k_ = snprintf(buf + *o, cap - *o, __VA_ARGS__);                        \
			*o = k_ < 0 ? cap : *o + (size_t)k_ < cap ? *o + (size_t)k_ : cap;         \
		}                                                                                  \
	} while (0)
	switch (f->type) {
	case RN_T_ARRAY:
		PUT("array<");
		type_put(&f->fields[0], buf, cap, o);
		PUT(">");
		return;
	case RN_T_MAP:
		PUT("map<");
		type_put(&f->fields[0], buf, cap, o);
		PUT(",");
		type_put(&f->fields[1], buf, cap, o);
		PUT(">");
		return;
	case RN_T_STRUCT:
		PUT("struct<");
		for (size_t i = 0; i < f->nfields; i++) {
			PUT("%s%s:", i ? "," : "", f->fields[i].name);
			type_put(&f->fields[i], buf, cap, o);
		}
		PUT(">");
		return;
	default: PUT("%s", rn_type_name(f, n, sizeof(n)));
	}
#undef PUT
}

static void type_str(const struct rn_field *f, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = 0;
	type_put(f, buf, cap, &o);
}

static void ftype_str(const struct desc *D, const struct dfield *x, char *buf, size_t cap)
{
	const char *tn = x->msg >= 0 ? D->m[x->msg].name : x->en >= 0 ? D->e[x->en].name : "";
	snprintf(buf, cap, "%s%s%s%s", x->label == LB_REPEATED ? "repeated " : "", ptnames[x->type],
		 *tn ? " " : "", tn);
}

static int misfit(struct comp *c, const struct dfield *x, const struct rn_field *col)
{
	char ft[160], ct[200];
	ftype_str(c->D, x, ft, sizeof(ft));
	type_str(col, ct, sizeof(ct));
	return errf(c->err, c->cap, "field '%s' (%s) does not fit column %s %s", c->path, ft,
		    c->path, ct);
}

static int is_integral(int t)
{
	return t == PT_INT64 || t == PT_UINT64 || t == PT_INT32 || t == PT_FIXED64 ||
	       t == PT_FIXED32 || t == PT_UINT32 || t == PT_SFIXED32 || t == PT_SFIXED64 ||
	       t == PT_SINT32 || t == PT_SINT64;
}

static int is_64(int t)
{
	return t == PT_INT64 || t == PT_UINT64 || t == PT_FIXED64 || t == PT_SFIXED64 ||
	       t == PT_SINT64;
}

static uint8_t wire_of(int t)
{
	switch (t) {
	case PT_DOUBLE:
	case PT_FIXED64:
	case PT_SFIXED64: return RN_PB_I64;
	case PT_FLOAT:
	case PT_FIXED32:
	case PT_SFIXED32: return RN_PB_I32;
	case PT_STRING:
	case PT_BYTES:
	case PT_MESSAGE: return RN_PB_LEN;
	default: return RN_PB_VARINT;
	}
}

static int fits(const struct dfield *x, const struct rn_field *col)
{
	enum rn_type ct = col->type;
	int intcol = ct == RN_T_BYTE || ct == RN_T_SHORT || ct == RN_T_INT || ct == RN_T_LONG;
	if (is_integral(x->type))
		return intcol || ct == RN_T_DATE ||
		       ((ct == RN_T_TIMESTAMP || ct == RN_T_TIMESTAMP_NTZ) && is_64(x->type));
	switch (x->type) {
	case PT_ENUM: return intcol || (ct == RN_T_STRING && x->en >= 0);
	case PT_BOOL: return ct == RN_T_BOOL;
	case PT_FLOAT: return ct == RN_T_FLOAT || ct == RN_T_DOUBLE;
	case PT_DOUBLE: return ct == RN_T_DOUBLE;
	case PT_STRING: return ct == RN_T_STRING || ct == RN_T_DECIMAL;
	case PT_BYTES: return ct == RN_T_BINARY;
	}
	return 0;
}

static int cmp_pval(const void *a, const void *b)
{
	const struct pval *x = a, *y = b;
	if (x->num != y->num)
		return x->num < y->num ? -1 : 1;
	/* aliases: the first declared first (names are stored in declaration order) */
	return x->name < y->name ? -1 : x->name > y->name;
}

static int get_enum(struct comp *c, int ei, const struct penum **out)
{
	struct rn_protoplan *pl = c->pl;
	const struct denum *e = &c->D->e[ei];
	size_t total = 0;
	if (pl->enums[ei]) {
		*out = pl->enums[ei];
		return 0;
	}
	struct penum *pe = rn_calloc(1, sizeof(*pe));
	if (!pe)
		return RN_ENOMEM;
	pl->enums[ei] = pe;
	for (size_t i = 0; i < e->nvals; i++)
		total += strlen(e->vals[i].name) + 1;
	if (!(pe->name = rn_strdup(e->path)) ||
	    !(pe->v = rn_calloc(e->nvals + 1, sizeof(*pe->v))) ||
	    !(pe->names = rn_malloc(total + 1)))
		return RN_ENOMEM;
	char *w = pe->names;
	for (size_t i = 0; i < e->nvals; i++) {
		size_t n = strlen(e->vals[i].name);
		memcpy(w, e->vals[i].name, n + 1);
		pe->v[i] = (struct pval){e->vals[i].num, w, n};
		w += n + 1;
	}
	pe->n = e->nvals;
	pe->first = e->nvals ? e->vals[0].num : 0;
	qsort(pe->v, pe->n, sizeof(*pe->v), cmp_pval);
	*out = pe;
	return 0;
}

static int comp_msg(struct comp *c, int mi, const struct rn_field *st, struct pmsg **out);
static int comp_entry(struct comp *c, const struct dfield *x, const struct rn_field *col,
		      struct pmsg **out);

static void slot_init(struct pslot *s, const struct dfield *x, const struct rn_field *col)
{
	s->col = col;
	s->num = x->num;
	s->ptype = (uint8_t)x->type;
	s->required = x->label == LB_REQUIRED;
	s->wt = wire_of(x->type);
	s->packable = s->wt != RN_PB_LEN;
	s->oneof = -1;
}

/* Compiles field x onto schema node col (its name already on c->path). */
static int comp_slot(struct comp *c, const struct dfield *x, const struct rn_field *col,
		     struct pslot *s)
{
	const struct dfield *k, *v;
	struct pmsg *sub = NULL;
	int rc;

	slot_init(s, x, col);
	if (x->en >= 0 && (rc = get_enum(c, x->en, &s->en)))
		return rc;
	if (x->label == LB_REPEATED && col->type == RN_T_MAP && map_shape(c->D, x, &k, &v)) {
		s->kind = K_MAP;
		if ((rc = comp_entry(c, x, col, &sub)))
			return rc;
	} else if (x->label == LB_REPEATED) {
		if (col->type != RN_T_ARRAY)
			return misfit(c, x, col);
		const struct rn_field *el = &col->fields[0];
		if (x->type == PT_MESSAGE) {
			if (el->type != RN_T_STRUCT)
				return misfit(c, x, col);
			s->kind = K_ARRAY_MSG;
			if ((rc = comp_msg(c, x->msg, el, &sub)))
				return rc;
		} else {
			if (!fits(x, el))
				return misfit(c, x, col);
			s->kind = K_ARRAY;
		}
	} else if (x->type == PT_MESSAGE) {
		if (col->type != RN_T_STRUCT)
			return misfit(c, x, col);
		s->kind = K_STRUCT;
		if ((rc = comp_msg(c, x->msg, col, &sub)))
			return rc;
	} else {
		if (!fits(x, col))
			return misfit(c, x, col);
		s->kind = K_SCALAR;
	}
	s->sub = sub;
	return 0;
}

static struct pmsg *new_pmsg(struct comp *c, const struct rn_field *st, size_t nslots)
{
	struct pmsg *m = rn_calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->next = c->pl->all;
	c->pl->all = m;
	m->st = st;
	m->nslots = nslots;
	if (!(m->slots = rn_calloc(nslots ? nslots : 1, sizeof(*m->slots))))
		return NULL;
	for (size_t i = 0; i < nslots; i++) {
		m->slots[i].col = &st->fields[i];
		m->slots[i].oneof = -1;
	}
	return m;
}

static int cmp_pnum(const void *a, const void *b)
{
	const struct pnum *x = a, *y = b;
	return x->num < y->num ? -1 : x->num > y->num;
}

/* The number -> slot lookup: a direct table when the numbers are dense enough, else a
 * sorted array searched by halves. */
static int index_msg(struct pmsg *m)
{
	uint32_t maxnum = 0;
	size_t n = 0;
	for (size_t i = 0; i < m->nslots; i++)
		if (m->slots[i].num) {
			n++;
			if (m->slots[i].num > maxnum)
				maxnum = m->slots[i].num;
		}
	m->maxnum = maxnum;
	if (maxnum <= 4 * m->nslots + 64) {
		if (!(m->direct = rn_calloc(maxnum + 1, sizeof(*m->direct))))
			return RN_ENOMEM;
		for (size_t i = 0; i < m->nslots; i++)
			if (m->slots[i].num)
				m->direct[m->slots[i].num] = (uint16_t)(i + 1);
		return 0;
	}
	if (!(m->sorted = rn_calloc(n, sizeof(*m->sorted))))
		return RN_ENOMEM;
	for (size_t i = 0; i < m->nslots; i++)
		if (m->slots[i].num)
			m->sorted[m->nsorted++] = (struct pnum){m->slots[i].num, (uint32_t)i};
	qsort(m->sorted, m->nsorted, sizeof(*m->sorted), cmp_pnum);
	return 0;
}

static int comp_msg(struct comp *c, int mi, const struct rn_field *st, struct pmsg **out)
{
	const struct dmsg *dm = &c->D->m[mi];
	struct pmsg *m = new_pmsg(c, st, st->nfields);
	int *groups = NULL; /* oneof_index -> group + 1 */
	int rc = 0;

	if (!m)
		return RN_ENOMEM;
	for (size_t i = 0; i < dm->nfields; i++) {
		const struct dfield *x = &c->D->m[mi].fields[i];
		size_t old = cpush(c, x->name);
		size_t j;
		for (j = 0; j < st->nfields; j++)
			if (!strcmp(st->fields[j].name, x->name))
				break;
		if (j == st->nfields) {
			rc = errf(c->err, c->cap, "unknown field '%s': the table has no column %s",
				  c->path, c->path);
			goto out;
		}
		if ((rc = comp_slot(c, x, &st->fields[j], &m->slots[j])))
			goto out;
		if (x->oneof >= 0) {
			if (!groups &&
			    !(groups = rn_calloc(RN_SCHEMA_MAX_FIELDS + 1, sizeof(*groups)))) {
				rc = RN_ENOMEM;
				goto out;
			}
			if (!groups[x->oneof])
				groups[x->oneof] = ++m->ngroups;
			m->slots[j].oneof = groups[x->oneof] - 1;
		}
		cpop(c, old);
	}
	rn_free(groups);
	groups = NULL;
	for (size_t j = 0; j < st->nfields; j++)
		if (!m->slots[j].num && !st->fields[j].nullable) {
			size_t old = cpush(c, st->fields[j].name);
			rc = errf(c->err, c->cap,
				  "NOT NULL column %s is not covered by the descriptor", c->path);
			cpop(c, old);
			return rc;
		}
	*out = m;
	return index_msg(m);
out:
	rn_free(groups);
	return rc;
}

static int comp_entry(struct comp *c, const struct dfield *x, const struct rn_field *col,
		      struct pmsg **out)
{
	const struct dfield *k, *v;
	struct pmsg *m = new_pmsg(c, col, 2);
	int rc;

	if (!m)
		return RN_ENOMEM;
	map_shape(c->D, x, &k, &v);
	m->entry = 1;
	/* key */
	slot_init(&m->slots[0], k, &col->fields[0]);
	if (!fits(k, &col->fields[0]))
		return misfit(c, x, col);
	/* value */
	if (v->en >= 0 && (rc = get_enum(c, v->en, &m->slots[1].en)))
		return rc;
	slot_init(&m->slots[1], v, &col->fields[1]);
	if (v->type == PT_MESSAGE) {
		struct pmsg *sub;
		if (col->fields[1].type != RN_T_STRUCT)
			return misfit(c, x, col);
		m->slots[1].kind = K_STRUCT;
		if ((rc = comp_msg(c, v->msg, &col->fields[1], &sub)))
			return rc;
		m->slots[1].sub = sub;
	} else if (!fits(v, &col->fields[1])) {
		return misfit(c, x, col);
	}
	*out = m;
	return index_msg(m);
}

void rn_protorow_plan_free(struct rn_protoplan *p)
{
	if (!p)
		return;
	for (struct pmsg *m = p->all, *n; m; m = n) {
		n = m->next;
		rn_free(m->slots);
		rn_free(m->direct);
		rn_free(m->sorted);
		rn_free(m);
	}
	for (size_t i = 0; i < p->nenums; i++)
		if (p->enums[i]) {
			rn_free(p->enums[i]->name);
			rn_free(p->enums[i]->v);
			rn_free(p->enums[i]->names);
			rn_free(p->enums[i]);
		}
	rn_free(p->enums);
	rn_free(p->name);
	rn_free(p);
}

const char *rn_protorow_plan_name(const struct rn_protoplan *p)
{
	return p->name;
}

int rn_protorow_plan(const struct rn_schema *table, const uint8_t *desc, size_t len,
		     struct rn_protoplan **out, char *err, size_t cap)
{
	struct desc D;
	struct comp c = {0};
	struct rn_protoplan *pl = NULL;
	int rc;

	*out = NULL;
	if ((rc = desc_read(&D, desc, len, err, cap)))
		goto out;
	rc = RN_ENOMEM;
	if (!(pl = rn_calloc(1, sizeof(*pl))) || !(pl->name = rn_strdup(D.m[0].name)) ||
	    !(pl->enums = rn_calloc(D.ne ? D.ne : 1, sizeof(*pl->enums))))
		goto out;
	pl->nenums = D.ne;
	pl->rootf = table->root;
	pl->rootf.type = RN_T_STRUCT;
	c.pl = pl;
	c.D = &D;
	c.err = err;
	c.cap = cap;
	if ((rc = comp_msg(&c, 0, &pl->rootf, &pl->root)))
		goto out;
	*out = pl;
	pl = NULL;
out:
	rn_protorow_plan_free(pl);
	desc_free(&D);
	return rc;
}

/* ---- schema from a descriptor ---------------------------------------------------------- */

static int build_field(struct desc *D, const struct dfield *x, struct rn_field *f, size_t *budget);

static int build_type(struct desc *D, const struct dfield *x, struct rn_field *f, size_t *budget)
{
	const struct dmsg *m;
	int rc;

	if (!*budget)
		return DBAD(D, "descriptor expands to more than %d columns", MAX_TOTAL_FIELDS);
	--*budget;
	switch (x->type) {
	case PT_INT32:
	case PT_SINT32:
	case PT_SFIXED32: f->type = RN_T_INT; return 0;
	case PT_UINT32:
	case PT_FIXED32:
	case PT_INT64:
	case PT_SINT64:
	case PT_SFIXED64:
	case PT_UINT64:
	case PT_FIXED64: f->type = RN_T_LONG; return 0;
	case PT_FLOAT: f->type = RN_T_FLOAT; return 0;
	case PT_DOUBLE: f->type = RN_T_DOUBLE; return 0;
	case PT_BOOL: f->type = RN_T_BOOL; return 0;
	case PT_STRING: f->type = RN_T_STRING; return 0;
	case PT_BYTES: f->type = RN_T_BINARY; return 0;
	case PT_ENUM: f->type = x->en >= 0 ? RN_T_STRING : RN_T_INT; return 0;
	case PT_MESSAGE:
		m = &D->m[x->msg];
		if (!m->nfields)
			return DBAD(D,
				    "message %s has no fields; an empty struct cannot be a column",
				    m->path);
		f->type = RN_T_STRUCT;
		if (!(f->fields = rn_calloc(m->nfields, sizeof(*f->fields))))
			return RN_ENOMEM;
		f->nfields = m->nfields;
		for (size_t i = 0; i < m->nfields; i++)
			if ((rc = build_field(D, &D->m[x->msg].fields[i], &f->fields[i], budget)))
				return rc;
		return 0;
	}
	return DBAD(D, "field '%s' has an unsupported type", x->name);
}

static int build_field(struct desc *D, const struct dfield *x, struct rn_field *f, size_t *budget)
{
	const struct dfield *k, *v;
	const struct dmsg *em = x->msg >= 0 ? &D->m[x->msg] : NULL;
	size_t nl = em ? strlen(em->name) : 0;
	int rc;

	if (!(f->name = rn_strdup(x->name)))
		return RN_ENOMEM;
	f->nullable = x->label == LB_OPTIONAL;
	if (map_shape(D, x, &k, &v) &&
	    (em->map_entry || (nl > 5 && !strcmp(em->name + nl - 5, "Entry")))) {
		f->type = RN_T_MAP;
		f->nullable = 0;
		if (!(f->fields = rn_calloc(2, sizeof(*f->fields))))
			return RN_ENOMEM;
		f->nfields = 2;
		if ((rc = build_type(D, k, &f->fields[0], budget)))
			return rc;
		return build_type(D, v, &f->fields[1], budget);
	}
	if (em && em->map_entry)
		return DBAD(D, "map entry %s is not shaped key = 1, value = 2", em->path);
	if (x->label == LB_REPEATED) {
		f->type = RN_T_ARRAY;
		f->nullable = 0;
		if (!(f->fields = rn_calloc(1, sizeof(*f->fields))))
			return RN_ENOMEM;
		f->nfields = 1;
		return build_type(D, x, &f->fields[0], budget);
	}
	return build_type(D, x, f, budget);
}

int rn_protorow_schema_from_descriptor(const uint8_t *desc, size_t len, struct rn_schema *out,
				       char *err, size_t cap)
{
	struct desc D;
	size_t budget = MAX_TOTAL_FIELDS;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = desc_read(&D, desc, len, err, cap)))
		goto out;
	const struct dmsg *m = &D.m[0];
	if (!m->nfields) {
		rc = DBAD(&D, "message %s has no fields", m->path);
		goto out;
	}
	out->root.type = RN_T_STRUCT;
	if (!(out->root.fields = rn_calloc(m->nfields, sizeof(*out->root.fields)))) {
		rc = RN_ENOMEM;
		goto out;
	}
	out->root.nfields = m->nfields;
	for (size_t i = 0; !rc && i < m->nfields; i++)
		rc = build_field(&D, &D.m[0].fields[i], &out->root.fields[i], &budget);
out:
	if (rc)
		rn_schema_free(out);
	desc_free(&D);
	return rc;
}

/* ---- decoding -------------------------------------------------------------------------- */

/* Per slot, while a message is decoded. */
struct sst {
	uint64_t u;          /* the last scalar's value (varint, or fixed bits) */
	uint32_t off, len;   /* the last LEN scalar's bytes (record offsets) */
	uint32_t head, tail; /* runs (arena offset + 1; 0: none) */
	uint32_t count;      /* elements (repeated, map) */
	uint8_t wt, has;
};

/* [off, end) of the record: consecutive occurrences of one field. */
struct run {
	uint32_t off, end, next;
};

struct dctx {
	const struct rn_protoplan *p;
	const uint8_t *rec;
	const struct rn_row_sink *sink;
	char *err;
	size_t cap;
	/* The field path, kept as names and indexes and formatted only when a record fails:
	 * rows that decode pay no formatting. */
	struct {
		const char *name; /* NULL: an index */
		long idx;
	} path[2 * RN_SCHEMA_MAX_DEPTH + 8];
	size_t plen; /* entries in use (may exceed the array; the excess is not recorded) */
	long elem;   /* index of the scalar array element being emitted, or -1 */
	uint8_t *ar; /* the arena: a stack of slot states and runs */
	size_t arlen, arcap;
	int heap;
	size_t nruns;
};

#define SST(d, base, i) ((struct sst *)((d)->ar + (base)) + (i))
#define RUN(d, ref) ((struct run *)((d)->ar + (ref)-1))

__attribute__((format(printf, 2, 3))) static int bad(struct dctx *d, const char *fmt, ...)
{
	char why[160], where[256];
	size_t o = 0, n = d->plen < sizeof(d->path) / sizeof(d->path[0])
				  ? d->plen
				  : sizeof(d->path) / sizeof(d->path[0]);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	where[0] = 0;
	for (size_t i = 0; i <= n && o < sizeof(where); i++) {
		int k;
		if (i == n) /* the scalar array element, if one is being emitted */
			k = d->elem >= 0 ? snprintf(where + o, sizeof(where) - o, "[%ld]", d->elem)
					 : 0;
		else if (d->path[i].name)
			k = snprintf(where + o, sizeof(where) - o, "%s%s", o ? "." : "",
				     d->path[i].name);
		else
			k = snprintf(where + o, sizeof(where) - o, "[%ld]", d->path[i].idx);
		o = k < 0 ? sizeof(where) : o + (size_t)k;
	}
	if (d->cap)
		snprintf(d->err, d->cap, "%s: %s", where[0] ? where : "(record)", why);
	return RN_EINVAL;
}

static size_t dpush(struct dctx *d, const char *name, long idx)
{
	if (d->plen < sizeof(d->path) / sizeof(d->path[0])) {
		d->path[d->plen].name = name;
		d->path[d->plen].idx = idx;
	}
	return d->plen++;
}

static void dpop(struct dctx *d, size_t old)
{
	d->plen = old;
}

/* Reserves n zeroed bytes (8-aligned) on the arena; the offset in *off. Pointers into the
 * arena are invalid after this call. */
static int apush(struct dctx *d, size_t n, size_t *off)
{
	n = (n + 7) & ~(size_t)7;
	if (d->arcap - d->arlen < n) {
		size_t nc = d->arcap * 2;
		while (nc - d->arlen < n)
			nc *= 2;
		uint8_t *na = d->heap ? rn_realloc(d->ar, nc) : rn_malloc(nc);
		if (!na)
			return RN_ENOMEM;
		if (!d->heap)
			memcpy(na, d->ar, d->arlen);
		d->ar = na;
		d->arcap = nc;
		d->heap = 1;
	}
	*off = d->arlen;
	memset(d->ar + d->arlen, 0, n);
	d->arlen += n;
	return 0;
}

static int lookup(const struct pmsg *m, uint32_t num)
{
	if (m->direct)
		return num <= m->maxnum ? (int)m->direct[num] - 1 : -1;
	size_t lo = 0, hi = m->nsorted;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (m->sorted[mid].num == num)
			return (int)m->sorted[mid].slot;
		if (m->sorted[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Elements in a packed run of scalars, checking it is well formed. */
static int packed_count(struct dctx *d, const struct pslot *s, const uint8_t *p, size_t len,
			uint32_t *n)
{
	size_t k = 0;
	if (s->wt == RN_PB_I32 || s->wt == RN_PB_I64) {
		size_t w = s->wt == RN_PB_I32 ? 4 : 8;
		if (len % w)
			return bad(d, "packed %s values of %zu bytes", ptnames[s->ptype], len);
		k = len / w;
	} else {
		for (size_t i = 0; i < len; i++)
			k += !(p[i] & 0x80);
		if (len && (p[len - 1] & 0x80))
			return bad(d, "%s", "truncated packed varint");
	}
	*n = (uint32_t)k;
	return 0;
}

static int wt_mismatch(struct dctx *d, const struct pslot *s, int wt)
{
	return bad(d, "wire type %d does not match the field's type %s", wt, ptnames[s->ptype]);
}

/* Pass one over [start, end): notes each known field in its slot. */
static int collect(struct dctx *d, const struct pmsg *m, size_t base, size_t wbase, size_t start,
		   size_t end)
{
	struct rn_pb_reader r;
	struct rn_pb_field f;
	int rc;

	rn_pb_reader_init(&r, d->rec + start, end - start);
	for (;;) {
		uint32_t fstart = (uint32_t)(r.p - d->rec);
		if ((rc = rn_pb_next(&r, &f)) == 0)
			return 0;
		if (rc < 0)
			return bad(d, "malformed protobuf at byte %u", (unsigned)fstart);
		int i = lookup(m, f.num);
		if (i < 0)
			continue; /* unknown fields are skipped, as protobuf requires */
		const struct pslot *s = &m->slots[i];
		uint32_t fend = (uint32_t)(r.p - d->rec);
		if (s->oneof >= 0) {
			uint32_t *w = (uint32_t *)(d->ar + wbase) + s->oneof;
			if (*w && *w != (uint32_t)i + 1)
				memset(SST(d, base, *w - 1), 0, sizeof(struct sst));
			*w = (uint32_t)i + 1;
		}
		struct sst *st = SST(d, base, i);
		if (s->kind == K_SCALAR) {
			if (f.wt != s->wt) {
				size_t old = dpush(d, s->col->name, 0);
				rc = wt_mismatch(d, s, f.wt);
				dpop(d, old);
				return rc;
			}
			st->wt = (uint8_t)f.wt;
			st->u = f.u;
			st->off = f.ptr ? (uint32_t)(f.ptr - d->rec) : 0;
			st->len = (uint32_t)f.len;
			st->has = 1;
			continue;
		}
		uint32_t n = 1;
		if (s->kind == K_ARRAY && f.wt == RN_PB_LEN && s->packable) {
			size_t old = dpush(d, s->col->name, 0);
			rc = packed_count(d, s, f.ptr, f.len, &n);
			dpop(d, old);
			if (rc)
				return rc;
		} else if (f.wt != (s->kind == K_ARRAY ? s->wt : RN_PB_LEN)) {
			size_t old = dpush(d, s->col->name, 0);
			rc = wt_mismatch(d, s, f.wt);
			dpop(d, old);
			return rc;
		}
		if (st->count > UINT32_MAX - n)
			return bad(d, "%s", "too many elements");
		st->count += n;
		st->has = 1;
		if (st->tail && RUN(d, st->tail)->end == fstart) {
			RUN(d, st->tail)->end = fend;
			continue;
		}
		size_t ro;
		if (++d->nruns > RN_PROTOROW_MAX_RUNS)
			return bad(d, "more than %u interleaved field runs", RN_PROTOROW_MAX_RUNS);
		if ((rc = apush(d, sizeof(struct run), &ro)))
			return rc;
		st = SST(d, base, i); /* the arena may have moved */
		*RUN(d, ro + 1) = (struct run){fstart, fend, 0};
		if (st->tail)
			RUN(d, st->tail)->next = (uint32_t)ro + 1;
		else
			st->head = (uint32_t)ro + 1;
		st->tail = (uint32_t)ro + 1;
	}
}

static int parse_decimal(struct dctx *d, const struct rn_field *f, const char *s, size_t n,
			 rn_i128 *out)
{
	const char *why;
	return rn_decimal_parse(f, s, n, out, &why) ? bad(d, "%s", why) : 0;
}

/* One scalar value of slot s into schema node f. */
static int emit_scalar(struct dctx *d, const struct pslot *s, const struct rn_field *f, uint64_t u,
		       const uint8_t *ptr, size_t len)
{
	const struct rn_row_sink *k = d->sink;
	int64_t v;
	int big = 0;
	int rc;

	switch (s->ptype) {
	case PT_DOUBLE: {
		double x;
		memcpy(&x, &u, 8);
		return k->f64(k->ctx, f, x);
	}
	case PT_FLOAT: {
		float x;
		uint32_t w = (uint32_t)u;
		memcpy(&x, &w, 4);
		return k->f64(k->ctx, f, (double)x);
	}
	case PT_BOOL: return k->i64(k->ctx, f, u != 0);
	case PT_STRING:
		if (f->type == RN_T_DECIMAL) {
			rn_i128 x;
			if ((rc = parse_decimal(d, f, (const char *)ptr, len, &x)))
				return rc;
			return k->dec(k->ctx, f, x);
		}
		if (!rn_utf8_valid(ptr, len))
			return bad(d, "%s", "a string that is not UTF-8");
		return k->bytes(k->ctx, f, ptr, len);
	case PT_BYTES: return k->bytes(k->ctx, f, ptr, len);
	case PT_INT32:
	case PT_ENUM:
	case PT_SFIXED32: v = (int32_t)(uint32_t)u; break;
	case PT_UINT32:
	case PT_FIXED32: v = (uint32_t)u; break;
	case PT_SINT32: {
		uint32_t w = (uint32_t)u;
		v = (int32_t)((w >> 1) ^ (0u - (w & 1)));
		break;
	}
	case PT_SINT64: v = rn_pb_zigzag_dec(u); break;
	case PT_UINT64:
	case PT_FIXED64:
		big = u > (uint64_t)INT64_MAX;
		v = (int64_t)u;
		break;
	default: /* int64, sfixed64 */ v = (int64_t)u; break;
	}
	if (f->type == RN_T_STRING) { /* an enum's value name */
		const struct penum *e = s->en;
		size_t lo = 0, hi = e->n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (e->v[mid].num < v)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == e->n || e->v[lo].num != v)
			return bad(d, "value %lld is not declared in enum %s", (long long)v,
				   e->name);
		return k->bytes(k->ctx, f, e->v[lo].name, e->v[lo].len);
	}
	int64_t lo = INT64_MIN, hi = INT64_MAX;
	switch (f->type) {
	case RN_T_INT:
	case RN_T_DATE: lo = INT32_MIN, hi = INT32_MAX; break;
	case RN_T_SHORT: lo = INT16_MIN, hi = INT16_MAX; break;
	case RN_T_BYTE: lo = INT8_MIN, hi = INT8_MAX; break;
	default: break;
	}
	if (big || v < lo || v > hi)
		return bad(d, "%s", "integer out of range for the column");
	return k->i64(k->ctx, f, v);
}

/* A proto default (map entries only). */
static int emit_default(struct dctx *d, const struct pslot *s, const struct pmsg *entry);
static int decode_msg(struct dctx *d, const struct pmsg *m, uint32_t head, size_t off, size_t end,
		      int single);

/* Each element of a repeated scalar run list. */
static int emit_elems(struct dctx *d, const struct pslot *s, uint32_t head)
{
	const struct rn_field *el = &s->col->fields[0];
	struct rn_pb_reader r;
	struct rn_pb_field f;
	int rc;
	d->elem = 0;
	for (uint32_t ref = head; ref; ref = RUN(d, ref)->next) {
		const struct run *ru = RUN(d, ref);
		rn_pb_reader_init(&r, d->rec + ru->off, ru->end - ru->off);
		while ((rc = rn_pb_next(&r, &f)) == 1) {
			if (f.wt != RN_PB_LEN || !s->packable) {
				if ((rc = emit_scalar(d, s, el, f.u, f.ptr, f.len)))
					return rc;
				d->elem++;
				continue;
			}
			const uint8_t *p = f.ptr, *e = f.ptr + f.len;
			while (p < e) {
				uint64_t u = 0;
				if (s->wt == RN_PB_VARINT) {
					size_t n = rn_pb_varint_dec(p, e, &u);
					if (!n)
						return bad(d, "%s", "malformed packed varint");
					p += n;
				} else if (s->wt == RN_PB_I32) {
					uint32_t w;
					memcpy(&w, p, 4);
					u = w;
					p += 4;
				} else {
					memcpy(&u, p, 8);
					p += 8;
				}
				if ((rc = emit_scalar(d, s, el, u, NULL, 0)))
					return rc;
				d->elem++;
			}
		}
		if (rc < 0)
			return bad(d, "%s", "malformed protobuf");
	}
	d->elem = -1;
	return 0;
}

/* Each occurrence of a repeated message (array element or map entry) as its own message. */
static int emit_msgs(struct dctx *d, const struct pslot *s, uint32_t head)
{
	struct rn_pb_reader r;
	struct rn_pb_field f;
	long i = 0;
	int rc;
	for (uint32_t ref = head; ref; ref = RUN(d, ref)->next) {
		uint32_t off = RUN(d, ref)->off, end = RUN(d, ref)->end;
		rn_pb_reader_init(&r, d->rec + off, end - off);
		while ((rc = rn_pb_next(&r, &f)) == 1) {
			size_t old = dpush(d, NULL, i++);
			size_t po = (size_t)(f.ptr - d->rec);
			if ((rc = decode_msg(d, s->sub, 0, po, po + f.len, 1)))
				return rc;
			dpop(d, old);
		}
		if (rc < 0)
			return bad(d, "%s", "malformed protobuf");
	}
	return 0;
}

static int emit_slot(struct dctx *d, const struct pslot *s, struct sst st)
{
	const struct rn_row_sink *k = d->sink;
	int rc;
	switch (s->kind) {
	case K_SCALAR: return emit_scalar(d, s, s->col, st.u, d->rec + st.off, st.len);
	case K_STRUCT: return decode_msg(d, s->sub, st.head, 0, 0, 0);
	case K_ARRAY:
		if ((rc = k->begin(k->ctx, s->col, st.count)) || (rc = emit_elems(d, s, st.head)))
			return rc;
		return k->end(k->ctx, s->col);
	default: /* K_ARRAY_MSG, K_MAP */
		if ((rc = k->begin(k->ctx, s->col, st.count)) || (rc = emit_msgs(d, s, st.head)))
			return rc;
		return k->end(k->ctx, s->col);
	}
}

static int emit_default(struct dctx *d, const struct pslot *s, const struct pmsg *entry)
{
	(void)entry;
	if (s->kind == K_STRUCT)
		return decode_msg(d, s->sub, 0, 0, 0, 0);
	uint64_t u = s->ptype == PT_ENUM && s->en ? (uint64_t)(uint32_t)s->en->first : 0;
	return emit_scalar(d, s, s->col, u, (const uint8_t *)"", 0);
}

/* Decodes one message: from [off, end) when `single`, else from the payloads of the
 * occurrences in the run list `head` (merged, as protobuf merges a repeated-occurring
 * message field; head 0: an empty message). */
static int decode_msg(struct dctx *d, const struct pmsg *m, uint32_t head, size_t off, size_t end,
		      int single)
{
	const struct rn_row_sink *k = d->sink;
	size_t mark = d->arlen, base, wbase = 0;
	int rc;

	if ((rc = apush(d, m->nslots * sizeof(struct sst), &base)) ||
	    (m->ngroups && (rc = apush(d, (size_t)m->ngroups * sizeof(uint32_t), &wbase))))
		return rc;
	if (single) {
		if ((rc = collect(d, m, base, wbase, off, end)))
			return rc;
	} else {
		struct rn_pb_reader r;
		struct rn_pb_field f;
		/* runs appended while collecting go on top of the arena; this list is below */
		for (uint32_t ref = head; ref; ref = RUN(d, ref)->next) {
			uint32_t ro = RUN(d, ref)->off, re = RUN(d, ref)->end;
			rn_pb_reader_init(&r, d->rec + ro, re - ro);
			while ((rc = rn_pb_next(&r, &f)) == 1) {
				size_t po = (size_t)(f.ptr - d->rec);
				if ((rc = collect(d, m, base, wbase, po, po + f.len)))
					return rc;
				/* collect may move the arena; the reader points into the record */
			}
			if (rc < 0)
				return bad(d, "%s", "malformed protobuf");
		}
	}
	if (!m->entry && (rc = k->begin(k->ctx, m->st, m->nslots)))
		return rc;
	for (size_t i = 0; i < m->nslots; i++) {
		const struct pslot *s = &m->slots[i];
		struct sst st = *SST(d, base, i);
		size_t old = dpush(d, s->col->name ? s->col->name : i ? "value" : "key", 0);
		if (!s->num || !st.has) {
			if (m->entry) {
				rc = emit_default(d, s, m);
			} else if (m == d->p->root && k->missing &&
				   (rc = k->missing(k->ctx, s->col)) != RN_ENOTFOUND) {
				/* supplied by the sink, or its error */
			} else if (s->num && s->required) {
				rc = bad(d, "%s", "missing required field");
			} else if (s->num && (s->kind == K_ARRAY || s->kind == K_ARRAY_MSG ||
					      s->kind == K_MAP)) {
				if (!(rc = k->begin(k->ctx, s->col, 0)))
					rc = k->end(k->ctx, s->col);
			} else {
				rc = s->col->nullable ? k->null(k->ctx, s->col)
						      : bad(d, "%s", "missing NOT NULL column");
			}
		} else {
			rc = emit_slot(d, s, st);
		}
		if (rc)
			return rc;
		dpop(d, old);
	}
	if (!m->entry && (rc = k->end(k->ctx, m->st)))
		return rc;
	d->arlen = mark;
	return 0;
}

int rn_protorow_decode(const struct rn_protoplan *p, const uint8_t *rec, size_t len,
		       const struct rn_row_sink *sink, char *err, size_t cap)
{
	uint64_t stackbuf[512];
	struct dctx d = {.p = p,
			 .rec = rec ? rec : (const uint8_t *)"",
			 .sink = sink,
			 .err = err,
			 .cap = cap,
			 .elem = -1,
			 .ar = (uint8_t *)stackbuf,
			 .arcap = sizeof(stackbuf)};
	int rc;

	if (cap)
		err[0] = 0;
	if (len >= UINT32_MAX)
		return bad(&d, "%s", "record larger than 4 GiB");
	rc = decode_msg(&d, p->root, 0, 0, len, 1);
	if (d.heap)
		rn_free(d.ar);
	return rc;
}
