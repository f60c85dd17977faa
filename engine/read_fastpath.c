/*
 * The cached-read fast path (see read_fastpath.h).
 *
 * Which fds qualify is learnt once per fd and kept in a per-loop table
 * indexed by fd: a regular file opened without O_DIRECT. Anything else
 * (sockets, pipes: RWF_NOWAIT there is a different thing; O_DIRECT files: a
 * "non-blocking" direct read still waits for the device) always goes to the
 * ring. iou_open / iou_openat / iou_close reset an fd's entry; an fd reused
 * behind iou's back keeps the old answer, which costs at most a failed try
 * (or, for a file reopened with O_DIRECT by plain open(), a read that waits
 * in the system call).
 *
 * A try that misses (data not cached) costs a system call on top of the
 * ring's read, so consecutive misses on an fd back off: after the n-th miss
 * in a row the next 2^n - 1 reads (at most 63) skip the try. A hit resets it.
 */
#include "read_fastpath.h"
#include "loop.h"
#include "op.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

enum {
    KIND_UNKNOWN = 0, /* not looked at yet (a zeroed table means unknown) */
    KIND_CACHED,      /* buffered regular file: try the page cache first */
    KIND_RING,        /* anything else: straight to the ring */
    MAX_BACKOFF = 6,  /* skip at most 2^6 - 1 = 63 reads after misses */
    MAX_FD = 1 << 20, /* the kernel's own ceiling (fs.nr_open default) */
};

typedef struct fd_kind {
    uint8_t kind;
    uint8_t backoff; /* misses in a row, capped at MAX_BACKOFF */
    uint8_t skip;    /* reads left to send straight to the ring */
} fd_kind;

struct iou__fd_kinds {
    size_t len;
    fd_kind fds[];
};

void iou__read_fastpath_init(iou_loop *l, bool enabled)
{
    const char *env = getenv("IOU_NOWAIT_READ");
    if (env && strcmp(env, "0") == 0)
        enabled = false;
    l->read_fastpath = enabled;
    l->fd_kinds = NULL;
}

void iou__read_fastpath_fini(iou_loop *l)
{
    free(l->fd_kinds);
    l->fd_kinds = NULL;
}

/* fd's entry, growing the table to hold it; NULL when out of memory. */
static fd_kind *entry(iou_loop *l, int fd)
{
    struct iou__fd_kinds *t = l->fd_kinds;
    if (t && (size_t)fd < t->len)
        return &t->fds[fd];
    size_t len = t ? t->len : 64;
    while (len <= (size_t)fd)
        len *= 2;
    struct iou__fd_kinds *n = realloc(t, sizeof(*n) + len * sizeof(fd_kind));
    if (n == NULL)
        return NULL;
    size_t old = t ? n->len : 0;
    memset(&n->fds[old], 0, (len - old) * sizeof(fd_kind));
    n->len = len;
    l->fd_kinds = n;
    return &n->fds[fd];
}

static uint8_t classify(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return KIND_RING;
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && !(fl & O_DIRECT) ? KIND_CACHED : KIND_RING;
}

static void missed(fd_kind *k)
{
    if (k->backoff < MAX_BACKOFF)
        k->backoff++;
    k->skip = (uint8_t)((1u << k->backoff) - 1);
}

ssize_t iou__read_fastpath(iou_loop *l, int fd, const struct iovec *iov, int iovcnt,
                           int64_t off)
{
    if (!l->read_fastpath || fd < 0 || fd >= MAX_FD)
        return -EAGAIN; /* includes registered-file handles (>= 1 << 30) */
    fd_kind *k = entry(l, fd);
    if (k == NULL)
        return -EAGAIN;
    if (k->kind == KIND_UNKNOWN)
        k->kind = classify(fd);
    if (k->kind != KIND_CACHED)
        return -EAGAIN;
    if (k->skip) {
        k->skip--;
        return -EAGAIN;
    }
    ssize_t n = preadv2(fd, iov, iovcnt, off < 0 ? -1 : off, RWF_NOWAIT);
    if (n >= 0) {
        k->backoff = 0;
        return n;
    }
    if (errno == EAGAIN)
        missed(k);
    else if (errno == EOPNOTSUPP || errno == ESPIPE || errno == EBADF)
        k->kind = KIND_RING; /* no RWF_NOWAIT here, or not what we thought */
    return -EAGAIN;
}

void iou__read_fastpath_forget(int fd)
{
    iou_loop *l = iou__loop();
    struct iou__fd_kinds *t = l ? l->fd_kinds : NULL;
    if (t && fd >= 0 && (size_t)fd < t->len)
        memset(&t->fds[fd], 0, sizeof(fd_kind));
}
