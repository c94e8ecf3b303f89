/*
 * splice.c -- relay two connected sockets through the kernel with splice(2).
 *
 * DESIGN. Each direction owns a pipe. A pump moves source -> pipe only when
 * the pipe is empty (so EAGAIN from that splice means "source has nothing"),
 * then pipe -> destination until EAGAIN (destination full: wait for it to be
 * writable). Poll interest follows from that state: a socket is watched for
 * reading while its outgoing pipe is empty and its stream has not ended, and
 * for writing while its incoming pipe holds bytes. A pump does a bounded
 * amount of work per wake-up so one fast tunnel cannot starve the loop;
 * libuv's level-triggered polling calls again.
 *
 * Pipe capacity counts against the per-user pipe limit
 * (/proc/sys/fs/pipe-user-pages-soft), so pipes are sized modestly and a
 * splicer is refused, not degraded, when the kernel gives a small one.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "net/splice.h"

#define SPLICE_PIPE_SIZE (256 * 1024)
#define SPLICE_PIPE_MIN (64 * 1024)
#define SPLICE_ROUNDS 8 /* pipe fills per direction per wake-up */

struct splice_dir {
    int from, to; /* indices into splicer.fd */
    int pipe[2];
    size_t inpipe; /* bytes in the pipe */
    int eof;       /* the source has ended */
    int shut;      /* the end has been passed on */
};

struct splicer {
    uv_poll_t poll[2];
    int fd[2]; /* duplicates of the caller's descriptors */
    int events[2];
    struct splice_dir dir[2]; /* [0] a -> b, [1] b -> a */
    struct splice_events ev;
    int closing;
};

static int splice_pipe(int p[2])
{
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    (void)fcntl(p[0], F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
    if (fcntl(p[0], F_GETPIPE_SZ) < SPLICE_PIPE_MIN) {
        close(p[0]);
        close(p[1]);
        errno = ENOBUFS;
        return -1;
    }
    return 0;
}

/* Move what can be moved in direction d. Returns 0, or a negative errno. */
static int splice_pump(struct splicer *s, struct splice_dir *d, uint64_t *moved)
{
    for (int round = 0; round < SPLICE_ROUNDS;) {
        ssize_t n;

        if (d->inpipe > 0) {
            n = splice(d->pipe[0], NULL, s->fd[d->to], NULL, d->inpipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
            d->inpipe -= (size_t)n;
            *moved += (uint64_t)n;
            continue;
        }
        if (d->eof) {
            if (!d->shut) {
                d->shut = 1;
                if (shutdown(s->fd[d->to], SHUT_WR) != 0 && errno != ENOTCONN)
                    return -errno;
            }
            return 0;
        }
        n = splice(s->fd[d->from], NULL, d->pipe[1], NULL, SPLICE_PIPE_SIZE,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n == 0)
            d->eof = 1;
        else if (n < 0)
            return errno == EAGAIN ? 0 : -errno;
        else
            d->inpipe = (size_t)n;
        round++;
    }
    return 0;
}

static void splice_free(struct splicer *s)
{
    for (int i = 0; i < 2; i++) {
        if (s->fd[i] >= 0)
            close(s->fd[i]);
        for (int j = 0; j < 2; j++) {
            if (s->dir[i].pipe[j] >= 0)
                close(s->dir[i].pipe[j]);
        }
    }
    free(s);
}

static void splice_on_poll(uv_poll_t *p, int status, int events);
static void splice_on_closed(uv_handle_t *h);

/* Watch each socket for what its directions wait for. */
static void splice_watch(struct splicer *s)
{
    for (int i = 0; i < 2; i++) {
        int want = 0;
        for (int k = 0; k < 2; k++) {
            const struct splice_dir *d = &s->dir[k];
            if (d->from == i && !d->eof && d->inpipe == 0)
                want |= UV_READABLE;
            if (d->to == i && d->inpipe > 0)
                want |= UV_WRITABLE;
        }
        if (want == s->events[i])
            continue;
        s->events[i] = want;
        if (want)
            uv_poll_start(&s->poll[i], want, splice_on_poll);
        else
            uv_poll_stop(&s->poll[i]);
    }
}

static void splice_on_poll(uv_poll_t *p, int status, int events)
{
    struct splicer *s = p->data;
    uint64_t moved[2] = {0, 0};
    int err = status;

    (void)events;
    for (int k = 0; k < 2 && err == 0; k++)
        err = splice_pump(s, &s->dir[k], &moved[k]);
    if (moved[0] || moved[1])
        s->ev.moved(s->ev.arg, moved[0], moved[1]);
    if (err == 0 && !(s->dir[0].shut && s->dir[1].shut)) {
        splice_watch(s);
        return;
    }
    uv_poll_stop(&s->poll[0]);
    uv_poll_stop(&s->poll[1]);
    s->ev.done(s->ev.arg, err);
}

struct splicer *splicer_start(uv_loop_t *loop, int fd_a, int fd_b, const struct splice_events *ev)
{
    struct splicer *s = xcalloc(1, sizeof(*s));
    int made = 0, saved;

    s->ev = *ev;
    s->dir[0] = (struct splice_dir){.from = 0, .to = 1, .pipe = {-1, -1}};
    s->dir[1] = (struct splice_dir){.from = 1, .to = 0, .pipe = {-1, -1}};
    s->fd[0] = fcntl(fd_a, F_DUPFD_CLOEXEC, 0);
    s->fd[1] = fcntl(fd_b, F_DUPFD_CLOEXEC, 0);
    if (s->fd[0] < 0 || s->fd[1] < 0 || splice_pipe(s->dir[0].pipe) != 0 ||
        splice_pipe(s->dir[1].pipe) != 0)
        goto fail;
    for (; made < 2; made++) {
        if (uv_poll_init_socket(loop, &s->poll[made], s->fd[made]) != 0)
            goto fail;
        s->poll[made].data = s;
    }
    splice_watch(s);
    return s;
fail:
    saved = errno;
    if (made > 0) {
        /* The handle made must close through the loop; its callback frees the rest. */
        s->closing = 1;
        uv_close((uv_handle_t *)&s->poll[0], splice_on_closed);
    } else {
        splice_free(s);
    }
    errno = saved;
    return NULL;
}

static void splice_on_closed(uv_handle_t *h)
{
    struct splicer *s = h->data;

    if (--s->closing == 0)
        splice_free(s);
}

void splicer_stop(struct splicer *s)
{
    s->closing = 2;
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&s->poll[i], splice_on_closed);
}
