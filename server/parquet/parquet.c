/*
 * Parquet writer; see parquet.h. The caller's schema tree becomes a flat node array (the
 * LIST and MAP wrappers get their synthetic repeated child, "list" / "key_value"), with every
 * node's definition and repetition level when present and the contiguous range of leaves
 * below it. Each leaf keeps its open page (levels as one byte per entry, values PLAIN or as
 * dictionary indices), its column chunk of the open row group (finished pages: header + zstd
 * body) and two statistics accumulators (chunk, for the footer; file, for Delta).
 *
 * Levels (Dremel): a value or null appends one (rep, def) entry to each leaf it covers. The
 * repetition level of a leaf's next entry is `next_rep`: 0 at a row start, and set to the
 * repeated node's level for all leaves below it when a list or map starts its second or later
 * element. A null, empty list or empty map writes the definition level where it stopped.
 *
 * Pages are cut and row groups closed only at row ends, so a failed or abandoned row rolls
 * back by truncating each leaf's open page to its row marks. Statistics are not rolled back:
 * a discarded value may widen min/max, which stays a valid bound.
 */
#include "parquet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "parquet_int.h"
#include "rn_err.h"
#include "rn_i128.h"
#include "rn_mem.h"
#include "rn_zstd.h"
#include "thrift.h"

#define PAGE_DEFAULT ((size_t)1 << 20)
#define ROW_GROUP_DEFAULT ((size_t)128 << 20)
#define DICT_BYTES_DEFAULT ((size_t)1 << 20)
#define DICT_ENTRIES_DEFAULT 65536
#define MAX_COLS 256
#define MAX_LEAVES 1024
#define MAX_DEPTH 32
#define STAT_EXACT_MAX 64 /* Parquet footer min/max for byte arrays only up to this length */
#define DELTA_PREFIX_CP 32
/* Byte-array min/max are kept as their first STAT_KEEP bytes: cutting every value to a fixed
 * length keeps the order (a <= b implies cut(a) <= cut(b)), so the min/max of the cut values
 * is the cut of the true min/max, and a 1 KB payload costs a short compare and, when it is a
 * new max, a short copy. A kept value shorter than STAT_KEEP is exact; one of exactly
 * STAT_KEEP bytes may have been longer. It must hold the footer's exact values (<= 64 bytes)
 * and the Delta prefix plus the code point after it (33 code points of <= 4 bytes). */
#define STAT_KEEP 140
_Static_assert(STAT_KEEP > STAT_EXACT_MAX && STAT_KEEP >= 4 * (DELTA_PREFIX_CP + 1) + 4,
	       "STAT_KEEP too short");

/* Parquet enums (parquet.thrift) */
enum {
	PT_BOOLEAN = 0,
	PT_INT32 = 1,
	PT_INT64 = 2,
	PT_FLOAT = 4,
	PT_DOUBLE = 5,
	PT_BYTE_ARRAY = 6,
	PT_FLBA = 7
};
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1, REP_REPEATED = 2 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };
enum { PAGE_DATA = 0, PAGE_DICTIONARY = 2 };
enum { CODEC_ZSTD = 6 };

/* zstd's match finder table for pages at levels 1 and 2: 2^11 entries (8 KiB) instead of the
 * level's 2^13-2^16. On 1 MiB pages of telemetry JSON this was 10-75% faster and compressed
 * better (recent matches are what such pages have); on random digits 2% worse
 * (docs/benchmarks.md). Level 3 and up keep zstd's tables. */
#define PAGE_HASH_LOG 11
enum {
	CT_UTF8 = 0,
	CT_MAP = 1,
	CT_LIST = 3,
	CT_DECIMAL = 5,
	CT_DATE = 6,
	CT_TIMESTAMP_MICROS = 10,
	CT_INT_8 = 15,
	CT_INT_16 = 16
};

enum { K_LEAF, K_STRUCT, K_LIST, K_MAP, K_REPEATED };
/* how statistics compare */
enum { ST_INT, ST_BOOL, ST_FLOAT, ST_BYTES, ST_DEC128 };

typedef rn_i128 i128;

struct pq_stats {
	int64_t nulls; /* entries without a value */
	int64_t nans;
	int has; /* a non-NaN value was seen: min/max are valid */
	int64_t min_i, max_i;
	double min_d, max_d;
	i128 min_x, max_x;
	struct rn_buf min_s, max_s;
};

struct pq_node {
	const struct rn_pq_col *col; /* NULL for the root and the synthetic repeated groups */
	const char *name;
	uint8_t kind, repetition;
	uint8_t def, rep;          /* levels when this node is present */
	uint32_t child, nchild;    /* children are nodes[child .. child + nchild) */
	uint32_t leaf_lo, leaf_hi; /* leaves below (a leaf: itself) */
	uint32_t parent;
	uint8_t set;                /* struct field set in the open instance of its parent */
	int64_t nulls, nulls_mark;  /* instances null while the parent was present, this file */
	struct rn_pq_colstats last; /* groups: nulls of the last finished file */
};

struct pq_leaf {
	struct pq_node *node;
	const struct rn_pq_col *col;
	uint8_t ptype, stype, max_def, max_rep, next_rep;
	int type_len; /* FIXED_LEN_BYTE_ARRAY width */
	int dict_enabled;
	/* open page: levels one byte per entry; values PLAIN (bools a byte each) or indices.
	 * The PLAIN values start at vals.data + pre: the first `pre` bytes are room for the
	 * page's encoded levels, so the page body is compressed where it lies, without copying
	 * the values next to the levels (for a 1 KB payload column, that copy was the page's
	 * largest cost after zstd). pre_want is what the largest levels so far needed. */
	struct rn_buf vals, idx, defs, reps;
	size_t pre, pre_want;
	uint32_t entries;
	struct {
		size_t vals, idx, defs, reps;
		uint32_t entries;
		int64_t nulls, nans;
	} mark; /* at the last row end */
	/* column chunk of the open row group */
	struct rn_buf chunk;
	int64_t chunk_entries, chunk_uncomp;
	size_t last_comp; /* compressed size of the last page: guesses the next header's length */
	/* pages cut from this chunk and not yet in it, in page order (compressed elsewhere or
	 * waiting for it: pages.c); the chunk takes them from the front, in order */
	struct rn_pq_page **pend;
	size_t npend, cappend;
	int dict_on; /* still dictionary-encoding this chunk */
	int dict_pages, plain_pages;
	struct rn_buf dict; /* PLAIN dictionary entries */
	uint32_t *dict_off; /* entry i at dict.data + dict_off[i] */
	uint32_t dict_n, dict_offcap;
	uint32_t *slots; /* hash table: entry index + 1, 0 = empty; slot_mask + 1 slots */
	uint32_t slot_mask;
	struct pq_stats cs, fs; /* chunk (footer), file (Delta) */
	struct rn_pq_colstats last;
	struct rn_buf dmin, dmax;
};

struct pq_frame {
	uint32_t node;  /* open group */
	uint32_t elems; /* LIST/MAP: elements or entries so far */
	int key_open;   /* MAP: a key was put, its value not yet */
};

struct rn_pq_writer {
	struct pq_node *nodes; /* nodes[0] is the root */
	size_t nnodes;
	struct pq_leaf *leaves;
	size_t nleaves;
	size_t ncols;
	int has_rep; /* some leaf has max_rep > 0 */
	struct pq_frame stack[MAX_DEPTH + 1];
	int depth;  /* stack[0] is the root */
	int in_row; /* something was put since the last row end */
	size_t rows, rg_rows, rg_n;
	struct rn_buf body;   /* file bytes not yet taken: the magic, then closed row groups */
	int64_t pos;          /* file offset of body.data[0]; 0 with body empty: no magic yet */
	struct rn_buf rgmeta; /* serialized RowGroup structs of the open file */
	size_t rg_comp;       /* compressed bytes in the leaves' chunks */
	size_t page_bytes, max_bytes, rg_row_cap, rg_byte_cap, dict_bytes, dict_entries;
	int level;
	int broken; /* first ENOMEM/EIO that left the open file inconsistent */
	int (*page_submit)(void *ctx, void (*run)(void *arg),
			   void (*done)(void *arg, int cancelled), void *arg);
	void *page_ctx;
	size_t page_jobs; /* cap on jobs in flight (async pages not yet taken) */
	size_t jobs;      /* async pages not yet taken into their chunk */
	size_t pend_raw;  /* uncompressed bytes of every leaf's pend pages */
	char created_by[128];
	struct rn_buf scratch, hdr, lv;
};

/* ---- schema ---------------------------------------------------------------------------- */

static int is_leaf_type(int t)
{
	return t >= 0 && t <= RN_PQ_DECIMAL;
}

static int count_nodes(const struct rn_pq_col *c, int depth, size_t *nodes, size_t *leaves)
{
	int rc;
	if (!c->name || depth > MAX_DEPTH)
		return RN_EINVAL;
	if (is_leaf_type(c->type)) {
		if (c->type == RN_PQ_DECIMAL && (c->precision < 1 || c->precision > 38 ||
						 c->scale < 0 || c->scale > c->precision))
			return RN_EINVAL;
		(*nodes)++;
		(*leaves)++;
		return 0;
	}
	if (!c->children || (c->type == RN_PQ_STRUCT && c->n_children == 0) ||
	    (c->type == RN_PQ_LIST && c->n_children != 1) ||
	    (c->type == RN_PQ_MAP && (c->n_children != 2 || c->children[0].optional)) ||
	    c->type > RN_PQ_MAP)
		return RN_EINVAL;
	*nodes += c->type == RN_PQ_STRUCT ? 1 : 2;
	for (size_t i = 0; i < c->n_children; i++)
		if ((rc = count_nodes(&c->children[i], depth + 1, nodes, leaves)))
			return rc;
	return 0;
}

/* Minimal FIXED_LEN_BYTE_ARRAY width for a decimal precision: the first n whose signed range
 * 2^(8n-1)-1 has at least p digits. */
static int decimal_width(int p)
{
	static const int digits[17] = {0,  2,  4,  6,  9,  11, 14, 16, 18,
				       21, 23, 26, 28, 31, 33, 35, 38};
	int n = 1;
	while (digits[n] < p)
		n++;
	return n;
}

static void setup_leaf(struct rn_pq_writer *w, struct pq_leaf *l, struct pq_node *n,
		       const struct rn_pq_options *opt)
{
	const struct rn_pq_col *c = n->col;
	l->node = n;
	l->col = c;
	l->max_def = n->def;
	l->max_rep = n->rep;
	switch (c->type) {
	case RN_PQ_STRING:
	case RN_PQ_BINARY:
		l->ptype = PT_BYTE_ARRAY;
		l->stype = ST_BYTES;
		l->dict_enabled =
			c->dict == RN_PQ_DICT_ON || (c->dict != RN_PQ_DICT_OFF && !opt->no_dict);
		break;
	case RN_PQ_INT64:
	case RN_PQ_TIMESTAMP:
	case RN_PQ_TIMESTAMP_NTZ:
		l->ptype = PT_INT64;
		l->stype = ST_INT;
		break;
	case RN_PQ_INT32:
	case RN_PQ_INT16:
	case RN_PQ_INT8:
	case RN_PQ_DATE:
		l->ptype = PT_INT32;
		l->stype = ST_INT;
		break;
	case RN_PQ_DOUBLE:
		l->ptype = PT_DOUBLE;
		l->stype = ST_FLOAT;
		break;
	case RN_PQ_FLOAT:
		l->ptype = PT_FLOAT;
		l->stype = ST_FLOAT;
		break;
	case RN_PQ_BOOL:
		l->ptype = PT_BOOLEAN;
		l->stype = ST_BOOL;
		break;
	case RN_PQ_DECIMAL:
		if (c->precision <= 9) {
			l->ptype = PT_INT32;
			l->stype = ST_INT;
		} else if (c->precision <= 18) {
			l->ptype = PT_INT64;
			l->stype = ST_INT;
		} else {
			l->ptype = PT_FLBA;
			l->stype = ST_DEC128;
			l->type_len = decimal_width(c->precision);
		}
		break;
	default: break;
	}
	l->dict_on = l->dict_enabled;
	l->chunk.max = w->max_bytes;
	l->dict.max = w->dict_bytes + 16;
}

/* Fills nodes[idx] for schema node c (named `name`) under parent; allocates children from
 * *next and leaves from *leaf, depth first. */
static void fill_node(struct rn_pq_writer *w, uint32_t idx, const struct rn_pq_col *c,
		      const char *name, uint32_t parent, size_t *next, size_t *leaf,
		      const struct rn_pq_options *opt)
{
	struct pq_node *n = &w->nodes[idx], *p = &w->nodes[parent];
	n->col = c;
	n->name = name;
	n->parent = parent;
	n->repetition = c->optional ? REP_OPTIONAL : REP_REQUIRED;
	n->def = (uint8_t)(p->def + (c->optional ? 1 : 0));
	n->rep = p->rep;
	n->leaf_lo = (uint32_t)*leaf;
	if (is_leaf_type(c->type)) {
		n->kind = K_LEAF;
		setup_leaf(w, &w->leaves[*leaf], n, opt);
		(*leaf)++;
	} else if (c->type == RN_PQ_STRUCT) {
		n->kind = K_STRUCT;
		n->child = (uint32_t)*next;
		n->nchild = (uint32_t)c->n_children;
		*next += c->n_children;
		for (uint32_t i = 0; i < n->nchild; i++)
			fill_node(w, n->child + i, &c->children[i], c->children[i].name, idx, next,
				  leaf, opt);
	} else {
		uint32_t r = (uint32_t)*next;
		struct pq_node *rn = &w->nodes[r];
		int map = c->type == RN_PQ_MAP;
		n->kind = map ? K_MAP : K_LIST;
		n->child = r;
		n->nchild = 1;
		(*next)++;
		rn->name = map ? "key_value" : "list";
		rn->kind = K_REPEATED;
		rn->repetition = REP_REPEATED;
		rn->parent = idx;
		rn->def = (uint8_t)(n->def + 1);
		rn->rep = (uint8_t)(n->rep + 1);
		rn->leaf_lo = (uint32_t)*leaf;
		rn->child = (uint32_t)*next;
		rn->nchild = map ? 2 : 1;
		*next += rn->nchild;
		if (map) {
			fill_node(w, rn->child, &c->children[0], "key", r, next, leaf, opt);
			fill_node(w, rn->child + 1, &c->children[1], "value", r, next, leaf, opt);
		} else {
			fill_node(w, rn->child, &c->children[0], "element", r, next, leaf, opt);
		}
		rn->leaf_hi = (uint32_t)*leaf;
	}
	n->leaf_hi = (uint32_t)*leaf;
}

int rn_pq_writer_create(struct rn_pq_writer **out, const struct rn_pq_col *cols, size_t n,
			const struct rn_pq_options *opt)
{
	static const struct rn_pq_options defaults;
	struct rn_pq_writer *w;
	size_t nnodes = 1, nleaves = 0, next, leaf = 0;
	int rc;

	*out = NULL;
	if (!opt)
		opt = &defaults;
	if (n == 0 || n > MAX_COLS || !cols)
		return RN_EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((rc = count_nodes(&cols[i], 1, &nnodes, &nleaves)))
			return rc;
	if (nleaves > MAX_LEAVES)
		return RN_EINVAL;
	if (!(w = rn_calloc(1, sizeof(*w))))
		return RN_ENOMEM;
	w->nodes = rn_calloc(nnodes, sizeof(*w->nodes));
	w->leaves = rn_calloc(nleaves, sizeof(*w->leaves));
	if (!w->nodes || !w->leaves) {
		rn_free(w->nodes);
		rn_free(w->leaves);
		rn_free(w);
		return RN_ENOMEM;
	}
	w->nnodes = nnodes;
	w->nleaves = nleaves;
	w->ncols = n;
	w->page_bytes = opt->page_bytes ? opt->page_bytes : PAGE_DEFAULT;
	w->max_bytes = opt->max_bytes ? opt->max_bytes : ((size_t)1 << 30);
	w->level = opt->zstd_level ? opt->zstd_level : 3;
	w->rg_row_cap = opt->row_group_rows;
	w->rg_byte_cap = opt->row_group_bytes ? opt->row_group_bytes : ROW_GROUP_DEFAULT;
	w->dict_bytes = opt->dict_bytes ? opt->dict_bytes : DICT_BYTES_DEFAULT;
	w->dict_entries = opt->dict_entries ? opt->dict_entries : DICT_ENTRIES_DEFAULT;
	w->page_submit = opt->page_submit;
	w->page_ctx = opt->page_ctx;
	w->page_jobs = opt->page_jobs ? opt->page_jobs : 8;
	if (w->dict_entries > ((size_t)1 << 30))
		w->dict_entries = (size_t)1 << 30;
	w->body.max = w->max_bytes;
	w->nodes[0].kind = K_STRUCT;
	w->nodes[0].name = "schema";
	w->nodes[0].child = 1;
	w->nodes[0].nchild = (uint32_t)n;
	next = 1 + n;
	for (size_t i = 0; i < n; i++)
		fill_node(w, (uint32_t)(1 + i), &cols[i], cols[i].name, 0, &next, &leaf, opt);
	w->nodes[0].leaf_hi = (uint32_t)leaf;
	for (size_t i = 0; i < nleaves; i++)
		w->has_rep |= w->leaves[i].max_rep > 0;
	if (opt->created_by)
		snprintf(w->created_by, sizeof(w->created_by), "%s", opt->created_by);
	else
		snprintf(w->created_by, sizeof(w->created_by),
			 "runnel-server version %s (build dev)", RN_VERSION);
	*out = w;
	return 0;
}

static void stats_free(struct pq_stats *s)
{
	rn_buf_free(&s->min_s);
	rn_buf_free(&s->max_s);
}

void rn_pq_writer_destroy(struct rn_pq_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->nleaves; i++) {
		struct pq_leaf *l = &w->leaves[i];
		for (size_t k = 0; k < l->npend; k++)
			rn_pq__page_drop(l->pend[k]);
		rn_free(l->pend);
		rn_buf_free(&l->vals);
		rn_buf_free(&l->idx);
		rn_buf_free(&l->defs);
		rn_buf_free(&l->reps);
		rn_buf_free(&l->chunk);
		rn_buf_free(&l->dict);
		rn_free(l->dict_off);
		rn_free(l->slots);
		stats_free(&l->cs);
		stats_free(&l->fs);
		rn_buf_free(&l->dmin);
		rn_buf_free(&l->dmax);
	}
	rn_buf_free(&w->body);
	rn_buf_free(&w->rgmeta);
	rn_buf_free(&w->scratch);
	rn_buf_free(&w->hdr);
	rn_buf_free(&w->lv);
	rn_free(w->nodes);
	rn_free(w->leaves);
	rn_free(w);
}

/* ---- statistics ------------------------------------------------------------------------ */

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = al && bl ? memcmp(a, b, al < bl ? al : bl) : 0;
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static int stat_bytes(struct pq_stats *s, const void *p, size_t len)
{
	int rc;
	if (len > STAT_KEEP)
		len = STAT_KEEP;
	if (!s->has || bytes_cmp(p, len, s->min_s.data, s->min_s.len) < 0) {
		rn_buf_reset(&s->min_s);
		if ((rc = rn_buf_append(&s->min_s, p, len)))
			return rc;
	}
	if (!s->has || bytes_cmp(p, len, s->max_s.data, s->max_s.len) > 0) {
		rn_buf_reset(&s->max_s);
		if ((rc = rn_buf_append(&s->max_s, p, len)))
			return rc;
	}
	s->has = 1;
	return 0;
}

static void stat_int(struct pq_stats *s, int64_t v)
{
	if (!s->has || v < s->min_i)
		s->min_i = v;
	if (!s->has || v > s->max_i)
		s->max_i = v;
	s->has = 1;
}

static void stat_float(struct pq_stats *s, double v)
{
	if (isnan(v)) { /* NaN never enters min/max (Parquet); it is counted instead */
		s->nans++;
		return;
	}
	if (!s->has || v < s->min_d || (v == 0 && s->min_d == 0 && signbit(v)))
		s->min_d = v;
	if (!s->has || v > s->max_d || (v == 0 && s->max_d == 0 && !signbit(v)))
		s->max_d = v;
	s->has = 1;
}

static void stat_dec(struct pq_stats *s, i128 v)
{
	if (!s->has || rn_i128_cmp(v, s->min_x) < 0)
		s->min_x = v;
	if (!s->has || rn_i128_cmp(v, s->max_x) > 0)
		s->max_x = v;
	s->has = 1;
}

/* Folds chunk statistics a into file statistics f. */
static int stats_merge(struct pq_stats *f, const struct pq_stats *a, int stype)
{
	int rc;
	f->nulls += a->nulls;
	f->nans += a->nans;
	if (!a->has)
		return 0;
	switch (stype) {
	case ST_INT:
	case ST_BOOL:
		stat_int(f, a->min_i);
		stat_int(f, a->max_i);
		break;
	case ST_FLOAT:
		stat_float(f, a->min_d);
		stat_float(f, a->max_d);
		break;
	case ST_DEC128:
		stat_dec(f, a->min_x);
		stat_dec(f, a->max_x);
		break;
	case ST_BYTES:
		if ((rc = stat_bytes(f, a->min_s.data, a->min_s.len)) ||
		    (rc = stat_bytes(f, a->max_s.data, a->max_s.len)))
			return rc;
		break;
	}
	return 0;
}

static void stats_reset(struct pq_stats *s)
{
	s->nulls = s->nans = 0;
	s->has = 0;
	rn_buf_reset(&s->min_s);
	rn_buf_reset(&s->max_s);
}

/* ---- the cursor ------------------------------------------------------------------------ */

/* Child `col` of the innermost open group, if it may be written now; no side effects. */
static struct pq_node *target(struct rn_pq_writer *w, size_t col)
{
	struct pq_frame *f = &w->stack[w->depth];
	struct pq_node *g = &w->nodes[f->node], *r, *t;
	switch (g->kind) {
	case K_STRUCT:
		if (col >= g->nchild)
			return NULL;
		t = &w->nodes[g->child + col];
		return t->set ? NULL : t;
	case K_LIST:
		if (col != 0)
			return NULL;
		r = &w->nodes[g->child];
		return &w->nodes[r->child];
	case K_MAP:
		r = &w->nodes[g->child];
		if (col == 0) /* a pending value must be nullable */
			return f->key_open && w->nodes[r->child + 1].repetition == REP_REQUIRED
				       ? NULL
				       : &w->nodes[r->child];
		return col == 1 && f->key_open ? &w->nodes[r->child + 1] : NULL;
	}
	return NULL;
}

static int level_entry(struct pq_leaf *l, uint8_t def)
{
	int rc;
	if (l->max_def && (rc = rn_buf_append_u8(&l->defs, def)))
		return rc;
	if (l->max_rep && (rc = rn_buf_append_u8(&l->reps, l->next_rep)))
		return rc;
	l->entries++;
	return 0;
}

/* One entry without a value, at definition level def, for every leaf below n. */
static int emit_empty(struct rn_pq_writer *w, const struct pq_node *n, uint8_t def)
{
	int rc;
	for (uint32_t i = n->leaf_lo; i < n->leaf_hi; i++) {
		struct pq_leaf *l = &w->leaves[i];
		if ((rc = level_entry(l, def)))
			return rc;
		l->cs.nulls++;
	}
	return 0;
}

static int emit_null(struct rn_pq_writer *w, struct pq_node *n)
{
	n->nulls++;
	return emit_empty(w, n, (uint8_t)(n->def - 1));
}

/* A repeated node starts an element: later elements repeat at its level. */
static void new_element(struct rn_pq_writer *w, struct pq_frame *f, const struct pq_node *r)
{
	if (f->elems++ > 0)
		for (uint32_t i = r->leaf_lo; i < r->leaf_hi; i++)
			w->leaves[i].next_rep = r->rep;
}

/* Side effects of writing child col (node t, checked by target()) of the open group. */
static int enter(struct rn_pq_writer *w, size_t col, struct pq_node *t)
{
	struct pq_frame *f = &w->stack[w->depth];
	struct pq_node *g = &w->nodes[f->node];
	int rc;

	w->in_row = 1;
	switch (g->kind) {
	case K_STRUCT: t->set = 1; break;
	case K_LIST: new_element(w, f, &w->nodes[g->child]); break;
	case K_MAP:
		if (col == 0) {
			const struct pq_node *r = &w->nodes[g->child];
			if (f->key_open && (rc = emit_null(w, &w->nodes[r->child + 1])))
				return rc;
			new_element(w, f, r);
		}
		f->key_open = col == 0;
		break;
	}
	return 0;
}

/* Checks and enters leaf child col; returns the leaf ready for its value, or an error. */
static int leaf_begin(struct rn_pq_writer *w, size_t col, uint32_t types, struct pq_leaf **out)
{
	struct pq_node *t = target(w, col);
	struct pq_leaf *l;
	int rc;
	if (!t || t->kind != K_LEAF || !(types & (1u << t->col->type)))
		return RN_EINVAL;
	l = &w->leaves[t->leaf_lo];
	*out = l;
	if ((rc = enter(w, col, t)))
		return rc;
	return level_entry(l, l->max_def);
}

#define T(x) (1u << (x))

/* ---- dictionary ------------------------------------------------------------------------ */

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t v = 0;
		memcpy(&v, p, n);
		h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 29;
	return h * 0x9e3779b97f4a7c15ull;
}

static int dict_grow(struct pq_leaf *l)
{
	uint32_t n = l->slot_mask ? (l->slot_mask + 1) * 2 : 1024;
	uint32_t *s = rn_calloc(n, sizeof(*s));
	if (!s)
		return RN_ENOMEM;
	for (uint32_t i = 0; i < l->dict_n; i++) {
		const uint8_t *e = l->dict.data + l->dict_off[i];
		uint32_t len;
		memcpy(&len, e, 4);
		uint64_t h = hash_bytes(e + 4, len);
		uint32_t k = (uint32_t)h & (n - 1);
		while (s[k])
			k = (k + 1) & (n - 1);
		s[k] = i + 1;
	}
	rn_free(l->slots);
	l->slots = s;
	l->slot_mask = n - 1;
	return 0;
}

/* Finds or adds p in the dictionary. *full is set (and 0 returned) when adding would pass
 * the caps: the caller falls back to PLAIN. */
static int dict_lookup(struct rn_pq_writer *w, struct pq_leaf *l, const void *p, size_t len,
		       uint32_t *id, int *full)
{
	uint64_t h = hash_bytes(p, len);
	uint32_t k, l32 = (uint32_t)len;
	int rc;

	*full = 0;
	if (!l->slots && (rc = dict_grow(l)))
		return rc;
	k = (uint32_t)h & l->slot_mask;
	while (l->slots[k]) {
		const uint8_t *e = l->dict.data + l->dict_off[l->slots[k] - 1];
		uint32_t el;
		memcpy(&el, e, 4);
		if (el == len && (len == 0 || memcmp(e + 4, p, len) == 0)) {
			*id = l->slots[k] - 1;
			return 0;
		}
		k = (k + 1) & l->slot_mask;
	}
	if (l->dict_n >= w->dict_entries || l->dict.len + 4 + len > w->dict_bytes) {
		*full = 1;
		return 0;
	}
	if (l->dict_n == l->dict_offcap) {
		uint32_t nc = l->dict_offcap ? l->dict_offcap * 2 : 256;
		uint32_t *o = rn_reallocarray(l->dict_off, nc, sizeof(*o));
		if (!o)
			return RN_ENOMEM;
		l->dict_off = o;
		l->dict_offcap = nc;
	}
	if ((rc = rn_buf_reserve(&l->dict, 4 + len)))
		return rc;
	l->dict_off[l->dict_n] = (uint32_t)l->dict.len;
	rn_buf_append(&l->dict, &l32, 4);
	if (len)
		rn_buf_append(&l->dict, p, len);
	l->slots[k] = ++l->dict_n;
	*id = l->dict_n - 1;
	if ((rc = stat_bytes(&l->cs, p, len))) /* a value new to the chunk: only these matter */
		return rc;
	if (l->dict_n * 2 > l->slot_mask + 1 && (rc = dict_grow(l)))
		return rc;
	return 0;
}

/* Turns the open page's indices into PLAIN values and stops using the dictionary for the
 * rest of the chunk. Earlier pages stay dictionary-encoded. */
static int dict_fallback(struct pq_leaf *l)
{
	size_t n = l->idx.len / 4, need = 0;
	const uint32_t *ix = (const uint32_t *)(const void *)l->idx.data;
	int rc;

	for (size_t i = 0; i < n; i++) {
		uint32_t len;
		memcpy(&len, l->dict.data + l->dict_off[ix[i]], 4);
		need += 4 + len;
	}
	l->vals.len = l->pre;
	if ((rc = rn_buf_reserve(&l->vals, need)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = l->dict.data + l->dict_off[ix[i]];
		uint32_t len;
		if (i == l->mark.idx / 4)
			l->mark.vals = l->vals.len;
		memcpy(&len, e, 4);
		rn_buf_append(&l->vals, e, 4 + (size_t)len);
	}
	if (l->mark.idx / 4 == n)
		l->mark.vals = l->vals.len;
	l->mark.idx = 0;
	rn_buf_reset(&l->idx);
	l->dict_on = 0;
	return 0;
}

/* ---- puts ------------------------------------------------------------------------------ */

int rn_pq_put_bytes(struct rn_pq_writer *w, size_t col, const void *p, size_t len)
{
	struct pq_leaf *l;
	uint32_t l32 = (uint32_t)len;
	int rc, full = 0;

	if (len > UINT32_MAX || (len && !p))
		return RN_EINVAL;
	if ((rc = leaf_begin(w, col, T(RN_PQ_STRING) | T(RN_PQ_BINARY), &l)))
		return rc;
	if (l->dict_on) {
		uint32_t id;
		if ((rc = dict_lookup(w, l, p, len, &id, &full)))
			return rc;
		if (!full)
			return rn_buf_append(&l->idx, &id, 4);
		if ((rc = dict_fallback(l)))
			return rc;
	}
	if ((rc = rn_buf_reserve(&l->vals, 4 + len)))
		return rc;
	rn_buf_append(&l->vals, &l32, 4);
	if (len)
		rn_buf_append(&l->vals, p, len);
	return stat_bytes(&l->cs, p, len);
}

static const int64_t pow10_i64[19] = {1LL,
				      10LL,
				      100LL,
				      1000LL,
				      10000LL,
				      100000LL,
				      1000000LL,
				      10000000LL,
				      100000000LL,
				      1000000000LL,
				      10000000000LL,
				      100000000000LL,
				      1000000000000LL,
				      10000000000000LL,
				      100000000000000LL,
				      1000000000000000LL,
				      10000000000000000LL,
				      100000000000000000LL,
				      1000000000000000000LL};

/* Is the unscaled v inside decimal(p)? */
static int dec_fits(i128 v, int p)
{
	i128 a = rn_i128_sign(v) < 0 ? rn_i128_neg(v) : v; /* |v|, unsigned */
	return rn_i128_ucmp(a, rn_i128_pow10(p)) < 0;
}

/* Appends integer-like value v (already range-checked) to leaf l as its physical type. */
static int put_intlike(struct pq_leaf *l, i128 v)
{
	int rc;
	if (l->ptype == PT_INT32) {
		int32_t x = (int32_t)rn_i128_to_i64(v);
		rc = rn_buf_append(&l->vals, &x, 4);
		stat_int(&l->cs, x);
	} else if (l->ptype == PT_INT64) {
		int64_t x = rn_i128_to_i64(v);
		rc = rn_buf_append(&l->vals, &x, 8);
		stat_int(&l->cs, x);
	} else { /* FLBA: the low type_len bytes, big-endian */
		uint8_t be[16];
		rn_i128_to_be(v, be);
		rc = rn_buf_append(&l->vals, be + 16 - l->type_len, (size_t)l->type_len);
		stat_dec(&l->cs, v);
	}
	return rc;
}

/* lo <= v <= hi */
static int in_range(i128 v, int64_t lo, int64_t hi)
{
	return rn_i128_cmp(v, rn_i128_from_i64(lo)) >= 0 &&
	       rn_i128_cmp(v, rn_i128_from_i64(hi)) <= 0;
}

/* Range check of v for the leaf column child col would write, before any side effect. */
static int range_ok(struct rn_pq_writer *w, size_t col, i128 v)
{
	struct pq_node *t = target(w, col);
	if (!t || t->kind != K_LEAF)
		return 1; /* leaf_begin reports the error */
	switch (t->col->type) {
	case RN_PQ_INT8: return in_range(v, -128, 127);
	case RN_PQ_INT16: return in_range(v, -32768, 32767);
	case RN_PQ_INT32:
	case RN_PQ_DATE: return in_range(v, INT32_MIN, INT32_MAX);
	case RN_PQ_DECIMAL:
		if (t->col->precision <= 18) {
			int64_t lim = pow10_i64[t->col->precision];
			return in_range(v, 1 - lim, lim - 1);
		}
		return dec_fits(v, t->col->precision);
	default: return 1;
	}
}

int rn_pq_put_i32(struct rn_pq_writer *w, size_t col, int32_t v)
{
	struct pq_leaf *l;
	uint32_t types = T(RN_PQ_INT32) | T(RN_PQ_INT16) | T(RN_PQ_INT8) | T(RN_PQ_DATE);
	struct pq_node *t = target(w, col);
	int rc;
	if (t && t->kind == K_LEAF && t->col->type == RN_PQ_DECIMAL && t->col->precision <= 9)
		types |= T(RN_PQ_DECIMAL);
	if (!range_ok(w, col, rn_i128_from_i64(v)))
		return (t && t->kind == K_LEAF && (types & T(t->col->type))) ? RN_ERANGE
									     : RN_EINVAL;
	if ((rc = leaf_begin(w, col, types, &l)))
		return rc;
	return put_intlike(l, rn_i128_from_i64(v));
}

int rn_pq_put_i64(struct rn_pq_writer *w, size_t col, int64_t v)
{
	struct pq_leaf *l;
	uint32_t types =
		T(RN_PQ_INT64) | T(RN_PQ_TIMESTAMP) | T(RN_PQ_TIMESTAMP_NTZ) | T(RN_PQ_DECIMAL);
	struct pq_node *t = target(w, col);
	int rc;
	if (!range_ok(w, col, rn_i128_from_i64(v)))
		return (t && t->kind == K_LEAF && (types & T(t->col->type))) ? RN_ERANGE
									     : RN_EINVAL;
	if ((rc = leaf_begin(w, col, types, &l)))
		return rc;
	return put_intlike(l, rn_i128_from_i64(v));
}

int rn_pq_put_decimal(struct rn_pq_writer *w, size_t col, const uint8_t be[16])
{
	struct pq_node *t = target(w, col);
	struct pq_leaf *l;
	i128 v = rn_i128_from_be(be);
	int rc;
	if (t && t->kind == K_LEAF && t->col->type == RN_PQ_DECIMAL && !range_ok(w, col, v))
		return RN_ERANGE;
	if ((rc = leaf_begin(w, col, T(RN_PQ_DECIMAL), &l)))
		return rc;
	return put_intlike(l, v);
}

int rn_pq_put_double(struct rn_pq_writer *w, size_t col, double v)
{
	struct pq_leaf *l;
	int rc;
	if ((rc = leaf_begin(w, col, T(RN_PQ_DOUBLE), &l)))
		return rc;
	stat_float(&l->cs, v);
	return rn_buf_append(&l->vals, &v, 8);
}

int rn_pq_put_float(struct rn_pq_writer *w, size_t col, float v)
{
	struct pq_leaf *l;
	int rc;
	if ((rc = leaf_begin(w, col, T(RN_PQ_FLOAT), &l)))
		return rc;
	stat_float(&l->cs, v);
	return rn_buf_append(&l->vals, &v, 4);
}

int rn_pq_put_bool(struct rn_pq_writer *w, size_t col, int v)
{
	struct pq_leaf *l;
	int rc;
	if ((rc = leaf_begin(w, col, T(RN_PQ_BOOL), &l)))
		return rc;
	stat_int(&l->cs, v ? 1 : 0);
	return rn_buf_append_u8(&l->vals, v ? 1 : 0);
}

int rn_pq_put_null(struct rn_pq_writer *w, size_t col)
{
	struct pq_node *t = target(w, col);
	int rc;
	if (!t || t->repetition != REP_OPTIONAL)
		return RN_EINVAL;
	if ((rc = enter(w, col, t)))
		return rc;
	return emit_null(w, t);
}

int rn_pq_begin(struct rn_pq_writer *w, size_t col)
{
	struct pq_node *t = target(w, col);
	struct pq_frame *f;
	int rc;
	if (!t || (t->kind != K_STRUCT && t->kind != K_LIST && t->kind != K_MAP) ||
	    w->depth >= MAX_DEPTH)
		return RN_EINVAL;
	if ((rc = enter(w, col, t)))
		return rc;
	f = &w->stack[++w->depth];
	f->node = (uint32_t)(t - w->nodes);
	f->elems = 0;
	f->key_open = 0;
	if (t->kind == K_STRUCT)
		for (uint32_t i = 0; i < t->nchild; i++)
			w->nodes[t->child + i].set = 0;
	return 0;
}

/* Null for every unset optional field of struct g; RN_EINVAL (and nothing written) if a
 * required one is unset. */
static int close_struct(struct rn_pq_writer *w, struct pq_node *g)
{
	int rc;
	for (uint32_t i = 0; i < g->nchild; i++)
		if (!w->nodes[g->child + i].set &&
		    w->nodes[g->child + i].repetition == REP_REQUIRED)
			return RN_EINVAL;
	for (uint32_t i = 0; i < g->nchild; i++) {
		struct pq_node *c = &w->nodes[g->child + i];
		if (!c->set && (rc = emit_null(w, c)))
			return rc;
		c->set = 0;
	}
	return 0;
}

int rn_pq_end(struct rn_pq_writer *w)
{
	struct pq_frame *f = &w->stack[w->depth];
	struct pq_node *g = &w->nodes[f->node];
	int rc = 0;

	if (w->depth == 0)
		return RN_EINVAL;
	if (g->kind == K_STRUCT) {
		rc = close_struct(w, g);
	} else {
		const struct pq_node *r = &w->nodes[g->child];
		if (g->kind == K_MAP && f->key_open) {
			struct pq_node *v = &w->nodes[r->child + 1];
			if (v->repetition == REP_REQUIRED)
				return RN_EINVAL;
			if ((rc = emit_null(w, v)))
				return rc;
			f->key_open = 0;
		}
		if (f->elems == 0) /* empty: present, but its repeated child is not */
			rc = emit_empty(w, g, g->def);
	}
	if (rc)
		return rc;
	w->depth--;
	return 0;
}

void rn_pq_row_abort(struct rn_pq_writer *w)
{
	for (size_t i = 0; i < w->nleaves; i++) {
		struct pq_leaf *l = &w->leaves[i];
		l->vals.len = l->mark.vals;
		l->idx.len = l->mark.idx;
		l->defs.len = l->mark.defs;
		l->reps.len = l->mark.reps;
		l->entries = l->mark.entries;
		l->cs.nulls = l->mark.nulls;
		l->cs.nans = l->mark.nans;
		l->next_rep = 0;
	}
	for (size_t i = 0; i < w->nnodes; i++) {
		w->nodes[i].nulls = w->nodes[i].nulls_mark;
		w->nodes[i].set = 0;
	}
	w->depth = 0;
	w->stack[0].elems = 0;
	w->in_row = 0;
}

/* ---- pages and chunks ------------------------------------------------------------------ */

/* Appends a v1 level section (u32 length + RLE hybrid) to body. */
static int put_levels(struct rn_buf *body, const struct rn_buf *lv, int max)
{
	size_t start = body->len;
	uint32_t len;
	int rc;
	if ((rc = rn_buf_append(body, "\0\0\0\0", 4)) ||
	    (rc = rn_pq__rle_u8(body, lv->data, lv->len, rn_pq__bit_width((uint32_t)max))))
		return rc;
	len = (uint32_t)(body->len - start - 4);
	memcpy(body->data + start, &len, 4);
	return 0;
}

/* Header + compressed body appended to dst (pages.c), within the writer's cap on buffered
 * compressed bytes (which counts what was buffered before this page; dst may be the body).
 * Sets *hdr_len. dst is unchanged on failure. */
static int emit_page(struct rn_pq_writer *w, struct rn_buf *dst, int type, uint32_t nvals,
		     int encoding, const uint8_t *src, size_t len, size_t guess, size_t *hdr_len)
{
	size_t start = dst->len;
	int rc = rn_pq__page_encode(&w->hdr, dst, type, nvals, encoding, src, len, guess, w->level,
				    w->level <= 2 ? PAGE_HASH_LOG : 0, hdr_len);
	if (rc)
		return rc;
	if ((dst == &w->body ? start : w->body.len) + w->rg_comp + (dst->len - start) >
	    w->max_bytes) {
		dst->len = start;
		return RN_ENOMEM;
	}
	return 0;
}

/*
 * Moves the compressed pages at the front of l's pend list into its chunk, in order: those
 * done, or (wait) all of them, compressing here any no worker has started. An error (the
 * page's compression, or the cap on buffered bytes) leaves the file unusable.
 */
static int collect(struct rn_pq_writer *w, struct pq_leaf *l, int wait)
{
	size_t i = 0;
	int rc = 0;
	for (; i < l->npend; i++) {
		struct rn_pq_page *p = l->pend[i];
		if (!wait && !rn_pq__page_ready(p))
			break;
		if ((rc = rn_pq__page_wait(p)))
			break;
		size_t n = p->out.len;
		if (w->body.len + w->rg_comp + n > w->max_bytes) {
			rc = RN_ENOMEM;
			break;
		}
		if ((rc = rn_buf_append(&l->chunk, p->out.data, n)))
			break;
		l->last_comp = n - p->hl;
		w->rg_comp += n;
		l->chunk_uncomp += (int64_t)(p->hl + p->len);
		w->pend_raw -= p->len;
		w->jobs -= p->async;
		rn_pq__page_unref(p);
	}
	if (i) {
		memmove(l->pend, l->pend + i, (l->npend - i) * sizeof(*l->pend));
		l->npend -= i;
	}
	return rc;
}

/* Takes every leaf's pages that are done (no wait). */
static int collect_ready(struct rn_pq_writer *w)
{
	int rc;
	for (size_t i = 0; i < w->nleaves; i++)
		if (w->leaves[i].npend && (rc = collect(w, &w->leaves[i], 0)))
			return rc;
	return 0;
}

/*
 * Hands the page body (src, len), which lies in l->vals or in w->scratch, to a page job: the
 * page takes that buffer's storage, so nothing is copied. Submitted to the pool while fewer
 * than page_jobs are in flight (after taking in those done), else compressed here.
 */
static int cut_async(struct rn_pq_writer *w, struct pq_leaf *l, const uint8_t *src, size_t len,
		     int encoding)
{
	struct rn_buf *from =
		src >= l->vals.data && src < l->vals.data + l->vals.cap ? &l->vals : &w->scratch;
	struct rn_pq_page *p;
	int rc;

	if (rn_grow(&l->pend, &l->cappend, l->npend, sizeof(*l->pend), 8, SIZE_MAX))
		return RN_ENOMEM;
	if ((rc = rn_pq__page_new(&p, from, (size_t)(src - from->data), len)))
		return rc;
	p->type = PAGE_DATA;
	p->nvals = l->entries;
	p->encoding = encoding;
	p->level = w->level;
	p->hash_log = w->level <= 2 ? PAGE_HASH_LOG : 0;
	p->guess = l->last_comp;
	l->pend[l->npend++] = p;
	w->pend_raw += len;
	if (w->jobs >= w->page_jobs && (rc = collect_ready(w)))
		return rc;
	if (w->jobs < w->page_jobs) {
		rn_pq__page_ref(p); /* the job's */
		if (w->page_submit(w->page_ctx, rn_pq__page_run, rn_pq__page_done, p) == 0) {
			p->async = 1;
			w->jobs++;
			return 0;
		}
		rn_pq__page_unref(p);
	}
	rn_pq__page_run(p); /* here: the pool is full, or too much is in flight */
	return p->rc;
}

/* Encodes, compresses and appends the open page of leaf l to its chunk; with async (and a
 * page_submit), hands it to a page job instead (cut_async). */
static int cut_page(struct rn_pq_writer *w, struct pq_leaf *l, int async)
{
	struct rn_buf *body = &w->scratch, *lv = &w->lv;
	int dict = l->dict_on && l->idx.len > 0; /* an all-null page needs no dictionary */
	const uint8_t *src;
	size_t hl, before = l->chunk.len, len, vlen = l->vals.len - l->pre;
	int rc;

	async = async && w->page_submit;
	if (!async && l->npend && (rc = collect(w, l, 1))) /* the pages before this one */
		return rc;
	if (l->entries == 0)
		return 0;
	rn_buf_reset(lv);
	if (l->max_rep && (rc = put_levels(lv, &l->reps, l->max_rep)))
		return rc;
	if (l->max_def && (rc = put_levels(lv, &l->defs, l->max_def)))
		return rc;
	if (!dict && l->ptype != PT_BOOLEAN && l->vals.data && lv->len <= l->pre) {
		/* levels into the room before the values: the page is compressed in place */
		if (lv->len)
			memcpy(l->vals.data + l->pre - lv->len, lv->data, lv->len);
		src = l->vals.data + l->pre - lv->len;
		len = lv->len + vlen;
	} else {
		rn_buf_reset(body);
		if ((rc = rn_buf_append(body, lv->data, lv->len)))
			return rc;
		if (dict) {
			int width = rn_pq__bit_width(l->dict_n - 1);
			if ((rc = rn_buf_append_u8(body, (uint8_t)width)) ||
			    (rc = rn_pq__rle_u32(body, (const uint32_t *)(const void *)l->idx.data,
						 l->idx.len / 4, width)))
				return rc;
		} else if (l->ptype == PT_BOOLEAN) {
			size_t nb = (vlen + 7) / 8;
			const uint8_t *v = vlen ? l->vals.data + l->pre : NULL;
			if ((rc = rn_buf_reserve(body, nb)))
				return rc;
			memset(body->data + body->len, 0, nb);
			for (size_t i = 0; i < vlen; i++)
				body->data[body->len + i / 8] |= (uint8_t)(v[i] << (i % 8));
			body->len += nb;
		} else if (vlen && (rc = rn_buf_append(body, l->vals.data + l->pre, vlen))) {
			return rc;
		}
		src = body->data;
		len = body->len;
	}
	if (async) {
		size_t vcap = l->vals.cap;
		if ((rc = cut_async(w, l, src, len, dict ? ENC_RLE_DICTIONARY : ENC_PLAIN)))
			return rc;
		/* vals gave its storage to the page: room for a page like it */
		if (!l->vals.data && vcap > l->pre_want)
			(void)rn_buf_reserve(&l->vals, vcap);
	} else {
		if ((rc = emit_page(w, &l->chunk, PAGE_DATA, l->entries,
				    dict ? ENC_RLE_DICTIONARY : ENC_PLAIN, src, len, l->last_comp,
				    &hl)))
			return rc;
		l->last_comp = l->chunk.len - before - hl;
		w->rg_comp += l->chunk.len - before;
		l->chunk_uncomp += (int64_t)(hl + len);
	}
	l->chunk_entries += l->entries;
	if (dict)
		l->dict_pages++;
	else
		l->plain_pages++;
	l->entries = 0;
	/* room for levels as large as the largest so far (rounded up, so that a page with a
	 * few more levels fits too); without it this page takes the copying path above */
	if (lv->len > l->pre_want)
		l->pre_want = (lv->len + 63) & ~(size_t)63;
	l->vals.len = 0;
	l->pre = rn_buf_reserve(&l->vals, l->pre_want) ? 0 : l->pre_want;
	l->vals.len = l->pre;
	rn_buf_reset(&l->idx);
	rn_buf_reset(&l->defs);
	rn_buf_reset(&l->reps);
	memset(&l->mark, 0, sizeof(l->mark));
	l->mark.vals = l->pre;
	l->mark.nulls = l->cs.nulls;
	l->mark.nans = l->cs.nans;
	return 0;
}

/* Parquet footer statistics: null_count always, min/max as PLAIN bytes when known. */
static void write_stats(struct rn_tc *t, const struct pq_leaf *l)
{
	const struct pq_stats *s = &l->cs;
	uint8_t minb[16], maxb[16];
	const void *minp = minb, *maxp = maxb;
	size_t len = 0, maxlen = 0;

	rn_tc_struct_begin(t, 12);
	rn_tc_i64(t, 3, s->nulls);
	if (s->has) {
		switch (l->ptype) {
		case PT_INT32: {
			int32_t a = (int32_t)s->min_i, b = (int32_t)s->max_i;
			memcpy(minb, &a, 4);
			memcpy(maxb, &b, 4);
			len = maxlen = 4;
			break;
		}
		case PT_INT64:
			memcpy(minb, &s->min_i, 8);
			memcpy(maxb, &s->max_i, 8);
			len = maxlen = 8;
			break;
		case PT_DOUBLE: { /* a zero bound is -0.0 as min and +0.0 as max */
			double a = s->min_d == 0 ? -0.0 : s->min_d,
			       b = s->max_d == 0 ? 0.0 : s->max_d;
			memcpy(minb, &a, 8);
			memcpy(maxb, &b, 8);
			len = maxlen = 8;
			break;
		}
		case PT_FLOAT: {
			float a = s->min_d == 0 ? -0.0f : (float)s->min_d;
			float b = s->max_d == 0 ? 0.0f : (float)s->max_d;
			memcpy(minb, &a, 4);
			memcpy(maxb, &b, 4);
			len = maxlen = 4;
			break;
		}
		case PT_BOOLEAN:
			minb[0] = (uint8_t)s->min_i;
			maxb[0] = (uint8_t)s->max_i;
			len = maxlen = 1;
			break;
		case PT_FLBA: {
			uint8_t a[16], b[16];
			rn_i128_to_be(s->min_x, a);
			rn_i128_to_be(s->max_x, b);
			memcpy(minb, a + 16 - l->type_len, (size_t)l->type_len);
			memcpy(maxb, b + 16 - l->type_len, (size_t)l->type_len);
			len = maxlen = (size_t)l->type_len;
			break;
		}
		case PT_BYTE_ARRAY:
			if (s->min_s.len <= STAT_EXACT_MAX && s->max_s.len <= STAT_EXACT_MAX) {
				minp = s->min_s.data ? (const void *)s->min_s.data : "";
				maxp = s->max_s.data ? (const void *)s->max_s.data : "";
				len = s->min_s.len;
				maxlen = s->max_s.len;
			} else {
				minp = NULL;
			}
			break;
		}
		if (minp) {
			rn_tc_binary(t, 5, maxp, maxlen);
			rn_tc_binary(t, 6, minp, len);
		}
	}
	if (l->stype == ST_FLOAT)
		rn_tc_i64(t, 9, s->nans); /* nan_count: required for floating point columns */
	rn_tc_struct_end(t);
}

/* Moves leaf l's chunk (dictionary page first) into the body and describes it in t. */
static int close_chunk(struct rn_pq_writer *w, struct pq_leaf *l, struct rn_tc *t, int64_t *uncomp,
		       int64_t *comp)
{
	int64_t start = w->pos + (int64_t)w->body.len, dict_off = -1, cu;
	size_t before = w->body.len, hl;
	const char *path[2 * MAX_DEPTH + 2];
	int np = 0, rc;

	if ((rc = cut_page(w, l, 0)))
		return rc;
	cu = l->chunk_uncomp; /* its last pages included (taken in, or cut just now) */
	if (l->dict_pages) {
		if ((rc = emit_page(w, &w->body, PAGE_DICTIONARY, l->dict_n, ENC_PLAIN,
				    l->dict.data, l->dict.len, 0, &hl)))
			return rc;
		dict_off = start;
		cu += (int64_t)(hl + l->dict.len);
	}
	if ((rc = rn_buf_append(&w->body, l->chunk.data, l->chunk.len)))
		return rc;
	w->rg_comp -= l->chunk.len;
	*uncomp += cu;
	*comp += (int64_t)(w->body.len - before);

	rn_tc_elem_struct_begin(t); /* ColumnChunk */
	rn_tc_i64(t, 2, 0);
	rn_tc_struct_begin(t, 3); /* ColumnMetaData */
	rn_tc_i32(t, 1, l->ptype);
	rn_tc_list_begin(t, 2, RN_TC_I32, l->dict_pages ? 3 : 2);
	rn_tc_elem_i32(t, ENC_PLAIN);
	rn_tc_elem_i32(t, ENC_RLE);
	if (l->dict_pages)
		rn_tc_elem_i32(t, ENC_RLE_DICTIONARY);
	for (const struct pq_node *n = l->node; n->col || n->kind == K_REPEATED;
	     n = &w->nodes[n->parent])
		path[np++] = n->name;
	rn_tc_list_begin(t, 3, RN_TC_BINARY, (uint32_t)np);
	while (np > 0) {
		np--;
		rn_tc_elem_binary(t, path[np], strlen(path[np]));
	}
	rn_tc_i32(t, 4, CODEC_ZSTD);
	rn_tc_i64(t, 5, l->chunk_entries);
	rn_tc_i64(t, 6, cu);
	rn_tc_i64(t, 7, (int64_t)(w->body.len - before));
	rn_tc_i64(t, 9,
		  dict_off >= 0 ? start + (int64_t)(w->body.len - before - l->chunk.len) : start);
	if (dict_off >= 0)
		rn_tc_i64(t, 11, dict_off);
	write_stats(t, l);
	rn_tc_struct_end(t); /* ColumnMetaData */
	rn_tc_struct_end(t); /* ColumnChunk */

	if ((rc = stats_merge(&l->fs, &l->cs, l->stype)))
		return rc;
	stats_reset(&l->cs);
	memset(&l->mark, 0, sizeof(l->mark));
	l->mark.vals = l->pre;
	rn_buf_reset(&l->chunk);
	l->chunk_entries = l->chunk_uncomp = 0;
	l->dict_pages = l->plain_pages = 0;
	rn_buf_reset(&l->dict);
	l->dict_n = 0;
	if (l->slots)
		memset(l->slots, 0, ((size_t)l->slot_mask + 1) * sizeof(*l->slots));
	l->dict_on = l->dict_enabled;
	return 0;
}

static int close_row_group(struct rn_pq_writer *w)
{
	struct rn_tc t;
	int64_t uncomp = 0, comp = 0, start;
	int rc;

	if (w->pos == 0 && w->body.len == 0 && (rc = rn_buf_append(&w->body, "PAR1", 4)))
		return w->broken = rc;
	start = w->pos + (int64_t)w->body.len;
	rn_tc_init(&t, &w->rgmeta);
	rn_tc_elem_struct_begin(&t); /* RowGroup */
	rn_tc_list_begin(&t, 1, RN_TC_STRUCT, (uint32_t)w->nleaves);
	for (size_t i = 0; i < w->nleaves; i++)
		if ((rc = close_chunk(w, &w->leaves[i], &t, &uncomp, &comp)))
			return w->broken = rc;
	rn_tc_i64(&t, 2, uncomp);
	rn_tc_i64(&t, 3, (int64_t)w->rg_rows);
	rn_tc_i64(&t, 5, start);
	rn_tc_i64(&t, 6, comp);
	rn_tc_struct_end(&t);
	if (t.err)
		return w->broken = t.err;
	w->rg_n++;
	w->rg_rows = 0;
	w->rg_comp = 0;
	return 0;
}

int rn_pq_row_end(struct rn_pq_writer *w)
{
	size_t open = 0;
	int rc;

	if (w->broken)
		return w->broken;
	if (w->depth != 0) {
		rn_pq_row_abort(w);
		return RN_EINVAL;
	}
	if ((rc = close_struct(w, &w->nodes[0]))) {
		rn_pq_row_abort(w);
		return rc;
	}
	for (size_t i = 0; i < w->nleaves; i++) {
		struct pq_leaf *l = &w->leaves[i];
		size_t n = l->vals.len - l->pre + l->idx.len + l->defs.len + l->reps.len;
		l->next_rep = 0;
		if (n >= w->page_bytes) {
			if ((rc = cut_page(w, l, 1)))
				return w->broken = rc;
			n = 0;
		}
		l->mark.vals = l->vals.len;
		l->mark.idx = l->idx.len;
		l->mark.defs = l->defs.len;
		l->mark.reps = l->reps.len;
		l->mark.entries = l->entries;
		l->mark.nulls = l->cs.nulls;
		l->mark.nans = l->cs.nans;
		open += n;
	}
	for (size_t i = 0; i < w->nnodes; i++)
		w->nodes[i].nulls_mark = w->nodes[i].nulls;
	w->in_row = 0;
	w->rows++;
	w->rg_rows++;
	if ((w->rg_row_cap && w->rg_rows >= w->rg_row_cap) ||
	    w->rg_comp + (w->pend_raw + open) / 4 >= w->rg_byte_cap)
		return close_row_group(w);
	return 0;
}

int rn_pq_end_row_group(struct rn_pq_writer *w)
{
	if (w->broken)
		return w->broken;
	if (w->in_row || w->depth)
		return RN_EINVAL;
	return w->rg_rows ? close_row_group(w) : 0;
}

size_t rn_pq_rows(const struct rn_pq_writer *w)
{
	return w->rows;
}

size_t rn_pq_row_groups(const struct rn_pq_writer *w)
{
	return w->rg_n;
}

size_t rn_pq_bytes(const struct rn_pq_writer *w)
{
	size_t n = (size_t)w->pos + w->body.len + w->rg_comp + w->pend_raw / 4;
	if (w->pos == 0 && w->body.len == 0) /* the magic, still to come */
		n += 4;
	for (size_t i = 0; i < w->nleaves; i++) /* open pages, assuming ~4x compression */
		n += (w->leaves[i].vals.len - w->leaves[i].pre + w->leaves[i].idx.len / 2) / 4;
	return n;
}

size_t rn_pq_mem(const struct rn_pq_writer *w)
{
	/* pages in page jobs: their raw bytes until compressed (then their chunk's) */
	size_t n =
		w->body.cap + w->rgmeta.cap + w->scratch.cap + w->hdr.cap + w->lv.cap + w->pend_raw;
	for (size_t i = 0; i < w->nleaves; i++) {
		const struct pq_leaf *l = &w->leaves[i];
		n += l->vals.cap + l->idx.cap + l->defs.cap + l->reps.cap + l->chunk.cap +
		     l->dict.cap + (size_t)l->dict_offcap * sizeof(*l->dict_off);
		if (l->slots)
			n += ((size_t)l->slot_mask + 1) * sizeof(*l->slots);
	}
	return n;
}

int rn_pq_take(struct rn_pq_writer *w, struct rn_buf *out)
{
	int rc;
	if (w->pos == 0 && w->body.len == 0) { /* nothing closed yet: just the magic */
		if ((rc = rn_buf_append(out, "PAR1", 4)))
			return rc;
		w->pos = 4;
		return 0;
	}
	if ((rc = rn_buf_append(out, w->body.data, w->body.len)))
		return rc;
	w->pos += (int64_t)w->body.len;
	rn_buf_reset(&w->body);
	return 0;
}

/* ---- footer ---------------------------------------------------------------------------- */

/* The hard cap of b (rn_buf.h: 0 means the default). */
static size_t buf_cap(const struct rn_buf *b)
{
	return b->max ? b->max : RN_BUF_DEFAULT_MAX;
}

/* Exchanges the storage (data, len, cap) of a and b; each keeps its own cap (max). */
static void buf_swap(struct rn_buf *a, struct rn_buf *b)
{
	struct rn_buf t = *a;
	a->data = b->data;
	a->len = b->len;
	a->cap = b->cap;
	b->data = t.data;
	b->len = t.len;
	b->cap = t.cap;
}

static void write_logical(struct rn_tc *t, const struct rn_pq_col *c)
{
	int ct = -1;
	switch (c->type) {
	case RN_PQ_STRING: ct = CT_UTF8; break;
	case RN_PQ_TIMESTAMP:
	case RN_PQ_TIMESTAMP_NTZ: ct = CT_TIMESTAMP_MICROS; break;
	case RN_PQ_INT16: ct = CT_INT_16; break;
	case RN_PQ_INT8: ct = CT_INT_8; break;
	case RN_PQ_DATE: ct = CT_DATE; break;
	case RN_PQ_DECIMAL: ct = CT_DECIMAL; break;
	case RN_PQ_LIST: ct = CT_LIST; break;
	case RN_PQ_MAP: ct = CT_MAP; break;
	default: return;
	}
	rn_tc_i32(t, 6, ct);
	if (c->type == RN_PQ_DECIMAL) {
		rn_tc_i32(t, 7, c->scale);
		rn_tc_i32(t, 8, c->precision);
	}
	rn_tc_struct_begin(t, 10); /* LogicalType union */
	switch (c->type) {
	case RN_PQ_STRING: rn_tc_struct_begin(t, 1); break;
	case RN_PQ_MAP: rn_tc_struct_begin(t, 2); break;
	case RN_PQ_LIST: rn_tc_struct_begin(t, 3); break;
	case RN_PQ_DECIMAL:
		rn_tc_struct_begin(t, 5);
		rn_tc_i32(t, 1, c->scale);
		rn_tc_i32(t, 2, c->precision);
		break;
	case RN_PQ_DATE: rn_tc_struct_begin(t, 6); break;
	case RN_PQ_TIMESTAMP:
	case RN_PQ_TIMESTAMP_NTZ:
		rn_tc_struct_begin(t, 8);
		rn_tc_bool(t, 1, c->type == RN_PQ_TIMESTAMP); /* isAdjustedToUTC */
		rn_tc_struct_begin(t, 2);                     /* TimeUnit */
		rn_tc_struct_begin(t, 2);                     /* MICROS */
		rn_tc_struct_end(t);
		rn_tc_struct_end(t);
		break;
	default: /* INT(8|16, signed) */
		rn_tc_struct_begin(t, 10);
		rn_tc_i8(t, 1, c->type == RN_PQ_INT8 ? 8 : 16);
		rn_tc_bool(t, 2, 1);
		break;
	}
	rn_tc_struct_end(t);
	rn_tc_struct_end(t);
}

static void write_schema_node(struct rn_tc *t, const struct rn_pq_writer *w, uint32_t idx)
{
	const struct pq_node *n = &w->nodes[idx];
	rn_tc_elem_struct_begin(t);
	if (n->kind == K_LEAF) {
		const struct pq_leaf *l = &w->leaves[n->leaf_lo];
		rn_tc_i32(t, 1, l->ptype);
		if (l->ptype == PT_FLBA)
			rn_tc_i32(t, 2, l->type_len);
	}
	if (idx != 0)
		rn_tc_i32(t, 3, n->repetition);
	rn_tc_binary(t, 4, n->name, strlen(n->name));
	if (n->kind != K_LEAF)
		rn_tc_i32(t, 5, (int32_t)n->nchild);
	if (n->col)
		write_logical(t, n->col);
	rn_tc_struct_end(t);
	if (n->kind != K_LEAF)
		for (uint32_t i = 0; i < n->nchild; i++)
			write_schema_node(t, w, n->child + i);
}

/* Number of bytes of the first `cp` code points of UTF-8 text s (whole string if shorter). */
static size_t utf8_prefix(const uint8_t *s, size_t len, size_t cp, int *whole)
{
	size_t i = 0, n = 0;
	while (i < len && n < cp) {
		uint8_t c = s[i];
		size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (i + k > len)
			break;
		i += k;
		n++;
	}
	*whole = i >= len;
	return i;
}

/*
 * Delta's upper bound for a string column's max (as Delta's own writer truncates it): the max
 * itself if it has at most DELTA_PREFIX_CP code points; else its first DELTA_PREFIX_CP code
 * points, then U+10FFFF. Appending U+10FFFF makes a bound only if the code point it replaces
 * is smaller, so the prefix first extends over any U+10FFFF that follows; past 2 x
 * DELTA_PREFIX_CP code points, or past the bytes known when s is the cut start of a longer
 * value (`cut`), there is no bound and *has is 0. Appends to out (empty); RN_ENOMEM.
 */
static int delta_max(struct rn_buf *out, const uint8_t *s, size_t len, int cut, int *has)
{
	static const uint8_t top[4] = {0xf4, 0x8f, 0xbf, 0xbf}; /* U+10FFFF */
	size_t cp = DELTA_PREFIX_CP;
	int whole;
	size_t n = utf8_prefix(s, len, DELTA_PREFIX_CP, &whole);

	*has = 0;
	while (!(whole && !cut) && n + 4 <= len && memcmp(s + n, top, 4) == 0 &&
	       cp < 2 * DELTA_PREFIX_CP) {
		n += 4;
		cp++;
	}
	if (n >= len && !cut) { /* nothing left to cut: the exact max */
		*has = 1;
		return len ? rn_buf_append(out, s, len) : 0;
	}
	if ((n + 4 <= len && memcmp(s + n, top, 4) == 0) || (cut && n + 4 > len))
		return 0; /* the next code point may be U+10FFFF: no bound within the limits */
	*has = 1;
	int rc = rn_buf_append(out, s, n);
	return rc ? rc : rn_buf_append(out, top, 4);
}

static void dec_be(uint8_t be[16], i128 v)
{
	rn_i128_to_be(v, be);
}

/* Fills l->last with the Delta-ready statistics of the file just finished. */
static int freeze_stats(struct pq_leaf *l)
{
	struct rn_pq_colstats *s = &l->last;
	const struct pq_stats *f = &l->fs;
	int whole, rc;

	memset(s, 0, sizeof(*s));
	s->nulls = f->nulls;
	s->nans = f->nans;
	if (!f->has)
		return 0;
	switch (l->col->type) {
	case RN_PQ_INT32:
	case RN_PQ_INT64:
	case RN_PQ_INT16:
	case RN_PQ_INT8:
	case RN_PQ_DATE:
	case RN_PQ_TIMESTAMP:
	case RN_PQ_TIMESTAMP_NTZ:
		s->has_min = s->has_max = 1;
		s->min_i = f->min_i;
		s->max_i = f->max_i;
		break;
	case RN_PQ_DECIMAL:
		s->has_min = s->has_max = 1;
		if (l->stype == ST_INT) {
			s->min_i = f->min_i;
			s->max_i = f->max_i;
			dec_be(s->min_dec, rn_i128_from_i64(f->min_i));
			dec_be(s->max_dec, rn_i128_from_i64(f->max_i));
		} else {
			dec_be(s->min_dec, f->min_x);
			dec_be(s->max_dec, f->max_x);
		}
		break;
	case RN_PQ_DOUBLE:
	case RN_PQ_FLOAT:
		if (f->nans) /* Spark orders NaN above everything: no safe bound */
			break;
		s->has_min = s->has_max = 1;
		s->min_d = f->min_d;
		s->max_d = f->max_d;
		break;
	case RN_PQ_STRING: {
		size_t n = utf8_prefix(f->min_s.data, f->min_s.len, DELTA_PREFIX_CP, &whole);
		rn_buf_reset(&l->dmin);
		rn_buf_reset(&l->dmax);
		if ((rc = rn_buf_append(&l->dmin, f->min_s.data, n)))
			return rc;
		if ((rc = delta_max(&l->dmax, f->max_s.data, f->max_s.len,
				    f->max_s.len >= STAT_KEEP, &s->has_max)))
			return rc;
		s->has_min = 1;
		s->min_s = l->dmin.data ? l->dmin.data : (const uint8_t *)"";
		s->min_len = l->dmin.len;
		s->max_s = l->dmax.data ? l->dmax.data : (const uint8_t *)"";
		s->max_len = l->dmax.len;
		break;
	}
	default: break; /* BINARY, BOOL: Delta keeps only null counts */
	}
	return 0;
}

int rn_pq_finish(struct rn_pq_writer *w, struct rn_buf *out)
{
	struct rn_buf meta = {0};
	struct rn_tc t;
	size_t start = out->len, body_len0 = w->body.len;
	uint32_t mlen;
	int rc = 0, swapped = 0;

	if (w->broken)
		return w->broken;
	if (w->in_row || w->depth)
		rn_pq_row_abort(w);
	if (w->rows == 0)
		return RN_EINVAL;
	if (w->rg_rows && (rc = close_row_group(w)))
		return rc;

	rn_tc_init(&t, &meta);
	rn_tc_i32(&t, 1, 1);
	rn_tc_list_begin(&t, 2, RN_TC_STRUCT, (uint32_t)w->nnodes);
	write_schema_node(&t, w, 0);
	rn_tc_i64(&t, 3, (int64_t)w->rows);
	rn_tc_list_begin(&t, 4, RN_TC_STRUCT, (uint32_t)w->rg_n);
	rn_tc_raw(&t, w->rgmeta.data, w->rgmeta.len);
	rn_tc_binary(&t, 6, w->created_by, strlen(w->created_by));
	rn_tc_list_begin(&t, 7, RN_TC_STRUCT, (uint32_t)w->nleaves);
	for (size_t i = 0; i < w->nleaves; i++) {
		rn_tc_elem_struct_begin(&t);
		rn_tc_struct_begin(&t, 1); /* TypeDefinedOrder */
		rn_tc_struct_end(&t);
		rn_tc_struct_end(&t);
	}
	rn_tc_stop(&t);
	if ((rc = t.err))
		goto fail;
	mlen = (uint32_t)meta.len;
	/* An empty out takes the body's storage instead of a copy of it (a file's worth of
	 * bytes); the body gets out's, so a caller that keeps its buffer between files has the
	 * two trade places, neither ever freshly allocated. Only when both caps allow it. */
	if (out->len == 0 && buf_cap(out) >= w->body.len + meta.len + 8 &&
	    buf_cap(out) >= w->body.cap && buf_cap(&w->body) >= out->cap) {
		buf_swap(out, &w->body);
		swapped = 1;
	} else if ((rc = rn_buf_append(out, w->body.data, w->body.len))) {
		goto fail;
	}
	if ((rc = rn_buf_append(out, meta.data, meta.len)) || (rc = rn_buf_append(out, &mlen, 4)) ||
	    (rc = rn_buf_append(out, "PAR1", 4)))
		goto fail;

	/* reset for the next file, keeping the statistics of this one */
	for (size_t i = 0; i < w->nleaves; i++) {
		struct pq_leaf *l = &w->leaves[i];
		if ((rc = freeze_stats(l)))
			goto fail;
		stats_reset(&l->fs);
	}
	for (size_t i = 0; i < w->nnodes; i++) {
		struct pq_node *n = &w->nodes[i];
		memset(&n->last, 0, sizeof(n->last));
		n->last.nulls = n->nulls;
		n->nulls = n->nulls_mark = 0;
	}
	w->rows = 0;
	w->rg_n = 0;
	w->pos = 0;
	rn_buf_reset(&w->body);
	rn_buf_reset(&w->rgmeta);
	rn_buf_free(&meta);
	return 0;
fail:
	if (swapped) { /* give the body its bytes back (out was empty: start is 0) */
		out->len = body_len0;
		buf_swap(out, &w->body);
	}
	out->len = start;
	rn_buf_free(&meta);
	return rc;
}

static const struct rn_pq_colstats *node_last(const struct rn_pq_writer *w, const struct pq_node *n)
{
	return n->kind == K_LEAF ? &w->leaves[n->leaf_lo].last : &n->last;
}

int rn_pq_col_stats(const struct rn_pq_writer *w, size_t col, struct rn_pq_colstats *st)
{
	if (col >= w->ncols)
		return RN_EINVAL;
	*st = *node_last(w, &w->nodes[1 + col]);
	return 0;
}

int rn_pq_node_stats(const struct rn_pq_writer *w, const struct rn_pq_col *node,
		     struct rn_pq_colstats *st)
{
	for (size_t i = 1; i < w->nnodes; i++) {
		if (w->nodes[i].col == node) {
			*st = *node_last(w, &w->nodes[i]);
			return 0;
		}
	}
	return RN_EINVAL;
}

size_t rn_pq_decimal_format(char *buf, size_t cap, const uint8_t be[16], int scale)
{
	char digits[48];
	i128 u = rn_i128_from_be(be);
	size_t nd = 0, o = 0;
	int neg;

	neg = (be[0] & 0x80) != 0;
	if (neg)
		u = rn_i128_neg(u); /* read as unsigned below: the most negative too */
	do
		digits[nd++] = (char)('0' + (int)rn_i128_udivmod_u32(&u, 10));
	while (rn_i128_sign(u) != 0);
	while ((int)nd <= scale) /* at least one digit before the point */
		digits[nd++] = '0';
	if (cap < 42 || scale < 0 || scale > 38) {
		if (cap)
			buf[0] = 0;
		return 0;
	}
	if (neg)
		buf[o++] = '-';
	while (nd > 0) {
		if ((int)nd == scale)
			buf[o++] = '.';
		buf[o++] = digits[--nd];
	}
	buf[o] = 0;
	return o;
}
