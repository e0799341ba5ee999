/*
 * listensock: the listening sockets of the gRPC front and the HTTP port, made by hand so both
 * bind the same way: SO_REUSEADDR, non-blocking, close-on-exec, and IPV6_V6ONLY on an IPv6
 * socket before bind, so "[::]:7700" and "0.0.0.0:7700" are two listeners on one port (and
 * [::] never takes IPv4 silently, which libevent's own evhttp_bind_socket would). It does
 * not accept: the callers hand the descriptors to libevent, which owns them from then on.
 */
#ifndef RN_LISTENSOCK_H
#define RN_LISTENSOCK_H

#include <stddef.h>

struct rn_hostport;

/*
 * Binds and listens on each of hp[0..n) (IP literals, rn_addr.h) with a backlog of `backlog`,
 * filling fds[i] and ports[i] (the bound port). Every address given port 0 gets the port the
 * first of them got, so "127.0.0.1:0, [::1]:0" serves one port on both; when that port is
 * taken on a later address, everything is closed and tried again with a new port (a few
 * times). 0, or RN_EIO with "cannot listen on ADDR: reason" in err and nothing left open.
 */
int rn_listensock_open(const struct rn_hostport *hp, size_t n, int backlog, int *fds, int *ports,
		       char *err, size_t cap);

#endif
