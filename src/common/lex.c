/*
 * lex.c -- the line tokenizer and "did you mean" distance of haven's text formats.
 */
#include "common/compat.h"

#include "common/lex.h"

int lex_line(char *line, struct lex_tok *tok, int max, char *err, size_t errlen)
{
    char *s = line;
    int n = 0;

    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#')
            return n;
        if (n == max) {
            snprintf(err, errlen, "too many words on one line (the limit is %d)", max);
            return -1;
        }
        struct lex_tok *t = &tok[n++];
        if (*s == '{' || *s == '}') {
            t->type = *s == '{' ? LEX_LBRACE : LEX_RBRACE;
            t->s = *s == '{' ? "{" : "}";
            *s++ = '\0';
            continue;
        }
        if (*s == '"') {
            char *w = ++s;
            t->type = LEX_STRING;
            t->s = w;
            while (*s != '"') {
                if (*s == '\0') {
                    snprintf(err, errlen, "unterminated string (a '\"' is missing)");
                    return -1;
                }
                if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                    s++;
                *w++ = *s++;
            }
            s++;
            *w = '\0';
            if (*s != '\0' && *s != ' ' && *s != '\t') {
                snprintf(err, errlen, "a string must be followed by a space");
                return -1;
            }
            if (*s != '\0')
                s++;
            continue;
        }
        t->type = LEX_WORD;
        t->s = s;
        while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '"' && *s != '{' && *s != '}' &&
               *s != '#')
            s++;
        if (*s == '"') {
            snprintf(err, errlen, "unexpected '\"' inside a word");
            return -1;
        }
        if (*s == ' ' || *s == '\t') {
            *s++ = '\0';
        } else if (*s != '\0') {
            /* '{', '}' or '#' right after a word: shift it so the word ends here. */
            memmove(s + 1, s, strlen(s) + 1);
            *s++ = '\0';
        }
    }
}

int lex_distance(const char *a, const char *b)
{
    int prev[65], cur[65];
    size_t la = strlen(a), lb = strlen(b);

    if (la > 64 || lb > 64)
        return 1000;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}
