/*
 * The table store's contract as one backend-neutral check; see tstore_contract.h. Every
 * check is a CHECK() that counts and prints a failure and goes on, so one run shows every
 * broken rule of a backend.
 */
#include "tstore_contract.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "tstore.h"

struct ctx {
	struct rn_tstore *st;
	char pre[96]; /* "contract-<pid>-<n>-<time>" */
	int fails;
};

#define CHECK(c, cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "tstore contract: %s: line %d: %s (store: %s)\n",          \
				rn_tstore_root((c)->st), __LINE__, #cond,                          \
				rn_tstore_errmsg((c)->st));                                        \
			(c)->fails++;                                                              \
		}                                                                                  \
	} while (0)

static const char *key(struct ctx *c, const char *rel, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", c->pre, rel);
	return buf;
}

/* 1 if key holds exactly want[0..n). */
static int holds(struct rn_tstore *st, const char *k, const void *want, size_t n)
{
	struct rn_buf b = {0};
	int ok = rn_tstore_get(st, k, 0, -1, &b) == 0 && b.len == n &&
		 (!n || !memcmp(b.data, want, n));
	rn_buf_free(&b);
	return ok;
}

static void put_get(struct ctx *c)
{
	char k[256];
	struct rn_tstore_entry e;
	struct rn_buf b = {0};
	int64_t now = (int64_t)time(NULL) * 1000;

	key(c, "a.txt", k, sizeof(k));
	CHECK(c, rn_tstore_put(c->st, k, "hello", 5) == 0);
	CHECK(c, holds(c->st, k, "hello", 5));
	CHECK(c, rn_tstore_stat(c->st, k, &e) == 0 && e.size == 5 && !strcmp(e.key, k));
	/* clocks of a store and this machine differ a little; a day is no clock */
	CHECK(c, e.mtime_ms > now - 86400000 && e.mtime_ms < now + 86400000);
	CHECK(c, rn_tstore_put(c->st, k, "replaced", 8) == 0);
	CHECK(c, holds(c->st, k, "replaced", 8));
	CHECK(c, rn_tstore_stat(c->st, k, &e) == 0 && e.size == 8);

	/* a missing key */
	key(c, "missing", k, sizeof(k));
	CHECK(c, rn_tstore_get(c->st, k, 0, -1, &b) == RN_ENOTFOUND && b.len == 0);
	CHECK(c, rn_tstore_errmsg(c->st)[0] != 0);
	CHECK(c, rn_tstore_stat(c->st, k, &e) == RN_ENOTFOUND);

	/* ranges, appended to what the buffer holds */
	uint8_t bytes[256];
	for (int i = 0; i < 256; i++)
		bytes[i] = (uint8_t)i;
	key(c, "r.bin", k, sizeof(k));
	CHECK(c, rn_tstore_put(c->st, k, bytes, sizeof(bytes)) == 0);
	CHECK(c, rn_buf_append(&b, "x", 1) == 0);
	CHECK(c, rn_tstore_get(c->st, k, 10, 5, &b) == 0 && b.len == 6 && b.data[0] == 'x' &&
			 !memcmp(b.data + 1, bytes + 10, 5));
	rn_buf_reset(&b);
	CHECK(c, rn_tstore_get(c->st, k, 250, -1, &b) == 0 && b.len == 6 &&
			 !memcmp(b.data, bytes + 250, 6));
	rn_buf_reset(&b);
	CHECK(c, rn_tstore_get(c->st, k, 200, 1000, &b) == 0 && b.len == 56 &&
			 !memcmp(b.data, bytes + 200, 56));
	rn_buf_reset(&b);
	CHECK(c, rn_tstore_get(c->st, k, 0, -1, &b) == 0 && b.len == 256 &&
			 !memcmp(b.data, bytes, 256));
	rn_buf_free(&b);

	/* an empty object */
	key(c, "empty", k, sizeof(k));
	CHECK(c, rn_tstore_put(c->st, k, "", 0) == 0);
	CHECK(c, rn_tstore_stat(c->st, k, &e) == 0 && e.size == 0);
	CHECK(c, holds(c->st, k, "", 0));
}

static void put_new(struct ctx *c)
{
	char k[256];

	key(c, "log/00000000000000000000.json", k, sizeof(k));
	CHECK(c, rn_tstore_put_new(c->st, k, "first\n", 6) == 0);
	CHECK(c, rn_tstore_put_new(c->st, k, "second\n", 7) == RN_EEXIST);
	CHECK(c, holds(c->st, k, "first\n", 6));
	/* a key deep in directories that do not exist yet */
	key(c, "deep/er/and/deeper/k", k, sizeof(k));
	CHECK(c, rn_tstore_put_new(c->st, k, "d", 1) == 0);
	CHECK(c, holds(c->st, k, "d", 1));
}

struct keys {
	const char *v[16];
	size_t n;
	int stop_at; /* return 7 from this call (1-based); 0 = never */
	size_t calls;
	int order_ok, sizes_ok;
	char last[RN_TSTORE_KEY_MAX + 1];
	size_t plen;
};

static int collect(void *ctx, const struct rn_tstore_entry *e)
{
	struct keys *k = ctx;
	k->calls++;
	if (k->last[0] && strcmp(k->last, e->key) >= 0)
		k->order_ok = 0;
	snprintf(k->last, sizeof(k->last), "%s", e->key);
	if (e->size < 0)
		k->sizes_ok = 0;
	for (const char *p = e->key; *p; p++) /* no scratch name is listed */
		if (*p == '.' && (p == e->key || p[-1] == '/'))
			k->order_ok = 0;
	if (k->n < 16 && strlen(e->key) > k->plen)
		k->v[k->n++] = strdup(e->key + k->plen);
	return k->stop_at && (int)k->calls == k->stop_at ? 7 : 0;
}

static void keys_free(struct keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		free((void *)k->v[i]);
}

/* Lists dir (relative to the prefix; NULL = the prefix) and compares with want. */
static int list_is(struct ctx *c, const char *dir, int recursive, const char *const *want,
		   size_t nwant)
{
	char d[256];
	struct keys k = {.order_ok = 1, .sizes_ok = 1, .plen = strlen(c->pre) + 1};
	int ok = rn_tstore_list(c->st, dir ? key(c, dir, d, sizeof(d)) : c->pre, recursive, collect,
				&k) == 0 &&
		 k.order_ok && k.sizes_ok && k.n == nwant && k.calls == nwant;
	for (size_t i = 0; ok && i < nwant; i++)
		ok = !strcmp(k.v[i], want[i]);
	if (!ok) {
		fprintf(stderr, "tstore contract: listing %s (recursive %d) gave:", dir ? dir : "",
			recursive);
		for (size_t i = 0; i < k.n; i++)
			fprintf(stderr, " %s", k.v[i]);
		fprintf(stderr, "\n");
	}
	keys_free(&k);
	return ok;
}

static void list(struct ctx *c)
{
	/* byte order of whole keys: "d-1" < "d/e" < "d0", "B" < "a" */
	static const char *const more[] = {"d-1", "d/e", "d0", "B", "d/f/g"};
	char k[256];

	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		CHECK(c, rn_tstore_put(c->st, key(c, more[i], k, sizeof(k)), "m", 1) == 0);
	static const char *const top[] = {"B", "a.txt", "d-1", "d0", "empty", "r.bin"};
	CHECK(c, list_is(c, NULL, 0, top, 6));
	static const char *const all[] = {"B",
					  "a.txt",
					  "d-1",
					  "d/e",
					  "d/f/g",
					  "d0",
					  "deep/er/and/deeper/k",
					  "empty",
					  "log/00000000000000000000.json",
					  "r.bin"};
	CHECK(c, list_is(c, NULL, 1, all, 10));
	static const char *const d1[] = {"d/e"};
	CHECK(c, list_is(c, "d", 0, d1, 1));
	static const char *const d2[] = {"d/e", "d/f/g"};
	CHECK(c, list_is(c, "d", 1, d2, 2));
	CHECK(c, list_is(c, "nothing/here", 1, NULL, 0));
	CHECK(c, list_is(c, "a.txt", 1, NULL, 0)); /* an object is no prefix of itself */

	/* a nonzero return stops the listing and is returned */
	struct keys ks = {.order_ok = 1, .sizes_ok = 1, .stop_at = 2};
	CHECK(c, rn_tstore_list(c->st, c->pre, 1, collect, &ks) == 7 && ks.calls == 2);
	keys_free(&ks);
}

static void del(struct ctx *c)
{
	char k[256];
	struct rn_tstore_entry e;

	key(c, "a.txt", k, sizeof(k));
	CHECK(c, rn_tstore_delete(c->st, k) == 0);
	CHECK(c, rn_tstore_stat(c->st, k, &e) == RN_ENOTFOUND);
	CHECK(c, rn_tstore_delete(c->st, k) == 0);
	CHECK(c, rn_tstore_delete(c->st, key(c, "never/was", k, sizeof(k))) == 0);
	/* a deleted key of put_new can be created again */
	key(c, "log/00000000000000000000.json", k, sizeof(k));
	CHECK(c, rn_tstore_delete(c->st, k) == 0);
	CHECK(c, rn_tstore_put_new(c->st, k, "again", 5) == 0);
	CHECK(c, holds(c->st, k, "again", 5));
}

static void map(struct ctx *c)
{
	char k[256];
	struct rn_tstore_map m;
	int ok = 1;

	CHECK(c, rn_tstore_map(c->st, key(c, "r.bin", k, sizeof(k)), &m) == 0 && m.len == 256);
	for (size_t i = 0; m.data && i < m.len; i++)
		ok &= m.data[i] == (uint8_t)i;
	CHECK(c, ok);
	rn_tstore_unmap(&m);
	CHECK(c, m.data == NULL && m.len == 0);
	CHECK(c, rn_tstore_map(c->st, key(c, "empty", k, sizeof(k)), &m) == 0 && !m.data &&
			 m.len == 0);
	rn_tstore_unmap(&m);
	CHECK(c,
	      rn_tstore_map(c->st, key(c, "missing", k, sizeof(k)), &m) == RN_ENOTFOUND && !m.data);
}

static int nop(void *ctx, const struct rn_tstore_entry *e)
{
	(void)ctx;
	(void)e;
	return 0;
}

static void bad_keys(struct ctx *c)
{
	static const char *const bad[] = {"",   "/abs", "a//b", "a/../b", "./a",   "a/",
					  "..", ".",    "a/.",  "a\nb",   "a/./b", "/"};
	char big[RN_TSTORE_KEY_MAX + 2];
	struct rn_buf b = {0};
	struct rn_tstore_entry e;
	struct rn_tstore_map m;

	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		const char *k = i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : big;
		CHECK(c, rn_tstore_put(c->st, k, "x", 1) == RN_EINVAL);
		CHECK(c, rn_tstore_put_new(c->st, k, "x", 1) == RN_EINVAL);
		CHECK(c, rn_tstore_get(c->st, k, 0, -1, &b) == RN_EINVAL && b.len == 0);
		CHECK(c, rn_tstore_stat(c->st, k, &e) == RN_EINVAL);
		CHECK(c, rn_tstore_delete(c->st, k) == RN_EINVAL);
		CHECK(c, rn_tstore_map(c->st, k, &m) == RN_EINVAL);
		if (*k)
			CHECK(c, rn_tstore_list(c->st, k, 1, nop, NULL) == RN_EINVAL);
	}
	CHECK(c, rn_tstore_get(c->st, "x", -1, 1, &b) == RN_EINVAL);
	rn_buf_free(&b);
}

static int del_cb(void *ctx, const struct rn_tstore_entry *e)
{
	struct ctx *c = ctx;
	CHECK(c, rn_tstore_delete(c->st, e->key) == 0);
	return 0;
}

struct racer {
	struct rn_tstore *st;
	const char *key;
	char body[64];
	int rc;
	pthread_barrier_t *go;
};

static void *race_one(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->go);
	r->rc = rn_tstore_put_new(r->st, r->key, r->body, strlen(r->body));
	return NULL;
}

static void race(struct ctx *c, struct rn_tstore *st2)
{
	pthread_barrier_t go;
	char k[256], rel[64];

	if (pthread_barrier_init(&go, NULL, 2)) {
		CHECK(c, !"pthread_barrier_init");
		return;
	}
	for (int round = 0; round < 50; round++) {
		snprintf(rel, sizeof(rel), "race/%020d.json", round);
		key(c, rel, k, sizeof(k));
		struct racer r[2] = {{c->st, k, "", 0, &go}, {st2, k, "", 0, &go}};
		pthread_t t;
		snprintf(r[0].body, sizeof(r[0].body), "writer one, round %d\n", round);
		snprintf(r[1].body, sizeof(r[1].body), "writer two, round %d, longer\n", round);
		if (pthread_create(&t, NULL, race_one, &r[1])) {
			CHECK(c, !"pthread_create");
			break;
		}
		race_one(&r[0]);
		pthread_join(t, NULL);
		/* exactly one winner, and the key holds the winner's bytes */
		CHECK(c, (r[0].rc == 0 && r[1].rc == RN_EEXIST) ||
				 (r[0].rc == RN_EEXIST && r[1].rc == 0));
		const char *w = r[0].rc == 0 ? r[0].body : r[1].body;
		CHECK(c, holds(c->st, k, w, strlen(w)));
	}
	pthread_barrier_destroy(&go);
}

int rn_tstore_contract_run_pair(struct rn_tstore *st, struct rn_tstore *st2)
{
	static unsigned runs;
	struct ctx c = {.st = st};

	snprintf(c.pre, sizeof(c.pre), "contract-%ld-%u-%lld", (long)getpid(), ++runs,
		 (long long)time(NULL));
	put_get(&c);
	put_new(&c);
	list(&c);
	del(&c);
	map(&c);
	bad_keys(&c);
	if (st2)
		race(&c, st2);
	/* leave nothing behind */
	CHECK(&c, rn_tstore_list(st, c.pre, 1, del_cb, &c) == 0);
	CHECK(&c, list_is(&c, NULL, 1, NULL, 0));
	return c.fails;
}

int rn_tstore_contract_run(struct rn_tstore *st)
{
	return rn_tstore_contract_run_pair(st, NULL);
}
