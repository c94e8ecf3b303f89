/*
 * bench_relay.c -- a plain TCP relay, the yardstick for haven's CONNECT tunnel.
 *
 *     bench_relay LISTEN TARGET rw|splice
 *
 * Accepts connections on LISTEN (IPv4 HOST:PORT) one after the other, connects
 * each to TARGET and copies bytes both ways until both directions have ended,
 * passing a half-close on. One thread, non-blocking sockets and poll(), one
 * connection at a time (the benchmark uses one). "rw" copies with read() and
 * write() through a 64 KiB buffer per direction, as haven's tunnel does (its
 * read size is 64 KiB); "splice" moves the bytes through a 1 MiB pipe per
 * direction with splice(), without copying them to user space.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_BUF (64 * 1024)
#define RELAY_PIPE (1024 * 1024)

struct dir {
    int from, to;
    int use_splice;
    char buf[RELAY_BUF];
    size_t len, off; /* rw: bytes in buf, of which off are written */
    int pipe[2];
    size_t inpipe; /* splice: bytes in the pipe */
    int eof, shut, failed;
};

static void relay_die(const char *what)
{
    fprintf(stderr, "bench_relay: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int relay_parse_addr(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    char *end;
    long port;

    if (!colon || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port <= 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static size_t relay_pending(const struct dir *d)
{
    return d->use_splice ? d->inpipe : d->len - d->off;
}

/* Move what can be moved now without blocking. */
static void relay_step(struct dir *d)
{
    for (;;) {
        ssize_t n;

        if (relay_pending(d) == 0 && !d->eof) {
            if (d->use_splice)
                n = splice(d->from, NULL, d->pipe[1], NULL, RELAY_PIPE,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            else
                n = read(d->from, d->buf, sizeof(d->buf));
            if (n == 0) {
                d->eof = 1;
            } else if (n < 0) {
                if (errno != EAGAIN && errno != EINTR) {
                    d->eof = 1;
                    d->failed = 1;
                }
            } else if (d->use_splice) {
                d->inpipe = (size_t)n;
            } else {
                d->len = (size_t)n;
                d->off = 0;
            }
        }
        if (relay_pending(d) == 0)
            break;
        if (d->use_splice)
            n = splice(d->pipe[0], NULL, d->to, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        else
            n = write(d->to, d->buf + d->off, d->len - d->off);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                d->failed = 1;
                d->eof = 1;
                d->len = d->off = d->inpipe = 0;
            }
            break;
        }
        if (d->use_splice)
            d->inpipe -= (size_t)n;
        else
            d->off += (size_t)n;
        if (relay_pending(d) > 0)
            break; /* the destination is full: wait for POLLOUT */
    }
    if (d->eof && relay_pending(d) == 0 && !d->shut) {
        shutdown(d->to, SHUT_WR);
        d->shut = 1;
    }
}

static void relay_one(int cfd, const struct sockaddr_in *target, int use_splice)
{
    static struct dir dirs[2];
    int ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (ufd < 0 || connect(ufd, (const struct sockaddr *)target, sizeof(*target)) < 0) {
        fprintf(stderr, "bench_relay: connect: %s\n", strerror(errno));
        if (ufd >= 0)
            close(ufd);
        close(cfd);
        return;
    }
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(cfd, F_SETFL, O_NONBLOCK);
    fcntl(ufd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 2; i++) {
        struct dir *d = &dirs[i];
        d->from = i == 0 ? cfd : ufd;
        d->to = i == 0 ? ufd : cfd;
        d->use_splice = use_splice;
        d->len = d->off = d->inpipe = 0;
        d->eof = d->shut = d->failed = 0;
        if (use_splice) {
            if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                relay_die("pipe2");
            fcntl(d->pipe[0], F_SETPIPE_SZ, RELAY_PIPE);
        }
    }
    while (!(dirs[0].shut && dirs[1].shut)) {
        struct pollfd p[2];
        for (int i = 0; i < 2; i++) {
            p[i].fd = i == 0 ? cfd : ufd;
            p[i].events = 0;
            p[i].revents = 0;
        }
        for (int i = 0; i < 2; i++) {
            const struct dir *d = &dirs[i];
            if (d->shut)
                continue;
            if (relay_pending(d) > 0)
                p[d->to == cfd ? 0 : 1].events |= POLLOUT;
            else if (!d->eof)
                p[d->from == cfd ? 0 : 1].events |= POLLIN;
        }
        if (poll(p, 2, 60000) <= 0)
            break;
        relay_step(&dirs[0]);
        relay_step(&dirs[1]);
        if (dirs[0].failed || dirs[1].failed)
            break;
    }
    for (int i = 0; i < 2; i++) {
        if (use_splice) {
            close(dirs[i].pipe[0]);
            close(dirs[i].pipe[1]);
        }
    }
    close(cfd);
    close(ufd);
}

int main(int argc, char **argv)
{
    struct sockaddr_in listen_sa, target;
    int lfd, one = 1, use_splice;

    signal(SIGPIPE, SIG_IGN);
    if (argc != 4 || relay_parse_addr(argv[1], &listen_sa) < 0 ||
        relay_parse_addr(argv[2], &target) < 0 ||
        (strcmp(argv[3], "rw") != 0 && strcmp(argv[3], "splice") != 0)) {
        fprintf(stderr, "usage: bench_relay LISTEN_HOST:PORT TARGET_HOST:PORT rw|splice\n");
        return 2;
    }
    use_splice = strcmp(argv[3], "splice") == 0;
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        relay_die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (const struct sockaddr *)&listen_sa, sizeof(listen_sa)) < 0 ||
        listen(lfd, 16) < 0)
        relay_die("bind");
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR)
                continue;
            relay_die("accept");
        }
        relay_one(cfd, &target, use_splice);
    }
}
