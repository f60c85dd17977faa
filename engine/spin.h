/*
 * Bounded spinning between threads (the pool's workers, and a loop waiting
 * for its pool jobs): watching a word for a few microseconds is far cheaper
 * than a sleep and the cross-CPU wake-up that ends it, when the event is
 * about to happen. Every spin is bounded in time; the caller then sleeps
 * properly.
 */
#ifndef IOU_SPIN_H
#define IOU_SPIN_H

#include "loop.h" /* iou__clock */

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define IOU__SPIN_LOOKS 8 /* between yields: 0.2 us of pauses on recent x86 */

static inline void iou__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Spins until ready(arg) (true) or ns passed (false). Between rounds of
 * looks it gives the CPU away: the thread it waits for may be runnable on
 * this very CPU (two CPUs, other load), and would otherwise wait for the
 * spin to end. With nobody else runnable, sched_yield returns at once. */
static inline bool iou__spin_until(bool (*ready)(const void *arg), const void *arg, uint64_t ns)
{
    uint64_t start = iou__clock();
    for (;;) {
        for (int i = 0; i < IOU__SPIN_LOOKS; i++) {
            if (ready(arg))
                return true;
            iou__cpu_relax();
        }
        if (iou__clock() - start >= ns)
            return ready(arg);
        sched_yield();
    }
}

#endif
