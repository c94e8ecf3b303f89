/* Fuzz the policy parser and compiler, and decide one request with what loads. */
#include "common/compat.h"

#include "catdb/build.h"
#include "catdb/catdb.h"
#include "http/url.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct catdb *fuzz_db(void)
{
    static void *img;
    static size_t len;
    char err[256];

    if (!img) {
        struct catdb_builder *b = catdb_builder_create();
        catdb_builder_add_host(b, catdb_builder_add_list(b, "a", "pornography"), "p.example", 9, 0);
        catdb_builder_add_host(b, catdb_builder_add_list(b, "b", "games"), "g.example", 9, 0);
        catdb_builder_add_host(b, catdb_builder_add_list(b, "c", "custom"), "c.example", 9, 0);
        img = catdb_builder_image(b, "", &len, err, sizeof(err));
        catdb_builder_destroy(b);
    }
    return catdb_open_buffer(img, len, 0, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct url u;
    static char reason[POLICY_REASON_MAX];
    struct policy_verdict v;
    char err[1024];
    const char *why;

    struct policy *p =
        policy_load_buffer("fuzz.conf", (const char *)data, size, fuzz_db(), err, sizeof(err));
    if (!p) {
        if (strncmp(err, "fuzz.conf:", 10) != 0 && !strstr(err, "zone"))
            abort(); /* every parse error names file:line */
        return 0;
    }
    static const char *const urls[] = {"http://p.example/", "https://www.g.example/x?y",
                                       "http://192.0.2.1:8080/", "https://www.google.com/search"};
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(urls); i++) {
        if (url_normalize(urls[i], strlen(urls[i]), &u, &why) == 0) {
            for (int g = 0; g < policy_group_count(p); g++)
                policy_explain(p, &u, g, 1796032800, &v, reason, sizeof(reason));
        }
    }
    policy_free(p);
    return 0;
}
