/*
 * TLS contexts over OpenSSL; see tls.h. The context prefers TLS 1.3 (OpenSSL's default
 * ciphersuites) and allows TLS 1.2 with forward-secret AEAD ciphers only; compression and
 * renegotiation are off. Client certificates are verified against client_ca_file alone (not
 * the system store): a fleet's devices carry certificates of the operator's own CA.
 */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

struct rn_tls {
	SSL_CTX *ctx; /* the current context; SSLs made from older ones hold their own ref */
	char *cert_file, *key_file, *client_ca_file, *alpn, *name;
	int client_auth;
	struct rn_tls_stats st;
};

/* TLS 1.2 suites: ECDHE key exchange and AEAD only. */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

int rn_tls_alpn_select(const char *want, const unsigned char *in, size_t inlen,
		       const unsigned char **sel, unsigned char *sellen)
{
	size_t wl = strlen(want), i = 0;
	while (i < inlen) {
		size_t n = in[i];
		if (n == 0 || i + 1 + n > inlen)
			return 0; /* malformed: an empty name or one past the end */
		if (n == wl && !memcmp(in + i + 1, want, wl)) {
			*sel = in + i + 1;
			*sellen = (unsigned char)n;
			return 1;
		}
		i += 1 + n;
	}
	return 0;
}

int rn_tls_client_auth_parse(const char *s)
{
	if (!s)
		return -1;
	if (!strcmp(s, "none"))
		return RN_TLS_CLIENT_NONE;
	if (!strcmp(s, "optional"))
		return RN_TLS_CLIENT_OPTIONAL;
	if (!strcmp(s, "require"))
		return RN_TLS_CLIENT_REQUIRE;
	return -1;
}

const char *rn_tls_reason_name(enum rn_tls_reason r)
{
	static const char *const names[] = {"cleartext", "no_h2", "bad_cert", "other", "timeout"};
	return (unsigned)r < RN_TLS_FAIL_N ? names[r] : "other";
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	struct rn_tls *t = arg;
	(void)ssl;
	if (rn_tls_alpn_select(t->alpn, in, inlen, out, outlen))
		return SSL_TLSEXT_ERR_OK;
	/* the gRPC port speaks HTTP/2 only: a client without h2 is refused in the handshake
	 * (no_application_protocol), which rn_tls_classify reports as no_h2; the HTTP port
	 * goes on without ALPN (HTTP/1.1 is then what the client speaks) */
	return strcmp(t->alpn, "h2") ? SSL_TLSEXT_ERR_NOACK : SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* The first OpenSSL error in words into err (and clears the queue). */
static void ssl_reason(char *err, size_t cap, const char *what, const char *file)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "unknown error";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, cap, "%s %s: %s", what, file, buf);
}

/* A certificate or key file others may read: the key is a secret, so say so. */
static void check_mode(const char *name, const char *key, const char *file)
{
	struct stat sb;
	if (stat(file, &sb) == 0 && (sb.st_mode & (S_IRWXG | S_IRWXO)))
		rn_log_warn(
			"tls",
			"%s %s %s is readable or writable by others than its owner (mode %03o): "
			"chmod 600 it",
			name, key, file, (unsigned)(sb.st_mode & 0777));
}

static int64_t not_after(SSL_CTX *ctx)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	struct tm tm;
	if (!x || !ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static int build(struct rn_tls *t, SSL_CTX **out, char *err, size_t cap)
{
	SSL_CTX *ctx;
	*out = NULL;
	ERR_clear_error();
	if (!(ctx = SSL_CTX_new(TLS_server_method()))) {
		snprintf(err, cap, "out of memory creating the TLS context");
		return RN_ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (!SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
		ssl_reason(err, cap, "cipher list", "");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
		ssl_reason(err, cap, "certificate file", t->cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
		    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			snprintf(err, cap, "key file %s does not match the certificate in %s",
				 t->key_file, t->cert_file);
		} else {
			ssl_reason(err, cap, "key file", t->key_file);
		}
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, cap, "key file %s does not match the certificate in %s", t->key_file,
			 t->cert_file);
		goto fail;
	}
	if (t->client_ca_file) {
		STACK_OF(X509_NAME) * names;
		if (SSL_CTX_load_verify_locations(ctx, t->client_ca_file, NULL) != 1) {
			ssl_reason(err, cap, "client CA file", t->client_ca_file);
			goto fail;
		}
		/* the CAs named in the CertificateRequest, so a client picks the right cert */
		if ((names = SSL_load_client_CA_file(t->client_ca_file)))
			SSL_CTX_set_client_CA_list(ctx, names);
		ERR_clear_error();
	}
	if (t->client_auth == RN_TLS_CLIENT_REQUIRE)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else if (t->client_auth == RN_TLS_CLIENT_OPTIONAL)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_verify_depth(ctx, 8);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, t);
	/* no session tickets to keep keys for; a resumed session skips client verification
	 * of a certificate that may since have been replaced */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return RN_EINVAL;
}

static char *dup_or_null(const char *s, int *bad)
{
	char *d;
	if (!s)
		return NULL;
	if (!(d = rn_strdup(s)))
		*bad = 1;
	return d;
}

int rn_tls_create(struct rn_tls **out, const struct rn_tls_options *opt, char *err, size_t cap)
{
	struct rn_tls *t;
	int bad = 0, rc;

	*out = NULL;
	if (!opt->cert_file || !opt->key_file) {
		snprintf(err, cap, "TLS needs both a certificate file and a key file");
		return RN_EINVAL;
	}
	if (opt->client_auth != RN_TLS_CLIENT_NONE && !opt->client_ca_file) {
		snprintf(err, cap,
			 "client certificates (optional or require) need a client CA file");
		return RN_EINVAL;
	}
	if (!(t = rn_calloc(1, sizeof(*t)))) {
		snprintf(err, cap, "out of memory");
		return RN_ENOMEM;
	}
	t->cert_file = dup_or_null(opt->cert_file, &bad);
	t->key_file = dup_or_null(opt->key_file, &bad);
	t->client_ca_file = dup_or_null(opt->client_ca_file, &bad);
	t->alpn = dup_or_null(opt->alpn ? opt->alpn : "h2", &bad);
	t->name = dup_or_null(opt->name ? opt->name : "listen", &bad);
	t->client_auth = opt->client_auth;
	if (bad) {
		snprintf(err, cap, "out of memory");
		rn_tls_destroy(t);
		return RN_ENOMEM;
	}
	if ((rc = build(t, &t->ctx, err, cap))) {
		rn_tls_destroy(t);
		return rc;
	}
	check_mode(t->name, "tls_key", t->key_file);
	t->st.cert_not_after = not_after(t->ctx);
	*out = t;
	return 0;
}

int rn_tls_reload(struct rn_tls *t, char *err, size_t cap)
{
	SSL_CTX *ctx;
	int rc = build(t, &ctx, err, cap);
	if (rc) {
		t->st.reloads_err++;
		return rc;
	}
	check_mode(t->name, "tls_key", t->key_file);
	SSL_CTX_free(t->ctx); /* connections made from it hold their own references */
	t->ctx = ctx;
	t->st.cert_not_after = not_after(ctx);
	t->st.reloads_ok++;
	return 0;
}

void rn_tls_destroy(struct rn_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	rn_free(t->cert_file);
	rn_free(t->key_file);
	rn_free(t->client_ca_file);
	rn_free(t->alpn);
	rn_free(t->name);
	rn_free(t);
}

struct ssl_st *rn_tls_ssl_new(struct rn_tls *t)
{
	SSL *ssl = SSL_new(t->ctx);
	if (!ssl)
		ERR_clear_error();
	return ssl;
}

int rn_tls_handshake_done(struct ssl_st *ssl)
{
	return SSL_is_init_finished(ssl) ? 1 : 0;
}

int rn_tls_alpn_ok(const struct rn_tls *t, struct ssl_st *ssl)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;
	SSL_get0_alpn_selected(ssl, &p, &n);
	if (strcmp(t->alpn, "h2"))
		return 1; /* the HTTP port: HTTP/1.1 with or without ALPN */
	return n == 2 && !memcmp(p, "h2", 2);
}

/* Copies the first subjectAltName of type `type` that fits and has no NUL. */
static int san_of(GENERAL_NAMES *names, int type, char *buf, size_t cap)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const ASN1_IA5STRING *s;
		if (g->type != type)
			continue;
		s = type == GEN_URI ? g->d.uniformResourceIdentifier : g->d.dNSName;
		if (!s || s->length <= 0 || (size_t)s->length >= cap ||
		    memchr(s->data, 0, (size_t)s->length))
			return 0; /* the first of its type decides: never fall to a later one */
		memcpy(buf, s->data, (size_t)s->length);
		buf[s->length] = 0;
		return 1;
	}
	return 0;
}

int rn_tls_peer_identity(struct ssl_st *ssl, char *buf, size_t cap)
{
	X509 *x;
	GENERAL_NAMES *names;
	int ok = 0;
	if (cap)
		buf[0] = 0;
	if (!cap || !(x = SSL_get0_peer_certificate(ssl)) ||
	    SSL_get_verify_result(ssl) != X509_V_OK)
		return 0;
	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (names) {
		ok = san_of(names, GEN_URI, buf, cap) || san_of(names, GEN_DNS, buf, cap);
		GENERAL_NAMES_free(names);
	}
	if (!ok && cap)
		buf[0] = 0;
	return ok;
}

enum rn_tls_reason rn_tls_classify(struct ssl_st *ssl, unsigned long e, char *buf, size_t cap)
{
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	int r = ERR_GET_REASON(e);
	enum rn_tls_reason why = RN_TLS_FAIL_OTHER;
	if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
		switch (r) {
		case SSL_R_HTTP_REQUEST:
		case SSL_R_HTTPS_PROXY_REQUEST:
		case SSL_R_WRONG_VERSION_NUMBER:
		case SSL_R_UNKNOWN_PROTOCOL:
		case SSL_R_PACKET_LENGTH_TOO_LONG:
		case SSL_R_RECORD_LENGTH_MISMATCH: why = RN_TLS_FAIL_CLEARTEXT; break;
		case SSL_R_NO_APPLICATION_PROTOCOL: why = RN_TLS_FAIL_NO_H2; break;
		case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		case SSL_R_CERTIFICATE_VERIFY_FAILED:
		case SSL_R_NO_CERTIFICATES_RETURNED:
		case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		case SSL_R_TLSV1_ALERT_UNKNOWN_CA: why = RN_TLS_FAIL_BAD_CERT; break;
		default: break;
		}
	}
	if (cap) {
		char what[200];
		if (e)
			ERR_error_string_n(e, what, sizeof(what));
		else
			snprintf(what, sizeof(what), "connection closed during the handshake");
		if (v != X509_V_OK) {
			snprintf(buf, cap, "%s (client certificate: %s)", what,
				 X509_verify_cert_error_string(v));
			why = RN_TLS_FAIL_BAD_CERT;
		} else {
			snprintf(buf, cap, "%s", what);
		}
	}
	return why;
}

void rn_tls_stats(const struct rn_tls *t, struct rn_tls_stats *st)
{
	*st = t->st;
}
