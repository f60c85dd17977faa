/* The callback layer: call_soon, call_later, call_at. Nodes and timer handles
 * come from per-loop free lists, so steady-state use does not allocate. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>

enum { POOL_MAX = 4096 };

struct iou__callback {
    iou__work work;
    void (*cb)(void *);
    void *arg;
};

struct iou_timer {
    iou__timer timer;
    iou_loop *loop;
    void (*cb)(void *);
    void *arg;
    bool firing;
    iou_timer *next_free;
};

static void run_callback(iou__work *w)
{
    iou__callback *c = iou__container_of(w, iou__callback, work);
    iou_loop *l = iou__loop();
    void (*cb)(void *) = c->cb;
    void *arg = c->arg;
    c->work.next = (iou__work *)l->free_callbacks; /* recycle before calling: cb may call_soon */
    l->free_callbacks = c;
    cb(arg);
}

int iou_call_soon(iou_loop *l, void (*cb)(void *), void *arg)
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
    c->arg = arg;
    iou__ready(l, &c->work);
    return 0;
}

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
    t->firing = true;
    t->cb(t->arg);
    timer_release(t);
}

iou_timer *iou_call_at(iou_loop *l, uint64_t abs_ns, void (*cb)(void *), void *arg)
{
    if (l == NULL || cb == NULL)
        return NULL;
    iou_timer *t = l->free_timers;
    if (t) {
        l->free_timers = t->next_free;
        l->free_timer_count--;
    } else if ((t = malloc(sizeof(*t))) == NULL) {
        return NULL;
    }
    t->timer.slot = IOU__TIMER_IDLE;
    t->timer.fire = timer_fired;
    t->loop = l;
    t->cb = cb;
    t->arg = arg;
    t->firing = false;
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
    uint64_t now = iou__loop_now(l);
    uint64_t when = ns > IOU__NEVER - 1 - now ? IOU__NEVER - 1 : now + ns;
    return iou_call_at(l, when, cb, arg);
}

int iou_timer_cancel(iou_timer *t)
{
    if (t == NULL)
        return -EINVAL;
    if (t->firing)
        return -EALREADY;
    iou__heap_remove(&t->loop->timers, &t->timer);
    timer_release(t);
    return 0;
}

/* Pending callbacks and timers are dropped with the loop; pooled nodes freed. */
void iou__callbacks_fini(iou_loop *l)
{
    for (size_t i = l->timers.len; i-- > 0;) {
        iou__timer *base = l->timers.slots[i].timer;
        if (base->fire == timer_fired) {
            iou__heap_remove(&l->timers, base);
            free(iou__container_of(base, iou_timer, timer));
        }
    }
    while (l->free_timers) {
        iou_timer *t = l->free_timers;
        l->free_timers = t->next_free;
        free(t);
    }
    iou__work *w;
    while ((w = iou__queue_pop(&l->ready))) {
        if (w->run == run_callback) {
            iou__callback *c = iou__container_of(w, iou__callback, work);
            c->work.next = (iou__work *)l->free_callbacks;
            l->free_callbacks = c;
        }
    }
    while (l->free_callbacks) {
        iou__callback *c = l->free_callbacks;
        l->free_callbacks = (iou__callback *)c->work.next;
        free(c);
    }
}
