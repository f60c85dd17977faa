/*
 * The epoll backend: the same operations as io_uring, for kernels (and
 * sandboxes: Docker's default seccomp profile, kernel.io_uring_disabled,
 * gVisor) where io_uring cannot be set up.
 *
 * Readiness plus non-blocking system calls. A submitted operation is queued;
 * the next poll tries its system call without blocking. If it would block,
 * the operation waits on its fd's list of readers (EPOLLIN) or writers
 * (EPOLLOUT) and is tried again when epoll says the fd is ready. Many
 * operations may wait on one fd (a reader and a writer, several readers).
 * What cannot wait for readiness (regular files, open, close, fsync) runs as
 * the blocking system call on the worker pool (op_blocking.c, pool.h).
 *
 * Never blocking on the user's fd without changing it: sockets get
 * MSG_DONTWAIT per call; reads and writes use preadv2/pwritev2 with
 * RWF_NOWAIT (pipes, sockets, eventfds; a regular file that would have to
 * wait for the disk goes to the pool). Only where the kernel has no per-call
 * flag (accept, connect, and reads of a file without RWF_NOWAIT support such
 * as a tty) is O_NONBLOCK set around the one call and restored at once: an
 * fd the user made blocking stays blocking, and accepted fds are blocking, as
 * on io_uring. (Another thread making a blocking call on that same file at
 * that instant could see EAGAIN.)
 *
 * Registration: edge-triggered, once per fd, kept across operations (ADD
 * when a first operation has to wait; a MOD adds EPOLLOUT the first time a
 * writer waits). Each fd has a readiness state per direction: "maybe ready"
 * from an event (or when nothing is known) until a system call says EAGAIN
 * (or a stream receive comes back short: the socket was emptied, and any new
 * data will raise an edge). A transfer on an fd known not ready waits without
 * trying, and wakes on the next edge: an echo's round trip is one recv and
 * one send, as in a hand-written epoll server.
 *
 * A kept registration can go stale behind iou's back: an fd closed with
 * close(2) (not iou_close, which forgets the fd) and its number handed out
 * again names a new file the kernel holds no registration for. Fds that iou
 * operations return (accept, socket, open) start afresh, and accept and
 * connect re-register (MOD, ENOENT: ADD) whenever they wait. For the rest a
 * sweep bounds the damage: a wait that trusted the kept registration for a
 * whole sweep period (SWEEP_SHIFT, about 34 ms) without an event re-registers
 * its fd, which also reports readiness the kernel already has, so a stale
 * registration (or a wrong "not ready") costs a few periods of latency at
 * most (about 100 ms), never a hang. Events carry a per-fd generation, so a registration left on a
 * file that outlived its fd number (dup, fork) cannot wake the new file's
 * waiters.
 *
 * Completions run inside poll, as io_uring's are reaped there: a submission
 * or a cancellation never completes an operation synchronously.
 *
 * Cancellation, as on io_uring: an operation still waiting (queued, or on an
 * fd's list) completes with -ECANCELED; one running on the pool completes
 * normally when its system call returns. Multishot accept is emulated: one
 * completion flagged IOU__CQE_MORE per connection, ending (without MORE) on
 * an error or a cancellation. Zero-copy send is a plain send: one
 * completion, no notification (the data is copied, so the buffer is free at
 * once). io_uring-only kinds (raw SQEs, provided-buffer receives) complete
 * with -ENOTSUP; the layers above do not submit them here (iou__uring() is
 * NULL: provided buffers fall back to heap buffers).
 *
 * Time: the loop passes its nearest timer as poll's timeout; epoll_pwait2
 * takes it in nanoseconds (epoll_wait, rounded up to milliseconds, where the
 * kernel lacks it).
 */
#include "backend.h"
#include "loop.h"
#include "op.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum {
    EVENTS_MAX = 256,   /* events taken per epoll_wait */
    ACCEPT_BATCH = 64,  /* connections one multishot accept takes per turn */
    MAX_IO = 0x7ffff000, /* the kernel's largest single read/write */
    SWEEP_SHIFT = 25,   /* sweep period: 2^25 ns, about 34 ms (see the top) */
};

/* op->be_state: where the operation is (low byte) plus flags. */
enum {
    ST_IDLE,
    ST_QUEUED,   /* in the try queue */
    ST_WAIT_IN,  /* on its fd's readers */
    ST_WAIT_OUT, /* on its fd's writers */
    ST_RUNNING,  /* being tried (a multishot may be completing) */
    ST_POOL,     /* its system call runs on a worker */
    ST_ORPHAN,   /* its fd was closed through iou while it waited: only a cancel ends it */
    ST_MASK = 0xff,
    ST_CANCELLED = 0x100,  /* cancel requested while queued or running */
    ST_CONNECTING = 0x200, /* a connect is in progress: read SO_ERROR when writable */
};

typedef struct waitlist {
    iou__op *head, *tail;
} waitlist;

/* One fd: its waiting operations, its registration and what is known of its
 * readiness. A zeroed entry is an fd iou knows nothing about. */
typedef struct fdw {
    waitlist in, out;
    uint32_t events;  /* EPOLLIN / EPOLLOUT registered (edge-triggered); 0: none */
    uint32_t gen;     /* generation: bumped when the fd is forgotten; events carry it */
    uint32_t since;   /* sweep epoch + 1 when a wait first trusted the registration
                         without an event since; 0: no such wait */
    bool in_idle;     /* known not readable: a receive waits without trying */
    bool out_idle;    /* known not writable: a send waits without trying */
    bool swept;       /* in the sweep list */
    uint8_t type;     /* SO_TYPE + 1 once looked up (0: not yet, 1: not a socket) */
} fdw;

typedef struct ep {
    int epfd;
    bool no_pwait2;   /* the kernel lacks epoll_pwait2: millisecond timeouts */
    fdw *fds;
    size_t nfds;
    iou__op *q_head;  /* the try queue (be_next): submitted or woken operations */
    iou__op **q_tail;
    size_t q_len;
    size_t completed; /* completions in the current poll */
    bool skipped;     /* the last poll did not look at epoll (see ep_poll) */
    struct ep_job *free_jobs; /* pool job records for reuse */
    uint32_t epoch;   /* the sweep period we are in (monotonic ns >> SWEEP_SHIFT) */
    int tfd;          /* a periodic timerfd that wakes the loop for sweeps (-1: none) */
    bool tfd_armed;   /* ticking: the sweep list is not empty */
    int *sweep;       /* fds whose waits trust their registration (fdw.swept) */
    size_t sweep_len, sweep_cap;
    struct epoll_event ev[EVENTS_MAX];
} ep;

/* What trying an operation's system call decided. */
typedef enum verdict { DONE, WAIT_IN, WAIT_OUT, TO_POOL } verdict;

static ep *ep_of(iou_loop *l)
{
    return l->backend_data;
}

static unsigned state(const iou__op *op)
{
    return op->be_state & ST_MASK;
}

static long sys(long r)
{
    return r < 0 ? -(long)errno : r;
}

static size_t io_len(size_t len)
{
    return len > MAX_IO ? MAX_IO : len;
}

/* ---- the try queue ---------------------------------------------------------------- */

static void enqueue(ep *e, iou__op *op)
{
    op->be_state = ST_QUEUED | (op->be_state & ~ST_MASK);
    op->be_next = NULL;
    *e->q_tail = op;
    e->q_tail = &op->be_next;
    e->q_len++;
}

static iou__op *dequeue(ep *e)
{
    iou__op *op = e->q_head;
    if (op == NULL)
        return NULL;
    e->q_head = op->be_next;
    if (e->q_head == NULL)
        e->q_tail = &e->q_head;
    e->q_len--;
    return op;
}

/* ---- wait lists --------------------------------------------------------------------- */

static void list_append(waitlist *w, iou__op *op)
{
    op->be_next = NULL;
    op->be_prev = w->tail;
    if (w->tail)
        w->tail->be_next = op;
    else
        w->head = op;
    w->tail = op;
}

static void list_remove(waitlist *w, iou__op *op)
{
    if (op->be_prev)
        op->be_prev->be_next = op->be_next;
    else
        w->head = op->be_next;
    if (op->be_next)
        op->be_next->be_prev = op->be_prev;
    else
        w->tail = op->be_prev;
}

/* Moves every operation of w to the try queue (flags kept). */
static void requeue_all(ep *e, waitlist *w)
{
    iou__op *op = w->head;
    w->head = w->tail = NULL;
    while (op) {
        iou__op *next = op->be_next;
        enqueue(e, op);
        op = next;
    }
}

static bool has_waiters(const fdw *w)
{
    return w->in.head || w->out.head;
}

/* The fd's entry, the table grown to hold it; NULL when out of memory. */
static fdw *entry(ep *e, int fd)
{
    if ((size_t)fd < e->nfds)
        return &e->fds[fd];
    size_t n = e->nfds ? e->nfds : 64;
    while (n <= (size_t)fd)
        n *= 2;
    fdw *t = realloc(e->fds, n * sizeof(*t));
    if (t == NULL)
        return NULL;
    memset(t + e->nfds, 0, (n - e->nfds) * sizeof(*t));
    e->fds = t;
    e->nfds = n;
    return &e->fds[fd];
}

/* fd names a new file (or none): nothing known about it holds any more.
 * Operations still waiting on it waited on the old file: they stay parked
 * until cancelled (ST_ORPHAN), as io_uring's keep the file they started on.
 * The generation bump makes events of an old registration (its file may
 * live on elsewhere, dup'd or in a child) unrecognisable. */
static void reset_fd(ep *e, int fd)
{
    if (fd < 0 || (size_t)fd >= e->nfds)
        return;
    fdw *w = &e->fds[fd];
    waitlist *lists[2] = {&w->in, &w->out};
    for (int i = 0; i < 2; i++) {
        for (iou__op *op = lists[i]->head; op; op = op->be_next)
            op->be_state = ST_ORPHAN | (op->be_state & ~ST_MASK);
        lists[i]->head = lists[i]->tail = NULL;
    }
    w->events = 0;
    w->gen++;
    w->since = 0;
    w->in_idle = w->out_idle = false;
    w->type = 0;
}

/* ---- registration ------------------------------------------------------------------- */

static uint64_t tag(int fd, const fdw *w)
{
    return (uint64_t)(uint32_t)fd | (uint64_t)w->gen << 32;
}

/*
 * Registers fd for `want` (edge-triggered), or checks and renews an existing
 * registration: MOD resolves the fd number to the file it names now (ENOENT:
 * the kernel holds none, ADD). Either way the kernel reports readiness it
 * already has as an event. 0, or -errno (-EPERM: the file cannot be polled,
 * e.g. a regular file).
 */
static int reg(ep *e, int fd, fdw *w, uint32_t want)
{
    struct epoll_event ev = {.events = want | EPOLLET, .data.u64 = tag(fd, w)};
    int how = w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int r = epoll_ctl(e->epfd, how, fd, &ev);
    if (r < 0 && errno == ENOENT && how == EPOLL_CTL_MOD)
        r = epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev); /* closed and reused behind our back */
    else if (r < 0 && errno == EEXIST && how == EPOLL_CTL_ADD)
        r = epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (r < 0)
        return -errno;
    w->events = want;
    w->since = 0; /* every wait on fd is covered by this registration now */
    return 0;
}

/* ---- the sweep ----------------------------------------------------------------------- */

/*
 * The sweep needs the loop awake once per period while the list is not
 * empty. A timeout on every epoll_wait would do, but arming a timer per
 * sleep is costly (in a VM each programs the timer device): a timerfd in the
 * epoll set ticks once per period instead, started when the list fills and
 * stopped when a sweep empties it. Without one, ep_poll cuts its timeout.
 */
#define TICK_TAG UINT64_MAX /* the timerfd's event data */

static void ticker_set(ep *e, bool on)
{
    if (e->tfd < 0 || e->tfd_armed == on)
        return;
    struct timespec period = {.tv_sec = 0, .tv_nsec = 1L << SWEEP_SHIFT};
    struct itimerspec its = {.it_interval = period, .it_value = period};
    if (!on)
        its = (struct itimerspec){0};
    if (timerfd_settime(e->tfd, 0, &its, NULL) == 0)
        e->tfd_armed = on;
}

static void ticker_open(ep *e)
{
    e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (e->tfd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = TICK_TAG};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->tfd, &ev) < 0) {
        close(e->tfd);
        e->tfd = -1;
    }
}

/* A wait on fd trusts its kept registration: the sweep will check it if
 * no event comes for a whole period. */
static void trust(ep *e, int fd, fdw *w)
{
    if (e->sweep_len == 0) /* the period may be stale: nothing read the clock since */
        e->epoch = (uint32_t)(iou__clock() >> SWEEP_SHIFT);
    if (w->since == 0)
        w->since = e->epoch + 1;
    if (w->swept)
        return;
    if (e->sweep_len == e->sweep_cap) {
        size_t cap = e->sweep_cap ? e->sweep_cap * 2 : 64;
        int *t = realloc(e->sweep, cap * sizeof(*t));
        if (t == NULL) { /* cannot track it: make the registration certain instead */
            if (reg(e, fd, w, w->events) < 0) {
                requeue_all(e, &w->in); /* each retries and reports its own error */
                requeue_all(e, &w->out);
            }
            return;
        }
        e->sweep = t;
        e->sweep_cap = cap;
    }
    e->sweep[e->sweep_len++] = fd;
    w->swept = true;
    ticker_set(e, true);
}

/* Whether fd stays in the sweep list: it still has waits that trust its
 * registration, none of them for a whole period yet. An fd whose oldest such
 * wait began two periods ago or more is re-registered (at least one whole
 * period without an event). */
static bool sweep_one(ep *e, int fd, fdw *w)
{
    if (w->since == 0 || !has_waiters(w) || w->events == 0) {
        w->since = 0;
        return false;
    }
    if (e->epoch - (w->since - 1) < 2)
        return true;
    if (reg(e, fd, w, w->events) < 0) {
        requeue_all(e, &w->in);
        requeue_all(e, &w->out);
    }
    return false;
}

/* Once per period: every fd of the list is checked (the list keeps the ones
 * still to watch, in place). */
static void sweep(ep *e)
{
    size_t keep = 0;
    for (size_t i = 0; i < e->sweep_len; i++) {
        int fd = e->sweep[i];
        fdw *w = &e->fds[fd];
        if (sweep_one(e, fd, w))
            e->sweep[keep++] = fd;
        else
            w->swept = false;
    }
    e->sweep_len = keep;
    if (keep == 0)
        ticker_set(e, false);
}

/* ---- completing ------------------------------------------------------------------- */

/* An operation that returns a new fd: whatever was known about that number
 * belonged to a file closed behind iou's back. */
static bool makes_fd(uint8_t kind)
{
    return kind == IOU__OP_ACCEPT || kind == IOU__OP_ACCEPT_MULTI ||
           kind == IOU__OP_SOCKET || kind == IOU__OP_OPENAT;
}

static void finish(iou_loop *l, ep *e, iou__op *op, long res)
{
    if (res >= 0 && makes_fd(op->kind))
        reset_fd(e, (int)res);
    op->be_state = ST_IDLE;
    e->completed++;
    iou__op_complete(l, op, (int)res, 0);
}

/* ---- the pool --------------------------------------------------------------------- */

/* A blocking system call on a worker. Records are recycled through the
 * backend's free list: after warm-up, none is allocated per operation. */
typedef struct ep_job ep_job;
struct ep_job {
    iou__job job;
    iou__op *op;
    long res;
    ep_job *free_next;
};

static void job_run(iou__job *j)
{
    ep_job *ej = iou__container_of(j, ep_job, job);
    ej->res = iou__op_blocking(ej->op);
}

/* On the loop's thread, after the worker returned: the operation completes. */
static void job_done(iou_loop *l, iou__job *j)
{
    ep *e = ep_of(l);
    ep_job *ej = iou__container_of(j, ep_job, job);
    iou__op *op = ej->op;
    long res = ej->res;
    ej->free_next = e->free_jobs;
    e->free_jobs = ej;
    if (res >= 0 && makes_fd(op->kind))
        reset_fd(e, (int)res);
    op->be_state = ST_IDLE;
    iou__op_complete(l, op, (int)res, 0);
}

static ep_job *job_get(ep *e)
{
    ep_job *ej = e->free_jobs;
    if (ej) {
        e->free_jobs = ej->free_next;
        return ej;
    }
    return malloc(sizeof(*ej));
}

/*
 * Blocking system calls leave the loop thread through this one function. The
 * operation cannot be cancelled from here on (ST_POOL): its completion comes
 * when the call returns, as for an io_uring request already running. If no
 * worker can be had at all (out of memory or threads), the call runs here,
 * blocking the loop for its duration, rather than failing.
 */
static void to_pool(iou_loop *l, ep *e, iou__op *op)
{
    op->be_state = ST_POOL;
    ep_job *ej = job_get(e);
    if (ej) {
        *ej = (ep_job){.job = {.run = job_run, .done = job_done}, .op = op};
        if (iou__pool_post(l, &ej->job) == 0)
            return;
        free(ej);
    }
    finish(l, e, op, iou__op_blocking(op));
}

/* ---- trying the system calls ------------------------------------------------------- */

static bool is_disk_file(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return false;
    return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode);
}

/* A positional transfer that ended at end (short) on a file: true unless it
 * is a read that reached the end of the file. */
static bool stopped_short(const iou__op *op, off_t end)
{
    struct stat st;
    if (fstat(op->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        return false;
    return op->kind == IOU__OP_WRITE || !S_ISREG(st.st_mode) || end < st.st_size;
}

/* Calls fn with O_NONBLOCK set on fd's file for the duration (restored
 * after), for calls without a per-call non-blocking flag. */
typedef long (*nb_fn)(iou__op *op);

static long with_nonblock(iou__op *op, int fd, nb_fn fn)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    bool set = !(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
    long r = fn(op);
    int err = errno;
    if (set)
        fcntl(fd, F_SETFL, fl);
    errno = err;
    return r < 0 ? -(long)err : r;
}

static long plain_rw(iou__op *op)
{
    size_t len = io_len(op->len);
    bool at_pos = op->off == IOU__OFF_CURRENT;
    if (op->kind == IOU__OP_READ)
        return at_pos ? read(op->fd, op->buf, len) : pread(op->fd, op->buf, len, (off_t)op->off);
    return at_pos ? write(op->fd, op->buf, len) : pwrite(op->fd, op->buf, len, (off_t)op->off);
}

static verdict wait_dir(const iou__op *op)
{
    return op->kind == IOU__OP_READ ? WAIT_IN : WAIT_OUT;
}

/*
 * read / write: RWF_NOWAIT first. A pipe, socket or eventfd that would block
 * waits for readiness; a regular file that would block (page cache miss) goes
 * to the pool. Offsets on a stream are ignored, as io_uring does. A file
 * without RWF_NOWAIT support (a tty, some character devices, older kernels'
 * pipes) is tried with O_NONBLOCK set around the call.
 */
static verdict try_rw(iou__op *op, long *res)
{
    struct iovec iov = {.iov_base = op->buf, .iov_len = io_len(op->len)};
    for (;;) {
        off_t off = op->off == IOU__OFF_CURRENT ? -1 : (off_t)op->off;
        ssize_t n = op->kind == IOU__OP_READ ? preadv2(op->fd, &iov, 1, off, RWF_NOWAIT)
                                             : pwritev2(op->fd, &iov, 1, off, RWF_NOWAIT);
        if (n >= 0) {
            /* Part of a file's range was cached: the rest would wait for the
             * disk. A positional transfer is repeated whole on the pool, so a
             * short count still means end of file, as pread's does. */
            if ((size_t)n < iov.iov_len && n > 0 && off != -1 && stopped_short(op, off + n))
                return TO_POOL;
            *res = n;
            return DONE;
        }
        int err = errno;
        if (err == ESPIPE && off != -1) {
            op->off = IOU__OFF_CURRENT;
            continue;
        }
        if (err == EAGAIN)
            return is_disk_file(op->fd) ? TO_POOL : wait_dir(op);
        if (err != EOPNOTSUPP) {
            *res = -err;
            return DONE;
        }
        if (is_disk_file(op->fd))
            return TO_POOL;
        *res = with_nonblock(op, op->fd, plain_rw);
        return *res == -EAGAIN ? wait_dir(op) : DONE;
    }
}

/*
 * A stream transfer with MSG_WAITALL (io_uring retries until all of it moved,
 * on stream sockets): be_done counts the bytes so far. Returns true when the
 * operation is over (*res set), false to wait for more.
 */
static bool waitall_step(iou__op *op, long n, long *res)
{
    size_t len = io_len(op->len);
    if (n > 0)
        op->be_done += (uint32_t)n;
    if (n > 0 && op->be_done < len) {
        int type = 0;
        socklen_t tl = sizeof(type);
        getsockopt(op->fd, SOL_SOCKET, SO_TYPE, &type, &tl);
        if (type == SOCK_STREAM || type == SOCK_SEQPACKET)
            return false; /* keep going */
    }
    if (n == -EAGAIN)
        return false;
    *res = op->be_done ? (long)op->be_done : n;
    return true;
}

static long xfer(iou__op *op, int flags)
{
    char *p = (char *)op->buf + op->be_done;
    size_t left = io_len(op->len) - op->be_done;
    if (op->kind == IOU__OP_RECV)
        return sys(recv(op->fd, p, left, flags));
    return sys(send(op->fd, p, left, flags));
}

/* send / recv (and the copying stand-in for zero-copy send). */
static verdict try_xfer(iou__op *op, long *res)
{
    int flags = (int)op->flags;
    verdict wait = op->kind == IOU__OP_RECV ? WAIT_IN : WAIT_OUT;
    if (flags & MSG_DONTWAIT) { /* the caller asked not to wait: -EAGAIN is the answer */
        *res = xfer(op, flags);
        return DONE;
    }
    if (!(flags & MSG_WAITALL)) {
        *res = xfer(op, flags | MSG_DONTWAIT);
        return *res == -EAGAIN ? wait : DONE;
    }
    for (;;) {
        long n = xfer(op, (flags & ~MSG_WAITALL) | MSG_DONTWAIT);
        if (waitall_step(op, n, res))
            return DONE;
        if (n <= 0)
            return wait;
    }
}

static verdict try_msg(iou__op *op, long *res)
{
    int flags = (int)op->flags;
    bool dontwait = flags & MSG_DONTWAIT;
    flags |= MSG_DONTWAIT;
    *res = op->kind == IOU__OP_RECVMSG ? sys(recvmsg(op->fd, op->buf, flags))
                                       : sys(sendmsg(op->fd, op->buf, flags));
    if (*res != -EAGAIN || dontwait)
        return DONE;
    return op->kind == IOU__OP_RECVMSG ? WAIT_IN : WAIT_OUT;
}

static long accept_one(iou__op *op)
{
    return accept4(op->fd, op->buf, op->aux, (int)op->flags);
}

static verdict try_accept(iou__op *op, long *res)
{
    *res = with_nonblock(op, op->fd, accept_one);
    return *res == -EAGAIN ? WAIT_IN : DONE;
}

static long connect_call(iou__op *op)
{
    return connect(op->fd, op->buf, (socklen_t)op->len);
}

/* Non-blocking connect; once writable, SO_ERROR tells how it went (and
 * getpeername whether it is really done). */
static verdict try_connect(iou__op *op, long *res)
{
    if (op->be_state & ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0) {
            struct sockaddr_storage peer;
            socklen_t pl = sizeof(peer);
            if (getpeername(op->fd, (struct sockaddr *)&peer, &pl) < 0 && errno == ENOTCONN)
                return WAIT_OUT; /* woken early: still in progress */
        }
        op->be_state &= ~(uint32_t)ST_CONNECTING;
        *res = -err;
        return DONE;
    }
    *res = with_nonblock(op, op->fd, connect_call);
    if (*res == -EINPROGRESS) {
        op->be_state |= ST_CONNECTING;
        return WAIT_OUT;
    }
    return *res == -EAGAIN ? WAIT_OUT : DONE; /* -EAGAIN: a Unix listener's backlog is full */
}

/* One try of op's system call. */
/* Kinds whose fd this backend calls on itself. The others run on the pool,
 * where the system call judges the fd (a dirfd may be AT_FDCWD). */
static bool uses_fd(uint8_t kind)
{
    switch (kind) {
    case IOU__OP_READ: case IOU__OP_WRITE: case IOU__OP_RECV: case IOU__OP_SEND:
    case IOU__OP_SEND_ZC: case IOU__OP_RECVMSG: case IOU__OP_SENDMSG: case IOU__OP_ACCEPT:
    case IOU__OP_ACCEPT_MULTI: case IOU__OP_CONNECT: case IOU__OP_SHUTDOWN:
        return true;
    default:
        return false;
    }
}

static verdict try_op(iou__op *op, long *res)
{
    if (op->fd < 0 && uses_fd(op->kind)) {
        *res = -EBADF;
        return DONE;
    }
    switch (op->kind) {
    case IOU__OP_NOP:
        *res = 0;
        return DONE;
    case IOU__OP_SOCKET: /* never waits */
        *res = sys(socket(op->fd, (int)op->flags, (int)op->len));
        return DONE;
    case IOU__OP_SHUTDOWN: /* never waits */
        *res = sys(shutdown(op->fd, (int)op->flags));
        return DONE;
    case IOU__OP_OPENAT:
    case IOU__OP_CLOSE:
    case IOU__OP_FSYNC:
        return TO_POOL;
    case IOU__OP_READ:
    case IOU__OP_WRITE:
        return try_rw(op, res);
    case IOU__OP_RECV:
    case IOU__OP_SEND:
    case IOU__OP_SEND_ZC: /* a plain (copying) send: see the top of this file */
        return try_xfer(op, res);
    case IOU__OP_RECVMSG:
    case IOU__OP_SENDMSG:
        return try_msg(op, res);
    case IOU__OP_ACCEPT:
        return try_accept(op, res);
    case IOU__OP_CONNECT:
        return try_connect(op, res);
    case IOU__OP_RAW:       /* io_uring only */
    case IOU__OP_RECV_BUF:
    case IOU__OP_RECV_MULTI:
        *res = -ENOTSUP;
        return DONE;
    default:
        /* Every other kind (e.g. storage operations) is a blocking call on
         * the pool: iou__op_blocking() knows it, or answers -ENOTSUP. */
        return TO_POOL;
    }
}

/* ---- waiting ---------------------------------------------------------------------- */

/* Kinds that re-register whenever they wait, rather than trust a kept
 * registration: they wait rarely (once per connection, or on a listener),
 * often on fds iou did not create. */
static bool renews(uint8_t kind)
{
    return kind == IOU__OP_ACCEPT || kind == IOU__OP_ACCEPT_MULTI || kind == IOU__OP_CONNECT;
}

static void wait_on(iou_loop *l, ep *e, iou__op *op, verdict v)
{
    fdw *w = entry(e, op->fd);
    if (w == NULL) {
        finish(l, e, op, -ENOMEM);
        return;
    }
    uint32_t bit = v == WAIT_IN ? EPOLLIN : EPOLLOUT;
    bool trusted = (w->events & bit) && !renews(op->kind);
    if (!trusted) {
        int err = reg(e, op->fd, w, w->events | bit);
        if (err == -EPERM && (op->kind == IOU__OP_READ || op->kind == IOU__OP_WRITE)) {
            to_pool(l, e, op); /* a file epoll cannot watch: its calls do not wait */
            return;
        }
        if (err) {
            finish(l, e, op, err);
            return;
        }
    }
    op->be_state = (v == WAIT_IN ? ST_WAIT_IN : ST_WAIT_OUT) | (op->be_state & ~ST_MASK);
    list_append(v == WAIT_IN ? &w->in : &w->out, op);
    if (trusted)
        trust(e, op->fd, w);
}

/* ---- multishot accept ---------------------------------------------------------------- */

/*
 * Takes up to ACCEPT_BATCH connections, each one completion flagged MORE;
 * ends (a final completion) on an error, as io_uring's does, or when cancelled
 * from a completion. With the backlog empty it waits for readiness; with the
 * batch used up it goes to the back of the try queue (other work runs first).
 */
static void accept_multi(iou_loop *l, ep *e, iou__op *op)
{
    op->aux = NULL;
    op->buf = NULL;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        long fd = with_nonblock(op, op->fd, accept_one);
        if (fd == -EAGAIN) {
            wait_on(l, e, op, WAIT_IN);
            return;
        }
        if (fd < 0) {
            finish(l, e, op, fd);
            return;
        }
        reset_fd(e, (int)fd);
        e->completed++;
        iou__op_complete(l, op, (int)fd, IOU__CQE_MORE);
        if (op->be_state & ST_CANCELLED) {
            finish(l, e, op, -ECANCELED);
            return;
        }
    }
    enqueue(e, op);
}

/* ---- running the queue ---------------------------------------------------------------- */

/* The direction a transfer waits in when its fd is not ready (0: it does
 * not wait, or must always try: connect and accept, see renews()). A
 * MSG_DONTWAIT send or receive always tries: -EAGAIN is its answer. A
 * table: this is asked twice per operation. */
enum { DIR_FLAGGED = 1u << 31 }; /* send/recv kinds: MSG_DONTWAIT means 0 */
static const uint32_t dir_of_kind[IOU__OP_KINDS] = {
    [IOU__OP_RECV] = EPOLLIN | DIR_FLAGGED,
    [IOU__OP_RECVMSG] = EPOLLIN | DIR_FLAGGED,
    [IOU__OP_READ] = EPOLLIN,
    [IOU__OP_SEND] = EPOLLOUT | DIR_FLAGGED,
    [IOU__OP_SEND_ZC] = EPOLLOUT | DIR_FLAGGED,
    [IOU__OP_SENDMSG] = EPOLLOUT | DIR_FLAGGED,
    [IOU__OP_WRITE] = EPOLLOUT,
};

static uint32_t transfer_dir(const iou__op *op)
{
    uint32_t d = op->kind < IOU__OP_KINDS ? dir_of_kind[op->kind] : 0;
    if ((d & DIR_FLAGGED) && (op->flags & MSG_DONTWAIT))
        return 0;
    return d & ~(uint32_t)DIR_FLAGGED;
}

/* The fd is registered for op's direction and known not ready: trying would
 * only say EAGAIN, and the next edge will wake op. */
static bool known_idle(const ep *e, const iou__op *op)
{
    uint32_t dir = transfer_dir(op);
    if (dir == 0 || op->fd < 0 || (size_t)op->fd >= e->nfds)
        return false;
    const fdw *w = &e->fds[op->fd];
    if (!(w->events & dir))
        return false;
    return dir == EPOLLIN ? w->in_idle : w->out_idle;
}

/* Whether a stream socket: a short receive there means it was emptied.
 * Looked up once per fd. */
static bool is_stream(fdw *w, int fd)
{
    if (w->type == 0) {
        int type = 0;
        socklen_t tl = sizeof(type);
        w->type = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ? 1 : (uint8_t)(type + 1);
    }
    return w->type == SOCK_STREAM + 1;
}

/*
 * What a try says about readiness. EAGAIN: not ready (until the next edge).
 * A stream receive that did not fill its buffer emptied the socket: data
 * arriving after it raises an edge, so the next receive can wait at once (for
 * a request/response connection that saves a failed recv per message).
 * Datagrams are not so: a short one may leave others queued.
 */
static void learn(ep *e, const iou__op *op, verdict v, long res)
{
    uint32_t dir = transfer_dir(op);
    if (dir == 0 || (size_t)op->fd >= e->nfds)
        return;
    fdw *w = &e->fds[op->fd];
    if (!(w->events & dir))
        return; /* nothing registered: an edge may never come, keep trying first */
    bool idle = v == WAIT_IN || v == WAIT_OUT;
    if (!idle && op->kind == IOU__OP_RECV && !(op->flags & MSG_PEEK) && res > 0 &&
        (size_t)res < io_len(op->len) && !(op->flags & MSG_WAITALL))
        idle = is_stream(w, op->fd);
    if (!idle)
        return;
    if (dir == EPOLLIN)
        w->in_idle = true;
    else
        w->out_idle = true;
}

static void attempt(iou_loop *l, ep *e, iou__op *op)
{
    if (op->be_state & ST_CANCELLED) {
        finish(l, e, op, -ECANCELED);
        return;
    }
    op->be_state = ST_RUNNING | (op->be_state & ~ST_MASK);
    if (op->kind == IOU__OP_ACCEPT_MULTI) {
        accept_multi(l, e, op);
        return;
    }
    if (known_idle(e, op)) {
        wait_on(l, e, op, transfer_dir(op) == EPOLLIN ? WAIT_IN : WAIT_OUT);
        return;
    }
    long res = 0;
    verdict v = try_op(op, &res);
    if (v == DONE)
        learn(e, op, v, res);
    if (v == DONE)
        finish(l, e, op, res);
    else if (v == TO_POOL)
        to_pool(l, e, op);
    else {
        wait_on(l, e, op, v);
        learn(e, op, v, res);
    }
}

/* Tries what was queued when it began; what completions queue meanwhile
 * waits for the next round (a completion that resubmits cannot spin here). */
static void run_queue(iou_loop *l, ep *e)
{
    size_t n = e->q_len;
    iou__op *op;
    while (n-- && (op = dequeue(e)))
        attempt(l, e, op);
}

/* ---- events ----------------------------------------------------------------------- */

static void on_event(ep *e, uint64_t data, uint32_t got)
{
    if (data == TICK_TAG) { /* a sweep tick: ep_poll's sweep_due looks at the clock */
        uint64_t ticks; /* read: a periodic timerfd re-arms only when read */
        ssize_t r = read(e->tfd, &ticks, sizeof(ticks));
        (void)r;
        return;
    }
    int fd = (int)(uint32_t)data;
    if ((size_t)fd >= e->nfds)
        return;
    fdw *w = &e->fds[fd];
    if ((uint32_t)(data >> 32) != w->gen)
        return; /* a registration of a file this fd number no longer names */
    if (got & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        w->in_idle = false;
        requeue_all(e, &w->in);
    }
    if (got & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        w->out_idle = false;
        requeue_all(e, &w->out);
    }
    if (!has_waiters(w))
        w->since = 0;
}

/* With trusting waits outstanding: runs the sweep when a new period began,
 * and returns the timeout cut so the loop wakes for the next one. (The real
 * clock, also under a virtual one: this is about the kernel's events.) */
static uint64_t sweep_due(ep *e, uint64_t timeout_ns)
{
    uint64_t now = iou__clock();
    uint32_t epoch = (uint32_t)(now >> SWEEP_SHIFT);
    if (epoch != e->epoch) {
        e->epoch = epoch;
        sweep(e);
    }
    if (e->sweep_len == 0 || e->tfd_armed)
        return timeout_ns; /* the ticker wakes the loop */
    uint64_t next = ((now >> SWEEP_SHIFT) + 1) << SWEEP_SHIFT;
    return next - now < timeout_ns ? next - now : timeout_ns;
}

static int epoll_wait_ns(ep *e, uint64_t timeout_ns)
{
    if (!e->no_pwait2) {
        struct timespec ts, *tsp = NULL;
        if (timeout_ns != IOU__NEVER) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
            ts.tv_nsec = (long)(timeout_ns % 1000000000u);
            tsp = &ts;
        }
        long n = syscall(SYS_epoll_pwait2, e->epfd, e->ev, EVENTS_MAX, tsp, NULL, 0);
        if (n >= 0 || errno != ENOSYS)
            return (int)n;
        e->no_pwait2 = true;
    }
    int ms = -1;
    if (timeout_ns != IOU__NEVER) {
        uint64_t m = (timeout_ns + 999999u) / 1000000u; /* rounded up: never early */
        ms = m > INT32_MAX ? INT32_MAX : (int)m;
    }
    return epoll_wait(e->epfd, e->ev, EVENTS_MAX, ms);
}

/*
 * Runs the try queue, then asks epoll. When the queue completed something
 * (tasks are ready), a look at epoll that cannot sleep is usually wasted (the
 * ready tasks' next operations will wait anyway), so it is skipped, but never
 * twice in a row: readiness is checked at least every other turn, and a loop
 * busy with completions cannot starve waiting fds.
 */
static int ep_poll(iou_loop *l, uint64_t timeout_ns)
{
    ep *e = ep_of(l);
    e->completed = 0;
    run_queue(l, e);
    if (e->completed || e->q_head) {
        if (!e->skipped) {
            e->skipped = true;
            return 0;
        }
        timeout_ns = 0; /* tasks are ready, or work is queued: do not sleep */
    }
    e->skipped = false;
    if (e->sweep_len)
        timeout_ns = sweep_due(e, timeout_ns);
    l->counters.enters++; /* the epoll analogue of io_uring_enter (stats) */
    int n = epoll_wait_ns(e, timeout_ns);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++)
        on_event(e, e->ev[i].data.u64, e->ev[i].events);
    run_queue(l, e);
    return 0;
}

/* ---- the interface ----------------------------------------------------------------- */

static void ep_submit(iou_loop *l, iou__op *op)
{
    op->be_state = 0;
    op->be_done = 0;
    enqueue(ep_of(l), op);
}

/* Closing through iou: operations still waiting on the fd stay parked until
 * cancelled (as io_uring's keep the file), but no longer on this fd number,
 * which the kernel may hand out again. */
static void ep_forget(iou_loop *l, int fd)
{
    reset_fd(ep_of(l), fd);
}

static void ep_cancel(iou_loop *l, iou__op *op)
{
    ep *e = ep_of(l);
    switch (state(op)) {
    case ST_QUEUED:
    case ST_RUNNING:
        op->be_state |= ST_CANCELLED;
        break;
    case ST_WAIT_IN:
    case ST_WAIT_OUT: {
        fdw *w = &e->fds[op->fd];
        list_remove(state(op) == ST_WAIT_IN ? &w->in : &w->out, op);
        if (!has_waiters(w))
            w->since = 0;
        op->be_state |= ST_CANCELLED;
        enqueue(e, op);
        break;
    }
    case ST_ORPHAN:
        op->be_state |= ST_CANCELLED;
        enqueue(e, op);
        break;
    default: /* ST_POOL: its system call runs; it completes with the real result */
        break;
    }
}

static int ep_init(iou_loop *l, unsigned entries)
{
    (void)entries;
    ep *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        int err = -errno;
        free(e);
        return err;
    }
    e->q_tail = &e->q_head;
    ticker_open(e); /* with the loop, not on first use: it must not take an fd
                       number the program may believe is closed */
    l->backend_data = e;
    return 0;
}

static void ep_fini(iou_loop *l)
{
    ep *e = ep_of(l);
    close(e->epfd);
    if (e->tfd >= 0)
        close(e->tfd);
    while (e->free_jobs) {
        struct ep_job *j = e->free_jobs;
        e->free_jobs = j->free_next;
        free(j);
    }
    free(e->fds);
    free(e->sweep);
    free(e);
    l->backend_data = NULL;
}

static void ep_submit_op(iou_loop *l, iou__op *op)
{
    if (op->kind == IOU__OP_CLOSE)
        ep_forget(l, op->fd);
    ep_submit(l, op);
}

const iou__backend iou__backend_epoll = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .submit = ep_submit_op,
    .cancel = ep_cancel,
    .poll = ep_poll,
    .forget = ep_forget,
};
