/* Unit tests: DNS wire format -- query parsing, answers, upstream queries and responses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "dns/wire.h"

/* A packet under construction, built by hand byte by byte. */
struct pkt {
    uint8_t b[1024];
    size_t len;
};

static void put(struct pkt *p, const void *bytes, size_t n)
{
    assert_true(p->len + n <= sizeof(p->b));
    memcpy(p->b + p->len, bytes, n);
    p->len += n;
}

static void put16(struct pkt *p, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

    put(p, b, 2);
}

static void put32(struct pkt *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p, (uint16_t)v);
}

static void header(struct pkt *p, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
                   uint16_t ns, uint16_t ar)
{
    p->len = 0;
    put16(p, id);
    put16(p, flags);
    put16(p, qd);
    put16(p, an);
    put16(p, ns);
    put16(p, ar);
}

/* A wire name from a literal with explicit length bytes, e.g. "\3www\7example\3com". */
#define NAME(p, lit) put((p), (lit), sizeof(lit))

static void opt(struct pkt *p, uint16_t udp, uint8_t version, int do_bit)
{
    uint8_t root = 0;

    put(p, &root, 1);
    put16(p, DNS_TYPE_OPT);
    put16(p, udp);
    put32(p, ((uint32_t)version << 16) | (do_bit ? 0x8000u : 0));
    put16(p, 0);
}

/* A plain query for www.Example.COM/A with RD. */
static void simple_query(struct pkt *p, uint16_t ar)
{
    header(p, 0x1234, DNS_FLAG_RD, 1, 0, 0, ar);
    NAME(p, "\3www\7Example\3COM");
    put16(p, DNS_TYPE_A);
    put16(p, DNS_CLASS_IN);
}

static void test_parse_simple(void **state)
{
    struct pkt p;
    struct dns_query q;
    const char *why = NULL;

    (void)state;
    simple_query(&p, 0);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    assert_int_equal(q.id, 0x1234);
    assert_int_equal(q.flags, DNS_FLAG_RD);
    assert_string_equal(q.name, "www.example.com");
    assert_int_equal(q.name_len, 15);
    assert_int_equal(q.qtype, DNS_TYPE_A);
    assert_int_equal(q.qclass, DNS_CLASS_IN);
    assert_int_equal(q.edns, 0);
    assert_int_equal(q.udp_size, 512);
    assert_int_equal(q.question_end, p.len);
    assert_int_equal(q.wire_len, 17);
    assert_memory_equal(q.wire, "\3www\7Example\3COM", 17); /* case kept on the wire */

    /* the root */
    header(&p, 7, 0, 1, 0, 0, 0);
    NAME(&p, "");
    put16(&p, DNS_TYPE_NS);
    put16(&p, DNS_CLASS_IN);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    assert_string_equal(q.name, "");
    assert_int_equal(q.name_len, 0);
}

static void test_parse_edns(void **state)
{
    struct pkt p;
    struct dns_query q;
    const char *why = NULL;

    (void)state;
    simple_query(&p, 1);
    opt(&p, 4096, 0, 1);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    assert_int_equal(q.edns, 1);
    assert_int_equal(q.udp_size, 4096);
    assert_int_equal(q.do_bit, 1);
    assert_int_equal(q.edns_version, 0);
    assert_int_equal(q.question_end, p.len - 11);

    /* a payload size under 512 counts as 512 (RFC 6891 6.2.5) */
    simple_query(&p, 1);
    opt(&p, 100, 0, 0);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    assert_int_equal(q.udp_size, 512);
    assert_int_equal(q.do_bit, 0);

    /* an option (cookie) is fine */
    simple_query(&p, 1);
    put(&p, "\0", 1);
    put16(&p, DNS_TYPE_OPT);
    put16(&p, 1232);
    put32(&p, 0);
    put16(&p, 12);
    put16(&p, 10);
    put16(&p, 8);
    put(&p, "abcdefgh", 8);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    assert_int_equal(q.udp_size, 1232);
}

/* Expect dns_parse_query to give rc with a message containing msg. */
static void expect(const struct pkt *p, enum dns_parse rc, const char *msg)
{
    struct dns_query q;
    const char *why = NULL;
    enum dns_parse got = dns_parse_query(p->b, p->len, &q, &why);

    if (got != rc)
        fail_msg("expected %d, got %d (%s), want '%s'", rc, got, why ? why : "-", msg);
    assert_non_null(why);
    if (!strstr(why, msg))
        fail_msg("message '%s' does not say '%s'", why, msg);
}

static void test_parse_malformed(void **state)
{
    struct pkt p;
    int i;

    (void)state;
    simple_query(&p, 0);
    p.len = 11;
    expect(&p, DNS_DROP, "shorter than a DNS header");
    p.len = 0;
    expect(&p, DNS_DROP, "shorter than a DNS header");

    simple_query(&p, 0);
    p.b[2] |= 0x80; /* QR */
    expect(&p, DNS_DROP, "response");

    /* truncated name */
    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\3ww", 3);
    expect(&p, DNS_FORMERR, "past the end of the packet");
    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\3www", 4);
    expect(&p, DNS_FORMERR, "past the end of the packet");
    /* truncated before type and class */
    header(&p, 1, 0, 1, 0, 0, 0);
    NAME(&p, "\1a");
    put16(&p, 1);
    expect(&p, DNS_FORMERR, "type and class");

    /* label over 63 (0x40 is a reserved label type on the wire) */
    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\x40", 1);
    for (i = 0; i < 64; i++)
        put(&p, "a", 1);
    put(&p, "\0\0\1\0\1", 5);
    expect(&p, DNS_FORMERR, "over 63");

    /* name over 255: four labels of 63 + one of 2 = 4*64 + 3 + 1 = 260 */
    header(&p, 1, 0, 1, 0, 0, 0);
    for (i = 0; i < 4; i++) {
        uint8_t l = 63;

        put(&p, &l, 1);
        put(&p, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 63);
    }
    put(&p, "\2aa\0\0\1\0\1", 8);
    expect(&p, DNS_FORMERR, "longer than 255");

    /* pointer to itself */
    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\xc0\x0c\0\1\0\1", 6);
    expect(&p, DNS_FORMERR, "loop");
    /* pointer back to the start of its own name */
    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\1a\xc0\x0c\0\1\0\1", 8);
    expect(&p, DNS_FORMERR, "loop");
    /* forward pointer */
    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\xc0\x12\0\1\0\1\1a\0", 9);
    expect(&p, DNS_FORMERR, "forward");
    /* into the header */
    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\xc0\x02\0\1\0\1", 6);
    expect(&p, DNS_FORMERR, "into the header");
    /* a pointer cut off */
    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\xc0", 1);
    expect(&p, DNS_FORMERR, "cut off");

    /* QDCOUNT 0 and 2 */
    simple_query(&p, 0);
    p.b[5] = 0;
    expect(&p, DNS_FORMERR, "QDCOUNT 0");
    simple_query(&p, 0);
    p.b[5] = 2;
    expect(&p, DNS_FORMERR, "more than one question");
    /* answers in a query */
    simple_query(&p, 0);
    p.b[7] = 1;
    expect(&p, DNS_FORMERR, "answer or authority");

    /* trailing garbage */
    simple_query(&p, 0);
    put(&p, "xyz", 3);
    expect(&p, DNS_FORMERR, "trailing bytes");

    /* class CH: not implemented, question still parsed */
    simple_query(&p, 0);
    p.b[p.len - 1] = 3;
    expect(&p, DNS_NOTIMP, "class");

    /* NOTIFY (4) and UPDATE (5) */
    simple_query(&p, 0);
    p.b[2] = (uint8_t)(4 << 3);
    expect(&p, DNS_NOTIMP, "opcode");
    simple_query(&p, 0);
    p.b[2] = (uint8_t)(5 << 3);
    expect(&p, DNS_NOTIMP, "opcode");

    /* OPT twice */
    simple_query(&p, 2);
    opt(&p, 1232, 0, 0);
    opt(&p, 1232, 0, 0);
    expect(&p, DNS_FORMERR, "more than one OPT");
    /* OPT owner not the root */
    simple_query(&p, 1);
    put(&p, "\1x\0", 3);
    put16(&p, DNS_TYPE_OPT);
    put16(&p, 1232);
    put32(&p, 0);
    put16(&p, 0);
    expect(&p, DNS_FORMERR, "not the root");
    /* an additional record that is not OPT */
    simple_query(&p, 1);
    put(&p, "\0", 1);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    put32(&p, 0);
    put16(&p, 4);
    put(&p, "\x7f\0\0\1", 4);
    expect(&p, DNS_FORMERR, "other than OPT");
    /* OPT cut off, and a bad option inside */
    simple_query(&p, 1);
    put(&p, "\0\0\x29\4", 4);
    expect(&p, DNS_FORMERR, "cut off");
    simple_query(&p, 1);
    put(&p, "\0", 1);
    put16(&p, DNS_TYPE_OPT);
    put16(&p, 1232);
    put32(&p, 0);
    put16(&p, 5);
    put(&p, "\0\12\0\4x", 5); /* option says 4 bytes, has 1 */
    expect(&p, DNS_FORMERR, "EDNS option");
    /* OPT rdata longer than the packet */
    simple_query(&p, 1);
    put(&p, "\0", 1);
    put16(&p, DNS_TYPE_OPT);
    put16(&p, 1232);
    put32(&p, 0);
    put16(&p, 50);
    expect(&p, DNS_FORMERR, "past the end");

    /* EDNS version 1 */
    simple_query(&p, 1);
    opt(&p, 1232, 1, 0);
    expect(&p, DNS_BADVERS, "EDNS version");
}

static void test_escaped_labels(void **state)
{
    struct pkt p;
    struct dns_query q;
    const char *why = NULL;
    uint8_t wire[DNS_NAME_MAX];
    int n;

    (void)state;
    header(&p, 1, 0, 1, 0, 0, 0);
    NAME(&p, "\3a.b\7example");
    put16(&p, 1);
    put16(&p, 1);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    assert_string_equal(q.name, "a\\.b.example");
    /* and back: the escaped text is the same wire name, not a.b.example */
    n = dns_name_to_wire(q.name, wire, sizeof(wire));
    assert_int_equal(n, 13);
    assert_memory_equal(wire, "\3a.b\7example", 13);

    header(&p, 1, 0, 1, 0, 0, 0);
    put(&p, "\1\0\3A B\2\\\xff\0", 10);
    put16(&p, 1);
    put16(&p, 1);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    assert_string_equal(q.name, "\\000.a\\032b.\\\\\\255");
    n = dns_name_to_wire(q.name, wire, sizeof(wire));
    assert_int_equal(n, 10);
    assert_memory_equal(wire, "\1\0\3a b\2\\\xff\0", 10);

    /* the longest presentation form: four labels of escapes fill DNS_PRES_MAX */
    header(&p, 1, 0, 1, 0, 0, 0);
    for (n = 0; n < 4; n++) {
        uint8_t l = n < 3 ? 63 : 61, zero[63] = {0};

        put(&p, &l, 1);
        put(&p, zero, l);
    }
    put(&p, "\0\0\1\0\1", 5);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    assert_int_equal(q.name_len, DNS_PRES_MAX);
    assert_int_equal(strlen(q.name), DNS_PRES_MAX);
}

static void test_name_to_wire(void **state)
{
    uint8_t w[DNS_NAME_MAX];
    char long_name[400];
    size_t i;

    (void)state;
    assert_int_equal(dns_name_to_wire("", w, sizeof(w)), 1);
    assert_int_equal(w[0], 0);
    assert_int_equal(dns_name_to_wire(".", w, sizeof(w)), 1);
    assert_int_equal(dns_name_to_wire("example.com", w, sizeof(w)), 13);
    assert_memory_equal(w, "\7example\3com", 13);
    assert_int_equal(dns_name_to_wire("example.com.", w, sizeof(w)), 13);
    assert_int_equal(dns_name_to_wire("a\\.", w, sizeof(w)), 4); /* escaped final dot */
    assert_memory_equal(w, "\2a.", 4);
    assert_int_equal(dns_name_to_wire("a..b", w, sizeof(w)), -1);
    assert_int_equal(dns_name_to_wire(".a", w, sizeof(w)), -1);
    assert_int_equal(dns_name_to_wire("a..", w, sizeof(w)), -1);
    assert_int_equal(dns_name_to_wire("a\\256", w, sizeof(w)), -1);
    assert_int_equal(dns_name_to_wire("a\\25", w, sizeof(w)), -1);
    assert_int_equal(dns_name_to_wire("a\\", w, sizeof(w)), -1);
    assert_int_equal(dns_name_to_wire("example.com", w, 12), -1); /* no room */

    /* label of 63 fits, 64 does not */
    memset(long_name, 'a', 64);
    long_name[63] = '\0';
    assert_int_equal(dns_name_to_wire(long_name, w, sizeof(w)), 65);
    long_name[63] = 'a';
    long_name[64] = '\0';
    assert_int_equal(dns_name_to_wire(long_name, w, sizeof(w)), -1);

    /* 255 bytes on the wire fit, 256 do not: 127 labels "a" = 254 + root */
    for (i = 0; i < 127; i++) {
        long_name[2 * i] = 'a';
        long_name[2 * i + 1] = '.';
    }
    long_name[253] = '\0';
    assert_int_equal(dns_name_to_wire(long_name, w, sizeof(w)), 255);
    long_name[253] = '.';
    long_name[254] = 'b';
    long_name[255] = '\0';
    assert_int_equal(dns_name_to_wire(long_name, w, sizeof(w)), -1);
}

static void test_query_round_trip(void **state)
{
    uint8_t buf[512];
    struct dns_query q;
    const char *why = NULL;
    size_t n;

    (void)state;
    n = dns_build_query(0xbeef, "Mail.Example.org.", DNS_TYPE_AAAA, 1, 1232, buf, sizeof(buf));
    assert_int_not_equal(n, 0);
    assert_int_equal(dns_parse_query(buf, n, &q, &why), DNS_OK);
    assert_int_equal(q.id, 0xbeef);
    assert_int_equal(q.flags, DNS_FLAG_RD);
    assert_string_equal(q.name, "mail.example.org");
    assert_int_equal(q.qtype, DNS_TYPE_AAAA);
    assert_int_equal(q.edns, 1);
    assert_int_equal(q.udp_size, 1232);

    n = dns_build_query(1, "example.org", DNS_TYPE_A, 0, 0, buf, sizeof(buf));
    assert_int_equal(n, 12 + 13 + 4);
    assert_int_equal(dns_parse_query(buf, n, &q, &why), DNS_OK);
    assert_int_equal(q.edns, 0);
    assert_int_equal(q.flags, 0);

    assert_int_equal(dns_build_query(1, "a..b", DNS_TYPE_A, 0, 0, buf, sizeof(buf)), 0);
    assert_int_equal(dns_build_query(1, "example.org", DNS_TYPE_A, 0, 0, buf, 20), 0);
}

static void parse_ok(const uint8_t *buf, size_t n, struct dns_response_view *r)
{
    const char *why = NULL;

    if (dns_parse_response(buf, n, r, &why) != DNS_OK)
        fail_msg("response does not parse: %s", why);
}

static void test_answer_rcode(void **state)
{
    struct pkt p;
    struct dns_query q;
    struct dns_response_view r;
    const char *why = NULL;
    uint8_t out[512];
    size_t n;

    (void)state;
    simple_query(&p, 0);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    n = dns_answer_rcode(&q, DNS_RCODE_NXDOMAIN, out, sizeof(out));
    assert_int_equal(n, p.len);
    assert_memory_equal(out + 12, p.b + 12, p.len - 12); /* the question, client's case */
    parse_ok(out, n, &r);
    assert_int_equal(r.id, 0x1234);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_equal(r.flags & (DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | DNS_FLAG_TC),
                     DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA);
    assert_string_equal(r.qname, "www.example.com");
    assert_int_equal(r.qtype, DNS_TYPE_A);
    assert_int_equal(r.ancount, 0);
    assert_int_equal(r.min_ttl, 0);
    assert_int_equal(dns_answer_rcode(&q, DNS_RCODE_NXDOMAIN, out, n - 1), 0); /* no room */
    /* BADVERS cannot be said without EDNS */
    assert_int_equal(dns_answer_rcode(&q, DNS_RCODE_BADVERS, out, sizeof(out)), 0);

    /* with EDNS: an OPT record with our size and the DO bit echoed */
    simple_query(&p, 1);
    opt(&p, 4096, 0, 1);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    n = dns_answer_rcode(&q, DNS_RCODE_REFUSED, out, sizeof(out));
    assert_int_equal(n, p.len);
    assert_int_equal(out[11], 1);
    assert_memory_equal(out + n - 11, "\0\0\x29\x04\xd0\0\0\x80\0\0\0", 11);
    parse_ok(out, n, &r);
    assert_int_equal(r.rcode, DNS_RCODE_REFUSED);

    /* BADVERS: rcode 16 = 0 in the header, 1 in the OPT's extended rcode */
    simple_query(&p, 1);
    opt(&p, 1232, 1, 0);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_BADVERS);
    n = dns_answer_rcode(&q, DNS_RCODE_BADVERS, out, sizeof(out));
    assert_int_not_equal(n, 0);
    assert_int_equal(out[3] & 0xf, 0);
    assert_int_equal(out[n - 6], 1);
    parse_ok(out, n, &r);
    assert_int_equal(r.rcode, DNS_RCODE_BADVERS);

    /* FORMERR on a broken name: header only, id echoed */
    header(&p, 0x4242, DNS_FLAG_RD, 1, 0, 0, 0);
    put(&p, "\xc0\x0c", 2);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_FORMERR);
    n = dns_answer_rcode(&q, DNS_RCODE_FORMERR, out, sizeof(out));
    assert_int_equal(n, 12);
    assert_memory_equal(out, "\x42\x42\x81\x81\0\0\0\0\0\0\0\0", 12);

    /* NOTIMP on an opcode: header only, opcode echoed */
    simple_query(&p, 0);
    p.b[2] = (uint8_t)(4 << 3);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_NOTIMP);
    n = dns_answer_rcode(&q, DNS_RCODE_NOTIMP, out, sizeof(out));
    assert_int_equal(n, 12);
    assert_int_equal(out[2], 0x80 | (4 << 3));
    assert_int_equal(out[3], 0x80 | DNS_RCODE_NOTIMP);
}

static void test_answer_compression(void **state)
{
    struct pkt p;
    struct dns_query q;
    struct dns_response_view r;
    const char *why = NULL;
    uint8_t out[512];
    const uint8_t ip4[4] = {127, 0, 0, 1};
    const char *target = "safe.example.com";
    struct dns_rr rrs[2] = {
        {NULL, DNS_TYPE_CNAME, 300, (const uint8_t *)target, 16},
        {"Safe.Example.com", DNS_TYPE_A, 60, ip4, 4},
    };
    size_t n, qend;

    (void)state;
    simple_query(&p, 0);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    qend = q.question_end;

    /* one A record: its name is a pointer to the question */
    n = dns_answer(&q, &rrs[1], 1, out, sizeof(out), q.udp_size);
    assert_int_equal(n, qend + 7 + 10 + 4); /* "safe" + pointer to "example.com" */
    rrs[1].name = NULL;
    n = dns_answer(&q, &rrs[1], 1, out, sizeof(out), q.udp_size);
    assert_int_equal(n, qend + 16);
    assert_memory_equal(out + qend, "\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4\x7f\0\0\1", 16);
    parse_ok(out, n, &r);
    assert_int_equal(r.ancount, 1);
    assert_int_equal(r.min_ttl, 60);
    assert_int_equal(r.rcode, 0);
    assert_string_equal(r.qname, "www.example.com");

    /* CNAME then A: the target reuses "example.com" of the question (offset 16), the A
     * owner points at the target */
    rrs[1].name = "Safe.Example.com";
    n = dns_answer(&q, rrs, 2, out, sizeof(out), q.udp_size);
    assert_int_not_equal(n, 0);
    assert_memory_equal(out + qend, "\xc0\x0c\0\5\0\1\0\0\1\x2c\0\7\4safe\xc0\x10", 19);
    assert_int_equal(out[qend + 19], 0xc0);
    assert_int_equal(out[qend + 20], qend + 12);
    assert_int_equal(n, qend + 19 + 2 + 10 + 4);
    parse_ok(out, n, &r);
    assert_int_equal(r.ancount, 2);
    assert_int_equal(r.min_ttl, 60);

    /* invalid records */
    rrs[1].rdlen = 3;
    assert_int_equal(dns_answer(&q, &rrs[1], 1, out, sizeof(out), 0), 0);
    rrs[1].rdlen = 4;
    rrs[1].name = "a..b";
    assert_int_equal(dns_answer(&q, &rrs[1], 1, out, sizeof(out), 0), 0);
}

static void test_truncation(void **state)
{
    struct pkt p;
    struct dns_query q;
    struct dns_response_view r;
    const char *why = NULL;
    uint8_t out[4096];
    uint8_t ips[40][16];
    struct dns_rr rrs[40];
    size_t n;
    int i;

    (void)state;
    for (i = 0; i < 40; i++) {
        memset(ips[i], 0, 16);
        ips[i][0] = 0xfd;
        ips[i][15] = (uint8_t)i;
        rrs[i] = (struct dns_rr){NULL, DNS_TYPE_AAAA, 30, ips[i], 16};
    }
    header(&p, 9, DNS_FLAG_RD, 1, 0, 0, 0);
    NAME(&p, "\4many\7example");
    put16(&p, DNS_TYPE_AAAA);
    put16(&p, DNS_CLASS_IN);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);

    /* 40 * 28 bytes do not fit in 512: TC, question only */
    n = dns_answer(&q, rrs, 40, out, sizeof(out), q.udp_size);
    assert_int_equal(n, p.len);
    assert_true(out[2] & (DNS_FLAG_TC >> 8));
    parse_ok(out, n, &r);
    assert_int_equal(r.tc, 1);
    assert_int_equal(r.ancount, 0);
    assert_string_equal(r.qname, "many.example");

    /* 17 records fit in 512 (12 + 18 + 17 * 28 = 506) */
    n = dns_answer(&q, rrs, 17, out, sizeof(out), q.udp_size);
    assert_int_equal(n, 506);
    parse_ok(out, n, &r);
    assert_int_equal(r.tc, 0);
    assert_int_equal(r.ancount, 17);
    n = dns_answer(&q, rrs, 18, out, sizeof(out), q.udp_size);
    assert_int_equal(n, p.len);

    /* over TCP (no limit) all 40 fit; with a buffer too small for them, it fails */
    n = dns_answer(&q, rrs, 40, out, sizeof(out), 0);
    assert_int_equal(n, p.len + 40 * 28);
    parse_ok(out, n, &r);
    assert_int_equal(r.ancount, 40);
    assert_int_equal(dns_answer(&q, rrs, 40, out, 600, 0), 0);

    /* with EDNS the OPT record counts within the limit, and stays in a TC answer */
    header(&p, 9, DNS_FLAG_RD, 1, 0, 0, 1);
    NAME(&p, "\4many\7example");
    put16(&p, DNS_TYPE_AAAA);
    put16(&p, DNS_CLASS_IN);
    opt(&p, 512, 0, 0);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    n = dns_answer(&q, rrs, 17, out, sizeof(out), q.udp_size); /* 506 + 11 > 512 */
    assert_int_equal(n, p.len);
    parse_ok(out, n, &r);
    assert_int_equal(r.tc, 1);
    n = dns_answer(&q, rrs, 16, out, sizeof(out), q.udp_size);
    assert_int_equal(n, 12 + 18 + 16 * 28 + 11);
    parse_ok(out, n, &r);
    assert_int_equal(r.ancount, 16);
}

static void test_ttl_patch(void **state)
{
    struct pkt p;
    struct dns_query q;
    struct dns_response_view r;
    const char *why = NULL;
    uint8_t out[512];
    const uint8_t ip4[4] = {127, 0, 0, 1};
    const char *target = "safe.example.com";
    struct dns_rr rrs[2] = {
        {NULL, DNS_TYPE_CNAME, 300, (const uint8_t *)target, 16},
        {target, DNS_TYPE_A, 60, ip4, 4},
    };
    size_t n;

    (void)state;
    simple_query(&p, 1);
    opt(&p, 1232, 0, 1);
    assert_int_equal(dns_parse_query(p.b, p.len, &q, &why), DNS_OK);
    n = dns_answer(&q, rrs, 2, out, sizeof(out), q.udp_size);
    assert_int_not_equal(n, 0);

    assert_int_equal(dns_response_patch(out, n, 0x9999, 100), 0);
    parse_ok(out, n, &r);
    assert_int_equal(r.id, 0x9999);
    assert_int_equal(r.min_ttl, 0);                                 /* 60 - 100 stops at 0 */
    assert_memory_equal(out + q.question_end + 6, "\0\0\0\xc8", 4); /* 300 - 100 */
    assert_memory_equal(out + n - 6, "\0\0\x80\0", 4);              /* OPT flags kept */

    /* a packet that does not parse is left alone */
    out[n - 1] = 1; /* OPT rdlen 1, past the end */
    assert_int_equal(dns_response_patch(out, n, 1, 1), -1);
    assert_int_equal(out[0], 0x99);
}

static void test_response_negative(void **state)
{
    struct pkt p;
    struct dns_response_view r;
    const char *why = NULL;

    (void)state;
    /* NXDOMAIN with an SOA in the authority section: TTL 3600, MINIMUM 300 -> 300 */
    header(&p, 5, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | DNS_RCODE_NXDOMAIN, 1, 0, 1, 0);
    NAME(&p, "\4nope\7example");
    put16(&p, DNS_TYPE_A);
    put16(&p, DNS_CLASS_IN);
    put(&p, "\xc0\x11", 2); /* example */
    put16(&p, DNS_TYPE_SOA);
    put16(&p, DNS_CLASS_IN);
    put32(&p, 3600);
    put16(&p, 5 + 5 + 20);
    put(&p, "\2ns\xc0\x11", 5);
    put(&p, "\2hm\xc0\x11", 5);
    put32(&p, 1);
    put32(&p, 2);
    put32(&p, 3);
    put32(&p, 4);
    put32(&p, 300);
    parse_ok(p.b, p.len, &r);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);
    assert_string_equal(r.qname, "nope.example");
    assert_int_equal(r.min_ttl, 300);
    assert_int_equal(dns_response_patch(p.b, p.len, 6, 1000), 0);
    parse_ok(p.b, p.len, &r);
    assert_int_equal(r.min_ttl, 300); /* TTL 2600, MINIMUM is data, not a TTL */

    /* SOA rdata of the wrong length */
    p.b[p.len - 20 - 10 - 1] += 1;
    assert_int_equal(dns_parse_response(p.b, p.len, &r, &why), DNS_FORMERR);
}

static void test_response_malformed(void **state)
{
    struct pkt p;
    struct dns_response_view r;
    const char *why = NULL;
    int i;

    (void)state;
    /* a query is not a response */
    simple_query(&p, 0);
    assert_int_equal(dns_parse_response(p.b, p.len, &r, &why), DNS_FORMERR);
    assert_non_null(strstr(why, "not a response"));
    assert_int_equal(r.id, 0x1234);

    /* answer count says 1, no record */
    header(&p, 1, DNS_FLAG_QR, 1, 1, 0, 0);
    NAME(&p, "\1a");
    put16(&p, 1);
    put16(&p, 1);
    assert_int_equal(dns_parse_response(p.b, p.len, &r, &why), DNS_FORMERR);
    assert_non_null(strstr(why, "past the end"));

    /* 17 chained pointers: each name points at the one before it */
    header(&p, 1, DNS_FLAG_QR, 1, 18, 0, 0);
    NAME(&p, "\1a");
    put16(&p, 1);
    put16(&p, 1);
    {
        size_t prev = 12;

        for (i = 0; i < 18; i++) {
            size_t here = p.len;

            put16(&p, (uint16_t)(0xc000 | prev));
            put16(&p, DNS_TYPE_A);
            put16(&p, 1);
            put32(&p, 10);
            put16(&p, 4);
            put(&p, "\x7f\0\0\1", 4);
            prev = here;
        }
    }
    assert_int_equal(dns_parse_response(p.b, p.len, &r, &why), DNS_FORMERR);
    assert_non_null(strstr(why, "more than 16"));
    /* with 16 records (16 hops for the last) it parses */
    p.b[7] = 16;
    p.len -= 2 * 16;
    parse_ok(p.b, p.len, &r);
    assert_int_equal(r.ancount, 16);

    /* trailing garbage */
    put(&p, "\0", 1);
    assert_int_equal(dns_parse_response(p.b, p.len, &r, &why), DNS_FORMERR);
    assert_non_null(strstr(why, "trailing"));
    assert_int_equal(dns_response_patch(p.b, p.len, 1, 1), -1);

    /* a pointer into a TTL: not a name, and patching TTLs would change what it says */
    header(&p, 1, DNS_FLAG_QR, 1, 2, 0, 0);
    NAME(&p, "\1a");
    put16(&p, 1);
    put16(&p, 1);
    put(&p, "\xc0\x0c", 2); /* record at 19: TTL at 25 */
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    put(&p, "\1b\0\0", 4);
    put16(&p, 4);
    put(&p, "\x7f\0\0\1", 4);
    put(&p, "\xc0\x19", 2);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    put32(&p, 5);
    put16(&p, 4);
    put(&p, "\x7f\0\0\1", 4);
    assert_int_equal(dns_parse_response(p.b, p.len, &r, &why), DNS_FORMERR);
    assert_non_null(strstr(why, "not a name"));
    assert_int_equal(dns_response_patch(p.b, p.len, 2, 100), -1);
    /* pointing at the root label that ends the question is fine */
    p.b[p.len - 16 + 1] = 14;
    parse_ok(p.b, p.len, &r);

    /* a CNAME whose target does not fill its rdata */
    header(&p, 1, DNS_FLAG_QR, 1, 1, 0, 0);
    NAME(&p, "\1a");
    put16(&p, 1);
    put16(&p, 1);
    put(&p, "\xc0\x0c", 2);
    put16(&p, DNS_TYPE_CNAME);
    put16(&p, 1);
    put32(&p, 5);
    put16(&p, 4);
    put(&p, "\1b\0x", 4);
    assert_int_equal(dns_parse_response(p.b, p.len, &r, &why), DNS_FORMERR);
    assert_non_null(strstr(why, "wrong length"));

    /* OPT in the answer section */
    header(&p, 1, DNS_FLAG_QR, 1, 1, 0, 0);
    NAME(&p, "\1a");
    put16(&p, 1);
    put16(&p, 1);
    opt(&p, 512, 0, 0);
    assert_int_equal(dns_parse_response(p.b, p.len, &r, &why), DNS_FORMERR);
    assert_non_null(strstr(why, "OPT"));
}

/* ---- answers made from upstream responses ---- */

static uint32_t get32_at(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint16_t get16_at(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

/*
 * An upstream answer for www.example.com/A, as a resolver sends it (lower case, its own id, AA
 * and AD set): www.example.com CNAME cdn.example.net (TTL 300), cdn.example.net CNAME
 * edge.cdn.example.net (200), edge.cdn.example.net A 127.0.0.1 (100); with extra, also an MX
 * and an AAAA record for edge (TTL 50) in the answer section; with upstream_opt an OPT record
 * (4096, DO) last. ttl[] gets the offsets of the TTL fields of the records.
 */
static void chain_response(struct pkt *p, int extra, int upstream_opt, size_t *ttl)
{
    size_t target, edge, n = 0;

    header(p, 0x7777, DNS_FLAG_QR | DNS_FLAG_AA | DNS_FLAG_RD | DNS_FLAG_RA | DNS_FLAG_AD, 1,
           extra ? 5 : 3, 0, upstream_opt ? 1 : 0);
    NAME(p, "\3www\7example\3com");
    put16(p, DNS_TYPE_A);
    put16(p, DNS_CLASS_IN);

    put(p, "\xc0\x0c", 2);
    put16(p, DNS_TYPE_CNAME);
    put16(p, DNS_CLASS_IN);
    ttl[n++] = p->len;
    put32(p, 300);
    put16(p, 17);
    target = p->len;
    NAME(p, "\3cdn\7example\3net");

    put16(p, (uint16_t)(0xc000 | target));
    put16(p, DNS_TYPE_CNAME);
    put16(p, DNS_CLASS_IN);
    ttl[n++] = p->len;
    put32(p, 200);
    put16(p, 7);
    edge = p->len;
    put(p, "\4EDGE", 5); /* upstream case is not ours to change */
    put16(p, (uint16_t)(0xc000 | target));

    if (extra) {
        put16(p, (uint16_t)(0xc000 | edge));
        put16(p, DNS_TYPE_MX);
        put16(p, DNS_CLASS_IN);
        ttl[n++] = p->len;
        put32(p, 50);
        put16(p, 4);
        put(p, "\0\12\xc0\x0c", 4);
    }
    put16(p, (uint16_t)(0xc000 | edge));
    put16(p, DNS_TYPE_A);
    put16(p, DNS_CLASS_IN);
    ttl[n++] = p->len;
    put32(p, 100);
    put16(p, 4);
    put(p, "\x7f\0\0\1", 4);
    if (extra) {
        put16(p, (uint16_t)(0xc000 | edge));
        put16(p, DNS_TYPE_AAAA);
        put16(p, DNS_CLASS_IN);
        ttl[n++] = p->len;
        put32(p, 50);
        put16(p, 16);
        put(p, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
    }
    if (upstream_opt)
        opt(p, 4096, 0, 1);
}

/* Check the common parts of an answer made for the simple_query client. */
static void check_from_upstream(const uint8_t *out, size_t n, const struct dns_query *q,
                                struct dns_response_view *r)
{
    parse_ok(out, n, r);
    assert_int_equal(r->id, q->id);
    assert_string_equal(r->qname, "www.example.com");
    assert_int_equal(r->qtype, DNS_TYPE_A);
    /* the client's case in the question */
    assert_memory_equal(out + DNS_HEADER_LEN, q->wire, q->wire_len);
    assert_memory_equal(out + DNS_HEADER_LEN, "\3www\7Example\3COM", 17);
    assert_int_equal(r->flags & (DNS_FLAG_QR | DNS_FLAG_RA | DNS_FLAG_RD),
                     DNS_FLAG_QR | DNS_FLAG_RA | DNS_FLAG_RD);
    assert_int_equal(r->flags & (DNS_FLAG_AA | DNS_FLAG_AD), 0);
}

static void test_answer_response(void **state)
{
    struct pkt up, c;
    struct dns_query q;
    struct dns_response_view r;
    const char *why = NULL;
    uint8_t out[1024];
    size_t ttl[5], n;

    (void)state;
    /* a client without EDNS: the upstream's OPT is dropped */
    chain_response(&up, 0, 1, ttl);
    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 30, out, sizeof(out), q.udp_size);
    assert_int_equal(n, up.len - 11);
    check_from_upstream(out, n, &q, &r);
    assert_int_equal(r.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(r.ancount, 3);
    assert_int_equal(r.opt_len, 0);
    assert_int_equal(get16_at(out + 10), 0); /* ARCOUNT */
    assert_int_equal(get32_at(out + ttl[0]), 270);
    assert_int_equal(get32_at(out + ttl[1]), 170);
    assert_int_equal(get32_at(out + ttl[2]), 70);
    assert_int_equal(r.min_ttl, 70);
    /* the records are the upstream's, case and compression included */
    assert_memory_equal(out + 29, up.b + 29, ttl[0] - 29);
    assert_memory_equal(out + ttl[2] + 4, up.b + ttl[2] + 4, n - ttl[2] - 4);
    /* the upstream packet is not changed */
    assert_int_equal(get16_at(up.b), 0x7777);
    assert_int_equal(get32_at(up.b + ttl[0]), 300);

    /* aged past a TTL: 0, never below */
    n = dns_answer_response(&q, up.b, up.len, 250, out, sizeof(out), q.udp_size);
    check_from_upstream(out, n, &q, &r);
    assert_int_equal(get32_at(out + ttl[0]), 50);
    assert_int_equal(get32_at(out + ttl[1]), 0);
    assert_int_equal(get32_at(out + ttl[2]), 0);

    /* a client with EDNS (DO clear): our OPT replaces the upstream's */
    simple_query(&c, 1);
    opt(&c, 1400, 0, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), q.udp_size);
    assert_int_equal(n, up.len);
    check_from_upstream(out, n, &q, &r);
    assert_int_equal(r.ancount, 3);
    assert_int_equal(r.min_ttl, 100);
    assert_int_equal(get16_at(out + 10), 1);
    assert_int_equal(r.opt_len, 11);
    assert_int_equal(r.opt_off + 11, n);
    assert_memory_equal(out + n - 11, "\0\0\x29\x04\xd0\0\0\0\0\0\0", 11);

    /* the upstream sent no OPT, the client did (with DO): ours is added */
    chain_response(&up, 0, 0, ttl);
    simple_query(&c, 1);
    opt(&c, 4096, 0, 1);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), q.udp_size);
    assert_int_equal(n, up.len + 11);
    check_from_upstream(out, n, &q, &r);
    assert_int_equal(get16_at(out + 10), 1);
    assert_memory_equal(out + n - 11, "\0\0\x29\x04\xd0\0\0\x80\0\0\0", 11);

    /* neither: no OPT */
    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), q.udp_size);
    assert_int_equal(n, up.len);
    check_from_upstream(out, n, &q, &r);
    assert_int_equal(r.opt_len, 0);

    /* the client's CD is echoed, RD as the client sent it */
    simple_query(&c, 0);
    c.b[2] = 0;                  /* RD clear */
    c.b[3] = DNS_FLAG_CD & 0xff; /* CD set */
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), q.udp_size);
    parse_ok(out, n, &r);
    assert_true(r.flags & DNS_FLAG_CD);
    assert_false(r.flags & DNS_FLAG_RD);

    /* no room in out: 0 */
    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    assert_int_equal(dns_answer_response(&q, up.b, up.len, 0, out, up.len - 1, 0), 0);
}

static void test_answer_response_negative(void **state)
{
    struct pkt up, c;
    struct dns_query q;
    struct dns_response_view r;
    const char *why = NULL;
    uint8_t out[1024];
    size_t n, soa_ttl;

    (void)state;
    /* NXDOMAIN with an SOA: the rcode and the authority section are kept, TTL aged */
    header(&up, 5, DNS_FLAG_QR | DNS_FLAG_AA | DNS_FLAG_RD | DNS_FLAG_RA | DNS_RCODE_NXDOMAIN, 1, 0,
           1, 1);
    NAME(&up, "\3www\7example\3com");
    put16(&up, DNS_TYPE_A);
    put16(&up, DNS_CLASS_IN);
    put(&up, "\xc0\x10", 2); /* example.com */
    put16(&up, DNS_TYPE_SOA);
    put16(&up, DNS_CLASS_IN);
    soa_ttl = up.len;
    put32(&up, 3600);
    put16(&up, 5 + 5 + 20);
    put(&up, "\2ns\xc0\x10", 5);
    put(&up, "\2hm\xc0\x10", 5);
    put32(&up, 1);
    put32(&up, 2);
    put32(&up, 3);
    put32(&up, 4);
    put32(&up, 300);
    opt(&up, 1232, 0, 0);

    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 10, out, sizeof(out), q.udp_size);
    assert_int_equal(n, up.len - 11);
    check_from_upstream(out, n, &q, &r);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_equal(r.ancount, 0);
    assert_int_equal(get16_at(out + 8), 1); /* NSCOUNT */
    assert_int_equal(get32_at(out + soa_ttl), 3590);
    assert_int_equal(r.min_ttl, 300);
    assert_int_equal(get32_at(out + n - 4), 300); /* MINIMUM is data: not aged */

    /* with EDNS: still NXDOMAIN, with our OPT */
    simple_query(&c, 1);
    opt(&c, 1232, 0, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 10, out, sizeof(out), q.udp_size);
    check_from_upstream(out, n, &q, &r);
    assert_int_equal(r.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_equal(r.opt_len, 11);

    /* SERVFAIL without records */
    header(&up, 5, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | DNS_RCODE_SERVFAIL, 1, 0, 0, 0);
    NAME(&up, "\3www\7example\3com");
    put16(&up, DNS_TYPE_A);
    put16(&up, DNS_CLASS_IN);
    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), q.udp_size);
    assert_int_equal(n, up.len);
    check_from_upstream(out, n, &q, &r);
    assert_int_equal(r.rcode, DNS_RCODE_SERVFAIL);
}

static void test_answer_response_limit(void **state)
{
    struct pkt up, c;
    struct dns_query q;
    struct dns_response_view r;
    const char *why = NULL;
    uint8_t out[2048];
    size_t n;
    int i;

    (void)state;
    /* 30 A records: 12 + 21 + 30 * 16 = 513 bytes, one more than 512 */
    header(&up, 5, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, 30, 0, 0);
    NAME(&up, "\3www\7example\3com");
    put16(&up, DNS_TYPE_A);
    put16(&up, DNS_CLASS_IN);
    for (i = 0; i < 30; i++) {
        uint8_t ip[4] = {127, 0, 0, (uint8_t)(i + 1)};

        put(&up, "\xc0\x0c", 2);
        put16(&up, DNS_TYPE_A);
        put16(&up, DNS_CLASS_IN);
        put32(&up, 60);
        put16(&up, 4);
        put(&up, ip, 4);
    }
    assert_int_equal(up.len, 513);

    /* over the client's 512: TC, the question only */
    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), q.udp_size);
    assert_int_equal(n, c.len);
    parse_ok(out, n, &r);
    assert_int_equal(r.tc, 1);
    assert_int_equal(r.id, 0x1234);
    assert_string_equal(r.qname, "www.example.com");
    assert_int_equal(get16_at(out + 6), 0);
    assert_memory_equal(out + DNS_HEADER_LEN, "\3www\7Example\3COM", 17);

    /* over TCP (no limit): all of it */
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), 0);
    assert_int_equal(n, up.len);
    parse_ok(out, n, &r);
    assert_int_equal(r.tc, 0);
    assert_int_equal(r.ancount, 30);

    /* with EDNS 512 the OPT counts: TC, question and OPT; with 1232 it fits */
    simple_query(&c, 1);
    opt(&c, 512, 0, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), q.udp_size);
    assert_int_equal(n, c.len);
    parse_ok(out, n, &r);
    assert_int_equal(r.tc, 1);
    assert_int_equal(get16_at(out + 10), 1); /* a TC response is read only to its question */
    assert_memory_equal(out + n - 11, "\0\0\x29\x04\xd0\0\0\0\0\0\0", 11);
    simple_query(&c, 1);
    opt(&c, 1232, 0, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), q.udp_size);
    assert_int_equal(n, up.len + 11);
    parse_ok(out, n, &r);
    assert_int_equal(r.tc, 0);
    assert_int_equal(r.ancount, 30);

    /* a limit of exactly its size fits */
    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), up.len);
    assert_int_equal(n, up.len);
    parse_ok(out, n, &r);
    assert_int_equal(r.tc, 0);
}

static void test_answer_response_mismatch(void **state)
{
    struct pkt up, c;
    struct dns_query q;
    const char *why = NULL;
    uint8_t out[1024];
    size_t ttl[5];

    (void)state;
    chain_response(&up, 0, 0, ttl);

    /* a response for another name */
    header(&c, 1, DNS_FLAG_RD, 1, 0, 0, 0);
    NAME(&c, "\3www\7example\3org");
    put16(&c, DNS_TYPE_A);
    put16(&c, DNS_CLASS_IN);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    assert_int_equal(dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), 0), 0);
    header(&c, 1, DNS_FLAG_RD, 1, 0, 0, 0);
    NAME(&c, "\4wwww\7example\3com");
    put16(&c, DNS_TYPE_A);
    put16(&c, DNS_CLASS_IN);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    assert_int_equal(dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), 0), 0);

    /* for another type */
    simple_query(&c, 0);
    c.b[c.len - 3] = DNS_TYPE_AAAA;
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    assert_int_equal(dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), 0), 0);

    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    assert_int_not_equal(dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), 0), 0);

    /* a truncated upstream response is not an answer */
    up.b[2] |= DNS_FLAG_TC >> 8;
    assert_int_equal(dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), 0), 0);
    up.b[2] &= (uint8_t) ~(DNS_FLAG_TC >> 8);

    /* a response that does not parse */
    assert_int_equal(dns_answer_response(&q, up.b, up.len - 1, 0, out, sizeof(out), 0), 0);
    assert_int_equal(dns_answer_response(&q, c.b, c.len, 0, out, sizeof(out), 0), 0); /* a query */

    /* an OPT record that is not the last record cannot be cut out */
    up.b[11] = 2;
    opt(&up, 1232, 0, 0);
    put(&up, "\xc0\x0c", 2);
    put16(&up, DNS_TYPE_A);
    put16(&up, DNS_CLASS_IN);
    put32(&up, 10);
    put16(&up, 4);
    put(&up, "\x7f\0\0\1", 4);
    {
        struct dns_response_view r;

        parse_ok(up.b, up.len, &r); /* a valid response */
    }
    assert_int_equal(dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), 0), 0);
    simple_query(&c, 1);
    opt(&c, 1232, 0, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    assert_int_equal(dns_answer_response(&q, up.b, up.len, 0, out, sizeof(out), 0), 0);
}

static void test_response_addresses(void **state)
{
    struct pkt up, c;
    struct dns_rr rrs[8];
    char text[8 * 2 * (DNS_PRES_MAX + 1)];
    struct dns_query q;
    struct dns_response_view r;
    const char *why = NULL;
    uint8_t out[1024];
    size_t ttl[5], n;
    int k;

    (void)state;
    chain_response(&up, 1, 1, ttl);
    k = dns_response_addresses(up.b, up.len, rrs, 8, text, sizeof(text));
    assert_int_equal(k, 4); /* the MX is skipped */
    assert_string_equal(rrs[0].name, "www.example.com");
    assert_int_equal(rrs[0].type, DNS_TYPE_CNAME);
    assert_int_equal(rrs[0].ttl, 300);
    assert_int_equal(rrs[0].rdlen, 15);
    assert_memory_equal(rrs[0].rdata, "cdn.example.net", 15);
    assert_string_equal(rrs[1].name, "cdn.example.net");
    assert_int_equal(rrs[1].type, DNS_TYPE_CNAME);
    assert_int_equal(rrs[1].ttl, 200);
    assert_int_equal(rrs[1].rdlen, 20);
    assert_memory_equal(rrs[1].rdata, "edge.cdn.example.net", 20);
    assert_string_equal(rrs[2].name, "edge.cdn.example.net");
    assert_int_equal(rrs[2].type, DNS_TYPE_A);
    assert_int_equal(rrs[2].ttl, 100);
    assert_int_equal(rrs[2].rdlen, 4);
    assert_memory_equal(rrs[2].rdata, "\x7f\0\0\1", 4);
    assert_true(rrs[2].rdata >= up.b && rrs[2].rdata < up.b + up.len); /* into pkt */
    assert_string_equal(rrs[3].name, "edge.cdn.example.net");
    assert_int_equal(rrs[3].type, DNS_TYPE_AAAA);
    assert_int_equal(rrs[3].ttl, 50);
    assert_int_equal(rrs[3].rdlen, 16);
    assert_memory_equal(rrs[3].rdata, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);

    /* what it gives, dns_answer writes, and that parses back */
    simple_query(&c, 0);
    assert_int_equal(dns_parse_query(c.b, c.len, &q, &why), DNS_OK);
    n = dns_answer(&q, rrs, k, out, sizeof(out), 0);
    assert_int_not_equal(n, 0);
    parse_ok(out, n, &r);
    assert_int_equal(r.ancount, 4);
    assert_int_equal(r.min_ttl, 50);

    /* more records than max: -1; exactly max: fine */
    assert_int_equal(dns_response_addresses(up.b, up.len, rrs, 3, text, sizeof(text)), -1);
    assert_int_equal(dns_response_addresses(up.b, up.len, rrs, 4, text, sizeof(text)), 4);
    /* text too small for them: -1 */
    assert_int_equal(dns_response_addresses(up.b, up.len, rrs, 8, text, 2 * (DNS_PRES_MAX + 1)),
                     -1);

    /* malformed, truncated, or no answers */
    assert_int_equal(dns_response_addresses(up.b, up.len - 1, rrs, 8, text, sizeof(text)), -1);
    assert_int_equal(dns_response_addresses(c.b, c.len, rrs, 8, text, sizeof(text)), -1);
    up.b[2] |= DNS_FLAG_TC >> 8;
    assert_int_equal(dns_response_addresses(up.b, up.len, rrs, 8, text, sizeof(text)), -1);
    header(&up, 5, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 0, 0);
    NAME(&up, "\3www\7example\3com");
    put16(&up, DNS_TYPE_A);
    put16(&up, DNS_CLASS_IN);
    assert_int_equal(dns_response_addresses(up.b, up.len, rrs, 8, text, sizeof(text)), 0);

    /* a record in the additional section is not an answer */
    header(&up, 5, DNS_FLAG_QR, 1, 0, 0, 1);
    NAME(&up, "\2ns\7example\3com");
    put16(&up, DNS_TYPE_A);
    put16(&up, DNS_CLASS_IN);
    put(&up, "\xc0\x0c", 2);
    put16(&up, DNS_TYPE_A);
    put16(&up, DNS_CLASS_IN);
    put32(&up, 10);
    put16(&up, 4);
    put(&up, "\x7f\0\0\1", 4);
    parse_ok(up.b, up.len, &r);
    assert_int_equal(dns_response_addresses(up.b, up.len, rrs, 8, text, sizeof(text)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_simple),
        cmocka_unit_test(test_parse_edns),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_escaped_labels),
        cmocka_unit_test(test_name_to_wire),
        cmocka_unit_test(test_query_round_trip),
        cmocka_unit_test(test_answer_rcode),
        cmocka_unit_test(test_answer_compression),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_ttl_patch),
        cmocka_unit_test(test_response_negative),
        cmocka_unit_test(test_response_malformed),
        cmocka_unit_test(test_answer_response),
        cmocka_unit_test(test_answer_response_negative),
        cmocka_unit_test(test_answer_response_limit),
        cmocka_unit_test(test_answer_response_mismatch),
        cmocka_unit_test(test_response_addresses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
