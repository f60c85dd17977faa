/*
 * The test-only feature mask (IOU_TEST_DISABLE, engine/feature_mask.h): each
 * masked feature is really off, and its fallback really runs.
 *
 *   defer_taskrun, coop_taskrun: the ring was set up without that mode;
 *   registered_ring, ext_arg: not in use (a timed wait with I/O in flight
 *     still ends on time: liburing bounds it with a timeout SQE);
 *   bufring: no ring; iou_recv_buf hands out heap buffers;
 *   multishot: a stream receives with plain recvs (never armed), iou_serve
 *     accepts with single-shot accepts and still serves.
 *
 * Run without the variable it checks the parser itself and that the best
 * features are on where the kernel has them.
 */
#include "check.h"
#include "feature_mask.h"
#include "loop.h"
#include "stream.h"
#include "testutil.h"

#include <sys/socket.h>

static unsigned masked;

static void check_timed_wait(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    char c;
    uint64_t t0 = iou_now();
    uint64_t prev = iou_deadline_push(t0 + MS(20));
    CHECK_EQ(iou_read(p[0], &c, 1, -1), -ETIMEDOUT); /* a read in flight, a timer */
    iou_deadline_pop(prev);
    CHECK(iou_now() - t0 >= MS(20));
    close(p[0]);
    close(p[1]);
}

static void check_recv_buf(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_EQ(send(sv[1], "hello", 5, 0), 5);
    iou_buf b;
    CHECK_EQ(iou_recv_buf(sv[0], &b, 0), 5);
    CHECK(memcmp(b.data, "hello", 5) == 0);
    if (masked & IOU__FEAT_BUFRING)
        CHECK(b.owner_ == NULL); /* a heap buffer */
    iou_buf_release(&b);
    close(sv[0]);
    close(sv[1]);
}

static int writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    check_send_all(fd, "0123456789", 10);
    return 0;
}

static void check_stream(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    iou_stream *s = iou_stream_open(sv[0]);
    iou_task *w = spawn_checked(writer, (void *)(intptr_t)sv[1]);
    char buf[10];
    CHECK_EQ(iou_stream_read_exact(s, buf, 10), 10);
    bool armed = s->armed; /* a multishot stays armed after delivering */
    CHECK_EQ(iou_join(w), 0);
    if (masked & IOU__FEAT_MULTISHOT)
        CHECK(!armed);
    CHECK_EQ(iou_stream_close(s), 0);
    close(sv[1]);
}

static int echo_once(int fd, void *arg)
{
    (void)arg;
    char c;
    if (iou_recv(fd, &c, 1, 0) == 1)
        iou_send(fd, &c, 1, 0);
    return 0;
}

static int serve_task(void *arg)
{
    return iou_serve(*(int *)arg, echo_once, NULL);
}

static void check_serve(void)
{
    int lfd = iou_listen_tcp("127.0.0.1", 0, 16);
    CHECK(lfd >= 0);
    iou_task *srv = spawn_checked(serve_task, &lfd);
    for (int i = 0; i < 3; i++) { /* several connections: the accept is re-armed */
        int c = iou_dial_tcp("127.0.0.1", (uint16_t)iou_local_port(lfd));
        CHECK(c >= 0);
        char x = 'a';
        CHECK_EQ(iou_send(c, &x, 1, 0), 1);
        CHECK_EQ(iou_recv(c, &x, 1, 0), 1);
        CHECK_EQ(x, 'a');
        iou_close(c);
    }
    iou_cancel(srv);
    CHECK_EQ(iou_join(srv), -ECANCELED);
    iou_close(lfd);
}

static int main_task(void *arg)
{
    (void)arg;
    unsigned active = iou__features_active(iou__loop());
    fprintf(stderr, "IOU_TEST_DISABLE=%s: masked 0x%x, active 0x%x\n",
            getenv("IOU_TEST_DISABLE") ? getenv("IOU_TEST_DISABLE") : "", masked, active);
    CHECK_EQ(active & masked, 0);
    if (masked == 0) /* this kernel (6.x) has all of them */
        CHECK(active & IOU__FEAT_DEFER_TASKRUN && active & IOU__FEAT_EXT_ARG &&
              active & IOU__FEAT_MULTISHOT && active & IOU__FEAT_BUFRING);
    if ((masked & IOU__FEAT_DEFER_TASKRUN) && !(masked & IOU__FEAT_COOP_TASKRUN))
        CHECK(active & IOU__FEAT_COOP_TASKRUN); /* the next best mode */
    check_timed_wait();
    check_recv_buf();
    check_stream();
    check_serve();
    return 0;
}

int main(void)
{
    watchdog(60);
    if (on_epoll())
        SKIP("the masks switch io_uring features: nothing to mask on epoll\n");
    /* The parser: names, "all", unknown names ignored. */
    setenv("IOU_TEST_DISABLE_SAVED", getenv("IOU_TEST_DISABLE") ? getenv("IOU_TEST_DISABLE") : "", 1);
    setenv("IOU_TEST_DISABLE", "multishot,,ext_arg", 1);
    CHECK_EQ(iou__features_disabled_env(), IOU__FEAT_MULTISHOT | IOU__FEAT_EXT_ARG);
    setenv("IOU_TEST_DISABLE", "direct_send", 1); /* iou's own shortcut (test_direct_send) */
    CHECK_EQ(iou__features_disabled_env(), IOU__FEAT_DIRECT_SEND);
    setenv("IOU_TEST_DISABLE", "all", 1);
    CHECK_EQ(iou__features_disabled_env() & 0x7f, 0x7f);
    setenv("IOU_TEST_DISABLE", getenv("IOU_TEST_DISABLE_SAVED"), 1);
    masked = iou__features_disabled_env();
    CHECK_EQ(run_or_skip(main_task, NULL), 0);
    return 0;
}
