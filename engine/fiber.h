/*
 * The annotated switch: iou__ctx_swap plus the bookkeeping AddressSanitizer
 * and ThreadSanitizer need to follow execution onto another stack. In normal
 * builds these are plain calls to the assembly switch.
 */
#ifndef IOU_FIBER_H
#define IOU_FIBER_H

#include "ctx.h"
#include "sanitizer.h"

#include <stddef.h>

typedef struct iou__fiber_target {
    iou__ctx *ctx;
    const void *stack_lo;
    size_t stack_size;
    void *tsan_fiber;
} iou__fiber_target;

typedef void (*iou__ctx_swap_fn)(iou__ctx *from, iou__ctx *to);

/* Switches from the running context (saved in from) to target with swap
 * (iou__ctx_swap or iou__ctx_swap_peer). fake_stack is the leaving context's
 * ASan fake-stack slot; NULL when it will never resume (a finished task), so
 * ASan frees its fake frames. */
static inline void iou__fiber_switch_with(iou__ctx_swap_fn swap, iou__ctx *from,
                                          void **fake_stack, iou__fiber_target to)
{
#if defined(IOU_ASAN)
    __sanitizer_start_switch_fiber(fake_stack, to.stack_lo, to.stack_size);
#else
    (void)fake_stack;
#endif
#if defined(IOU_TSAN)
    __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
    swap(from, to.ctx);
#if defined(IOU_ASAN)
    if (fake_stack)
        __sanitizer_finish_switch_fiber(*fake_stack, NULL, NULL);
#endif
}

/* A switch between the loop and a task. */
static inline void iou__fiber_switch(iou__ctx *from, void **fake_stack, iou__fiber_target to)
{
    iou__fiber_switch_with(iou__ctx_swap, from, fake_stack, to);
}

/* A task handing over to the next task (see iou__ctx_swap_peer). */
static inline void iou__fiber_switch_peer(iou__ctx *from, void **fake_stack,
                                          iou__fiber_target to)
{
    iou__fiber_switch_with(iou__ctx_swap_peer, from, fake_stack, to);
}

/* First thing a new context does: completes the switch that entered it and
 * reports the stack it came from. */
static inline void iou__fiber_started(const void **from_lo, size_t *from_size)
{
#if defined(IOU_ASAN)
    __sanitizer_finish_switch_fiber(NULL, from_lo, from_size);
#else
    (void)from_lo;
    (void)from_size;
#endif
}

#endif
