/*
 * iou_read_full / iou_write_full: a pipe that delivers its bytes in small
 * chunks (a writer task yielding between them) is read whole; end of stream
 * gives a short count; an error or a cancellation in the middle returns the
 * error and the _ex variants say how much was done (EPIPE, EFBIG past
 * RLIMIT_FSIZE, ECANCELED).
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

enum {
    LEN = 200000,
    SEED = 11,
};

static uint64_t rng;

typedef struct feed {
    int fd;
    size_t len;
    bool close_after;
} feed;

/* Writes len pattern bytes to fd in random chunks of 1..3000 bytes, letting
 * the reader run between chunks so that it sees them one by one. */
static int chunk_writer(void *arg)
{
    feed *f = arg;
    unsigned char b[3000];
    size_t off = 0;
    while (off < f->len) {
        size_t n = 1 + rng_next(&rng) % sizeof(b);
        if (n > f->len - off)
            n = f->len - off;
        pattern_fill(b, n, SEED, off);
        CHECK_EQ(iou_write(f->fd, b, n, -1), (long long)n); /* a pipe takes small writes whole */
        off += n;
        iou_yield();
    }
    if (f->close_after)
        CHECK_EQ(iou_close(f->fd), 0);
    return 0;
}

static int read_chunks_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    feed f = {p[1], LEN, true};
    iou_task *w = spawn_checked(chunk_writer, &f);
    unsigned char *b = malloc(LEN + 100);
    CHECK(b != NULL);
    CHECK_EQ(iou_read_full(p[0], b, LEN / 2, -1), LEN / 2);
    CHECK_EQ(pattern_mismatch(b, LEN / 2, SEED, 0), LEN / 2);
    /* Asks for more than will come: the rest, then end of stream. */
    size_t done = 0;
    CHECK_EQ(iou_read_full_ex(p[0], b, LEN, -1, &done), LEN - LEN / 2);
    CHECK_EQ(done, LEN - LEN / 2);
    CHECK_EQ(pattern_mismatch(b, done, SEED, LEN / 2), done);
    CHECK_EQ(iou_join(w), 0);
    CHECK_EQ(iou_read_full(p[0], b, 10, -1), 0);
    close(p[0]);
    free(b);
    return 0;
}

static int drain_reader(void *arg)
{
    feed *f = arg;
    unsigned char b[1000];
    size_t off = 0;
    while (off < f->len) {
        size_t want = 1 + rng_next(&rng) % sizeof(b);
        ssize_t n = iou_read(f->fd, b, want < f->len - off ? want : f->len - off, -1);
        CHECK(n > 0);
        CHECK_EQ(pattern_mismatch(b, (size_t)n, SEED, off), n);
        off += (size_t)n;
    }
    CHECK_EQ(iou_close(f->fd), 0); /* the writer then gets EPIPE */
    return 0;
}

/* A pipe holds 64 KiB: writing LEN bytes takes many short writes while a
 * slow reader drains it; the reader stops after `stop` bytes. */
static int write_chunks_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    unsigned char *b = malloc(LEN);
    CHECK(b != NULL);
    pattern_fill(b, LEN, SEED, 0);
    feed f = {p[0], LEN, false};
    iou_task *r = spawn_checked(drain_reader, &f);
    CHECK_EQ(iou_write_full(p[1], b, LEN, -1), LEN);
    CHECK_EQ(iou_join(r), 0);
    /* No reader left: EPIPE (SIGPIPE is ignored), nothing written. */
    size_t done = 99;
    CHECK_EQ(iou_write_full_ex(p[1], b, 10, -1, &done), -EPIPE);
    CHECK_EQ(done, 0);
    close(p[1]);
    free(b);
    return 0;
}

/* The reader stops halfway through a big write: EPIPE, and done is exactly
 * what the reader consumed plus what sat in the pipe. */
static int partial_epipe_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    unsigned char *b = malloc(LEN);
    CHECK(b != NULL);
    pattern_fill(b, LEN, SEED, 0);
    feed f = {p[0], 100000, false};
    iou_task *r = spawn_checked(drain_reader, &f);
    size_t done = 0;
    CHECK_EQ(iou_write_full_ex(p[1], b, LEN, -1, &done), -EPIPE);
    CHECK(done >= 100000 && done < LEN);
    CHECK_EQ(iou_join(r), 0);
    close(p[1]);
    free(b);
    return 0;
}

/* RLIMIT_FSIZE cuts a file write short, then fails it with EFBIG. */
static int efbig_body(void *arg)
{
    (void)arg;
    int fd = iou_open(fs_path(0, "capped"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    unsigned char *b = malloc(LEN);
    CHECK(b != NULL);
    pattern_fill(b, LEN, SEED, 0);
    size_t done = 0;
    CHECK_EQ(iou_write_full_ex(fd, b, LEN, 1000, &done), -EFBIG);
    CHECK_EQ(done, 65536 - 1000);
    CHECK_EQ(fs_size(fd), 65536);
    memset(b, 0, LEN);
    CHECK_EQ(iou_read_full(fd, b, LEN, 1000), 65536 - 1000);
    CHECK_EQ(pattern_mismatch(b, done, SEED, 0), done);
    CHECK_EQ(iou_close(fd), 0);
    free(b);
    return 0;
}

/* A read_full waiting on a pipe, cancelled after some bytes arrived:
 * -ECANCELED, and done counts the bytes it had. */
typedef struct cancel_ctx {
    int fd;
    size_t done;
    ssize_t ret;
    unsigned char buf[1000];
} cancel_ctx;

static int waiting_reader(void *arg)
{
    cancel_ctx *c = arg;
    c->ret = iou_read_full_ex(c->fd, c->buf, sizeof(c->buf), -1, &c->done);
    return 0;
}

static int cancel_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    cancel_ctx c = {.fd = p[0]};
    iou_task *t = spawn_checked(waiting_reader, &c);
    CHECK_EQ(iou_write(p[1], "0123456789", 10, -1), 10);
    settle(); /* the reader takes the 10 bytes and waits for more */
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(c.ret, -ECANCELED);
    CHECK_EQ(c.done, 10);
    CHECK(memcmp(c.buf, "0123456789", 10) == 0);
    close(p[0]);
    close(p[1]);
    return 0;
}

int main(void)
{
    watchdog(60);
    rng = rng_seed();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    fs_tempdir();
    CHECK_EQ(run_or_skip(read_chunks_main, NULL), 0);
    CHECK_EQ(run_or_skip(write_chunks_main, NULL), 0);
    CHECK_EQ(run_or_skip(partial_epipe_main, NULL), 0);
    CHECK_EQ(run_or_skip(cancel_main, NULL), 0);
    struct rlimit rl = {.rlim_cur = 65536, .rlim_max = RLIM_INFINITY};
    CHECK_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
    fs_both_ways(efbig_body, NULL);
    return 0;
}
