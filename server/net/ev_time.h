/* ev_time: the server's libevent calls that take a struct timeval, given milliseconds.
 *
 * On 32-bit targets the server is built with 64-bit time_t (_TIME_BITS=64) while Debian 12's
 * libevent there has a 32-bit one, so a struct timeval must never cross into libevent from
 * the rest of the server: ev_time.c alone builds them, compiled without _TIME_BITS=64
 * (server/CMakeLists.txt), i.e. with the library's own layout. Everywhere else the layouts
 * are the same and this is a thin wrapper. */
#ifndef RN_EV_TIME_H
#define RN_EV_TIME_H

#include <stdint.h>

struct event;
struct event_base;

/* event_add(ev) with a timeout of ms milliseconds (>= 0); libevent's result: 0 or -1. */
int rn_ev_add_ms(struct event *ev, int64_t ms);

/* event_base_loopexit(base) after ms milliseconds (>= 0); libevent's result: 0 or -1. */
int rn_ev_loopexit_ms(struct event_base *base, int64_t ms);

#endif
