/*
 * Invariant 1: the kernel owns what it was given. A task blocked in a read,
 * recv or accept whose buffer lives on its own stack is cancelled; the task
 * must not return (and its stack must not be recycled) before the kernel has
 * given the operation back. Evidence checked here:
 *   - each blocking call returns exactly once per task (no double resume);
 *   - its result is -ECANCELED, or the real count with the right bytes;
 *   - data the task did not get is still in the socket or pipe (nothing lost);
 *   - new tasks on the recycled stacks fill them with a pattern, more data is
 *     sent to every old endpoint, and the pattern survives;
 *   - no operation stays in flight, no fd leaks; ASan sees no use-after-free.
 */
#include "check.h"
#include "loop.h"
#include "task.h"
#include "testutil.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    MSG = 64,       /* bytes per message */
    AREA = 8192,    /* the victim's stack area; its buffer sits in the middle */
    FILL = 16384,   /* a filler's pattern area: covers where victims' buffers were */
    STEPS = 6,      /* cancellation and sending happen at random steps */
    MAX_VICTIMS = 1000,
};

enum kind { RECV, READ };

typedef struct victim {
    enum kind kind;
    int fd, peer;      /* the task reads fd; the test writes peer */
    uint32_t seed;     /* of the message sent to it */
    int pre_yields;    /* cancellation may land before it blocks */
    int cancel_step, send_step;
    bool send;         /* half the victims get data while (maybe) cancelled */
    bool on_stack;     /* its buffer really was on its task stack */
    int entered, returned;
    ssize_t result;
    size_t good;       /* leading bytes of the result that match the message */
    uintptr_t buf;
    iou_task *task;
} victim;

static ssize_t victim_op(victim *v, unsigned char *buf)
{
    if (v->kind == RECV)
        return iou_recv(v->fd, buf, MSG, 0);
    return iou_read(v->fd, buf, MSG, -1);
}

static bool within(uintptr_t p, size_t len, const void *lo, size_t size)
{
    uintptr_t a = (uintptr_t)lo;
    return p >= a && p + len <= a + size;
}

static int victim_body(void *arg)
{
    victim *v = arg;
    unsigned char area[AREA];
    unsigned char *buf = area + AREA / 2;
    memset(buf, 0xEE, MSG);
    v->buf = (uintptr_t)buf;
    v->on_stack = within(v->buf, MSG, iou_self()->stack->lo, iou_self()->stack->size);
    for (int i = 0; i < v->pre_yields; i++)
        iou_yield();
    v->entered++;
    v->result = victim_op(v, buf);
    v->returned++;
    if (v->result > 0)
        v->good = pattern_mismatch(buf, (size_t)v->result, v->seed, 0);
    return 0;
}

/* ---- endpoints --------------------------------------------------------------- */

static void open_pair(victim *v)
{
    int p[2];
    if (v->kind == RECV)
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) == 0);
    else
        CHECK(pipe2(p, O_CLOEXEC) == 0);
    v->fd = p[0];
    v->peer = p[1];
}

static void send_msg(victim *v)
{
    unsigned char msg[MSG];
    pattern_fill(msg, MSG, v->seed, 0);
    CHECK_EQ(write(v->peer, msg, MSG), MSG);
}

/* What is still unread in v->fd, without blocking (up to len bytes). */
static ssize_t drain(victim *v, unsigned char *buf, size_t len)
{
    struct pollfd pfd = {.fd = v->fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) != 1)
        return 0;
    ssize_t n = read(v->fd, buf, len);
    CHECK(n >= 0);
    return n;
}

/*
 * The task got the message (all of it, or a prefix with the rest still
 * queued) or -ECANCELED with the whole message still queued: never both,
 * never neither.
 */
static void check_outcome(victim *v)
{
    CHECK_EQ(v->entered, 1);
    CHECK_EQ(v->returned, 1);
    unsigned char rest[2 * MSG];
    ssize_t left = drain(v, rest, sizeof(rest));
    if (!v->send) {
        CHECK_EQ(v->result, -ECANCELED);
        CHECK_EQ(left, 0);
        return;
    }
    if (v->result == -ECANCELED) {
        CHECK_EQ(left, MSG);
        CHECK_EQ(pattern_mismatch(rest, MSG, v->seed, 0), MSG);
        return;
    }
    CHECK(v->result > 0 && v->result <= MSG);
    CHECK_EQ(v->good, v->result);
    CHECK_EQ(left, MSG - v->result);
    CHECK_EQ(pattern_mismatch(rest, (size_t)left, v->seed, (uint64_t)v->result), left);
}

static void close_pair(victim *v)
{
    CHECK_EQ(close(v->fd), 0);
    CHECK_EQ(close(v->peer), 0);
}

/* ---- one victim, many times: both sides of the race --------------------------- */

/* When the data arrives relative to the cancellation. */
enum order { DATA_FIRST, SAME_BATCH, CANCEL_FIRST, CONCURRENT, ORDERS };

/*
 * A thread that sends a victim its message after a random spin, so the data
 * lands while the cancellation is on its way through the kernel. Commands
 * and acknowledgements travel over pipes.
 */
static int to_sender[2], from_sender[2];

static void *sender_main(void *arg)
{
    uint64_t rng = *(uint64_t *)arg;
    victim *v;
    while (read(to_sender[0], &v, sizeof(v)) == sizeof(v)) {
        for (volatile uint32_t spin = rng_next(&rng) % 50000; spin; spin--)
            ;
        send_msg(v);
        CHECK_EQ(write(from_sender[1], &v, sizeof(v)), sizeof(v));
    }
    return NULL;
}

static void cancel_and_send(victim *v, enum order order)
{
    if (order == DATA_FIRST)
        send_msg(v);
    if (order == CONCURRENT)
        CHECK_EQ(write(to_sender[1], &v, sizeof(v)), sizeof(v));
    CHECK_EQ(iou_cancel(v->task), 0);
    if (order == CANCEL_FIRST)
        CHECK_EQ(iou_nop(), 0); /* one enter: the kernel has processed the cancel */
    if (order == SAME_BATCH || order == CANCEL_FIRST)
        send_msg(v);
}

/* The concurrent sender has finished with v (its data is in the socket). */
static void sender_done(victim *v, enum order order)
{
    victim *acked;
    if (order == CONCURRENT) {
        CHECK_EQ(read(from_sender[0], &acked, sizeof(acked)), sizeof(acked));
        CHECK(acked == v);
    }
}

static int single_main(void *arg)
{
    enum kind kind = *(enum kind *)arg;
    iou_loop *l = iou_loop_current();
    int cancelled = 0, received = 0;
    for (int i = 0; i < 400; i++) {
        victim v = {.kind = kind, .seed = (uint32_t)i, .send = true};
        open_pair(&v);
        v.task = iou_spawn(victim_body, &v);
        CHECK_EQ(iou_yield(), 0); /* v is blocked in the kernel now */
        CHECK_EQ(v.entered, 1);
        CHECK_EQ(v.returned, 0);
        enum order order = (enum order)(i % ORDERS);
        cancel_and_send(&v, order);
        CHECK_EQ(iou_join(v.task), 0);
        sender_done(&v, order);
        check_outcome(&v);
        cancelled += v.result == -ECANCELED;
        received += v.result > 0;
        close_pair(&v);
    }
    fprintf(stderr, "single %s: %d cancelled, %d received\n", kind == RECV ? "recv" : "read",
            cancelled, received);
    CHECK(cancelled >= 100); /* the CANCEL_FIRST third at least */
    CHECK_EQ(l->ops_inflight, 0);
    CHECK_EQ(l->stacks.in_use, 1);
    return 0;
}

/* ---- a thousand victims, then new tasks on their stacks ------------------------ */

typedef struct crowd {
    enum kind kind;
    int n;
    uint64_t rng;
    victim *v;
    int barrier[2];   /* fillers wait here until every old endpoint got data */
    int covered;      /* victim buffers that lay inside some filler's pattern */
    int corrupted;    /* fillers whose pattern changed */
} crowd;

static void act_at_step(crowd *c, int step)
{
    for (int i = 0; i < c->n; i++) {
        victim *v = &c->v[i];
        bool send_first = (v->seed & 1) != 0;
        if (v->send && v->send_step == step && send_first)
            send_msg(v);
        if (v->cancel_step == step) {
            int r = iou_cancel(v->task);
            /* Only a victim that already got its data can have ended. */
            CHECK(r == 0 || (r == -ESRCH && v->returned == 1 && v->result > 0));
        }
        if (v->send && v->send_step == step && !send_first)
            send_msg(v);
    }
}

static void spawn_victims(crowd *c)
{
    for (int i = 0; i < c->n; i++) {
        victim *v = &c->v[i];
        *v = (victim){.kind = c->kind, .seed = rng_next(&c->rng)};
        v->pre_yields = (int)(rng_next(&c->rng) % 4);
        v->cancel_step = (int)(rng_next(&c->rng) % STEPS);
        v->send = i % 2 == 0;
        v->send_step = (int)(rng_next(&c->rng) % STEPS);
        open_pair(v);
        v->task = iou_spawn(victim_body, v);
        CHECK(v->task != NULL);
    }
}

static bool buffer_in(const crowd *c, int i, const unsigned char *fill)
{
    return c->v[i].on_stack && within(c->v[i].buf, MSG, fill, FILL);
}

static int filler_body(void *arg)
{
    crowd *c = arg;
    uint32_t seed = (uint32_t)(uintptr_t)iou_self();
    unsigned char fill[FILL];
    pattern_fill(fill, FILL, seed, 0);
    for (int i = 0; i < c->n; i++)
        c->covered += buffer_in(c, i, fill);
    unsigned char token;
    CHECK_EQ(iou_read(c->barrier[0], &token, 1, -1), 1);
    if (pattern_mismatch(fill, FILL, seed, 0) != FILL)
        c->corrupted++;
    return 0;
}

/* Every old endpoint gets (more) data while the fillers sit on the stacks. */
static void provoke_old_endpoints(crowd *c)
{
    for (int i = 0; i < c->n; i++)
        send_msg(&c->v[i]);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_nop(), 0); /* enter the kernel: stray completions land now */
}

static void run_fillers(crowd *c)
{
    iou_task **f = calloc((size_t)c->n, sizeof(*f));
    CHECK(f != NULL);
    CHECK(pipe2(c->barrier, O_CLOEXEC) == 0);
    for (int i = 0; i < c->n; i++)
        CHECK((f[i] = iou_spawn(filler_body, c)) != NULL);
    CHECK_EQ(iou_yield(), 0); /* every filler has filled and is parked */
    provoke_old_endpoints(c);
    unsigned char tokens[MAX_VICTIMS];
    memset(tokens, 't', sizeof(tokens));
    CHECK_EQ(write(c->barrier[1], tokens, (size_t)c->n), c->n);
    for (int i = 0; i < c->n; i++)
        CHECK_EQ(iou_join(f[i]), 0);
    close(c->barrier[0]);
    close(c->barrier[1]);
    free(f);
}

static int crowd_main(void *arg)
{
    crowd *c = arg;
    iou_loop *l = iou_loop_current();
    int fds = count_fds();
    spawn_victims(c);
    for (int step = 0; step < STEPS; step++) {
        act_at_step(c, step);
        CHECK_EQ(iou_yield(), 0);
    }
    int cancelled = 0;
    for (int i = 0; i < c->n; i++) {
        CHECK_EQ(iou_join(c->v[i].task), 0);
        check_outcome(&c->v[i]);
        cancelled += c->v[i].result == -ECANCELED;
    }
    CHECK_EQ(l->ops_inflight, 0);
    CHECK_EQ(l->tasks_alive, 1);
    CHECK_EQ(l->stacks.in_use, 1);
    run_fillers(c);
    int on_stack = 0;
    for (int i = 0; i < c->n; i++) {
        on_stack += c->v[i].on_stack;
        close_pair(&c->v[i]);
    }
    fprintf(stderr, "crowd %s: %d victims, %d cancelled, %d buffers on task stacks, %d reused\n",
            c->kind == RECV ? "recv" : "read", c->n, cancelled, on_stack, c->covered);
    CHECK_EQ(c->corrupted, 0);
    /* The pattern check means something only if the stacks were really reused. */
    CHECK(c->covered >= on_stack * 3 / 4);
    CHECK_EQ(l->ops_inflight, 0);
    CHECK_EQ(count_fds(), fds);
    return 0;
}

static void run_crowd(enum kind kind, int n, uint64_t seed)
{
    crowd c = {.kind = kind, .n = n, .rng = seed};
    c.v = calloc((size_t)n, sizeof(victim));
    CHECK(c.v != NULL);
    CHECK_EQ(run_or_skip(crowd_main, &c), 0);
    free(c.v);
}

/* ---- accept: a cancelled accept must not swallow a connection ------------------ */

enum { ACCEPTORS = 64 };

typedef struct acceptor {
    int lfd;
    int cancel_step, pre_yields;
    int entered, returned;
    int result;
    bool addr_ok;
    iou_task *task;
} acceptor;

static int acceptor_body(void *arg)
{
    acceptor *a = arg;
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    for (int i = 0; i < a->pre_yields; i++)
        iou_yield();
    a->entered++;
    a->result = iou_accept(a->lfd, (struct sockaddr *)&addr, &len);
    a->returned++;
    if (a->result >= 0) {
        a->addr_ok = len == sizeof(addr) && addr.sin_family == AF_INET;
        CHECK_EQ(iou_close(a->result), 0);
    }
    return 0;
}

static int tcp_listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(fd, (struct sockaddr *)addr, sizeof(*addr)) == 0);
    socklen_t len = sizeof(*addr);
    CHECK(getsockname(fd, (struct sockaddr *)addr, &len) == 0);
    CHECK(listen(fd, 4 * ACCEPTORS) == 0);
    return fd;
}

static int tcp_connect(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK(connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0);
    return fd;
}

/* Connections the tasks did not take must still be waiting in the backlog. */
static int drain_backlog(int lfd, int expected)
{
    int got = 0;
    while (got < expected) {
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        if (poll(&pfd, 1, 2000) != 1)
            break; /* a connection went missing */
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        CHECK(fd >= 0);
        close(fd);
        got++;
    }
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 0), 0); /* and no connection appeared twice */
    return got;
}

static int accept_main(void *arg)
{
    uint64_t *rng = arg;
    iou_loop *l = iou_loop_current();
    int fds = count_fds();
    struct sockaddr_in addr;
    int lfd = tcp_listener(&addr);
    acceptor a[ACCEPTORS];
    int clients[ACCEPTORS], connect_step[ACCEPTORS];
    for (int i = 0; i < ACCEPTORS; i++) {
        a[i] = (acceptor){.lfd = lfd, .cancel_step = (int)(rng_next(rng) % STEPS),
                          .pre_yields = (int)(rng_next(rng) % 3)};
        /* A connection arrives no earlier than its acceptor is cancelled. */
        connect_step[i] = a[i].cancel_step + (int)(rng_next(rng) % (STEPS - a[i].cancel_step));
        a[i].task = iou_spawn(acceptor_body, &a[i]);
    }
    int connected = 0;
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < ACCEPTORS; i++)
            if (a[i].cancel_step == step)
                CHECK(iou_cancel(a[i].task) == 0 || a[i].result >= 0);
        for (int i = 0; i < ACCEPTORS; i++)
            if (connect_step[i] == step)
                clients[connected++] = tcp_connect(&addr);
        CHECK_EQ(iou_yield(), 0);
    }
    CHECK_EQ(connected, ACCEPTORS);
    int taken = 0;
    for (int i = 0; i < ACCEPTORS; i++) {
        CHECK_EQ(iou_join(a[i].task), 0);
        CHECK_EQ(a[i].entered, 1);
        CHECK_EQ(a[i].returned, 1);
        CHECK(a[i].result == -ECANCELED || (a[i].result >= 0 && a[i].addr_ok));
        taken += a[i].result >= 0;
    }
    int waiting = drain_backlog(lfd, ACCEPTORS - taken);
    fprintf(stderr, "accept: %d taken by cancelled tasks, %d left in the backlog\n", taken, waiting);
    CHECK_EQ(taken + waiting, ACCEPTORS);
    for (int i = 0; i < ACCEPTORS; i++)
        close(clients[i]);
    close(lfd);
    CHECK_EQ(l->ops_inflight, 0);
    CHECK_EQ(count_fds(), fds);
    return 0;
}

int main(void)
{
    watchdog(60);
    uint64_t seed = rng_seed();
    long limit = raise_fd_limit();
    int n = MAX_VICTIMS;
    if (limit < 2 * n + 200)
        n = (int)(limit - 200) / 2;
    CHECK(n >= 100);
    enum kind recv_kind = RECV, read_kind = READ;
    CHECK(pipe2(to_sender, O_CLOEXEC) == 0 && pipe2(from_sender, O_CLOEXEC) == 0);
    pthread_t sender;
    uint64_t sender_seed = seed + 3;
    CHECK(pthread_create(&sender, NULL, sender_main, &sender_seed) == 0);
    CHECK_EQ(run_or_skip(single_main, &recv_kind), 0);
    CHECK_EQ(run_or_skip(single_main, &read_kind), 0);
    close(to_sender[1]); /* the sender sees end of file and returns */
    CHECK(pthread_join(sender, NULL) == 0);
    close(to_sender[0]);
    close(from_sender[0]);
    close(from_sender[1]);
    run_crowd(RECV, n, seed);
    run_crowd(READ, n, seed + 1);
    uint64_t rng = seed + 2;
    CHECK_EQ(run_or_skip(accept_main, &rng), 0);
    puts("test_ownership: ok");
    return 0;
}
