/*
 * snapshot.h -- everything a decision needs, loaded together and shared read-only.
 *
 * A snapshot holds the compiled policy (with its category database) and the
 * identity snapshot (users, sessions). It never changes after snapshot_load;
 * a reload builds a new one and workers switch to it. Each holder (a worker's
 * "current", each request in flight) owns one reference; the last unref frees
 * it, so a request always finishes on the snapshot it started with.
 */
#ifndef HAVEN_PROXY_SNAPSHOT_H
#define HAVEN_PROXY_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct policy;
struct ident;

struct match_db;

struct snapshot {
    atomic_int refs;
    struct policy *policy;
    struct ident *ident;      /* NULL when no users database exists yet */
    struct match_db *monitor; /* the keyword libraries, compiled (owned like policy) */
    int64_t loaded_at;        /* seconds since the epoch */
    uint64_t generation;      /* 1, 2, ... per successful load */
    /* After a users-only refresh, the snapshot that owns policy (one reference), else NULL. */
    struct snapshot *policy_owner;
};

/*
 * The users database changes (sessions added by `haven session`, imports) without a
 * reload: a new snapshot with the same policy (shared with old) and freshly loaded users.
 */
struct snapshot *snapshot_refresh_users(struct snapshot *old, const struct config *cfg, char *err,
                                        size_t errlen);

/* A stamp that changes when users or sessions are written ("" when there is no users
 * database); records written to the same file leave it alone. */
void snapshot_users_stamp(const struct config *cfg, char *stamp, size_t size);

/* Load the policy, the category database and the users named by cfg. Returns a snapshot
 * with one reference, or NULL with the reason in err. */
struct snapshot *snapshot_load(const struct config *cfg, uint64_t generation, char *err,
                               size_t errlen);

void snapshot_ref(struct snapshot *s);
/* Drop a reference; the last one frees the snapshot. */
void snapshot_unref(struct snapshot *s);

#endif
