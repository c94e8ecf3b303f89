/*
 * ident.h -- who is making this request: an immutable identity snapshot.
 *
 * haven ties every request to a person where it can (DfE filtering standard:
 * "device, IP address and, where possible, the individual"). The order is:
 *   1. Proxy-Authorization: Basic, checked against the users' argon2id
 *      password hashes (ident_parse_basic, ident_check_password, with the
 *      verified-credentials cache below);
 *   2. an unexpired IP-to-user session (`haven session add`, later the
 *      captive portal): ident_session_user;
 *   3. the network the address is in, mapped to a group: ident_network_group;
 *   4. the default group.
 * ident_identify() does steps 2 to 4 in one call; step 1 is slow and the
 * proxy runs it apart (see ident_check_password).
 *
 * DESIGN: the proxy's worker threads never call sqlite3_step (STYLE.md rule
 * 14). ident_load() reads users and sessions from the store once into hash
 * tables; the snapshot never changes after it is published, so any number of
 * threads read it without locks. The daemon rebuilds it every few seconds on a
 * background thread and on SIGHUP and swaps a pointer (rule 15); a session
 * added with `haven session add` is seen at the next rebuild.
 *
 * Usernames are matched without regard to ASCII case ("JSmith" is "jsmith");
 * the CLI stores them in lower case. Group names are plain strings here: the
 * caller checks them against the policy.
 */
#ifndef HAVEN_IDENT_IDENT_H
#define HAVEN_IDENT_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

struct sockaddr;
struct store;
struct ident;
struct ident_cache;

/* Longest username, password, group and display name accepted (bytes, without the NUL). */
#define IDENT_USER_MAX 128
#define IDENT_PASS_MAX 256
#define IDENT_GROUP_MAX 64
#define IDENT_DISPLAY_MAX 256
/* Room for any canonical address text (INET6_ADDRSTRLEN). */
#define IDENT_IP_MAX 46

/*
 * Build a snapshot from the users and sessions in st (which must be migrated). Sessions
 * already expired at clock_now() are left out. Returns the snapshot (free with
 * ident_free) or NULL with the reason in err. Control plane: allocates with xmalloc.
 */
struct ident *ident_load(struct store *st, char *err, size_t errlen);

/*
 * Map networks to groups (step 3). Call before the snapshot is published: after that it
 * is read-only. cidr is "10.1.0.0/16", "2001:db8::/32" or a single address; the most
 * specific network containing an address wins. Returns 0, or -1 with the reason in err.
 */
int ident_add_network(struct ident *id, const char *cidr, const char *group, char *err,
                      size_t errlen);
/* The group for requests identified by nothing else (step 4); the snapshot copies it. */
void ident_set_default_group(struct ident *id, const char *group);

void ident_free(struct ident *id);

/* Counts, for logs and tests. Every lookup below accepts id == NULL (no users database yet)
 * and finds nothing. */
size_t ident_user_count(const struct ident *id);
size_t ident_session_count(const struct ident *id);

/*
 * Step 2: the user with an unexpired session (expires > now) for the client's address
 * (IPv4 or IPv6; an IPv4-mapped IPv6 address is its IPv4 address). Returns 0 and sets
 * *username and *group (pointers into the snapshot, valid while it is), or -1 if none.
 * Takes no lock, allocates nothing.
 */
int ident_session_user(const struct ident *id, const struct sockaddr *client, int64_t now,
                       const char **username, const char **group);

/*
 * The group and display name of username (display is NULL when the user has none; either
 * out-pointer may be NULL). Returns 0, or -1 if the snapshot has no such user.
 */
int ident_user_group(const struct ident *id, const char *username, const char **group,
                     const char **display);

/* Step 3: the group of the most specific network containing client: 0, or -1 if none. */
int ident_network_group(const struct ident *id, const struct sockaddr *client, const char **group);

enum ident_source {
    IDENT_NONE,    /* no default group was set and nothing matched: *group is NULL */
    IDENT_AUTH,    /* proxy authentication (set by the caller, not by ident_identify) */
    IDENT_SESSION, /* an IP session */
    IDENT_NETWORK, /* a network mapped to a group */
    IDENT_DEFAULT, /* the default group */
};

/* Who made a request, for the decision and the log. Pointers into the snapshot. */
struct ident_who {
    enum ident_source source;
    const char *username; /* NULL unless a person was identified */
    const char *display;  /* NULL if unknown */
    const char *group;
};

/* Steps 2 to 4 for a request from client at now. Never fails; see who->source. */
void ident_identify(const struct ident *id, const struct sockaddr *client, int64_t now,
                    struct ident_who *who);
/* "auth", "session", "network", "default", "none": for the log. */
const char *ident_source_name(enum ident_source s);

/*
 * Parse a Proxy-Authorization (or Authorization) header value "Basic BASE64" (RFC 7617)
 * into user and pass (NUL-terminated, at most usize-1 and psize-1 bytes). The scheme is
 * matched without case; the credentials must be "user:password" with a non-empty user,
 * no control characters, and fit the buffers. Returns 0, or -1 for anything malformed
 * (then user and pass are empty strings). Fast: fine on the event loop.
 */
int ident_parse_basic(struct slice header_value, char *user, size_t usize, char *pass,
                      size_t psize);

/*
 * Check pass against user's argon2id hash. Returns 0 if it matches, -1 if not (no such
 * user, no password set, wrong password).
 *
 * SLOW: argon2id takes tens of milliseconds and 64 MiB by design. The proxy must run it
 * off the event loop (uv_queue_work) and remember successes in an ident_cache so a
 * browser's every request does not pay it again. An unknown user costs the same time as
 * a known one, so timing does not reveal which usernames exist.
 */
int ident_check_password(const struct ident *id, const char *user, const char *pass);

/* Hash a password for storage (argon2id, libsodium's interactive limits) into out
 * (crypto_pwhash_STRBYTES bytes). Returns 0, or -1 (out of memory). SLOW, as above. */
#define IDENT_HASH_MAX 128
int ident_hash_password(const char *pass, char out[IDENT_HASH_MAX]);

/*
 * Is s a password hash haven accepts: an argon2id string ("$argon2id$v=19$m=...,t=...,
 * p=...$salt$hash") whose cost a proxy can afford (at most 256 MiB, 10 passes)? Returns 0,
 * or -1 with the reason in why (a static string).
 */
int ident_hash_check(const char *s, const char **why);

/*
 * Canonical text for an address: "192.0.2.1", "2001:db8::1"; an IPv4-mapped IPv6 address
 * ("::ffff:192.0.2.1") becomes its IPv4 text. Returns 0, or -1 if text is not an address.
 */
int ident_ip_canonical(const char *text, char out[IDENT_IP_MAX]);

/*
 * The verified-credentials cache: Authorization header value -> username, so that
 * argon2id runs once per user per TTL rather than once per request. Thread-safe (one
 * mutex; every operation is a few hash-table steps). Keys are a keyed BLAKE2b hash of
 * the header value under a random key made at creation, so the cache never holds a
 * password. At most max entries: when full, the oldest entry goes. An entry also
 * stops matching when the user's password hash changes or the user is deleted (checked
 * against the snapshot passed to ident_cache_get).
 */
struct ident_cache *ident_cache_create(size_t max, int64_t ttl);
void ident_cache_destroy(struct ident_cache *c);

/*
 * Remember that header_value was verified for user (in snapshot id) at now. Call only
 * after ident_check_password succeeded.
 */
void ident_cache_put(struct ident_cache *c, const struct ident *id, struct slice header_value,
                     const char *user, int64_t now);

/*
 * If header_value was verified less than ttl seconds before now, and the user still has
 * the same password hash in id: copy the username to user (usize bytes) and return 0.
 * Otherwise -1.
 */
int ident_cache_get(struct ident_cache *c, const struct ident *id, struct slice header_value,
                    int64_t now, char *user, size_t usize);

#endif
