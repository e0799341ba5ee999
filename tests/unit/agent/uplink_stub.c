/*
 * Link seam for test_agent: a fake uplink implementing uplink.h with no network. It plays
 * the server: on step it assigns a server stream id, reads every ready chunk through the
 * agent's io callbacks (the buffer), decodes it, records each record's stream and seq, and
 * acknowledges it. The test reads the globals below; wait() stops the loop after a set
 * number of calls.
 */
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <time.h>

#include "rn_err.h"
#include "rn_mem.h"
#include "rn_zstd.h"
#include "uplink.h"
#include "runnel/v1/record.pb-c.h"
#include "zerobus/zerobus_service.pb-c.h"

#include "uplink_stub.h"

struct stub_state stub;

struct rn_uplink {
	struct rn_uplink_io io;
	struct stub_stream {
		int id;
		char server_id[64];
		int64_t acked, ready, released;
	} s[STUB_MAX_STREAMS];
	int n;
};

int rn_uplink_create(struct rn_uplink **out, const struct rn_uplink_options *opt,
		     const struct rn_uplink_io *io)
{
	struct rn_uplink *u = rn_calloc(1, sizeof(*u));
	if (!u)
		return RN_ENOMEM;
	u->io = *io;
	stub.descriptor_len = opt->descriptor_len;
	*out = u;
	return 0;
}

void rn_uplink_destroy(struct rn_uplink *u)
{
	rn_free(u);
}

int rn_uplink_add_stream(struct rn_uplink *u, const struct rn_uplink_stream_def *d)
{
	for (int i = 0; i < u->n; i++)
		if (u->s[i].id == d->stream)
			return RN_EEXIST; /* as the real uplink */
	if (u->n == STUB_MAX_STREAMS)
		return RN_ENOMEM;
	struct stub_stream *s = &u->s[u->n++];
	s->id = d->stream;
	snprintf(s->server_id, sizeof(s->server_id), "%s", d->server_id ? d->server_id : "");
	s->acked = s->released = d->acked;
	s->ready = d->next_offset;
	stub.added++;
	return 0;
}

void rn_uplink_chunks_ready(struct rn_uplink *u, int stream, int64_t next_offset)
{
	for (int i = 0; i < u->n; i++)
		if (u->s[i].id == stream && next_offset > u->s[i].ready)
			u->s[i].ready = next_offset;
}

static void deliver(struct rn_uplink *u, struct stub_stream *s)
{
	struct rn_buf chunk = {0}, plain = {0};
	for (int64_t off = s->acked + 1; off < s->ready; off++) {
		rn_buf_reset(&chunk);
		rn_buf_reset(&plain);
		if (u->io.chunk_get(u->io.ctx, s->id, off, &chunk) ||
		    rn_zstd_decompress(&plain, chunk.data + 5, chunk.len - 5, 64 << 20)) {
			stub.errors++;
			break;
		}
		Databricks__Zerobus__PersistentStreamRequest *req =
			databricks__zerobus__persistent_stream_request__unpack(NULL, plain.len,
									       plain.data);
		if (!req || !req->ingest_record_batch ||
		    req->ingest_record_batch->offset_id != off) {
			stub.errors++;
			break;
		}
		Databricks__Zerobus__ProtoEncodedRecordBatch *b =
			req->ingest_record_batch->proto_encoded_batch;
		for (size_t i = 0; i < b->n_records; i++) {
			Runnel__V1__Record *r = runnel__v1__record__unpack(NULL, b->records[i].len,
									   b->records[i].data);
			if (r && stub.nrec < STUB_MAX_RECORDS) {
				stub.rec_stream[stub.nrec] = s->id;
				stub.rec_seq[stub.nrec] = r->seq;
				stub.nrec++;
			} else {
				stub.errors++;
			}
			runnel__v1__record__free_unpacked(r, NULL);
		}
		databricks__zerobus__persistent_stream_request__free_unpacked(req, NULL);
		stub.chunks++;
		if (!stub.hold && u->io.acked(u->io.ctx, s->id, off))
			stub.errors++;
		s->acked = off;
		if (!stub.hold)
			s->released = off;
	}
	if (stub.hold && stub.release_upto > s->released) {
		int64_t to = stub.release_upto < s->acked ? stub.release_upto : s->acked;
		if (to > s->released) {
			if (u->io.acked(u->io.ctx, s->id, to))
				stub.errors++;
			s->released = to;
		}
	}
	rn_buf_free(&chunk);
	rn_buf_free(&plain);
}

int rn_uplink_step(struct rn_uplink *u)
{
	if (!stub.online)
		return 0;
	for (int i = 0; i < u->n; i++) {
		struct stub_stream *s = &u->s[i];
		if (!s->server_id[0]) {
			snprintf(s->server_id, sizeof(s->server_id), "srv-%d", s->id);
			if (u->io.stream_id_set(u->io.ctx, s->id, s->server_id))
				stub.errors++;
		}
		deliver(u, s);
	}
	return 0;
}

int rn_uplink_wait(struct rn_uplink *u, struct rn_uplink_waitfd *fds, int nfds, int timeout_ms)
{
	struct timespec ts = {0, 1000000L * (timeout_ms < 5 ? timeout_ms : 5)};
	(void)u;
	if (timeout_ms > stub.max_timeout)
		stub.max_timeout = timeout_ms;
	if (timeout_ms < stub.min_timeout)
		stub.min_timeout = timeout_ms;
	if (timeout_ms > 0)
		nanosleep(&ts, NULL);
	/* the agent reads its status socket and wake pipe only when they are reported ready */
	struct pollfd p[16];
	int n = nfds < 16 ? nfds : 16;
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = fds[i].fd, .events = fds[i].events};
	if (n > 0 && poll(p, (nfds_t)n, 0) > 0)
		for (int i = 0; i < n; i++)
			fds[i].revents = p[i].revents;
	if (stub.stop && ++stub.waits >= stub.stop_after)
		*stub.stop = 1;
	return 0;
}

void rn_uplink_wakeup(struct rn_uplink *u)
{
	(void)u;
}

int rn_uplink_stream_stats(const struct rn_uplink *u, int stream, struct rn_uplink_stream_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (int i = 0; i < u->n; i++)
		if (u->s[i].id == stream) {
			st->connected = stub.online;
			st->acked = u->s[i].acked;
			st->committed = u->s[i].released;
			st->committed_acks = stub.hold;
			st->sent = u->s[i].acked;
			st->last_status = -1;
			return 0;
		}
	return RN_ENOTFOUND;
}

int rn_uplink_idle(const struct rn_uplink *u)
{
	for (int i = 0; i < u->n; i++)
		if (u->s[i].acked + 1 < u->s[i].ready)
			return !stub.online;
	return 1;
}

const char *rn_uplink_errmsg(const struct rn_uplink *u)
{
	(void)u;
	return "";
}

int rn_uplink_token_stats(const struct rn_uplink *u, struct rn_uplink_token_stats *st)
{
	(void)u;
	memset(st, 0, sizeof(*st));
	return RN_ENOTFOUND;
}

int rn_uplink_health_wanted(const struct rn_uplink *u)
{
	(void)u;
	return stub.health_takes && stub.health_fresh;
}

int rn_uplink_health_send(struct rn_uplink *u, const char *json, size_t len, int all)
{
	(void)u;
	if (!stub.health_takes || (!all && !stub.health_fresh))
		return 0;
	if (len > 16384)
		return RN_EINVAL;
	stub.health_fresh = 0;
	stub.health_reports++;
	stub.health_last_all = all;
	memcpy(stub.health_last, json, len);
	stub.health_last[len] = 0;
	return 1;
}
