/*
 * Namespace operations: openat, statx, unlinkat, renameat, mkdirat, linkat,
 * symlinkat. Success
 * and the usual failures (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EBADF),
 * each checked inside a task (ring) and outside one (system call).
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int dirfd_open(void)
{
    int dfd = iou_openat(AT_FDCWD, fs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    CHECK(dfd >= 0);
    return dfd;
}

static void check_openat(int dfd)
{
    int fd = iou_openat(dfd, "a", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    CHECK(fd >= 0);
    CHECK_EQ(iou_write(fd, "abc", 3, 0), 3);
    CHECK_EQ(iou_close(fd), 0);
    CHECK_EQ(iou_openat(dfd, "a", O_RDWR | O_CREAT | O_EXCL, 0640), -EEXIST);
    CHECK_EQ(iou_openat(dfd, "missing", O_RDONLY, 0), -ENOENT);
    CHECK_EQ(iou_openat(dfd, "a/below", O_RDONLY, 0), -ENOTDIR);
    CHECK_EQ(iou_openat(dfd, ".", O_RDWR, 0), -EISDIR);
    CHECK_EQ(iou_openat(1 << 20, "a", O_RDONLY, 0), -EBADF); /* a relative path needs dirfd */
    fd = iou_openat(1 << 20, fs_path(0, "a"), O_RDONLY | O_CLOEXEC, 0); /* absolute: ignored */
    CHECK(fd >= 0);
    CHECK_EQ(iou_close(fd), 0);
    fd = iou_open(fs_path(0, "a"), O_RDONLY | O_CLOEXEC, 0);
    CHECK(fd >= 0);
    char b[4] = {0};
    CHECK_EQ(iou_read(fd, b, sizeof(b), 0), 3);
    CHECK(memcmp(b, "abc", 3) == 0);
    CHECK_EQ(iou_close(fd), 0);
}

static void check_statx(int dfd)
{
    struct statx st;
    memset(&st, 0xff, sizeof(st));
    CHECK_EQ(iou_statx(dfd, "a", 0, STATX_BASIC_STATS, &st), 0);
    CHECK(st.stx_mask & STATX_SIZE);
    CHECK_EQ(st.stx_size, 3);
    CHECK(S_ISREG(st.stx_mode));
    CHECK_EQ(st.stx_mode & 0777, 0640);
    CHECK_EQ(iou_statx(dfd, "", AT_EMPTY_PATH, STATX_TYPE, &st), 0);
    CHECK(S_ISDIR(st.stx_mode));
    CHECK_EQ(iou_statx(AT_FDCWD, fs_path(0, "a"), 0, STATX_SIZE, &st), 0);
    CHECK_EQ(st.stx_size, 3);
    CHECK_EQ(iou_statx(dfd, "missing", 0, STATX_SIZE, &st), -ENOENT);
    CHECK_EQ(iou_statx(dfd, "a/x", 0, STATX_SIZE, &st), -ENOTDIR);
    CHECK_EQ(iou_statx(1 << 20, "", AT_EMPTY_PATH, STATX_SIZE, &st), -EBADF);
    /* A symlink: followed by default, described itself with NOFOLLOW. */
    CHECK_EQ(symlinkat("a", dfd, "ln"), 0);
    CHECK_EQ(iou_statx(dfd, "ln", 0, STATX_TYPE, &st), 0);
    CHECK(S_ISREG(st.stx_mode));
    CHECK_EQ(iou_statx(dfd, "ln", AT_SYMLINK_NOFOLLOW, STATX_TYPE, &st), 0);
    CHECK(S_ISLNK(st.stx_mode));
    CHECK_EQ(iou_unlinkat(dfd, "ln", 0), 0);
}

/* Hard and symbolic links, and naming an O_TMPFILE file (iou-cp's publish). */
static void check_links(int dfd)
{
    struct stat st;
    CHECK_EQ(iou_linkat(dfd, "a", dfd, "hard", 0), 0);
    CHECK_EQ(fstatat(dfd, "hard", &st, 0), 0);
    CHECK_EQ(st.st_nlink, 2);
    CHECK_EQ(iou_linkat(dfd, "a", dfd, "hard", 0), -EEXIST);
    CHECK_EQ(iou_linkat(dfd, "missing", dfd, "h2", 0), -ENOENT);
    CHECK_EQ(iou_linkat(1 << 20, "a", dfd, "h2", 0), -EBADF);
    CHECK_EQ(iou_unlinkat(dfd, "hard", 0), 0);

    CHECK_EQ(iou_symlinkat("a", dfd, "soft"), 0);
    char target[8] = {0};
    CHECK_EQ(readlinkat(dfd, "soft", target, sizeof(target) - 1), 1);
    CHECK_EQ(target[0], 'a');
    CHECK_EQ(iou_symlinkat("a", dfd, "soft"), -EEXIST);
    CHECK_EQ(iou_symlinkat("a", dfd, "no/such"), -ENOENT);
    CHECK_EQ(iou_unlinkat(dfd, "soft", 0), 0);

    int fd = iou_openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd == -EOPNOTSUPP || fd == -EISDIR)
        return; /* no O_TMPFILE on this file system */
    CHECK(fd >= 0);
    CHECK_EQ(iou_write(fd, "tmp", 3, 0), 3);
    char proc[32];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    CHECK_EQ(iou_linkat(AT_FDCWD, proc, dfd, "named", AT_SYMLINK_FOLLOW), 0);
    CHECK_EQ(fstatat(dfd, "named", &st, 0), 0);
    CHECK_EQ(st.st_size, 3);
    CHECK_EQ(iou_close(fd), 0);
    CHECK_EQ(iou_unlinkat(dfd, "named", 0), 0);
}

static void check_mkdir(int dfd)
{
    CHECK_EQ(iou_mkdirat(dfd, "d", 0750), 0);
    struct stat st;
    CHECK_EQ(fstatat(dfd, "d", &st, 0), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(iou_mkdirat(dfd, "d", 0750), -EEXIST);
    CHECK_EQ(iou_mkdirat(dfd, "no/such", 0750), -ENOENT);
    CHECK_EQ(iou_mkdirat(dfd, "a/sub", 0750), -ENOTDIR);
    CHECK_EQ(iou_mkdirat(1 << 20, "x", 0750), -EBADF);
}

static void check_rename(int dfd)
{
    CHECK_EQ(iou_renameat(dfd, "a", dfd, "d/b", 0), 0);
    CHECK_EQ(faccessat(dfd, "a", F_OK, 0), -1);
    CHECK_EQ(faccessat(dfd, "d/b", F_OK, 0), 0);
    CHECK_EQ(iou_renameat(dfd, "a", dfd, "c", 0), -ENOENT);
    int fd = iou_openat(dfd, "c", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(iou_close(fd), 0);
    CHECK_EQ(iou_renameat(dfd, "c", dfd, "d/b", RENAME_NOREPLACE), -EEXIST);
    /* Exchange swaps them atomically: b (3 bytes) and c (empty). */
    CHECK_EQ(iou_renameat(dfd, "c", dfd, "d/b", RENAME_EXCHANGE), 0);
    struct stat st;
    CHECK_EQ(fstatat(dfd, "c", &st, 0), 0);
    CHECK_EQ(st.st_size, 3);
    CHECK_EQ(iou_renameat(AT_FDCWD, fs_path(0, "c"), dfd, "a", 0), 0); /* two dirfds */
    CHECK_EQ(iou_renameat(dfd, "a", dfd, "a/x", 0), -ENOTDIR);
}

static void check_unlink(int dfd)
{
    CHECK_EQ(iou_unlinkat(dfd, "d", 0), -EISDIR);
    CHECK_EQ(iou_unlinkat(dfd, "d", AT_REMOVEDIR), -ENOTEMPTY);
    CHECK_EQ(iou_unlinkat(dfd, "a", AT_REMOVEDIR), -ENOTDIR);
    CHECK_EQ(iou_unlinkat(dfd, "d/b", 0), 0);
    CHECK_EQ(iou_unlinkat(dfd, "d/b", 0), -ENOENT);
    CHECK_EQ(iou_unlinkat(dfd, "d", AT_REMOVEDIR), 0);
    CHECK_EQ(iou_unlink(fs_path(0, "a")), 0);
    CHECK_EQ(iou_unlink(fs_path(0, "a")), -ENOENT);
    CHECK_EQ(iou_unlinkat(1 << 20, "a", 0), -EBADF);
}

static int body(void *arg)
{
    (void)arg;
    int dfd = dirfd_open();
    check_openat(dfd);
    check_statx(dfd);
    check_mkdir(dfd);
    check_links(dfd);
    check_rename(dfd);
    check_unlink(dfd);
    CHECK_EQ(iou_close(dfd), 0);
    return 0;
}

/* Many tasks each create, stat, rename and remove their own file at once. */
static int churn(void *arg)
{
    int i = (int)(intptr_t)arg;
    char a[PATH_MAX + 16], b[PATH_MAX + 16];
    CHECK(snprintf(a, sizeof(a), "%s/f%d", fs_dir, i) > 0);
    CHECK(snprintf(b, sizeof(b), "%s/g%d", fs_dir, i) > 0);
    int fd = iou_open(a, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(iou_write_full(fd, &i, sizeof(i), 0), sizeof(i));
    CHECK_EQ(iou_close(fd), 0);
    CHECK_EQ(iou_renameat(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE), 0);
    struct statx st;
    CHECK_EQ(iou_statx(AT_FDCWD, b, 0, STATX_SIZE, &st), 0);
    CHECK_EQ(st.stx_size, sizeof(i));
    CHECK_EQ(iou_unlink(b), 0);
    return 0;
}

static int churn_main(void *arg)
{
    (void)arg;
    enum { N = 64 };
    iou_task *t[N];
    for (int i = 0; i < N; i++)
        t[i] = spawn_checked(churn, (void *)(intptr_t)i);
    for (int i = 0; i < N; i++)
        CHECK_EQ(iou_join(t[i]), 0);
    return 0;
}

int main(void)
{
    watchdog(60);
    fs_tempdir();
    fs_both_ways(body, NULL);
    CHECK_EQ(run_or_skip(churn_main, NULL), 0);
    CHECK_EQ(rmdir(fs_dir), 0); /* everything created was removed */
    return 0;
}
