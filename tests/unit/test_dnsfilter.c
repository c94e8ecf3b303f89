/* Unit tests: the DNS filter's decision (dns_filter_decide) and its own answers
 * (dns_filter_answer), over a small policy and category database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "catdb/build.h"
#include "catdb/catdb.h"
#include "catdb/import.h"
#include "dns/filter.h"
#include "dns/wire.h"
#include "policy/policy.h"

/* A small database: each line "list category entry". */
static struct catdb *test_db(void)
{
    static const char *const rows[][3] = {
        {"ut1/adult", "pornography", "porn.example"},
        {"ut1/games", "games", "game.example"},
        {"iwf", "iwf", "abuse.example"},
    };
    struct catdb_builder *b = catdb_builder_create();
    struct import_ctx c = {.b = b};
    char err[256];
    size_t len;

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(rows); i++) {
        const char *why;
        int l = catdb_builder_add_list(b, rows[i][0], rows[i][1]);
        assert_int_equal(import_line(&c, l, rows[i][2], strlen(rows[i][2]), &why), IMPORT_ADDED);
    }
    void *img = catdb_builder_image(b, "", &len, err, sizeof(err));
    catdb_builder_destroy(b);
    return catdb_open_buffer(img, len, 1, err, sizeof(err));
}

/*
 * pupils: block page, YouTube strict, an allow entry for a site in the locked tier (which must
 * not open it). infants (the default): NXDOMAIN, YouTube moderate. staff: no safe search,
 * encrypted DNS allowed.
 */
static const char test_policy[] = "school \"Test School\"\n"
                                  "group pupils {\n"
                                  "    allow site abuse.example \"Mistaken entry\"\n"
                                  "    block pornography\n"
                                  "    warn games\n"
                                  "    default allow\n"
                                  "    safe-search on\n"
                                  "    youtube strict\n"
                                  "    dns-block page\n"
                                  "}\n"
                                  "group infants {\n"
                                  "    block pornography\n"
                                  "    block games\n"
                                  "    default allow\n"
                                  "    youtube moderate\n"
                                  "}\n"
                                  "group staff {\n"
                                  "    block pornography\n"
                                  "    allow games\n"
                                  "    default allow\n"
                                  "    safe-search off\n"
                                  "    youtube off\n"
                                  "    encrypted-dns allow\n"
                                  "}\n"
                                  "default-group infants\n";

static struct policy *pol;
static int pupils, infants, staff;
static const int64_t monday_10 = 1796032800; /* Monday 2026-11-30 10:00 in London */

static int setup(void **state)
{
    char err[512];

    (void)state;
    pol = policy_load_buffer("test.conf", test_policy, strlen(test_policy), test_db(), err,
                             sizeof(err));
    if (!pol)
        fail_msg("policy: %s", err);
    pupils = policy_group_find(pol, "pupils");
    infants = policy_group_find(pol, "infants");
    staff = policy_group_find(pol, "staff");
    assert_true(pupils >= 0 && infants >= 0 && staff >= 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    policy_free(pol);
    return 0;
}

/* A query as a client would send it (name in presentation form, any case). */
static void make_query(const char *name, uint16_t qtype, int edns, struct dns_query *q)
{
    uint8_t pkt[512];
    const char *why = NULL;
    size_t n;

    n = dns_build_query(0x5151, name, qtype, 1, edns ? 1232 : 0, pkt, sizeof(pkt));
    if (n == 0)
        fail_msg("cannot build a query for '%s'", name);
    if (dns_parse_query(pkt, n, q, &why) != DNS_OK)
        fail_msg("query for '%s' does not parse: %s", name, why);
}

static struct dns_decision decide(const char *name, uint16_t qtype, int group)
{
    static struct dns_query q;
    struct dns_decision d;

    make_query(name, qtype, 0, &q);
    dns_filter_decide(pol, &q, group, monday_10, &d);
    return d;
}

static void expect_how(const char *name, uint16_t qtype, int group, enum dns_how how)
{
    struct dns_decision d = decide(name, qtype, group);

    if (d.how != how)
        fail_msg("%s type %u group %s: expected how %d, got %d", name, qtype,
                 policy_group_name(pol, group), how, d.how);
}

/* A block, answered with the page's address exactly for the groups with `dns-block page`. */
static void expect_block(const char *name, uint16_t qtype, int group, enum policy_tier tier)
{
    struct dns_decision d = decide(name, qtype, group);

    if (d.how != DNS_HOW_BLOCK)
        fail_msg("%s group %s: expected a block, got how %d", name, policy_group_name(pol, group),
                 d.how);
    assert_true(d.decided);
    assert_int_equal(d.v.action, POLICY_BLOCK);
    assert_int_equal(d.v.tier, tier);
    assert_int_equal(d.page, group == pupils);
}

static void expect_safe_name(const char *name, uint16_t qtype, int group, const char *target)
{
    struct dns_decision d = decide(name, qtype, group);

    if (d.how != DNS_HOW_SAFE_NAME)
        fail_msg("%s group %s: expected safe search, got how %d", name,
                 policy_group_name(pol, group), d.how);
    assert_non_null(d.target);
    assert_string_equal(d.target, target);
}

static void test_canaries(void **state)
{
    static const char *const canaries[] = {"use-application-dns.net", "mask.icloud.com",
                                           "mask-h2.icloud.com", "Use-Application-DNS.net"};
    int groups[3] = {pupils, infants, staff};

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(canaries); i++) {
        for (int g = 0; g < 3; g++) {
            expect_how(canaries[i], DNS_TYPE_A, groups[g], DNS_HOW_CANARY);
            expect_how(canaries[i], DNS_TYPE_AAAA, groups[g], DNS_HOW_CANARY);
            expect_how(canaries[i], DNS_TYPE_ANY, groups[g], DNS_HOW_CANARY);
        }
    }
    /* exact names only */
    expect_how("x.use-application-dns.net", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);
    expect_how("icloud.com", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);
    expect_how("other.mask.icloud.com", DNS_TYPE_A, staff, DNS_HOW_FORWARD);
    expect_how("application-dns.net", DNS_TYPE_A, staff, DNS_HOW_FORWARD);
}

static void test_blocks(void **state)
{
    struct dns_decision d;

    (void)state;
    /* the blocked category, the name and every name below it, per group */
    expect_block("porn.example", DNS_TYPE_A, pupils, POLICY_TIER_CATEGORY);
    expect_block("porn.example", DNS_TYPE_A, infants, POLICY_TIER_CATEGORY);
    expect_block("porn.example", DNS_TYPE_A, staff, POLICY_TIER_CATEGORY);
    expect_block("WWW.Porn.Example", DNS_TYPE_AAAA, pupils, POLICY_TIER_CATEGORY);
    expect_block("a.b.cdn.porn.example", DNS_TYPE_HTTPS, infants, POLICY_TIER_CATEGORY);
    expect_block("porn.example.", DNS_TYPE_MX, staff, POLICY_TIER_CATEGORY);
    expect_how("notporn.example", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);
    expect_how("porn.example.org", DNS_TYPE_A, infants, DNS_HOW_FORWARD);

    /* the locked tier wins over pupils' own allow entry for the same site */
    expect_block("abuse.example", DNS_TYPE_A, pupils, POLICY_TIER_LOCKED);
    expect_block("img.abuse.example", DNS_TYPE_A, pupils, POLICY_TIER_LOCKED);
    expect_block("abuse.example", DNS_TYPE_A, staff, POLICY_TIER_LOCKED);

    /* the verdict is for the group asked about; an unknown group is the default group's */
    d = decide("porn.example", DNS_TYPE_A, 99);
    assert_int_equal(d.how, DNS_HOW_BLOCK);
    assert_int_equal(d.v.group, infants);
    assert_int_equal(d.page, 0);

    /* warn cannot be shown over DNS: answered normally, the verdict says warn */
    d = decide("game.example", DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    assert_true(d.decided);
    assert_int_equal(d.v.action, POLICY_WARN);
    assert_string_equal(policy_category_name(pol, d.v.category), "games");
    expect_block("game.example", DNS_TYPE_A, infants, POLICY_TIER_CATEGORY);
    d = decide("www.game.example", DNS_TYPE_AAAA, staff);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    assert_int_equal(d.v.action, POLICY_ALLOW);

    /* an ordinary name: forwarded, with the policy's verdict filled */
    d = decide("www.example.org", DNS_TYPE_A, infants);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    assert_true(d.decided);
    assert_int_equal(d.v.action, POLICY_ALLOW);
    assert_int_equal(d.v.tier, POLICY_TIER_DEFAULT);
}

static void test_any(void **state)
{
    (void)state;
    expect_how("www.example.org", DNS_TYPE_ANY, pupils, DNS_HOW_ANY);
    expect_how("www.example.org", DNS_TYPE_ANY, staff, DNS_HOW_ANY);
    /* a blocked name is blocked, whatever the type */
    expect_block("porn.example", DNS_TYPE_ANY, pupils, POLICY_TIER_CATEGORY);
    expect_block("porn.example", DNS_TYPE_ANY, infants, POLICY_TIER_CATEGORY);
    /* safe-search names asked with ANY get the minimal answer, not a CNAME */
    expect_how("www.google.com", DNS_TYPE_ANY, pupils, DNS_HOW_ANY);
}

static void test_safe_search(void **state)
{
    struct dns_decision d;

    (void)state;
    expect_safe_name("www.google.com", DNS_TYPE_A, pupils, "forcesafesearch.google.com");
    expect_safe_name("google.co.uk", DNS_TYPE_AAAA, pupils, "forcesafesearch.google.com");
    expect_safe_name("www.google.de", DNS_TYPE_A, infants, "forcesafesearch.google.com");
    expect_safe_name("WWW.Google.COM", DNS_TYPE_HTTPS, infants, "forcesafesearch.google.com");
    expect_how("maps.google.com", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);
    expect_how("mail.google.co.uk", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);

    /* YouTube at each group's level; only the names YouTube documents */
    expect_safe_name("www.youtube.com", DNS_TYPE_A, pupils, "restrict.youtube.com");
    expect_safe_name("m.youtube.com", DNS_TYPE_A, pupils, "restrict.youtube.com");
    expect_safe_name("youtubei.googleapis.com", DNS_TYPE_A, pupils, "restrict.youtube.com");
    expect_safe_name("www.youtube.com", DNS_TYPE_A, infants, "restrictmoderate.youtube.com");
    expect_safe_name("www.youtube-nocookie.com", DNS_TYPE_AAAA, infants,
                     "restrictmoderate.youtube.com");
    expect_how("music.youtube.com", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);
    expect_how("www.youtube.com", DNS_TYPE_A, staff, DNS_HOW_FORWARD); /* youtube off */

    expect_safe_name("www.bing.com", DNS_TYPE_A, pupils, "strict.bing.com");
    expect_safe_name("duckduckgo.com", DNS_TYPE_A, pupils, "safe.duckduckgo.com");
    expect_safe_name("start.duckduckgo.com", DNS_TYPE_A, infants, "safe.duckduckgo.com");
    expect_how("links.duckduckgo.com", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);
    expect_safe_name("pixabay.com", DNS_TYPE_A, pupils, "safesearch.pixabay.com");
    expect_safe_name("www.ecosia.org", DNS_TYPE_A, pupils, "strict-safe-search.ecosia.org");
    expect_safe_name("search.brave.com", DNS_TYPE_A, pupils, "forcesafe.search.brave.com");

    /* Yandex by address */
    d = decide("yandex.ru", DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_SAFE_ADDR);
    assert_memory_equal(d.addr4, "\xd5\xb4\xc1\x38", 4); /* 213.180.193.56 */
    d = decide("www.yandex.com.tr", DNS_TYPE_AAAA, infants);
    assert_int_equal(d.how, DNS_HOW_SAFE_ADDR);
    d = decide("ya.ru", DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_SAFE_ADDR);

    /* engines that cannot enforce it are blocked (circumvention), where safe search is on */
    expect_block("startpage.com", DNS_TYPE_A, pupils, POLICY_TIER_CIRCUMVENTION);
    expect_block("www.startpage.com", DNS_TYPE_A, infants, POLICY_TIER_CIRCUMVENTION);
    expect_block("qwant.com", DNS_TYPE_AAAA, pupils, POLICY_TIER_CIRCUMVENTION);
    expect_how("startpage.com", DNS_TYPE_A, staff, DNS_HOW_FORWARD);

    /* safe search off: the engines resolve as they are */
    expect_how("www.google.com", DNS_TYPE_A, staff, DNS_HOW_FORWARD);
    expect_how("www.bing.com", DNS_TYPE_A, staff, DNS_HOW_FORWARD);
    expect_how("yandex.ru", DNS_TYPE_A, staff, DNS_HOW_FORWARD);
}

static void test_encrypted_dns(void **state)
{
    (void)state;
    expect_block("dns.google", DNS_TYPE_A, pupils, POLICY_TIER_CIRCUMVENTION);
    expect_block("dns.google", DNS_TYPE_HTTPS, infants, POLICY_TIER_CIRCUMVENTION);
    expect_block("cloudflare-dns.com", DNS_TYPE_AAAA, infants, POLICY_TIER_CIRCUMVENTION);
    expect_block("mozilla.cloudflare-dns.com", DNS_TYPE_A, pupils, POLICY_TIER_CIRCUMVENTION);
    expect_how("dns.google", DNS_TYPE_A, staff, DNS_HOW_FORWARD);
    expect_how("cloudflare-dns.com", DNS_TYPE_HTTPS, staff, DNS_HOW_FORWARD);
    /* the names next to them are not services */
    expect_how("google", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);
    expect_how("notdns.google", DNS_TYPE_A, pupils, DNS_HOW_FORWARD);
}

static void test_odd_names(void **state)
{
    struct dns_decision d;
    char name[400];
    size_t i;

    (void)state;
    /* the root: nothing to look up */
    d = decide("", DNS_TYPE_NS, pupils);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    assert_int_equal(d.decided, 0);
    expect_how(".", DNS_TYPE_ANY, staff, DNS_HOW_ANY);

    /* a dot inside a label is not a label boundary: "porn.example" as one label */
    d = decide("porn\\.example", DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    d = decide("www\\.google.com", DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    d = decide("use-application-dns\\.net", DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    /* bytes outside printable ASCII, below a blocked name */
    d = decide("\\000\\255.porn.example", DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_BLOCK);
    d = decide("a\\032b\\\\c.example", DNS_TYPE_A, infants);
    assert_int_equal(d.how, DNS_HOW_FORWARD);

    /* a name whose text is longer than any host: no crash, and its tail is what is looked up */
    name[0] = '\0';
    for (i = 0; i < 62; i++)
        memcpy(name + 4 * i, "\\001", 4);
    memcpy(name + 248, ".example.org", 13);
    d = decide(name, DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    d = decide(name, DNS_TYPE_ANY, pupils);
    assert_int_equal(d.how, DNS_HOW_ANY);
    /* ... and under a blocked name it is blocked: the policy looks at its longest tail that
     * is a host */
    memcpy(name + 248, ".x.porn.example", 16);
    d = decide(name, DNS_TYPE_A, pupils);
    assert_int_equal(d.how, DNS_HOW_BLOCK);

    /* the longest plain name (253 characters) */
    for (i = 0; i < 126; i++)
        memcpy(name + 2 * i, "a.", 2);
    memcpy(name + 252, "b", 2);
    d = decide(name, DNS_TYPE_A, staff);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    assert_true(d.decided);
}

/* ---- answers ---- */

static const struct dns_block_addrs both = {.has4 = 1,
                                            .has6 = 1,
                                            .a4 = {127, 0, 0, 1},
                                            .a6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
static const struct dns_block_addrs only4 = {.has4 = 1, .a4 = {127, 0, 0, 1}};

/* The first answer record of a response to q (no OPT in q): fields and data. */
struct rec {
    uint16_t type, class, rdlen;
    uint32_t ttl;
    const uint8_t *rdata;
};

static struct rec first_record(const struct dns_query *q, const uint8_t *out, size_t n)
{
    size_t at = DNS_HEADER_LEN + q->wire_len + 4;
    const uint8_t *p = out + at;
    struct rec r;

    assert_true(n >= at + 12);
    assert_int_equal(p[0], 0xc0); /* the owner is the question's name */
    assert_int_equal(p[1], DNS_HEADER_LEN);
    r.type = (uint16_t)(p[2] << 8 | p[3]);
    r.class = (uint16_t)(p[4] << 8 | p[5]);
    r.ttl = (uint32_t)p[6] << 24 | (uint32_t)p[7] << 16 | (uint32_t)p[8] << 8 | p[9];
    r.rdlen = (uint16_t)(p[10] << 8 | p[11]);
    r.rdata = p + 12;
    assert_true(n >= at + 12 + r.rdlen);
    return r;
}

/* Decide and answer name/qtype for group; parse the answer back into *r. Returns its length. */
static size_t answer(const char *name, uint16_t qtype, int group, const struct dns_block_addrs *ba,
                     int edns, struct dns_query *q, uint8_t *out, size_t cap,
                     struct dns_response_view *r)
{
    struct dns_decision d;
    const char *why = NULL;
    size_t n;

    make_query(name, qtype, edns, q);
    dns_filter_decide(pol, q, group, monday_10, &d);
    n = dns_filter_answer(&d, q, ba, out, cap, q->udp_size);
    if (n == 0)
        return 0;
    if (dns_parse_response(out, n, r, &why) != DNS_OK)
        fail_msg("answer for %s does not parse: %s", name, why);
    assert_int_equal(r->id, q->id);
    assert_string_equal(r->qname, q->name);
    assert_int_equal(r->qtype, qtype);
    assert_int_equal(r->tc, 0);
    assert_true(r->flags & DNS_FLAG_QR);
    assert_true(r->flags & DNS_FLAG_RD);
    /* the client's case in the question */
    assert_memory_equal(out + DNS_HEADER_LEN, q->wire, q->wire_len);
    return n;
}

static void test_answer_block(void **state)
{
    struct dns_query q;
    struct dns_response_view r;
    struct rec rec;
    uint8_t out[512];
    size_t n;

    (void)state;
    /* nxdomain groups */
    n = answer("porn.example", DNS_TYPE_A, infants, &both, 0, &q, out, sizeof(out), &r);
    assert_int_not_equal(n, 0);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_equal(r.ancount, 0);
    n = answer("Www.Porn.Example", DNS_TYPE_AAAA, staff, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_equal(n, DNS_HEADER_LEN + q.wire_len + 4);

    /* page: A -> the IPv4 block address */
    n = answer("porn.example", DNS_TYPE_A, pupils, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 1);
    assert_int_equal(r.min_ttl, DNS_BLOCK_TTL);
    rec = first_record(&q, out, n);
    assert_int_equal(rec.type, DNS_TYPE_A);
    assert_int_equal(rec.class, DNS_CLASS_IN);
    assert_int_equal(rec.ttl, DNS_BLOCK_TTL);
    assert_int_equal(rec.rdlen, 4);
    assert_memory_equal(rec.rdata, both.a4, 4);
    assert_int_equal(n, DNS_HEADER_LEN + q.wire_len + 4 + 12 + 4);

    /* the locked tier, page mode, AAAA -> the IPv6 address */
    n = answer("cdn.abuse.example", DNS_TYPE_AAAA, pupils, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 1);
    rec = first_record(&q, out, n);
    assert_int_equal(rec.type, DNS_TYPE_AAAA);
    assert_int_equal(rec.ttl, DNS_BLOCK_TTL);
    assert_int_equal(rec.rdlen, 16);
    assert_memory_equal(rec.rdata, both.a6, 16);

    /* AAAA with no IPv6 block address: NOERROR, no records */
    n = answer("porn.example", DNS_TYPE_AAAA, pupils, &only4, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 0);
    assert_int_equal(n, DNS_HEADER_LEN + q.wire_len + 4);

    /* other types: NOERROR, no records */
    n = answer("porn.example", DNS_TYPE_MX, pupils, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 0);
    n = answer("porn.example", DNS_TYPE_HTTPS, pupils, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 0);
    /* ANY on a blocked name is a block too */
    n = answer("porn.example", DNS_TYPE_ANY, pupils, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 0);
    n = answer("porn.example", DNS_TYPE_ANY, infants, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);

    /* with EDNS: our OPT record follows, and the answer still parses */
    n = answer("porn.example", DNS_TYPE_A, pupils, &both, 1, &q, out, sizeof(out), &r);
    assert_int_equal(r.ancount, 1);
    assert_int_not_equal(r.opt_len, 0);
    assert_int_equal(r.opt_off + r.opt_len, n);
    n = answer("porn.example", DNS_TYPE_A, infants, &both, 1, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_not_equal(r.opt_len, 0);

    /* no room: 0 */
    make_query("porn.example", DNS_TYPE_A, 0, &q);
    {
        struct dns_decision d;

        dns_filter_decide(pol, &q, pupils, monday_10, &d);
        assert_int_equal(dns_filter_answer(&d, &q, &both, out, 20, 0), 0);
    }
}

static void test_answer_other(void **state)
{
    struct dns_query q;
    struct dns_response_view r;
    struct dns_decision d;
    struct rec rec;
    uint8_t out[512];
    size_t n;

    (void)state;
    /* canary: NXDOMAIN, for a page group too */
    n = answer("use-application-dns.net", DNS_TYPE_A, pupils, &both, 0, &q, out, sizeof(out), &r);
    assert_int_not_equal(n, 0);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_equal(r.ancount, 0);
    n = answer("mask.icloud.com", DNS_TYPE_HTTPS, staff, &both, 1, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);

    /* ANY: one HINFO "RFC8482" "" */
    n = answer("www.example.org", DNS_TYPE_ANY, staff, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 1);
    rec = first_record(&q, out, n);
    assert_int_equal(rec.type, 13); /* HINFO */
    assert_int_equal(rec.class, DNS_CLASS_IN);
    assert_int_equal(rec.ttl, DNS_BLOCK_TTL);
    assert_int_equal(rec.rdlen, 9);
    assert_memory_equal(rec.rdata, "\7RFC8482\0", 9);
    n = answer("", DNS_TYPE_ANY, pupils, &both, 1, &q, out, sizeof(out), &r);
    assert_int_equal(r.ancount, 1);

    /* Yandex: A the address, AAAA nothing, MX nothing */
    n = answer("yandex.ru", DNS_TYPE_A, pupils, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 1);
    rec = first_record(&q, out, n);
    assert_int_equal(rec.type, DNS_TYPE_A);
    assert_int_equal(rec.ttl, DNS_BLOCK_TTL);
    assert_int_equal(rec.rdlen, 4);
    assert_memory_equal(rec.rdata, "\xd5\xb4\xc1\x38", 4);
    n = answer("Yandex.RU", DNS_TYPE_AAAA, pupils, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 0);
    assert_int_equal(n, DNS_HEADER_LEN + q.wire_len + 4);
    n = answer("yandex.ru", DNS_TYPE_MX, infants, &both, 0, &q, out, sizeof(out), &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 0);

    /* forwarded and CNAME safe search need the upstream: 0 */
    make_query("www.example.org", DNS_TYPE_A, 0, &q);
    dns_filter_decide(pol, &q, pupils, monday_10, &d);
    assert_int_equal(d.how, DNS_HOW_FORWARD);
    assert_int_equal(dns_filter_answer(&d, &q, &both, out, sizeof(out), q.udp_size), 0);
    make_query("game.example", DNS_TYPE_A, 0, &q); /* warn */
    dns_filter_decide(pol, &q, pupils, monday_10, &d);
    assert_int_equal(dns_filter_answer(&d, &q, &both, out, sizeof(out), q.udp_size), 0);
    make_query("www.google.com", DNS_TYPE_A, 0, &q);
    dns_filter_decide(pol, &q, pupils, monday_10, &d);
    assert_int_equal(d.how, DNS_HOW_SAFE_NAME);
    assert_int_equal(dns_filter_answer(&d, &q, &both, out, sizeof(out), q.udp_size), 0);
}

static void test_type_name(void **state)
{
    char buf[16];

    (void)state;
    assert_string_equal(dns_type_name(DNS_TYPE_A, buf, sizeof(buf)), "A");
    assert_string_equal(dns_type_name(DNS_TYPE_AAAA, buf, sizeof(buf)), "AAAA");
    assert_string_equal(dns_type_name(DNS_TYPE_HTTPS, buf, sizeof(buf)), "HTTPS");
    assert_string_equal(dns_type_name(DNS_TYPE_ANY, buf, sizeof(buf)), "ANY");
    assert_string_equal(dns_type_name(99, buf, sizeof(buf)), "TYPE99");
    assert_string_equal(dns_type_name(65535, buf, sizeof(buf)), "TYPE65535");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canaries),      cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_any),           cmocka_unit_test(test_safe_search),
        cmocka_unit_test(test_encrypted_dns), cmocka_unit_test(test_odd_names),
        cmocka_unit_test(test_answer_block),  cmocka_unit_test(test_answer_other),
        cmocka_unit_test(test_type_name),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
