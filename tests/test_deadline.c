/*
 * Deadlines: iou_deadline_push / pop, iou_timeout, and the races between a
 * deadline, a completion and a cancellation arriving in the same loop
 * iteration. Long deadlines run on the virtual clock, so their arithmetic is
 * exact; the ones that involve kernel I/O use short real deadlines.
 */
#include "check.h"
#include "loopcheck.h"
#include "testutil.h"
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <iou.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void make_socketpair(int sv[2])
{
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
}

/* Lets every task queued before the caller run (and park) first. */
static void let_others_run(void)
{
    CHECK_EQ(iou_yield(), 0);
}

/* ---- outside a task --------------------------------------------------------- */

static int return_42(void *arg)
{
    (void)arg;
    return 42;
}

static void test_outside_a_task(void)
{
    CHECK(iou_deadline_push(123) == IOU_NEVER);
    CHECK(iou_deadline() == IOU_NEVER);
    iou_deadline_pop(5); /* does nothing */
    CHECK(iou_deadline() == IOU_NEVER);
    CHECK_EQ(iou_timeout(1000, return_42, NULL), -EPERM);
}

/* ---- iou_sleep under a deadline -------------------------------------------- */

static int sleep_deadline_main(void *arg)
{
    (void)arg;
    uint64_t t0 = iou_now();
    uint64_t previous = iou_deadline_push(t0 + MS(1000));
    CHECK(previous == IOU_NEVER);
    CHECK(iou_deadline() == t0 + MS(1000));
    CHECK_EQ(iou_sleep(MS(300)), 0); /* ends before the deadline */
    CHECK_EQ(iou_sleep(HOUR), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(1000)); /* woken exactly at the deadline */
    CHECK_EQ(iou_sleep(1), -ETIMEDOUT); /* past it: fails without blocking */
    CHECK_EQ(iou_yield(), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(1000));
    iou_deadline_pop(previous);
    CHECK(iou_deadline() == IOU_NEVER);
    CHECK_EQ(iou_sleep(MS(5)), 0);
    check_nothing_leaked();
    return 0;
}

static void test_sleep_deadline(void)
{
    CHECK_EQ(run_virtual(sleep_deadline_main, NULL), 0);
}

/* ---- iou_recv under a deadline: cancelled in the kernel, then awaited ------- */

static int recv_deadline_main(void *arg)
{
    (void)arg;
    int sv[2];
    make_socketpair(sv);
    char buf[16] = {0}; /* valgrind cannot see the kernel (io_uring) fill it */
    uint64_t t0 = iou_now();
    uint64_t previous = iou_deadline_push(t0 + MS(20));
    CHECK_EQ(iou_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT);
    CHECK(iou_now() >= t0 + MS(20));
    CHECK_EQ(iou__loop()->ops_inflight, 0); /* the cancelled recv's completion was awaited */
    CHECK_EQ(iou_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT); /* no new submission */
    iou_deadline_pop(previous);
    /* The cancelled recv consumed nothing: the stream is intact. */
    CHECK_EQ(send(sv[1], "hello", 5, 0), 5);
    CHECK_EQ(iou_recv(sv[0], buf, sizeof(buf), 0), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    close(sv[0]);
    close(sv[1]);
    check_nothing_leaked();
    return 0;
}

static void test_recv_deadline(void)
{
    CHECK_EQ(run_or_skip(recv_deadline_main, NULL), 0);
}

/* ---- nesting: inner scopes only tighten, pop restores ----------------------- */

static int nested_scopes_main(void *arg)
{
    (void)arg;
    uint64_t t0 = iou_now();
    uint64_t outer = iou_deadline_push(t0 + MS(100));
    uint64_t looser = iou_deadline_push(t0 + MS(1000)); /* cannot extend */
    CHECK(looser == t0 + MS(100));
    CHECK(iou_deadline() == t0 + MS(100));
    uint64_t tighter = iou_deadline_push(t0 + MS(10));
    CHECK(tighter == t0 + MS(100));
    CHECK(iou_deadline() == t0 + MS(10));
    CHECK_EQ(iou_sleep(HOUR), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(10));
    iou_deadline_pop(tighter);
    CHECK(iou_deadline() == t0 + MS(100));
    CHECK_EQ(iou_sleep(HOUR), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(100));
    iou_deadline_pop(looser);
    CHECK(iou_deadline() == t0 + MS(100));
    iou_deadline_pop(outer);
    CHECK(iou_deadline() == IOU_NEVER);
    CHECK_EQ(iou_sleep(MS(1)), 0);
    check_nothing_leaked();
    return 0;
}

static void test_nested_scopes(void)
{
    CHECK_EQ(run_virtual(nested_scopes_main, NULL), 0);
}

/* ---- iou_timeout ---------------------------------------------------------- */

static int sleep_arg_ms_then_5(void *arg)
{
    int r = iou_sleep(MS((uintptr_t)arg));
    return r ? r : 5;
}

static int inner_timeout_1s(void *arg)
{
    (void)arg;
    return iou_timeout(MS(1000), sleep_arg_ms_then_5, (void *)(uintptr_t)3600000);
}

static int deadline_seen;

static int record_deadline(void *arg)
{
    (void)arg;
    deadline_seen = iou_deadline() == IOU_NEVER;
    return 9;
}

static int timeout_main(void *arg)
{
    (void)arg;
    uint64_t t0 = iou_now();
    CHECK_EQ(iou_timeout(MS(100), return_42, NULL), 42);
    CHECK_EQ(iou_timeout(MS(100), sleep_arg_ms_then_5, (void *)(uintptr_t)10), 5);
    CHECK(iou_now() == t0 + MS(10));
    CHECK(iou_deadline() == IOU_NEVER); /* restored */
    CHECK_EQ(iou_timeout(MS(100), sleep_arg_ms_then_5, (void *)(uintptr_t)1000), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(110));
    /* Nested: the inner 1 s cannot extend the outer 50 ms. */
    CHECK_EQ(iou_timeout(MS(50), inner_timeout_1s, NULL), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(160));
    CHECK(iou_deadline() == IOU_NEVER);
    /* now + UINT64_MAX saturates to "no deadline" rather than wrapping. */
    CHECK_EQ(iou_timeout(UINT64_MAX, record_deadline, NULL), 9);
    CHECK(deadline_seen);
    /* A zero timeout: any blocking call inside fails at once. */
    CHECK_EQ(iou_timeout(0, sleep_arg_ms_then_5, (void *)(uintptr_t)1), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(160));
    CHECK_EQ(iou_timeout(0, NULL, NULL), -EINVAL);
    check_nothing_leaked();
    return 0;
}

static void test_timeout(void)
{
    CHECK_EQ(run_virtual(timeout_main, NULL), 0);
}

/* ---- each task has its own deadline ---------------------------------------- */

static int sleep_1s(void *arg)
{
    (void)arg;
    CHECK(iou_deadline() == IOU_NEVER); /* not inherited from the spawner */
    return iou_sleep(MS(1000));
}

static int per_task_main(void *arg)
{
    (void)arg;
    uint64_t t0 = iou_now();
    uint64_t previous = iou_deadline_push(t0 + MS(10));
    iou_task *other = iou_spawn(sleep_1s, NULL);
    CHECK(other != NULL);
    CHECK_EQ(iou_sleep(HOUR), -ETIMEDOUT);
    iou_deadline_pop(previous);
    CHECK_EQ(iou_join(other), 0);
    CHECK(iou_now() == t0 + MS(1000));
    check_nothing_leaked();
    return 0;
}

static void test_deadline_is_per_task(void)
{
    CHECK_EQ(run_virtual(per_task_main, NULL), 0);
}

/* ---- cancellation beats the deadline ---------------------------------------- */

static int expired_and_cancelled(void *arg)
{
    int *sv = arg;
    char c;
    iou_deadline_push(iou_now()); /* already expired */
    CHECK_EQ(iou_cancel(iou_self()), 0);
    CHECK_EQ(iou_sleep(MS(1)), -ECANCELED);
    CHECK_EQ(iou_recv(sv[0], &c, 1, 0), -ECANCELED);
    CHECK_EQ(iou_yield(), -ECANCELED);
    return 0;
}

static int cancel_beats_expired_main(void *arg)
{
    (void)arg;
    int sv[2];
    make_socketpair(sv);
    CHECK_EQ(iou_join(iou_spawn(expired_and_cancelled, sv)), 0);
    close(sv[0]);
    close(sv[1]);
    check_nothing_leaked();
    return 0;
}

static void test_cancel_beats_expired_deadline(void)
{
    CHECK_EQ(run_virtual(cancel_beats_expired_main, NULL), 0);
}

/*
 * A task blocked in recv under a deadline D, and a cancellation delivered by
 * a timer also due at D. Both fire in the same fire-timers pass of one loop
 * iteration, before the kernel returns the recv; whichever fires first, the
 * task must see -ECANCELED.
 */
typedef struct recv_race {
    int sv[2];
    uint64_t deadline;
    iou_task *task;
    ssize_t result;
    char buf[16];
} recv_race;

static int recv_under_deadline(void *arg)
{
    recv_race *r = arg;
    iou_deadline_push(r->deadline);
    r->result = iou_recv(r->sv[0], r->buf, sizeof(r->buf), 0);
    return 0;
}

static void cancel_race_task(void *arg)
{
    recv_race *r = arg;
    CHECK_EQ(r->task->state, IOU__TASK_PARKED); /* still waiting for the kernel */
    CHECK_EQ(iou_cancel(r->task), 0);
}

/* deadline_first: the cancel timer is armed after the task's deadline timer
 * (armed when it parks), so with equal times it fires second. */
static void race_cancel_with_deadline(bool deadline_first)
{
    recv_race r = {.deadline = iou_now() + MS(10)};
    make_socketpair(r.sv);
    iou_loop *l = iou_loop_current();
    if (!deadline_first)
        CHECK(iou_call_at(l, r.deadline, cancel_race_task, &r) != NULL);
    r.task = iou_spawn(recv_under_deadline, &r);
    CHECK(r.task != NULL);
    let_others_run(); /* the task parks in recv and arms its deadline timer */
    CHECK_EQ(r.task->state, IOU__TASK_PARKED);
    if (deadline_first)
        CHECK(iou_call_at(l, r.deadline, cancel_race_task, &r) != NULL);
    CHECK_EQ(iou_join(r.task), 0);
    CHECK_EQ(r.result, -ECANCELED);
    close(r.sv[0]);
    close(r.sv[1]);
}

static int cancel_beats_deadline_main(void *arg)
{
    (void)arg;
    race_cancel_with_deadline(true);
    race_cancel_with_deadline(false);
    check_nothing_leaked();
    return 0;
}

static void test_cancel_beats_deadline_same_iteration(void)
{
    CHECK_EQ(run_or_skip(cancel_beats_deadline_main, NULL), 0);
}

/*
 * A sleep under deadline D and a cancellation timer due at D, armed after the
 * deadline: the deadline ends the sleep first (its hook wakes the task at
 * once), so the sleep may report either reason; the cancellation is never
 * lost: the next blocking call returns -ECANCELED.
 */
typedef struct sleep_race {
    uint64_t deadline;
    iou_task *task;
    int result, next_result;
} sleep_race;

static int sleep_under_deadline(void *arg)
{
    sleep_race *r = arg;
    iou_deadline_push(r->deadline);
    r->result = iou_sleep(HOUR);
    iou_deadline_pop(IOU_NEVER);
    r->next_result = iou_sleep(MS(1));
    return 0;
}

static void cancel_sleeper(void *arg)
{
    iou_cancel(((sleep_race *)arg)->task);
}

static int sleep_race_main(void *arg)
{
    (void)arg;
    sleep_race r = {.deadline = iou_now() + MS(10)};
    r.task = iou_spawn(sleep_under_deadline, &r);
    let_others_run();
    CHECK(iou_call_at(iou_loop_current(), r.deadline, cancel_sleeper, &r) != NULL);
    CHECK_EQ(iou_join(r.task), 0);
    CHECK(r.result == -ECANCELED || r.result == -ETIMEDOUT);
    CHECK_EQ(r.next_result, -ECANCELED);
    fprintf(stderr, "sleep: deadline then cancel in one pass -> %s\n", iou_strerror(r.result));
    check_nothing_leaked();
    return 0;
}

static void test_sleep_deadline_then_cancel(void)
{
    CHECK_EQ(run_virtual(sleep_race_main, NULL), 0);
}

/* ---- deadline vs completion ------------------------------------------------- */

static const char payload[] = "0123456789";
#define PAYLOAD_LEN (sizeof(payload) - 1)

/* Nothing is lost: either the recv returned the bytes, or it was cancelled
 * before taking any (reporting `interruption`) and they are still in the
 * socket. */
static void check_nothing_lost(recv_race *r, int interruption, const char *label)
{
    fprintf(stderr, "%s -> %zd\n", label, r->result);
    if (r->result >= 0) {
        CHECK_EQ(r->result, PAYLOAD_LEN);
        CHECK(memcmp(r->buf, payload, PAYLOAD_LEN) == 0);
        return;
    }
    CHECK_EQ(r->result, interruption);
    char rest[16];
    CHECK_EQ(recv(r->sv[0], rest, sizeof(rest), MSG_DONTWAIT), PAYLOAD_LEN);
    CHECK(memcmp(rest, payload, PAYLOAD_LEN) == 0);
}

static void send_payload(void *arg)
{
    recv_race *r = arg;
    CHECK_EQ(send(r->sv[1], payload, PAYLOAD_LEN, 0), PAYLOAD_LEN);
}

/* The data and the deadline arrive in one fire-timers pass (the order set by
 * which timer was armed first), before the kernel's answer is reaped. */
static void race_data_with_deadline(bool deadline_first)
{
    recv_race r = {.deadline = iou_now() + MS(10)};
    make_socketpair(r.sv);
    iou_loop *l = iou_loop_current();
    if (!deadline_first)
        CHECK(iou_call_at(l, r.deadline, send_payload, &r) != NULL);
    r.task = iou_spawn(recv_under_deadline, &r);
    let_others_run();
    CHECK_EQ(r.task->state, IOU__TASK_PARKED);
    if (deadline_first)
        CHECK(iou_call_at(l, r.deadline, send_payload, &r) != NULL);
    CHECK_EQ(iou_join(r.task), 0);
    check_nothing_lost(&r, -ETIMEDOUT,
                       deadline_first ? "recv: deadline, then data" : "recv: data, then deadline");
    close(r.sv[0]);
    close(r.sv[1]);
}

/* The completion has been reaped (the task is ready) and the deadline passes
 * before the task resumes: the real result wins, strictly. */
static void completion_then_deadline_before_resume(void)
{
    recv_race r = {.deadline = iou_now() + MS(50)};
    make_socketpair(r.sv);
    r.task = iou_spawn(recv_under_deadline, &r);
    let_others_run();
    send_payload(&r);
    while (r.task->state != IOU__TASK_READY)
        let_others_run(); /* each yield polls the ring once */
    bool reaped_in_time = iou_now() < r.deadline;
    while (iou_now() < r.deadline)
        ; /* the deadline passes while the task waits in the ready queue */
    CHECK_EQ(iou_join(r.task), 0);
    if (reaped_in_time) {
        CHECK_EQ(r.result, PAYLOAD_LEN);
        CHECK(memcmp(r.buf, payload, PAYLOAD_LEN) == 0);
    } else {
        check_nothing_lost(&r, -ETIMEDOUT, "recv: completion slower than the deadline (overloaded?)");
    }
    close(r.sv[0]);
    close(r.sv[1]);
}

static void cancel_recv_task(void *arg)
{
    iou_cancel(((recv_race *)arg)->task);
}

/* All three in one pass: the deadline, the data, the cancellation. The data
 * is either returned or left in the socket, and the error, if any, is the
 * cancellation's. */
static void race_deadline_data_cancel(void)
{
    recv_race r = {.deadline = iou_now() + MS(10)};
    make_socketpair(r.sv);
    iou_loop *l = iou_loop_current();
    r.task = iou_spawn(recv_under_deadline, &r);
    let_others_run();
    CHECK(iou_call_at(l, r.deadline, send_payload, &r) != NULL);
    CHECK(iou_call_at(l, r.deadline, cancel_recv_task, &r) != NULL);
    CHECK_EQ(iou_join(r.task), 0);
    check_nothing_lost(&r, -ECANCELED, "recv: deadline, data, cancel");
    close(r.sv[0]);
    close(r.sv[1]);
}

static int deadline_vs_completion_main(void *arg)
{
    (void)arg;
    race_data_with_deadline(true);
    race_data_with_deadline(false);
    completion_then_deadline_before_resume();
    race_deadline_data_cancel();
    check_nothing_leaked();
    return 0;
}

static void test_deadline_vs_completion(void)
{
    CHECK_EQ(run_or_skip(deadline_vs_completion_main, NULL), 0);
}

int main(void)
{
    test_outside_a_task();
    test_sleep_deadline();
    test_recv_deadline();
    test_nested_scopes();
    test_timeout();
    test_deadline_is_per_task();
    test_cancel_beats_expired_deadline();
    test_cancel_beats_deadline_same_iteration();
    test_sleep_deadline_then_cancel();
    test_deadline_vs_completion();
    puts("test_deadline: ok");
    return 0;
}
