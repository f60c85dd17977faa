/*
 * splice and tee: file -> pipe -> file copies at offsets and at the file
 * position, tee duplicating a pipe's bytes, a splice waiting on an empty pipe
 * (the loop keeps running other tasks), and the errors (EINVAL, ESPIPE,
 * EBADF).
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <unistd.h>

enum {
    LEN = 1000000,
    SEED = 3,
};

static int open_name(const char *name, int flags)
{
    int fd = iou_open(fs_path(0, name), flags | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    return fd;
}

static void make_pipe(int p[2])
{
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
}

static void check_copy(int dst, size_t len, uint64_t start)
{
    unsigned char *b = malloc(len);
    CHECK(b != NULL);
    CHECK_EQ(iou_read_full(dst, b, len, 0), (long long)len);
    CHECK_EQ(pattern_mismatch(b, len, SEED, start), len);
    free(b);
}

/* Copies src[off, off+len) to dst at 0 through a pipe, in pieces. */
static void copy_through_pipe(int src, int dst, int64_t off, size_t len)
{
    int p[2];
    make_pipe(p);
    size_t moved = 0;
    while (moved < len) {
        ssize_t in = iou_splice(src, off + (int64_t)moved, p[1], -1, len - moved, SPLICE_F_MOVE);
        CHECK(in > 0);
        for (ssize_t out = 0; out < in;) {
            ssize_t n = iou_splice(p[0], -1, dst, (int64_t)(moved + (size_t)out),
                                   (size_t)(in - out), SPLICE_F_MOVE);
            CHECK(n > 0);
            out += n;
        }
        moved += (size_t)in;
    }
    close(p[0]);
    close(p[1]);
}

static void at_offsets(void)
{
    int src = open_name("src", O_RDONLY), dst = open_name("dst", O_RDWR | O_CREAT | O_TRUNC);
    copy_through_pipe(src, dst, 12345, LEN - 12345);
    CHECK_EQ(fs_size(dst), LEN - 12345);
    check_copy(dst, LEN - 12345, 12345);
    /* At end of file a splice moves nothing. */
    int p[2];
    make_pipe(p);
    CHECK_EQ(iou_splice(src, LEN, p[1], -1, 100, 0), 0);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(iou_close(src), 0);
    CHECK_EQ(iou_close(dst), 0);
}

/* off < 0: both files' positions advance. */
static void at_position(void)
{
    int src = open_name("src", O_RDONLY), dst = open_name("dst", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_EQ(lseek(src, 100, SEEK_SET), 100);
    int p[2];
    make_pipe(p);
    size_t total = 0;
    for (;;) {
        ssize_t in = iou_splice(src, -1, p[1], -1, 65536, 0);
        CHECK(in >= 0);
        if (in == 0)
            break;
        for (ssize_t out = 0; out < in;) {
            ssize_t n = iou_splice(p[0], -1, dst, -1, (size_t)(in - out), 0);
            CHECK(n > 0);
            out += n;
        }
        total += (size_t)in;
    }
    CHECK_EQ(total, LEN - 100);
    CHECK_EQ(lseek(src, 0, SEEK_CUR), LEN);
    CHECK_EQ(lseek(dst, 0, SEEK_CUR), LEN - 100);
    check_copy(dst, LEN - 100, 100);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(iou_close(src), 0);
    CHECK_EQ(iou_close(dst), 0);
}

static void tee_pipes(void)
{
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    unsigned char buf[5000], got[5000];
    pattern_fill(buf, sizeof(buf), SEED, 0);
    CHECK_EQ(write(a[1], buf, sizeof(buf)), sizeof(buf));
    ssize_t n = iou_tee(a[0], b[1], sizeof(buf), 0);
    CHECK(n > 0);
    /* Both pipes now hold the bytes: tee did not consume a's. */
    CHECK_EQ(iou_read_full(b[0], got, (size_t)n, -1), n);
    CHECK(memcmp(got, buf, (size_t)n) == 0);
    CHECK_EQ(iou_read_full(a[0], got, sizeof(buf), -1), sizeof(buf));
    CHECK(memcmp(got, buf, sizeof(buf)) == 0);
    int f = open_name("src", O_RDONLY);
    CHECK_EQ(iou_tee(f, b[1], 10, 0), -EINVAL);     /* not a pipe */
    CHECK_EQ(iou_tee(a[0], a[1], 10, 0), -EINVAL);  /* the same pipe */
    CHECK_EQ(iou_tee(1 << 20, b[1], 10, 0), -EBADF);
    close(a[1]);
    CHECK_EQ(iou_tee(a[0], b[1], 10, SPLICE_F_NONBLOCK), 0); /* empty, no writer */
    CHECK_EQ(iou_close(f), 0);
    close(a[0]);
    close(b[0]);
    close(b[1]);
}

static void errors(void)
{
    int src = open_name("src", O_RDONLY), dst = open_name("dst", O_RDWR | O_CREAT);
    int p[2];
    make_pipe(p);
    CHECK_EQ(iou_splice(src, 0, dst, 0, 10, 0), -EINVAL);   /* no pipe */
    CHECK_EQ(iou_splice(src, 0, p[1], 5, 10, 0), -ESPIPE);  /* offset on a pipe */
    CHECK_EQ(iou_splice(1 << 20, 0, p[1], -1, 10, 0), -EBADF);
    CHECK_EQ(iou_splice(src, 0, 1 << 20, -1, 10, 0), -EBADF);
    CHECK_EQ(iou_splice(p[1], -1, dst, 0, 10, 0), -EBADF);  /* the pipe's write end */
    close(p[1]);
    CHECK_EQ(iou_splice(p[0], -1, dst, 0, 10, 0), 0);       /* no writer left */
    close(p[0]);
    CHECK_EQ(iou_close(src), 0);
    CHECK_EQ(iou_close(dst), 0);
}

static int body(void *arg)
{
    (void)arg;
    at_offsets();
    at_position();
    tee_pipes();
    errors();
    return 0;
}

/* A splice from an empty pipe waits in the kernel without stopping the
 * loop: another task fills the pipe, and the splice then completes. */
static int pipe_writer(void *arg)
{
    int fd = *(int *)arg;
    static const char msg[] = "late bytes";
    CHECK_EQ(iou_write_full(fd, msg, sizeof(msg), -1), sizeof(msg));
    return 0;
}

static int waiting_main(void *arg)
{
    (void)arg;
    int p[2];
    make_pipe(p);
    int dst = open_name("late", O_RDWR | O_CREAT | O_TRUNC);
    iou_task *w = spawn_checked(pipe_writer, &p[1]);
    CHECK_EQ(iou_splice(p[0], -1, dst, 0, 100, 0), 11);
    CHECK_EQ(iou_join(w), 0);
    char b[11];
    CHECK_EQ(iou_read_full(dst, b, sizeof(b), 0), 11);
    CHECK(memcmp(b, "late bytes", 11) == 0);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(iou_close(dst), 0);
    return 0;
}

int main(void)
{
    watchdog(60);
    fs_tempdir();
    fs_make_file("src", LEN, SEED);
    fs_both_ways(body, NULL);
    CHECK_EQ(run_or_skip(waiting_main, NULL), 0);
    return 0;
}
