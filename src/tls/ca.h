/*
 * ca.h -- the school's inspection certificate authority: create it, load it, mint leaves.
 *
 * HTTPS inspection needs a certificate for each host the proxy inspects, signed by a CA
 * that the school's devices trust. This module makes that CA (a key pair and a
 * self-signed certificate in one directory), loads it, and mints short-lived leaf
 * certificates for host names and IP literals.
 *
 * A CA directory holds three files:
 *   ca.key  the private key, PEM PKCS#8, mode 0600. Only `haven ca init` writes it and only
 *           the signer process (tls/signer.h) reads it: nothing else in haven calls ca_load.
 *   ca.pem  the certificate, PEM: what devices trust and workers send as the chain.
 *   ca.der  the same certificate, DER (what some device managers ask for).
 *
 * The CA certificate: subject CN "<name> haven inspection CA", O "<name>";
 * basicConstraints critical CA:TRUE, pathlen:0 (it signs leaves only, never another CA);
 * keyUsage critical keyCertSign, cRLSign; subjectKeyIdentifier; valid from one hour before
 * creation for CA_VALIDITY_DAYS; a random positive 128-bit serial; SHA-256.
 *
 * A leaf: subject CN=host (cut to 64 bytes for long names; the SAN always carries the
 * whole name), O copied from the CA; SAN dNSName=host, or iPAddress for an IPv4/IPv6
 * literal; basicConstraints critical CA:FALSE; keyUsage critical digitalSignature (plus
 * keyEncipherment for RSA keys); extendedKeyUsage serverAuth; subject and authority key
 * identifiers; valid from now - CA_LEAF_BACKDATE to now + CA_LEAF_LIFETIME (never past the
 * CA's own notAfter); random serial; SHA-256. Browsers need no Certificate Transparency
 * for certificates under a root the device's owner installed.
 *
 * Thread safety: ca_mint_leaf may be called on one struct ca from several threads (its
 * only changing state, the cache of the last leaf public key, is under a mutex).
 */
#ifndef HAVEN_TLS_CA_H
#define HAVEN_TLS_CA_H

#include <stddef.h>
#include <time.h>

#include <openssl/types.h>

#define CA_KEY_FILE "ca.key"
#define CA_CERT_FILE "ca.pem"
#define CA_DER_FILE "ca.der"

/* How long a new CA certificate is valid: ten years (365-day years). */
#define CA_VALIDITY_DAYS 3650
/* A leaf is valid for 72 hours from now ... */
#define CA_LEAF_LIFETIME (72 * 3600)
/* ... and from an hour before now, for devices whose clocks run a little slow. */
#define CA_LEAF_BACKDATE 3600

/* The longest host name a leaf is minted for (RFC 1035 limit, without the final dot). */
#define CA_MAX_HOST 253
/* The longest school name: the CA's CN "<name> haven inspection CA" must fit in 64 bytes. */
#define CA_MAX_NAME 40

enum ca_keytype {
    CA_EC_P256, /* ECDSA on P-256: small and fast; the default */
    CA_RSA3072, /* RSA 3072 bits: for old device managers that take no EC roots */
};

/* Flags for ca_create. */
#define CA_CREATE_FORCE 0x1 /* replace an existing CA in the directory */

/*
 * Make a new CA in dir (created with mode 0700 if missing; its parent must exist): writes
 * ca.key, ca.pem and ca.der. Each file is written under a temporary name and renamed into
 * place; the key's temporary file is created with O_EXCL|O_NOFOLLOW and mode 0600, so it
 * never exists with a wider mode. Without CA_CREATE_FORCE an existing ca.key or ca.pem is
 * an error and nothing is written. name is the school's name (1 to CA_MAX_NAME bytes of
 * UTF-8 with no control characters). The validity starts from clock_now().
 * Returns 0, or -1 with the reason in err.
 */
int ca_create(const char *dir, const char *name, enum ca_keytype type, unsigned flags, char *err,
              size_t errlen);

struct ca;

/*
 * Load the CA from dir (ca.pem and ca.key), or from a certificate and a key file. Refuses a
 * key file that others can read (mode & 077), a certificate that is not a CA, and a key that
 * is not the certificate's. Only the signer process calls these. Returns the CA (free it
 * with ca_free), or NULL with the reason in err.
 */
struct ca *ca_load(const char *dir, char *err, size_t errlen);
struct ca *ca_load_files(const char *cert_path, const char *key_path, char *err, size_t errlen);
/* Free the CA; the private key is wiped by OpenSSL. NULL is fine. */
void ca_free(struct ca *ca);
/* The CA certificate, owned by ca. */
X509 *ca_cert(const struct ca *ca);

/*
 * Load just the CA certificate (the public part) from a PEM file, for the workers to send
 * as the chain and for `haven ca show`. Returns it (caller X509_free()s it), or NULL with
 * the reason in err.
 */
X509 *ca_load_cert(const char *cert_path, char *err, size_t errlen);

/*
 * Check that host[0..len) is a name a leaf can be minted for: a DNS name (labels of 1-63
 * letters, digits, '-' or '_', not starting or ending with '-', separated by single dots,
 * no final dot, the last label not all digits, at most CA_MAX_HOST bytes) or an IPv4 or
 * IPv6 literal (IPv6 without brackets or zone). Sets *is_ip (if not NULL) to 1 for an IP
 * literal. Returns 0, or -1 with the reason in err.
 */
int ca_check_host(const char *host, size_t len, int *is_ip, char *err, size_t errlen);

/*
 * Check that key can be a leaf's key: RSA of 2048 to 8192 bits, or EC on P-256 or P-384
 * (what browsers take). Sets *rsa (if not NULL) to 1 for RSA. Returns 0, or -1 with the
 * reason in err.
 */
int ca_check_leaf_key(EVP_PKEY *key, int *rsa, char *err, size_t errlen);

/*
 * Check that spki[0..len) is exactly one DER SubjectPublicKeyInfo holding a key that
 * ca_check_leaf_key accepts. Returns 0, or -1 with the reason in err. Pure.
 */
int ca_check_spki(const unsigned char *spki, size_t len, char *err, size_t errlen);

/*
 * Mint a leaf certificate for host (which must pass ca_check_host; letters are written in
 * lower case) for the public key spki[0..spki_len) (DER SubjectPublicKeyInfo; must pass
 * ca_check_spki), valid around now (seconds since the epoch). On success returns 0 and sets
 * *der to the DER certificate (caller free()s it) and *len to its length. Fails, with the
 * reason in err, for a bad host, an unsupported key, or a CA that has expired by now.
 *
 * The key is given as DER, not as an EVP_PKEY, because OpenSSL 3.0 encodes and decodes a
 * key each time one is put into a certificate, which costs more than the signature; the last
 * key's decoded form is kept, so minting for the same key again skips that work.
 */
int ca_mint_leaf(struct ca *ca, const char *host, const unsigned char *spki, size_t spki_len,
                 time_t now, unsigned char **der, size_t *len, char *err, size_t errlen);

/* The SHA-256 fingerprint of cert as "AB:CD:...:EF" (95 characters and a NUL) into out. */
#define CA_FINGERPRINT_LEN 96
void ca_fingerprint(X509 *cert, char out[CA_FINGERPRINT_LEN]);

#endif
