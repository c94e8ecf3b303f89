#include "common/compat.h"

#include "catdb/taxonomy.h"

#define CONTENT TAXONOMY_CONTENT
#define CONTACT TAXONOMY_CONTACT
#define CONDUCT TAXONOMY_CONDUCT
#define COMMERCE TAXONOMY_COMMERCE
#define LOCKED TAXONOMY_LOCKED
#define SG TAXONOMY_SAFEGUARDING
#define NOINSP TAXONOMY_NO_INSPECT
#define WHITE TAXONOMY_WHITE

/*
 * The one table. Order is the order of docs/categories.md. UT1 aliases
 * (upstream symbolic links such as porn -> adult) are listed beside their
 * target so a directory of links imports the same way.
 */
static const struct taxonomy_category taxonomy_table[] = {
    {"iwf", "Child sexual abuse content", "Illegal content (IWF list)", CONTENT, LOCKED | SG, "",
     "URLs on the Internet Watch Foundation's licensed list. Locked: no rule can allow them."},
    {"terrorism", "Unlawful terrorist content", "Illegal content (CTIRU list)", CONTENT,
     LOCKED | SG, "",
     "URLs on the Counter Terrorism Internet Referral Unit list. Locked: no rule can allow them."},
    {"pornography", "Pornography", "Pornography", CONTENT, SG, "adult porn",
     "Sites that show sexual acts or explicit sexual content."},
    {"adult-themes", "Adult themes", "Pornography", CONTENT, 0, "mixed_adult lingerie",
     "Sites with nudity or adult material that stop short of pornography, and lingerie."},
    {"self-harm", "Self-harm, suicide and eating disorders", "Self harm", CONTENT, SG, "",
     "Sites that promote or show self-harm, suicide or eating disorders (not help and "
     "recovery services)."},
    {"extremism", "Extremism and radicalisation", "Extremism", CONTENT, SG, "",
     "Sites that promote terrorism or extremist ideologies, or radicalise."},
    {"hate", "Hate and discrimination", "Discrimination", CONTENT, SG,
     "agressif aggressive violence",
     "Sites that promote hatred or discrimination, including racist and antisemitic sites."},
    {"violence", "Violence and weapons", "Violence", CONTENT, SG, "dangerous_material",
     "Sites that promote violence or show how to make weapons or dangerous materials."},
    {"drugs", "Drugs and substance abuse", "Drugs / substance abuse", CONTENT, SG, "drogue drugs",
     "Sites that sell or promote illegal drugs or the misuse of substances."},
    {"gambling", "Gambling", "Gambling", COMMERCE, SG, "gambling arjel",
     "Betting, casino and lottery sites, licensed or not."},
    {"dating", "Dating", "", CONTACT, SG, "dating", "Dating and hook-up sites."},
    {"malware", "Malware and phishing", "Malware / hacking", COMMERCE, 0,
     "malware phishing cryptojacking dialer stalkerware",
     "Sites that host malicious software, steal passwords, mine cryptocurrency in the browser "
     "or sell stalkerware."},
    {"hacking", "Hacking", "Malware / hacking", CONDUCT, 0, "hacking ddos",
     "Sites that teach or sell attacks on computer systems."},
    {"filter-bypass", "Filter bypass (proxies, VPNs, encrypted DNS)", "Malware / hacking", CONDUCT,
     0, "redirector strict_redirector strong_redirector proxy vpn doh residential-proxies",
     "Web proxies, VPNs, DNS-over-HTTPS resolvers and other ways round the school's filter."},
    {"remote-access", "Remote access tools", "Malware / hacking", CONDUCT, 0, "remote-control",
     "Tools that control another computer over the internet."},
    {"dynamic-dns", "Dynamic DNS hosts", "Malware / hacking", CONDUCT, 0, "dynamic-dns",
     "Names on dynamic DNS services, often used to reach home proxies or malware."},
    {"piracy", "Piracy and copyright theft", "Piracy and copyright theft", CONDUCT, 0, "warez",
     "Sites that share copyrighted software, films or music illegally."},
    {"misinformation", "Misinformation", "Misinformation", CONTENT, 0, "fakenews",
     "Sites known for publishing false news."},
    {"cheating", "Exam cheating", "", CONDUCT, 0, "tricheur tricheur_pix",
     "Sites that sell or share answers and essays."},
    {"cults", "Cults", "", CONTACT, 0, "sect", "Sites of groups known as cults."},
    {"chat", "Chat", "", CONTACT, 0, "chat", "Chat rooms and instant messaging on the web."},
    {"social-networks", "Social networks", "", CONTACT, 0, "social_networks",
     "Social networking sites."},
    {"forums", "Forums", "", CONTACT, 0, "forums mail", "Discussion forums."},
    {"webmail", "Webmail", "", CONTACT, 0, "webmail", "Web-based email."},
    {"games", "Games", "", CONDUCT, 0, "games", "Online games and gaming sites."},
    {"audio-video", "Streaming audio and video", "", CONTENT, 0, "audio-video",
     "Video and music streaming sites."},
    {"radio", "Radio", "", CONTENT, 0, "radio", "Internet radio."},
    {"shopping", "Shopping", "", COMMERCE, 0, "shopping", "Online shops."},
    {"advertising", "Advertising and tracking", "", COMMERCE, 0, "publicite ads marketingware",
     "Advertising networks, trackers and pop-up marketing."},
    {"financial", "Finance and investing", "", COMMERCE, 0, "financial",
     "Financial news and investment sites."},
    {"banking", "Banking", "", COMMERCE, NOINSP | WHITE, "bank", "Banks' own sites."},
    {"cryptocurrency", "Cryptocurrency", "", COMMERCE, 0, "bitcoin",
     "Cryptocurrency exchanges and wallets."},
    {"filehosting", "File hosting", "", CONDUCT, 0, "filehosting",
     "Sites that store and share files."},
    {"downloads", "Software downloads", "", CONDUCT, 0, "download", "Software download sites."},
    {"shorteners", "Link shorteners", "", CONDUCT, 0, "shortener",
     "Services that hide a link's destination behind a short one."},
    {"blogs", "Blogs", "", CONTENT, 0, "blog", "Blog hosting."},
    {"news", "News and magazines", "", CONTENT, 0, "press", "News and magazine sites."},
    {"sport", "Sport", "", CONTENT, 0, "sports", "Sport sites."},
    {"jobs", "Job search", "", COMMERCE, 0, "jobsearch", "Job search sites."},
    {"celebrity", "Celebrity", "", CONTENT, 0, "celebrity", "Celebrity news and gossip."},
    {"manga", "Manga", "", CONTENT, 0, "manga", "Manga and anime reading sites."},
    {"astrology", "Astrology", "", CONTENT, 0, "astrology", "Astrology and horoscopes."},
    {"religion", "Religious associations", "", CONTENT, 0, "associations_religieuses",
     "Sites of religious associations."},
    {"ai-tools", "AI tools", "", CONDUCT, 0, "ai", "Generative AI chat and image tools."},
    {"translation", "Translation", "", CONTENT, WHITE, "translation", "Translation services."},
    {"software-updates", "Software updates", "", CONDUCT, NOINSP | WHITE, "update",
     "Operating system and application update services."},
    {"web-hosting", "Web hosting", "", CONDUCT, 0, "webhosting", "Free web hosting."},
    {"mobile-phones", "Mobile phones", "", COMMERCE, 0, "mobile-phone",
     "Ringtones, phone themes and mobile downloads."},
    {"cooking", "Cooking", "", CONTENT, WHITE, "cooking", "Recipes and cooking."},
    {"cleaning", "Cleaning", "", CONTENT, WHITE, "cleaning", "Cleaning and housework."},
    {"children", "Sites for children", "", CONTENT, WHITE, "child",
     "Sites made for young children."},
    {"educational-games", "Educational games", "", CONTENT, WHITE, "educational_games",
     "Games made for learning."},
    {"sex-education", "Sex education", "", CONTENT, WHITE, "sexual_education",
     "Sex and relationships education."},
    {"trusted", "Trusted sites", "", CONTENT, WHITE,
     "liste_blanche liste_bu exceptions_liste_bu examen_pix",
     "Sites the list maintainers mark as always safe, including library and exam services."},
    {"reassigned", "Domains with a new owner", "", CONTENT, 0, "reaffected",
     "Domains that changed owner and may now host something else."},
    {"special", "Special", "", CONTENT, 0, "special", "UT1's own test entries."},
};

int taxonomy_count(void)
{
    return (int)HAVEN_ARRAY_LEN(taxonomy_table);
}

const struct taxonomy_category *taxonomy_get(int i)
{
    if (i < 0 || i >= taxonomy_count())
        return NULL;
    return &taxonomy_table[i];
}

int taxonomy_find(const char *name)
{
    for (int i = 0; i < taxonomy_count(); i++) {
        if (strcmp(taxonomy_table[i].name, name) == 0)
            return i;
    }
    return -1;
}

/* Is word one of the space-separated words of list? */
static int taxonomy_word_in(const char *list, const char *word)
{
    size_t wlen = strlen(word);

    for (const char *p = list; *p;) {
        size_t n = strcspn(p, " ");
        if (n == wlen && memcmp(p, word, n) == 0)
            return 1;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

int taxonomy_find_ut1(const char *ut1_name)
{
    for (int i = 0; i < taxonomy_count(); i++) {
        if (taxonomy_word_in(taxonomy_table[i].ut1, ut1_name))
            return i;
    }
    return -1;
}

const char *taxonomy_4c_name(enum taxonomy_4c c)
{
    static const char *const names[] = {"content", "contact", "conduct", "commerce"};

    return names[c];
}

void taxonomy_write_markdown(FILE *f)
{
    fputs("# Categories\n\n"
          "<!-- Generated by `haven lists categories --markdown` from src/catdb/taxonomy.c;"
          " do not edit. -->\n\n"
          "haven's own categories. Each names the UK Safer Internet Centre (UKSIC) category it\n"
          "serves and its 4C dimension (KCSIE: content, contact, conduct, commerce), and lists\n"
          "the UT1 lists that import into it. Policies name these categories. A list imported\n"
          "under a name not in this table keeps that name as its own category.\n\n"
          "Flags: **locked** — the locked tier, blocked for everyone, no rule can allow it;\n"
          "**safeguarding** — a block here is a safeguarding event for the DSL;\n"
          "**no-inspect** — never decrypted when TLS inspection is on;\n"
          "**allow-list** — a list of sites to allow, not to block.\n\n"
          "| category | in plain words | UKSIC | 4C | flags | UT1 lists | what it covers |\n"
          "|---|---|---|---|---|---|---|\n",
          f);
    for (int i = 0; i < taxonomy_count(); i++) {
        const struct taxonomy_category *c = &taxonomy_table[i];
        char flags[64];

        snprintf(flags, sizeof(flags), "%s%s%s%s", c->flags & LOCKED ? "locked " : "",
                 c->flags & SG ? "safeguarding " : "", c->flags & NOINSP ? "no-inspect " : "",
                 c->flags & WHITE ? "allow-list " : "");
        size_t n = strlen(flags);
        if (n > 0)
            flags[n - 1] = '\0';
        fprintf(f, "| `%s` | %s | %s | %s | %s | %s | %s |\n", c->name, c->title, c->uksic,
                taxonomy_4c_name(c->four_c), flags, c->ut1, c->description);
    }
}
