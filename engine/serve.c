/*
 * iou_serve: one multishot accept feeding one task per connection (with a
 * connection limit: one single-shot accept at a time, since a multishot
 * accept takes the whole backlog at once, past any limit).
 *
 * The accept's completion hook runs in the reap loop, where nothing may
 * switch: it only spawns a connection task per new fd. The serving task parks
 * on one thing at a time (s->wait):
 *
 *   WAIT_ACCEPT  the accept is armed; only its final completion wakes the task (an interruption first cancels it in the
 *                kernel: the record on this stack is the kernel's until then).
 *   WAIT_SLOT    backing off (fd limit, memory, connection limit): the first
 *                of a connection ending, the backoff timer or an
 *                interruption wakes it.
 *   WAIT_DRAIN   stopping: the last connection task to end wakes it. Nothing
 *                interrupts this wait, so no connection outlives iou_serve.
 *
 * Whoever wakes the task resets s->wait first: one wake per park.
 * A connection record is linked in s->conns from its spawn until its task
 * has closed the fd, so stopping can cancel every live connection, and an
 * fd accepted once stopping has begun is closed at once (no fd leaks).
 */
#include "feature_mask.h"
#include "loop.h"
#include "op.h"
#include "task.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

enum {
    BACKOFF_MIN_NS = 1000000,    /* first wait after a shortage: 1 ms ... */
    BACKOFF_MAX_NS = 1000000000, /* ... doubling up to 1 s */
    FAILED_ROUNDS_MAX = 64,      /* error-only rounds in a row before backing off */
};

enum wait { WAIT_NONE, WAIT_ACCEPT, WAIT_SLOT, WAIT_DRAIN };

typedef int (*conn_fn)(int fd, void *arg);
typedef struct conn conn;

typedef struct server {
    iou__op accept;       /* the multishot accept of the current round */
    iou__timer backoff;
    iou_task *task;       /* the serving task */
    conn_fn handler;
    void *arg;
    iou_spawn_opts spawn;
    size_t max_conns;     /* 0: no limit */
    conn *conns;          /* connection tasks that have not closed their fd */
    size_t active;        /* length of conns */
    size_t accepted;      /* connections the current round produced */
    int round_res;        /* how the round ended: 0, or the accept error */
    uint8_t wait;
    bool stopping;        /* interrupted: fds accepted now are closed, not served */
} server;

struct conn {
    conn *prev, *next;
    server *srv;
    iou_task *task;
    int fd;
};

/* ---- waking the serving task ----------------------------------------------- */

static iou_loop *loop_of(server *s)
{
    return s->task->loop;
}

static void wake_server(server *s)
{
    s->wait = WAIT_NONE;
    if (iou__timer_armed(&s->backoff))
        iou__heap_remove(&loop_of(s)->timers, &s->backoff);
    iou__wake(s->task);
}

static void backoff_fired(iou__timer *timer)
{
    server *s = iou__container_of(timer, server, backoff);
    if (s->wait == WAIT_SLOT)
        wake_server(s);
}

static void slot_interrupted(iou_task *t, void *ctx)
{
    (void)t;
    wake_server(ctx);
}

/* ---- connections ------------------------------------------------------------- */

static void conn_link(server *s, conn *c)
{
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->active++;
}

static void conn_unlink(server *s, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->active--;
}

/* A connection task: the handler, then the close. A task cancelled before it
 * started (the server stopped) only closes. */
static int conn_main(void *arg)
{
    conn *c = arg;
    server *s = c->srv;
    if (!iou_cancelled())
        s->handler(c->fd, s->arg);
    iou_close(c->fd);
    /* No suspension from here on: s stays valid (iou_serve waits for us). */
    conn_unlink(s, c);
    free(c);
    if (s->wait == WAIT_SLOT || (s->wait == WAIT_DRAIN && s->active == 0))
        wake_server(s);
    return 0;
}

/* In the reap loop: hands a new fd to a new task, or closes it. */
static void start_conn(server *s, int fd)
{
    conn *c = s->stopping ? NULL : malloc(sizeof(*c));
    iou_task *t = c ? iou__spawn(loop_of(s), conn_main, c, &s->spawn) : NULL;
    if (t == NULL) {
        free(c);
        close(fd); /* stopping, or out of memory: the peer sees the connection end */
        return;
    }
    *c = (conn){.srv = s, .task = t, .fd = fd}; /* before t runs: it is only queued */
    iou_detach(t);
    conn_link(s, c);
    s->accepted++;
}

static void cancel_conns(server *s)
{
    for (conn *c = s->conns; c; c = c->next)
        iou_cancel(c->task);
}

/* ---- the accept ------------------------------------------------------------------ */

static void cancel_accept(server *s)
{
    iou__op_cancel(loop_of(s), &s->accept);
}

static bool at_limit(const server *s)
{
    return s->max_conns && s->active >= s->max_conns;
}

static void accept_completed(iou__op *op)
{
    server *s = iou__container_of(op, server, accept);
    if (op->res >= 0)
        start_conn(s, op->res);
    if (op->cqe_flags & IOU__CQE_MORE)
        return;
    /* The final completion. An fd here ends a single-shot round, or means the
     * kernel stopped the multishot on its own (e.g. CQ overflow): no error. */
    s->round_res = op->res >= 0 ? 0 : op->res;
    wake_server(s);
}

static void accept_interrupted(iou_task *t, void *ctx)
{
    (void)t;
    server *s = ctx;
    s->stopping = true;
    cancel_accept(s);
}

/* Arms the accept (multishot; single-shot under a connection limit) and
 * parks until its final completion. Returns the interruption (-ECANCELED,
 * -ETIMEDOUT) or 0; s->round_res says how the round ended. */
static int accept_round(server *s, int lfd)
{
    iou_task *t = s->task;
    int why = iou__interrupted(t);
    if (why)
        return why;
    bool multi = !s->max_conns && iou__feature_allowed(t->loop, IOU__FEAT_MULTISHOT);
    uint8_t kind = multi ? IOU__OP_ACCEPT_MULTI : IOU__OP_ACCEPT;
    s->accept = (iou__op){.kind = kind, .fd = lfd, .flags = SOCK_CLOEXEC, .task = t,
                          .done = accept_completed};
    s->accepted = 0;
    s->wait = WAIT_ACCEPT;
    iou__op_submit(t->loop, &s->accept);
    return iou__park(t, accept_interrupted, s);
}

/* Parks until a connection ends, until `until` (IOU__NEVER: no timer) or an
 * interruption. Returns the interruption or 0. */
static int wait_slot(server *s, uint64_t until)
{
    iou_task *t = s->task;
    int why = iou__interrupted(t);
    if (why)
        return why;
    if (until != IOU__NEVER)
        iou__timer_arm(t->loop, &s->backoff, until);
    s->wait = WAIT_SLOT;
    return iou__park(t, slot_interrupted, s);
}

/* ---- the policy ------------------------------------------------------------------ */

/* Out of fds or memory: it passes when connections end (or memory frees up).
 * -EAGAIN should not happen (the kernel waits for a connection): treated as
 * a shortage, it cannot make the loop spin. */
static bool is_shortage(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM ||
           err == -EAGAIN;
}

/* About one connection (Linux reports a pending connection's network error
 * from accept) or a signal: the listener itself is fine. */
static bool is_passing(int err)
{
    switch (-err) {
    case 0: case ECONNABORTED: case EINTR: case EPROTO: case EPERM: case ENETDOWN:
    case ENOPROTOOPT: case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP:
    case ENETUNREACH: case ECONNRESET: case ETIMEDOUT:
        return true;
    default:
        return false;
    }
}

static uint64_t grow(uint64_t delay)
{
    if (delay == 0)
        return BACKOFF_MIN_NS;
    return delay * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : delay * 2;
}

/*
 * Accept rounds until an interruption or an error about the listener itself.
 * A shortage backs off (woken early by a connection ending); so does a run of
 * rounds that failed without accepting anything, so that an error that keeps
 * coming back cannot make the loop spin.
 */
static int serve_loop(server *s, int lfd)
{
    uint64_t delay = 0;
    unsigned failed = 0;
    for (;;) {
        int why = at_limit(s) ? wait_slot(s, IOU__NEVER) : accept_round(s, lfd);
        if (why)
            return why;
        int res = s->round_res;
        s->round_res = 0;
        if (s->accepted || res == 0) {
            delay = 0;
            failed = 0;
        }
        if (!is_shortage(res) && !is_passing(res))
            return res;
        if (is_shortage(res) || ++failed > FAILED_ROUNDS_MAX) {
            delay = grow(delay);
            why = wait_slot(s, iou__loop_now(loop_of(s)) + delay);
            if (why)
                return why;
        }
    }
}

/* Cancels every connection task and waits, uninterruptibly, until each has
 * closed its fd. */
static void stop_conns(server *s)
{
    s->stopping = true;
    cancel_conns(s);
    if (s->active == 0)
        return;
    s->wait = WAIT_DRAIN;
    iou__park(s->task, NULL, NULL);
}

int iou_serve_ex(int lfd, int (*handler)(int fd, void *arg), void *arg,
                 const iou_serve_opts *opts)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return -EPERM;
    if (handler == NULL || lfd < 0)
        return -EINVAL;
    server s = {.task = t, .handler = handler, .arg = arg,
                .backoff = {.slot = IOU__TIMER_IDLE, .fire = backoff_fired},
                .spawn = {.name = "iou_serve connection"}};
    if (opts) {
        s.spawn.stack_size = opts->stack_size;
        s.max_conns = opts->max_connections;
    }
    int err = serve_loop(&s, lfd);
    stop_conns(&s);
    return err;
}

int iou_serve(int lfd, int (*handler)(int fd, void *arg), void *arg)
{
    return iou_serve_ex(lfd, handler, arg, NULL);
}
