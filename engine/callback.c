/*
 * The callback layer: call_soon, call_later, call_at. Nodes and timer handles
 * come from per-loop free lists, so steady-state use does not allocate.
 *
 * A call_soon callback is a node in the same FIFO ready queue as the tasks, so
 * callbacks and tasks interleave in the order they became ready. A timer is a
 * 56-byte handle (a 64-byte malloc chunk) plus a 16-byte heap slot: a million
 * pending timers take about 81 MB (bench/bench_timer.cc measures it).
 */
#include "loop.h"
#include "debug.h"

#include <errno.h>
#include <stdlib.h>

enum { POOL_MAX = 4096 }; /* idle timer handles kept for reuse */

struct iou__callback {
    iou__work work;         /* in l->ready, or in l->free_callbacks (work.next links) */
    void (*cb)(void *);
    void (*drop)(void *);   /* called instead of cb if the loop drops the node; may be NULL */
    void *arg;
};

/*
 * A call_later / call_at handle. Its heap slot says its state: armed while
 * pending, IOU__TIMER_IDLE while its callback runs (the only other moment the
 * handle is valid), which is how iou_timer_cancel recognises "my own callback".
 */
struct iou_timer {
    iou__timer timer;
    iou_loop *loop;
    void (*cb)(void *);
    union {
        void *arg;           /* while in use */
        iou_timer *next_free; /* while in l->free_timers */
    };
};

/* ---- call_soon ------------------------------------------------------------ */

static void recycle_callback(iou_loop *l, iou__callback *c)
{
    c->work.next = (iou__work *)l->free_callbacks;
    l->free_callbacks = c;
}

static void run_callback(iou__work *w)
{
    iou__callback *c = iou__container_of(w, iou__callback, work);
    void (*cb)(void *) = c->cb;
    void *arg = c->arg;
    recycle_callback(iou__loop(), c); /* before calling: cb may call_soon again */
    cb(arg);
}

/* call_soon for internal users that own memory through arg (futures): if the
 * loop is freed before the callback ran, drop(arg) runs instead, so that
 * memory is not leaked. */
int iou__call_soon_owned(iou_loop *l, void (*cb)(void *), void (*drop)(void *), void *arg)
{
    if (l == NULL || cb == NULL)
        return -EINVAL;
    iou__callback *c = l->free_callbacks;
    if (c)
        l->free_callbacks = (iou__callback *)c->work.next;
    else if ((c = malloc(sizeof(*c))) == NULL)
        return -ENOMEM;
    c->work.run = run_callback;
    c->cb = cb;
    c->drop = drop;
    c->arg = arg;
    iou__ready(l, &c->work);
    return 0;
}

int iou_call_soon(iou_loop *l, void (*cb)(void *), void *arg)
{
    if (l)
        iou__check_thread(l, "iou_call_soon");
    return iou__call_soon_owned(l, cb, NULL, arg);
}

/* ---- call_later / call_at ------------------------------------------------- */

static void timer_release(iou_timer *t)
{
    iou_loop *l = t->loop;
    if (l->free_timer_count >= POOL_MAX) {
        free(t);
        return;
    }
    t->next_free = l->free_timers;
    l->free_timers = t;
    l->free_timer_count++;
}

static void timer_fired(iou__timer *base)
{
    iou_timer *t = iou__container_of(base, iou_timer, timer);
    t->cb(t->arg); /* the heap already disarmed it: a cancel from here sees IDLE */
    timer_release(t);
}

static bool is_callback_timer(const iou__timer *base)
{
    return base->fire == timer_fired;
}

static iou_timer *timer_alloc(iou_loop *l)
{
    iou_timer *t = l->free_timers;
    if (t == NULL)
        return malloc(sizeof(*t));
    l->free_timers = t->next_free;
    l->free_timer_count--;
    return t;
}

iou_timer *iou_call_at(iou_loop *l, uint64_t abs_ns, void (*cb)(void *), void *arg)
{
    if (l == NULL || cb == NULL)
        return NULL;
    iou__check_thread(l, "iou_call_at");
    iou_timer *t = timer_alloc(l);
    if (t == NULL)
        return NULL;
    t->timer.slot = IOU__TIMER_IDLE;
    t->timer.fire = timer_fired;
    t->loop = l;
    t->cb = cb;
    t->arg = arg;
    if (iou__heap_insert(&l->timers, &t->timer, abs_ns) < 0) {
        timer_release(t);
        return NULL;
    }
    return t;
}

iou_timer *iou_call_later(iou_loop *l, uint64_t ns, void (*cb)(void *), void *arg)
{
    if (l == NULL)
        return NULL;
    return iou_call_at(l, iou__time_after(iou__loop_now(l), ns), cb, arg);
}

int iou_timer_cancel(iou_timer *t)
{
    if (t == NULL)
        return -EINVAL;
    if (!iou__timer_armed(&t->timer))
        return -EALREADY; /* its callback is running; timer_fired releases it */
    iou__heap_remove(&t->loop->timers, &t->timer);
    timer_release(t);
    return 0;
}

/* ---- shutdown ------------------------------------------------------------- */

static void drop_timer(iou_loop *l, iou__timer *base)
{
    iou__heap_remove(&l->timers, base);
    timer_release(iou__container_of(base, iou_timer, timer));
}

/*
 * Disarms and frees every callback timer, leaving the other timers (task
 * deadlines, sleeps) armed. Scans forward; callback timers at the end of the
 * array are removed first, so the slot that fills a hole is never a callback
 * timer and no callback timer can be moved behind the scan position.
 */
static void drop_timers(iou_loop *l)
{
    iou__timer_heap *h = &l->timers;
    size_t i = 0;
    while (i < h->len) {
        while (h->len > i && is_callback_timer(h->slots[h->len - 1].timer))
            drop_timer(l, h->slots[h->len - 1].timer);
        if (i < h->len && is_callback_timer(h->slots[i].timer))
            drop_timer(l, h->slots[i].timer);
        else
            i++;
    }
}

/* Removes the call_soon nodes from the ready queue, keeping everything else
 * (tasks) in order; each dropped node's drop hook runs. */
static void drop_queued(iou_loop *l)
{
    iou__queue all;
    iou__queue_take(&all, &l->ready);
    iou__work *w;
    while ((w = iou__queue_pop(&all))) {
        if (w->run != run_callback) {
            iou__ready(l, w);
            continue;
        }
        iou__callback *c = iou__container_of(w, iou__callback, work);
        void (*drop)(void *) = c->drop;
        void *arg = c->arg;
        recycle_callback(l, c);
        if (drop)
            drop(arg);
    }
}

/* Drops every pending callback and timer of l (iou_loop_free's "pending
 * callbacks and timers are dropped"). Tasks and their timers are untouched.
 * Must run before the loop drains its tasks: a pending timer would otherwise
 * keep the draining loop busy until its deadline. Idempotent. */
void iou__callbacks_drop(iou_loop *l)
{
    drop_timers(l);
    drop_queued(l);
}

/* Last step of iou_loop_free: drops what is left and frees the pools. */
void iou__callbacks_fini(iou_loop *l)
{
    iou__callbacks_drop(l);
    while (l->free_timers) {
        iou_timer *t = l->free_timers;
        l->free_timers = t->next_free;
        free(t);
    }
    l->free_timer_count = 0;
    while (l->free_callbacks) {
        iou__callback *c = l->free_callbacks;
        l->free_callbacks = (iou__callback *)c->work.next;
        free(c);
    }
}
