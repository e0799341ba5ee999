/*
 * What the agent tells about itself: the status JSON (one object: device, buffer, and per
 * stream its counts, uplink state and rates), data_dir/status.json (written when its content
 * changed, at most every STATUS_MIN_US, at once on SIGUSR1 and at exit; mode 0640), and the
 * status socket data_dir/agent.sock (mode 0660), which answers every connection with the
 * live JSON (`runnel-agent status`). Runs on the loop thread; owns only the socket's fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_int.h"
#include "rn_clock.h"
#include "rn_log.h"

/* A JSON string literal for s (quotes, backslashes and control bytes escaped). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}
/* status.json is written at most this often (when its content changed): flash storage
 * wears with every write, and the socket serves the live status. */
#define STATUS_MIN_US 5000000

/*
 * The status JSON. Per stream: name, table, server stream id, next_offset, acked (durable
 * on the server), committed (released: in the table, or acked by a server without
 * committed acks; chunks up to it are deleted), committed_acks (the server reports table
 * commits), retained_bytes (acked chunks kept until the table has them), records
 * (= next_seq), buffered_bytes (chunk bytes not yet released), connection state. With `stable`
 * the fields that move with the clock alone (uptime_s, retry_in_ms, oldest_age_s) are
 * written as 0: that text changes only when something happened.
 */
void rn_agent__status_json(struct rn_agent *a, FILE *f, int stable)
{
	fprintf(f, "{\"device_id\":");
	json_str(f, a->device_id);
	fprintf(f,
		",\"uptime_s\":%lld,\"buffer_bytes\":%lld,\"buffer_max_bytes\":%lld,"
		"\"buffer_policy\":\"%s\",\"disk_full\":%s,\"buffer_recovered\":%s,"
		"\"dropped_records\":%llu,\"expired_records\":%llu,\"reloads\":%llu,",
		stable ? 0LL : (long long)((rn_mono_us() - a->started_us) / 1000000),
		(long long)rn_buffer_bytes(a->buffer), (long long)a->conf->buffer_max_bytes,
		rn_agent_policies[a->conf->buffer_policy],
		rn_buffer_disk_full(a->buffer) ? "true" : "false",
		a->buffer_recovered ? "true" : "false", (unsigned long long)a->dropped_records,
		(unsigned long long)a->expired_records, (unsigned long long)a->reloads);
	/* the numbers a health report sends, from the same snapshot (report.c) */
	struct rn_agent_snap_mem m = {0};
	struct rn_health_snap hs;
	if (rn_agent__health_snapshot(a, &hs, &m) == 0) {
		uint64_t skipped = a->health_skipped;
		for (size_t i = 0; i < a->nsrc; i++)
			for (size_t k = 0; k < a->src[i]->nroutes; k++) {
				struct rn_uplink_stream_stats us;
				if (!rn_uplink_stream_stats(a->uplink, a->src[i]->routes[k].st.id,
							    &us))
					skipped += us.health_skipped;
			}
		fprintf(f, "\"buffer_records\":%lld,\"dead_letters\":%llu,\"sources\":[",
			(long long)hs.buffer_records, (unsigned long long)hs.dead_letters);
		for (size_t i = 0; i < hs.nsources; i++) {
			const struct rn_health_source *o = &hs.sources[i];
			fprintf(f, "%s{\"name\":", i ? "," : "");
			json_str(f, o->name);
			fprintf(f, ",\"type\":\"%s\",\"state\":\"%s\",\"error\":", o->type,
				rn_health_state_name(o->state));
			if (o->error)
				json_str(f, o->error);
			else
				fputs("null", f);
			fprintf(f, ",\"records\":%llu}", (unsigned long long)o->records);
		}
		fprintf(f,
			"],\"health\":{\"interval_s\":%lld,\"reports\":%llu,\"skipped\":%llu,"
			"\"last_ms\":%lld},",
			(long long)a->conf->health_interval, (unsigned long long)a->health_reports,
			(unsigned long long)skipped, (long long)a->health_last_ms);
	}
	rn_agent__snap_mem_free(&m);
	struct rn_uplink_token_stats ts;
	if (rn_uplink_token_stats(a->uplink, &ts) == 0) {
		/* the token's state, never the token */
		fprintf(f,
			"\"token\":{\"valid\":%s,\"fetching\":%s,\"valid_until\":%lld,"
			"\"refresh_in_ms\":%lld,\"fetches\":%llu,\"failures\":%llu,"
			"\"last_error\":",
			ts.valid ? "true" : "false", ts.fetching ? "true" : "false",
			(long long)ts.valid_until, stable ? 0LL : (long long)ts.refresh_in_ms,
			(unsigned long long)ts.fetches, (unsigned long long)ts.failures);
		json_str(f, ts.last_error);
		fprintf(f, "},");
	}
	fprintf(f, "\"streams\":[");
	int first = 1;
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = a->src[i];
		for (size_t k = 0; k < s->nroutes; k++) {
			struct route *r = &s->routes[k];
			struct rn_uplink_stream_stats us = {0};
			struct rn_buffer_stream bs;
			int64_t buffered = 0, dropped = 0, expired = 0, oldest_s = 0;
			rn_uplink_stream_stats(a->uplink, r->st.id, &us);
			if (!rn_buffer_stream_load(a->buffer, r->st.id, &bs)) {
				buffered = bs.bytes;
				dropped = bs.dropped_records;
				expired = bs.expired_records;
			}
			int64_t oldest = rn_buffer_oldest_us(a->buffer, r->st.id);
			int64_t committed = r->ack_waiting ? r->ack_to : r->st.acked;
			int64_t acked = rn_uplink_stream_stats(a->uplink, r->st.id, &us) ? committed
											 : us.acked;
			/* acked chunks kept until the table has them (buffered, counted in
			 * buffered_bytes and against max_bytes) */
			int64_t retained =
				acked > committed ? rn_buffer_bytes_upto(a->buffer, r->st.id, acked)
						  : 0;
			if (oldest > 0 && rn_now_us() > oldest)
				oldest_s = (rn_now_us() - oldest) / 1000000;
			fprintf(f, "%s{\"name\":", first ? "" : ",");
			first = 0;
			json_str(f, r->name);
			fprintf(f, ",\"source\":");
			json_str(f, s->conf->name);
			fprintf(f, ",\"table\":");
			json_str(f, r->table);
			fprintf(f, ",\"server_stream_id\":");
			json_str(f, r->st.server_id);
			fprintf(f,
				",\"uplink\":{\"state\":\"%s\",\"bytes_sent\":%llu,\"failures\":%"
				"llu,"
				"\"faults\":%llu,\"pushbacks\":%llu,\"rate_waits\":%llu,"
				"\"retry_in_ms\":%lld,\"last_status\":%d,\"health\":%s,"
				"\"health_sent\":%llu,\"health_skipped\":%llu,\"last_error\":",
				rn_uplink_state_name(us.state), (unsigned long long)us.bytes_sent,
				(unsigned long long)us.failures, (unsigned long long)us.faults,
				(unsigned long long)us.pushbacks, (unsigned long long)us.rate_waits,
				stable ? 0LL : (long long)us.retry_in_ms, us.last_status,
				us.health ? "true" : "false", (unsigned long long)us.health_sent,
				(unsigned long long)us.health_skipped);
			json_str(f, us.last_error);
			fputc('}', f);
			fprintf(f,
				",\"records\":%lld,\"next_offset\":%lld,\"acked\":%lld,"
				"\"committed\":%lld,\"committed_acks\":%s,\"retained_bytes\":%lld,"
				"\"buffered_bytes\":%lld,\"connected\":%s,\"reconnects\":%llu,"
				"\"paused\":%s,\"pauses\":%llu,\"dead_letters\":%llu,"
				"\"event_time_fallbacks\":%llu,\"dropped_records\":%lld,"
				"\"expired_records\":%lld,\"oldest_age_s\":%lld,"
				"\"records_per_s\":%.1f}",
				(long long)r->st.next_seq, (long long)r->st.next_offset,
				/* what the server acknowledged (durable in its WAL) */
				(long long)(acked > committed ? acked : committed),
				/* released: deleted or waiting to be (in the table, or acked
				 * by a server without committed acks) */
				(long long)committed, us.committed_acks ? "true" : "false",
				(long long)retained, (long long)buffered,
				us.connected ? "true" : "false", (unsigned long long)us.reconnects,
				s->have_pending ? "true" : "false", (unsigned long long)s->pauses,
				(unsigned long long)s->dead_letters,
				(unsigned long long)s->evtime_fallbacks, (long long)dropped,
				(long long)expired, stable ? 0LL : (long long)oldest_s, r->rate);
		}
	}
	fprintf(f, "]}\n");
}

/* Each stream's intake rate, records/s, measured over windows of at least a second. */
void rn_agent__sample_rates(struct rn_agent *a)
{
	int64_t now = rn_mono_us();
	for (size_t i = 0; i < a->nsrc; i++)
		for (size_t k = 0; k < a->src[i]->nroutes; k++) {
			struct route *r = &a->src[i]->routes[k];
			if (!r->rate_us) {
				r->rate_us = now;
				r->rate_seq = r->st.next_seq;
			} else if (now - r->rate_us >= 1000000) {
				r->rate = (double)(r->st.next_seq - r->rate_seq) * 1e6 /
					  (double)(now - r->rate_us);
				r->rate_us = now;
				r->rate_seq = r->st.next_seq;
			}
		}
}

/* FNV-1a over the text: enough to tell "changed" from "the same" for one writer. */
static uint64_t text_hash(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

/* The JSON in a heap string (free() it); NULL when memory ran out. */
static char *render(struct rn_agent *a, int stable, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	if (!f)
		return NULL;
	rn_agent__status_json(a, f, stable);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/*
 * data_dir/status.json (mode 0640, for the operators' group), replaced atomically (write
 * to .tmp, rename). Without `force` it is written only when the content changed since the
 * last write (clock-driven fields aside) and the last write is STATUS_MIN_US old: an idle
 * agent writes nothing.
 */
void rn_agent__status_write(struct rn_agent *a, int force)
{
	char path[4200], tmp[4300];
	size_t len = 0;
	int64_t now = rn_mono_us();

	if (!force && now < a->next_status_us)
		return;
	rn_agent__sample_rates(a);
	char *text = render(a, 1, &len);
	if (!text)
		return;
	uint64_t h = text_hash(text, len);
	free(text);
	a->next_status_us = now + STATUS_MIN_US;
	if (!force && h == a->status_hash)
		return;
	if (!(text = render(a, 0, &len)))
		return;
	snprintf(path, sizeof(path), "%s/status.json", a->conf->data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd >= 0) {
		ssize_t w = write(fd, text, len);
		fchmod(fd, 0640); /* whatever the umask or an older file said */
		if (close(fd) == 0 && w == (ssize_t)len && rename(tmp, path) == 0)
			a->status_hash = h;
		else
			unlink(tmp);
	}
	free(text);
}

/*
 * The status socket, data_dir/agent.sock: every connection gets the status JSON, written
 * at once, and is closed (`runnel-agent status` reads it). Answered from the loop between
 * polls; a client that does not read is cut off (non-blocking write, no waiting).
 */
void rn_agent__status_socket_open(struct rn_agent *a)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", a->conf->data_dir);
	a->status_fd = -1;
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		rn_log_warn("agent", "data_dir is too long for a status socket; status.json only");
		return;
	}
	unlink(sa.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* 0660: `runnel-agent status` works for the group that owns data_dir (runnel) */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(sa.sun_path, 0660) ||
	    listen(fd, 8)) {
		rn_log_warn("agent", "status socket %s: %s", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	a->status_fd = fd;
}

void rn_agent__status_socket_serve(struct rn_agent *a)
{
	int c;
	while (a->status_fd >= 0 &&
	       (c = accept4(a->status_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		size_t len = 0;
		char *text;
		rn_agent__sample_rates(a);
		if ((text = render(a, 0, &len)) && write(c, text, len) < 0)
			rn_log_debug("agent", "status client went away: %s", strerror(errno));
		free(text);
		close(c);
	}
}

void rn_agent__status_socket_close(struct rn_agent *a)
{
	char path[4200];
	if (a->status_fd < 0)
		return;
	close(a->status_fd);
	a->status_fd = -1;
	snprintf(path, sizeof(path), "%s/agent.sock", a->conf->data_dir);
	unlink(path);
}
