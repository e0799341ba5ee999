/*
 * The Parquet reader; see pqread.h. Every length and offset read from the file is checked
 * against the bytes that are really there before use, every allocation is charged against
 * max_mem, and the record assembler checks each column cursor before it peeks, so a file
 * whose columns disagree with each other (levels that do not nest, too few entries) is
 * RN_ECORRUPT rather than an out-of-bounds read. Decompressed pages are kept until close
 * because byte-array values point into them.
 */
#include "pqread.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_zstd.h"

#define MAX_NODES 4096
#define MAX_DEPTH 32
#define MAX_RG 65536

struct selem;

struct chunk {
	int codec;
	int64_t num_values;
	int64_t data_off, dict_off; /* dict_off -1 when absent */
	int64_t total;              /* total_compressed_size */
	int64_t utotal;             /* total_uncompressed_size (0 when absent) */
	int type;
};

struct rowgroup {
	int64_t num_rows;
	struct chunk *cols; /* nleaves */
	size_t ncols;
};

struct leafdata {
	size_t n, cap; /* level entries */
	uint8_t *rep, *def;
	struct rn_pqr_value *vals;
	size_t nvals, capvals;
	size_t cur, curv; /* assembly cursors */
};

struct rn_pqr {
	const uint8_t *data;
	size_t len;
	size_t max_mem, used;
	struct rn_pqr_node *nodes;
	size_t nnodes;
	size_t *leaf_node; /* leaf number -> node index */
	size_t nleaves;
	int64_t num_rows;
	struct rowgroup *rgs;
	size_t nrg;
	struct leafdata *ld;
	struct rn_buf *bufs; /* decompressed pages, alive until close */
	size_t nbufs, capbufs;
	int read_done;
	struct selem *el; /* flat schema while opening */
	char err[256];
};

static int fail(struct rn_pqr *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct rn_pqr *r, int rc, const char *fmt, ...)
{
	va_list ap;
	if (r->err[0])
		return rc; /* the first reason is the one reported */
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return rc;
}

static void *charge(struct rn_pqr *r, size_t n, size_t size)
{
	if (size && n > (r->max_mem - r->used) / size) {
		fail(r, RN_ENOMEM, "file needs more than %zu bytes of memory to read", r->max_mem);
		return NULL;
	}
	void *p = rn_calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fail(r, RN_ENOMEM, "out of memory");
		return NULL;
	}
	r->used += n * size;
	return p;
}

/* ---- Thrift compact ---- */

struct tr {
	const uint8_t *p, *end;
};

static int tr_varint(struct tr *t, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (t->p >= t->end)
			return -1;
		uint8_t b = *t->p++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

static int tr_int(struct tr *t, int64_t *v)
{
	uint64_t z;
	if (tr_varint(t, &z))
		return -1;
	*v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
	return 0;
}

/* Reads a field header: 0 with the field id and type, 1 at the stop byte, -1 on error. */
static int tr_field(struct tr *t, int64_t *last, int64_t *fid, int *type)
{
	if (t->p >= t->end)
		return -1;
	uint8_t h = *t->p++;
	if (h == 0)
		return 1;
	*type = h & 0x0f;
	if (h >> 4) {
		*fid = *last + (h >> 4);
	} else if (tr_int(t, fid)) {
		return -1;
	}
	*last = *fid;
	return 0;
}

static int tr_skip(struct tr *t, int type, int in_list, int depth);

static int tr_skip_struct(struct tr *t, int depth)
{
	int64_t last = 0, fid;
	int type, rc;
	if (depth > MAX_DEPTH)
		return -1;
	while ((rc = tr_field(t, &last, &fid, &type)) == 0)
		if (tr_skip(t, type, 0, depth + 1))
			return -1;
	return rc == 1 ? 0 : -1;
}

static int tr_list(struct tr *t, int *etype, uint64_t *size)
{
	if (t->p >= t->end)
		return -1;
	uint8_t h = *t->p++;
	*etype = h & 0x0f;
	*size = h >> 4;
	if (*size == 15 && tr_varint(t, size))
		return -1;
	return *size > (uint64_t)(t->end - t->p) ? -1 : 0; /* each element takes >= 1 byte */
}

static int tr_skip(struct tr *t, int type, int in_list, int depth)
{
	uint64_t v;
	if (depth > MAX_DEPTH)
		return -1;
	switch (type) {
	case 1:
	case 2:
		if (!in_list)
			return 0;
		/* fall through */
	case 3:
		if (t->p >= t->end)
			return -1;
		t->p++;
		return 0;
	case 4:
	case 5:
	case 6: return tr_varint(t, &v);
	case 7:
		if (t->end - t->p < 8)
			return -1;
		t->p += 8;
		return 0;
	case 8:
		if (tr_varint(t, &v) || v > (uint64_t)(t->end - t->p))
			return -1;
		t->p += v;
		return 0;
	case 9:
	case 10: {
		int et;
		if (tr_list(t, &et, &v))
			return -1;
		for (uint64_t i = 0; i < v; i++)
			if (tr_skip(t, et, 1, depth + 1))
				return -1;
		return 0;
	}
	case 11: {
		if (tr_varint(t, &v))
			return -1;
		if (v == 0)
			return 0;
		if (v > (uint64_t)(t->end - t->p) || t->p >= t->end)
			return -1;
		uint8_t kv = *t->p++;
		for (uint64_t i = 0; i < v; i++)
			if (tr_skip(t, kv >> 4, 1, depth + 1) ||
			    tr_skip(t, kv & 0x0f, 1, depth + 1))
				return -1;
		return 0;
	}
	case 12: return tr_skip_struct(t, depth + 1);
	case 13:
		if (t->end - t->p < 16)
			return -1;
		t->p += 16;
		return 0;
	default: return -1;
	}
}

static int tr_i32f(struct tr *t, int type, int64_t *v)
{
	if (type != 5 && type != 4 && type != 6)
		return -1;
	if (tr_int(t, v))
		return -1;
	return 0;
}

/* ---- footer ---- */

struct selem {
	int type, type_length, repetition, converted, logical, ts_utc, ts_unit, int_bits;
	int scale, precision;
	int64_t nchildren;
	const uint8_t *name;
	size_t name_len;
};

static int parse_logical(struct tr *t, struct selem *e)
{
	int64_t last = 0, fid, v;
	int type, rc;
	while ((rc = tr_field(t, &last, &fid, &type)) == 0) {
		if (type != 12)
			return -1;
		e->logical = (int)fid;
		/* the member struct */
		int64_t l2 = 0, f2;
		int t2, rc2;
		while ((rc2 = tr_field(t, &l2, &f2, &t2)) == 0) {
			if (fid == 8 && f2 == 1 && (t2 == 1 || t2 == 2)) {
				e->ts_utc = t2 == 1;
			} else if (fid == 8 && f2 == 2 && t2 == 12) {
				int64_t l3 = 0, f3;
				int t3, rc3;
				while ((rc3 = tr_field(t, &l3, &f3, &t3)) == 0) {
					e->ts_unit = (int)f3;
					if (tr_skip(t, t3, 0, 2))
						return -1;
				}
				if (rc3 != 1)
					return -1;
			} else if (fid == 10 && f2 == 1 && t2 == 3) {
				if (t->p >= t->end)
					return -1;
				e->int_bits = (int8_t)*t->p++;
			} else if (fid == 5 && (f2 == 1 || f2 == 2) && t2 == 5) {
				if (tr_int(t, &v))
					return -1;
				if (f2 == 1)
					e->scale = (int)v;
				else
					e->precision = (int)v;
			} else if (tr_skip(t, t2, 0, 1)) {
				return -1;
			}
		}
		if (rc2 != 1)
			return -1;
	}
	return rc == 1 ? 0 : -1;
}

static int parse_selem(struct tr *t, struct selem *e)
{
	int64_t last = 0, fid, v;
	int type, rc;
	memset(e, 0, sizeof(*e));
	e->type = -1;
	e->converted = -1;
	e->repetition = 0;
	while ((rc = tr_field(t, &last, &fid, &type)) == 0) {
		switch (fid) {
		case 1:
		case 2:
		case 3:
		case 5:
		case 6:
		case 7:
		case 8:
			if (tr_i32f(t, type, &v) || v < INT32_MIN || v > INT32_MAX)
				return -1;
			if (fid == 1)
				e->type = (int)v;
			else if (fid == 2)
				e->type_length = (int)v;
			else if (fid == 3)
				e->repetition = (int)v;
			else if (fid == 5)
				e->nchildren = v;
			else if (fid == 6)
				e->converted = (int)v;
			else if (fid == 7)
				e->scale = (int)v;
			else
				e->precision = (int)v;
			break;
		case 4: {
			uint64_t n;
			if (type != 8 || tr_varint(t, &n) || n > (uint64_t)(t->end - t->p))
				return -1;
			e->name = t->p;
			e->name_len = (size_t)n;
			t->p += n;
			break;
		}
		case 10:
			if (type != 12 || parse_logical(t, e))
				return -1;
			break;
		default:
			if (tr_skip(t, type, 0, 1))
				return -1;
		}
	}
	return rc == 1 ? 0 : -1;
}

static int parse_colmeta(struct tr *t, struct chunk *c)
{
	int64_t last = 0, fid, v;
	int type, rc;
	c->dict_off = -1;
	c->data_off = -1;
	c->num_values = -1;
	c->total = -1;
	c->utotal = 0;
	c->type = -1;
	c->codec = -1;
	while ((rc = tr_field(t, &last, &fid, &type)) == 0) {
		if (fid == 1 || fid == 4) {
			if (tr_i32f(t, type, &v))
				return -1;
			if (fid == 1)
				c->type = (int)v;
			else
				c->codec = (int)v;
		} else if (fid == 5 || fid == 6 || fid == 7 || fid == 9 || fid == 11) {
			if (type != 6 || tr_int(t, &v))
				return -1;
			if (fid == 5)
				c->num_values = v;
			else if (fid == 6)
				c->utotal = v > 0 ? v : 0;
			else if (fid == 7)
				c->total = v;
			else if (fid == 9)
				c->data_off = v;
			else
				c->dict_off = v;
		} else if (tr_skip(t, type, 0, 1)) {
			return -1;
		}
	}
	return rc == 1 && c->type >= 0 && c->codec >= 0 && c->num_values >= 0 && c->total >= 0 &&
			       c->data_off >= 0
		       ? 0
		       : -1;
}

static int parse_rowgroup(struct rn_pqr *r, struct tr *t, struct rowgroup *g)
{
	int64_t last = 0, fid;
	int type, rc;
	g->num_rows = -1;
	while ((rc = tr_field(t, &last, &fid, &type)) == 0) {
		if (fid == 1 && type == 9) {
			int et;
			uint64_t n;
			if (tr_list(t, &et, &n) || et != 12 || g->cols)
				return -1;
			if (!(g->cols = charge(r, (size_t)n, sizeof(*g->cols))))
				return RN_ENOMEM;
			g->ncols = (size_t)n;
			for (size_t i = 0; i < g->ncols; i++) {
				int64_t l2 = 0, f2;
				int t2, rc2, have = 0;
				while ((rc2 = tr_field(t, &l2, &f2, &t2)) == 0) {
					if (f2 == 3 && t2 == 12) {
						if (parse_colmeta(t, &g->cols[i]))
							return -1;
						have = 1;
					} else if (tr_skip(t, t2, 0, 1)) {
						return -1;
					}
				}
				if (rc2 != 1 || !have)
					return -1;
			}
		} else if (fid == 3 && type == 6) {
			if (tr_int(t, &g->num_rows))
				return -1;
		} else if (tr_skip(t, type, 0, 1)) {
			return -1;
		}
	}
	return rc == 1 && g->cols && g->num_rows >= 0 ? 0 : -1;
}

/* Builds node i (and its subtree) from the flat schema elements. */
static int build_node(struct rn_pqr *r, const struct selem *el, size_t nel, size_t *pos,
		      size_t parent, size_t index, int depth)
{
	if (depth > MAX_DEPTH)
		return fail(r, RN_ENOTSUP, "schema nested deeper than %d", MAX_DEPTH);
	if (*pos >= nel)
		return fail(r, RN_ECORRUPT, "schema ends early");
	const struct selem *e = &el[*pos];
	size_t me = (*pos)++;
	struct rn_pqr_node *n = &r->nodes[me];
	if (!(n->name = charge(r, e->name_len + 1, 1)))
		return RN_ENOMEM;
	if (e->name_len)
		memcpy(n->name, e->name, e->name_len);
	n->physical = e->nchildren > 0 ? -1 : e->type;
	n->repetition = me == 0 ? 0 : e->repetition;
	n->converted = e->converted;
	n->logical = e->logical;
	n->ts_utc = e->ts_utc;
	n->ts_unit = e->ts_unit;
	n->int_bits = e->int_bits;
	n->scale = e->scale;
	n->precision = e->precision;
	n->type_length = e->type_length;
	n->parent = parent;
	n->index = index;
	if (n->repetition < 0 || n->repetition > 2)
		return fail(r, RN_ECORRUPT, "bad repetition type");
	if (me) {
		const struct rn_pqr_node *p = &r->nodes[parent];
		n->def = p->def + (n->repetition != 0);
		n->rep = p->rep + (n->repetition == 2);
	}
	if (me == 0 && e->nchildren <= 0)
		return fail(r, RN_ECORRUPT, "schema root has no children");
	if (e->nchildren > 0) {
		n->first_child = *pos;
		n->nchildren = (size_t)e->nchildren;
		if (n->nchildren > MAX_NODES)
			return fail(r, RN_ECORRUPT, "too many children");
		for (size_t i = 0; i < n->nchildren; i++) {
			int rc = build_node(r, el, nel, pos, me, i, depth + 1);
			if (rc)
				return rc;
		}
		n = &r->nodes[me];
		int is_list = e->logical == 3 || e->converted == 3;
		int is_map = e->logical == 2 || e->converted == 1 || e->converted == 2;
		if (me == 0)
			n->kind = RN_PQR_STRUCT;
		else if (n->repetition == 2)
			n->kind = RN_PQR_REPEATED; /* checked by its parent below */
		else if (is_list || is_map)
			n->kind = is_list ? RN_PQR_LIST : RN_PQR_MAP;
		else
			n->kind = RN_PQR_STRUCT;
		if (n->kind == RN_PQR_LIST || n->kind == RN_PQR_MAP) {
			const struct rn_pqr_node *c = &r->nodes[n->first_child];
			size_t want = n->kind == RN_PQR_LIST ? 1 : 2;
			if (n->nchildren != 1 || c->kind != RN_PQR_REPEATED || c->nchildren < 1 ||
			    c->nchildren > want)
				return fail(r, RN_ENOTSUP, "%s %s is not in the 3-level form",
					    is_list ? "LIST" : "MAP", n->name);
			if (n->kind == RN_PQR_MAP && r->nodes[c->first_child].repetition != 0)
				return fail(r, RN_ENOTSUP, "MAP %s has an optional key", n->name);
		} else {
			for (size_t i = n->first_child; i < *pos; i = r->nodes[i].end)
				if (r->nodes[i].repetition == 2 && r->nodes[i].parent == me)
					return fail(r, RN_ENOTSUP,
						    "repeated field %s outside a LIST or MAP",
						    r->nodes[i].name);
		}
	} else {
		n->kind = RN_PQR_LEAF;
		if (n->repetition == 2)
			return fail(r, RN_ENOTSUP, "repeated primitive %s", n->name);
		if (e->type < 0 || e->type > RN_PQR_FLBA)
			return fail(r, RN_ECORRUPT, "leaf %s has no valid type", n->name);
		if (e->type == RN_PQR_INT96)
			return fail(r, RN_ENOTSUP, "INT96 column %s", n->name);
		if (e->type == RN_PQR_FLBA && (e->type_length <= 0 || e->type_length > 1024))
			return fail(r, RN_ECORRUPT, "bad FIXED_LEN_BYTE_ARRAY length");
		n->leaf = r->nleaves++;
	}
	r->nodes[me].end = *pos;
	return 0;
}

int rn_pqr_open(struct rn_pqr **out, const uint8_t *data, size_t len, size_t max_mem)
{
	struct rn_pqr *r = rn_calloc(1, sizeof(*r));
	struct selem *el = NULL;
	size_t nel = 0;
	int rc = 0;

	*out = r;
	if (!r)
		return RN_ENOMEM;
	r->data = data;
	r->len = len;
	r->max_mem = max_mem ? max_mem : (size_t)256 << 20;
	r->num_rows = -1;
	if (len < 12 || memcmp(data, "PAR1", 4) || memcmp(data + len - 4, "PAR1", 4))
		return fail(r, RN_ECORRUPT, "not a Parquet file (no PAR1 magic)");
	uint32_t fl = (uint32_t)data[len - 8] | (uint32_t)data[len - 7] << 8 |
		      (uint32_t)data[len - 6] << 16 | (uint32_t)data[len - 5] << 24;
	if ((uint64_t)fl + 12 > len)
		return fail(r, RN_ECORRUPT, "footer length %u does not fit", fl);
	struct tr t = {data + len - 8 - fl, data + len - 8};
	int64_t last = 0, fid;
	int type, frc;
	while ((frc = tr_field(&t, &last, &fid, &type)) == 0) {
		if (fid == 2 && type == 9) {
			int et;
			uint64_t n;
			if (tr_list(&t, &et, &n) || et != 12 || el || n == 0)
				goto bad;
			if (n > MAX_NODES)
				return fail(r, RN_ENOTSUP, "more than %d schema nodes", MAX_NODES);
			if (!(el = r->el = charge(r, (size_t)n, sizeof(*el))))
				return RN_ENOMEM;
			nel = (size_t)n;
			for (size_t i = 0; i < nel; i++)
				if (parse_selem(&t, &el[i]))
					goto bad;
		} else if (fid == 3 && type == 6) {
			if (tr_int(&t, &r->num_rows))
				goto bad;
		} else if (fid == 4 && type == 9) {
			int et;
			uint64_t n;
			if (tr_list(&t, &et, &n) || et != 12 || r->rgs)
				goto bad;
			if (n > MAX_RG)
				return fail(r, RN_ENOTSUP, "more than %d row groups", MAX_RG);
			if (!(r->rgs = charge(r, (size_t)n, sizeof(*r->rgs))))
				return RN_ENOMEM;
			r->nrg = (size_t)n;
			for (size_t i = 0; i < r->nrg; i++)
				if ((rc = parse_rowgroup(r, &t, &r->rgs[i])))
					return rc == RN_ENOMEM
						       ? rc
						       : fail(r, RN_ECORRUPT, "bad row group");
		} else if (tr_skip(&t, type, 0, 0)) {
			goto bad;
		}
	}
	if (frc != 1 || !el || r->num_rows < 0)
		goto bad;
	if (!(r->nodes = charge(r, nel, sizeof(*r->nodes))))
		return RN_ENOMEM;
	r->nnodes = nel;
	size_t pos = 0;
	if ((rc = build_node(r, el, nel, &pos, 0, 0, 0)))
		return rc;
	if (pos != nel)
		return fail(r, RN_ECORRUPT, "schema has nodes outside the tree");
	if (!(r->leaf_node = charge(r, r->nleaves, sizeof(size_t))))
		return RN_ENOMEM;
	for (size_t i = 0; i < nel; i++)
		if (r->nodes[i].kind == RN_PQR_LEAF)
			r->leaf_node[r->nodes[i].leaf] = i;
	int64_t rows = 0;
	for (size_t g = 0; g < r->nrg; g++) {
		if (r->rgs[g].ncols != r->nleaves)
			return fail(r, RN_ECORRUPT, "row group %zu has %zu columns, schema %zu", g,
				    r->rgs[g].ncols, r->nleaves);
		if (r->rgs[g].num_rows > INT64_MAX - rows)
			goto bad;
		rows += r->rgs[g].num_rows;
		for (size_t c = 0; c < r->nleaves; c++) {
			const struct chunk *ch = &r->rgs[g].cols[c];
			if (ch->type != r->nodes[r->leaf_node[c]].physical)
				return fail(r, RN_ECORRUPT, "column %zu: type differs from schema",
					    c);
			if (ch->codec != 0 && ch->codec != 6)
				return fail(r, RN_ENOTSUP, "column %zu: codec %d (only zstd, none)",
					    c, ch->codec);
		}
	}
	if (rows != r->num_rows)
		return fail(r, RN_ECORRUPT, "row groups hold %lld rows, footer says %lld",
			    (long long)rows, (long long)r->num_rows);
	rn_free(el);
	r->el = NULL;
	r->used -= nel * sizeof(*el);
	return 0;
bad:
	return fail(r, RN_ECORRUPT, "footer is not valid Thrift compact FileMetaData");
}

void rn_pqr_close(struct rn_pqr *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nnodes; i++)
		rn_free(r->nodes[i].name);
	rn_free(r->nodes);
	rn_free(r->el);
	rn_free(r->leaf_node);
	for (size_t i = 0; i < r->nrg; i++)
		rn_free(r->rgs[i].cols);
	rn_free(r->rgs);
	if (r->ld)
		for (size_t i = 0; i < r->nleaves; i++) {
			rn_free(r->ld[i].rep);
			rn_free(r->ld[i].def);
			rn_free(r->ld[i].vals);
		}
	rn_free(r->ld);
	for (size_t i = 0; i < r->nbufs; i++)
		rn_buf_free(&r->bufs[i]);
	rn_free(r->bufs);
	rn_free(r);
}

const char *rn_pqr_errmsg(const struct rn_pqr *r)
{
	return r ? r->err : "out of memory";
}

int rn_pqr_footer_num_rows(const uint8_t *meta, size_t len, int64_t *num_rows)
{
	struct tr t = {meta, meta + len};
	int64_t last = 0, fid, rows = -1;
	int type, frc;
	while ((frc = tr_field(&t, &last, &fid, &type)) == 0) {
		if (fid == 3 && type == 6) {
			if (tr_int(&t, &rows))
				return RN_ECORRUPT;
		} else if (tr_skip(&t, type, 0, 0)) {
			return RN_ECORRUPT;
		}
	}
	if (frc != 1 || rows < 0)
		return RN_ECORRUPT;
	*num_rows = rows;
	return 0;
}

int64_t rn_pqr_num_rows(const struct rn_pqr *r)
{
	return r->num_rows;
}

const struct rn_pqr_node *rn_pqr_nodes(const struct rn_pqr *r, size_t *n)
{
	*n = r->nnodes;
	return r->nodes;
}

/* ---- pages ---- */

static int bit_width(int max)
{
	int w = 0;
	while (max >> w)
		w++;
	return w;
}

/* RLE/bit-packed hybrid: decodes n values of width bw from [p, end) into out. */
static int rle_decode(const uint8_t *p, const uint8_t *end, int bw, size_t n, uint32_t *out)
{
	size_t got = 0;
	struct tr t = {p, end};
	if (bw > 32)
		return -1;
	while (got < n) {
		uint64_t h;
		if (tr_varint(&t, &h))
			return -1;
		if (h & 1) {
			uint64_t groups = h >> 1;
			if (groups == 0 || groups > (uint64_t)(t.end - t.p) + 1)
				return -1;
			uint64_t bytes = groups * (uint64_t)bw;
			if (bytes > (uint64_t)(t.end - t.p))
				return -1;
			uint64_t cnt = groups * 8;
			for (uint64_t i = 0; i < cnt && got < n; i++) {
				uint64_t v = 0;
				for (int b = 0; b < bw; b++) {
					uint64_t bit = i * (uint64_t)bw + (uint64_t)b;
					v |= (uint64_t)((t.p[bit >> 3] >> (bit & 7)) & 1) << b;
				}
				out[got++] = (uint32_t)v;
			}
			t.p += bytes;
		} else {
			uint64_t cnt = h >> 1;
			int nb = (bw + 7) / 8;
			if (cnt == 0 || t.end - t.p < nb)
				return -1;
			uint32_t v = 0;
			for (int b = 0; b < nb; b++)
				v |= (uint32_t)t.p[b] << (8 * b);
			t.p += nb;
			if (bw < 32 && (v >> bw))
				return -1;
			for (uint64_t i = 0; i < cnt && got < n; i++)
				out[got++] = v;
		}
	}
	return 0;
}

static int keep_buf(struct rn_pqr *r, struct rn_buf *b)
{
	if (rn_grow(&r->bufs, &r->capbufs, r->nbufs, sizeof(*r->bufs), 16, SIZE_MAX))
		return fail(r, RN_ENOMEM, "out of memory");
	r->bufs[r->nbufs++] = *b;
	return 0;
}

/* PLAIN-decodes n values of node `nd` from [p, end) into out; *used gets the bytes read. */
static int plain_decode(struct rn_pqr *r, const struct rn_pqr_node *nd, const uint8_t *p,
			const uint8_t *end, size_t n, struct rn_pqr_value *out)
{
	size_t avail = (size_t)(end - p);
	switch (nd->physical) {
	case RN_PQR_BOOLEAN:
		if ((n + 7) / 8 > avail)
			goto short_;
		for (size_t i = 0; i < n; i++)
			out[i].i = (p[i >> 3] >> (i & 7)) & 1;
		return 0;
	case RN_PQR_INT32:
	case RN_PQR_FLOAT:
		if (n > avail / 4)
			goto short_;
		for (size_t i = 0; i < n; i++) {
			uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
				     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
			if (nd->physical == RN_PQR_INT32) {
				out[i].i = (int32_t)u;
			} else {
				float f;
				memcpy(&f, &u, 4);
				out[i].d = f;
			}
		}
		return 0;
	case RN_PQR_INT64:
	case RN_PQR_DOUBLE:
		if (n > avail / 8)
			goto short_;
		for (size_t i = 0; i < n; i++) {
			uint64_t u = 0;
			for (int b = 7; b >= 0; b--)
				u = u << 8 | p[8 * i + (size_t)b];
			if (nd->physical == RN_PQR_INT64)
				out[i].i = (int64_t)u;
			else
				memcpy(&out[i].d, &u, 8);
		}
		return 0;
	case RN_PQR_BYTE_ARRAY:
		for (size_t i = 0; i < n; i++) {
			if (avail < 4)
				goto short_;
			uint32_t l = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24;
			p += 4;
			avail -= 4;
			if (l > avail)
				goto short_;
			out[i].p = p;
			out[i].len = l;
			p += l;
			avail -= l;
		}
		return 0;
	case RN_PQR_FLBA:
		if (n > avail / (size_t)nd->type_length)
			goto short_;
		for (size_t i = 0; i < n; i++) {
			out[i].p = p + i * (size_t)nd->type_length;
			out[i].len = (size_t)nd->type_length;
		}
		return 0;
	default: return fail(r, RN_ENOTSUP, "column %s: unsupported type", nd->name);
	}
short_:
	return fail(r, RN_ECORRUPT, "column %s: page values run past the page", nd->name);
}

struct pagehdr {
	int type;
	int64_t usize, csize;
	int64_t num_values;
	int encoding;
	int has_data, has_dict;
};

static int parse_pagehdr(struct tr *t, struct pagehdr *h)
{
	int64_t last = 0, fid, v;
	int type, rc;
	memset(h, 0, sizeof(*h));
	h->type = -1;
	h->usize = h->csize = -1;
	while ((rc = tr_field(t, &last, &fid, &type)) == 0) {
		if (fid >= 1 && fid <= 3) {
			if (tr_i32f(t, type, &v))
				return -1;
			if (fid == 1)
				h->type = (int)v;
			else if (fid == 2)
				h->usize = v;
			else
				h->csize = v;
		} else if ((fid == 5 || fid == 7) && type == 12) {
			int64_t l2 = 0, f2;
			int t2, rc2;
			while ((rc2 = tr_field(t, &l2, &f2, &t2)) == 0) {
				if (f2 == 1 || f2 == 2) {
					if (tr_i32f(t, t2, &v))
						return -1;
					if (f2 == 1)
						h->num_values = v;
					else
						h->encoding = (int)v;
				} else if (tr_skip(t, t2, 0, 1)) {
					return -1;
				}
			}
			if (rc2 != 1)
				return -1;
			if (fid == 5)
				h->has_data = 1;
			else
				h->has_dict = 1;
		} else if (tr_skip(t, type, 0, 1)) {
			return -1;
		}
	}
	return rc == 1 && h->type >= 0 && h->usize >= 0 && h->csize >= 0 ? 0 : -1;
}

static int grow_leaf(struct rn_pqr *r, struct leafdata *ld, size_t more)
{
	if (more > SIZE_MAX / 4 - ld->n)
		return fail(r, RN_ECORRUPT, "too many values");
	if (ld->n + more <= ld->cap && ld->rep)
		return 0;
	size_t nc = ld->cap ? ld->cap : 64;
	while (nc < ld->n + more)
		nc *= 2;
	size_t add = (nc - ld->cap) * (2 + sizeof(struct rn_pqr_value));
	if (add > r->max_mem - r->used)
		return fail(r, RN_ENOMEM, "file needs more than %zu bytes of memory to read",
			    r->max_mem);
	uint8_t *a = rn_realloc(ld->rep, nc), *b = a ? rn_realloc(ld->def, nc) : NULL;
	if (a)
		ld->rep = a;
	if (b)
		ld->def = b;
	struct rn_pqr_value *v = b ? rn_reallocarray(ld->vals, nc, sizeof(*v)) : NULL;
	if (!v)
		return fail(r, RN_ENOMEM, "out of memory");
	ld->vals = v;
	r->used += add;
	ld->cap = nc;
	ld->capvals = nc;
	return 0;
}

static int read_chunk(struct rn_pqr *r, size_t leaf, const struct chunk *c)
{
	const struct rn_pqr_node *nd = &r->nodes[r->leaf_node[leaf]];
	struct leafdata *ld = &r->ld[leaf];
	struct rn_pqr_value *dict = NULL;
	size_t ndict = 0;
	uint32_t *tmp = NULL;
	int rc = 0;
	int64_t start = c->dict_off >= 0 ? c->dict_off : c->data_off;
	if (start < 4 || c->total < 0 || (uint64_t)start > r->len - 8 ||
	    (uint64_t)c->total > r->len - 8 - (uint64_t)start)
		return fail(r, RN_ECORRUPT, "column %s: chunk outside the file", nd->name);
	struct tr t = {r->data + start, r->data + start + c->total};
	int64_t seen = 0;
	while (seen < c->num_values) {
		struct pagehdr h;
		if (parse_pagehdr(&t, &h) || h.csize > t.end - t.p) {
			rc = fail(r, RN_ECORRUPT, "column %s: bad page header", nd->name);
			break;
		}
		const uint8_t *body = t.p, *bend;
		t.p += h.csize;
		if (h.type == 1)
			continue; /* index page */
		if (h.type == 3) {
			rc = fail(r, RN_ENOTSUP, "column %s: data page v2", nd->name);
			break;
		}
		if (c->codec == 6) {
			struct rn_buf b = {0};
			if (h.usize > (int64_t)(r->max_mem - r->used)) {
				rc = fail(r, RN_ENOMEM, "page too large");
				break;
			}
			/* exactly the page (+1 to detect a longer one), not a doubled buffer */
			if (rn_buf_reserve(&b, (size_t)h.usize + 1)) {
				rc = fail(r, RN_ENOMEM, "out of memory");
				break;
			}
			if (rn_zstd_decompress(&b, body, (size_t)h.csize, (size_t)h.usize) ||
			    b.len != (size_t)h.usize) {
				rn_buf_free(&b);
				rc = fail(r, RN_ECORRUPT, "column %s: bad zstd page", nd->name);
				break;
			}
			r->used += b.cap;
			if ((rc = keep_buf(r, &b))) {
				rn_buf_free(&b);
				break;
			}
			body = b.data ? b.data : (const uint8_t *)"";
			bend = body + b.len;
		} else {
			if (h.usize != h.csize) {
				rc = fail(r, RN_ECORRUPT, "column %s: page sizes differ", nd->name);
				break;
			}
			bend = body + h.csize;
		}
		if (h.type == 2) {
			if (!h.has_dict || dict || h.num_values < 0 ||
			    (uint64_t)h.num_values > (uint64_t)(bend - body) + 1 ||
			    h.encoding > 2) {
				rc = fail(r, RN_ECORRUPT, "column %s: bad dictionary page",
					  nd->name);
				break;
			}
			ndict = (size_t)h.num_values;
			if (!(dict = charge(r, ndict, sizeof(*dict)))) {
				rc = RN_ENOMEM;
				break;
			}
			if ((rc = plain_decode(r, nd, body, bend, ndict, dict)))
				break;
			continue;
		}
		if (h.type != 0 || !h.has_data || h.num_values < 0 ||
		    h.num_values > c->num_values - seen) {
			rc = fail(r, RN_ECORRUPT, "column %s: bad data page", nd->name);
			break;
		}
		size_t n = (size_t)h.num_values;
		if ((rc = grow_leaf(r, ld, n)))
			break;
		rn_free(tmp);
		if (!(tmp = rn_calloc(n ? n : 1, sizeof(uint32_t)))) {
			rc = fail(r, RN_ENOMEM, "out of memory");
			break;
		}
		const uint8_t *q = body;
		for (int pass = 0; pass < 2; pass++) {
			int maxl = pass == 0 ? nd->rep : nd->def;
			uint8_t *dst = (pass == 0 ? ld->rep : ld->def) + ld->n;
			if (maxl == 0) {
				if (n)
					memset(dst, 0, n);
				continue;
			}
			if (bend - q < 4) {
				rc = fail(r, RN_ECORRUPT, "column %s: levels run past the page",
					  nd->name);
				break;
			}
			uint32_t l = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
				     (uint32_t)q[3] << 24;
			q += 4;
			if (l > (uint64_t)(bend - q) ||
			    rle_decode(q, q + l, bit_width(maxl), n, tmp)) {
				rc = fail(r, RN_ECORRUPT, "column %s: bad level data", nd->name);
				break;
			}
			q += l;
			for (size_t i = 0; i < n; i++) {
				if (tmp[i] > (uint32_t)maxl) {
					rc = fail(r, RN_ECORRUPT, "column %s: level above max",
						  nd->name);
					break;
				}
				dst[i] = (uint8_t)tmp[i];
			}
			if (rc)
				break;
		}
		if (rc)
			break;
		size_t present = 0;
		for (size_t i = 0; i < n; i++)
			present += ld->def[ld->n + i] == nd->def;
		struct rn_pqr_value *vo = ld->vals + ld->nvals;
		if (present)
			memset(vo, 0, present * sizeof(*vo));
		if (h.encoding == 0) {
			if ((rc = plain_decode(r, nd, q, bend, present, vo)))
				break;
		} else if (h.encoding == 8 || h.encoding == 2) {
			if (!dict) {
				rc = fail(r, RN_ECORRUPT,
					  "column %s: dictionary indices without "
					  "a dictionary",
					  nd->name);
				break;
			}
			if (present) {
				if (q >= bend || rle_decode(q + 1, bend, *q, present, tmp)) {
					rc = fail(r, RN_ECORRUPT,
						  "column %s: bad dictionary indices", nd->name);
					break;
				}
				for (size_t i = 0; i < present; i++) {
					if (tmp[i] >= ndict) {
						rc = fail(
							r, RN_ECORRUPT,
							"column %s: dictionary index out of range",
							nd->name);
						break;
					}
					vo[i] = dict[tmp[i]];
				}
				if (rc)
					break;
			}
		} else {
			rc = fail(r, RN_ENOTSUP, "column %s: encoding %d", nd->name, h.encoding);
			break;
		}
		ld->n += n;
		ld->nvals += present;
		seen += (int64_t)n;
	}
	rn_free(tmp);
	rn_free(dict); /* values were copied out of it; their bytes live in kept buffers */
	return rc;
}

/* ---- assembly ---- */

struct asmb {
	struct rn_pqr *r;
	const struct rn_pqr_sink *s;
	void *ctx;
};

static size_t first_leaf(const struct rn_pqr *r, size_t node)
{
	while (r->nodes[node].kind != RN_PQR_LEAF)
		node = r->nodes[node].first_child;
	return r->nodes[node].leaf;
}

static int peek(struct rn_pqr *r, size_t leaf, int *rep, int *def)
{
	struct leafdata *ld = &r->ld[leaf];
	if (ld->cur >= ld->n)
		return fail(r, RN_ECORRUPT, "column %s has too few entries",
			    r->nodes[r->leaf_node[leaf]].name);
	*rep = ld->rep[ld->cur];
	*def = ld->def[ld->cur];
	return 0;
}

/* Consumes the one entry every leaf under `node` has for an absent or empty node. */
static int skip_subtree(struct rn_pqr *r, size_t node, int def)
{
	for (size_t i = node; i < r->nodes[node].end; i++) {
		if (r->nodes[i].kind != RN_PQR_LEAF)
			continue;
		struct leafdata *ld = &r->ld[r->nodes[i].leaf];
		if (ld->cur >= ld->n || ld->def[ld->cur] != def)
			return fail(r, RN_ECORRUPT, "column %s: levels disagree with its siblings",
				    r->nodes[i].name);
		ld->cur++;
	}
	return 0;
}

static int read_node(struct asmb *a, size_t ni)
{
	struct rn_pqr *r = a->r;
	const struct rn_pqr_node *n = &r->nodes[ni];
	int rep = 0, def = 0, rc; /* set by peek(); gcc -O2 cannot see it */
	size_t lf = first_leaf(r, ni);
	if ((rc = peek(r, lf, &rep, &def)))
		return rc;
	if (def < n->def) {
		if (n->repetition != 1)
			return fail(r, RN_ECORRUPT, "required %s is missing", n->name);
		if ((rc = skip_subtree(r, ni, def)))
			return rc;
		return a->s->null ? a->s->null(a->ctx, n) : 0;
	}
	if (n->kind == RN_PQR_LEAF) {
		struct leafdata *ld = &r->ld[n->leaf];
		if (ld->curv >= ld->nvals)
			return fail(r, RN_ECORRUPT, "column %s has too few values", n->name);
		ld->cur++;
		return a->s->value ? a->s->value(a->ctx, n, &ld->vals[ld->curv++]) : 0;
	}
	if (a->s->begin && (rc = a->s->begin(a->ctx, n)))
		return rc;
	if (n->kind == RN_PQR_STRUCT) {
		for (size_t c = n->first_child; c < n->end; c = r->nodes[c].end)
			if ((rc = read_node(a, c)))
				return rc;
	} else {
		size_t rg = n->first_child;
		const struct rn_pqr_node *g = &r->nodes[rg];
		if (def < g->def) { /* empty list or map */
			if ((rc = skip_subtree(r, rg, def)))
				return rc;
		} else {
			for (;;) {
				for (size_t c = g->first_child; c < g->end; c = r->nodes[c].end)
					if ((rc = read_node(a, c)))
						return rc;
				if (r->ld[lf].cur >= r->ld[lf].n)
					break;
				if ((rc = peek(r, lf, &rep, &def)))
					return rc;
				if (rep < g->rep)
					break;
				if (rep > g->rep)
					return fail(r, RN_ECORRUPT,
						    "column %s: bad repetition level", n->name);
			}
		}
	}
	return a->s->end ? a->s->end(a->ctx, n) : 0;
}

/* Drops what row group reading kept (decompressed pages, levels, values) so the next row
 * group starts empty: a file is read with one row group in memory at a time. The level and
 * value arrays keep their capacity (charged once, reused). */
static void release_group(struct rn_pqr *r)
{
	for (size_t i = 0; i < r->nbufs; i++) {
		r->used -= r->bufs[i].cap <= r->used ? r->bufs[i].cap : r->used;
		rn_buf_free(&r->bufs[i]);
	}
	r->nbufs = 0;
	for (size_t l = 0; l < r->nleaves; l++)
		r->ld[l].n = r->ld[l].nvals = r->ld[l].cur = r->ld[l].curv = 0;
}

/* Assembles the rows of the row group whose column chunks are loaded. */
static int read_group(struct rn_pqr *r, struct asmb *a, int64_t rows)
{
	const struct rn_pqr_node *root = &r->nodes[0];
	int rc;
	for (int64_t row = 0; row < rows; row++) {
		for (size_t l = 0; l < r->nleaves; l++) {
			int rep = 0, def = 0;
			if ((rc = peek(r, l, &rep, &def)))
				return rc;
			if (rep != 0)
				return fail(r, RN_ECORRUPT, "row %lld does not start a record",
					    (long long)row);
		}
		for (size_t c = root->first_child; c < root->end; c = r->nodes[c].end)
			if ((rc = read_node(a, c)))
				return rc;
		if (a->s->row_end && (rc = a->s->row_end(a->ctx)))
			return rc;
	}
	for (size_t l = 0; l < r->nleaves; l++)
		if (r->ld[l].cur != r->ld[l].n)
			return fail(r, RN_ECORRUPT, "column %s has entries past the last row",
				    r->nodes[r->leaf_node[l]].name);
	return 0;
}

int rn_pqr_read(struct rn_pqr *r, const struct rn_pqr_sink *sink, void *ctx)
{
	struct asmb a = {r, sink, ctx};
	int rc;
	if (r->read_done || !r->nodes)
		return fail(r, RN_EINVAL, "reader already used or not open");
	r->read_done = 1;
	if (!(r->ld = charge(r, r->nleaves, sizeof(*r->ld))))
		return RN_ENOMEM;
	for (size_t g = 0; g < r->nrg; g++) {
		for (size_t l = 0; l < r->nleaves; l++)
			if ((rc = read_chunk(r, l, &r->rgs[g].cols[l])))
				return rc;
		if ((rc = read_group(r, &a, r->rgs[g].num_rows)))
			return rc;
		release_group(r);
	}
	return 0;
}

size_t rn_pqr_group_bytes(const struct rn_pqr *r)
{
	size_t most = 0;
	for (size_t g = 0; g < r->nrg; g++) {
		uint64_t n = 0;
		for (size_t l = 0; l < r->rgs[g].ncols && l < r->nleaves; l++) {
			const struct chunk *c = &r->rgs[g].cols[l];
			/* the pages, and levels and values in arrays grown by doubling */
			n += (uint64_t)c->utotal +
			     (uint64_t)c->num_values * 2 * (2 + sizeof(struct rn_pqr_value));
		}
		if (n > most)
			most = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
	}
	return most;
}

/* ---- JSON lines ---- */

struct jctx {
	struct rn_pqr *r;
	struct rn_buf *out;
	int count[MAX_DEPTH + 2]; /* members written at each open level */
	int depth;                /* 0 = the row object */
	int rc;
};

/* Writes what comes before a member: a separator and, in objects, the key. Returns 1 when
 * the member is to be skipped (null struct fields). */
static int jprefix(struct jctx *j, const struct rn_pqr_node *n, int is_null)
{
	const struct rn_pqr_node *p = &j->r->nodes[n->parent];
	if (p->kind == RN_PQR_REPEATED && j->r->nodes[p->parent].kind == RN_PQR_MAP) {
		if (n->index == 1)
			return 0; /* a map value follows its key's ':' */
	} else if (p->kind != RN_PQR_REPEATED && is_null) {
		return 1;
	}
	if (j->count[j->depth]++)
		rn_buf_append_u8(j->out, ',');
	if (p->kind != RN_PQR_REPEATED) {
		rn_json_put_str(j->out, n->name, strlen(n->name));
		rn_buf_append_u8(j->out, ':');
	}
	return 0;
}

static int j_begin(void *c, const struct rn_pqr_node *n)
{
	struct jctx *j = c;
	jprefix(j, n, 0);
	if (j->depth >= MAX_DEPTH)
		return RN_ENOTSUP;
	j->count[++j->depth] = 0;
	return rn_buf_append_u8(j->out, n->kind == RN_PQR_LIST ? '[' : '{');
}

static int j_end(void *c, const struct rn_pqr_node *n)
{
	struct jctx *j = c;
	j->depth--;
	return rn_buf_append_u8(j->out, n->kind == RN_PQR_LIST ? ']' : '}');
}

static int j_null(void *c, const struct rn_pqr_node *n)
{
	struct jctx *j = c;
	if (jprefix(j, n, 1))
		return 0;
	return rn_buf_append_str(j->out, "null");
}

static int j_value(void *c, const struct rn_pqr_node *n, const struct rn_pqr_value *v)
{
	struct jctx *j = c;
	const struct rn_pqr_node *p = &j->r->nodes[n->parent];
	int is_key = p->kind == RN_PQR_REPEATED && j->r->nodes[p->parent].kind == RN_PQR_MAP &&
		     n->index == 0;
	jprefix(j, n, 0);
	if (is_key && n->physical != RN_PQR_BYTE_ARRAY && n->physical != RN_PQR_FLBA) {
		rn_buf_printf(j->out, "\"%lld\"", (long long)v->i);
	} else {
		switch (n->physical) {
		case RN_PQR_BOOLEAN: rn_buf_append_str(j->out, v->i ? "true" : "false"); break;
		case RN_PQR_INT32:
		case RN_PQR_INT64: rn_buf_printf(j->out, "%lld", (long long)v->i); break;
		case RN_PQR_FLOAT:
		case RN_PQR_DOUBLE:
			if (isfinite(v->d))
				rn_buf_printf(j->out, "%.17g", v->d);
			else
				rn_buf_append_str(j->out, "null");
			break;
		default: rn_json_put_str(j->out, v->p, v->len); break;
		}
	}
	if (is_key) {
		rn_buf_append_u8(j->out, ':');
		if (p->nchildren == 1)
			rn_buf_append_str(j->out, "null");
	}
	return 0;
}

static int j_row_end(void *c)
{
	struct jctx *j = c;
	int rc = rn_buf_append_str(j->out, "}\n");
	j->count[0] = 0;
	if (!rc)
		rc = rn_buf_append_u8(j->out, '{');
	return rc;
}

int rn_pqr_to_json_lines(struct rn_pqr *r, struct rn_buf *out)
{
	static const struct rn_pqr_sink sink = {j_begin, j_end, j_null, j_value, j_row_end};
	struct jctx j = {.r = r, .out = out};
	size_t start = out->len;
	int rc = rn_buf_append_u8(out, '{');
	if (!rc)
		rc = rn_pqr_read(r, &sink, &j);
	if (!rc && out->len > start)
		out->len--; /* the '{' opened for a row that never came */
	if (rc == RN_ENOMEM && !r->err[0])
		fail(r, rc, "output larger than its cap");
	return rc;
}
