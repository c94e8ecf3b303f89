/* Unit tests: the configuration file of `haven serve`, its dump and its reference. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

#define REQ "policy policy.conf\ndatabase lists.cdb\n"

static char err[1024];

static struct config *load(const char *text)
{
    err[0] = '\0';
    return config_load_buffer("t.conf", "/srv/haven", text, strlen(text), err, sizeof(err));
}

/* text must fail with a message that is exactly want. */
static void expect_error(const char *text, const char *want)
{
    struct config *c = load(text);

    if (c) {
        config_free(c);
        fail_msg("loaded, but should fail with: %s\n--- text:\n%s", want, text);
    }
    if (strcmp(err, want) != 0)
        fail_msg("wrong message\n want: %s\n  got: %s", want, err);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config *c = load(REQ);
    assert_non_null(c);
    assert_string_equal(c->file, "t.conf");
    assert_string_equal(c->dir, "/srv/haven");
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].host, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 3128);
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->user, "");
    assert_string_equal(c->policy, "/srv/haven/policy.conf");
    assert_string_equal(c->database, "/srv/haven/lists.cdb");
    assert_string_equal(c->data_dir, "/srv/haven/var");
    assert_string_equal(c->access_log, "/srv/haven/var/access.log.json");
    assert_string_equal(c->squid_log, "");
    assert_int_equal(c->log_max_size, 256 * 1024 * 1024);
    assert_int_equal(c->log_keep, 7);
    assert_int_equal(c->log_queue, 65536);
    assert_int_equal(c->nresolvers, 0);
    assert_int_equal(c->dns_cache_size, 10000);
    assert_int_equal(c->dns_min_ttl_ms, 0);
    assert_int_equal(c->dns_max_ttl_ms, 3600 * 1000);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->timeout_request_head_ms, 10000);
    assert_int_equal(c->timeout_keepalive_ms, 60000);
    assert_int_equal(c->timeout_tunnel_idle_ms, 600000);
    assert_int_equal(c->timeout_connect_ms, 10000);
    assert_int_equal(c->timeout_upstream_idle_ms, 60000);
    assert_int_equal(c->timeout_drain_ms, 30000);
    assert_int_equal(c->max_request_line, 8192);
    assert_int_equal(c->max_header_block, 65536);
    assert_int_equal(c->max_headers, 100);
    assert_int_equal(c->upstream_pool, 256);
    assert_int_equal(c->nnetworks, 0);
    assert_int_equal(c->nsign_in, 0);
    assert_string_equal(c->sign_in_realm, "School internet");
    assert_string_equal(c->pac_proxy.host, "127.0.0.1"); /* the first listen address */
    assert_int_equal(c->pac_proxy.port, 3128);
    assert_int_equal(c->npac_direct, 0);
    assert_int_equal(c->nstatus_allow, 2);
    assert_int_equal(c->status_allow[0].family, AF_INET);
    assert_int_equal(c->status_allow[0].prefix, 8);
    assert_int_equal(c->status_allow[1].family, AF_INET6);
    assert_int_equal(c->status_allow[1].prefix, 128);
    assert_string_equal(c->school_name, "");
    config_free(c);
}

static void test_good_values(void **state)
{
    (void)state;
    struct config *c =
        load("# every type\n" REQ "listen 127.0.0.1:8080 [::1]:8080   # two on one line\n"
             "listen localhost:3129\n"
             "workers 256\n"
             "user \"haven\"\n"
             "data-dir /var/lib/haven\n"
             "access-log logs/access.json\n"
             "squid-log /var/log/squid/access.log\n"
             "log-max-size 1G\n"
             "log-keep 100\n"
             "log-queue 1024\n"
             "resolver 127.0.0.1 [::1]:5353\n"
             "resolver ::1 127.0.0.1:5353\n"
             "dns-cache-size 0\n"
             "dns-min-ttl 30\n"
             "dns-max-ttl 2d\n"
             "max-connections 1\n"
             "timeout-request-head 1500ms\n"
             "timeout-keepalive 5s\n"
             "timeout-tunnel-idle 1h\n"
             "timeout-connect 2m\n"
             "timeout-upstream-idle 1m\n"
             "timeout-drain 0\n"
             "max-request-line 256\n"
             "max-header-block 16M\n"
             "max-headers 8\n"
             "upstream-pool 0\n"
             "network 10.20.0.0/16 guests\n"
             "network fd00::/8 staff\n"
             "network 127.0.0.1 sixth-form\n"
             "sign-in guests staff\n"
             "sign-in-realm \"Demo Academy's internet\"\n"
             "school-name \"The \\\"Best\\\" School \\\\ # not a comment\"\n"
             "pac-proxy proxy.school.example:3128\n"
             "pac-direct school.example intranet.example\n"
             "status-allow 10.0.0.0/8\n");
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->nlisten, 3);
    assert_string_equal(c->listen[1].host, "::1");
    assert_int_equal(c->listen[1].port, 8080);
    assert_string_equal(c->listen[2].host, "localhost");
    assert_int_equal(c->workers, 256);
    assert_string_equal(c->user, "haven");
    assert_string_equal(c->data_dir, "/var/lib/haven");
    assert_string_equal(c->access_log, "/var/lib/haven/logs/access.json");
    assert_string_equal(c->squid_log, "/var/log/squid/access.log");
    assert_int_equal(c->log_max_size, 1024 * 1024 * 1024);
    assert_int_equal(c->nresolvers, 4);
    assert_string_equal(c->resolvers[0].host, "127.0.0.1");
    assert_int_equal(c->resolvers[0].port, 53);
    assert_string_equal(c->resolvers[1].host, "::1");
    assert_int_equal(c->resolvers[1].port, 5353);
    assert_string_equal(c->resolvers[2].host, "::1");
    assert_int_equal(c->resolvers[2].port, 53);
    assert_int_equal(c->resolvers[3].port, 5353);
    assert_int_equal(c->dns_min_ttl_ms, 30000);
    assert_int_equal(c->dns_max_ttl_ms, 2 * 86400 * 1000);
    assert_int_equal(c->timeout_request_head_ms, 1500);
    assert_int_equal(c->timeout_connect_ms, 120000);
    assert_int_equal(c->timeout_drain_ms, 0);
    assert_int_equal(c->max_request_line, 256);
    assert_int_equal(c->max_header_block, 16 * 1024 * 1024);
    assert_int_equal(c->nnetworks, 3);
    assert_string_equal(c->networks[1].group, "staff");
    assert_int_equal(c->networks[2].cidr.prefix, 32);
    assert_int_equal(c->nsign_in, 2);
    assert_string_equal(c->sign_in[1], "staff");
    assert_string_equal(c->sign_in_realm, "Demo Academy's internet");
    assert_string_equal(c->school_name, "The \"Best\" School \\ # not a comment");
    assert_string_equal(c->pac_proxy.host, "proxy.school.example");
    assert_int_equal(c->npac_direct, 2);
    assert_int_equal(c->nstatus_allow, 1); /* the file's list replaces the default */
    config_free(c);

    /* "" empties a list; a later line of a list adds to it. */
    c = load(REQ "status-allow \"\"\naccess-log \"\"\n");
    assert_non_null(c);
    assert_int_equal(c->nstatus_allow, 0);
    assert_string_equal(c->access_log, "");
    config_free(c);
}

static void test_bad_values(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {REQ "workers x\n", "t.conf:3: 'workers' must be a whole number from 0 to 256, not 'x'"},
        {REQ "workers 2x\n", "t.conf:3: 'workers' must be a whole number from 0 to 256, not '2x'"},
        {REQ "\n# c\nworkers 257\n", "t.conf:5: 'workers' must be from 0 to 256, not 257"},
        {REQ "log-keep 0\n", "t.conf:3: 'log-keep' must be from 1 to 100, not 0"},
        {REQ "workers -1\n", "t.conf:3: 'workers' must be from 0 to 256, not -1"},
        {REQ "workers 99999999999999999999\n",
         "t.conf:3: 'workers' must be a whole number from 0 to 256, not '99999999999999999999'"},
        {REQ "workers 1 2\n", "t.conf:3: 'workers' takes one value"},
        {REQ "workers\n", "t.conf:3: 'workers' needs a value (workers N)"},
        {REQ "timeout-connect 10x\n",
         "t.conf:3: 'timeout-connect' must be a duration such as 500ms, 10s, 5m, 1h or 1d (a "
         "bare number is seconds), not '10x'"},
        {REQ "timeout-connect 1.5s\n",
         "t.conf:3: 'timeout-connect' must be a duration such as 500ms, 10s, 5m, 1h or 1d (a "
         "bare number is seconds), not '1.5s'"},
        {REQ "timeout-connect 11m\n",
         "t.conf:3: 'timeout-connect' must be from 1s to 10m, not 11m"},
        {REQ "timeout-keepalive 999ms\n",
         "t.conf:3: 'timeout-keepalive' must be from 1s to 1h, not 999ms"},
        {REQ "max-request-line 8Q\n",
         "t.conf:3: 'max-request-line' must be a size such as 512, 8K, 64M or 1G (a bare number "
         "is bytes), not '8Q'"},
        {REQ "max-request-line 2M\n",
         "t.conf:3: 'max-request-line' must be from 256 to 1M, not 2M"},
        {REQ "max-header-block 1023\n",
         "t.conf:3: 'max-header-block' must be from 1K to 16M, not 1023"},
        {REQ "log-max-size 2048G\n", "t.conf:3: 'log-max-size' must be from 0 to 1024G, not 2048G"},
        {REQ "listen 127.0.0.1\n",
         "t.conf:3: 'listen' must be HOST:PORT with a port from 1 to 65535 (IPv6 as [::1]:3128), "
         "not '127.0.0.1'"},
        {REQ "listen 127.0.0.1:0\n",
         "t.conf:3: 'listen' must be HOST:PORT with a port from 1 to 65535 (IPv6 as [::1]:3128), "
         "not '127.0.0.1:0'"},
        {REQ "listen ::1:3128\n",
         "t.conf:3: 'listen' must be HOST:PORT with a port from 1 to 65535 (IPv6 as [::1]:3128), "
         "not '::1:3128'"},
        {REQ "listen 127.0.0.256:3128\n",
         "t.conf:3: 'listen' must be HOST:PORT with a port from 1 to 65535 (IPv6 as [::1]:3128), "
         "not '127.0.0.256:3128'"},
        {REQ "listen \"\"\n", "t.conf:3: 'listen' needs at least 1 value"},
        {REQ "listen 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3 127.0.0.1:4 127.0.0.1:5\n"
             "listen 127.0.0.1:6 127.0.0.1:7 127.0.0.1:8 127.0.0.1:9\n",
         "t.conf:4: 'listen' holds at most 8 values"},
        {REQ "listen 127.0.0.1:3128 127.0.0.1:3128\n",
         "t.conf:3: 'listen' names 127.0.0.1:3128 twice"},
        {REQ "resolver dns.example\n",
         "t.conf:3: 'resolver' must be an IP address with an optional :PORT (IPv6 as [::1]:53), "
         "not 'dns.example'"},
        {REQ "resolver 127.0.0.1 \"\"\n",
         "t.conf:3: 'resolver': \"\" (none) must be the only value"},
        {REQ "status-allow 10.0.0.0/33\n",
         "t.conf:3: 'status-allow': '10.0.0.0/33' is not an address range (write it as "
         "10.20.0.0/16 or fd00::/8)"},
        {REQ "status-allow 10.0.0.1/8\n",
         "t.conf:3: 'status-allow': 10.0.0.1/8 has bits set after the prefix (did you mean "
         "10.0.0.0/8?)"},
        {REQ "network 10.20.0.1/16 guests\n",
         "t.conf:3: 'network': 10.20.0.1/16 has bits set after the prefix (did you mean "
         "10.20.0.0/16?)"},
        {REQ "network fd00::1/8 guests\n",
         "t.conf:3: 'network': fd00::1/8 has bits set after the prefix (did you mean fd00::/8?)"},
        {REQ "network 10.20.0.0/16\n",
         "t.conf:3: 'network' takes two values: an address range and a group name (network "
         "10.20.0.0/16 guests)"},
        {REQ "network 10.20.0.0/16 gu/ests\n",
         "t.conf:3: 'network': group name 'gu/ests' may only use letters, digits, '-', '_' and "
         "'.'"},
        {REQ "network 10.20.0.0/16 a\nnetwork 10.20.0.0/16 b\n",
         "t.conf:4: 'network' 10.20.0.0/16 is given twice"},
        {REQ "pac-direct not..a.domain\n",
         "t.conf:3: 'pac-direct': 'not..a.domain' is not a domain name"},
        {REQ "sign-in-realm \"say \\\"hi\\\"\"\n",
         "t.conf:3: 'sign-in-realm' may not contain '\"' or '\\'"},
        {REQ "sign-in-realm Demo Academy\n",
         "t.conf:3: 'sign-in-realm' takes one value (put text with spaces in double quotes)"},
        {REQ "sign-in-realm \"\"\n", "t.conf:3: 'sign-in-realm' may not be empty"},
        {REQ "data-dir \"\"\n", "t.conf:3: 'data-dir' may not be empty"},
        {REQ "school-name \"Demo\n", "t.conf:3: unterminated string (a '\"' is missing)"},
        {REQ "school-name \"Demo\"x\n", "t.conf:3: a quoted string must be followed by a space"},
        {REQ "school-name De\"mo\n", "t.conf:3: unexpected '\"' inside a word"},
        {REQ "\"workers\" 2\n", "t.conf:3: an option name is a word, not a quoted string"},
        {REQ "workers \x01\n", "t.conf:3: control character in the line"},
        {REQ "dns-min-ttl 2h\n", "t.conf:3: 'dns-min-ttl' (2h) is longer than 'dns-max-ttl' (1h)"},
    };

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++)
        expect_error(cases[i].text, cases[i].want);

    /* A log path is too long once joined to a long data-dir: the data-dir line is blamed. */
    char text[4096], name[1001];
    memset(name, 'a', 1000);
    name[1000] = '\0';
    snprintf(text, sizeof(text), REQ "data-dir %s\n", name);
    expect_error(text, "t.conf:3: 'access-log' is too long once resolved to a full path (the "
                       "limit is 1024 bytes)");
    snprintf(text, sizeof(text), REQ "school-name %s%s\n", name, name);
    expect_error(text, "t.conf:3: 'school-name' is too long (the limit is 1024 bytes)");
}

static void test_unknown(void **state)
{
    (void)state;
    expect_error(
        REQ "timeout-keep-alive 5s\n",
        "t.conf:3: unknown option 'timeout-keep-alive' (did you mean 'timeout-keepalive'?)");
    expect_error("worker 4\n", "t.conf:1: unknown option 'worker' (did you mean 'workers'?)");
    expect_error(REQ "max_connections 5\n",
                 "t.conf:3: unknown option 'max_connections' (did you mean 'max-connections'?)");
    expect_error(REQ "datadir x\n",
                 "t.conf:3: unknown option 'datadir' (did you mean 'data-dir'?)");
    expect_error(REQ "frobnicate yes\n",
                 "t.conf:3: unknown option 'frobnicate' (the options are listed in "
                 "docs/configuration.md)");
}

static void test_duplicates_and_required(void **state)
{
    (void)state;
    expect_error(REQ "workers 2\n\nworkers 3\n", "t.conf:5: 'workers' is already set at line 3");
    expect_error(REQ "policy other.conf\n", "t.conf:3: 'policy' is already set at line 1");
    expect_error("database lists.cdb\n# no policy\n",
                 "t.conf:2: missing required option 'policy' (add a line 'policy FILE')");
    expect_error("policy p.conf\n",
                 "t.conf:1: missing required option 'database' (add a line 'database FILE')");
    expect_error("", "t.conf:1: missing required option 'policy' (add a line 'policy FILE')");
    /* List options may repeat. */
    struct config *c = load(REQ "sign-in a\nsign-in b c\n");
    assert_non_null(c);
    assert_int_equal(c->nsign_in, 3);
    config_free(c);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_relative_paths(void **state)
{
    char dir[] = "/tmp/haven-config-XXXXXX", path[256], want[256], cwd[1024];
    struct config *c;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/haven.conf", dir);
    write_file(path, "policy ./policy.conf\ndatabase ../lists/db.cdb\ndata-dir state\n"
                     "squid-log squid.log\n");
    c = config_load(path, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    snprintf(want, sizeof(want), "%s/policy.conf", dir);
    assert_string_equal(c->policy, want);
    snprintf(want, sizeof(want), "%s/../lists/db.cdb", dir);
    assert_string_equal(c->database, want);
    snprintf(want, sizeof(want), "%s/state", dir);
    assert_string_equal(c->data_dir, want);
    snprintf(want, sizeof(want), "%s/state/access.log.json", dir);
    assert_string_equal(c->access_log, want);
    snprintf(want, sizeof(want), "%s/state/squid.log", dir);
    assert_string_equal(c->squid_log, want);
    config_free(c);

    /* A relative directory is made absolute. */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    c = config_load_buffer("x.conf", "demo", REQ, strlen(REQ), err, sizeof(err));
    assert_non_null(c);
    snprintf(want, sizeof(want), "%s/demo/policy.conf", cwd);
    assert_string_equal(c->policy, want);
    config_free(c);

    /* Errors from a file name the file. */
    write_file(path, "oops\n");
    assert_null(config_load(path, err, sizeof(err)));
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    assert_int_equal(strncmp(err + strlen(path), ":1: unknown option 'oops'", 25), 0);
    unlink(path);
    assert_null(config_load(path, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);
    rmdir(dir);
}

static char *dump(const struct config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    config_dump(c, f);
    fclose(f);
    return text;
}

static void test_dump_roundtrip(void **state)
{
    static const char *const texts[] = {
        REQ,
        REQ "listen 127.0.0.1:8080 [::1]:8080 localhost:3129\nworkers 3\nuser \"nobody\"\n"
            "access-log \"\"\nsquid-log squid.log\nlog-max-size 1000\nresolver 127.0.0.1 "
            "[::1]:5353\ndns-min-ttl 90s\ndns-max-ttl 2d\ntimeout-request-head "
            "1500ms\ntimeout-tunnel-idle 1d\n"
            "max-header-block 1025\nnetwork 10.20.0.0/16 guests\nnetwork ::ffff:10.0.0.0/104 "
            "x\nsign-in guests\nschool-name \"The \\\"Best\\\" \\\\ School # 1\"\n"
            "pac-direct a.example b.example c.example d.example e.example f.example g.example "
            "h.example i.example j.example\nstatus-allow \"\"\n",
    };

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(texts); i++) {
        struct config *c = load(texts[i]), *c2;
        if (!c)
            fail_msg("%s", err);
        char *d1 = dump(c);
        /* The dump reloads from anywhere: its paths are absolute. */
        c2 = config_load_buffer("t.conf", "/elsewhere", d1, strlen(d1), err, sizeof(err));
        if (!c2)
            fail_msg("the dump does not load: %s\n%s", err, d1);
        char *d2 = dump(c2);
        assert_string_equal(d1, d2);
        assert_string_equal(c2->policy, "/srv/haven/policy.conf");
        assert_int_equal(c2->nnetworks, c->nnetworks);
        assert_int_equal(c2->npac_direct, c->npac_direct);
        assert_string_equal(c2->school_name, c->school_name);
        free(d1);
        free(d2);
        config_free(c);
        config_free(c2);
    }
}

static void sa4(struct sockaddr_storage *ss, const char *ip)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
}

static void sa6(struct sockaddr_storage *ss, const char *ip)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
}

static int match(const char *cidr, const char *ip)
{
    struct config_cidr c;
    struct sockaddr_storage ss;

    assert_int_equal(config_parse_cidr(cidr, &c), 0);
    if (strchr(ip, ':'))
        sa6(&ss, ip);
    else
        sa4(&ss, ip);
    return config_cidr_match(&c, (struct sockaddr *)&ss);
}

static void test_cidr(void **state)
{
    struct config_cidr c;
    char buf[64];

    (void)state;
    assert_int_equal(config_parse_cidr("10.20.0.0/16", &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 16);
    config_format_cidr(&c, buf, sizeof(buf));
    assert_string_equal(buf, "10.20.0.0/16");
    assert_int_equal(config_parse_cidr("fd00::/8", &c), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(config_parse_cidr("127.0.0.1", &c), 0);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(config_parse_cidr("0.0.0.0/0", &c), 0);
    static const char *const bad[] = {"",         "/8",          "10.0.0.0/",   "10.0.0.0/33",
                                      "10.0.0/8", "10.0.0.1/24", "::1/129",     "fd00::1/8",
                                      "::1/-1",   "::1/0128",    "10.0.0.0/8x", "x"};
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(bad); i++) {
        if (config_parse_cidr(bad[i], &c) == 0)
            fail_msg("'%s' parsed as a range", bad[i]);
    }

    assert_true(match("10.20.0.0/16", "10.20.255.1"));
    assert_false(match("10.20.0.0/16", "10.21.0.1"));
    assert_true(match("10.16.0.0/12", "10.31.0.1"));
    assert_false(match("10.16.0.0/12", "10.32.0.1"));
    assert_true(match("0.0.0.0/0", "127.0.0.1"));
    assert_true(match("127.0.0.1", "127.0.0.1"));
    assert_false(match("127.0.0.1", "127.0.0.2"));
    assert_true(match("::1/128", "::1"));
    assert_false(match("::1/128", "::2"));
    assert_true(match("fd00::/8", "fdab:1::5"));
    assert_false(match("fd00::/8", "fe80::1"));
    /* IPv4-mapped IPv6 clients match IPv4 ranges, and mapped ranges match IPv4 clients. */
    assert_true(match("127.0.0.0/8", "::ffff:127.0.0.1"));
    assert_false(match("10.0.0.0/8", "::ffff:127.0.0.1"));
    assert_true(match("::ffff:127.0.0.0/104", "127.9.9.9"));
    /* Families do not mix otherwise. */
    assert_false(match("::/0", "127.0.0.1"));
    assert_false(match("0.0.0.0/0", "::1"));

    /* The most specific network decides the group. */
    struct config *cf = load(REQ "network 10.0.0.0/8 staff\nnetwork 10.20.0.0/16 guests\n"
                                 "network ::1 loopback\n");
    struct sockaddr_storage ss;
    assert_non_null(cf);
    sa4(&ss, "10.20.1.2");
    assert_string_equal(config_network_group(cf, (struct sockaddr *)&ss), "guests");
    sa4(&ss, "10.30.1.2");
    assert_string_equal(config_network_group(cf, (struct sockaddr *)&ss), "staff");
    sa6(&ss, "::ffff:10.30.1.2");
    assert_string_equal(config_network_group(cf, (struct sockaddr *)&ss), "staff");
    sa6(&ss, "::1");
    assert_string_equal(config_network_group(cf, (struct sockaddr *)&ss), "loopback");
    sa4(&ss, "127.0.0.1");
    assert_null(config_network_group(cf, (struct sockaddr *)&ss));
    config_free(cf);
}

static void test_value_syntax(void **state)
{
    int64_t ms;
    uint64_t bytes;
    int on;
    struct config_addr a;
    char buf[32];

    (void)state;
    assert_int_equal(config_parse_duration("15", &ms), 0);
    assert_int_equal(ms, 15000);
    assert_int_equal(config_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(config_parse_duration("3d", &ms), 0);
    assert_int_equal(ms, 3LL * 86400 * 1000);
    assert_int_equal(config_parse_duration("", &ms), -1);
    assert_int_equal(config_parse_duration("s", &ms), -1);
    assert_int_equal(config_parse_duration("-1s", &ms), -1);
    assert_int_equal(config_parse_duration("1 s", &ms), -1);
    assert_int_equal(config_parse_duration("1w", &ms), -1);
    assert_int_equal(config_parse_duration("999999999999999999d", &ms), -1);
    assert_int_equal(config_parse_size("64M", &bytes), 0);
    assert_int_equal(bytes, 64 * 1024 * 1024);
    assert_int_equal(config_parse_size("7", &bytes), 0);
    assert_int_equal(bytes, 7);
    assert_int_equal(config_parse_size("1KB", &bytes), -1);
    assert_int_equal(config_parse_size("1T", &bytes), -1);
    assert_int_equal(config_parse_bool("on", &on), 0);
    assert_int_equal(on, 1);
    assert_int_equal(config_parse_bool("no", &on), 0);
    assert_int_equal(on, 0);
    assert_int_equal(config_parse_bool("true", &on), -1);
    assert_int_equal(config_parse_addr("[::1]:53", 0, &a), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(config_parse_addr("::1", 53, &a), 0);
    assert_int_equal(a.port, 53);
    assert_int_equal(config_parse_addr("::1", 0, &a), -1);
    assert_int_equal(config_parse_addr("[::1]", 0, &a), -1);
    assert_int_equal(config_parse_addr("host:65536", 0, &a), -1);
    assert_int_equal(config_parse_addr("-bad_:1", 0, &a), 0); /* names are checked loosely */
    assert_int_equal(config_parse_addr("a b:1", 0, &a), -1);
    assert_int_equal(config_parse_addr(":3128", 0, &a), -1);
    config_format_duration(90000, buf, sizeof(buf));
    assert_string_equal(buf, "90s");
    config_format_duration(0, buf, sizeof(buf));
    assert_string_equal(buf, "0s");
    config_format_duration(1500, buf, sizeof(buf));
    assert_string_equal(buf, "1500ms");
    config_format_size(8192, buf, sizeof(buf));
    assert_string_equal(buf, "8K");
    config_format_size(1025, buf, sizeof(buf));
    assert_string_equal(buf, "1025");
}

/* docs/configuration.md is exactly what the table generates. */
static void test_docs_match(void **state)
{
    char path[4096], *gen = NULL, *doc;
    size_t genlen = 0, doclen;
    FILE *f, *mem = open_memstream(&gen, &genlen);

    (void)state;
    config_write_markdown(mem);
    fclose(mem);
    snprintf(path, sizeof(path), "%s/docs/configuration.md", HAVEN_SOURCE_DIR);
    if (getenv("HAVEN_WRITE_DOCS")) {
        f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(gen, 1, genlen, f);
        fclose(f);
    }
    f = fopen(path, "rb");
    assert_non_null(f);
    doc = calloc(1, genlen + 2);
    doclen = fread(doc, 1, genlen + 1, f);
    fclose(f);
    if (doclen != genlen || memcmp(doc, gen, genlen) != 0)
        fail_msg("docs/configuration.md is stale: run this test with HAVEN_WRITE_DOCS=1 to "
                 "rewrite it from src/config/config.c");
    free(doc);
    free(gen);
}

static void test_demo_loads(void **state)
{
    char path[4096], want[4096];
    struct config *c;

    (void)state;
    snprintf(path, sizeof(path), "%s/demo/haven.conf", HAVEN_SOURCE_DIR);
    c = config_load(path, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].host, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 3128);
    assert_int_equal(c->workers, 2);
    snprintf(want, sizeof(want), "%s/demo/policy.conf", HAVEN_SOURCE_DIR);
    assert_string_equal(c->policy, want);
    snprintf(want, sizeof(want), "%s/demo/../var/demo.cdb", HAVEN_SOURCE_DIR);
    assert_string_equal(c->database, want);
    snprintf(want, sizeof(want), "%s/demo/../var", HAVEN_SOURCE_DIR);
    assert_string_equal(c->data_dir, want);
    assert_int_equal(c->nnetworks, 0);
    assert_int_equal(c->nsign_in, 0);
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_duplicates_and_required),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_value_syntax),
        cmocka_unit_test(test_docs_match),
        cmocka_unit_test(test_demo_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
