/*
 * x86-64 System V context switch.
 *
 * Saved frame, from the saved stack pointer upwards (64 bytes):
 *   +0  MXCSR (4 bytes) and x87 control word (2 bytes)
 *   +8  r12, r13, r14, r15, rbx, rbp
 *   +56 resume address (pushed by the call to iou__ctx_swap)
 * Only callee-saved state is kept: the caller of iou__ctx_swap has already
 * spilled everything else, as for any function call.
 *
 * Plain movs into a pre-sized frame instead of push/pop; the target's stack
 * pointer is read before anything is stored (loading it right after the
 * store to from->sp, in the same cache line, cost ~25% when switches are
 * back to back); the resume address is loaded right after the stack switch.
 * The jump (not ret) suits a switch between different call sites: a ret
 * there always misses the return-stack predictor, which guesses that a ret
 * goes back to our own caller. iou__ctx_swap_peer is for switches between
 * contexts that are often suspended at the same call site (task to task:
 * every task awaiting an operation parks at the same call). When the target
 * resumes at our own return address it ends with ret: predicted, and it
 * keeps the return stack in step, so the target's own returns after the
 * switch are predicted too (after a jump each of them missed: two
 * mispredictions per NOP, ~10 ns of a NOP round trip in bench_nop).
 * rax, rcx and rdx are caller-saved: free here.
 */
#if defined(__CET__)
#define ENDBR endbr64
/* The resume address follows a call, not an endbr64: exempt the jump from IBT. */
#define JMP_RESUME notrack jmpq *%rcx
#else
#define ENDBR
#define JMP_RESUME jmpq *%rcx
#endif

/* Saves the running context's frame (the call's return address is already
 * on the stack) and stores its stack pointer in from->sp (rdi), then loads
 * to->sp (rsi) and restores its frame. Ends with rcx = the target's resume
 * address, rsp still at the target's frame (64 bytes to pop). */
.macro SWITCH_FRAMES
    movq    (%rsi), %rax        /* target first: not behind the store to from->sp */
    leaq    -56(%rsp), %rsp
    .cfi_adjust_cfa_offset 56
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %r12, 8(%rsp)
    movq    %r13, 16(%rsp)
    movq    %r14, 24(%rsp)
    movq    %r15, 32(%rsp)
    movq    %rbx, 40(%rsp)
    movq    %rbp, 48(%rsp)
    movq    %rsp, (%rdi)
    movq    %rax, %rsp
    movq    56(%rsp), %rcx
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    movq    8(%rsp), %r12
    movq    16(%rsp), %r13
    movq    24(%rsp), %r14
    movq    32(%rsp), %r15
    movq    40(%rsp), %rbx
    movq    48(%rsp), %rbp
.endm

    .text
    .globl  iou__ctx_swap
    .hidden iou__ctx_swap
    .type   iou__ctx_swap, @function
    .p2align 4
/* void iou__ctx_swap(iou__ctx *from (rdi), iou__ctx *to (rsi)) */
iou__ctx_swap:
    .cfi_startproc
    ENDBR
    SWITCH_FRAMES
    leaq    64(%rsp), %rsp
    .cfi_adjust_cfa_offset -64
    JMP_RESUME
    .cfi_endproc
    .size   iou__ctx_swap, .-iou__ctx_swap

    .globl  iou__ctx_swap_peer
    .hidden iou__ctx_swap_peer
    .type   iou__ctx_swap_peer, @function
    .p2align 4
/* void iou__ctx_swap_peer(iou__ctx *from (rdi), iou__ctx *to (rsi)) */
iou__ctx_swap_peer:
    .cfi_startproc
    ENDBR
    movq    (%rsp), %rdx        /* our return address: where a ret is predicted to go */
    SWITCH_FRAMES
    cmpq    %rcx, %rdx
    jne     1f
    leaq    56(%rsp), %rsp      /* the resume address is left for the ret */
    .cfi_remember_state
    .cfi_adjust_cfa_offset -56
    ret                         /* the same call site: predicted */
1:
    .cfi_restore_state
    leaq    64(%rsp), %rsp
    .cfi_adjust_cfa_offset -64
    JMP_RESUME
    .cfi_endproc
    .size   iou__ctx_swap_peer, .-iou__ctx_swap_peer

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
