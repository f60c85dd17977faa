/*
 * The loop's inbox (remote.h): lock-free stacks that other threads push onto,
 * and the coalesced wake-up (MSG_RING or eventfd).
 *
 * Lifetime: producers hold `posting` while they touch the inbox, so the loop,
 * after refusing new posts (closed), waits for it to drop to zero before the
 * inbox may go. A MSG_RING in flight also holds a reference: the sender's
 * completion arrives later and may need the target's eventfd.
 *
 * A loop with a pool job out watches its inbox briefly before it sleeps
 * (spin_for_inbox): a short job's return then costs neither a wake-up nor an
 * enter.
 */
#include "remote.h"
#include "loop.h"
#include "op.h"
#include "spin.h"

#include <errno.h>
#include <liburing.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum {
    SPIN_NS = 10000,   /* how long a loop with a pool job out watches its inbox */
    SPIN_SKIP_MAX = 64 /* waits without that spin after fruitless ones, at most */
};

struct iou__remote {
    /* Shared with other threads. */
    _Atomic(iou__job *) posts;   /* thread-safe callbacks and spawns, newest first */
    _Atomic(iou__job *) returns; /* finished pool jobs, newest first */
    atomic_int sleeping;         /* the loop may block: the next producer wakes it */
    atomic_int posting;          /* producers inside iou__remote_post */
    atomic_bool closed;          /* posts are refused (the loop is being freed) */
    atomic_long keepalive;
    atomic_int refs;             /* the loop's own, plus one per MSG_RING in flight */
    int wake_fd;                 /* eventfd */
    int ring_fd;                 /* the loop's io_uring fd (MSG_RING target), or -1 */
    /* The loop's thread only. */
    iou_loop *loop;
    bool can_send_msg_ring;      /* this loop's ring has IORING_OP_MSG_RING */
    bool wake_armed;             /* the eventfd read is in the kernel */
    size_t jobs_out;             /* pool jobs posted, not yet returned */
    unsigned spin_skip;          /* waits left before the next spin for a return */
    unsigned spin_backoff;       /* waits skipped after the last fruitless spin */
    uint64_t wake_buf;
    iou__op wake_op;
};

/* ---- set-up and tear-down ------------------------------------------------ */

static bool kernel_has_msg_ring(struct io_uring *ring)
{
    const char *env = getenv("IOU_MSG_RING"); /* "0": test the eventfd path between loops */
    if (env && strcmp(env, "0") == 0)
        return false;
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    if (p == NULL)
        return false;
    bool ok = io_uring_opcode_supported(p, IORING_OP_MSG_RING);
    io_uring_free_probe(p);
    return ok;
}

int iou__remote_init(iou_loop *l)
{
    iou__remote *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    struct io_uring *ring = iou__uring(l);
    /* io_uring reads a blocking eventfd by polling it; the epoll backend wants
     * it non-blocking (it reads once readiness says so). */
    r->wake_fd = eventfd(0, EFD_CLOEXEC | (ring ? 0 : EFD_NONBLOCK));
    if (r->wake_fd < 0) {
        int err = -errno;
        free(r);
        return err;
    }
    r->ring_fd = ring ? ring->ring_fd : -1;
    r->can_send_msg_ring = ring && kernel_has_msg_ring(ring);
    r->loop = l;
    atomic_init(&r->refs, 1);
    l->remote = r;
    return 0;
}

static void unref(iou__remote *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    close(r->wake_fd);
    free(r);
}

/* Arms the eventfd read. It is not counted in ops_inflight (it is not work:
 * a loop waiting only for it is idle), so its completion gives back the count
 * iou__op_complete takes for it. */
static void wake_done(iou__op *op)
{
    iou__remote *r = iou__container_of(op, iou__remote, wake_op);
    r->loop->ops_inflight++;
    r->loop->counters.cqes--; /* and the counts, so stats show the user's work only */
    r->loop->counters.completed[IOU__OP_READ]--;
    r->wake_armed = false;
}

static void arm(iou_loop *l, iou__remote *r)
{
    iou__op *op = &r->wake_op;
    memset(op, 0, sizeof(*op));
    op->kind = IOU__OP_READ;
    op->fd = r->wake_fd;
    op->buf = &r->wake_buf;
    op->len = sizeof(r->wake_buf);
    op->off = IOU__OFF_CURRENT;
    op->done = wake_done;
    r->wake_armed = true;
    l->backend->submit(l, op);
}

bool iou__remote_is_wake_op(const iou_loop *l, const iou__op *op)
{
    return l->remote && op == &l->remote->wake_op;
}

void iou__remote_close(iou_loop *l)
{
    iou__remote *r = l->remote;
    atomic_store(&r->closed, true);
    /* A producer that saw closed == false is still pushing: let it finish. */
    while (atomic_load(&r->posting))
        sched_yield();
}

void iou__remote_fini(iou_loop *l)
{
    iou__remote *r = l->remote;
    if (r->wake_armed) {
        iou__op_cancel(l, &r->wake_op);
        while (r->wake_armed)
            if (l->backend->poll(l, IOU__NEVER) < 0)
                break;
    }
    /* Pool workers push returns after close: the drain waited for every
     * job's return, but the last worker may still be leaving the push. */
    while (atomic_load(&r->posting))
        sched_yield();
    l->remote = NULL;
    unref(r);
}

/* ---- producers --------------------------------------------------------------- */

static void push(_Atomic(iou__job *) *head, iou__job *j)
{
    iou__job *old = atomic_load_explicit(head, memory_order_relaxed);
    do
        j->next = old;
    while (!atomic_compare_exchange_weak_explicit(head, &old, j, memory_order_seq_cst,
                                                  memory_order_relaxed));
}

static void eventfd_kick(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof(one));
    (void)n; /* only fails when the counter is about to overflow: already woken */
}

/* MSG_RING from the calling thread's own io_uring loop into t's ring. The
 * sender counts it in flight until its own completion, so its loop does not
 * end (or free its ring) with the message unsent. */
static bool send_msg_ring(iou__remote *t)
{
    iou_loop *s = iou__loop();
    if (s == NULL || s->remote == NULL || !s->remote->can_send_msg_ring || t->ring_fd < 0)
        return false;
    struct io_uring *ring = iou__uring(s);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL)
        return false;
    io_uring_prep_msg_ring(sqe, t->ring_fd, 0, IOU__UDATA_WAKE, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)t | 1);
    atomic_fetch_add(&t->refs, 1);
    s->ops_inflight++;
    if (io_uring_submit(ring) < 0)
        eventfd_kick(t->wake_fd); /* the SQE goes with the next submit: wake now anyway */
    return true;
}

/* Wakes the loop if it said it may sleep; of several producers only the one
 * that takes the flag down does. */
static void wake(iou__remote *r)
{
    if (atomic_load(&r->sleeping) == 0 || atomic_exchange(&r->sleeping, 0) == 0)
        return;
    if (!send_msg_ring(r))
        eventfd_kick(r->wake_fd);
}

int iou__remote_post(iou_loop *l, iou__job *j, bool internal)
{
    iou__remote *r = l->remote;
    atomic_fetch_add(&r->posting, 1);
    if (!internal && atomic_load(&r->closed)) {
        atomic_fetch_sub(&r->posting, 1);
        return -ESHUTDOWN;
    }
    j->loop = l;
    push(internal ? &r->returns : &r->posts, j);
    wake(r);
    atomic_fetch_sub(&r->posting, 1);
    return 0;
}

/* ---- the loop's side ------------------------------------------------------- */

bool iou__remote_pending(const iou_loop *l)
{
    const iou__remote *r = l->remote;
    return atomic_load_explicit(&r->posts, memory_order_relaxed) ||
           atomic_load_explicit(&r->returns, memory_order_relaxed);
}

/* Takes a whole stack and returns it oldest first. */
static iou__job *take(_Atomic(iou__job *) *head)
{
    iou__job *j = atomic_exchange_explicit(head, NULL, memory_order_acquire), *fifo = NULL;
    while (j) {
        iou__job *next = j->next;
        j->next = fifo;
        fifo = j;
        j = next;
    }
    return fifo;
}

void iou__remote_run(iou_loop *l)
{
    iou__remote *r = l->remote;
    iou__job *j = take(&r->returns);
    while (j) {
        iou__job *next = j->next;
        r->jobs_out--;
        j->done(l, j);
        j = next;
    }
    j = take(&r->posts);
    while (j) {
        iou__job *next = j->next;
        j->done(l, j);
        j = next;
    }
}

bool iou__remote_busy(const iou_loop *l)
{
    const iou__remote *r = l->remote;
    if (r->jobs_out || iou__remote_pending(l))
        return true;
    return !atomic_load_explicit(&r->closed, memory_order_relaxed) &&
           atomic_load_explicit(&r->keepalive, memory_order_relaxed) > 0;
}

void iou__remote_job_out(iou_loop *l)
{
    l->remote->jobs_out++;
}

static bool inbox_filled(const void *rp)
{
    const iou__remote *r = rp;
    return atomic_load_explicit(&r->returns, memory_order_relaxed) ||
           atomic_load_explicit(&r->posts, memory_order_relaxed);
}

/* I/O is in flight: send what is queued and take what completed before a
 * spin (which must not hold a new request back). True if tasks got ready;
 * an error is left for the wait that follows to report. */
static bool io_became_ready(iou_loop *l)
{
    if (l->ops_inflight == 0 || l->backend->poll(l, 0) < 0)
        return false;
    return !iou__queue_empty(&l->ready);
}

/* A pool job is out and the loop has nothing else to do: a short job comes
 * back within microseconds, far sooner than a sleeping loop is woken (a
 * write, a cross-CPU wake-up, an enter). The loop watches its inbox for at
 * most SPIN_NS with `sleeping` down, so a worker that returns a job meanwhile
 * sends no wake-up at all. The spin is kept only while it pays: a fruitless
 * one doubles the number of later waits that skip it (up to SPIN_SKIP_MAX),
 * a caught return resets that, so a loop whose jobs are slow spins only now
 * and then, and a loop with no job out never spins. True: do not sleep. */
static bool spin_for_inbox(iou_loop *l, iou__remote *r)
{
    if (r->jobs_out == 0)
        return false;
    if (r->spin_skip) {
        r->spin_skip--;
        return false;
    }
    if (io_became_ready(l))
        return true;
    if (iou__spin_until(inbox_filled, r, SPIN_NS)) {
        r->spin_backoff = 0;
        return true;
    }
    r->spin_backoff = r->spin_backoff ? r->spin_backoff * 2 : 1;
    if (r->spin_backoff > SPIN_SKIP_MAX)
        r->spin_backoff = SPIN_SKIP_MAX;
    r->spin_skip = r->spin_backoff;
    return false;
}

bool iou__remote_sleep(iou_loop *l)
{
    iou__remote *r = l->remote;
    if (spin_for_inbox(l, r))
        return false;
    if (!r->wake_armed)
        arm(l, r);
    /* Dekker with the producers: raise the flag, then look. Either a producer
     * sees the flag and wakes us, or we see its post here. */
    atomic_store(&r->sleeping, 1);
    if (atomic_load(&r->posts) || atomic_load(&r->returns)) {
        atomic_store(&r->sleeping, 0);
        return false;
    }
    return true;
}

/* A plain store, no fence: a producer that still sees the flag raised only
 * sends one wake-up too many, which the next sleep absorbs. The loop pays
 * this on every wake-up (twice per request-response of a lone connection). */
void iou__remote_awake(iou_loop *l)
{
    atomic_store_explicit(&l->remote->sleeping, 0, memory_order_relaxed);
}

void iou__remote_cqe(iou_loop *l, uint64_t data, int res)
{
    if (data == IOU__UDATA_WAKE)
        return; /* posts are taken at the top of the next iteration */
    iou__remote *t = (iou__remote *)(uintptr_t)(data & ~(uint64_t)1);
    l->ops_inflight--;
    if (res < 0)
        eventfd_kick(t->wake_fd); /* the message did not go: wake the other way */
    unref(t);
}

/* ---- public: keepalive ------------------------------------------------------- */

int iou_loop_keepalive(iou_loop *l, int delta)
{
    if (l == NULL || l->remote == NULL)
        return -EINVAL;
    iou__remote *r = l->remote;
    long now = atomic_fetch_add(&r->keepalive, delta) + delta;
    if (now < 0) {
        atomic_fetch_sub(&r->keepalive, delta);
        return -EINVAL;
    }
    if (now == 0) {
        /* A sleeping loop re-checks whether it is idle now. Dekker again: the
         * loop raises `sleeping` before it reads keepalive a last time. */
        atomic_fetch_add(&r->posting, 1);
        wake(r);
        atomic_fetch_sub(&r->posting, 1);
    }
    return 0;
}
