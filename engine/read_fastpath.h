/*
 * The cached-read fast path: a read of a buffered regular file first tries
 * preadv2(RWF_NOWAIT), which copies from the page cache and never waits for
 * the disk; only when the data is not cached (-EAGAIN) does the read go to
 * the ring. A page-cache hit then costs one system call instead of an SQE,
 * an enter and a task switch.
 */
#ifndef IOU_READ_FASTPATH_H
#define IOU_READ_FASTPATH_H

#include <stdint.h>
#include <sys/types.h>

struct iovec;
typedef struct iou_loop iou_loop;

/* Tries to read into iov at off (< 0: the file position) without waiting.
 * Returns the bytes read (maybe short: a partly cached range, or the end of
 * the file), or -EAGAIN when the ring must do it: the fast path is off, fd
 * is not a buffered regular file, or the data is not cached. Never another
 * error: those are left for the ring's read to report. */
ssize_t iou__read_fastpath(iou_loop *l, int fd, const struct iovec *iov, int iovcnt,
                           int64_t off);

/* fd now names another file (opened or closed through iou): forget what the
 * loop of this thread knew about it. */
void iou__read_fastpath_forget(int fd);

#endif
