/* Command-line values, parsed the same way by every tool. Each parser
 * returns 0 and stores the value, or -1 when s is not a value in range. */
#ifndef IOU_TOOLS_ARGS_H
#define IOU_TOOLS_ARGS_H

#include <stdint.h>

/* A decimal integer in [lo, hi]. */
int args_long(const char *s, long lo, long hi, long *out);

/* A decimal byte count with an optional binary suffix K, M or G, in [lo, hi]. */
int args_size(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* Seconds, fractions allowed, from 0 to one day. */
int args_seconds(const char *s, double *out);

/* Prints "tool: bad what 'val' (try --help)" and returns 2 (the usage-error
 * exit status). */
int args_bad(const char *tool, const char *what, const char *val);

#endif
