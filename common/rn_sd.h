/*
 * systemd service notifications (the sd_notify protocol, without libsystemd): READY,
 * RELOADING, STOPPING, STATUS and the watchdog. Where the program is not started by systemd
 * (NOTIFY_SOCKET unset) every call is a no-op that returns 0, so the daemons work the same
 * with any supervisor or none.
 */
#ifndef RN_SD_H
#define RN_SD_H

#include <stdint.h>

/* Sends one datagram of "KEY=VALUE\n..." lines to $NOTIFY_SOCKET (a path, or "@name" in the
 * abstract namespace). 0 when sent or when there is no socket; RN_EIO when sending failed
 * (logged once by the caller if it cares: a lost notification is not fatal). */
int rn_sd_notify(const char *state);

/* "RELOADING=1" with MONOTONIC_USEC (what systemd's reload protocol wants); then the caller
 * sends "READY=1" when the new config is in force, whether it was accepted or refused. */
int rn_sd_notify_reloading(void);

/* The watchdog interval systemd asked for (WATCHDOG_USEC, when WATCHDOG_PID is unset or is
 * this process), in microseconds; 0 when there is none. Ping with "WATCHDOG=1" at least twice
 * per interval, from the loop that must be alive. */
int64_t rn_sd_watchdog_us(void);

#endif
