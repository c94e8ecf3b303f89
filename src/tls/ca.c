/*
 * ca.c -- the inspection CA: create it, load it, mint leaf certificates.
 *
 * Everything here uses OpenSSL 3's EVP and X509 interfaces only. The private key is
 * handled as little as possible: generated and written once by ca_create, read back only
 * by the signer process through ca_load, and every buffer that held its PEM text is wiped
 * (OpenSSL's memory BIOs clear their buffers when freed; our own read buffer is cleansed).
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "tls/ca.h"

/* Key and certificate files are small; anything larger is not ours. */
#define CA_MAX_FILE (64 * 1024)
/* The longest CN (RFC 5280 ub-common-name). */
#define CA_MAX_CN 64
#define CA_SERIAL_BYTES 16

struct ca {
    X509 *cert;
    EVP_PKEY *key;
    X509_NAME_ENTRY *org; /* the CA subject's O, copied into each leaf; may be NULL */

    /* The last leaf key minted for, as DER and decoded (see ca_mint_leaf). */
    pthread_mutex_t lock;
    unsigned char *spki;
    size_t spki_len;
    X509_PUBKEY *pub;
    int rsa;
};

__attribute__((format(printf, 3, 4))) static void ca_err(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "what: OpenSSL's reason" for the latest error on this thread's queue, which is cleared. */
static void ca_ossl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256] = "unknown error";

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    ca_err(err, errlen, "%s (OpenSSL: %s)", what, reason);
}

/* A random positive serial of exactly CA_SERIAL_BYTES bytes. Returns 0 or -1. */
static int ca_set_serial(X509 *x)
{
    unsigned char bytes[CA_SERIAL_BYTES];
    ASN1_INTEGER *ai = NULL;
    BIGNUM *bn = NULL;
    int rc = -1;

    if (RAND_bytes(bytes, sizeof(bytes)) != 1)
        goto out;
    /* Top bit clear (positive), next bit set (no leading zero byte, so never 0). */
    bytes[0] = (unsigned char)((bytes[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
    if (!bn)
        goto out;
    ai = BN_to_ASN1_INTEGER(bn, NULL);
    if (!ai)
        goto out;
    if (X509_set_serialNumber(x, ai) != 1)
        goto out;
    rc = 0;
out:
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return rc;
}

/* Add an extension given in OpenSSL's configuration syntax ("critical,CA:TRUE"). */
static int ca_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok;

    if (!ext)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* Whether s[0..len) is well-formed UTF-8 with no control characters. */
static int ca_text_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* ----- files ----- */

/*
 * Write data to a new file in dirfd under a fresh temporary name ".NAME.XXXXXXXX", created
 * with O_EXCL|O_NOFOLLOW and the final mode from the start, then flushed to disk. The
 * temporary name goes to tmp. Returns 0, or -1 with the reason in err (nothing left behind).
 */
static int ca_write_tmp(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                        mode_t mode, char *tmp, size_t tmpsize, char *err, size_t errlen)
{
    const unsigned char *p = data;
    unsigned char rnd[4];
    int fd = -1, rc = -1;

    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            ca_ossl_err(err, errlen, "cannot make a temporary file name");
            return -1;
        }
        snprintf(tmp, tmpsize, ".%s.%02x%02x%02x%02x", name, rnd[0], rnd[1], rnd[2], rnd[3]);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST) {
            ca_err(err, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    if (fd < 0) {
        ca_err(err, errlen, "cannot create a temporary file in %s", dir);
        return -1;
    }
    /* The umask may have narrowed the mode; never widened it. Set exactly what we mean. */
    if (fchmod(fd, mode) != 0) {
        ca_err(err, errlen, "%s/%s: cannot set the mode: %s", dir, tmp, strerror(errno));
        goto out;
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ca_err(err, errlen, "%s/%s: %s", dir, tmp, n < 0 ? strerror(errno) : "short write");
            goto out;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        ca_err(err, errlen, "%s/%s: %s", dir, tmp, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0 && close(fd) != 0 && rc == 0) {
        ca_err(err, errlen, "%s/%s: %s", dir, tmp, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

/*
 * Move tmp to name inside dirfd. With noreplace, fail with EEXIST rather than replace an
 * existing file (renameat2 RENAME_NOREPLACE, or link + unlink where the file system has no
 * renameat2). Returns 0 or -1 with errno set.
 */
static int ca_rename(int dirfd, const char *tmp, const char *name, int noreplace)
{
    if (!noreplace)
        return renameat(dirfd, tmp, dirfd, name);
    if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (linkat(dirfd, tmp, dirfd, name, 0) != 0)
        return -1;
    unlinkat(dirfd, tmp, 0);
    return 0;
}

/* Whether name exists in dirfd (as anything, a dangling symbolic link too). */
static int ca_exists(int dirfd, const char *name)
{
    struct stat st;

    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/*
 * Read a whole regular file of at most CA_MAX_FILE bytes (caller wipes and frees it).
 * With private set, refuse a file that group or others can read. NULL with the reason.
 */
static unsigned char *ca_read_file(const char *path, int private, size_t *len, char *err,
                                   size_t errlen)
{
    unsigned char *data = NULL, *result = NULL;
    struct stat st;
    size_t got = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ca_err(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        ca_err(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ca_err(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (private && (st.st_mode & 077) != 0) {
        ca_err(err, errlen,
               "%s: the CA key is readable by others (mode %04o): `chmod 600 %s`, and think "
               "about whether it has been copied",
               path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size <= 0 || st.st_size > CA_MAX_FILE) {
        ca_err(err, errlen, "%s: %s (%lld bytes)", path,
               st.st_size <= 0 ? "empty" : "too large to be a key or certificate",
               (long long)st.st_size);
        goto out;
    }
    data = xmalloc((size_t)st.st_size);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ca_err(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *len = got;
    result = data;
    data = NULL;
out:
    if (data) {
        OPENSSL_cleanse(data, (size_t)st.st_size);
        free(data);
    }
    close(fd);
    return result;
}

/* A passphrase callback that gives none: an encrypted key fails instead of prompting. */
static int ca_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* ----- creating the CA ----- */

/* The self-signed CA certificate for key; NULL with the reason. */
static X509 *ca_make_cert(EVP_PKEY *key, const char *name, char *err, size_t errlen)
{
    char cn[CA_MAX_CN + 1];
    X509_NAME *subj;
    X509V3_CTX ctx;
    X509 *x = NULL, *result = NULL;
    time_t now = (time_t)clock_now();

    snprintf(cn, sizeof(cn), "%s haven inspection CA", name);
    x = X509_new();
    if (!x || X509_set_version(x, X509_VERSION_3) != 1 || ca_set_serial(x) != 0) {
        ca_ossl_err(err, errlen, "cannot make the CA certificate");
        goto out;
    }
    subj = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_UTF8, (const unsigned char *)name, -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, subj) != 1) {
        ca_ossl_err(err, errlen, "cannot set the CA certificate's name");
        goto out;
    }
    /* From an hour ago, for devices whose clocks run a little slow. */
    if (!ASN1_TIME_set(X509_getm_notBefore(x), now - CA_LEAF_BACKDATE) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), CA_VALIDITY_DAYS, -CA_LEAF_BACKDATE, &now) ||
        X509_set_pubkey(x, key) != 1) {
        ca_ossl_err(err, errlen, "cannot set the CA certificate's validity or key");
        goto out;
    }
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (ca_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        ca_add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        ca_add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0) {
        ca_ossl_err(err, errlen, "cannot add the CA certificate's extensions");
        goto out;
    }
    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        ca_ossl_err(err, errlen, "cannot sign the CA certificate");
        goto out;
    }
    result = x;
    x = NULL;
out:
    X509_free(x);
    return result;
}

int ca_create(const char *dir, const char *name, enum ca_keytype type, unsigned flags, char *err,
              size_t errlen)
{
    int force = (flags & CA_CREATE_FORCE) != 0;
    char key_tmp[64] = "", pem_tmp[64] = "", der_tmp[64] = "";
    unsigned char *der = NULL;
    BIO *key_bio = NULL, *pem_bio = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int dirfd = -1, rc = -1, key_placed = 0, derlen;
    char *data;
    long datalen;
    size_t namelen = name ? strlen(name) : 0;

    if (namelen == 0 || namelen > CA_MAX_NAME) {
        ca_err(err, errlen, "the CA name must be 1 to %d bytes long (it is %zu)", CA_MAX_NAME,
               namelen);
        return -1;
    }
    if (!ca_text_ok(name, namelen)) {
        ca_err(err, errlen, "the CA name must be UTF-8 text without control characters");
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ca_err(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        ca_err(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!force && (ca_exists(dirfd, CA_KEY_FILE) || ca_exists(dirfd, CA_CERT_FILE))) {
        ca_err(err, errlen,
               "%s already holds a CA (%s): not replacing it. Replacing it means every device "
               "must trust the new certificate; give --force to do that",
               dir, ca_exists(dirfd, CA_KEY_FILE) ? CA_KEY_FILE : CA_CERT_FILE);
        goto out;
    }

    key = type == CA_RSA3072 ? EVP_RSA_gen(3072) : EVP_EC_gen("P-256");
    if (!key) {
        ca_ossl_err(err, errlen, "cannot generate the CA key");
        goto out;
    }
    cert = ca_make_cert(key, name, err, errlen);
    if (!cert)
        goto out;

    /* The key: PKCS#8 PEM, unencrypted (the signer must start unattended), mode 0600. */
    key_bio = BIO_new(BIO_s_mem());
    if (!key_bio || PEM_write_bio_PKCS8PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        ca_ossl_err(err, errlen, "cannot encode the CA key");
        goto out;
    }
    datalen = BIO_get_mem_data(key_bio, &data);
    if (ca_write_tmp(dirfd, dir, CA_KEY_FILE, data, (size_t)datalen, 0600, key_tmp, sizeof(key_tmp),
                     err, errlen) != 0) {
        key_tmp[0] = '\0';
        goto out;
    }
    pem_bio = BIO_new(BIO_s_mem());
    if (!pem_bio || PEM_write_bio_X509(pem_bio, cert) != 1) {
        ca_ossl_err(err, errlen, "cannot encode the CA certificate");
        goto out;
    }
    datalen = BIO_get_mem_data(pem_bio, &data);
    if (ca_write_tmp(dirfd, dir, CA_CERT_FILE, data, (size_t)datalen, 0644, pem_tmp,
                     sizeof(pem_tmp), err, errlen) != 0) {
        pem_tmp[0] = '\0';
        goto out;
    }
    derlen = i2d_X509(cert, &der);
    if (derlen <= 0) {
        ca_ossl_err(err, errlen, "cannot encode the CA certificate");
        goto out;
    }
    if (ca_write_tmp(dirfd, dir, CA_DER_FILE, der, (size_t)derlen, 0644, der_tmp, sizeof(der_tmp),
                     err, errlen) != 0) {
        der_tmp[0] = '\0';
        goto out;
    }

    /* Everything is on disk under temporary names: move it into place, key first. */
    if (ca_rename(dirfd, key_tmp, CA_KEY_FILE, !force) != 0) {
        ca_err(err, errlen,
               errno == EEXIST ? "%s/%s appeared while the CA was being made: not replacing it"
                               : "cannot move the key into place in %s/%s: %s",
               dir, CA_KEY_FILE, strerror(errno));
        goto out;
    }
    key_tmp[0] = '\0';
    key_placed = 1;
    if (ca_rename(dirfd, pem_tmp, CA_CERT_FILE, !force) != 0) {
        ca_err(err, errlen, "cannot move the certificate into place in %s/%s: %s", dir,
               CA_CERT_FILE, strerror(errno));
        goto out;
    }
    pem_tmp[0] = '\0';
    if (ca_rename(dirfd, der_tmp, CA_DER_FILE, 0) != 0) {
        ca_err(err, errlen, "cannot move the certificate into place in %s/%s: %s", dir, CA_DER_FILE,
               strerror(errno));
        goto out;
    }
    der_tmp[0] = '\0';
    if (fsync(dirfd) != 0) {
        ca_err(err, errlen, "%s: %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (key_tmp[0])
        unlinkat(dirfd, key_tmp, 0);
    if (pem_tmp[0])
        unlinkat(dirfd, pem_tmp, 0);
    if (der_tmp[0])
        unlinkat(dirfd, der_tmp, 0);
    /* A new key without its certificate is useless; we made it (no-replace), so remove it. */
    if (rc != 0 && key_placed && !force)
        unlinkat(dirfd, CA_KEY_FILE, 0);
    if (dirfd >= 0)
        close(dirfd);
    OPENSSL_free(der);
    BIO_free(key_bio); /* a memory BIO wipes its buffer when freed */
    BIO_free(pem_bio);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* ----- loading ----- */

X509 *ca_load_cert(const char *cert_path, char *err, size_t errlen)
{
    unsigned char *data;
    const unsigned char *p;
    X509 *x = NULL;
    BIO *bio;
    size_t len = 0;

    data = ca_read_file(cert_path, 0, &len, err, errlen);
    if (!data)
        return NULL;
    if (len >= 10 && memcmp(data, "-----BEGIN", 10) == 0) {
        bio = BIO_new_mem_buf(data, (int)len);
        if (bio)
            x = PEM_read_bio_X509(bio, NULL, ca_no_passphrase, NULL);
        BIO_free(bio);
    } else {
        p = data;
        x = d2i_X509(NULL, &p, (long)len);
    }
    if (!x) {
        char what[512];
        snprintf(what, sizeof(what), "%s: not a PEM or DER certificate", cert_path);
        ca_ossl_err(err, errlen, what);
    }
    free(data);
    return x;
}

struct ca *ca_load_files(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
    struct ca *ca = NULL, *result = NULL;
    unsigned char *data = NULL;
    X509_NAME *subj;
    size_t len = 0;
    BIO *bio = NULL;
    int idx;

    ca = xcalloc(1, sizeof(*ca));
    pthread_mutex_init(&ca->lock, NULL);
    ca->cert = ca_load_cert(cert_path, err, errlen);
    if (!ca->cert)
        goto out;
    if (X509_check_ca(ca->cert) < 1) {
        ca_err(err, errlen, "%s: not a CA certificate (no basicConstraints CA:TRUE)", cert_path);
        goto out;
    }
    data = ca_read_file(key_path, 1, &len, err, errlen);
    if (!data)
        goto out;
    bio = BIO_new_mem_buf(data, (int)len);
    if (bio)
        ca->key = PEM_read_bio_PrivateKey(bio, NULL, ca_no_passphrase, NULL);
    if (!ca->key) {
        char what[512];
        snprintf(what, sizeof(what),
                 "%s: not an unencrypted PEM private key (haven needs the key without a "
                 "passphrase, protected by its mode 0600 instead)",
                 key_path);
        ca_ossl_err(err, errlen, what);
        goto out;
    }
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        ERR_clear_error();
        ca_err(err, errlen, "%s is not the key of the certificate %s", key_path, cert_path);
        goto out;
    }
    subj = X509_get_subject_name(ca->cert);
    idx = X509_NAME_get_index_by_NID(subj, NID_organizationName, -1);
    if (idx >= 0)
        ca->org = X509_NAME_ENTRY_dup(X509_NAME_get_entry(subj, idx));
    result = ca;
    ca = NULL;
out:
    BIO_free(bio);
    if (data) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
    ca_free(ca);
    return result;
}

struct ca *ca_load(const char *dir, char *err, size_t errlen)
{
    char cert_path[4096], key_path[4096];

    if ((size_t)snprintf(cert_path, sizeof(cert_path), "%s/%s", dir, CA_CERT_FILE) >=
            sizeof(cert_path) ||
        (size_t)snprintf(key_path, sizeof(key_path), "%s/%s", dir, CA_KEY_FILE) >=
            sizeof(key_path)) {
        ca_err(err, errlen, "the CA directory name is too long");
        return NULL;
    }
    return ca_load_files(cert_path, key_path, err, errlen);
}

void ca_free(struct ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key); /* OpenSSL clears the private key material */
    X509_NAME_ENTRY_free(ca->org);
    X509_PUBKEY_free(ca->pub);
    free(ca->spki);
    pthread_mutex_destroy(&ca->lock);
    free(ca);
}

X509 *ca_cert(const struct ca *ca)
{
    return ca->cert;
}

/* ----- leaves ----- */

int ca_check_host(const char *host, size_t len, int *is_ip, char *err, size_t errlen)
{
    char buf[CA_MAX_HOST + 1];
    unsigned char addr[16];
    size_t label = 0, i;
    int all_digits = 1;

    if (is_ip)
        *is_ip = 0;
    if (len == 0) {
        ca_err(err, errlen, "the host name is empty");
        return -1;
    }
    if (len > CA_MAX_HOST) {
        ca_err(err, errlen, "the host name is %zu bytes long, more than %d", len, CA_MAX_HOST);
        return -1;
    }
    if (memchr(host, '\0', len)) {
        ca_err(err, errlen, "the host name contains a NUL byte");
        return -1;
    }
    memcpy(buf, host, len);
    buf[len] = '\0';
    /* Only what an IPv6 literal is made of (and brackets and zones, to name them) is one. */
    if (memchr(buf, ':', len) && strspn(buf, "0123456789abcdefABCDEF:.[]") >= strcspn(buf, "%")) {
        if (buf[0] == '[') {
            ca_err(err, errlen, "an IPv6 literal is given without brackets");
            return -1;
        }
        if (memchr(buf, '%', len)) {
            ca_err(err, errlen, "an IPv6 literal with a zone (%%) cannot be in a certificate");
            return -1;
        }
        if (inet_pton(AF_INET6, buf, addr) != 1) {
            ca_err(err, errlen, "'%s' is not a valid IPv6 address", buf);
            return -1;
        }
        if (is_ip)
            *is_ip = 1;
        return 0;
    }
    if (inet_pton(AF_INET, buf, addr) == 1) {
        if (is_ip)
            *is_ip = 1;
        return 0;
    }
    for (i = 0; i <= len; i++) {
        char c = i < len ? buf[i] : '.';
        if (c == '.') {
            if (label == 0) {
                ca_err(err, errlen, "the host name has an empty label (%s)",
                       i == len ? "it ends with a dot" : "two dots or a leading dot");
                return -1;
            }
            if (buf[i - 1] == '-') {
                ca_err(err, errlen, "a label of the host name ends with '-'");
                return -1;
            }
            if (i == len && all_digits) {
                ca_err(err, errlen,
                       "the host name's last label is all digits, but it is not an IPv4 "
                       "address");
                return -1;
            }
            label = 0;
            all_digits = 1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
                ca_err(err, errlen,
                       "the host name has the byte 0x%02x, which is not a letter, digit, '-' or "
                       "'_' (internationalised names are given in their xn-- form)",
                       (unsigned char)c);
            else
                ca_err(err, errlen,
                       "the host name has '%c', which is not a letter, digit, '-' or '_'", c);
            return -1;
        }
        if (label == 0 && c == '-') {
            ca_err(err, errlen, "a label of the host name starts with '-'");
            return -1;
        }
        if (c < '0' || c > '9')
            all_digits = 0;
        if (++label > 63) {
            ca_err(err, errlen, "a label of the host name is longer than 63 bytes");
            return -1;
        }
    }
    return 0;
}

int ca_check_leaf_key(EVP_PKEY *key, int *rsa, char *err, size_t errlen)
{
    char group[64];
    size_t glen = 0;
    int id = EVP_PKEY_get_base_id(key);

    if (rsa)
        *rsa = 0;
    if (id == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(key) < 2048 || EVP_PKEY_get_bits(key) > 8192) {
            ca_err(err, errlen, "the leaf key is RSA of %d bits; 2048 to 8192 are accepted",
                   EVP_PKEY_get_bits(key));
            return -1;
        }
        if (rsa)
            *rsa = 1;
        return 0;
    }
    if (id == EVP_PKEY_EC) {
        if (EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0)) {
            ERR_clear_error();
            ca_err(err, errlen, "the leaf key is on the curve %s; P-256 and P-384 are accepted",
                   glen ? group : "(unnamed)");
            return -1;
        }
        return 0;
    }
    ca_err(err, errlen, "the leaf key is of a type browsers do not take (%s); use EC or RSA",
           OBJ_nid2sn(id));
    return -1;
}

/* Decode spki (exactly len bytes) and check its key; sets *rsa. NULL with the reason. */
static X509_PUBKEY *ca_decode_spki(const unsigned char *spki, size_t len, int *rsa, char *err,
                                   size_t errlen)
{
    const unsigned char *p = spki;
    X509_PUBKEY *pub;
    EVP_PKEY *key;

    if (len == 0 || len > INT32_MAX) {
        ca_err(err, errlen, "the public key is %s", len ? "too large" : "empty");
        return NULL;
    }
    pub = d2i_X509_PUBKEY(NULL, &p, (long)len);
    key = pub ? X509_PUBKEY_get0(pub) : NULL;
    if (!key) {
        ERR_clear_error();
        X509_PUBKEY_free(pub);
        ca_err(err, errlen, "the public key is not a DER SubjectPublicKeyInfo");
        return NULL;
    }
    if (p != spki + len) {
        ca_err(err, errlen, "the public key is followed by %zu stray bytes",
               (size_t)(spki + len - p));
        X509_PUBKEY_free(pub);
        return NULL;
    }
    if (ca_check_leaf_key(key, rsa, err, errlen) != 0) {
        X509_PUBKEY_free(pub);
        return NULL;
    }
    return pub;
}

int ca_check_spki(const unsigned char *spki, size_t len, char *err, size_t errlen)
{
    X509_PUBKEY *pub = ca_decode_spki(spki, len, NULL, err, errlen);

    X509_PUBKEY_free(pub);
    return pub ? 0 : -1;
}

/*
 * Put the key of src into x's SubjectPublicKeyInfo as its parts (algorithm, parameters, key
 * bits), which skips the encode-and-decode round X509_set_pubkey makes. Returns 0 or -1.
 */
static int ca_copy_pubkey(X509 *x, const X509_PUBKEY *src)
{
    const ASN1_OBJECT *aobj;
    const unsigned char *pk;
    ASN1_OBJECT *obj = NULL, *alg_obj;
    X509_ALGOR *alg;
    const void *pval;
    void *param = NULL;
    unsigned char *bits = NULL;
    int ptype, pklen;

    if (X509_PUBKEY_get0_param(&alg_obj, &pk, &pklen, &alg, src) != 1 || pklen <= 0)
        return -1;
    X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
    obj = OBJ_dup(aobj);
    if (!obj)
        goto fail;
    if (ptype == V_ASN1_OBJECT) { /* EC: the named curve */
        param = OBJ_dup(pval);
        if (!param)
            goto fail;
    } else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) { /* RSA: NULL */
        goto fail;
    }
    bits = OPENSSL_memdup(pk, (size_t)pklen);
    if (!bits)
        goto fail;
    if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), obj, ptype, param, bits, pklen) != 1)
        goto fail;
    return 0;
fail:
    OPENSSL_free(bits);
    ASN1_OBJECT_free(param);
    ASN1_OBJECT_free(obj);
    return -1;
}

/* Set x's public key from spki, through the one-entry cache; sets *rsa. 0, or -1 with why. */
static int ca_set_leaf_pubkey(struct ca *ca, X509 *x, const unsigned char *spki, size_t len,
                              int *rsa, char *err, size_t errlen)
{
    X509_PUBKEY *pub;
    int rc = -1;

    pthread_mutex_lock(&ca->lock);
    if (!ca->pub || ca->spki_len != len || memcmp(ca->spki, spki, len) != 0) {
        int is_rsa = 0;
        pub = ca_decode_spki(spki, len, &is_rsa, err, errlen);
        if (!pub)
            goto out;
        X509_PUBKEY_free(ca->pub);
        free(ca->spki);
        ca->pub = pub;
        ca->spki = xmalloc(len);
        memcpy(ca->spki, spki, len);
        ca->spki_len = len;
        ca->rsa = is_rsa;
    }
    if (ca_copy_pubkey(x, ca->pub) != 0) {
        ca_ossl_err(err, errlen, "cannot set the leaf certificate's key");
        goto out;
    }
    *rsa = ca->rsa;
    rc = 0;
out:
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

/* The subjectAltName extension: one dNSName or one iPAddress. */
static int ca_add_san(X509 *x, const char *host, int is_ip)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    unsigned char addr[16];
    int alen = 0, rc = -1;

    if (!gens || !gn)
        goto out;
    if (is_ip) {
        ASN1_OCTET_STRING *os;
        if (inet_pton(AF_INET, host, addr) == 1)
            alen = 4;
        else if (inet_pton(AF_INET6, host, addr) == 1)
            alen = 16;
        else
            goto out;
        os = ASN1_OCTET_STRING_new();
        if (!os || ASN1_OCTET_STRING_set(os, addr, alen) != 1) {
            ASN1_OCTET_STRING_free(os);
            goto out;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
    } else {
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        if (!ia5 || ASN1_STRING_set(ia5, host, (int)strlen(host)) != 1) {
            ASN1_IA5STRING_free(ia5);
            goto out;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    }
    if (sk_GENERAL_NAME_push(gens, gn) <= 0)
        goto out;
    gn = NULL;
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        goto out;
    rc = 0;
out:
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    return rc;
}

int ca_mint_leaf(struct ca *ca, const char *host, const unsigned char *spki, size_t spki_len,
                 time_t now, unsigned char **der, size_t *len, char *err, size_t errlen)
{
    char name[CA_MAX_HOST + 1], cn[CA_MAX_CN + 1];
    size_t hlen = host ? strlen(host) : 0;
    unsigned char *out = NULL, *p;
    X509_NAME *subj;
    X509V3_CTX ctx;
    X509 *x = NULL;
    int is_ip, rsa = 0, n, rc = -1;
    time_t not_before = now - CA_LEAF_BACKDATE, not_after = now + CA_LEAF_LIFETIME;

    *der = NULL;
    *len = 0;
    if (ca_check_host(host ? host : "", hlen, &is_ip, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i <= hlen; i++)
        name[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] - 'A' + 'a' : host[i]);
    /* A CN holds at most 64 bytes; browsers read the SAN, the CN is for people to read. */
    if (hlen <= CA_MAX_CN)
        snprintf(cn, sizeof(cn), "%s", name);
    else
        snprintf(cn, sizeof(cn), "%.61s...", name);

    if (X509_cmp_time(X509_get0_notAfter(ca->cert), &now) <= 0) {
        ca_err(err, errlen,
               "the CA certificate has expired: make a new one with `haven ca init --force` and "
               "deploy it");
        return -1;
    }
    if (X509_cmp_time(X509_get0_notBefore(ca->cert), &now) >= 0) {
        ca_err(err, errlen, "the CA certificate is not valid yet (is the clock right?)");
        return -1;
    }

    x = X509_new();
    if (!x || X509_set_version(x, X509_VERSION_3) != 1 || ca_set_serial(x) != 0 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1) {
        ca_ossl_err(err, errlen, "cannot make the leaf certificate");
        goto out;
    }
    subj = X509_get_subject_name(x);
    if ((ca->org && X509_NAME_add_entry(subj, ca->org, -1, 0) != 1) ||
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1) {
        ca_ossl_err(err, errlen, "cannot set the leaf certificate's name");
        goto out;
    }
    if (!ASN1_TIME_set(X509_getm_notBefore(x), not_before)) {
        ca_ossl_err(err, errlen, "cannot set the leaf certificate's validity");
        goto out;
    }
    /* Never past the CA's own end. */
    if (X509_cmp_time(X509_get0_notAfter(ca->cert), &not_after) < 0) {
        if (X509_set1_notAfter(x, X509_get0_notAfter(ca->cert)) != 1) {
            ca_ossl_err(err, errlen, "cannot set the leaf certificate's validity");
            goto out;
        }
    } else if (!ASN1_TIME_set(X509_getm_notAfter(x), not_after)) {
        ca_ossl_err(err, errlen, "cannot set the leaf certificate's validity");
        goto out;
    }
    if (ca_set_leaf_pubkey(ca, x, spki, spki_len, &rsa, err, errlen) != 0)
        goto out;
    X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
    if (ca_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        ca_add_ext(x, &ctx, NID_key_usage,
                   rsa ? "critical,digitalSignature,keyEncipherment"
                       : "critical,digitalSignature") != 0 ||
        ca_add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") != 0 ||
        ca_add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        ca_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0 ||
        ca_add_san(x, name, is_ip) != 0) {
        ca_ossl_err(err, errlen, "cannot add the leaf certificate's extensions");
        goto out;
    }
    if (X509_sign(x, ca->key, EVP_sha256()) <= 0) {
        ca_ossl_err(err, errlen, "cannot sign the leaf certificate");
        goto out;
    }
    n = i2d_X509(x, NULL);
    if (n <= 0) {
        ca_ossl_err(err, errlen, "cannot encode the leaf certificate");
        goto out;
    }
    out = xmalloc((size_t)n);
    p = out;
    if (i2d_X509(x, &p) != n) {
        ca_ossl_err(err, errlen, "cannot encode the leaf certificate");
        goto out;
    }
    *der = out;
    *len = (size_t)n;
    out = NULL;
    rc = 0;
out:
    free(out);
    X509_free(x);
    return rc;
}

void ca_fingerprint(X509 *cert, char out[CA_FINGERPRINT_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    size_t o = 0;

    out[0] = '\0';
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32)
        return;
    for (unsigned int i = 0; i < n; i++) {
        snprintf(out + o, CA_FINGERPRINT_LEN - o, i ? ":%02X" : "%02X", md[i]);
        o += i ? 3 : 2;
    }
}
