/* Fuzz the DNS wire format: arbitrary bytes as a query, as a response, and patched as a cached
 * response. Nothing may crash; every rejection names its reason; an accepted query must give
 * answers that parse back as responses to the same id and question, and its presentation name
 * must encode back to the same wire name. */
#include "common/compat.h"

#include "dns/wire.h"

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
