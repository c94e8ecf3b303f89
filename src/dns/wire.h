/*
 * wire.h -- DNS wire format for the DNS filter: parse queries, build answers, build upstream
 * queries and read upstream responses (RFC 1035 4.1, RFC 6891 EDNS0, RFC 2308 negative TTLs).
 *
 * This is the hot path of the DNS listener, so nothing here allocates: every function works on
 * the caller's buffers and on fixed-size structures the caller provides (a struct dns_query
 * lives on the worker's stack). Packets are never read past their length and never written by
 * the parsers (dns_response_patch writes, by design, into the packet it is given).
 *
 * Query rules (dns_parse_query), in the order they are checked:
 *  - shorter than the 12-byte header, or QR set (a response): DNS_DROP, no answer is sent;
 *  - opcode other than QUERY (NOTIFY, UPDATE, ...): DNS_NOTIMP, without a question;
 *  - QDCOUNT must be 1, ANCOUNT and NSCOUNT 0: otherwise DNS_FORMERR;
 *  - the name: labels of 1-63 bytes, at most 255 bytes on the wire; compression pointers may
 *    only point backwards, before the name segment that holds them, never into the header,
 *    only at a label of a name already read (not into a TTL or opaque rdata), and at most 16
 *    are followed. Label types 0x40 and 0x80 are rejected;
 *  - class other than IN: DNS_NOTIMP (the question is parsed, so the answer echoes it);
 *  - the additional section may hold one OPT record (owner the root, well-formed options);
 *    a second OPT or any other record is DNS_FORMERR; EDNS version above 0 is DNS_BADVERS
 *    (the question and the EDNS fields are filled, so dns_answer_rcode can say BADVERS);
 *  - bytes after the last record: DNS_FORMERR.
 * On every error *why is a static English sentence naming the problem.
 *
 * Names in presentation form are lower-case, without the final dot ("" for the root). Bytes of
 * a label that are '.', '\\', or outside printable ASCII (0x21-0x7e) are escaped ("\\." for a
 * dot, "\\\\" for a backslash, "\\DDD" otherwise), so two different names never share one
 * presentation form and a policy lookup on the text cannot be fooled by a dot inside a label.
 * Escaping can make the text longer than 255 bytes: DNS_PRES_MAX is the longest possible.
 */
#ifndef HAVEN_DNS_WIRE_H
#define HAVEN_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 255  /* wire length of a name */
#define DNS_PRES_MAX 1003 /* presentation length of a name: four labels of \DDD escapes */
#define DNS_HEADER_LEN 12
#define DNS_UDP_DEFAULT 512 /* UDP payload without EDNS */
#define DNS_UDP_OUR 1232    /* the payload size we advertise in our OPT records */
#define DNS_MAX_POINTERS 16 /* compression pointers followed in one name */

/* Header flag bits (in host order, as in struct dns_query.flags). */
#define DNS_FLAG_QR 0x8000
#define DNS_FLAG_AA 0x0400
#define DNS_FLAG_TC 0x0200
#define DNS_FLAG_RD 0x0100
#define DNS_FLAG_RA 0x0080
#define DNS_FLAG_AD 0x0020
#define DNS_FLAG_CD 0x0010

enum dns_rcode {
    DNS_RCODE_NOERROR = 0,
    DNS_RCODE_FORMERR = 1,
    DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP = 4,
    DNS_RCODE_REFUSED = 5,
    DNS_RCODE_BADVERS = 16, /* extended: only expressible with an OPT record */
};

enum dns_type {
    DNS_TYPE_A = 1,
    DNS_TYPE_NS = 2,
    DNS_TYPE_CNAME = 5,
    DNS_TYPE_SOA = 6,
    DNS_TYPE_PTR = 12,
    DNS_TYPE_MX = 15,
    DNS_TYPE_TXT = 16,
    DNS_TYPE_AAAA = 28,
    DNS_TYPE_SRV = 33,
    DNS_TYPE_DNAME = 39,
    DNS_TYPE_OPT = 41,
    DNS_TYPE_HTTPS = 65,
    DNS_TYPE_ANY = 255,
};

#define DNS_CLASS_IN 1

/* A parsed query. Filled as far as parsing got: id and flags whenever the header was read;
 * the question when question_end is not 0. */
struct dns_query {
    uint16_t id, flags;          /* header id and flags as received */
    char name[DNS_PRES_MAX + 1]; /* lower-case presentation form, NUL-terminated */
    size_t name_len;             /* strlen(name) */
    uint8_t wire[DNS_NAME_MAX];  /* the name on the wire, decompressed, case as received */
    size_t wire_len;             /* bytes in wire, including the root label; 0: no question */
    uint16_t qtype, qclass;
    int edns;          /* an OPT record was present (and parsed) */
    uint16_t udp_size; /* its payload size (512 without EDNS, at least 512) */
    int do_bit;        /* DNSSEC OK */
    uint8_t edns_version;
    size_t question_end; /* offset just past the question in the packet; 0: none */
};

enum dns_parse {
    DNS_OK = 0,
    DNS_DROP = -1,    /* not worth an answer: too short for a header, a response (QR set) */
    DNS_FORMERR = -2, /* malformed */
    DNS_NOTIMP = -3,  /* opcode other than QUERY, class other than IN */
    DNS_BADVERS = -4, /* EDNS version > 0 */
};

/* Parse a query packet (rules above). q is always left consistent: on error, what was not
 * parsed is empty. *why is set on every error (static string), untouched on DNS_OK. */
enum dns_parse dns_parse_query(const uint8_t *pkt, size_t len, struct dns_query *q,
                               const char **why);

/*
 * Answers are written into out (cap bytes); each returns the length written, or 0 if it does
 * not fit or the arguments are invalid. Each copies the id, opcode, RD and CD and the question
 * (the name with the client's case) from q, sets QR and RA, and adds an OPT record advertising
 * DNS_UDP_OUR when q->edns (echoing the DO bit, RFC 3225).
 */

/* An answer with no records and this rcode (enum dns_rcode): NXDOMAIN, REFUSED, SERVFAIL,
 * FORMERR, NOTIMP, or NOERROR (an empty answer, NODATA). With no parsed question (FORMERR on a
 * broken name, NOTIMP on an opcode) it is the header alone, echoing the id. BADVERS needs
 * q->edns (the high bits go in the OPT record); without it the result is 0. */
size_t dns_answer_rcode(const struct dns_query *q, int rcode, uint8_t *out, size_t cap);

/* One answer record. name: presentation form, or NULL for the question's name. rdata: for A
 * 4 bytes, AAAA 16, CNAME a presentation name of rdlen characters (not NUL-terminated; the
 * builder encodes it with compression); any other type is copied as it is. Class IN. */
struct dns_rr {
    const char *name;
    uint16_t type;
    uint32_t ttl;
    const uint8_t *rdata;
    uint16_t rdlen;
};

/* NOERROR with n answer records, names compressed against the question and earlier names.
 * limit is the largest packet the client takes (q->udp_size over UDP, 0 for no limit beyond
 * cap, as over TCP): if the records would pass it, the answer carries TC and only the question
 * (and OPT), and the client retries over TCP. Returns 0 on an invalid record (bad name, A
 * rdata not 4 bytes, AAAA not 16) or when even that does not fit in cap. */
size_t dns_answer(const struct dns_query *q, const struct dns_rr *rrs, int n, uint8_t *out,
                  size_t cap, size_t limit);

/* A query for a forwarder: id, the presentation name, qtype, class IN, RD if rd, an OPT record
 * advertising edns_udp bytes when edns_udp > 0. Returns the length, or 0 (bad name, no room). */
size_t dns_build_query(uint16_t id, const char *name, uint16_t qtype, int rd, int edns_udp,
                       uint8_t *out, size_t cap);

/* What a forwarder needs from an upstream response to cache it and follow CNAMEs. */
struct dns_response_view {
    uint16_t id, flags;
    int rcode; /* including the extended bits from an OPT record */
    int tc;    /* truncated: only the header and question were read */
    uint16_t qtype, qclass;
    char qname[DNS_PRES_MAX + 1]; /* presentation form, as in struct dns_query */
    int ancount;
    /* smallest TTL of the answer records; for NXDOMAIN or an empty answer also the SOA
     * negative TTL, min(SOA TTL, SOA MINIMUM) (RFC 2308); 0 when there is neither. TTLs with
     * the top bit set count as 0 (RFC 2181 8). */
    uint32_t min_ttl;
    size_t opt_off, opt_len; /* where the OPT record is (opt_len 0: none) */
};

/* Parse a response: QR set, QDCOUNT 1, every record within the packet, names as in queries,
 * at most one OPT (in the additional section, owner the root), nothing after the last record.
 * The names inside NS, CNAME, PTR, DNAME, MX, SRV and SOA data are checked too and must fill
 * the data exactly; other types' data is opaque.
 * A truncated (TC) response is read only up to its question. id, flags, rcode and tc are
 * filled as soon as the header is read, even when the rest fails. */
enum dns_parse dns_parse_response(const uint8_t *pkt, size_t len, struct dns_response_view *r,
                                  const char **why);

/* Rewrite the id of a cached response in place and lower every TTL by age seconds, in all
 * sections (never below 0; the OPT record's TTL field holds flags and is left alone; a TC
 * response gets its id only). Names cannot point into TTLs (see the pointer rule above), so
 * patching never changes a name. Returns
 * 0, or -1 (packet untouched) if it does not parse as by dns_parse_response. */
int dns_response_patch(uint8_t *pkt, size_t len, uint16_t id, uint32_t age);

/*
 * The answer to q made from an upstream response pkt (as dns_parse_response accepts, not
 * truncated, for q's name, type and class), aged by age seconds (TTLs lowered): q's id, RD and CD
 * and the question's case as the client wrote it; AA and AD cleared; the upstream's OPT record
 * replaced by ours when q->edns, dropped otherwise. Over limit (as for dns_answer) the answer
 * is the header and question with TC. Returns the length, or 0 (does not fit, or pkt does not
 * match q, or its OPT record is not the last one).
 */
size_t dns_answer_response(const struct dns_query *q, const uint8_t *pkt, size_t len, uint32_t age,
                           uint8_t *out, size_t cap, size_t limit);

/*
 * The A, AAAA and CNAME records of class IN of the answer section of an upstream response (as
 * dns_parse_response accepts, not truncated), as records dns_answer can write (an A or AAAA
 * record whose data is not 4 or 16 bytes is left out): owner names
 * and CNAME targets in presentation form in text (text_cap bytes; 2 * (DNS_PRES_MAX + 1) per
 * record is always enough), A and AAAA data pointing into pkt. Returns how many (at most max),
 * or -1 (malformed, or more than fit).
 */
int dns_response_addresses(const uint8_t *pkt, size_t len, struct dns_rr *rrs, int max, char *text,
                           size_t text_cap);

/* Presentation ("www.example.com", trailing dot optional, "" or "." for the root, \DDD and \X
 * escapes) to wire form. Returns the wire length or -1 (empty label, label over 63 bytes, name
 * over 255, bad escape, no room in cap). Case is kept. */
int dns_name_to_wire(const char *name, uint8_t *out, size_t cap);

/* The presentation form (as in struct dns_query) of a wire name that is known to be valid
 * (from this module); out must hold DNS_PRES_MAX + 1 bytes. Returns strlen(out). */
size_t dns_name_to_text(const uint8_t *wire, char *out);

#endif
