/* Fuzz the keyword library parser: never crash, and every error names the file. */
#include "common/compat.h"

#include "monitor/library.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    struct library *l;

    l = library_load_buffer("fuzz.lib", (const char *)data, size, err, sizeof(err));
    if (!l) {
        if (strncmp(err, "fuzz.lib:", 9) != 0)
            abort(); /* every error names file:line */
        return 0;
    }
    /* Walk everything a loaded library promises. */
    if (!library_language_known(library_language(l)))
        abort();
    for (size_t i = 0; i < library_count(l); i++) {
        const struct lib_phrase *p = library_phrase(l, i);
        size_t n = strlen(p->text);

        if (n == 0 || n > LIB_PHRASE_MAX || p->text[0] == ' ' || p->text[n - 1] == ' ' ||
            strstr(p->text, "  "))
            abort();
        if (p->severity < 1 || p->severity > 5 || p->nwords < 1 || p->nwords > LIB_PHRASE_WORDS ||
            !library_has_theme(l, p->theme))
            abort();
        for (int c = 0; c < p->nctx; c++) {
            int d = p->ctx[c].delta;
            if (d == 0 || d < -4 || d > 4 || p->ctx[c].nwords < 1)
                abort();
            for (int w = 0; w < p->ctx[c].nwords; w++) {
                if (strchr(p->ctx[c].words[w], ' ') || p->ctx[c].words[w][0] == '\0')
                    abort();
            }
        }
    }
    for (size_t i = 0; i < library_exclusion_count(l); i++) {
        const struct lib_exclusion *e = library_exclusion(l, i);
        if (e->text[0] == '\0' || e->theme < -1 || e->theme >= library_theme_count())
            abort();
        if (e->theme >= 0)
            (void)library_theme_4c(e->theme);
    }
    library_free(l);
    return 0;
}
