/*
 * Registered ("fixed") buffers.
 *
 * Each loop keeps one kernel buffer table, registered sparse on first use
 * and filled slot by slot (IORING_REGISTER_BUFFERS_UPDATE): allocating a
 * buffer pins only its own pages. When every slot is taken the table is
 * registered again twice as large (up to the kernel's 16384), which needs
 * no fixed operation in flight: re-registering under a running operation
 * would make older kernels wait for it.
 *
 * Lifetime: a buffer counts its operations in flight. Freeing it while some
 * run only marks it; the last one to complete releases it. So the memory
 * can never go back to the system while the kernel may write into it, and
 * what a loop still holds when it ends is released with it.
 */
#include "backend.h"
#include "loop.h"
#include "op.h"
#include "task.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
    FIRST_CAP = 64,
    MAX_CAP = 16384,              /* the kernel's IORING_MAX_REG_BUFFERS */
    MAX_LEN = 1024 * 1024 * 1024, /* the kernel's largest registered buffer */
};

typedef struct slot {
    void *data; /* NULL: the slot is free */
    size_t len;
    unsigned users; /* fixed operations in flight on it */
    bool freeing;   /* freed by the user: release when users drops to 0 */
} slot;

struct iou__fixed_bufs {
    unsigned cap;      /* slots in the kernel's table (0: none registered yet) */
    unsigned used;     /* slots holding a buffer */
    unsigned inflight; /* fixed operations in flight, all slots */
    slot *slots;
};

static struct iou__fixed_bufs *table_of(iou_loop *l)
{
    if (l->fixed_bufs == NULL)
        l->fixed_bufs = calloc(1, sizeof(struct iou__fixed_bufs));
    return l->fixed_bufs;
}

/* Registers the whole table at cap slots (the live buffers and empty ones)
 * in one call: either it all takes effect or nothing changes. */
static int register_table(struct io_uring *ring, struct iou__fixed_bufs *t, unsigned cap)
{
    struct iovec *iov = calloc(cap, sizeof(*iov));
    if (iov == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < t->cap; i++)
        if (t->slots[i].data)
            iov[i] = (struct iovec){t->slots[i].data, t->slots[i].len};
    int ret = io_uring_register_buffers_tags(ring, iov, NULL, cap);
    free(iov);
    return ret;
}

static int grow(struct io_uring *ring, struct iou__fixed_bufs *t)
{
    if (t->cap >= MAX_CAP)
        return -ENOBUFS;
    if (t->inflight)
        return -EBUSY;
    unsigned cap = t->cap ? t->cap * 2 : FIRST_CAP;
    slot *s = realloc(t->slots, cap * sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    memset(&s[t->cap], 0, (cap - t->cap) * sizeof(*s));
    t->slots = s;
    if (t->cap)
        io_uring_unregister_buffers(ring);
    int ret = register_table(ring, t, cap);
    if (ret < 0) {
        if (t->cap) /* put the old table back: same pages, same size */
            register_table(ring, t, t->cap);
        return ret;
    }
    t->cap = cap;
    return 0;
}

static int free_slot(struct io_uring *ring, struct iou__fixed_bufs *t)
{
    if (t->used == t->cap) {
        int err = grow(ring, t);
        if (err)
            return err;
    }
    for (unsigned i = 0; i < t->cap; i++)
        if (t->slots[i].data == NULL)
            return (int)i;
    return -ENOBUFS; /* not reached: used < cap */
}

static size_t page_round(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (len + page - 1) / page * page;
}

static int fill_slot(struct io_uring *ring, struct iou__fixed_bufs *t, int i, size_t len)
{
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    struct iovec iov = {mem, len};
    int ret = io_uring_register_buffers_update_tag(ring, (unsigned)i, &iov, NULL, 1);
    if (ret < 0) {
        munmap(mem, len);
        return ret;
    }
    t->slots[i] = (slot){.data = mem, .len = len};
    t->used++;
    return 0;
}

int iou_fixed_buf_alloc(size_t len, iou_fixed_buf *out)
{
    iou_loop *l = iou__loop();
    struct io_uring *ring = l ? iou__uring(l) : NULL;
    if (ring == NULL)
        return -ENOTSUP;
    if (out == NULL || len == 0 || len > MAX_LEN)
        return -EINVAL;
    struct iou__fixed_bufs *t = table_of(l);
    if (t == NULL)
        return -ENOMEM;
    int i = free_slot(ring, t);
    if (i < 0)
        return i;
    len = page_round(len);
    int err = fill_slot(ring, t, i, len);
    if (err)
        return err;
    *out = (iou_fixed_buf){.data = t->slots[i].data, .len = len, .index = i};
    return 0;
}

/* b's slot in the calling thread's loop, or NULL if b is not a live buffer
 * of it (freed, another loop's, or garbage). */
static slot *lookup(iou_loop *l, const iou_fixed_buf *b)
{
    struct iou__fixed_bufs *t = l ? l->fixed_bufs : NULL;
    if (t == NULL || b == NULL || b->data == NULL || b->index < 0 || (unsigned)b->index >= t->cap)
        return NULL;
    slot *s = &t->slots[b->index];
    return s->data == b->data && s->len == b->len && !s->freeing ? s : NULL;
}

/* Gives the slot's pages back to the system and the slot to the table. */
static void release(iou_loop *l, struct iou__fixed_bufs *t, unsigned i)
{
    slot *s = &t->slots[i];
    struct io_uring *ring = iou__uring(l);
    struct iovec none = {NULL, 0};
    if (ring)
        io_uring_register_buffers_update_tag(ring, i, &none, NULL, 1); /* unpins */
    munmap(s->data, s->len);
    *s = (slot){0};
    t->used--;
}

void iou_fixed_buf_free(iou_fixed_buf *b)
{
    iou_loop *l = iou__loop();
    slot *s = lookup(l, b);
    if (s == NULL)
        return;
    if (s->users)
        s->freeing = true; /* the last operation in flight releases it */
    else
        release(l, l->fixed_bufs, (unsigned)b->index);
    b->data = NULL;
    b->len = 0;
    b->index = -1;
}

void iou__fixed_bufs_fini(iou_loop *l)
{
    struct iou__fixed_bufs *t = l->fixed_bufs;
    if (t == NULL)
        return;
    for (unsigned i = 0; i < t->cap; i++)
        if (t->slots[i].data)
            munmap(t->slots[i].data, t->slots[i].len);
    struct io_uring *ring = iou__uring(l);
    if (ring && t->cap)
        io_uring_unregister_buffers(ring);
    free(t->slots);
    free(t);
    l->fixed_bufs = NULL;
}

/* ---- fixed reads and writes ------------------------------------------------------- */

static bool in_bounds(const iou_fixed_buf *b, size_t boff, size_t len)
{
    return b && b->data && boff <= b->len && len <= b->len - boff;
}

/* Outside a task: the same bytes, through an ordinary system call. */
static ssize_t fixed_blocking(int kind, int fd, const iou_fixed_buf *b, size_t boff, size_t len,
                              int64_t off)
{
    char *p = (char *)b->data + boff;
    iou__op op = {.kind = (uint8_t)kind, .fd = fd, .buf = p, .len = len,
                  .off = off < 0 ? IOU__OFF_CURRENT : (uint64_t)off};
    return iou__file_op_blocking(&op);
}

static ssize_t fixed_rw(uint8_t kind, int fd, const iou_fixed_buf *b, size_t boff, size_t len,
                        int64_t off)
{
    if (!in_bounds(b, boff, len))
        return -EINVAL;
    iou_task *t = iou__current();
    if (t == NULL)
        return fixed_blocking(kind == IOU__OP_READ_FIXED ? IOU__OP_READ : IOU__OP_WRITE, fd, b,
                              boff, len, off);
    slot *s = lookup(t->loop, b);
    if (s == NULL)
        return -EINVAL;
    iou__op op;
    iou__op_prep(&op, kind, fd, (char *)b->data + boff, len,
                 off < 0 ? IOU__OFF_CURRENT : (uint64_t)off);
    op.flags = (unsigned)b->index;
    struct iou__fixed_bufs *tab = t->loop->fixed_bufs;
    s->users++;
    tab->inflight++;
    int res = iou__op_await(t, &op);
    tab->inflight--;
    if (--s->users == 0 && s->freeing)
        release(t->loop, tab, op.flags);
    return res;
}

ssize_t iou_read_fixed(int fd, const iou_fixed_buf *b, size_t boff, size_t len, int64_t off)
{
    return fixed_rw(IOU__OP_READ_FIXED, fd, b, boff, len, off);
}

ssize_t iou_write_fixed(int fd, const iou_fixed_buf *b, size_t boff, size_t len, int64_t off)
{
    return fixed_rw(IOU__OP_WRITE_FIXED, fd, b, boff, len, off);
}
