/*
 * Task groups: waiting for every child, failure propagation (the first
 * nonzero child value cancels the siblings, wherever they are blocked),
 * cancellation and deadlines of the waiting task, children spawning children,
 * and the FIFO / round-robin order in which children run.
 */
#include "check.h"
#include "loopcheck.h"
#include "loop.h"
#include "task.h"
#include "testutil.h"

#include <errno.h>
#include <iou.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a configurable child ------------------------------------------------- */

enum kid_kind { KID_SLEEP, KID_RECV, KID_STUBBORN };

static int kids_started, kids_ended;

typedef struct kid {
    enum kid_kind kind;
    uint64_t ns;        /* KID_SLEEP: how long */
    int fd;             /* KID_RECV: where */
    int value;          /* returned when the blocking call succeeds */
    int blocked_result; /* what the blocking call returned */
} kid;

/* On cancellation it still does its cleanup: yields that the loop must run
 * before the group may return. */
static int stubborn_cleanup(void)
{
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_yield(), -ECANCELED);
    return -ECANCELED;
}

static int kid_main(void *arg)
{
    kid *k = arg;
    char buf[8];
    kids_started++;
    int r = 0;
    if (k->kind == KID_RECV)
        r = (int)iou_recv(k->fd, buf, sizeof(buf), 0);
    else
        r = iou_sleep(k->ns);
    k->blocked_result = r;
    if (r == -ECANCELED && k->kind == KID_STUBBORN)
        stubborn_cleanup();
    kids_ended++;
    return r < 0 ? r : k->value;
}

static void reset_counts(void)
{
    kids_started = kids_ended = 0;
}

static iou_task *spawn_kid(iou_group *g, kid *k)
{
    iou_task *t = iou_group_spawn(g, kid_main, k);
    CHECK(t != NULL);
    return t;
}

/* ---- all succeed, empty, misuse ------------------------------------------- */

static int all_succeed_main(void *arg)
{
    (void)arg;
    reset_counts();
    uint64_t t0 = iou_now();
    kid kids[5];
    iou_group *g = iou_group_new();
    CHECK(g != NULL);
    for (int i = 0; i < 5; i++) {
        kids[i] = (kid){.kind = KID_SLEEP, .ns = MS(10 * (5 - i)), .value = 0};
        spawn_kid(g, &kids[i]);
    }
    CHECK_EQ(iou_group_wait(g), 0);
    CHECK_EQ(kids_ended, 5);
    CHECK(iou_now() == t0 + MS(50)); /* the longest child */
    for (int i = 0; i < 5; i++)
        CHECK_EQ(kids[i].blocked_result, 0);
    check_nothing_leaked();
    return 0;
}

static void test_all_succeed(void)
{
    CHECK_EQ(run_virtual(all_succeed_main, NULL), 0);
}

static int return_zero(void *arg)
{
    (void)arg;
    return 0;
}

static int wait_own_group(void *arg)
{
    return iou_group_wait(arg);
}

static int edge_cases_main(void *arg)
{
    (void)arg;
    /* Empty: returns at once. */
    iou_group *g = iou_group_new();
    CHECK(g != NULL);
    CHECK_EQ(iou_group_wait(g), 0);
    /* Children that ended before the wait: no suspension needed. */
    g = iou_group_new();
    iou_task *early = iou_group_spawn(g, return_zero, NULL);
    CHECK(early != NULL);
    CHECK_EQ(iou_yield(), 0);
    CHECK(iou__task_done(early));
    CHECK_EQ(iou_cancel(early), -ESRCH); /* the handle stays valid until the wait */
    CHECK_EQ(iou_group_wait(g), 0);
    /* A child waiting on its own group would wait for itself. */
    g = iou_group_new();
    iou_group_spawn(g, wait_own_group, g);
    CHECK_EQ(iou_yield(), 0); /* the child calls iou_group_wait first */
    CHECK_EQ(iou_group_wait(g), -EDEADLK); /* the child's value */
    CHECK_EQ(iou_group_wait(NULL), -EINVAL);
    CHECK(iou_group_spawn(NULL, return_zero, NULL) == NULL);
    check_nothing_leaked();
    return 0;
}

static void test_edge_cases(void)
{
    CHECK(iou_group_new() == NULL); /* outside a loop */
    CHECK_EQ(iou_group_wait(NULL), -EPERM);
    CHECK_EQ(run_virtual(edge_cases_main, NULL), 0);
}

/* ---- failure propagation ---------------------------------------------------- */

static int one_fails_main(void *arg)
{
    (void)arg;
    reset_counts();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    kid sleeper = {.kind = KID_SLEEP, .ns = HOUR};
    kid reader = {.kind = KID_RECV, .fd = sv[0]};
    kid stubborn = {.kind = KID_STUBBORN, .ns = HOUR};
    kid failer = {.kind = KID_SLEEP, .ns = MS(1), .value = 7};
    iou_group *g = iou_group_new();
    spawn_kid(g, &sleeper);
    spawn_kid(g, &reader);
    spawn_kid(g, &stubborn);
    spawn_kid(g, &failer);
    CHECK_EQ(iou_group_wait(g), 7); /* not the siblings' -ECANCELED */
    CHECK_EQ(kids_ended, 4);
    CHECK_EQ(sleeper.blocked_result, -ECANCELED);
    CHECK_EQ(reader.blocked_result, -ECANCELED); /* cancelled in the kernel, awaited */
    CHECK_EQ(stubborn.blocked_result, -ECANCELED);
    CHECK_EQ(iou__loop()->ops_inflight, 0);
    /* The cancelled recv consumed nothing. */
    char c = 0;
    CHECK_EQ(send(sv[1], "x", 1, 0), 1);
    CHECK_EQ(iou_recv(sv[0], &c, 1, 0), 1);
    close(sv[0]);
    close(sv[1]);
    check_nothing_leaked();
    return 0;
}

static void test_one_fails(void)
{
    CHECK_EQ(run_virtual(one_fails_main, NULL), 0);
}

/* The failure happens before the siblings even start, and a child spawned
 * after it is cancelled from the start too. */
static int return_7(void *arg)
{
    (void)arg;
    return 7;
}

static int fail_first_main(void *arg)
{
    (void)arg;
    reset_counts();
    kid later[3];
    iou_group *g = iou_group_new();
    iou_group_spawn(g, return_7, NULL);
    for (int i = 0; i < 2; i++) {
        later[i] = (kid){.kind = KID_SLEEP, .ns = HOUR};
        spawn_kid(g, &later[i]);
    }
    CHECK_EQ(iou_yield(), 0); /* all three run: the first fails */
    CHECK_EQ(kids_started, 2);
    later[2] = (kid){.kind = KID_SLEEP, .ns = HOUR};
    spawn_kid(g, &later[2]); /* into a failed group */
    CHECK_EQ(iou_group_wait(g), 7);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(later[i].blocked_result, -ECANCELED);
    check_nothing_leaked();
    return 0;
}

static void test_failure_before_siblings_block(void)
{
    CHECK_EQ(run_virtual(fail_first_main, NULL), 0);
}

/* ---- children spawning children into the same group ------------------------- */

typedef struct spawner {
    iou_group *g;
    kid grandchild;
} spawner;

static int sleep_then_spawn(void *arg)
{
    spawner *s = arg;
    CHECK_EQ(iou_sleep(MS(5)), 0);
    CHECK(iou_group_spawn(s->g, kid_main, &s->grandchild) != NULL);
    return 0;
}

static int nested_spawn_main(void *arg)
{
    (void)arg;
    reset_counts();
    uint64_t t0 = iou_now();
    /* All succeed: the wait covers the late child. */
    iou_group *g = iou_group_new();
    spawner s = {.g = g, .grandchild = {.kind = KID_SLEEP, .ns = MS(5)}};
    iou_group_spawn(g, sleep_then_spawn, &s);
    CHECK_EQ(iou_group_wait(g), 0);
    CHECK_EQ(kids_ended, 1);
    CHECK(iou_now() == t0 + MS(10));
    /* The late child fails: it cancels an earlier sibling. */
    g = iou_group_new();
    s = (spawner){.g = g, .grandchild = {.kind = KID_SLEEP, .ns = MS(5), .value = 3}};
    kid sibling = {.kind = KID_SLEEP, .ns = HOUR};
    iou_group_spawn(g, sleep_then_spawn, &s);
    spawn_kid(g, &sibling);
    CHECK_EQ(iou_group_wait(g), 3);
    CHECK_EQ(sibling.blocked_result, -ECANCELED);
    CHECK(iou_now() == t0 + MS(20));
    check_nothing_leaked();
    return 0;
}

static void test_children_spawn_children(void)
{
    CHECK_EQ(run_virtual(nested_spawn_main, NULL), 0);
}

/* ---- the waiting task is cancelled / times out ------------------------------ */

typedef struct waiter_report {
    int result;
    int ended_at_return;
    int sv[2];
    kid kids[3];
} waiter_report;

static int group_waiter(void *arg)
{
    waiter_report *w = arg;
    w->kids[0] = (kid){.kind = KID_SLEEP, .ns = HOUR};
    w->kids[1] = (kid){.kind = KID_RECV, .fd = w->sv[0]};
    w->kids[2] = (kid){.kind = KID_STUBBORN, .ns = HOUR};
    iou_group *g = iou_group_new();
    for (int i = 0; i < 3; i++)
        spawn_kid(g, &w->kids[i]);
    w->result = iou_group_wait(g);
    w->ended_at_return = kids_ended;
    return 0;
}

static int cancel_waiter_main(void *arg)
{
    (void)arg;
    reset_counts();
    waiter_report w;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, w.sv) == 0);
    iou_task *waiter = iou_spawn(group_waiter, &w);
    CHECK_EQ(iou_yield(), 0); /* the waiter spawns and parks */
    CHECK_EQ(iou_yield(), 0); /* the children start and block */
    CHECK_EQ(kids_started, 3);
    CHECK_EQ(iou_cancel(waiter), 0);
    CHECK_EQ(iou_join(waiter), 0);
    CHECK_EQ(w.result, -ECANCELED);
    CHECK_EQ(w.ended_at_return, 3); /* it returned only after all had ended */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(w.kids[i].blocked_result, -ECANCELED);
    close(w.sv[0]);
    close(w.sv[1]);
    check_nothing_leaked();
    return 0;
}

static void test_cancel_the_waiter(void)
{
    CHECK_EQ(run_virtual(cancel_waiter_main, NULL), 0);
}

static int sleepers_group(void *arg)
{
    kid *kids = arg;
    iou_group *g = iou_group_new();
    for (int i = 0; i < 2; i++) {
        kids[i] = (kid){.kind = KID_SLEEP, .ns = HOUR};
        spawn_kid(g, &kids[i]);
    }
    return iou_group_wait(g);
}

static int waiter_deadline_main(void *arg)
{
    (void)arg;
    reset_counts();
    kid kids[2];
    uint64_t t0 = iou_now();
    CHECK_EQ(iou_timeout(MS(10), sleepers_group, kids), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(10));
    CHECK_EQ(kids_ended, 2);
    CHECK_EQ(kids[0].blocked_result, -ECANCELED);
    CHECK_EQ(kids[1].blocked_result, -ECANCELED);
    /* Already past the deadline on entry: the children are cancelled at once. */
    uint64_t previous = iou_deadline_push(iou_now());
    CHECK_EQ(sleepers_group(kids), -ETIMEDOUT);
    iou_deadline_pop(previous);
    check_nothing_leaked();
    return 0;
}

static void test_waiter_deadline(void)
{
    CHECK_EQ(run_virtual(waiter_deadline_main, NULL), 0);
}

/* ---- iou_group_cancel --------------------------------------------------------- */

static int group_cancel_main(void *arg)
{
    (void)arg;
    reset_counts();
    kid kids[3];
    iou_group *g = iou_group_new();
    for (int i = 0; i < 3; i++) {
        kids[i] = (kid){.kind = KID_SLEEP, .ns = HOUR};
        spawn_kid(g, &kids[i]);
    }
    CHECK_EQ(iou_yield(), 0);
    iou_group_cancel(g);
    iou_group_cancel(g); /* idempotent */
    CHECK_EQ(iou_group_wait(g), -ECANCELED); /* the children's value */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(kids[i].blocked_result, -ECANCELED);
    check_nothing_leaked();
    return 0;
}

static void test_group_cancel(void)
{
    CHECK_EQ(run_virtual(group_cancel_main, NULL), 0);
}

/* ---- many children --------------------------------------------------------- */

enum { MANY = 1000 };

static int yield_n_then_return(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    for (uintptr_t k = 0; k < i % 4; k++)
        iou_yield();
    if (i == MANY - 1)
        return 11;
    return iou_sleep(HOUR) == -ECANCELED ? 0 : 1;
}

static int many_main(void *arg)
{
    (void)arg;
    iou_group *g = iou_group_new();
    for (uintptr_t i = 0; i < MANY; i++)
        CHECK(iou_group_spawn(g, yield_n_then_return, (void *)i) != NULL);
    CHECK_EQ(iou_group_wait(g), 11);
    check_nothing_leaked();
    return 0;
}

static void test_many_children(void)
{
    CHECK_EQ(run_virtual(many_main, NULL), 0);
}

/* ---- ordering and fairness ---------------------------------------------------- */

static char trace[64];
static size_t trace_len;

static int mark_and_yield(void *arg)
{
    for (int round = 0; round < 3; round++) {
        CHECK(trace_len + 1 < sizeof(trace));
        trace[trace_len++] = *(const char *)arg;
        CHECK_EQ(iou_yield(), 0);
    }
    return 0;
}

static int fairness_main(void *arg)
{
    (void)arg;
    memset(trace, 0, sizeof(trace));
    trace_len = 0;
    iou_group *g = iou_group_new();
    static const char names[] = "ABCD";
    for (int i = 0; i < 4; i++)
        iou_group_spawn(g, mark_and_yield, (void *)&names[i]);
    CHECK_EQ(iou_group_wait(g), 0);
    /* Children start in spawn order and iou_yield round-robins them. */
    if (strcmp(trace, "ABCDABCDABCD") != 0) {
        fprintf(stderr, "trace %s\n", trace);
        CHECK(false);
    }
    check_nothing_leaked();
    return 0;
}

static void test_fifo_and_round_robin(void)
{
    CHECK_EQ(run_virtual(fairness_main, NULL), 0);
}

/* A task that never stops yielding does not starve timers or completions:
 * the loop polls between ready batches. Real clock: the virtual one would
 * (rightly) never advance while a task is always ready. */
static bool other_done;

static int spin_until_other_done(void *arg)
{
    (void)arg;
    for (long i = 0; !other_done; i++) {
        CHECK(i < 10 * 1000 * 1000);
        CHECK_EQ(iou_yield(), 0);
    }
    return 0;
}

static int sleep_then_nop(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_sleep(MS(1)), 0);
    CHECK_EQ(iou_nop(), 0);
    other_done = true;
    return 0;
}

static int no_starvation_main(void *arg)
{
    (void)arg;
    other_done = false;
    iou_group *g = iou_group_new();
    iou_group_spawn(g, spin_until_other_done, NULL);
    iou_group_spawn(g, sleep_then_nop, NULL);
    CHECK_EQ(iou_group_wait(g), 0);
    check_nothing_leaked();
    return 0;
}

static void test_yielder_does_not_starve(void)
{
    CHECK_EQ(run_or_skip(no_starvation_main, NULL), 0);
}

int main(void)
{
    test_all_succeed();
    test_edge_cases();
    test_one_fails();
    test_failure_before_siblings_block();
    test_children_spawn_children();
    test_cancel_the_waiter();
    test_waiter_deadline();
    test_group_cancel();
    test_many_children();
    test_fifo_and_round_robin();
    test_yielder_does_not_starve();
    puts("test_group: ok");
    return 0;
}
