/*
 * Whole-buffer file I/O: loop over short reads and writes until all of the
 * buffer is done, end of file is reached (reads) or an error stops the loop.
 * Short transfers are normal on pipes, sockets and terminals, after a signal,
 * at a partly cached range, or when a request exceeds the kernel's 2 GiB cap.
 */
#include <iou.h>

#include <errno.h>
#include <limits.h>

static int64_t advance(int64_t off, size_t n)
{
    return off < 0 ? off : off + (int64_t)n;
}

ssize_t iou_read_full_ex(int fd, void *buf, size_t len, int64_t off, size_t *done)
{
    char *p = buf;
    size_t got = 0;
    ssize_t err = len > SSIZE_MAX ? -EINVAL : 0;
    while (err == 0 && got < len) {
        ssize_t n = iou_read(fd, p + got, len - got, advance(off, got));
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            break; /* end of file: a short result, not an error */
        else if (n != -EINTR) /* a signal outside a task: just go on */
            err = n;
    }
    if (done)
        *done = got;
    return err ? err : (ssize_t)got;
}

ssize_t iou_write_full_ex(int fd, const void *buf, size_t len, int64_t off, size_t *done)
{
    const char *p = buf;
    size_t put = 0;
    ssize_t err = len > SSIZE_MAX ? -EINVAL : 0;
    while (err == 0 && put < len) {
        ssize_t n = iou_write(fd, p + put, len - put, advance(off, put));
        if (n > 0)
            put += (size_t)n;
        else if (n != -EINTR) /* 0 for a nonzero length would loop forever: report it */
            err = n < 0 ? n : -EIO;
    }
    if (done)
        *done = put;
    return err ? err : (ssize_t)len;
}

ssize_t iou_read_full(int fd, void *buf, size_t len, int64_t off)
{
    return iou_read_full_ex(fd, buf, len, off, NULL);
}

ssize_t iou_write_full(int fd, const void *buf, size_t len, int64_t off)
{
    return iou_write_full_ex(fd, buf, len, off, NULL);
}
