/*
 * Buffered streams: open, the reads, close.
 *
 * Every read is all-or-nothing with respect to the stream: bytes are copied
 * to the caller as they arrive (so ring buffers go back at once and a slow
 * line holds none), and a read that then fails (end of stream too early, a
 * line too long, a deadline, a cancellation) puts what it took back in front
 * (iou__stream_unread). The caller's buffer may have been written; the
 * stream has lost nothing.
 */
#include "stream.h"
#include "queue.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

iou_stream *iou_stream_open(int fd)
{
    if (fd < 0)
        return NULL;
    iou_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fd = fd;
    s->link.op = &s->rx;
    iou__stream_queue_init(s);
    return s;
}

int iou_stream_fd(const iou_stream *s)
{
    return s->fd;
}

size_t iou_stream_buffered(const iou_stream *s)
{
    return iou__stream_buffered(s);
}

/* ---- one reader at a time ------------------------------------------------------- */

static int begin_read(iou_stream *s)
{
    if (s->reading)
        return -EBUSY;
    s->reading = true;
    return 0;
}

static ssize_t end_read(iou_stream *s, ssize_t ret)
{
    s->reading = false;
    return ret;
}

/* Puts the got bytes a failed read took back and returns its error. Without
 * memory to keep them the stream has lost bytes: it fails for good, loudly. */
static ssize_t give_back(iou_stream *s, const void *buf, size_t got, ssize_t err)
{
    if (iou__stream_unread(s, buf, got) < 0)
        return s->err = -ENOMEM;
    return err;
}

/* What a read that found the stream ended after got bytes returns. */
static ssize_t ended_after(size_t got)
{
    return got ? -EPIPE : 0;
}

/* ---- read some ------------------------------------------------------------------- */

static size_t copy_out(iou_stream *s, unsigned char *buf, size_t len)
{
    size_t got = 0;
    const unsigned char *p;
    size_t n;
    while (got < len && (n = iou__stream_front(s, &p)) > 0) {
        if (n > len - got)
            n = len - got;
        memcpy(buf + got, p, n);
        iou__stream_consume(s, n);
        got += n;
    }
    return got;
}

static ssize_t read_some(iou_stream *s, unsigned char *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (iou__stream_buffered(s) == 0) {
        size_t direct;
        int r = iou__stream_fill(s, buf, len, &direct);
        if (r <= 0)
            return r;
        if (direct)
            return (ssize_t)direct;
    }
    return (ssize_t)copy_out(s, buf, len);
}

ssize_t iou_stream_read(iou_stream *s, void *buf, size_t len)
{
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    int err = begin_read(s);
    if (err)
        return err;
    return end_read(s, read_some(s, buf, len));
}

/* ---- read exactly n --------------------------------------------------------------- */

static ssize_t read_exact(iou_stream *s, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read_some(s, buf + got, n - got);
        if (r <= 0)
            return give_back(s, buf, got, r == 0 ? ended_after(got) : r);
        got += (size_t)r;
    }
    return (ssize_t)n;
}

ssize_t iou_stream_read_exact(iou_stream *s, void *buf, size_t n)
{
    if (n > SSIZE_MAX)
        return -EINVAL;
    int err = begin_read(s);
    if (err)
        return err;
    return end_read(s, read_exact(s, buf, n));
}

/* ---- read until a delimiter ----------------------------------------------------- */

typedef struct line {
    unsigned char *buf; /* the line so far: got bytes */
    size_t got, max;
    const unsigned char *delim;
    size_t dlen;
} line;

/*
 * Where the delimiter first ends in the n bytes at p that would follow the
 * line's got bytes: the count of p's bytes up to and including it, or 0. A
 * delimiter may start in the line and end in p: those end earliest.
 */
static size_t find_end(const line *ln, const unsigned char *p, size_t n)
{
    size_t d = ln->dlen;
    for (size_t i = d - 1; i >= 1; i--) { /* i delimiter bytes already in the line */
        if (i > ln->got || d - i > n)
            continue;
        if (memcmp(ln->buf + ln->got - i, ln->delim, i) == 0 &&
            memcmp(p, ln->delim + i, d - i) == 0)
            return d - i;
    }
    const unsigned char *hit = d == 1 ? memchr(p, ln->delim[0], n) : memmem(p, n, ln->delim, d);
    return hit ? (size_t)(hit - p) + d : 0;
}

/* Bytes a fill put straight into the line: keep the line, put the rest back. */
static ssize_t take_direct(iou_stream *s, line *ln, size_t n)
{
    unsigned char *p = ln->buf + ln->got;
    size_t end = find_end(ln, p, n);
    if (end == 0) {
        ln->got += n;
        return 0;
    }
    if (iou__stream_unread(s, p + end, n - end) < 0)
        s->err = -ENOMEM; /* the bytes after the line are lost: fail the stream */
    ln->got += end;
    return (ssize_t)ln->got;
}

/* Copies buffered bytes into the line up to the delimiter. Returns the line's
 * length once complete, else 0. */
static ssize_t take_buffered(iou_stream *s, line *ln, const unsigned char *p, size_t n)
{
    if (n > ln->max - ln->got)
        n = ln->max - ln->got;
    size_t end = find_end(ln, p, n);
    size_t use = end ? end : n;
    memcpy(ln->buf + ln->got, p, use);
    iou__stream_consume(s, use);
    ln->got += use;
    return end ? (ssize_t)ln->got : 0;
}

static ssize_t read_line(iou_stream *s, line *ln)
{
    for (;;) {
        const unsigned char *p;
        size_t n = iou__stream_front(s, &p);
        ssize_t done;
        if (n) {
            done = take_buffered(s, ln, p, n);
        } else {
            size_t direct;
            int r = iou__stream_fill(s, ln->buf + ln->got, ln->max - ln->got, &direct);
            if (r <= 0)
                return give_back(s, ln->buf, ln->got, r == 0 ? ended_after(ln->got) : r);
            done = direct ? take_direct(s, ln, direct) : 0;
        }
        if (done)
            return done;
        if (ln->got == ln->max)
            return give_back(s, ln->buf, ln->got, -EMSGSIZE);
    }
}

ssize_t iou_stream_read_until(iou_stream *s, void *buf, size_t max, const void *delim,
                              size_t dlen)
{
    if (max == 0 || dlen == 0 || delim == NULL)
        return -EINVAL;
    if (max > SSIZE_MAX)
        max = SSIZE_MAX;
    int err = begin_read(s);
    if (err)
        return err;
    line ln = {.buf = buf, .max = max, .delim = delim, .dlen = dlen};
    return end_read(s, read_line(s, &ln));
}

/* ---- zero copy ------------------------------------------------------------------------ */

ssize_t iou_stream_peek(iou_stream *s, const void **data)
{
    int err = begin_read(s);
    if (err)
        return err;
    const unsigned char *p = NULL;
    size_t n = iou__stream_front(s, &p);
    if (n == 0) {
        size_t direct;
        int r = iou__stream_fill(s, NULL, 0, &direct);
        if (r <= 0)
            return end_read(s, r);
        n = iou__stream_front(s, &p);
    }
    *data = p;
    return end_read(s, (ssize_t)n);
}

int iou_stream_consume(iou_stream *s, size_t n)
{
    if (s->reading)
        return -EBUSY;
    if (n > iou__stream_buffered(s))
        return -EINVAL;
    iou__stream_consume(s, n);
    return 0;
}

/* ---- close ------------------------------------------------------------------------- */

int iou_stream_free(iou_stream *s)
{
    if (s == NULL)
        return 0;
    if (s->reading || s->writing)
        return -EBUSY;
    iou__stream_dispose(s); /* s may be gone now */
    return 0;
}

int iou_stream_close(iou_stream *s)
{
    if (s == NULL)
        return 0;
    int fd = s->fd;
    int err = iou_stream_free(s);
    return err ? err : iou_close(fd);
}
