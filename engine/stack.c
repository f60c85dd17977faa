#include "stack.h"
#include "sanitizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

enum {
    MIN_STACK = 16 * 1024,
    SLAB_BYTES = 4 * 1024 * 1024, /* one mapping holds this many bytes of stacks */
    HOT_MAX = 64,                 /* per class: more than this are madvised cold */
};

static const uint64_t CANARY = 0x696f752d73746b21ull; /* "iou-stk!" */

struct iou__stack_slab {
    struct iou__stack_slab *next;
    char *base;
    size_t bytes;
    size_t count;
    iou__stack stacks[];
};

static long mapping_limit(void)
{
    long limit = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &limit) != 1)
            limit = 65530;
        fclose(f);
    }
    return limit;
}

static enum iou__guard forced_guard(void)
{
    const char *v = getenv("IOU_TEST_STACK_GUARD");
    if (v && strcmp(v, "protect") == 0)
        return IOU__GUARD_PROTECT;
    if (v && strcmp(v, "canary") == 0)
        return IOU__GUARD_CANARY;
    return IOU__GUARD_REGION;
}

void iou__stack_pool_init(iou__stack_pool *p)
{
    memset(p, 0, sizeof(*p));
    p->page = (size_t)sysconf(_SC_PAGESIZE);
    /* Leave three quarters of the mapping budget to the rest of the process. */
    p->protect_budget = mapping_limit() / 4;
    p->forced = forced_guard();
}

void iou__stack_pool_fini(iou__stack_pool *p)
{
    struct iou__stack_slab *s = p->slabs;
    while (s) {
        struct iou__stack_slab *next = s->next;
#if defined(IOU_VALGRIND)
        for (size_t i = 0; i < s->count; i++)
            VALGRIND_STACK_DEREGISTER(s->stacks[i].valgrind_id);
#endif
#if defined(IOU_ASAN)
        /* An abandoned task's frames left redzones here; a later mapping at
         * the same address must not inherit them. */
        __asan_unpoison_memory_region(s->base, s->bytes);
#endif
        munmap(s->base, s->bytes);
        free(s);
        s = next;
    }
    p->slabs = NULL;
}

static size_t class_size(unsigned c)
{
    return (size_t)MIN_STACK << c;
}

static int class_of(size_t size)
{
    for (unsigned c = 0; c < IOU__STACK_CLASSES; c++)
        if (size <= class_size(c))
            return (int)c;
    return -1;
}

static enum iou__guard install_guard(iou__stack_pool *p, char *guard)
{
    if (p->forced == IOU__GUARD_REGION && madvise(guard, p->page, MADV_GUARD_INSTALL) == 0)
        return IOU__GUARD_REGION;
    if (p->forced != IOU__GUARD_CANARY && p->protect_budget > 0 &&
        mprotect(guard, p->page, PROT_NONE) == 0) {
        p->protect_budget -= 2; /* the guard and the mapping it splits off */
        return IOU__GUARD_PROTECT;
    }
    return IOU__GUARD_CANARY;
}

static struct iou__stack_slab *slab_new(iou__stack_pool *p, unsigned c)
{
    size_t slot = class_size(c) + p->page;
    size_t count = SLAB_BYTES / slot ? SLAB_BYTES / slot : 1;
    struct iou__stack_slab *s = malloc(sizeof(*s) + count * sizeof(iou__stack));
    if (s == NULL)
        return NULL;
    s->bytes = slot * count;
    s->count = count;
    s->base = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (s->base == MAP_FAILED) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        iou__stack *st = &s->stacks[i];
        char *guard = s->base + i * slot;
        st->lo = guard + p->page;
        st->size = class_size(c);
        st->size_class = (uint8_t)c;
        st->guard = (uint8_t)install_guard(p, guard);
#if defined(IOU_VALGRIND)
        st->valgrind_id = VALGRIND_STACK_REGISTER(st->lo, st->lo + st->size);
#endif
        st->next = p->classes[c].cold; /* untouched pages: as cold as it gets */
        p->classes[c].cold = st;
    }
    p->pooled += count;
    s->next = p->slabs;
    p->slabs = s;
    return s;
}

iou__stack *iou__stack_acquire(iou__stack_pool *p, size_t size)
{
    int c = class_of(size ? size : MIN_STACK);
    if (c < 0)
        return NULL;
    iou__stack_class *k = &p->classes[c];
    iou__stack *s = k->hot;
    if (s) {
        k->hot = s->next;
        k->hot_count--;
    } else {
        if (k->cold == NULL && slab_new(p, (unsigned)c) == NULL)
            return NULL;
        s = k->cold;
        k->cold = s->next;
    }
    p->pooled--;
    p->in_use++;
    if (s->guard == IOU__GUARD_CANARY)
        memcpy(s->lo, &CANARY, sizeof(CANARY));
    return s;
}

void iou__stack_release(iou__stack_pool *p, iou__stack *s)
{
    iou__stack_class *k = &p->classes[s->size_class];
#if defined(IOU_ASAN)
    /* The frames that ran here left redzones behind; a new task starts clean.
     * (Checking first avoids writing shadow memory for untouched stacks.) */
    if (__asan_region_is_poisoned(s->lo, s->size))
        __asan_unpoison_memory_region(s->lo, s->size);
#endif
    if (k->hot_count < HOT_MAX) {
        s->next = k->hot;
        k->hot = s;
        k->hot_count++;
    } else {
        /* Give the pages back; the mapping (and its guard) stays for reuse. */
        madvise(s->lo, s->size, MADV_DONTNEED);
        s->next = k->cold;
        k->cold = s;
    }
    p->in_use--;
    p->pooled++;
}

bool iou__stack_guard_hit(const iou__stack *s, const void *addr, size_t page)
{
    const char *a = addr;
    return s->guard != IOU__GUARD_CANARY && a >= s->lo - page && a < s->lo;
}

bool iou__stack_canary_intact(const iou__stack *s)
{
    return memcmp(s->lo, &CANARY, sizeof(CANARY)) == 0;
}
