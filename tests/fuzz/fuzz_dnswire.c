/* Fuzz the DNS wire format: arbitrary bytes as a query, as a response, and patched as a cached
 * response. Nothing may crash; every rejection names its reason; an accepted query must give
 * answers that parse back as responses to the same id and question, and its presentation name
 * must encode back to the same wire name. An accepted (not truncated) response must give
 * address records dns_answer can write (dns_response_addresses), and answers made from it for
 * a query of its own name and type (dns_answer_response) must parse as answers to that query. */
#include "common/compat.h"

#include "dns/wire.h"

/* The records dns_response_addresses gives must be ones dns_answer can write. */
static void check_addresses(const uint8_t *data, size_t size, const struct dns_response_view *r)
{
    static struct dns_rr rrs[64];
    static char text[64 * 2 * (DNS_PRES_MAX + 1)];
    static uint8_t pkt[512], out[65536];
    struct dns_query q;
    struct dns_response_view r2;
    const char *why = NULL;
    int k, i;
    size_t n;

    k = dns_response_addresses(data, size, rrs, 64, text, sizeof(text));
    if (k < -1 || k > 64)
        abort();
    if (k < 0) {
        /* only when there are more than 64 of them: count the answers at least */
        if (r->ancount <= 64)
            abort();
        return;
    }
    if (k > r->ancount)
        abort();
    for (i = 0; i < k; i++) {
        uint8_t wire[DNS_NAME_MAX];
        char target[DNS_PRES_MAX + 1];

        if (dns_name_to_wire(rrs[i].name, wire, sizeof(wire)) < 0)
            abort();
        switch (rrs[i].type) {
        case DNS_TYPE_A:
            if (rrs[i].rdlen != 4 || rrs[i].rdata < data || rrs[i].rdata + 4 > data + size)
                abort();
            break;
        case DNS_TYPE_AAAA:
            if (rrs[i].rdlen != 16 || rrs[i].rdata < data || rrs[i].rdata + 16 > data + size)
                abort();
            break;
        case DNS_TYPE_CNAME:
            if (rrs[i].rdlen > DNS_PRES_MAX)
                abort();
            memcpy(target, rrs[i].rdata, rrs[i].rdlen);
            target[rrs[i].rdlen] = '\0';
            if (dns_name_to_wire(target, wire, sizeof(wire)) < 0)
                abort();
            break;
        default:
            abort();
        }
        if (rrs[i].ttl > 0x7fffffffu)
            abort();
    }
    /* and dns_answer writes them, for a query of the response's own name and type */
    n = dns_build_query(1, r->qname, r->qtype, 1, 0, pkt, sizeof(pkt));
    if (n == 0 || dns_parse_query(pkt, n, &q, &why) != DNS_OK)
        abort();
    n = dns_answer(&q, rrs, k, out, sizeof(out), 0);
    if (n == 0 || dns_parse_response(out, n, &r2, &why) != DNS_OK)
        abort();
    if (r2.ancount != k)
        abort();
}

/* Answers made from the response for a query of its own name and type, with and without EDNS,
 * over UDP (the client's limit) and TCP (none). */
static void check_answer_response(const uint8_t *data, size_t size,
                                  const struct dns_response_view *r)
{
    static uint8_t pkt[512], out[8192];
    /* the answers dns_answer_response refuses: an OPT it cannot cut out, a class not IN */
    int refused = (r->opt_len > 0 && r->opt_off + r->opt_len != size) || r->qclass != DNS_CLASS_IN;

    for (int edns = 0; edns < 2; edns++) {
        struct dns_query q;
        const char *why = NULL;
        size_t n =
            dns_build_query(0x4242, r->qname, r->qtype, 1, edns ? 1232 : 0, pkt, sizeof(pkt));

        if (n == 0 || dns_parse_query(pkt, n, &q, &why) != DNS_OK)
            abort();
        for (int tcp = 0; tcp < 2; tcp++) {
            struct dns_response_view a;
            size_t limit = tcp ? 0 : q.udp_size;

            n = dns_answer_response(&q, data, size, 100, out, sizeof(out), limit);
            if (n == 0) {
                /* out holds any answer to a 4096-byte response */
                if (!refused)
                    abort();
                continue;
            }
            if (refused)
                abort();
            if (limit > 0 && n > limit)
                abort();
            if (dns_parse_response(out, n, &a, &why) != DNS_OK)
                abort();
            if (a.id != q.id || a.qtype != q.qtype || strcmp(a.qname, q.name) != 0)
                abort();
            if (a.rcode != (r->rcode & 0xf))
                abort();
            if (a.flags & (DNS_FLAG_AA | DNS_FLAG_AD))
                abort();
            /* the question as the client wrote it, class IN */
            if (memcmp(out + DNS_HEADER_LEN, q.wire, q.wire_len) != 0)
                abort();
            if (out[DNS_HEADER_LEN + q.wire_len + 2] != 0 ||
                out[DNS_HEADER_LEN + q.wire_len + 3] != DNS_CLASS_IN)
                abort();
            if (!a.tc) {
                if (a.ancount != r->ancount || (a.opt_len > 0) != edns)
                    abort();
            } else if (tcp) {
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_name(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int x = a[i], y = b[i];

        if (x >= 'A' && x <= 'Z')
            x += 'a' - 'A';
        if (y >= 'A' && y <= 'Z')
            y += 'a' - 'A';
        if (x != y)
            return 0;
    }
    return 1;
}

static void check_answer(const struct dns_query *q, const uint8_t *out, size_t n, int rcode)
{
    struct dns_response_view r;
    const char *why = NULL;

    if (n == 0)
        abort(); /* 4096 bytes always hold an answer to a query that fitted in 4096 */
    if (dns_parse_response(out, n, &r, &why) != DNS_OK)
        abort();
    if (r.id != q->id || r.qtype != q->qtype || strcmp(r.qname, q->name) != 0)
        abort();
    if (r.rcode != rcode)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t copy[4096], out[4096];
    struct dns_query q;
    struct dns_response_view r, r2;
    const char *why = NULL;
    enum dns_parse rc;

    if (size > sizeof(copy))
        return 0;

    rc = dns_parse_query(data, size, &q, &why);
    if (rc != DNS_OK && (!why || !*why))
        abort();
    if (q.wire_len > 0) {
        uint8_t wire[DNS_NAME_MAX];
        int wl = dns_name_to_wire(q.name, wire, sizeof(wire));

        /* the text form names exactly the wire name (no aliasing through escapes) */
        if (wl < 0 || (size_t)wl != q.wire_len || !same_name(wire, q.wire, q.wire_len))
            abort();
    }
    if (rc == DNS_OK) {
        static const uint8_t ip4[4] = {127, 0, 0, 1};
        struct dns_rr rr = {NULL, DNS_TYPE_A, 60, ip4, 4};
        struct dns_rr cn[2] = {
            {NULL, DNS_TYPE_CNAME, 30, (const uint8_t *)"safe.example", 12},
            {"safe.example", DNS_TYPE_A, 30, ip4, 4},
        };
        size_t n;

        n = dns_answer_rcode(&q, DNS_RCODE_NXDOMAIN, out, sizeof(out));
        check_answer(&q, out, n, DNS_RCODE_NXDOMAIN);
        n = dns_answer(&q, &rr, 1, out, sizeof(out), q.udp_size);
        check_answer(&q, out, n, DNS_RCODE_NOERROR);
        n = dns_answer(&q, cn, 2, out, sizeof(out), q.udp_size);
        check_answer(&q, out, n, DNS_RCODE_NOERROR);
        if (dns_response_patch(out, n, (uint16_t)(q.id + 1), 10) != 0)
            abort();
    } else if (rc == DNS_BADVERS) {
        size_t n = dns_answer_rcode(&q, DNS_RCODE_BADVERS, out, sizeof(out));

        check_answer(&q, out, n, DNS_RCODE_BADVERS);
    } else if (rc != DNS_DROP) {
        if (dns_answer_rcode(&q, rc == DNS_NOTIMP ? DNS_RCODE_NOTIMP : DNS_RCODE_FORMERR, out,
                             sizeof(out)) == 0)
            abort();
    }

    rc = dns_parse_response(data, size, &r, &why);
    if (rc != DNS_OK && (!why || !*why))
        abort();
    if (rc == DNS_OK && !r.tc) {
        check_addresses(data, size, &r);
        check_answer_response(data, size, &r);
    } else if (dns_answer_response(&q, data, size, 0, out, sizeof(out), 0) != 0 ||
               dns_response_addresses(data, size, NULL, 0, NULL, 0) != -1) {
        abort(); /* neither takes what dns_parse_response rejects, nor a TC response */
    }
    memcpy(copy, data, size);
    if (dns_response_patch(copy, size, 0xabcd, 3600) == 0) {
        if (rc != DNS_OK)
            abort();
        if (dns_parse_response(copy, size, &r2, &why) != DNS_OK)
            abort();
        if (r2.id != 0xabcd || strcmp(r2.qname, r.qname) != 0 || r2.ancount != r.ancount ||
            r2.rcode != r.rcode)
            abort();
    } else {
        if (rc == DNS_OK || memcmp(copy, data, size) != 0)
            abort();
    }
    return 0;
}
