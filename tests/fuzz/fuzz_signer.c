/* Fuzz both signer protocol parsers (tls/signer.h) with every input. Nothing may crash; every
 * rejection names its reason; whatever is accepted survives being built again and re-parsed. */
#include "common/compat.h"

#include "tls/signer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_request(const uint8_t *data, size_t size)
{
    static unsigned char again[SIGNER_MAX_MSG];
    struct signer_request req;
    char err[512] = "";
    size_t n;

    if (signer_parse_request(data, size, &req, err, sizeof(err)) != 0) {
        if (!err[0])
            abort(); /* a rejection names its reason */
        return;
    }
    if (!req.host[0] || strlen(req.host) > CA_MAX_HOST || req.spki < data ||
        req.spki + req.spki_len > data + size)
        abort();
    /* What the signer does next with the key: decode and check it. */
    err[0] = '\0';
    if (ca_check_spki(req.spki, req.spki_len, err, sizeof(err)) != 0 && !err[0])
        abort();
    n = signer_build_request(again, sizeof(again), req.id, req.now, req.spki, req.spki_len,
                             req.host, strlen(req.host));
    if (n != size || memcmp(again, data, size) != 0)
        abort(); /* the format has one way to write each message */
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
    static unsigned char again[SIGNER_MAX_MSG];
    struct signer_reply rep;
    char err[512] = "";
    size_t n;

    if (signer_parse_reply(data, size, &rep, err, sizeof(err)) != 0) {
        if (!err[0])
            abort();
        return;
    }
    if (rep.data < data || rep.data + rep.len > data + size)
        abort(); /* the payload points into the message */
    n = signer_build_reply(again, sizeof(again), rep.type, rep.id, rep.status, rep.data, rep.len);
    if (n != size || memcmp(again, data, size) != 0)
        abort(); /* the format has one way to write each message */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_request(data, size);
    fuzz_reply(data, size);
    return 0;
}
