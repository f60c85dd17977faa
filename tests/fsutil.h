/*
 * Helpers for the file-system tests: a private temp directory (removed with
 * everything in it at exit, also when a CHECK fails), paths inside it, a
 * file filled with a byte pattern, and a check that both ways of calling an
 * operation (inside a task: the ring; outside: the system call) agree.
 */
#ifndef IOU_TEST_FSUTIL_H
#define IOU_TEST_FSUTIL_H

#include "testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

static char fs_dir[PATH_MAX];

static inline int fs_remove_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
    (void)st, (void)type, (void)f;
    remove(p);
    return 0;
}

static inline void fs_remove_dir(void)
{
    if (fs_dir[0])
        nftw(fs_dir, fs_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates the temp directory under base (NULL: /tmp). Returns its path. */
static inline const char *fs_tempdir_in(const char *base)
{
    int n = snprintf(fs_dir, sizeof(fs_dir), "%s/iou_fs_test_XXXXXX", base ? base : "/tmp");
    CHECK(n > 0 && (size_t)n < sizeof(fs_dir));
    CHECK(mkdtemp(fs_dir) != NULL);
    atexit(fs_remove_dir);
    return fs_dir;
}

static inline const char *fs_tempdir(void)
{
    return fs_tempdir_in(NULL);
}

/* name inside the temp directory (a static buffer per slot 0..3). */
static inline const char *fs_path(int slot, const char *name)
{
    static char paths[4][PATH_MAX];
    int n = snprintf(paths[slot], PATH_MAX, "%s/%s", fs_dir, name);
    CHECK(n > 0 && n < PATH_MAX);
    return paths[slot];
}

/* Creates (or truncates) name with len bytes of pattern seed. */
static inline void fs_make_file(const char *name, size_t len, uint32_t seed)
{
    int fd = open(fs_path(3, name), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    char buf[65536];
    for (size_t done = 0; done < len;) {
        size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
        pattern_fill(buf, n, seed, done);
        CHECK_EQ(pwrite(fd, buf, n, (off_t)done), (long long)n);
        done += n;
    }
    CHECK_EQ(fdatasync(fd), 0); /* clean pages: POSIX_FADV_DONTNEED can drop them */
    close(fd);
}

static inline off_t fs_size(int fd)
{
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    return st.st_size;
}

/* Runs body(arg) twice: once inside a task (every call is a ring operation)
 * and once on the plain thread (every call is the system call). */
static inline void fs_both_ways(int (*body)(void *), void *arg)
{
    CHECK_EQ(run_or_skip(body, arg), 0);
    CHECK_EQ(body(arg), 0);
}

#endif
