/*
 * The WAL's bytes per principal (see ledger.h): a chained hash of principal entries, each
 * holding its total and a hint to its latest debt, and per table an array of debts pointing
 * at the entries. An entry lives exactly while its total is above zero; since every debt is
 * above zero, no debt ever points at a freed entry.
 */
#include "ledger.h"

#include <stdint.h>
#include <string.h>

#include "rn_err.h"
#include "rn_mem.h"

struct entry {
	char *name;
	size_t bytes; /* > 0: the sum of this principal's debts over all tables */
	struct entry *next;
	/* where this principal's latest debt was (a hint: checked before use) */
	const struct rn_ledger_debts *last_d;
	size_t last_slot;
};

struct rn_ledger_debt {
	struct entry *who;
	size_t bytes; /* > 0 */
};

struct rn_ledger {
	struct entry **bucket;
	size_t nbuckets; /* a power of two */
	size_t active;   /* entries, i.e. principals holding bytes */
};

#define MIN_BUCKETS 16

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

int rn_ledger_create(struct rn_ledger **out)
{
	struct rn_ledger *l = rn_calloc(1, sizeof(*l));
	if (!l || !(l->bucket = rn_calloc(MIN_BUCKETS, sizeof(*l->bucket)))) {
		rn_free(l);
		return RN_ENOMEM;
	}
	l->nbuckets = MIN_BUCKETS;
	*out = l;
	return 0;
}

void rn_ledger_destroy(struct rn_ledger *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nbuckets; i++) {
		for (struct entry *e = l->bucket[i], *nx; e; e = nx) {
			nx = e->next;
			rn_free(e->name);
			rn_free(e);
		}
	}
	rn_free(l->bucket);
	rn_free(l);
}

static struct entry **slot_of(const struct rn_ledger *l, const char *name)
{
	struct entry **p = &l->bucket[hash(name) & (l->nbuckets - 1)];
	while (*p && strcmp((*p)->name, name))
		p = &(*p)->next;
	return p;
}

/* Doubles the buckets when entries outnumber them; a failure only keeps the chains longer. */
static void grow(struct rn_ledger *l)
{
	size_t n = l->nbuckets * 2;
	struct entry **b;
	if (l->active <= l->nbuckets || !(b = rn_calloc(n, sizeof(*b))))
		return;
	for (size_t i = 0; i < l->nbuckets; i++) {
		for (struct entry *e = l->bucket[i], *nx; e; e = nx) {
			nx = e->next;
			struct entry **h = &b[hash(e->name) & (n - 1)];
			e->next = *h;
			*h = e;
		}
	}
	rn_free(l->bucket);
	l->bucket = b;
	l->nbuckets = n;
}

int rn_ledger_charge(struct rn_ledger *l, struct rn_ledger_debts *d, const char *principal,
		     size_t len)
{
	struct entry **p, *e;
	size_t k;
	if (!principal || !principal[0] || !len)
		return 0;
	p = slot_of(l, principal);
	e = *p;
	if (e && e->last_d == d && e->last_slot < d->n && d->v[e->last_slot].who == e) {
		k = e->last_slot;
	} else {
		for (k = 0; e && k < d->n && d->v[k].who != e; k++)
			;
		if (!e || k == d->n) { /* a new debt of this table, maybe a new principal */
			if (rn_grow(&d->v, &d->cap, d->n, sizeof(*d->v), 4, SIZE_MAX))
				return RN_ENOMEM;
			if (!e) {
				if (!(e = rn_calloc(1, sizeof(*e))) ||
				    !(e->name = rn_strdup(principal))) {
					rn_free(e);
					return RN_ENOMEM;
				}
				*p = e;
				l->active++;
				grow(l);
			}
			k = d->n++;
			d->v[k] = (struct rn_ledger_debt){e, 0};
		}
	}
	d->v[k].bytes += len;
	e->bytes += len;
	e->last_d = d;
	e->last_slot = k;
	return 0;
}

void rn_ledger_settle(struct rn_ledger *l, struct rn_ledger_debts *d)
{
	for (size_t k = 0; k < d->n; k++) {
		struct entry *e = d->v[k].who, **p;
		e->bytes -= d->v[k].bytes;
		if (e->bytes)
			continue;
		p = slot_of(l, e->name);
		*p = e->next;
		rn_free(e->name);
		rn_free(e);
		l->active--;
	}
	d->n = 0;
}

void rn_ledger_debts_free(struct rn_ledger *l, struct rn_ledger_debts *d)
{
	rn_ledger_settle(l, d);
	rn_free(d->v);
	*d = (struct rn_ledger_debts){0};
}

size_t rn_ledger_held(const struct rn_ledger *l, const char *principal, size_t *active)
{
	struct entry *e = principal && principal[0] ? *slot_of(l, principal) : NULL;
	if (active)
		*active = l->active;
	return e ? e->bytes : 0;
}
