#include "timer_heap.h"

#include <errno.h>
#include <stdlib.h>

enum { ARITY = 4 }; /* shallower than binary, and a node's children share a cache line */

void iou__heap_init(iou__timer_heap *h)
{
    h->slots = NULL;
    h->len = h->cap = 0;
    h->next_seq = 0;
}

void iou__heap_fini(iou__timer_heap *h)
{
    for (size_t i = 0; i < h->len; i++)
        h->slots[i].timer->slot = IOU__TIMER_IDLE;
    free(h->slots);
    iou__heap_init(h);
}

static bool before(const iou__heap_slot *a, const iou__heap_slot *b)
{
    if (a->when != b->when)
        return a->when < b->when;
    return a->timer->seq < b->timer->seq;
}

static void place(iou__timer_heap *h, size_t i, iou__heap_slot s)
{
    h->slots[i] = s;
    s.timer->slot = i;
}

static void sift_up(iou__timer_heap *h, size_t i, iou__heap_slot s)
{
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!before(&s, &h->slots[parent]))
            break;
        place(h, i, h->slots[parent]);
        i = parent;
    }
    place(h, i, s);
}

static void sift_down(iou__timer_heap *h, size_t i, iou__heap_slot s)
{
    for (;;) {
        size_t first = i * ARITY + 1;
        if (first >= h->len)
            break;
        size_t last = first + ARITY < h->len ? first + ARITY : h->len;
        size_t best = first;
        for (size_t c = first + 1; c < last; c++)
            if (before(&h->slots[c], &h->slots[best]))
                best = c;
        if (!before(&h->slots[best], &s))
            break;
        place(h, i, h->slots[best]);
        i = best;
    }
    place(h, i, s);
}

static int grow(iou__timer_heap *h)
{
    size_t cap = h->cap ? h->cap * 2 : 64;
    iou__heap_slot *slots = realloc(h->slots, cap * sizeof(*slots));
    if (slots == NULL)
        return -ENOMEM;
    h->slots = slots;
    h->cap = cap;
    return 0;
}

int iou__heap_insert(iou__timer_heap *h, iou__timer *t, uint64_t when)
{
    if (h->len == h->cap && grow(h) < 0)
        return -ENOMEM;
    if (when == IOU__NEVER)
        when = IOU__NEVER - 1; /* IOU__NEVER is iou__heap_next's "empty" */
    t->when = when;
    t->seq = h->next_seq++;
    sift_up(h, h->len++, (iou__heap_slot){when, t});
    return 0;
}

/* Fills the hole at i with the last slot, restoring the heap order. */
static void fill_hole(iou__timer_heap *h, size_t i)
{
    iou__heap_slot last = h->slots[--h->len];
    if (i == h->len)
        return;
    if (i > 0 && before(&last, &h->slots[(i - 1) / ARITY]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

void iou__heap_remove(iou__timer_heap *h, iou__timer *t)
{
    size_t i = t->slot;
    if (i == IOU__TIMER_IDLE)
        return;
    t->slot = IOU__TIMER_IDLE;
    fill_hole(h, i);
}

iou__timer *iou__heap_pop_due(iou__timer_heap *h, uint64_t now)
{
    if (h->len == 0 || h->slots[0].when > now)
        return NULL;
    iou__timer *t = h->slots[0].timer;
    t->slot = IOU__TIMER_IDLE;
    fill_hole(h, 0);
    return t;
}
