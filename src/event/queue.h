/*
 * queue.h -- a bounded multi-producer, single-consumer queue of byte records.
 *
 * The event loops hand work to background threads through these queues
 * (STYLE.md rule 14): a producer copies a record in and goes on, and never
 * waits for the consumer. A full queue refuses the record (queue_push returns
 * -1) and the producer decides what that means (the access log counts a drop).
 *
 * Records are variable-length byte strings, each at most max_item bytes, kept
 * in one ring allocated at creation; nothing is allocated per record. The
 * queue is bounded twice: at most max_count records, and at most `bytes` of
 * ring (each record takes its length rounded up to 8, plus an 8-byte header,
 * and wrapping at the end of the ring may waste up to one record's worth).
 * The ring is never smaller than one largest record, so an empty queue always
 * accepts any record of at most max_item bytes.
 *
 * Concurrency: any number of threads may push at once; exactly one thread
 * pops. One short mutex guards the ring (a push holds it for one memcpy of
 * the record); the consumer sleeps on a condition variable when the queue is
 * empty, and a push only signals it when it is asleep. Records come out in the
 * order their pushes took the mutex. The consumer either pops (one record,
 * copied out) or takes batches (many records, read in place); not both at
 * once.
 */
#ifndef HAVEN_EVENT_QUEUE_H
#define HAVEN_EVENT_QUEUE_H

#include <stddef.h>

struct queue;

/*
 * Make a queue for at most max_count records of at most max_item bytes each,
 * in a ring of `bytes` (raised to hold at least one max_item record). Memory
 * comes from xmalloc (aborts on failure): this is start-up. Caller frees with
 * queue_destroy.
 */
struct queue *queue_create(size_t max_count, size_t bytes, size_t max_item);

/*
 * Batch wake-ups: a push wakes a waiting consumer only once `count` records
 * are queued, or half the ring is used (default 1: every push). A consumer
 * that waits with a timeout then takes what is there when it runs out. Call
 * before the queue is shared.
 */
void queue_set_wake(struct queue *q, size_t count);

/* Wake a waiting consumer now if anything is queued, whatever queue_set_wake says: for a
 * record that must not wait for the batch (a safeguarding alert). Any thread. */
void queue_kick(struct queue *q);

/* Free the queue. No thread may be using it. */
void queue_destroy(struct queue *q);

/*
 * Copy len bytes from item into the queue. Never blocks on the consumer.
 * Returns 0, or -1 when the queue is full (by count or by bytes) or len is
 * larger than max_item; nothing is queued then.
 */
int queue_push(struct queue *q, const void *item, size_t len);

/*
 * Take the oldest record: copy it to out (room for max_item bytes) and its
 * length to *len, and return 0. When the queue is empty, wait for a record up
 * to timeout_ms milliseconds (0: do not wait); return -1 if none came, or as
 * soon as queue_wake is called. Only one thread may pop.
 */
int queue_pop(struct queue *q, void *out, size_t *len, int timeout_ms);

/*
 * Batches: the consumer's fast path. queue_take claims up to max of the
 * oldest records under one lock; queue_next then hands them out one by one
 * in place (no copy, no lock); queue_done gives their space back. Between
 * take and done the records stay put: producers never write over them.
 */
struct queue_batch {
    size_t pos;   /* ring offset of the next record */
    size_t left;  /* records claimed and not yet handed out */
    size_t taken; /* records claimed */
    size_t bytes; /* ring bytes handed out so far, waste included */
};

/*
 * Claim up to max records (max >= 1). Returns 0 with at least one claimed,
 * or -1 as queue_pop does when none came within timeout_ms or on queue_wake.
 * Every successful take must be followed by queue_done.
 */
int queue_take(struct queue *q, struct queue_batch *b, size_t max, int timeout_ms);

/*
 * The next claimed record: *item points into the ring (valid until
 * queue_done), *len is its length. Returns 0, or -1 when the batch is used up.
 */
int queue_next(struct queue *q, struct queue_batch *b, const void **item, size_t *len);

/* Release the records handed out by queue_next, making room for producers. */
void queue_done(struct queue *q, struct queue_batch *b);

/*
 * Make the consumer's current or next wait in queue_pop return -1 at once, so
 * it can look at other requests (close, rotate). Any thread may call it.
 */
void queue_wake(struct queue *q);

/* Records queued now (a snapshot; for statistics and tests). */
size_t queue_count(struct queue *q);

#endif
