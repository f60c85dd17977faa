/*
 * The timer heap (engine/timer_heap.h): timers pop in (deadline, arming
 * order) order, removal from anywhere keeps that order, equal deadlines are
 * FIFO, and a million timers go in and out.
 */
#include "check.h"
#include "timer_heap.h"

#include <stdint.h>
#include <stdlib.h>

/* Deterministic xorshift: the same sequence on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

typedef struct tt {
    iou__timer t;
    size_t order; /* arming order, for the tie-break check */
    bool removed;
} tt;

static void no_fire(iou__timer *t)
{
    (void)t;
}

static tt *timers_new(size_t n)
{
    tt *v = calloc(n, sizeof(*v));
    CHECK(v != NULL);
    for (size_t i = 0; i < n; i++) {
        v[i].t.slot = IOU__TIMER_IDLE;
        v[i].t.fire = no_fire;
    }
    return v;
}

static void arm(iou__timer_heap *h, tt *x, uint64_t when, size_t order)
{
    CHECK_EQ(iou__heap_insert(h, &x->t, when), 0);
    CHECK(iou__timer_armed(&x->t));
    CHECK_EQ(x->t.when, when);
    x->order = order;
}

/* Every slot knows its timer and vice versa, and no child precedes its parent. */
static void check_heap(const iou__timer_heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        const iou__heap_slot *s = &h->slots[i];
        CHECK_EQ(s->timer->slot, i);
        CHECK_EQ(s->when, s->timer->when);
        if (i == 0)
            continue;
        const iou__heap_slot *p = &h->slots[(i - 1) / 4];
        CHECK(p->when < s->when || (p->when == s->when && p->timer->seq < s->timer->seq));
    }
}

/* Pops everything, checking (when, order) never goes backwards. Returns the count. */
static size_t drain_in_order(iou__timer_heap *h)
{
    size_t n = 0;
    const tt *prev = NULL;
    iou__timer *t;
    while ((t = iou__heap_pop_due(h, UINT64_MAX)) != NULL) {
        const tt *x = (const tt *)t;
        CHECK(!x->removed);
        CHECK(!iou__timer_armed(t));
        if (prev) {
            CHECK(prev->t.when <= x->t.when);
            if (prev->t.when == x->t.when)
                CHECK(prev->order < x->order);
        }
        prev = x;
        n++;
    }
    CHECK_EQ(h->len, 0);
    CHECK_EQ(iou__heap_next(h), IOU__NEVER);
    return n;
}

/* Random deadlines from a small range, so ties are common. */
static void test_random_order(void)
{
    enum { N = 20000 };
    iou__timer_heap h;
    iou__heap_init(&h);
    tt *v = timers_new(N);
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < N; i++) {
        uint64_t when = 1000 + rnd() % 5000;
        min = when < min ? when : min;
        arm(&h, &v[i], when, i);
    }
    check_heap(&h);
    CHECK_EQ(iou__heap_next(&h), min);
    CHECK_EQ(drain_in_order(&h), N);
    free(v);
    iou__heap_fini(&h);
}

/* pop_due only hands out timers whose deadline has come. */
static void test_pop_due_respects_now(void)
{
    iou__timer_heap h;
    iou__heap_init(&h);
    tt *v = timers_new(3);
    arm(&h, &v[0], 30, 0);
    arm(&h, &v[1], 10, 1);
    arm(&h, &v[2], 20, 2);
    CHECK(iou__heap_pop_due(&h, 9) == NULL);
    CHECK(iou__heap_pop_due(&h, 15) == &v[1].t);
    CHECK(iou__heap_pop_due(&h, 15) == NULL);
    CHECK_EQ(iou__heap_next(&h), 20);
    CHECK(iou__heap_pop_due(&h, 20) == &v[2].t); /* due exactly at its deadline */
    CHECK(iou__heap_pop_due(&h, UINT64_MAX) == &v[0].t);
    CHECK(iou__heap_pop_due(&h, UINT64_MAX) == NULL);
    free(v);
    iou__heap_fini(&h);
}

/* Removing from the middle (and the root and the last slot) keeps the order,
 * and removing an idle timer is harmless. */
static void test_remove_middle(void)
{
    enum { N = 5000 };
    iou__timer_heap h;
    iou__heap_init(&h);
    tt *v = timers_new(N);
    for (size_t i = 0; i < N; i++)
        arm(&h, &v[i], rnd() % 1000, i);
    size_t removed = 0;
    for (size_t k = 0; k < N / 2; k++) {
        /* Pick by heap position: middle slots are the interesting case. */
        size_t pos = k % 3 == 0 ? h.len / 2 : k % 3 == 1 ? 0 : h.len - 1;
        tt *x = (tt *)h.slots[pos].timer;
        iou__heap_remove(&h, &x->t);
        CHECK(!iou__timer_armed(&x->t));
        x->removed = true;
        removed++;
        iou__heap_remove(&h, &x->t); /* idle now: no effect */
        CHECK_EQ(h.len, N - removed);
        if (k % 97 == 0)
            check_heap(&h);
    }
    check_heap(&h);
    CHECK_EQ(drain_in_order(&h), N - removed);
    free(v);
    iou__heap_fini(&h);
}

/* Equal deadlines fire in arming order, and re-arming goes to the back. */
static void test_fifo_ties(void)
{
    enum { N = 1000 };
    iou__timer_heap h;
    iou__heap_init(&h);
    tt *v = timers_new(N);
    for (size_t i = 0; i < N; i++)
        arm(&h, &v[i], 42, i);
    for (size_t i = 0; i < N / 2; i++) {
        iou__timer *t = iou__heap_pop_due(&h, 42);
        CHECK(t == &v[i].t);
        arm(&h, &v[i], 42, N + i); /* re-armed: after every timer still waiting */
    }
    for (size_t i = N / 2; i < N; i++)
        CHECK(iou__heap_pop_due(&h, 42) == &v[i].t);
    for (size_t i = 0; i < N / 2; i++)
        CHECK(iou__heap_pop_due(&h, 42) == &v[i].t);
    CHECK(iou__heap_pop_due(&h, 42) == NULL);
    free(v);
    iou__heap_fini(&h);
}

/* A million timers: arm all, cancel a random half, drain the rest in order. */
static void test_million(void)
{
    enum { N = 1000000 };
    iou__timer_heap h;
    iou__heap_init(&h);
    tt *v = timers_new(N);
    for (size_t i = 0; i < N; i++)
        arm(&h, &v[i], rnd() % (N * 4), i);
    CHECK_EQ(h.len, N);
    size_t removed = 0;
    for (size_t i = 0; i < N; i++) {
        tt *x = &v[rnd() % N];
        if (x->removed)
            continue;
        iou__heap_remove(&h, &x->t);
        x->removed = true;
        removed++;
    }
    CHECK(removed > N / 3);
    CHECK_EQ(h.len, N - removed);
    check_heap(&h);
    CHECK_EQ(drain_in_order(&h), N - removed);
    for (size_t i = 0; i < N; i++)
        CHECK(!iou__timer_armed(&v[i].t));
    free(v);
    iou__heap_fini(&h);
}

/* fini disarms what is still armed. */
static void test_fini_disarms(void)
{
    iou__timer_heap h;
    iou__heap_init(&h);
    tt *v = timers_new(10);
    for (size_t i = 0; i < 10; i++)
        arm(&h, &v[i], i, i);
    iou__heap_fini(&h);
    for (size_t i = 0; i < 10; i++)
        CHECK(!iou__timer_armed(&v[i].t));
    CHECK_EQ(iou__heap_next(&h), IOU__NEVER);
    free(v);
}

int main(void)
{
    test_random_order();
    test_pop_due_respects_now();
    test_remove_middle();
    test_fifo_ties();
    test_million();
    test_fini_disarms();
    return 0;
}
