#include "common/compat.h"

#include <sys/stat.h>
#include <unistd.h>

#include "catdb/catdb.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "ident/ident.h"
#include "monitor/match.h"
#include "policy/policy.h"
#include "proxy/snapshot.h"
#include "store/store.h"
#include "tls/ca.h"

/* The users database is optional: no file means nobody has been imported yet. */
static int snapshot_load_ident(const struct config *cfg, struct snapshot *s, char *err,
                               size_t errlen)
{
    char path[4096];
    struct stat st;
    struct store *store;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/users.sqlite", cfg->data_dir);
    if (stat(path, &st) != 0)
        return 0;
    store = store_open(path, err, errlen);
    if (!store)
        return -1;
    if (store_migrate(store, err, errlen) == 0) {
        s->ident = ident_load(store, err, errlen);
        rc = s->ident ? 0 : -1;
    }
    store_close(store);
    return rc;
}

struct snapshot *snapshot_load(const struct config *cfg, uint64_t generation, char *err,
                               size_t errlen)
{
    struct snapshot *s = xcalloc(1, sizeof(*s));
    struct catdb *db = catdb_open(cfg->database, err, errlen);

    if (!db)
        goto fail;
    s->policy = policy_load(cfg->policy, db, err, errlen);
    if (!s->policy)
        goto fail;
    if (snapshot_load_ident(cfg, s, err, errlen) < 0)
        goto fail;
    s->monitor =
        match_db_load_dir(cfg->monitor_dir[0] ? cfg->monitor_dir : HAVEN_MONITOR_DIR, err, errlen);
    if (!s->monitor)
        goto fail;
    /* A policy that inspects HTTPS needs the school CA: say how to make one. */
    if (policy_inspecting_group(s->policy)) {
        char ca[4096];
        snprintf(ca, sizeof(ca), "%s/%s", cfg->ca_dir, CA_CERT_FILE);
        if (access(ca, F_OK) != 0) {
            snprintf(err, errlen,
                     "group '%s' has `inspect on`, but there is no inspection CA in %s (make one "
                     "with `haven ca init --dir %s`)",
                     policy_inspecting_group(s->policy), cfg->ca_dir, cfg->ca_dir);
            goto fail;
        }
    }
    /* Every group the configuration names must exist in the policy. */
    for (int i = 0; i < cfg->nnetworks; i++) {
        if (policy_group_find(s->policy, cfg->networks[i].group) < 0) {
            snprintf(err, errlen, "%s: network %s: the policy has no group '%s'", cfg->file,
                     "range", cfg->networks[i].group);
            goto fail;
        }
    }
    atomic_init(&s->refs, 1);
    s->loaded_at = clock_now();
    s->generation = generation;
    return s;
fail:
    if (s->ident)
        ident_free(s->ident);
    match_db_free(s->monitor);
    policy_free(s->policy);
    free(s);
    return NULL;
}

struct snapshot *snapshot_refresh_users(struct snapshot *old, const struct config *cfg, char *err,
                                        size_t errlen)
{
    struct snapshot *s = xcalloc(1, sizeof(*s));

    if (snapshot_load_ident(cfg, s, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    s->policy = old->policy;
    s->monitor = old->monitor;
    s->policy_owner = old->policy_owner ? old->policy_owner : old;
    snapshot_ref(s->policy_owner);
    atomic_init(&s->refs, 1);
    s->loaded_at = old->loaded_at;
    s->generation = old->generation;
    return s;
}

void snapshot_users_stamp(const struct config *cfg, char *stamp, size_t size)
{
    char path[4096], err[512];
    struct stat st;
    struct store *store;
    int64_t v;

    stamp[0] = '\0';
    snprintf(path, sizeof(path), "%s/users.sqlite", cfg->data_dir);
    if (stat(path, &st) != 0)
        return;
    /* The same file holds the safeguarding records, written all the time: ask the counter
     * of user and session changes, not the file's size or time. */
    store = store_open(path, err, sizeof(err));
    if (store && store_users_version(store, &v, err, sizeof(err)) == 0)
        snprintf(stamp, size, "%llu:%lld", (unsigned long long)st.st_ino, (long long)v);
    else
        snprintf(stamp, size, "%llu:%lld.%09ld", (unsigned long long)st.st_ino,
                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    store_close(store);
}

void snapshot_ref(struct snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void snapshot_unref(struct snapshot *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (s->ident)
        ident_free(s->ident);
    if (s->policy_owner) {
        snapshot_unref(s->policy_owner);
    } else {
        policy_free(s->policy);
        match_db_free(s->monitor);
    }
    free(s);
}
