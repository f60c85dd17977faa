/*
 * Writeback and caching hints: fdatasync, sync_file_range, fadvise. Each is
 * one operation awaited by the running task, or outside any task the system
 * call (iou__file_op).
 */
#include "op.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>

int iou_fdatasync(int fd)
{
    iou__op op = {.kind = IOU__OP_FDATASYNC, .fd = fd};
    return (int)iou__file_op(&op);
}

/* The SQE's length field is 32 bits wide. */
static bool fits_sqe_len(int64_t len)
{
    return len >= 0 && (uint64_t)len <= UINT32_MAX;
}

int iou_sync_file_range(int fd, int64_t off, int64_t len, unsigned flags)
{
    if (off < 0 || len < 0)
        return -EINVAL;
    /* A longer range becomes "to the end of the file" (0): a superset, so
     * everything asked for is still written. */
    iou__op op = {.kind = IOU__OP_SYNC_RANGE, .fd = fd, .off = (uint64_t)off,
                  .len = fits_sqe_len(len) ? (size_t)len : 0, .flags = flags};
    return (int)iou__file_op(&op);
}

int iou_fadvise(int fd, int64_t off, int64_t len, int advice)
{
    if (off < 0 || len < 0)
        return -EINVAL;
    iou__op op = {.kind = IOU__OP_FADVISE, .fd = fd, .off = (uint64_t)off, .len = (size_t)len,
                  .flags = (unsigned)advice};
    /* Advice on a wider range than asked could drop (or read) too much: a
     * range too long for the SQE takes the system call, which never waits
     * for I/O anyway. */
    if (!fits_sqe_len(len))
        return (int)iou__file_op_blocking(&op);
    return (int)iou__file_op(&op);
}
