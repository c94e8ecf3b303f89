/*
 * splice.h -- relay two connected sockets through the kernel with splice(2).
 *
 * A CONNECT tunnel that has carried enough bytes to be a bulk transfer moves
 * from libuv reads and writes to a splicer: per direction, bytes go socket ->
 * pipe -> socket without being copied to user space. The splicer watches
 * duplicates of the two descriptors with uv_poll, so the caller's uv_tcp_t
 * handles stay open (and must not read or write) until it stops the splicer.
 * An end of stream in one direction is passed on with shutdown(SHUT_WR) once
 * the pipe is empty (half-close); the splicer is done when both directions
 * have ended, or at the first error.
 */
#ifndef HAVEN_NET_SPLICE_H
#define HAVEN_NET_SPLICE_H

#include <stdint.h>
#include <uv.h>

struct splicer;

struct splice_events {
    /* Bytes moved: a_to_b and b_to_a since the last call. */
    void (*moved)(void *arg, uint64_t a_to_b, uint64_t b_to_a);
    /* Both directions ended (err 0) or one failed (a negative errno). Called once. */
    void (*done)(void *arg, int err);
    void *arg;
};

/*
 * Start relaying between the connected, non-blocking sockets fd_a and fd_b on
 * loop. Returns NULL with errno set when pipes or duplicates cannot be made;
 * the caller then keeps relaying as before. No callback runs before this returns.
 */
struct splicer *splicer_start(uv_loop_t *loop, int fd_a, int fd_b, const struct splice_events *ev);

/* Stop relaying and free the splicer (its handles close asynchronously). No callback after. */
void splicer_stop(struct splicer *s);

#endif
