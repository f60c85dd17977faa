/*
 * Execution contexts: the machine-level half of a coroutine switch.
 *
 * A context is a saved stack pointer; everything else a switch must preserve
 * (callee-saved registers, MXCSR and x87 control word on x86-64, d8-d15 on
 * aarch64) is pushed on the stack being left. The portable fallback keeps a
 * ucontext_t instead. Sanitizer bookkeeping is not done here: see fiber.h.
 */
#ifndef IOU_CTX_H
#define IOU_CTX_H

#include <stddef.h>

#if defined(IOU_CTX_UCONTEXT)
#include <ucontext.h>
typedef struct iou__ctx {
    ucontext_t uc;
} iou__ctx;
#else
typedef struct iou__ctx {
    void *sp; /* stack pointer saved by the last switch away from this context */
} iou__ctx;
#endif

typedef void (*iou__ctx_entry)(void *arg);

/* Prepares c so that the first switch into it calls entry(arg) on the stack
 * [lo, lo + size). entry must never return. */
void iou__ctx_make(iou__ctx *c, void *lo, size_t size, iou__ctx_entry entry, void *arg);

/* Saves the running context into from and resumes to. Returns when something
 * switches back into from. */
#if defined(IOU_CTX_UCONTEXT)
void iou__ctx_swap(iou__ctx *from, iou__ctx *to);
#else
/* Assembly: stores the stack pointer in from->sp, loads to->sp. */
void iou__ctx_swap(iou__ctx *from, iou__ctx *to);
#endif

/* The same, for a switch between contexts often suspended at the same call
 * site (one task handing over to the next: they all park in the same few
 * places). On x86-64 it then returns into the target with a ret the CPU
 * predicts, keeping its return-stack predictor in step (ctx_x86_64.S);
 * elsewhere it is iou__ctx_swap. */
void iou__ctx_swap_peer(iou__ctx *from, iou__ctx *to);

#endif
