/*
 * extract.h -- page text for the safeguarding monitor.
 *
 * The proxy relays a response body chunk by chunk; this module turns those
 * bytes (HTML, plain text or JSON, in identity, gzip, deflate or br content
 * coding) into plain text for keyword scanning, incrementally, with a cap.
 *
 * What comes out: UTF-8 words separated by single ASCII spaces (runs of
 * whitespace and control characters become one space; invalid UTF-8 is passed
 * through as it is, the normaliser copes). The text is the same however the
 * body is split into chunks: every state (a tag, an entity, a JSON escape, a
 * "</scr" + "ipt>" split over two feeds) survives a chunk boundary anywhere.
 *
 *  - HTML: a small tolerant state machine, not an HTML5 tokenizer. Text
 *    between tags; every tag and comment becomes a space ("<b>kill</b>my<br>
 *    self" gives "kill my self"). The content of <script>, <style>,
 *    <noscript>, <template> and <svg> is skipped up to the matching end tag
 *    (case-insensitive). <head> holds no visible text except <title>: its
 *    attributes are not text; stray text there is kept, because browsers
 *    show it. The values of the alt, title, placeholder and aria-label
 *    attributes, and the content of <meta name="description">, are text.
 *    Character references are decoded: &amp; &lt; &gt; &quot; &apos;
 *    &nbsp; &#NN; &#xHH; (with the Windows-1252 reading of 128-159 that
 *    browsers use) and the named ones for the accented letters of French,
 *    Spanish, Portuguese, Polish, Romanian and Welsh and common punctuation;
 *    a named reference must end in ';'; unknown ones are left as written.
 *  - JSON: the string values (not object keys, not numbers or literals),
 *    with \uXXXX escapes (and surrogate pairs) decoded, each string a word
 *    group of its own. Malformed JSON, JSONP and XSSI prefixes never fail:
 *    what strings can be found are output.
 *  - TEXT: as it is.
 *
 * Caps (STYLE.md rule 11): at most text_cap bytes of text are ever produced
 * (the last character may be cut); at most max(8 x text_cap, 1 MiB) bytes of
 * decoded body are looked at, so a decompression bomb costs nothing. When
 * either cap is reached the extractor says so (returns 1) and ignores the
 * rest cheaply.
 *
 * Memory per extractor (extract_memory() measures it): about 1.4 KiB of
 * state, the undrained text (at most text_cap), and the decoder: zlib about
 * 42 KiB; brotli its tables and a ring buffer the size the stream announces,
 * at most 16 MiB (allocated lazily, touched only as far as we decode, which
 * the input cap limits). The decoder is freed as soon as the body ends, the
 * cap is reached or an error occurs.
 *
 * An extractor is used by one thread at a time; extractors share nothing.
 */
#ifndef HAVEN_MONITOR_EXTRACT_H
#define HAVEN_MONITOR_EXTRACT_H

#include <stddef.h>

enum extract_type { EXTRACT_NONE, EXTRACT_HTML, EXTRACT_TEXT, EXTRACT_JSON };
enum extract_coding {
    EXTRACT_IDENTITY,
    EXTRACT_GZIP,
    EXTRACT_DEFLATE,
    EXTRACT_BR,
    EXTRACT_UNSUPPORTED
};

/*
 * From a Content-Type value (parameters and case ignored; content_type may be
 * NULL): text/html and application/xhtml+xml -> HTML; text/plain -> TEXT;
 * application/json, application/ANYTHING+json, text/json -> JSON; everything
 * else (images, video, css, javascript, octet-stream, absent) -> NONE.
 */
enum extract_type extract_type_of(const char *content_type, size_t len);

/*
 * From a Content-Encoding value (case and surrounding spaces ignored;
 * content_encoding may be NULL): absent, empty or "identity" -> IDENTITY;
 * "gzip" or "x-gzip" -> GZIP; "deflate" -> DEFLATE (zlib-wrapped, or raw
 * deflate as browsers accept); "br" -> BR. Empty and "identity" members of a
 * list are ignored; several real codings ("gzip, br") or an unknown one ->
 * UNSUPPORTED.
 */
enum extract_coding extract_coding_of(const char *content_encoding, size_t len);

struct extract;

/*
 * A new extractor. text_cap: stop after this many bytes of text output; the
 * decoded input is also capped at max(8 x text_cap, 1 MiB). Type NONE gives
 * an extractor that ignores its input; coding UNSUPPORTED gives one whose
 * first feed fails (-1, "unsupported content coding"). Returns NULL only on
 * allocation failure. Caller frees with extract_free().
 */
struct extract *extract_new(enum extract_type type, enum extract_coding coding, size_t text_cap);

/*
 * Feed the next body bytes (after de-chunking). Text produced is appended to
 * an internal buffer that the caller drains with extract_text() and
 * extract_consume(). Returns 0; 1 when a cap is reached (then and on every
 * later call: further input is ignored, cheaply); -1 on a decoding error
 * (corrupt gzip, deflate or br) with extract_error() saying what, after which
 * the extractor stays in error and ignores input (text produced before the
 * error stays available).
 */
int extract_feed(struct extract *x, const void *data, size_t len);

/*
 * End of body: flush what is pending (a final partial word, an unfinished
 * character reference as written) and free the decoder. Same returns as
 * extract_feed(); a compressed body that stops before the end of its stream
 * is an error ("gzip data truncated"), but the text decoded before stays.
 * Calling it again returns the same; feeding after it is ignored.
 */
int extract_finish(struct extract *x);

/*
 * The text produced and not yet consumed: *len bytes, not NUL terminated,
 * valid until the next call on x. Only whole words are handed out: a word
 * still being produced (no space after it yet) is held back until its end is
 * seen, the cap is reached, or extract_finish() is called, unless it is
 * longer than EXTRACT_WORD_HOLD bytes. So a caller that scans and consumes
 * everything after each feed never sees a word cut in two.
 */
const char *extract_text(const struct extract *x, size_t *len);

/* Drop the first n bytes of that text (n larger than *len drops it all). */
void extract_consume(struct extract *x, size_t n);

/* Total text bytes produced so far, held-back bytes included (for the cap and metrics). */
size_t extract_total(const struct extract *x);

/* Decoded body bytes looked at so far (before text extraction; for metrics and tests). */
size_t extract_decoded(const struct extract *x);

/*
 * Bytes this extractor holds at most so far: its state, its text buffer and
 * the peak of its decoder's allocations (for metrics and tests).
 */
size_t extract_memory(const struct extract *x);

/* What went wrong after a -1, e.g. "corrupt gzip data: invalid block type"; NULL if nothing. */
const char *extract_error(const struct extract *x);

/* Free an extractor and everything it holds; NULL is allowed. */
void extract_free(struct extract *x);

#define EXTRACT_WORD_HOLD 256 /* longest word held back by extract_text() */

#endif
