/*
 * TLS for the server's listeners: the only server code that includes OpenSSL. A struct rn_tls
 * holds the SSL_CTX built from the config (certificate chain, private key, optional client CA
 * and client-certificate mode, TLS 1.2 minimum, ALPN) and hands out one SSL per accepted
 * connection; the front and the HTTP port wrap it in libevent's bufferevent_openssl. It also
 * reads what a finished handshake tells (the peer identity from a verified client
 * certificate, the ALPN protocol) and sorts handshake failures into the reasons /metrics
 * counts. It does no socket I/O.
 *
 * Reload: rn_tls_reload builds a whole new SSL_CTX from the files; only when that succeeds does
 * it replace the current one. OpenSSL counts references to an SSL_CTX from each SSL, so the
 * connections opened before keep the context they were accepted with until they close, and
 * none is dropped; new connections get the new one. A failed reload keeps the old context.
 *
 * The pure helpers (rn_tls_alpn_select, rn_tls_client_auth_parse, rn_tls_reason_name) have
 * no OpenSSL state and are unit-tested in tests/unit/server/test_tls.c.
 *
 * Lifetime: the server creates one rn_tls per TLS listener at start and destroys it at exit;
 * all calls on the loop thread.
 */
#ifndef RN_SERVER_TLS_H
#define RN_SERVER_TLS_H

#include <stddef.h>
#include <stdint.h>

struct rn_tls;
struct ssl_st; /* OpenSSL's SSL, opaque here: passed to bufferevent_openssl */

/* Client certificates: not asked for, asked for and verified when sent, or required. */
enum rn_tls_client_auth { RN_TLS_CLIENT_NONE, RN_TLS_CLIENT_OPTIONAL, RN_TLS_CLIENT_REQUIRE };

/* Why a handshake (or what follows it) failed, as /metrics labels them. */
enum rn_tls_reason {
	RN_TLS_FAIL_CLEARTEXT, /* the client spoke plain HTTP (h2c, HTTP/1) to the TLS port */
	RN_TLS_FAIL_NO_H2,     /* the client offered no ALPN protocol the port serves */
	RN_TLS_FAIL_BAD_CERT,  /* a client certificate missing, unverifiable, expired... */
	RN_TLS_FAIL_OTHER,     /* anything else (protocol version, ciphers, reset) */
	RN_TLS_FAIL_TIMEOUT,   /* no handshake within the port's timeout (a silent client) */
	RN_TLS_FAIL_N
};

struct rn_tls_options {
	const char *cert_file;      /* PEM certificate chain, leaf first; required */
	const char *key_file;       /* PEM private key matching it; required */
	const char *client_ca_file; /* PEM CAs client certificates are verified against; NULL =
				       none (then client_auth must be NONE) */
	int client_auth;            /* enum rn_tls_client_auth */
	const char *alpn;           /* the one protocol the port speaks: "h2" or "http/1.1" */
	const char *name;           /* the listener's name in log lines ("listen") */
};

/*
 * Builds the context from opt's files (copied: reloads read the same paths again). 0, or
 * RN_EINVAL (a file missing or unreadable, not PEM, the key not matching the certificate,
 * client_auth without client_ca_file) or RN_ENOMEM, with the reason in err. A certificate or
 * key file that others than its owner may read is logged as a warning (the key) but used.
 */
int rn_tls_create(struct rn_tls **out, const struct rn_tls_options *opt, char *err, size_t cap);
void rn_tls_destroy(struct rn_tls *t);

/*
 * Builds a new context from the same files (a SIGHUP after the operator replaced them).
 * 0: new connections use it, open ones keep theirs. Otherwise the old context stays, the
 * error is RN_EINVAL or RN_ENOMEM with the reason in err. Counted in rn_tls_stats.
 */
int rn_tls_reload(struct rn_tls *t, char *err, size_t cap);

/* A new server-side SSL on the current context, or NULL (out of memory). The caller hands it
 * to bufferevent_openssl_socket_new (which frees it with BEV_OPT_CLOSE_ON_FREE). */
struct ssl_st *rn_tls_ssl_new(struct rn_tls *t);

/*
 * After the handshake: copies the peer identity of ssl's verified client certificate into
 * buf (the first URI subjectAltName, else the first DNS one) and returns 1; 0 (buf "") when
 * there is no verified certificate or it names neither, or the name does not fit cap.
 */
int rn_tls_peer_identity(struct ssl_st *ssl, char *buf, size_t cap);

/* 1 when the handshake on ssl has finished. */
int rn_tls_handshake_done(struct ssl_st *ssl);

/* 1 when the handshake on ssl selected the port's ALPN protocol. */
int rn_tls_alpn_ok(const struct rn_tls *t, struct ssl_st *ssl);

/*
 * Sorts the OpenSSL error code of a failed handshake on ssl (bufferevent_get_openssl_error; 0
 * when there was none, e.g. the peer closed) into a reason, and describes it in buf (with the
 * certificate verification error, such as "certificate has expired", when there is one).
 * ssl may be NULL.
 */
enum rn_tls_reason rn_tls_classify(struct ssl_st *ssl, unsigned long err, char *buf, size_t cap);

/* Counters and the leaf certificate's expiry, for /metrics. */
struct rn_tls_stats {
	uint64_t reloads_ok, reloads_err;
	int64_t cert_not_after; /* seconds since the epoch; 0 unknown */
};
void rn_tls_stats(const struct rn_tls *t, struct rn_tls_stats *st);

/*
 * Pure helpers. rn_tls_alpn_select: picks `want` (e.g. "h2") from a client's ALPN list in
 * wire format (length-prefixed names, in, inlen); 1 with *sel and *sellen pointing into in, or 0
 * when the client does not offer it or the list is malformed.
 */
int rn_tls_alpn_select(const char *want, const unsigned char *in, size_t inlen,
		       const unsigned char **sel, unsigned char *sellen);
/* "none", "optional", "require" -> enum rn_tls_client_auth; -1 for anything else. */
int rn_tls_client_auth_parse(const char *s);
/* "cleartext", "no_h2", "bad_cert", "other", "timeout". */
const char *rn_tls_reason_name(enum rn_tls_reason r);

#endif
