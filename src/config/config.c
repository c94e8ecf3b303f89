/*
 * config.c -- read, check, dump and document the configuration of `haven serve`.
 *
 * DESIGN. cfg_options[] is the one description of the configuration: each row
 * names an option, its type, flags, bounds, default (written in the file's own
 * syntax) and help text, and where its value lives in struct config. Defaults
 * are applied by parsing the default text with the same code as the file, so a
 * default can never be something the file could not say. The dump and the
 * Markdown reference walk the same rows, so neither can forget an option.
 *
 * Paths are kept as written while the file is read, and resolved once at the
 * end: access-log may come before data-dir in the file, and is relative to it.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/lex.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"

#define CFG_LINE_MAX 4096
#define CFG_MAX_TOKENS 256
#define CFG_MAX_FILE (1024 * 1024)
#define CFG_PATH_MAX 1024 /* a path once resolved; keeps every dumped line under the line limit */
#define CFG_TEXT_MAX 1024

enum cfg_type {
    CFG_STRING,
    CFG_PATH,
    CFG_INT,
    CFG_BOOL,
    CFG_DURATION, /* int64_t milliseconds */
    CFG_SIZE,     /* size_t bytes */
    CFG_ADDR,     /* struct config_addr */
    CFG_CIDR,     /* struct config_cidr */
    CFG_WORD,     /* char * */
    CFG_NETWORK,  /* struct config_network: CIDR GROUP */
};

#define CFG_REQUIRED 0x01u /* the file must set it */
#define CFG_LIST 0x02u     /* several values; repeating the option adds more */
#define CFG_EMPTY 0x04u    /* "" is allowed (an empty string, or an empty list) */
#define CFG_DATA_DIR 0x08u /* a relative path is relative to data-dir */
#define CFG_IP 0x10u       /* addr: an IP literal; the port may be left out (53) */
#define CFG_DOMAIN 0x20u   /* word: a domain name */
#define CFG_GROUP 0x40u    /* word: a group name */
#define CFG_HEADER 0x80u   /* string: sent in an HTTP header; no '"' or '\' */
#define CFG_EMAIL 0x100u   /* word: an e-mail address */
#define CFG_URL 0x200u     /* string or word: an http://, https://, smtp:// or smtps:// URL */
#define CFG_CLOCK 0x400u   /* string: a time of day, HH:MM */

struct cfg_option {
    const char *section; /* starts a section of the reference and the dump */
    const char *name;
    enum cfg_type type;
    unsigned flags;
    size_t off;       /* the value, or the array of a list */
    size_t noff;      /* the count of a list */
    int64_t min, max; /* bounds of an int, duration (ms) or size (bytes) */
    int minn, maxn;   /* how many values a list holds */
    const char *def;  /* in the file's syntax; NULL for required options */
    const char *syntax;
    const char *help;
};

#define OFF(field) offsetof(struct config, field)
#define MS_S 1000LL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)
#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

/* clang-format off */
static const struct cfg_option cfg_options[] = {
    {"Listening", "listen", CFG_ADDR, CFG_LIST, OFF(listen), OFF(nlisten), 0, 0, 1, CONFIG_MAX_LISTEN,
     "127.0.0.1:3128", "HOST:PORT...",
     "Where the proxy listens for browsers; IPv6 as [::1]:3128; up to 8 addresses, on one line "
     "or on several."},
    {NULL, "workers", CFG_INT, 0, OFF(workers), 0, 0, 256, 0, 0, "0", "N",
     "Worker threads, each with its own event loop; 0 = one per CPU core."},
    {NULL, "user", CFG_STRING, CFG_EMPTY, OFF(user), 0, 0, 0, 0, 0, "\"\"", "NAME",
     "After binding its sockets, haven switches to this user (only when started as root); "
     "\"\" = do not change user."},

    {"Files and logs", "policy", CFG_PATH, CFG_REQUIRED, OFF(policy), 0, 0, 0, 0, 0, NULL, "FILE",
     "The policy file (docs/policy.md)."},
    {NULL, "database", CFG_PATH, CFG_REQUIRED, OFF(database), 0, 0, 0, 0, 0, NULL, "FILE",
     "The category database built by `haven lists compile` (docs/lists.md)."},
    {NULL, "data-dir", CFG_PATH, 0, OFF(data_dir), 0, 0, 0, 0, 0, "var", "DIR",
     "The directory where haven keeps its users database and its logs."},
    {NULL, "access-log", CFG_PATH, CFG_EMPTY | CFG_DATA_DIR, OFF(access_log), 0, 0, 0, 0, 0,
     "access.log.json", "FILE",
     "The access log, one JSON object per request; relative to data-dir; \"\" turns it off."},
    {NULL, "squid-log", CFG_PATH, CFG_EMPTY | CFG_DATA_DIR, OFF(squid_log), 0, 0, 0, 0, 0, "\"\"",
     "FILE",
     "A second access log in Squid's native format, for existing log tools; relative to "
     "data-dir; \"\" turns it off."},
    {NULL, "log-max-size", CFG_SIZE, 0, OFF(log_max_size), 0, 0, 1024 * GIB, 0, 0, "256M", "SIZE",
     "A log that grows past this size is rotated; 0 = never rotate by size."},
    {NULL, "log-keep", CFG_INT, 0, OFF(log_keep), 0, 1, 100, 0, 0, "7", "N",
     "How many rotated files of each log are kept."},
    {NULL, "log-queue", CFG_INT, 0, OFF(log_queue), 0, 1024, 1048576, 0, 0, "65536", "N",
     "How many access-log records may wait for the log writer; when it is full, further "
     "records are counted and dropped."},

    {"Name resolution", "resolver", CFG_ADDR, CFG_LIST | CFG_EMPTY | CFG_IP, OFF(resolvers),
     OFF(nresolvers), 0, 0, 0, 8, "\"\"", "IP[:PORT]...",
     "The DNS servers haven asks (port 53 unless given); \"\" = the servers in "
     "/etc/resolv.conf."},
    {NULL, "dns-cache-size", CFG_INT, 0, OFF(dns_cache_size), 0, 0, 10000000, 0, 0, "10000", "N",
     "How many names the DNS cache holds; 0 = no cache."},
    {NULL, "dns-min-ttl", CFG_DURATION, 0, OFF(dns_min_ttl_ms), 0, 0, MS_D, 0, 0, "0s",
     "DURATION", "Cached answers are kept at least this long, even when their TTL is shorter."},
    {NULL, "dns-max-ttl", CFG_DURATION, 0, OFF(dns_max_ttl_ms), 0, 0, 7 * MS_D, 0, 0, "1h",
     "DURATION", "Cached answers are kept at most this long, even when their TTL is longer."},

    {"DNS filter", "dns-listen", CFG_ADDR, CFG_LIST | CFG_EMPTY | CFG_IP, OFF(dns_listen),
     OFF(ndns_listen), 0, 0, 0, CONFIG_MAX_LISTEN, "\"\"", "IP[:PORT]...",
     "Where the DNS filter answers queries, over UDP and TCP (port 53 unless given; IPv6 as "
     "[::1]:53); \"\" = no DNS filter (docs/dns.md)."},
    {NULL, "dns-upstream", CFG_ADDR, CFG_LIST | CFG_EMPTY | CFG_IP, OFF(dns_upstream),
     OFF(ndns_upstream), 0, 0, 0, 8, "\"\"", "IP[:PORT]...",
     "The resolvers the DNS filter forwards allowed queries to, in order of preference; \"\" = "
     "the `resolver` servers, else those in /etc/resolv.conf."},
    {NULL, "dns-allow", CFG_CIDR, CFG_LIST | CFG_EMPTY, OFF(dns_allow), OFF(ndns_allow), 0, 0, 0,
     1024, "127.0.0.0/8 ::1/128", "CIDR...",
     "Client ranges the DNS filter answers, besides every `network` range; anyone else gets "
     "REFUSED (haven is not an open resolver)."},
    {NULL, "dns-rate-limit", CFG_INT, 0, OFF(dns_rate_limit), 0, 0, 10000000, 0, 0, "1000", "N",
     "Queries per second one client address may send (bursts of twice that are let through); "
     "beyond it queries are dropped; 0 = no limit. Raise it for a school DNS server that "
     "forwards to haven."},
    {NULL, "dns-cache-memory", CFG_SIZE, 0, OFF(dns_cache_memory), 0, 0, 64 * GIB, 0, 0, "64M",
     "SIZE",
     "Memory for cached DNS answers, shared out among the workers; 0 = no cache. dns-min-ttl "
     "and dns-max-ttl bound how long answers are kept."},
    {NULL, "dns-block-address", CFG_CIDR, CFG_LIST | CFG_EMPTY, OFF(dns_block_address),
     OFF(ndns_block_address), 0, 0, 0, 2, "\"\"", "IP...",
     "The address of haven's block page (at most one IPv4 and one IPv6 address), given as the "
     "answer for blocked names to groups with `dns-block page`."},
    {NULL, "dns-timeout", CFG_DURATION, 0, OFF(dns_timeout_ms), 0, 100, MS_M, 0, 0, "1500ms",
     "DURATION",
     "How long the DNS filter waits for a resolver before asking the next one."},

    {"Connections, limits and timeouts", "max-connections", CFG_INT, 0, OFF(max_connections), 0,
     1, 1000000, 0, 0, "10000", "N",
     "How many client connections may be open at once; a client beyond it gets a 503 page and "
     "its connection is closed."},
    {NULL, "timeout-request-head", CFG_DURATION, 0, OFF(timeout_request_head_ms), 0, MS_S, MS_H,
     0, 0, "10s", "DURATION",
     "How long a client may take to send a request line and its headers."},
    {NULL, "timeout-keepalive", CFG_DURATION, 0, OFF(timeout_keepalive_ms), 0, MS_S, MS_H, 0, 0,
     "60s", "DURATION",
     "How long an idle client connection is kept open waiting for the next request."},
    {NULL, "timeout-tunnel-idle", CFG_DURATION, 0, OFF(timeout_tunnel_idle_ms), 0, MS_S, 7 * MS_D,
     0, 0, "10m", "DURATION",
     "A CONNECT tunnel with no data in either direction for this long is closed."},
    {NULL, "timeout-connect", CFG_DURATION, 0, OFF(timeout_connect_ms), 0, MS_S, 10 * MS_M, 0, 0,
     "10s", "DURATION", "How long haven waits for a connection to a web server to open."},
    {NULL, "timeout-upstream-idle", CFG_DURATION, 0, OFF(timeout_upstream_idle_ms), 0, MS_S, MS_H,
     0, 0, "60s", "DURATION",
     "A connection to a web server that sends nothing for this long (while a response is awaited, "
     "or idle in the pool) is closed."},
    {NULL, "timeout-drain", CFG_DURATION, 0, OFF(timeout_drain_ms), 0, 0, MS_H, 0, 0, "30s",
     "DURATION",
     "On SIGTERM, how long requests in progress may take to finish before haven stops."},
    {NULL, "max-request-line", CFG_SIZE, 0, OFF(max_request_line), 0, 256, MIB, 0, 0, "8K", "SIZE",
     "The longest request line (method, URL and version) accepted from a client."},
    {NULL, "max-header-block", CFG_SIZE, 0, OFF(max_header_block), 0, KIB, 16 * MIB, 0, 0, "64K",
     "SIZE", "The largest block of header fields accepted, in a request or a response."},
    {NULL, "max-headers", CFG_INT, 0, OFF(max_headers), 0, 8, 1000, 0, 0, "100", "N",
     "The most header fields accepted in a request or a response."},
    {NULL, "upstream-pool", CFG_INT, 0, OFF(upstream_pool), 0, 0, 100000, 0, 0, "256", "N",
     "How many idle keep-alive connections to web servers each worker keeps for reuse; 0 = none."},

    {"Clients, groups and sign-in", "network", CFG_NETWORK, CFG_LIST, OFF(networks),
     OFF(nnetworks), 0, 0, 0, 4096, NULL, "CIDR GROUP",
     "Clients with an address in CIDR belong to GROUP, a group of the policy; repeat the line for "
     "more ranges; the most specific range wins; other clients get the policy's default group."},
    {NULL, "sign-in", CFG_WORD, CFG_LIST | CFG_EMPTY | CFG_GROUP, OFF(sign_in), OFF(nsign_in), 0,
     0, 0, 64, "\"\"", "GROUP...",
     "Groups whose users must sign in with proxy authentication (407) before they browse; \"\" = "
     "none."},
    {NULL, "sign-in-realm", CFG_STRING, CFG_HEADER, OFF(sign_in_realm), 0, 0, 0, 0, 0,
     "\"School internet\"", "TEXT", "The name browsers show in their sign-in prompt."},
    {NULL, "school-name", CFG_STRING, CFG_EMPTY, OFF(school_name), 0, 0, 0, 0, 0, "\"\"", "TEXT",
     "The school's name on block and sign-in pages; \"\" = the name in the policy's `school` "
     "line."},

    {"HTTPS inspection", "ca-dir", CFG_PATH, CFG_DATA_DIR, OFF(ca_dir), 0, 0, 0, 0, 0, "ca", "DIR",
     "The school's inspection CA (`haven ca init`); relative to data-dir. Needed when a group of "
     "the policy has `inspect on` (docs/tls-inspection.md)."},
    {NULL, "upstream-ca", CFG_PATH, CFG_EMPTY, OFF(upstream_ca), 0, 0, 0, 0, 0, "\"\"", "FILE",
     "More certificate authorities (PEM) to trust for web servers' certificates, besides the "
     "system's; \"\" = the system's only."},
    {NULL, "tls-leaf-cache", CFG_INT, 0, OFF(tls_leaf_cache), 0, 16, 10000000, 0, 0, "10000", "N",
     "How many minted site certificates to keep for reuse."},

    {"Monitoring and alerts", "monitor-dir", CFG_PATH, CFG_EMPTY, OFF(monitor_dir), 0, 0, 0, 0, 0,
     "\"\"", "DIR",
     "The keyword libraries (every *.lib file in DIR, docs/monitoring.md); \"\" = the libraries "
     "that come with haven."},
    {NULL, "monitor-page-max", CFG_SIZE, 0, OFF(monitor_page_max), 0, 0, 64 * MIB, 0, 0, "256K",
     "SIZE",
     "How much text of each web page (after decompression, without markup) the monitor reads; "
     "0 = read search terms only, not pages."},
    {NULL, "alert-email-to", CFG_WORD, CFG_LIST | CFG_EMPTY | CFG_EMAIL, OFF(alert_email_to),
     OFF(nalert_email_to), 0, 0, 0, 32, "\"\"", "ADDRESS...",
     "Who receives alerts by e-mail: the DSL and deputies; \"\" = no e-mail."},
    {NULL, "alert-urgent-to", CFG_WORD, CFG_LIST | CFG_EMPTY | CFG_EMAIL, OFF(alert_urgent_to),
     OFF(nalert_urgent_to), 0, 0, 0, 32, "\"\"", "ADDRESS...",
     "Who else receives severity-5 alerts (risk to life) at once, day or night, besides "
     "alert-email-to."},
    {NULL, "alert-email-from", CFG_STRING, CFG_EMAIL, OFF(alert_email_from), 0, 0, 0, 0, 0,
     "haven@localhost", "ADDRESS", "The sender address of alert e-mails."},
    {NULL, "alert-smtp", CFG_STRING, CFG_EMPTY | CFG_URL, OFF(alert_smtp), 0, 0, 0, 0, 0,
     "smtp://127.0.0.1:25", "URL",
     "The mail relay alerts are sent through: smtp://HOST:PORT (upgraded with STARTTLS when the "
     "relay offers it) or smtps://HOST:PORT."},
    {NULL, "alert-smtp-user", CFG_STRING, CFG_EMPTY, OFF(alert_smtp_user), 0, 0, 0, 0, 0, "\"\"",
     "NAME", "The user name for the mail relay; \"\" = no authentication."},
    {NULL, "alert-smtp-password-file", CFG_PATH, CFG_EMPTY, OFF(alert_smtp_password_file), 0, 0,
     0, 0, 0, "\"\"", "FILE",
     "A file holding the mail relay's password on its first line (keep it readable by haven "
     "only)."},
    {NULL, "alert-webhook", CFG_WORD, CFG_LIST | CFG_EMPTY | CFG_URL, OFF(alert_webhook),
     OFF(nalert_webhook), 0, 0, 0, 8, "\"\"", "URL...",
     "URLs that receive each alert as a JSON POST (a local authority or a moderation service)."},
    {NULL, "alert-syslog", CFG_BOOL, 0, OFF(alert_syslog), 0, 0, 0, 0, 0, "on", "on|off",
     "Also write each alert to syslog (facility auth, priority warning; crit for severity 5)."},
    {NULL, "alert-dedup", CFG_DURATION, 0, OFF(alert_dedup_ms), 0, 0, 7 * MS_D, 0, 0, "1h",
     "DURATION",
     "A second match for the same user and theme within this time is recorded but not sent "
     "again, unless its severity is higher."},
    {NULL, "alert-digest-at", CFG_STRING, CFG_CLOCK, OFF(alert_digest_at), 0, 0, 0, 0, 0, "16:00", "HH:MM",
     "When the daily digest of lower-severity matches is sent (local time)."},
    {NULL, "console-url", CFG_STRING, CFG_EMPTY | CFG_URL, OFF(console_url), 0, 0, 0, 0, 0,
     "\"\"", "URL",
     "The address of haven's console, for the activity link in alerts; \"\" = alerts give "
     "the `haven activity` command instead."},
    {NULL, "retain-events", CFG_DURATION, 0, OFF(retain_events_ms), 0, MS_D, 10 * 366 * MS_D, 0, 0,
     "365d", "DURATION",
     "How long blocks, warnings, searches and keyword matches are kept in the database."},
    {NULL, "retain-rollups", CFG_DURATION, 0, OFF(retain_rollups_ms), 0, MS_D, 10 * 366 * MS_D, 0,
     0, "90d", "DURATION", "How long hourly summaries of allowed traffic are kept."},
    {NULL, "retain-alerts", CFG_DURATION, 0, OFF(retain_alerts_ms), 0, MS_D, 50 * 366 * MS_D, 0,
     0, "2557d", "DURATION",
     "How long alerts, their outcomes and deliveries are kept (default 7 years; move records "
     "of concern into the school's safeguarding record system)."},

    {"Browser set-up (PAC)", "pac-proxy", CFG_ADDR, CFG_EMPTY, OFF(pac_proxy), 0, 0, 0, 0, 0,
     "\"\"", "HOST:PORT",
     "The proxy address the PAC file gives browsers; \"\" = the first listen address (set it when "
     "haven listens on a wildcard address such as 0.0.0.0)."},
    {NULL, "pac-direct", CFG_WORD, CFG_LIST | CFG_EMPTY | CFG_DOMAIN, OFF(pac_direct),
     OFF(npac_direct), 0, 0, 0, 1024, "\"\"", "DOMAIN...",
     "Domain names (with their subdomains) that browsers reach directly, not through the proxy."},

    {"Status and metrics", "status-allow", CFG_CIDR, CFG_LIST | CFG_EMPTY, OFF(status_allow),
     OFF(nstatus_allow), 0, 0, 0, 64, "127.0.0.0/8 ::1/128", "CIDR...",
     "Client address ranges that may read /haven/status and /metrics; \"\" = nobody."},
};
/* clang-format on */

#define CFG_NOPTIONS HAVEN_ARRAY_LEN(cfg_options)

/* ---------------------------------------------------------------- values */

static int cfg_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

/* The leading digits of s as a number (at most 18 digits); returns how many were read. */
static size_t cfg_number(const char *s, uint64_t *n)
{
    size_t i = 0;

    *n = 0;
    while (s[i] >= '0' && s[i] <= '9' && i < 18) {
        *n = *n * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (s[i] >= '0' && s[i] <= '9')
        return 0; /* too many digits */
    return i;
}

int config_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"", MS_S}, {"ms", 1}, {"s", MS_S}, {"m", MS_M}, {"h", MS_H}, {"d", MS_D}};
    uint64_t n;
    size_t len = cfg_number(s, &n);

    if (len == 0)
        return -1;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(units); i++) {
        if (strcmp(s + len, units[i].suffix) == 0) {
            if (n > (uint64_t)(INT64_MAX / units[i].ms))
                return -1;
            *ms = (int64_t)n * units[i].ms;
            return 0;
        }
    }
    return -1;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t n, mult;
    size_t len = cfg_number(s, &n);

    if (len == 0)
        return -1;
    if (s[len] == '\0')
        mult = 1;
    else if (s[len + 1] != '\0')
        return -1;
    else if (s[len] == 'K' || s[len] == 'k')
        mult = KIB;
    else if (s[len] == 'M' || s[len] == 'm')
        mult = MIB;
    else if (s[len] == 'G' || s[len] == 'g')
        mult = GIB;
    else
        return -1;
    if (n > UINT64_MAX / mult)
        return -1;
    *bytes = n * mult;
    return 0;
}

int config_parse_bool(const char *s, int *on)
{
    if (strcmp(s, "on") == 0 || strcmp(s, "yes") == 0) {
        *on = 1;
        return 0;
    }
    if (strcmp(s, "off") == 0 || strcmp(s, "no") == 0) {
        *on = 0;
        return 0;
    }
    return -1;
}

void config_format_duration(int64_t ms, char *buf, size_t size)
{
    if (ms != 0 && ms % MS_D == 0)
        snprintf(buf, size, "%lldd", (long long)(ms / MS_D));
    else if (ms != 0 && ms % MS_H == 0)
        snprintf(buf, size, "%lldh", (long long)(ms / MS_H));
    else if (ms != 0 && ms % MS_M == 0)
        snprintf(buf, size, "%lldm", (long long)(ms / MS_M));
    else if (ms % MS_S == 0)
        snprintf(buf, size, "%llds", (long long)(ms / MS_S));
    else
        snprintf(buf, size, "%lldms", (long long)ms);
}

void config_format_size(uint64_t bytes, char *buf, size_t size)
{
    if (bytes != 0 && bytes % GIB == 0)
        snprintf(buf, size, "%lluG", (unsigned long long)(bytes / GIB));
    else if (bytes != 0 && bytes % MIB == 0)
        snprintf(buf, size, "%lluM", (unsigned long long)(bytes / MIB));
    else if (bytes != 0 && bytes % KIB == 0)
        snprintf(buf, size, "%lluK", (unsigned long long)(bytes / KIB));
    else
        snprintf(buf, size, "%llu", (unsigned long long)bytes);
}

/* A host name: dot-separated labels of letters, digits, '-' and '_', not all-numeric at the end
 * (that would be a mistyped IPv4 address). */
static int cfg_hostname_ok(const char *s, size_t len)
{
    size_t label = 0;
    int digits_only = 1;

    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
            digits_only = 1;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
        if (ch < '0' || ch > '9')
            digits_only = 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && !digits_only;
}

static int cfg_is_ip(const char *host, int family)
{
    unsigned char tmp[16];

    return inet_pton(family, host, tmp) == 1;
}

static int cfg_port(const char *s, uint16_t *port)
{
    size_t n = strlen(s);
    long v;

    if (!cfg_digits(s, n) || n > 5)
        return -1;
    v = strtol(s, NULL, 10);
    if (v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int cfg_set_host(struct config_addr *a, const char *host, size_t len)
{
    if (len == 0 || len >= sizeof(a->host))
        return -1;
    memcpy(a->host, host, len);
    a->host[len] = '\0';
    return 0;
}

int config_parse_addr(const char *s, int default_port, struct config_addr *a)
{
    struct config_addr out;
    const char *colon = strchr(s, ':'), *port = NULL;

    memset(&out, 0, sizeof(out));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || cfg_set_host(&out, s + 1, (size_t)(close - s - 1)) < 0 ||
            !cfg_is_ip(out.host, AF_INET6))
            return -1;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return -1;
    } else if (colon && strchr(colon + 1, ':')) {
        /* More than one ':' without brackets: a bare IPv6 address, no port. */
        if (default_port <= 0 || cfg_set_host(&out, s, strlen(s)) < 0 ||
            !cfg_is_ip(out.host, AF_INET6))
            return -1;
    } else {
        size_t hlen = colon ? (size_t)(colon - s) : strlen(s);
        if (cfg_set_host(&out, s, hlen) < 0)
            return -1;
        if (!cfg_is_ip(out.host, AF_INET) && !cfg_hostname_ok(out.host, hlen))
            return -1;
        if (colon)
            port = colon + 1;
    }
    if (port) {
        if (cfg_port(port, &out.port) < 0)
            return -1;
    } else {
        if (default_port <= 0 || default_port > 65535)
            return -1;
        out.port = (uint16_t)default_port;
    }
    *a = out;
    return 0;
}

/* As config_parse_cidr; returns -2 when only the bits after the prefix are wrong, with the
 * range they were meant to write in *c. */
static int cfg_parse_cidr(const char *s, struct config_cidr *c)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    int bits, rc = 0;
    struct config_cidr out;

    memset(&out, 0, sizeof(out));
    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, out.addr) == 1) {
        out.family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, addr, out.addr) == 1) {
        out.family = AF_INET6;
        bits = 128;
    } else {
        return -1;
    }
    out.prefix = bits;
    if (slash) {
        size_t n = strlen(slash + 1);
        if (!cfg_digits(slash + 1, n) || n > 3)
            return -1;
        out.prefix = (int)strtol(slash + 1, NULL, 10);
        if (out.prefix > bits)
            return -1;
    }
    for (int i = out.prefix; i < bits; i++) {
        unsigned char bit = (unsigned char)(0x80u >> (i % 8));
        if (out.addr[i / 8] & bit) {
            out.addr[i / 8] &= (unsigned char)~bit;
            rc = -2;
        }
    }
    *c = out;
    return rc;
}

int config_parse_cidr(const char *s, struct config_cidr *c)
{
    struct config_cidr tmp;

    if (cfg_parse_cidr(s, &tmp) != 0)
        return -1;
    *c = tmp;
    return 0;
}

void config_format_cidr(const struct config_cidr *c, char *buf, size_t size)
{
    char a[INET6_ADDRSTRLEN];

    if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
        snprintf(a, sizeof(a), "?");
    snprintf(buf, size, "%s/%d", a, c->prefix);
}

static const unsigned char cfg_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Bring an address or range to its IPv4 form when it has one (::ffff:a.b.c.d). */
static void cfg_unmap(int *family, const unsigned char **addr, int *prefix)
{
    if (*family == AF_INET6 && memcmp(*addr, cfg_v4mapped, 12) == 0 && *prefix >= 96) {
        *family = AF_INET;
        *addr += 12;
        *prefix -= 96;
    }
}

static int cfg_prefix_eq(const unsigned char *a, const unsigned char *b, int prefix)
{
    int bytes = prefix / 8, rest = prefix % 8;

    if (memcmp(a, b, (size_t)bytes) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

int config_cidr_match(const struct config_cidr *c, const struct sockaddr *sa)
{
    int afam, cfam = c->family, aprefix, cprefix = c->prefix;
    const unsigned char *aaddr, *caddr = c->addr;

    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        afam = AF_INET;
        aaddr = (const unsigned char *)&in->sin_addr;
        aprefix = 32;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        afam = AF_INET6;
        aaddr = (const unsigned char *)&in6->sin6_addr;
        aprefix = 128;
    } else {
        return 0;
    }
    cfg_unmap(&afam, &aaddr, &aprefix);
    cfg_unmap(&cfam, &caddr, &cprefix);
    if (afam != cfam)
        return 0;
    return cfg_prefix_eq(aaddr, caddr, cprefix);
}

const char *config_network_group(const struct config *c, const struct sockaddr *sa)
{
    const struct config_network *best = NULL;

    for (int i = 0; i < c->nnetworks; i++) {
        const struct config_network *n = &c->networks[i];
        if (config_cidr_match(&n->cidr, sa) && (!best || n->cidr.prefix > best->cidr.prefix))
            best = n;
    }
    return best ? best->group : NULL;
}

/* ---------------------------------------------------------------- parser */

struct cfg_tok {
    char *s;
    int quoted;
};

struct cfg_parser {
    struct config *c;
    const char *file;
    unsigned long line;
    char *err;
    size_t errlen;
    int defaults; /* applying the table's defaults, not reading the file */
    unsigned long set_line[CFG_NOPTIONS];
    struct cfg_tok tok[CFG_MAX_TOKENS];
    int ntok;
};

static int cfg_fail(struct cfg_parser *ps, const char *fmt, ...) HAVEN_PRINTF(2, 3);

static int cfg_fail(struct cfg_parser *ps, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "%s:%lu: %s", ps->file, ps->line ? ps->line : 1, msg);
    return -1;
}

/*
 * Split line (modified in place) into words and "quoted strings" with \" and \\
 * escapes. A '#' outside quotes starts a comment.
 */
static int cfg_tokenize(struct cfg_parser *ps, char *line)
{
    char *s = line;

    ps->ntok = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#')
            return 0;
        if (ps->ntok == CFG_MAX_TOKENS)
            return cfg_fail(ps, "too many words on one line (the limit is %d)", CFG_MAX_TOKENS);
        struct cfg_tok *t = &ps->tok[ps->ntok++];
        if (*s == '"') {
            char *w = ++s;
            t->s = w;
            t->quoted = 1;
            while (*s != '"') {
                if (*s == '\0')
                    return cfg_fail(ps, "unterminated string (a '\"' is missing)");
                if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                    s++;
                *w++ = *s++;
            }
            s++;
            *w = '\0';
            if (*s != '\0' && *s != ' ' && *s != '\t' && *s != '#')
                return cfg_fail(ps, "a quoted string must be followed by a space");
            if (*s == ' ' || *s == '\t')
                s++;
            else if (*s == '#')
                return 0;
            continue;
        }
        t->s = s;
        t->quoted = 0;
        while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '"' && *s != '#')
            s++;
        if (*s == '"')
            return cfg_fail(ps, "unexpected '\"' inside a word");
        if (*s == '#') {
            *s = '\0';
            return 0;
        }
        if (*s != '\0')
            *s++ = '\0';
    }
}

static const struct cfg_option *cfg_find(const char *name)
{
    for (size_t i = 0; i < CFG_NOPTIONS; i++) {
        if (strcmp(cfg_options[i].name, name) == 0)
            return &cfg_options[i];
    }
    return NULL;
}

static int cfg_unknown(struct cfg_parser *ps, const char *name)
{
    const char *best = NULL;
    int best_d = 1000, limit = strlen(name) >= 8 ? 3 : 2;

    for (size_t i = 0; i < CFG_NOPTIONS; i++) {
        int d = lex_distance(name, cfg_options[i].name);
        if (d < best_d) {
            best_d = d;
            best = cfg_options[i].name;
        }
    }
    if (best && best_d <= limit)
        return cfg_fail(ps, "unknown option '%.64s' (did you mean '%s'?)", name, best);
    return cfg_fail(ps, "unknown option '%.64s' (the options are listed in docs/configuration.md)",
                    name);
}

static void *cfg_field(struct config *c, const struct cfg_option *o)
{
    return (char *)c + o->off;
}

static const void *cfg_cfield(const struct config *c, const struct cfg_option *o)
{
    return (const char *)c + o->off;
}

static size_t cfg_elem_size(enum cfg_type t)
{
    switch (t) {
    case CFG_ADDR:
        return sizeof(struct config_addr);
    case CFG_CIDR:
        return sizeof(struct config_cidr);
    case CFG_NETWORK:
        return sizeof(struct config_network);
    default:
        return sizeof(char *);
    }
}

static void *cfg_list_array(const struct config *c, const struct cfg_option *o)
{
    void *arr;

    memcpy(&arr, cfg_cfield(c, o), sizeof(arr));
    return arr;
}

static int *cfg_list_count(struct config *c, const struct cfg_option *o)
{
    return (int *)(void *)((char *)c + o->noff);
}

static int cfg_list_ccount(const struct config *c, const struct cfg_option *o)
{
    int n;

    memcpy(&n, (const char *)c + o->noff, sizeof(n));
    return n;
}

static void cfg_list_clear(struct config *c, const struct cfg_option *o)
{
    char *arr = cfg_list_array(c, o);
    int *n = cfg_list_count(c, o);
    void *null = NULL;

    for (int i = 0; i < *n; i++) {
        if (o->type == CFG_WORD) {
            char *w;
            memcpy(&w, arr + (size_t)i * sizeof(char *), sizeof(w));
            free(w);
        } else if (o->type == CFG_NETWORK) {
            free(((struct config_network *)(void *)arr)[i].group);
        }
    }
    free(arr);
    memcpy(cfg_field(c, o), &null, sizeof(null));
    *n = 0;
}

/* Room for one more element at the end of a list; zeroed. */
static void *cfg_list_append(struct config *c, const struct cfg_option *o)
{
    size_t esz = cfg_elem_size(o->type);
    int *n = cfg_list_count(c, o);
    char *arr = cfg_list_array(c, o);

    arr = xrealloc(arr, (size_t)(*n + 1) * esz);
    memcpy(cfg_field(c, o), &arr, sizeof(arr));
    memset(arr + (size_t)*n * esz, 0, esz);
    return arr + (size_t)(*n)++ * esz;
}

/* local@domain: no spaces, quotes, angle brackets or control characters (they would break
 * the mail headers), one '@' with text before it and a domain name after it. */
static int cfg_email_ok(const char *w)
{
    const char *at = strchr(w, '@');

    if (!at || at == w || strchr(at + 1, '@') || strlen(w) > 254)
        return 0;
    for (const unsigned char *s = (const unsigned char *)w; *s; s++) {
        if (*s <= ' ' || *s >= 0x7f || strchr("\"<>(),;:\\[]", *s))
            return 0;
    }
    return cfg_hostname_ok(at + 1, strlen(at + 1));
}

/* scheme://host... with one of the schemes haven speaks, and no spaces. */
static int cfg_url_ok(const char *v)
{
    static const char *const schemes[] = {"http://", "https://", "smtp://", "smtps://"};

    for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
        if (*s <= ' ' || *s == 0x7f)
            return 0;
    }
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(schemes); i++) {
        size_t n = strlen(schemes[i]);
        if (strncasecmp(v, schemes[i], n) == 0)
            return v[n] != '\0' && v[n] != '/';
    }
    return 0;
}

/* HH:MM, 00:00 to 23:59. */
static int cfg_clock_ok(const char *v)
{
    return strlen(v) == 5 && v[0] >= '0' && v[0] <= '2' && v[1] >= '0' && v[1] <= '9' &&
           (v[0] - '0') * 10 + (v[1] - '0') < 24 && v[2] == ':' && v[3] >= '0' && v[3] <= '5' &&
           v[4] >= '0' && v[4] <= '9';
}

/* The checks of the CFG_EMAIL, CFG_URL and CFG_CLOCK flags; 0 when v passes. */
static int cfg_form_ok(struct cfg_parser *ps, const struct cfg_option *o, const char *v)
{
    if ((o->flags & CFG_EMAIL) && !cfg_email_ok(v))
        return cfg_fail(ps, "'%s': '%.300s' is not an e-mail address (name@example.org)", o->name,
                        v);
    if ((o->flags & CFG_URL) && !cfg_url_ok(v))
        return cfg_fail(ps,
                        "'%s': '%.300s' is not a URL starting with http://, https://, smtp:// "
                        "or smtps://",
                        o->name, v);
    if ((o->flags & CFG_CLOCK) && !cfg_clock_ok(v))
        return cfg_fail(ps, "'%s' must be a time of day from 00:00 to 23:59, not '%.64s'", o->name,
                        v);
    return 0;
}

static int cfg_word_ok(struct cfg_parser *ps, const struct cfg_option *o, const char *w)
{
    size_t len = strlen(w);

    if (o->flags & (CFG_EMAIL | CFG_URL))
        return cfg_form_ok(ps, o, w);

    if (o->flags & CFG_DOMAIN) {
        if (!cfg_hostname_ok(w, len) || strchr(w, '_'))
            return cfg_fail(ps, "'%s': '%.300s' is not a domain name", o->name, w);
        return 0;
    }
    /* A group name, as the policy language writes it. */
    if (len == 0 || len > 64)
        return cfg_fail(ps, "'%s': a group name must be 1 to 64 characters", o->name);
    for (const char *s = w; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return cfg_fail(ps,
                            "'%s': group name '%.64s' may only use letters, digits, '-', '_' "
                            "and '.'",
                            o->name, w);
    }
    return 0;
}

static int cfg_bounds_fail(struct cfg_parser *ps, const struct cfg_option *o, const char *v)
{
    char lo[32], hi[32];

    if (o->type == CFG_DURATION) {
        config_format_duration(o->min, lo, sizeof(lo));
        config_format_duration(o->max, hi, sizeof(hi));
    } else if (o->type == CFG_SIZE) {
        config_format_size((uint64_t)o->min, lo, sizeof(lo));
        config_format_size((uint64_t)o->max, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%lld", (long long)o->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)o->max);
    }
    return cfg_fail(ps, "'%s' must be from %s to %s, not %.64s", o->name, lo, hi, v);
}

static int cfg_cidr_value(struct cfg_parser *ps, const struct cfg_option *o, const char *v,
                          struct config_cidr *out)
{
    int rc = cfg_parse_cidr(v, out);

    if (rc == -2) {
        char fixed[64];
        config_format_cidr(out, fixed, sizeof(fixed));
        return cfg_fail(ps, "'%s': %.64s has bits set after the prefix (did you mean %s?)", o->name,
                        v, fixed);
    }
    if (rc < 0)
        return cfg_fail(ps,
                        "'%s': '%.64s' is not an address range (write it as 10.20.0.0/16 or "
                        "fd00::/8)",
                        o->name, v);
    return 0;
}

/* Parse one value v of option o into slot (the field, or a new element of a list). */
static int cfg_value(struct cfg_parser *ps, const struct cfg_option *o, const char *v, void *slot)
{
    switch (o->type) {
    case CFG_STRING:
    case CFG_PATH: {
        if (*v == '\0' && !(o->flags & CFG_EMPTY))
            return cfg_fail(ps, "'%s' may not be empty", o->name);
        if (strlen(v) > (o->type == CFG_PATH ? CFG_PATH_MAX : CFG_TEXT_MAX))
            return cfg_fail(ps, "'%s' is too long (the limit is %d bytes)", o->name,
                            o->type == CFG_PATH ? CFG_PATH_MAX : CFG_TEXT_MAX);
        if ((o->flags & CFG_HEADER) && strpbrk(v, "\"\\"))
            return cfg_fail(ps, "'%s' may not contain '\"' or '\\'", o->name);
        if (*v != '\0' && cfg_form_ok(ps, o, v) < 0)
            return -1;
        char **p = slot;
        free(*p);
        *p = xstrdup(v);
        return 0;
    }
    case CFG_INT: {
        char *end;
        long long n;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (end == v || *end != '\0' || errno != 0 ||
            !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')))
            return cfg_fail(ps, "'%s' must be a whole number from %lld to %lld, not '%.64s'",
                            o->name, (long long)o->min, (long long)o->max, v);
        if (n < o->min || n > o->max)
            return cfg_bounds_fail(ps, o, v);
        *(int *)slot = (int)n;
        return 0;
    }
    case CFG_BOOL:
        if (config_parse_bool(v, slot) < 0)
            return cfg_fail(ps, "'%s' must be on or off, not '%.64s'", o->name, v);
        return 0;
    case CFG_DURATION: {
        int64_t ms;
        if (config_parse_duration(v, &ms) < 0)
            return cfg_fail(ps,
                            "'%s' must be a duration such as 500ms, 10s, 5m, 1h or 1d (a bare "
                            "number is seconds), not '%.64s'",
                            o->name, v);
        if (ms < o->min || ms > o->max)
            return cfg_bounds_fail(ps, o, v);
        *(int64_t *)slot = ms;
        return 0;
    }
    case CFG_SIZE: {
        uint64_t n;
        if (config_parse_size(v, &n) < 0)
            return cfg_fail(ps,
                            "'%s' must be a size such as 512, 8K, 64M or 1G (a bare number is "
                            "bytes), not '%.64s'",
                            o->name, v);
        if (n < (uint64_t)o->min || n > (uint64_t)o->max)
            return cfg_bounds_fail(ps, o, v);
        *(size_t *)slot = (size_t)n;
        return 0;
    }
    case CFG_ADDR: {
        struct config_addr *a = slot;
        if (*v == '\0' && (o->flags & CFG_EMPTY) && !(o->flags & CFG_LIST)) {
            memset(a, 0, sizeof(*a));
            return 0;
        }
        if (o->flags & CFG_IP) {
            if (config_parse_addr(v, 53, a) < 0 ||
                !(cfg_is_ip(a->host, AF_INET) || cfg_is_ip(a->host, AF_INET6)))
                return cfg_fail(ps,
                                "'%s' must be an IP address with an optional :PORT (IPv6 as "
                                "[::1]:53), not '%.64s'",
                                o->name, v);
            return 0;
        }
        if (config_parse_addr(v, 0, a) < 0)
            return cfg_fail(ps,
                            "'%s' must be HOST:PORT with a port from 1 to 65535 (IPv6 as "
                            "[::1]:3128), not '%.64s'",
                            o->name, v);
        return 0;
    }
    case CFG_CIDR:
        return cfg_cidr_value(ps, o, v, slot);
    case CFG_WORD:
        if (cfg_word_ok(ps, o, v) < 0)
            return -1;
        *(char **)slot = xstrdup(v);
        return 0;
    case CFG_NETWORK:
        break;
    }
    return cfg_fail(ps, "'%s' cannot be set this way", o->name);
}

static int cfg_addr_eq(const struct config_addr *a, const struct config_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int cfg_cidr_eq(const struct config_cidr *a, const struct config_cidr *b)
{
    return a->family == b->family && a->prefix == b->prefix && memcmp(a->addr, b->addr, 16) == 0;
}

/* Is element i of list o the same as an earlier one? */
static int cfg_list_dup(const struct config *c, const struct cfg_option *o, int i)
{
    const char *arr = cfg_list_array(c, o);
    size_t esz = cfg_elem_size(o->type);
    const void *e = arr + (size_t)i * esz;

    for (int j = 0; j < i; j++) {
        const void *p = arr + (size_t)j * esz;
        switch (o->type) {
        case CFG_ADDR:
            if (cfg_addr_eq(e, p))
                return 1;
            break;
        case CFG_CIDR:
            if (cfg_cidr_eq(e, p))
                return 1;
            break;
        case CFG_NETWORK:
            if (cfg_cidr_eq(&((const struct config_network *)e)->cidr,
                            &((const struct config_network *)p)->cidr))
                return 1;
            break;
        default: {
            const char *a, *b;
            memcpy(&a, e, sizeof(a));
            memcpy(&b, p, sizeof(b));
            if (strcasecmp(a, b) == 0)
                return 1;
            break;
        }
        }
    }
    return 0;
}

/* Set option o from the n values in v (the file's words after the name, or the default). */
static int cfg_set(struct cfg_parser *ps, const struct cfg_option *o, char **v, int n)
{
    struct config *c = ps->c;
    size_t idx = (size_t)(o - cfg_options);

    if (!(o->flags & CFG_LIST)) {
        if (!ps->defaults && ps->set_line[idx])
            return cfg_fail(ps, "'%s' is already set at line %lu", o->name, ps->set_line[idx]);
        if (n != 1)
            return cfg_fail(ps, "'%s' takes one value%s", o->name,
                            o->type == CFG_STRING ? " (put text with spaces in double quotes)"
                                                  : "");
        return cfg_value(ps, o, v[0], cfg_field(c, o));
    }
    /* The first time the file names a list, it replaces the default. */
    if (!ps->defaults && !ps->set_line[idx])
        cfg_list_clear(c, o);
    if (o->type == CFG_NETWORK) {
        if (n != 2)
            return cfg_fail(ps, "'network' takes two values: an address range and a group name "
                                "(network 10.20.0.0/16 guests)");
        if (*cfg_list_count(c, o) >= o->maxn)
            return cfg_fail(ps, "too many 'network' lines (the limit is %d)", o->maxn);
        struct config_network *net = cfg_list_append(c, o);
        if (cfg_cidr_value(ps, o, v[0], &net->cidr) < 0 || cfg_word_ok(ps, o, v[1]) < 0)
            return -1;
        net->group = xstrdup(v[1]);
        if (cfg_list_dup(c, o, *cfg_list_count(c, o) - 1))
            return cfg_fail(ps, "'network' %.64s is given twice", v[0]);
        return 0;
    }
    if (n == 1 && v[0][0] == '\0') {
        if (!(o->flags & CFG_EMPTY))
            return cfg_fail(ps, "'%s' needs at least %d value%s", o->name, o->minn,
                            o->minn == 1 ? "" : "s");
        if (*cfg_list_count(c, o) > 0)
            return cfg_fail(ps, "'%s' \"\" (none) cannot be mixed with values", o->name);
        return 0;
    }
    if (n == 0)
        return cfg_fail(ps, "'%s' needs a value", o->name);
    for (int i = 0; i < n; i++) {
        if (*cfg_list_count(c, o) >= o->maxn)
            return cfg_fail(ps, "'%s' holds at most %d values", o->name, o->maxn);
        if (cfg_value(ps, o, v[i], cfg_list_append(c, o)) < 0)
            return -1;
        if (cfg_list_dup(c, o, *cfg_list_count(c, o) - 1))
            return cfg_fail(ps, "'%s' names %.64s twice", o->name, v[i]);
    }
    return 0;
}

static int cfg_statement(struct cfg_parser *ps)
{
    const struct cfg_option *o;
    char *v[CFG_MAX_TOKENS];
    int n = ps->ntok - 1;

    if (ps->tok[0].quoted)
        return cfg_fail(ps, "an option name is a word, not a quoted string");
    o = cfg_find(ps->tok[0].s);
    if (!o)
        return cfg_unknown(ps, ps->tok[0].s);
    if (n == 0)
        return cfg_fail(ps, "'%s' needs a value (%s %s)", o->name, o->name, o->syntax);
    for (int i = 0; i < n; i++)
        v[i] = ps->tok[i + 1].s;
    if (n > 1 && (o->flags & CFG_LIST)) {
        for (int i = 0; i < n; i++) {
            if (v[i][0] == '\0')
                return cfg_fail(ps, "'%s': \"\" (none) must be the only value", o->name);
        }
    }
    if (cfg_set(ps, o, v, n) < 0)
        return -1;
    if (!ps->set_line[o - cfg_options])
        ps->set_line[o - cfg_options] = ps->line;
    return 0;
}

static int cfg_parse(struct cfg_parser *ps, const char *text, size_t len)
{
    char line[CFG_LINE_MAX + 1];
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

        ps->line++;
        if (n > 0 && text[pos + n - 1] == '\r')
            n--;
        if (n > CFG_LINE_MAX)
            return cfg_fail(ps, "line too long (the limit is %d bytes)", CFG_LINE_MAX);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos = nl ? (size_t)(nl - text) + 1 : len;
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
                return cfg_fail(ps, "control character in the line");
            if ((unsigned char)line[i] == 0x7f)
                return cfg_fail(ps, "control character in the line");
        }
        if (cfg_tokenize(ps, line) < 0)
            return -1;
        if (ps->ntok > 0 && cfg_statement(ps) < 0)
            return -1;
    }
    return 0;
}

static int cfg_apply_defaults(struct cfg_parser *ps)
{
    for (size_t i = 0; i < CFG_NOPTIONS; i++) {
        const struct cfg_option *o = &cfg_options[i];
        char text[256], *v[16];
        int n = 0;

        if (o->type == CFG_STRING || o->type == CFG_PATH) {
            /* Every string field is non-NULL. */
            char **p = cfg_field(ps->c, o);
            *p = xstrdup("");
        }
        if (!o->def)
            continue;
        /* Defaults are written as in the file; "" is an empty value. */
        snprintf(text, sizeof(text), "%s", o->def);
        if (text[0] == '"') {
            size_t l = strlen(text);
            memmove(text, text + 1, l);
            text[l - 2] = '\0';
            v[n++] = text;
        } else {
            for (char *s = text; *s && n < (int)HAVEN_ARRAY_LEN(v);) {
                v[n++] = s;
                s += strcspn(s, " ");
                if (*s)
                    *s++ = '\0';
            }
        }
        if (cfg_set(ps, o, v, n) < 0)
            return -1;
    }
    return 0;
}

/* base/path, unless path is absolute or empty. */
static char *cfg_resolve(const char *base, const char *path)
{
    size_t bl = strlen(base), size;
    char *buf;

    if (path[0] == '\0' || path[0] == '/')
        return xstrdup(path);
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    while (path[0] == '/')
        path++;
    if (path[0] == '\0' || strcmp(path, ".") == 0)
        return xstrdup(base);
    size = bl + strlen(path) + 2;
    buf = xmalloc(size);
    snprintf(buf, size, "%s%s%s", base, bl > 0 && base[bl - 1] == '/' ? "" : "/", path);
    return buf;
}

static int cfg_finish(struct cfg_parser *ps)
{
    struct config *c = ps->c;

    for (size_t i = 0; i < CFG_NOPTIONS; i++) {
        const struct cfg_option *o = &cfg_options[i];
        if ((o->flags & CFG_REQUIRED) && !ps->set_line[i])
            return cfg_fail(ps, "missing required option '%s' (add a line '%s %s')", o->name,
                            o->name, o->syntax);
    }
    if (c->dns_min_ttl_ms > c->dns_max_ttl_ms) {
        char lo[32], hi[32];
        size_t a = (size_t)(cfg_find("dns-min-ttl") - cfg_options);
        size_t b = (size_t)(cfg_find("dns-max-ttl") - cfg_options);
        ps->line = ps->set_line[a] > ps->set_line[b] ? ps->set_line[a] : ps->set_line[b];
        config_format_duration(c->dns_min_ttl_ms, lo, sizeof(lo));
        config_format_duration(c->dns_max_ttl_ms, hi, sizeof(hi));
        return cfg_fail(ps, "'dns-min-ttl' (%s) is longer than 'dns-max-ttl' (%s)", lo, hi);
    }
    /* Paths: the file's directory first, then data-dir for the logs. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < CFG_NOPTIONS; i++) {
            const struct cfg_option *o = &cfg_options[i];
            if (o->type != CFG_PATH || (pass == 0) != !(o->flags & CFG_DATA_DIR))
                continue;
            char **p = cfg_field(c, o);
            char *abs = cfg_resolve(pass == 0 ? c->dir : c->data_dir, *p);
            free(*p);
            *p = abs;
            if (strlen(abs) > CFG_PATH_MAX) {
                /* Blame the line that made it long: its own, or data-dir's. */
                size_t dd = (size_t)(cfg_find("data-dir") - cfg_options);
                ps->line = ps->set_line[i] ? ps->set_line[i] : ps->set_line[dd];
                return cfg_fail(ps,
                                "'%s' is too long once resolved to a full path (the limit is "
                                "%d bytes)",
                                o->name, CFG_PATH_MAX);
            }
        }
    }
    for (int i = 0; i < c->ndns_block_address; i++) {
        const struct config_cidr *a = &c->dns_block_address[i];
        if (a->prefix != (a->family == AF_INET ? 32 : 128) ||
            (i == 1 && a->family == c->dns_block_address[0].family)) {
            ps->line = ps->set_line[cfg_find("dns-block-address") - cfg_options];
            return cfg_fail(ps, "'dns-block-address' takes one IPv4 and one IPv6 address at "
                                "most, without a /prefix");
        }
    }
    if (c->pac_proxy.host[0] == '\0')
        c->pac_proxy = c->listen[0];
    return 0;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CFG_NOPTIONS; i++) {
        const struct cfg_option *o = &cfg_options[i];
        if (o->flags & CFG_LIST) {
            cfg_list_clear(c, o);
        } else if (o->type == CFG_STRING || o->type == CFG_PATH) {
            char **p = cfg_field(c, o);
            free(*p);
        }
    }
    free(c->file);
    free(c->dir);
    free(c);
}

/* dir made absolute; NULL (with a message) when the current directory is unknown. */
static char *cfg_absdir(const char *dir, char *err, size_t errlen)
{
    char cwd[4096];

    if (dir && dir[0] == '/')
        return xstrdup(dir);
    if (!getcwd(cwd, sizeof(cwd))) {
        snprintf(err, errlen, "cannot find the current directory: %s", strerror(errno));
        return NULL;
    }
    return cfg_resolve(cwd, dir && dir[0] ? dir : ".");
}

struct config *config_load_buffer(const char *name, const char *dir, const char *text, size_t len,
                                  char *err, size_t errlen)
{
    struct config *c = xcalloc(1, sizeof(*c));
    struct cfg_parser *ps = xcalloc(1, sizeof(*ps));
    struct config *result = NULL;

    c->file = xstrdup(name);
    c->dir = cfg_absdir(dir, err, errlen);
    if (!c->dir)
        goto out;
    ps->c = c;
    ps->file = name;
    ps->err = err;
    ps->errlen = errlen;
    ps->defaults = 1;
    if (cfg_apply_defaults(ps) < 0)
        goto out;
    ps->defaults = 0;
    if (cfg_parse(ps, text, len) < 0)
        goto out;
    if (cfg_finish(ps) < 0)
        goto out;
    result = c;
    c = NULL;
out:
    config_free(c);
    free(ps);
    return result;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL, *dir = NULL;
    const char *slash = strrchr(path, '/');
    size_t len = 0, n;
    struct config *c = NULL;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    text = xmalloc(CFG_MAX_FILE + 1);
    do {
        n = fread(text + len, 1, CFG_MAX_FILE + 1 - len, f);
        len += n;
    } while (n > 0 && len <= CFG_MAX_FILE);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    if (len > CFG_MAX_FILE) {
        snprintf(err, errlen, "%s: file larger than 1 MiB", path);
        goto out;
    }
    dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup("");
    c = config_load_buffer(path, dir, text, len, err, errlen);
out:
    if (f)
        fclose(f);
    free(text);
    free(dir);
    return c;
}

/* ---------------------------------------------------------------- dump and reference */

static void cfg_put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Write text as "# " comment lines of at most about 80 columns. */
static void cfg_put_comment(FILE *f, const char *text)
{
    size_t col = 0;

    while (*text) {
        size_t w = strcspn(text, " ");
        if (col > 0 && col + 1 + w > 78) {
            fputc('\n', f);
            col = 0;
        }
        if (col == 0) {
            fputs("#", f);
            col = 1;
        }
        fprintf(f, " %.*s", (int)w, text);
        col += 1 + w;
        text += w;
        while (*text == ' ')
            text++;
    }
    fputc('\n', f);
}

static void cfg_format_addr(const struct config_addr *a, char *buf, size_t size)
{
    if (strchr(a->host, ':'))
        snprintf(buf, size, "[%s]:%u", a->host, (unsigned)a->port);
    else
        snprintf(buf, size, "%s:%u", a->host, (unsigned)a->port);
}

/* Write one element of a list, or a single value, as the file writes it. */
static void cfg_put_value(FILE *f, const struct cfg_option *o, const void *slot)
{
    char buf[CONFIG_HOST_MAX + 16];

    switch (o->type) {
    case CFG_STRING:
    case CFG_PATH:
        cfg_put_quoted(f, *(char *const *)slot);
        return;
    case CFG_INT:
        fprintf(f, "%d", *(const int *)slot);
        return;
    case CFG_BOOL:
        fputs(*(const int *)slot ? "on" : "off", f);
        return;
    case CFG_DURATION:
        config_format_duration(*(const int64_t *)slot, buf, sizeof(buf));
        break;
    case CFG_SIZE:
        config_format_size(*(const size_t *)slot, buf, sizeof(buf));
        break;
    case CFG_ADDR:
        cfg_format_addr(slot, buf, sizeof(buf));
        break;
    case CFG_CIDR:
        config_format_cidr(slot, buf, sizeof(buf));
        break;
    case CFG_WORD:
        fputs(*(char *const *)slot, f);
        return;
    case CFG_NETWORK: {
        const struct config_network *n = slot;
        config_format_cidr(&n->cidr, buf, sizeof(buf));
        fprintf(f, "%s %s", buf, n->group);
        return;
    }
    }
    fputs(buf, f);
}

void config_dump(const struct config *c, FILE *f)
{
    fputs("# The configuration of haven serve as loaded from ", f);
    for (const char *s = c->file; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
    fputs(",\n# with every option at its effective value. See docs/configuration.md.\n", f);
    for (size_t i = 0; i < CFG_NOPTIONS; i++) {
        const struct cfg_option *o = &cfg_options[i];

        if (o->section)
            fprintf(f, "\n# ---- %s\n", o->section);
        fputc('\n', f);
        cfg_put_comment(f, o->help);
        if (!(o->flags & CFG_LIST)) {
            fprintf(f, "%s ", o->name);
            cfg_put_value(f, o, cfg_cfield(c, o));
            fputc('\n', f);
            continue;
        }
        const char *arr = cfg_list_array(c, o);
        int n = cfg_list_ccount(c, o);
        size_t esz = cfg_elem_size(o->type);
        if (n == 0) {
            if (o->flags & CFG_EMPTY)
                fprintf(f, "%s \"\"\n", o->name);
            else
                fprintf(f, "# %s %s (none)\n", o->name, o->syntax);
            continue;
        }
        /* Several lines of a few values: repeating a list option adds to it. */
        int per_line = o->type == CFG_NETWORK ? 1 : 8;
        for (int j = 0; j < n; j++) {
            if (j % per_line == 0)
                fprintf(f, "%s%s", j > 0 ? "\n" : "", o->name);
            fputc(' ', f);
            cfg_put_value(f, o, arr + (size_t)j * esz);
        }
        fputc('\n', f);
    }
}

static const char *cfg_type_name(const struct cfg_option *o)
{
    switch (o->type) {
    case CFG_STRING:
        return "text";
    case CFG_PATH:
        return (o->flags & CFG_DATA_DIR) ? "path (relative to data-dir)" : "path";
    case CFG_INT:
        return "whole number";
    case CFG_BOOL:
        return "on or off";
    case CFG_DURATION:
        return "duration";
    case CFG_SIZE:
        return "size";
    case CFG_ADDR:
        if (o->flags & CFG_IP)
            return "list of IP addresses, each with an optional port";
        return (o->flags & CFG_LIST) ? "list of addresses" : "address";
    case CFG_CIDR:
        return (o->flags & CFG_LIST) ? "list of address ranges" : "address range";
    case CFG_WORD:
        if (o->flags & CFG_EMAIL)
            return "list of e-mail addresses";
        if (o->flags & CFG_URL)
            return "list of URLs";
        return (o->flags & CFG_DOMAIN) ? "list of domain names" : "list of group names";
    case CFG_NETWORK:
        return "address range and group name; repeatable";
    }
    return "?";
}

static void cfg_markdown_bounds(FILE *f, const struct cfg_option *o)
{
    char lo[32], hi[32];

    if (o->flags & CFG_LIST) {
        if (o->type == CFG_NETWORK)
            fprintf(f, "- **At most:** %d lines\n", o->maxn);
        else
            fprintf(f, "- **Values:** %d to %d\n", o->minn, o->maxn);
        return;
    }
    if (o->type == CFG_INT) {
        snprintf(lo, sizeof(lo), "%lld", (long long)o->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)o->max);
    } else if (o->type == CFG_DURATION) {
        config_format_duration(o->min, lo, sizeof(lo));
        config_format_duration(o->max, hi, sizeof(hi));
    } else if (o->type == CFG_SIZE) {
        config_format_size((uint64_t)o->min, lo, sizeof(lo));
        config_format_size((uint64_t)o->max, hi, sizeof(hi));
    } else {
        return;
    }
    fprintf(f, "- **Bounds:** `%s` to `%s`\n", lo, hi);
}

void config_write_markdown(FILE *f)
{
    fputs(
        "# Configuration\n\n"
        "<!-- Generated from the option table in src/config/config.c by config_write_markdown();"
        " do not edit. -->\n\n"
        "`haven serve --config FILE` reads this file; `haven serve --config FILE "
        "--check-config`\n"
        "checks it with the same parser and exits. The demo configuration that `make run` uses,\n"
        "[`demo/haven.conf`](../demo/haven.conf), is a complete example.\n\n"
        "## Format\n\n"
        "One option per line: `name value...`. `#` starts a comment (outside quotes). Text with\n"
        "spaces goes in double quotes, with `\\\"` and `\\\\` inside them; `\"\"` is an empty\n"
        "value. Options may come in any order. An option that takes one value may be set only\n"
        "once; an option that takes a list may be given several values on one line or be\n"
        "repeated, and the values add up (the first time the file names it, it replaces the\n"
        "default). Unknown options are errors. A file that does not load is reported as\n"
        "`FILE:LINE: what is wrong`.\n\n"
        "Relative paths are relative to the directory of the configuration file, except\n"
        "`access-log` and `squid-log`, which are relative to `data-dir`.\n\n"
        "Values:\n\n"
        "- **duration**: a whole number with `ms`, `s`, `m`, `h` or `d` (`500ms`, `10s`, `10m`);\n"
        "  a bare number is seconds.\n"
        "- **size**: a whole number with `K`, `M` or `G` (1024, 1024², 1024³: `8K`, `256M`);\n"
        "  a bare number is bytes.\n"
        "- **address**: `HOST:PORT`, where HOST is an IPv4 address, a name, or an IPv6 address\n"
        "  in brackets (`127.0.0.1:3128`, `[::1]:3128`, `proxy.school.example:3128`).\n"
        "- **address range**: `ADDRESS/PREFIX` (`10.20.0.0/16`, `fd00::/8`); the bits after the\n"
        "  prefix must be zero; a bare address is a range of one. An IPv4 client seen on an\n"
        "  IPv6 socket (`::ffff:10.20.1.2`) is matched as IPv4.\n\n"
        "| option | type | default |\n"
        "|---|---|---|\n",
        f);
    for (size_t i = 0; i < CFG_NOPTIONS; i++) {
        const struct cfg_option *o = &cfg_options[i];
        fprintf(f, "| [`%s`](#%s) | %s | %s%s%s |\n", o->name, o->name, cfg_type_name(o),
                o->def ? "`" : "",
                o->def                      ? o->def
                : (o->flags & CFG_REQUIRED) ? "required"
                                            : "none",
                o->def ? "`" : "");
    }
    for (size_t i = 0; i < CFG_NOPTIONS; i++) {
        const struct cfg_option *o = &cfg_options[i];
        if (o->section)
            fprintf(f, "\n## %s\n", o->section);
        fprintf(f, "\n### %s\n\n`%s %s`\n\n%s\n\n", o->name, o->name, o->syntax, o->help);
        fprintf(f, "- **Type:** %s\n", cfg_type_name(o));
        if (o->flags & CFG_REQUIRED)
            fputs("- **Required**\n", f);
        else if (o->def)
            fprintf(f, "- **Default:** `%s`\n", o->def);
        else
            fputs("- **Default:** none\n", f);
        cfg_markdown_bounds(f, o);
    }
}
