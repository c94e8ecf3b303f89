/*
 * signer.c -- the signer process and its client (see signer.h for the protocol).
 *
 * DESIGN. The CA key is the most valuable secret haven has: with it, anyone can
 * impersonate any web site to every device in the school. So it lives in a process of
 * its own that does one thing: read a small fixed-format request, mint a certificate,
 * answer. That process holds no sockets to the network, parses nothing the network sends
 * except a host name that has already passed ca_check_host and a public key, and cannot
 * be traced or dumped. The worker side keeps no key material but the leaf key pair it
 * made itself, which is worth little (every leaf lives CA_LEAF_LIFETIME) and rotates on
 * restart.
 *
 * SOCK_SEQPACKET keeps message boundaries, so one recv() is one whole message and a
 * truncated or oversized one is detected (MSG_TRUNC), never misframed. The client keeps
 * one request in flight under a mutex; a reply whose id is not the one awaited (the late
 * answer to a request that timed out) is dropped.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "tls/signer.h"

/* How long signer_start waits for the READY message (loading an RSA key takes a moment). */
#define SIGNER_START_TIMEOUT_MS 10000
/* How long signer_stop waits for the signer to leave after end of file. */
#define SIGNER_STOP_TIMEOUT_MS 2000
/* The latest time a request may ask for: 9999-12-31T23:59:59Z. */
#define SIGNER_MAX_TIME 253402300799LL
/* The descriptor the signer's end of the socket has in the child. */
#define SIGNER_CHILD_FD 3

struct signer {
    pthread_mutex_t lock;
    int fd;
    pid_t pid;
    uint32_t next_id;
    int dead; /* the signer has gone: every call fails with why */
    char why[256];
    /* The last leaf key asked for (a reference is held, so the pointer names it) as DER. */
    EVP_PKEY *spki_key;
    unsigned char *spki;
    int spki_len;
};

__attribute__((format(printf, 3, 4))) static void signer_err(char *err, size_t errlen,
                                                             const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ----- wire format ----- */

static void signer_put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void signer_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void signer_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t signer_get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t signer_get32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t signer_get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* The checks every message starts with: size, magic, version. Returns 0 or -1. */
static int signer_check_header(const unsigned char *p, size_t len, size_t header, const char *what,
                               char *err, size_t errlen)
{
    if (len < header) {
        signer_err(err, errlen, "the %s is %zu bytes, shorter than its %zu-byte header", what, len,
                   header);
        return -1;
    }
    if (len > SIGNER_MAX_MSG) {
        signer_err(err, errlen, "the %s is %zu bytes, more than the %d allowed", what, len,
                   SIGNER_MAX_MSG);
        return -1;
    }
    if (signer_get32(p) != SIGNER_MAGIC) {
        signer_err(err, errlen, "the %s does not start with the magic \"HVSG\"", what);
        return -1;
    }
    if (signer_get16(p + 4) != SIGNER_VERSION) {
        signer_err(err, errlen, "the %s is of protocol version %u; this signer speaks %d", what,
                   signer_get16(p + 4), SIGNER_VERSION);
        return -1;
    }
    return 0;
}

int signer_parse_request(const void *msg, size_t len, struct signer_request *req, char *err,
                         size_t errlen)
{
    const unsigned char *p = msg;
    uint16_t type, spki_len, host_len;
    char why[256];

    memset(req, 0, sizeof(*req));
    if (signer_check_header(p, len, SIGNER_REQUEST_HEADER, "request", err, errlen) != 0)
        return -1;
    req->id = signer_get32(p + 8);
    type = signer_get16(p + 6);
    if (type != SIGNER_MSG_SIGN) {
        signer_err(err, errlen, "message type %u is not a request (SIGN is %d)", type,
                   SIGNER_MSG_SIGN);
        return -1;
    }
    req->now = (int64_t)signer_get64(p + 12);
    spki_len = signer_get16(p + 20);
    host_len = signer_get16(p + 22);
    if (req->now < 0 || req->now > SIGNER_MAX_TIME) {
        signer_err(err, errlen, "the request's time (%lld) is not between 1970 and 9999",
                   (long long)req->now);
        return -1;
    }
    if (spki_len == 0) {
        signer_err(err, errlen, "the request carries no public key");
        return -1;
    }
    if (spki_len > SIGNER_MAX_SPKI) {
        signer_err(err, errlen, "the request's public key is %u bytes, more than the %d allowed",
                   spki_len, SIGNER_MAX_SPKI);
        return -1;
    }
    if (host_len == 0) {
        signer_err(err, errlen, "the request carries no host name");
        return -1;
    }
    if (host_len > CA_MAX_HOST) {
        signer_err(err, errlen, "the request's host name is %u bytes, more than %d", host_len,
                   CA_MAX_HOST);
        return -1;
    }
    if ((size_t)SIGNER_REQUEST_HEADER + spki_len + host_len != len) {
        signer_err(err, errlen,
                   "the request's lengths (24 + %u + %u bytes) do not add up to its size (%zu "
                   "bytes)",
                   spki_len, host_len, len);
        return -1;
    }
    if (ca_check_host((const char *)p + SIGNER_REQUEST_HEADER + spki_len, host_len, NULL, why,
                      sizeof(why)) != 0) {
        signer_err(err, errlen, "bad host: %s", why);
        return -1;
    }
    memcpy(req->host, p + SIGNER_REQUEST_HEADER + spki_len, host_len);
    req->host[host_len] = '\0';
    req->spki = p + SIGNER_REQUEST_HEADER;
    req->spki_len = spki_len;
    if (req->spki[0] != 0x30) {
        signer_err(err, errlen, "the request's public key is not DER (no SEQUENCE)");
        return -1;
    }
    return 0;
}

int signer_parse_reply(const void *msg, size_t len, struct signer_reply *rep, char *err,
                       size_t errlen)
{
    const unsigned char *p = msg;
    uint32_t status, dlen;

    memset(rep, 0, sizeof(*rep));
    if (signer_check_header(p, len, SIGNER_REPLY_HEADER, "reply", err, errlen) != 0)
        return -1;
    rep->type = signer_get16(p + 6);
    rep->id = signer_get32(p + 8);
    status = signer_get32(p + 12);
    dlen = signer_get32(p + 16);
    if (rep->type != SIGNER_MSG_REPLY && rep->type != SIGNER_MSG_READY) {
        signer_err(err, errlen, "message type %u is not a reply (REPLY is %d, READY %d)", rep->type,
                   SIGNER_MSG_REPLY, SIGNER_MSG_READY);
        return -1;
    }
    if (status > SIGNER_FAILED) {
        signer_err(err, errlen, "the reply's status %u is not one this client knows", status);
        return -1;
    }
    rep->status = (enum signer_status)status;
    if ((size_t)dlen != len - SIGNER_REPLY_HEADER) {
        signer_err(err, errlen,
                   "the reply's length (20 + %u bytes) does not add up to its size (%zu bytes)",
                   dlen, len);
        return -1;
    }
    rep->data = p + SIGNER_REPLY_HEADER;
    rep->len = dlen;
    if (rep->status == SIGNER_OK) {
        if (rep->type == SIGNER_MSG_READY && dlen != 0) {
            signer_err(err, errlen, "a READY message carries %u bytes; it carries none", dlen);
            return -1;
        }
        if (rep->type == SIGNER_MSG_REPLY && dlen == 0) {
            signer_err(err, errlen, "the reply says OK but carries no certificate");
            return -1;
        }
        if (rep->type == SIGNER_MSG_REPLY && rep->data[0] != 0x30) {
            signer_err(err, errlen, "the reply's certificate is not DER (no SEQUENCE)");
            return -1;
        }
        return 0;
    }
    if (dlen == 0) {
        signer_err(err, errlen, "the reply is an error without a message");
        return -1;
    }
    if (dlen > SIGNER_MAX_ERROR) {
        signer_err(err, errlen, "the reply's error message is %u bytes, more than the %d allowed",
                   dlen, SIGNER_MAX_ERROR);
        return -1;
    }
    for (uint32_t i = 0; i < dlen; i++) {
        if (rep->data[i] < 0x20 || rep->data[i] > 0x7e) {
            signer_err(err, errlen,
                       "the reply's error message has the byte 0x%02x, which is not printable "
                       "ASCII",
                       rep->data[i]);
            return -1;
        }
    }
    return 0;
}

size_t signer_build_request(unsigned char *out, size_t size, uint32_t id, int64_t now,
                            const unsigned char *spki, size_t spki_len, const char *host,
                            size_t host_len)
{
    size_t len = SIGNER_REQUEST_HEADER + spki_len + host_len;

    if (spki_len > UINT16_MAX || host_len > UINT16_MAX || len > size)
        return 0;
    signer_put32(out, SIGNER_MAGIC);
    signer_put16(out + 4, SIGNER_VERSION);
    signer_put16(out + 6, SIGNER_MSG_SIGN);
    signer_put32(out + 8, id);
    signer_put64(out + 12, (uint64_t)now);
    signer_put16(out + 20, (uint16_t)spki_len);
    signer_put16(out + 22, (uint16_t)host_len);
    if (spki_len)
        memcpy(out + SIGNER_REQUEST_HEADER, spki, spki_len);
    if (host_len)
        memcpy(out + SIGNER_REQUEST_HEADER + spki_len, host, host_len);
    return len;
}

size_t signer_build_reply(unsigned char *out, size_t size, uint16_t type, uint32_t id,
                          enum signer_status status, const void *data, size_t len)
{
    if (len > UINT32_MAX || len > size || size - len < SIGNER_REPLY_HEADER)
        return 0;
    signer_put32(out, SIGNER_MAGIC);
    signer_put16(out + 4, SIGNER_VERSION);
    signer_put16(out + 6, type);
    signer_put32(out + 8, id);
    signer_put32(out + 12, (uint32_t)status);
    signer_put32(out + 16, (uint32_t)len);
    if (len)
        memcpy(out + SIGNER_REPLY_HEADER, data, len);
    return SIGNER_REPLY_HEADER + len;
}

/* ----- the signer process ----- */

/* Send one message; 0, or -1 when the parent has gone. */
static int signer_send(int fd, const void *msg, size_t len)
{
    ssize_t n;

    do {
        n = send(fd, msg, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

/* Send an error reply; text is made printable ASCII and cut to SIGNER_MAX_ERROR bytes. */
static int signer_send_error(int fd, uint16_t type, uint32_t id, enum signer_status status,
                             const char *text)
{
    unsigned char out[SIGNER_REPLY_HEADER + SIGNER_MAX_ERROR];
    char clean[SIGNER_MAX_ERROR];
    size_t n = strlen(text), len;

    if (n == 0) {
        text = "unknown error";
        n = strlen(text);
    }
    if (n > sizeof(clean))
        n = sizeof(clean);
    for (size_t i = 0; i < n; i++)
        clean[i] = text[i] >= 0x20 && text[i] <= 0x7e ? text[i] : '?';
    len = signer_build_reply(out, sizeof(out), type, id, status, clean, n);
    return signer_send(fd, out, len);
}

/* Answer one request message. Returns 0, or -1 when the parent has gone. */
static int signer_answer(int fd, struct ca *ca, const unsigned char *msg, size_t len)
{
    static unsigned char out[SIGNER_MAX_MSG];
    struct signer_request req;
    unsigned char *der = NULL;
    char err[SIGNER_MAX_ERROR];
    size_t der_len = 0, n;
    int64_t now = clock_now();
    int rc;

    if (signer_parse_request(msg, len, &req, err, sizeof(err)) != 0)
        return signer_send_error(fd, SIGNER_MSG_REPLY, req.id, SIGNER_BAD_REQUEST, err);
    if (req.now > now + SIGNER_MAX_SKEW || req.now < now - SIGNER_MAX_SKEW)
        return signer_send_error(fd, SIGNER_MSG_REPLY, req.id, SIGNER_FAILED,
                                 "the request's time is more than a day from the signer's clock");
    if (ca_mint_leaf(ca, req.host, req.spki, req.spki_len, (time_t)req.now, &der, &der_len, err,
                     sizeof(err)) != 0)
        return signer_send_error(fd, SIGNER_MSG_REPLY, req.id, SIGNER_FAILED, err);
    n = signer_build_reply(out, sizeof(out), SIGNER_MSG_REPLY, req.id, SIGNER_OK, der, der_len);
    if (n == 0)
        rc = signer_send_error(fd, SIGNER_MSG_REPLY, req.id, SIGNER_FAILED,
                               "the certificate is too large for a reply");
    else
        rc = signer_send(fd, out, n);
    free(der);
    return rc;
}

void signer_serve(int fd, struct ca *ca)
{
    static unsigned char in[SIGNER_MAX_MSG + 1];
    char err[128];

    for (;;) {
        ssize_t n = recv(fd, in, sizeof(in), MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        if ((size_t)n > SIGNER_MAX_MSG) {
            snprintf(err, sizeof(err), "the request is %zd bytes, more than the %d allowed", n,
                     SIGNER_MAX_MSG);
            if (signer_send_error(fd, SIGNER_MSG_REPLY, 0, SIGNER_BAD_REQUEST, err) != 0)
                return;
            continue;
        }
        if (signer_answer(fd, ca, in, (size_t)n) != 0)
            return;
    }
}

/* Close every descriptor but fd (moved to SIGNER_CHILD_FD) and 2; 0 and 1 become /dev/null. */
static int signer_close_fds(int fd)
{
    int nul;

    if (fd != SIGNER_CHILD_FD) {
        if (dup2(fd, SIGNER_CHILD_FD) < 0)
            return -1;
    }
    if (close_range(SIGNER_CHILD_FD + 1, ~0u, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536)
            max = 65536;
        for (int i = SIGNER_CHILD_FD + 1; i < max; i++)
            close(i);
    }
    nul = open("/dev/null", O_RDWR);
    if (nul < 0)
        return -1;
    if (dup2(nul, 0) < 0 || dup2(nul, 1) < 0)
        return -1;
    if (nul > 2)
        close(nul);
    return 0;
}

/* Drop to uid/gid ((uid_t)-1, (gid_t)-1: stay). Returns 0, or -1 with the reason. */
static int signer_drop(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (gid != (gid_t)-1) {
        if (geteuid() == 0 && setgroups(0, NULL) != 0) {
            signer_err(err, errlen, "cannot drop supplementary groups: %s", strerror(errno));
            return -1;
        }
        if (setresgid(gid, gid, gid) != 0) {
            signer_err(err, errlen, "cannot change to group %u: %s", (unsigned)gid,
                       strerror(errno));
            return -1;
        }
    }
    if (uid != (uid_t)-1) {
        if (setresuid(uid, uid, uid) != 0) {
            signer_err(err, errlen, "cannot change to user %u: %s", (unsigned)uid, strerror(errno));
            return -1;
        }
        if (uid != 0 && setuid(0) == 0) {
            signer_err(err, errlen, "could become root again after dropping to user %u",
                       (unsigned)uid);
            return -1;
        }
    }
    /* Changing credentials resets the dumpable flag: set it again. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return 0;
}

/* The child after fork: never returns. */
__attribute__((noreturn)) static void signer_child(int fd, pid_t parent, const char *ca_dir,
                                                   uid_t uid, gid_t gid)
{
    char err[SIGNER_MAX_ERROR];
    unsigned char ready[SIGNER_REPLY_HEADER];
    struct ca *ca = NULL;
    sigset_t none;
    size_t n;

    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != parent) /* the parent died before we asked to follow it */
        _exit(1);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* fails harmlessly for KILL, STOP and the real-time ones */
    /* Ctrl-C and hang-ups are for the parent: the signer leaves when its socket closes. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (signer_close_fds(fd) != 0)
        _exit(1);
    fd = SIGNER_CHILD_FD;

    ca = ca_load(ca_dir, err, sizeof(err));
    if (!ca) {
        signer_send_error(fd, SIGNER_MSG_READY, 0, SIGNER_FAILED, err);
        _exit(1);
    }
    if (signer_drop(uid, gid, err, sizeof(err)) != 0) {
        signer_send_error(fd, SIGNER_MSG_READY, 0, SIGNER_FAILED, err);
        ca_free(ca);
        _exit(1);
    }
    n = signer_build_reply(ready, sizeof(ready), SIGNER_MSG_READY, 0, SIGNER_OK, NULL, 0);
    if (signer_send(fd, ready, n) == 0)
        signer_serve(fd, ca);
    ca_free(ca);
    /* _exit: no atexit handlers or stdio buffers of the parent's run twice. */
    _exit(0);
}

/* ----- the client ----- */

static int64_t signer_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reap the signer if it has exited (waiting up to ms), describing how into why. */
static void signer_reap(struct signer *s, int ms, char *why, size_t whylen)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    pid_t pid = s->pid, r = 0;
    int st = 0;

    if (pid <= 0) {
        signer_err(why, whylen, "the certificate signer has exited");
        return;
    }
    for (int waited = 0;; waited += 10) {
        r = waitpid(pid, &st, WNOHANG);
        if (r != 0 || waited >= ms)
            break;
        nanosleep(&tick, NULL);
    }
    if (r == pid) {
        s->pid = -1;
        if (WIFSIGNALED(st))
            signer_err(why, whylen,
                       "the certificate signer (pid %d) has died: killed by signal %d (SIG%s)",
                       (int)pid, WTERMSIG(st),
                       sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
        else
            signer_err(why, whylen, "the certificate signer (pid %d) has exited with status %d",
                       (int)pid, WEXITSTATUS(st));
        return;
    }
    if (r < 0 && errno == ECHILD)
        s->pid = -1;
    signer_err(why, whylen, "the certificate signer (pid %d) has closed its socket", (int)pid);
}

/* The signer has gone: remember why, so every later call fails at once. */
static void signer_mark_dead(struct signer *s)
{
    if (s->dead)
        return;
    signer_reap(s, 500, s->why, sizeof(s->why));
    s->dead = 1;
}

/*
 * Wait up to ms for a message and receive it into buf (size bytes). Returns its length, 0 on
 * end of file or a reset, -2 on a timeout, -1 on another error (errno) or a message larger
 * than size (errno EMSGSIZE).
 */
static ssize_t signer_recv(int fd, void *buf, size_t size, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    for (;;) {
        int64_t left = deadline - signer_mono_ms();
        ssize_t n;
        int r;

        if (left < 0)
            left = 0;
        r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return -2;
        n = recv(fd, buf, size, MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0 && errno == ECONNRESET)
            return 0;
        if (n > (ssize_t)size) {
            errno = EMSGSIZE;
            return -1;
        }
        return n;
    }
}

int signer_start(const char *ca_dir, uid_t uid, gid_t gid, struct signer **out, char *err,
                 size_t errlen)
{
    unsigned char buf[SIGNER_REPLY_HEADER + SIGNER_MAX_ERROR];
    struct signer_reply rep;
    struct signer *s = NULL;
    char why[256];
    int sv[2] = {-1, -1}, rc = -1;
    pid_t pid, parent = getpid();
    ssize_t n;

    *out = NULL;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        signer_err(err, errlen, "cannot make the signer's socket: %s", strerror(errno));
        return -1;
    }
    /* Keep both ends clear of 0-2, which the child points at /dev/null. */
    for (int i = 0; i < 2; i++) {
        if (sv[i] <= 2) {
            int fd = fcntl(sv[i], F_DUPFD_CLOEXEC, 3);
            if (fd < 0) {
                signer_err(err, errlen, "cannot move the signer's socket: %s", strerror(errno));
                goto out;
            }
            close(sv[i]);
            sv[i] = fd;
        }
    }
    s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->fd = -1;
    s->pid = -1;
    fflush(NULL); /* nothing buffered may be written twice */
    pid = fork();
    if (pid < 0) {
        signer_err(err, errlen, "cannot start the signer process: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        signer_child(sv[1], parent, ca_dir, uid, gid);
    s->pid = pid;
    close(sv[1]);
    sv[1] = -1;
    s->fd = sv[0];
    sv[0] = -1;

    n = signer_recv(s->fd, buf, sizeof(buf), signer_mono_ms() + SIGNER_START_TIMEOUT_MS);
    if (n == -2) {
        signer_err(err, errlen, "the certificate signer did not start within %d s",
                   SIGNER_START_TIMEOUT_MS / 1000);
        goto out;
    }
    if (n <= 0) {
        signer_reap(s, 1000, why, sizeof(why));
        signer_err(err, errlen, "%s before it was ready", why);
        goto out;
    }
    if (signer_parse_reply(buf, (size_t)n, &rep, why, sizeof(why)) != 0) {
        signer_err(err, errlen, "the certificate signer sent a bad READY message: %s", why);
        goto out;
    }
    if (rep.type != SIGNER_MSG_READY) {
        signer_err(err, errlen, "the certificate signer sent a reply before READY");
        goto out;
    }
    if (rep.status != SIGNER_OK) {
        signer_err(err, errlen, "the certificate signer could not start: %.*s", (int)rep.len,
                   (const char *)rep.data);
        goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (s)
        signer_stop(s);
    return rc;
}

/* The DER SubjectPublicKeyInfo of key, encoded once per key (OpenSSL 3.0's encoder is slow). */
static int signer_spki(struct signer *s, EVP_PKEY *key, char *err, size_t errlen)
{
    unsigned char *spki = NULL;
    int n;

    if (s->spki_key == key)
        return 0;
    n = i2d_PUBKEY(key, &spki);
    if (n <= 0 || n > SIGNER_MAX_SPKI) {
        ERR_clear_error();
        OPENSSL_free(spki);
        signer_err(err, errlen, "the leaf key cannot be sent to the signer");
        return -1;
    }
    EVP_PKEY_free(s->spki_key);
    OPENSSL_free(s->spki);
    EVP_PKEY_up_ref(key);
    s->spki_key = key;
    s->spki = spki;
    s->spki_len = n;
    return 0;
}

int signer_sign(struct signer *s, const char *host, EVP_PKEY *leaf_key, time_t now,
                unsigned char **der, size_t *len, char *err, size_t errlen)
{
    unsigned char req[SIGNER_REQUEST_HEADER + SIGNER_MAX_SPKI + CA_MAX_HOST];
    unsigned char *rbuf = NULL, *copy;
    struct signer_reply rep;
    size_t hlen = host ? strlen(host) : 0, n;
    int64_t deadline;
    uint32_t id;
    char why[256];
    ssize_t got;
    int rc = -1;

    *der = NULL;
    *len = 0;
    /* The signer checks it too; checking here first gives the same words without a trip. */
    if (ca_check_host(host ? host : "", hlen, NULL, err, errlen) != 0)
        return -1;
    rbuf = xmalloc(SIGNER_MAX_MSG);

    pthread_mutex_lock(&s->lock);
    if (s->dead) {
        signer_err(err, errlen, "%s", s->why);
        goto out;
    }
    if (signer_spki(s, leaf_key, err, errlen) != 0)
        goto out;
    id = ++s->next_id;
    if (id == 0)
        id = ++s->next_id;
    n = signer_build_request(req, sizeof(req), id, (int64_t)now, s->spki, (size_t)s->spki_len, host,
                             hlen);
    if (send(s->fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) {
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
            signer_mark_dead(s);
            signer_err(err, errlen, "%s", s->why);
        } else {
            signer_err(err, errlen, "cannot send to the certificate signer: %s", strerror(errno));
        }
        goto out;
    }
    deadline = signer_mono_ms() + SIGNER_TIMEOUT_MS;
    for (;;) {
        got = signer_recv(s->fd, rbuf, SIGNER_MAX_MSG, deadline);
        if (got == -2) {
            signer_err(err, errlen, "the certificate signer did not answer within %d s",
                       SIGNER_TIMEOUT_MS / 1000);
            goto out;
        }
        if (got == 0) {
            signer_mark_dead(s);
            signer_err(err, errlen, "%s", s->why);
            goto out;
        }
        if (got < 0) {
            signer_err(err, errlen, "cannot read from the certificate signer: %s", strerror(errno));
            goto out;
        }
        if (signer_parse_reply(rbuf, (size_t)got, &rep, why, sizeof(why)) != 0) {
            signer_err(err, errlen, "the certificate signer sent a bad reply: %s", why);
            goto out;
        }
        if (rep.type == SIGNER_MSG_REPLY && rep.id == id)
            break;
        /* The late answer to a request that timed out: not ours. */
    }
    if (rep.status != SIGNER_OK) {
        signer_err(err, errlen, "%.*s", (int)rep.len, (const char *)rep.data);
        goto out;
    }
    copy = xmalloc(rep.len);
    memcpy(copy, rep.data, rep.len);
    *der = copy;
    *len = rep.len;
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    free(rbuf);
    return rc;
}

pid_t signer_pid(const struct signer *s)
{
    return s->pid;
}

int signer_stop(struct signer *s)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    int st = 0, rc = -1;
    pid_t r = 0;

    if (!s)
        return 0;
    if (s->fd >= 0)
        close(s->fd);
    if (s->pid > 0) {
        for (int waited = 0; waited < SIGNER_STOP_TIMEOUT_MS; waited += 10) {
            r = waitpid(s->pid, &st, WNOHANG);
            if (r != 0)
                break;
            nanosleep(&tick, NULL);
        }
        if (r == 0) {
            kill(s->pid, SIGKILL);
            r = waitpid(s->pid, &st, 0);
        } else if (r < 0 && errno == EINTR) {
            r = waitpid(s->pid, &st, 0);
        }
        if (r == s->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            rc = 0;
    } else if (!s->dead) {
        rc = 0;
    }
    pthread_mutex_destroy(&s->lock);
    EVP_PKEY_free(s->spki_key);
    OPENSSL_free(s->spki);
    free(s);
    return rc;
}

EVP_PKEY *signer_leaf_key_new(enum signer_leaf_type type)
{
    return type == SIGNER_LEAF_RSA2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
}
