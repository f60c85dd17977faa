/*
 * Whole-buffer sends: loop over short sends until every byte is out or an
 * error stops the loop. A short send is normal for stream sockets (the send
 * buffer filled up, a signal, a cancellation between two sends), so callers
 * that want "all of it" should not have to write this loop themselves.
 * -EINTR (a signal, before anything was sent) is retried; every other error
 * is the caller's.
 */
#include <iou.h>

#include <errno.h>
#include <limits.h>

ssize_t iou_send_all_ex(int fd, const void *buf, size_t len, int flags, size_t *sent)
{
    const char *p = buf;
    size_t done = 0;
    ssize_t err = len > SSIZE_MAX ? -EINVAL : 0;
    while (err == 0 && done < len) {
        ssize_t n = iou_send(fd, p + done, len - done, flags);
        if (n > 0)
            done += (size_t)n;
        else if (n == -EINTR)
            continue; /* interrupted before sending anything: nothing happened */
        else /* 0 for a nonzero length would loop forever: report it */
            err = n < 0 ? n : -EIO;
    }
    if (sent)
        *sent = done;
    return err ? err : (ssize_t)len;
}

ssize_t iou_send_all(int fd, const void *buf, size_t len)
{
    return iou_send_all_ex(fd, buf, len, 0, NULL);
}
