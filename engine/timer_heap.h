/*
 * Timers: a 4-ary min-heap keyed by (deadline, sequence). The sequence makes
 * timers with equal deadlines fire in the order they were armed. Each timer
 * remembers its heap slot, so removal (cancel) is O(log n) without a search.
 * A timer is 32 bytes plus a 16-byte heap slot: millions fit comfortably.
 */
#ifndef IOU_TIMER_HEAP_H
#define IOU_TIMER_HEAP_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define IOU__NEVER UINT64_MAX
#define IOU__TIMER_IDLE SIZE_MAX

typedef struct iou__timer iou__timer;
struct iou__timer {
    uint64_t when;
    uint64_t seq;
    size_t slot;                  /* heap index, IOU__TIMER_IDLE when not armed */
    void (*fire)(iou__timer *t); /* called once when the deadline is reached */
};

typedef struct iou__heap_slot {
    uint64_t when; /* copy of timer->when: comparisons stay in the heap array */
    iou__timer *timer;
} iou__heap_slot;

typedef struct iou__timer_heap {
    iou__heap_slot *slots;
    size_t len, cap;
    uint64_t next_seq;
} iou__timer_heap;

void iou__heap_init(iou__timer_heap *h);
void iou__heap_fini(iou__timer_heap *h);

/* Arms t at when. Returns 0 or -ENOMEM (t stays idle). */
int iou__heap_insert(iou__timer_heap *h, iou__timer *t, uint64_t when);

/* Disarms t if armed. */
void iou__heap_remove(iou__timer_heap *h, iou__timer *t);

/* The earliest deadline, or IOU__NEVER. */
static inline uint64_t iou__heap_next(const iou__timer_heap *h)
{
    return h->len ? h->slots[0].when : IOU__NEVER;
}

/* Removes and returns the earliest timer if its deadline is <= now, else NULL. */
iou__timer *iou__heap_pop_due(iou__timer_heap *h, uint64_t now);

static inline bool iou__timer_armed(const iou__timer *t)
{
    return t->slot != IOU__TIMER_IDLE;
}

#endif
