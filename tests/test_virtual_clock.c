/*
 * The virtual clock: when every task waits on time alone, time jumps to the
 * next timer. A 2 s sleep takes microseconds yet iou_now() sees 2 s pass;
 * many sleepers wake in deadline order at exactly their deadlines; and with
 * real I/O in flight time does not jump past it before it had its chance.
 */
#include "testutil.h"

#include <liburing.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- sleep(2 s) ---------------------------------------------------------------------- */

static int sleep_two_seconds(void *arg)
{
    uint64_t *elapsed = arg;
    uint64_t t0 = iou_now();
    CHECK_EQ(iou_sleep(MS(2000)), 0);
    *elapsed = iou_now() - t0;
    return 0;
}

static void test_sleep_2s(void)
{
    uint64_t virtual_elapsed = 0;
    uint64_t t0 = mono_ns();
    CHECK_EQ(run_virtual(sleep_two_seconds, &virtual_elapsed), 0);
    uint64_t wall = mono_ns() - t0;
    fprintf(stderr, "sleep(2 s): %.3f ms wall, %.3f s on iou_now()\n", (double)wall / 1e6,
            (double)virtual_elapsed / 1e9);
    CHECK(wall < MS(10));
    CHECK(virtual_elapsed >= MS(2000));
}

/* ---- many sleepers -------------------------------------------------------------------- */

enum { SLEEPERS = 1000, ROUNDS = 3 };

typedef struct sleeper {
    uint64_t start;
    uint64_t naps[ROUNDS];
    int id;
} sleeper;

typedef struct wake {
    uint64_t at;
    int id;
} wake;

static wake wakes[SLEEPERS * ROUNDS];
static int nwakes;

static int sleeper_task(void *arg)
{
    sleeper *s = arg;
    uint64_t expect = s->start;
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ(iou_sleep(s->naps[r]), 0);
        expect += s->naps[r];
        CHECK_EQ(iou_now(), expect); /* woken exactly at the deadline */
        wakes[nwakes++] = (wake){iou_now(), s->id};
    }
    return 0;
}

static int many_sleepers(void *arg)
{
    uint64_t *seed = arg;
    static sleeper s[SLEEPERS];
    iou_task *t[SLEEPERS];
    uint64_t start = iou_now();
    nwakes = 0;
    for (int i = 0; i < SLEEPERS; i++) {
        s[i].id = i;
        s[i].start = start; /* no time passes while spawning: nothing waits on time */
        for (int r = 0; r < ROUNDS; r++)
            s[i].naps[r] = MS(1 + rng_next(seed) % 10000); /* up to 10 s each */
        t[i] = iou_spawn(sleeper_task, &s[i]);
        CHECK(t[i] != NULL);
    }
    CHECK_EQ(iou_gather(t, SLEEPERS, NULL), 0);
    CHECK_EQ(nwakes, SLEEPERS * ROUNDS);
    for (int i = 1; i < nwakes; i++)
        CHECK(wakes[i - 1].at <= wakes[i].at); /* in time order */
    return 0;
}

static void test_many_sleepers(void)
{
    uint64_t seed = rng_seed();
    uint64_t t0 = mono_ns();
    CHECK_EQ(run_virtual(many_sleepers, &seed), 0);
    CHECK(mono_ns() - t0 < MS(1000)); /* ~30 s of virtual time */
}

/* ---- callbacks on a virtual loop ---------------------------------------------------- */

static void note_time(void *arg)
{
    *(uint64_t *)arg = iou_now();
}

static void test_call_later_virtual(void)
{
    iou_loop_opts o = {.virtual_clock = true};
    int err = 0;
    iou_loop *l = iou_loop_new_ex(&o, &err);
    if (l == NULL && (err == -ENOSYS || err == -EPERM))
        SKIP("io_uring unavailable: %s", iou_strerror(err));
    CHECK(l != NULL);
    uint64_t t0 = iou_now(), fired = 0, wall = mono_ns();
    CHECK(iou_call_later(l, MS(3600 * 1000), note_time, &fired) != NULL);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(fired - t0, MS(3600 * 1000));
    CHECK(mono_ns() - wall < MS(10));
    iou_loop_free(l);
}

/* ---- real I/O in flight ---------------------------------------------------------------- */

typedef struct pair {
    int fd[2];
} pair;

static int recv_with_deadline(void *arg)
{
    pair *p = arg;
    char buf[8] = {0};
    uint64_t prev = iou_deadline_push(iou_now() + MS(1000));
    ssize_t n = iou_recv(p->fd[0], buf, sizeof(buf), 0);
    iou_deadline_pop(prev);
    CHECK_EQ(n, 2);
    CHECK(memcmp(buf, "hi", 2) == 0);
    return 0;
}

static int send_after_sleep(void *arg)
{
    pair *p = arg;
    CHECK_EQ(iou_sleep(MS(10)), 0);
    CHECK_EQ(iou_send(p->fd[1], "hi", 2, 0), 2);
    return 0;
}

static int io_and_sleep(void *arg)
{
    (void)arg;
    pair p;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, p.fd), 0);
    iou_task *t[2] = {iou_spawn(recv_with_deadline, &p), iou_spawn(send_after_sleep, &p)};
    CHECK_EQ(iou_gather(t, 2, NULL), 0);
    close(p.fd[0]);
    close(p.fd[1]);
    return 0;
}

static void test_io_in_flight(void)
{
    CHECK_EQ(run_virtual(io_and_sleep, NULL), 0);
}

/* With I/O in flight and nothing else, the deadline still comes. */
static int recv_times_out(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char b;
    uint64_t t0 = iou_now();
    uint64_t prev = iou_deadline_push(t0 + MS(20));
    CHECK_EQ(iou_recv(sv[0], &b, 1, 0), -ETIMEDOUT);
    iou_deadline_pop(prev);
    CHECK(iou_now() - t0 >= MS(20));
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static void test_io_deadline(void)
{
    CHECK_EQ(run_virtual(recv_times_out, NULL), 0);
}

/*
 * A peer outside the loop (a thread) answers only after an unrelated
 * callback request has completed (2 ms of real time) without waking any
 * task. That completion must not let time jump to the recv's 500 ms
 * deadline: the recv has not had its 500 ms (of real waiting) yet. The
 * order is an event, not a delay: the completion's callback signals the
 * thread through a pipe, and the thread sends only then.
 */
static int unrelated_done[2]; /* pipe: the callback -> the late sender */

static void *late_sender(void *arg)
{
    int fd = *(int *)arg;
    char c;
    CHECK_EQ(read(unrelated_done[0], &c, 1), 1); /* the unrelated completion came */
    CHECK_EQ(write(fd, "hi", 2), 2);
    return NULL;
}

static void prep_timeout(struct io_uring_sqe *sqe, void *arg)
{
    io_uring_prep_timeout(sqe, arg, 0, 0);
}

static void signal_sender(void *arg, int res, uint32_t flags)
{
    (void)arg;
    (void)res;
    (void)flags;
    CHECK_EQ(write(unrelated_done[1], "x", 1), 1);
}

static int early_unrelated_completion(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(pipe(unrelated_done), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, late_sender, &sv[1]), 0);
    static struct __kernel_timespec ts = {.tv_nsec = 2 * 1000 * 1000};
    CHECK_EQ(iou_loop_submit_sqe(iou_loop_current(), prep_timeout, &ts, signal_sender, NULL), 0);
    char buf[4];
    uint64_t prev = iou_deadline_push(iou_now() + MS(500));
    ssize_t n = iou_recv(sv[0], buf, sizeof(buf), 0);
    iou_deadline_pop(prev);
    pthread_join(th, NULL);
    CHECK_EQ(n, 2);
    close(sv[0]);
    close(sv[1]);
    close(unrelated_done[0]);
    close(unrelated_done[1]);
    return 0;
}

static void test_early_unrelated_completion(void)
{
    CHECK_EQ(run_virtual(early_unrelated_completion, NULL), 0);
}

/*
 * The converse: unrelated completions arriving every millisecond (a multishot
 * timeout, 2000 shots) must not freeze the clock either. A recv nobody answers,
 * with a 50 ms deadline, times out after about 50 ms of real waiting, not
 * after the stream of completions has ended (2 s).
 */
#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6) /* Linux 6.4; older liburing headers lack it */
#endif

static struct __kernel_timespec tick_ts = {.tv_nsec = 1000 * 1000};

static void prep_ticks(struct io_uring_sqe *sqe, void *arg)
{
    (void)arg;
    io_uring_prep_timeout(sqe, &tick_ts, 2000, IORING_TIMEOUT_MULTISHOT);
}

static void count_tick(void *arg, int res, uint32_t flags)
{
    (void)flags;
    if (res == -EINVAL)
        *(int *)arg = -1; /* no multishot timeouts: kernel < 6.4 */
}

static int steady_completions(void *arg)
{
    int *supported = arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(iou_loop_submit_sqe(iou_loop_current(), prep_ticks, NULL, count_tick, supported), 0);
    char b;
    uint64_t t0 = iou_now(), wall = mono_ns();
    uint64_t prev = iou_deadline_push(t0 + MS(50));
    ssize_t n = iou_recv(sv[0], &b, 1, 0);
    iou_deadline_pop(prev);
    if (*supported < 0)
        return 0;
    CHECK_EQ(n, -ETIMEDOUT);
    CHECK(iou_now() - t0 >= MS(50));
    CHECK(mono_ns() - wall < MS(1000));
    close(sv[0]);
    close(sv[1]);
    return 0; /* iou_run's loop free cancels the remaining shots */
}

static void test_steady_unrelated_completions(void)
{
    int supported = 0;
    CHECK_EQ(run_virtual(steady_completions, &supported), 0);
    if (supported < 0)
        fprintf(stderr, "note: no IORING_TIMEOUT_MULTISHOT (kernel < 6.4): part skipped\n");
}

int main(void)
{
    test_sleep_2s();
    test_many_sleepers();
    test_call_later_virtual();
    test_io_in_flight();
    test_io_deadline();
    /* Their unrelated completions are raw io_uring timeouts: io_uring only. */
    if (on_epoll()) {
        fputs("note: epoll backend: raw-SQE parts skipped\n", stderr);
        return 0;
    }
    test_early_unrelated_completion();
    test_steady_unrelated_completions();
    return 0;
}
