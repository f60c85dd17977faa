/*
 * iou__file_op_blocking, the system call behind each file operation kind
 * (what a backend without io_uring runs on its workers): every kind on a
 * real file, pipe or directory, compared with what the system call itself
 * does; kinds that need io_uring or are no file operation give -ENOTSUP.
 */
#include "check.h"
#include "fsutil.h"
#include "op.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static long run(iou__op op)
{
    return iou__file_op_blocking(&op);
}

static void every_kind(void)
{
    int dfd = open(fs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dfd >= 0);
    long fd = run((iou__op){.kind = IOU__OP_OPENAT, .fd = dfd, .buf = "f",
                            .flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, .len = 0600});
    CHECK(fd >= 0);
    struct statx st;
    CHECK_EQ(run((iou__op){.kind = IOU__OP_STATX, .fd = dfd, .buf = "f", .len = STATX_MODE,
                           .aux = &st}), 0);
    CHECK_EQ(st.stx_mode & 0777, 0600);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_MKDIRAT, .fd = dfd, .buf = "d", .len = 0700}), 0);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_RENAMEAT, .fd = dfd, .buf = "f",
                           .off = (uint32_t)AT_FDCWD, .aux = (void *)fs_path(0, "d/g")}), 0);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_UNLINKAT, .fd = dfd, .buf = "d",
                           .flags = AT_REMOVEDIR}), -ENOTEMPTY);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_OPENAT, .fd = dfd, .buf = "f", .flags = O_RDONLY}),
             -ENOENT);
    int f = (int)fd;
    char b[16] = "0123456789abcdef";
    struct iovec iov[2] = {{b, 8}, {b + 8, 8}};
    CHECK_EQ(run((iou__op){.kind = IOU__OP_WRITE, .fd = f, .buf = b, .len = 16, .off = 0}), 16);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_WRITEV, .fd = f, .buf = iov, .len = 2, .off = 16}), 16);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_READ, .fd = f, .buf = b, .len = 16,
                           .off = IOU__OFF_CURRENT}), 16); /* the position: 0 */
    CHECK_EQ(run((iou__op){.kind = IOU__OP_READV, .fd = f, .buf = iov, .len = 2, .off = 30}), 2);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_FSYNC, .fd = f}), 0);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_FSYNC, .fd = f, .flags = 1}), 0); /* datasync */
    CHECK_EQ(run((iou__op){.kind = IOU__OP_FDATASYNC, .fd = f}), 0);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_FALLOCATE, .fd = f, .off = 0, .len = 100}), 0);
    CHECK_EQ(fs_size(f), 100);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_FTRUNCATE, .fd = f, .off = 10}), 0);
    CHECK_EQ(fs_size(f), 10);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_SYNC_RANGE, .fd = f, .flags = SYNC_FILE_RANGE_WRITE}), 0);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_FADVISE, .fd = f, .flags = POSIX_FADV_DONTNEED}), 0);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_FADVISE, .fd = f, .flags = 999}), -EINVAL);
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    int q[2];
    CHECK_EQ(pipe2(q, O_CLOEXEC), 0);
    iou__splice_out to_pipe = {.fd = p[1], .off = IOU__OFF_CURRENT};
    CHECK_EQ(run((iou__op){.kind = IOU__OP_SPLICE, .fd = f, .off = 2, .aux = &to_pipe, .len = 8}), 8);
    iou__splice_out to_q = {.fd = q[1], .off = IOU__OFF_CURRENT};
    CHECK_EQ(run((iou__op){.kind = IOU__OP_TEE, .fd = p[0], .aux = &to_q, .len = 8}), 8);
    CHECK_EQ(read(q[0], b, 16), 8);
    CHECK(memcmp(b, "23456789", 8) == 0);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_CLOSE, .fd = f}), 0);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_CLOSE, .fd = f}), -EBADF);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_READ, .fd = IOU__FIXED_FD | 3, .buf = b, .len = 1}),
             -EBADF); /* a registered-file handle means nothing to the system call */
    CHECK_EQ(run((iou__op){.kind = IOU__OP_READ_FIXED, .fd = 0}), -ENOTSUP);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_WRITE_FIXED, .fd = 0}), -ENOTSUP);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_NOP}), -ENOTSUP);
    CHECK_EQ(run((iou__op){.kind = IOU__OP_RECV, .fd = p[0]}), -ENOTSUP);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    close(dfd);
}

int main(void)
{
    watchdog(30);
    fs_tempdir();
    every_kind();
    return 0;
}
