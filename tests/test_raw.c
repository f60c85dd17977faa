/*
 * Raw SQEs: a task prepares any SQE and awaits it (NOP, TIMEOUT, READ);
 * cancellation and deadlines cancel it in the kernel and wait for its
 * completion; a multishot request from a task wakes it once; the callback
 * flavour receives every CQE of a multishot request (timeout, poll); and
 * iou_loop_free cancels callback requests still in flight, whose callbacks
 * still see the final completion.
 */
#include "testutil.h"

#include "loop.h"

#include <liburing.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6) /* Linux 6.4; older liburing headers lack it */
#endif

static iou_loop *new_loop(void)
{
    int err = 0;
    iou_loop *l = iou_loop_new_ex(NULL, &err);
    if (l == NULL && (err == -ENOSYS || err == -EPERM))
        SKIP("io_uring unavailable: %s", iou_strerror(err));
    CHECK(l != NULL);
    return l;
}

static struct __kernel_timespec ts_ns(uint64_t ns)
{
    return (struct __kernel_timespec){.tv_sec = (long long)(ns / 1000000000u),
                                      .tv_nsec = (long long)(ns % 1000000000u)};
}

/* ---- prep functions -------------------------------------------------------------- */

static void prep_nop(struct io_uring_sqe *sqe, void *arg)
{
    (void)arg;
    io_uring_prep_nop(sqe);
}

/* A NOP whose prep asks for no CQE on success: iou must still get one. */
static void prep_nop_skip(struct io_uring_sqe *sqe, void *arg)
{
    (void)arg;
    io_uring_prep_nop(sqe);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS | IOSQE_IO_LINK;
}

typedef struct timeout_arg {
    struct __kernel_timespec ts;
    unsigned count;
    unsigned flags;
} timeout_arg;

static void prep_timeout(struct io_uring_sqe *sqe, void *arg)
{
    timeout_arg *t = arg;
    io_uring_prep_timeout(sqe, &t->ts, t->count, t->flags);
}

typedef struct io_arg {
    int fd;
    void *buf;
    size_t len;
} io_arg;

static void prep_read(struct io_uring_sqe *sqe, void *arg)
{
    io_arg *a = arg;
    io_uring_prep_read(sqe, a->fd, a->buf, (unsigned)a->len, (uint64_t)-1);
}

static void prep_recv(struct io_uring_sqe *sqe, void *arg)
{
    io_arg *a = arg;
    io_uring_prep_recv(sqe, a->fd, a->buf, a->len, 0);
}

static void prep_poll_multishot(struct io_uring_sqe *sqe, void *arg)
{
    io_uring_prep_poll_multishot(sqe, *(int *)arg, POLLIN);
}

static void prep_cancel_fd(struct io_uring_sqe *sqe, void *arg)
{
    io_uring_prep_cancel_fd(sqe, *(int *)arg, 0);
}

static size_t inflight(void)
{
    return iou_loop_current()->ops_inflight;
}

/* ---- task flavour ------------------------------------------------------------------ */

static int basic_ops(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_submit_sqe(prep_nop, NULL), 0);
    CHECK_EQ(iou_submit_sqe(prep_nop_skip, NULL), 0);
    CHECK_EQ(iou_submit_sqe(NULL, NULL), -EINVAL);

    timeout_arg t = {.ts = ts_ns(MS(2))};
    uint64_t t0 = iou_now();
    CHECK_EQ(iou_submit_sqe(prep_timeout, &t), -ETIME);
    CHECK(iou_now() - t0 >= MS(2));

    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(write(p[1], "hello", 5), 5);
    char buf[16] = {0};
    io_arg r = {.fd = p[0], .buf = buf, .len = sizeof(buf)};
    CHECK_EQ(iou_submit_sqe(prep_read, &r), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(inflight(), 0);
    return 0;
}

static void test_task_basic(void)
{
    CHECK_EQ(run_or_skip(basic_ops, NULL), 0);
    CHECK_EQ(iou_submit_sqe(prep_nop, NULL), -EPERM); /* outside a task */
}

static int blocked_recv(void *arg)
{
    io_arg *a = arg;
    return iou_submit_sqe(prep_recv, a);
}

static int cancel_blocked(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char buf[8];
    io_arg a = {.fd = sv[0], .buf = buf, .len = sizeof(buf)};
    iou_task *t = iou_spawn(blocked_recv, &a);
    CHECK(t != NULL);
    iou_yield();      /* t submits its recv */
    CHECK_EQ(iou_nop(), 0); /* one round trip: the recv is in the kernel now */
    CHECK_EQ(inflight(), 1);
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), -ECANCELED);
    CHECK_EQ(inflight(), 0); /* the kernel's completion was awaited */
    /* The socket is intact: data sent now is received by a fresh raw recv. */
    CHECK_EQ(write(sv[1], "x", 1), 1);
    CHECK_EQ(iou_submit_sqe(prep_recv, &a), 1);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static void test_task_cancel(void)
{
    CHECK_EQ(run_or_skip(cancel_blocked, NULL), 0);
}

static int deadline_raw(void *arg)
{
    (void)arg;
    timeout_arg t = {.ts = ts_ns(MS(10000))};
    uint64_t t0 = mono_ns();
    uint64_t prev = iou_deadline_push(iou_now() + MS(5));
    CHECK_EQ(iou_submit_sqe(prep_timeout, &t), -ETIMEDOUT);
    CHECK_EQ(iou_submit_sqe(prep_nop, NULL), -ETIMEDOUT); /* past it: not even submitted */
    iou_deadline_pop(prev);
    CHECK(mono_ns() - t0 < MS(2000));
    CHECK_EQ(inflight(), 0);
    CHECK_EQ(iou_submit_sqe(prep_nop, NULL), 0);
    return 0;
}

static void test_task_deadline(void)
{
    CHECK_EQ(run_or_skip(deadline_raw, NULL), 0);
}

/* A multishot request from a task: woken once, by the final CQE; the first
 * CQE's res is returned and the request is cancelled in the kernel. */
static int task_multishot(void *arg)
{
    bool *supported = arg;
    timeout_arg t = {.ts = ts_ns(MS(1)), .count = 0, .flags = IORING_TIMEOUT_MULTISHOT};
    int r = iou_submit_sqe(prep_timeout, &t);
    CHECK_EQ(inflight(), 0);
    if (r == -EINVAL)
        return 0; /* the kernel lacks multishot timeouts (before 6.4) */
    *supported = true;
    CHECK_EQ(r, -ETIME);
    CHECK_EQ(iou_submit_sqe(prep_nop, NULL), 0);
    return 0;
}

static void test_task_multishot(void)
{
    bool supported = false;
    CHECK_EQ(run_or_skip(task_multishot, &supported), 0);
    if (!supported)
        fprintf(stderr, "note: no IORING_TIMEOUT_MULTISHOT (kernel < 6.4): task multishot part skipped\n");
}

/* ---- callback flavour ---------------------------------------------------------------- */

typedef struct cqe_log {
    int n;
    int res[16];
    uint32_t flags[16];
    int resubmit; /* result of a resubmission attempted from the final CQE */
} cqe_log;

static void log_cqe(void *arg, int res, uint32_t flags)
{
    cqe_log *c = arg;
    CHECK(c->n < 16);
    c->res[c->n] = res;
    c->flags[c->n] = flags;
    c->n++;
}

static void test_callback_multishot_timeout(void)
{
    iou_loop *l = new_loop();
    cqe_log c = {0};
    timeout_arg t = {.ts = ts_ns(MS(1)), .count = 3, .flags = IORING_TIMEOUT_MULTISHOT};
    CHECK_EQ(iou_loop_submit_sqe(l, prep_timeout, &t, log_cqe, &c), 0);
    CHECK_EQ(iou_loop_run(l), 0); /* idle once the final CQE arrived */
    iou_loop_free(l);
    if (c.n == 1 && c.res[0] == -EINVAL) {
        fprintf(stderr, "note: no IORING_TIMEOUT_MULTISHOT (kernel < 6.4): part skipped\n");
        return;
    }
    CHECK_EQ(c.n, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(c.res[i], -ETIME);
        CHECK_EQ(!!(c.flags[i] & IORING_CQE_F_MORE), i < 2);
    }
}

/* Multishot poll on a pipe: each CQE reads the byte and writes the next; after
 * the third, a raw ASYNC_CANCEL by fd ends the poll. */
typedef struct poller {
    iou_loop *loop;
    int fds[2];
    int events;
    cqe_log final;
    cqe_log cancel;
} poller;

static void on_poll(void *arg, int res, uint32_t flags)
{
    poller *p = arg;
    if (!(flags & IORING_CQE_F_MORE)) {
        log_cqe(&p->final, res, flags);
        return;
    }
    CHECK(res & POLLIN);
    char b;
    CHECK_EQ(read(p->fds[0], &b, 1), 1);
    CHECK_EQ(b, 'a' + p->events);
    p->events++;
    if (p->events < 3) {
        char next = (char)('a' + p->events);
        CHECK_EQ(write(p->fds[1], &next, 1), 1);
    } else {
        CHECK_EQ(iou_loop_submit_sqe(p->loop, prep_cancel_fd, &p->fds[0], log_cqe, &p->cancel), 0);
    }
}

static void test_callback_multishot_poll(void)
{
    poller p = {.loop = new_loop()};
    CHECK_EQ(pipe(p.fds), 0);
    CHECK_EQ(write(p.fds[1], "a", 1), 1);
    CHECK_EQ(iou_loop_submit_sqe(p.loop, prep_poll_multishot, &p.fds[0], on_poll, &p), 0);
    CHECK_EQ(iou_loop_run(p.loop), 0);
    CHECK_EQ(p.events, 3);
    CHECK_EQ(p.final.n, 1);
    CHECK_EQ(p.final.res[0], -ECANCELED);
    CHECK_EQ(p.cancel.n, 1);
    CHECK_EQ(p.cancel.res[0], 0); /* found and cancelled */
    CHECK_EQ(p.loop->ops_inflight, 0);
    iou_loop_free(p.loop);
    close(p.fds[0]);
    close(p.fds[1]);
}

static void test_callback_errors(void)
{
    iou_loop *l = new_loop();
    cqe_log c = {0};
    CHECK_EQ(iou_loop_submit_sqe(NULL, prep_nop, NULL, log_cqe, &c), -EINVAL);
    CHECK_EQ(iou_loop_submit_sqe(l, NULL, NULL, log_cqe, &c), -EINVAL);
    CHECK_EQ(iou_loop_submit_sqe(l, prep_nop, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(iou_loop_submit_sqe(l, prep_nop_skip, NULL, log_cqe, &c), 0);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(c.res[0], 0);
    iou_loop_free(l);
}

/* ---- iou_loop_free with callback requests in flight ---------------------------------- */

static iou_loop *free_loop;
static timeout_arg free_timeout;

/* On the final CQE, try to submit again: refused while the loop is freed. */
static void log_and_resubmit(void *arg, int res, uint32_t flags)
{
    cqe_log *c = arg;
    log_cqe(c, res, flags);
    if (!(flags & IORING_CQE_F_MORE))
        c->resubmit = iou_loop_submit_sqe(free_loop, prep_timeout, &free_timeout, log_cqe, c);
}

static void stop_cb(void *arg, int res, uint32_t flags)
{
    (void)res;
    (void)flags;
    iou_loop_stop(arg);
}

static void test_free_cancels_requests(void)
{
    iou_loop *l = free_loop = new_loop();
    cqe_log timeout_log = {.resubmit = 1}, poll_log = {.resubmit = 1};
    free_timeout = (timeout_arg){.ts = ts_ns(MS(3600 * 1000))};
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(iou_loop_submit_sqe(l, prep_timeout, &free_timeout, log_and_resubmit, &timeout_log), 0);
    CHECK_EQ(iou_loop_submit_sqe(l, prep_poll_multishot, &p[0], log_and_resubmit, &poll_log), 0);
    /* Run until a NOP comes back: the other two are in the kernel by then. */
    CHECK_EQ(iou_loop_submit_sqe(l, prep_nop, NULL, stop_cb, l), 0);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(l->ops_inflight, 2);
    uint64_t t0 = mono_ns();
    iou_loop_free(l);
    CHECK(mono_ns() - t0 < MS(2000));
    CHECK_EQ(timeout_log.n, 1);
    CHECK_EQ(timeout_log.res[0], -ECANCELED);
    CHECK_EQ(timeout_log.flags[0] & IORING_CQE_F_MORE, 0);
    CHECK_EQ(timeout_log.resubmit, -ECANCELED);
    CHECK_EQ(poll_log.n, 1);
    CHECK_EQ(poll_log.res[0], -ECANCELED);
    CHECK_EQ(poll_log.flags[0] & IORING_CQE_F_MORE, 0);
    CHECK_EQ(poll_log.resubmit, -ECANCELED);
    close(p[0]);
    close(p[1]);
}

/* Submitted but never run: the SQE is still in the ring when the loop is freed. */
static void test_free_unsubmitted(void)
{
    iou_loop *l = free_loop = new_loop();
    cqe_log c = {.resubmit = 1};
    free_timeout = (timeout_arg){.ts = ts_ns(MS(3600 * 1000))};
    CHECK_EQ(iou_loop_submit_sqe(l, prep_timeout, &free_timeout, log_and_resubmit, &c), 0);
    iou_loop_free(l);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(c.res[0], -ECANCELED);
}

/* A task blocked in a raw op when iou_run's main returns: cancelled, awaited. */
static int raw_forever(void *arg)
{
    timeout_arg *t = arg;
    return iou_submit_sqe(prep_timeout, t);
}

static int main_leaves_raw_task(void *arg)
{
    (void)arg;
    static timeout_arg t;
    t = (timeout_arg){.ts = ts_ns(MS(3600 * 1000))};
    iou_detach(iou_spawn(raw_forever, &t));
    iou_yield();
    return 5;
}

static void test_run_drains_raw_task(void)
{
    uint64_t t0 = mono_ns();
    CHECK_EQ(run_or_skip(main_leaves_raw_task, NULL), 5);
    CHECK(mono_ns() - t0 < MS(2000));
}

/* Raw SQEs are io_uring itself: on the epoll backend both flavours refuse
 * with -ENOTSUP (checked), and nothing else here can apply. */
static void ignore_cqe(void *arg, int res, uint32_t flags)
{
    (void)arg;
    (void)res;
    (void)flags;
}

static int refuse_main(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_submit_sqe(prep_nop, NULL), -ENOTSUP);
    CHECK_EQ(iou_loop_submit_sqe(iou_loop_current(), prep_nop, NULL, ignore_cqe, NULL), -ENOTSUP);
    return 0;
}

int main(void)
{
    if (on_epoll()) {
        CHECK_EQ(iou_run(refuse_main, NULL), 0);
        SKIP("raw SQEs need the io_uring backend (epoll refuses them: checked)");
    }
    test_task_basic();
    test_task_cancel();
    test_task_deadline();
    test_task_multishot();
    test_callback_multishot_timeout();
    test_callback_multishot_poll();
    test_callback_errors();
    test_free_cancels_requests();
    test_free_unsubmitted();
    test_run_drains_raw_task();
    return 0;
}
