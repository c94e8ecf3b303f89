/*
 * squid.c -- `haven squid-helper`: a drop-in for squidGuard in an existing Squid.
 *
 * Squid writes one request per line to standard input:
 *     [channel-ID] URL client-ip/fqdn user method [key=value ...]
 * and reads one answer per line: "ERR" to let the request through, or
 * "OK status=302 url=\"...\"" to send the browser to the block page. With a
 * channel-ID (url_rewrite_children ... concurrency=N) the answer starts with
 * the same ID. Answers are written as soon as every complete line read so far
 * has been decided, before the helper waits for more input, so Squid never
 * waits on a buffer; in bulk, one write carries many answers. Lines already
 * read are taken SQUID_BATCH at a time: all are parsed and their database
 * slots prefetched before the first is decided.
 * docs/squid.md has the squid.conf lines.
 */
#include "common/compat.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/slice.h"
#include "common/xalloc.h"
#include "http/url.h"
#include "policy/policy.h"

#define SQUID_IN_MAX (URL_MAX + 4096)
#define SQUID_OUT_MAX 65536
#define SQUID_ANSWER_MAX (URL_MAX * 3 + 1024)
/* Requests read ahead, so their lookups' cache misses overlap (catdb_prefetch_host). */
#define SQUID_BATCH 16

static const char squid_usage[] =
    "usage: haven squid-helper [--policy FILE] [--db FILE] [--group NAME] [--block-url URL]\n"
    "  --group NAME     group for requests that carry no group= or tag= key (default: the\n"
    "                   policy's default group)\n"
    "  --block-url URL  block page to redirect to (default http://haven.invalid/blocked);\n"
    "                   the reason follows as query parameters\n";

struct squid {
    const struct policy *p;
    int group;
    const char *block_url;
    char sep; /* '?' before the first parameter, or '&' if the block URL has a query */
    char out[SQUID_OUT_MAX];
    size_t outlen;
};

static int squid_flush(struct squid *s)
{
    size_t done = 0;

    while (done < s->outlen) {
        ssize_t n = write(1, s->out + done, s->outlen - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    s->outlen = 0;
    return 0;
}

static int squid_emit(struct squid *s, const char *text, size_t len)
{
    if (s->outlen + len > sizeof(s->out) && squid_flush(s) < 0)
        return -1;
    memcpy(s->out + s->outlen, text, len);
    s->outlen += len;
    return 0;
}

/* RFC 3986 unreserved bytes, which need no percent-encoding in a query value. */
static unsigned char squid_unreserved[256];

static void squid_init_unreserved(void)
{
    for (int c = 0; c < 256; c++)
        squid_unreserved[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                              c == '~';
}

/* Append "SEP name=value" to o, value percent-encoded; stops short of end. Returns the new end. */
static char *squid_param(char *o, const char *end, char sep, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(name);

    if (o + n + 2 >= end)
        return o;
    *o++ = sep;
    memcpy(o, name, n);
    o += n;
    *o++ = '=';
    for (const unsigned char *c = (const unsigned char *)value; *c && o + 3 < end; c++) {
        if (squid_unreserved[*c]) {
            *o++ = (char)*c;
        } else {
            o[0] = '%';
            o[1] = hex[*c >> 4];
            o[2] = hex[*c & 15];
            o += 3;
        }
    }
    return o;
}

/* The group named by a group= or tag= key, or -1. */
static int squid_kv_group(const struct policy *p, struct slice rest)
{
    char name[128];

    while (rest.len > 0) {
        size_t n = 0;
        while (n < rest.len && rest.p[n] != ' ')
            n++;
        struct slice kv = slice_make(rest.p, n);
        size_t klen = kv.len > 6 && memcmp(kv.p, "group=", 6) == 0 ? 6
                      : kv.len > 4 && memcmp(kv.p, "tag=", 4) == 0 ? 4
                                                                   : 0;
        if (klen && kv.len - klen < sizeof(name)) {
            memcpy(name, kv.p + klen, kv.len - klen);
            name[kv.len - klen] = '\0';
            int g = policy_group_find(p, name);
            if (g >= 0)
                return g;
        }
        rest.p += n;
        rest.len -= n;
        while (rest.len > 0 && rest.p[0] == ' ') {
            rest.p++;
            rest.len--;
        }
    }
    return -1;
}

static struct slice squid_field(struct slice *s)
{
    struct slice f;
    const char *sp;

    while (s->len > 0 && s->p[0] == ' ') {
        s->p++;
        s->len--;
    }
    sp = memchr(s->p, ' ', s->len);
    f = slice_make(s->p, sp ? (size_t)(sp - s->p) : s->len);
    s->p += f.len;
    s->len -= f.len;
    return f;
}

/* One request line, read and normalised, waiting for its answer. */
struct squid_req {
    struct slice id; /* channel-ID, or empty; points into the input buffer */
    int group;
    const char *why; /* the URL could not be read: why (the request is blocked) */
    int empty;       /* no URL at all: answered BH */
    struct url u;
};

/* Read one request line into r and start loading what deciding it will need. */
static void squid_parse(struct squid *s, const char *line, size_t len, struct squid_req *r)
{
    static char target[URL_MAX + 16];
    struct slice rest = slice_trim(slice_make(line, len)), f, url, method;

    r->id = slice_make("", 0);
    r->why = NULL;
    r->empty = 0;
    f = squid_field(&rest);
    if (f.len > 0 && f.len < 12 && strspn(f.p, "0123456789") >= f.len && rest.len > 0) {
        r->id = f;
        f = squid_field(&rest);
    }
    url = f;
    if (url.len == 0) {
        r->empty = 1;
        return;
    }
    squid_field(&rest); /* client ip/fqdn */
    squid_field(&rest); /* user */
    method = squid_field(&rest);
    r->group = squid_kv_group(s->p, rest);
    if (r->group < 0)
        r->group = s->group;

    /* CONNECT carries host:port; it is HTTPS. */
    if (slice_eq_cstr(method, "CONNECT") && url.len < URL_MAX - 8) {
        memcpy(target, "https://", 8);
        memcpy(target + 8, url.p, url.len);
        url = slice_make(target, url.len + 8);
    }
    if (url_normalize(url.p, url.len, &r->u, &r->why) == 0)
        policy_prefetch(s->p, &r->u);
}

/* Decide a request and queue its answer. */
static int squid_answer(struct squid *s, struct squid_req *r, int64_t now)
{
    static char answer[SQUID_ANSWER_MAX];
    static char reason[POLICY_REASON_MAX];
    struct policy_verdict v;
    size_t n = 0;

    if (r->id.len > 0) {
        memcpy(answer, r->id.p, r->id.len);
        answer[r->id.len] = ' ';
        n = r->id.len + 1;
    }
    if (r->empty) {
        n += (size_t)snprintf(answer + n, sizeof(answer) - n, "BH message=\"empty request\"\n");
        return squid_emit(s, answer, n);
    }
    if (r->why) {
        /* Fail closed: what cannot be parsed cannot be checked. */
        v.action = POLICY_BLOCK;
        v.category = -1;
        v.group = r->group;
        snprintf(reason, sizeof(reason), "The address could not be read: %s.", r->why);
    } else {
        policy_decide(s->p, &r->u, r->group, now, &v);
        if (v.action == POLICY_BLOCK)
            policy_explain(s->p, &r->u, r->group, now, &v, reason, sizeof(reason));
    }
    if (v.action != POLICY_BLOCK) {
        memcpy(answer + n, "ERR\n", 4);
        return squid_emit(s, answer, n + 4);
    }
    n += (size_t)snprintf(answer + n, sizeof(answer) - n, "OK status=302 url=\"%s", s->block_url);
    char *o = answer + n, *end = answer + sizeof(answer) - 3;
    o = squid_param(o, end, s->sep, "url", r->why ? "" : r->u.text);
    if (v.category >= 0)
        o = squid_param(o, end, '&', "category", policy_category_name(s->p, v.category));
    o = squid_param(o, end, '&', "group", policy_group_name(s->p, v.group));
    o = squid_param(o, end, '&', "reason", reason);
    n = (size_t)(o - answer);
    answer[n++] = '"';
    answer[n++] = '\n';
    return squid_emit(s, answer, n);
}

/* Answer the first n requests of the batch, in order. */
static int squid_answer_batch(struct squid *s, struct squid_req *batch, int n)
{
    int64_t now = clock_now();

    for (int i = 0; i < n; i++) {
        if (squid_answer(s, &batch[i], now) < 0)
            return -1;
    }
    return 0;
}

/* Answer a line too long to read whole: "[ID] BH ...", with its channel-ID if it has one. */
static int squid_overlong(struct squid *s, const char *line, size_t len)
{
    static const char msg[] = "BH message=\"request line too long\"\n";
    size_t id = 0;

    while (id < len && id < 11 && line[id] >= '0' && line[id] <= '9')
        id++;
    if (id > 0 && id < len && line[id] == ' ' && squid_emit(s, line, id + 1) < 0)
        return -1;
    return squid_emit(s, msg, sizeof(msg) - 1);
}

int cmd_squid_helper(int argc, char **argv)
{
    static const struct option opts[] = {
        {"policy", required_argument, NULL, 'p'}, {"db", required_argument, NULL, 'd'},
        {"group", required_argument, NULL, 'g'},  {"block-url", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *policy_path = NULL, *db_path = NULL, *group_name = NULL;
    static struct squid s;
    struct squid_req *batch = NULL;
    char *in = NULL;
    size_t inlen = 0;
    int c, rc = 1, skipping = 0;

    s.block_url = "http://haven.invalid/blocked";
    optind = 1;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            policy_path = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 'g':
            group_name = optarg;
            break;
        case 'b':
            s.block_url = optarg;
            break;
        case 'h':
            fputs(squid_usage, stdout);
            return 0;
        default:
            return cli_usage_error(squid_usage, "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error(squid_usage, "unexpected argument '%s'", argv[optind]);
    if (strlen(s.block_url) > 1024 || strchr(s.block_url, '"') || strchr(s.block_url, ' '))
        return cli_usage_error(squid_usage, "--block-url must be a URL without spaces or quotes");
    s.sep = strchr(s.block_url, '?') ? '&' : '?';
    squid_init_unreserved();
    s.p = cli_load_policy(policy_path, db_path);
    if (!s.p)
        return 1;
    s.group = cli_find_group(s.p, group_name);
    if (s.group < 0) {
        policy_free((struct policy *)(uintptr_t)s.p);
        return CLI_EXIT_USAGE;
    }

    in = xmalloc(SQUID_IN_MAX);
    batch = xcalloc(SQUID_BATCH, sizeof(*batch));
    for (;;) {
        ssize_t got = read(0, in + inlen, SQUID_IN_MAX - inlen);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        inlen += (size_t)got;
        size_t start = 0;
        int nbatch = 0;
        for (;;) {
            char *nl = memchr(in + start, '\n', inlen - start);
            if (!nl)
                break;
            size_t len = (size_t)(nl - (in + start));
            if (!skipping)
                squid_parse(&s, in + start, len, &batch[nbatch++]);
            skipping = 0;
            start += len + 1;
            if (nbatch == SQUID_BATCH) {
                if (squid_answer_batch(&s, batch, nbatch) < 0)
                    goto out;
                nbatch = 0;
            }
        }
        if (squid_answer_batch(&s, batch, nbatch) < 0)
            goto out;
        memmove(in, in + start, inlen - start);
        inlen -= start;
        if (inlen == SQUID_IN_MAX) {
            /* Longer than any request can be: one BH answer, then drop it up to its newline. */
            if (!skipping && squid_overlong(&s, in, inlen) < 0)
                goto out;
            inlen = 0;
            skipping = 1;
        }
        if (squid_flush(&s) < 0)
            goto out;
    }
    if (inlen > 0 && !skipping) {
        squid_parse(&s, in, inlen, &batch[0]);
        squid_answer_batch(&s, batch, 1);
    }
    rc = squid_flush(&s) < 0 ? 1 : 0;
out:
    free(batch);
    free(in);
    policy_free((struct policy *)(uintptr_t)s.p);
    return rc;
}
