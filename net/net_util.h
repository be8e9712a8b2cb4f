/*
 * net_util.h — small helpers every net/ file (and the layers above) share:
 * the clock, error messages into a caller's buffer, and random ids.
 *
 * It includes nothing of net/, so any net/ file may include it without
 * making two files depend on each other.
 */
#ifndef HSTORE_NET_UTIL_H
#define HSTORE_NET_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: the clock of every net/ deadline (and
 * the one to pass to net_transport_tick). */
uint64_t net_now_ms(void);

/* Writes a printf-style message into err[errlen] (nothing when err is NULL
 * or errlen 0): how every net/ call that takes err reports. */
void net_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new random, non-zero 64-bit number (getrandom; a clock-based fallback):
 * the one generator of client ids, session-registration nonces and upload
 * ids.  Ids must not collide across processes and restarts: the state
 * machine's session table is keyed by them. */
uint64_t net_random_id(void);

#endif
