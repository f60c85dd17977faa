/*
 * Minimal assertions for the test programs: a failed CHECK prints the file,
 * line and expression and exits 1; SKIP exits 77 (CTest shows "skipped").
 */
#ifndef IOU_TEST_CHECK_H
#define IOU_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* Compares two integers and prints both on failure. */
#define CHECK_EQ(a, b)                                                                \
    do {                                                                              \
        long long a_ = (long long)(a), b_ = (long long)(b);                           \
        if (a_ != b_) {                                                               \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n",     \
                    __FILE__, __LINE__, #a, #b, a_, b_);                              \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define SKIP(...)                                  \
    do {                                           \
        fprintf(stderr, "SKIP: " __VA_ARGS__);     \
        fputc('\n', stderr);                       \
        exit(77);                                  \
    } while (0)

#endif
