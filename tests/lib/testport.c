#include "tests/lib/testport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

bool test_port_free(const char *ip, int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return false;
    int one = 1; /* as the listeners do: a port in TIME_WAIT counts as free */
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    bool ok =
        inet_pton(AF_INET, ip, &a.sin_addr) == 1 && bind(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

int test_free_ports(const char *ip, int count)
{
    enum { LO = 20000, SPAN = 12000 };
    static unsigned salt;
    unsigned x = (unsigned)getpid() * 7919u + (unsigned)time(NULL) + salt++ * 104729u;
    for (int tries = 0; tries < 2000; tries++) {
        int p =
            LO + (int)((x + (unsigned)tries * 37u * (unsigned)count) % (unsigned)(SPAN - count));
        bool ok = true;
        for (int i = 0; i < count && ok; i++)
            ok = test_port_free(ip, p + i);
        if (ok)
            return p;
    }
    return -1;
}
