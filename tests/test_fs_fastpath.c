/*
 * The cached-read fast path: with it on, off (loop option) and off by
 * environment (IOU_NOWAIT_READ=0), random reads give identical bytes; a
 * cached read completes without suspending the task (another task does not
 * get to run), an uncached or partly cached one still returns every byte,
 * pipes, sockets and O_DIRECT files never take it, a reused fd number is
 * relearnt, and a cancelled task gets -ECANCELED even for cached data.
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
    LEN = 2 * 1024 * 1024,
    SEED = 21,
    READS = 400,
};

static uint64_t seed;
static uint32_t digest[3]; /* one per mode: must all agree */

static int open_name(const char *name, int flags)
{
    int fd = iou_open(fs_path(0, name), flags | O_CLOEXEC, 0);
    CHECK(fd >= 0);
    return fd;
}

/* A digest of READS random reads (same seed in every mode), each checked. */
static int random_reads(void *arg)
{
    uint32_t *out = arg;
    uint64_t rng = seed;
    int fd = open_name("f", O_RDONLY);
    unsigned char *b = malloc(70000);
    CHECK(b != NULL);
    uint32_t h = 2166136261u;
    for (int i = 0; i < READS; i++) {
        size_t len = 1 + rng_next(&rng) % 70000;
        size_t off = rng_next(&rng) % (LEN + 100);
        if (i % 50 == 0) /* drop the cache now and then: misses and partial hits */
            CHECK_EQ(iou_fadvise(fd, (int64_t)(off & ~4095ul) + 8192, 16384, POSIX_FADV_DONTNEED), 0);
        ssize_t n = i % 3 ? iou_read(fd, b, len, (int64_t)off)
                          : iou_readv(fd, &(struct iovec){b, len}, 1, (int64_t)off);
        size_t expect = off >= LEN ? 0 : (LEN - off < len ? LEN - off : len);
        CHECK(n >= 0 && (size_t)n <= expect);
        if (i % 3) /* iou_read: short only at end of file, also on a partial hit */
            CHECK_EQ(n, expect);
        CHECK_EQ(pattern_mismatch(b, (size_t)n, SEED, off), n);
        for (ssize_t k = 0; k < n; k++)
            h = (h ^ b[k]) * 16777619u;
        h = (h ^ (uint32_t)n) * 16777619u;
    }
    free(b);
    CHECK_EQ(iou_close(fd), 0);
    *out = h;
    return 0;
}

/* ---- does a read suspend? ----------------------------------------------------------- */

static bool bystander_ran;

static int bystander(void *arg)
{
    (void)arg;
    bystander_ran = true;
    return 0;
}

/* Reads len bytes from fd with another task ready to run: returns whether
 * the read suspended (the other task ran meanwhile). */
static bool read_suspends(int fd, int64_t off)
{
    static _Alignas(4096) char b[4096]; /* fit for O_DIRECT */
    bystander_ran = false;
    iou_task *t = spawn_checked(bystander, NULL);
    CHECK(iou_read(fd, b, sizeof(b), off) > 0);
    bool suspended = bystander_ran;
    CHECK_EQ(iou_join(t), 0);
    return suspended;
}

/* Which of the first 4 pages of fd are in the page cache, as bits. mincore
 * looks without reading (a RWF_NOWAIT read of an uncached page may start
 * reading it, and then a later check races with that I/O). */
static unsigned cached_pages(int fd)
{
    void *m = mmap(NULL, 16384, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    unsigned char vec[4];
    CHECK_EQ(mincore(m, 16384, vec), 0);
    munmap(m, 16384);
    unsigned bits = 0;
    for (int i = 0; i < 4; i++)
        bits |= (vec[i] & 1u) << i;
    return bits;
}

/* [0, 8K) cached, [8K, 16K) not: a 16 KiB read returns all of it, the
 * second half through the ring. Returns whether it suspended. */
static bool partial_hit(int fd)
{
    static unsigned char b[16384];
    /* Drop the file's cache, then cache [0, 8K) alone (no readahead). */
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
    CHECK_EQ(pread(fd, b, 8192, 0), 8192);
    CHECK_EQ(cached_pages(fd), 0x3); /* the setup worked */
    bystander_ran = false;
    iou_task *t = spawn_checked(bystander, NULL);
    CHECK_EQ(iou_read(fd, b, sizeof(b), 0), sizeof(b));
    bool suspended = bystander_ran;
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(pattern_mismatch(b, sizeof(b), SEED, 0), sizeof(b));
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL), 0);
    return suspended;
}

static int suspension(void *arg)
{
    bool fast = arg != NULL;
    int fd = open_name("f", O_RDONLY);
    char b[4096];
    CHECK_EQ(iou_read(fd, b, sizeof(b), 0), sizeof(b)); /* now cached */
    CHECK_EQ(read_suspends(fd, 0), !fast);
    CHECK_EQ(read_suspends(fd, -1), !fast); /* the file position too */
    CHECK(partial_hit(fd)); /* the uncached half always needs the ring */
    /* A pipe always goes through the ring. */
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(write(p[1], b, sizeof(b)), sizeof(b));
    CHECK(read_suspends(p[0], -1));
    /* fd numbers reused: close the file, put a socket under its number. */
    CHECK_EQ(iou_close(fd), 0);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    if (sv[0] != fd) {
        CHECK_EQ(dup3(sv[0], fd, O_CLOEXEC), fd);
        close(sv[0]);
    }
    CHECK_EQ(write(sv[1], b, sizeof(b)), sizeof(b));
    CHECK(read_suspends(fd, -1));
    CHECK_EQ(iou_close(fd), 0);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    return 0;
}

static int direct_never_fast(void *arg)
{
    (void)arg;
    int fd = iou_open(fs_path(0, "f"), O_RDONLY | O_DIRECT | O_CLOEXEC, 0);
    if (fd == -EINVAL)
        return 0; /* no O_DIRECT here: nothing to check */
    CHECK(fd >= 0);
    CHECK(read_suspends(fd, 0));
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

/* A cancelled task reads nothing, even what the page cache has. */
static int cancelled_reader(void *arg)
{
    int fd = *(int *)arg;
    iou_cancel(iou_self());
    char b[16];
    CHECK_EQ(iou_read(fd, b, sizeof(b), 0), -ECANCELED);
    CHECK_EQ(iou_readv(fd, &(struct iovec){b, sizeof(b)}, 1, 0), -ECANCELED);
    return 0;
}

static int cancel_main(void *arg)
{
    (void)arg;
    int fd = open_name("f", O_RDONLY);
    char b[16];
    CHECK_EQ(iou_read(fd, b, sizeof(b), 0), sizeof(b));
    iou_task *t = spawn_checked(cancelled_reader, &fd);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

int main(void)
{
    watchdog(60);
    seed = rng_seed();
    fs_tempdir();
    fs_make_file("f", LEN, SEED);
    iou_loop_opts off = {.no_read_fastpath = true};
    CHECK_EQ(run_or_skip(random_reads, &digest[0]), 0);
    CHECK_EQ(run_ex_or_skip(random_reads, &digest[1], &off), 0);
    setenv("IOU_NOWAIT_READ", "0", 1);
    CHECK_EQ(run_or_skip(random_reads, &digest[2]), 0);
    CHECK_EQ(digest[0], digest[1]);
    CHECK_EQ(digest[0], digest[2]);
    CHECK_EQ(run_or_skip(suspension, NULL), 0); /* env says off */
    unsetenv("IOU_NOWAIT_READ");
    CHECK_EQ(run_ex_or_skip(suspension, NULL, &off), 0);
    CHECK_EQ(run_or_skip(suspension, (void *)1), 0);
    CHECK_EQ(run_or_skip(direct_never_fast, NULL), 0);
    CHECK_EQ(run_or_skip(cancel_main, NULL), 0);
    return 0;
}
