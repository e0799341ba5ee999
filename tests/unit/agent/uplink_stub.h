/* State of the fake uplink (uplink_stub.c) that test_agent inspects and steers. */
#ifndef RN_UPLINK_STUB_H
#define RN_UPLINK_STUB_H

#include <stddef.h>
#include <stdint.h>

#define STUB_MAX_STREAMS 8
#define STUB_MAX_RECORDS 200000

struct stub_state {
	int online; /* deliver and ack on step */
	int hold;   /* play a server with committed acks whose table has the stream
		       only up to release_upto: chunks past it are acked, not released */
	int64_t release_upto;
	volatile int *stop; /* set to 1 after stop_after calls of wait() */
	int stop_after, waits;
	int min_timeout, max_timeout; /* of the waits since the test last reset them */
	int added;                    /* streams registered */
	size_t descriptor_len;
	uint64_t chunks; /* chunks delivered */
	int errors;      /* a callback failed or a chunk did not decode */
	/* health reports: the fake server takes them (health_takes); a call just opened wants
	 * one (health_fresh, cleared by the next send); reports taken and the last one */
	int health_takes, health_fresh;
	int health_reports;
	int health_last_all; /* the last report went to every call (interval, change) */
	char health_last[16385];
	size_t nrec;
	int rec_stream[STUB_MAX_RECORDS];
	uint64_t rec_seq[STUB_MAX_RECORDS];
};

extern struct stub_state stub;

#endif
