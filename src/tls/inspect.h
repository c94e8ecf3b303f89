/*
 * inspect.h -- what HTTPS inspection shares across workers: the signer, the leaf key,
 * the leaf-certificate cache and the TLS contexts.
 *
 * One struct tls_inspect per server, made before the worker threads start (it forks
 * the signer, tls/signer.h). The leaf key pair (EC P-256) is made at start and used for
 * every minted leaf, so a restart rotates it. Leaves are cached by host name, most
 * recently used first, up to a configured count, and re-minted after
 * TLS_INSPECT_LEAF_REUSE seconds (well inside their 72-hour validity); beside each leaf
 * is the last TLS session with the site itself, which the next connection to it resumes
 * (a short handshake with no certificate to decode and check again). Everything here
 * is thread-safe; tls_inspect_mint blocks (run it on libuv's thread pool).
 */
#ifndef HAVEN_TLS_INSPECT_H
#define HAVEN_TLS_INSPECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define TLS_INSPECT_LEAF_REUSE (24 * 3600)

struct tls_inspect;

struct tls_inspect_config {
    const char *ca_dir;      /* ca.pem and ca.key (the key is read by the signer only) */
    const char *upstream_ca; /* extra trust anchors for origins (PEM file), or NULL */
    uid_t uid;               /* the signer drops to these; -1: stay */
    gid_t gid;
    size_t cache_size; /* leaves kept */
};

struct tls_inspect_stats {
    uint64_t hits, misses, mint_errors;
    size_t cached;
};

struct tls_inspect *tls_inspect_create(const struct tls_inspect_config *cfg, char *err,
                                       size_t errlen);
/* Stop the signer and free everything. No worker may be using it. NULL is fine. */
void tls_inspect_destroy(struct tls_inspect *ti);

/* A cached leaf for host (one reference for the caller, X509_free it), or NULL. */
X509 *tls_inspect_cached(struct tls_inspect *ti, const char *host);
/* Mint a leaf for host through the signer and cache it; blocks. NULL with err on failure. */
X509 *tls_inspect_mint(struct tls_inspect *ti, const char *host, char *err, size_t errlen);

/* The last session with the site host, to resume (one reference for the caller), or NULL. */
SSL_SESSION *tls_inspect_session(struct tls_inspect *ti, const char *host);

/* The context for the client side (the minted leaf is set per connection). */
SSL_CTX *tls_inspect_server_ctx(struct tls_inspect *ti);
/* The context for connections to origins: system trust store (+ upstream_ca), TLS 1.2+. */
SSL_CTX *tls_inspect_origin_ctx(struct tls_inspect *ti);
EVP_PKEY *tls_inspect_leaf_key(struct tls_inspect *ti);
X509 *tls_inspect_ca_cert(struct tls_inspect *ti);

void tls_inspect_get_stats(struct tls_inspect *ti, struct tls_inspect_stats *st);
pid_t tls_inspect_signer_pid(const struct tls_inspect *ti);

#endif
