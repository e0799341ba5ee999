/*
 * The MQTT source's session memory (mqtt_mem.h): an open-addressing table of topic hash ->
 * digest of the last message stored on that topic, filled only by retained messages and
 * never shrunk (a full table stops taking new topics), and a short list of granted
 * subscriptions. Topics are kept as 64-bit hashes, not names, so the snapshot stays small
 * (35 bytes a topic) whatever the topic lengths. No I/O, no clock, no mosquitto.h.
 */
#include "mqtt_mem.h"

#include <stdio.h>
#include <string.h>

#include "rn_err.h"
#include "rn_mem.h"

#define SLOTS (2 * RN_MQTT_RETAINED_MAX) /* a power of two; at most half full */

struct slot {
	uint64_t topic;  /* hash of the topic; 0 = empty */
	uint64_t digest; /* rn_mqtt_digest of the last message stored on it */
};

struct rn_mqtt_mem {
	struct slot slot[SLOTS];
	size_t nret;
	uint64_t subs[RN_MQTT_SUBS_MAX]; /* granted subscriptions, unique */
	size_t nsubs;
};

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ULL;
	return h;
}

uint64_t rn_mqtt_digest(const char *topic, const void *payload, size_t len)
{
	uint64_t h = fnv(1469598103934665603ULL, topic, strlen(topic));
	h = (h ^ 0xff) * 1099511628211ULL;
	return fnv(h, payload, len);
}

/* Hash of a topic name as a table key (never 0, which marks an empty slot). */
static uint64_t topic_key(const char *topic)
{
	uint64_t h = fnv(1469598103934665603ULL, topic, strlen(topic));
	return h ? h : 1;
}

int rn_mqtt_mem_create(struct rn_mqtt_mem **out)
{
	*out = rn_calloc(1, sizeof(**out));
	return *out ? 0 : RN_ENOMEM;
}

void rn_mqtt_mem_destroy(struct rn_mqtt_mem *m)
{
	rn_free(m);
}

/* The slot holding key, or the empty slot where it would go (the table is never full). */
static struct slot *find(const struct rn_mqtt_mem *m, uint64_t key)
{
	size_t i = (size_t)(key ^ (key >> 32)) & (SLOTS - 1);
	while (m->slot[i].topic && m->slot[i].topic != key)
		i = (i + 1) & (SLOTS - 1);
	return (struct slot *)&m->slot[i];
}

int rn_mqtt_mem_retained_known(const struct rn_mqtt_mem *m, const char *topic, uint64_t digest)
{
	const struct slot *s = find(m, topic_key(topic));
	return s->topic && s->digest == digest;
}

/* Inserts or updates without a topic name (decode). 1 when the table is full. */
static int put(struct rn_mqtt_mem *m, uint64_t key, uint64_t digest, int insert)
{
	struct slot *s = find(m, key);
	if (!s->topic) {
		if (!insert)
			return 0;
		if (m->nret >= RN_MQTT_RETAINED_MAX)
			return 1;
		s->topic = key;
		m->nret++;
	}
	s->digest = digest;
	return 0;
}

int rn_mqtt_mem_note(struct rn_mqtt_mem *m, const char *topic, uint64_t digest, int retained)
{
	return put(m, topic_key(topic), digest, retained);
}

size_t rn_mqtt_mem_retained_count(const struct rn_mqtt_mem *m)
{
	return m->nret;
}

static uint64_t sub_key(const char *filter, uint8_t options)
{
	return rn_mqtt_digest(filter, &options, 1);
}

static int has_sub(const struct rn_mqtt_mem *m, uint64_t k)
{
	for (size_t i = 0; i < m->nsubs; i++)
		if (m->subs[i] == k)
			return 1;
	return 0;
}

static void add_sub(struct rn_mqtt_mem *m, uint64_t k)
{
	if (!has_sub(m, k) && m->nsubs < RN_MQTT_SUBS_MAX)
		m->subs[m->nsubs++] = k;
}

int rn_mqtt_mem_granted(const struct rn_mqtt_mem *m, const char *filter, uint8_t options)
{
	return has_sub(m, sub_key(filter, options));
}

void rn_mqtt_mem_grant(struct rn_mqtt_mem *m, const char *filter, uint8_t options)
{
	add_sub(m, sub_key(filter, options));
}

void rn_mqtt_mem_forget_subs(struct rn_mqtt_mem *m)
{
	m->nsubs = 0;
}

int rn_mqtt_mem_encode(const struct rn_mqtt_mem *m, struct rn_buf *out)
{
	char tmp[48];
	int n, rc;
	for (size_t i = 0; i < SLOTS; i++) {
		if (!m->slot[i].topic)
			continue;
		n = snprintf(tmp, sizeof(tmp), "r%016llx:%016llx,",
			     (unsigned long long)m->slot[i].topic,
			     (unsigned long long)m->slot[i].digest);
		if ((rc = rn_buf_append(out, tmp, (size_t)n)))
			return rc;
	}
	for (size_t i = 0; i < m->nsubs; i++) {
		n = snprintf(tmp, sizeof(tmp), "s%016llx,", (unsigned long long)m->subs[i]);
		if ((rc = rn_buf_append(out, tmp, (size_t)n)))
			return rc;
	}
	return 0;
}

/* Exactly 16 lower-case hex digits at p: their value; *ok = 0 if they are not. */
static uint64_t hex16(const char *p, size_t len, int *ok)
{
	uint64_t v = 0;
	if (len < 16) {
		*ok = 0;
		return 0;
	}
	for (size_t i = 0; i < 16; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0) {
			*ok = 0;
			return 0;
		}
		v = v << 4 | (uint64_t)d;
	}
	return v;
}

size_t rn_mqtt_mem_decode(struct rn_mqtt_mem *m, const char *text, size_t len)
{
	size_t loaded = 0, i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && text[end] != ',')
			end++;
		const char *t = text + i;
		size_t tl = end - i;
		int ok = 1;
		if (tl == 34 && t[0] == 'r' && t[17] == ':') {
			uint64_t k = hex16(t + 1, 16, &ok), d = hex16(t + 18, 16, &ok);
			if (ok && k && !put(m, k, d, 1))
				loaded++;
		} else if (tl == 17 && t[0] == 's') {
			uint64_t k = hex16(t + 1, 16, &ok);
			if (ok) {
				add_sub(m, k);
				loaded++;
			}
		}
		i = end + 1;
	}
	return loaded;
}
