/*
 * The health report parser and validator (fleet.h rn_fleet_health_parse): one report as an
 * agent sent it (docs/protocol.md, field 1001) into the numbers the model keeps and the JSON
 * the API and the system table show. Pure: bytes in, a struct and buffers out. Nothing a
 * device sends can make it fail other than by running out of memory: a bad report is
 * refused whole with a reason, a bad member is left unknown with a reason. Fuzzed by
 * tests/fuzz/fuzz_fleet.c.
 */
#include <stdio.h>
#include <string.h>

#include "fleet.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_utf8.h"

void rn_fleet_health_init(struct rn_fleet_health *h)
{
	memset(h, 0, sizeof(*h));
}

void rn_fleet_health_free(struct rn_fleet_health *h)
{
	rn_buf_free(&h->json);
	rn_buf_free(&h->drops_json);
	rn_buf_free(&h->sources_json);
}

const char *rn_fleet_reject_name(enum rn_fleet_reject r)
{
	static const char *const names[RN_FLEET_NREJECT] = {NULL, "json", "size", "utf8",
							    "not_object"};
	return (unsigned)r < RN_FLEET_NREJECT ? names[r] : NULL;
}

/* Adds "<path>: <what>" to the report's reasons (cut when they pass the cap: the first ones
 * are the ones a reader needs). */
static void reason(struct rn_fleet_health *h, const char *path, const char *what)
{
	size_t n = strlen(h->invalid);
	if (n + 4 >= sizeof(h->invalid))
		return;
	snprintf(h->invalid + n, sizeof(h->invalid) - n, "%s%s: %s", n ? "; " : "", path, what);
}

/* The parse state: the spans of the members we know, the last one of a name winning. */
enum {
	K_V,
	K_DEVICE,
	K_VERSION,
	K_SHA,
	K_BOOT,
	K_UPTIME,
	K_SENT,
	K_CLOCK,
	K_BUFFER,
	K_DROPS,
	K_EXPIRED,
	K_DEAD,
	K_SOURCES,
	K_N
};
static const char *const top_keys[K_N] = {
	"v",     "device", "version", "config_sha256", "boot_id",      "uptime_s", "sent_at_ms",
	"clock", "buffer", "drops",   "expired",       "dead_letters", "sources"};

struct members {
	const char *const *names;
	size_t n;
	struct rn_json_span span[16];
	int have[16];
};

static int take_member(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	struct members *m = ctx;
	/* the raw key, without its quotes: one with escapes never equals a name */
	for (size_t i = 0; i < m->n; i++)
		if (rn_json_span_eq(key, m->names[i])) {
			m->span[i] = val;
			m->have[i] = 1;
		}
	return 0;
}

static int is_null(struct rn_json_span v)
{
	return rn_json_span_eq(v, "null");
}

/*
 * An integer member: 1 with *out when it is a JSON integer in [lo, 2^53]; 0 when absent or
 * null (unknown, no reason); -1 with a reason otherwise.
 */
static int integer(struct rn_fleet_health *h, const char *path, int have, struct rn_json_span v,
		   int64_t lo, int64_t *out)
{
	size_t i = 0, digits = 0;
	int neg = 0;
	if (!have || is_null(v))
		return 0;
	if (i < v.len && v.p[i] == '-')
		neg = 1, i++;
	while (i < v.len && v.p[i] >= '0' && v.p[i] <= '9')
		i++, digits++;
	if (!digits || i != v.len) {
		reason(h, path, "not an integer");
		return -1;
	}
	if (digits > 16) {
		reason(h, path, neg && lo >= 0 ? "negative" : "too large");
		return -1;
	}
	int64_t x = 0;
	rn_json_int64(v, &x); /* at most 16 digits and a sign: never out of range */
	if (x < lo) {
		reason(h, path, "negative");
		return -1;
	}
	if (x > RN_FLEET_INT_MAX || x < -RN_FLEET_INT_MAX) {
		reason(h, path, "too large");
		return -1;
	}
	*out = x;
	return 1;
}

/* Writes an integer member's validated value (or null) into the rendered report. */
static int put_int(struct rn_buf *b, int known, int64_t x)
{
	return known > 0 ? rn_buf_printf(b, "%lld", (long long)x) : rn_buf_append_str(b, "null");
}

/*
 * A string member into out (cap RN_FLEET_STR_MAX + 1): 1 when kept (maybe truncated at a
 * UTF-8 boundary, with a reason), 0 when absent, null or invalid (then with a reason),
 * RN_ENOMEM.
 */
static int string(struct rn_fleet_health *h, const char *path, int have, struct rn_json_span v,
		  struct rn_buf *tmp, char *out)
{
	out[0] = 0;
	if (!have || is_null(v))
		return 0;
	rn_buf_reset(tmp);
	int rc = rn_json_string(v, tmp);
	if (rc == RN_ENOMEM)
		return RN_ENOMEM;
	if (rc) {
		reason(h, path, "not a string");
		return 0;
	}
	if (memchr(tmp->data, 0, tmp->len)) {
		reason(h, path, "holds a NUL byte");
		return 0;
	}
	size_t n = tmp->len;
	if (n > RN_FLEET_STR_MAX) {
		n = RN_FLEET_STR_MAX;
		while (n && (tmp->data[n] & 0xC0) == 0x80) /* not inside a character */
			n--;
		reason(h, path, "truncated");
	}
	memcpy(out, tmp->data, n);
	out[n] = 0;
	return 1;
}

static int put_str(struct rn_buf *b, const char *s, int known)
{
	return known > 0 ? rn_json_put_str(b, s, strlen(s)) : rn_buf_append_str(b, "null");
}

/* drops: an object of reason -> integer; rendered into h->drops_json, summed. */
struct drops_ctx {
	struct rn_fleet_health *h;
	struct rn_buf *tmp;
	size_t n;
	int64_t sum;
	int over, rc;
};

static int take_drop(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	struct drops_ctx *d = ctx;
	struct rn_fleet_health *h = d->h;
	char name[RN_FLEET_STR_MAX + 1], path[RN_FLEET_STR_MAX + 16];
	int64_t x = 0;
	if (d->n >= RN_FLEET_DROPS_MAX) {
		if (!d->over++)
			reason(h, "drops", "more than 32 reasons");
		return 0;
	}
	/* the key with its quotes (rn_json_object_walk hands it without), escapes decoded */
	struct rn_json_span quoted = {key.p - 1, key.len + 2};
	int k = string(h, "drops: a key", 1, quoted, d->tmp, name);
	if (k == RN_ENOMEM)
		return d->rc = RN_ENOMEM;
	if (k <= 0)
		return 0;
	snprintf(path, sizeof(path), "drops.%s", name);
	int known = integer(h, path, 1, val, 0, &x);
	if (known > 0)
		d->sum += x;
	if ((d->n++ && rn_buf_append_str(&h->drops_json, ",")) ||
	    rn_json_put_str(&h->drops_json, name, strlen(name)) ||
	    rn_buf_append_str(&h->drops_json, ":") || put_int(&h->drops_json, known, x))
		return d->rc = RN_ENOMEM;
	return 0;
}

/* sources: an array of objects {name, type, state, error, records}. */
static const char *const source_keys[] = {"name", "type", "state", "error", "records"};
struct sources_ctx {
	struct rn_fleet_health *h;
	struct rn_buf *tmp;
	size_t n;
	int over, rc;
};

static int take_source(void *ctx, size_t i, struct rn_json_span val)
{
	struct sources_ctx *c = ctx;
	struct rn_fleet_health *h = c->h;
	struct rn_buf *b = &h->sources_json;
	struct members m = {.names = source_keys, .n = 5};
	char s[4][RN_FLEET_STR_MAX + 1], path[64];
	int known[5];
	int64_t records = 0;
	if (c->n >= RN_FLEET_SOURCES_MAX) {
		if (!c->over++)
			reason(h, "sources", "more than 64 sources");
		return 0;
	}
	if (val.len == 0 || val.p[0] != '{') {
		snprintf(path, sizeof(path), "sources[%zu]", i);
		reason(h, path, "not an object");
		return 0;
	}
	if (rn_json_object_walk(val, take_member, &m))
		return 0; /* validated before: cannot happen */
	for (int k = 0; k < 4; k++) {
		snprintf(path, sizeof(path), "sources[%zu].%s", i, source_keys[k]);
		if ((known[k] = string(h, path, m.have[k], m.span[k], c->tmp, s[k])) == RN_ENOMEM)
			return c->rc = RN_ENOMEM;
	}
	snprintf(path, sizeof(path), "sources[%zu].records", i);
	known[4] = integer(h, path, m.have[4], m.span[4], 0, &records);
	if ((c->n++ && rn_buf_append_str(b, ",")) || rn_buf_append_str(b, "{\"name\":") ||
	    put_str(b, s[0], known[0]) || rn_buf_append_str(b, ",\"type\":") ||
	    put_str(b, s[1], known[1]) || rn_buf_append_str(b, ",\"state\":") ||
	    put_str(b, s[2], known[2]) || rn_buf_append_str(b, ",\"error\":") ||
	    put_str(b, s[3], known[3]) || rn_buf_append_str(b, ",\"records\":") ||
	    put_int(b, known[4], records) || rn_buf_append_str(b, "}"))
		return c->rc = RN_ENOMEM;
	return 0;
}

static void refuse(struct rn_fleet_health *h, enum rn_fleet_reject r, const char *why)
{
	h->reject = r;
	snprintf(h->invalid, sizeof(h->invalid), "%s", why);
}

int rn_fleet_health_parse(struct rn_fleet_health *h, const uint8_t *p, size_t len)
{
	struct members top = {.names = top_keys, .n = K_N};
	struct rn_buf tmp = {.max = RN_FLEET_REPORT_BYTES + 16};
	struct rn_json_span all = {(const char *)p, len};
	int known[K_N] = {0}, rc = RN_ENOMEM;

	rn_buf_reset(&h->json);
	rn_buf_reset(&h->drops_json);
	rn_buf_reset(&h->sources_json);
	h->json.max = RN_FLEET_REPORT_MAX;
	h->drops_json.max = h->sources_json.max = RN_FLEET_REPORT_MAX / 2;
	h->reject = RN_FLEET_OK;
	h->invalid[0] = h->device[0] = h->version[0] = h->config_sha256[0] = h->boot_id[0] = 0;
	h->v = h->uptime_s = h->sent_at_ms = h->buffer_bytes = h->buffer_records = -1;
	h->buffer_max_bytes = h->oldest_unsent_age_s = h->drops_total = h->expired = -1;
	h->dead_letters = -1;
	h->clock_synced = -1;
	h->has_offset = 0;
	h->clock_offset_ms = 0;

	if (len > RN_FLEET_REPORT_BYTES) {
		refuse(h, RN_FLEET_REJ_SIZE, "report: larger than 16384 bytes");
		return 0;
	}
	if (!rn_utf8_valid(p, len)) {
		refuse(h, RN_FLEET_REJ_UTF8, "report: not UTF-8");
		return 0;
	}
	if (rn_json_validate((const char *)p, len)) {
		refuse(h, RN_FLEET_REJ_JSON, "report: not JSON");
		return 0;
	}
	/* validated: the first non-blank byte says what it is */
	while (all.len &&
	       (all.p[0] == ' ' || all.p[0] == '\t' || all.p[0] == '\n' || all.p[0] == '\r'))
		all.p++, all.len--;
	if (!all.len || all.p[0] != '{' || rn_json_object_walk(all, take_member, &top)) {
		refuse(h, RN_FLEET_REJ_NOT_OBJECT, "report: not a JSON object");
		return 0;
	}
#define INT(k, name, field) known[k] = integer(h, name, top.have[k], top.span[k], 0, &h->field)
	INT(K_V, "v", v);
	INT(K_UPTIME, "uptime_s", uptime_s);
	INT(K_SENT, "sent_at_ms", sent_at_ms);
	INT(K_EXPIRED, "expired", expired);
	INT(K_DEAD, "dead_letters", dead_letters);
#undef INT
	if ((known[K_DEVICE] = string(h, "device", top.have[K_DEVICE], top.span[K_DEVICE], &tmp,
				      h->device)) == RN_ENOMEM ||
	    (known[K_VERSION] = string(h, "version", top.have[K_VERSION], top.span[K_VERSION], &tmp,
				       h->version)) == RN_ENOMEM ||
	    (known[K_SHA] = string(h, "config_sha256", top.have[K_SHA], top.span[K_SHA], &tmp,
				   h->config_sha256)) == RN_ENOMEM ||
	    (known[K_BOOT] = string(h, "boot_id", top.have[K_BOOT], top.span[K_BOOT], &tmp,
				    h->boot_id)) == RN_ENOMEM)
		goto out;

	/* clock: {synced, offset_ms} */
	int64_t off = 0;
	int k_synced = 0, k_off = 0;
	if (top.have[K_CLOCK] && !is_null(top.span[K_CLOCK])) {
		static const char *const ck[] = {"synced", "offset_ms"};
		struct members m = {.names = ck, .n = 2};
		if (top.span[K_CLOCK].p[0] != '{' ||
		    rn_json_object_walk(top.span[K_CLOCK], take_member, &m)) {
			reason(h, "clock", "not an object");
		} else {
			if (m.have[0] && (rn_json_span_eq(m.span[0], "true") ||
					  rn_json_span_eq(m.span[0], "false"))) {
				h->clock_synced = rn_json_span_eq(m.span[0], "true");
				k_synced = 1;
			} else if (m.have[0] && !is_null(m.span[0])) {
				reason(h, "clock.synced", "not a boolean");
			}
			k_off = integer(h, "clock.offset_ms", m.have[1], m.span[1],
					-RN_FLEET_INT_MAX, &off);
			if (k_off > 0) {
				h->has_offset = 1;
				h->clock_offset_ms = off;
			}
		}
	}
	/* buffer: {bytes, records, max_bytes, oldest_unsent_age_s} */
	int kb[4] = {0};
	if (top.have[K_BUFFER] && !is_null(top.span[K_BUFFER])) {
		static const char *const bk[] = {"bytes", "records", "max_bytes",
						 "oldest_unsent_age_s"};
		struct members m = {.names = bk, .n = 4};
		if (top.span[K_BUFFER].p[0] != '{' ||
		    rn_json_object_walk(top.span[K_BUFFER], take_member, &m)) {
			reason(h, "buffer", "not an object");
		} else {
			kb[0] = integer(h, "buffer.bytes", m.have[0], m.span[0], 0,
					&h->buffer_bytes);
			kb[1] = integer(h, "buffer.records", m.have[1], m.span[1], 0,
					&h->buffer_records);
			kb[2] = integer(h, "buffer.max_bytes", m.have[2], m.span[2], 0,
					&h->buffer_max_bytes);
			kb[3] = integer(h, "buffer.oldest_unsent_age_s", m.have[3], m.span[3], 0,
					&h->oldest_unsent_age_s);
		}
	}
	/* drops */
	int drops_known = 0;
	if (top.have[K_DROPS] && !is_null(top.span[K_DROPS])) {
		struct drops_ctx d = {.h = h, .tmp = &tmp};
		if (top.span[K_DROPS].p[0] != '{') {
			reason(h, "drops", "not an object");
		} else {
			if (rn_buf_append_str(&h->drops_json, "{"))
				goto out;
			rn_json_object_walk(top.span[K_DROPS], take_drop, &d);
			if (d.rc || rn_buf_append_str(&h->drops_json, "}"))
				goto out;
			if (d.sum > RN_FLEET_INT_MAX) {
				reason(h, "drops", "sum too large");
			} else {
				h->drops_total = d.sum;
				drops_known = 1;
			}
		}
	}
	/* sources */
	if (top.have[K_SOURCES] && !is_null(top.span[K_SOURCES])) {
		struct sources_ctx c = {.h = h, .tmp = &tmp};
		if (top.span[K_SOURCES].p[0] != '[') {
			reason(h, "sources", "not an array");
		} else {
			if (rn_buf_append_str(&h->sources_json, "["))
				goto out;
			rn_json_array_walk(top.span[K_SOURCES], take_source, &c);
			if (c.rc || rn_buf_append_str(&h->sources_json, "]"))
				goto out;
		}
	}

	/* the report as the API shows it: every key of the protocol, invalid ones null */
	struct rn_buf *b = &h->json;
	if (rn_buf_append_str(b, "{\"v\":") || put_int(b, known[K_V], h->v) ||
	    rn_buf_append_str(b, ",\"device\":") || put_str(b, h->device, known[K_DEVICE]) ||
	    rn_buf_append_str(b, ",\"version\":") || put_str(b, h->version, known[K_VERSION]) ||
	    rn_buf_append_str(b, ",\"config_sha256\":") ||
	    put_str(b, h->config_sha256, known[K_SHA]) || rn_buf_append_str(b, ",\"boot_id\":") ||
	    put_str(b, h->boot_id, known[K_BOOT]) || rn_buf_append_str(b, ",\"uptime_s\":") ||
	    put_int(b, known[K_UPTIME], h->uptime_s) || rn_buf_append_str(b, ",\"sent_at_ms\":") ||
	    put_int(b, known[K_SENT], h->sent_at_ms) ||
	    rn_buf_append_str(b, ",\"clock\":{\"synced\":") ||
	    rn_buf_append_str(b, k_synced ? (h->clock_synced ? "true" : "false") : "null") ||
	    rn_buf_append_str(b, ",\"offset_ms\":") || put_int(b, k_off, off) ||
	    rn_buf_append_str(b, "},\"buffer\":{\"bytes\":") ||
	    put_int(b, kb[0], h->buffer_bytes) || rn_buf_append_str(b, ",\"records\":") ||
	    put_int(b, kb[1], h->buffer_records) || rn_buf_append_str(b, ",\"max_bytes\":") ||
	    put_int(b, kb[2], h->buffer_max_bytes) ||
	    rn_buf_append_str(b, ",\"oldest_unsent_age_s\":") ||
	    put_int(b, kb[3], h->oldest_unsent_age_s) || rn_buf_append_str(b, "},\"drops\":") ||
	    (h->drops_json.len ? rn_buf_append(b, h->drops_json.data, h->drops_json.len)
			       : rn_buf_append_str(b, "null")) ||
	    rn_buf_append_str(b, ",\"drops_total\":") || put_int(b, drops_known, h->drops_total) ||
	    rn_buf_append_str(b, ",\"expired\":") || put_int(b, known[K_EXPIRED], h->expired) ||
	    rn_buf_append_str(b, ",\"dead_letters\":") ||
	    put_int(b, known[K_DEAD], h->dead_letters) || rn_buf_append_str(b, ",\"sources\":") ||
	    (h->sources_json.len ? rn_buf_append(b, h->sources_json.data, h->sources_json.len)
				 : rn_buf_append_str(b, "null")) ||
	    rn_buf_append_str(b, "}"))
		goto out;
	rc = 0;
out:
	rn_buf_free(&tmp);
	return rc;
}
