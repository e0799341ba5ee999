/*
 * What the MQTT source remembers about the broker's session across restarts, apart from the
 * redelivery ring: the subscriptions the broker granted in the session, and per topic a
 * digest of the last message stored on a topic that delivered a retained message. It is the
 * I/O-free core of the retained-message rule (README.md): a retained message whose digest
 * equals the one remembered for its topic is already in the buffer and is skipped; a changed
 * value is stored. Its text form goes into the source's snapshot, committed in the agent
 * buffer in the same transaction as the records it describes. It does not include
 * mosquitto.h and reads no clock. Created and destroyed by the plugin instance, used from the
 * agent's loop thread only.
 */
#ifndef RN_MQTT_MEM_H
#define RN_MQTT_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_MQTT_RETAINED_MAX 1024 /* topics whose retained value is remembered */
#define RN_MQTT_SUBS_MAX 256      /* granted subscriptions remembered */

struct rn_mqtt_mem;

/* 64-bit FNV-1a over topic, a 0xff separator and payload: the digest of a message (and, with
 * a subscription's options byte as payload, of a subscription). */
uint64_t rn_mqtt_digest(const char *topic, const void *payload, size_t len);

/* An empty memory. 0 or RN_ENOMEM (*out NULL). */
int rn_mqtt_mem_create(struct rn_mqtt_mem **out);
/* NULL is a no-op. */
void rn_mqtt_mem_destroy(struct rn_mqtt_mem *m);

/* Is this retained message (digest from rn_mqtt_digest) the value last stored on its topic?
 * 1: it is in the buffer already; skip it. 0: store it. */
int rn_mqtt_mem_retained_known(const struct rn_mqtt_mem *m, const char *topic, uint64_t digest);

/* A message on `topic` is about to be stored. A retained one makes the topic remembered (up
 * to RN_MQTT_RETAINED_MAX topics; beyond, it is not, and 0 is returned as for any message);
 * any message on a remembered topic replaces its digest, since the broker's retained value
 * may be that message. Returns 1 when a retained message's topic could not be remembered. */
int rn_mqtt_mem_note(struct rn_mqtt_mem *m, const char *topic, uint64_t digest, int retained);

/* Topics remembered. */
size_t rn_mqtt_mem_retained_count(const struct rn_mqtt_mem *m);

/* Subscriptions, each identified by the digest of its filter and options byte (QoS, retain
 * handling): granted() says whether the broker's session holds it, grant() records a SUBACK
 * that granted it (ignored past RN_MQTT_SUBS_MAX), forget_subs() empties the list (the
 * session is new: the broker holds none). */
int rn_mqtt_mem_granted(const struct rn_mqtt_mem *m, const char *filter, uint8_t options);
void rn_mqtt_mem_grant(struct rn_mqtt_mem *m, const char *filter, uint8_t options);
void rn_mqtt_mem_forget_subs(struct rn_mqtt_mem *m);

/* Appends the text form: "r<topic hash>:<digest>," per topic and "s<subscription>," per
 * granted subscription (16 lower-case hex digits each). 0 or RN_ENOMEM (out may then hold
 * part of it). */
int rn_mqtt_mem_encode(const struct rn_mqtt_mem *m, struct rn_buf *out);

/* Loads the entries of a text form into m (which keeps what it had). Entries it does not own
 * (the redelivery ring's "mid:hash,") and malformed ones are skipped; text need not be
 * NUL-terminated. Returns the number of entries loaded. */
size_t rn_mqtt_mem_decode(struct rn_mqtt_mem *m, const char *text, size_t len);

#endif
