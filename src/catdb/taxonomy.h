/*
 * taxonomy.h -- haven's categories, and how imported lists map onto them.
 *
 * One table (taxonomy.c) names every category haven knows, in plain words for
 * a block page, with the UK Safer Internet Centre (UKSIC) category it serves,
 * its 4C dimension (content, contact, conduct, commerce), and the UT1 list
 * names that import into it. docs/categories.md is generated from the same
 * table (`haven lists categories --markdown`) and a test keeps the two equal.
 *
 * Lists whose name is not in the table keep their own name as a category, so
 * an operator can add a list and write rules for it without touching code.
 */
#ifndef HAVEN_CATDB_TAXONOMY_H
#define HAVEN_CATDB_TAXONOMY_H

#include <stdio.h>

enum taxonomy_4c { TAXONOMY_CONTENT, TAXONOMY_CONTACT, TAXONOMY_CONDUCT, TAXONOMY_COMMERCE };

/* The category is part of the locked tier: always blocked, never overridden. */
#define TAXONOMY_LOCKED 0x1
/* A match is a safeguarding concern (a block in it is a safeguarding event). */
#define TAXONOMY_SAFEGUARDING 0x2
/* Never decrypted when TLS inspection is on (banking, health, government). */
#define TAXONOMY_NO_INSPECT 0x4
/* A list of sites to allow, not to block (UT1 "white" lists). */
#define TAXONOMY_WHITE 0x8

struct taxonomy_category {
    const char *name;  /* what policies write: "pornography" */
    const char *title; /* what a person reads: "Pornography" */
    const char *uksic; /* the UKSIC category it serves, or "" */
    enum taxonomy_4c four_c;
    unsigned flags;          /* TAXONOMY_* */
    const char *ut1;         /* UT1 list names that map here, space-separated */
    const char *description; /* one sentence: what it covers */
};

/* The number of categories in the table, and the i-th one (0 <= i < count). */
int taxonomy_count(void);
const struct taxonomy_category *taxonomy_get(int i);

/* The index of the category called name, or -1. */
int taxonomy_find(const char *name);

/* The index of the category a UT1 list (or UT1 alias) name maps to, or -1. */
int taxonomy_find_ut1(const char *ut1_name);

/* "content", "contact", "conduct" or "commerce". */
const char *taxonomy_4c_name(enum taxonomy_4c c);

/* Write the table as the Markdown of docs/categories.md. */
void taxonomy_write_markdown(FILE *f);

#endif
