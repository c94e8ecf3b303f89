/*
 * queue.c -- bounded MPSC queue of byte records in one ring.
 *
 * DESIGN. The ring holds records back to back, each an 8-byte header (the
 * length) and the bytes rounded up to 8. A record never wraps: when it does
 * not fit between the write position and the end of the ring, the end is
 * marked as waste (a header holding QUEUE_WRAP) and the record goes at the
 * start. `used` counts every byte between the read and the write positions,
 * waste included, so "fits" is one comparison. When the queue empties, both
 * positions go back to 0, which keeps the ring from wasting its end in the
 * common case of a consumer that keeps up.
 *
 * One mutex rather than a lock-free ring: variable-length records make a
 * lock-free multi-producer ring subtle, and the critical section is one
 * memcpy of a few hundred bytes. The measured push rate is in
 * docs/logging.md.
 */
#include "common/compat.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "common/xalloc.h"
#include "event/queue.h"

#define QUEUE_HDR 8
#define QUEUE_WRAP UINT32_MAX
#define QUEUE_ALIGN8(n) (((n) + 7) & ~(size_t)7)

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    unsigned char *ring;
    size_t size;      /* bytes in the ring, a multiple of 8 */
    size_t max_item;  /* largest record accepted */
    size_t max_count; /* most records queued at once */
    size_t head;      /* where the next record is written; < size */
    size_t tail;      /* where the oldest record starts; < size */
    size_t used;      /* bytes from tail to head, waste included */
    size_t count;     /* records queued */
    size_t wake_at;   /* a push wakes the consumer at this many records */
    int waiting;      /* the consumer sleeps on cond */
    int woken;        /* queue_wake was called and not yet seen */
};

struct queue *queue_create(size_t max_count, size_t bytes, size_t max_item)
{
    struct queue *q = xcalloc(1, sizeof(*q));
    pthread_condattr_t attr;

    if (max_count == 0)
        max_count = 1;
    if (bytes < QUEUE_HDR + QUEUE_ALIGN8(max_item))
        bytes = QUEUE_HDR + QUEUE_ALIGN8(max_item);
    q->size = QUEUE_ALIGN8(bytes);
    q->ring = xmalloc(q->size);
    q->max_item = max_item;
    q->max_count = max_count;
    q->wake_at = 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &attr);
    pthread_condattr_destroy(&attr);
    return q;
}

void queue_set_wake(struct queue *q, size_t count)
{
    q->wake_at = count > 0 ? count : 1;
}

void queue_destroy(struct queue *q)
{
    if (!q)
        return;
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    free(q->ring);
    free(q);
}

static void queue_put_hdr(struct queue *q, size_t at, uint32_t v)
{
    memcpy(q->ring + at, &v, sizeof(v));
}

static uint32_t queue_get_hdr(const struct queue *q, size_t at)
{
    uint32_t v;

    memcpy(&v, q->ring + at, sizeof(v));
    return v;
}

int queue_push(struct queue *q, const void *item, size_t len)
{
    size_t need = QUEUE_HDR + QUEUE_ALIGN8(len), pos, total;
    int rc = -1;

    if (len > q->max_item)
        return -1;
    pthread_mutex_lock(&q->mu);
    if (q->count >= q->max_count)
        goto out;
    if (q->count == 0) {
        q->head = q->tail = q->used = 0;
    }
    pos = q->head;
    total = need;
    if (q->size - pos < need) {
        /* Waste the end (at least 8 bytes, as pos and size are multiples of 8). */
        total += q->size - pos;
        if (q->used + total > q->size)
            goto out;
        queue_put_hdr(q, pos, QUEUE_WRAP);
        pos = 0;
    } else if (q->used + total > q->size) {
        goto out;
    }
    queue_put_hdr(q, pos, (uint32_t)len);
    if (len > 0)
        memcpy(q->ring + pos + QUEUE_HDR, item, len);
    pos += need;
    q->head = pos == q->size ? 0 : pos;
    q->used += total;
    q->count++;
    if (q->waiting && (q->count >= q->wake_at || q->used >= q->size / 2))
        pthread_cond_signal(&q->cond);
    rc = 0;
out:
    pthread_mutex_unlock(&q->mu);
    return rc;
}

static void queue_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* With the mutex held: wait until a record is queued. Returns 0, or -1 on timeout or wake. */
static int queue_wait(struct queue *q, int timeout_ms)
{
    struct timespec deadline;
    int err;

    if (q->count == 0 && timeout_ms > 0)
        queue_deadline(&deadline, timeout_ms);
    while (q->count == 0) {
        if (q->woken || timeout_ms <= 0) {
            q->woken = 0;
            return -1;
        }
        q->waiting = 1;
        err = pthread_cond_timedwait(&q->cond, &q->mu, &deadline);
        q->waiting = 0;
        if (err == ETIMEDOUT && q->count == 0)
            return -1;
    }
    return 0;
}

int queue_pop(struct queue *q, void *out, size_t *len, int timeout_ms)
{
    uint32_t n;
    int rc = -1;

    pthread_mutex_lock(&q->mu);
    if (queue_wait(q, timeout_ms) < 0)
        goto out;
    n = queue_get_hdr(q, q->tail);
    if (n == QUEUE_WRAP) {
        q->used -= q->size - q->tail;
        q->tail = 0;
        n = queue_get_hdr(q, 0);
    }
    memcpy(out, q->ring + q->tail + QUEUE_HDR, n);
    *len = n;
    q->tail += QUEUE_HDR + QUEUE_ALIGN8((size_t)n);
    q->used -= QUEUE_HDR + QUEUE_ALIGN8((size_t)n);
    if (q->tail == q->size)
        q->tail = 0;
    q->count--;
    rc = 0;
out:
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int queue_take(struct queue *q, struct queue_batch *b, size_t max, int timeout_ms)
{
    int rc = -1;

    memset(b, 0, sizeof(*b));
    pthread_mutex_lock(&q->mu);
    if (queue_wait(q, timeout_ms) < 0)
        goto out;
    b->pos = q->tail;
    b->taken = b->left = q->count < max ? q->count : max;
    rc = 0;
out:
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int queue_next(struct queue *q, struct queue_batch *b, const void **item, size_t *len)
{
    uint32_t n;
    size_t need;

    if (b->left == 0)
        return -1;
    n = queue_get_hdr(q, b->pos);
    if (n == QUEUE_WRAP) {
        b->bytes += q->size - b->pos;
        b->pos = 0;
        n = queue_get_hdr(q, 0);
    }
    need = QUEUE_HDR + QUEUE_ALIGN8((size_t)n);
    *item = q->ring + b->pos + QUEUE_HDR;
    *len = n;
    b->pos += need;
    if (b->pos == q->size)
        b->pos = 0;
    b->bytes += need;
    b->left--;
    return 0;
}

void queue_done(struct queue *q, struct queue_batch *b)
{
    size_t handed = b->taken - b->left;

    if (handed == 0)
        return;
    pthread_mutex_lock(&q->mu);
    q->tail = b->pos;
    q->used -= b->bytes;
    q->count -= handed;
    pthread_mutex_unlock(&q->mu);
    b->taken = b->left = 0;
    b->bytes = 0;
}

void queue_wake(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->woken = 1;
    if (q->waiting && (q->count >= q->wake_at || q->used >= q->size / 2))
        pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

void queue_kick(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    if (q->waiting && q->count > 0)
        pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

size_t queue_count(struct queue *q)
{
    size_t n;

    pthread_mutex_lock(&q->mu);
    n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}
