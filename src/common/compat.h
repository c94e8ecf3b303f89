/*
 * compat.h -- included first by every haven source file.
 *
 * Poisons the C library calls that the house style bans (STYLE.md rule 22):
 * unbounded string writes and number parsers that cannot report errors.
 * Use snprintf, memcpy with an explicit length, and strtol/strtoul.
 */
#ifndef HAVEN_COMMON_COMPAT_H
#define HAVEN_COMMON_COMPAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(HAVEN_NO_POISON)
#pragma GCC poison sprintf strcpy strcat gets atoi strtok vsprintf
#endif

#define HAVEN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
