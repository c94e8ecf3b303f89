/*
 * config.h -- the configuration of `haven serve`.
 *
 * One table in config.c describes every option: its name, type, bounds,
 * default, flags and a one-sentence help text (STYLE.md rule 16). That table
 * drives parsing, validation, `haven serve --check-config`, the dump
 * (config_dump) and the generated reference docs/configuration.md
 * (config_write_markdown).
 *
 * The file is one option per line, `name value...`, with `#` comments outside
 * quotes and double-quoted strings with \" and \\ escapes (the same feel as the
 * policy language). Every error is reported as "FILE:LINE: message".
 *
 * Invariants of a struct config returned by config_load*:
 *   - every option holds its effective value: defaults are applied, bounds are
 *     checked, required options are present;
 *   - every path is absolute: relative paths in the file are resolved against
 *     the config file's directory, and access-log and squid-log against
 *     data-dir; a disabled log is the empty string, never NULL;
 *   - every string field is non-NULL (empty when unset);
 *   - pac_proxy is filled in (it is listen[0] when the file does not set it);
 *   - dns_min_ttl_ms <= dns_max_ttl_ms.
 * Group names (network, sign-in) are checked only for their spelling here; the
 * daemon checks them against the policy when it loads both.
 * A config never changes after it is loaded; any number of threads may read
 * it. A reload loads a new one (STYLE.md rule 15).
 */
#ifndef HAVEN_CONFIG_CONFIG_H
#define HAVEN_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sockaddr;

#define CONFIG_MAX_LISTEN 8
#define CONFIG_HOST_MAX 256

/* host:port. host is an IPv4 or IPv6 literal (without brackets) or a name. */
struct config_addr {
    char host[CONFIG_HOST_MAX];
    uint16_t port;
};

/* An address range: family is AF_INET or AF_INET6; addr holds 4 or 16 bytes
 * in network order; the bits after prefix are zero. */
struct config_cidr {
    int family;
    unsigned char addr[16];
    int prefix;
};

/* `network CIDR GROUP`: clients in cidr belong to group. */
struct config_network {
    struct config_cidr cidr;
    char *group;
};

struct config {
    char *file; /* the configuration file, as named to config_load */
    char *dir;  /* its directory, absolute */

    struct config_addr *listen; /* 1 to CONFIG_MAX_LISTEN */
    int nlisten;
    int workers; /* 0: one per CPU core */
    char *user;  /* drop to this user after binding; "" = do not change */

    char *policy;
    char *database;
    char *data_dir;
    char *access_log;    /* "" = disabled */
    char *squid_log;     /* "" = disabled */
    size_t log_max_size; /* bytes; 0 = no rotation by size */
    int log_keep;
    int log_queue;

    struct config_addr *resolvers; /* none: use /etc/resolv.conf */
    int nresolvers;
    int dns_cache_size;
    int64_t dns_min_ttl_ms;
    int64_t dns_max_ttl_ms;

    struct config_addr *dns_listen; /* none: no DNS filter */
    int ndns_listen;
    struct config_addr *dns_upstream; /* none: resolvers, else /etc/resolv.conf */
    int ndns_upstream;
    struct config_cidr *dns_allow; /* besides the networks */
    int ndns_allow;
    int dns_rate_limit; /* queries per second per client; 0 = none */
    size_t dns_cache_memory;
    struct config_cidr *dns_block_address; /* single addresses, at most one per family */
    int ndns_block_address;
    int64_t dns_timeout_ms;

    int max_connections;
    int64_t timeout_request_head_ms;
    int64_t timeout_keepalive_ms;
    int64_t timeout_tunnel_idle_ms;
    int64_t timeout_connect_ms;
    int64_t timeout_upstream_idle_ms;
    int64_t timeout_drain_ms;
    size_t max_request_line;
    size_t max_header_block;
    int max_headers;
    int upstream_pool;

    struct config_network *networks; /* in file order */
    int nnetworks;
    char **sign_in; /* group names */
    int nsign_in;
    char *sign_in_realm;

    struct config_addr pac_proxy;
    char **pac_direct; /* domain names */
    int npac_direct;

    struct config_cidr *status_allow;
    int nstatus_allow;
    char *school_name; /* "" = the policy's school name */
    char *ca_dir;      /* the inspection CA */
    char *upstream_ca; /* "" = system trust store only */
    int tls_leaf_cache;

    char *monitor_dir; /* "" = the libraries that come with haven */
    size_t monitor_page_max;
    char **alert_email_to;
    int nalert_email_to;
    char **alert_urgent_to;
    int nalert_urgent_to;
    char *alert_email_from;
    char *alert_smtp; /* "" = no e-mail */
    char *alert_smtp_user;
    char *alert_smtp_password_file;
    char **alert_webhook;
    int nalert_webhook;
    int alert_syslog;
    int64_t alert_dedup_ms;
    char *alert_digest_at; /* "HH:MM" */
    char *console_url;
    int64_t retain_events_ms;
    int64_t retain_rollups_ms;
    int64_t retain_alerts_ms;
};

/*
 * Read, parse and validate the file at path. Returns the configuration
 * (caller frees with config_free), or NULL with "FILE:LINE: message" (or
 * "FILE: message" when the file cannot be read) in err.
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/*
 * The same from text in memory. name is used in messages and kept as
 * c->file; relative paths are resolved against dir (NULL or "" = the current
 * directory; a relative dir is made absolute with the current directory).
 */
struct config *config_load_buffer(const char *name, const char *dir, const char *text, size_t len,
                                  char *err, size_t errlen);

void config_free(struct config *c);

/* Write every option with its effective value, in the file format: the
 * output loads again as the same configuration. */
void config_dump(const struct config *c, FILE *f);

/* Write the reference (docs/configuration.md), generated from the table. */
void config_write_markdown(FILE *f);

/* 1 if the address sa (AF_INET or AF_INET6) is in c, else 0. An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) matches IPv4 ranges, and the other way round. */
int config_cidr_match(const struct config_cidr *c, const struct sockaddr *sa);

/* The group of the most specific `network` containing sa, or NULL. The string
 * belongs to c. */
const char *config_network_group(const struct config *c, const struct sockaddr *sa);

/*
 * The value syntaxes of the file, for command-line options that take the
 * same values. Each returns 0, or -1 when s is not of the form (no message).
 *   duration: a whole number with ms, s, m, h or d; a bare number is seconds;
 *   size: a whole number with K, M or G (binary); a bare number is bytes;
 *   bool: on/off, yes/no;
 *   addr: host:port, IPv6 as [::1]:3128; with default_port > 0 the port may
 *         be left out (then an IPv6 literal may also be written bare);
 *   cidr: a.b.c.d/n or x::/n (bits after the prefix must be zero); a bare
 *         address is a range of one.
 */
int config_parse_duration(const char *s, int64_t *ms);
int config_parse_size(const char *s, uint64_t *bytes);
int config_parse_bool(const char *s, int *on);
int config_parse_addr(const char *s, int default_port, struct config_addr *a);
int config_parse_cidr(const char *s, struct config_cidr *c);

/* Write d as the shortest exact duration ("10s", "1h", "500ms"), or size as
 * "8K", "256M", "1000". */
void config_format_duration(int64_t ms, char *buf, size_t size);
void config_format_size(uint64_t bytes, char *buf, size_t size);
/* Write c as "10.20.0.0/16" or "fd00::/8"; buf needs 50 bytes. */
void config_format_cidr(const struct config_cidr *c, char *buf, size_t size);

#endif
