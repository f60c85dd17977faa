/*
 * A tiny ring under load: 4 SQ entries (so a 16-entry CQ) and 2,000 tasks
 * each doing NOPs and pipe round trips. The SQ fills on almost every
 * submission (the loop must flush and retry, never fail the operation) and
 * completions overflow the CQ into the kernel's list (none may be lost: the
 * backend's overflow counter proves it happened). Every operation must
 * return its real result, exactly once.
 *
 * Then the smallest ring (1 SQ entry, 4 CQ entries) and 5,000 tasks ping-
 * ponging on socketpairs, half of them under deadlines that expire while
 * their receive is in flight, and a cancel storm: no completion lost (every
 * byte sent is received or drained), no deadlock (the watchdog), overflow
 * seen.
 */
#include "backend.h"
#include "check.h"
#include "loop.h"
#include "loopcheck.h"
#include "testutil.h"

#include <errno.h>
#include <iou.h>
#include <sys/socket.h>
#include <unistd.h>

enum { TASKS = 2000, NOPS = 20 };

static long nops_ok, bytes_ok;

/* Times this thread's loop found the CQ overflowed and flushed it. */
static uint64_t cq_overflows(void)
{
    iou_loop_stats st = {.size = sizeof(st)};
    CHECK_EQ(iou_loop_get_stats(NULL, &st), 0);
    return st.cq_overflows;
}

static int worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < NOPS; i++)
        nops_ok += iou_nop() == 0;
    int p[2];
    CHECK(pipe(p) == 0);
    char out = 'x', in = 0;
    bytes_ok += iou_write(p[1], &out, 1, -1) == 1;
    bytes_ok += iou_read(p[0], &in, 1, -1) == 1 && in == 'x';
    iou_close(p[0]);
    iou_close(p[1]);
    return 0;
}

static int main_task(void *arg)
{
    (void)arg;
    static iou_task *t[TASKS];
    for (int i = 0; i < TASKS; i++)
        CHECK((t[i] = iou_spawn(worker, NULL)) != NULL);
    CHECK_EQ(iou_gather(t, TASKS, NULL), 0);
    CHECK_EQ(iou__loop()->ops_inflight, 0);
    fprintf(stderr, "4-entry ring: %llu CQ overflows handled\n",
            (unsigned long long)cq_overflows());
    if (!on_epoll()) /* epoll has no CQ: the rest holds on both */
        CHECK(cq_overflows() > 0);
    return 0;
}

/* ---- the smallest ring, sockets, deadlines and cancels ------------------------------ */

enum { PAIRS = 2500, ROUNDS = 20 };

typedef struct pair {
    int fd[2];
    uint64_t sent, received;
    iou_task *t[2];
} pair;

static pair *pairs;

/* One side: sends a byte, receives one (half the rounds under a deadline
 * short enough to expire while the peer has not answered yet). */
static int pinger(void *arg)
{
    pair *p = arg;
    int side = iou_self() == p->t[1];
    int fd = p->fd[side];
    uint64_t rng = (uint64_t)(p - pairs) * 2 + (unsigned)side + 1;
    for (int i = 0; i < ROUNDS; i++) {
        char c = 'x';
        ssize_t n = iou_send(fd, &c, 1, 0);
        if (n == -ECANCELED)
            break;
        CHECK_EQ(n, 1);
        p->sent++;
        bool bounded = rng_next(&rng) & 1;
        uint64_t prev = bounded ? iou_deadline_push(iou_now() + rng_next(&rng) % 200000) : 0;
        n = iou_recv(fd, &c, 1, 0);
        if (bounded)
            iou_deadline_pop(prev);
        CHECK(n == 1 || n == -ETIMEDOUT || n == -ECANCELED);
        if (n == 1)
            p->received++;
        if (n == -ECANCELED)
            break;
    }
    return 0;
}

static int sockets_task(void *arg)
{
    (void)arg;
    pairs = calloc(PAIRS, sizeof(*pairs));
    CHECK(pairs != NULL);
    static iou_task *all[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pairs[i].fd) == 0);
        for (int k = 0; k < 2; k++)
            all[2 * i + k] = pairs[i].t[k] = spawn_checked(pinger, &pairs[i]);
    }
    settle();
    for (int i = 0; i < PAIRS; i += 7) { /* a cancel storm: both sides (a lone one would wait) */
        iou_cancel(pairs[i].t[i & 1]);
        iou_cancel(pairs[i].t[!(i & 1)]);
    }
    CHECK_EQ(iou_gather(all, 2 * PAIRS, NULL), 0);
    uint64_t sent = 0, received = 0;
    for (int i = 0; i < PAIRS; i++) {
        char buf[64];
        ssize_t n;
        for (int k = 0; k < 2; k++)
            while ((n = read(pairs[i].fd[k], buf, sizeof(buf))) > 0)
                received += (uint64_t)n;
        sent += pairs[i].sent;
        received += pairs[i].received;
        close(pairs[i].fd[0]);
        close(pairs[i].fd[1]);
    }
    free(pairs);
    fprintf(stderr, "1-entry ring: %llu bytes sent, all received; %llu CQ overflows handled\n",
            (unsigned long long)sent, (unsigned long long)cq_overflows());
    CHECK_EQ(received, sent);
    if (!on_epoll()) /* epoll has no CQ: the rest holds on both */
        CHECK(cq_overflows() > 0);
    check_nothing_leaked();
    return 0;
}

int main(void)
{
    watchdog(100);
    raise_fd_limit();
    iou_loop_opts opts = {.ring_entries = 4};
    CHECK_EQ(run_ex_or_skip(main_task, NULL, &opts), 0);
    CHECK_EQ(nops_ok, (long)TASKS * NOPS);
    CHECK_EQ(bytes_ok, 2L * TASKS);
    opts.ring_entries = 1;
    CHECK_EQ(run_ex_or_skip(sockets_task, NULL, &opts), 0);
    return 0;
}
