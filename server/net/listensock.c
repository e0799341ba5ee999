/*
 * listensock (see listensock.h): socket(), setsockopt(), bind() and listen() for a list of
 * addresses, with port 0 shared over the list. Plain POSIX; no libevent here.
 */
#include "listensock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rn_addr.h"
#include "rn_err.h"

#define PORT0_TRIES 8

/* One socket bound to host:port and listening; its fd, or -1 with errno set. */
static int open_one(const struct rn_hostport *hp, int port, int backlog, int *bound)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	int fd, on = 1, e;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, hp->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		slen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, hp->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		slen = sizeof(*sin6);
	} else {
		errno = EINVAL;
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on))) ||
	    bind(fd, (struct sockaddr *)&ss, slen) || listen(fd, backlog))
		goto fail;
	slen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &slen))
		goto fail;
	*bound = ntohs(ss.ss_family == AF_INET6 ? sin6->sin6_port : sin->sin_port);
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int rn_listensock_open(const struct rn_hostport *hp, size_t n, int backlog, int *fds, int *ports,
		       char *err, size_t cap)
{
	for (int attempt = 0;; attempt++) {
		int shared = 0; /* the port the first port-0 address got */
		size_t i;
		for (i = 0; i < n; i++) {
			int want = hp[i].port ? hp[i].port : shared;
			if ((fds[i] = open_one(&hp[i], want, backlog, &ports[i])) < 0)
				break;
			if (!hp[i].port && !shared)
				shared = ports[i];
		}
		if (i == n)
			return 0;
		int e = errno,
		    retry = !hp[i].port && shared && e == EADDRINUSE && attempt + 1 < PORT0_TRIES;
		for (size_t j = 0; j < i; j++)
			close(fds[j]);
		if (retry)
			continue;
		snprintf(err, cap, "cannot listen on %s%s%s:%d: %s", hp[i].family == 6 ? "[" : "",
			 hp[i].host, hp[i].family == 6 ? "]" : "", hp[i].port ? hp[i].port : shared,
			 strerror(e));
		return RN_EIO;
	}
}
