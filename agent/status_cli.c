/* `runnel-agent status`; see status_cli.h. */
#include "status_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rn_buf.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_json.h"

struct top {
	struct rn_json_span device, uptime, buffer, cap, policy, disk_full, recovered, dropped,
		expired;
	struct rn_json_span streams, token, sources, health;
};

static int top_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct top *t = ctx;
	if (rn_json_span_eq(k, "device_id"))
		t->device = v;
	else if (rn_json_span_eq(k, "uptime_s"))
		t->uptime = v;
	else if (rn_json_span_eq(k, "buffer_bytes"))
		t->buffer = v;
	else if (rn_json_span_eq(k, "buffer_max_bytes"))
		t->cap = v;
	else if (rn_json_span_eq(k, "buffer_policy"))
		t->policy = v;
	else if (rn_json_span_eq(k, "disk_full"))
		t->disk_full = v;
	else if (rn_json_span_eq(k, "buffer_recovered"))
		t->recovered = v;
	else if (rn_json_span_eq(k, "dropped_records"))
		t->dropped = v;
	else if (rn_json_span_eq(k, "expired_records"))
		t->expired = v;
	else if (rn_json_span_eq(k, "streams"))
		t->streams = v;
	else if (rn_json_span_eq(k, "token"))
		t->token = v;
	else if (rn_json_span_eq(k, "sources"))
		t->sources = v;
	else if (rn_json_span_eq(k, "health"))
		t->health = v;
	return 0;
}

/* A source's members (status.c: name, type, state, error, records). */
struct src {
	struct rn_json_span name, type, state, error, records;
};

static int src_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct src *t = ctx;
	if (rn_json_span_eq(k, "name"))
		t->name = v;
	else if (rn_json_span_eq(k, "type"))
		t->type = v;
	else if (rn_json_span_eq(k, "state"))
		t->state = v;
	else if (rn_json_span_eq(k, "error"))
		t->error = v;
	else if (rn_json_span_eq(k, "records"))
		t->records = v;
	return 0;
}

/* The health reports' members the human output shows. */
struct hl {
	struct rn_json_span interval, reports, skipped;
};

static int hl_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct hl *t = ctx;
	if (rn_json_span_eq(k, "interval_s"))
		t->interval = v;
	else if (rn_json_span_eq(k, "reports"))
		t->reports = v;
	else if (rn_json_span_eq(k, "skipped"))
		t->skipped = v;
	return 0;
}

/* The OAuth token's members the human output shows. */
struct tok {
	struct rn_json_span valid, until, refresh, fetches, failures, err;
};

static int tok_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct tok *t = ctx;
	if (rn_json_span_eq(k, "valid"))
		t->valid = v;
	else if (rn_json_span_eq(k, "valid_until"))
		t->until = v;
	else if (rn_json_span_eq(k, "refresh_in_ms"))
		t->refresh = v;
	else if (rn_json_span_eq(k, "fetches"))
		t->fetches = v;
	else if (rn_json_span_eq(k, "failures"))
		t->failures = v;
	else if (rn_json_span_eq(k, "last_error"))
		t->err = v;
	return 0;
}

#define NCOLS 14
static const char *const cols[NCOLS] = {
	"name",          "table",           "records",         "acked",
	"next_offset",   "buffered_bytes",  "connected",       "paused",
	"dead_letters",  "dropped_records", "expired_records", "oldest_age_s",
	"records_per_s", "retained_bytes"};

struct row {
	struct rn_json_span v[NCOLS];
};

static int row_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct row *r = ctx;
	for (int i = 0; i < NCOLS; i++)
		if (rn_json_span_eq(k, cols[i]))
			r->v[i] = v;
	return 0;
}

/* A span as plain text: strings decoded, others as written. */
static const char *txt(struct rn_json_span v, char *buf, size_t cap)
{
	struct rn_buf b = {0};
	if (!v.p) {
		snprintf(buf, cap, "-");
	} else if (v.len && v.p[0] == '"' && !rn_json_string(v, &b)) {
		snprintf(buf, cap, "%s", b.data ? (const char *)b.data : "");
	} else {
		snprintf(buf, cap, "%.*s", (int)v.len, v.p);
	}
	rn_buf_free(&b);
	return buf;
}

static const char *bytes_h(struct rn_json_span v, char *buf, size_t cap)
{
	char t[32];
	double x = strtod(txt(v, t, sizeof(t)), NULL);
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (x >= 1024 && i < 4) {
		x /= 1024;
		i++;
	}
	snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", x, u[i]);
	return buf;
}

/* One line per source: "source NAME (TYPE): STATE[: error], N records"; a state other than
 * up in capitals. */
static int print_source(void *ctx, size_t i, struct rn_json_span v)
{
	FILE *out = ctx;
	struct src r = {0};
	char a[256], b[32], c[32], e[300], n[32];
	(void)i;
	if (rn_json_object_walk(v, src_member, &r))
		return RN_EINVAL;
	txt(r.state, c, sizeof(c));
	if (strcmp(c, "up"))
		for (char *p = c; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	int err = r.error.p && !rn_json_span_eq(r.error, "null");
	fprintf(out, "source %s (%s): %s%s%s, %s records\n", txt(r.name, a, sizeof(a)),
		txt(r.type, b, sizeof(b)), c, err ? ": " : "",
		err ? txt(r.error, e, sizeof(e)) : "", txt(r.records, n, sizeof(n)));
	return 0;
}

static int print_row(void *ctx, size_t i, struct rn_json_span v)
{
	FILE *out = ctx;
	struct row r = {0};
	char a[256], b[256], c[32], d[32], e[32], f[32], g[32], h[32], k[32], m[32], rt[32];
	(void)i;
	if (rn_json_object_walk(v, row_member, &r))
		return RN_EINVAL;
	long long acked = strtoll(txt(r.v[3], d, sizeof(d)), NULL, 10);
	long long next = strtoll(txt(r.v[4], e, sizeof(e)), NULL, 10);
	snprintf(e, sizeof(e), "%lld", next - 1 - acked > 0 ? next - 1 - acked : 0);
	long long lost = strtoll(txt(r.v[9], h, sizeof(h)), NULL, 10) +
			 strtoll(txt(r.v[10], h, sizeof(h)), NULL, 10);
	snprintf(h, sizeof(h), "%lld", lost);
	snprintf(m, sizeof(m), "%.0f", strtod(txt(r.v[12], m, sizeof(m)), NULL));
	fprintf(out, "%-20s %-32s %10s %8s %9s %11s %11s %8ss %-5s %-6s %12s %s\n",
		txt(r.v[0], a, sizeof(a)), txt(r.v[1], b, sizeof(b)), txt(r.v[2], c, sizeof(c)), m,
		e, bytes_h(r.v[5], f, sizeof(f)), bytes_h(r.v[13], rt, sizeof(rt)),
		txt(r.v[11], k, sizeof(k)), rn_json_span_eq(r.v[6], "true") ? "up" : "down",
		rn_json_span_eq(r.v[7], "true") ? "yes" : "no", txt(r.v[8], g, sizeof(g)), h);
	return 0;
}

int rn_status_print(const char *text, size_t len, FILE *out)
{
	struct top t = {0};
	char a[256], b[32], c[32], d[32], e[32];
	if (rn_json_object_walk((struct rn_json_span){text, len}, top_member, &t) || !t.streams.p)
		return RN_EINVAL;
	fprintf(out, "device %s, up %s s, buffer %s of %s (policy %s)%s",
		txt(t.device, a, sizeof(a)), txt(t.uptime, b, sizeof(b)),
		bytes_h(t.buffer, c, sizeof(c)), bytes_h(t.cap, d, sizeof(d)),
		txt(t.policy, e, sizeof(e)),
		rn_json_span_eq(t.disk_full, "true") ? ", DISK FULL" : "");
	fprintf(out, ", dropped %s, expired %s%s\n", txt(t.dropped, b, sizeof(b)),
		txt(t.expired, c, sizeof(c)),
		rn_json_span_eq(t.recovered, "true") ? "\nBUFFER WAS CORRUPT at start: set aside "
						       "as buffer.db.corrupt-*, started anew"
						     : "");
	struct tok tk = {0};
	if (t.token.p && !rn_json_object_walk(t.token, tok_member, &tk)) {
		char u[64] = "-", f[32], g[32], r[32], m[300];
		int64_t until = 0;
		if (!rn_json_int64(tk.until, &until) && until > 0) {
			time_t tt = (time_t)until;
			struct tm tm;
			if (gmtime_r(&tt, &tm))
				strftime(u, sizeof(u), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		fprintf(out, "token %s%s, next fetch in %.0f s, %s fetched, %s failed%s%s\n",
			rn_json_span_eq(tk.valid, "true") ? "valid until " : "NONE VALID",
			rn_json_span_eq(tk.valid, "true") ? u : "",
			strtod(txt(tk.refresh, r, sizeof(r)), NULL) / 1000.0,
			txt(tk.fetches, f, sizeof(f)), txt(tk.failures, g, sizeof(g)),
			tk.err.len > 2 ? ", last error: " : "",
			tk.err.len > 2 ? txt(tk.err, m, sizeof(m)) : "");
	}
	if (t.sources.p && rn_json_array_walk(t.sources, print_source, out))
		return RN_EINVAL;
	struct hl h = {0};
	if (t.health.p && !rn_json_object_walk(t.health, hl_member, &h)) {
		if (rn_json_span_eq(h.interval, "0"))
			fprintf(out, "health reports: off (uplink.health_interval = 0)\n");
		else
			fprintf(out, "health reports every %s s: %s sent, %s skipped\n",
				txt(h.interval, a, sizeof(a)), txt(h.reports, b, sizeof(b)),
				txt(h.skipped, c, sizeof(c)));
	}
	/* RETAINED: acked chunks kept until the table has them (committed acks) */
	fprintf(out, "%-20s %-32s %10s %8s %9s %11s %11s %9s %-5s %-6s %12s %s\n", "STREAM",
		"TABLE", "RECORDS", "REC/S", "UNACKED", "BUFFERED", "RETAINED", "OLDEST", "LINK",
		"PAUSED", "DEAD LETTERS", "DROPPED");
	return rn_json_array_walk(t.streams, print_row, out) ? RN_EINVAL : 0;
}

int rn_status_main(int argc, char **argv)
{
	const char *file = "/etc/runnel/runnel-agent.conf";
	int json = 0;
	char dir[4096] = "/var/lib/runnel";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			file = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			fprintf(stderr, "usage: runnel-agent status [-c FILE] [--json]\n");
			return 2;
		}
	}
	rn_conf_peek_string(file, "agent.data_dir", dir, sizeof(dir));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int len = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", dir);
	if (len < 0 || (size_t)len >= sizeof(sa.sun_path)) {
		fprintf(stderr, "runnel-agent status: data_dir %s is too long for a socket path\n",
			dir);
		return 1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "runnel-agent status: no agent answers on %s: %s\n", sa.sun_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	struct rn_buf b = {0};
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		rn_buf_append(&b, chunk, (size_t)n);
	close(fd);
	int rc = 0;
	if (json)
		fwrite(b.data, 1, b.len, stdout);
	else if (rn_status_print((const char *)b.data, b.len, stdout)) {
		fprintf(stderr, "runnel-agent status: the agent's answer is not a status\n");
		rc = 1;
	}
	rn_buf_free(&b);
	return rc;
}
