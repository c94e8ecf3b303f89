/*
 * fuzz_spool.c -- libFuzzer harness for reading the records spool (event/recorder.c).
 *
 * The input is a spool file: records of a 4-byte length and a packed record. Each record
 * is checked and unpacked as the writer does before it touches the store; nothing may
 * crash, read out of bounds or leak, whatever the bytes.
 */
#include "event/recorder.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct recorder *rec;
    static struct rec_packed *p;
    char host[512];
    uint32_t n;
    size_t off = 0;

    if (!rec) {
        rec = xcalloc(1, sizeof(*rec));
        p = xmalloc(sizeof(*p));
    }
    while (size - off >= sizeof(n)) {
        memcpy(&n, data + off, sizeof(n));
        off += sizeof(n);
        if (n < REC_HEAD_SIZE || n > sizeof(*p) || n > size - off)
            break;
        memcpy(p, data + off, n); /* the writer reads into an aligned buffer too */
        off += n;
        if (rec_unpack(rec, p, n) == 0) {
            rec_host(rec->view.s[RS_URL], host, sizeof(host));
            if (rec->view.p->kind == RK_ROLLUP)
                rec_rollup_add(rec, &rec->view);
        }
    }
    rec_rollup_free_all(rec);
    return 0;
}
