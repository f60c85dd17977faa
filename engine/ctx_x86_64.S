/*
 * x86-64 System V context switch.
 *
 * Saved frame, from the saved stack pointer upwards:
 *   +0  MXCSR (4 bytes) and x87 control word (2 bytes)
 *   +8  r15, r14, r13, r12, rbx, rbp
 *   +56 return address
 * Only callee-saved state is kept: the caller of iou__ctx_swap has already
 * spilled everything else, as for any function call.
 */
#if defined(__CET__)
#define ENDBR endbr64
#else
#define ENDBR
#endif

    .text
    .globl  iou__ctx_swap
    .hidden iou__ctx_swap
    .type   iou__ctx_swap, @function
    .p2align 4
/* void iou__ctx_swap(iou__ctx *from (rdi), iou__ctx *to (rsi)) */
iou__ctx_swap:
    .cfi_startproc
    ENDBR
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   iou__ctx_swap, .-iou__ctx_swap

/*
 * First instructions of a new context: iou__ctx_make stored entry in r13 and
 * its argument in r12. The frame is laid out so the stack is 16-byte aligned
 * here, as the ABI requires before a call.
 */
    .globl  iou__ctx_trampoline
    .hidden iou__ctx_trampoline
    .type   iou__ctx_trampoline, @function
    .p2align 4
iou__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    ENDBR
    movq    %r12, %rdi
    callq   *%r13
    ud2                         /* entry must never return */
    .cfi_endproc
    .size   iou__ctx_trampoline, .-iou__ctx_trampoline

    .section .note.GNU-stack,"",%progbits

#if defined(__CET__)
/* Mark the object IBT-compatible (endbr64 above). Shadow stacks are not
 * claimed: a stack switch would need shadow-stack switching too. */
    .section .note.gnu.property,"a"
    .p2align 3
    .long   4
    .long   16
    .long   5                   /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000002          /* GNU_PROPERTY_X86_FEATURE_1_AND */
    .long   4
    .long   1                   /* IBT */
    .p2align 3
#endif
