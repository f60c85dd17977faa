/* Log-linear histogram (see hdr.h). */
#include "hdr.h"

#include <string.h>

void hdr_reset(hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
    if (v < HDR_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= HDR_SUB_BITS */
    unsigned shift = msb - HDR_SUB_BITS;
    /* v >> shift lies in [HDR_SUB, 2 * HDR_SUB): the linear position inside
     * the power-of-two range, after the exact first HDR_SUB buckets. */
    return HDR_SUB + shift * HDR_SUB + (unsigned)((v >> shift) - HDR_SUB);
}

/* The largest value that falls into bucket b. */
static uint64_t bucket_high(unsigned b)
{
    if (b < HDR_SUB)
        return b;
    unsigned shift = (b - HDR_SUB) / HDR_SUB;
    uint64_t lin = HDR_SUB + (b - HDR_SUB) % HDR_SUB;
    uint64_t low = lin << shift;
    return low + ((uint64_t)1 << shift) - 1;
}

void hdr_record(hdr *h, uint64_t v)
{
    h->bucket[bucket_of(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hdr_merge(hdr *dst, const hdr *src)
{
    for (unsigned i = 0; i < HDR_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hdr_percentile(const hdr *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p > 100.0)
        p = 100.0;
    /* rank: how many values must lie at or below the answer (at least 1) */
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HDR_BUCKETS; b++) {
        seen += h->bucket[b];
        if (seen >= rank) {
            uint64_t v = bucket_high(b);
            return v > h->max ? h->max : v; /* never report above the true maximum */
        }
    }
    return h->max;
}

double hdr_mean(const hdr *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
