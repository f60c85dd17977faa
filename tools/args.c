/* Command-line value parsing shared by the tools (args.h). */
#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int args_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int suffix_shift(char c)
{
    switch (c) {
    case 'K': case 'k': return 10;
    case 'M': case 'm': return 20;
    case 'G': case 'g': return 30;
    default: return 0;
    }
}

int args_size(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    int shift = suffix_shift(*end);
    if (shift)
        end++;
    if (*end || v > (hi >> shift) || ((uint64_t)v << shift) < lo)
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int args_seconds(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0) || v > 86400)
        return -1;
    *out = v;
    return 0;
}

int args_bad(const char *tool, const char *what, const char *val)
{
    fprintf(stderr, "%s: bad %s '%s' (try --help)\n", tool, what, val);
    return 2;
}
