/*
 * AArch64 (AAPCS64) context switch.
 *
 * Saved frame (160 bytes) at the saved stack pointer:
 *   +0   x19 x20   +16 x21 x22   +32 x23 x24   +48 x25 x26   +64 x27 x28
 *   +80  x29 (fp)  x30 (lr: where the switch returns)
 *   +96  d8 d9     +112 d10 d11  +128 d12 d13  +144 d14 d15
 */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C hint 34
#else
#define BTI_C
#endif

    .text
    .globl  iou__ctx_swap
    .hidden iou__ctx_swap
    .type   iou__ctx_swap, %function
    .p2align 4
/* void iou__ctx_swap(iou__ctx *from (x0), iou__ctx *to (x1)) */
iou__ctx_swap:
    .cfi_startproc
    BTI_C
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8,  d9,  [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
    ret
    .cfi_endproc
    .size   iou__ctx_swap, .-iou__ctx_swap

/* The switch ends with ret to x30, which the return-stack predictor expects
 * whenever the target resumes where we were called from: the x86-64 peer
 * variant's trick is this switch's normal case. */
    .globl  iou__ctx_swap_peer
    .hidden iou__ctx_swap_peer
    .type   iou__ctx_swap_peer, %function
    .set    iou__ctx_swap_peer, iou__ctx_swap

/* First instructions of a new context: entry in x19, its argument in x20. */
    .globl  iou__ctx_trampoline
    .hidden iou__ctx_trampoline
    .type   iou__ctx_trampoline, %function
    .p2align 4
iou__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    BTI_C
    mov     x0, x20
    blr     x19
    brk     #0                  /* entry must never return */
    .cfi_endproc
    .size   iou__ctx_trampoline, .-iou__ctx_trampoline

    .section .note.GNU-stack,"",%progbits

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
    .section .note.gnu.property,"a"
    .p2align 3
    .long   4
    .long   16
    .long   5                   /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000000          /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long   4
    .long   1                   /* BTI */
    .p2align 3
#endif
