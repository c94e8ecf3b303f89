/*
 * stream.c -- one TLS connection over memory buffers, for a libuv event loop.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/stream.h"

static void stream_error(const char *what, char *err, size_t errlen)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    if (e == 0) {
        snprintf(err, errlen, "%s", what);
        return;
    }
    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s: %s", what, buf);
    ERR_clear_error();
}

static int stream_init(struct tls_stream *t, SSL_CTX *ctx, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->ssl = SSL_new(ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        stream_error("cannot make a TLS connection", err, errlen);
        BIO_free(t->in);
        BIO_free(t->out);
        SSL_free(t->ssl);
        t->ssl = NULL;
        return -1;
    }
    /* An empty input BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(t->in, -1);
    SSL_set_bio(t->ssl, t->in, t->out);
    return 0;
}

int tls_stream_server(struct tls_stream *t, SSL_CTX *ctx, X509 *leaf, X509 *chain, EVP_PKEY *key,
                      char *err, size_t errlen)
{
    if (stream_init(t, ctx, err, errlen) < 0)
        return -1;
    if (SSL_use_certificate(t->ssl, leaf) != 1 || SSL_use_PrivateKey(t->ssl, key) != 1 ||
        (chain && SSL_add1_chain_cert(t->ssl, chain) != 1)) {
        stream_error("cannot use the minted certificate", err, errlen);
        tls_stream_free(t);
        return -1;
    }
    SSL_set_accept_state(t->ssl);
    return 0;
}

int tls_stream_client(struct tls_stream *t, SSL_CTX *ctx, const char *host, SSL_SESSION *resume,
                      char *err, size_t errlen)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok;

    if (stream_init(t, ctx, err, errlen) < 0)
        return -1;
    if (is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1;
    } else {
        /* The SNI macro casts its argument to void *: give it a copy it may not change. */
        char name[256];
        snprintf(name, sizeof(name), "%s", host);
        ok = SSL_set_tlsext_host_name(t->ssl, name) == 1 && SSL_set1_host(t->ssl, host) == 1;
    }
    if (resume)
        (void)SSL_set_session(t->ssl, resume); /* a session it cannot use is ignored */
    if (!ok || SSL_set_alpn_protos(t->ssl, alpn, sizeof(alpn) - 1) != 0) {
        stream_error("cannot set up TLS to the site", err, errlen);
        tls_stream_free(t);
        return -1;
    }
    SSL_set_connect_state(t->ssl);
    return 0;
}

void tls_stream_free(struct tls_stream *t)
{
    /*
     * haven closes the TCP connection without a close_notify; after a completed handshake
     * that is a normal end, and must not make OpenSSL mark the session unusable for
     * resumption (it does for connections it thinks were cut short).
     */
    if (t->ssl && t->done)
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl); /* frees the BIOs too */
    memset(t, 0, sizeof(*t));
}

int tls_stream_feed(struct tls_stream *t, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    return BIO_write(t->in, data, (int)len) == (int)len ? 0 : -1;
}

int tls_stream_handshake(struct tls_stream *t, char *err, size_t errlen)
{
    int r;

    if (t->done)
        return 1;
    r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = 1;
        return 1;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        if (SSL_get_verify_result(t->ssl) != X509_V_OK && tls_stream_verify_problem(t)) {
            snprintf(err, errlen, "%s", tls_stream_verify_problem(t));
            ERR_clear_error();
        } else {
            stream_error("TLS handshake failed", err, errlen);
        }
        return -1;
    }
}

ssize_t tls_stream_read(struct tls_stream *t, void *buf, size_t size)
{
    size_t n = 0;

    if (SSL_read_ex(t->ssl, buf, size, &n) == 1)
        return (ssize_t)n;
    switch (SSL_get_error(t->ssl, 0)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        ERR_clear_error();
        return -1;
    }
}

int tls_stream_write(struct tls_stream *t, const void *data, size_t len)
{
    size_t n = 0;

    if (len == 0)
        return 0;
    /* A memory BIO takes everything: one call writes it all, as records. */
    if (SSL_write_ex(t->ssl, data, len, &n) != 1 || n != len) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

size_t tls_stream_pending(const struct tls_stream *t)
{
    return BIO_ctrl_pending(t->out);
}

size_t tls_stream_take(struct tls_stream *t, void *buf, size_t size)
{
    int n = BIO_read(t->out, buf, (int)(size > INT32_MAX ? INT32_MAX : size));

    return n > 0 ? (size_t)n : 0;
}

const char *tls_stream_verify_problem(const struct tls_stream *t)
{
    switch (SSL_get_verify_result(t->ssl)) {
    case X509_V_OK:
        return NULL;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "The site's security certificate has expired.";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "The site's security certificate is not valid yet.";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "The site's security certificate is for a different site.";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return "The site's security certificate is self-signed: nobody vouches for it.";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return "The site's security certificate is not from an authority this network trusts.";
    case X509_V_ERR_CERT_REVOKED:
        return "The site's security certificate has been revoked.";
    default:
        return "The site's security certificate could not be verified.";
    }
}
