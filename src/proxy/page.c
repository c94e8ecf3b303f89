/*
 * page.c -- block, warn, confirmation, error and status pages, the PAC file
 * and the Prometheus metrics.
 *
 * The HTML is written by hand, piece by piece, into the caller's capped
 * buffer. Constant markup goes in with buf_append_str or buf_printf; every
 * value from outside goes through page_esc (HTML escaping of & < > " ', so it
 * is safe both as text and inside a double-quoted attribute). The return
 * values of the individual appends are not checked: the buffer remembers an
 * overflow, and page_end() looks once, at the end, and puts the buffer back.
 *
 * The look follows the GOV.UK design system's choices for accessibility:
 * large system font, near-black text on white, underlined links, a thick
 * yellow-and-black focus indicator that survives Windows high-contrast mode,
 * buttons at least 44px tall, one column that works at 320px.
 */
#include "common/compat.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <strings.h>

#include "common/buf.h"
#include "common/tz.h"
#include "proxy/page.h"

/* Show at most this many bytes of a URL; the hidden form field keeps all of it. */
#define PAGE_URL_SHOW 400

#define PAGE_CEOP_URL "https://www.ceop.police.uk/Safety-Centre/"
#define PAGE_RHC_URL "https://reportharmfulcontent.com/"
#define PAGE_CHILDLINE_URL "https://www.childline.org.uk/"

#define PAGE_IWF_TEXT                                                                              \
    "Access has been denied by your internet access provider because this page may contain "       \
    "indecent images of children as identified by the Internet Watch Foundation."

static const char page_css[] =
    "*{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}"
    "body{margin:0;background:#fff;color:#0b0c0c;"
    "font:1.1875rem/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif}"
    ".top{background:#0b0c0c;color:#fff;padding:.75rem 1rem}"
    ".top p{margin:0 auto;max-width:42rem;font-weight:700}"
    "main{display:block;max-width:42rem;margin:0 auto;padding:1.5rem 1rem 1rem}"
    "h1{display:flex;align-items:center;gap:.75rem;font-size:2rem;line-height:1.2;"
    "margin:0 0 1.25rem}"
    "h1 svg{flex:none;width:3rem;height:3rem}"
    "h2{font-size:1.5rem;line-height:1.25;margin:2rem 0 .75rem}"
    "h3{font-size:1.3rem;line-height:1.3;margin:0 0 .5rem}"
    "p,ul{margin:0 0 1rem}"
    "li{margin-bottom:.5rem}"
    ".lead{font-size:1.375rem}"
    ".panel{border-left:.5rem solid #0b0c0c;padding:.75rem 1rem;margin:0 0 1.5rem;"
    "background:#f3f2f1}"
    ".panel.block{border-color:#b10e1e}"
    ".panel.warn{border-color:#8a5300}"
    ".panel.ok{border-color:#00703c}"
    ".facts{margin:0 0 1.5rem}"
    ".facts dt{font-weight:700;margin-top:.75rem}"
    ".facts dd{margin:0}"
    "@media (min-width:40em){.facts{display:grid;grid-template-columns:minmax(9rem,auto) 1fr;"
    "gap:.5rem 1.5rem}.facts dt{margin:0}}"
    ".url{font-family:ui-monospace,Menlo,Consolas,\"Liberation Mono\",monospace;"
    "font-size:1rem;overflow-wrap:anywhere;word-break:break-all}"
    ".ref{font-family:ui-monospace,Menlo,Consolas,\"Liberation Mono\",monospace;"
    "font-weight:700;letter-spacing:.05em;white-space:nowrap}"
    "caption{text-align:left}"
    ".hint{color:#484949;margin:0 0 .5rem}"
    ".box{border:2px solid #0b0c0c;padding:1rem;margin:0 0 1.5rem}"
    "label{display:block;font-weight:700;margin:0 0 .25rem}"
    "textarea{display:block;width:100%;min-height:6rem;font:inherit;color:#0b0c0c;"
    "background:#fff;border:2px solid #0b0c0c;padding:.5rem;margin:0 0 1rem}"
    "a{color:#0b3d91;text-decoration-thickness:max(1px,.0625rem);text-underline-offset:.15em}"
    "a:visited{color:#4c2c92}"
    "a:hover{color:#003078;text-decoration-thickness:3px}"
    ".button,button{display:inline-block;min-height:2.75rem;font:inherit;font-weight:700;"
    "line-height:1.25;color:#fff;background:#0b3d91;border:2px solid transparent;"
    "border-radius:0;box-shadow:0 2px 0 #002050;padding:.55rem 1rem;margin:0 .75rem .75rem 0;"
    "text-decoration:none;cursor:pointer}"
    ".button:visited{color:#fff}"
    ".button:hover,button:hover{background:#003078;color:#fff}"
    ".button.second{color:#0b0c0c;background:#f3f2f1;box-shadow:0 2px 0 #929191}"
    ".button.second:hover{background:#dbdad9;color:#0b0c0c}"
    "a:focus,a:focus-visible{outline:3px solid transparent;color:#0b0c0c;background:#fd0;"
    "box-shadow:0 -2px #fd0,0 4px #0b0c0c;text-decoration:none}"
    ".button:focus,button:focus,.button.second:focus{outline:3px solid transparent;"
    "outline-offset:0;color:#0b0c0c;background:#fd0;box-shadow:0 2px 0 #0b0c0c;"
    "border-color:#fd0}"
    "textarea:focus{outline:3px solid #fd0;outline-offset:0;box-shadow:inset 0 0 0 2px #0b0c0c}"
    ".foot{max-width:42rem;margin:0 auto;padding:1rem;border-top:1px solid #b1b4b6;"
    "font-size:1rem}"
    "table{border-collapse:collapse;width:100%;margin:0 0 1.5rem}"
    "th,td{text-align:left;vertical-align:top;padding:.5rem .5rem .5rem 0;"
    "border-bottom:1px solid #b1b4b6;overflow-wrap:anywhere}"
    "th{width:45%}";

enum page_icon { PAGE_ICON_NONE, PAGE_ICON_BLOCK, PAGE_ICON_WARN, PAGE_ICON_OK, PAGE_ICON_INFO };

/* Decorative: the heading says the same in words, so screen readers skip it. */
static const char *const page_icons[] = {
    [PAGE_ICON_NONE] = "",
    [PAGE_ICON_BLOCK] =
        "<svg viewBox=\"0 0 48 48\" width=\"48\" height=\"48\" aria-hidden=\"true\" "
        "focusable=\"false\"><circle cx=\"24\" cy=\"24\" r=\"22\" "
        "fill=\"#b10e1e\"/><rect x=\"10\" y=\"20\" width=\"28\" height=\"8\" "
        "fill=\"#fff\"/></svg>",
    [PAGE_ICON_WARN] =
        "<svg viewBox=\"0 0 48 48\" width=\"48\" height=\"48\" aria-hidden=\"true\" "
        "focusable=\"false\"><path d=\"M24 3 46 44H2z\" fill=\"#fd0\" "
        "stroke=\"#0b0c0c\" stroke-width=\"3\" stroke-linejoin=\"round\"/>"
        "<rect x=\"21.5\" y=\"16\" width=\"5\" height=\"15\" fill=\"#0b0c0c\"/>"
        "<rect x=\"21.5\" y=\"34\" width=\"5\" height=\"5\" fill=\"#0b0c0c\"/></svg>",
    [PAGE_ICON_OK] = "<svg viewBox=\"0 0 48 48\" width=\"48\" height=\"48\" aria-hidden=\"true\" "
                     "focusable=\"false\"><circle cx=\"24\" cy=\"24\" r=\"22\" fill=\"#00703c\"/>"
                     "<path d=\"M13 25l8 8 14-16\" fill=\"none\" stroke=\"#fff\" "
                     "stroke-width=\"5\"/></svg>",
    [PAGE_ICON_INFO] = "<svg viewBox=\"0 0 48 48\" width=\"48\" height=\"48\" aria-hidden=\"true\" "
                       "focusable=\"false\"><circle cx=\"24\" cy=\"24\" r=\"22\" "
                       "fill=\"#0b3d91\"/><rect x=\"21.5\" y=\"11\" width=\"5\" height=\"17\" "
                       "fill=\"#fff\"/><rect x=\"21.5\" y=\"32\" width=\"5\" height=\"5\" "
                       "fill=\"#fff\"/></svg>",
};

/* ---- small helpers ---- */

static const char *page_str(const char *s)
{
    return s ? s : "";
}

static void page_esc(struct buf *b, const char *s)
{
    buf_append_html(b, page_str(s));
}

/* A link target we are willing to put in an href or action. */
static int page_href_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    if (s[0] == '/')
        return 1;
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

/* Remember where the page started, and forget any earlier overflow. */
struct page_mark {
    size_t start;
    int overflow;
};

static struct page_mark page_mark(struct buf *b)
{
    struct page_mark m = {b->len, b->overflow};

    b->overflow = 0;
    return m;
}

/* 0 if everything fitted; otherwise put the buffer back to the mark and return -1. */
static int page_done(struct buf *b, struct page_mark m)
{
    if (b->overflow) {
        b->len = m.start;
        if (b->p)
            b->p[m.start] = '\0';
        return -1;
    }
    b->overflow = m.overflow;
    return 0;
}

/* ---- time ---- */

static pthread_once_t page_tz_once = PTHREAD_ONCE_INIT;
static struct tz *page_tz_london;

static void page_tz_init(void)
{
    page_tz_london = tz_load("Europe/London", NULL, 0);
    if (!page_tz_london)
        page_tz_london = tz_load("UTC", NULL, 0);
}

static const struct tz *page_zone(const struct tz *given)
{
    if (given)
        return given;
    pthread_once(&page_tz_once, page_tz_init);
    return page_tz_london;
}

/* "2:05pm on Tuesday 3 March 2026 (GMT)", the way GOV.UK writes times. */
static void page_when(char *out, size_t size, int64_t t, const struct tz *given)
{
    static const char *const days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
    static const char *const months[] = {"January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December"};
    const struct tz *zone = page_zone(given);
    struct tz_local l;
    char label[24];
    int hour12, off;

    if (!zone) {
        snprintf(out, size, "%" PRId64 " seconds since 1970 (UTC)", t);
        return;
    }
    tz_to_local(zone, t, &l);
    if (strcmp(tz_name(zone), "Europe/London") == 0) {
        snprintf(label, sizeof(label), "%s", l.is_dst ? "BST" : "GMT");
    } else if (l.utc_offset == 0) {
        snprintf(label, sizeof(label), "UTC");
    } else {
        off = l.utc_offset < 0 ? -l.utc_offset : l.utc_offset;
        snprintf(label, sizeof(label), "UTC%c%02d:%02d", l.utc_offset < 0 ? '-' : '+', off / 3600,
                 off / 60 % 60);
    }
    hour12 = l.hour % 12 == 0 ? 12 : l.hour % 12;
    snprintf(out, size, "%d:%02d%s on %s %d %s %d (%s)", hour12, l.minute,
             l.hour < 12 ? "am" : "pm", days[l.wday % 7], l.day, months[(l.month - 1 + 12) % 12],
             l.year, label);
}

/* ---- document pieces ---- */

/* Everything up to and including <main>. The school banner is left out when school is NULL. */
static void page_begin(struct buf *b, const char *title, const char *school, int banner)
{
    buf_append_str(b, "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                      "<meta name=\"robots\" content=\"noindex, nofollow\">\n"
                      "<meta name=\"referrer\" content=\"no-referrer\">\n<title>");
    buf_append_str(b, title);
    if (school && *school) {
        buf_append_str(b, " \xe2\x80\x93 ");
        page_esc(b, school);
    }
    buf_append_str(b, "</title>\n<style>");
    buf_append_str(b, page_css);
    buf_append_str(b, "</style>\n</head>\n<body>\n");
    if (banner) {
        buf_append_str(b, "<header class=\"top\"><p>");
        if (school && *school)
            page_esc(b, school);
        else
            buf_append_str(b, "School internet");
        buf_append_str(b, "</p></header>\n");
    }
    buf_append_str(b, "<main>\n");
}

static void page_h1(struct buf *b, enum page_icon icon, const char *text)
{
    buf_printf(b, "<h1>%s<span>%s</span></h1>\n", page_icons[icon], text);
}

/* The school's name for the start of a sentence ("Hillside Academy", or "Your school"). */
static void page_school(struct buf *b, const struct page_info *info, int capital)
{
    if (info->school && *info->school)
        page_esc(b, info->school);
    else
        buf_append_str(b, capital ? "Your school" : "your school");
}

/* UKSIC: users are told that their use is monitored. */
static void page_monitored(struct buf *b, const struct page_info *info)
{
    buf_append_str(b, "</main>\n<footer class=\"foot\"><p>");
    if (info->school && *info->school) {
        page_esc(b, info->school);
        buf_append_str(b, "\xe2\x80\x99s");
    } else {
        buf_append_str(b, "The school\xe2\x80\x99s");
    }
    buf_append_str(b, " internet use is monitored. What you do online at school is recorded, "
                      "and staff check it to help keep everyone safe.</p></footer>\n");
}

static void page_end(struct buf *b, int in_main)
{
    if (in_main)
        buf_append_str(b, "</main>\n");
    buf_append_str(b, "</body>\n</html>\n");
}

static void page_fact(struct buf *b, const char *label, const char *value)
{
    if (!value || !*value)
        return;
    buf_printf(b, "<dt>%s</dt>\n<dd>", label);
    page_esc(b, value);
    buf_append_str(b, "</dd>\n");
}

/* The URL as text, cut (on a UTF-8 boundary) if very long; CSS breaks it anywhere. */
static void page_url_text(struct buf *b, const char *url)
{
    size_t len = strlen(url), cut = len;
    char part[PAGE_URL_SHOW + 1];

    if (len <= PAGE_URL_SHOW) {
        page_esc(b, url);
        return;
    }
    cut = PAGE_URL_SHOW;
    while (cut > 0 && ((unsigned char)url[cut] & 0xC0) == 0x80)
        cut--;
    memcpy(part, url, cut);
    part[cut] = '\0';
    page_esc(b, part);
    buf_append_str(b, "\xe2\x80\xa6");
}

static void page_fact_url(struct buf *b, const char *url)
{
    if (!url || !*url)
        return;
    buf_append_str(b, "<dt>Web address</dt>\n<dd class=\"url\">");
    page_url_text(b, url);
    buf_append_str(b, "</dd>\n");
}

static void page_fact_when(struct buf *b, const struct page_info *info)
{
    char when[96];

    if (info->time == 0)
        return;
    page_when(when, sizeof(when), info->time, info->tz);
    page_fact(b, "When", when);
}

static void page_fact_ref(struct buf *b, const char *ref)
{
    if (!ref || !*ref)
        return;
    buf_append_str(b, "<dt>Reference</dt>\n<dd><span class=\"ref\">");
    page_esc(b, ref);
    buf_append_str(b, "</span><br><span class=\"hint\">Quote this reference if you ask for "
                      "help.</span></dd>\n");
}

static const char *page_category(const struct page_info *info)
{
    if (info->category_title && *info->category_title)
        return info->category_title;
    return page_str(info->category);
}

static void page_hidden(struct buf *b, const char *name, const char *value)
{
    buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    page_esc(b, value);
    buf_append_str(b, "\">\n");
}

static void page_form_open(struct buf *b, const char *action, const char *fallback,
                           const struct page_info *info)
{
    buf_append_str(b, "<form method=\"post\" action=\"");
    page_esc(b, page_href_ok(action) ? action : fallback);
    buf_append_str(b, "\">\n");
    page_hidden(b, "ref", info->ref);
    page_hidden(b, "url", info->url);
}

static void page_help_links(struct buf *b)
{
    buf_append_str(
        b, "<h2>Other help</h2>\n<ul>\n"
           "<li>If someone online is making you feel worried or unsafe, or has asked you to do "
           "something that feels wrong, you can <a href=\"" PAGE_CEOP_URL
           "\" rel=\"noreferrer\">Report abuse to CEOP</a>. CEOP is part of the police and "
           "helps keep children safe.</li>\n"
           "<li>To report something harmful you have seen online, such as bullying, threats or "
           "violent content, use <a href=\"" PAGE_RHC_URL
           "\" rel=\"noreferrer\">Report Harmful Content</a>.</li>\n"
           "<li>If you want to talk to someone, call Childline for free on "
           "<a href=\"tel:08001111\">0800&nbsp;1111</a>.</li>\n</ul>\n");
}

/* The locked tier: the IWF splash text and the reference, nothing else. */
static void page_locked(struct buf *b, const struct page_info *info)
{
    page_begin(b, "Access denied", NULL, 0);
    page_h1(b, PAGE_ICON_BLOCK, "Access denied");
    buf_append_str(b, "<p class=\"lead\">" PAGE_IWF_TEXT "</p>\n");
    if (info->ref && *info->ref) {
        buf_append_str(b, "<p>Reference: <span class=\"ref\">");
        page_esc(b, info->ref);
        buf_append_str(b, "</span></p>\n");
    }
    page_end(b, 1);
}

/* ---- the pages ---- */

int page_block(struct buf *b, const struct page_info *info)
{
    struct page_mark m = page_mark(b);
    const char *cat = page_category(info);

    if (info->locked) {
        page_locked(b, info);
        return page_done(b, m);
    }
    page_begin(b, "This page is blocked", info->school, 1);
    page_h1(b, PAGE_ICON_BLOCK, "This page is blocked");
    buf_append_str(b, "<div class=\"panel block\"><p class=\"lead\">");
    page_school(b, info, 1);
    buf_append_str(b, " has blocked this page on the school internet.</p>\n"
                      "<p>If you are not sure what to do, ask a teacher.</p></div>\n"
                      "<dl class=\"facts\">\n");
    page_fact_url(b, info->url);
    page_fact(b, "What kind of page it is", cat);
    page_fact(b, "Why it is blocked", info->reason);
    page_fact(b, "Your group", info->group);
    page_fact(b, "Signed in as", info->user);
    page_fact(b, "Your device", info->client_ip);
    page_fact_when(b, info);
    page_fact_ref(b, info->ref);
    buf_append_str(b, "</dl>\n<h2>What you can do</h2>\n");

    buf_append_str(b, "<section class=\"box\" aria-labelledby=\"req-h\">\n"
                      "<h3 id=\"req-h\">Request access</h3>\n"
                      "<p>If you need this page for your school work, ask for it to be unblocked. "
                      "A member of staff will look at your request.</p>\n");
    page_form_open(b, info->request_action, PAGE_REQUEST_PATH, info);
    buf_printf(b,
               "<label for=\"req-reason\">Why do you need this page?</label>\n"
               "<p class=\"hint\" id=\"req-hint\">For example, which lesson or homework it is "
               "for.</p>\n"
               "<textarea id=\"req-reason\" name=\"reason\" rows=\"4\" maxlength=\"%d\" required "
               "aria-describedby=\"req-hint\"></textarea>\n"
               "<button type=\"submit\">Request access</button>\n</form>\n</section>\n",
               PAGE_TEXT_MAX);

    buf_append_str(b, "<section class=\"box\" aria-labelledby=\"con-h\">\n"
                      "<h3 id=\"con-h\">Report a concern</h3>\n"
                      "<p>If something you saw online has worried or upset you, tell us. "
                      "It is always OK to tell us.</p>\n");
    page_form_open(b, info->concern_action, PAGE_CONCERN_PATH, info);
    buf_printf(b,
               "<label for=\"con-details\">What worries you?</label>\n"
               "<p class=\"hint\" id=\"con-hint\">Write as much or as little as you like.</p>\n"
               "<textarea id=\"con-details\" name=\"details\" rows=\"4\" maxlength=\"%d\" "
               "aria-describedby=\"con-hint\"></textarea>\n"
               "<button type=\"submit\">Report a concern</button>\n</form>\n</section>\n",
               PAGE_TEXT_MAX);

    page_help_links(b);
    page_monitored(b, info);
    page_end(b, 0);
    return page_done(b, m);
}

int page_warn(struct buf *b, const struct page_info *info)
{
    struct page_mark m = page_mark(b);
    const char *cat = page_category(info);

    if (info->locked) {
        page_locked(b, info);
        return page_done(b, m);
    }
    page_begin(b, "Are you sure?", info->school, 1);
    page_h1(b, PAGE_ICON_WARN, "Are you sure?");
    buf_append_str(b, "<div class=\"panel warn\"><p class=\"lead\">");
    if (*cat) {
        buf_append_str(b, "This page is about <strong>");
        page_esc(b, cat);
        buf_append_str(b, "</strong>. ");
    }
    page_school(b, info, 1);
    buf_append_str(b, " asks you to think before you open it.</p>\n"
                      "<p><strong>If you continue, your visit will be recorded</strong> and "
                      "staff may check it.</p></div>\n<dl class=\"facts\">\n");
    page_fact_url(b, info->url);
    page_fact(b, "Why you are seeing this", info->reason);
    page_fact_when(b, info);
    page_fact_ref(b, info->ref);
    buf_append_str(b, "</dl>\n<p>");
    if (page_href_ok(info->continue_path)) {
        buf_append_str(b, "<a class=\"button\" href=\"");
        page_esc(b, info->continue_path);
        buf_append_str(b, "\">Continue to the page</a>\n");
    }
    if (page_href_ok(info->back_url)) {
        buf_append_str(b, "<a class=\"button second\" href=\"");
        page_esc(b, info->back_url);
        buf_append_str(b, "\">Go back</a></p>\n");
    } else {
        buf_append_str(b, "</p>\n<p><strong>Go back:</strong> to leave this page, use your "
                          "browser\xe2\x80\x99s Back button.</p>\n");
    }
    page_monitored(b, info);
    page_end(b, 0);
    return page_done(b, m);
}

int page_confirm(struct buf *b, const struct page_info *info, enum page_confirm_kind kind)
{
    struct page_mark m = page_mark(b);
    const char *title =
        kind == PAGE_CONFIRM_CONCERN ? "Thank you for telling us" : "Your request has been sent";

    page_begin(b, title, info->school, 1);
    page_h1(b, PAGE_ICON_OK, title);
    if (info->ref && *info->ref) {
        buf_append_str(b, "<div class=\"panel ok\"><p class=\"lead\">Your reference is "
                          "<span class=\"ref\">");
        page_esc(b, info->ref);
        buf_append_str(b, "</span></p></div>\n");
    }
    buf_append_str(b, "<h2>What happens next</h2>\n");
    if (kind == PAGE_CONFIRM_CONCERN)
        buf_append_str(b, "<p>A member of staff will read what you wrote and look into it. "
                          "They may come and talk to you about it.</p>\n"
                          "<p>You did the right thing by telling us.</p>\n");
    else
        buf_append_str(b, "<p>A member of staff will look at your request. If they agree, "
                          "the page will be unblocked. This can take a while, so carry on with "
                          "something else for now.</p>\n");
    buf_append_str(
        b, "<p>If you ask about it, quote your reference.</p>\n"
           "<h2>If you are in danger</h2>\n"
           "<p>If you are in danger or feel unsafe, <strong>tell a trusted adult "
           "now</strong>, such as a teacher, or a parent or carer.</p>\n"
           "<p>If someone is in immediate danger, call 999.</p>\n"
           "<p>You can talk to Childline about anything, at any time, for free: call "
           "<a href=\"tel:08001111\">0800&nbsp;1111</a> or visit <a href=\"" PAGE_CHILDLINE_URL
           "\" rel=\"noreferrer\">childline.org.uk</a>.</p>\n");
    page_monitored(b, info);
    page_end(b, 0);
    return page_done(b, m);
}

struct page_error_text {
    int status;
    const char *title;   /* <title> and status tag */
    const char *heading; /* what happened */
    const char *advice;  /* what to do */
};

static const struct page_error_text page_errors[] = {
    {400, "Bad request", "Your browser sent a request we could not understand",
     "Try loading the page again. If it keeps happening, ask for help and quote the reference "
     "below."},
    {403, "Connection not allowed", "This connection is not allowed",
     "The school internet only lets web browsers connect in the usual way. Apps and tools that "
     "try to get around the filter, such as VPNs and proxy sites, are blocked."},
    {407, "Sign in needed", "You need to sign in",
     "Sign in with your school username and password to use the internet. If your browser did "
     "not ask you to sign in, close it, open it again and try once more."},
    {502, "Could not reach the site", "We could not reach this site",
     "The site may be down, or the web address may be wrong. Check the address and try again "
     "later."},
    {503, "Busy", "The school internet is busy right now",
     "Too many people are using it at once. Wait a minute, then try again."},
    {504, "Site too slow", "This site took too long to answer",
     "The site may be busy or down. Try again in a few minutes."},
};

static const struct page_error_text page_error_other = {
    0, "Something went wrong", "Something went wrong",
    "Try again in a few minutes. If it keeps happening, ask for help and quote the reference "
    "below."};

int page_error(struct buf *b, const struct page_info *info, int status)
{
    struct page_mark m = page_mark(b);
    const struct page_error_text *e = &page_error_other;
    size_t i;

    for (i = 0; i < HAVEN_ARRAY_LEN(page_errors); i++) {
        if (page_errors[i].status == status)
            e = &page_errors[i];
    }
    page_begin(b, e->title, info->school, 1);
    page_h1(b, status == 403 ? PAGE_ICON_BLOCK : PAGE_ICON_INFO, e->heading);
    buf_printf(b, "<div class=\"panel\"><p class=\"lead\">%s</p></div>\n<dl class=\"facts\">\n",
               e->advice);
    page_fact(b, "What happened", info->reason);
    page_fact_url(b, info->url);
    buf_printf(b, "<dt>Error code</dt>\n<dd>%d</dd>\n", status);
    page_fact_when(b, info);
    page_fact_ref(b, info->ref);
    buf_append_str(b, "</dl>\n");
    page_monitored(b, info);
    page_end(b, 0);
    return page_done(b, m);
}

/* ---- status page ---- */

static void page_row(struct buf *b, const char *label, const char *value)
{
    buf_printf(b, "<tr><th scope=\"row\">%s</th><td>", label);
    page_esc(b, value);
    buf_append_str(b, "</td></tr>\n");
}

static void page_row_u64(struct buf *b, const char *label, uint64_t v)
{
    buf_printf(b, "<tr><th scope=\"row\">%s</th><td>%" PRIu64 "</td></tr>\n", label, v);
}

int page_status(struct buf *b, const struct page_stats *s)
{
    struct page_mark m = page_mark(b);
    char text[128];
    int64_t up = s->uptime < 0 ? 0 : s->uptime;

    page_begin(b, "haven status", s->school, 1);
    page_h1(b, PAGE_ICON_NONE, "haven status");
    buf_append_str(b, "<table>\n<caption class=\"hint\">Counts are since the proxy started."
                      "</caption>\n");
    page_row(b, "Version", page_str(s->version));
    snprintf(text, sizeof(text), "%" PRId64 " day%s %" PRId64 " hour%s %" PRId64 " minute%s",
             up / 86400, up / 86400 == 1 ? "" : "s", up / 3600 % 24, up / 3600 % 24 == 1 ? "" : "s",
             up / 60 % 60, up / 60 % 60 == 1 ? "" : "s");
    page_row(b, "Uptime", text);
    page_row_u64(b, "Worker threads", s->workers);
    page_row_u64(b, "Connections now", s->connections);
    page_row_u64(b, "Requests", s->requests_total);
    page_row_u64(b, "Blocked", s->blocks_total);
    page_row_u64(b, "Category database entries", s->catdb_entries);
    if (s->loaded_at == 0)
        snprintf(text, sizeof(text), "not loaded");
    else
        page_when(text, sizeof(text), s->loaded_at, s->tz);
    page_row(b, "Policy and database loaded", text);
    if (s->last_reload_ok < 0)
        page_row(b, "Last reload", "none since start");
    else
        page_row(b, "Last reload", s->last_reload_ok ? "worked" : "failed, old policy kept");
    if (s->reload_msg && *s->reload_msg)
        page_row(b, "Reload message", s->reload_msg);
    buf_append_str(b, "</table>\n");
    page_end(b, 1);
    return page_done(b, m);
}

/* ---- metrics ---- */

static void page_family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped (exposition format 0.0.4). */
static void page_label_value(struct buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_append_str(b, "\\\\");
        else if (*s == '"')
            buf_append_str(b, "\\\"");
        else if (*s == '\n')
            buf_append_str(b, "\\n");
        else
            buf_append(b, s, 1);
    }
}

static const char *page_action_name(enum policy_action a)
{
    switch (a) {
    case POLICY_ALLOW:
        return "allow";
    case POLICY_WARN:
        return "warn";
    case POLICY_BLOCK:
        return "block";
    }
    return "unknown";
}

int page_metrics(struct buf *b, const struct page_metrics *mt)
{
    static const char *const kinds[PAGE_UPSTREAM_KINDS] = {"connect", "dns", "timeout", "reset",
                                                           "certificate"};
    struct page_mark m = page_mark(b);
    size_t i;

    page_family(b, "haven_requests_total", "counter", "Requests received from clients.");
    buf_printf(b, "haven_requests_total %" PRIu64 "\n", mt->requests_total);

    page_family(b, "haven_verdicts_total", "counter",
                "Policy decisions, by action and deciding category.");
    for (i = 0; i < mt->n_verdicts; i++) {
        const struct page_verdict_count *v = &mt->verdicts[i];
        buf_printf(b, "haven_verdicts_total{action=\"%s\",category=\"",
                   page_action_name(v->action));
        page_label_value(b, page_str(v->category));
        buf_printf(b, "\"} %" PRIu64 "\n", v->count);
    }

    page_family(b, "haven_connections", "gauge", "Client connections open now.");
    buf_printf(b, "haven_connections %" PRIu64 "\n", mt->connections);

    page_family(b, "haven_upstream_errors_total", "counter",
                "Failures reaching origin servers, by kind.");
    for (i = 0; i < PAGE_UPSTREAM_KINDS; i++)
        buf_printf(b, "haven_upstream_errors_total{kind=\"%s\"} %" PRIu64 "\n", kinds[i],
                   mt->upstream_errors[i]);

    page_family(b, "haven_upstream_reused_total", "counter",
                "Requests sent on an idle keep-alive connection to the origin, from the pool.");
    buf_printf(b, "haven_upstream_reused_total %" PRIu64 "\n", mt->upstream_reused);

    if (mt->tls) {
        page_family(b, "haven_tls_inspected_total", "counter",
                    "HTTPS connections decrypted (inspected).");
        buf_printf(b, "haven_tls_inspected_total %" PRIu64 "\n", mt->tls_inspected);
        page_family(b, "haven_tls_leaf_cache_hits_total", "counter",
                    "Site certificates found in the cache.");
        buf_printf(b, "haven_tls_leaf_cache_hits_total %" PRIu64 "\n", mt->tls_leaf_hits);
        page_family(b, "haven_tls_leaf_cache_misses_total", "counter",
                    "Site certificates that had to be minted.");
        buf_printf(b, "haven_tls_leaf_cache_misses_total %" PRIu64 "\n", mt->tls_leaf_misses);
        page_family(b, "haven_tls_mint_errors_total", "counter",
                    "Site certificates the signer could not mint.");
        buf_printf(b, "haven_tls_mint_errors_total %" PRIu64 "\n", mt->tls_mint_errors);
    }

    page_family(b, "haven_tunnels_spliced_total", "counter",
                "CONNECT tunnels whose bulk bytes the kernel relayed (splice).");
    buf_printf(b, "haven_tunnels_spliced_total %" PRIu64 "\n", mt->tunnels_spliced);

    page_family(b, "haven_records_total", "counter",
                "Safeguarding records written to the database, by kind.");
    buf_printf(b, "haven_records_total{kind=\"event\"} %" PRIu64 "\n", mt->rec_events);
    buf_printf(b, "haven_records_total{kind=\"rollup\"} %" PRIu64 "\n", mt->rec_rollups);
    page_family(b, "haven_records_dropped_total", "counter",
                "Allowed-traffic records dropped because the recorder's queue was full.");
    buf_printf(b, "haven_records_dropped_total %" PRIu64 "\n", mt->rec_dropped);
    page_family(b, "haven_records_spooled_total", "counter",
                "Safeguarding records written to the spool file because the queue was full.");
    buf_printf(b, "haven_records_spooled_total %" PRIu64 "\n", mt->rec_spooled);
    page_family(b, "haven_alerts_total", "counter",
                "Safeguarding alerts raised; suppressed: repeats within alert-dedup.");
    buf_printf(b, "haven_alerts_total{suppressed=\"no\"} %" PRIu64 "\n",
               mt->alerts - mt->alerts_suppressed);
    buf_printf(b, "haven_alerts_total{suppressed=\"yes\"} %" PRIu64 "\n", mt->alerts_suppressed);
    page_family(b, "haven_alert_deliveries_total", "counter",
                "Alert deliveries (e-mail, webhook, syslog), by result.");
    buf_printf(b, "haven_alert_deliveries_total{result=\"sent\"} %" PRIu64 "\n", mt->alert_sent);
    buf_printf(b, "haven_alert_deliveries_total{result=\"retry\"} %" PRIu64 "\n",
               mt->alert_retries);
    buf_printf(b, "haven_alert_deliveries_total{result=\"failed\"} %" PRIu64 "\n",
               mt->alert_failed);

    page_family(b, "haven_log_queue_drops_total", "counter",
                "Access-log events dropped because the queue was full.");
    buf_printf(b, "haven_log_queue_drops_total %" PRIu64 "\n", mt->log_queue_drops);

    page_family(b, "haven_reloads_total", "counter", "Policy reloads, by result.");
    buf_printf(b, "haven_reloads_total{result=\"ok\"} %" PRIu64 "\n", mt->reloads_ok);
    buf_printf(b, "haven_reloads_total{result=\"failed\"} %" PRIu64 "\n", mt->reloads_failed);

    page_family(b, "haven_tunnels", "gauge", "CONNECT tunnels open now.");
    buf_printf(b, "haven_tunnels %" PRIu64 "\n", mt->tunnels);

    if (mt->dns) {
        page_family(b, "haven_dns_queries_total", "counter",
                    "DNS queries, by how they were answered.");
        for (i = 0; i < DNS_ANS_KINDS; i++)
            buf_printf(b, "haven_dns_queries_total{answer=\"%s\"} %" PRIu64 "\n",
                       dns_answer_kind_name((enum dns_answer_kind)i), mt->dns_answers[i]);
        page_family(b, "haven_dns_upstream_up", "gauge",
                    "1 while an upstream resolver answers, 0 while it is marked down.");
        for (i = 0; i < (size_t)mt->dns_upstreams; i++) {
            const char *ip = mt->dns_upstream[i];
            buf_printf(b,
                       strchr(ip, ':') ? "haven_dns_upstream_up{server=\"[%s]:%u\"} %d\n"
                                       : "haven_dns_upstream_up{server=\"%s:%u\"} %d\n",
                       ip, mt->dns_upstream_port[i], mt->dns_upstream_up[i]);
        }
    }
    return page_done(b, m);
}

/* ---- PAC ---- */

/* A copy of s safe to put in a message: printable ASCII, at most 64 bytes. */
static void page_quote(char *out, size_t size, const char *s)
{
    size_t i = 0;

    for (; *s && i + 4 < size && i < 64; s++)
        out[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (*s && i + 4 < size) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/*
 * A DNS name of lower-case letters, digits and hyphens, no empty label, labels
 * up to 63 bytes, at most 253 bytes. Returns NULL or what is wrong.
 */
static const char *page_dns_name_problem(const char *s, size_t len)
{
    size_t i, label = 0;

    if (len == 0)
        return "is empty";
    if (len > 253)
        return "is longer than 253 characters";
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return "has an empty label";
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return "has a character other than a-z, 0-9, '.' and '-'";
        if (++label > 63)
            return "has a label longer than 63 characters";
    }
    if (label == 0)
        return "has an empty label";
    return NULL;
}

/* "host:port", host a DNS name, an IPv4 address or a bracketed IPv6 address. */
static const char *page_proxy_problem(const char *p)
{
    const char *colon, *q;
    unsigned long port = 0;

    if (p[0] == '[') {
        q = strchr(p, ']');
        if (!q)
            return "has an unfinished IPv6 address";
        if (q == p + 1)
            return "has an empty IPv6 address";
        for (const char *c = p + 1; c < q; c++) {
            if (!strchr("0123456789abcdef:.", *c))
                return "has a character that is not allowed in an IPv6 address";
        }
        colon = q + 1;
        if (*colon != ':')
            return "needs a port (host:port)";
    } else {
        colon = strrchr(p, ':');
        if (!colon)
            return "needs a port (host:port)";
        q = page_dns_name_problem(p, (size_t)(colon - p));
        if (q)
            return q;
    }
    q = colon + 1;
    if (*q == '\0')
        return "needs a port (host:port)";
    for (; *q; q++) {
        if (*q < '0' || *q > '9')
            return "has a port that is not a number";
        port = port * 10 + (unsigned long)(*q - '0');
        if (port > 65535)
            return "has a port above 65535";
    }
    if (port == 0)
        return "has port 0";
    return NULL;
}

int page_pac(struct buf *b, const char *proxy, const char *const *direct, size_t n, char *err,
             size_t errlen)
{
    struct page_mark m;
    const char *problem;
    char shown[80];
    size_t i;

    if (err && errlen > 0)
        err[0] = '\0';
    problem = page_proxy_problem(page_str(proxy));
    if (problem) {
        page_quote(shown, sizeof(shown), page_str(proxy));
        if (err)
            snprintf(err, errlen, "proxy address \"%s\" %s", shown, problem);
        return -1;
    }
    if (n > 0 && !direct) {
        if (err)
            snprintf(err, errlen, "direct domains: %zu given but the list is missing", n);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const char *d = page_str(direct[i]);
        if (d[0] == '.')
            d++;
        problem = page_dns_name_problem(d, strlen(d));
        if (problem) {
            page_quote(shown, sizeof(shown), page_str(direct[i]));
            if (err)
                snprintf(err, errlen, "direct domain \"%s\" %s", shown, problem);
            return -1;
        }
    }

    m = page_mark(b);
    buf_append_str(b, "// Proxy auto-configuration for haven. Generated; do not edit.\n"
                      "function FindProxyForURL(url, host) {\n"
                      "    if (isPlainHostName(host))\n"
                      "        return \"DIRECT\";\n");
    for (i = 0; i < n; i++) {
        const char *d = direct[i][0] == '.' ? direct[i] + 1 : direct[i];
        /* dnsDomainIs is a plain suffix test: "school.lan" would match "evilschool.lan". */
        buf_printf(b,
                   "    if (host === \"%s\" || dnsDomainIs(host, \".%s\"))\n"
                   "        return \"DIRECT\";\n",
                   d, d);
    }
    buf_append_str(b, "    if (/^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host) &&\n"
                      "        (isInNet(host, \"10.0.0.0\", \"255.0.0.0\") ||\n"
                      "         isInNet(host, \"172.16.0.0\", \"255.240.0.0\") ||\n"
                      "         isInNet(host, \"192.168.0.0\", \"255.255.0.0\") ||\n"
                      "         isInNet(host, \"127.0.0.0\", \"255.0.0.0\")))\n"
                      "        return \"DIRECT\";\n"
                      "    if (host === \"::1\" || host === \"[::1]\")\n"
                      "        return \"DIRECT\";\n");
    buf_printf(b, "    return \"PROXY %s\";\n}\n", proxy);
    if (page_done(b, m) < 0) {
        if (err)
            snprintf(err, errlen, "the PAC file is larger than the buffer allows");
        return -1;
    }
    return 0;
}

/* ---- reference IDs ---- */

void page_reference_id(char out[PAGE_REF_SIZE])
{
    /* Crockford's base32: no I, L, O or U to misread. 256 is a multiple of 32, so unbiased. */
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    unsigned char r[8];
    size_t i, o = 0;

    randombytes_buf(r, sizeof(r));
    memcpy(out, "HVN-", 4);
    o = 4;
    for (i = 0; i < 8; i++) {
        if (i == 4)
            out[o++] = '-';
        out[o++] = alphabet[r[i] & 31];
    }
    out[o] = '\0';
    sodium_memzero(r, sizeof(r));
}
