/*
 * A file's size and writeback: fallocate, ftruncate, fdatasync,
 * sync_file_range, fadvise. Success and failures (EBADF, EINVAL, ESPIPE,
 * EFBIG), inside a task and outside one.
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_rw(const char *name)
{
    int fd = iou_open(fs_path(0, name), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    return fd;
}

static void check_fallocate(int fd)
{
    CHECK_EQ(iou_fallocate(fd, 0, 0, 1 << 20), 0);
    CHECK_EQ(fs_size(fd), 1 << 20);
    CHECK_EQ(iou_fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20), 0);
    CHECK_EQ(fs_size(fd), 1 << 20); /* blocks reserved, size unchanged */
    /* Punching a hole: the bytes read back as zeros, the size stays. */
    char b[4096];
    memset(b, 'x', sizeof(b));
    CHECK_EQ(iou_write_full(fd, b, sizeof(b), 8192), sizeof(b));
    int r = iou_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192, 4096);
    CHECK(r == 0 || r == -EOPNOTSUPP);
    if (r == 0) {
        CHECK_EQ(iou_read_full(fd, b, sizeof(b), 8192), sizeof(b));
        for (size_t i = 0; i < sizeof(b); i++)
            CHECK_EQ(b[i], 0);
    }
    CHECK_EQ(iou_fallocate(fd, 0, 0, 0), -EINVAL);
    CHECK_EQ(iou_fallocate(fd, 0, -1, 10), -EINVAL);
    CHECK_EQ(iou_fallocate(1 << 20, 0, 0, 10), -EBADF);
}

static void check_ftruncate(int fd)
{
    CHECK_EQ(iou_ftruncate(fd, 100), 0);
    CHECK_EQ(fs_size(fd), 100);
    CHECK_EQ(iou_ftruncate(fd, 5000000), 0); /* grows, sparse */
    CHECK_EQ(fs_size(fd), 5000000);
    char b[8];
    CHECK_EQ(iou_read(fd, b, sizeof(b), 4999996), 4);
    CHECK_EQ(iou_ftruncate(fd, 0), 0);
    CHECK_EQ(fs_size(fd), 0);
    CHECK_EQ(iou_ftruncate(fd, -1), -EINVAL);
    CHECK_EQ(iou_ftruncate(1 << 20, 0), -EBADF);
    int ro = iou_open(fs_path(0, "f"), O_RDONLY | O_CLOEXEC, 0);
    CHECK(ro >= 0);
    int r = iou_ftruncate(ro, 10); /* not open for writing */
    CHECK(r == -EINVAL || r == -EBADF);
    CHECK_EQ(iou_close(ro), 0);
}

static void check_sync(int fd, int pipe_rd)
{
    CHECK_EQ(iou_write_full(fd, "data", 4, 0), 4);
    CHECK_EQ(iou_fdatasync(fd), 0);
    CHECK_EQ(iou_fsync(fd), 0);
    CHECK_EQ(iou_fdatasync(1 << 20), -EBADF);
    CHECK_EQ(iou_sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE), 0);
    CHECK_EQ(iou_sync_file_range(fd, 0, 4, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                               SYNC_FILE_RANGE_WAIT_AFTER), 0);
    CHECK_EQ(iou_sync_file_range(fd, 0, (int64_t)1 << 40, SYNC_FILE_RANGE_WRITE), 0);
    CHECK_EQ(iou_sync_file_range(fd, 0, 0, 0x100), -EINVAL); /* unknown flag */
    CHECK_EQ(iou_sync_file_range(fd, -1, 0, 0), -EINVAL);
    CHECK_EQ(iou_sync_file_range(pipe_rd, 0, 0, SYNC_FILE_RANGE_WRITE), -ESPIPE);
    CHECK_EQ(iou_sync_file_range(1 << 20, 0, 0, 0), -EBADF);
}

static void check_fadvise(int fd, int pipe_rd)
{
    CHECK_EQ(iou_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL), 0);
    CHECK_EQ(iou_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED), 0);
    CHECK_EQ(iou_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    CHECK_EQ(iou_fadvise(fd, 0, (int64_t)1 << 40, POSIX_FADV_RANDOM), 0); /* long range */
    char b[4];
    CHECK_EQ(iou_read(fd, b, 4, 0), 4); /* still readable after the cache dropped it */
    CHECK(memcmp(b, "data", 4) == 0);
    CHECK_EQ(iou_fadvise(fd, 0, 0, 12345), -EINVAL);
    CHECK_EQ(iou_fadvise(fd, -1, 0, POSIX_FADV_NORMAL), -EINVAL);
    CHECK_EQ(iou_fadvise(pipe_rd, 0, 0, POSIX_FADV_NORMAL), -ESPIPE);
    CHECK_EQ(iou_fadvise(1 << 20, 0, 0, POSIX_FADV_NORMAL), -EBADF);
}

static int body(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    int fd = open_rw("f");
    check_fallocate(fd);
    check_ftruncate(fd);
    check_sync(fd, p[0]);
    check_fadvise(fd, p[0]);
    CHECK_EQ(iou_close(fd), 0);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Beyond RLIMIT_FSIZE both ways of growing a file fail with EFBIG. */
static int fsize_body(void *arg)
{
    (void)arg;
    int fd = open_rw("big");
    CHECK_EQ(iou_ftruncate(fd, 8192), 0);
    CHECK_EQ(iou_ftruncate(fd, 1 << 20), -EFBIG);
    CHECK_EQ(iou_fallocate(fd, 0, 0, 1 << 20), -EFBIG);
    CHECK_EQ(fs_size(fd), 8192);
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

int main(void)
{
    watchdog(60);
    fs_tempdir();
    fs_both_ways(body, NULL);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = 65536, .rlim_max = RLIM_INFINITY};
    CHECK_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
    fs_both_ways(fsize_body, NULL);
    return 0;
}
