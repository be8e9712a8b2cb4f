/*
 * retry.c — the retry rules of a client call (see retry.h).
 */
#include "net/retry.h"

#include "net/wire.h"
#include "raftkv/byte.h"

net_retry_step net_retry_answer(uint8_t status, int i, int hint, int n, bool registering)
{
    net_retry_step st = {.act = NET_RETRY_DONE, .rc = NET_OK, .node = hint >= 0 ? hint : i};
    switch (status) {
    case NET_ST_OK: return st;
    case NET_ST_BAD_REQUEST:
        st.rc = NET_EBADREQ;
        st.node = -1;
        return st;
    case NET_ST_SESSION_EXPIRED: st.rc = registering ? NET_EUNAVAIL : NET_ESESSION; return st;
    default:
        /* NOT_LEADER, UNAVAILABLE, SHUTTING_DOWN: the same ids, another
         * node (the hinted leader, else the next one). */
        st.node = hint >= 0 && hint != i ? hint : net_retry_next(i, n);
        st.act = status == NET_ST_NOT_LEADER ? NET_RETRY_NOW : NET_RETRY_PAUSE;
        return st;
    }
}

int net_retry_cap_ms(uint64_t now, uint64_t deadline, int ms)
{
    if (now >= deadline)
        return 0;
    return deadline - now < (uint64_t)ms ? (int)(deadline - now) : ms;
}

uint64_t net_retry_session_id(const uint8_t *reply, size_t len)
{
    return reply && len == 8 ? byte_get64(reply) : 0;
}
