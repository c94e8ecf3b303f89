/*
 * ca.c -- `haven ca`: make, export and show the HTTPS inspection CA (docs/tls-inspection.md).
 *
 * `init` writes the CA with tls/ca.h; `export` and `show` read only the certificate; `mint`
 * asks a signer process (tls/signer.h) for a leaf, exactly as the proxy does, so the key is
 * read by the signer and never by this process.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "tls/ca.h"
#include "tls/signer.h"

#define CA_DEFAULT_NAME "School"

static const char ca_usage[] =
    "usage: haven ca init [--dir DIR] [--name NAME] [--rsa] [--force]\n"
    "                      make a new inspection CA: DIR/ca.key (mode 0600), ca.pem, ca.der\n"
    "       haven ca export [--dir DIR] [--der] [-o FILE]\n"
    "                      print the CA certificate (PEM; --der for DER) to install on devices\n"
    "       haven ca show [--dir DIR]\n"
    "                      print the CA's subject, validity and SHA-256 fingerprint\n"
    "       haven ca mint HOST [--dir DIR] [-o FILE] [--key-out FILE]\n"
    "                      mint a leaf certificate for HOST as the proxy would (for testing)\n"
    "The CA directory is --dir DIR, else $HAVEN_CA_DIR, else var/ca in the source tree.\n"
    "NAME is the school's name (default \"" CA_DEFAULT_NAME "\"), at most 40 bytes.\n"
    "See docs/tls-inspection.md.\n";

struct ca_opts {
    const char *dir, *name, *out, *key_out;
    int rsa, force, der;
    char *pos[2];
    int npos;
};

enum {
    CA_OPT_DIR = 'd',
    CA_OPT_NAME = 'n',
    CA_OPT_RSA = 'r',
    CA_OPT_FORCE = 'f',
    CA_OPT_DER = 'D',
    CA_OPT_OUT = 'o',
    CA_OPT_KEY_OUT = 'k',
    CA_OPT_HELP = 'h',
};

/* The CA directory used when --dir is not given. */
static const char *ca_default_dir(void)
{
    const char *env = getenv("HAVEN_CA_DIR");

    return env && *env ? env : HAVEN_SOURCE_DIR "/var/ca";
}

static const struct option ca_options[] = {
    {"dir", required_argument, NULL, CA_OPT_DIR},
    {"name", required_argument, NULL, CA_OPT_NAME},
    {"rsa", no_argument, NULL, CA_OPT_RSA},
    {"force", no_argument, NULL, CA_OPT_FORCE},
    {"der", no_argument, NULL, CA_OPT_DER},
    {"output", required_argument, NULL, CA_OPT_OUT},
    {"key-out", required_argument, NULL, CA_OPT_KEY_OUT},
    {"help", no_argument, NULL, CA_OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void ca_set(int c, char *value, void *arg)
{
    struct ca_opts *o = arg;

    switch (c) {
    case CA_OPT_DIR:
        o->dir = value;
        break;
    case CA_OPT_NAME:
        o->name = value;
        break;
    case CA_OPT_RSA:
        o->rsa = 1;
        break;
    case CA_OPT_FORCE:
        o->force = 1;
        break;
    case CA_OPT_DER:
        o->der = 1;
        break;
    case CA_OPT_OUT:
        o->out = value;
        break;
    case CA_OPT_KEY_OUT:
        o->key_out = value;
        break;
    }
}

/*
 * Parse argv (argv[0] is the sub-command) into o. allowed lists the option letters the
 * sub-command takes; npos is how many positional arguments it wants, named by what.
 * Returns 0, 1 when --help was printed, or CLI_EXIT_USAGE.
 */
static int ca_parse(int argc, char **argv, const char *allowed, int npos, const char *what,
                    struct ca_opts *o)
{
    int rc;

    memset(o, 0, sizeof(*o));
    rc = cli_options(argc, argv, ca_usage, ":o:h", ca_options, allowed, ca_set, o, o->pos, npos,
                     what);
    o->npos = npos;
    if (rc == 0 && !o->dir)
        o->dir = ca_default_dir();
    return rc;
}

/* dir/name into out; -1 (with a message) if it does not fit. */
static int ca_path(char *out, size_t size, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size) {
        fprintf(stderr, "haven: the directory name %s is too long\n", dir);
        return -1;
    }
    return 0;
}

/* "2036-11-28 10:00:00 UTC" */
static void ca_time(const ASN1_TIME *t, char *out, size_t size)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, size, "(unreadable)");
}

/* The certificate's subject on one line, "CN = ..., O = ..." (UTF-8 as it is). */
static void ca_subject(X509 *cert, char *out, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;

    snprintf(out, size, "(unreadable)");
    if (!bio)
        return;
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
                           XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        len = BIO_get_mem_data(bio, &data);
        snprintf(out, size, "%.*s", (int)len, data);
    }
    BIO_free(bio);
}

/* "EC P-256", "RSA 3072" */
static void ca_key_desc(X509 *cert, char *out, size_t size)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);
    char group[64] = "";
    size_t glen = 0;

    if (!key) {
        snprintf(out, size, "(unreadable)");
        return;
    }
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
        EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) == 1)
        snprintf(out, size, "EC %s", strcmp(group, "prime256v1") == 0 ? "P-256" : group);
    else
        snprintf(out, size, "%s %d", OBJ_nid2sn(EVP_PKEY_get_base_id(key)), EVP_PKEY_get_bits(key));
}

/* Load DIR/ca.pem; NULL with a message. */
static X509 *ca_cli_load_cert(const char *dir)
{
    char path[4096], err[1024];
    X509 *cert;

    if (ca_path(path, sizeof(path), dir, CA_CERT_FILE) != 0)
        return NULL;
    cert = ca_load_cert(path, err, sizeof(err));
    if (!cert) {
        fprintf(stderr, "haven: %s\n", err);
        if (access(path, F_OK) != 0)
            fprintf(stderr, "haven: make a CA first with `haven ca init --dir %s`\n", dir);
    }
    return cert;
}

static int ca_cmd_init(struct ca_opts *o)
{
    char err[1024], path[4096], subject[512], until[64], fp[CA_FINGERPRINT_LEN];
    const char *name = o->name ? o->name : CA_DEFAULT_NAME;
    X509 *cert;

    /* The default lives in var/ of the source tree, which `make run` makes; make it too. */
    if (strcmp(o->dir, HAVEN_SOURCE_DIR "/var/ca") == 0)
        mkdir(HAVEN_SOURCE_DIR "/var", 0755);
    if (ca_create(o->dir, name, o->rsa ? CA_RSA3072 : CA_EC_P256, o->force ? CA_CREATE_FORCE : 0,
                  err, sizeof(err)) != 0) {
        fprintf(stderr, "haven: %s\n", err);
        return 1;
    }
    cert = ca_cli_load_cert(o->dir);
    if (!cert)
        return 1;
    ca_subject(cert, subject, sizeof(subject));
    ca_time(X509_get0_notAfter(cert), until, sizeof(until));
    ca_fingerprint(cert, fp);
    printf("made a new inspection CA (%s) in %s\n", o->rsa ? "RSA 3072" : "EC P-256", o->dir);
    ca_path(path, sizeof(path), o->dir, CA_KEY_FILE);
    printf("  private key  %s  (mode 0600: only haven's signer reads it; keep it secret)\n", path);
    ca_path(path, sizeof(path), o->dir, CA_CERT_FILE);
    printf("  certificate  %s  (PEM: install this on the school's devices)\n", path);
    ca_path(path, sizeof(path), o->dir, CA_DER_FILE);
    printf("               %s  (the same certificate, DER)\n", path);
    printf("  subject      %s\n", subject);
    printf("  valid until  %s\n", until);
    printf("  SHA-256 fingerprint %s\n", fp);
    printf("Next: deploy the certificate to devices (docs/tls-inspection.md), and check the\n"
           "fingerprint a device shows matches this one.\n");
    X509_free(cert);
    return 0;
}

static int ca_cmd_export(struct ca_opts *o)
{
    unsigned char *der = NULL;
    X509 *cert;
    FILE *f = stdout;
    int rc = 1, n;

    if (o->der && !o->out && isatty(STDOUT_FILENO))
        return cli_usage_error(ca_usage, "DER is binary: give -o FILE, or redirect the output");
    cert = ca_cli_load_cert(o->dir);
    if (!cert)
        return 1;
    if (o->out) {
        f = fopen(o->out, "wb");
        if (!f) {
            fprintf(stderr, "haven: %s: %s\n", o->out, strerror(errno));
            goto out;
        }
    }
    if (o->der) {
        n = i2d_X509(cert, &der);
        if (n <= 0 || fwrite(der, 1, (size_t)n, f) != (size_t)n) {
            fprintf(stderr, "haven: cannot write the certificate\n");
            goto out;
        }
    } else if (PEM_write_X509(f, cert) != 1) {
        fprintf(stderr, "haven: cannot write the certificate\n");
        goto out;
    }
    if (fflush(f) != 0) {
        fprintf(stderr, "haven: %s: %s\n", o->out ? o->out : "standard output", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f && f != stdout && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "haven: %s: %s\n", o->out, strerror(errno));
        rc = 1;
    }
    OPENSSL_free(der);
    X509_free(cert);
    return rc;
}

static int ca_cmd_show(struct ca_opts *o)
{
    char path[4096], subject[512], from[64], until[64], keydesc[64], fp[CA_FINGERPRINT_LEN];
    const ASN1_INTEGER *serial;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    time_t now = (time_t)clock_now();
    struct stat st;
    X509 *cert;
    int days = 0, secs = 0;

    cert = ca_cli_load_cert(o->dir);
    if (!cert)
        return 1;
    ca_subject(cert, subject, sizeof(subject));
    ca_time(X509_get0_notBefore(cert), from, sizeof(from));
    ca_time(X509_get0_notAfter(cert), until, sizeof(until));
    ca_key_desc(cert, keydesc, sizeof(keydesc));
    ca_fingerprint(cert, fp);
    serial = X509_get0_serialNumber(cert);
    bn = ASN1_INTEGER_to_BN(serial, NULL);
    if (bn)
        hex = BN_bn2hex(bn);
    ca_path(path, sizeof(path), o->dir, CA_CERT_FILE);
    printf("certificate  %s\n", path);
    printf("subject      %s\n", subject);
    printf("key          %s\n", keydesc);
    printf("serial       %s\n", hex ? hex : "(unreadable)");
    printf("valid from   %s\n", from);
    if (X509_cmp_time(X509_get0_notAfter(cert), &now) <= 0) {
        printf("valid until  %s  (EXPIRED: make a new CA and deploy it)\n", until);
    } else {
        ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert));
        printf("valid until  %s  (%d days from now)\n", until, days);
    }
    printf("SHA-256 fingerprint %s\n", fp);
    ca_path(path, sizeof(path), o->dir, CA_KEY_FILE);
    if (stat(path, &st) != 0)
        printf("private key  %s: %s\n", path, strerror(errno));
    else if ((st.st_mode & 077) != 0)
        printf("private key  %s  (mode %04o: others can read it! chmod 600 it)\n", path,
               (unsigned)(st.st_mode & 07777));
    else
        printf("private key  %s  (mode %04o)\n", path, (unsigned)(st.st_mode & 07777));
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(cert);
    return 0;
}

/* Write the leaf key to path (a new file, or one we replace, mode 0600). */
static int ca_write_key(const char *path, EVP_PKEY *key)
{
    FILE *f = NULL;
    int fd, rc = -1;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        fprintf(stderr, "haven: %s: %s\n", path, strerror(errno));
        goto out;
    }
    f = fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "haven: %s: %s\n", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (PEM_write_PKCS8PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0) {
        fprintf(stderr, "haven: %s: cannot write the key\n", path);
        goto out;
    }
    rc = 0;
out:
    if (f && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "haven: %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int ca_cmd_mint(struct ca_opts *o)
{
    const char *host = o->pos[0];
    struct signer *s = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    FILE *f = stdout;
    char err[1024];
    size_t len = 0;
    int rc = 1;

    if (ca_check_host(host, strlen(host), NULL, err, sizeof(err)) != 0)
        return cli_usage_error(ca_usage, "%s", err);
    if (signer_start(o->dir, (uid_t)-1, (gid_t)-1, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "haven: %s\n", err);
        return 1;
    }
    key = signer_leaf_key_new(SIGNER_LEAF_EC_P256);
    if (!key) {
        fprintf(stderr, "haven: cannot make a leaf key\n");
        goto out;
    }
    if (signer_sign(s, host, key, (time_t)clock_now(), &der, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    p = der;
    leaf = d2i_X509(NULL, &p, (long)len);
    if (!leaf) {
        fprintf(stderr, "haven: the signer's certificate does not parse\n");
        goto out;
    }
    if (o->key_out && ca_write_key(o->key_out, key) != 0)
        goto out;
    if (o->out) {
        f = fopen(o->out, "w");
        if (!f) {
            fprintf(stderr, "haven: %s: %s\n", o->out, strerror(errno));
            goto out;
        }
    }
    if (PEM_write_X509(f, leaf) != 1 || fflush(f) != 0) {
        fprintf(stderr, "haven: cannot write the certificate\n");
        goto out;
    }
    rc = 0;
out:
    if (f && f != stdout && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "haven: %s: %s\n", o->out, strerror(errno));
        rc = 1;
    }
    X509_free(leaf);
    free(der);
    EVP_PKEY_free(key);
    if (signer_stop(s) != 0 && rc == 0) {
        fprintf(stderr, "haven: the certificate signer did not exit cleanly\n");
        rc = 1;
    }
    return rc;
}

int cmd_ca(int argc, char **argv)
{
    struct ca_opts o;
    int rc;

    if (argc < 2)
        return cli_usage_error(ca_usage, "ca needs a sub-command: init, export, show or mint");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(ca_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "init") == 0) {
        rc = ca_parse(argc - 1, argv + 1, "dnrf", 0, "", &o);
        return rc ? (rc == 1 ? 0 : rc) : ca_cmd_init(&o);
    }
    if (strcmp(argv[1], "export") == 0) {
        rc = ca_parse(argc - 1, argv + 1, "dDo", 0, "", &o);
        return rc ? (rc == 1 ? 0 : rc) : ca_cmd_export(&o);
    }
    if (strcmp(argv[1], "show") == 0) {
        rc = ca_parse(argc - 1, argv + 1, "d", 0, "", &o);
        return rc ? (rc == 1 ? 0 : rc) : ca_cmd_show(&o);
    }
    if (strcmp(argv[1], "mint") == 0) {
        rc = ca_parse(argc - 1, argv + 1, "dok", 1, "a HOST", &o);
        return rc ? (rc == 1 ? 0 : rc) : ca_cmd_mint(&o);
    }
    return cli_usage_error(ca_usage, "unknown ca sub-command '%s' (init, export, show, mint)",
                           argv[1]);
}
