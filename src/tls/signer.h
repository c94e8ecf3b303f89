/*
 * signer.h -- the signer process: the only holder of the CA private key.
 *
 * signer_start forks a small process that loads the CA (tls/ca.h), drops privileges,
 * and then mints leaf certificates on request over a socketpair. The workers ask it
 * through signer_sign and never see the CA key; a bug in the proxy's parsers therefore
 * cannot leak it (the same split as relayd's ca.c and h2o's neverbleed). The parent never
 * opens the key file.
 *
 * The child: closes every descriptor but its end of the socketpair and standard error
 * (standard input and output become /dev/null), resets signal handlers and unblocks
 * signals, sets PR_SET_DUMPABLE 0 (no core dumps, no ptrace or /proc/PID/mem by the same
 * user), PR_SET_NO_NEW_PRIVS and PR_SET_PDEATHSIG SIGTERM (it dies with its parent), and
 * SIGINT and SIGHUP are ignored (it leaves when its socket closes). It loads the CA, drops to
 * uid/gid if asked, tells the parent it is ready (or why it is not), and serves requests
 * one at a time until the socket reaches end of file, then exits 0. A malformed request
 * gets an error reply naming the problem; nothing a request holds can crash the signer.
 *
 * Call signer_start before starting any threads (it forks, and the child goes on to use
 * malloc and OpenSSL, which another thread could hold locked at the moment of the fork).
 * signer_sign is then safe from any number of threads (libuv's thread pool): one mutex covers
 * one request and its reply, so requests are answered one at a time (a P-256 leaf takes about
 * 0.1 ms to mint and 0.2-0.3 ms for the whole round trip on a 2-core machine; RSA 3072 CAs
 * take about 3 ms).
 *
 * PROTOCOL, version 1. One request or reply per SOCK_SEQPACKET message; integers are
 * little-endian; every length is checked against the message length. A message is at most
 * SIGNER_MAX_MSG bytes.
 *
 *   request (parent -> signer), type SIGNER_MSG_SIGN:
 *     offset size
 *      0     4    magic "HVSG"
 *      4     2    version (1)
 *      6     2    type (1 = SIGN)
 *      8     4    request id (the reply carries it back)
 *     12     8    now: seconds since the epoch, signed (the leaf is valid around it; the
 *                 signer refuses a time more than SIGNER_MAX_SKEW from its own clock)
 *     20     2    spki_len: 1 .. SIGNER_MAX_SPKI
 *     22     2    host_len: 1 .. CA_MAX_HOST
 *     24          the leaf's public key, SubjectPublicKeyInfo DER (EC P-256/P-384, RSA
 *                 2048-8192: ca_check_spki)
 *     24+spki_len the host: a DNS name or IP literal (ca_check_host), no NUL
 *     (the message ends exactly there)
 *
 *   reply (signer -> parent), type SIGNER_MSG_REPLY, and the one READY message the
 *   signer sends when it has loaded the CA (type SIGNER_MSG_READY, id 0):
 *      0     4    magic "HVSG"
 *      4     2    version (1)
 *      6     2    type (2 = REPLY, 3 = READY)
 *      8     4    request id (0 when a request was too broken to read one from)
 *     12     4    status: 0 = OK, 1 = BAD_REQUEST (malformed), 2 = FAILED (could not sign:
 *                 a key it does not take, a time too far from its clock, an expired CA)
 *     16     4    length of what follows
 *     20          OK: the DER certificate (REPLY) or nothing (READY);
 *                 otherwise an error message: 1 .. SIGNER_MAX_ERROR bytes of printable text
 *     (the message ends exactly there)
 *
 * A new version gets a new number; a signer answers a version it does not speak with
 * BAD_REQUEST ("the request is of protocol version N; this signer speaks 1").
 */
#ifndef HAVEN_TLS_SIGNER_H
#define HAVEN_TLS_SIGNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/types.h>

#include "tls/ca.h"

#define SIGNER_MAGIC 0x47535648u /* "HVSG" as a little-endian u32 */
#define SIGNER_VERSION 1
#define SIGNER_MSG_SIGN 1
#define SIGNER_MSG_REPLY 2
#define SIGNER_MSG_READY 3

#define SIGNER_REQUEST_HEADER 24
#define SIGNER_REPLY_HEADER 20
#define SIGNER_MAX_MSG 16384
#define SIGNER_MAX_SPKI 2048 /* an RSA-8192 SPKI is about 1,100 bytes */
#define SIGNER_MAX_ERROR 512
#define SIGNER_MAX_SKEW 86400 /* seconds between a request's time and the signer's clock */
#define SIGNER_TIMEOUT_MS 5000

enum signer_status {
    SIGNER_OK = 0,
    SIGNER_BAD_REQUEST = 1,
    SIGNER_FAILED = 2,
};

/*
 * A parsed request; spki points into the message it was parsed from. The parser checks only
 * that spki is a DER SEQUENCE: ca_mint_leaf checks the key inside (ca_check_spki), and keeps
 * it decoded, so a key that comes again (the workers share one) is not decoded again.
 */
struct signer_request {
    uint32_t id;
    int64_t now;
    const unsigned char *spki;
    size_t spki_len;
    char host[CA_MAX_HOST + 1]; /* checked with ca_check_host, NUL-terminated copy */
};

/* A parsed reply or READY message; data points into the message it was parsed from. */
struct signer_reply {
    uint16_t type; /* SIGNER_MSG_REPLY or SIGNER_MSG_READY */
    uint32_t id;
    enum signer_status status;
    const unsigned char *data; /* OK: DER certificate (REPLY); else the error text */
    size_t len;                /* (not NUL-terminated) */
};

/*
 * Parse a request message. Returns 0 with *req filled, or -1 with the reason in err;
 * then req->id holds the request id if the header was readable, else 0. Pure: no I/O.
 */
int signer_parse_request(const void *msg, size_t len, struct signer_request *req, char *err,
                         size_t errlen);

/* Parse a reply or READY message. Returns 0 with *rep filled, or -1 with the reason. Pure. */
int signer_parse_reply(const void *msg, size_t len, struct signer_reply *rep, char *err,
                       size_t errlen);

/*
 * Build a request into out (size bytes): spki[0..spki_len) and host as they are, not
 * checked (tests and the fuzzer build bad ones on purpose). Returns the message length,
 * or 0 if it does not fit in size or in the 16-bit length fields.
 */
size_t signer_build_request(unsigned char *out, size_t size, uint32_t id, int64_t now,
                            const unsigned char *spki, size_t spki_len, const char *host,
                            size_t host_len);

/* Build a reply (or READY with type SIGNER_MSG_READY). Returns the length, or 0 if too big. */
size_t signer_build_reply(unsigned char *out, size_t size, uint16_t type, uint32_t id,
                          enum signer_status status, const void *data, size_t len);

struct signer;

/*
 * Start the signer for the CA in ca_dir. uid and gid are what the signer drops to after
 * loading the key ((uid_t)-1 and (gid_t)-1: stay as we are). Waits until the signer has
 * loaded the CA (up to SIGNER_TIMEOUT_MS). Returns 0 and sets *out, or -1 with the reason
 * in err (the CA could not be loaded, the fork failed, ...); no child is left behind.
 */
int signer_start(const char *ca_dir, uid_t uid, gid_t gid, struct signer **out, char *err,
                 size_t errlen);

/*
 * Ask the signer for a leaf certificate for host with leaf_key's public key, valid around
 * now. Blocks for up to SIGNER_TIMEOUT_MS. On success returns 0 and sets *der (caller
 * free()s it; the DER the signer minted, which the caller parses) and *len. Fails with a
 * reason in err: a bad host or key (the signer's words), a timeout, or a signer that has died
 * ("the certificate signer (pid N) has died: killed by signal 9 (SIGKILL)"); after that every
 * call fails at once. Thread-safe. The key's DER form is kept, with a reference to the key,
 * until another key is given or signer_stop, so the shared leaf key is encoded once.
 */
int signer_sign(struct signer *s, const char *host, EVP_PKEY *leaf_key, time_t now,
                unsigned char **der, size_t *len, char *err, size_t errlen);

/* The signer's process id (for tests and logs); -1 once it has been reaped. */
pid_t signer_pid(const struct signer *s);

/*
 * Close the socket, wait for the signer to exit (it does at end of file; after two seconds
 * it is killed) and free s. Returns 0 if it exited with status 0, else -1. NULL is fine.
 * Call it once every thread that may call signer_sign has stopped.
 */
int signer_stop(struct signer *s);

/*
 * The signer's loop: answer requests on fd (a SOCK_SEQPACKET socket) with ca until end of
 * file or until the other end goes. signer_start's child runs it; tests run it on a
 * socketpair of their own to send it raw messages.
 */
void signer_serve(int fd, struct ca *ca);

/* Which key pair signer_leaf_key_new makes. */
enum signer_leaf_type {
    SIGNER_LEAF_EC_P256, /* the default: small, fast handshakes */
    SIGNER_LEAF_RSA2048, /* for clients that speak no ECDSA */
};

/*
 * A new key pair for leaf certificates. haven makes one at start-up and uses it for every
 * leaf it has minted (so a restart rotates it); the workers hold it, not the signer.
 * Returns the key (caller EVP_PKEY_free()s it), or NULL.
 */
EVP_PKEY *signer_leaf_key_new(enum signer_leaf_type type);

#endif
