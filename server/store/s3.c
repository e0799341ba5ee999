/*
 * The S3 client over libcurl (s3.h). One easy handle per object, reset before each attempt so
 * no option leaks from one request to the next while its connection cache is kept. A request
 * is described by a struct req; perform() signs it (sigv4.c) afresh for every attempt (the
 * date is part of the signature), sends it, classifies the answer and retries what may be
 * retried. Credentials live only in this object and are wiped by rn_s3_destroy.
 */
#define _DEFAULT_SOURCE /* explicit_bzero, strcasecmp, strncasecmp */
#include "s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "s3policy.h"
#include "sigv4.h"

#define ERRBODY_MAX (64 << 10) /* an error or XML response kept for parsing */

struct rn_s3 {
	char *base; /* URL start: "http://host:port" (virtual: "http://bucket.host:port") */
	char *host; /* the Host header, signed */
	char *region;
	char *bucket;
	int virtual_host;
	char *access_key, *secret_key, *token; /* token may be NULL */
	int connect_timeout_ms, timeout_ms, low_speed_secs, max_attempts, backoff_ms;
	int64_t threshold, part_size;
	CURL *curl;
	uint64_t rng; /* xorshift state for backoff jitter */
	int status;   /* the last response's HTTP status */
	int unknown;  /* the last operation failed and may have been applied */
	char err[512];
	char curlerr[CURL_ERROR_SIZE];
	struct rn_s3_stats st;
};

struct req {
	const char *method;
	const char *key;   /* NULL: the bucket itself */
	const char *query; /* canonical wire query (sorted, encoded) or NULL */
	const void *body;
	size_t len;
	struct rn_sigv4_header extra[3];
	size_t n_extra;
	struct rn_buf *out; /* a 2xx response body goes here (NULL: into the scratch buffer) */
	int fd;             /* with out NULL and fd > 0: a 2xx body is written to this file */
	int retry_409;      /* a conditional put: 409 ConditionalRequestConflict is transient */
	int error_in_200;   /* CompleteMultipartUpload: a 200 may carry an <Error> */
	/* results */
	size_t body_off;        /* read position in body (curl's read callback) */
	size_t out_start;       /* out->len before the first attempt */
	int64_t content_length; /* from the response headers, -1 when absent */
	int64_t mtime_ms;       /* Last-Modified as Unix ms, -1 when absent or unparsable */
	int64_t fd_len;         /* bytes written to fd by this attempt */
	int local_err;          /* write_cb failed here (ENOMEM past out's cap, fd's errno) */
	char etag[128];         /* the ETag header, quotes kept; "" when absent */
	struct rn_buf scratch;  /* non-2xx (or out == NULL) response bodies */
	int unknown;            /* an attempt that did not succeed may have been applied */
	enum rn_s3_fail fail;   /* how the last attempt ended below HTTP */
};

static void set_err(struct rn_s3 *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct rn_s3 *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static void set_errbuf(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_errbuf(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;
	if (!cap)
		return;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

static void wipe_free(char *p)
{
	if (p)
		explicit_bzero(p, strlen(p));
	rn_free(p);
}

static char *trim(char *p)
{
	char *e;
	while (*p == ' ' || *p == '\t')
		p++;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = 0;
	return p;
}

/* Reads profile's keys from an AWS shared credentials file. 0, RN_ECONFIG, RN_ENOMEM. */
static int read_cred_file(struct rn_s3 *s, const char *path, const char *profile, char *err,
			  size_t errcap)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int in = 0, rc = 0;
	if (!f) {
		set_errbuf(err, errcap, "credentials file %s: %s", path, strerror(errno));
		return RN_ECONFIG;
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line), *eq, *k, *v, **dst = NULL;
		if (*l == '[') {
			char *e = strchr(l, ']');
			if (e)
				*e = 0;
			in = strcmp(trim(l + 1), profile) == 0;
			continue;
		}
		if (!in || *l == '#' || *l == ';' || !(eq = strchr(l, '=')))
			continue;
		*eq = 0;
		k = trim(l);
		v = trim(eq + 1);
		if (strcmp(k, "aws_access_key_id") == 0)
			dst = &s->access_key;
		else if (strcmp(k, "aws_secret_access_key") == 0)
			dst = &s->secret_key;
		else if (strcmp(k, "aws_session_token") == 0)
			dst = &s->token;
		if (dst) {
			wipe_free(*dst);
			if (!(*dst = rn_strdup(v))) {
				rc = RN_ENOMEM;
				break;
			}
		}
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (!rc && (!s->access_key || !s->secret_key)) {
		set_errbuf(err, errcap,
			   "credentials file %s: no aws_access_key_id and aws_secret_access_key in "
			   "[%s]",
			   path, profile);
		rc = RN_ECONFIG;
	}
	return rc;
}

static int load_credentials(struct rn_s3 *s, const struct rn_s3_config *c, char *err, size_t errcap)
{
	const char *ak = c->access_key, *sk = c->secret_key, *tok = c->session_token;
	const char *file = c->credentials_file;
	if (!ak || !sk) {
		ak = getenv("AWS_ACCESS_KEY_ID");
		sk = getenv("AWS_SECRET_ACCESS_KEY");
		tok = getenv("AWS_SESSION_TOKEN");
	}
	if (ak && *ak && sk && *sk) {
		if (!(s->access_key = rn_strdup(ak)) || !(s->secret_key = rn_strdup(sk)) ||
		    (tok && *tok && !(s->token = rn_strdup(tok))))
			return RN_ENOMEM;
		return 0;
	}
	if (!file)
		file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	if (file && *file) {
		const char *prof = c->profile ? c->profile : getenv("AWS_PROFILE");
		return read_cred_file(s, file, prof && *prof ? prof : "default", err, errcap);
	}
	set_errbuf(err, errcap,
		   "no S3 credentials: set access and secret keys, AWS_ACCESS_KEY_ID and "
		   "AWS_SECRET_ACCESS_KEY, or a credentials file");
	return RN_ECONFIG;
}

int rn_s3_create(const struct rn_s3_config *c, struct rn_s3 **out, char *err, size_t errcap)
{
	struct rn_s3 *s;
	const char *hp, *slash;
	size_t schemelen;
	int rc;

	*out = NULL;
	set_errbuf(err, errcap, "%s", "");
	if (!c || !c->endpoint || !c->bucket || !*c->bucket) {
		set_errbuf(err, errcap, "S3: an endpoint and a bucket are needed");
		return RN_EINVAL;
	}
	if (strncmp(c->endpoint, "http://", 7) == 0)
		schemelen = 7;
	else if (strncmp(c->endpoint, "https://", 8) == 0)
		schemelen = 8;
	else {
		set_errbuf(err, errcap, "S3 endpoint %s: not http:// or https://", c->endpoint);
		return RN_EINVAL;
	}
	hp = c->endpoint + schemelen;
	slash = strchr(hp, '/');
	if (slash == hp || (slash && slash[1]) || strchr(c->bucket, '/')) {
		set_errbuf(err, errcap, "S3 endpoint %s: a host without a path is expected",
			   c->endpoint);
		return RN_EINVAL;
	}
	if (c->part_size && c->part_size < RN_S3_PART_MIN) {
		set_errbuf(err, errcap, "S3 part size %lld: below S3's 5 MiB",
			   (long long)c->part_size);
		return RN_EINVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return RN_ENOMEM;
	if (!(s = rn_calloc(1, sizeof(*s))))
		return RN_ENOMEM;
	{
		size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
		struct rn_buf b = {0}, h = {0};
		if ((c->virtual_host &&
		     (rn_buf_append_str(&h, c->bucket) || rn_buf_append_u8(&h, '.'))) ||
		    rn_buf_append(&h, hp, hl) || rn_buf_append_u8(&h, 0) ||
		    rn_buf_append(&b, c->endpoint, schemelen) ||
		    rn_buf_append_str(&b, (char *)h.data) || rn_buf_append_u8(&b, 0)) {
			rn_buf_free(&b);
			rn_buf_free(&h);
			rc = RN_ENOMEM;
			goto fail;
		}
		s->host = (char *)h.data;
		s->base = (char *)b.data;
	}
	s->virtual_host = c->virtual_host;
	if (!(s->region = rn_strdup(c->region ? c->region : "us-east-1")) ||
	    !(s->bucket = rn_strdup(c->bucket))) {
		rc = RN_ENOMEM;
		goto fail;
	}
	if ((rc = load_credentials(s, c, err, errcap)))
		goto fail;
	s->connect_timeout_ms = c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 5000;
	s->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 30000;
	s->low_speed_secs = c->low_speed_secs > 0 ? c->low_speed_secs : 20;
	s->max_attempts = c->max_attempts > 0 ? c->max_attempts : 5;
	s->backoff_ms = c->backoff_ms > 0 ? c->backoff_ms : 100;
	s->threshold =
		c->multipart_threshold > 0 ? c->multipart_threshold : RN_S3_THRESHOLD_DEFAULT;
	s->part_size = c->part_size > 0 ? c->part_size : RN_S3_PART_DEFAULT;
	s->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s ^ 0x9E3779B97F4A7C15ull;
	if (!(s->curl = curl_easy_init())) {
		rc = RN_ENOMEM;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (rc == RN_ENOMEM)
		set_errbuf(err, errcap, "S3: out of memory");
	rn_s3_destroy(s);
	return rc;
}

void rn_s3_destroy(struct rn_s3 *s)
{
	if (!s)
		return;
	if (s->curl) {
		curl_easy_cleanup(s->curl);
		curl_global_cleanup();
	}
	rn_free(s->base);
	rn_free(s->host);
	rn_free(s->region);
	rn_free(s->bucket);
	wipe_free(s->access_key);
	wipe_free(s->secret_key);
	wipe_free(s->token);
	rn_free(s);
}

const char *rn_s3_errmsg(const struct rn_s3 *s)
{
	return s->err;
}

const char *rn_s3_access_key(const struct rn_s3 *s)
{
	return s->access_key;
}

int rn_s3_status(const struct rn_s3 *s)
{
	return s->status;
}

void rn_s3_stats(const struct rn_s3 *s, struct rn_s3_stats *st)
{
	*st = s->st;
}

/* curl callbacks */

static size_t read_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct req *r = arg;
	size_t want = size * n, left = r->len - r->body_off;
	if (want > left)
		want = left;
	if (want)
		memcpy(buf, (const char *)r->body + r->body_off, want);
	r->body_off += want;
	return want;
}

struct cb_ctx {
	struct rn_s3 *s;
	struct req *r;
};

static size_t write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct cb_ctx *x = arg;
	long code = 0;
	size_t len = size * n;
	curl_easy_getinfo(x->s->curl, CURLINFO_RESPONSE_CODE, &code);
	x->s->st.bytes_down += len;
	if (code >= 200 && code < 300 && x->r->out) {
		if (rn_buf_append(x->r->out, p, len)) {
			x->r->local_err = RN_ENOMEM; /* past its cap */
			return 0;
		}
		return len;
	}
	if (code >= 200 && code < 300 && x->r->fd > 0) {
		if (rn_write_all(x->r->fd, p, len)) {
			x->r->local_err = errno == ENOSPC ? RN_ENOSPC : RN_EIO;
			set_err(x->s, "writing %s/%s to a local file: %s", x->s->bucket,
				x->r->key ? x->r->key : "", strerror(errno));
			return 0;
		}
		x->r->fd_len += (int64_t)len;
		return len;
	}
	if (x->r->scratch.len + len > ERRBODY_MAX)
		len = ERRBODY_MAX - x->r->scratch.len; /* the rest of an error body is dropped */
	if (len && rn_buf_append(&x->r->scratch, p, len))
		return 0;
	return size * n;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct req *r = arg;
	size_t len = size * n;
	char line[256];
	if (len >= sizeof(line))
		return len;
	memcpy(line, p, len);
	line[len] = 0;
	if (strncmp(line, "HTTP/", 5) == 0) { /* a new header block (after 100 Continue) */
		r->content_length = -1;
		r->mtime_ms = -1;
		r->etag[0] = 0;
	} else if (strncasecmp(line, "last-modified:", 14) == 0) {
		char *v = trim(line + 14);
		if (rn_s3xml_http_date(v, strlen(v), &r->mtime_ms))
			r->mtime_ms = -1;
	} else if (strncasecmp(line, "etag:", 5) == 0) {
		snprintf(r->etag, sizeof(r->etag), "%s", trim(line + 5));
	} else if (strncasecmp(line, "content-length:", 15) == 0) {
		char *e;
		long long v = strtoll(trim(line + 15), &e, 10);
		r->content_length = *e || v < 0 ? -1 : v;
	}
	return len;
}

static void backoff(struct rn_s3 *s, int retry)
{
	int64_t ms;
	struct timespec ts;
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	ms = rn_s3_policy_backoff_ms(s->backoff_ms, retry, s->rng);
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Builds the decoded path ("/bucket/key" or "/key") into p. */
static int req_path(struct rn_s3 *s, const struct req *r, struct rn_buf *p)
{
	if (!s->virtual_host && (rn_buf_append_u8(p, '/') || rn_buf_append_str(p, s->bucket)))
		return RN_ENOMEM;
	if (r->key && (rn_buf_append_u8(p, '/') || rn_buf_append_str(p, r->key)))
		return RN_ENOMEM;
	if (!p->len && rn_buf_append_u8(p, '/'))
		return RN_ENOMEM;
	return rn_buf_append_u8(p, 0);
}

#define BELOW_HTTP 1 /* attempt(): no HTTP answer (not an rn_err code: those are <= 0) */

/* One attempt. 0 with s->status set when an HTTP answer came; BELOW_HTTP with s->err filled
 * when the connection failed or timed out; RN_ENOMEM, RN_EINVAL (signing). */
static int attempt(struct rn_s3 *s, struct req *r, const char *path, const char *hash)
{
	struct rn_sigv4_header hs[4];
	struct rn_sigv4_req sr = {.method = r->method,
				  .path = path,
				  .query = r->query,
				  .headers = hs,
				  .n_headers = 1 + r->n_extra,
				  .payload_hash = hash,
				  .content_sha256 = 1};
	struct rn_sigv4_cred cr = {.access_key = s->access_key,
				   .secret_key = s->secret_key,
				   .session_token = s->token,
				   .region = s->region,
				   .service = "s3"};
	struct rn_sigv4_out so = {0};
	struct rn_buf url = {0}, line = {0};
	struct curl_slist *hl = NULL, *t;
	struct cb_ctx x = {.s = s, .r = r};
	CURL *c = s->curl;
	CURLcode cc;
	long code = 0;
	int rc;

	hs[0].name = "Host";
	hs[0].value = s->host;
	for (size_t i = 0; i < r->n_extra; i++)
		hs[1 + i] = r->extra[i];
	if ((rc = rn_sigv4_sign(&cr, &sr, (int64_t)time(NULL), &so)))
		goto out;
	if (rn_buf_append_str(&url, s->base) || rn_sigv4_encode(&url, path, strlen(path), 1) ||
	    (r->query && (rn_buf_append_u8(&url, '?') || rn_buf_append_str(&url, r->query))) ||
	    rn_buf_append_u8(&url, 0)) {
		rc = RN_ENOMEM;
		goto out;
	}
	/* headers: the signed ones, then Authorization; no Expect (no 100-continue round trip) */
	for (size_t i = 0; i < 8; i++) {
		const char *n = NULL, *v = NULL;
		if (i < 1 + r->n_extra) {
			n = hs[i].name;
			v = hs[i].value;
		} else if (i == 4) {
			n = "x-amz-date";
			v = so.amz_date;
		} else if (i == 5) {
			n = "x-amz-content-sha256";
			v = hash;
		} else if (i == 6 && s->token) {
			n = "x-amz-security-token";
			v = s->token;
		} else if (i == 7) {
			n = "Authorization";
			v = (const char *)so.authorization.data;
		}
		if (!n)
			continue;
		line.len = 0;
		if (rn_buf_printf(&line, "%s: %s", n, v) || rn_buf_append_u8(&line, 0) ||
		    !(t = curl_slist_append(hl, (const char *)line.data))) {
			rc = RN_ENOMEM;
			goto out;
		}
		hl = t;
	}
	if (!(t = curl_slist_append(hl, "Expect:")) ||
	    !(hl = t, t = curl_slist_append(hl, "Content-Type:"))) {
		rc = RN_ENOMEM;
		goto out;
	}
	hl = t;

	curl_easy_reset(c);
	r->body_off = 0;
	r->content_length = -1;
	r->mtime_ms = -1;
	r->etag[0] = 0;
	r->scratch.len = 0;
	r->local_err = 0;
	if (r->out)
		r->out->len = r->out_start;
	if (r->fd > 0) {
		/* a retry writes the body again from the start; the caller truncates to fd_len */
		r->fd_len = 0;
		if (lseek(r->fd, 0, SEEK_SET) < 0) {
			set_err(s, "%s %s/%s: seek in the local file: %s", r->method, s->bucket,
				r->key ? r->key : "", strerror(errno));
			rc = RN_EIO;
			goto out;
		}
	}
	s->curlerr[0] = 0;
	curl_easy_setopt(c, CURLOPT_URL, (const char *)url.data);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curlerr);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)s->low_speed_secs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	/* libcurl silently sends a request again when a reused connection closes before any
	 * answer. A conditional put repeated behind our back could meet its own write and
	 * report someone else's (the rule in s3.h needs to know of every lost answer), so it
	 * always goes on a new connection, where libcurl never repeats. */
	if (r->retry_409)
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	if (strcmp(r->method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, r);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->len);
	} else if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? (const char *)r->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
	s->st.requests++;
	s->st.bytes_up += r->len;
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	s->status = (int)code;
	if (cc != CURLE_OK && r->local_err) {
		/* our side failed to take the body (a cap, a full disk): not the store's fault,
		 * and not retried; write_cb said why (an ENOMEM keeps curl's text) */
		if (r->local_err == RN_ENOMEM)
			set_err(s, "%s %s/%s: the answer is larger than the buffer's cap",
				r->method, s->bucket, r->key ? r->key : "");
		rc = r->local_err;
		r->fail = RN_S3_CUT;
	} else if (cc != CURLE_OK) {
		s->status = 0;
		set_err(s, "%s %s/%s: %s", r->method, s->bucket, r->key ? r->key : "",
			s->curlerr[0] ? s->curlerr : curl_easy_strerror(cc));
		rc = BELOW_HTTP;
		/* before a connection exists, nothing was applied */
		r->fail = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
					  cc == CURLE_COULDNT_RESOLVE_PROXY
				  ? RN_S3_NO_CONNECTION
				  : RN_S3_CUT;
	} else {
		r->fail = RN_S3_ANSWERED;
	}
out:
	rn_sigv4_out_free(&so);
	rn_buf_free(&url);
	rn_buf_free(&line);
	curl_slist_free_all(hl);
	return rc;
}

static int perform(struct rn_s3 *s, struct req *r)
{
	struct rn_buf path = {0};
	char hash[65];
	int rc;

	s->err[0] = 0;
	s->status = 0;
	s->unknown = 0;
	r->unknown = 0;
	r->out_start = r->out ? r->out->len : 0;
	r->scratch.max = ERRBODY_MAX + 1;
	if (r->key && !*r->key)
		return RN_EINVAL;
	if ((rc = req_path(s, r, &path)) ||
	    (rc = rn_sigv4_sha256_hex(r->body ? r->body : "", r->len, hash)))
		goto out;
	for (int i = 0; i < s->max_attempts; i++) {
		struct rn_s3_verdict v;
		char code[64] = "", msg[256] = "";
		int err_doc = 0, st;
		if (i) {
			s->st.retries++;
			backoff(s, i - 1);
		}
		rc = attempt(s, r, (const char *)path.data, hash);
		if (rc < 0)
			break;
		st = s->status;
		if (rc == 0 && st >= 200 && st < 300 && r->error_in_200) {
			const struct rn_buf *b = r->out ? r->out : &r->scratch;
			size_t from = r->out ? r->out_start : 0;
			int e = rn_s3xml_error((const char *)b->data + from, b->len - from, code,
					       sizeof(code), msg, sizeof(msg));
			if (e == RN_ENOMEM) { /* unread: no success, and maybe applied */
				set_err(s, "%s %s/%s: out of memory reading the answer", r->method,
					s->bucket, r->key ? r->key : "");
				r->unknown = 1;
				rc = RN_ENOMEM;
				break;
			}
			err_doc = e == 0;
		}
		v = rn_s3_policy_verdict(rc == BELOW_HTTP ? r->fail : RN_S3_ANSWERED, st,
					 r->retry_409, err_doc);
		rc = v.rc;
		if (!rc)
			break;
		if (r->fail == RN_S3_ANSWERED) {
			if (!err_doc)
				rn_s3xml_error((const char *)r->scratch.data, r->scratch.len, code,
					       sizeof(code), msg, sizeof(msg));
			set_err(s, "%s %s/%s: HTTP %d%s%s%s%s", r->method, s->bucket,
				r->key ? r->key : "", st, code[0] ? " " : "", code,
				msg[0] ? ": " : "", msg);
		}
		r->unknown |= v.maybe_applied;
		if (!v.retry)
			break;
	}
out:
	rn_buf_free(&path);
	if (rc && rc != RN_ENOTFOUND && rc != RN_EEXIST)
		s->st.failures++;
	if (!rc)
		s->err[0] = 0;
	s->unknown = rc && r->unknown;
	return rc;
}

static void req_done(struct req *r)
{
	rn_buf_free(&r->scratch);
}

int rn_s3_put(struct rn_s3 *s, const char *key, const void *p, size_t len)
{
	struct req r = {.method = "PUT", .key = key, .body = p, .len = len};
	int rc = key ? perform(s, &r) : RN_EINVAL;
	req_done(&r);
	return rc;
}

int rn_s3_put_if_absent(struct rn_s3 *s, const char *key, const void *p, size_t len)
{
	struct req r = {.method = "PUT",
			.key = key,
			.body = p,
			.len = len,
			.extra = {{"If-None-Match", "*"}},
			.n_extra = 1,
			.retry_409 = 1};
	int rc = key ? perform(s, &r) : RN_EINVAL;
	if (rc == RN_EEXIST && r.unknown) {
		/* our own earlier attempt may be the one that exists: compare size, then bytes */
		struct rn_buf got = {.max = len + 1};
		char saved[sizeof(s->err)];
		int64_t size = -1;
		int g;
		memcpy(saved, s->err, sizeof(saved));
		g = rn_s3_head(s, key, &size);
		if (g == 0 && size != (int64_t)len)
			rc = RN_EEXIST;
		else if (g == 0 && (g = len ? rn_s3_get(s, key, 0, -1, &got) : 0) == 0)
			rc = got.len == len && (len == 0 || memcmp(got.data, p, len) == 0)
				     ? 0
				     : RN_EEXIST;
		if (g) {
			char why[sizeof(s->err)];
			memcpy(why, s->err, sizeof(why));
			set_err(s,
				"PUT %s/%s: outcome unknown (a retry found the key and reading it "
				"back failed: %s)",
				s->bucket, key, why);
			rc = RN_EIO;
		}
		if (rc == RN_EEXIST)
			memcpy(s->err, saved, sizeof(saved));
		rn_buf_free(&got);
		s->unknown = rc == RN_EIO;
	}
	req_done(&r);
	return rc;
}

int rn_s3_get(struct rn_s3 *s, const char *key, int64_t off, int64_t len, struct rn_buf *out)
{
	char range[64];
	struct req r = {.method = "GET", .key = key, .out = out};
	int rc;
	if (!key || !out || off < 0 || len == 0)
		return RN_EINVAL;
	if (off > 0 || len > 0) {
		if (len > 0)
			snprintf(range, sizeof(range), "bytes=%lld-%lld", (long long)off,
				 (long long)(off + len - 1));
		else
			snprintf(range, sizeof(range), "bytes=%lld-", (long long)off);
		r.extra[0].name = "Range";
		r.extra[0].value = range;
		r.n_extra = 1;
	}
	rc = perform(s, &r);
	req_done(&r);
	return rc;
}

int rn_s3_get_fd(struct rn_s3 *s, const char *key, int fd, int64_t *len)
{
	struct req r = {.method = "GET", .key = key, .fd = fd};
	int rc;
	if (!key || fd <= 0)
		return RN_EINVAL;
	rc = perform(s, &r);
	if (!rc && r.content_length >= 0 && r.fd_len != r.content_length) {
		set_err(s, "GET %s/%s: %lld bytes of %lld", s->bucket, key, (long long)r.fd_len,
			(long long)r.content_length);
		rc = RN_EPROTO;
	}
	if (!rc && rn_fs_ftruncate(fd, (off_t)r.fd_len) != 0) {
		set_err(s, "GET %s/%s: truncating the local file: %s", s->bucket, key,
			strerror(errno));
		rc = errno == ENOSPC ? RN_ENOSPC : RN_EIO;
	}
	if (!rc && len)
		*len = r.fd_len;
	req_done(&r);
	return rc;
}

int rn_s3_stat(struct rn_s3 *s, const char *key, int64_t *size, int64_t *mtime_ms)
{
	struct req r = {.method = "HEAD", .key = key};
	int rc = key ? perform(s, &r) : RN_EINVAL;
	if (!rc && size && r.content_length < 0) {
		set_err(s, "HEAD %s/%s: no Content-Length", s->bucket, key);
		rc = RN_EPROTO;
	} else if (!rc && mtime_ms && r.mtime_ms < 0) {
		set_err(s, "HEAD %s/%s: no valid Last-Modified", s->bucket, key);
		rc = RN_EPROTO;
	}
	if (!rc && size)
		*size = r.content_length;
	if (!rc && mtime_ms)
		*mtime_ms = r.mtime_ms;
	req_done(&r);
	return rc;
}

int rn_s3_head(struct rn_s3 *s, const char *key, int64_t *size)
{
	return rn_s3_stat(s, key, size, NULL);
}

int rn_s3_maybe_applied(const struct rn_s3 *s)
{
	return s->unknown;
}

int rn_s3_delete(struct rn_s3 *s, const char *key)
{
	struct req r = {.method = "DELETE", .key = key};
	int rc = key ? perform(s, &r) : RN_EINVAL;
	if (rc == RN_ENOTFOUND)
		rc = 0;
	req_done(&r);
	return rc;
}

/* Appends "&name=value" (value encoded) to q, without the '&' when q is empty. */
static int qparam(struct rn_buf *q, const char *name, const char *value)
{
	if ((q->len && rn_buf_append_u8(q, '&')) || rn_buf_append_str(q, name) ||
	    rn_buf_append_u8(q, '='))
		return RN_ENOMEM;
	return rn_sigv4_encode(q, value, strlen(value), 0);
}

int rn_s3_list(struct rn_s3 *s, const char *prefix, const char *delimiter, const char *token,
	       int max_keys, struct rn_s3_list *out)
{
	struct rn_buf q = {0}, body = {.max = 16 << 20};
	struct req r = {.method = "GET", .out = &body};
	char mk[16];
	int rc;
	memset(out, 0, sizeof(*out));
	snprintf(mk, sizeof(mk), "%d", max_keys);
	/* in sorted order, as signed: continuation-token, delimiter, list-type, max-keys, prefix */
	if ((token && qparam(&q, "continuation-token", token)) ||
	    (delimiter && qparam(&q, "delimiter", delimiter)) || qparam(&q, "list-type", "2") ||
	    (max_keys > 0 && qparam(&q, "max-keys", mk)) ||
	    (prefix && qparam(&q, "prefix", prefix)) || rn_buf_append_u8(&q, 0)) {
		rc = RN_ENOMEM;
		goto out;
	}
	r.query = (const char *)q.data;
	if ((rc = perform(s, &r)))
		goto out;
	rc = rn_s3xml_list((const char *)body.data, body.len, out);
	if (rc == RN_EINVAL) {
		set_err(s, "GET %s?list-type=2: the listing did not parse", s->bucket);
		rc = RN_EPROTO;
	}
out:
	req_done(&r);
	rn_buf_free(&q);
	rn_buf_free(&body);
	return rc;
}

int rn_s3_mpu_create(struct rn_s3 *s, const char *key, char *id, size_t cap)
{
	struct rn_buf body = {.max = ERRBODY_MAX};
	struct req r = {.method = "POST", .key = key, .query = "uploads", .out = &body};
	int rc = key ? perform(s, &r) : RN_EINVAL;
	if (!rc && (rc = rn_s3xml_upload_id((const char *)body.data, body.len, id, cap))) {
		/* an upload made but not known to us is an orphan for the lifecycle rule */
		if (rc == RN_ENOMEM)
			set_err(s, "POST %s/%s?uploads: out of memory reading the answer",
				s->bucket, key);
		else
			set_err(s, "POST %s/%s?uploads: no UploadId in the answer", s->bucket, key);
		rc = rc == RN_ENOMEM ? RN_ENOMEM : RN_EPROTO;
	}
	req_done(&r);
	rn_buf_free(&body);
	return rc;
}

static int upload_query(struct rn_buf *q, int n, const char *id)
{
	char num[16];
	snprintf(num, sizeof(num), "%d", n);
	if ((n > 0 && qparam(q, "partNumber", num)) || qparam(q, "uploadId", id) ||
	    rn_buf_append_u8(q, 0))
		return RN_ENOMEM;
	return 0;
}

int rn_s3_mpu_part(struct rn_s3 *s, const char *key, const char *id, int n, const void *p,
		   size_t len, char *etag, size_t cap)
{
	struct rn_buf q = {0};
	struct req r = {.method = "PUT", .key = key, .body = p, .len = len};
	int rc;
	if (!key || !id || n < 1 || n > RN_S3_MAX_PARTS || !cap)
		return RN_EINVAL;
	if ((rc = upload_query(&q, n, id)))
		goto out;
	r.query = (const char *)q.data;
	if ((rc = perform(s, &r)))
		goto out;
	if (!r.etag[0] || strlen(r.etag) >= cap) {
		set_err(s, "PUT %s/%s part %d: no usable ETag in the answer", s->bucket, key, n);
		rc = RN_EPROTO;
		goto out;
	}
	memcpy(etag, r.etag, strlen(r.etag) + 1);
out:
	req_done(&r);
	rn_buf_free(&q);
	return rc;
}

int rn_s3_mpu_complete(struct rn_s3 *s, const char *key, const char *id, char *const *etags, int n,
		       int64_t expect_size)
{
	struct rn_buf q = {0}, x = {0}, body = {.max = ERRBODY_MAX};
	struct req r = {.method = "POST", .key = key, .out = &body, .error_in_200 = 1};
	int rc;
	if (!key || !id || n < 1 || n > RN_S3_MAX_PARTS)
		return RN_EINVAL;
	if ((rc = upload_query(&q, 0, id)) ||
	    (rc = rn_buf_append_str(&x, "<CompleteMultipartUpload>")))
		goto out;
	for (int i = 0; i < n; i++)
		if ((rc = rn_buf_printf(&x,
					"<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
					i + 1, etags[i])))
			goto out;
	if ((rc = rn_buf_append_str(&x, "</CompleteMultipartUpload>")))
		goto out;
	r.query = (const char *)q.data;
	r.body = x.data;
	r.len = x.len;
	rc = perform(s, &r);
	if (rc == RN_ENOTFOUND && r.unknown && expect_size >= 0) {
		/* a lost answer to a completion that happened: the upload is gone, the object is
		 * there */
		int64_t size = -1;
		if (rn_s3_head(s, key, &size) == 0 && size == expect_size)
			rc = 0;
		else
			rc = RN_EIO;
		s->unknown = rc != 0;
	}
out:
	req_done(&r);
	rn_buf_free(&q);
	rn_buf_free(&x);
	rn_buf_free(&body);
	return rc;
}

int rn_s3_mpu_abort(struct rn_s3 *s, const char *key, const char *id)
{
	struct rn_buf q = {0};
	struct req r = {.method = "DELETE", .key = key};
	int rc;
	if (!key || !id)
		return RN_EINVAL;
	if ((rc = upload_query(&q, 0, id)))
		goto out;
	r.query = (const char *)q.data;
	rc = perform(s, &r);
	if (rc == RN_ENOTFOUND)
		rc = 0;
out:
	req_done(&r);
	rn_buf_free(&q);
	return rc;
}

/* Reads exactly len bytes at off. 0 or RN_EIO (errno in s->err). */
static int read_at(struct rn_s3 *s, int fd, const char *path, void *p, size_t len, int64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t k = pread(fd, (char *)p + got, len - got, (off_t)(off + (int64_t)got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			set_err(s, "read %s: %s", path,
				k < 0 ? strerror(errno) : "file shrank while uploading");
			return RN_EIO;
		}
		got += (size_t)k;
	}
	return 0;
}

int rn_s3_put_file(struct rn_s3 *s, const char *key, const char *path)
{
	struct stat stt;
	char id[512], **etags = NULL, saved[sizeof(s->err)];
	void *buf = NULL;
	int64_t size, nparts = 0;
	int fd, rc = 0, created = 0;

	if (!key || !path)
		return RN_EINVAL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &stt) != 0) {
		set_err(s, "open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return RN_EIO;
	}
	size = (int64_t)stt.st_size;
	if (size <= s->threshold) {
		if (!(buf = rn_malloc(size ? (size_t)size : 1))) {
			rc = RN_ENOMEM;
			goto out;
		}
		if (!(rc = read_at(s, fd, path, buf, (size_t)size, 0)))
			rc = rn_s3_put(s, key, buf, (size_t)size);
		goto out;
	}
	nparts = (size + s->part_size - 1) / s->part_size;
	if (nparts > RN_S3_MAX_PARTS) {
		set_err(s, "put %s: %lld parts of %lld bytes, more than S3's %d", path,
			(long long)nparts, (long long)s->part_size, RN_S3_MAX_PARTS);
		rc = RN_ETOOBIG;
		goto out;
	}
	if (!(buf = rn_malloc((size_t)s->part_size)) ||
	    !(etags = rn_calloc((size_t)nparts, sizeof(*etags)))) {
		rc = RN_ENOMEM;
		goto out;
	}
	if ((rc = rn_s3_mpu_create(s, key, id, sizeof(id))))
		goto out;
	created = 1;
	for (int64_t i = 0; i < nparts; i++) {
		int64_t off = i * s->part_size,
			len = size - off < s->part_size ? size - off : s->part_size;
		char etag[128];
		if ((rc = read_at(s, fd, path, buf, (size_t)len, off)) ||
		    (rc = rn_s3_mpu_part(s, key, id, (int)i + 1, buf, (size_t)len, etag,
					 sizeof(etag))))
			goto out;
		if (!(etags[i] = rn_strdup(etag))) {
			rc = RN_ENOMEM;
			goto out;
		}
	}
	rc = rn_s3_mpu_complete(s, key, id, etags, (int)nparts, size);
out:
	if (rc && created) { /* best effort; the first failure's message is the one kept */
		memcpy(saved, s->err, sizeof(saved));
		rn_s3_mpu_abort(s, key, id);
		memcpy(s->err, saved, sizeof(saved));
	}
	if (etags)
		for (int64_t i = 0; i < nparts; i++)
			rn_free(etags[i]);
	rn_free(etags);
	rn_free(buf);
	close(fd);
	return rc;
}
