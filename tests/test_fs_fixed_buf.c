/*
 * Registered buffers: allocation (page-aligned, rounded to pages), fixed
 * reads and writes round-tripping at many offsets, the table growing past its
 * first size (and refusing to, -EBUSY, under a fixed operation), bounds and liveness errors, a buffer freed while an operation
 * on it is in flight (released only once that completes, which it does
 * normally), and buffers a loop still holds when it ends (unmapped with it).
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
    SEED = 9,
    MANY = 150, /* more than the table's first 64 slots: it must grow twice */
};

static uint64_t rng;

static int open_file(void)
{
    int fd = iou_open(fs_path(0, "f"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    return fd;
}

/* True when no page of [p, p + len) is mapped any more. */
static bool unmapped(void *p, size_t len)
{
    unsigned char vec[1];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t off = 0; off < len; off += page)
        if (mincore((char *)p + off, page, vec) == 0 || errno != ENOMEM)
            return false;
    return true;
}

static void check_alloc(void)
{
    iou_fixed_buf b;
    CHECK_EQ(iou_fixed_buf_alloc(0, &b), -EINVAL);
    CHECK_EQ(iou_fixed_buf_alloc(((size_t)1 << 30) + 1, &b), -EINVAL);
    CHECK_EQ(iou_fixed_buf_alloc(100, NULL), -EINVAL);
    CHECK_EQ(iou_fixed_buf_alloc(100, &b), 0);
    CHECK(b.data != NULL && b.index >= 0);
    CHECK_EQ((uintptr_t)b.data % 4096, 0);
    CHECK_EQ(b.len, 4096);
    void *data = b.data;
    iou_fixed_buf copy = b;
    iou_fixed_buf_free(&b);
    CHECK(b.data == NULL && b.index == -1);
    CHECK(unmapped(data, 4096));
    iou_fixed_buf_free(&b);    /* twice: nothing */
    iou_fixed_buf_free(&copy); /* a stale copy: nothing */
    iou_fixed_buf_free(NULL);
    CHECK_EQ(iou_read_fixed(0, &copy, 0, 1, 0), -EINVAL); /* freed */
    CHECK_EQ(iou_read_fixed(0, NULL, 0, 1, 0), -EINVAL);
}

/* Every buffer writes its own stretch of the file, then reads another's. */
static void round_trips(int fd)
{
    static iou_fixed_buf bufs[MANY];
    for (int i = 0; i < MANY; i++) {
        size_t len = 1 + rng_next(&rng) % 70000;
        CHECK_EQ(iou_fixed_buf_alloc(len, &bufs[i]), 0);
        CHECK(bufs[i].len >= len && bufs[i].len % 4096 == 0);
        pattern_fill(bufs[i].data, bufs[i].len, SEED, (uint64_t)i * 80000);
    }
    for (int i = 0; i < MANY; i++)
        for (int j = 0; j < i; j++)
            CHECK(bufs[i].index != bufs[j].index);
    for (int i = 0; i < MANY; i++) {
        size_t boff = rng_next(&rng) % bufs[i].len;
        size_t len = bufs[i].len - boff;
        int64_t off = (int64_t)i * 80000 + (int64_t)boff;
        CHECK_EQ(iou_write_fixed(fd, &bufs[i], boff, len, off), (long long)len);
    }
    for (int i = 0; i < MANY; i++) {
        iou_fixed_buf *b = &bufs[(i + 1) % MANY];
        size_t off = rng_next(&rng) % ((size_t)MANY * 80000);
        size_t len = 1 + rng_next(&rng) % b->len;
        size_t boff = rng_next(&rng) % (b->len - len + 1);
        ssize_t n = iou_read_fixed(fd, b, boff, len, (int64_t)off);
        CHECK(n >= 0);
        unsigned char *got = (unsigned char *)b->data + boff;
        /* Holes between stretches read as zeros; written parts match. */
        for (ssize_t k = 0; k < n; k++) {
            size_t at = off + (size_t)k;
            if (got[k] != 0)
                CHECK_EQ(got[k], pattern_byte(SEED, at));
        }
    }
    for (int i = 0; i < MANY; i++)
        iou_fixed_buf_free(&bufs[i]);
}

static void bounds(int fd)
{
    iou_fixed_buf b;
    CHECK_EQ(iou_fixed_buf_alloc(8192, &b), 0);
    CHECK_EQ(iou_read_fixed(fd, &b, 0, 8193, 0), -EINVAL);
    CHECK_EQ(iou_read_fixed(fd, &b, 8192, 1, 0), -EINVAL);
    CHECK_EQ(iou_write_fixed(fd, &b, 1, 8192, 0), -EINVAL);
    CHECK_EQ(iou_write_fixed(fd, &b, SIZE_MAX, 2, 0), -EINVAL);
    CHECK_EQ(iou_read_fixed(fd, &b, 8192, 0, 0), 0); /* empty, at the end: fine */
    iou_fixed_buf forged = b;
    forged.data = (char *)b.data + 4096; /* not what the slot holds */
    CHECK_EQ(iou_read_fixed(fd, &forged, 0, 1, 0), -EINVAL);
    forged = b;
    forged.index = 9999;
    CHECK_EQ(iou_read_fixed(fd, &forged, 0, 1, 0), -EINVAL);
    CHECK_EQ(iou_read_fixed(1 << 20, &b, 0, 1, 0), -EBADF);
    pattern_fill(b.data, 100, SEED, 0);
    CHECK_EQ(iou_write_fixed(fd, &b, 0, 100, 0), 100);
    CHECK_EQ(iou_read_fixed(fd, &b, 1000, 100, 0), 100);
    CHECK_EQ(pattern_mismatch((char *)b.data + 1000, 100, SEED, 0), 100);
    iou_fixed_buf_free(&b);
}

/* ---- freeing under an operation in flight ---------------------------------------- */

typedef struct inflight {
    int fd;
    iou_fixed_buf *buf;
    ssize_t got;
} inflight;

static int blocked_reader(void *arg)
{
    inflight *c = arg;
    iou_fixed_buf b = *c->buf; /* its own copy: the owner frees the original */
    c->got = iou_read_fixed(c->fd, &b, 100, 6, -1);
    return 0; /* b's memory is gone now: the freed buffer left with the read */
}

static int free_while_busy(void)
{
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    iou_fixed_buf b;
    CHECK_EQ(iou_fixed_buf_alloc(4096, &b), 0);
    void *data = b.data;
    inflight c = {.fd = p[0], .buf = &b};
    iou_task *t = spawn_checked(blocked_reader, &c);
    settle(); /* the read waits in the kernel for pipe data */
    iou_fixed_buf_free(&b);
    CHECK(b.data == NULL);
    CHECK(!unmapped(data, 4096)); /* not yet: the kernel may still write there */
    CHECK_EQ(iou_write(p[1], "abcdef", 6, -1), 6);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(c.got, 6);
    CHECK(unmapped(data, 4096)); /* the completion released it */
    close(p[0]);
    close(p[1]);
    return 0;
}

/* The table is full (64 slots) while a fixed read is in flight: growing it
 * then would re-register under the read, so the allocation says -EBUSY, and
 * succeeds once the read has completed. */
static int busy_growth(void)
{
    static iou_fixed_buf bufs[64];
    for (int i = 0; i < 64; i++)
        CHECK_EQ(iou_fixed_buf_alloc(4096, &bufs[i]), 0);
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    inflight c = {.fd = p[0], .buf = &bufs[0]};
    iou_task *t = spawn_checked(blocked_reader, &c);
    settle();
    iou_fixed_buf extra;
    CHECK_EQ(iou_fixed_buf_alloc(4096, &extra), -EBUSY);
    CHECK_EQ(iou_write(p[1], "abcdef", 6, -1), 6);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(c.got, 6);
    CHECK(memcmp((char *)bufs[0].data + 100, "abcdef", 6) == 0);
    CHECK_EQ(iou_fixed_buf_alloc(4096, &extra), 0);
    /* The regrown table still serves the old buffers. */
    CHECK_EQ(iou_write(p[1], "ghijkl", 6, -1), 6);
    CHECK_EQ(iou_read_fixed(p[0], &bufs[63], 0, 6, -1), 6);
    CHECK(memcmp(bufs[63].data, "ghijkl", 6) == 0);
    iou_fixed_buf_free(&extra);
    for (int i = 0; i < 64; i++)
        iou_fixed_buf_free(&bufs[i]);
    close(p[0]);
    close(p[1]);
    return 0;
}

static int main_task(void *arg)
{
    (void)arg;
    int fd = open_file();
    check_alloc();
    round_trips(fd);
    bounds(fd);
    free_while_busy();
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

/* On a fresh loop, so that the table has its first size. */
static int growth_task(void *arg)
{
    (void)arg;
    busy_growth();
    return 0;
}

/* ---- left to the loop, and outside a task ------------------------------------------- */

static void *leaked[3];

static int leaker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        iou_fixed_buf b;
        CHECK_EQ(iou_fixed_buf_alloc(65536, &b), 0);
        memset(b.data, i, b.len);
        leaked[i] = b.data;
    }
    return 0;
}

static void outside_tasks(void)
{
    iou_fixed_buf b;
    CHECK_EQ(iou_fixed_buf_alloc(4096, &b), -ENOTSUP); /* no loop on this thread */
    iou_loop *l = iou_loop_new();
    if (l == NULL)
        SKIP("io_uring unavailable");
    /* A loop exists but no task runs: allocation works, reads are plain. */
    CHECK_EQ(iou_fixed_buf_alloc(4096, &b), 0);
    int fd = open_file();
    CHECK_EQ(iou_write_fixed(fd, &b, 0, 4096, 0), 4096);
    CHECK_EQ(iou_read_fixed(fd, &b, 0, 10, 0), 10);
    CHECK_EQ(iou_read_fixed(fd, &b, 1, 4096, 0), -EINVAL);
    close(fd);
    iou_fixed_buf_free(&b);
    iou_loop_free(l);
}

int main(void)
{
    watchdog(60);
    rng = rng_seed();
    fs_tempdir();
    CHECK_EQ(run_or_skip(main_task, NULL), 0);
    CHECK_EQ(run_or_skip(growth_task, NULL), 0);
    CHECK_EQ(run_or_skip(leaker, NULL), 0);
    for (int i = 0; i < 3; i++)
        CHECK(unmapped(leaked[i], 65536)); /* the loop released them */
    outside_tasks();
    return 0;
}
