/* Frame set-up for the assembly switches (ctx_x86_64.S, ctx_aarch64.S). */
#include "ctx.h"

#include <stdint.h>
#include <string.h>

void iou__ctx_trampoline(void);

#if defined(__x86_64__)

enum { FRAME_WORDS = 10 }; /* fpu word, 6 registers, resume address, 2 padding */

void iou__ctx_make(iou__ctx *c, void *lo, size_t size, iou__ctx_entry entry, void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - FRAME_WORDS * sizeof(uint64_t));
    memset(f, 0, FRAME_WORDS * sizeof(uint64_t));
    /* A new task inherits the creator's floating-point environment (MXCSR and
     * x87 control word), as a new thread does. Besides being the POSIX
     * convention this keeps switches fast: ldmxcsr of a value that differs
     * from the current one is several times slower than reloading the same
     * one, and MXCSR's sticky status flags make fresh defaults differ. */
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    f[0] = mxcsr | ((uint64_t)fpucw << 32);
    f[1] = (uint64_t)(uintptr_t)arg;   /* r12 */
    f[2] = (uint64_t)(uintptr_t)entry; /* r13 */
    f[7] = (uint64_t)(uintptr_t)iou__ctx_trampoline; /* resume address */
    /* f[8], f[9]: zero, a terminating "return address" for unwinders. After
     * the switch consumes f[7] the stack pointer is &f[8], 16-byte aligned. */
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
