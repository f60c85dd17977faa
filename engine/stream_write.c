/*
 * Stream writes: every byte goes out, in order, looping over short sends.
 * Nothing is buffered in user space: when a call returns, the kernel has the
 * bytes. A call stopped by an error or an interruption returns that error,
 * whatever part went out before (as iou_send_all): a `< 0` check never
 * mistakes a partial write for a whole one. -EINTR (nothing was sent) is
 * retried.
 */
#include "stream.h"
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>

enum { IOV_WINDOW = 64 }; /* iovecs handed to one sendmsg */

static int begin_write(iou_stream *s)
{
    if (s->writing)
        return -EBUSY;
    s->writing = true;
    return 0;
}

/* The result of a write that sent `sent` bytes and then got `last` (0, or
 * the error that stopped it). */
static ssize_t end_write(iou_stream *s, size_t sent, ssize_t last)
{
    s->writing = false;
    return last < 0 ? last : (ssize_t)sent;
}

static ssize_t write_all(iou_stream *s, const unsigned char *buf, size_t len)
{
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = iou_send(s->fd, buf + sent, len - sent, 0);
        if (n == -EINTR)
            continue;
        if (n <= 0)
            return end_write(s, sent, n < 0 ? n : -EIO);
        sent += (size_t)n;
    }
    return end_write(s, sent, 0);
}

ssize_t iou_stream_write(iou_stream *s, const void *buf, size_t len)
{
    if (len > SSIZE_MAX)
        return -EINVAL;
    int err = begin_write(s);
    if (err)
        return err;
    return write_all(s, buf, len);
}

/* ---- writev ---------------------------------------------------------------------- */

/* sendmsg: a task's operation, or the system call outside tasks. */
static ssize_t send_msg(int fd, struct msghdr *m)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        ssize_t n = sendmsg(fd, m, MSG_NOSIGNAL);
        return n < 0 ? -errno : n;
    }
    iou__op op;
    iou__op_prep(&op, IOU__OP_SENDMSG, fd, m, 0, 0);
    op.flags = MSG_NOSIGNAL;
    return iou__op_await(t, &op);
}

/* Where a writev stands: iovec i, of which off bytes are sent. */
typedef struct iov_pos {
    const struct iovec *iov;
    int cnt, i;
    size_t off;
} iov_pos;

/* Copies the next window of unsent iovecs into w; returns how many. */
static int window(const iov_pos *p, struct iovec *w)
{
    int n = 0;
    for (int i = p->i; i < p->cnt && n < IOV_WINDOW; i++, n++)
        w[n] = p->iov[i];
    w[0].iov_base = (char *)w[0].iov_base + p->off;
    w[0].iov_len -= p->off;
    return n;
}

static void advance(iov_pos *p, size_t n)
{
    while (n) {
        size_t left = p->iov[p->i].iov_len - p->off;
        size_t k = n < left ? n : left;
        p->off += k;
        n -= k;
        if (p->off == p->iov[p->i].iov_len) {
            p->i++;
            p->off = 0;
        }
    }
}

/* Steps over empty iovecs, so that a window never starts with nothing. */
static void skip_empty(iov_pos *p)
{
    while (p->i < p->cnt && p->iov[p->i].iov_len == p->off) {
        p->i++;
        p->off = 0;
    }
}

static ssize_t writev_all(iou_stream *s, iov_pos *p)
{
    size_t sent = 0;
    struct iovec w[IOV_WINDOW];
    for (skip_empty(p); p->i < p->cnt; skip_empty(p)) {
        struct msghdr m = {.msg_iov = w, .msg_iovlen = (size_t)window(p, w)};
        ssize_t n = send_msg(s->fd, &m);
        if (n == -EINTR)
            continue;
        if (n <= 0)
            return end_write(s, sent, n < 0 ? n : -EIO);
        advance(p, (size_t)n);
        sent += (size_t)n;
    }
    return end_write(s, sent, 0);
}

static bool total_fits(const struct iovec *iov, int cnt)
{
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > SSIZE_MAX - total)
            return false;
        total += iov[i].iov_len;
    }
    return true;
}

ssize_t iou_stream_writev(iou_stream *s, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || (iovcnt > 0 && iov == NULL) || !total_fits(iov, iovcnt))
        return -EINVAL;
    int err = begin_write(s);
    if (err)
        return err;
    iov_pos p = {.iov = iov, .cnt = iovcnt};
    return writev_all(s, &p);
}
