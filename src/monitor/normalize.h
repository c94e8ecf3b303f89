/*
 * normalize.h -- canonical text for safeguarding keyword matching.
 *
 * Search terms and page text are written by young people who write round
 * filters. The keyword matcher runs on one canonical form produced here, and
 * the keyword lists themselves MUST be passed through norm_text() too, so that
 * both sides agree (e.g. "don't" is "dont" on both sides).
 *
 * Input: any bytes, treated as UTF-8. Inputs longer than NORM_MAX_IN are cut at
 * a character boundary at or before NORM_MAX_IN. Output: valid UTF-8, NUL
 * terminated, built from these rules, applied in this order:
 *
 *  1. Decoding. Each byte that is not part of a valid UTF-8 sequence (overlong
 *     forms, surrogates, truncated sequences, stray continuation bytes) counts
 *     as one separator (rule 4). The text never fails as a whole.
 *  2. Unicode. Each character is compatibility-decomposed and case-folded
 *     (NFKC_Casefold-like: "ＫＩＬＬ" -> "kill", "ﬁ" -> "fi", "①" -> "1"),
 *     default-ignorable characters are deleted (zero-width space, ZWJ, ZWNJ,
 *     soft hyphen, variation selectors, tag characters; so "k<ZWSP>ill" is
 *     "kill"), other format characters (category Cf) are deleted too, and the
 *     result is canonically reordered and recomposed. A character with more
 *     than 31 combining marks on it ("zalgo" text) keeps only the first 31.
 *  3. Marks. A combining mark is removed when the letter it sits on is Latin
 *     script ("café" -> "cafe", Polish "zabić się" -> "zabic sie", Romanian
 *     "ș" -> "s", Welsh "ŵ" -> "w", "ŷ" -> "y"), and enclosing marks (keycaps,
 *     circles) are always removed. Marks on any other script are KEPT: in
 *     Bengali, Gurmukhi and Devanagari the marks are vowel signs that change
 *     the word, and utf8proc's STRIPMARK would delete them ("কি" would become
 *     "ক"), so it is not used (Arabic harakat, which pupils usually leave out,
 *     go by rule 3b). Letters without a decomposition stay as they are
 *     (Turkish "ı"; German "ß" is case-folded to "ss"), except those of rule
 *     3b. A mark with no letter or digit before it is a separator.
 *  3b. Folding. Letters people type more than one way are made one: Polish
 *     "ł" -> "l"; in Arabic script (Arabic, Urdu, Shahmukhi Punjabi) harakat,
 *     hamza and madda marks, superscript alef and tatweel are deleted (so
 *     "أ", "إ", "آ" -> "ا", "ؤ" -> "و", "ئ" -> "ي"), teh marbuta "ة" and
 *     Urdu heh goal "ہ" -> "ه", alef maksura "ى" and Farsi yeh "ی" -> "ي",
 *     keheh "ک" -> "ك"; the nukta of Devanagari, Bengali and Gurmukhi is
 *     deleted ("ਫ਼" -> "ਫ").
 *  4. Words. Letters (L*), digits (N*) and kept marks form words. Every run of
 *     anything else (whitespace, punctuation, symbols, emoji, controls,
 *     unassigned and private-use characters, invalid bytes) becomes ONE ASCII
 *     space, and the output always starts and ends with one space, so a
 *     matcher can look for " kill myself " as whole words. Empty input gives
 *     " ". URLs and e-mail addresses are broken at their punctuation.
 *  5. Apostrophes. An apostrophe (U+0027 or U+2019) between a letter (or a
 *     mark) and a letter is deleted, joining the word: "don't" -> "dont",
 *     "I'm" -> "im". Elsewhere it is a separator.
 *  6. Leetspeak. In a word that contains at least one letter, the ASCII digits
 *     and symbols 0->o 1->i 3->e 4->a 5->s 7->t 8->b @->a $->s !->i |->l are
 *     read as letters: "k1ll" -> "kill", "su1c1de" -> "suicide", "$elf h@rm" ->
 *     "self harm", "k!ll" -> "kill". Details:
 *       - A word with no letters keeps its digits ("2024", "100%" -> "100",
 *         "5 km" -> "5 km"); the symbols in it are separators.
 *       - A word that is ASCII digits followed by one or two ASCII letters keeps
 *         its digits ("1st", "10pm", "5km", "4k", "90s").
 *       - The symbols @ $ ! | count as part of a word only when they are
 *         followed by a letter or digit of the same word, except that ONE
 *         leading "$" or "@" directly before a letter is leet ("$elf", "@ss");
 *         so "kill!!!" -> "kill", "wow!" -> "wow". (Consequence: "@name"
 *         handles read as "aname".)
 *       - An "@" followed by a domain ("x@host.tld", letters/digits/hyphens,
 *         a dot and a letter) is a separator, so e-mail addresses stay
 *         addresses: "bob@example.com" -> "bob example com".
 *       - Digits 2, 6, 9 and non-ASCII digits are never changed.
 *       - A leet letter is Latin, so marks after it are removed (rule 3).
 *  7. Spaced-out words. A run of 3 or more one-letter words (one letter plus
 *     its marks), each separated from the next by exactly ONE separator
 *     character in the input (a space, ".", "-", ...), is joined into one
 *     word: "k i l l" -> "kill", "k.i.l.l" -> "kill", "s-u-i-c-i-d-e" ->
 *     "suicide". Two ("a b") are left alone, and so are letters separated by
 *     two or more characters ("k. i. l. l"). Hangul jamo never join.
 *  8. Repeated letters. Within a word, a run of 3 or more of the same letter
 *     becomes one: "soooo" -> "so", "heeelp" -> "help"; runs of 2 are kept
 *     ("kill", "seed" stay). So "killlll" becomes "kil", not "kill": a keyword
 *     with a double letter should also be listed with that letter single
 *     ("kill" and "kil") to catch stretched spellings. Digits are not
 *     collapsed ("1000" stays).
 *
 * Idempotence: norm(norm(x)) == norm(x) holds except for rule 7 when a run of
 * one-letter words had a double separator inside it: "a b..c" is " a b c "
 * (not joined, because of "..") but " a b c " then joins to " abc ". The
 * fuzz harness checks idempotence on outputs that contain no run of three
 * one-letter words.
 *
 * Offsets: with a map, from[i] is the input byte offset of the character that
 * output byte i came from (for a decomposed or recomposed cluster, the offset
 * of the cluster's first character; for a space, the first separator it
 * replaced; the leading and trailing spaces map to the nearest input). from[]
 * is non-decreasing and every entry is < the (capped) input length, or 0 for
 * empty input. For a match at output bytes [s, e) that ends before a space at
 * e, the original text is in[from[s] .. from[e]).
 *
 * Cost: one pass over ASCII with a table, utf8proc only for non-ASCII
 * characters, three flat arrays per call, no per-character allocation.
 */
#ifndef HAVEN_MONITOR_NORMALIZE_H
#define HAVEN_MONITOR_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

/* Inputs longer than this are cut (at a UTF-8 character boundary). */
#define NORM_MAX_IN ((size_t)1 << 20)

struct norm {
    char *text;     /* owned, NUL-terminated, len bytes of valid UTF-8 */
    size_t len;     /* >= 1: always at least " " */
    uint32_t *from; /* owned; from[i] = input offset of output byte i; NULL without a map */
};

/* Normalise in[0..len) into *out (caller frees with norm_free). in may be NULL
 * when len is 0. with_map: also fill out->from. Returns 0, or -1 only on
 * allocation failure (then *out is zeroed and holds nothing to free). */
int norm_text(const char *in, size_t len, int with_map, struct norm *out);

/* Free what norm_text allocated and zero *n. Safe on a zeroed struct. */
void norm_free(struct norm *n);

#endif
