/*
 * stream.h -- one TLS connection over memory buffers, for a libuv event loop.
 *
 * The event loop owns the socket; a tls_stream only transforms bytes. Bytes read
 * from the socket are fed in (tls_stream_feed), then the handshake is driven or
 * plaintext read out; plaintext written in becomes TLS records waiting in the
 * output (tls_stream_output), which the caller sends. Nothing here blocks or
 * touches a descriptor. One stream is used by one thread at a time.
 */
#ifndef HAVEN_TLS_STREAM_H
#define HAVEN_TLS_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

struct tls_stream {
    SSL *ssl;
    BIO *in, *out; /* owned by ssl */
    int done;      /* handshake complete */
};

/*
 * Server side with certificate leaf (and chain, may be NULL) and key, from ctx. Client side
 * to host: SNI (not for an IP literal), hostname or IP verification, ALPN http/1.1, and a
 * session to resume (may be NULL; the stream takes its own reference).
 * Return 0, or -1 with the reason in err.
 */
int tls_stream_server(struct tls_stream *t, SSL_CTX *ctx, X509 *leaf, X509 *chain, EVP_PKEY *key,
                      char *err, size_t errlen);
int tls_stream_client(struct tls_stream *t, SSL_CTX *ctx, const char *host, SSL_SESSION *resume,
                      char *err, size_t errlen);
void tls_stream_free(struct tls_stream *t);

/* Bytes that arrived from the peer. Returns 0, or -1 (out of memory). */
int tls_stream_feed(struct tls_stream *t, const void *data, size_t len);

/* Drive the handshake: 1 done, 0 needs more input, -1 failed (reason in err). */
int tls_stream_handshake(struct tls_stream *t, char *err, size_t errlen);

/* Plaintext: > 0 bytes, 0 needs more input, -1 the peer closed (close_notify) or failed. */
ssize_t tls_stream_read(struct tls_stream *t, void *buf, size_t size);

/* Encrypt len bytes of plaintext into the output. Returns 0, or -1. */
int tls_stream_write(struct tls_stream *t, const void *data, size_t len);

/* Bytes waiting to be sent to the peer; copy up to size into buf and drop them. */
size_t tls_stream_pending(const struct tls_stream *t);
size_t tls_stream_take(struct tls_stream *t, void *buf, size_t size);

/*
 * Why the origin's certificate was refused, in words for the block page ("The site's
 * certificate has expired."), or NULL if verification passed or never ran.
 */
const char *tls_stream_verify_problem(const struct tls_stream *t);

#endif
