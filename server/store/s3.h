/*
 * The S3 client: requests to one bucket of an S3-compatible store (AWS S3, Ceph RGW), signed
 * with SigV4 (sigv4.h) and sent with libcurl; this file's .c is the only server code that
 * includes curl.h. It owns the request shapes (put, conditional put, get, head, delete,
 * ListObjectsV2, multipart), timeouts, retries with backoff and the mapping of HTTP and S3
 * errors to rn_err codes. It does not know about Delta tables (the table store on it comes
 * next) and reads no config file of its own: the caller fills a struct rn_s3_config.
 *
 * Lifetime and threads: rn_s3_create makes an object with one curl handle (connections are
 * reused across requests); it is used by one thread at a time. For parallel requests create
 * one object per thread. rn_s3_destroy wipes the credentials.
 *
 * Credentials never leave the object: they are not logged and no error text contains them.
 *
 * Retries: a request is retried after a connection error, a timeout, HTTP 5xx or 429 (and 409
 * ConditionalRequestConflict for a conditional put), up to max_attempts attempts, waiting
 * backoff_ms doubled each time (capped at 5 s) with full jitter. Every operation below is
 * retried except where said. Conditional put (rn_s3_put_if_absent) follows the rule Delta's S3
 * commit protocol needs:
 *   - A 412 on the first attempt means another writer holds the key: RN_EEXIST.
 *   - If an earlier attempt's outcome is unknown (no response, a timeout, a 5xx: our PUT may
 *     have been applied), a later 412 may be our own write. The object is then read back and
 *     compared with our bytes: equal means ours (0), different means theirs (RN_EEXIST), and
 *     a failed read leaves the outcome unknown (RN_EIO; the caller must re-read the table's
 *     log before deciding). Sound because a Delta commit's bytes are unique to its writer
 *     (commitInfo carries the writer's id and time): two writers never put equal bytes.
 * rn_s3_mpu_create is retried too; a lost response leaves an orphan upload that the bucket's
 * AbortIncompleteMultipartUpload lifecycle rule removes. rn_s3_mpu_complete after a lost
 * response sees 404 NoSuchUpload: it then HEADs the key and succeeds if the object has the
 * expected size.
 */
#ifndef RN_STORE_S3_H
#define RN_STORE_S3_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"
#include "s3xml.h"

#define RN_S3_PART_MIN ((int64_t)5 << 20) /* S3's smallest part (except the last) */
#define RN_S3_PART_DEFAULT ((int64_t)8 << 20)
#define RN_S3_THRESHOLD_DEFAULT ((int64_t)16 << 20) /* rn_s3_put_file: multipart above */
#define RN_S3_MAX_PARTS 10000

/* What the caller configures. A zeroed struct plus endpoint and bucket is valid. Strings are
 * copied by rn_s3_create. */
struct rn_s3_config {
	const char *endpoint; /* "http://127.0.0.1:7480", "https://s3.eu-west-1.amazonaws.com" */
	const char *region;   /* NULL = "us-east-1" */
	const char *bucket;
	int virtual_host; /* 0: path style (endpoint/bucket/key), 1: bucket.host/key */
	/* Credentials: access_key and secret_key here, else AWS_ACCESS_KEY_ID /
	 * AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) from the environment, else the profile
	 * (profile, else AWS_PROFILE, else "default") of the shared credentials file
	 * credentials_file (else AWS_SHARED_CREDENTIALS_FILE). */
	const char *access_key;
	const char *secret_key;
	const char *session_token;
	const char *credentials_file;
	const char *profile;
	int connect_timeout_ms;      /* 0 = 5000 */
	int timeout_ms;              /* one attempt, all of it; 0 = 30000 */
	int low_speed_secs;          /* abort an attempt slower than 1 KB/s for this long; 0 = 20 */
	int max_attempts;            /* 0 = 5; 1 = no retries */
	int backoff_ms;              /* first wait between attempts; 0 = 100 */
	int64_t multipart_threshold; /* rn_s3_put_file above this size: multipart; 0 = default */
	int64_t part_size;           /* 0 = RN_S3_PART_DEFAULT; at least RN_S3_PART_MIN */
};

struct rn_s3;

/* Counters since creation (read by the same thread that uses the object). */
struct rn_s3_stats {
	uint64_t requests;   /* attempts sent */
	uint64_t retries;    /* attempts that were retries */
	uint64_t failures;   /* operations that returned an error other than RN_ENOTFOUND/EEXIST */
	uint64_t bytes_up;   /* request bodies */
	uint64_t bytes_down; /* response bodies */
};

/* Creates the client. 0, RN_EINVAL (no endpoint or bucket, a malformed endpoint, a part size
 * below RN_S3_PART_MIN), RN_ECONFIG (no credentials found, an unreadable credentials file;
 * the detail is in err), RN_ENOMEM. err (errcap bytes, may be 0) gets the reason. */
int rn_s3_create(const struct rn_s3_config *cfg, struct rn_s3 **out, char *err, size_t errcap);
void rn_s3_destroy(struct rn_s3 *s);

/* The last failure's detail: "PUT bucket/key: HTTP 403 SignatureDoesNotMatch: ..." or the
 * connection error; "" after a success. Never holds a credential. */
const char *rn_s3_errmsg(const struct rn_s3 *s);
/* The access key id in use (not a secret: every request carries it). */
const char *rn_s3_access_key(const struct rn_s3 *s);
/* The last response's HTTP status (0: none). */
int rn_s3_status(const struct rn_s3 *s);
/* 1 when the last operation failed after an attempt the store may have applied (a cut
 * connection, a timeout, a 5xx; for rn_s3_put_if_absent an RN_EIO whose read-back failed):
 * its effect is unknown. 0 after a success, an answered refusal or a failure to connect. */
int rn_s3_maybe_applied(const struct rn_s3 *s);
void rn_s3_stats(const struct rn_s3 *s, struct rn_s3_stats *st);

/* Error codes of every operation: RN_ENOTFOUND (404: no such key, or no such bucket),
 * RN_ECONNECT (no connection after all attempts, or a timeout), RN_EINVAL (HTTP 400, or a key
 * that is empty), RN_ERANGE (416: a range past the end), RN_EIO (403 and any other failure;
 * the detail in rn_s3_errmsg), RN_EPROTO (a 2xx whose body did not parse), RN_ENOMEM. */

/* PUT key with body p[0..len). 0 or an error above. */
int rn_s3_put(struct rn_s3 *s, const char *key, const void *p, size_t len);
/* PUT key with If-None-Match: * (see the retry rule above). 0 (created by us), RN_EEXIST (the
 * key exists and is not ours), or an error above. */
int rn_s3_put_if_absent(struct rn_s3 *s, const char *key, const void *p, size_t len);
/* Uploads the file at path: one PUT up to multipart_threshold, else a multipart upload in
 * part_size parts (aborted on failure). Memory: one part (or the whole small file). 0,
 * RN_EIO (the file could not be read; detail in errmsg), RN_ETOOBIG (more than
 * RN_S3_MAX_PARTS parts), or an error above. */
int rn_s3_put_file(struct rn_s3 *s, const char *key, const char *path);
/* GET key's bytes [off, off+len) (len < 0: to the end; off = 0 and len < 0: the whole
 * object) appended to out (its max caps the size: RN_ENOMEM past it). */
int rn_s3_get(struct rn_s3 *s, const char *key, int64_t off, int64_t len, struct rn_buf *out);
/* GET key's whole body written into the file fd (from its offset 0; a retry starts again
 * there), which is then truncated to the body's length, into *len (may be NULL). Memory stays
 * at curl's buffer whatever the object's size. Writes go through rn_fs (common/rn_fs.h: its
 * failure hook reaches them). RN_ENOSPC or RN_EIO when the file cannot be written (not
 * retried; errno's text in errmsg), RN_EPROTO (fewer bytes than Content-Length), or an error
 * above. */
int rn_s3_get_fd(struct rn_s3 *s, const char *key, int fd, int64_t *len);
/* HEAD key: its size into *size, and its Last-Modified header as Unix ms (whole seconds) into
 * *mtime_ms; either may be NULL. RN_EPROTO when a wanted header is missing or malformed. */
int rn_s3_stat(struct rn_s3 *s, const char *key, int64_t *size, int64_t *mtime_ms);
/* rn_s3_stat for the size alone. */
int rn_s3_head(struct rn_s3 *s, const char *key, int64_t *size);
/* DELETE key; a key that does not exist is not an error (S3 answers 204 for it too). */
int rn_s3_delete(struct rn_s3 *s, const char *key);
/* One ListObjectsV2 page of keys starting with prefix (NULL: all), after token (NULL: the
 * first page), at most max_keys (0: the store's default, 1000), into out (freed with
 * rn_s3_list_free); out->truncated and out->next_token lead to the next page. With a
 * delimiter (NULL: none; "/" for one level) keys holding it after the prefix are rolled up
 * into out->prefixes (CommonPrefixes) instead of listed. Keys come in ascending UTF-8 byte
 * order (S3's rule; the caller may check it). */
int rn_s3_list(struct rn_s3 *s, const char *prefix, const char *delimiter, const char *token,
	       int max_keys, struct rn_s3_list *out);

/* Multipart, step by step. create: the upload id into id (cap bytes). part: part number n
 * (1..10000) of p[0..len), its ETag into etag (cap bytes). complete: the parts 1..n with
 * their ETags in order; expect_size >= 0 is the object's size, used after a lost response
 * (see above). abort: best effort, 0 also when the upload is gone. */
int rn_s3_mpu_create(struct rn_s3 *s, const char *key, char *id, size_t cap);
int rn_s3_mpu_part(struct rn_s3 *s, const char *key, const char *id, int n, const void *p,
		   size_t len, char *etag, size_t cap);
int rn_s3_mpu_complete(struct rn_s3 *s, const char *key, const char *id, char *const *etags, int n,
		       int64_t expect_size);
int rn_s3_mpu_abort(struct rn_s3 *s, const char *key, const char *id);

#endif
