/*
 * The health report's JSON and its schedule; see health.h. Pure: no I/O, no clock, no
 * globals. The report is written in one pass: the fixed part, then the sources one by one,
 * each one's end remembered, so that a report over RN_HEALTH_MAX is cut back to the last
 * source that fits (plus the "sources_truncated" key) without rendering anything twice.
 */
#include "health.h"

#include <string.h>

#include "rn_err.h"
#include "rn_json.h"

const char *rn_health_state_name(int state)
{
	static const char *const names[] = {"up", "down", "error", "idle"};
	return state >= 0 && state < 4 ? names[state] : "error";
}

/* `"s"` cut to RN_HEALTH_STR_MAX bytes at a UTF-8 character boundary; null for NULL. */
static int put_str(struct rn_buf *b, const char *s)
{
	if (!s)
		return rn_buf_append_str(b, "null");
	size_t len = strlen(s);
	if (len > RN_HEALTH_STR_MAX) {
		len = RN_HEALTH_STR_MAX;
		/* back to the first byte of the character that straddles the cut */
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	return rn_json_put_str(b, s, len);
}

/* `,"key":"value"`, left out for NULL */
static int put_kv(struct rn_buf *b, const char *key, const char *val)
{
	if (!val)
		return 0;
	int rc = rn_buf_printf(b, ",\"%s\":", key);
	return rc ? rc : put_str(b, val);
}

/* Everything before the sources' array, which it opens. */
static int render_head(const struct rn_health_snap *s, struct rn_buf *b)
{
	int rc = rn_buf_append_str(b, "{\"v\":1");
	rc = rc ? rc : put_kv(b, "device", s->device);
	rc = rc ? rc : put_kv(b, "version", s->version);
	rc = rc ? rc : put_kv(b, "config_sha256", s->config_sha256);
	rc = rc ? rc : put_kv(b, "boot_id", s->boot_id && s->boot_id[0] ? s->boot_id : NULL);
	rc = rc ? rc
		: rn_buf_printf(b,
				",\"uptime_s\":%lld,\"sent_at_ms\":%lld,\"clock\":{\"synced\":%s",
				(long long)s->uptime_s, (long long)s->sent_at_ms,
				s->clock_synced ? "true" : "false");
	if (!rc && s->clock_offset_known)
		rc = rn_buf_printf(b, ",\"offset_ms\":%lld}", (long long)s->clock_offset_ms);
	else
		rc = rc ? rc : rn_buf_append_str(b, ",\"offset_ms\":null}");
	rc = rc ? rc
		: rn_buf_printf(b,
				",\"buffer\":{\"bytes\":%lld,\"records\":%lld,\"max_bytes\":%lld",
				(long long)s->buffer_bytes, (long long)s->buffer_records,
				(long long)s->buffer_max_bytes);
	if (!rc && s->oldest_unsent_age_s >= 0)
		rc = rn_buf_printf(b, ",\"oldest_unsent_age_s\":%lld}",
				   (long long)s->oldest_unsent_age_s);
	else
		rc = rc ? rc : rn_buf_append_str(b, ",\"oldest_unsent_age_s\":null}");
	rc = rc ? rc : rn_buf_append_str(b, ",\"drops\":{");
	for (size_t i = 0; !rc && i < s->ndrops; i++) {
		rc = i ? rn_buf_append_u8(b, ',') : 0;
		rc = rc ? rc : put_str(b, s->drops[i].reason ? s->drops[i].reason : "?");
		rc = rc ? rc : rn_buf_printf(b, ":%llu", (unsigned long long)s->drops[i].count);
	}
	return rc ? rc
		  : rn_buf_printf(b, "},\"expired\":%llu,\"dead_letters\":%llu,\"sources\":[",
				  (unsigned long long)s->expired,
				  (unsigned long long)s->dead_letters);
}

static int render_source(const struct rn_health_source *src, int first, struct rn_buf *b)
{
	int rc = rn_buf_append_str(b, first ? "{\"name\":" : ",{\"name\":");
	rc = rc ? rc : put_str(b, src->name ? src->name : "");
	rc = rc ? rc : rn_buf_append_str(b, ",\"type\":");
	rc = rc ? rc : put_str(b, src->type ? src->type : "plugin");
	rc = rc ? rc
		: rn_buf_printf(b,
				",\"state\":\"%s\",\"error\":", rn_health_state_name(src->state));
	rc = rc ? rc : put_str(b, src->error);
	return rc ? rc : rn_buf_printf(b, ",\"records\":%llu}", (unsigned long long)src->records);
}

/* The tail after the sources: `]`, and `,"sources_truncated":n` when some were left out. */
static int render_tail(struct rn_buf *b, size_t left_out)
{
	if (!left_out)
		return rn_buf_append_str(b, "]}");
	return rn_buf_printf(b, "],\"sources_truncated\":%zu}", left_out);
}

/* The longest tail: "],\"sources_truncated\":" + 20 digits + "}" */
#define TAIL_MAX 48

int rn_health_render(const struct rn_health_snap *s, struct rn_buf *out)
{
	size_t start = out->len, k;
	int rc = render_head(s, out);
	if (!rc && out->len - start + TAIL_MAX > RN_HEALTH_MAX)
		rc = RN_ERANGE;
	/* the sources while they fit with the longest tail after them */
	for (k = 0; !rc && k < s->nsources; k++) {
		size_t before = out->len;
		if ((rc = render_source(&s->sources[k], k == 0, out)))
			break;
		if (out->len - start + TAIL_MAX > RN_HEALTH_MAX) {
			/* does the whole rest fit without the truncation key? only if this is the
			 * last source and "]}" fits */
			if (k + 1 == s->nsources && out->len - start + 2 <= RN_HEALTH_MAX) {
				k++;
				break;
			}
			out->len = before;
			break;
		}
	}
	rc = rc ? rc : render_tail(out, s->nsources - k);
	if (rc)
		out->len = start;
	return rc;
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
	return fnv(h, &v, sizeof(v));
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	/* the NUL too, so that ("ab","c") and ("a","bc") differ */
	return s ? fnv(h, s, strlen(s) + 1) : fnv_u64(h, 0xffu);
}

uint64_t rn_health_state_key(const struct rn_health_snap *s)
{
	uint64_t h = 1469598103934665603ull;
	h = fnv_u64(h, s->nsources);
	for (size_t i = 0; i < s->nsources; i++) {
		h = fnv_str(h, s->sources[i].name);
		h = fnv_u64(h, (uint64_t)s->sources[i].state);
	}
	h = fnv_u64(h, s->ndrops);
	for (size_t i = 0; i < s->ndrops; i++) {
		h = fnv_str(h, s->drops[i].reason);
		h = fnv_u64(h, s->drops[i].count);
	}
	h = fnv_u64(h, s->expired);
	h = fnv_u64(h, s->dead_letters);
	return fnv_u64(h, s->clock_synced ? 1 : 0);
}

int rn_health_changed(const struct rn_health_snap *a, const struct rn_health_snap *b)
{
	return rn_health_state_key(a) != rn_health_state_key(b);
}

int rn_health_due(int64_t now_us, int64_t last_us, int interval_s, int changed)
{
	if (interval_s <= 0)
		return 0;
	if (!last_us)
		return 1;
	int64_t since = now_us - last_us;
	if (since >= (int64_t)interval_s * 1000000)
		return 1;
	return changed && since >= RN_HEALTH_CHANGE_MIN_US;
}
