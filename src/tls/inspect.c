/*
 * inspect.c -- what HTTPS inspection shares across workers.
 *
 * DESIGN. The leaf cache is a chained hash of host names with an LRU list, under
 * one mutex: a lookup is a hash, a string compare and a list splice, once per
 * inspected connection. A miss mints through the signer outside the lock; two
 * workers missing the same host at once both mint, and the second insert wins
 * (harmless: both leaves are valid).
 */
#include "common/compat.h"

#include <pthread.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "tls/ca.h"
#include "tls/inspect.h"
#include "tls/signer.h"

struct leaf {
    char *host;
    X509 *cert;
    SSL_SESSION *session; /* the last TLS session with the site itself, to resume */
    int64_t minted;       /* seconds since the epoch */
    struct leaf *chain;
    struct leaf *newer, *older;
};

struct tls_inspect {
    struct signer *signer;
    EVP_PKEY *leaf_key;
    X509 *ca_cert;
    SSL_CTX *server_ctx, *origin_ctx;
    pthread_mutex_t mu;
    struct leaf **buckets;
    size_t nbuckets, count, cap;
    struct leaf *newest, *oldest;
    uint64_t hits, misses, mint_errors;
};

static size_t inspect_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void inspect_ssl_error(const char *what, char *err, size_t errlen)
{
    char buf[256];

    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    snprintf(err, errlen, "%s: %s", what, buf);
    ERR_clear_error();
}

static struct leaf **inspect_slot(struct tls_inspect *ti, const char *host);

/*
 * A new session with an origin (TLS 1.3 sends it after the handshake): keep it beside the
 * site's leaf, so the next connection resumes instead of a full handshake and certificate
 * check. Sites without a leaf in the cache (evicted) keep none.
 */
static int inspect_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_inspect *ti = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    struct leaf *l;
    int kept = 0;

    if (!host)
        return 0;
    pthread_mutex_lock(&ti->mu);
    l = *inspect_slot(ti, host);
    if (l) {
        SSL_SESSION_free(l->session);
        l->session = sess;
        kept = 1;
    }
    pthread_mutex_unlock(&ti->mu);
    return kept; /* 1: we hold the reference OpenSSL gave us */
}

SSL_SESSION *tls_inspect_session(struct tls_inspect *ti, const char *host)
{
    SSL_SESSION *s = NULL;
    struct leaf *l;

    pthread_mutex_lock(&ti->mu);
    l = *inspect_slot(ti, host);
    if (l && l->session && SSL_SESSION_is_resumable(l->session)) {
        s = l->session;
        SSL_SESSION_up_ref(s);
    }
    pthread_mutex_unlock(&ti->mu);
    return s;
}

/* The client side speaks HTTP/1.1 only: haven's HTTP path is HTTP/1.1. */
static int inspect_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                        const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

struct tls_inspect *tls_inspect_create(const struct tls_inspect_config *cfg, char *err,
                                       size_t errlen)
{
    struct tls_inspect *ti = xcalloc(1, sizeof(*ti));
    char path[4096];

    pthread_mutex_init(&ti->mu, NULL);
    ti->cap = cfg->cache_size ? cfg->cache_size : 1;
    ti->nbuckets = 64;
    while (ti->nbuckets < ti->cap)
        ti->nbuckets *= 2;
    ti->buckets = xcalloc(ti->nbuckets, sizeof(*ti->buckets));
    snprintf(path, sizeof(path), "%s/%s", cfg->ca_dir, CA_CERT_FILE);
    ti->ca_cert = ca_load_cert(path, err, errlen);
    if (!ti->ca_cert)
        goto fail;
    ti->leaf_key = signer_leaf_key_new(SIGNER_LEAF_EC_P256);
    if (!ti->leaf_key) {
        inspect_ssl_error("cannot make the leaf key", err, errlen);
        goto fail;
    }
    ti->server_ctx = SSL_CTX_new(TLS_server_method());
    ti->origin_ctx = SSL_CTX_new(TLS_client_method());
    if (!ti->server_ctx || !ti->origin_ctx) {
        inspect_ssl_error("cannot make TLS contexts", err, errlen);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ti->server_ctx, TLS1_2_VERSION);
    SSL_CTX_set_alpn_select_cb(ti->server_ctx, inspect_alpn, NULL);
    SSL_CTX_set_session_cache_mode(ti->server_ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_min_proto_version(ti->origin_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ti->origin_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_app_data(ti->origin_ctx, ti);
    SSL_CTX_set_session_cache_mode(ti->origin_ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ti->origin_ctx, inspect_new_session);
    if (SSL_CTX_set_default_verify_paths(ti->origin_ctx) != 1) {
        inspect_ssl_error("cannot read the system's trusted certificates", err, errlen);
        goto fail;
    }
    if (cfg->upstream_ca &&
        SSL_CTX_load_verify_locations(ti->origin_ctx, cfg->upstream_ca, NULL) != 1) {
        inspect_ssl_error(cfg->upstream_ca, err, errlen);
        goto fail;
    }
    if (signer_start(cfg->ca_dir, cfg->uid, cfg->gid, &ti->signer, err, errlen) < 0)
        goto fail;
    return ti;
fail:
    tls_inspect_destroy(ti);
    return NULL;
}

static void inspect_free_leaf(struct leaf *l)
{
    SSL_SESSION_free(l->session);
    X509_free(l->cert);
    free(l->host);
    free(l);
}

void tls_inspect_destroy(struct tls_inspect *ti)
{
    if (!ti)
        return;
    signer_stop(ti->signer);
    for (struct leaf *l = ti->newest, *next; l; l = next) {
        next = l->older;
        inspect_free_leaf(l);
    }
    free(ti->buckets);
    SSL_CTX_free(ti->server_ctx);
    SSL_CTX_free(ti->origin_ctx);
    EVP_PKEY_free(ti->leaf_key);
    X509_free(ti->ca_cert);
    pthread_mutex_destroy(&ti->mu);
    free(ti);
}

/* With the lock held. */
static struct leaf **inspect_slot(struct tls_inspect *ti, const char *host)
{
    struct leaf **pp = &ti->buckets[inspect_hash(host) & (ti->nbuckets - 1)];

    while (*pp && strcmp((*pp)->host, host) != 0)
        pp = &(*pp)->chain;
    return pp;
}

static void inspect_unlink(struct tls_inspect *ti, struct leaf *l)
{
    if (l->newer)
        l->newer->older = l->older;
    else
        ti->newest = l->older;
    if (l->older)
        l->older->newer = l->newer;
    else
        ti->oldest = l->newer;
    l->newer = l->older = NULL;
}

static void inspect_push(struct tls_inspect *ti, struct leaf *l)
{
    l->older = ti->newest;
    if (ti->newest)
        ti->newest->newer = l;
    else
        ti->oldest = l;
    ti->newest = l;
}

/* With the lock held: take l out of the cache and free it. */
static void inspect_drop(struct tls_inspect *ti, struct leaf *l)
{
    struct leaf **pp = inspect_slot(ti, l->host);

    *pp = l->chain;
    inspect_unlink(ti, l);
    ti->count--;
    inspect_free_leaf(l);
}

X509 *tls_inspect_cached(struct tls_inspect *ti, const char *host)
{
    X509 *cert = NULL;
    struct leaf *l;

    pthread_mutex_lock(&ti->mu);
    l = *inspect_slot(ti, host);
    if (l && clock_now() - l->minted >= TLS_INSPECT_LEAF_REUSE) {
        inspect_drop(ti, l);
        l = NULL;
    }
    if (l) {
        inspect_unlink(ti, l);
        inspect_push(ti, l);
        X509_up_ref(l->cert);
        cert = l->cert;
        ti->hits++;
    } else {
        ti->misses++;
    }
    pthread_mutex_unlock(&ti->mu);
    return cert;
}

X509 *tls_inspect_mint(struct tls_inspect *ti, const char *host, char *err, size_t errlen)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    int64_t now = clock_now();
    X509 *cert;
    struct leaf **pp;

    if (signer_sign(ti->signer, host, ti->leaf_key, (time_t)now, &der, &len, err, errlen) < 0) {
        pthread_mutex_lock(&ti->mu);
        ti->mint_errors++;
        pthread_mutex_unlock(&ti->mu);
        return NULL;
    }
    p = der;
    cert = d2i_X509(NULL, &p, (long)len);
    free(der);
    if (!cert) {
        inspect_ssl_error("the signer's certificate could not be read", err, errlen);
        return NULL;
    }
    pthread_mutex_lock(&ti->mu);
    pp = inspect_slot(ti, host);
    if (*pp)
        inspect_drop(ti, *pp);
    if (ti->count >= ti->cap)
        inspect_drop(ti, ti->oldest);
    struct leaf *l = xcalloc(1, sizeof(*l));
    l->host = xstrdup(host);
    l->cert = cert;
    l->minted = now;
    X509_up_ref(cert);
    pp = inspect_slot(ti, host);
    *pp = l;
    inspect_push(ti, l);
    ti->count++;
    pthread_mutex_unlock(&ti->mu);
    return cert;
}

SSL_CTX *tls_inspect_server_ctx(struct tls_inspect *ti)
{
    return ti->server_ctx;
}

SSL_CTX *tls_inspect_origin_ctx(struct tls_inspect *ti)
{
    return ti->origin_ctx;
}

EVP_PKEY *tls_inspect_leaf_key(struct tls_inspect *ti)
{
    return ti->leaf_key;
}

X509 *tls_inspect_ca_cert(struct tls_inspect *ti)
{
    return ti->ca_cert;
}

void tls_inspect_get_stats(struct tls_inspect *ti, struct tls_inspect_stats *st)
{
    pthread_mutex_lock(&ti->mu);
    st->hits = ti->hits;
    st->misses = ti->misses;
    st->mint_errors = ti->mint_errors;
    st->cached = ti->count;
    pthread_mutex_unlock(&ti->mu);
}

pid_t tls_inspect_signer_pid(const struct tls_inspect *ti)
{
    return signer_pid(ti->signer);
}
