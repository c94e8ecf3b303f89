/*
 * lists.c -- `haven lists`: compile, update, categories, info.
 */
#include "common/compat.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catdb/build.h"
#include "catdb/catdb.h"
#include "catdb/import.h"
#include "catdb/taxonomy.h"
#include "cli/cli.h"
#include "common/xalloc.h"

#define LISTS_UT1_URL "http://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz"
#define LISTS_UT1_NOTE                                                                             \
    "Category data includes the UT1 blacklists by Fabrice Prigent, Universite Toulouse "           \
    "Capitole, licensed under CC BY-SA 4.0 (https://dsi.ut-capitole.fr/blacklists/)."
/* Rejected lines shown per file on the terminal; --rejects FILE gets them all. */
#define LISTS_SHOW_REJECTS 5
#define LISTS_MAX_DOWNLOAD (2ULL << 30)

static const char lists_usage[] =
    "usage: haven lists compile [--ut1 DIR] [--list CATEGORY=FILE]... [--rejects FILE]\n"
    "                           [--source TEXT] -o FILE\n"
    "       haven lists update [--url URL] [--list CATEGORY=FILE]... [-o FILE]\n"
    "       haven lists categories [--markdown]\n"
    "       haven lists info [--db FILE]\n"
    "CATEGORY is a haven category (haven lists categories), a UT1 list name, or a new name.\n";

struct lists_run {
    const char *file; /* current file, to count its rejects */
    unsigned long file_rejects;
    FILE *rejects; /* --rejects FILE, or NULL */
    int tty;
};

static void lists_reject(void *arg, const char *file, unsigned long line, const char *why,
                         const char *text, size_t len)
{
    struct lists_run *r = arg;
    int n = len > 120 ? 120 : (int)len;

    if (r->rejects)
        fprintf(r->rejects, "%s:%lu: %s: %.*s\n", file, line, why, n, text);
    if (r->file != file) {
        r->file = file;
        r->file_rejects = 0;
    }
    if (++r->file_rejects <= LISTS_SHOW_REJECTS) {
        if (r->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "%s:%lu: %s: %.*s\n", file, line, why, n, text);
    }
}

static void lists_progress(void *arg, const char *what, int done, int total)
{
    struct lists_run *r = arg;
    int width = 30, fill = total ? done * width / total : width;

    if (!r->tty)
        return;
    fprintf(stderr, "\r\033[K[%.*s%*s] %d/%d %s", fill, "##############################",
            width - fill, "", done, total, what);
    if (done == total)
        fputs("\r\033[K", stderr);
}

/* Where a list file's name comes from: its last two path components. */
static const char *lists_short_name(const char *path)
{
    const char *last = strrchr(path, '/');

    if (!last)
        return path;
    for (const char *p = last - 1; p >= path; p--) {
        if (*p == '/')
            return p + 1;
    }
    return path;
}

/* "pornography", "adult" (a UT1 name) or a new name: the category to file it under. */
static const char *lists_category(const char *name)
{
    int t = taxonomy_find(name);

    if (t < 0)
        t = taxonomy_find_ut1(name);
    return t >= 0 ? taxonomy_get(t)->name : name;
}

static int lists_add_files(struct import_ctx *ic, char **specs, int nspecs)
{
    for (int i = 0; i < nspecs; i++) {
        char *eq = strchr(specs[i], '=');
        char cat[128], err[1024];
        int list;

        if (!eq || eq == specs[i] || eq[1] == '\0' || (size_t)(eq - specs[i]) >= sizeof(cat)) {
            fprintf(stderr, "haven: --list wants CATEGORY=FILE, not '%s'\n", specs[i]);
            return CLI_EXIT_USAGE;
        }
        /* Category names are lower case: "IWF" must mean the locked category iwf. */
        for (size_t j = 0; j < (size_t)(eq - specs[i]); j++) {
            char ch = (char)tolower((unsigned char)specs[i][j]);
            if (!isalnum((unsigned char)ch) && ch != '-' && ch != '_' && ch != '.') {
                fprintf(stderr,
                        "haven: --list category '%.*s' may only use letters, digits, "
                        "'-', '_' and '.'\n",
                        (int)(eq - specs[i]), specs[i]);
                return CLI_EXIT_USAGE;
            }
            cat[j] = ch;
        }
        cat[eq - specs[i]] = '\0';
        list = catdb_builder_add_list(ic->b, lists_short_name(eq + 1), lists_category(cat));
        if (list < 0) {
            fprintf(stderr, "haven: too many lists (the limit is %d)\n", CATDB_MAX_LISTS);
            return 1;
        }
        if (ic->progress)
            ic->progress(ic->arg, eq + 1, 0, 1);
        if (import_file(ic, list, eq + 1, err, sizeof(err)) < 0) {
            fprintf(stderr, "haven: %s\n", err);
            return 1;
        }
        if (ic->progress)
            ic->progress(ic->arg, eq + 1, 1, 1);
    }
    return 0;
}

static void lists_group_digits(uint64_t v, char *buf, size_t size)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v), o = 0;

    for (int i = 0; i < n && (size_t)o + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
}

/* The one-line summary: entries per category, rejects, size. */
static void lists_summary(const char *path, const struct import_ctx *ic)
{
    struct catdb_stats st;
    char err[512], a[32], b[32];
    struct catdb *db = catdb_open(path, err, sizeof(err));
    const char *cats[CATDB_MAX_LISTS];
    uint64_t counts[CATDB_MAX_LISTS];
    int ncats = 0;

    if (!db) {
        fprintf(stderr, "haven: the new database does not open: %s\n", err);
        return;
    }
    catdb_get_stats(db, &st);
    for (uint32_t i = 0; i < st.nlists; i++) {
        const char *c = catdb_list_category(db, (int)i);
        int j;
        for (j = 0; j < ncats && strcmp(cats[j], c) != 0; j++)
            ;
        if (j == ncats) {
            cats[ncats] = c;
            counts[ncats++] = 0;
        }
        counts[j] += catdb_list_entries(db, (int)i);
    }
    lists_group_digits(catdb_builder_entries(ic->b), a, sizeof(a));
    lists_group_digits(st.nhosts + st.nurls + st.nips, b, sizeof(b));
    printf("%s: %s entries (%s distinct) in %u lists; ", path, a, b, st.nlists);
    for (int j = 0; j < ncats; j++) {
        lists_group_digits(counts[j], a, sizeof(a));
        printf("%s %s%s", cats[j], a, j + 1 < ncats ? ", " : "; ");
    }
    lists_group_digits(ic->lines, a, sizeof(a));
    printf("%s lines read: %llu with entries, %llu blank or comments, %llu rejected; ", a,
           (unsigned long long)ic->accepted, (unsigned long long)ic->skipped,
           (unsigned long long)ic->rejected);
    printf("%.1f bytes per entry; %.1f MiB\n",
           st.nkeys ? (double)st.bytes / (st.nhosts + st.nurls + st.nips) : 0.0,
           (double)st.bytes / (1024.0 * 1024.0));
    catdb_close(db);
}

/* Import what the options name and write the database. Returns an exit status. */
static int lists_build(const char *ut1, char **specs, int nspecs, const char *out,
                       const char *source, const char *rejects_path)
{
    struct lists_run run = {NULL, 0, NULL, isatty(2)};
    struct import_ctx ic;
    char err[1024], note[1024];
    int rc = 1;

    memset(&ic, 0, sizeof(ic));
    ic.b = catdb_builder_create();
    ic.reject = lists_reject;
    ic.progress = lists_progress;
    ic.arg = &run;
    if (rejects_path) {
        run.rejects = fopen(rejects_path, "w");
        if (!run.rejects) {
            fprintf(stderr, "haven: %s: %s\n", rejects_path, strerror(errno));
            goto out;
        }
    }
    if (ut1 && import_ut1_dir(&ic, ut1, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    rc = lists_add_files(&ic, specs, nspecs);
    if (rc != 0)
        goto out;
    rc = 1;
    if (!source) {
        snprintf(note, sizeof(note), "%s", ut1 ? LISTS_UT1_NOTE : "");
        source = note;
    }
    if (catdb_builder_write(ic.b, out, source, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s (the old database, if any, is unchanged)\n", err);
        goto out;
    }
    if (ic.rejected > LISTS_SHOW_REJECTS && !rejects_path)
        fprintf(stderr, "haven: %llu lines rejected in all; --rejects FILE lists every one\n",
                (unsigned long long)ic.rejected);
    lists_summary(out, &ic);
    rc = 0;
out:
    if (run.rejects)
        fclose(run.rejects);
    catdb_builder_destroy(ic.b);
    return rc;
}

static int lists_compile(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ut1", required_argument, NULL, 'u'},
        {"list", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        {"rejects", required_argument, NULL, 'r'},
        {"source", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *ut1 = NULL, *out = NULL, *rejects = NULL, *source = NULL;
    char **specs = xcalloc((size_t)argc, sizeof(*specs));
    int nspecs = 0, c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+o:", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            ut1 = optarg;
            break;
        case 'l':
            specs[nspecs++] = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'r':
            rejects = optarg;
            break;
        case 's':
            source = optarg;
            break;
        case 'h':
            fputs(lists_usage, stdout);
            free(specs);
            return 0;
        default:
            free(specs);
            return cli_usage_error(lists_usage, "bad option");
        }
    }
    if (optind < argc)
        rc = cli_usage_error(lists_usage, "unexpected argument '%s'", argv[optind]);
    else if (!out)
        rc = cli_usage_error(lists_usage, "no output file (-o FILE)");
    else if (!ut1 && nspecs == 0)
        rc = cli_usage_error(lists_usage, "nothing to compile (--ut1 DIR or --list CAT=FILE)");
    else
        rc = lists_build(ut1, specs, nspecs, out, source, rejects);
    free(specs);
    return rc;
}

/* ---------------------------------------------------------------- update */

static size_t lists_curl_write(char *data, size_t size, size_t n, void *arg)
{
    FILE *f = arg;

    return fwrite(data, size, n, f) * size;
}

static int lists_download(const char *url, const char *path)
{
    FILE *f = fopen(path, "wb");
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *curl;
    CURLcode cc;
    long status = 0;
    int rc = -1;

    if (!f) {
        fprintf(stderr, "haven: %s: %s\n", path, strerror(errno));
        return -1;
    }
    curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, lists_curl_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)LISTS_MAX_DOWNLOAD);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "haven/" HAVEN_VERSION);
    cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK)
        fprintf(stderr, "haven: download %s: %s\n", url,
                errbuf[0] ? errbuf : curl_easy_strerror(cc));
    else if (status != 200 && strncmp(url, "file:", 5) != 0)
        fprintf(stderr, "haven: download %s: HTTP status %ld\n", url, status);
    else
        rc = 0;
    curl_easy_cleanup(curl);
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "haven: %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* Unpack the tar archive at path into dir, refusing unsafe paths and links. */
static int lists_unpack(const char *path, const char *dir)
{
    struct archive *a = archive_read_new();
    struct archive *w = archive_write_disk_new();
    struct archive_entry *ae;
    int rc = -1, r, files = 0;

    archive_read_support_filter_all(a);
    archive_read_support_format_gnutar(a);
    archive_read_support_format_tar(a);
    /* Entry names are checked below, then put under dir (an absolute path). */
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
        fprintf(stderr, "haven: %s: %s\n", path, archive_error_string(a));
        goto out;
    }
    while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        char dest[PATH_MAX];
        const void *buf;
        size_t size;
        la_int64_t off;
        int type = archive_entry_filetype(ae);

        const char *name = archive_entry_pathname(ae);

        if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
            continue;
        if (!name || name[0] == '/' || strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 ||
            strstr(name, "/../") || archive_entry_hardlink(ae)) {
            fprintf(stderr, "haven: %s: unsafe path in the archive: %s\n", path,
                    name ? name : "(none)");
            goto out;
        }
        snprintf(dest, sizeof(dest), "%s/%s", dir, name);
        archive_entry_set_pathname(ae, dest);
        if (type == AE_IFLNK && strchr(archive_entry_symlink(ae), '/'))
            continue; /* only sibling aliases such as porn -> adult */
        if (archive_write_header(w, ae) != ARCHIVE_OK) {
            fprintf(stderr, "haven: %s: %s\n", path, archive_error_string(w));
            goto out;
        }
        while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
            if (archive_write_data_block(w, buf, size, off) != ARCHIVE_OK) {
                fprintf(stderr, "haven: %s: %s\n", dest, archive_error_string(w));
                goto out;
            }
        }
        if (r != ARCHIVE_EOF) {
            fprintf(stderr, "haven: %s: %s (damaged archive?)\n", path, archive_error_string(a));
            goto out;
        }
        archive_write_finish_entry(w);
        files++;
    }
    if (r != ARCHIVE_EOF) {
        fprintf(stderr, "haven: %s: %s (damaged archive?)\n", path, archive_error_string(a));
        goto out;
    }
    if (files == 0) {
        fprintf(stderr, "haven: %s: the archive is empty\n", path);
        goto out;
    }
    rc = 0;
out:
    archive_read_free(a);
    archive_write_free(w);
    return rc;
}

/* The directory in tree that holds category directories (UT1: "blacklists"). */
static int lists_find_root(const char *tree, char *root, size_t size)
{
    char probe[PATH_MAX];
    struct dirent *de;
    struct stat st;
    DIR *d;

    snprintf(root, size, "%s", tree);
    for (int depth = 0; depth < 3; depth++) {
        int subdirs = 0, lists = 0;
        char only[PATH_MAX] = "";

        d = opendir(root);
        if (!d)
            return -1;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            snprintf(probe, sizeof(probe), "%s/%s", root, de->d_name);
            if (stat(probe, &st) != 0 || !S_ISDIR(st.st_mode))
                continue;
            subdirs++;
            snprintf(only, sizeof(only), "%s", probe);
            snprintf(probe, sizeof(probe), "%s/%s/domains", root, de->d_name);
            if (stat(probe, &st) == 0)
                lists++;
        }
        closedir(d);
        if (lists > 0)
            return 0;
        if (subdirs != 1)
            return -1;
        snprintf(root, size, "%s", only);
    }
    return -1;
}

static int lists_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int lists_update(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"list", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = LISTS_UT1_URL, *out = cli_default_db();
    char **specs = xcalloc((size_t)argc, sizeof(*specs));
    char work[PATH_MAX], archive[PATH_MAX], tree[PATH_MAX], root[PATH_MAX], dir[PATH_MAX];
    int nspecs = 0, c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+o:", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'l':
            specs[nspecs++] = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            fputs(lists_usage, stdout);
            free(specs);
            return 0;
        default:
            free(specs);
            return cli_usage_error(lists_usage, "bad option");
        }
    }
    if (optind < argc) {
        free(specs);
        return cli_usage_error(lists_usage, "unexpected argument '%s'", argv[optind]);
    }
    /* Work beside the output so the final rename stays on one file system. */
    snprintf(dir, sizeof(dir), "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    snprintf(work, sizeof(work), "%s/.haven-update.XXXXXX", dir);
    if (!mkdtemp(work)) {
        fprintf(stderr, "haven: %s: %s\n", work, strerror(errno));
        free(specs);
        return 1;
    }
    snprintf(archive, sizeof(archive), "%s/blacklists.tar.gz", work);
    snprintf(tree, sizeof(tree), "%s/tree", work);
    fprintf(stderr, "haven: downloading %s\n", url);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (lists_download(url, archive) < 0)
        goto out;
    if (mkdir(tree, 0755) != 0 || lists_unpack(archive, tree) < 0)
        goto out;
    if (lists_find_root(tree, root, sizeof(root)) < 0) {
        fprintf(stderr, "haven: %s: no UT1 category directories in the archive\n", url);
        goto out;
    }
    rc = lists_build(root, specs, nspecs, out, NULL, NULL);
out:
    if (rc != 0)
        fprintf(stderr, "haven: update failed; %s is unchanged\n", out);
    nftw(work, lists_rm, 16, FTW_DEPTH | FTW_PHYS);
    curl_global_cleanup();
    free(specs);
    return rc;
}

/* ---------------------------------------------------------------- info */

static int lists_categories(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--markdown") == 0) {
        taxonomy_write_markdown(stdout);
        return 0;
    }
    if (argc != 1)
        return cli_usage_error(lists_usage, "lists categories takes only --markdown");
    for (int i = 0; i < taxonomy_count(); i++) {
        const struct taxonomy_category *t = taxonomy_get(i);
        printf("%-18s %-9s %s\n", t->name, taxonomy_4c_name(t->four_c), t->title);
    }
    return 0;
}

static int lists_info(int argc, char **argv)
{
    const char *path = cli_default_db();
    struct catdb_stats st;
    struct catdb *db;
    char err[1024];

    if (argc == 3 && strcmp(argv[1], "--db") == 0)
        path = argv[2];
    else if (argc != 1)
        return cli_usage_error(lists_usage, "lists info takes only --db FILE");
    db = catdb_open(path, err, sizeof(err));
    if (!db) {
        fprintf(stderr, "haven: %s\n", err);
        return 1;
    }
    catdb_get_stats(db, &st);
    printf("%s: %u lists, %u distinct entries (%u hosts, %u URLs, %u addresses), %.1f MiB\n", path,
           st.nlists, st.nhosts + st.nurls + st.nips, st.nhosts, st.nurls, st.nips,
           (double)st.bytes / (1024.0 * 1024.0));
    if (*catdb_source(db))
        printf("%s\n", catdb_source(db));
    for (uint32_t i = 0; i < st.nlists; i++)
        printf("  %-40s %-18s %u\n", catdb_list_name(db, (int)i), catdb_list_category(db, (int)i),
               catdb_list_entries(db, (int)i));
    catdb_close(db);
    return 0;
}

int cmd_lists(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(lists_usage, "lists needs a sub-command");
    if (strcmp(argv[1], "compile") == 0)
        return lists_compile(argc - 1, argv + 1);
    if (strcmp(argv[1], "update") == 0)
        return lists_update(argc - 1, argv + 1);
    if (strcmp(argv[1], "categories") == 0)
        return lists_categories(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0)
        return lists_info(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0) {
        fputs(lists_usage, stdout);
        return 0;
    }
    return cli_usage_error(lists_usage, "unknown lists sub-command '%s'", argv[1]);
}
