/*
 * Portable fallback context switch on ucontext (selected at build time for
 * architectures without an assembly switch). swapcontext makes a sigprocmask
 * system call per switch: correct, but slow.
 */
#include "ctx.h"

#include <stdint.h>
#include <stdlib.h>

/* makecontext passes only ints; split the pointers into 32-bit halves. */
static void trampoline(unsigned e_hi, unsigned e_lo, unsigned a_hi, unsigned a_lo)
{
    uintptr_t e = ((uintptr_t)e_hi << 16 << 16) | e_lo;
    uintptr_t a = ((uintptr_t)a_hi << 16 << 16) | a_lo;
    ((iou__ctx_entry)e)((void *)a);
    abort(); /* entry must never return */
}

void iou__ctx_make(iou__ctx *c, void *lo, size_t size, iou__ctx_entry entry, void *arg)
{
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, (void (*)(void))trampoline, 4, (unsigned)(e >> 16 >> 16), (unsigned)e,
                (unsigned)(a >> 16 >> 16), (unsigned)a);
}

void iou__ctx_swap(iou__ctx *from, iou__ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}

void iou__ctx_swap_peer(iou__ctx *from, iou__ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}
