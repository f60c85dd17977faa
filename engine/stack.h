/*
 * Task stacks: mmap'd in slabs, each stack with a guard page below it, pooled
 * per loop and recycled.
 *
 * Guard pages normally split a mapping in two, so 100,000 guarded stacks would
 * need 200,000 mappings, far past vm.max_map_count (65,530 by default). Where
 * the kernel has guard regions (MADV_GUARD_INSTALL, Linux 6.13) the guard is a
 * page-table marker that splits nothing. Elsewhere guards are PROT_NONE pages
 * while a budget of mappings lasts, and beyond it a canary word at the bottom
 * of the stack, checked whenever the task switches out.
 */
#ifndef IOU_STACK_H
#define IOU_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum iou__guard {
    IOU__GUARD_REGION,  /* MADV_GUARD_INSTALL marker */
    IOU__GUARD_PROTECT, /* PROT_NONE page (one extra mapping) */
    IOU__GUARD_CANARY,  /* no guard page: canary checked at each switch */
};

typedef struct iou__stack {
    struct iou__stack *next; /* free-list link */
    char *lo;                /* lowest usable byte; the guard page lies just below */
    size_t size;             /* usable bytes */
    unsigned valgrind_id;
    uint8_t size_class;
    uint8_t guard; /* enum iou__guard */
} iou__stack;

enum { IOU__STACK_CLASSES = 15 }; /* 16 KiB << class: 16 KiB .. 256 MiB */

typedef struct iou__stack_class {
    iou__stack *hot;  /* recently used, pages still resident: reuse is free */
    iou__stack *cold; /* pages returned to the kernel with MADV_DONTNEED */
    unsigned hot_count;
} iou__stack_class;

typedef struct iou__stack_pool {
    iou__stack_class classes[IOU__STACK_CLASSES];
    struct iou__stack_slab *slabs;
    size_t page;
    size_t in_use, pooled;
    long protect_budget;    /* PROT_NONE guards still allowed (mapping budget) */
    enum iou__guard forced; /* test switch IOU_TEST_STACK_GUARD; REGION = not forced */
} iou__stack_pool;

void iou__stack_pool_init(iou__stack_pool *p);
void iou__stack_pool_fini(iou__stack_pool *p);

/* A stack of at least size bytes (rounded up to its class), or NULL. */
iou__stack *iou__stack_acquire(iou__stack_pool *p, size_t size);
void iou__stack_release(iou__stack_pool *p, iou__stack *s);

/* Whether addr falls in s's guard page. */
bool iou__stack_guard_hit(const iou__stack *s, const void *addr, size_t page);

bool iou__stack_canary_intact(const iou__stack *s);

/* False if an unguarded stack's canary was overwritten. */
static inline bool iou__stack_canary_ok(const iou__stack *s)
{
    return s->guard != IOU__GUARD_CANARY || iou__stack_canary_intact(s);
}

#endif
