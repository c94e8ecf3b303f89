/* Unit tests: the identity snapshot, Basic auth, passwords, the credentials cache, and the
 * users CSV (csv.c, roster.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "ident/csv.h"
#include "ident/ident.h"
#include "ident/roster.h"
#include "store/store.h"

#define T0 1796000000

static char db_path[64];
static char alice_hash[IDENT_HASH_MAX]; /* "correct horse" */

/* ---- fixtures ---- */

static void remove_db(void)
{
    char p[96];

    unlink(db_path);
    snprintf(p, sizeof(p), "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", db_path);
    unlink(p);
}

static struct store *open_store(void)
{
    char err[512];
    struct store *st = store_open(db_path, err, sizeof(err));

    if (!st || store_migrate(st, err, sizeof(err)) < 0)
        fail_msg("store: %s", err);
    return st;
}

static void add_user(struct store *st, const char *user, const char *group, const char *display,
                     const char *hash)
{
    struct store_user u = {user, group, display, hash, 0, 0};
    char err[512];

    if (store_user_put(st, &u, err, sizeof(err)) == STORE_PUT_ERROR)
        fail_msg("put: %s", err);
}

static void add_session(struct store *st, const char *ip, const char *user, int64_t expires)
{
    struct store_session s = {.username = user, .expires = expires};
    char canon[IDENT_IP_MAX], err[512];

    assert_int_equal(ident_ip_canonical(ip, canon), 0);
    s.ip = canon;
    if (store_session_put(st, &s, err, sizeof(err)) < 0)
        fail_msg("session: %s", err);
}

static struct ident *load(struct store *st)
{
    char err[512];
    struct ident *id = ident_load(st, err, sizeof(err));

    if (!id)
        fail_msg("ident_load: %s", err);
    return id;
}

static int group_setup(void **state)
{
    (void)state;
    /* Hashing is slow by design: once for the whole file (interactive limits). */
    assert_int_equal(ident_hash_password("correct horse", alice_hash), 0);
    return 0;
}

static int setup(void **state)
{
    struct store *st;
    int fd;

    (void)state;
    snprintf(db_path, sizeof(db_path), "/tmp/haven-test-ident-XXXXXX");
    fd = mkstemp(db_path);
    assert_true(fd >= 0);
    close(fd);
    unlink(db_path);
    clock_set_fake(T0);
    st = open_store();
    add_user(st, "alice", "staff", "Alice Example", alice_hash);
    add_user(st, "bob", "secondary", NULL, NULL);
    add_user(st, "carol", "primary", "Carol", NULL);
    add_session(st, "127.0.0.1", "bob", T0 + 3600);
    add_session(st, "::1", "carol", T0 + 60);
    add_session(st, "::ffff:127.0.0.2", "alice", T0 + 600); /* stored as 127.0.0.2 */
    add_session(st, "127.0.0.3", "alice", T0 - 1);          /* already expired */
    store_close(st);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_db();
    clock_clear_fake();
    return 0;
}

static struct sockaddr_storage v4(const char *text)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;

    memset(&ss, 0, sizeof(ss));
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *text)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

/* ---- snapshot lookups ---- */

static void test_snapshot_counts(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st);

    (void)state;
    assert_int_equal(ident_user_count(id), 3);
    assert_int_equal(ident_session_count(id), 3); /* the expired one is left out */
    ident_free(id);
    store_close(st);
}

static void test_sessions(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st);
    struct sockaddr_storage a;
    const char *user = NULL, *group = NULL;

    (void)state;
    a = v4("127.0.0.1");
    assert_int_equal(ident_session_user(id, SA(a), T0, &user, &group), 0);
    assert_string_equal(user, "bob");
    assert_string_equal(group, "secondary");

    /* IPv4-mapped IPv6 is the IPv4 address, both ways round. */
    a = v6("::ffff:127.0.0.1");
    assert_int_equal(ident_session_user(id, SA(a), T0, &user, &group), 0);
    assert_string_equal(user, "bob");
    a = v4("127.0.0.2");
    assert_int_equal(ident_session_user(id, SA(a), T0, &user, &group), 0);
    assert_string_equal(user, "alice");
    assert_string_equal(group, "staff");

    a = v6("::1");
    assert_int_equal(ident_session_user(id, SA(a), T0, &user, &group), 0);
    assert_string_equal(user, "carol");
    assert_string_equal(group, "primary");

    /* No session, or an expired one. */
    a = v4("127.0.0.9");
    assert_int_equal(ident_session_user(id, SA(a), T0, &user, &group), -1);
    a = v4("127.0.0.3");
    assert_int_equal(ident_session_user(id, SA(a), T0, &user, &group), -1);
    ident_free(id);
    store_close(st);
}

static void test_session_expiry(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st);
    struct sockaddr_storage a = v6("::1");
    const char *user, *group;

    (void)state;
    /* carol's session on ::1 ends at T0 + 60. */
    assert_int_equal(ident_session_user(id, SA(a), T0 + 59, &user, &group), 0);
    assert_int_equal(ident_session_user(id, SA(a), T0 + 60, &user, &group), -1);
    ident_free(id);

    /* A snapshot built after the expiry does not hold it at all. */
    clock_set_fake(T0 + 60);
    id = load(st);
    assert_int_equal(ident_session_count(id), 2);
    assert_int_equal(ident_session_user(id, SA(a), T0, &user, &group), -1);
    ident_free(id);
    store_close(st);
}

static void test_user_group(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st);
    const char *group = NULL, *display = "x";

    (void)state;
    assert_int_equal(ident_user_group(id, "alice", &group, &display), 0);
    assert_string_equal(group, "staff");
    assert_string_equal(display, "Alice Example");
    assert_int_equal(ident_user_group(id, "Alice", &group, NULL), 0);
    assert_int_equal(ident_user_group(id, "bob", &group, &display), 0);
    assert_null(display);
    assert_int_equal(ident_user_group(id, "nobody", &group, &display), -1);
    assert_int_equal(ident_user_group(id, "", &group, &display), -1);
    ident_free(id);
    store_close(st);
}

static void test_networks_and_identify(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st);
    struct sockaddr_storage a;
    struct ident_who who;
    const char *group;
    char err[256];

    (void)state;
    /* Before any network or default, nothing identifies 127.0.0.9. */
    a = v4("127.0.0.9");
    ident_identify(id, SA(a), T0, &who);
    assert_int_equal(who.source, IDENT_NONE);
    assert_null(who.group);

    assert_int_equal(ident_add_network(id, "127.0.0.0/8", "guests", err, sizeof(err)), 0);
    assert_int_equal(ident_add_network(id, "127.0.1.0/24", "staff", err, sizeof(err)), 0);
    assert_int_equal(ident_add_network(id, "::1", "sixth-form", err, sizeof(err)), 0);
    ident_set_default_group(id, "secondary");

    /* The most specific network wins, whatever order they came in. */
    a = v4("127.0.1.7");
    assert_int_equal(ident_network_group(id, SA(a), &group), 0);
    assert_string_equal(group, "staff");
    a = v6("::ffff:127.0.1.7");
    assert_int_equal(ident_network_group(id, SA(a), &group), 0);
    assert_string_equal(group, "staff");
    a = v4("127.9.0.1");
    assert_int_equal(ident_network_group(id, SA(a), &group), 0);
    assert_string_equal(group, "guests");

    /* Order: session, then network, then default. */
    a = v4("127.0.0.1");
    ident_identify(id, SA(a), T0, &who);
    assert_int_equal(who.source, IDENT_SESSION);
    assert_string_equal(who.username, "bob");
    assert_string_equal(who.group, "secondary");
    a = v4("127.0.0.2");
    ident_identify(id, SA(a), T0, &who);
    assert_string_equal(who.display, "Alice Example");
    a = v6("::1");
    ident_identify(id, SA(a), T0 + 60, &who); /* carol's session has ended */
    assert_int_equal(who.source, IDENT_NETWORK);
    assert_null(who.username);
    assert_string_equal(who.group, "sixth-form");
    a = v6("::2");
    ident_identify(id, SA(a), T0, &who);
    assert_int_equal(who.source, IDENT_DEFAULT);
    assert_string_equal(who.group, "secondary");
    assert_string_equal(ident_source_name(who.source), "default");
    ident_free(id);
    store_close(st);
}

static void test_bad_networks(void **state)
{
    static const char *const bad[] = {
        "127.0.0.1/8",
        "127.0.0.0/33",
        "127.0.0.0/",
        "127.0.0.0/x",
        "127.0.0.0/-1",
        "localhost/8",
        "",
        "/8",
        "::1/129",
        "::1/64",
        "127.0.0.0/0008",
    };
    struct store *st = open_store();
    struct ident *id = load(st);
    char err[256];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (ident_add_network(id, bad[i], "guests", err, sizeof(err)) != -1)
            fail_msg("network '%s' accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(ident_add_network(id, "127.0.0.0/8", "", err, sizeof(err)), -1);
    assert_int_equal(ident_add_network(id, "0.0.0.0/0", "guests", err, sizeof(err)), 0);
    assert_int_equal(ident_add_network(id, "::/0", "guests", err, sizeof(err)), 0);
    ident_free(id);
    store_close(st);
}

static void test_ip_canonical(void **state)
{
    char out[IDENT_IP_MAX];

    (void)state;
    assert_int_equal(ident_ip_canonical("127.0.0.1", out), 0);
    assert_string_equal(out, "127.0.0.1");
    assert_int_equal(ident_ip_canonical("::ffff:127.0.0.1", out), 0);
    assert_string_equal(out, "127.0.0.1");
    assert_int_equal(ident_ip_canonical("0:0:0:0:0:0:0:1", out), 0);
    assert_string_equal(out, "::1");
    assert_int_equal(ident_ip_canonical("127.0.0.256", out), -1);
    assert_int_equal(ident_ip_canonical("localhost", out), -1);
    assert_int_equal(ident_ip_canonical("", out), -1);
    assert_int_equal(ident_ip_canonical("::1%lo", out), -1);
}

/* ---- Basic auth ---- */

static int basic(const char *header, char *user, char *pass)
{
    return ident_parse_basic(slice_cstr(header), user, IDENT_USER_MAX + 1, pass,
                             IDENT_PASS_MAX + 1);
}

static void test_parse_basic_good(void **state)
{
    char user[IDENT_USER_MAX + 1], pass[IDENT_PASS_MAX + 1];

    (void)state;
    assert_int_equal(basic("Basic dXNlcjpwYXNz", user, pass), 0); /* user:pass */
    assert_string_equal(user, "user");
    assert_string_equal(pass, "pass");
    assert_int_equal(basic("  basic   dXNlcjpwYXNz  ", user, pass), 0);
    assert_string_equal(user, "user");
    assert_int_equal(basic("BASIC\tdXNlcjpwYXNz", user, pass), 0);
    /* Only the first colon splits: the password may hold more. */
    assert_int_equal(basic("Basic YWxpY2U6YTpiOmM=", user, pass), 0); /* alice:a:b:c */
    assert_string_equal(user, "alice");
    assert_string_equal(pass, "a:b:c");
    /* An empty password parses (it will not verify). */
    assert_int_equal(basic("Basic Ym9iOg==", user, pass), 0); /* bob: */
    assert_string_equal(user, "bob");
    assert_string_equal(pass, "");
    /* Padding left out. */
    assert_int_equal(basic("Basic Ym9iOg", user, pass), 0);
    assert_string_equal(user, "bob");
    /* UTF-8 in the password. */
    assert_int_equal(basic("Basic Ym9iOnDDpHNz", user, pass), 0); /* bob:päss */
    assert_string_equal(pass, "p\xc3\xa4ss");
}

static void test_parse_basic_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "Basic",
        "Basic ",
        "Basicdxnlcjpwyxnz",
        "Bearer dXNlcjpwYXNz",
        "Digest username=\"user\"",
        "Basic dXNlcjpwYXNz!",    /* not base64 */
        "Basic dXNlcjpwYXNz x",   /* trailing text */
        "Basic dXNlcg==",         /* "user": no colon */
        "Basic OnBhc3M=",         /* ":pass": no user */
        "Basic dXNlcgo6cGFzcw==", /* "user\n:pass" */
        "Basic dXNlcjpwYQBzcw==", /* NUL in the password */
        "Basic dXNlcjpwYXNzDQo=", /* CRLF at the end */
        "Basic d XNlcjpwYXNz",    /* space inside */
        "Basic ====",
    };
    char user[IDENT_USER_MAX + 1], pass[IDENT_PASS_MAX + 1];
    char longer[2048];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(bad); i++) {
        if (basic(bad[i], user, pass) != -1)
            fail_msg("accepted '%s'", bad[i]);
        assert_string_equal(user, "");
        assert_string_equal(pass, "");
    }
    /* Too long for the buffers given. */
    assert_int_equal(ident_parse_basic(slice_cstr("Basic dXNlcjpwYXNz"), user, 4, pass, 64), -1);
    assert_int_equal(ident_parse_basic(slice_cstr("Basic dXNlcjpwYXNz"), user, 5, pass, 4), -1);
    assert_int_equal(ident_parse_basic(slice_cstr("Basic dXNlcjpwYXNz"), user, 5, pass, 5), 0);
    /* A header far past the caps. */
    memcpy(longer, "Basic ", 6);
    memset(longer + 6, 'Q', sizeof(longer) - 7);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(basic(longer, user, pass), -1);
    /* The value is a slice: nothing after its length is read. */
    assert_int_equal(ident_parse_basic(slice_make("Basic dXNlcjpwYXNzJUNK", 18), user, sizeof(user),
                                       pass, sizeof(pass)),
                     0);
    assert_string_equal(pass, "pass");
}

/* ---- passwords ---- */

static void test_check_password(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st);

    (void)state;
    assert_int_equal(ident_check_password(id, "alice", "correct horse"), 0);
    assert_int_equal(ident_check_password(id, "ALICE", "correct horse"), 0);
    assert_int_equal(ident_check_password(id, "alice", "Correct horse"), -1);
    assert_int_equal(ident_check_password(id, "alice", ""), -1);
    assert_int_equal(ident_check_password(id, "bob", "anything"), -1);    /* no password */
    assert_int_equal(ident_check_password(id, "nobody", "anything"), -1); /* no user */
    ident_free(id);
    store_close(st);
}

static void test_hash_check(void **state)
{
    const char *why = NULL;
    char bad[256];

    (void)state;
    assert_int_equal(ident_hash_check(alice_hash, &why), 0);
    assert_int_equal(strncmp(alice_hash, "$argon2id$v=19$", 15), 0);
    assert_int_equal(ident_hash_check("secret", &why), -1);
    assert_non_null(strstr(why, "argon2id"));
    assert_int_equal(ident_hash_check("$argon2i$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaA", &why),
                     -1);
    assert_int_equal(ident_hash_check("$2y$10$abcdefghijklmnopqrstuv", &why), -1);
    assert_int_equal(ident_hash_check("$argon2id$v=16$m=65536,t=2,p=1$c2FsdA$aGFzaA", &why), -1);
    assert_int_equal(ident_hash_check("$argon2id$v=19$m=65536,t=2$c2FsdA$aGFzaA", &why), -1);
    assert_int_equal(ident_hash_check("$argon2id$v=19$m=65536,t=2,p=1$", &why), -1);
    /* Too costly for a proxy to check. */
    assert_int_equal(
        ident_hash_check("$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", &why),
        -1);
    assert_non_null(strstr(why, "costs too much"));
    /* A well-formed header with a damaged body. */
    snprintf(bad, sizeof(bad), "%s", alice_hash);
    bad[strlen(bad) - 3] = '!';
    assert_int_equal(ident_hash_check(bad, &why), -1);
}

/* ---- the credentials cache ---- */

static void test_cache(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st);
    struct ident_cache *c = ident_cache_create(2, 300);
    struct slice h1 = slice_cstr("Basic YWxpY2U6Y29ycmVjdCBob3JzZQ=="); /* alice:correct horse */
    struct slice h2 = slice_cstr("Basic YWxpY2U6b3RoZXI=");
    char user[IDENT_USER_MAX + 1];

    (void)state;
    assert_non_null(c);
    assert_int_equal(ident_cache_get(c, id, h1, T0, user, sizeof(user)), -1);
    ident_cache_put(c, id, h1, "alice", T0);
    assert_int_equal(ident_cache_get(c, id, h1, T0 + 10, user, sizeof(user)), 0);
    assert_string_equal(user, "alice");
    /* Another header value is another key. */
    assert_int_equal(ident_cache_get(c, id, h2, T0 + 10, user, sizeof(user)), -1);
    /* Too small a buffer for the name: a miss, not a truncated name. */
    assert_int_equal(ident_cache_get(c, id, h1, T0 + 10, user, 3), -1);
    /* The TTL runs out. */
    assert_int_equal(ident_cache_get(c, id, h1, T0 + 299, user, sizeof(user)), 0);
    assert_int_equal(ident_cache_get(c, id, h1, T0 + 300, user, sizeof(user)), -1);
    /* Users without a password, or unknown, are never cached. */
    ident_cache_put(c, id, h2, "bob", T0);
    assert_int_equal(ident_cache_get(c, id, h2, T0, user, sizeof(user)), -1);
    ident_cache_put(c, id, h2, "nobody", T0);
    assert_int_equal(ident_cache_get(c, id, h2, T0, user, sizeof(user)), -1);
    ident_cache_destroy(c);
    ident_free(id);
    store_close(st);
}

static void test_cache_cap(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st);
    struct ident_cache *c = ident_cache_create(2, 300);
    char user[IDENT_USER_MAX + 1];

    (void)state;
    ident_cache_put(c, id, slice_cstr("Basic one"), "alice", T0);
    ident_cache_put(c, id, slice_cstr("Basic two"), "alice", T0 + 1);
    assert_int_equal(ident_cache_get(c, id, slice_cstr("Basic one"), T0 + 2, user, 64), 0);
    /* A third entry pushes out the oldest. */
    ident_cache_put(c, id, slice_cstr("Basic three"), "alice", T0 + 2);
    assert_int_equal(ident_cache_get(c, id, slice_cstr("Basic one"), T0 + 3, user, 64), -1);
    assert_int_equal(ident_cache_get(c, id, slice_cstr("Basic two"), T0 + 3, user, 64), 0);
    assert_int_equal(ident_cache_get(c, id, slice_cstr("Basic three"), T0 + 3, user, 64), 0);
    /* Putting the same key again refreshes it rather than taking a second entry. */
    for (int i = 0; i < 10; i++)
        ident_cache_put(c, id, slice_cstr("Basic three"), "alice", T0 + 4);
    assert_int_equal(ident_cache_get(c, id, slice_cstr("Basic two"), T0 + 5, user, 64), 0);
    ident_cache_destroy(c);
    ident_free(id);
    store_close(st);
}

static void test_cache_password_change(void **state)
{
    struct store *st = open_store();
    struct ident *id = load(st), *id2;
    struct ident_cache *c = ident_cache_create(16, 300);
    struct slice h = slice_cstr("Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==");
    char user[IDENT_USER_MAX + 1], err[256], other[IDENT_HASH_MAX];

    (void)state;
    ident_cache_put(c, id, h, "alice", T0);
    /* A reload with nothing changed keeps the entry good. */
    id2 = load(st);
    assert_int_equal(ident_cache_get(c, id2, h, T0 + 1, user, sizeof(user)), 0);
    ident_free(id2);
    /* A new password: the old credentials stop working at the next snapshot. */
    assert_int_equal(ident_hash_password("new password", other), 0);
    assert_int_equal(store_set_password(st, "alice", other, err, sizeof(err)), 1);
    id2 = load(st);
    assert_int_equal(ident_cache_get(c, id, h, T0 + 1, user, sizeof(user)), 0);
    assert_int_equal(ident_cache_get(c, id2, h, T0 + 1, user, sizeof(user)), -1);
    ident_free(id2);
    /* A deleted user likewise. */
    ident_cache_put(c, id, h, "alice", T0);
    assert_int_equal(store_user_delete(st, "alice", err, sizeof(err)), 1);
    id2 = load(st);
    assert_int_equal(ident_cache_get(c, id2, h, T0 + 1, user, sizeof(user)), -1);
    ident_free(id2);
    ident_cache_destroy(c);
    ident_free(id);
    store_close(st);
}

/* ---- CSV ---- */

/* Read every record of text; "a|b|c;" per record, "!LINE:reason;" per error. */
static void csv_dump(const char *text, size_t len, char *out, size_t size)
{
    struct csv r;
    struct csv_record *rec = malloc(sizeof(*rec));
    char why[256];
    size_t o = 0;
    int got;

    assert_non_null(rec);
    out[0] = '\0';
    csv_init(&r, text, len);
    for (;;) {
        got = csv_next(&r, rec, why, sizeof(why));
        if (got == 0)
            break;
        if (got < 0) {
            o += (size_t)snprintf(out + o, size - o, "!%lu;", rec->line);
            continue;
        }
        o += (size_t)snprintf(out + o, size - o, "%lu:", rec->line);
        for (size_t i = 0; i < rec->nfields; i++)
            o += (size_t)snprintf(out + o, size - o, "%s%.*s", i ? "|" : "", (int)rec->field[i].len,
                                  rec->field[i].p);
        o += (size_t)snprintf(out + o, size - o, ";");
    }
    csv_cleanup(&r);
    free(rec);
}

static void csv_expect(const char *text, const char *expect)
{
    char out[1024];

    csv_dump(text, strlen(text), out, sizeof(out));
    if (strcmp(out, expect) != 0)
        fail_msg("csv %s: got %s, want %s", text, out, expect);
}

static void test_csv(void **state)
{
    (void)state;
    csv_expect("a,b,c\n1,2,3\n", "1:a|b|c;2:1|2|3;");
    csv_expect("a,b\r\n1,2\r\n", "1:a|b;2:1|2;");
    csv_expect("a,b\n1,2", "1:a|b;2:1|2;"); /* no final line break */
    csv_expect("\xef\xbb\xbf"
               "a,b\n",
               "1:a|b;"); /* byte-order mark */
    csv_expect("a,,\n", "1:a||;");
    csv_expect("\n", "1:;");
    csv_expect("", "");
    csv_expect("\"x,y\",\"say \"\"hi\"\"\"\n", "1:x,y|say \"hi\";");
    csv_expect("\"two\nlines\",b\nc,d\n", "1:two\nlines|b;3:c|d;");
    csv_expect("\"crlf\r\ninside\",b\r\n", "1:crlf\r\ninside|b;");
    csv_expect("\"\"\n", "1:;");
    /* Malformed records are reported on their line, and reading goes on. */
    csv_expect("a\"b,c\nok\n", "!1;2:ok;");
    csv_expect("\"a\"b,c\nok\n", "!1;2:ok;");
    csv_expect("a\rb\nok\n", "!1;2:ok;");
    csv_expect("ok\n\"never closed\nmore\n", "1:ok;!2;");
}

static char csv_big[CSV_MAX_RECORD + 64];

static void test_csv_caps(void **state)
{
    size_t big = CSV_MAX_RECORD + 10;
    char out[256];

    (void)state;
    memset(csv_big, 'x', big);
    memcpy(csv_big + big, "\nok\n", 5);
    csv_dump(csv_big, strlen(csv_big), out, sizeof(out));
    assert_string_equal(out, "!1;2:ok;");
    /* Too many fields. */
    memset(csv_big, ',', 300);
    memcpy(csv_big + 300, "\nok\n", 5);
    csv_dump(csv_big, strlen(csv_big), out, sizeof(out));
    assert_string_equal(out, "!1;2:ok;");
}

/* ---- the users CSV ---- */

struct rows {
    char got[2048];
    char reports[2048];
    size_t g, r;
};

static int rows_row(void *arg, const struct roster_row *row)
{
    struct rows *x = arg;

    x->g += (size_t)snprintf(x->got + x->g, sizeof(x->got) - x->g, "%lu:%s=%s/%s/%s;", row->line,
                             row->username, row->group, row->display_name ? row->display_name : "-",
                             row->password_hash ? "hash" : "-");
    return 0;
}

static void rows_report(void *arg, unsigned long line, int rejected, const char *msg)
{
    struct rows *x = arg;

    x->r += (size_t)snprintf(x->reports + x->r, sizeof(x->reports) - x->r, "%s%lu:%s\n",
                             rejected ? "" : "note ", line, msg);
}

static int roster(const char *text, const struct roster_year_map *ym, struct rows *x,
                  struct roster_stats *stats, char *err)
{
    memset(x, 0, sizeof(*x));
    return roster_read("users.csv", text, strlen(text), ym, rows_row, rows_report, x, stats, err,
                       256);
}

static void test_roster_good(void **state)
{
    struct rows x;
    struct roster_stats s;
    char err[256], text[1024];

    (void)state;
    snprintf(text, sizeof(text),
             "Username,Display Name,Group,UPN,Password_Hash\r\n"
             "JSmith,\"Smith, John\",staff,js@school.example,\"%s\"\r\n"
             "  pupil1 ,Pupil One,secondary,,\r\n"
             "\r\n"
             ",,,,\r\n"
             "pupil2,,primary,,\r\n",
             alice_hash);
    assert_int_equal(roster(text, NULL, &x, &s, err), 0);
    assert_string_equal(x.got, "2:jsmith=staff/Smith, John/hash;3:pupil1=secondary/Pupil One/-;"
                               "6:pupil2=primary/-/-;");
    assert_string_equal(x.reports, "note 1:column 'upn' is not one haven reads: ignored\n");
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.accepted, 3);
    assert_int_equal(s.rejected, 0);

    /* A hash left unquoted splits at its commas; the message says so. */
    snprintf(text, sizeof(text), "username,group,password_hash\nbob,staff,%s\n", alice_hash);
    assert_int_equal(roster(text, NULL, &x, &s, err), 0);
    assert_int_equal(s.rejected, 1);
    assert_non_null(strstr(x.reports, "2:the row has 5 fields; the header has 3 (an argon2id"));
}

static void test_roster_years(void **state)
{
    static const char text[] = "username,year,group\n"
                               "a,Year 7,\n"
                               "b,R,\n"
                               "c,Y12,\n"
                               "d,3,\n"
                               "e,13,staff\n"
                               "f,Year 15,\n"
                               "g,,\n"
                               "h,Reception,\n";
    struct roster_year_map *ym;
    struct rows x;
    struct roster_stats s;
    char err[256];
    static const char map[] = "# our years\n"
                              "R-6 = juniors\n";
    static const char map2[] = "# our years\n"
                               "r = juniors\n"
                               "1 - 6 = juniors\n"
                               "7-13 = seniors   # everyone else\n";

    (void)state;
    assert_int_equal(roster(text, NULL, &x, &s, err), 0);
    assert_string_equal(x.got, "2:a=secondary/-/-;3:b=primary/-/-;4:c=sixth-form/-/-;"
                               "5:d=primary/-/-;6:e=staff/-/-;9:h=primary/-/-;");
    assert_string_equal(x.reports, "7:user 'f': year 'Year 15' is not in the year map\n"
                                   "8:user 'g' has no group or year\n");
    assert_int_equal(s.rejected, 2);

    /* A year-map file replaces the default. */
    assert_null(roster_year_map_parse("years.map", map, strlen(map), err, sizeof(err)));
    assert_non_null(strstr(err, "years.map:2:"));
    ym = roster_year_map_parse("years.map", map2, strlen(map2), err, sizeof(err));
    if (!ym)
        fail_msg("%s", err);
    assert_string_equal(roster_year_group(ym, "Year 9"), "seniors");
    assert_string_equal(roster_year_group(ym, "YR"), "juniors");
    assert_null(roster_year_group(ym, "N"));
    assert_int_equal(roster(text, ym, &x, &s, err), 0);
    assert_string_equal(x.got, "2:a=seniors/-/-;3:b=juniors/-/-;4:c=seniors/-/-;"
                               "5:d=juniors/-/-;6:e=staff/-/-;9:h=juniors/-/-;");
    roster_year_map_free(ym);
}

static void test_year_map_errors(void **state)
{
    static const char *const bad[] = {
        "7 secondary\n",    "7 = \n",          "7 = two words\n",
        "15 = seniors\n",   "9-7 = seniors\n", "7 = a\n7 = b\n",
        "1-6 = a\n6 = b\n", "# nothing\n",     "Z = x\n",
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (roster_year_map_parse("m", bad[i], strlen(bad[i]), err, sizeof(err)))
            fail_msg("year map '%s' accepted", bad[i]);
        assert_int_equal(strncmp(err, "m:", 2), 0);
    }
}

static void test_roster_rejects(void **state)
{
    static const char text[] = "username,group,display_name,password_hash\n"
                               "ok1,staff,,\n"
                               "has space,staff,,\n"
                               "col:on,staff,,\n"
                               "ok1,staff,,\n"
                               "ok2,bad group!,,\n"
                               "ok3,staff,,plaintext\n"
                               "ok4,staff\n"
                               "ok5,staff,\"Tab\there\",\n"
                               "ok6,staff,\xff\xfe,\n"
                               "\"ok7\"x,staff,,\n"
                               ",staff,,\n"
                               "OK8,staff,,\n";
    struct rows x;
    struct roster_stats s;
    char err[256];

    (void)state;
    assert_int_equal(roster(text, NULL, &x, &s, err), 0);
    assert_string_equal(x.got, "2:ok1=staff/-/-;13:ok8=staff/-/-;");
    assert_int_equal(s.rows, 12);
    assert_int_equal(s.accepted, 2);
    assert_int_equal(s.rejected, 10);
    /* Every rejected row is reported with its line and the reason. */
    assert_non_null(strstr(x.reports, "3:the username has a space"));
    assert_non_null(strstr(x.reports, "4:the username has a ':'"));
    assert_non_null(strstr(x.reports, "5:user 'ok1' is already on line 2"));
    assert_non_null(strstr(x.reports, "6:user 'ok2': a group name may only use"));
    assert_non_null(strstr(x.reports, "7:user 'ok3': password_hash must be an argon2id hash"));
    assert_non_null(strstr(x.reports, "8:the row has 2 fields; the header has 4"));
    assert_non_null(strstr(x.reports, "9:user 'ok5': the display name has a control character"));
    assert_non_null(strstr(x.reports, "10:user 'ok6': the display name is not UTF-8"));
    assert_non_null(strstr(x.reports, "11:text after the closing quote"));
    assert_non_null(strstr(x.reports, "12:the username is empty"));
}

static void test_roster_bad_header(void **state)
{
    static const char *const bad[] = {
        "",
        "\n\n",
        "group,display_name\nstaff,x\n",
        "username,display_name\nx,y\n",
        "username,group,Group\nx,y,z\n",
        "username,\"group\nx,y\n",
    };
    struct rows x;
    struct roster_stats s;
    char err[256];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (roster(bad[i], NULL, &x, &s, err) != -1)
            fail_msg("header of '%s' accepted", bad[i]);
        assert_int_equal(strncmp(err, "users.csv:", 10), 0);
    }
}

static int stop_row(void *arg, const struct roster_row *row)
{
    (void)arg;
    (void)row;
    return 5;
}

static void test_roster_stop(void **state)
{
    struct roster_stats s;
    struct rows x;
    char err[256];
    static const char text[] = "username,group\na,staff\nb,staff\n";

    (void)state;
    memset(&x, 0, sizeof(x));
    assert_int_equal(roster_read("u.csv", text, strlen(text), NULL, stop_row, rows_report, &x, &s,
                                 err, sizeof(err)),
                     5);
    assert_int_equal(s.accepted, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_networks_and_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_networks, setup, teardown),
        cmocka_unit_test(test_ip_canonical),
        cmocka_unit_test(test_parse_basic_good),
        cmocka_unit_test(test_parse_basic_bad),
        cmocka_unit_test_setup_teardown(test_check_password, setup, teardown),
        cmocka_unit_test(test_hash_check),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_password_change, setup, teardown),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_csv_caps),
        cmocka_unit_test(test_roster_good),
        cmocka_unit_test(test_roster_years),
        cmocka_unit_test(test_year_map_errors),
        cmocka_unit_test(test_roster_rejects),
        cmocka_unit_test(test_roster_bad_header),
        cmocka_unit_test(test_roster_stop),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
