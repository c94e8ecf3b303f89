/*
 * Unit tests: the signer protocol (every rejection of both parsers) and the signer process
 * (a round trip of 100 hosts, threads, a stopped and a killed signer, closed descriptors,
 * dropped privileges, and that the CA key never enters the parent's memory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "tls/ca.h"
#include "tls/signer.h"

static char dir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A temporary directory with a CA made in a child process, so this process never held the
 * CA key (test_key_not_in_parent depends on that). */
static int setup_ca(void **state)
{
    pid_t pid;
    int st;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/haven-test-signer-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char err[512];
        int rc = ca_create(dir, "Signer Test", CA_EC_P256, 0, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "ca_create: %s\n", err);
        _exit(rc == 0 ? 0 : 1);
    }
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return 0;
}

static int teardown_ca(void **state)
{
    (void)state;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ----- parsers ----- */

/* A P-256 public key as SubjectPublicKeyInfo DER (caller OPENSSL_free()s it). */
static unsigned char *spki_of(EVP_PKEY *key, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);

    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

static void request_fails(const unsigned char *msg, size_t len, uint32_t want_id, const char *want)
{
    struct signer_request req;
    char err[512] = "";

    if (signer_parse_request(msg, len, &req, err, sizeof(err)) == 0)
        fail_msg("request accepted; expected '%s'", want);
    assert_int_equal(req.id, want_id);
    if (!strstr(err, want))
        fail_msg("got '%s', expected '%s'", err, want);
}

static void test_parse_request(void **state)
{
    unsigned char msg[SIGNER_MAX_MSG + 64], bad[SIGNER_MAX_MSG + 64];
    EVP_PKEY *key = EVP_EC_gen("P-256");
    struct signer_request req;
    unsigned char *spki;
    size_t spki_len, n;
    char err[512] = "";

    (void)state;
    spki = spki_of(key, &spki_len);
    n = signer_build_request(msg, sizeof(msg), 77, 1796000000, spki, spki_len, "www.example.com",
                             15);
    assert_int_equal(n, SIGNER_REQUEST_HEADER + spki_len + 15);
    if (signer_parse_request(msg, n, &req, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(req.id, 77);
    assert_int_equal(req.now, 1796000000);
    assert_string_equal(req.host, "www.example.com");
    assert_int_equal(req.spki_len, spki_len);
    assert_memory_equal(req.spki, spki, spki_len);
    assert_ptr_equal(req.spki, msg + SIGNER_REQUEST_HEADER); /* zero-copy */
    /* Little-endian on the wire, whatever the host. */
    assert_memory_equal(msg, "HVSG\x01\x00\x01\x00\x4d\x00\x00\x00", 12);

    /* Too short, too long, not ours. */
    request_fails(msg, 0, 0, "shorter than its 24-byte header");
    request_fails(msg, SIGNER_REQUEST_HEADER - 1, 0, "23 bytes, shorter");
    memset(bad, 0, sizeof(bad));
    memcpy(bad, msg, n);
    request_fails(bad, SIGNER_MAX_MSG + 1, 0, "more than the 16384 allowed");
    memcpy(bad, msg, n);
    bad[0] = 'X';
    request_fails(bad, n, 0, "magic");
    memcpy(bad, msg, n);
    bad[4] = 2;
    request_fails(bad, n, 0, "protocol version 2");
    memcpy(bad, msg, n);
    bad[6] = SIGNER_MSG_REPLY;
    request_fails(bad, n, 77, "message type 2 is not a request");

    /* Times outside 1970..9999. */
    n = signer_build_request(bad, sizeof(bad), 5, -1, spki, spki_len, "a.example", 9);
    request_fails(bad, n, 5, "not between 1970 and 9999");
    n = signer_build_request(bad, sizeof(bad), 5, 253402300800LL, spki, spki_len, "a.example", 9);
    request_fails(bad, n, 5, "not between 1970 and 9999");

    /* Lengths. */
    n = signer_build_request(bad, sizeof(bad), 6, 1796000000, spki, 0, "a.example", 9);
    request_fails(bad, n, 6, "no public key");
    n = signer_build_request(bad, sizeof(bad), 6, 1796000000, msg, SIGNER_MAX_SPKI + 1, "a.example",
                             9);
    request_fails(bad, n, 6, "more than the 2048 allowed");
    n = signer_build_request(bad, sizeof(bad), 6, 1796000000, spki, spki_len, "", 0);
    request_fails(bad, n, 6, "no host name");
    {
        char host[300];
        memset(host, 'a', sizeof(host));
        n = signer_build_request(bad, sizeof(bad), 6, 1796000000, spki, spki_len, host, 254);
        request_fails(bad, n, 6, "254 bytes, more than 253");
    }
    n = signer_build_request(bad, sizeof(bad), 6, 1796000000, spki, spki_len, "a.example", 9);
    request_fails(bad, n - 1, 6, "do not add up");
    request_fails(bad, n + 1, 6, "do not add up");

    /* The host is checked. */
    n = signer_build_request(bad, sizeof(bad), 8, 1796000000, spki, spki_len, "a b", 3);
    request_fails(bad, n, 8, "bad host: the host name has ' '");
    n = signer_build_request(bad, sizeof(bad), 8, 1796000000, spki, spki_len, "a\0b", 3);
    request_fails(bad, n, 8, "NUL");
    n = signer_build_request(bad, sizeof(bad), 8, 1796000000, spki, spki_len, "x.", 2);
    request_fails(bad, n, 8, "ends with a dot");

    /* The key must at least be DER; ca_mint_leaf checks what is inside (test_ca.c). */
    n = signer_build_request(bad, sizeof(bad), 9, 1796000000, (const unsigned char *)"garbage", 7,
                             "a.example", 9);
    request_fails(bad, n, 9, "not DER (no SEQUENCE)");

    /* The builder refuses what does not fit. */
    assert_int_equal(signer_build_request(bad, 30, 1, 0, spki, spki_len, "a", 1), 0);
    assert_int_equal(signer_build_request(bad, sizeof(bad), 1, 0, spki, 70000, "a", 1), 0);
    OPENSSL_free(spki);
    EVP_PKEY_free(key);
}

static void reply_fails(const unsigned char *msg, size_t len, const char *want)
{
    struct signer_reply rep;
    char err[512] = "";

    if (signer_parse_reply(msg, len, &rep, err, sizeof(err)) == 0)
        fail_msg("reply accepted; expected '%s'", want);
    if (!strstr(err, want))
        fail_msg("got '%s', expected '%s'", err, want);
}

static void test_parse_reply(void **state)
{
    static const unsigned char der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    unsigned char msg[SIGNER_MAX_MSG + 64], bad[SIGNER_MAX_MSG + 64];
    struct signer_reply rep;
    char err[512] = "", text[SIGNER_MAX_ERROR + 1];
    size_t n;

    (void)state;
    /* OK with a certificate. */
    n = signer_build_reply(msg, sizeof(msg), SIGNER_MSG_REPLY, 42, SIGNER_OK, der, sizeof(der));
    assert_int_equal(n, SIGNER_REPLY_HEADER + sizeof(der));
    if (signer_parse_reply(msg, n, &rep, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(rep.type, SIGNER_MSG_REPLY);
    assert_int_equal(rep.id, 42);
    assert_int_equal(rep.status, SIGNER_OK);
    assert_int_equal(rep.len, sizeof(der));
    assert_memory_equal(rep.data, der, sizeof(der));
    /* An error. */
    n = signer_build_reply(msg, sizeof(msg), SIGNER_MSG_REPLY, 43, SIGNER_BAD_REQUEST, "no", 2);
    assert_int_equal(signer_parse_reply(msg, n, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.status, SIGNER_BAD_REQUEST);
    assert_int_equal(rep.len, 2);
    assert_memory_equal(rep.data, "no", 2);
    /* READY, and a READY that failed. */
    n = signer_build_reply(msg, sizeof(msg), SIGNER_MSG_READY, 0, SIGNER_OK, NULL, 0);
    assert_int_equal(signer_parse_reply(msg, n, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.type, SIGNER_MSG_READY);
    n = signer_build_reply(msg, sizeof(msg), SIGNER_MSG_READY, 0, SIGNER_FAILED, "no key", 6);
    assert_int_equal(signer_parse_reply(msg, n, &rep, err, sizeof(err)), 0);
    assert_int_equal(rep.status, SIGNER_FAILED);

    /* Rejections. */
    n = signer_build_reply(msg, sizeof(msg), SIGNER_MSG_REPLY, 42, SIGNER_OK, der, sizeof(der));
    reply_fails(msg, 19, "19 bytes, shorter than its 20-byte header");
    memset(bad, 0, sizeof(bad));
    memcpy(bad, msg, n);
    reply_fails(bad, SIGNER_MAX_MSG + 1, "more than the 16384 allowed");
    memcpy(bad, msg, n);
    bad[3] = 'X';
    reply_fails(bad, n, "magic");
    memcpy(bad, msg, n);
    bad[5] = 1;
    reply_fails(bad, n, "protocol version 257");
    memcpy(bad, msg, n);
    bad[6] = SIGNER_MSG_SIGN;
    reply_fails(bad, n, "message type 1 is not a reply");
    memcpy(bad, msg, n);
    bad[12] = 3;
    reply_fails(bad, n, "status 3");
    reply_fails(msg, n - 1, "does not add up");
    memcpy(bad, msg, n);
    reply_fails(bad, n + 1, "does not add up");
    n = signer_build_reply(bad, sizeof(bad), SIGNER_MSG_READY, 0, SIGNER_OK, "x", 1);
    reply_fails(bad, n, "a READY message carries 1 bytes");
    n = signer_build_reply(bad, sizeof(bad), SIGNER_MSG_REPLY, 1, SIGNER_OK, NULL, 0);
    reply_fails(bad, n, "carries no certificate");
    n = signer_build_reply(bad, sizeof(bad), SIGNER_MSG_REPLY, 1, SIGNER_OK, "\x31\x00", 2);
    reply_fails(bad, n, "not DER");
    n = signer_build_reply(bad, sizeof(bad), SIGNER_MSG_REPLY, 1, SIGNER_FAILED, NULL, 0);
    reply_fails(bad, n, "an error without a message");
    memset(text, 'e', sizeof(text));
    n = signer_build_reply(bad, sizeof(bad), SIGNER_MSG_REPLY, 1, SIGNER_FAILED, text,
                           SIGNER_MAX_ERROR + 1);
    reply_fails(bad, n, "513 bytes, more than the 512 allowed");
    n = signer_build_reply(bad, sizeof(bad), SIGNER_MSG_REPLY, 1, SIGNER_FAILED, "bad\nline", 8);
    reply_fails(bad, n, "byte 0x0a");
    n = signer_build_reply(bad, sizeof(bad), SIGNER_MSG_REPLY, 1, SIGNER_FAILED, "caf\xc3\xa9", 5);
    reply_fails(bad, n, "byte 0xc3");

    /* The builder refuses what does not fit. */
    assert_int_equal(signer_build_reply(bad, 21, SIGNER_MSG_REPLY, 1, SIGNER_OK, der, 2), 0);
    assert_int_equal(signer_build_reply(bad, 10, SIGNER_MSG_REPLY, 1, SIGNER_OK, NULL, 0), 0);
}

/* ----- the signer process ----- */

static X509 *load_ca_cert(void)
{
    char path[512], err[512];
    X509 *x;

    snprintf(path, sizeof(path), "%s/%s", dir, CA_CERT_FILE);
    x = ca_load_cert(path, err, sizeof(err));
    if (!x)
        fail_msg("%s", err);
    return x;
}

static struct signer *start(uid_t uid, gid_t gid)
{
    struct signer *s = NULL;
    char err[512] = "";

    if (signer_start(dir, uid, gid, &s, err, sizeof(err)) != 0)
        fail_msg("signer_start: %s", err);
    assert_non_null(s);
    assert_true(signer_pid(s) > 0);
    return s;
}

/* Check der is a leaf for host with key, issued by cacert, valid at now. */
static void check_cert(X509 *cacert, const unsigned char *der, size_t len, const char *host,
                       EVP_PKEY *key, time_t now)
{
    const unsigned char *p = der;
    X509 *leaf = d2i_X509(NULL, &p, (long)len);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int is_ip = strchr(host, ':') || (host[0] >= '0' && host[0] <= '9');

    assert_non_null(leaf);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
    X509_STORE_add_cert(store, cacert);
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, now);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (is_ip)
        X509_VERIFY_PARAM_set1_ip_asc(param, host);
    else
        X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (X509_verify_cert(ctx) != 1)
        fail_msg("%s: %s", host, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(leaf);
}

static void sign_ok(struct signer *s, X509 *cacert, const char *host, EVP_PKEY *key, time_t now)
{
    unsigned char *der = NULL;
    char err[512] = "";
    size_t len = 0;

    if (signer_sign(s, host, key, now, &der, &len, err, sizeof(err)) != 0)
        fail_msg("signer_sign %s: %s", host, err);
    check_cert(cacert, der, len, host, key, now);
    free(der);
}

static void sign_fails(struct signer *s, const char *host, EVP_PKEY *key, time_t now,
                       const char *want)
{
    unsigned char *der = NULL;
    char err[512] = "";
    size_t len = 0;

    if (signer_sign(s, host, key, now, &der, &len, err, sizeof(err)) == 0)
        fail_msg("signed %s; expected '%s'", host, want);
    assert_null(der);
    if (!strstr(err, want))
        fail_msg("%s: got '%s', expected '%s'", host, err, want);
}

static void test_round_trip(void **state)
{
    time_t now = (time_t)clock_now();
    EVP_PKEY *key = signer_leaf_key_new(SIGNER_LEAF_EC_P256);
    EVP_PKEY *rsa = signer_leaf_key_new(SIGNER_LEAF_RSA2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509 *cacert = load_ca_cert();
    struct signer *s;
    char host[64];

    (void)state;
    assert_non_null(key);
    assert_non_null(rsa);
    assert_int_equal(EVP_PKEY_get_base_id(rsa), EVP_PKEY_RSA);
    s = start((uid_t)-1, (gid_t)-1);
    for (int i = 0; i < 100; i++) {
        if (i % 10 == 8)
            snprintf(host, sizeof(host), "127.0.%d.%d", i / 10, i % 10);
        else if (i % 10 == 9)
            snprintf(host, sizeof(host), "2001:db8::%x", i);
        else
            snprintf(host, sizeof(host), "host%d.school%d.example", i, i % 7);
        sign_ok(s, cacert, host, key, now);
    }
    sign_ok(s, cacert, "rsa.example", rsa, now);

    /* Refusals come back as messages, and the signer carries on. */
    sign_fails(s, "bad host", key, now, "the host name has ' '");
    sign_fails(s, "ed.example", ed, now, "the leaf key is of a type browsers do not take");
    sign_fails(s, "old.example", key, now - 2 * 86400, "more than a day from the signer's clock");
    sign_ok(s, cacert, "after.example", key, now);

    assert_int_equal(signer_stop(s), 0);
    EVP_PKEY_free(key);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    X509_free(cacert);
}

struct thread_arg {
    struct signer *s;
    X509 *cacert;
    EVP_PKEY *key;
    int n, failures;
};

static void *sign_thread(void *p)
{
    struct thread_arg *a = p;
    time_t now = (time_t)clock_now();
    unsigned char *der;
    char host[64], err[256];
    size_t len;

    for (int i = 0; i < 25; i++) {
        snprintf(host, sizeof(host), "t%d-%d.example", a->n, i);
        if (signer_sign(a->s, host, a->key, now, &der, &len, err, sizeof(err)) != 0) {
            a->failures++;
            continue;
        }
        /* The certificate is for this thread's host, not another's. */
        {
            const unsigned char *q = der;
            X509 *x = d2i_X509(NULL, &q, (long)len);
            if (!x || X509_check_host(x, host, 0, 0, NULL) != 1)
                a->failures++;
            X509_free(x);
        }
        free(der);
    }
    return NULL;
}

static void test_threads(void **state)
{
    EVP_PKEY *key = signer_leaf_key_new(SIGNER_LEAF_EC_P256);
    struct thread_arg args[4];
    pthread_t th[4];
    struct signer *s;

    (void)state;
    s = start((uid_t)-1, (gid_t)-1);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){.s = s, .key = key, .n = i};
        assert_int_equal(pthread_create(&th[i], NULL, sign_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(signer_stop(s), 0);
    EVP_PKEY_free(key);
}

static void test_killed(void **state)
{
    time_t now = (time_t)clock_now();
    EVP_PKEY *key = signer_leaf_key_new(SIGNER_LEAF_EC_P256);
    X509 *cacert = load_ca_cert();
    struct signer *s;
    pid_t pid;

    (void)state;
    s = start((uid_t)-1, (gid_t)-1);
    sign_ok(s, cacert, "before.example", key, now);
    pid = signer_pid(s);
    assert_int_equal(kill(pid, SIGKILL), 0);
    sign_fails(s, "after.example", key, now, "has died: killed by signal 9 (SIGKILL)");
    /* It stays failed, at once, with the same words. */
    sign_fails(s, "again.example", key, now, "has died: killed by signal 9");
    assert_int_equal(signer_pid(s), -1); /* reaped */
    assert_int_equal(signer_stop(s), -1);
    EVP_PKEY_free(key);
    X509_free(cacert);
}

static void test_stopped_times_out(void **state)
{
    time_t now = (time_t)clock_now();
    EVP_PKEY *key = signer_leaf_key_new(SIGNER_LEAF_EC_P256);
    X509 *cacert = load_ca_cert();
    struct signer *s;

    (void)state;
    s = start((uid_t)-1, (gid_t)-1);
    assert_int_equal(kill(signer_pid(s), SIGSTOP), 0);
    sign_fails(s, "slow.example", key, now, "did not answer within 5 s");
    assert_int_equal(kill(signer_pid(s), SIGCONT), 0);
    /* The late answer to the first request is dropped; this one gets its own. */
    sign_ok(s, cacert, "next.example", key, now);
    sign_ok(s, cacert, "next2.example", key, now);
    assert_int_equal(signer_stop(s), 0);
    EVP_PKEY_free(key);
    X509_free(cacert);
}

static void test_start_failures(void **state)
{
    struct signer *s = (struct signer *)1;
    char err[512] = "", path[512];
    int st;

    (void)state;
    /* No CA: the reason, and no child left behind. */
    assert_int_equal(
        signer_start("/tmp/haven-test-signer-none", (uid_t)-1, (gid_t)-1, &s, err, sizeof(err)),
        -1);
    assert_null(s);
    assert_non_null(strstr(err, "could not start"));
    assert_non_null(strstr(err, "/tmp/haven-test-signer-none/ca.pem: No such file"));
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);

    /* A key others can read. */
    snprintf(path, sizeof(path), "%s/%s", dir, CA_KEY_FILE);
    chmod(path, 0644);
    assert_int_equal(signer_start(dir, (uid_t)-1, (gid_t)-1, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "readable by others"));
    chmod(path, 0600);
}

/* The signer keeps only 0-3 open, and drops to the user asked for. */
static void test_child_state(void **state)
{
    char path[128], line[256];
    int extra = open("/dev/null", O_RDONLY), count = 0, pipefd[2];
    struct dirent *e;
    struct signer *s;
    uid_t uid = geteuid() == 0 ? 65534 : geteuid();
    gid_t gid = geteuid() == 0 ? 65534 : getegid();
    FILE *f;
    DIR *d;

    (void)state;
    assert_true(extra >= 0);
    assert_int_equal(pipe(pipefd), 0); /* not close-on-exec: must be closed all the same */
    s = start(uid, gid);
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)signer_pid(s));
    d = opendir(path);
    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            count++;
            assert_true(strtol(e->d_name, NULL, 10) <= 3);
        }
        closedir(d);
        assert_int_equal(count, 4);
    } else {
        /* Not root: the signer is not dumpable, so its /proc entries are root's alone. */
        assert_int_equal(errno, EACCES);
        print_message("cannot read %s (%s): not checking the signer's descriptors\n", path,
                      strerror(errno));
    }
    /* Not dumpable: /proc/PID belongs to root even though the signer runs as uid. */
    {
        struct stat pst;
        assert_int_equal(stat(path, &pst), 0);
        assert_int_equal(pst.st_uid, 0);
        if (uid != 0)
            assert_int_not_equal(pst.st_uid, uid);
    }
    snprintf(path, sizeof(path), "/proc/%d/status", (int)signer_pid(s));
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned long r, ef, sv, fs;
        if (sscanf(line, "Uid: %lu %lu %lu %lu", &r, &ef, &sv, &fs) == 4) {
            assert_int_equal(r, uid);
            assert_int_equal(ef, uid);
            assert_int_equal(sv, uid);
        }
        if (sscanf(line, "Gid: %lu %lu %lu %lu", &r, &ef, &sv, &fs) == 4) {
            assert_int_equal(r, gid);
            assert_int_equal(ef, gid);
        }
        if (strncmp(line, "NoNewPrivs:", 11) == 0)
            assert_int_equal(strtol(line + 11, NULL, 10), 1);
    }
    fclose(f);
    /* Dropped, it still signs. */
    {
        EVP_PKEY *key = signer_leaf_key_new(SIGNER_LEAF_EC_P256);
        X509 *cacert = load_ca_cert();
        sign_ok(s, cacert, "dropped.example", key, (time_t)clock_now());
        EVP_PKEY_free(key);
        X509_free(cacert);
    }
    assert_int_equal(signer_stop(s), 0);
    close(extra);
    close(pipefd[0]);
    close(pipefd[1]);
}

/* Send msg to the signer on fd and parse its reply (into buf) as an error with want. */
static void raw_fails(int fd, const void *msg, size_t len, uint32_t want_id,
                      enum signer_status want_status, const char *want)
{
    static unsigned char buf[SIGNER_MAX_MSG];
    struct signer_reply rep;
    char err[512];
    ssize_t n;

    assert_int_equal(send(fd, msg, len, 0), (ssize_t)len);
    n = recv(fd, buf, sizeof(buf), 0);
    assert_true(n > 0);
    if (signer_parse_reply(buf, (size_t)n, &rep, err, sizeof(err)) != 0)
        fail_msg("bad reply: %s", err);
    assert_int_equal(rep.type, SIGNER_MSG_REPLY);
    assert_int_equal(rep.id, want_id);
    assert_int_equal(rep.status, want_status);
    snprintf(err, sizeof(err), "%.*s", (int)rep.len, (const char *)rep.data);
    if (!strstr(err, want))
        fail_msg("got '%s', expected '%s'", err, want);
}

/* The signer's loop on a socketpair of our own: raw, malformed messages get error replies
 * naming the problem, and the signer carries on. */
static void test_raw_protocol(void **state)
{
    static unsigned char msg[SIGNER_MAX_MSG + 4096], buf[SIGNER_MAX_MSG];
    EVP_PKEY *key = EVP_EC_gen("P-256"), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    int64_t now = clock_now();
    struct signer_reply rep;
    unsigned char *spki, *ed_spki;
    size_t spki_len, ed_len, n;
    char err[512];
    int sv[2], st;
    pid_t pid;

    (void)state;
    spki = spki_of(key, &spki_len);
    ed_spki = spki_of(ed, &ed_len);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ca *ca = ca_load(dir, err, sizeof(err));
        close(sv[0]);
        if (!ca)
            _exit(2);
        signer_serve(sv[1], ca);
        ca_free(ca);
        _exit(0);
    }
    close(sv[1]);

    raw_fails(sv[0], "HVSG", 4, 0, SIGNER_BAD_REQUEST, "4 bytes, shorter than its 24-byte header");
    memset(msg, 'x', sizeof(msg));
    raw_fails(sv[0], msg, 40, 0, SIGNER_BAD_REQUEST, "magic");
    raw_fails(sv[0], msg, sizeof(msg), 0, SIGNER_BAD_REQUEST, "more than the 16384 allowed");
    n = signer_build_request(msg, sizeof(msg), 21, now, spki, spki_len, "ok.example", 10);
    msg[4] = 9;
    raw_fails(sv[0], msg, n, 0, SIGNER_BAD_REQUEST, "protocol version 9");
    n = signer_build_request(msg, sizeof(msg), 22, now, spki, spki_len, "bad host", 8);
    raw_fails(sv[0], msg, n, 22, SIGNER_BAD_REQUEST, "bad host: the host name has ' '");
    n = signer_build_request(msg, sizeof(msg), 23, now, spki, spki_len, "x\x01y", 3);
    raw_fails(sv[0], msg, n, 23, SIGNER_BAD_REQUEST, "byte 0x01");
    n = signer_build_request(msg, sizeof(msg), 24, now, (const unsigned char *)"\x30\x01\x00", 3,
                             "ok.example", 10);
    raw_fails(sv[0], msg, n, 24, SIGNER_FAILED, "not a DER SubjectPublicKeyInfo");
    n = signer_build_request(msg, sizeof(msg), 25, now, ed_spki, ed_len, "ok.example", 10);
    raw_fails(sv[0], msg, n, 25, SIGNER_FAILED, "type browsers do not take");
    n = signer_build_request(msg, sizeof(msg), 26, now + 2 * 86400, spki, spki_len, "ok.example",
                             10);
    raw_fails(sv[0], msg, n, 26, SIGNER_FAILED, "more than a day from the signer's clock");
    /* A reply sent to the signer is not a request. */
    n = signer_build_reply(msg, sizeof(msg), SIGNER_MSG_REPLY, 27, SIGNER_OK,
                           "\x30\x03\x02\x01\x01", 5);
    raw_fails(sv[0], msg, n, 27, SIGNER_BAD_REQUEST, "message type 2 is not a request");

    /* After all that, a good request is answered. */
    n = signer_build_request(msg, sizeof(msg), 28, now, spki, spki_len, "ok.example", 10);
    assert_int_equal(send(sv[0], msg, n, 0), (ssize_t)n);
    {
        ssize_t got = recv(sv[0], buf, sizeof(buf), 0);
        X509 *cacert = load_ca_cert();
        assert_true(got > 0);
        assert_int_equal(signer_parse_reply(buf, (size_t)got, &rep, err, sizeof(err)), 0);
        assert_int_equal(rep.id, 28);
        assert_int_equal(rep.status, SIGNER_OK);
        check_cert(cacert, rep.data, rep.len, "ok.example", key, (time_t)now);
        X509_free(cacert);
    }
    /* End of file: the signer leaves with status 0. */
    close(sv[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    OPENSSL_free(spki);
    OPENSSL_free(ed_spki);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ed);
}

/* ----- the key is not in the parent ----- */

/* Whether any needle occurs in the readable memory of process pid. Returns 1 found, 0 not,
 * -1 when the memory could not be read at all. */
static int memory_holds(pid_t pid, const unsigned char *const needles[], const size_t lens[],
                        int nneedles)
{
    enum { CHUNK = 1 << 20, OVERLAP = 128 };
    static unsigned char buf[CHUNK + OVERLAP];
    char path[64], line[512];
    size_t scanned = 0;
    int mem, found = 0;
    FILE *maps;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    maps = fopen(path, "r");
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    mem = open(path, O_RDONLY);
    if (!maps || mem < 0)
        return -1;
    while (!found && fgets(line, sizeof(line), maps)) {
        unsigned long lo, hi;
        char perms[8];
        size_t keep = 0;
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
            continue;
        /* Sanitizer shadow and reserved allocator space: huge, and no heap data lives there. */
        if (hi - lo > (1ul << 30) || strstr(line, "[vvar]") || strstr(line, "[vsyscall]"))
            continue;
        for (unsigned long at = lo; at < hi && !found;) {
            size_t want = hi - at < CHUNK ? hi - at : CHUNK;
            ssize_t n = pread(mem, buf + keep, want, (off_t)at);
            if (n <= 0) {
                at += want;
                keep = 0;
                continue;
            }
            scanned += (size_t)n;
            for (int i = 0; i < nneedles && !found; i++)
                found = memmem(buf, keep + (size_t)n, needles[i], lens[i]) != NULL;
            at += (unsigned long)n;
            if (keep + (size_t)n >= OVERLAP) {
                memmove(buf, buf + keep + (size_t)n - OVERLAP, OVERLAP);
                keep = OVERLAP;
            }
        }
    }
    fclose(maps);
    close(mem);
    return scanned == 0 ? -1 : found;
}

/* In a child: read the CA key and look for it in the parent's memory. Exits 1 if found, 0 if
 * not, 2 if the search could not be made. */
static __attribute__((noreturn)) void scan_parent(pid_t parent)
{
    unsigned char scalar[32], reversed[32];
    const unsigned char *needles[3];
    size_t lens[3];
    char path[512], pem_line[80];
    EVP_PKEY *key = NULL;
    BIGNUM *priv = NULL;
    FILE *f;
    int r;

    snprintf(path, sizeof(path), "%s/%s", dir, CA_KEY_FILE);
    f = fopen(path, "r");
    if (!f)
        _exit(2);
    /* The second line of the PEM: base64 of the key's first bytes, as a file buffer would. */
    if (!fgets(pem_line, sizeof(pem_line), f) || !fgets(pem_line, sizeof(pem_line), f))
        _exit(2);
    rewind(f);
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!key || EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1 ||
        BN_bn2binpad(priv, scalar, sizeof(scalar)) != sizeof(scalar))
        _exit(2);
    for (int i = 0; i < 32; i++)
        reversed[i] = scalar[31 - i]; /* BIGNUM limbs on a little-endian machine */
    needles[0] = scalar;
    lens[0] = sizeof(scalar);
    needles[1] = reversed;
    lens[1] = sizeof(reversed);
    needles[2] = (const unsigned char *)pem_line;
    lens[2] = 40;
    r = memory_holds(parent, needles, lens, 3);
    _exit(r < 0 ? 2 : r);
}

/* Fork a scanner of this process's memory; its verdict (0 absent, 1 present, 2 unknown). */
static int key_in_my_memory(void)
{
    pid_t pid;
    int st;

    /* Yama: let our child read our memory. */
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        scan_parent(getppid());
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_key_not_in_parent(void **state)
{
    EVP_PKEY *key = signer_leaf_key_new(SIGNER_LEAF_EC_P256);
    X509 *cacert = load_ca_cert();
    struct signer *s;
    struct ca *ca;
    char err[512];
    int r;

    (void)state;
    s = start((uid_t)-1, (gid_t)-1);
    sign_ok(s, cacert, "memory.example", key, (time_t)clock_now());
    r = key_in_my_memory();
    if (r == 2) {
        print_message("cannot read this process's memory: skipping the key-in-memory check\n");
        skip();
    }
    assert_int_equal(r, 0); /* the signer holds the key; this process never did */

    /* The control: the same search finds the key once this process loads it. */
    ca = ca_load(dir, err, sizeof(err));
    assert_non_null(ca);
    assert_int_equal(key_in_my_memory(), 1);
    ca_free(ca);

    assert_int_equal(signer_stop(s), 0);
    EVP_PKEY_free(key);
    X509_free(cacert);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_request),
        cmocka_unit_test(test_parse_reply),
        /* First of the process tests: this process must not have loaded the key before. */
        cmocka_unit_test_setup_teardown(test_key_not_in_parent, setup_ca, teardown_ca),
        cmocka_unit_test_setup_teardown(test_round_trip, setup_ca, teardown_ca),
        cmocka_unit_test_setup_teardown(test_raw_protocol, setup_ca, teardown_ca),
        cmocka_unit_test_setup_teardown(test_threads, setup_ca, teardown_ca),
        cmocka_unit_test_setup_teardown(test_killed, setup_ca, teardown_ca),
        cmocka_unit_test_setup_teardown(test_stopped_times_out, setup_ca, teardown_ca),
        cmocka_unit_test_setup_teardown(test_start_failures, setup_ca, teardown_ca),
        cmocka_unit_test_setup_teardown(test_child_state, setup_ca, teardown_ca),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
