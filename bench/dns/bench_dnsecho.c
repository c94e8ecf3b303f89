/*
 * bench_dnsecho.c -- the cheapest DNS server there is: the yardstick for dnsperf's own
 * ceiling in bench/dns.
 *
 *     bench_dnsecho HOST:PORT
 *
 * Listens on UDP at HOST:PORT (an IPv4 literal) and answers every query at once from the
 * query itself, with no lookup: an A query gets one record, 192.0.2.1 with a TTL of one
 * day (the same answer as the dnsmasq stub bench/dns/run forwards to), any other type
 * NOERROR with no records. Reads and writes up to 64 datagrams a system call (recvmmsg,
 * sendmmsg), one thread. What is not a query with one question is dropped. Runs until
 * killed; prints "listening on HOST:PORT" on standard output when ready.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ECHO_BATCH 64
#define ECHO_MAX 512 /* the answer must fit: a query of at most ECHO_MAX - 16 bytes */
#define ECHO_ANSWER_LEN 16

struct echo_slot {
    unsigned char buf[ECHO_MAX];
    struct sockaddr_in peer;
    struct iovec iov;
};

static struct echo_slot echo_slots[ECHO_BATCH];
static struct mmsghdr echo_in[ECHO_BATCH];
static struct mmsghdr echo_out[ECHO_BATCH];

/* Parse "A.B.C.D:PORT" into sa. Returns 0, or -1 with a message on stderr. */
static int echo_parse_addr(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    char *end = NULL;
    long port;
    size_t len;

    if (!colon) {
        fprintf(stderr, "bench_dnsecho: '%s' has no port (HOST:PORT)\n", text);
        return -1;
    }
    len = (size_t)(colon - text);
    if (len == 0 || len >= sizeof host) {
        fprintf(stderr, "bench_dnsecho: '%s': the host is empty or too long\n", text);
        return -1;
    }
    memcpy(host, text, len);
    host[len] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "bench_dnsecho: '%s': the port is not a number from 1 to 65535\n", text);
        return -1;
    }
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        fprintf(stderr, "bench_dnsecho: '%s' is not an IPv4 address\n", host);
        return -1;
    }
    return 0;
}

/*
 * Turn the query in buf (len bytes) into its answer in place. Returns the answer's length,
 * or 0 when the datagram is to be dropped.
 */
static size_t echo_answer(unsigned char *buf, size_t len)
{
    static const unsigned char rr[ECHO_ANSWER_LEN] = {
        0xc0, 0x0c,             /* the question's name */
        0x00, 0x01, 0x00, 0x01, /* A, IN */
        0x00, 0x01, 0x51, 0x80, /* TTL 86400 */
        0x00, 0x04, 192,  0,    2, 1,
    };
    size_t off = 12;
    size_t end;
    int is_a;

    if (len < 12 + 5 || len > ECHO_MAX - ECHO_ANSWER_LEN)
        return 0;
    if ((buf[2] & 0x80) != 0 || (buf[2] & 0x78) != 0) /* a response, or not QUERY */
        return 0;
    if (buf[4] != 0 || buf[5] != 1 || buf[6] != 0 || buf[7] != 0)
        return 0;
    while (off < len && buf[off] != 0) {
        if ((buf[off] & 0xc0) != 0)
            return 0;
        off += (size_t)buf[off] + 1;
    }
    if (off + 5 > len)
        return 0;
    end = off + 5; /* the root label, type, class */
    is_a = buf[off + 1] == 0 && buf[off + 2] == 1 && buf[off + 3] == 0 && buf[off + 4] == 1;
    buf[2] = (unsigned char)(0x84 | (buf[2] & 0x01)); /* QR AA, RD copied */
    buf[3] = 0x80;                                    /* RA, NOERROR */
    buf[8] = 0;
    buf[9] = 0;
    buf[10] = 0;
    buf[11] = 0; /* no authority, no additional (an EDNS OPT of the query is dropped) */
    buf[6] = 0;
    buf[7] = is_a ? 1 : 0;
    if (!is_a)
        return end;
    memcpy(buf + end, rr, sizeof rr);
    return end + sizeof rr;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    int fd = -1;
    int result = EXIT_FAILURE;

    if (argc != 2) {
        fprintf(stderr, "usage: bench_dnsecho HOST:PORT\n");
        goto out;
    }
    if (echo_parse_addr(argv[1], &sa) != 0)
        goto out;
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("bench_dnsecho: socket");
        goto out;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "bench_dnsecho: cannot listen on %s: %s\n", argv[1], strerror(errno));
        goto out;
    }
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        int n;
        int nout = 0;

        for (int i = 0; i < ECHO_BATCH; i++) {
            struct echo_slot *s = &echo_slots[i];

            s->iov.iov_base = s->buf;
            s->iov.iov_len = sizeof s->buf;
            memset(&echo_in[i], 0, sizeof echo_in[i]);
            echo_in[i].msg_hdr.msg_name = &s->peer;
            echo_in[i].msg_hdr.msg_namelen = sizeof s->peer;
            echo_in[i].msg_hdr.msg_iov = &s->iov;
            echo_in[i].msg_hdr.msg_iovlen = 1;
        }
        n = recvmmsg(fd, echo_in, ECHO_BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("bench_dnsecho: recvmmsg");
            goto out;
        }
        for (int i = 0; i < n; i++) {
            struct echo_slot *s = &echo_slots[i];
            size_t len;

            if ((echo_in[i].msg_hdr.msg_flags & MSG_TRUNC) != 0)
                continue;
            len = echo_answer(s->buf, echo_in[i].msg_len);
            if (len == 0)
                continue;
            s->iov.iov_len = len;
            memset(&echo_out[nout], 0, sizeof echo_out[nout]);
            echo_out[nout].msg_hdr.msg_name = &s->peer;
            echo_out[nout].msg_hdr.msg_namelen = echo_in[i].msg_hdr.msg_namelen;
            echo_out[nout].msg_hdr.msg_iov = &s->iov;
            echo_out[nout].msg_hdr.msg_iovlen = 1;
            nout++;
        }
        for (int done = 0; done < nout;) {
            int sent = sendmmsg(fd, echo_out + done, (unsigned int)(nout - done), 0);

            if (sent < 0) {
                if (errno == EINTR)
                    continue;
                break; /* the client's buffer is full: the rest are lost, as a server's are */
            }
            done += sent;
        }
    }

out:
    if (fd >= 0)
        close(fd);
    return result;
}
