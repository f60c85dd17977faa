/*
 * Reads and writes across many sizes and offsets, checked byte for byte
 * against a pattern: iou_read / iou_write, the _full variants, readv /
 * writev with random scatter layouts, the file position (off < 0), and short
 * reads at end of file. Runs inside tasks (with and without the cached-read
 * fast path) and outside any task.
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
    FILE_LEN = 3 * 1024 * 1024 + 123,
    SEED = 7,
};

static uint64_t rng;
static unsigned char *big;

/* Sizes that straddle pages and blocks: 0, 1, odd, 4095..4097, 64 KiB, 1 MiB+. */
static const size_t sizes[] = {0, 1, 7, 511, 512, 513, 4095, 4096, 4097, 12345,
                               65536, 65537, 1 << 20, (1 << 20) + 4097};

static int open_file(int flags)
{
    int fd = iou_open(fs_path(0, "rw"), flags | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    return fd;
}

/* Writes the whole file as chunks of every size, at scattered offsets. */
static void write_pattern(int fd)
{
    CHECK_EQ(iou_ftruncate(fd, 0), 0);
    size_t off = 0, i = 0;
    while (off < FILE_LEN) {
        size_t n = sizes[i++ % (sizeof(sizes) / sizeof(sizes[0]))];
        if (n > FILE_LEN - off)
            n = FILE_LEN - off;
        pattern_fill(big, n, SEED, off);
        CHECK_EQ(iou_write_full(fd, big, n, (int64_t)off), (long long)n);
        off += n;
    }
    CHECK_EQ(fs_size(fd), FILE_LEN);
}

/* Random (offset, size) reads, each compared with the pattern; a read past
 * the end is short by exactly the right amount. */
static void read_random(int fd)
{
    for (int k = 0; k < 300; k++) {
        size_t n = sizes[rng_next(&rng) % (sizeof(sizes) / sizeof(sizes[0]))];
        size_t off = rng_next(&rng) % (FILE_LEN + 10);
        size_t expect = off >= FILE_LEN ? 0 : (FILE_LEN - off < n ? FILE_LEN - off : n);
        CHECK_EQ(iou_read_full(fd, big, n, (int64_t)off), (long long)expect);
        CHECK_EQ(pattern_mismatch(big, expect, SEED, off), expect);
    }
}

static void eof_reads(int fd)
{
    char b[100];
    CHECK_EQ(iou_read(fd, b, sizeof(b), FILE_LEN - 10), 10);
    CHECK_EQ(pattern_mismatch(b, 10, SEED, FILE_LEN - 10), 10);
    CHECK_EQ(iou_read(fd, b, sizeof(b), FILE_LEN), 0);
    CHECK_EQ(iou_read(fd, b, sizeof(b), (int64_t)FILE_LEN + 99999), 0);
    size_t done = 1234;
    CHECK_EQ(iou_read_full_ex(fd, b, sizeof(b), FILE_LEN - 3, &done), 3);
    CHECK_EQ(done, 3);
    CHECK_EQ(iou_read_full_ex(fd, b, 0, 0, &done), 0);
    CHECK_EQ(done, 0);
}

/* The file position: sequential reads and writes with off < 0 advance it. */
static void position(int fd)
{
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    size_t off = 0;
    while (off < FILE_LEN) {
        size_t n = 1 + rng_next(&rng) % 200000;
        ssize_t got = iou_read_full(fd, big, n, -1);
        CHECK(got > 0);
        CHECK_EQ(pattern_mismatch(big, (size_t)got, SEED, off), got);
        off += (size_t)got;
    }
    CHECK_EQ(off, FILE_LEN);
    CHECK_EQ(iou_read(fd, big, 10, -1), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), FILE_LEN);
    pattern_fill(big, 1000, SEED, FILE_LEN);
    CHECK_EQ(iou_write_full(fd, big, 1000, -1), 1000); /* appends at the position */
    CHECK_EQ(fs_size(fd), FILE_LEN + 1000);
    CHECK_EQ(iou_ftruncate(fd, FILE_LEN), 0);
}

/* Splits len bytes into at most max random pieces (some empty). */
static int scatter(struct iovec *iov, int max, unsigned char *base, size_t len)
{
    int n = 1 + (int)(rng_next(&rng) % (unsigned)max);
    size_t left = len;
    for (int i = 0; i < n; i++) {
        size_t part = i == n - 1 ? left : (left ? rng_next(&rng) % (left + 1) : 0);
        iov[i] = (struct iovec){base + (len - left), part};
        left -= part;
    }
    return n;
}

static void vectors(int fd)
{
    struct iovec iov[64];
    for (int k = 0; k < 100; k++) {
        size_t len = 1 + rng_next(&rng) % 300000;
        size_t off = rng_next(&rng) % (FILE_LEN - len);
        memset(big, 0, len);
        int n = scatter(iov, 64, big, len);
        ssize_t got = iou_readv(fd, iov, n, (int64_t)off);
        CHECK(got > 0 && (size_t)got <= len); /* may be short: fine, check what came */
        CHECK_EQ(pattern_mismatch(big, (size_t)got, SEED, off), got);
        /* Write it back elsewhere through another layout, then compare. */
        n = scatter(iov, 64, big, (size_t)got);
        CHECK_EQ(iou_writev(fd, iov, n, (int64_t)(FILE_LEN + off)), got);
        unsigned char *chk = malloc((size_t)got);
        CHECK(chk != NULL);
        CHECK_EQ(iou_read_full(fd, chk, (size_t)got, (int64_t)(FILE_LEN + off)), got);
        CHECK_EQ(pattern_mismatch(chk, (size_t)got, SEED, off), got);
        free(chk);
    }
    CHECK_EQ(iou_ftruncate(fd, FILE_LEN), 0);
    CHECK_EQ(iou_readv(fd, iov, -1, 0), -EINVAL);
    CHECK_EQ(iou_readv(fd, iov, 100000, 0), -EINVAL);
    CHECK_EQ(iou_writev(fd, iov, -1, 0), -EINVAL);
    CHECK_EQ(iou_readv(fd, iov, 0, 0), 0);
    CHECK_EQ(iou_readv(1 << 20, iov, 1, 0), -EBADF);
    iov[0] = (struct iovec){big, 10};
    CHECK_EQ(iou_readv(fd, iov, 1, FILE_LEN), 0);
    CHECK_EQ(iou_readv(fd, iov, 1, FILE_LEN - 4), 4);
}

static void errors(int fd)
{
    char b[8];
    CHECK_EQ(iou_read(1 << 20, b, 8, 0), -EBADF);
    CHECK_EQ(iou_write(1 << 20, b, 8, 0), -EBADF);
    CHECK_EQ(iou_read_full(1 << 20, b, 8, 0), -EBADF);
    size_t done = 99;
    CHECK_EQ(iou_write_full_ex(1 << 20, b, 8, 0, &done), -EBADF);
    CHECK_EQ(done, 0);
    CHECK_EQ(iou_read_full(fd, b, (size_t)SSIZE_MAX + 1, 0), -EINVAL);
    int wo = iou_open(fs_path(0, "rw"), O_WRONLY | O_CLOEXEC, 0);
    CHECK(wo >= 0);
    CHECK_EQ(iou_read(wo, b, 8, 0), -EBADF);
    CHECK_EQ(iou_close(wo), 0);
    int dfd = iou_open(fs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    CHECK(dfd >= 0);
    CHECK_EQ(iou_read(dfd, b, 8, 0), -EISDIR);
    CHECK_EQ(iou_close(dfd), 0);
}

static int body(void *arg)
{
    (void)arg;
    int fd = open_file(O_RDWR | O_CREAT);
    write_pattern(fd);
    read_random(fd);
    eof_reads(fd);
    position(fd);
    vectors(fd);
    errors(fd);
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

int main(void)
{
    watchdog(100);
    rng = rng_seed();
    fs_tempdir();
    big = malloc(2 << 20);
    CHECK(big != NULL);
    fs_both_ways(body, NULL);
    iou_loop_opts ring_only = {.no_read_fastpath = true};
    CHECK_EQ(run_ex_or_skip(body, NULL, &ring_only), 0);
    free(big);
    return 0;
}
