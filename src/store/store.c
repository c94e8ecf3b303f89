/*
 * store.c -- pick a back-end and call through its table of functions.
 */
#include "common/compat.h"

#include "store/store.h"

static const struct store_ops *store_ops_of(const struct store *st)
{
    return ((const struct store_base *)(const void *)st)->ops;
}

struct store *store_open(const char *path, char *err, size_t errlen)
{
    /* PostgreSQL ("postgresql://...") will be chosen here; today every path is SQLite. */
    return sqlite_store_ops.open(path, err, errlen);
}

void store_close(struct store *st)
{
    if (!st)
        return;
    store_ops_of(st)->close(st);
}

const char *store_backend_name(const struct store *st)
{
    return store_ops_of(st)->name;
}

int store_migrate(struct store *st, char *err, size_t errlen)
{
    return store_ops_of(st)->migrate(st, err, errlen);
}

int store_schema_version(struct store *st, int *version, char *err, size_t errlen)
{
    return store_ops_of(st)->schema_version(st, version, err, errlen);
}

int store_begin(struct store *st, char *err, size_t errlen)
{
    return store_ops_of(st)->begin(st, err, errlen);
}

int store_commit(struct store *st, char *err, size_t errlen)
{
    return store_ops_of(st)->commit(st, err, errlen);
}

void store_rollback(struct store *st)
{
    store_ops_of(st)->rollback(st);
}

enum store_put store_user_put(struct store *st, const struct store_user *u, char *err,
                              size_t errlen)
{
    return store_ops_of(st)->user_put(st, u, err, errlen);
}

int store_user_get(struct store *st, const char *username, struct store_user *out, char *err,
                   size_t errlen)
{
    return store_ops_of(st)->user_get(st, username, out, err, errlen);
}

void store_user_cleanup(struct store_user *u)
{
    free((char *)(uintptr_t)u->username);
    free((char *)(uintptr_t)u->group_name);
    free((char *)(uintptr_t)u->display_name);
    free((char *)(uintptr_t)u->password_hash);
    memset(u, 0, sizeof(*u));
}

int store_user_delete(struct store *st, const char *username, char *err, size_t errlen)
{
    return store_ops_of(st)->user_delete(st, username, err, errlen);
}

int store_user_list(struct store *st, store_user_fn fn, void *arg, char *err, size_t errlen)
{
    return store_ops_of(st)->user_list(st, fn, arg, err, errlen);
}

int store_set_password(struct store *st, const char *username, const char *hash, char *err,
                       size_t errlen)
{
    return store_ops_of(st)->set_password(st, username, hash, err, errlen);
}

int store_session_put(struct store *st, const struct store_session *s, char *err, size_t errlen)
{
    return store_ops_of(st)->session_put(st, s, err, errlen);
}

int store_session_delete(struct store *st, const char *ip, char *err, size_t errlen)
{
    return store_ops_of(st)->session_delete(st, ip, err, errlen);
}

int store_session_list(struct store *st, store_session_fn fn, void *arg, char *err, size_t errlen)
{
    return store_ops_of(st)->session_list(st, fn, arg, err, errlen);
}

int store_session_purge_expired(struct store *st, int64_t now, char *err, size_t errlen)
{
    return store_ops_of(st)->session_purge_expired(st, now, err, errlen);
}
