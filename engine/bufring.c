/*
 * The per-loop provided-buffer ring.
 *
 * One buffer group (IOU__BGID) per loop, registered lazily on first use with
 * the configured count and size. The ring entries and the buffers are two
 * anonymous mappings: buffer pages become resident only once data has passed
 * through them, so the ring costs nothing until traffic flows and nothing per
 * idle connection ever.
 *
 * Buffers go back to the ring the moment their reader is done with them
 * (replenish on release). When all are lent out the kernel completes a
 * receive with -ENOBUFS; receivers then make one plain recv instead (see
 * recv_buf.c, stream_rx.c), so an empty ring slows receiving down but never
 * loses data or stalls a connection.
 */
#include "bufring.h"
#include "backend.h"
#include "feature_mask.h"
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(IOU__CQE_SOCK_NONEMPTY == IORING_CQE_F_SOCK_NONEMPTY, "CQE flags pass through");

enum {
    DEFAULT_COUNT = 256,
    DEFAULT_SIZE = 16 * 1024,
    MAX_COUNT = 32768,
    MAX_SIZE = 64 * 1024 * 1024,
    CAP_DIVISOR = 16, /* default stream_cap = count / 16 */
};

/* ---- where a loop keeps its ring ------------------------------------------------- */

static iou__bufring *ring_of(iou_loop *l)
{
    return l->bufring;
}

static void set_ring(iou_loop *l, iou__bufring *r)
{
    l->bufring = r;
}

/* ---- configuration ----------------------------------------------------------------- */

static bool is_pow2(unsigned x)
{
    return x && (x & (x - 1)) == 0;
}

static int apply_opts(iou__bufring *r, const iou_bufring_opts *o)
{
    unsigned count = o && o->count ? o->count : DEFAULT_COUNT;
    size_t size = o && o->size ? o->size : DEFAULT_SIZE;
    unsigned cap = o && o->stream_cap ? o->stream_cap : count / CAP_DIVISOR;
    if (!is_pow2(count) || count > MAX_COUNT || size > MAX_SIZE || cap > count)
        return -EINVAL;
    r->count = count;
    r->size = (uint32_t)size;
    r->stream_cap = cap ? cap : 1;
    return 0;
}

static void link_init(iou__rx_link *k)
{
    k->prev = k->next = k;
}

/* The loop's record, allocated (with default sizes) on first need. */
static iou__bufring *record(iou_loop *l)
{
    iou__bufring *r = ring_of(l);
    if (r)
        return r;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->loop = l;
    link_init(&r->armed);
    apply_opts(r, NULL);
    set_ring(l, r);
    return r;
}

static bool in_use(const iou__bufring *r)
{
    return r->br != NULL || r->unavailable;
}

int iou_bufring_config(const iou_bufring_opts *opts)
{
    iou_loop *l = iou__loop();
    if (l == NULL)
        return -EPERM;
    iou__bufring *r = record(l);
    if (r == NULL)
        return -ENOMEM;
    if (in_use(r))
        return -EBUSY;
    return apply_opts(r, opts); /* changes nothing when it fails */
}

size_t iou__bufring_buf_size(iou_loop *l)
{
    iou__bufring *r = l ? ring_of(l) : NULL;
    return r ? r->size : DEFAULT_SIZE;
}

int iou_bufring_get_stats(iou_bufring_stats *st)
{
    if (st == NULL)
        return -EINVAL;
    iou_loop *l = iou__loop();
    if (l == NULL)
        return -EPERM;
    iou__bufring *r = ring_of(l);
    *st = r ? r->stats : (iou_bufring_stats){0};
    if (r && r->br) {
        st->count = r->count;
        st->size = r->size;
        st->available = r->available;
    }
    return 0;
}

/* ---- creating and freeing the ring --------------------------------------------------- */

static void *map(size_t bytes, int extra)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap(iou__bufring *r)
{
    if (r->br)
        munmap(r->br, r->ring_bytes);
    if (r->base)
        munmap(r->base, r->buf_bytes);
    r->br = NULL;
    r->base = NULL;
}

static int map_all(iou__bufring *r)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    r->ring_bytes = ((size_t)r->count * sizeof(struct io_uring_buf) + page - 1) & ~(page - 1);
    r->buf_bytes = (size_t)r->count * r->size;
    r->br = map(r->ring_bytes, 0);
    r->base = map(r->buf_bytes, MAP_NORESERVE);
    if (r->br && r->base)
        return 0;
    unmap(r);
    return -ENOMEM;
}

static void fill_ring(iou__bufring *r)
{
    int mask = io_uring_buf_ring_mask(r->count);
    io_uring_buf_ring_init(r->br);
    for (unsigned i = 0; i < r->count; i++)
        io_uring_buf_ring_add(r->br, iou__bufring_addr(r, i), r->size, (unsigned short)i, mask,
                              (int)i);
    io_uring_buf_ring_advance(r->br, (int)r->count);
    r->available = r->count;
}

static int create(iou__bufring *r)
{
    struct io_uring *ring = iou__uring(r->loop);
    if (ring == NULL || !iou__feature_allowed(r->loop, IOU__FEAT_BUFRING))
        return -ENOTSUP;
    int err = map_all(r);
    if (err)
        return err;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)r->br, .ring_entries = r->count, .bgid = IOU__BGID};
    err = io_uring_register_buf_ring(ring, &reg, 0);
    if (err) {
        unmap(r);
        return err;
    }
    fill_ring(r);
    return 0;
}

iou__bufring *iou__bufring_get(iou_loop *l)
{
    iou__bufring *r = record(l);
    if (r == NULL || r->unavailable)
        return NULL;
    if (r->br)
        return r;
    if (r->closing || create(r) < 0) {
        r->unavailable = true; /* remembered: do not retry on every receive */
        return NULL;
    }
    return r;
}

void iou__bufring_fini(iou_loop *l)
{
    iou__bufring *r = ring_of(l);
    if (r == NULL)
        return;
    if (r->br)
        io_uring_unregister_buf_ring(iou__uring(l), IOU__BGID);
    unmap(r);
    set_ring(l, NULL);
    free(r);
}

/* ---- lending buffers --------------------------------------------------------------- */

int iou__bufring_take(iou__bufring *r, uint32_t cqe_flags)
{
    if (!(cqe_flags & IORING_CQE_F_BUFFER))
        return -1;
    r->available--;
    return (int)(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
}

void iou__bufring_put(iou__bufring *r, unsigned bid)
{
    io_uring_buf_ring_add(r->br, iou__bufring_addr(r, bid), r->size, (unsigned short)bid,
                          io_uring_buf_ring_mask(r->count), 0);
    io_uring_buf_ring_advance(r->br, 1);
    r->available++;
}

void iou__bufring_prep_recv(iou__op *op, int fd, int flags, bool multishot)
{
    op->kind = multishot ? IOU__OP_RECV_MULTI : IOU__OP_RECV_BUF;
    op->fd = fd;
    op->flags = (unsigned)flags;
    op->off = IOU__BGID;
    op->len = 0;
}

/* ---- multishots in the kernel -------------------------------------------------------- */

static void link_after(iou__rx_link *at, iou__rx_link *k)
{
    k->prev = at;
    k->next = at->next;
    at->next->prev = k;
    at->next = k;
}

static void link_remove(iou__rx_link *k)
{
    k->prev->next = k->next;
    k->next->prev = k->prev;
    link_init(k);
}

void iou__bufring_armed(iou__bufring *r, iou__rx_link *link)
{
    link_after(&r->armed, link);
    r->armed_count++;
}

void iou__bufring_disarmed(iou__bufring *r, iou__rx_link *link)
{
    link_remove(link);
    r->armed_count--;
}

void iou__bufring_recv_started(iou__bufring *r)
{
    r->singles++;
}

void iou__bufring_recv_ended(iou__bufring *r)
{
    r->singles--;
}

/*
 * Cancelling may flush a full SQ and so reap completions, which unlink
 * receives (even the one being cancelled) from the list. So each receive is
 * first moved to a local list, then cancelled: the walk always takes the
 * armed list's current first entry and ends when it is empty.
 */
void iou__bufring_cancel_all(iou_loop *l)
{
    iou__bufring *r = ring_of(l);
    if (r == NULL)
        return;
    r->closing = true;
    iou__rx_link done;
    link_init(&done);
    while (r->armed.next != &r->armed) {
        iou__rx_link *k = r->armed.next;
        link_remove(k);
        link_after(&done, k);
        iou__op_cancel(l, k->op);
    }
    /* Put the survivors back (their completions are still to come). */
    while (done.next != &done) {
        iou__rx_link *k = done.next;
        link_remove(k);
        link_after(&r->armed, k);
    }
}
