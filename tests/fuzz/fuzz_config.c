/*
 * Fuzz the configuration parser. Every failure names the file and a line; every
 * configuration that loads dumps to text that loads again as the same dump.
 */
#include "common/compat.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_dump(const struct config *c, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    if (!f)
        abort();
    config_dump(c, f);
    fclose(f);
    return text;
}

static int fuzz_names_line(const char *err)
{
    const char *p = err + strlen("fuzz.conf:");

    if (strncmp(err, "fuzz.conf:", 10) != 0 || *p < '1' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    return p[0] == ':' && p[1] == ' ';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    struct config *c =
        config_load_buffer("fuzz.conf", "/fuzz", (const char *)data, size, err, sizeof(err));

    if (!c) {
        if (!fuzz_names_line(err))
            abort(); /* every failure is "fuzz.conf:LINE: message" */
        return 0;
    }

    size_t len1, len2;
    char *d1 = fuzz_dump(c, &len1);
    struct config *c2 = config_load_buffer("fuzz.conf", "/fuzz", d1, len1, err, sizeof(err));
    if (!c2)
        abort(); /* the dump must load again */
    char *d2 = fuzz_dump(c2, &len2);
    if (len1 != len2 || memcmp(d1, d2, len1) != 0)
        abort(); /* ... as the same configuration */

    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    memset(&in4, 0, sizeof(in4));
    memset(&in6, 0, sizeof(in6));
    in4.sin_family = AF_INET;
    in4.sin_addr.s_addr = htonl(0x0a140102); /* 10.20.1.2 */
    in6.sin6_family = AF_INET6;
    in6.sin6_addr.s6_addr[10] = 0xff;
    in6.sin6_addr.s6_addr[11] = 0xff;
    in6.sin6_addr.s6_addr[12] = 127;
    in6.sin6_addr.s6_addr[15] = 1;
    (void)config_network_group(c, (const struct sockaddr *)&in4);
    (void)config_network_group(c, (const struct sockaddr *)&in6);
    for (int i = 0; i < c->nstatus_allow; i++)
        (void)config_cidr_match(&c->status_allow[i], (const struct sockaddr *)&in6);

    free(d1);
    free(d2);
    config_free(c);
    config_free(c2);
    return 0;
}
