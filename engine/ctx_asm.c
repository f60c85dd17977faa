/* Frame set-up for the assembly switches (ctx_x86_64.S, ctx_aarch64.S). */
#include "ctx.h"

#include <stdint.h>
#include <string.h>

void iou__ctx_trampoline(void);

#if defined(__x86_64__)

enum { FRAME_WORDS = 10 }; /* fpu word, 6 registers, return address, 2 padding */

void iou__ctx_make(iou__ctx *c, void *lo, size_t size, iou__ctx_entry entry, void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - FRAME_WORDS * sizeof(uint64_t));
    memset(f, 0, FRAME_WORDS * sizeof(uint64_t));
    /* Default MXCSR (all exceptions masked, round to nearest) and x87 control
     * word (extended precision, all exceptions masked): a fresh task starts
     * with the ABI's initial floating-point environment. */
    f[0] = 0x1F80u | ((uint64_t)0x037Fu << 32);
    f[3] = (uint64_t)(uintptr_t)entry; /* r13 */
    f[4] = (uint64_t)(uintptr_t)arg;   /* r12 */
    f[7] = (uint64_t)(uintptr_t)iou__ctx_trampoline;
    /* f[8], f[9]: zero, a terminating "return address" for unwinders. After
     * the ret pops f[7] the stack pointer is &f[8], 16-byte aligned. */
    c->sp = f;
}

#elif defined(__aarch64__)

enum { FRAME_BYTES = 160 };

void iou__ctx_make(iou__ctx *c, void *lo, size_t size, iou__ctx_entry entry, void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - FRAME_BYTES - 16);
    memset(f, 0, FRAME_BYTES + 16);
    f[0] = (uint64_t)(uintptr_t)entry;               /* x19 */
    f[1] = (uint64_t)(uintptr_t)arg;                 /* x20 */
    f[11] = (uint64_t)(uintptr_t)iou__ctx_trampoline; /* x30 */
    c->sp = f;
}

#else
#error "no assembly context switch for this architecture: build with IOU_CTX_UCONTEXT"
#endif
