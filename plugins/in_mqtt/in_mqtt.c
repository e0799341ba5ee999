/*
 * in_mqtt: subscribes to an MQTT broker with libmosquitto (the only code that includes
 * mosquitto.h) and hands every message to the host as a record: payload as is, the topic,
 * MQTT 5 user properties and content type as attributes. The client is driven from the
 * agent's loop, never from a thread of its own.
 *
 * Acknowledge only what is committed. libmosquitto 2.0.11 (Debian 12) queues PUBACK (QoS 1)
 * and PUBREC (QoS 2) as soon as it has read a PUBLISH and, left to itself, writes them at
 * once. We mark the client "threaded" (mosquitto_threaded_set) so queued packets are written
 * only by mosquitto_loop_write, which we call ourselves: a poll reads a batch of packets
 * (each message goes into the open chunk), asks the host to flush (commit to the disk
 * buffer), and only then writes the acknowledgements. So for QoS 1 the broker keeps a
 * message until it is on disk: nothing is lost. A crash between the commit and the write of
 * the PUBACKs makes the broker redeliver that last batch; the snapshot therefore records
 * (mid, hash of topic and payload) for the messages of the batch it commits, and after a
 * restart redelivered messages matching it are skipped until the first one that does not.
 * The same ring, kept in memory, arms the skipping when the connection comes back with the
 * session resumed (a broker restart resends what it had no PUBACK for).
 * QoS 2 in this library sends PUBREC before it hands the message over (on PUBREL) and has no
 * manual acknowledgement, so a QoS 2 subscription would lose a message to a crash in that
 * round trip: `qos = 2` therefore subscribes at QoS 1, which with the above is exactly once.
 *
 * Retained messages: the broker sends them when a subscription is made, flagged retained, and
 * they become records with the attribute mqtt.retain = "true". A subscription the broker's
 * session already holds (remembered in the snapshot once its SUBACK granted it) is not made
 * again when the session is resumed, and MQTT 5 subscribes with Retain Handling 1, so a
 * persistent session resends nothing. When the session is new (expired, lost by the broker,
 * clean_session) the retained messages come again; mqtt_mem.c remembers per topic the digest
 * of the last message stored, in the snapshot, and a retained message equal to it is skipped.
 *
 * Buffer full under the `block` policy: accepting() turns 0 before the buffer is truly full
 * (room for two chunks is kept), the plugin stops reading, flushes, acknowledges and
 * disconnects; the broker queues for the persistent session until we reconnect.
 */
#include <errno.h>
#include <stdarg.h>
#include <mosquitto.h>
#include <poll.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "plugin.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

#include "mqtt_mem.h"

struct in_mqtt_conf {
	char *host;
	int64_t port;
	char *client_id; /* NULL: "runnel-<source name>" */
	struct rn_conf_strlist topics;
	int64_t qos;
	int clean_session;
	char *username;
	char *password;
	int64_t keepalive_s;
	int64_t session_expiry_ms;
	int protocol; /* 0 = 3.1.1, 1 = 5 */
	char *tls_ca;
	char *tls_cert;
	char *tls_key;
};

static const char *const protocols[] = {"3.1.1", "5", NULL};

#define C(f) offsetof(struct in_mqtt_conf, f)
static const struct rn_conf_key mqtt_conf[] = {
	{.key = "host",
	 .type = RN_CONF_STRING,
	 .def = "127.0.0.1",
	 .offset = C(host),
	 .help = "broker host"},
	{.key = "port",
	 .type = RN_CONF_INT,
	 .def = "1883",
	 .min = 1,
	 .max = 65535,
	 .offset = C(port),
	 .help = "broker port"},
	{.key = "client_id",
	 .type = RN_CONF_STRING,
	 .offset = C(client_id),
	 .help = "fixed client id for the persistent session (default runnel-<source name>)"},
	{.key = "topics",
	 .type = RN_CONF_STRLIST,
	 .offset = C(topics),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "subscriptions; wildcards + and # allowed"},
	{.key = "qos",
	 .type = RN_CONF_INT,
	 .def = "1",
	 .min = 0,
	 .max = 2,
	 .offset = C(qos),
	 .help = "subscription QoS (0 at most once; 1 exactly once, queued in the session while "
		 "away; 2 is subscribed as 1)"},
	{.key = "clean_session",
	 .type = RN_CONF_BOOL,
	 .def = "false",
	 .offset = C(clean_session),
	 .help = "true drops the broker-side session (and what it queued) at each connect"},
	{.key = "username", .type = RN_CONF_STRING, .offset = C(username), .help = "MQTT username"},
	{.key = "password", .type = RN_CONF_STRING, .offset = C(password), .help = "MQTT password"},
	{.key = "keepalive",
	 .type = RN_CONF_INT,
	 .def = "30",
	 .min = 5,
	 .max = 65535,
	 .offset = C(keepalive_s),
	 .help = "keepalive interval in seconds"},
	{.key = "session_expiry",
	 .type = RN_CONF_DURATION,
	 .def = "720h",
	 .min = 0,
	 .max = (int64_t)UINT32_MAX * 1000,
	 .offset = C(session_expiry_ms),
	 .help = "MQTT 5: how long the broker keeps the session (and queues) while we are away"},
	{.key = "protocol",
	 .type = RN_CONF_ENUM,
	 .def = "3.1.1",
	 .enums = protocols,
	 .offset = C(protocol),
	 .help = "MQTT protocol version"},
	{.key = "tls_ca",
	 .type = RN_CONF_STRING,
	 .offset = C(tls_ca),
	 .help = "CA file: enables TLS"},
	{.key = "tls_cert",
	 .type = RN_CONF_STRING,
	 .offset = C(tls_cert),
	 .help = "client certificate (PEM), with tls_key"},
	{.key = "tls_key",
	 .type = RN_CONF_STRING,
	 .offset = C(tls_key),
	 .help = "client private key (PEM)"},
	{0},
};
#undef C

#define ATTR_MAX 16
#define LOOP_ROUNDS 512       /* packets read per poll at most */
#define SEEN_MAX 512          /* QoS 1 messages remembered for skipping redeliveries */
#define LEAVE_WAIT_US 2000000 /* how long a graceful leave waits for the broker's close */

struct seen {
	uint16_t mid;
	uint64_t hash;
};

struct in_mqtt {
	const struct in_mqtt_conf *conf;
	const struct rn_source_conf *sc;
	struct rn_source_host host;
	struct mosquitto *mosq;
	char client_id[256];
	int connected;
	int paused;          /* disconnected on purpose: the host is not accepting */
	int held;            /* read and emitted, but the flush was refused: acks wait */
	int connects;        /* connections accepted in this process */
	int refused;         /* the broker refused our last CONNECT */
	int64_t retry_at_us; /* mono time of the next connect attempt */
	int64_t backoff_ms;
	uint64_t received, skipped, skipped_retained;
	/* per configured topic: the mid of its SUBSCRIBE awaiting a SUBACK, or 0 */
	int *sub_mid;
	/* granted subscriptions and the retained-message digests (goes into the snapshot) */
	struct rn_mqtt_mem *mem;
	int got;            /* messages handed over since the last flush */
	int64_t leaving_us; /* a graceful leave started (write side shut); 0 = none */
	/* the last SEEN_MAX QoS 1 messages emitted, a ring (it goes into the snapshot) */
	struct seen seen[SEEN_MAX];
	size_t nseen, seen_next;
	/* after a restart: the last committed batch; redeliveries of it are skipped */
	struct seen *replay;
	size_t nreplay;
};

static int lib_users;

/* Is this the redelivery of a message committed just before the last stop? The broker resends
 * unacknowledged messages first and in order: the first message that does not match ends
 * the replay. */
static int redelivered(struct in_mqtt *q, const struct mosquitto_message *msg, uint64_t h)
{
	if (!q->nreplay)
		return 0;
	for (size_t i = 0; i < q->nreplay; i++)
		if (q->replay[i].mid == (uint16_t)msg->mid && q->replay[i].hash == h)
			return 1;
	rn_free(q->replay);
	q->replay = NULL;
	q->nreplay = 0;
	return 0;
}

/* The replay list becomes the ring of QoS 1 messages taken (oldest first). */
static void arm_replay_from_seen(struct in_mqtt *q)
{
	struct seen *r = rn_calloc(q->nseen, sizeof(*r));
	if (!r)
		return;
	for (size_t k = 0; k < q->nseen; k++)
		r[k] = q->seen[(q->seen_next + SEEN_MAX - q->nseen + k) % SEEN_MAX];
	rn_free(q->replay);
	q->replay = r;
	q->nreplay = q->nseen;
}

/* The QoS a topic is subscribed at: 2 becomes 1 (see the top of the file). */
static int sub_qos(const struct in_mqtt *q)
{
	return q->conf->qos == 2 ? 1 : (int)q->conf->qos;
}

/* MQTT 5 subscription options: Retain Handling 1, retained messages only for a subscription
 * the session did not hold. MQTT 3.1.1 has none. */
static int sub_options(const struct in_mqtt *q)
{
	return q->conf->protocol == 1 ? MQTT_SUB_OPT_SEND_RETAIN_NEW : 0;
}

/* How a subscription is remembered: its filter with QoS and options, so that a changed qos
 * makes it again. */
static uint8_t sub_key(const struct in_mqtt *q)
{
	return (uint8_t)(sub_qos(q) | sub_options(q));
}

/* Tells the host the source's state (status, health reports); fmt NULL = no error. */
static void say_state(struct in_mqtt *q, int state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say_state(struct in_mqtt *q, int state, const char *fmt, ...)
{
	char e[256];
	va_list ap;
	if (!RN_HOST_HAS(&q->host, set_state) || !q->host.set_state)
		return;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(e, sizeof(e), fmt, ap);
		va_end(ap);
	}
	q->host.set_state(q->host.ctx, state, fmt ? e : NULL);
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags,
		       const mosquitto_property *props)
{
	struct in_mqtt *q = obj;
	size_t kept = 0;
	(void)props;
	if (rc) {
		/* refused (bad credentials, not authorized, banned...): retried, but slowly, and
		 * said as an error each time */
		rn_log_error("in_mqtt", "%s: broker refused the connection: %s; retrying in 30 s",
			     q->sc->name,
			     q->conf->protocol == 1 ? mosquitto_reason_string(rc)
						    : mosquitto_connack_string(rc));
		q->refused = 1;
		say_state(q, RN_SOURCE_ERROR, "broker refused the connection: %s",
			  q->conf->protocol == 1 ? mosquitto_reason_string(rc)
						 : mosquitto_connack_string(rc));
		return;
	}
	q->refused = 0;
	q->connected = 1;
	say_state(q, RN_SOURCE_UP, NULL);
	q->backoff_ms = 0;
	rn_log_info("in_mqtt", "%s: connected to %s:%lld as %s (session %s)", q->sc->name,
		    q->conf->host, (long long)q->conf->port, q->client_id,
		    flags & 1 ? "resumed" : "new");
	/* The broker resends what it holds no PUBACK for: messages we may already have taken
	 * (a broker restart, or a connection lost before our PUBACKs reached it). On a resumed
	 * session those redeliveries are skipped by the ring of messages taken in this process,
	 * as after our own restart by the one in the snapshot. */
	if ((flags & 1) && q->connects && q->nseen)
		arm_replay_from_seen(q);
	q->connects++;
	/* A new session holds no subscriptions (whatever the snapshot remembers). */
	if (!(flags & 1)) {
		rn_mqtt_mem_forget_subs(q->mem);
		q->host.position_changed(q->host.ctx);
	}
	/* A resumed session keeps the subscriptions its SUBACKs granted, and subscribing again
	 * would make a 3.1.1 broker resend the retained messages: only the configured topics
	 * it does not hold (new ones, a changed qos) are subscribed. */
	for (size_t i = 0; i < q->conf->topics.n; i++) {
		const char *t = q->conf->topics.v[i];
		q->sub_mid[i] = 0;
		if ((flags & 1) && rn_mqtt_mem_granted(q->mem, t, sub_key(q))) {
			kept++;
			continue;
		}
		if (mosquitto_subscribe_v5(m, &q->sub_mid[i], t, sub_qos(q), sub_options(q), NULL))
			rn_log_error("in_mqtt", "%s: cannot subscribe to %s", q->sc->name, t);
	}
	if (kept == q->conf->topics.n)
		rn_log_info("in_mqtt", "%s: session resumed with its %zu subscriptions",
			    q->sc->name, kept);
}

/* A SUBACK: a granted subscription is remembered (the position changed: the checkpoint
 * carries it), a refused one is reported. */
static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
			 const mosquitto_property *props)
{
	struct in_mqtt *q = obj;
	(void)m;
	(void)props;
	for (size_t i = 0; i < q->conf->topics.n; i++) {
		const char *t = q->conf->topics.v[i];
		if (q->sub_mid[i] != mid || !mid)
			continue;
		q->sub_mid[i] = 0;
		if (n < 1 || granted[0] < 0 || granted[0] > 2) {
			rn_log_error("in_mqtt",
				     "%s: the broker refused the subscription %s (code %d)",
				     q->sc->name, t, n < 1 ? -1 : granted[0]);
			continue;
		}
		rn_mqtt_mem_grant(q->mem, t, sub_key(q));
		q->host.position_changed(q->host.ctx);
		rn_log_info("in_mqtt", "%s: subscribed to %s (qos %d)", q->sc->name, t, granted[0]);
	}
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *p)
{
	struct in_mqtt *q = obj;
	(void)m;
	(void)p;
	q->connected = 0;
	if (!q->paused && !q->refused) {
		rn_log_warn("in_mqtt", "%s: disconnected from the broker (%s)", q->sc->name,
			    rc ? mosquitto_strerror(rc) : "by us");
		say_state(q, RN_SOURCE_DOWN, "disconnected from the broker (%s)",
			  rc ? mosquitto_strerror(rc) : "by us");
	}
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
		       const mosquitto_property *props)
{
	struct in_mqtt *q = obj;
	struct rn_attr attrs[ATTR_MAX];
	char *owned[2 * ATTR_MAX];
	size_t na = 0, no = 0;
	const mosquitto_property *p;
	char *ct = NULL;
	uint64_t h = rn_mqtt_digest(msg->topic, msg->payload, (size_t)msg->payloadlen);
	struct seen ring_was = q->seen[q->seen_next];
	(void)m;

	if (msg->qos == 1 && redelivered(q, msg, h)) {
		q->skipped++;
		return;
	}
	/* sent from the broker's retained store, and the value we stored last on that topic */
	if (msg->retain && rn_mqtt_mem_retained_known(q->mem, msg->topic, h)) {
		if (q->skipped_retained++ == 0)
			rn_log_info("in_mqtt",
				    "%s: retained message on %s already stored; skipped "
				    "(and any more like it)",
				    q->sc->name, msg->topic);
		return;
	}
	/* MQTT 5: user properties and content type become attributes */
	for (p = props; p && na < ATTR_MAX - 2; p = mosquitto_property_next(p)) {
		char *k = NULL, *v = NULL;
		if (mosquitto_property_identifier(p) == MQTT_PROP_USER_PROPERTY &&
		    mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &k, &v,
							false)) {
			attrs[na].key = k;
			attrs[na++].value = v;
			owned[no++] = k;
			owned[no++] = v;
		}
	}
	if (props && mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &ct, false) &&
	    na < ATTR_MAX - 1) {
		attrs[na].key = "mqtt.content_type";
		attrs[na++].value = ct;
	}
	if (msg->retain) {
		attrs[na].key = "mqtt.retain";
		attrs[na++].value = "true";
	}
	struct rn_record r = {
		msg->payload, (size_t)msg->payloadlen, msg->topic, 0, 0, na ? attrs : NULL, na};
	/* The position advances before emit(), which may close the chunk and take the snapshot
	 * with this record in it (plugin.h); a retained digest replaced here is not stepped
	 * back on failure: that message is gone either way. */
	size_t nseen_was = q->nseen, next_was = q->seen_next;
	if (msg->qos == 1) {
		q->seen[q->seen_next] = (struct seen){(uint16_t)msg->mid, h};
		q->seen_next = (q->seen_next + 1) % SEEN_MAX;
		if (q->nseen < SEEN_MAX)
			q->nseen++;
	}
	if (rn_mqtt_mem_note(q->mem, msg->topic, h, msg->retain) && msg->retain)
		rn_log_warn("in_mqtt",
			    "%s: %d topics with retained messages remembered already; "
			    "%s is not, and its retained message may be stored again in a new "
			    "session",
			    q->sc->name, RN_MQTT_RETAINED_MAX, msg->topic);
	/* accepting() was checked before this packet was read, so the record fits */
	if (q->host.emit(q->host.ctx, &r)) {
		rn_log_error("in_mqtt", "%s: could not take a message on %s", q->sc->name,
			     msg->topic);
		q->seen[next_was] = ring_was;
		q->seen_next = next_was;
		q->nseen = nseen_was;
	}
	q->received++;
	q->got++;
	for (size_t i = 0; i < no; i++)
		free(owned[i]);
	free(ct);
}

static void schedule_retry(struct in_mqtt *q, int64_t now)
{
	q->backoff_ms = q->refused ? 30000 : q->backoff_ms ? q->backoff_ms * 2 : 250;
	if (q->backoff_ms > 30000)
		q->backoff_ms = 30000;
	q->retry_at_us = now + q->backoff_ms * 1000;
}

/* Starts a non-blocking connect (name resolution still blocks); CONNACK comes through the
 * loop. */
static void try_connect(struct in_mqtt *q, int64_t now)
{
	int rc;
	if (now < q->retry_at_us)
		return;
	rc = mosquitto_connect_bind_async(q->mosq, q->conf->host, (int)q->conf->port,
					  (int)q->conf->keepalive_s, NULL);
	if (rc == MOSQ_ERR_SUCCESS) {
		q->paused = 0;
		return;
	}
	schedule_retry(q, now);
	const char *why = rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
	rn_log_warn("in_mqtt", "%s: cannot connect to %s:%lld: %s; retry in %lld ms", q->sc->name,
		    q->conf->host, (long long)q->conf->port, why, (long long)q->backoff_ms);
	say_state(q, RN_SOURCE_DOWN, "cannot connect to %s:%lld: %s", q->conf->host,
		  (long long)q->conf->port, why);
}

static void lost(struct in_mqtt *q, int rc, int64_t now)
{
	const char *why = rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
	if (rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST && !q->refused)
		rn_log_warn("in_mqtt", "%s: connection lost: %s", q->sc->name, why);
	if (!q->refused)
		say_state(q, RN_SOURCE_DOWN, "connection lost: %s", why);
	q->connected = 0;
	mosquitto_disconnect(q->mosq);
	if (mosquitto_socket(q->mosq) >= 0)
		mosquitto_loop_write(q->mosq, 1);
	schedule_retry(q, now);
}

static int readable(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/* Writes what libmosquitto queued (acks, pings, subscribes, CONNECT) once the socket is up. */
static void write_out(struct in_mqtt *q, int64_t now)
{
	int rc;
	if (mosquitto_socket(q->mosq) < 0)
		return;
	if ((rc = mosquitto_loop_misc(q->mosq)) != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
		lost(q, rc, now);
		return;
	}
	if (mosquitto_want_write(q->mosq) && (rc = mosquitto_loop_write(q->mosq, 1)) &&
	    rc != MOSQ_ERR_NO_CONN)
		lost(q, rc, now);
}

/* Commits what this poll emitted; on success the acknowledgements may go out. */
static int commit_batch(struct in_mqtt *q)
{
	if (!q->got)
		return 0;
	if (q->host.flush(q->host.ctx)) {
		if (!q->held)
			rn_log_warn("in_mqtt", "%s: buffer full: holding acknowledgements",
				    q->sc->name);
		q->held = 1;
		return RN_EFULL;
	}
	q->held = 0;
	q->got = 0;
	return 0;
}

/*
 * Leaves without losing acknowledgements. Closing a socket that still holds unread data (the
 * broker keeps sending until we leave) sends a TCP RST, and a peer that gets a RST may throw
 * away what it had not read yet: our last PUBACKs. So: write everything queued, shut our
 * write side (FIN after the acks), wait until the broker closes (or LEAVE_WAIT_US), then
 * close. Returns 1 while still leaving.
 */
static int leave(struct in_mqtt *q, int64_t now)
{
	int fd = mosquitto_socket(q->mosq);
	if (fd < 0) {
		q->leaving_us = 0;
		return 0;
	}
	if (!q->leaving_us) {
		if (mosquitto_want_write(q->mosq))
			mosquitto_loop_write(q->mosq, 1);
		if (mosquitto_want_write(q->mosq) && now - q->retry_at_us < LEAVE_WAIT_US)
			return 1; /* acks still queued: try again on the next poll */
		shutdown(fd, SHUT_WR);
		q->leaving_us = now;
	}
	struct pollfd p = {fd, POLLRDHUP, 0};
	if (now - q->leaving_us < LEAVE_WAIT_US && !(poll(&p, 1, 0) > 0 && p.revents))
		return 1;
	/* the broker has seen our FIN; the DISCONNECT write fails and the socket is closed */
	mosquitto_disconnect(q->mosq);
	mosquitto_loop_write(q->mosq, 1);
	q->leaving_us = 0;
	return mosquitto_socket(q->mosq) >= 0;
}

static int mqtt_poll(void *inst, int64_t now_us, int *more)
{
	struct in_mqtt *q = inst;
	int fd, rc, i;

	*more = 0;
	if (q->held && commit_batch(q))
		return 0; /* nothing is read or acknowledged until the batch is in */
	if (q->leaving_us) {
		leave(q, now_us);
		return 0;
	}
	fd = mosquitto_socket(q->mosq);
	if (!q->host.accepting(q->host.ctx)) {
		/* block policy: leave, and let the broker queue for our persistent session */
		if (fd >= 0 && !q->paused) {
			rn_log_warn("in_mqtt",
				    "%s: buffer full; disconnecting so the broker queues",
				    q->sc->name);
			q->paused = 1;
			q->retry_at_us = now_us;
			say_state(q, RN_SOURCE_IDLE,
				  "buffer full: disconnected so the broker queues");
			leave(q, now_us);
		}
		return 0;
	}
	if (fd < 0) {
		if (q->paused)
			rn_log_info("in_mqtt", "%s: buffer has room again; reconnecting",
				    q->sc->name);
		try_connect(q, now_us);
		write_out(q, now_us);
		return 0;
	}
	for (i = 0; i < LOOP_ROUNDS && q->host.accepting(q->host.ctx); i++) {
		if ((fd = mosquitto_socket(q->mosq)) < 0 || !readable(fd))
			break;
		if ((rc = mosquitto_loop_read(q->mosq, 1)) != MOSQ_ERR_SUCCESS) {
			lost(q, rc, now_us);
			break;
		}
	}
	if (commit_batch(q))
		return 0;
	write_out(q, now_us);
	*more = i == LOOP_ROUNDS;
	return 0;
}

static int mqtt_wait_fd(void *inst, short *events)
{
	struct in_mqtt *q = inst;
	if (q->held || q->paused || q->leaving_us)
		return -1;
	*events = POLLIN | (mosquitto_want_write(q->mosq) ? POLLOUT : 0);
	return mosquitto_socket(q->mosq);
}

/* The broker's persistent session is the position; what we keep is (mid, hash) of the last
 * SEEN_MAX QoS 1 messages, oldest first, as "mid:hash," text: after a crash the broker
 * redelivers those whose PUBACK it did not get, and they are skipped. Then mqtt_mem's
 * entries (granted subscriptions, retained digests), which an older reader of the ring
 * stops at. */
static int mqtt_snapshot(void *inst, struct rn_buf *out)
{
	struct in_mqtt *q = inst;
	char tmp[48];
	for (size_t k = 0; k < q->nseen; k++) {
		const struct seen *e =
			&q->seen[(q->seen_next + SEEN_MAX - q->nseen + k) % SEEN_MAX];
		int n = snprintf(tmp, sizeof(tmp), "%u:%016llx,", e->mid,
				 (unsigned long long)e->hash);
		int rc = rn_buf_append(out, tmp, (size_t)n);
		if (rc)
			return rc;
	}
	return rn_mqtt_mem_encode(q->mem, out);
}

static void load_replay(struct in_mqtt *q)
{
	struct rn_buf b = {0};
	if (q->host.load_position(q->host.ctx, &b) || !b.len || rn_buf_append(&b, "", 1)) {
		rn_buf_free(&b);
		return;
	}
	size_t cap = 0;
	for (size_t i = 0; i < b.len; i++)
		cap += b.data[i] == ',';
	if (cap && (q->replay = rn_calloc(cap, sizeof(*q->replay)))) {
		const char *p = (const char *)b.data;
		unsigned mid;
		unsigned long long h;
		int n;
		while (q->nreplay < cap && sscanf(p, "%u:%llx,%n", &mid, &h, &n) == 2) {
			q->replay[q->nreplay++] = (struct seen){(uint16_t)mid, h};
			p += n;
		}
	}
	rn_mqtt_mem_decode(q->mem, (const char *)b.data, b.len - 1);
	rn_buf_free(&b);
}

static int mqtt_check(const struct rn_source_conf *sc, char *err, size_t cap)
{
	const struct in_mqtt_conf *c = sc->plugin.data;
	if (!c || !c->topics.n) {
		snprintf(err, cap, "source '%s': topics must name at least one subscription",
			 sc->name ? sc->name : "?");
		return RN_ECONFIG;
	}
	for (size_t i = 0; i < c->topics.n; i++) {
		if (mosquitto_sub_topic_check(c->topics.v[i]) != MOSQ_ERR_SUCCESS) {
			snprintf(err, cap, "source '%s': '%s' is not a valid subscription",
				 sc->name, c->topics.v[i]);
			return RN_ECONFIG;
		}
	}
	if ((c->tls_cert != NULL) != (c->tls_key != NULL)) {
		snprintf(err, cap, "source '%s': tls_cert and tls_key go together", sc->name);
		return RN_ECONFIG;
	}
	return 0;
}

static void mqtt_destroy(void *inst)
{
	struct in_mqtt *q = inst;
	if (!q)
		return;
	if (q->mosq) {
		/* acks go out only if everything read is committed */
		if (mosquitto_socket(q->mosq) >= 0 && (!q->got || commit_batch(q) == 0)) {
			int64_t t0 = rn_mono_us();
			q->paused = 1;
			q->retry_at_us = t0;
			q->leaving_us = 0;
			while (leave(q, rn_mono_us()) && rn_mono_us() - t0 < LEAVE_WAIT_US)
				poll(NULL, 0, 5);
		}
		mosquitto_destroy(q->mosq);
	}
	rn_free(q->replay);
	rn_free(q->sub_mid);
	rn_mqtt_mem_destroy(q->mem);
	if (--lib_users == 0)
		mosquitto_lib_cleanup();
	rn_free(q);
}

/*
 * MQTT 5 ends a session when the connection closes unless CONNECT carries a session expiry
 * interval. libmosquitto takes CONNECT properties only in the blocking
 * mosquitto_connect_bind_v5(), which stores them before it validates its arguments: called
 * with port -1 it stores them and returns MOSQ_ERR_INVAL without connecting, and the
 * non-blocking connects that follow send them.
 */
static int set_session_expiry(struct in_mqtt *q)
{
	mosquitto_property *props = NULL;
	uint32_t secs = (uint32_t)(q->conf->session_expiry_ms / 1000);
	int rc = mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, secs);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_connect_bind_v5(q->mosq, q->conf->host, -1,
					       (int)q->conf->keepalive_s, NULL, props);
	mosquitto_property_free_all(&props);
	return rc == MOSQ_ERR_INVAL ? 0 : -1;
}

static int mqtt_create(void **inst, const struct rn_source_conf *sc,
		       const struct rn_source_host *host)
{
	struct in_mqtt *q = rn_calloc(1, sizeof(*q));
	const struct in_mqtt_conf *c = sc->plugin.data;
	if (!q)
		return RN_ENOMEM;
	if (lib_users++ == 0)
		mosquitto_lib_init();
	q->conf = c;
	q->sc = sc;
	rn_source_host_copy(&q->host, host);
	say_state(q, RN_SOURCE_DOWN, "connecting to %s:%lld", c->host, (long long)c->port);
	if (rn_mqtt_mem_create(&q->mem) ||
	    !(q->sub_mid = rn_calloc(c->topics.n ? c->topics.n : 1, sizeof(*q->sub_mid)))) {
		mqtt_destroy(q);
		return RN_ENOMEM;
	}
	snprintf(q->client_id, sizeof(q->client_id), "%s", c->client_id ? c->client_id : "runnel-");
	if (!c->client_id)
		snprintf(q->client_id, sizeof(q->client_id), "runnel-%s", sc->name);
	if (!(q->mosq = mosquitto_new(q->client_id, c->clean_session, q))) {
		mqtt_destroy(q);
		return RN_ENOMEM;
	}
	/* queued packets (acks) are written only by our mosquitto_loop_write calls */
	mosquitto_threaded_set(q->mosq, true);
	mosquitto_int_option(q->mosq, MOSQ_OPT_PROTOCOL_VERSION,
			     c->protocol == 1 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	if (c->protocol == 1) {
		/* Receive maximum: mosquitto 2.0's broker and library count QoS 2 messages in
		 * flight differently (PUBREC vs PUBCOMP), and at the library's default of 20 the
		 * library calls a correct broker a protocol violation. */
		mosquitto_int_option(q->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 65535);
		if (!c->clean_session && set_session_expiry(q))
			rn_log_warn("in_mqtt",
				    "%s: cannot set the session expiry; the broker may end "
				    "the session when we disconnect",
				    sc->name);
	}
	mosquitto_connect_v5_callback_set(q->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(q->mosq, on_disconnect);
	mosquitto_message_v5_callback_set(q->mosq, on_message);
	mosquitto_subscribe_v5_callback_set(q->mosq, on_subscribe);
	if (c->username)
		mosquitto_username_pw_set(q->mosq, c->username, c->password);
	if (c->tls_ca &&
	    mosquitto_tls_set(q->mosq, c->tls_ca, NULL, c->tls_cert, c->tls_key, NULL)) {
		rn_log_error("in_mqtt", "%s: cannot set up TLS with %s", sc->name, c->tls_ca);
		mqtt_destroy(q);
		return RN_ECONFIG;
	}
	if (c->qos == 2)
		rn_log_info("in_mqtt",
			    "%s: qos 2 is subscribed as QoS 1: libmosquitto would "
			    "acknowledge (PUBREC) a QoS 2 message before handing it over; at QoS 1 "
			    "the broker is acknowledged only once a message is on disk and "
			    "redeliveries are skipped, which is exactly once",
			    sc->name);
	load_replay(q);
	*inst = q;
	return 0;
}

const struct rn_source_plugin rn_in_mqtt = {
	.abi = RN_SOURCE_ABI_1_1, /* host->set_state */
	.name = "mqtt",
	.description = "subscribes to an MQTT broker (3.1.1/5, QoS 0-2, persistent session)",
	.conf = mqtt_conf,
	.conf_size = sizeof(struct in_mqtt_conf),
	.check = mqtt_check,
	.create = mqtt_create,
	.poll = mqtt_poll,
	.wait_fd = mqtt_wait_fd,
	.snapshot = mqtt_snapshot,
	.destroy = mqtt_destroy,
};
