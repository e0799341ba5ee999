/*
 * rn_httpget: the minimal HTTP/1.1 GET of operator commands (see httpget.h). The socket
 * part connects (non-blocking connect with poll, so the deadline holds), writes the request
 * and reads until the server closes; rn_httpget_parse, pure, makes sense of what came.
 */
#include "httpget.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rn_addr.h"
#include "rn_clock.h"
#include "rn_url.h"
#include "rn_err.h"

/* The value of header `name` in the head [p, end) (after the status line), or NULL; its
 * length in *vlen, surrounding spaces trimmed. */
static const char *header(const char *p, const char *end, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		size_t l = (size_t)(line_end - p);
		if (l && p[l - 1] == '\r')
			l--;
		if (l > nlen && p[nlen] == ':' && !strncasecmp(p, name, nlen)) {
			const char *v = p + nlen + 1, *ve = p + l;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol ? eol + 1 : end;
	}
	return NULL;
}

/* Decodes a chunked body [p, end) into body. */
static int dechunk(const char *p, const char *end, struct rn_buf *body, const char **why)
{
	for (;;) {
		unsigned long long n = 0;
		int digits = 0, d;
		while (p < end && (d = rn_hexval((unsigned char)*p)) >= 0) {
			if (n > (RN_HTTPGET_MAX_BYTES >> 4)) {
				*why = "chunk size too large";
				return RN_EPROTO;
			}
			n = n * 16 + (unsigned)d;
			p++;
			digits++;
		}
		if (!digits) {
			*why = "bad chunk size";
			return RN_EPROTO;
		}
		/* chunk extensions, then CRLF */
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol) {
			*why = "chunk size line cut short";
			return RN_EPROTO;
		}
		p = eol + 1;
		if (!n)
			return 0; /* trailers, if any, are not needed */
		if ((size_t)(end - p) < n + 2 || p[n] != '\r' || p[n + 1] != '\n') {
			*why = "chunk cut short";
			return RN_EPROTO;
		}
		if (rn_buf_append(body, p, (size_t)n))
			return RN_ENOMEM;
		p += n + 2;
	}
}

int rn_httpget_parse(const char *raw, size_t len, int *status, struct rn_buf *body,
		     const char **why)
{
	const char *end = raw + len, *head_end = NULL, *v;
	size_t vlen;
	int st = 0;
	for (size_t i = 0; i + 3 < len; i++)
		if (!memcmp(raw + i, "\r\n\r\n", 4)) {
			head_end = raw + i + 2; /* the last header line's CRLF stays in the head */
			break;
		}
	if (!head_end) {
		*why = "the answer ended inside its headers";
		return RN_EPROTO;
	}
	if (len < 12 || memcmp(raw, "HTTP/1.", 7) || raw[8] != ' ') {
		*why = "not an HTTP/1.x answer";
		return RN_EPROTO;
	}
	for (int i = 9; i < 12; i++) {
		if (raw[i] < '0' || raw[i] > '9') {
			*why = "bad status code";
			return RN_EPROTO;
		}
		st = st * 10 + (raw[i] - '0');
	}
	const char *hdrs = memchr(raw, '\n', (size_t)(head_end - raw));
	hdrs = hdrs ? hdrs + 1 : head_end;
	const char *b = head_end + 2;
	*status = st;
	if ((v = header(hdrs, head_end, "Transfer-Encoding", &vlen)) && vlen >= 7 &&
	    !strncasecmp(v + vlen - 7, "chunked", 7))
		return dechunk(b, end, body, why);
	if ((v = header(hdrs, head_end, "Content-Length", &vlen))) {
		unsigned long long n = 0;
		if (!vlen || vlen > 12) {
			*why = "bad Content-Length";
			return RN_EPROTO;
		}
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9') {
				*why = "bad Content-Length";
				return RN_EPROTO;
			}
			n = n * 10 + (unsigned)(v[i] - '0');
		}
		if ((size_t)(end - b) < n) {
			*why = "the body is shorter than its Content-Length";
			return RN_EPROTO;
		}
		return rn_buf_append(body, b, (size_t)n) ? RN_ENOMEM : 0;
	}
	return rn_buf_append(body, b, (size_t)(end - b)) ? RN_ENOMEM : 0;
}

/* Milliseconds left until deadline_us (monotonic), at least 0. */
static int left_ms(int64_t deadline_us)
{
	int64_t l = (deadline_us - rn_mono_us()) / 1000;
	return l < 0 ? 0 : l > 1000000 ? 1000000 : (int)l;
}

/* A connected socket to hp, or -1 with err filled. */
static int dial(const struct rn_hostport *hp, int64_t deadline_us, char *err, size_t cap, int *rc)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	char port[8];
	int fd = -1, gai, last = 0;
	snprintf(port, sizeof(port), "%d", hp->port);
	if ((gai = getaddrinfo(hp->host, port, &hints, &res))) {
		snprintf(err, cap, "cannot resolve %s: %s", hp->host, gai_strerror(gai));
		*rc = RN_ECONNECT;
		return -1;
	}
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    a->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (!connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		if (errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int n = poll(&p, 1, left_ms(deadline_us));
			socklen_t sl = sizeof(last);
			if (n == 1 && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &sl) && !last)
				break;
			if (n == 0)
				last = ETIMEDOUT;
		} else {
			last = errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, cap, "cannot connect to %s port %d: %s", hp->host, hp->port,
			 strerror(last ? last : ECONNREFUSED));
		*rc = RN_ECONNECT;
	}
	return fd;
}

int rn_httpget(const char *base, const char *target, const char *bearer, int timeout_ms,
	       int *status, struct rn_buf *body, char *err, size_t cap)
{
	struct rn_url u;
	const char *why = NULL;
	struct rn_buf req = {0}, raw = {.max = RN_HTTPGET_MAX_BYTES};
	int64_t deadline = rn_mono_us() + (int64_t)timeout_ms * 1000;
	int fd = -1, rc = 0;
	if (rn_addr_parse_url(base, &u, &why)) {
		snprintf(err, cap, "%s: %s", base, why);
		return RN_EINVAL;
	}
	if (u.tls) {
		snprintf(err, cap,
			 "%s: https is not supported by this command; use the "
			 "cleartext metrics_listen port (a loopback address) or curl",
			 base);
		return RN_EINVAL;
	}
	if (base[u.path_off] && strcmp(base + u.path_off, "/")) {
		snprintf(err, cap, "%s: give the server's base URL, without a path", base);
		return RN_EINVAL;
	}
	if (rn_buf_printf(&req, "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\n", target,
			  u.hp.family == 6 ? "[" : "", u.hp.host, u.hp.family == 6 ? "]" : "",
			  u.hp.port) < 0 ||
	    (bearer && rn_buf_printf(&req, "Authorization: Bearer %s\r\n", bearer) < 0) ||
	    rn_buf_printf(&req, "Accept: application/json\r\nUser-Agent: runnel-server-fleet"
				"\r\nConnection: close\r\n\r\n") < 0) {
		rc = RN_ENOMEM;
		goto out;
	}
	if ((fd = dial(&u.hp, deadline, err, cap, &rc)) < 0)
		goto out;
	for (size_t off = 0; off < req.len;) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		ssize_t n;
		if (poll(&p, 1, left_ms(deadline)) != 1) {
			snprintf(err, cap, "%s: timed out sending the request", base);
			rc = RN_EIO;
			goto out;
		}
		n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(err, cap, "%s: sending the request: %s", base, strerror(errno));
			rc = RN_EIO;
			goto out;
		}
		if (n > 0)
			off += (size_t)n;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char chunk[16384];
		ssize_t n;
		if (poll(&p, 1, left_ms(deadline)) != 1) {
			snprintf(err, cap, "%s: no complete answer within %d ms", base, timeout_ms);
			rc = RN_EIO;
			goto out;
		}
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			snprintf(err, cap, "%s: reading the answer: %s", base, strerror(errno));
			rc = RN_EIO;
			goto out;
		}
		if (rn_buf_append(&raw, chunk, (size_t)n)) {
			snprintf(err, cap, "%s: the answer is larger than %u bytes", base,
				 RN_HTTPGET_MAX_BYTES);
			rc = RN_ENOMEM;
			goto out;
		}
	}
	if ((rc = rn_httpget_parse((const char *)raw.data, raw.len, status, body, &why)))
		snprintf(err, cap, "%s: %s", base, rc == RN_ENOMEM ? "out of memory" : why);
out:
	if (fd >= 0)
		close(fd);
	rn_buf_free(&req);
	rn_buf_free(&raw);
	return rc;
}
