/*
 * iou_loop_get_stats(): per-kind counts equal exactly the operations
 * performed; cancels, tasks, timers and stacks are counted; a batch of
 * operations goes to the kernel in few enters; a tiny SQ is flushed early
 * (sq_full) and no completion is lost; a short struct gets only its prefix.
 */
#include "testutil.h"

#include <stddef.h>
#include <sys/socket.h>

static int sleeper(void *arg)
{
    (void)arg;
    return iou_sleep(HOUR);
}

static int reader(void *arg)
{
    char c;
    return (int)iou_recv(*(int *)arg, &c, 1, 0);
}

static int one_nop(void *arg)
{
    (void)arg;
    return iou_nop();
}

static void check_counts(void)
{
    int sv[2], p[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(pipe(p), 0);
    char buf[8];
    iou_loop_stats before = loop_stats();
    for (int i = 0; i < 10; i++)
        CHECK_EQ(iou_nop(), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(iou_write(p[1], "abc", 3, -1), 3);
        CHECK_EQ(iou_read(p[0], buf, 3, -1), 3);
    }
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(iou_send(sv[0], "xy", 2, 0), 2);
        CHECK_EQ(iou_recv(sv[1], buf, 2, 0), 2);
    }
    iou_task *s[5];
    for (int i = 0; i < 5; i++)
        s[i] = spawn_checked(sleeper, NULL);
    iou_task *r = spawn_checked(reader, &sv[1]);
    CHECK_EQ(iou_yield(), 0); /* all park */
    iou_loop_stats during = loop_stats();
    CHECK_EQ(during.timers_pending, before.timers_pending + 5);
    CHECK_EQ(during.tasks_alive, before.tasks_alive + 6);
    CHECK_EQ(during.stacks_in_use, before.stacks_in_use + 6);
    CHECK(during.stacks_pooled > 0);
    for (int i = 0; i < 5; i++) {
        iou_cancel(s[i]);
        CHECK_EQ(iou_join(s[i]), -ECANCELED);
    }
    iou_cancel(r);
    CHECK_EQ(iou_join(r), -ECANCELED);
    iou_loop_stats after = loop_stats();

    CHECK_EQ(DELTA(submitted[op_kind("nop")]), 10);
    CHECK_EQ(DELTA(completed[op_kind("nop")]), 10);
    CHECK_EQ(DELTA(submitted[op_kind("write")]), 3);
    CHECK_EQ(DELTA(completed[op_kind("read")]), 3);
    CHECK_EQ(DELTA(submitted[op_kind("send")]), 2);
    CHECK_EQ(DELTA(submitted[op_kind("recv")]), 3); /* two, and the cancelled one */
    CHECK_EQ(DELTA(completed[op_kind("recv")]), 3);
    CHECK_EQ(DELTA(cancels), 1);               /* sleeps are timers: no kernel cancel */
    /* the two sends may have been direct (test_direct_send): no SQE, no CQE */
    CHECK_EQ(DELTA(cqes) + DELTA(sends_direct), 10 + 6 + 5);
    CHECK_EQ(after.tasks_alive, before.tasks_alive);
    CHECK_EQ(after.timers_pending, before.timers_pending);
    CHECK_EQ(after.ops_in_flight, 0);
    CHECK(DELTA(sqes) + DELTA(sends_direct) >= 22);
    if (!on_epoll()) /* each awaited op needed its own enter; epoll completes many at once */
        CHECK(DELTA(enters) + DELTA(sends_direct) >= 21);
    iou_bufring_stats bs;
    CHECK_EQ(iou_bufring_get_stats(&bs), 0);
    CHECK_EQ(after.enobufs, bs.enobufs);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

/* 100 tasks' operations leave in one batch: few enters, many SQEs each. */
static void check_batching(void)
{
    enum { N = 100 };
    iou_task *t[N];
    iou_loop_stats before = loop_stats();
    for (int i = 0; i < N; i++)
        t[i] = spawn_checked(one_nop, NULL);
    for (int i = 0; i < N; i++)
        CHECK_EQ(iou_join(t[i]), 0);
    iou_loop_stats after = loop_stats();
    CHECK_EQ(DELTA(submitted[op_kind("nop")]), N);
    CHECK_EQ(DELTA(completed[op_kind("nop")]), N);
    CHECK(DELTA(sqes) >= N);
    double batch = (double)DELTA(sqes) / (double)DELTA(enters);
    printf("batch: %lld SQEs in %lld enters (%.1f per enter)\n", DELTA(sqes), DELTA(enters),
           batch);
    CHECK(batch >= 10);
}

static void check_prefix(void)
{
    iou_loop_stats st;
    memset(&st, 0xee, sizeof(st));
    st.size = offsetof(iou_loop_stats, completed); /* an "older" caller */
    CHECK_EQ(iou_loop_get_stats(NULL, &st), 0);
    CHECK_EQ(st.size, offsetof(iou_loop_stats, completed));
    CHECK(st.submitted[op_kind("nop")] > 0);
    CHECK_EQ(st.completed[0], 0xeeeeeeeeeeeeeeeeull); /* beyond its size: untouched */
    st.size = 0;
    CHECK_EQ(iou_loop_get_stats(NULL, &st), -EINVAL);
    CHECK_EQ(iou_loop_get_stats(NULL, NULL), -EINVAL);
}

static int main_task(void *arg)
{
    (void)arg;
    check_counts();
    check_batching();
    check_prefix();
    return 0;
}

/* A 4-entry SQ: a batch of 200 operations has to be flushed as it is made. */
static int tiny_ring(void *arg)
{
    (void)arg;
    enum { N = 200 };
    iou_task *t[N];
    iou_loop_stats before = loop_stats();
    for (int i = 0; i < N; i++)
        t[i] = spawn_checked(one_nop, NULL);
    for (int i = 0; i < N; i++)
        CHECK_EQ(iou_join(t[i]), 0);
    iou_loop_stats after = loop_stats();
    CHECK_EQ(DELTA(completed[op_kind("nop")]), N); /* none lost */
    if (!on_epoll()) /* epoll has no submission queue to fill */
        CHECK(DELTA(sq_full) > 0);
    printf("tiny ring: %lld SQ-full flushes, %lld CQ overflow flushes for %d operations\n",
           DELTA(sq_full), DELTA(cq_overflows), N);
    return 0;
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(strcmp(iou_op_kind_name(0), "nop"), 0);
    CHECK(iou_op_kind_name(-1) == NULL);
    CHECK(iou_op_kind_name(IOU_OP_KIND_SLOTS) == NULL);
    iou_loop_stats st = {.size = sizeof(st)};
    CHECK_EQ(iou_loop_get_stats(NULL, &st), -EPERM); /* no loop */
    CHECK_EQ(run_or_skip(main_task, NULL), 0);
    iou_loop_opts opts = {.ring_entries = 4};
    CHECK_EQ(run_ex_or_skip(tiny_ring, NULL, &opts), 0);
    puts("stats: exact per-kind counts, cancels, tasks, timers, stacks, batching, SQ full");
    return 0;
}
