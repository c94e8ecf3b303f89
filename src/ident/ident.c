/*
 * ident.c -- the identity snapshot: users, IP sessions, networks, Basic auth.
 *
 * DESIGN: ident_load copies the users and sessions out of the store into two
 * open-addressing hash tables (linear probing, slots hold index + 1, 0 empty),
 * keyed with SipHash (crypto_shorthash) under a random key per snapshot, so
 * no username can be chosen to collide. Addresses are keyed as 16 bytes, IPv4
 * as its IPv4-mapped IPv6 form, so a client reaching an IPv6 listener from
 * IPv4 ("::ffff:192.0.2.1") finds the same session as on an IPv4 one. Networks
 * are a short list sorted most specific first: the first that contains the
 * address wins. Nothing here changes after the snapshot is published.
 *
 * The credentials cache is the one shared, changing structure: a fixed pool
 * of entries reused oldest first (a ring), chained from hash buckets, behind
 * one mutex. Its keys are already keyed BLAKE2b hashes, so their first bytes
 * index the buckets directly.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "ident/ident.h"
#include "store/store.h"

struct ident_user {
    char *username; /* as stored */
    char *group;
    char *display;     /* or NULL */
    char *hash;        /* argon2id string, or NULL */
    uint64_t password; /* fingerprint of hash (0: none); cache entries compare it */
};

struct ident_session {
    unsigned char addr[16];
    int64_t expires;
    const struct ident_user *user;
};

struct ident_net {
    unsigned char addr[16];
    int bits; /* prefix length over the 16-byte form (IPv4 /n is 96 + n) */
    char *group;
};

struct ident {
    unsigned char key[crypto_shorthash_KEYBYTES];
    struct ident_user *users;
    size_t nusers, users_cap;
    uint32_t *user_slots; /* user index + 1, or 0 */
    size_t user_mask;
    struct ident_session *sessions;
    size_t nsessions, sessions_cap;
    uint32_t *session_slots;
    size_t session_mask;
    struct ident_net *nets;
    size_t nnets, nets_cap;
    char *default_group;
};

static pthread_once_t ident_sodium_once = PTHREAD_ONCE_INIT;
static int ident_sodium_status;

static void ident_sodium_init(void)
{
    ident_sodium_status = sodium_init() < 0 ? -1 : 0;
}

static int ident_sodium(void)
{
    pthread_once(&ident_sodium_once, ident_sodium_init);
    return ident_sodium_status;
}

/* ---- hashing keys ---- */

/* Lower-case an ASCII username into out (IDENT_USER_MAX + 1 bytes); -1 if too long. */
static int ident_fold(const char *s, char *out, size_t *len)
{
    size_t n = strlen(s);

    if (n > IDENT_USER_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    *len = n;
    return 0;
}

static uint64_t ident_hash(const struct ident *id, const void *p, size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v;

    crypto_shorthash(h, p, len, id->key);
    memcpy(&v, h, sizeof(v));
    return v;
}

static int ident_same_user(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Table size for n entries: a power of two at least twice n. */
static size_t ident_table_size(size_t n)
{
    size_t size = 16;

    while (size < n * 2)
        size *= 2;
    return size;
}

static const struct ident_user *ident_find_user(const struct ident *id, const char *username)
{
    char folded[IDENT_USER_MAX + 1];
    size_t len;

    if (!id || id->nusers == 0 || ident_fold(username, folded, &len) < 0)
        return NULL;
    for (size_t i = ident_hash(id, folded, len) & id->user_mask;; i = (i + 1) & id->user_mask) {
        uint32_t slot = id->user_slots[i];
        if (slot == 0)
            return NULL;
        if (ident_same_user(id->users[slot - 1].username, folded))
            return &id->users[slot - 1];
    }
}

/* The 16-byte key for a socket address; -1 for other families. */
static int ident_addr_key(const struct sockaddr *sa, unsigned char out[16])
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memset(out, 0, 10);
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &in->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(out, &in6->sin6_addr, 16);
        return 0;
    }
    return -1;
}

/* The 16-byte key for address text; -1 if it is not an address. */
static int ident_text_key(const char *text, unsigned char out[16])
{
    struct in_addr a4;

    if (inet_pton(AF_INET, text, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

static int ident_is_v4(const unsigned char a[16])
{
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    return memcmp(a, prefix, sizeof(prefix)) == 0;
}

int ident_ip_canonical(const char *text, char out[IDENT_IP_MAX])
{
    unsigned char a[16];

    if (ident_text_key(text, a) < 0)
        return -1;
    if (ident_is_v4(a))
        return inet_ntop(AF_INET, a + 12, out, IDENT_IP_MAX) ? 0 : -1;
    return inet_ntop(AF_INET6, a, out, IDENT_IP_MAX) ? 0 : -1;
}

/* ---- building the snapshot ---- */

static uint64_t ident_fingerprint(const char *hash)
{
    unsigned char h[crypto_generichash_BYTES_MIN];
    uint64_t v;

    if (!hash)
        return 0;
    crypto_generichash(h, sizeof(h), (const unsigned char *)hash, strlen(hash), NULL, 0);
    memcpy(&v, h, sizeof(v));
    return v | 1; /* never 0, which means "no password" */
}

static int ident_collect_user(void *arg, const struct store_user *u)
{
    struct ident *id = arg;
    struct ident_user *nu;

    id->users = xgrow(id->users, &id->users_cap, id->nusers + 1, sizeof(*id->users));
    nu = &id->users[id->nusers++];
    nu->username = xstrdup(u->username);
    nu->group = xstrdup(u->group_name);
    nu->display = u->display_name ? xstrdup(u->display_name) : NULL;
    nu->hash = u->password_hash ? xstrdup(u->password_hash) : NULL;
    nu->password = ident_fingerprint(u->password_hash);
    return 0;
}

static int ident_collect_session(void *arg, const struct store_session *s)
{
    struct ident *id = arg;
    struct ident_session *ns;
    const struct ident_user *u;
    unsigned char a[16];

    if (s->expires <= clock_now())
        return 0;
    if (ident_text_key(s->ip, a) < 0) {
        log_warnx("users database: session for '%s' has a bad address '%s'; ignored", s->username,
                  s->ip);
        return 0;
    }
    u = ident_find_user(id, s->username);
    if (!u)
        return 0; /* the user was deleted as we read: the session went with it */
    id->sessions = xgrow(id->sessions, &id->sessions_cap, id->nsessions + 1, sizeof(*id->sessions));
    ns = &id->sessions[id->nsessions++];
    memcpy(ns->addr, a, 16);
    ns->expires = s->expires;
    ns->user = u;
    return 0;
}

static void ident_index_users(struct ident *id)
{
    size_t size = ident_table_size(id->nusers);
    char folded[IDENT_USER_MAX + 1];
    size_t len;

    id->user_slots = xcalloc(size, sizeof(*id->user_slots));
    id->user_mask = size - 1;
    for (size_t u = 0; u < id->nusers; u++) {
        const char *name = id->users[u].username;
        size_t i;
        /* A name too long to look up is kept (listed) but cannot be found. */
        if (ident_fold(name, folded, &len) < 0)
            continue;
        i = ident_hash(id, folded, len) & id->user_mask;
        while (id->user_slots[i] != 0)
            i = (i + 1) & id->user_mask;
        id->user_slots[i] = (uint32_t)(u + 1);
    }
}

static void ident_index_sessions(struct ident *id)
{
    size_t size = ident_table_size(id->nsessions);

    id->session_slots = xcalloc(size, sizeof(*id->session_slots));
    id->session_mask = size - 1;
    for (size_t s = 0; s < id->nsessions; s++) {
        size_t i = ident_hash(id, id->sessions[s].addr, 16) & id->session_mask;
        while (id->session_slots[i] != 0)
            i = (i + 1) & id->session_mask;
        id->session_slots[i] = (uint32_t)(s + 1);
    }
}

struct ident *ident_load(struct store *st, char *err, size_t errlen)
{
    struct ident *id = xcalloc(1, sizeof(*id));
    struct ident *result = NULL;

    if (ident_sodium() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        goto out;
    }
    randombytes_buf(id->key, sizeof(id->key));
    if (store_user_list(st, ident_collect_user, id, err, errlen) != 0)
        goto out;
    if (id->nusers >= UINT32_MAX / 2) {
        snprintf(err, errlen, "too many users (%zu)", id->nusers);
        goto out;
    }
    ident_index_users(id);
    /* Sessions point at users, so they are read after the user table is indexed. */
    if (store_session_list(st, ident_collect_session, id, err, errlen) != 0)
        goto out;
    ident_index_sessions(id);
    result = id;
    id = NULL;
out:
    ident_free(id);
    return result;
}

void ident_free(struct ident *id)
{
    if (!id)
        return;
    for (size_t i = 0; i < id->nusers; i++) {
        free(id->users[i].username);
        free(id->users[i].group);
        free(id->users[i].display);
        free(id->users[i].hash);
    }
    for (size_t i = 0; i < id->nnets; i++)
        free(id->nets[i].group);
    free(id->users);
    free(id->user_slots);
    free(id->sessions);
    free(id->session_slots);
    free(id->nets);
    free(id->default_group);
    free(id);
}

size_t ident_user_count(const struct ident *id)
{
    return id ? id->nusers : 0;
}

size_t ident_session_count(const struct ident *id)
{
    return id ? id->nsessions : 0;
}

/* ---- networks ---- */

int ident_add_network(struct ident *id, const char *cidr, const char *group, char *err,
                      size_t errlen)
{
    char text[IDENT_IP_MAX + 8];
    const char *slash = strchr(cidr, '/');
    unsigned char a[16];
    size_t alen = slash ? (size_t)(slash - cidr) : strlen(cidr);
    int bits, max, v4;
    size_t at;

    if (alen == 0 || alen >= IDENT_IP_MAX) {
        snprintf(err, errlen, "'%s' is not a network (want ADDRESS/PREFIX)", cidr);
        return -1;
    }
    memcpy(text, cidr, alen);
    text[alen] = '\0';
    if (ident_text_key(text, a) < 0) {
        snprintf(err, errlen, "'%s' is not a network: '%s' is not an IP address", cidr, text);
        return -1;
    }
    v4 = strchr(text, ':') == NULL;
    max = v4 ? 32 : 128;
    bits = max;
    if (slash) {
        const char *p = slash + 1;
        bits = 0;
        if (*p == '\0' || strlen(p) > 3) {
            snprintf(err, errlen, "'%s': the prefix length must be 0 to %d", cidr, max);
            return -1;
        }
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p)) {
                snprintf(err, errlen, "'%s': the prefix length must be 0 to %d", cidr, max);
                return -1;
            }
            bits = bits * 10 + (*p - '0');
        }
        if (bits > max) {
            snprintf(err, errlen, "'%s': the prefix length must be 0 to %d", cidr, max);
            return -1;
        }
    }
    if (v4)
        bits += 96;
    for (int b = bits; b < 128; b++) {
        if (a[b / 8] & (0x80 >> (b % 8))) {
            snprintf(err, errlen, "'%s' has address bits set after the /%d prefix", cidr,
                     v4 ? bits - 96 : bits);
            return -1;
        }
    }
    if (!group || !*group) {
        snprintf(err, errlen, "network '%s' needs a group", cidr);
        return -1;
    }
    id->nets = xgrow(id->nets, &id->nets_cap, id->nnets + 1, sizeof(*id->nets));
    /* Keep the list most specific first; equal prefixes keep the order they came in. */
    for (at = 0; at < id->nnets && id->nets[at].bits >= bits; at++)
        ;
    memmove(&id->nets[at + 1], &id->nets[at], (id->nnets - at) * sizeof(*id->nets));
    memcpy(id->nets[at].addr, a, 16);
    id->nets[at].bits = bits;
    id->nets[at].group = xstrdup(group);
    id->nnets++;
    return 0;
}

void ident_set_default_group(struct ident *id, const char *group)
{
    free(id->default_group);
    id->default_group = group ? xstrdup(group) : NULL;
}

static int ident_in_net(const struct ident_net *n, const unsigned char a[16])
{
    int full = n->bits / 8, rest = n->bits % 8;

    if (memcmp(n->addr, a, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((n->addr[full] ^ a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

int ident_network_group(const struct ident *id, const struct sockaddr *client, const char **group)
{
    unsigned char a[16];

    if (!id || ident_addr_key(client, a) < 0)
        return -1;
    for (size_t i = 0; i < id->nnets; i++) {
        if (ident_in_net(&id->nets[i], a)) {
            *group = id->nets[i].group;
            return 0;
        }
    }
    return -1;
}

/* ---- lookups ---- */

int ident_session_user(const struct ident *id, const struct sockaddr *client, int64_t now,
                       const char **username, const char **group)
{
    unsigned char a[16];

    if (!id || id->nsessions == 0 || ident_addr_key(client, a) < 0)
        return -1;
    for (size_t i = ident_hash(id, a, 16) & id->session_mask;; i = (i + 1) & id->session_mask) {
        uint32_t slot = id->session_slots[i];
        const struct ident_session *s;
        if (slot == 0)
            return -1;
        s = &id->sessions[slot - 1];
        if (memcmp(s->addr, a, 16) == 0) {
            if (s->expires <= now)
                return -1;
            *username = s->user->username;
            *group = s->user->group;
            return 0;
        }
    }
}

int ident_user_group(const struct ident *id, const char *username, const char **group,
                     const char **display)
{
    const struct ident_user *u = ident_find_user(id, username);

    if (!u)
        return -1;
    if (group)
        *group = u->group;
    if (display)
        *display = u->display;
    return 0;
}

void ident_identify(const struct ident *id, const struct sockaddr *client, int64_t now,
                    struct ident_who *who)
{
    memset(who, 0, sizeof(*who));
    if (ident_session_user(id, client, now, &who->username, &who->group) == 0) {
        who->source = IDENT_SESSION;
        ident_user_group(id, who->username, NULL, &who->display);
        return;
    }
    if (ident_network_group(id, client, &who->group) == 0) {
        who->source = IDENT_NETWORK;
        return;
    }
    if (id && id->default_group) {
        who->source = IDENT_DEFAULT;
        who->group = id->default_group;
        return;
    }
    who->source = IDENT_NONE;
}

const char *ident_source_name(enum ident_source s)
{
    switch (s) {
    case IDENT_AUTH:
        return "auth";
    case IDENT_SESSION:
        return "session";
    case IDENT_NETWORK:
        return "network";
    case IDENT_DEFAULT:
        return "default";
    case IDENT_NONE:
        break;
    }
    return "none";
}

/* ---- Basic authentication ---- */

static int ident_has_control(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f)
            return 1;
    }
    return 0;
}

int ident_parse_basic(struct slice v, char *user, size_t usize, char *pass, size_t psize)
{
    /* Room for the longest user and password we accept, with the colon. */
    unsigned char bin[IDENT_USER_MAX + 1 + IDENT_PASS_MAX + 3];
    const char *end = NULL;
    const unsigned char *colon;
    size_t binlen = 0, ulen, plen;
    int rc = -1;

    if (usize == 0 || psize == 0)
        return -1;
    user[0] = '\0';
    pass[0] = '\0';
    if (ident_sodium() < 0)
        goto out;
    v = slice_trim(v);
    if (v.len < 6 || strncasecmp(v.p, "basic", 5) != 0 || (v.p[5] != ' ' && v.p[5] != '\t'))
        goto out;
    v.p += 5;
    v.len -= 5;
    v = slice_trim(v);
    if (v.len == 0 || v.len > (sizeof(bin) / 3 + 1) * 4)
        goto out;
    if (sodium_base642bin(bin, sizeof(bin), v.p, v.len, NULL, &binlen, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != v.p + v.len) {
        /* Some clients leave out the '=' padding. */
        if (sodium_base642bin(bin, sizeof(bin), v.p, v.len, NULL, &binlen, &end,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
            end != v.p + v.len)
            goto out;
    }
    colon = memchr(bin, ':', binlen);
    if (!colon)
        goto out;
    ulen = (size_t)(colon - bin);
    plen = binlen - ulen - 1;
    if (ulen == 0 || ulen >= usize || plen >= psize || ident_has_control(bin, binlen))
        goto out;
    memcpy(user, bin, ulen);
    user[ulen] = '\0';
    memcpy(pass, colon + 1, plen);
    pass[plen] = '\0';
    rc = 0;
out:
    sodium_memzero(bin, sizeof(bin));
    return rc;
}

/* ---- passwords ---- */

int ident_hash_password(const char *pass, char out[IDENT_HASH_MAX])
{
    _Static_assert(IDENT_HASH_MAX >= crypto_pwhash_STRBYTES, "IDENT_HASH_MAX too small");
    if (ident_sodium() < 0)
        return -1;
    return crypto_pwhash_str_alg(out, pass, strlen(pass), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
}

/* A hash of a password nobody knows, so that an unknown user costs as much as a known one. */
static char ident_dummy_hash[IDENT_HASH_MAX];
static pthread_once_t ident_dummy_once = PTHREAD_ONCE_INIT;

static void ident_dummy_init(void)
{
    char random[33];
    unsigned char bytes[16];

    randombytes_buf(bytes, sizeof(bytes));
    sodium_bin2hex(random, sizeof(random), bytes, sizeof(bytes));
    if (ident_hash_password(random, ident_dummy_hash) < 0)
        ident_dummy_hash[0] = '\0';
}

int ident_check_password(const struct ident *id, const char *user, const char *pass)
{
    const struct ident_user *u;

    if (ident_sodium() < 0)
        return -1;
    u = ident_find_user(id, user);
    if (!u || !u->hash) {
        pthread_once(&ident_dummy_once, ident_dummy_init);
        /* The answer is no whatever this says: it is here to take the same time. */
        if (ident_dummy_hash[0]) {
            int same_time = crypto_pwhash_str_verify(ident_dummy_hash, pass, strlen(pass));
            (void)same_time;
        }
        return -1;
    }
    return crypto_pwhash_str_verify(u->hash, pass, strlen(pass)) == 0 ? 0 : -1;
}

/* Read "NAME=NUMBER" and then the character sep at *p (NUMBER at most 10 digits, no
 * leading zero); -1 if they are not there. */
static int ident_hash_param(const char **p, char name, char sep, unsigned long *v)
{
    const char *s = *p;
    int digits = 0;

    if (s[0] != name || s[1] != '=')
        return -1;
    s += 2;
    *v = 0;
    while (isdigit((unsigned char)*s) && digits < 10) {
        *v = *v * 10 + (unsigned long)(*s - '0');
        s++;
        digits++;
    }
    if (digits == 0 || (digits > 1 && (*p)[2] == '0') || *s != sep)
        return -1;
    *p = s + 1;
    return 0;
}

int ident_hash_check(const char *s, const char **why)
{
    static const char prefix[] = "$argon2id$v=19$";
    const char *p;
    unsigned long m, t, par;

    if (strncmp(s, "$argon2id$", 10) != 0) {
        *why = "password_hash must be an argon2id hash ($argon2id$...)";
        return -1;
    }
    if (strncmp(s, prefix, sizeof(prefix) - 1) != 0) {
        *why = "password_hash must be argon2id version 19 ($argon2id$v=19$...)";
        return -1;
    }
    p = s + sizeof(prefix) - 1;
    if (ident_hash_param(&p, 'm', ',', &m) < 0 || ident_hash_param(&p, 't', ',', &t) < 0 ||
        ident_hash_param(&p, 'p', '$', &par) < 0) {
        *why = "password_hash parameters must read m=MEMORY,t=PASSES,p=LANES";
        return -1;
    }
    if (m > 262144 || t > 10 || par > 8) {
        *why = "password_hash costs too much to check on a proxy (at most m=262144 (256 MiB), "
               "t=10, p=8)";
        return -1;
    }
    if (ident_sodium() < 0 ||
        crypto_pwhash_str_needs_rehash(s, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE) < 0) {
        *why = "password_hash is not a well-formed argon2id hash";
        return -1;
    }
    return 0;
}

/* ---- the verified-credentials cache ---- */

struct ident_cache_entry {
    unsigned char key[crypto_generichash_BYTES];
    char user[IDENT_USER_MAX + 1];
    uint64_t password; /* the user's password fingerprint when verified */
    int64_t at;        /* when verified */
    int32_t next;      /* next entry in the bucket, or -1 */
    int used;
};

struct ident_cache {
    pthread_mutex_t lock;
    unsigned char hkey[crypto_generichash_KEYBYTES];
    struct ident_cache_entry *entries;
    size_t max, hand; /* the ring: hand is the next entry to reuse */
    int32_t *buckets; /* first entry, or -1 */
    size_t mask;
    int64_t ttl;
};

struct ident_cache *ident_cache_create(size_t max, int64_t ttl)
{
    struct ident_cache *c;
    size_t nb;

    if (ident_sodium() < 0)
        return NULL;
    if (max == 0)
        max = 1;
    if (max > INT32_MAX / 4)
        max = INT32_MAX / 4;
    c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    randombytes_buf(c->hkey, sizeof(c->hkey));
    c->entries = xcalloc(max, sizeof(*c->entries));
    c->max = max;
    c->ttl = ttl;
    nb = ident_table_size(max);
    c->buckets = xmalloc(nb * sizeof(*c->buckets));
    for (size_t i = 0; i < nb; i++)
        c->buckets[i] = -1;
    c->mask = nb - 1;
    return c;
}

void ident_cache_destroy(struct ident_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    sodium_memzero(c->hkey, sizeof(c->hkey));
    free(c->entries);
    free(c->buckets);
    free(c);
}

static void ident_cache_key(const struct ident_cache *c, struct slice v,
                            unsigned char key[crypto_generichash_BYTES])
{
    crypto_generichash(key, crypto_generichash_BYTES, (const unsigned char *)v.p, v.len, c->hkey,
                       sizeof(c->hkey));
}

static size_t ident_cache_bucket(const struct ident_cache *c, const unsigned char *key)
{
    uint64_t v;

    memcpy(&v, key, sizeof(v));
    return (size_t)(v & c->mask);
}

/* The entry with key, or -1. Called with the lock held. */
static int32_t ident_cache_find(const struct ident_cache *c, const unsigned char *key)
{
    for (int32_t e = c->buckets[ident_cache_bucket(c, key)]; e >= 0; e = c->entries[e].next) {
        if (sodium_memcmp(c->entries[e].key, key, crypto_generichash_BYTES) == 0)
            return e;
    }
    return -1;
}

static void ident_cache_unlink(struct ident_cache *c, int32_t e)
{
    int32_t *link = &c->buckets[ident_cache_bucket(c, c->entries[e].key)];

    while (*link != e)
        link = &c->entries[*link].next;
    *link = c->entries[e].next;
    c->entries[e].used = 0;
}

void ident_cache_put(struct ident_cache *c, const struct ident *id, struct slice v,
                     const char *user, int64_t now)
{
    const struct ident_user *u = ident_find_user(id, user);
    unsigned char key[crypto_generichash_BYTES];
    struct ident_cache_entry *ent;
    int32_t e;
    size_t b;

    if (!c || !u || !u->hash || strlen(u->username) > IDENT_USER_MAX)
        return;
    ident_cache_key(c, v, key);
    pthread_mutex_lock(&c->lock);
    e = ident_cache_find(c, key);
    if (e < 0) {
        e = (int32_t)c->hand;
        c->hand = (c->hand + 1) % c->max;
        if (c->entries[e].used)
            ident_cache_unlink(c, e);
        ent = &c->entries[e];
        memcpy(ent->key, key, sizeof(key));
        b = ident_cache_bucket(c, key);
        ent->next = c->buckets[b];
        c->buckets[b] = e;
        ent->used = 1;
    }
    ent = &c->entries[e];
    snprintf(ent->user, sizeof(ent->user), "%s", u->username);
    ent->password = u->password;
    ent->at = now;
    pthread_mutex_unlock(&c->lock);
}

int ident_cache_get(struct ident_cache *c, const struct ident *id, struct slice v, int64_t now,
                    char *user, size_t usize)
{
    unsigned char key[crypto_generichash_BYTES];
    char found[IDENT_USER_MAX + 1];
    const struct ident_user *u;
    uint64_t password = 0;
    int32_t e;
    int rc = -1;

    if (!c || usize == 0)
        return -1;
    ident_cache_key(c, v, key);
    found[0] = '\0';
    pthread_mutex_lock(&c->lock);
    e = ident_cache_find(c, key);
    if (e >= 0) {
        const struct ident_cache_entry *ent = &c->entries[e];
        if (now >= ent->at && now - ent->at < c->ttl) {
            memcpy(found, ent->user, sizeof(found));
            password = ent->password;
        } else {
            ident_cache_unlink(c, e);
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (!found[0])
        goto out;
    u = ident_find_user(id, found);
    if (!u || u->password != password || strlen(u->username) >= usize)
        goto out;
    snprintf(user, usize, "%s", u->username);
    rc = 0;
out:
    return rc;
}
