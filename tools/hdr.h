/*
 * A log-linear ("HDR-style") histogram of non-negative 64-bit values, such as
 * latencies in nanoseconds. Values below 2^HDR_SUB_BITS are counted exactly;
 * above, each power-of-two range is split into 2^HDR_SUB_BITS equal buckets,
 * so a reported value is within 1/2^HDR_SUB_BITS (0.8 %) of the true one.
 * Recording is a few instructions and never allocates.
 */
#ifndef IOU_TOOLS_HDR_H
#define IOU_TOOLS_HDR_H

#include <stdint.h>

#define HDR_SUB_BITS 7
#define HDR_SUB (1u << HDR_SUB_BITS)
#define HDR_BUCKETS (HDR_SUB + (64 - HDR_SUB_BITS) * HDR_SUB)

typedef struct hdr {
    uint64_t count;
    uint64_t min, max;
    double sum;
    uint64_t bucket[HDR_BUCKETS];
} hdr;

void hdr_reset(hdr *h);
void hdr_record(hdr *h, uint64_t v);
/* Adds every value of src to dst. */
void hdr_merge(hdr *dst, const hdr *src);
/* The smallest recorded value v such that at least p percent (0..100] of the
 * values are <= v, reported as the highest value of its bucket (never below
 * the true percentile). 0 when empty. */
uint64_t hdr_percentile(const hdr *h, double p);
double hdr_mean(const hdr *h);

#endif
