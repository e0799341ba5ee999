/* See ev_time.h. No other header of the server is included: this file may be compiled with
 * another time_t than the rest. */
#include "ev_time.h"

#include <event2/event.h>
#include <sys/time.h>

static struct timeval tv_of(int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	return tv;
}

int rn_ev_add_ms(struct event *ev, int64_t ms)
{
	struct timeval tv = tv_of(ms);
	return event_add(ev, &tv);
}

int rn_ev_loopexit_ms(struct event_base *base, int64_t ms)
{
	struct timeval tv = tv_of(ms);
	return event_base_loopexit(base, &tv);
}
