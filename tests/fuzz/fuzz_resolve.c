/* Fuzz the parsers of net/resolve.c: hosts file lines, host names, IP literals, replies. */
#include "../../work/main/src/net/resolve.c"

static struct resolver *fz;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[RESOLVE_NAME_MAX + 1];
    char *text;
    const char *why = NULL;
    struct addr a;
    struct lookup lk;

    if (!fz) {
        fz = xcalloc(1, sizeof(*fz));
        randombytes_buf(fz->hash_key, sizeof(fz->hash_key));
        htab_init(&fz->hosts, 16);
        htab_init(&fz->cache, 16);
        htab_init(&fz->inflight, 16);
        link_init(&fz->lru);
    }
    if (size >= 2 && data[0] == 0xff) {
        /* A DNS reply for either family. */
        memset(&lk, 0, sizeof(lk));
        lk.half[0].family = (data[1] & 1) ? AF_INET6 : AF_INET;
        (void)half_parse(&lk.half[0], data + 2, (int)(size - 2));
        return 0;
    }
    text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    if (hosts_parse_line(fz, text, size, &why) < 0 && !why)
        abort();
    if (name_normalise(text, size, name) == 0) {
        size_t len = strlen(name);
        if (len == 0 || len > RESOLVE_NAME_MAX)
            abort();
        uint64_t h = name_hash(fz, name);
        struct hnode *n = htab_find(&fz->hosts, name, h);
        if (n) {
            struct answer ans;
            const struct hosts_entry *e = LINK_ENTRY(n, struct hosts_entry, node);
            answer_build(e->addrs, e->naddrs, size & 1, &ans);
            if (ans.naddrs < 1 || ans.naddrs > RESOLVE_MAX_ADDRS)
                abort();
        }
    }
    (void)literal_parse(text, &a);
    free(text);
    /* Keep the table from growing without bound across inputs. */
    if (fz->hosts.count > 10000) {
        resolver_free_tables(fz);
        htab_init(&fz->hosts, 16);
        htab_init(&fz->cache, 16);
        htab_init(&fz->inflight, 16);
        link_init(&fz->lru);
    }
    return 0;
}
