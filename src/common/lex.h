/*
 * lex.h -- the line tokenizer and "did you mean" distance of haven's text formats.
 *
 * The policy language and the keyword libraries share one lexical shape: words,
 * "quoted strings" with \" and \\ escapes, "{" and "}", and '#' comments
 * outside quotes. Lines are split in place: tokens point into the line.
 */
#ifndef HAVEN_COMMON_LEX_H
#define HAVEN_COMMON_LEX_H

#include <stddef.h>

enum lex_type { LEX_WORD, LEX_STRING, LEX_LBRACE, LEX_RBRACE };

struct lex_tok {
    enum lex_type type;
    char *s;
};

/*
 * Split line (modified in place) into at most max tokens. Returns the number of
 * tokens, or -1 with the problem in err ("unterminated string ...").
 */
int lex_line(char *line, struct lex_tok *tok, int max, char *err, size_t errlen);

/* Edit distance of a and b; 1000 when either is longer than 64 bytes. */
int lex_distance(const char *a, const char *b);

#endif
