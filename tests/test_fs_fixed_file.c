/*
 * Registered files: a handle works as the fd of file operations (read,
 * write, vectors, fixed buffers, sync, size, fadvise, splice both ways) and
 * socket operations (send, recv), also after the original fd was closed;
 * unregistering ends it (-EBADF), twice is -EBADF; the table's bound gives
 * -ENFILE; without a loop -ENOTSUP; a handle is no dirfd.
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
    SEED = 13,
};

/* Registers a fresh file and closes its fd: only the handle remains. */
static int registered_file(const char *name)
{
    int fd = iou_open(fs_path(0, name), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    int h = iou_file_register(fd);
    CHECK(h >= 0 && (h & IOU_FIXED_FD));
    CHECK_EQ(iou_close(fd), 0);
    return h;
}

static void file_ops(int h)
{
    unsigned char b[10000];
    pattern_fill(b, sizeof(b), SEED, 0);
    CHECK_EQ(iou_write_full(h, b, sizeof(b), 0), sizeof(b));
    memset(b, 0, sizeof(b));
    CHECK_EQ(iou_read_full(h, b, sizeof(b), 0), sizeof(b));
    CHECK_EQ(pattern_mismatch(b, sizeof(b), SEED, 0), sizeof(b));
    struct iovec iov[2] = {{b, 3000}, {b + 3000, 7000}};
    memset(b, 0, sizeof(b));
    CHECK_EQ(iou_readv(h, iov, 2, 0), sizeof(b));
    CHECK_EQ(pattern_mismatch(b, sizeof(b), SEED, 0), sizeof(b));
    CHECK_EQ(iou_writev(h, iov, 2, 10000), sizeof(b));
    CHECK_EQ(iou_fsync(h), 0);
    CHECK_EQ(iou_fdatasync(h), 0);
    CHECK_EQ(iou_sync_file_range(h, 0, 0, SYNC_FILE_RANGE_WRITE), 0);
    CHECK_EQ(iou_fadvise(h, 0, 0, POSIX_FADV_WILLNEED), 0);
    CHECK_EQ(iou_fallocate(h, 0, 0, 65536), 0);
    CHECK_EQ(iou_ftruncate(h, 20000), 0);
    struct statx st;
    CHECK_EQ(iou_statx(AT_FDCWD, fs_path(0, "a"), 0, STATX_SIZE, &st), 0);
    CHECK_EQ(st.stx_size, 20000);
    iou_fixed_buf fb;
    CHECK_EQ(iou_fixed_buf_alloc(8192, &fb), 0);
    CHECK_EQ(iou_read_fixed(h, &fb, 0, 8192, 0), 8192);
    CHECK_EQ(pattern_mismatch(fb.data, 8192, SEED, 0), 8192);
    CHECK_EQ(iou_write_fixed(h, &fb, 0, 8192, 20000), 8192);
    iou_fixed_buf_free(&fb);
    CHECK_EQ(iou_statx(h, "", AT_EMPTY_PATH, STATX_SIZE, &st), -EBADF); /* not a dirfd */
    CHECK_EQ(iou_close(h), -EBADF); /* handles go through iou_file_unregister */
}

/* splice with registered files on both sides, through a registered pipe. */
static void splice_ops(int src)
{
    int p[2], q[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(pipe2(q, O_CLOEXEC), 0);
    int pin = iou_file_register(p[0]), pout = iou_file_register(p[1]);
    int qout = iou_file_register(q[1]);
    CHECK(pin >= 0 && pout >= 0 && qout >= 0);
    int dst = registered_file("b");
    CHECK_EQ(iou_splice(src, 0, pout, -1, 5000, 0), 5000);
    CHECK_EQ(iou_tee(pin, qout, 5000, 0), 5000);
    CHECK_EQ(iou_splice(pin, -1, dst, 0, 5000, 0), 5000);
    CHECK_EQ(iou_splice(q[0], -1, dst, 5000, 5000, 0), 5000); /* the tee'd copy */
    unsigned char b[10000];
    CHECK_EQ(iou_read_full(dst, b, sizeof(b), 0), sizeof(b));
    CHECK_EQ(pattern_mismatch(b, 5000, SEED, 0), 5000);
    CHECK_EQ(pattern_mismatch(b + 5000, 5000, SEED, 0), 5000);
    CHECK_EQ(iou_file_unregister(pin), 0);
    CHECK_EQ(iou_file_unregister(pout), 0);
    CHECK_EQ(iou_file_unregister(qout), 0);
    CHECK_EQ(iou_file_unregister(dst), 0);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

static void socket_ops(void)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int h = iou_file_register(sv[0]);
    CHECK(h >= 0);
    CHECK_EQ(close(sv[0]), 0);
    CHECK_EQ(iou_send(h, "ping", 4, 0), 4);
    char b[8];
    CHECK_EQ(iou_recv(sv[1], b, sizeof(b), 0), 4);
    CHECK_EQ(iou_send(sv[1], "pong", 4, 0), 4);
    CHECK_EQ(iou_recv(h, b, sizeof(b), 0), 4);
    CHECK(memcmp(b, "pong", 4) == 0);
    CHECK_EQ(iou_file_unregister(h), 0);
    /* The table held the last reference: the peer now sees end of stream. */
    CHECK_EQ(iou_recv(sv[1], b, sizeof(b), 0), 0);
    close(sv[1]);
}

static void unregister_errors(int h)
{
    CHECK_EQ(iou_file_unregister(h), 0);
    char b[4];
    CHECK_EQ(iou_read(h, b, sizeof(b), 0), -EBADF); /* the slot is empty now */
    CHECK_EQ(iou_file_unregister(h), -EBADF);
    CHECK_EQ(iou_file_unregister(5), -EBADF);       /* not a handle */
    CHECK_EQ(iou_file_unregister(-1), -EBADF);
    CHECK_EQ(iou_file_unregister(IOU_FIXED_FD | 100000), -EBADF);
    CHECK_EQ(iou_file_register(-1), -EBADF);
    CHECK_EQ(iou_file_register(1 << 20), -EBADF);
}

static int main_task(void *arg)
{
    (void)arg;
    int h = registered_file("a");
    file_ops(h);
    splice_ops(h);
    socket_ops();
    unregister_errors(h);
    return 0;
}

/* With RLIMIT_NOFILE at 64 the table has 64 slots: the 65th is -ENFILE,
 * and a slot freed is usable again. */
static int full_table(void *arg)
{
    (void)arg;
    int fd = iou_open(fs_path(0, "a"), O_RDONLY | O_CLOEXEC, 0);
    CHECK(fd >= 0);
    int h[64];
    for (int i = 0; i < 64; i++) {
        h[i] = iou_file_register(fd);
        CHECK(h[i] >= 0);
    }
    CHECK_EQ(iou_file_register(fd), -ENFILE);
    CHECK_EQ(iou_file_unregister(h[10]), 0);
    int again = iou_file_register(fd);
    CHECK_EQ(again, h[10]);
    char b[4];
    CHECK_EQ(iou_read(again, b, 4, 0), 4);
    CHECK_EQ(iou_close(fd), 0);
    return 0; /* the rest go with the loop */
}

int main(void)
{
    watchdog(60);
    fs_tempdir();
    CHECK_EQ(iou_file_register(0), -ENOTSUP);
    CHECK_EQ(iou_file_unregister(IOU_FIXED_FD), -ENOTSUP);
    int before = count_fds();
    CHECK_EQ(run_or_skip(main_task, NULL), 0);
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = 64;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    CHECK_EQ(run_or_skip(full_table, NULL), 0);
    CHECK_EQ(count_fds(), before); /* nothing left open */
    return 0;
}
