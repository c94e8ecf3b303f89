/*
 * wire.c -- DNS wire format (see wire.h for the rules).
 *
 * DESIGN. Reading is done by one name reader (name_read) and one record walker (msg_walk) that
 * both the query parser and the response parser use, so every name in every packet passes the
 * same checks. Compression pointers must point strictly before the start of the name segment
 * that holds them: the sequence of positions then decreases at every jump, so a loop cannot
 * exist whatever the packet says, and the hop cap (16) bounds the work on top of that.
 *
 * Writing goes through struct wr, a cursor over the caller's buffer with a sticky failure
 * flag, so a builder writes everything and checks once at the end. Name compression keeps a
 * small table of the offsets of labels already written (question first) and, for each suffix
 * of a new name, looks for an equal name at one of those offsets; our own output is trusted,
 * so that comparison follows pointers without checks.
 */
#include "common/compat.h"

#include "dns/wire.h"

#define COMP_MAX 64      /* label offsets remembered for compression */
#define PTR_SPACE 0x4000 /* a compression pointer reaches the first 16 KiB */

/*
 * Where labels start, for the packet being read: a compression pointer must land on a label
 * that a name already read began with or contained. Without this a pointer could aim into a
 * TTL or into opaque record data, and dns_response_patch, which rewrites TTLs, would change
 * what such a name says. Only the first bytes up to the packet length are cleared per packet.
 */
struct starts {
    uint8_t bits[PTR_SPACE / 8];
};

static void starts_init(struct starts *st, size_t len)
{
    size_t n = len < PTR_SPACE ? len : PTR_SPACE;

    memset(st->bits, 0, (n + 7) / 8);
}

static void starts_mark(struct starts *st, size_t off)
{
    if (off < PTR_SPACE)
        st->bits[off / 8] |= (uint8_t)(1u << (off % 8));
}

static int starts_has(const struct starts *st, size_t off)
{
    return (st->bits[off / 8] >> (off % 8)) & 1;
}

static int lower(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 'a';
    return c;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- reading ---- */

/*
 * Read the name at *off. When wire is not NULL the decompressed name (DNS_NAME_MAX bytes at
 * most) goes there and its length in *wire_len. *off moves just past the name as it sits in
 * the packet (past the first pointer, if any). Returns 0 or -1 with *why.
 */
static int name_read(const uint8_t *pkt, size_t len, struct starts *st, size_t *off, uint8_t *wire,
                     size_t *wire_len, const char **why)
{
    size_t pos = *off, seg = *off, end = 0, total = 0;
    int hops = 0, jumped = 0;

    for (;;) {
        uint8_t c;

        if (pos >= len) {
            *why = "name runs past the end of the packet";
            return -1;
        }
        c = pkt[pos];
        if ((c & 0xc0) != 0x40 && (c & 0xc0) != 0x80)
            starts_mark(st, pos);
        if ((c & 0xc0) == 0xc0) {
            size_t target;

            if (pos + 1 >= len) {
                *why = "compression pointer cut off by the end of the packet";
                return -1;
            }
            target = ((size_t)(c & 0x3f) << 8) | pkt[pos + 1];
            if (target < DNS_HEADER_LEN) {
                *why = "compression pointer into the header";
                return -1;
            }
            if (target > pos) {
                *why = "compression pointer points forward";
                return -1;
            }
            if (target >= seg) {
                *why = "compression pointer loop";
                return -1;
            }
            if (!starts_has(st, target)) {
                *why = "compression pointer to something that is not a name";
                return -1;
            }
            if (++hops > DNS_MAX_POINTERS) {
                *why = "more than 16 compression pointers in a name";
                return -1;
            }
            if (!jumped) {
                end = pos + 2;
                jumped = 1;
            }
            pos = target;
            seg = target;
            continue;
        }
        if (c & 0xc0) {
            *why = "label length over 63 (reserved label type 0x40/0x80)";
            return -1;
        }
        if (total + 1 + c > DNS_NAME_MAX) {
            *why = "name longer than 255 bytes";
            return -1;
        }
        if (c == 0) {
            if (wire)
                wire[total] = 0;
            total++;
            if (!jumped)
                end = pos + 1;
            break;
        }
        if (pos + 1 + c > len) {
            *why = "label runs past the end of the packet";
            return -1;
        }
        if (wire)
            memcpy(wire + total, pkt + pos, (size_t)c + 1);
        total += (size_t)c + 1;
        pos += (size_t)c + 1;
    }
    if (wire_len)
        *wire_len = total;
    *off = end;
    return 0;
}

size_t dns_name_to_text(const uint8_t *wire, char *out)
{
    size_t n = 0, i = 0;

    while (wire[i] != 0) {
        size_t lab = wire[i], j;

        if (n > 0)
            out[n++] = '.';
        for (j = 1; j <= lab; j++) {
            uint8_t b = wire[i + j];

            if (b == '.' || b == '\\') {
                out[n++] = '\\';
                out[n++] = (char)b;
            } else if (b >= 0x21 && b <= 0x7e) {
                out[n++] = (char)lower(b);
            } else {
                out[n++] = '\\';
                out[n++] = (char)('0' + b / 100);
                out[n++] = (char)('0' + b / 10 % 10);
                out[n++] = (char)('0' + b % 10);
            }
        }
        i += lab + 1;
    }
    out[n] = '\0';
    return n;
}

/* Walk one record at *off: its owner name, fixed fields and rdata must lie in the packet.
 * Fills the fields the callers need; *ttl_off is the offset of the TTL field. */
struct rr_info {
    size_t name_off, wire_len, ttl_off, rdata_off;
    uint16_t type, class, rdlen;
    uint32_t ttl;
};

static int rr_read(const uint8_t *pkt, size_t len, struct starts *st, size_t *off,
                   struct rr_info *rr, const char **why)
{
    size_t p = *off;

    rr->name_off = p;
    if (name_read(pkt, len, st, &p, NULL, &rr->wire_len, why) < 0)
        return -1;
    if (len - p < 10) {
        *why = "record cut off by the end of the packet";
        return -1;
    }
    rr->type = get16(pkt + p);
    rr->class = get16(pkt + p + 2);
    rr->ttl_off = p + 4;
    rr->ttl = get32(pkt + p + 4);
    rr->rdlen = get16(pkt + p + 8);
    p += 10;
    if (len - p < rr->rdlen) {
        *why = "record data runs past the end of the packet";
        return -1;
    }
    rr->rdata_off = p;
    *off = p + rr->rdlen;
    return 0;
}

/*
 * Read the names inside the rdata of the types whose names may be compressed or be targets of
 * compression (RFC 3597 4: NS, CNAME, PTR, MX, SOA; and DNAME, SRV), so that their labels
 * count as places a pointer may land, and check that they fill the rdata exactly. For SOA,
 * *soa_fixed is the offset of its five 32-bit fields.
 */
static int rdata_names(const uint8_t *pkt, struct starts *st, const struct rr_info *rr,
                       size_t *soa_fixed, const char **why)
{
    size_t p = rr->rdata_off, end = rr->rdata_off + rr->rdlen, tail = 0;
    int names = 1;

    switch (rr->type) {
    case DNS_TYPE_NS:
    case DNS_TYPE_CNAME:
    case DNS_TYPE_PTR:
    case DNS_TYPE_DNAME:
        break;
    case DNS_TYPE_MX:
        p += 2;
        break;
    case DNS_TYPE_SRV:
        p += 6;
        break;
    case DNS_TYPE_SOA:
        names = 2;
        tail = 20;
        break;
    default:
        return 0;
    }
    if (p > end) {
        *why = "record data too short for its type";
        return -1;
    }
    while (names-- > 0) {
        /* a name in rdata must end inside the rdata */
        if (name_read(pkt, end, st, &p, NULL, NULL, why) < 0)
            return -1;
    }
    if (p + tail != end) {
        *why = "record data of the wrong length for its type";
        return -1;
    }
    *soa_fixed = p;
    return 0;
}

/* EDNS options are TLVs that must exactly fill the rdata (RFC 6891 6.1.2). */
static int opt_check(const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t olen;

        if (n < 4)
            return -1;
        olen = get16(p + 2);
        if (n - 4 < olen)
            return -1;
        p += 4 + olen;
        n -= 4 + olen;
    }
    return 0;
}

/* Read the question at *off into wire form and type/class. */
static int question_read(const uint8_t *pkt, size_t len, struct starts *st, size_t *off,
                         uint8_t *wire, size_t *wire_len, uint16_t *qtype, uint16_t *qclass,
                         const char **why)
{
    if (name_read(pkt, len, st, off, wire, wire_len, why) < 0)
        return -1;
    if (len - *off < 4) {
        *why = "question cut off before its type and class";
        return -1;
    }
    *qtype = get16(pkt + *off);
    *qclass = get16(pkt + *off + 2);
    *off += 4;
    return 0;
}

enum dns_parse dns_parse_query(const uint8_t *pkt, size_t len, struct dns_query *q,
                               const char **why)
{
    enum dns_parse rc = DNS_FORMERR;
    uint16_t qd, an, ns, ar, opcode;
    size_t off = DNS_HEADER_LEN, wire_len = 0;
    struct starts st;
    int i;

    q->id = 0;
    q->flags = 0;
    q->name[0] = '\0';
    q->name_len = 0;
    q->wire_len = 0;
    q->qtype = 0;
    q->qclass = 0;
    q->edns = 0;
    q->udp_size = DNS_UDP_DEFAULT;
    q->do_bit = 0;
    q->edns_version = 0;
    q->question_end = 0;

    if (len >= 2)
        q->id = get16(pkt);
    if (len < DNS_HEADER_LEN) {
        *why = "packet shorter than a DNS header";
        rc = DNS_DROP;
        goto out;
    }
    q->flags = get16(pkt + 2);
    starts_init(&st, len);
    if (q->flags & DNS_FLAG_QR) {
        *why = "a response (QR set), not a query";
        rc = DNS_DROP;
        goto out;
    }
    opcode = (q->flags >> 11) & 0xf;
    if (opcode != 0) {
        *why = "opcode is not QUERY";
        rc = DNS_NOTIMP;
        goto out;
    }
    qd = get16(pkt + 4);
    an = get16(pkt + 6);
    ns = get16(pkt + 8);
    ar = get16(pkt + 10);
    if (qd != 1) {
        *why = qd == 0 ? "query without a question (QDCOUNT 0)"
                       : "query with more than one question (QDCOUNT > 1)";
        goto out;
    }
    if (an != 0 || ns != 0) {
        *why = "query with answer or authority records";
        goto out;
    }
    if (question_read(pkt, len, &st, &off, q->wire, &wire_len, &q->qtype, &q->qclass, why) < 0)
        goto out;
    q->wire_len = wire_len;
    q->name_len = dns_name_to_text(q->wire, q->name);
    q->question_end = off;

    for (i = 0; i < ar; i++) {
        struct rr_info rr;

        if (rr_read(pkt, len, &st, &off, &rr, why) < 0)
            goto out;
        if (rr.type != DNS_TYPE_OPT) {
            *why = "additional record other than OPT in a query";
            goto out;
        }
        if (q->edns) {
            *why = "more than one OPT record";
            goto out;
        }
        if (rr.wire_len != 1) {
            *why = "OPT record owner is not the root";
            goto out;
        }
        if (opt_check(pkt + rr.rdata_off, rr.rdlen) < 0) {
            *why = "malformed EDNS option in the OPT record";
            goto out;
        }
        q->edns = 1;
        q->udp_size = rr.class < DNS_UDP_DEFAULT ? DNS_UDP_DEFAULT : rr.class;
        q->edns_version = (uint8_t)(rr.ttl >> 16);
        q->do_bit = (rr.ttl & 0x8000) != 0;
    }
    if (off != len) {
        *why = "trailing bytes after the last record";
        goto out;
    }
    if (q->qclass != DNS_CLASS_IN) {
        *why = "query class other than IN";
        rc = DNS_NOTIMP;
        goto out;
    }
    if (q->edns_version > 0) {
        *why = "EDNS version above 0";
        rc = DNS_BADVERS;
        goto out;
    }
    rc = DNS_OK;
out:
    return rc;
}

/*
 * Walk a whole response. When mut is not NULL (it is pkt, writable) the id is set to id and
 * every TTL but OPT's is lowered by age.
 */
static enum dns_parse msg_walk(const uint8_t *pkt, size_t len, struct dns_response_view *r,
                               uint8_t *mut, uint16_t id, uint32_t age, const char **why)
{
    enum dns_parse rc = DNS_FORMERR;
    uint8_t wire[DNS_NAME_MAX];
    size_t off = DNS_HEADER_LEN, wire_len, soa_fixed = 0;
    struct starts st;
    uint16_t counts[3], qclass;
    uint32_t neg = 0;
    int sec, i, have_opt = 0, have_ans = 0, have_neg = 0;

    r->id = 0;
    r->flags = 0;
    r->rcode = 0;
    r->tc = 0;
    r->qtype = r->qclass = 0;
    r->qname[0] = '\0';
    r->ancount = 0;
    r->min_ttl = 0;
    r->opt_off = r->opt_len = 0;
    if (len < DNS_HEADER_LEN) {
        *why = "packet shorter than a DNS header";
        goto out;
    }
    starts_init(&st, len);
    r->id = get16(pkt);
    r->flags = get16(pkt + 2);
    r->rcode = r->flags & 0xf;
    r->tc = (r->flags & DNS_FLAG_TC) != 0;
    if (!(r->flags & DNS_FLAG_QR)) {
        *why = "a query (QR clear), not a response";
        goto out;
    }
    if (get16(pkt + 4) != 1) {
        *why = "response without exactly one question (QDCOUNT not 1)";
        goto out;
    }
    counts[0] = get16(pkt + 6);
    counts[1] = get16(pkt + 8);
    counts[2] = get16(pkt + 10);
    if (question_read(pkt, len, &st, &off, wire, &wire_len, &r->qtype, &qclass, why) < 0)
        goto out;
    r->qclass = qclass;
    dns_name_to_text(wire, r->qname);
    if (r->tc) {
        /* a truncated answer is only good for its header: the client retries over TCP */
        rc = DNS_OK;
        goto patch_id;
    }
    for (sec = 0; sec < 3; sec++) {
        for (i = 0; i < counts[sec]; i++) {
            struct rr_info rr;
            uint32_t ttl;

            if (rr_read(pkt, len, &st, &off, &rr, why) < 0)
                goto out;
            ttl = rr.ttl > 0x7fffffffu ? 0 : rr.ttl;
            if (rr.type == DNS_TYPE_OPT) {
                if (sec != 2) {
                    *why = "OPT record outside the additional section";
                    goto out;
                }
                if (have_opt) {
                    *why = "more than one OPT record";
                    goto out;
                }
                if (rr.wire_len != 1) {
                    *why = "OPT record owner is not the root";
                    goto out;
                }
                have_opt = 1;
                r->rcode |= (int)(rr.ttl >> 24) << 4;
                r->opt_off = rr.name_off;
                r->opt_len = off - rr.name_off;
                continue;
            }
            if (sec == 0) {
                if (!have_ans || ttl < r->min_ttl)
                    r->min_ttl = ttl;
                have_ans = 1;
                r->ancount++;
            }
            if (rdata_names(pkt, &st, &rr, &soa_fixed, why) < 0)
                goto out;
            if (sec == 1 && rr.type == DNS_TYPE_SOA && !have_neg) {
                uint32_t minimum = get32(pkt + soa_fixed + 16);

                if (minimum > 0x7fffffffu)
                    minimum = 0;
                neg = ttl < minimum ? ttl : minimum;
                have_neg = 1;
            }
            if (mut)
                put32(mut + rr.ttl_off, rr.ttl > age ? rr.ttl - age : 0);
        }
    }
    if (off != len) {
        *why = "trailing bytes after the last record";
        goto out;
    }
    if (have_neg && (!have_ans || (r->rcode & 0xf) == DNS_RCODE_NXDOMAIN)) {
        if (!have_ans || neg < r->min_ttl)
            r->min_ttl = neg;
    }
    rc = DNS_OK;
patch_id:
    if (mut)
        put16(mut, id);
out:
    return rc;
}

enum dns_parse dns_parse_response(const uint8_t *pkt, size_t len, struct dns_response_view *r,
                                  const char **why)
{
    return msg_walk(pkt, len, r, NULL, 0, 0, why);
}

int dns_response_patch(uint8_t *pkt, size_t len, uint16_t id, uint32_t age)
{
    struct dns_response_view r;
    const char *why;

    /* check first, then patch: a packet that fails half-way is left as it was */
    if (msg_walk(pkt, len, &r, NULL, 0, 0, &why) != DNS_OK)
        return -1;
    msg_walk(pkt, len, &r, pkt, id, age, &why);
    return 0;
}

/* ---- writing ---- */

static int name_from_text(const char *s, size_t n, uint8_t *out, size_t cap)
{
    uint8_t wire[DNS_NAME_MAX];
    size_t i = 0, w = 0, lab = 0; /* lab: offset of the current label's length byte */
    int rc = -1;

    if (n == 1 && s[0] == '.')
        n = 0;
    if (n > 0) {
        int closed = 0; /* the name ended with a final dot */

        w = 1; /* wire[lab] is the current label's length byte, filled when it ends */
        while (i < n) {
            int c = (unsigned char)s[i++];

            if (c == '.') {
                if (w - lab - 1 == 0)
                    goto out; /* empty label */
                wire[lab] = (uint8_t)(w - lab - 1);
                if (i == n) {
                    closed = 1;
                    break;
                }
                lab = w;
                w++;
                continue;
            }
            if (c == '\\') {
                if (i >= n)
                    goto out;
                if (s[i] >= '0' && s[i] <= '9') {
                    int v = 0, k;

                    for (k = 0; k < 3; k++) {
                        if (i >= n || s[i] < '0' || s[i] > '9')
                            goto out;
                        v = v * 10 + (s[i++] - '0');
                    }
                    if (v > 255)
                        goto out;
                    c = v;
                } else {
                    c = (unsigned char)s[i++];
                }
            }
            if (w - lab - 1 >= 63 || w >= DNS_NAME_MAX - 1)
                goto out;
            wire[w++] = (uint8_t)c;
        }
        if (!closed) {
            if (w - lab - 1 == 0)
                goto out;
            wire[lab] = (uint8_t)(w - lab - 1);
        }
    }
    if (w >= DNS_NAME_MAX)
        goto out;
    wire[w++] = 0;
    if (w > cap)
        goto out;
    memcpy(out, wire, w);
    rc = (int)w;
out:
    return rc;
}

int dns_name_to_wire(const char *name, uint8_t *out, size_t cap)
{
    return name_from_text(name, strlen(name), out, cap);
}

struct wr {
    uint8_t *p;
    size_t len, cap;
    int fail;
    uint16_t comp[COMP_MAX]; /* offsets of labels written, for compression */
    int ncomp;
};

static void wr_bytes(struct wr *w, const void *b, size_t n)
{
    if (w->fail || w->cap - w->len < n) {
        w->fail = 1;
        return;
    }
    memcpy(w->p + w->len, b, n);
    w->len += n;
}

static void wr16(struct wr *w, uint16_t v)
{
    uint8_t b[2];

    put16(b, v);
    wr_bytes(w, b, 2);
}

static void wr32(struct wr *w, uint32_t v)
{
    uint8_t b[4];

    put32(b, v);
    wr_bytes(w, b, 4);
}

/* Is the name at offset o of our own output equal (ignoring case) to the wire name nm? */
static int name_eq_at(const uint8_t *buf, size_t o, const uint8_t *nm)
{
    for (;;) {
        size_t c = buf[o], j;

        while ((c & 0xc0) == 0xc0) {
            o = ((c & 0x3f) << 8) | buf[o + 1];
            c = buf[o];
        }
        if (c != *nm)
            return 0;
        if (c == 0)
            return 1;
        for (j = 1; j <= c; j++) {
            if (lower(buf[o + j]) != lower(nm[j]))
                return 0;
        }
        o += c + 1;
        nm += c + 1;
    }
}

/* Write a wire name, compressed against the names already written. */
static void wr_name(struct wr *w, const uint8_t *nm)
{
    size_t pos = 0, j;
    int i, ptr = -1, first = w->ncomp;

    while (nm[pos] != 0 && ptr < 0) {
        for (i = 0; i < w->ncomp; i++) {
            if (name_eq_at(w->p, w->comp[i], nm + pos)) {
                ptr = w->comp[i];
                break;
            }
        }
        if (ptr < 0)
            pos += (size_t)nm[pos] + 1;
    }
    /* remember where the labels we write literally start */
    for (j = 0; j < pos && !w->fail; j += (size_t)nm[j] + 1) {
        if (w->len + j < 0x3fff && w->ncomp < COMP_MAX)
            w->comp[w->ncomp++] = (uint16_t)(w->len + j);
    }
    wr_bytes(w, nm, pos);
    if (ptr >= 0)
        wr16(w, (uint16_t)(0xc000 | ptr));
    else
        wr_bytes(w, nm + pos, 1);
    if (w->fail)
        w->ncomp = first;
}

/* Header and question copied from q. */
static void wr_head(struct wr *w, const struct dns_query *q, int rcode)
{
    uint16_t flags = DNS_FLAG_QR | DNS_FLAG_RA | (uint16_t)(rcode & 0xf);

    flags |= q->flags & (0x7800 | DNS_FLAG_RD | DNS_FLAG_CD); /* opcode, RD, CD */
    wr16(w, q->id);
    wr16(w, flags);
    wr16(w, q->wire_len > 0 ? 1 : 0);
    wr16(w, 0);
    wr16(w, 0);
    wr16(w, q->edns ? 1 : 0);
    if (q->wire_len > 0) {
        wr_name(w, q->wire);
        wr16(w, q->qtype);
        wr16(w, q->qclass);
    }
}

static void wr_opt(struct wr *w, const struct dns_query *q, int rcode)
{
    uint8_t root = 0;

    if (!q->edns)
        return;
    wr_bytes(w, &root, 1);
    wr16(w, DNS_TYPE_OPT);
    wr16(w, DNS_UDP_OUR);
    wr32(w, ((uint32_t)(rcode >> 4) & 0xff) << 24 | (q->do_bit ? 0x8000u : 0));
    wr16(w, 0);
}

size_t dns_answer_rcode(const struct dns_query *q, int rcode, uint8_t *out, size_t cap)
{
    struct wr w = {.p = out, .cap = cap};

    if (rcode < 0 || rcode > 0xfff || (rcode > 15 && !q->edns))
        return 0;
    wr_head(&w, q, rcode);
    wr_opt(&w, q, rcode);
    return w.fail ? 0 : w.len;
}

size_t dns_answer(const struct dns_query *q, const struct dns_rr *rrs, int n, uint8_t *out,
                  size_t cap, size_t limit)
{
    struct wr w = {.p = out};
    size_t reserve = q->edns ? 11 : 0, head_len;
    int i, ok = 1;

    if (q->wire_len == 0 || n < 0 || n > 0xffff)
        return 0;
    /* records must leave room for the OPT record within both the buffer and the limit */
    w.cap = limit > 0 && limit <= cap ? limit : cap;
    if (w.cap < reserve)
        return 0;
    w.cap -= reserve;
    wr_head(&w, q, DNS_RCODE_NOERROR);
    if (w.fail)
        return 0;
    head_len = w.len;
    for (i = 0; i < n && !w.fail; i++) {
        const struct dns_rr *rr = &rrs[i];
        uint8_t nm[DNS_NAME_MAX];
        size_t rdlen_at;

        if (!rr->name) {
            memcpy(nm, q->wire, q->wire_len);
        } else if (dns_name_to_wire(rr->name, nm, sizeof(nm)) < 0) {
            ok = 0;
            break;
        }
        if ((rr->type == DNS_TYPE_A && rr->rdlen != 4) ||
            (rr->type == DNS_TYPE_AAAA && rr->rdlen != 16) || (rr->rdlen > 0 && !rr->rdata)) {
            ok = 0;
            break;
        }
        wr_name(&w, nm);
        wr16(&w, rr->type);
        wr16(&w, DNS_CLASS_IN);
        wr32(&w, rr->ttl);
        rdlen_at = w.len;
        wr16(&w, 0);
        if (rr->type == DNS_TYPE_CNAME) {
            uint8_t target[DNS_NAME_MAX];

            if (name_from_text((const char *)rr->rdata, rr->rdlen, target, sizeof(target)) < 0) {
                ok = 0;
                break;
            }
            wr_name(&w, target);
        } else {
            wr_bytes(&w, rr->rdata, rr->rdlen);
        }
        if (!w.fail)
            put16(out + rdlen_at, (uint16_t)(w.len - rdlen_at - 2));
    }
    if (!ok)
        return 0;
    if (w.fail) {
        /* did not fit: within the client's limit, that is TC; within our buffer, failure */
        if (!(limit > 0 && limit <= cap))
            return 0;
        w.fail = 0;
        w.len = head_len;
        put16(out + 2, get16(out + 2) | DNS_FLAG_TC);
        n = 0;
    }
    put16(out + 6, (uint16_t)n);
    w.cap += reserve;
    wr_opt(&w, q, DNS_RCODE_NOERROR);
    return w.fail ? 0 : w.len;
}

size_t dns_build_query(uint16_t id, const char *name, uint16_t qtype, int rd, int edns_udp,
                       uint8_t *out, size_t cap)
{
    struct wr w = {.p = out, .cap = cap};
    uint8_t nm[DNS_NAME_MAX];
    uint8_t root = 0;

    if (dns_name_to_wire(name, nm, sizeof(nm)) < 0 || edns_udp < 0 || edns_udp > 0xffff)
        return 0;
    wr16(&w, id);
    wr16(&w, rd ? DNS_FLAG_RD : 0);
    wr16(&w, 1);
    wr16(&w, 0);
    wr16(&w, 0);
    wr16(&w, edns_udp > 0 ? 1 : 0);
    wr_name(&w, nm);
    wr16(&w, qtype);
    wr16(&w, DNS_CLASS_IN);
    if (edns_udp > 0) {
        wr_bytes(&w, &root, 1);
        wr16(&w, DNS_TYPE_OPT);
        wr16(&w, (uint16_t)edns_udp);
        wr32(&w, 0);
        wr16(&w, 0);
    }
    return w.fail ? 0 : w.len;
}

/* ---- answers from upstream responses ---- */

size_t dns_answer_response(const struct dns_query *q, const uint8_t *pkt, size_t len, uint32_t age,
                           uint8_t *out, size_t cap, size_t limit)
{
    struct dns_response_view r;
    const char *why;
    uint16_t flags;
    size_t n = len;
    int rcode;

    if (q->wire_len == 0 || len > cap)
        return 0;
    /* one walk checks the copy and ages it; on failure the copy is just not used */
    memcpy(out, pkt, len);
    if (msg_walk(out, len, &r, out, q->id, age, &why) != DNS_OK || r.tc || r.qtype != q->qtype ||
        r.qclass != q->qclass || strcmp(r.qname, q->name) != 0)
        return 0;
    /* OPT is ours to write; one that is not the last record cannot be cut out */
    if (r.opt_len > 0 && r.opt_off + r.opt_len != len)
        return 0;
    rcode = r.rcode & 0xf;
    if (r.opt_len > 0) {
        n = r.opt_off;
        put16(out + 10, (uint16_t)(get16(out + 10) - 1));
    }
    flags = DNS_FLAG_QR | DNS_FLAG_RA | (uint16_t)rcode;
    flags |= q->flags & (0x7800 | DNS_FLAG_RD | DNS_FLAG_CD);
    put16(out + 2, flags);
    /* the question comes first and is never compressed: give the client its own case */
    memcpy(out + DNS_HEADER_LEN, q->wire, q->wire_len);
    if (q->edns) {
        struct wr w = {.p = out, .len = n, .cap = cap};

        wr_opt(&w, q, rcode);
        if (w.fail)
            return 0;
        n = w.len;
        put16(out + 10, (uint16_t)(get16(out + 10) + 1));
    }
    if (limit > 0 && n > limit) {
        n = dns_answer_rcode(q, rcode, out, cap);
        if (n > 0)
            put16(out + 2, get16(out + 2) | DNS_FLAG_TC);
    }
    return n;
}

int dns_response_addresses(const uint8_t *pkt, size_t len, struct dns_rr *rrs, int max, char *text,
                           size_t text_cap)
{
    uint8_t wire[DNS_NAME_MAX];
    size_t off = DNS_HEADER_LEN, wire_len, used = 0, soa_fixed;
    struct dns_response_view r;
    struct starts st;
    uint16_t qtype, qclass;
    const char *why;
    int n = 0;

    if (msg_walk(pkt, len, &r, NULL, 0, 0, &why) != DNS_OK || r.tc)
        return -1;
    starts_init(&st, len);
    if (question_read(pkt, len, &st, &off, wire, &wire_len, &qtype, &qclass, &why) < 0)
        return -1;
    for (int i = 0; i < get16(pkt + 6); i++) {
        struct rr_info rr;
        size_t p;

        if (rr_read(pkt, len, &st, &off, &rr, &why) < 0 ||
            rdata_names(pkt, &st, &rr, &soa_fixed, &why) < 0)
            return -1;
        if (rr.class != DNS_CLASS_IN ||
            (rr.type != DNS_TYPE_A && rr.type != DNS_TYPE_AAAA && rr.type != DNS_TYPE_CNAME) ||
            (rr.type == DNS_TYPE_A && rr.rdlen != 4) ||
            (rr.type == DNS_TYPE_AAAA && rr.rdlen != 16))
            continue;
        if (n == max || text_cap - used < 2 * (DNS_PRES_MAX + 1))
            return -1;
        p = rr.name_off;
        name_read(pkt, len, &st, &p, wire, &wire_len, &why);
        rrs[n].name = text + used;
        used += dns_name_to_text(wire, text + used) + 1;
        rrs[n].type = rr.type;
        rrs[n].ttl = rr.ttl > 0x7fffffffu ? 0 : rr.ttl;
        if (rr.type == DNS_TYPE_CNAME) {
            size_t tl;

            p = rr.rdata_off;
            name_read(pkt, len, &st, &p, wire, &wire_len, &why);
            tl = dns_name_to_text(wire, text + used);
            rrs[n].rdata = (const uint8_t *)(text + used);
            rrs[n].rdlen = (uint16_t)tl;
            used += tl + 1;
        } else {
            rrs[n].rdata = pkt + rr.rdata_off;
            rrs[n].rdlen = rr.rdlen;
        }
        n++;
    }
    return n;
}
