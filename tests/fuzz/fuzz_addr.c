/*
 * Fuzz target: arbitrary text through rn_addr_parse_hostport (every flag combination),
 * rn_addr_parse_listen_list and rn_addr_parse_url. Must never crash or read out of bounds; on
 * success the host is NUL-terminated and non-empty, the port in range, the URL's path offset inside
 * the text, and rn_addr_is_loopback is only ever true for an IP literal.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct rn_hostport hp;
	struct rn_url u;
	const char *why;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	for (unsigned flags = 0; flags < 4; flags++) {
		if (rn_addr_parse_hostport(text, flags, &hp, &why) == 0) {
			if (!hp.host[0] || strlen(hp.host) >= sizeof(hp.host) || hp.port < 0 ||
			    hp.port > 65535 || (hp.port == 0 && !(flags & RN_ADDR_PORT_ZERO)) ||
			    ((flags & RN_ADDR_NUMERIC) && hp.family == 0))
				abort();
			/* loopback is an IP literal's property: never a name's */
			if (rn_addr_is_loopback(&hp) && hp.family == 0)
				abort();
		} else if (!why) {
			abort();
		}
	}
	struct rn_hostport list[RN_ADDR_LIST_MAX];
	size_t n, at;
	if (rn_addr_parse_listen_list(text, list, RN_ADDR_LIST_MAX, &n, &at, &why) == 0) {
		if (!n || n > RN_ADDR_LIST_MAX || at)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!list[i].host[0] || list[i].family == 0 || list[i].port > 65535)
				abort();
	} else if (!why || at > size) {
		abort();
	}
	if (rn_addr_parse_url(text, &u, &why) == 0) {
		if (!u.hp.host[0] || u.hp.port < 1 || u.hp.port > 65535 ||
		    u.path_off > strlen(text))
			abort();
	} else if (!why) {
		abort();
	}
	free(text);
	return 0;
}
