/*
 * The raw context switch (engine/ctx.h): what a switch must preserve, that a
 * new context starts on an ABI-aligned stack, and a million switches in a row.
 *
 * The switches here are annotated for ASan/TSan by hand (as fiber.h does for
 * the engine) so the same test runs in sanitizer builds.
 */
#include "check.h"
#include "ctx.h"
#include "sanitizer.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

enum { STACK_BYTES = 64 * 1024 };

typedef struct coro {
    iou__ctx ctx;
    const void *lo; /* stack bottom and size: sanitizer bookkeeping */
    size_t size;
    void *fake_stack; /* ASan fake-stack slot while switched out */
    void *tsan_fiber;
} coro;

/* The thread's own context; its stack bounds are learned from the first
 * switch into a coroutine. */
static coro main_coro;

static char *stack_new(void)
{
    char *p = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

static void stack_free(char *p)
{
#if defined(IOU_ASAN)
    /* Abandoned frames leave redzones behind; a later mapping must not inherit them. */
    __asan_unpoison_memory_region(p, STACK_BYTES);
#endif
    munmap(p, STACK_BYTES);
}

/* Makes c run entry(arg) on [lo, lo + size). */
static void coro_make(coro *c, char *lo, size_t size, iou__ctx_entry entry, void *arg)
{
#if defined(IOU_ASAN)
    /* The stack may be reused: drop what earlier, abandoned frames poisoned. */
    __asan_unpoison_memory_region(lo, size);
#endif
    memset(c, 0, sizeof(*c));
    c->lo = lo;
    c->size = size;
#if defined(IOU_TSAN)
    c->tsan_fiber = __tsan_create_fiber(0);
    if (main_coro.tsan_fiber == NULL)
        main_coro.tsan_fiber = __tsan_get_current_fiber();
#endif
    iou__ctx_make(&c->ctx, lo, size, entry, arg);
}

/* Sanitizer half of a switch, before the stack pointer changes. */
static void annotate_leave(coro *from, const coro *to)
{
#if defined(IOU_ASAN)
    __sanitizer_start_switch_fiber(&from->fake_stack, to->lo, to->size);
#else
    (void)from;
#endif
#if defined(IOU_TSAN)
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
    (void)to;
#endif
}

/* Sanitizer half of a switch, once back on from's stack. */
static void annotate_arrive(coro *from)
{
#if defined(IOU_ASAN)
    __sanitizer_finish_switch_fiber(from->fake_stack, NULL, NULL);
#else
    (void)from;
#endif
}

/* First thing every coroutine entry does: completes the switch from main. */
static void coro_started(void)
{
#if defined(IOU_ASAN)
    __sanitizer_finish_switch_fiber(NULL, &main_coro.lo, &main_coro.size);
#endif
}

static void switch_to(coro *from, coro *to)
{
    annotate_leave(from, to);
    iou__ctx_swap(&from->ctx, &to->ctx);
    annotate_arrive(from);
}

/* ---------------------------------------------------------------------- */
/* (a) callee-saved registers                                             */
/* ---------------------------------------------------------------------- */

/*
 * probe_swap(from, to, in, out) is written in assembly so the compiler cannot
 * keep anything in the registers under test: it loads in[] into every
 * callee-saved register, calls iou__ctx_swap(from, to) and, once something
 * switches back, stores those registers into out[]. The probe itself saves
 * and restores the caller's registers, as the ABI requires. probe_swap_peer
 * does the same with iou__ctx_swap_peer: both sides switch from its one call
 * site, so after the first switch (a jump into the new context) every switch
 * takes the peer's ret path.
 */
#if defined(__x86_64__)
#define PROBE_REGS 6 /* rbx rbp r12 r13 r14 r15 */
#if defined(__CET__)
#define PROBE_ENDBR "endbr64\n"
#else
#define PROBE_ENDBR ""
#endif
#define PROBE(name, swap) \
        ".text\n" \
        ".p2align 4\n" \
        ".type " name ", @function\n" \
        name ":\n" PROBE_ENDBR \
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n" \
        "  pushq %rcx\n" /* out; seven pushes also realign rsp to 16 for the call */ \
        "  movq 0(%rdx), %rbx\n  movq 8(%rdx), %rbp\n  movq 16(%rdx), %r12\n" \
        "  movq 24(%rdx), %r13\n  movq 32(%rdx), %r14\n  movq 40(%rdx), %r15\n" \
        "  call " swap "\n" \
        "  popq %rcx\n" \
        "  movq %rbx, 0(%rcx)\n  movq %rbp, 8(%rcx)\n  movq %r12, 16(%rcx)\n" \
        "  movq %r13, 24(%rcx)\n  movq %r14, 32(%rcx)\n  movq %r15, 40(%rcx)\n" \
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n" \
        "  ret\n" \
        ".size " name ", .-" name "\n"
__asm__(PROBE("probe_swap", "iou__ctx_swap") PROBE("probe_swap_peer", "iou__ctx_swap_peer"));
#elif defined(__aarch64__)
#define PROBE_REGS 19 /* x19-x29, then d8-d15 (as raw bits) */
#define PROBE(name, swap) \
        ".text\n" \
        ".p2align 4\n" \
        ".type " name ", %function\n" \
        name ":\n" \
        "  stp x29, x30, [sp, #-176]!\n" \
        "  stp x19, x20, [sp, #16]\n  stp x21, x22, [sp, #32]\n  stp x23, x24, [sp, #48]\n" \
        "  stp x25, x26, [sp, #64]\n  stp x27, x28, [sp, #80]\n" \
        "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n" \
        "  stp d12, d13, [sp, #128]\n  stp d14, d15, [sp, #144]\n" \
        "  str x3, [sp, #160]\n" \
        "  ldp x19, x20, [x2, #0]\n  ldp x21, x22, [x2, #16]\n  ldp x23, x24, [x2, #32]\n" \
        "  ldp x25, x26, [x2, #48]\n  ldp x27, x28, [x2, #64]\n  ldr x29, [x2, #80]\n" \
        "  ldp d8, d9, [x2, #88]\n  ldp d10, d11, [x2, #104]\n" \
        "  ldp d12, d13, [x2, #120]\n  ldp d14, d15, [x2, #136]\n" \
        "  bl " swap "\n" \
        "  ldr x3, [sp, #160]\n" \
        "  stp x19, x20, [x3, #0]\n  stp x21, x22, [x3, #16]\n  stp x23, x24, [x3, #32]\n" \
        "  stp x25, x26, [x3, #48]\n  stp x27, x28, [x3, #64]\n  str x29, [x3, #80]\n" \
        "  stp d8, d9, [x3, #88]\n  stp d10, d11, [x3, #104]\n" \
        "  stp d12, d13, [x3, #120]\n  stp d14, d15, [x3, #136]\n" \
        "  ldp x19, x20, [sp, #16]\n  ldp x21, x22, [sp, #32]\n  ldp x23, x24, [sp, #48]\n" \
        "  ldp x25, x26, [sp, #64]\n  ldp x27, x28, [sp, #80]\n" \
        "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n" \
        "  ldp d12, d13, [sp, #128]\n  ldp d14, d15, [sp, #144]\n" \
        "  ldp x29, x30, [sp], #176\n" \
        "  ret\n" \
        ".size " name ", .-" name "\n"
__asm__(PROBE("probe_swap", "iou__ctx_swap") PROBE("probe_swap_peer", "iou__ctx_swap_peer"));
#endif

#if defined(PROBE_REGS)
typedef void probe_fn(iou__ctx *from, iou__ctx *to, const uint64_t *in, uint64_t *out);
probe_fn probe_swap, probe_swap_peer;
static probe_fn *main_probe, *coro_probe; /* each side's switch under test */

enum { PROBE_ROUNDS = 8 };

/* A distinct value for every (side, round, register). */
static uint64_t pattern(unsigned side, unsigned round, unsigned reg)
{
    uint64_t x = ((uint64_t)side << 56) ^ ((uint64_t)round << 40) ^ ((uint64_t)reg << 24);
    return x ^ 0x5a5aa5a5c3c33c3cull;
}

static void fill(uint64_t *v, unsigned side, unsigned round)
{
    for (unsigned r = 0; r < PROBE_REGS; r++)
        v[r] = pattern(side, round, r);
}

static void check_regs(const uint64_t *got, unsigned side, unsigned round)
{
    for (unsigned r = 0; r < PROBE_REGS; r++) {
        if (got[r] != pattern(side, round, r)) {
            fprintf(stderr, "side %u round %u register #%u: got %#llx, want %#llx\n", side,
                    round, r, (unsigned long long)got[r],
                    (unsigned long long)pattern(side, round, r));
            CHECK(!"callee-saved register changed across a switch");
        }
    }
}

static void probe_switch(probe_fn *probe, coro *from, coro *to, const uint64_t *in,
                         uint64_t *out)
{
    annotate_leave(from, to);
    probe(&from->ctx, &to->ctx, in, out);
    annotate_arrive(from);
}

static coro reg_coro;
static unsigned reg_coro_rounds; /* rounds the coroutine verified */

/* The other side: loads its own patterns, switches back, and checks that
 * main's patterns did not leak into its registers. */
static void reg_entry(void *arg)
{
    (void)arg;
    coro_started();
    uint64_t in[PROBE_REGS], out[PROBE_REGS];
    for (unsigned round = 0;; round++) {
        fill(in, 2, round);
        probe_switch(coro_probe, &reg_coro, &main_coro, in, out);
        check_regs(out, 2, round);
        reg_coro_rounds = round + 1;
    }
}

static void callee_saved_with(probe_fn *main_side, probe_fn *coro_side)
{
    main_probe = main_side;
    coro_probe = coro_side;
    reg_coro_rounds = 0;
    char *stack = stack_new();
    coro_make(&reg_coro, stack, STACK_BYTES, reg_entry, NULL);
    uint64_t in[PROBE_REGS], out[PROBE_REGS];
    for (unsigned round = 0; round < PROBE_ROUNDS; round++) {
        fill(in, 1, round);
        probe_switch(main_probe, &main_coro, &reg_coro, in, out);
        check_regs(out, 1, round);
        CHECK_EQ(reg_coro_rounds, round);
    }
    stack_free(stack);
}

/* The plain switch; the peer switch from one call site (its ret path) and
 * between two (the target resumes elsewhere: its jump path). */
static void test_callee_saved(void)
{
    callee_saved_with(probe_swap, probe_swap);
    callee_saved_with(probe_swap_peer, probe_swap_peer);
    callee_saved_with(probe_swap_peer, probe_swap);
    callee_saved_with(probe_swap, probe_swap_peer);
}
#else
static void test_callee_saved(void)
{
    fprintf(stderr, "note: no register probe for this architecture\n");
}
#endif

/* ---------------------------------------------------------------------- */
/* (b) floating-point state                                               */
/* ---------------------------------------------------------------------- */

/* Divisions whose last bit depends on the rounding mode: SSE (MXCSR) for
 * double, x87 (control word) for long double on x86-64. */
typedef struct fp_sample {
    double d;
    long double ld;
} fp_sample;

static volatile double one = 1.0, three = 3.0;
static volatile long double one_l = 1.0L, three_l = 3.0L;

static __attribute__((noinline)) fp_sample divide(void)
{
    return (fp_sample){one / three, one_l / three_l};
}

static bool same_sample(fp_sample a, fp_sample b)
{
    return a.d == b.d && a.ld == b.ld;
}

enum { FP_ROUNDS = 50 };

#if defined(__x86_64__)
/* Rounding control: bits 13-14 of MXCSR (SSE), bits 10-11 of the x87
 * control word; both encode 0 nearest, 1 down, 2 up, 3 toward zero. Read
 * and written directly (no libm needed) so each unit is checked on its own. */
enum { RC_NEAREST, RC_DOWN, RC_UP, RC_ZERO };
enum { MXCSR_FLAGS = 0x3f, MXCSR_FTZ = 0x8000 };

static unsigned get_mxcsr(void)
{
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v & ~(unsigned)MXCSR_FLAGS; /* ignore the sticky exception flags */
}

static unsigned get_x87cw(void)
{
    unsigned short v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}

/* Sets the rounding mode of both units; ftz also sets MXCSR's flush-to-zero
 * bit, so a context's whole MXCSR differs from the other's. */
static void set_rounding(unsigned rc, bool ftz)
{
    unsigned m = (get_mxcsr() & ~0x6000u & ~(unsigned)MXCSR_FTZ) | rc << 13 | (ftz ? MXCSR_FTZ : 0);
    unsigned short cw = (unsigned short)((get_x87cw() & ~0x0c00u) | rc << 10);
    __asm__ volatile("ldmxcsr %0" : : "m"(m) : "memory");
    __asm__ volatile("fldcw %0" : : "m"(cw) : "memory");
}

static bool rounding_is(unsigned rc)
{
    return (get_mxcsr() >> 13 & 3) == rc && (get_x87cw() >> 10 & 3) == rc;
}

/* Main rounds upward with flush-to-zero, the coroutine toward zero; each
 * must keep its own state (the switch saves MXCSR and the x87 control word
 * per context). */
static fp_sample ref_up, ref_zero, ref_nearest;
static coro fp_coro;
static int fp_coro_failures = -1;
static unsigned creator_mxcsr, creator_cw; /* the creator's environment at make time */

static void fp_entry(void *arg)
{
    (void)arg;
    coro_started();
    fp_coro_failures = 0;
    /* A new context inherits its creator's floating-point environment as it
     * was at creation (as a new thread does), not whatever the creator set
     * later: here round-toward-zero, though main has since switched to up. */
    fp_coro_failures += (get_mxcsr() != creator_mxcsr) + (get_x87cw() != creator_cw);
    fp_coro_failures += !same_sample(divide(), ref_zero);
    set_rounding(RC_ZERO, false);
    for (;;) {
        switch_to(&fp_coro, &main_coro);
        fp_coro_failures += !rounding_is(RC_ZERO) + !same_sample(divide(), ref_zero);
        fp_coro_failures += (get_mxcsr() & MXCSR_FTZ) != 0;
        set_rounding(RC_ZERO, false);
    }
}

static fp_sample sample_in(unsigned rc)
{
    set_rounding(rc, false);
    CHECK(rounding_is(rc));
    return divide();
}

static void test_rounding_mode(void)
{
    ref_nearest = sample_in(RC_NEAREST);
    ref_up = sample_in(RC_UP);
    ref_zero = sample_in(RC_ZERO);
    /* Otherwise the test could not tell the modes apart. */
    CHECK(ref_up.d != ref_zero.d && ref_up.ld != ref_zero.ld);
    CHECK(!same_sample(ref_up, ref_nearest) && !same_sample(ref_zero, ref_nearest));

    char *stack = stack_new();
    creator_mxcsr = get_mxcsr();
    creator_cw = get_x87cw();
    coro_make(&fp_coro, stack, STACK_BYTES, fp_entry, NULL);
    set_rounding(RC_UP, true);
    unsigned main_mxcsr = get_mxcsr(), main_cw = get_x87cw();
    for (int i = 0; i < FP_ROUNDS; i++) {
        switch_to(&main_coro, &fp_coro);
        CHECK_EQ(get_mxcsr(), main_mxcsr);
        CHECK_EQ(get_x87cw(), main_cw);
        CHECK(same_sample(divide(), ref_up));
    }
    CHECK_EQ(fp_coro_failures, 0);
    set_rounding(RC_NEAREST, false);
    stack_free(stack);
}
#else
static void test_rounding_mode(void)
{
    /* The aarch64 switch keeps d8-d15 but not FPCR (the design says so). */
    fprintf(stderr, "note: rounding-mode test is x86-64 only\n");
}
#endif

/* Many doubles live across switches: whatever registers or spill slots the
 * compiler picks for them must come back intact. */
enum { LIVE = 24 };
static coro live_coro;
static volatile double live_seed = 1.25;
static int live_coro_failures = -1;

static void live_entry(void *arg)
{
    (void)arg;
    coro_started();
    live_coro_failures = 0;
    for (int round = 0;; round++) {
        double v[LIVE];
        for (int i = 0; i < LIVE; i++)
            v[i] = live_seed * (i + 3) - round;
        switch_to(&live_coro, &main_coro);
        for (int i = 0; i < LIVE; i++)
            live_coro_failures += v[i] != 1.25 * (i + 3) - round;
    }
}

static void test_live_doubles(void)
{
    char *stack = stack_new();
    coro_make(&live_coro, stack, STACK_BYTES, live_entry, NULL);
    for (int round = 0; round < FP_ROUNDS; round++) {
        double a = live_seed * 7, b = live_seed / 3, c = live_seed + 0.5, d = -live_seed;
        double e = live_seed * live_seed, f = live_seed * 1e300, g = live_seed * 1e-300;
        double h = live_seed - 1;
        switch_to(&main_coro, &live_coro);
        CHECK(a == 8.75 && b == 1.25 / 3 && c == 1.75 && d == -1.25);
        CHECK(e == 1.5625 && f == 1.25e300 && g == 1.25 * 1e-300 && h == 0.25);
    }
    CHECK_EQ(live_coro_failures, 0);
    stack_free(stack);
}

/* ---------------------------------------------------------------------- */
/* (c) a million switches                                                 */
/* ---------------------------------------------------------------------- */

enum { PINGPONG = 1000000 };
static coro pong_coro;
static long pong_counter;
static long pong_misorder = -1;

/* Each side adds one per turn and checks the other side took exactly one
 * turn in between: the counter proves strict alternation. */
static void pong_entry(void *arg)
{
    (void)arg;
    coro_started();
    pong_misorder = 0;
    for (;;) {
        pong_misorder += (pong_counter & 1) == 0;
        pong_counter++;
        switch_to(&pong_coro, &main_coro);
    }
}

static void test_pingpong(void)
{
    char *stack = stack_new();
    coro_make(&pong_coro, stack, STACK_BYTES, pong_entry, NULL);
    for (long i = 0; i < PINGPONG / 2; i++) {
        CHECK((pong_counter & 1) == 0);
        pong_counter++;
        switch_to(&main_coro, &pong_coro);
    }
    CHECK_EQ(pong_counter, PINGPONG);
    CHECK_EQ(pong_misorder, 0);
    stack_free(stack);
}

/* ---------------------------------------------------------------------- */
/* (d) a new context's stack is aligned as the ABI requires               */
/* ---------------------------------------------------------------------- */

/* The stack pointer at the call site of sp_at_call(): the ABI wants it
 * 16-byte aligned there. Read in assembly so the compiler cannot assume it. */
#if defined(__x86_64__)
__asm__(".text\n"
        ".type sp_at_call, @function\n"
        "sp_at_call:\n" PROBE_ENDBR
        "  leaq 8(%rsp), %rax\n"
        "  ret\n"
        ".size sp_at_call, .-sp_at_call\n");
#define HAVE_SP_AT_CALL 1
#elif defined(__aarch64__)
__asm__(".text\n"
        ".type sp_at_call, %function\n"
        "sp_at_call:\n"
        "  mov x0, sp\n"
        "  ret\n"
        ".size sp_at_call, .-sp_at_call\n");
#define HAVE_SP_AT_CALL 1
#endif

#if defined(HAVE_SP_AT_CALL)
uintptr_t sp_at_call(void);
#endif

typedef struct align_probe {
    coro c;
    uintptr_t call_sp;
    uintptr_t local16;
    void *arg_seen;
} align_probe;

static __attribute__((noinline)) uintptr_t aligned_local_address(void)
{
    _Alignas(16) volatile char buf[16];
    buf[0] = 1;
    void *p = (void *)buf;
    /* Hide the pointer's provenance: the compiler would fold p % 16 to 0. */
    __asm__ volatile("" : "+r"(p));
    return (uintptr_t)p;
}

static void align_entry(void *arg)
{
    coro_started();
    align_probe *a = arg;
    a->arg_seen = arg;
#if defined(HAVE_SP_AT_CALL)
    a->call_sp = sp_at_call();
#endif
    a->local16 = aligned_local_address();
    switch_to(&a->c, &main_coro);
    CHECK(!"an abandoned context was resumed");
}

/* Trims the top of the stack by 0..15 bytes: make must align it down. */
static void test_alignment(void)
{
    char *stack = stack_new();
    for (size_t trim = 0; trim < 16; trim++) {
        align_probe a = {0};
        coro_make(&a.c, stack, STACK_BYTES - trim, align_entry, &a);
        switch_to(&main_coro, &a.c);
        CHECK(a.arg_seen == &a);
        CHECK_EQ(a.local16 % 16, 0);
        CHECK(a.local16 > (uintptr_t)stack && a.local16 < (uintptr_t)stack + STACK_BYTES);
#if defined(HAVE_SP_AT_CALL)
        CHECK_EQ(a.call_sp % 16, 0);
        CHECK(a.call_sp > (uintptr_t)stack && a.call_sp <= (uintptr_t)stack + STACK_BYTES - trim);
#endif
    }
    stack_free(stack);
}

int main(void)
{
    test_callee_saved();
    test_rounding_mode();
    test_live_doubles();
    test_pingpong();
    test_alignment();
    return 0;
}
