/* Unit tests: the inspection CA (tls/ca.h): create, load, refuse, mint, verify. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "tls/ca.h"

static char dir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/haven-test-ca-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clock_clear_fake();
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void path_of(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static mode_t mode_of(const char *name)
{
    char path[512];
    struct stat st;

    path_of(path, sizeof(path), name);
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

/* The whole file (caller frees). */
static unsigned char *slurp(const char *name, size_t *len)
{
    char path[512];
    unsigned char *data;
    FILE *f;
    long n;

    path_of(path, sizeof(path), name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static void make_ca(const char *at, enum ca_keytype type)
{
    char err[512] = "";

    if (ca_create(at, "Hillside Primary", type, 0, err, sizeof(err)) != 0)
        fail_msg("ca_create: %s", err);
}

static struct ca *load_ca(void)
{
    char err[512] = "";
    struct ca *ca = ca_load(dir, err, sizeof(err));

    if (!ca)
        fail_msg("ca_load: %s", err);
    return ca;
}

/* ca_mint_leaf with an EVP_PKEY. */
static int mint_key(struct ca *ca, const char *host, EVP_PKEY *key, time_t now, unsigned char **der,
                    size_t *len, char *err, size_t errlen)
{
    unsigned char *spki = NULL;
    int n = i2d_PUBKEY(key, &spki), rc;

    assert_true(n > 0);
    rc = ca_mint_leaf(ca, host, spki, (size_t)n, now, der, len, err, errlen);
    OPENSSL_free(spki);
    return rc;
}

static X509 *mint(struct ca *ca, const char *host, EVP_PKEY *key, time_t now)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    char err[512] = "";
    size_t len = 0;
    X509 *x;

    if (mint_key(ca, host, key, now, &der, &len, err, sizeof(err)) != 0)
        fail_msg("ca_mint_leaf %s: %s", host, err);
    p = der;
    x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    assert_ptr_equal(p, der + len);
    free(der);
    return x;
}

/* Minting fails with a message containing want. */
static void mint_fails(struct ca *ca, const char *host, EVP_PKEY *key, time_t now, const char *want)
{
    unsigned char *der = NULL;
    char err[512] = "";
    size_t len = 0;

    if (mint_key(ca, host, key, now, &der, &len, err, sizeof(err)) == 0)
        fail_msg("minted a leaf for '%s'; expected '%s'", host, want);
    assert_null(der);
    if (!strstr(err, want))
        fail_msg("minting for '%s': got '%s', expected '%s'", host, err, want);
}

/* Verify leaf against the CA at time now as a TLS server certificate for host (or IP). */
static int verify(X509 *cacert, X509 *leaf, const char *host, int is_ip, time_t now)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int ok;

    assert_int_equal(X509_STORE_add_cert(store, cacert), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, now);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (is_ip)
        X509_VERIFY_PARAM_set1_ip_asc(param, host);
    else
        X509_VERIFY_PARAM_set1_host(param, host, 0);
    ok = X509_verify_cert(ctx);
    if (ok != 1)
        print_message("verify %s: %s\n", host,
                      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

/* t as an ASN1_TIME compared with x's time: 0 if equal. */
static int time_cmp(const ASN1_TIME *a, time_t t)
{
    ASN1_TIME *b = ASN1_TIME_set(NULL, t);
    int c = ASN1_TIME_compare(a, b);

    ASN1_TIME_free(b);
    return c;
}

static void text_entry(X509 *x, int nid, char *out, size_t size)
{
    X509_NAME *n = X509_get_subject_name(x);
    int len = X509_NAME_get_text_by_NID(n, nid, out, (int)size);

    if (len < 0)
        out[0] = '\0';
}

static void test_create_files(void **state)
{
    unsigned char *pem, *der, *der2 = NULL;
    size_t pem_len, der_len;
    const unsigned char *p;
    char cn[128], org[128];
    X509 *x;
    BIO *bio;
    int days = 0, secs = 0, n;

    (void)state;
    umask(0); /* the key must still be 0600 and the certificates 0644 */
    make_ca(dir, CA_EC_P256);
    umask(022);
    assert_int_equal(mode_of(CA_KEY_FILE), 0600);
    assert_int_equal(mode_of(CA_CERT_FILE), 0644);
    assert_int_equal(mode_of(CA_DER_FILE), 0644);

    /* ca.der is ca.pem in DER. */
    pem = slurp(CA_CERT_FILE, &pem_len);
    der = slurp(CA_DER_FILE, &der_len);
    bio = BIO_new_mem_buf(pem, (int)pem_len);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    assert_non_null(x);
    n = i2d_X509(x, &der2);
    assert_int_equal((size_t)n, der_len);
    assert_memory_equal(der, der2, der_len);
    p = der;
    X509_free(d2i_X509(NULL, &p, (long)der_len));

    /* The key is PKCS#8 PEM. */
    free(pem);
    pem = slurp(CA_KEY_FILE, &pem_len);
    assert_true(pem_len > 27 && memcmp(pem, "-----BEGIN PRIVATE KEY-----", 27) == 0);

    /* The certificate is what the header promises. */
    text_entry(x, NID_commonName, cn, sizeof(cn));
    text_entry(x, NID_organizationName, org, sizeof(org));
    assert_string_equal(cn, "Hillside Primary haven inspection CA");
    assert_string_equal(org, "Hillside Primary");
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    assert_true(X509_check_ca(x) >= 1);
    assert_int_equal(X509_get_pathlen(x), 0);
    assert_true(X509_get_extension_flags(x) & EXFLAG_CA);
    assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_check_issued(x, x), X509_V_OK);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)),
                     1);
    assert_int_equal(days, CA_VALIDITY_DAYS);
    assert_int_equal(secs, 0);
    /* A positive 16-byte serial. */
    {
        const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
        BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        assert_false(BN_is_negative(bn));
        assert_int_equal(BN_num_bytes(bn), 16);
        BN_free(bn);
    }
    /* Each critical extension is marked so. */
    {
        int bc = X509_get_ext_by_NID(x, NID_basic_constraints, -1);
        int ku = X509_get_ext_by_NID(x, NID_key_usage, -1);
        assert_true(X509_EXTENSION_get_critical(X509_get_ext(x, bc)));
        assert_true(X509_EXTENSION_get_critical(X509_get_ext(x, ku)));
    }
    /* No temporary files are left. */
    {
        DIR *d = opendir(dir);
        struct dirent *e;
        int count = 0;
        assert_non_null(d);
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                count++;
        }
        closedir(d);
        assert_int_equal(count, 3);
    }
    OPENSSL_free(der2);
    X509_free(x);
    BIO_free(bio);
    free(pem);
    free(der);
}

static void test_create_new_dir_mode(void **state)
{
    char sub[512];
    struct stat st;

    (void)state;
    snprintf(sub, sizeof(sub), "%s/ca", dir);
    make_ca(sub, CA_EC_P256);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(sub, sizeof(sub), "%s/no/such", dir);
    {
        char err[512] = "";
        assert_int_equal(ca_create(sub, "X", CA_EC_P256, 0, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "cannot create"));
    }
}

static void test_refuse_overwrite(void **state)
{
    unsigned char *before, *key_before, *after, *key_after;
    size_t blen, klen, alen, kalen;
    char err[512] = "", path[512];

    (void)state;
    make_ca(dir, CA_EC_P256);
    before = slurp(CA_CERT_FILE, &blen);
    key_before = slurp(CA_KEY_FILE, &klen);
    assert_int_equal(ca_create(dir, "Other", CA_EC_P256, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already holds a CA"));
    assert_non_null(strstr(err, "--force"));
    after = slurp(CA_CERT_FILE, &alen);
    key_after = slurp(CA_KEY_FILE, &kalen);
    assert_true(alen == blen && memcmp(before, after, blen) == 0);
    assert_true(kalen == klen && memcmp(key_before, key_after, klen) == 0);
    free(after);
    free(key_after);

    /* With force: a new CA replaces it. */
    assert_int_equal(ca_create(dir, "Other", CA_EC_P256, CA_CREATE_FORCE, err, sizeof(err)), 0);
    after = slurp(CA_CERT_FILE, &alen);
    key_after = slurp(CA_KEY_FILE, &kalen);
    assert_false(alen == blen && memcmp(before, after, blen) == 0);
    assert_false(kalen == klen && memcmp(key_before, key_after, klen) == 0);
    assert_int_equal(mode_of(CA_KEY_FILE), 0600);
    ca_free(load_ca());
    free(before);
    free(key_before);
    free(after);
    free(key_after);

    /* A lone ca.pem, or a dangling symbolic link named ca.key, is refused too. */
    path_of(path, sizeof(path), CA_KEY_FILE);
    unlink(path);
    assert_int_equal(ca_create(dir, "Other", CA_EC_P256, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ca.pem"));
    path_of(path, sizeof(path), CA_CERT_FILE);
    unlink(path);
    path_of(path, sizeof(path), CA_KEY_FILE);
    assert_int_equal(symlink("/tmp/haven-test-ca-nowhere/stolen.key", path), 0);
    assert_int_equal(ca_create(dir, "Other", CA_EC_P256, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ca.key"));
    assert_int_equal(access("/tmp/haven-test-ca-nowhere/stolen.key", F_OK), -1);
}

static void test_bad_names(void **state)
{
    static const struct {
        const char *name, *want;
    } cases[] = {
        {"", "1 to 40 bytes"},
        {"A school whose name is far too long for a CN", "1 to 40 bytes"},
        {"Tab\there", "control characters"},
        {"Bad \xff UTF-8", "UTF-8"},
        {"Overlong \xc0\xae", "UTF-8"},
    };
    char err[512];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        err[0] = '\0';
        assert_int_equal(ca_create(dir, cases[i].name, CA_EC_P256, 0, err, sizeof(err)), -1);
        if (!strstr(err, cases[i].want))
            fail_msg("name '%s': got '%s'", cases[i].name, err);
    }
    /* UTF-8 names are fine. */
    make_ca(dir, CA_EC_P256);
    {
        char err2[512];
        assert_int_equal(ca_create(dir, "Ysgol Gymraeg Llanfair \xc3\xb4", CA_EC_P256,
                                   CA_CREATE_FORCE, err2, sizeof(err2)),
                         0);
    }
}

static void test_load_refusals(void **state)
{
    char err[512] = "", path[512], other[512], cert_path[512];
    struct ca *ca;
    EVP_PKEY *key;
    FILE *f;

    (void)state;
    /* Nothing there. */
    assert_null(ca_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "ca.pem"));
    assert_non_null(strstr(err, "No such file"));

    make_ca(dir, CA_EC_P256);
    path_of(path, sizeof(path), CA_KEY_FILE);
    path_of(cert_path, sizeof(cert_path), CA_CERT_FILE);

    /* A key that others can read. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_null(ca_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "readable by others"));
    assert_non_null(strstr(err, "0644"));
    assert_int_equal(chmod(path, 0640), 0);
    assert_null(ca_load(dir, err, sizeof(err)));
    assert_int_equal(chmod(path, 0600), 0);
    ca_free(load_ca());

    /* Another CA's key. */
    snprintf(other, sizeof(other), "%s/other", dir);
    make_ca(other, CA_EC_P256);
    snprintf(other, sizeof(other), "%s/other/%s", dir, CA_KEY_FILE);
    assert_null(ca_load_files(cert_path, other, err, sizeof(err)));
    assert_non_null(strstr(err, "is not the key of the certificate"));

    /* A key with a passphrase: refused, never prompted for. */
    key = EVP_EC_gen("P-256");
    snprintf(other, sizeof(other), "%s/enc.key", dir);
    f = fopen(other, "w");
    assert_non_null(f);
    assert_int_equal(
        PEM_write_PKCS8PrivateKey(f, key, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)"secret"), 1);
    fclose(f);
    chmod(other, 0600);
    assert_null(ca_load_files(cert_path, other, err, sizeof(err)));
    assert_non_null(strstr(err, "not an unencrypted PEM private key"));
    EVP_PKEY_free(key);

    /* A file that is no key at all. */
    assert_null(ca_load_files(cert_path, cert_path, err, sizeof(err)));
    assert_non_null(strstr(err, "readable by others"));

    /* A leaf is not a CA. */
    ca = load_ca();
    key = EVP_EC_gen("P-256");
    {
        X509 *leaf = mint(ca, "leaf.example", key, (time_t)clock_now());
        snprintf(other, sizeof(other), "%s/leaf.pem", dir);
        f = fopen(other, "w");
        assert_non_null(f);
        PEM_write_X509(f, leaf);
        fclose(f);
        X509_free(leaf);
    }
    assert_null(ca_load_files(other, path, err, sizeof(err)));
    assert_non_null(strstr(err, "not a CA certificate"));
    /* ... and garbage is no certificate. */
    assert_null(ca_load_cert(path, err, sizeof(err)));
    assert_non_null(strstr(err, "not a PEM or DER certificate"));
    EVP_PKEY_free(key);
    ca_free(ca);
}

static void test_load_cert_only(void **state)
{
    char err[512] = "", path[512], fp[CA_FINGERPRINT_LEN], fp2[CA_FINGERPRINT_LEN];
    struct ca *ca;
    X509 *pem, *der;

    (void)state;
    make_ca(dir, CA_EC_P256);
    path_of(path, sizeof(path), CA_CERT_FILE);
    pem = ca_load_cert(path, err, sizeof(err));
    assert_non_null(pem);
    path_of(path, sizeof(path), CA_DER_FILE);
    der = ca_load_cert(path, err, sizeof(err));
    assert_non_null(der);
    assert_int_equal(X509_cmp(pem, der), 0);
    ca = load_ca();
    assert_int_equal(X509_cmp(pem, ca_cert(ca)), 0);
    ca_fingerprint(pem, fp);
    ca_fingerprint(ca_cert(ca), fp2);
    assert_int_equal(strlen(fp), 95);
    assert_string_equal(fp, fp2);
    for (int i = 0; i < 95; i++)
        assert_true(i % 3 == 2 ? fp[i] == ':'
                               : (fp[i] >= '0' && fp[i] <= '9') || (fp[i] >= 'A' && fp[i] <= 'F'));
    ca_free(ca);
    X509_free(pem);
    X509_free(der);
}

static void check_leaf(X509 *cacert, X509 *leaf, const char *host, int is_ip, time_t now, int rsa)
{
    uint32_t ku = X509_get_key_usage(leaf);
    char cn[128];

    assert_int_equal(verify(cacert, leaf, host, is_ip, now), 1);
    if (is_ip) {
        assert_int_equal(X509_check_ip_asc(leaf, host, 0), 1);
    } else {
        assert_int_equal(X509_check_host(leaf, host, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL),
                         1);
        assert_int_equal(X509_check_host(leaf, "other.example", 0, 0, NULL), 0);
    }
    assert_false(X509_get_extension_flags(leaf) & EXFLAG_CA);
    assert_int_equal(ku, rsa ? (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT) : KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
    assert_non_null(X509_get0_authority_key_id(leaf));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf), X509_get0_subject_key_id(cacert)),
        0);
    assert_int_equal(X509_get_signature_nid(leaf) == NID_ecdsa_with_SHA256 ||
                         X509_get_signature_nid(leaf) == NID_sha256WithRSAEncryption,
                     1);
    assert_int_equal(time_cmp(X509_get0_notBefore(leaf), now - CA_LEAF_BACKDATE), 0);
    assert_int_equal(time_cmp(X509_get0_notAfter(leaf), now + CA_LEAF_LIFETIME), 0);
    text_entry(leaf, NID_commonName, cn, sizeof(cn));
    if (strlen(host) <= 64)
        assert_string_equal(cn, host);
    /* Outside its lifetime it does not verify. */
    assert_int_not_equal(verify(cacert, leaf, host, is_ip, now + CA_LEAF_LIFETIME + 60), 1);
    assert_int_not_equal(verify(cacert, leaf, host, is_ip, now - CA_LEAF_BACKDATE - 60), 1);
}

static void test_mint_dns(void **state)
{
    time_t now = (time_t)clock_now();
    struct ca *ca;
    EVP_PKEY *key;
    X509 *leaf;
    GENERAL_NAMES *san;
    char org[128];

    (void)state;
    make_ca(dir, CA_EC_P256);
    ca = load_ca();
    key = EVP_EC_gen("P-256");
    leaf = mint(ca, "www.example.com", key, now);
    check_leaf(ca_cert(ca), leaf, "www.example.com", 0, now, 0);
    /* The leaf carries the key given, and the school's name as O. */
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
    text_entry(leaf, NID_organizationName, org, sizeof(org));
    assert_string_equal(org, "Hillside Primary");
    /* One SAN, a dNSName. */
    san = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    assert_int_equal(sk_GENERAL_NAME_num(san), 1);
    assert_int_equal(sk_GENERAL_NAME_value(san, 0)->type, GEN_DNS);
    GENERAL_NAMES_free(san);
    /* Two leaves never share a serial. */
    {
        X509 *again = mint(ca, "www.example.com", key, now);
        assert_int_not_equal(
            ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf), X509_get0_serialNumber(again)), 0);
        X509_free(again);
    }
    X509_free(leaf);

    /* Upper case is written in lower case; the name still matches. */
    leaf = mint(ca, "WWW.Example.COM", key, now);
    check_leaf(ca_cert(ca), leaf, "www.example.com", 0, now, 0);
    X509_free(leaf);
    leaf = mint(ca, "under_score.example", key, now);
    check_leaf(ca_cert(ca), leaf, "under_score.example", 0, now, 0);
    X509_free(leaf);
    leaf = mint(ca, "xn--bcher-kva.example", key, now);
    check_leaf(ca_cert(ca), leaf, "xn--bcher-kva.example", 0, now, 0);
    X509_free(leaf);
    leaf = mint(ca, "localhost", key, now);
    check_leaf(ca_cert(ca), leaf, "localhost", 0, now, 0);
    X509_free(leaf);
    EVP_PKEY_free(key);
    ca_free(ca);
}

static void test_mint_ip(void **state)
{
    static const struct {
        const char *host;
        int len;
    } cases[] = {{"127.0.0.1", 4}, {"::1", 16}, {"2001:db8::7", 16}, {"::ffff:127.0.0.1", 16}};
    time_t now = (time_t)clock_now();
    struct ca *ca;
    EVP_PKEY *key;

    (void)state;
    make_ca(dir, CA_EC_P256);
    ca = load_ca();
    key = EVP_EC_gen("P-256");
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        X509 *leaf = mint(ca, cases[i].host, key, now);
        GENERAL_NAMES *san = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        GENERAL_NAME *gn;
        assert_non_null(san);
        assert_int_equal(sk_GENERAL_NAME_num(san), 1);
        gn = sk_GENERAL_NAME_value(san, 0);
        assert_int_equal(gn->type, GEN_IPADD);
        assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), cases[i].len);
        check_leaf(ca_cert(ca), leaf, cases[i].host, 1, now, 0);
        /* An IP leaf is no DNS leaf. */
        assert_int_equal(
            X509_check_host(leaf, cases[i].host, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL), 0);
        GENERAL_NAMES_free(san);
        X509_free(leaf);
    }
    EVP_PKEY_free(key);
    ca_free(ca);
}

static void test_mint_long_host(void **state)
{
    char host[CA_MAX_HOST + 1], cn[128];
    time_t now = (time_t)clock_now();
    struct ca *ca;
    EVP_PKEY *key;
    X509 *leaf;
    size_t n = 0;

    (void)state;
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 bytes. */
    for (int label = 0; label < 4; label++) {
        int len = label < 3 ? 63 : 61;
        for (int i = 0; i < len; i++)
            host[n++] = (char)('a' + (label + i) % 26);
        host[n++] = label < 3 ? '.' : '\0';
    }
    assert_int_equal(strlen(host), CA_MAX_HOST);
    make_ca(dir, CA_EC_P256);
    ca = load_ca();
    key = EVP_EC_gen("P-256");
    leaf = mint(ca, host, key, now);
    check_leaf(ca_cert(ca), leaf, host, 0, now, 0);
    text_entry(leaf, NID_commonName, cn, sizeof(cn));
    assert_int_equal(strlen(cn), 64);
    assert_memory_equal(cn, host, 61);
    assert_string_equal(cn + 61, "...");
    X509_free(leaf);

    /* One byte more is refused. */
    host[CA_MAX_HOST - 1] = '\0';
    {
        char longer[CA_MAX_HOST + 2];
        snprintf(longer, sizeof(longer), "%sxy", host);
        mint_fails(ca, longer, key, now, "more than 253");
    }
    EVP_PKEY_free(key);
    ca_free(ca);
}

static void test_rsa(void **state)
{
    time_t now = (time_t)clock_now();
    EVP_PKEY *rsa, *ec;
    struct ca *ca;
    X509 *leaf;

    (void)state;
    make_ca(dir, CA_RSA3072);
    ca = load_ca();
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ca_cert(ca))), 3072);
    assert_int_equal(X509_get_signature_nid(ca_cert(ca)), NID_sha256WithRSAEncryption);
    rsa = EVP_RSA_gen(2048);
    ec = EVP_EC_gen("P-256");
    leaf = mint(ca, "rsa.example", rsa, now);
    check_leaf(ca_cert(ca), leaf, "rsa.example", 0, now, 1);
    assert_int_equal(X509_get_signature_nid(leaf), NID_sha256WithRSAEncryption);
    X509_free(leaf);
    leaf = mint(ca, "ec.example", ec, now);
    check_leaf(ca_cert(ca), leaf, "ec.example", 0, now, 0);
    X509_free(leaf);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    ca_free(ca);
}

static void test_leaf_key_refusals(void **state)
{
    time_t now = (time_t)clock_now();
    EVP_PKEY *ed, *small, *p521;
    struct ca *ca;

    (void)state;
    make_ca(dir, CA_EC_P256);
    ca = load_ca();
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    small = EVP_RSA_gen(1024);
    p521 = EVP_EC_gen("P-521");
    assert_non_null(ed);
    assert_non_null(small);
    assert_non_null(p521);
    mint_fails(ca, "x.example", ed, now, "type browsers do not take");
    mint_fails(ca, "x.example", small, now, "RSA of 1024 bits");
    mint_fails(ca, "x.example", p521, now, "secp521r1");

    /* The same through ca_check_spki, and DER that is not one whole key. */
    {
        EVP_PKEY *good = EVP_EC_gen("P-256");
        unsigned char *spki = NULL, buf[600], *der = NULL;
        int n = i2d_PUBKEY(good, &spki);
        char err[512];
        size_t len;
        assert_int_equal(ca_check_spki(spki, (size_t)n, err, sizeof(err)), 0);
        memcpy(buf, spki, (size_t)n);
        buf[n] = 0;
        assert_int_equal(ca_check_spki(buf, (size_t)n + 1, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "followed by 1 stray bytes"));
        assert_int_equal(ca_check_spki(buf, (size_t)n - 1, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "not a DER SubjectPublicKeyInfo"));
        assert_int_equal(
            ca_check_spki((const unsigned char *)"\x30\x03\x02\x01\x01", 5, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "not a DER SubjectPublicKeyInfo"));
        assert_int_equal(ca_check_spki(buf, 0, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "empty"));
        /* Minting refuses them too, and still works for a good key after a bad one. */
        assert_int_equal(
            ca_mint_leaf(ca, "x.example", buf, (size_t)n + 1, now, &der, &len, err, sizeof(err)),
            -1);
        assert_null(der);
        assert_non_null(strstr(err, "stray bytes"));
        X509_free(mint(ca, "x.example", good, now));
        OPENSSL_free(spki);
        EVP_PKEY_free(good);
    }
    EVP_PKEY_free(ed);
    EVP_PKEY_free(small);
    EVP_PKEY_free(p521);
    ca_free(ca);
}

static void test_ca_lifetime(void **state)
{
    time_t t0 = 1796000000; /* 2026-11-30 */
    time_t ca_end = t0 - CA_LEAF_BACKDATE + (time_t)CA_VALIDITY_DAYS * 86400;
    struct ca *ca;
    EVP_PKEY *key;
    X509 *leaf;

    (void)state;
    clock_set_fake(t0);
    make_ca(dir, CA_EC_P256);
    ca = load_ca();
    assert_int_equal(time_cmp(X509_get0_notBefore(ca_cert(ca)), t0 - CA_LEAF_BACKDATE), 0);
    assert_int_equal(time_cmp(X509_get0_notAfter(ca_cert(ca)), ca_end), 0);
    key = EVP_EC_gen("P-256");

    /* A day before the CA ends: the leaf ends with the CA, not 72 hours on. */
    leaf = mint(ca, "late.example", key, ca_end - 86400);
    assert_int_equal(time_cmp(X509_get0_notAfter(leaf), ca_end), 0);
    assert_int_equal(verify(ca_cert(ca), leaf, "late.example", 0, ca_end - 86400), 1);
    X509_free(leaf);

    mint_fails(ca, "x.example", key, ca_end + 1, "has expired");
    mint_fails(ca, "x.example", key, t0 - 2 * 3600, "not valid yet");
    EVP_PKEY_free(key);
    ca_free(ca);
}

static void test_check_host(void **state)
{
    static const char *good[] = {
        "example.com",
        "a",
        "localhost",
        "x-y.example",
        "_dmarc.example",
        "a1.b2.c3",
        "1.2.3.4",
        "0.0.0.0",
        "::",
        "fe80::1",
        "2001:db8:0:0:0:0:0:1",
        "123.example",
        "example.123a",
        "EXAMPLE.COM",
    };
    static const struct {
        const char *host, *want;
    } bad[] = {
        {"", "empty"},
        {"example.com.", "ends with a dot"},
        {".example.com", "leading dot"},
        {"a..b", "two dots"},
        {"-a.example", "starts with '-'"},
        {"a-.example", "ends with '-'"},
        {"a b.example", "' '"},
        {"a/b", "'/'"},
        {"*.example.com", "'*'"},
        {"a,DNS:evil.example", "','"},
        {"caf\xc3\xa9.example", "0xc3"},
        {"tab\t.example", "0x09"},
        {"1.2.3", "all digits"},
        {"01.2.3.4", "all digits"},
        {"256.1.1.1", "all digits"},
        {"example.42", "all digits"},
        {"[::1]", "without brackets"},
        {"fe80::1%eth0", "zone"},
        {"1::2::3", "not a valid IPv6"},
        {"example.com:443", "':'"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
         "longer than 63"},
    };
    char err[256];
    int is_ip;

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(good); i++) {
        if (ca_check_host(good[i], strlen(good[i]), &is_ip, err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", good[i], err);
        assert_int_equal(is_ip, strchr(good[i], ':') || (good[i][0] >= '0' && good[i][0] <= '9' &&
                                                         !strstr(good[i], "example")));
    }
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (ca_check_host(bad[i].host, strlen(bad[i].host), &is_ip, err, sizeof(err)) == 0)
            fail_msg("'%s' accepted", bad[i].host);
        if (!strstr(err, bad[i].want))
            fail_msg("'%s': got '%s', expected '%s'", bad[i].host, err, bad[i].want);
    }
    /* A NUL inside the length. */
    assert_int_equal(ca_check_host("a\0b", 3, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NUL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_new_dir_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_cert_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mint_dns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mint_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mint_long_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaf_key_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_lifetime, setup, teardown),
        cmocka_unit_test(test_check_host),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
