/*
 * Network addresses and URLs from configs and command lines, checked before anything binds or
 * dials: "host:port" (listen addresses) and "http(s)://host[:port][/path]" (the uplink URL).
 * Pure functions over the text: no name resolution, no sockets, no allocation; the results
 * are copies in caller structs. The same checks run in `-n` (through the config loader's
 * RN_CONF_LISTEN and RN_CONF_URL rows) and at start, so a config that passes `-n` binds or
 * dials exactly what it says. Fuzzed by tests/fuzz/fuzz_addr.c.
 */
#ifndef RN_ADDR_H
#define RN_ADDR_H

#include <stddef.h>

#define RN_ADDR_HOST_CAP 256 /* host text, NUL included (a DNS name is at most 253) */

/* Flags for rn_addr_parse_hostport. */
#define RN_ADDR_PORT_ZERO 1u /* port 0 is allowed (a listen address: any free port) */
#define RN_ADDR_NUMERIC 2u   /* the host must be an IPv4 literal or a bracketed IPv6 literal */

/* One host and port. */
struct rn_hostport {
	char host[RN_ADDR_HOST_CAP]; /* IPv6 without its brackets; never empty when parsed */
	int port;                    /* 0..65535 (0 only with RN_ADDR_PORT_ZERO) */
	int family;                  /* 4 or 6 for IP literals, 0 for a name */
};

/*
 * Parses "host:port": host an IPv4 literal, a DNS name (letters, digits, '-', '_', dots; no
 * empty label) or an IPv6 literal in brackets ("[::1]:7700"); port decimal digits only, 1 to
 * 65535 (0 too with RN_ADDR_PORT_ZERO). An IPv6 address without brackets, an empty host or
 * port, a sign, spaces or anything after the port are refused. 0 with out filled, or
 * RN_EINVAL with *why set to a static English reason (out then unspecified). s may be NULL
 * (RN_EINVAL).
 */
int rn_addr_parse_hostport(const char *s, unsigned flags, struct rn_hostport *out,
			   const char **why);

/* The most addresses one listen setting takes (rn_addr_parse_listen_list). */
#define RN_ADDR_LIST_MAX 8

/*
 * Parses a listen setting that may name several addresses: "ip:port" items separated by
 * commas (spaces around an item are ignored), each as rn_addr_parse_hostport with
 * RN_ADDR_PORT_ZERO | RN_ADDR_NUMERIC (an IPv4 literal or a bracketed IPv6 one). At most cap
 * (and RN_ADDR_LIST_MAX) items; an empty item, or the same address and port given twice
 * (port 0 included), is refused. 0 with out[0..*n) filled, or RN_EINVAL with *why a static
 * reason and, when one item is at fault, *bad_at its offset in s (else 0). Pure.
 */
int rn_addr_parse_listen_list(const char *s, struct rn_hostport *out, size_t cap, size_t *n,
			      size_t *bad_at, const char **why);

/* 1 when hp's host is a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z), 0 for
 * anything else (a name, 0.0.0.0, [::], any other address). Pure. */
int rn_addr_is_loopback(const struct rn_hostport *hp);

/* An uplink URL. */
struct rn_url {
	int tls;               /* https:// (else http://, HTTP/2 without TLS) */
	struct rn_hostport hp; /* port 80/443 when the URL gives none */
	int port_given;        /* the URL names its port */
	size_t path_off;       /* offset of the path ("" or "/...") in the parsed text */
};

/*
 * Parses "http://host[:port][/path]" or "https://..." (scheme case-insensitive): a host as
 * rn_addr_parse_hostport (names allowed, IPv6 in brackets), an optional port 1..65535, and an
 * optional path prefix. Refused: other schemes, no host, an empty or out-of-range port,
 * user:password@ (the token is a setting of its own), a query or fragment, spaces and
 * control characters. 0 or RN_EINVAL with *why a static reason.
 */
int rn_addr_parse_url(const char *s, struct rn_url *out, const char **why);

#endif
