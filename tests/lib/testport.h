/* Free TCP ports for unit tests that start real sockets. */
#ifndef HSTORE_TESTPORT_H
#define HSTORE_TESTPORT_H

#include <stdbool.h>

/* A port P on ip with P .. P+count-1 all free to bind right now, chosen
 * below the kernel's ephemeral range (32768 and up, where outgoing
 * connections take their ports) and away from the cluster tests' ports.
 * Starts from the pid and the clock; -1 when none was found. */
int test_free_ports(const char *ip, int count);

/* True when port on ip can be bound right now (SO_REUSEADDR, as the
 * listeners do: a port in TIME_WAIT counts as free). */
bool test_port_free(const char *ip, int port);

#endif
