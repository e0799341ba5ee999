/*
 * `runnel-table describe|history|verify`; see table_cli.h. Each subcommand loads one
 * snapshot with rn_dlog_load() and prints it. JSON output is built in an rn_buf with
 * rn_json_put_str() for every string that came from the table, so hostile names and paths
 * cannot break it. verify reads only the first 4 bytes and the footer of each live file.
 */
#include "table_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compact.h"
#include "delta.h"
#include "log.h"
#include "rn_table_name.h"
#include "maint.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "tstore.h"

#define MAX_PROBLEMS 10000 /* verify keeps this many messages; the rest are counted */
#define TAIL_READ 65536    /* first footer read; most footers fit */
#define MAX_FOOTER ((size_t)64 << 20)

struct opts {
	const char *cmd;
	const char *dir; /* table directory (PATH, or built from -d ROOT NAME) */
	int json;
	long limit;         /* history -n; 0 = all */
	int dry_run;        /* vacuum */
	int unsafe;         /* vacuum: allow a retention below the 7-day default */
	double retention_h; /* vacuum --retention; < 0 = the configured default */
	long min_files;     /* compact --min-files; 0 = 2 */
	char built[4096];   /* storage for dir when built from -d */
	/* s3:// tables: --s3-endpoint (else $RUNNEL_S3_ENDPOINT, $AWS_ENDPOINT_URL, else AWS
	 * for the region),
	 * --s3-region (else $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1), --s3-virtual-host;
	 * credentials only from the environment or the shared credentials file (s3.h) */
	const char *s3_endpoint, *s3_region;
	int s3_vhost;
	char aws_endpoint[300];
	char cred_file[4096];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: runnel-table describe [--json] PATH | -d DATA_ROOT NAME\n"
		"       runnel-table history [--json] [-n N] PATH | -d DATA_ROOT NAME\n"
		"       runnel-table verify [--json] PATH | -d DATA_ROOT NAME\n"
		"       runnel-table checkpoint [--json] PATH | -d DATA_ROOT NAME\n"
		"       runnel-table compact [--json] [--min-files N] PATH | -d ...\n"
		"       runnel-table vacuum [--json] [--retention HOURS] [--dry-run]\n"
		"                                  [--unsafe-retention] PATH | -d ...\n"
		"  PATH is a table directory (holding _delta_log) or s3://BUCKET/PREFIX/TABLE;\n"
		"  NAME is a.b.c under DATA_ROOT (a directory or s3://BUCKET/PREFIX).\n"
		"  s3:// tables: [--s3-endpoint URL] [--s3-region REGION] [--s3-virtual-host];\n"
		"  else $RUNNEL_S3_ENDPOINT or $AWS_ENDPOINT_URL, $AWS_REGION; credentials from\n"
		"  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_SHARED_CREDENTIALS_FILE and\n"
		"  AWS_PROFILE (default ~/.aws/credentials).\n"
		"  checkpoint, compact and vacuum write to the table (safe next to a running\n"
		"  server: commits are put-if-absent). vacuum deletes files removed longer than\n"
		"  HOURS ago (default 168), and data files no log entry names that are older than\n"
		"  HOURS; below 168 needs --unsafe-retention.\n"
		"  exit: 0 ok/healthy, 1 problems found, log unreadable or the operation failed,\n"
		"  2 usage error or a log this tool cannot read\n");
}

static int parse_args(int argc, char **argv, struct opts *o, FILE *out, FILE *err)
{
	const char *root = NULL, *pos = NULL;
	if (argc < 2) {
		usage(err);
		return RN_TABLE_EXIT_NOANSWER;
	}
	o->cmd = argv[1];
	if (!strcmp(o->cmd, "-h") || !strcmp(o->cmd, "--help") || !strcmp(o->cmd, "help")) {
		usage(out);
		return -1;
	}
	o->retention_h = -1;
	if (strcmp(o->cmd, "describe") && strcmp(o->cmd, "history") && strcmp(o->cmd, "verify") &&
	    strcmp(o->cmd, "checkpoint") && strcmp(o->cmd, "compact") && strcmp(o->cmd, "vacuum")) {
		fprintf(err, "runnel-table: unknown subcommand '%s'\n", o->cmd);
		usage(err);
		return RN_TABLE_EXIT_NOANSWER;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "-d") && i + 1 < argc) {
			root = argv[++i];
		} else if (!strcmp(a, "--s3-endpoint") && i + 1 < argc) {
			o->s3_endpoint = argv[++i];
		} else if (!strcmp(a, "--s3-region") && i + 1 < argc) {
			o->s3_region = argv[++i];
		} else if (!strcmp(a, "--s3-virtual-host")) {
			o->s3_vhost = 1;
		} else if (!strcmp(a, "-n") && i + 1 < argc && !strcmp(o->cmd, "history")) {
			char *e;
			errno = 0;
			o->limit = strtol(argv[++i], &e, 10);
			if (*e || errno || o->limit <= 0) {
				fprintf(err, "runnel-table: -n wants a positive number\n");
				return RN_TABLE_EXIT_NOANSWER;
			}
		} else if (!strcmp(a, "--dry-run") && !strcmp(o->cmd, "vacuum")) {
			o->dry_run = 1;
		} else if (!strcmp(a, "--unsafe-retention") && !strcmp(o->cmd, "vacuum")) {
			o->unsafe = 1;
		} else if (!strcmp(a, "--retention") && i + 1 < argc && !strcmp(o->cmd, "vacuum")) {
			char *e;
			errno = 0;
			o->retention_h = strtod(argv[++i], &e);
			if (*e || errno || !(o->retention_h >= 0) || o->retention_h > 1e6) {
				fprintf(err, "runnel-table: --retention wants hours >= 0\n");
				return RN_TABLE_EXIT_NOANSWER;
			}
		} else if (!strcmp(a, "--min-files") && i + 1 < argc &&
			   !strcmp(o->cmd, "compact")) {
			char *e;
			errno = 0;
			o->min_files = strtol(argv[++i], &e, 10);
			if (*e || errno || o->min_files < 2 || o->min_files > 1000000) {
				fprintf(err, "runnel-table: --min-files wants a number >= 2\n");
				return RN_TABLE_EXIT_NOANSWER;
			}
		} else if (a[0] == '-' && a[1]) {
			fprintf(err, "runnel-table %s: unknown or incomplete option '%s'\n", o->cmd,
				a);
			usage(err);
			return RN_TABLE_EXIT_NOANSWER;
		} else if (!pos) {
			pos = a;
		} else {
			fprintf(err, "runnel-table %s: more than one table given\n", o->cmd);
			return RN_TABLE_EXIT_NOANSWER;
		}
	}
	if (!pos) {
		fprintf(err, "runnel-table %s: no table given\n", o->cmd);
		usage(err);
		return RN_TABLE_EXIT_NOANSWER;
	}
	if (!root) {
		o->dir = pos;
		return 0;
	}
	if (rn_table_name_check(pos)) {
		fprintf(err, "runnel-table %s: '%s' is not a valid table name (a.b.c)\n", o->cmd,
			pos);
		return RN_TABLE_EXIT_NOANSWER;
	}
	int n = snprintf(o->built, sizeof(o->built), "%s/%s", root, pos);
	if (n < 0 || (size_t)n >= sizeof(o->built)) {
		fprintf(err, "runnel-table %s: path too long\n", o->cmd);
		return RN_TABLE_EXIT_NOANSWER;
	}
	for (char *p = o->built + strlen(root) + 1; *p; p++)
		if (*p == '.')
			*p = '/';
	o->dir = o->built;
	return 0;
}

static void put_str(struct rn_buf *b, const char *s);
static int emit(struct rn_buf *b, FILE *out);

/* Opens the table's store (a directory or an s3:// root with the S3 settings of o); on
 * failure prints why and returns the exit code, else 0. The error text of the store never
 * holds a credential. */
static int open_store(struct opts *o, struct rn_tstore **st, FILE *out, FILE *err)
{
	struct rn_tstore_config cfg = {0};
	char why[512];
	int rc;
	const char *env;

	if (!strncmp(o->dir, "s3://", 5)) {
		cfg.s3.region = o->s3_region;
		if (!cfg.s3.region && (env = getenv("AWS_REGION")) && *env)
			cfg.s3.region = env;
		if (!cfg.s3.region && (env = getenv("AWS_DEFAULT_REGION")) && *env)
			cfg.s3.region = env;
		cfg.s3.endpoint = o->s3_endpoint;
		if (!cfg.s3.endpoint && (env = getenv("RUNNEL_S3_ENDPOINT")) && *env)
			cfg.s3.endpoint = env;
		if (!cfg.s3.endpoint && (env = getenv("AWS_ENDPOINT_URL")) && *env)
			cfg.s3.endpoint = env;
		if (!cfg.s3.endpoint) {
			snprintf(o->aws_endpoint, sizeof(o->aws_endpoint),
				 "https://s3.%s.amazonaws.com",
				 cfg.s3.region ? cfg.s3.region : "us-east-1");
			cfg.s3.endpoint = o->aws_endpoint;
		}
		cfg.s3.virtual_host = o->s3_vhost;
		/* like the AWS tools: ~/.aws/credentials when no file is named (keys in the
		 * environment still come first, s3.h) */
		env = getenv("AWS_SHARED_CREDENTIALS_FILE");
		const char *home = getenv("HOME");
		if ((!env || !*env) && home && *home) {
			snprintf(o->cred_file, sizeof(o->cred_file), "%s/.aws/credentials", home);
			if (access(o->cred_file, R_OK) == 0)
				cfg.s3.credentials_file = o->cred_file;
		}
	}
	if ((rc = rn_tstore_open(st, o->dir, &cfg, why, sizeof(why)))) {
		const char *msg = rc == RN_ENOMEM ? "out of memory" : why;
		fprintf(err, "runnel-table %s: %s: %s\n", o->cmd, o->dir, msg);
		if (o->json) {
			struct rn_buf b = {0};
			rn_buf_append_str(&b, "{\"table\":");
			put_str(&b, o->dir);
			rn_buf_append_str(&b, ",\"ok\":false,\"error\":\"store\",\"message\":");
			put_str(&b, msg);
			rn_buf_append_u8(&b, '}');
			emit(&b, out);
		}
		return rc == RN_EINVAL || rc == RN_ECONFIG ? RN_TABLE_EXIT_NOANSWER
							   : RN_TABLE_EXIT_PROBLEMS;
	}
	return 0;
}

/* ISO 8601 UTC with milliseconds, or "-" for ms < 0. */
static const char *iso(int64_t ms, char *buf, size_t cap)
{
	struct tm tm;
	time_t t;
	if (ms < 0)
		return "-";
	t = (time_t)(ms / 1000);
	if (!gmtime_r(&t, &tm))
		return "-";
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03dZ", (int)(ms % 1000));
	return buf;
}

static void put_str(struct rn_buf *b, const char *s)
{
	if (s)
		rn_json_put_str(b, s, strlen(s));
	else
		rn_buf_append_str(b, "null");
}

static void put_time(struct rn_buf *b, int64_t ms)
{
	char t[64];
	if (ms < 0)
		rn_buf_append_str(b, "null");
	else
		put_str(b, iso(ms, t, sizeof(t)));
}

static int emit(struct rn_buf *b, FILE *out)
{
	if (rn_buf_append_u8(b, '\n')) {
		rn_buf_free(b);
		return -1;
	}
	fwrite(b->data, 1, b->len, out);
	rn_buf_free(b);
	return 0;
}

/* Loads the snapshot; on failure prints why (JSON too with --json) and returns the exit
 * code, else 0. */
static int load(const struct opts *o, struct rn_tstore *st, struct rn_dlog **out, FILE *fout,
		FILE *err)
{
	struct rn_dlog *l;
	int rc;
	*out = NULL;
	if (rn_dlog_create(&l)) {
		fprintf(err, "runnel-table: out of memory\n");
		return RN_TABLE_EXIT_PROBLEMS;
	}
	if (!(rc = rn_dlog_load_store(l, st, 0))) {
		*out = l;
		return 0;
	}
	const char *kind = rc == RN_ENOTSUP     ? "unsupported"
			   : rc == RN_ENOTFOUND ? "not a table"
						: "unreadable log";
	if (rc == RN_ENOTSUP)
		fprintf(err, "runnel-table %s: %s: cannot answer: %s\n", o->cmd, o->dir,
			rn_dlog_errmsg(l));
	else if (rc == RN_ENOTFOUND)
		fprintf(err, "runnel-table %s: %s is not a Delta table: %s\n", o->cmd, o->dir,
			rn_dlog_errmsg(l));
	else
		fprintf(err, "runnel-table %s: %s: %s: %s\n", o->cmd, o->dir, kind,
			rn_dlog_errmsg(l));
	if (o->json) {
		struct rn_buf b = {0};
		rn_buf_append_str(&b, "{\"table\":");
		put_str(&b, o->dir);
		rn_buf_append_str(&b, ",\"ok\":false,\"error\":");
		put_str(&b, kind);
		rn_buf_append_str(&b, ",\"message\":");
		put_str(&b, rn_dlog_errmsg(l));
		rn_buf_append_u8(&b, '}');
		emit(&b, fout);
	}
	rn_dlog_destroy(l);
	return rc == RN_ENOTSUP ? RN_TABLE_EXIT_NOANSWER : RN_TABLE_EXIT_PROBLEMS;
}

/* ---- describe ---- */

static int describe(const struct opts *o, const struct rn_dlog *l, FILE *out)
{
	size_t ncols, nparts, ntxn, nfiles, nrem, nwarn, totalwarn, no_stats;
	const struct rn_dlog_column *cols = rn_dlog_columns(l, &ncols);
	char *const *parts = rn_dlog_partition_columns(l, &nparts);
	const struct rn_dlog_txn *txns = rn_dlog_txns(l, &ntxn);
	const char *const *warns = rn_dlog_warnings(l, &nwarn, &totalwarn);
	const char *rf, *wf;
	int minr, minw;
	int64_t bytes, rows;
	char t[64];

	rn_dlog_files(l, &nfiles);
	rn_dlog_removes(l, &nrem);
	rn_dlog_totals(l, &bytes, &rows, &no_stats);
	rn_dlog_protocol(l, &minr, &minw, &rf, &wf);
	if (o->json) {
		struct rn_buf b = {0};
		rn_buf_append_str(&b, "{\"table\":");
		put_str(&b, o->dir);
		rn_buf_append_str(&b, ",\"id\":");
		put_str(&b, rn_dlog_table_id(l));
		rn_buf_printf(&b,
			      ",\"version\":%lld,\"createdTime\":", (long long)rn_dlog_version(l));
		if (rn_dlog_created_ms(l) < 0)
			rn_buf_append_str(&b, "null");
		else
			rn_buf_printf(&b, "%lld", (long long)rn_dlog_created_ms(l));
		rn_buf_append_str(&b, ",\"created\":");
		put_time(&b, rn_dlog_created_ms(l));
		rn_buf_printf(&b, ",\"protocol\":{\"minReaderVersion\":%d,\"minWriterVersion\":%d",
			      minr, minw);
		if (rf)
			rn_buf_printf(&b, ",\"readerFeatures\":%s", rf);
		if (wf)
			rn_buf_printf(&b, ",\"writerFeatures\":%s", wf);
		rn_buf_append_str(&b, "},\"schema\":[");
		for (size_t i = 0; i < ncols; i++) {
			rn_buf_append_str(&b, i ? ",{\"name\":" : "{\"name\":");
			put_str(&b, cols[i].name);
			rn_buf_append_str(&b, ",\"type\":");
			put_str(&b, cols[i].type);
			rn_buf_printf(&b, ",\"nullable\":%s}", cols[i].nullable ? "true" : "false");
		}
		rn_buf_append_str(&b, "],\"partitionColumns\":[");
		for (size_t i = 0; i < nparts; i++) {
			if (i)
				rn_buf_append_u8(&b, ',');
			put_str(&b, parts[i]);
		}
		rn_buf_printf(&b,
			      "],\"files\":%zu,\"bytes\":%lld,\"rows\":%lld,"
			      "\"filesWithoutStats\":%zu,\"tombstones\":%zu,\"streams\":{",
			      nfiles, (long long)bytes, (long long)rows, no_stats, nrem);
		for (size_t i = 0; i < ntxn; i++) {
			if (i)
				rn_buf_append_u8(&b, ',');
			put_str(&b, txns[i].app_id);
			rn_buf_printf(&b, ":%lld", (long long)txns[i].version);
		}
		int64_t cs, cl, csz, cn;
		rn_dlog_checkpoint_info(l, &cs, &cl, &csz, &cn);
		rn_buf_printf(&b, "},\"checkpoint\":");
		if (cl < 0 && cn < 0)
			rn_buf_append_str(&b, "null");
		else
			rn_buf_printf(&b,
				      "{\"version\":%lld,\"size\":%lld,\"newestFile\":%lld,"
				      "\"replayedFrom\":%lld}",
				      (long long)cl, (long long)csz, (long long)cn, (long long)cs);
		rn_buf_append_str(&b, ",\"warnings\":[");
		for (size_t i = 0; i < nwarn; i++) {
			if (i)
				rn_buf_append_u8(&b, ',');
			put_str(&b, warns[i]);
		}
		rn_buf_append_str(&b, "]}");
		return emit(&b, out) ? RN_TABLE_EXIT_PROBLEMS : RN_TABLE_EXIT_OK;
	}
	fprintf(out, "table       %s\n", o->dir);
	fprintf(out, "id          %s\n", rn_dlog_table_id(l) ? rn_dlog_table_id(l) : "-");
	fprintf(out, "version     %lld\n", (long long)rn_dlog_version(l));
	fprintf(out, "created     %s\n", iso(rn_dlog_created_ms(l), t, sizeof(t)));
	fprintf(out, "protocol    reader %d, writer %d", minr, minw);
	if (rf)
		fprintf(out, ", reader features %s", rf);
	if (wf)
		fprintf(out, ", writer features %s", wf);
	fprintf(out, "\nfiles       %zu live, %lld bytes", nfiles, (long long)bytes);
	if (nrem)
		fprintf(out, " (%zu removed, kept as tombstones)", nrem);
	fprintf(out, "\nrows        %lld", (long long)rows);
	if (no_stats)
		fprintf(out, " (plus unknown rows in %zu files without numRecords)", no_stats);
	{
		int64_t cs, cl, csz, cn;
		rn_dlog_checkpoint_info(l, &cs, &cl, &csz, &cn);
		fprintf(out, "\ncheckpoint  ");
		if (cl < 0 && cn < 0)
			fprintf(out, "(none)");
		else if (cl >= 0)
			fprintf(out, "version %lld (%lld actions, _last_checkpoint)", (long long)cl,
				(long long)csz);
		else
			fprintf(out, "version %lld (no _last_checkpoint)", (long long)cn);
		if (cs >= 0)
			fprintf(out, "; replay started from checkpoint %lld", (long long)cs);
	}
	fprintf(out, "\npartitions  ");
	if (!nparts)
		fprintf(out, "(none)");
	for (size_t i = 0; i < nparts; i++)
		fprintf(out, "%s%s", i ? ", " : "", parts[i]);
	int w = 6;
	for (size_t i = 0; i < ncols; i++)
		if ((int)strlen(cols[i].name) > w && strlen(cols[i].name) < 40)
			w = (int)strlen(cols[i].name);
	fprintf(out, "\nschema\n  %-*s  %-12s  %s\n", w, "column", "type", "nullable");
	for (size_t i = 0; i < ncols; i++)
		fprintf(out, "  %-*s  %-12s  %s\n", w, cols[i].name, cols[i].type,
			cols[i].nullable ? "yes" : "no");
	fprintf(out, "streams (txn appId -> version)\n");
	if (!ntxn)
		fprintf(out, "  (none)\n");
	for (size_t i = 0; i < ntxn; i++)
		fprintf(out, "  %s  %lld  (committed in version %lld, updated %s)\n",
			txns[i].app_id, (long long)txns[i].version, (long long)txns[i].at_version,
			iso(txns[i].last_updated, t, sizeof(t)));
	for (size_t i = 0; i < nwarn; i++)
		fprintf(out, "warning: %s\n", warns[i]);
	if (totalwarn > nwarn)
		fprintf(out, "warning: ... and %zu more\n", totalwarn - nwarn);
	return RN_TABLE_EXIT_OK;
}

/* ---- history ---- */

static int history(const struct opts *o, const struct rn_dlog *l, FILE *out)
{
	size_t n;
	const struct rn_dlog_commit *c = rn_dlog_commits(l, &n);
	size_t shown = o->limit > 0 && (size_t)o->limit < n ? (size_t)o->limit : n;
	char t[64];
	struct rn_buf b = {0};

	if (o->json) {
		rn_buf_append_str(&b, "{\"table\":");
		put_str(&b, o->dir);
		rn_buf_printf(&b, ",\"version\":%lld,\"history\":[", (long long)rn_dlog_version(l));
	} else {
		fprintf(out, "%8s  %-24s  %-20s  %7s  %7s  %10s\n", "version", "timestamp",
			"operation", "added", "removed", "rows");
	}
	/* Newest first, like DESCRIBE HISTORY. */
	for (size_t k = 0; k < shown; k++) {
		const struct rn_dlog_commit *v = &c[n - 1 - k];
		if (o->json) {
			rn_buf_printf(&b, "%s{\"version\":%lld,\"timestamp\":", k ? "," : "",
				      (long long)v->version);
			if (v->timestamp_ms < 0)
				rn_buf_append_str(&b, "null");
			else
				rn_buf_printf(&b, "%lld", (long long)v->timestamp_ms);
			rn_buf_append_str(&b, ",\"time\":");
			put_time(&b, v->timestamp_ms);
			rn_buf_append_str(&b, ",\"operation\":");
			put_str(&b, v->operation);
			rn_buf_append_str(&b, ",\"engineInfo\":");
			put_str(&b, v->engine);
			rn_buf_printf(
				&b,
				",\"filesAdded\":%zu,\"filesRemoved\":%zu,\"rowsAdded\":%lld,"
				"\"addsWithoutStats\":%zu,\"txns\":%zu,\"metadataChange\":%s}",
				v->nadd, v->nremove, (long long)v->rows_added,
				v->adds_without_stats, v->ntxn, v->meta_change ? "true" : "false");
		} else {
			fprintf(out, "%8lld  %-24s  %-20s  %7zu  %7zu  %10lld%s\n",
				(long long)v->version, iso(v->timestamp_ms, t, sizeof(t)),
				v->operation ? v->operation : "-", v->nadd, v->nremove,
				(long long)v->rows_added, v->adds_without_stats ? "+?" : "");
		}
	}
	if (o->json) {
		rn_buf_append_str(&b, "]}");
		return emit(&b, out) ? RN_TABLE_EXIT_PROBLEMS : RN_TABLE_EXIT_OK;
	}
	return RN_TABLE_EXIT_OK;
}

/* ---- verify ---- */

struct problems {
	char **msg;
	size_t n, total;
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct problems *p, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	p->total++;
	if (p->n >= MAX_PROBLEMS)
		return;
	if (!p->msg && !(p->msg = rn_calloc(MAX_PROBLEMS, sizeof(char *))))
		return;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if ((p->msg[p->n] = rn_strdup(tmp)))
		p->n++;
}

/* Checks one live file through the store: it exists with the size the log gives, starts
 * with PAR1 and its footer's row count matches numRecords. Only the head and the footer are
 * read (ranged reads: on S3 the file is not downloaded). Returns 1 if its row count was
 * compared with the footer. */
static int check_file(struct rn_tstore *st, const struct rn_dlog_file *f, struct problems *p)
{
	char rel[4096], why[256];
	struct rn_tstore_entry e;
	struct rn_buf head = {.max = 16}, tail = {.max = MAX_FOOTER + 8};
	uint32_t flen;
	int64_t rows = -1;
	int rc, checked = 0;

	if (rn_dlog_uri_decode(f->path, rel, sizeof(rel))) {
		problem(p, "%s: path is not a valid URI-encoded path", f->path);
		return 0;
	}
	if (strstr(rel, "://") || rel[0] == '/') {
		problem(p, "%s: absolute path or URI; not checked", f->path);
		return 0;
	}
	if (!strcmp(rel, "..") || !strncmp(rel, "../", 3) || strstr(rel, "/../") ||
	    (strlen(rel) >= 3 && !strcmp(rel + strlen(rel) - 3, "/.."))) {
		problem(p, "%s: path escapes the table directory", f->path);
		return 0;
	}
	if ((rc = rn_tstore_stat(st, rel, &e))) {
		if (rc == RN_ENOTFOUND)
			problem(p, "%s: data file is missing (added in version %lld)", f->path,
				(long long)f->version);
		else
			problem(p, "%s: cannot stat: %s", f->path, rn_tstore_errmsg(st));
		return 0;
	}
	if (e.size != f->size) {
		problem(p, "%s: size mismatch: the log says %lld bytes, the file has %lld", f->path,
			(long long)f->size, (long long)e.size);
		return 0;
	}
	if (e.size < 12) {
		problem(p, "%s: %lld bytes is too short for a Parquet file", f->path,
			(long long)e.size);
		return 0;
	}
	if (rn_tstore_get(st, rel, 0, 4, &head) || head.len != 4) {
		problem(p, "%s: read failed: %s", f->path, rn_tstore_errmsg(st));
		goto out;
	}
	if (memcmp(head.data, "PAR1", 4)) {
		problem(p, "%s: no PAR1 magic at the start: not a Parquet file", f->path);
		goto out;
	}
	size_t want = (uint64_t)e.size < TAIL_READ ? (size_t)e.size : TAIL_READ;
	for (int pass = 0; pass < 2; pass++) {
		rn_buf_reset(&tail);
		if (rn_tstore_get(st, rel, e.size - (int64_t)want, (int64_t)want, &tail) ||
		    tail.len != want) {
			problem(p, "%s: cannot read the footer: %s", f->path, rn_tstore_errmsg(st));
			goto out;
		}
		if (rn_dlog_parquet_footer(tail.data, want, (uint64_t)e.size, &flen, &rows, why,
					   sizeof(why))) {
			problem(p, "%s: bad Parquet footer: %s", f->path, why);
			goto out;
		}
		if (rows >= 0)
			break;
		if ((size_t)flen + 8 > MAX_FOOTER) {
			problem(p, "%s: Parquet footer of %u bytes is larger than this tool reads",
				f->path, flen);
			goto out;
		}
		want = (size_t)flen + 8;
	}
	if (rows < 0) {
		problem(p, "%s: cannot read the footer", f->path);
		goto out;
	}
	if (f->num_records >= 0) {
		checked = 1;
		if (f->num_records != rows)
			problem(p,
				"%s: stats say numRecords %lld, the Parquet footer says %lld rows",
				f->path, (long long)f->num_records, (long long)rows);
	}
out:
	rn_buf_free(&head);
	rn_buf_free(&tail);
	return checked;
}

/* When the replay came from JSON commits alone and a checkpoint exists, replays again from
 * the checkpoint and compares the two snapshots: same version, live files, txns. When the
 * replay started from a checkpoint, checks _last_checkpoint's size is plausible. */
static void check_checkpoint(struct rn_tstore *st, const struct rn_dlog *l, struct problems *p)
{
	int64_t cs, cl, csz, cn;
	struct rn_dlog *c;
	size_t na, nb, ta, tb;
	rn_dlog_checkpoint_info(l, &cs, &cl, &csz, &cn);
	if (cl >= 0 && cn >= 0 && cl > cn)
		problem(p,
			"_last_checkpoint names version %lld, but the newest checkpoint file is "
			"version %lld",
			(long long)cl, (long long)cn);
	if (cs >= 0 || (cl < 0 && cn < 0) || rn_dlog_create(&c))
		return;
	if (rn_dlog_load_store(c, st, 1)) {
		problem(p, "checkpoint: %s", rn_dlog_errmsg(c));
		rn_dlog_destroy(c);
		return;
	}
	const struct rn_dlog_file *fa = rn_dlog_files(l, &na), *fb = rn_dlog_files(c, &nb);
	const struct rn_dlog_txn *xa = rn_dlog_txns(l, &ta), *xb = rn_dlog_txns(c, &tb);
	if (rn_dlog_version(c) != rn_dlog_version(l))
		problem(p, "replay from the checkpoint ends at version %lld, from JSON at %lld",
			(long long)rn_dlog_version(c), (long long)rn_dlog_version(l));
	if (na != nb)
		problem(p, "replay from the checkpoint has %zu live files, from JSON %zu", nb, na);
	for (size_t i = 0; i < na && na == nb; i++) {
		size_t j = 0;
		while (j < nb && strcmp(fa[i].path, fb[j].path))
			j++;
		if (j == nb || fa[i].size != fb[j].size || fa[i].num_records != fb[j].num_records) {
			problem(p, "live file %s differs between the checkpoint replay and JSON",
				fa[i].path);
			break;
		}
	}
	for (size_t i = 0; i < ta; i++)
		if (rn_dlog_txn(c, xa[i].app_id) != xa[i].version)
			problem(p, "txn %s: %lld from JSON, %lld from the checkpoint replay",
				xa[i].app_id, (long long)xa[i].version,
				(long long)rn_dlog_txn(c, xa[i].app_id));
	if (tb != ta)
		problem(p, "%zu txn appIds from the checkpoint replay, %zu from JSON", tb, ta);
	(void)xb;
	rn_dlog_destroy(c);
}

static int verify(const struct opts *o, struct rn_tstore *st, const struct rn_dlog *l, FILE *out)
{
	struct problems p = {0};
	size_t nfiles, nwarn, totalwarn, no_stats, checked = 0;
	const struct rn_dlog_file *files = rn_dlog_files(l, &nfiles);
	const char *const *warns = rn_dlog_warnings(l, &nwarn, &totalwarn);
	int64_t bytes, rows;
	int rc;

	rn_dlog_totals(l, &bytes, &rows, &no_stats);
	for (size_t i = 0; i < nwarn; i++)
		problem(&p, "log: %s", warns[i]);
	if (totalwarn > nwarn)
		problem(&p, "log: %zu more log warnings not listed", totalwarn - nwarn);
	for (size_t i = 0; i < nfiles; i++)
		checked += (size_t)check_file(st, &files[i], &p);
	check_checkpoint(st, l, &p);
	rc = p.total ? RN_TABLE_EXIT_PROBLEMS : RN_TABLE_EXIT_OK;
	if (o->json) {
		struct rn_buf b = {0};
		rn_buf_append_str(&b, "{\"table\":");
		put_str(&b, o->dir);
		rn_buf_printf(&b,
			      ",\"ok\":%s,\"version\":%lld,\"files\":%zu,\"bytes\":%lld,"
			      "\"rows\":%lld,\"filesRowChecked\":%zu,\"problemCount\":%zu,"
			      "\"problems\":[",
			      p.total ? "false" : "true", (long long)rn_dlog_version(l), nfiles,
			      (long long)bytes, (long long)rows, checked, p.total);
		for (size_t i = 0; i < p.n; i++) {
			if (i)
				rn_buf_append_u8(&b, ',');
			put_str(&b, p.msg[i]);
		}
		rn_buf_append_str(&b, "]}");
		if (emit(&b, out))
			rc = RN_TABLE_EXIT_PROBLEMS;
	} else {
		for (size_t i = 0; i < p.n; i++)
			fprintf(out, "problem: %s\n", p.msg[i]);
		if (p.total > p.n)
			fprintf(out, "problem: ... and %zu more\n", p.total - p.n);
		fprintf(out,
			"%s: version %lld, %zu live files, %lld bytes, %lld rows; "
			"%zu files checked against their Parquet footer",
			o->dir, (long long)rn_dlog_version(l), nfiles, (long long)bytes,
			(long long)rows, checked);
		if (no_stats)
			fprintf(out, " (%zu without numRecords)", no_stats);
		if (p.total)
			fprintf(out, ": %zu problem%s\n", p.total, p.total == 1 ? "" : "s");
		else
			fprintf(out, ": OK\n");
	}
	for (size_t i = 0; i < p.n; i++)
		rn_free(p.msg[i]);
	rn_free(p.msg);
	return rc;
}

/* ---- checkpoint, compact, vacuum: they write, through the table writer (delta.h) ---- */

struct vac_ctx {
	const struct opts *o;
	FILE *out;
	struct rn_buf *b;
	size_t n;
	int orphans; /* the files reported now are unreferenced ones */
};

static void vac_file(void *ctx, const char *path, int64_t size)
{
	struct vac_ctx *v = ctx;
	if (v->o->json) {
		rn_buf_append_str(v->b, v->n++ ? ",{\"path\":" : "{\"path\":");
		put_str(v->b, path);
		rn_buf_printf(v->b, ",\"size\":%lld%s}", (long long)size,
			      v->orphans ? ",\"unreferenced\":true" : "");
	} else {
		fprintf(v->out, "%s %s (%lld bytes%s)\n",
			v->o->dry_run ? "would delete" : "deleted", path, (long long)size,
			v->orphans ? ", no log entry names it" : "");
	}
}

static int write_cmd(struct opts *o, FILE *out, FILE *err)
{
	struct rn_delta *d;
	struct rn_tstore *st;
	struct rn_buf b = {0};
	int rc, ex = RN_TABLE_EXIT_OK;
	if ((ex = open_store(o, &st, out, err)))
		return ex;
	/* the handle owns the store from here, also when the open fails */
	if ((rc = rn_delta_open_store(&d, st, NULL, NULL))) {
		fprintf(err, "runnel-table %s: %s: %s\n", o->cmd, o->dir,
			rc == RN_ENOTFOUND ? "not a Delta table" : rn_strerror(rc));
		return RN_TABLE_EXIT_PROBLEMS;
	}
	rn_buf_append_str(&b, "{\"table\":");
	put_str(&b, o->dir);
	if (!strcmp(o->cmd, "checkpoint")) {
		int64_t v;
		rc = rn_delta_checkpoint(d, rn_maint_defaults.vacuum_retention_ms, &v);
		if (!rc) {
			rn_buf_printf(&b, ",\"ok\":true,\"version\":%lld", (long long)v);
			if (!o->json)
				fprintf(out, "%s: checkpoint written at version %lld\n", o->dir,
					(long long)v);
		}
	} else if (!strcmp(o->cmd, "compact")) {
		struct rn_compact_options co = {.target_bytes = rn_maint_defaults.compact_target,
						.min_files =
							o->min_files ? (size_t)o->min_files : 2};
		struct rn_compact_result res;
		size_t steps = 0, files = 0;
		int64_t rows = 0;
		rn_buf_append_str(&b, ",\"steps\":[");
		while (steps < 10000 && (rc = rn_compact_step(d, &co, &res)) == 0) {
			rn_buf_append_str(&b, steps ? ",{\"file\":" : "{\"file\":");
			put_str(&b, res.path);
			rn_buf_printf(&b, ",\"inputs\":%zu,\"rows\":%lld,\"version\":%lld}",
				      res.nfiles, (long long)res.rows, (long long)res.version);
			if (!o->json)
				fprintf(out,
					"compacted %zu files (%lld rows) into %s at version %lld\n",
					res.nfiles, (long long)res.rows, res.path,
					(long long)res.version);
			steps++;
			files += res.nfiles;
			rows += res.rows;
		}
		rn_buf_append_u8(&b, ']');
		if (rc == RN_EAGAIN) {
			rc = 0;
			if (!o->json && !steps)
				fprintf(out, "%s: nothing to compact\n", o->dir);
		} else if (rc) {
			fprintf(err, "runnel-table compact: %s: %s\n", o->dir, res.why);
		}
		rn_buf_printf(&b, ",\"ok\":%s,\"filesRemoved\":%zu,\"rows\":%lld",
			      rc ? "false" : "true", files, (long long)rows);
		if (rc)
			ex = RN_TABLE_EXIT_PROBLEMS;
		rc = 0; /* reported */
	} else {
		int64_t ret_ms = rn_maint_defaults.vacuum_retention_ms, bytes, orphan_ms,
			obytes = 0;
		size_t n, on = 0;
		if (o->retention_h >= 0)
			ret_ms = (int64_t)(o->retention_h * 3600000.0);
		/* unreferenced files: the same retention, never below the server's floor unless
		 * asked for explicitly (a file younger than that may be a commit in flight) */
		orphan_ms = ret_ms;
		if (o->retention_h < 0 && orphan_ms < RN_DELTA_ORPHAN_MIN_AGE_MS)
			orphan_ms = RN_DELTA_ORPHAN_MIN_AGE_MS;
		if (ret_ms < (int64_t)168 * 3600000 && !o->unsafe) {
			fprintf(err, "runnel-table vacuum: a retention below 168 hours can "
				     "delete files a reader of an older version still needs; add "
				     "--unsafe-retention if you mean it\n");
			rn_buf_free(&b);
			rn_delta_close(d);
			return RN_TABLE_EXIT_NOANSWER;
		}
		if (orphan_ms < RN_DELTA_ORPHAN_MIN_AGE_MS)
			fprintf(err,
				"runnel-table vacuum: warning: a retention below 1 hour can delete "
				"the data file of a flush or compaction that has not committed "
				"yet; run it only when no server writes this table\n");
		struct vac_ctx vc = {o, out, &b, 0, 0};
		rn_buf_printf(&b, ",\"dryRun\":%s,\"files\":[", o->dry_run ? "true" : "false");
		rc = rn_delta_vacuum(d, ret_ms, o->dry_run, vac_file, &vc, &n, &bytes);
		vc.orphans = 1;
		if (!rc)
			rc = rn_delta_vacuum_orphans(d, orphan_ms, o->dry_run, vac_file, &vc, &on,
						     &obytes);
		rn_buf_printf(&b, "],\"ok\":%s,\"count\":%zu,\"bytes\":%lld,\"unreferenced\":%zu",
			      rc ? "false" : "true", n + on, (long long)(bytes + obytes), on);
		if (!o->json)
			fprintf(out, "%s: %s %zu files (%zu no log entry named), %lld bytes\n",
				o->dir, o->dry_run ? "would delete" : "deleted", n + on, on,
				(long long)(bytes + obytes));
	}
	if (rc) {
		fprintf(err, "runnel-table %s: %s: %s\n", o->cmd, o->dir, rn_delta_errmsg(d));
		rn_buf_append_str(&b, ",\"ok\":false,\"message\":");
		put_str(&b, rn_delta_errmsg(d));
		ex = RN_TABLE_EXIT_PROBLEMS;
	}
	rn_buf_append_u8(&b, '}');
	if (o->json)
		emit(&b, out);
	else
		rn_buf_free(&b);
	rn_delta_close(d);
	return ex;
}

int rn_table_main(int argc, char **argv, FILE *out, FILE *err)
{
	struct opts o = {0};
	struct rn_dlog *l;
	struct rn_tstore *st;
	int rc = parse_args(argc, argv, &o, out, err);
	if (rc)
		return rc < 0 ? RN_TABLE_EXIT_OK : rc;
	if (!strcmp(o.cmd, "checkpoint") || !strcmp(o.cmd, "compact") || !strcmp(o.cmd, "vacuum")) {
		rc = write_cmd(&o, out, err);
		fflush(out);
		return rc;
	}
	if ((rc = open_store(&o, &st, out, err)))
		return rc;
	if ((rc = load(&o, st, &l, out, err))) {
		rn_tstore_close(st);
		return rc;
	}
	if (!strcmp(o.cmd, "describe"))
		rc = describe(&o, l, out);
	else if (!strcmp(o.cmd, "history"))
		rc = history(&o, l, out);
	else
		rc = verify(&o, st, l, out);
	rn_dlog_destroy(l);
	rn_tstore_close(st);
	fflush(out);
	return rc;
}
