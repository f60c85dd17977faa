/*
 * iou_copy_file_range: copies at offsets and at the file positions, short
 * copies at end of file, the errors (EBADF, EINVAL, EISDIR, a registered
 * handle, a copy across file systems that the kernel may refuse with EXDEV),
 * the loop's statistics, and cancellation: a copy still queued on the pool
 * is dropped and its caller returns at once; one that may have started
 * returns either -ECANCELED with nothing written or its full byte count.
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    LEN = 1000000,
    SEED = 5,
    BIG = 16 << 20, /* the copy that a cancellation may catch running */
};

static int open_name(const char *name, int flags)
{
    int fd = iou_open(fs_path(0, name), flags | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    return fd;
}

/* dst[0, len) holds the pattern from byte start on. */
static void check_copy(int dst, size_t len, uint64_t start)
{
    unsigned char *b = malloc(len);
    CHECK(b != NULL);
    CHECK_EQ(iou_read_full(dst, b, len, 0), (long long)len);
    CHECK_EQ(pattern_mismatch(b, len, SEED, start), len);
    free(b);
}

/* Copies src[off, off + len) to dst at 0, looping over short copies. */
static void copy_range(int src, int dst, int64_t off, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = iou_copy_file_range(src, off + (int64_t)done, dst, (int64_t)done,
                                        len - done, 0);
        CHECK(n > 0);
        done += (size_t)n;
    }
}

static void at_offsets(void)
{
    int src = open_name("src", O_RDONLY), dst = open_name("dst", O_RDWR | O_CREAT | O_TRUNC);
    copy_range(src, dst, 12345, LEN - 12345);
    CHECK_EQ(fs_size(dst), LEN - 12345);
    check_copy(dst, LEN - 12345, 12345);
    /* Past the end: what is there, then nothing. The positions do not move. */
    CHECK_EQ(iou_copy_file_range(src, LEN - 100, dst, 0, 1000, 0), 100);
    CHECK_EQ(iou_copy_file_range(src, LEN, dst, 0, 1000, 0), 0);
    CHECK_EQ(iou_copy_file_range(src, LEN + 5000, dst, 0, 1000, 0), 0);
    CHECK_EQ(lseek(src, 0, SEEK_CUR), 0);
    CHECK_EQ(lseek(dst, 0, SEEK_CUR), 0);
    CHECK_EQ(iou_close(src), 0);
    CHECK_EQ(iou_close(dst), 0);
}

/* Offsets -1: both files' positions advance. */
static void at_position(void)
{
    int src = open_name("src", O_RDONLY), dst = open_name("dst", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_EQ(lseek(src, 100, SEEK_SET), 100);
    size_t total = 0;
    for (;;) {
        ssize_t n = iou_copy_file_range(src, -1, dst, -1, 300000, 0);
        CHECK(n >= 0);
        if (n == 0)
            break;
        total += (size_t)n;
    }
    CHECK_EQ(total, LEN - 100);
    CHECK_EQ(lseek(src, 0, SEEK_CUR), LEN);
    CHECK_EQ(lseek(dst, 0, SEEK_CUR), LEN - 100);
    check_copy(dst, LEN - 100, 100);
    CHECK_EQ(iou_close(src), 0);
    CHECK_EQ(iou_close(dst), 0);
}

static void errors(void)
{
    int src = open_name("src", O_RDONLY), dst = open_name("dst", O_RDWR | O_CREAT);
    CHECK_EQ(iou_copy_file_range(1 << 20, 0, dst, 0, 10, 0), -EBADF);
    CHECK_EQ(iou_copy_file_range(src, 0, 1 << 20, 0, 10, 0), -EBADF);
    CHECK_EQ(iou_copy_file_range(src, 0, src, 500000, 10, 0), -EBADF); /* read-only out */
    CHECK_EQ(iou_copy_file_range(IOU_FIXED_FD | 0, 0, dst, 0, 10, 0), -EBADF);
    CHECK_EQ(iou_copy_file_range(src, -2, dst, 0, 10, 0), -EINVAL);
    CHECK_EQ(iou_copy_file_range(src, 0, dst, -5, 10, 0), -EINVAL);
    CHECK_EQ(iou_copy_file_range(src, 0, dst, 0, 10, 1), -EINVAL); /* flags */
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(iou_copy_file_range(p[0], -1, dst, 0, 10, 0), -EINVAL); /* not a file */
    close(p[0]);
    close(p[1]);
    int dir = iou_open(fs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    CHECK(dir >= 0);
    CHECK_EQ(iou_copy_file_range(dir, 0, dst, 0, 10, 0), -EISDIR);
    CHECK_EQ(iou_close(dir), 0);
    CHECK_EQ(iou_close(src), 0);
    CHECK_EQ(iou_close(dst), 0);
}

/* Into another file system (/dev/shm, when it is one): a kernel may copy or
 * refuse; a refusal is one of the codes callers fall back on. */
static void across_file_systems(void)
{
    struct stat a, b;
    if (stat("/dev/shm", &b) != 0 || stat(fs_dir, &a) != 0 || a.st_dev == b.st_dev)
        return;
    char path[64];
    snprintf(path, sizeof(path), "/dev/shm/iou_copy_range_%d", (int)getpid());
    int dst = iou_open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (dst < 0)
        return;
    unlink(path);
    int src = open_name("src", O_RDONLY);
    ssize_t n = iou_copy_file_range(src, 0, dst, 0, 4096, 0);
    if (n >= 0) {
        CHECK_EQ(n, 4096);
        check_copy(dst, 4096, 0);
    } else {
        CHECK(n == -EXDEV || n == -EOPNOTSUPP || n == -EINVAL);
        CHECK_EQ(fs_size(dst), 0);
    }
    CHECK_EQ(iou_close(src), 0);
    CHECK_EQ(iou_close(dst), 0);
}

static int body(void *arg)
{
    (void)arg;
    at_offsets();
    at_position();
    errors();
    across_file_systems();
    return 0;
}

static int stats_main(void *arg)
{
    (void)arg;
    int kind = op_kind("copy_file_range");
    iou_loop_stats before = {.size = sizeof(before)}, after = {.size = sizeof(after)};
    CHECK_EQ(iou_loop_get_stats(NULL, &before), 0);
    int src = open_name("src", O_RDONLY), dst = open_name("dst", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_EQ(iou_copy_file_range(src, 0, dst, 0, 1000, 0), 1000);
    CHECK_EQ(iou_copy_file_range(src, 0, dst, 0, 1000, 7), -EINVAL);
    CHECK_EQ(iou_loop_get_stats(NULL, &after), 0);
    CHECK_EQ(after.submitted[kind] - before.submitted[kind], 2);
    CHECK_EQ(after.completed[kind] - before.completed[kind], 2);
    CHECK_EQ(iou_close(src), 0);
    CHECK_EQ(iou_close(dst), 0);
    return 0;
}

/* ---- cancellation ---- */

static int pool_blocker(void *arg)
{
    int fd = *(int *)arg;
    char c;
    return read(fd, &c, 1) == 1 ? 0 : -EIO; /* holds the pool's only worker */
}

static int block_pool(void *arg)
{
    return iou_run_in_pool(pool_blocker, arg);
}

typedef struct copy_args {
    int src, dst;
    size_t len;
} copy_args;

static int copier(void *arg)
{
    copy_args *a = arg;
    return (int)iou_copy_file_range(a->src, 0, a->dst, 0, a->len, 0);
}

/* The pool's one worker is busy: the copy waits in its queue. Cancelled,
 * the caller returns -ECANCELED without waiting for the worker, and the
 * copy never happens. */
static int queued_main(void *arg)
{
    /* Opened first: on the epoll backend opening is a pool job too. */
    copy_args a = {open_name("src", O_RDONLY), open_name("dst", O_RDWR | O_CREAT | O_TRUNC),
                   LEN};
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    iou_task *blocker = spawn_checked(block_pool, &p[0]);
    CHECK_EQ(iou_yield(), 0); /* the blocker has posted its job */
    iou_task *c = spawn_checked(copier, &a);
    CHECK_EQ(iou_yield(), 0); /* the copy is queued behind the blocker */
    CHECK_EQ(iou_cancel(c), 0);
    CHECK_EQ(iou_join(c), -ECANCELED); /* while the worker is still blocked */
    CHECK_EQ(fs_size(a.dst), 0);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(iou_join(blocker), 0);
    close(a.src);
    close(p[0]);
    close(p[1]);
    /* The loop ends only once the skipped job came back (it counts as
     * pending work); the destination stays empty. */
    *(int *)arg = a.dst;
    return 0;
}

/* The copy may have ended already (-ESRCH: nothing left to cancel). */
static void cancel(iou_task *c)
{
    int r = iou_cancel(c);
    CHECK(r == 0 || r == -ESRCH);
}

/* Cancelled while queued or just posted: either it had not started
 * (-ECANCELED, nothing written) or the caller waited for it and returns
 * what it copied. */
static void cancel_early(copy_args *a, int yields)
{
    CHECK_EQ(iou_ftruncate(a->dst, 0), 0);
    iou_task *c = spawn_checked(copier, a);
    for (int y = 0; y < yields; y++)
        CHECK_EQ(iou_yield(), 0);
    cancel(c);
    int r = iou_join(c);
    if (r == -ECANCELED) {
        CHECK_EQ(fs_size(a->dst), 0);
    } else {
        CHECK(r > 0 && r <= BIG);
        CHECK_EQ(fs_size(a->dst), r);
    }
}

/* Cancelled once the copy visibly runs (the destination grows): the
 * caller cannot leave before the system call ends, and then reports the
 * bytes copied (all of them: nothing interrupts it), not -ECANCELED. */
static void cancel_running(copy_args *a)
{
    CHECK_EQ(iou_ftruncate(a->dst, 0), 0);
    iou_task *c = spawn_checked(copier, a);
    while (fs_size(a->dst) == 0)
        CHECK_EQ(iou_sleep(20000), 0);
    cancel(c);
    int r = iou_join(c);
    CHECK(r > 0);
    CHECK_EQ(fs_size(a->dst), r);
    check_copy(a->dst, (size_t)r, 0);
}

static int running_main(void *arg)
{
    (void)arg;
    copy_args a = {open_name("big", O_RDONLY), open_name("dst", O_RDWR | O_CREAT | O_TRUNC),
                   BIG};
    for (int yields = 0; yields < 4; yields++)
        cancel_early(&a, yields);
    cancel_running(&a);
    CHECK_EQ(iou_close(a.src), 0);
    CHECK_EQ(iou_close(a.dst), 0);
    return 0;
}

int main(void)
{
    watchdog(60);
    fs_tempdir();
    fs_make_file("src", LEN, SEED);
    fs_make_file("big", BIG, SEED);
    /* First, before anything starts pool workers: only one may run. */
    iou_pool_opts one = {.max_threads = 1};
    CHECK_EQ(iou_pool_config(&one), 0);
    int dst = -1;
    CHECK_EQ(run_or_skip(queued_main, &dst), 0);
    CHECK(dst >= 0);
    CHECK_EQ(fs_size(dst), 0);
    close(dst);
    CHECK_EQ(iou_pool_config(NULL), 0);
    fs_both_ways(body, NULL);
    CHECK_EQ(run_or_skip(stats_main, NULL), 0);
    CHECK_EQ(run_or_skip(running_main, NULL), 0);
    return 0;
}
