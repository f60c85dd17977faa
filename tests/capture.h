/*
 * Capturing this process's stderr (fd 2) in a memfd, to assert on the
 * messages the library prints. expect_in() prints the whole capture when a
 * message is missing, so a failure shows what was said instead.
 */
#ifndef IOU_TEST_CAPTURE_H
#define IOU_TEST_CAPTURE_H

#include "check.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct capture {
    int fd;    /* the memfd standing in for fd 2 */
    int saved; /* the real stderr */
} capture;

static inline void capture_begin(capture *c)
{
    fflush(stderr);
    c->fd = memfd_create("stderr", 0);
    CHECK(c->fd >= 0);
    c->saved = dup(STDERR_FILENO);
    CHECK(c->saved >= 0);
    CHECK(dup2(c->fd, STDERR_FILENO) == STDERR_FILENO);
}

/* Everything written so far, NUL-terminated (free() it). */
static inline char *capture_text(const capture *c)
{
    fflush(stderr);
    off_t len = lseek(c->fd, 0, SEEK_END);
    CHECK(len >= 0);
    char *text = malloc((size_t)len + 1);
    CHECK(text != NULL);
    CHECK(pread(c->fd, text, (size_t)len, 0) == len);
    text[len] = '\0';
    return text;
}

/* Restores stderr; returns the captured text (free() it). */
static inline char *capture_end(capture *c)
{
    char *text = capture_text(c);
    CHECK(dup2(c->saved, STDERR_FILENO) == STDERR_FILENO);
    close(c->saved);
    close(c->fd);
    return text;
}

/* Runs main_fn on a new loop with opts (skips without io_uring or epoll),
 * checks it returned 0, and returns what was written to stderr meanwhile
 * (free() it). */
static inline char *capture_run(iou_fn main_fn, void *arg, const iou_loop_opts *opts)
{
    capture c;
    capture_begin(&c);
    int r = run_ex_or_skip(main_fn, arg, opts);
    char *text = capture_end(&c);
    CHECK_EQ(r, 0);
    return text;
}

#define expect_in(text, needle)                                                        \
    do {                                                                               \
        if (strstr((text), (needle)) == NULL) {                                        \
            fprintf(stderr, "%s:%d: missing \"%s\" in:\n%s\n", __FILE__, __LINE__,     \
                    (needle), (text));                                                 \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define expect_not_in(text, needle)                                                    \
    do {                                                                               \
        if (strstr((text), (needle)) != NULL) {                                        \
            fprintf(stderr, "%s:%d: unexpected \"%s\" in:\n%s\n", __FILE__, __LINE__,  \
                    (needle), (text));                                                 \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#endif
