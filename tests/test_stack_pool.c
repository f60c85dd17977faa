/*
 * The stack pool (engine/stack.h): reuse, size classes, disjoint stacks,
 * guard pages that really fault, the cold path (MADV_DONTNEED), the test
 * switch IOU_TEST_STACK_GUARD, and 100,000 stacks held at once without
 * running out of mappings (vm.max_map_count).
 */
#include "check.h"
#include "stack.h"
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <iou.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { KiB = 1024 };

static void pool_init_with(iou__stack_pool *p, const char *guard_env)
{
    if (guard_env)
        CHECK_EQ(setenv("IOU_TEST_STACK_GUARD", guard_env, 1), 0);
    else
        CHECK_EQ(unsetenv("IOU_TEST_STACK_GUARD"), 0);
    iou__stack_pool_init(p);
}

static iou__stack *acquire(iou__stack_pool *p, size_t size)
{
    iou__stack *s = iou__stack_acquire(p, size);
    CHECK(s != NULL);
    CHECK(s->size >= size);
    CHECK_EQ((uintptr_t)s->lo % p->page, 0);
    CHECK_EQ(s->size % p->page, 0);
    return s;
}

/* Every byte can be written and read back. */
static void check_writable(iou__stack *s)
{
    memset(s->lo, 0xa5, s->size);
    CHECK((unsigned char)s->lo[0] == 0xa5 && (unsigned char)s->lo[s->size - 1] == 0xa5);
}

static size_t count_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY);
    CHECK(fd >= 0);
    char buf[65536];
    size_t lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

static void on_segv(int sig)
{
    (void)sig;
    _exit(42);
}

/* In a child: writing at lo works, writing one byte below it faults. */
static void expect_guard_faults(iou__stack *s)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, on_segv);
        volatile char *lo = s->lo;
        lo[0] = 1;
        lo[-1] = 1;
        _exit(0); /* the guard did not fault */
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 42);
}

/* A released stack is handed out again before any new one. */
static void test_reuse(void)
{
    iou__stack_pool p;
    pool_init_with(&p, NULL);
    iou__stack *a = acquire(&p, 64 * KiB);
    iou__stack *b = acquire(&p, 64 * KiB);
    CHECK(a != b && a->lo != b->lo);
    CHECK_EQ(p.in_use, 2);
    char *lo = a->lo;
    iou__stack_release(&p, a);
    CHECK_EQ(p.in_use, 1);
    iou__stack *c = acquire(&p, 64 * KiB);
    CHECK(c->lo == lo);
    iou__stack_release(&p, b);
    iou__stack_release(&p, c);
    CHECK_EQ(p.in_use, 0);
    iou__stack_pool_fini(&p);
}

/* Sizes round up to their class (powers of two from 16 KiB); too big is NULL. */
static void test_size_classes(void)
{
    iou__stack_pool p;
    pool_init_with(&p, NULL);
    static const size_t asks[] = {0, 1, 16 * KiB, 16 * KiB + 1, 20 * KiB, 64 * KiB, 100 * KiB, 1024 * KiB};
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        size_t want = asks[i] ? asks[i] : 16 * KiB;
        iou__stack *s = acquire(&p, asks[i]);
        CHECK(s->size >= want && s->size < 2 * want + 16 * KiB);
        check_writable(s);
        iou__stack_release(&p, s);
    }
    CHECK_EQ(acquire(&p, 20 * KiB)->size, 32 * KiB);
    CHECK_EQ(acquire(&p, 64 * KiB)->size, 64 * KiB);
    CHECK(iou__stack_acquire(&p, (size_t)1 << 40) == NULL);
    iou__stack_pool_fini(&p);
}

typedef struct range {
    uintptr_t lo, hi;
} range;

static int by_lo(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Stacks of mixed classes never overlap each other or each other's guards. */
static void test_disjoint(void)
{
    enum { N = 300 };
    static const size_t sizes[] = {16 * KiB, 32 * KiB, 64 * KiB};
    iou__stack_pool p;
    pool_init_with(&p, NULL);
    range r[N];
    for (size_t i = 0; i < N; i++) {
        iou__stack *s = acquire(&p, sizes[i % 3]);
        r[i] = (range){(uintptr_t)s->lo - p.page, (uintptr_t)s->lo + s->size};
    }
    qsort(r, N, sizeof(r[0]), by_lo);
    for (size_t i = 1; i < N; i++)
        CHECK(r[i - 1].hi <= r[i].lo);
    iou__stack_pool_fini(&p);
}

/* The default guard is a real one (region or PROT_NONE), reported by
 * guard_hit for the page below lo only, and it faults. */
static void test_default_guard(void)
{
    iou__stack_pool p;
    pool_init_with(&p, NULL);
    CHECK_EQ(p.forced, IOU__GUARD_REGION);
    iou__stack *s = acquire(&p, 64 * KiB);
    CHECK(s->guard == IOU__GUARD_REGION || s->guard == IOU__GUARD_PROTECT);
    CHECK(iou__stack_guard_hit(s, s->lo - 1, p.page));
    CHECK(iou__stack_guard_hit(s, s->lo - p.page, p.page));
    CHECK(!iou__stack_guard_hit(s, s->lo, p.page));
    CHECK(!iou__stack_guard_hit(s, s->lo - p.page - 1, p.page));
    CHECK(!iou__stack_guard_hit(s, s->lo + s->size - 1, p.page));
    CHECK(iou__stack_canary_ok(s));
    expect_guard_faults(s);
    iou__stack_pool_fini(&p);
}

static void test_forced_protect(void)
{
    iou__stack_pool p;
    pool_init_with(&p, "protect");
    CHECK_EQ(p.forced, IOU__GUARD_PROTECT);
    iou__stack *s = acquire(&p, 64 * KiB);
    CHECK_EQ(s->guard, IOU__GUARD_PROTECT);
    CHECK(iou__stack_guard_hit(s, s->lo - 1, p.page));
    CHECK(!iou__stack_guard_hit(s, s->lo, p.page));
    expect_guard_faults(s);
    iou__stack_pool_fini(&p);
}

/* Canary mode: no guard page; the canary at lo detects an overwrite and is
 * rewritten when the stack is handed out again. */
static void test_forced_canary(void)
{
    iou__stack_pool p;
    pool_init_with(&p, "canary");
    CHECK_EQ(p.forced, IOU__GUARD_CANARY);
    iou__stack *s = acquire(&p, 64 * KiB);
    CHECK_EQ(s->guard, IOU__GUARD_CANARY);
    CHECK(!iou__stack_guard_hit(s, s->lo - 1, p.page));
    CHECK(iou__stack_canary_ok(s));
    s->lo[s->size - 1] = 7; /* the top of the stack is not the canary */
    CHECK(iou__stack_canary_ok(s));
    memset(s->lo, 0, 8);
    CHECK(!iou__stack_canary_ok(s));
    iou__stack_release(&p, s);
    iou__stack *again = acquire(&p, 64 * KiB);
    CHECK(again == s);
    CHECK(iou__stack_canary_ok(again));
    iou__stack_pool_fini(&p);
    unsetenv("IOU_TEST_STACK_GUARD");
}

static bool all_zero(const iou__stack *s)
{
    for (size_t off = 0; off < s->size; off += 512)
        if (s->lo[off] != 0)
            return false;
    return s->lo[s->size - 1] == 0;
}

/* Past the hot limit (64 per class) released stacks go cold: their pages
 * are given back, so they read zero when handed out again, and they are
 * still the same stacks (the mapping stays). */
static void test_cold_reuse(void)
{
    enum { N = 200, HOT = 64 };
    iou__stack_pool p;
    pool_init_with(&p, NULL);
    iou__stack *s[N];
    for (size_t i = 0; i < N; i++) {
        s[i] = acquire(&p, 16 * KiB);
        memset(s[i]->lo, 0xab, s[i]->size);
    }
    for (size_t i = 0; i < N; i++)
        iou__stack_release(&p, s[i]);
    CHECK_EQ(p.in_use, 0);

    size_t zeroed = 0;
    for (size_t i = 0; i < N; i++) {
        iou__stack *t = acquire(&p, 16 * KiB);
        bool known = false;
        for (size_t j = 0; j < N && !known; j++)
            known = s[j] == t;
        CHECK(known); /* reused, not freshly mapped */
        zeroed += all_zero(t);
        check_writable(t);
    }
    CHECK(zeroed >= N - HOT);
    CHECK(zeroed < N); /* the hot ones kept their pages */
    iou__stack_pool_fini(&p);
}

/* Holds n default-sized stacks at once and returns the /proc/self/maps line
 * count seen meanwhile. Guards must not cost a mapping each, or 100,000
 * stacks would hit vm.max_map_count (65,530 by default). */
static size_t hold_many(iou__stack_pool *p, size_t n, iou__stack **s)
{
    for (size_t i = 0; i < n; i++) {
        s[i] = iou__stack_acquire(p, 64 * KiB);
        CHECK(s[i] != NULL);
    }
    CHECK_EQ(p->in_use, n);
    size_t held = count_maps();
    s[n - 1]->lo[0] = 1; /* the last one is real memory too */
    for (size_t i = 0; i < n; i++)
        iou__stack_release(p, s[i]);
    CHECK_EQ(p->in_use, 0);
    CHECK(p->pooled >= n);
    return held;
}

static void test_hundred_thousand(void)
{
    enum { N = 100000 };
    iou__stack **s = malloc(N * sizeof(*s));
    CHECK(s != NULL);
    iou__stack_pool p;
    pool_init_with(&p, NULL);
    size_t before = count_maps();
    size_t held = hold_many(&p, N, s);
    fprintf(stderr, "maps: %zu before, %zu with %d stacks held\n", before, held, N);
    CHECK(held < 65530 / 2);
    iou__stack_pool_fini(&p);
    CHECK(count_maps() <= before + 8);
    free(s);
}

/* Without guard regions (forced here) PROT_NONE guards are used while their
 * mapping budget lasts, then canaries: the map count stays bounded. */
static void test_protect_budget(void)
{
    enum { N = 20000 }; /* past the budget of max_map_count / 4 mappings */
    iou__stack **s = malloc(N * sizeof(*s));
    CHECK(s != NULL);
    iou__stack_pool p;
    pool_init_with(&p, "protect");
    size_t before = count_maps();
    size_t held = hold_many(&p, N, s);
    fprintf(stderr, "maps: %zu before, %zu with %d PROT_NONE-guarded stacks\n", before, held, N);
    CHECK(held < 65530 / 2);
    CHECK(held > before + 1000); /* the guards really split mappings */
    CHECK_EQ(s[0]->guard, IOU__GUARD_PROTECT);
    CHECK_EQ(s[N - 1]->guard, IOU__GUARD_CANARY);
    iou__stack_pool_fini(&p);
    unsetenv("IOU_TEST_STACK_GUARD");
    free(s);
}

/* Through the public API: a default task gets the loop's 64 KiB, and a
 * requested size is honoured (rounded up, not down). */
static int report_stack_size(void *out)
{
    *(size_t *)out = iou_self()->stack->size;
    return 0;
}

static size_t task_stack_size(size_t request)
{
    size_t size = 0;
    iou_spawn_opts opts = {.stack_size = request};
    iou_task *t = iou_spawn_ex(report_stack_size, &size, &opts);
    CHECK(t != NULL);
    CHECK_EQ(iou_join(t), 0);
    return size;
}

static int task_sizes_main(void *unused)
{
    (void)unused;
    CHECK_EQ(task_stack_size(0), 64 * KiB);
    size_t small = task_stack_size(20 * KiB);
    CHECK(small >= 20 * KiB && small < 64 * KiB);
    CHECK(task_stack_size(1024 * KiB) >= 1024 * KiB);
    return 0;
}

static void test_task_stack_sizes(void)
{
    int r = iou_run(task_sizes_main, NULL);
    if (r == -ENOSYS || r == -EPERM) {
        fprintf(stderr, "note: io_uring unavailable, task stack sizes not checked\n");
        return;
    }
    CHECK_EQ(r, 0);
}

int main(void)
{
    test_reuse();
    test_size_classes();
    test_disjoint();
    test_default_guard();
    test_forced_protect();
    test_forced_canary();
    test_cold_reuse();
    test_hundred_thousand();
    test_protect_budget();
    test_task_stack_sizes();
    return 0;
}
