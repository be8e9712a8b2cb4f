/*
 * kv_session.c — exactly-once client sessions (kv.h "Sessions"): the table
 * by client id, the list in expiry (least recently used) order, REGISTER,
 * the session step of kv_apply and kv_session_lookup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/byte.h"
#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

kv_session *sess_get(const kv *k, uint64_t client)
{
    if (!k->scap)
        return NULL;
    uint64_t m = k->scap - 1;
    for (uint64_t i = mix64(client) & m;; i = (i + 1) & m) {
        kv_session *s = k->stab[i];
        if (!s)
            return NULL;
        if (s->client == client)
            return s;
    }
}

int sess_tab_put(kv *k, kv_session *s)
{
    if ((k->scount + 1) * 2 > k->scap) {
        uint64_t nc = k->scap ? k->scap * 2 : 64;
        kv_session **nt = calloc(nc, sizeof *nt);
        if (!nt)
            return -1;
        for (uint64_t i = 0; i < k->scap; i++) {
            kv_session *x = k->stab[i];
            if (!x)
                continue;
            uint64_t j = mix64(x->client) & (nc - 1);
            while (nt[j])
                j = (j + 1) & (nc - 1);
            nt[j] = x;
        }
        free(k->stab);
        k->stab = nt;
        k->scap = nc;
    }
    uint64_t m = k->scap - 1;
    uint64_t i = mix64(s->client) & m;
    while (k->stab[i]) {
        if (k->stab[i]->client == s->client)
            return 1;
        i = (i + 1) & m;
    }
    k->stab[i] = s;
    k->scount++;
    return 0;
}

void sess_list_unlink(kv *k, kv_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        k->shead = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        k->stail = s->prev;
    s->prev = s->next = NULL;
}

void sess_list_append(kv *k, kv_session *s)
{
    s->prev = k->stail;
    s->next = NULL;
    if (k->stail)
        k->stail->next = s;
    else
        k->shead = s;
    k->stail = s;
}

static void sess_drop(kv *k, kv_session *s)
{
    uint64_t m = k->scap - 1;
    uint64_t i = mix64(s->client) & m;
    while (k->stab[i] != s)
        i = (i + 1) & m;
    k->stab[i] = NULL;
    k->scount--;
    for (uint64_t j = (i + 1) & m; k->stab[j]; j = (j + 1) & m) {
        uint64_t h = mix64(k->stab[j]->client) & m;
        bool in = (i <= j) ? (h > i && h <= j) : (h > i || h <= j);
        if (!in) {
            k->stab[i] = k->stab[j];
            k->stab[j] = NULL;
            i = j;
        }
    }
    sess_list_unlink(k, s);
    free(s->reply);
    free(s);
}

void sess_expire(kv *k)
{
    while (k->shead && (uint64_t)(k->sclock - k->shead->last_time) > KV_SESSION_TTL_NS)
        sess_drop(k, k->shead);
    while (k->scount > KV_SESSION_MAX)
        sess_drop(k, k->shead);
}

/* Records reply as client's last; 0 or -1 (ENOMEM). */
int sess_record(kv *k, uint64_t client, uint64_t seq, const uint8_t *reply, size_t len)
{
    kv_session *s = sess_get(k, client);
    uint8_t *copy = NULL;
    if (len <= KV_SESSION_REPLY_MAX) {
        copy = malloc(len ? len : 1);
        if (!copy)
            return -1;
        memcpy(copy, reply, len);
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            free(copy);
            return -1;
        }
        s->client = client;
        if (sess_tab_put(k, s) != 0) {
            free(s);
            free(copy);
            return -1;
        }
    } else {
        sess_list_unlink(k, s);
        free(s->reply);
    }
    s->seq = seq;
    s->reply = copy;
    s->reply_len = copy ? (uint32_t)len : 0;
    s->last_time = k->sclock;
    sess_list_append(k, s);
    sess_expire(k);
    return 0;
}

int sess_reply(const kv_session *s, uint8_t **out, size_t *len)
{
    if (!s->reply)
        return kv_reply_encode_status(KV_EREPLYGONE, out, len);
    *out = malloc(s->reply_len ? s->reply_len : 1);
    if (!*out)
        return -1;
    memcpy(*out, s->reply, s->reply_len);
    *len = s->reply_len;
    return 0;
}

int kv_session_lookup(const kv *k, uint64_t client_id, uint64_t seq, uint8_t **reply,
                      size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    if (!client_id || !seq)
        return KV_SESSION_NEW; /* seq 0: a REGISTER */
    const kv_session *s = sess_get(k, client_id);
    if (!s || seq > s->seq)
        return KV_SESSION_NEW;
    if (seq == s->seq)
        return sess_reply(s, reply, reply_len) == 0 ? KV_SESSION_APPLIED : -1;
    return kv_reply_encode_status(KV_ESTALE, reply, reply_len) == 0 ? KV_SESSION_STALE : -1;
}

/* The session step of kv_apply for a command of client (non-zero): true
 * when the command is answered without being applied (*rc is then
 * kv_apply's result): its session is unknown (KV_ESESSION), it is the
 * session's last command again (the stored reply) or an older one
 * (KV_ESTALE).  False: apply it, then sess_record its reply. */
bool sess_answer(kv *k, uint64_t client, uint64_t seq, uint8_t **reply, size_t *reply_len, int *rc)
{
    kv_session *s = sess_get(k, client);
    if (!s) {
        /* Expired, evicted or never registered: not applied, so a retry
         * of a command applied before its session went cannot apply
         * twice. */
        *rc = kv_reply_encode_status(KV_ESESSION, reply, reply_len) == 0 ? 0 : -1;
        return true;
    }
    if (seq == s->seq) {
        sess_list_unlink(k, s);
        s->last_time = k->sclock;
        sess_list_append(k, s);
        *rc = sess_reply(s, reply, reply_len);
        return true;
    }
    if (seq < s->seq) {
        *rc = kv_reply_encode_status(KV_ESTALE, reply, reply_len);
        return true;
    }
    return false;
}

/* REGISTER: a new session named by this entry's index (unique, never
 * reused), with seq 0 and no reply yet. */
int apply_register(kv *k, uint64_t index, uint8_t **reply, size_t *reply_len)
{
    kv_session *old = sess_get(k, index); /* only an id from an older format */
    if (old)
        sess_drop(k, old);
    kv_session *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->client = index;
    s->last_time = k->sclock;
    if (sess_tab_put(k, s) != 0) {
        free(s);
        return -1;
    }
    sess_list_append(k, s);
    sess_expire(k);
    uint8_t id[8];
    byte_put64(id, index);
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.has = KV_R_DATA;
    r.data = id;
    r.data_len = 8;
    return kv_reply_encode(&r, reply, reply_len);
}
