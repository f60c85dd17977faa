/*
 * The io_uring backend.
 *
 * Setup takes the best mode the kernel accepts: SINGLE_ISSUER + DEFER_TASKRUN
 * (completions are processed only when we enter the kernel, on our thread:
 * fewest interruptions), else COOP_TASKRUN, else plain; the ring fd is
 * registered to save an fdget per enter. The CQ is four times the SQ, and the
 * kernel's NODROP overflow list catches the rest: no completion is ever lost.
 *
 * A loop about to sleep with one send queued and nothing else makes that
 * send itself (lone_send_directly): one send(2) instead of an enter that
 * would return at once with the send's completion and a second enter to
 * sleep. A server answering one request at a time pays one system call
 * less per request; a batch of several SQEs still goes in one enter.
 */
#include "backend.h"
#include "feature_mask.h"
#include "loop.h"
#include "op.h"
#include "remote.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

_Static_assert(IOU__CQE_MORE == IORING_CQE_F_MORE, "CQE flags pass through unchanged");

enum {
    MAX_IO = 0x7ffff000, /* the kernel's largest single read/write */
};

typedef struct uring {
    struct io_uring ring;
    unsigned setup_flags;
    bool registered_fd;
    unsigned group_pause; /* file operations to queue before grouping again (see
                             prep_file_io) */
    bool direct_send;     /* lone_send_directly is allowed */
    uint8_t send_misses;  /* its tries in a row that found the socket full */
    uint8_t send_skip;    /* lone sends left to hand to the kernel untried */
} uring;

static uring *uring_of(iou_loop *l)
{
    return l->backend_data;
}

static int setup_ring(struct io_uring *r, unsigned entries, unsigned flags)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    p.cq_entries = entries * 4;
    return io_uring_queue_init_params(entries, r, &p);
}

/* Modes that use a feature the test switch masks are skipped. */
static bool mode_allowed(iou_loop *l, unsigned mode)
{
    if ((mode & IORING_SETUP_DEFER_TASKRUN) && !iou__feature_allowed(l, IOU__FEAT_DEFER_TASKRUN))
        return false;
    return !(mode & IORING_SETUP_COOP_TASKRUN) || iou__feature_allowed(l, IOU__FEAT_COOP_TASKRUN);
}

/* Tries each mode from best to plainest; -EINVAL means "flag not known". */
static int setup_best(iou_loop *l, uring *u, unsigned entries)
{
    static const unsigned modes[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
            IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int ret = -EINVAL;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (!mode_allowed(l, modes[i]))
            continue;
        ret = setup_ring(&u->ring, entries, modes[i]);
        if (ret == 0) {
            u->setup_flags = modes[i];
            return 0;
        }
        if (ret != -EINVAL)
            return ret;
    }
    return ret;
}

static int uring_init(iou_loop *l, unsigned entries)
{
    uring *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return -ENOMEM;
    int ret = setup_best(l, u, entries);
    if (ret < 0) {
        free(u);
        return ret;
    }
    /* Without EXT_ARG liburing bounds a wait with a timeout SQE (its CQE
     * carries LIBURING_UDATA_TIMEOUT, which reap skips). */
    if (!iou__feature_allowed(l, IOU__FEAT_EXT_ARG))
        u->ring.features &= ~IORING_FEAT_EXT_ARG;
    /* An optimisation: failure is fine. */
    if (iou__feature_allowed(l, IOU__FEAT_REGISTERED_RING))
        u->registered_fd = io_uring_register_ring_fd(&u->ring) == 1;
    u->direct_send = iou__feature_allowed(l, IOU__FEAT_DIRECT_SEND);
    l->backend_data = u;
    return 0;
}

static void uring_fini(iou_loop *l)
{
    uring *u = uring_of(l);
    io_uring_queue_exit(&u->ring);
    free(u);
    l->backend_data = NULL;
}

/* The kernel holds completions we have not seen: task work to run (deferred
 * or cooperative) or an overflow list to flush into the CQ. */
static bool kernel_has_events(uring *u)
{
    unsigned flags = IO_URING_READ_ONCE(*u->ring.sq.kflags);
    return flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

/*
 * Completes every CQE in the ring. The CQ head moves past each CQE before its
 * completion runs, so a completion that submits (and so may flush and reap
 * again) never sees a CQE twice.
 */
static void reap(iou_loop *l, uring *u)
{
    /* The ring's fixed addresses, in registers across the completions. */
    unsigned *khead = u->ring.cq.khead;
    const struct io_uring_cqe *cqes = u->ring.cq.cqes;
    const unsigned mask = u->ring.cq.ring_mask;
    for (;;) {
        unsigned head = *khead;
        unsigned tail = io_uring_smp_load_acquire(u->ring.cq.ktail);
        while (head != tail) {
            const struct io_uring_cqe *cqe = &cqes[head & mask];
            uint64_t data = cqe->user_data;
            int res = cqe->res;
            uint32_t flags = cqe->flags;
            io_uring_smp_store_release(khead, ++head);
            /* 0: a cancel request's own result; TIMEOUT: liburing's wait timeout;
             * other odd values: MSG_RING wake-ups (remote.h) */
            if (data & 1) {
                if (data != LIBURING_UDATA_TIMEOUT)
                    iou__remote_cqe(l, data, res);
            } else if (data != 0) {
                iou__op_complete(l, (iou__op *)(uintptr_t)data, res, flags);
            }
            head = *khead; /* a nested reap may have moved it */
        }
        if (!(IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW))
            return;
        l->counters.cq_overflows++;
        l->counters.enters++;
        io_uring_get_events(&u->ring); /* moves the overflow list into the CQ */
    }
}

static void fatal(const char *what, int err)
{
    fprintf(stderr, "iou: %s: %s\n", what, strerror(-err));
    abort();
}

/* The SQ is full: hand what is queued to the kernel so slots free up. */
/* Each io_uring_enter is counted for iou_loop_get_stats (the SQEs it carries
 * are counted where they are made: operations and cancels). */
static void flush(iou_loop *l, uring *u)
{
    l->counters.sq_full++;
    l->counters.enters++;
    int ret = io_uring_submit(&u->ring);
    if (ret >= 0 || ret == -EINTR)
        return;
    if (ret == -EBUSY || ret == -EAGAIN) {
        /* The CQ side is backed up: drain it, then the retry can proceed. */
        l->counters.enters++;
        io_uring_get_events(&u->ring);
        reap(l, u);
        return;
    }
    fatal("io_uring submit failed", ret);
}

/* io_uring_get_sqe without the library call (liburing 2.3 does not inline it),
 * in two steps: the submission path branches on "full" alone. Without SQPOLL
 * only our own enter moves the kernel's head. */
static inline bool sq_full(const struct io_uring_sq *sq)
{
    return sq->sqe_tail - IO_URING_READ_ONCE(*sq->khead) >= sq->ring_entries;
}

static inline struct io_uring_sqe *take_sqe(struct io_uring_sq *sq)
{
    return &sq->sqes[sq->sqe_tail++ & sq->ring_mask];
}

static inline struct io_uring_sqe *try_sqe(struct io_uring_sq *sq)
{
    return sq_full(sq) ? NULL : take_sqe(sq);
}

/* The SQ is full: flushes until a slot frees. Out of line: the common path
 * of a cancel needs no stack frame. */
__attribute__((noinline)) static struct io_uring_sqe *next_sqe_after_flush(iou_loop *l,
                                                                          uring *u)
{
    struct io_uring_sqe *sqe;
    do
        flush(l, u);
    while ((sqe = try_sqe(&u->ring.sq)) == NULL);
    return sqe;
}

static inline struct io_uring_sqe *next_sqe(iou_loop *l, uring *u)
{
    struct io_uring_sqe *sqe = try_sqe(&u->ring.sq);
    if (__builtin_expect(sqe == NULL, 0))
        sqe = next_sqe_after_flush(l, u);
    return sqe;
}

static unsigned io_len(size_t len)
{
    return len > MAX_IO ? MAX_IO : (unsigned)len;
}

/* liburing 2.3 predates it (kernel 6.9); the value is the kernel's ABI. */
#ifndef IORING_OP_FTRUNCATE
#define IORING_OP_FTRUNCATE 55
#endif

static void prep_splice(struct io_uring_sqe *sqe, iou__op *op)
{
    const iou__splice_out *out = op->aux;
    int64_t off_in = op->off == IOU__OFF_CURRENT ? -1 : (int64_t)op->off;
    int64_t off_out = out->off == IOU__OFF_CURRENT ? -1 : (int64_t)out->off;
    unsigned flags = op->flags & ~(unsigned)SPLICE_F_FD_IN_FIXED;
    if (op->kind == IOU__OP_SPLICE)
        io_uring_prep_splice(sqe, op->fd, off_in, out->fd, off_out, io_len(op->len), flags);
    else
        io_uring_prep_tee(sqe, op->fd, out->fd, io_len(op->len), flags);
    /* Registered-file handles: the output is sqe->fd (IOSQE_FIXED_FILE), the
     * input has its own flag. */
    if (iou__is_fixed_fd(op->fd)) {
        sqe->splice_fd_in = op->fd & ~IOU__FIXED_FD;
        sqe->splice_flags |= SPLICE_F_FD_IN_FIXED;
    }
    if (iou__is_fixed_fd(out->fd)) {
        sqe->fd = out->fd & ~IOU__FIXED_FD;
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

static bool takes_file(uint8_t kind);
static void use_fixed_file(struct io_uring_sqe *sqe, const iou__op *op);

/* The file operations of ops_fs.c (out of line: see prep; reads and
 * writes: prep_file_io). */
__attribute__((noinline)) static void prep_file(struct io_uring_sqe *sqe, iou__op *op)
{
    switch (op->kind) {
    case IOU__OP_STATX:
        io_uring_prep_statx(sqe, op->fd, op->buf, (int)op->flags, (unsigned)op->len, op->aux);
        break;
    case IOU__OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, op->fd, (int)op->flags, (off_t)op->off, (off_t)op->len);
        break;
    case IOU__OP_FTRUNCATE:
        io_uring_prep_rw(IORING_OP_FTRUNCATE, sqe, op->fd, NULL, 0, op->off);
        break;
    case IOU__OP_UNLINKAT:
        io_uring_prep_unlinkat(sqe, op->fd, op->buf, (int)op->flags);
        break;
    case IOU__OP_RENAMEAT:
        io_uring_prep_renameat(sqe, op->fd, op->buf, (int)(uint32_t)op->off, op->aux, op->flags);
        break;
    case IOU__OP_MKDIRAT:
        io_uring_prep_mkdirat(sqe, op->fd, op->buf, (mode_t)op->len);
        break;
    case IOU__OP_LINKAT:
        io_uring_prep_linkat(sqe, op->fd, op->buf, (int)(uint32_t)op->off, op->aux, (int)op->flags);
        break;
    case IOU__OP_SYMLINKAT:
        io_uring_prep_symlinkat(sqe, op->buf, op->fd, op->aux);
        break;
    case IOU__OP_FDATASYNC:
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        break;
    case IOU__OP_SYNC_RANGE: /* callers pass len <= UINT32_MAX (0: to the end) */
        io_uring_prep_sync_file_range(sqe, op->fd, (unsigned)op->len, op->off, (int)op->flags);
        break;
    case IOU__OP_FADVISE: /* callers pass len <= UINT32_MAX */
        io_uring_prep_fadvise(sqe, op->fd, op->off, (off_t)op->len, (int)op->flags);
        break;
    case IOU__OP_SPLICE:
    case IOU__OP_TEE:
        prep_splice(sqe, op);
        break;
    default:
        fatal("unknown operation kind", -EINVAL);
    }
    if (iou__is_fixed_fd(op->fd) && takes_file(op->kind))
        use_fixed_file(sqe, op);
}

/* Kinds whose op->fd is an open file the SQE acts on (not a dirfd, a socket
 * domain, or something else): a registered-file handle there becomes
 * IOSQE_FIXED_FILE. Splice and tee handle theirs in prep_splice. */
static bool takes_file(uint8_t kind)
{
    switch (kind) {
    case IOU__OP_READ: case IOU__OP_WRITE: case IOU__OP_FSYNC:
    case IOU__OP_ACCEPT: case IOU__OP_CONNECT: case IOU__OP_RECV: case IOU__OP_SEND:
    case IOU__OP_ACCEPT_MULTI: case IOU__OP_RECV_BUF: case IOU__OP_RECV_MULTI:
    case IOU__OP_RECVMSG: case IOU__OP_SENDMSG: case IOU__OP_SHUTDOWN: case IOU__OP_SEND_ZC:
    case IOU__OP_FALLOCATE: case IOU__OP_FTRUNCATE: case IOU__OP_READV: case IOU__OP_WRITEV:
    case IOU__OP_FDATASYNC: case IOU__OP_SYNC_RANGE: case IOU__OP_FADVISE:
    case IOU__OP_READ_FIXED: case IOU__OP_WRITE_FIXED:
        return true;
    default:
        return false;
    }
}

static void use_fixed_file(struct io_uring_sqe *sqe, const iou__op *op)
{
    sqe->fd = op->fd & ~IOU__FIXED_FD;
    sqe->flags |= IOSQE_FIXED_FILE;
}

/* The caller's prep function may set anything, user_data included: ours
 * goes in after it. */
__attribute__((noinline)) static void prep_raw(struct io_uring_sqe *sqe, iou__op *op)
{
    ((iou_prep_fn)op->aux)(sqe, op->buf);
    io_uring_sqe_set_data(sqe, op);
}

/*
 * File reads and writes go to the kernel in small groups, not only once
 * after the whole ready batch: a disk starts on a request only once it is
 * submitted, and requests submitted together tend to complete together (a
 * convoy the batch then resubmits as one again). Measured on the project's
 * virtio disk, direct 4 KiB random reads at QD 32: 0.85x fio's io_uring
 * engine (which submits each request as it is made) with one enter per
 * batch, ~1.0x in groups of 4 (bench/RESULTS.md, Storage).
 *
 * Reads the page cache answers complete inside the enter and gain nothing
 * from early ones (cached QD 32 reads of registered buffers lost 11% to
 * them): when most of a group completed inside its enter, grouping pauses
 * for GROUP_PAUSE file operations, then tries again. NOPs and socket
 * operations keep one enter per batch.
 */
enum {
    FILE_IO_SUBMIT_GROUP = 4,
    GROUP_PAUSE = 256,
};

/* A file read or write: prepared, and submitted at once with those queued
 * before it when they make a group. Completions are not reaped here (the
 * poll does): the CQ's growth across the enter is what completed inside it.
 * Errors (a full CQ side) leave the SQEs queued: the next poll submits them.
 * Reached through prep's switch, so the other kinds pay nothing for it. */
__attribute__((noinline)) static void prep_file_io(iou_loop *l, uring *u,
                                                   struct io_uring_sqe *sqe, iou__op *op)
{
    switch (op->kind) {
    case IOU__OP_READ:
        io_uring_prep_read(sqe, op->fd, op->buf, io_len(op->len), op->off);
        break;
    case IOU__OP_WRITE:
        io_uring_prep_write(sqe, op->fd, op->buf, io_len(op->len), op->off);
        break;
    case IOU__OP_READV:
        io_uring_prep_readv(sqe, op->fd, op->buf, (unsigned)op->len, op->off);
        break;
    case IOU__OP_WRITEV:
        io_uring_prep_writev(sqe, op->fd, op->buf, (unsigned)op->len, op->off);
        break;
    case IOU__OP_READ_FIXED:
        io_uring_prep_read_fixed(sqe, op->fd, op->buf, io_len(op->len), op->off, (int)op->flags);
        break;
    default: /* IOU__OP_WRITE_FIXED */
        io_uring_prep_write_fixed(sqe, op->fd, op->buf, io_len(op->len), op->off,
                                  (int)op->flags);
        break;
    }
    if (iou__is_fixed_fd(op->fd))
        use_fixed_file(sqe, op);
    if (u->group_pause) {
        u->group_pause--;
        return;
    }
    unsigned queued = io_uring_sq_ready(&u->ring);
    if (queued < FILE_IO_SUBMIT_GROUP)
        return;
    unsigned before = io_uring_cq_ready(&u->ring);
    l->counters.enters++;
    (void)io_uring_submit(&u->ring);
    if (io_uring_cq_ready(&u->ring) - before > queued / 2)
        u->group_pause = GROUP_PAUSE;
}

/* The rare kinds (raw, files) end in a call of their own; the others need
 * no stack frame (the submission's common path). */
static void prep(iou_loop *l, uring *u, struct io_uring_sqe *sqe, iou__op *op)
{
    io_uring_sqe_set_data(sqe, op); /* the prep helpers leave user_data alone */
    switch (op->kind) {
    case IOU__OP_NOP:
        io_uring_prep_nop(sqe);
        break;
    case IOU__OP_OPENAT:
        io_uring_prep_openat(sqe, op->fd, op->buf, (int)op->flags, (mode_t)op->len);
        break;
    case IOU__OP_CLOSE:
        io_uring_prep_close(sqe, op->fd);
        break;
    case IOU__OP_READ: case IOU__OP_WRITE: case IOU__OP_READV: case IOU__OP_WRITEV:
    case IOU__OP_READ_FIXED: case IOU__OP_WRITE_FIXED:
        prep_file_io(l, u, sqe, op); /* fixed files included */
        return;
    case IOU__OP_FSYNC:
        io_uring_prep_fsync(sqe, op->fd, op->flags);
        break;
    case IOU__OP_SOCKET:
        io_uring_prep_socket(sqe, op->fd, (int)op->flags, (int)op->len, 0);
        break;
    case IOU__OP_ACCEPT:
        io_uring_prep_accept(sqe, op->fd, op->buf, op->aux, (int)op->flags);
        break;
    case IOU__OP_CONNECT:
        io_uring_prep_connect(sqe, op->fd, op->buf, (socklen_t)op->len);
        break;
    case IOU__OP_RECV:
        io_uring_prep_recv(sqe, op->fd, op->buf, io_len(op->len), (int)op->flags);
        break;
    case IOU__OP_SEND:
        io_uring_prep_send(sqe, op->fd, op->buf, io_len(op->len), (int)op->flags);
        break;
    case IOU__OP_RAW: /* not a file kind */
        prep_raw(sqe, op);
        return;
    case IOU__OP_ACCEPT_MULTI:
        io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, (int)op->flags);
        break;
    case IOU__OP_RECV_BUF:
    case IOU__OP_RECV_MULTI:
        io_uring_prep_recv(sqe, op->fd, NULL, io_len(op->len), (int)op->flags);
        /* Poll first: an idle socket then never takes (or fails for lack of)
         * a buffer; one is picked only when data is there. Not for a
         * multishot: armed with POLL_FIRST on a socket whose peer had
         * already closed, it delivers the data but never the end of stream
         * (Linux 6.18); streams arm it only while the ring has buffers. */
        if (op->kind == IOU__OP_RECV_MULTI)
            sqe->ioprio |= IORING_RECV_MULTISHOT;
        else
            sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = (uint16_t)op->off;
        break;
    case IOU__OP_RECVMSG:
        io_uring_prep_recvmsg(sqe, op->fd, op->buf, op->flags);
        break;
    case IOU__OP_SENDMSG:
        io_uring_prep_sendmsg(sqe, op->fd, op->buf, op->flags);
        break;
    case IOU__OP_SHUTDOWN:
        io_uring_prep_shutdown(sqe, op->fd, (int)op->flags);
        break;
    case IOU__OP_SEND_ZC:
        io_uring_prep_send_zc(sqe, op->fd, op->buf, io_len(op->len), (int)op->flags,
                              (unsigned)op->off);
        break;
    default:
        prep_file(sqe, op); /* fixed files included */
        return;
    }
    if (iou__is_fixed_fd(op->fd) && takes_file(op->kind))
        use_fixed_file(sqe, op);
}

struct io_uring *iou__uring(iou_loop *l)
{
    return l->backend == &iou__backend_uring ? &uring_of(l)->ring : NULL;
}

unsigned iou__uring_features(iou_loop *l)
{
    if (l->backend != &iou__backend_uring)
        return 0;
    uring *u = uring_of(l);
    unsigned f = 0;
    if (u->setup_flags & IORING_SETUP_DEFER_TASKRUN)
        f |= IOU__FEAT_DEFER_TASKRUN;
    if (u->setup_flags & IORING_SETUP_COOP_TASKRUN)
        f |= IOU__FEAT_COOP_TASKRUN;
    if (u->ring.features & IORING_FEAT_EXT_ARG)
        f |= IOU__FEAT_EXT_ARG;
    if (u->registered_fd)
        f |= IOU__FEAT_REGISTERED_RING;
    return f;
}

/* The SQ is full: flushes, then submits op. Reached by a tail call, so the
 * common path keeps nothing across a call and needs no stack frame. */
__attribute__((cold, noinline)) static void submit_after_flush(iou_loop *l, uring *u,
                                                               iou__op *op)
{
    prep(l, u, next_sqe_after_flush(l, u), op);
}

static void uring_submit(iou_loop *l, iou__op *op)
{
    uring *u = uring_of(l);
    if (__builtin_expect(sq_full(&u->ring.sq), 0)) {
        submit_after_flush(l, u, op);
        return;
    }
    prep(l, u, take_sqe(&u->ring.sq), op);
}

static void uring_cancel(iou_loop *l, iou__op *op)
{
    struct io_uring_sqe *sqe = next_sqe(l, uring_of(l));
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
    io_uring_sqe_set_data(sqe, NULL);
}

static bool enter_needed(iou_loop *l, uring *u)
{
    if (io_uring_sq_ready(&u->ring) || kernel_has_events(u))
        return true;
    /* Without the TASKRUN flag we cannot see pending task work: ask. */
    return l->ops_inflight && !(u->setup_flags & IORING_SETUP_TASKRUN_FLAG);
}

/* Hands the kernel every SQE prepared since the last enter (liburing's own
 * flush: the SQ array maps slot i to SQE i since setup, so publishing the
 * tail is all) and returns how many it has not consumed yet. */
static unsigned flush_sq(struct io_uring_sq *sq)
{
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    return tail - IO_URING_READ_ONCE(*sq->khead);
}

/*
 * The blocking wait: one io_uring_enter that submits what is queued and
 * waits for a completion, for at most timeout_ns (IOU__NEVER: no limit),
 * the bound passed in EXT_ARG. It is the syscall liburing's
 * io_uring_submit_and_wait_timeout makes, without the ~150 instructions of
 * its CQ peeking and retry loop around it: a sleeping loop pays this twice
 * per request-response (bench/RESULTS.md, the 1x64 echo cell). Without
 * EXT_ARG the bound is a timeout SQE, which liburing prepares.
 */
static int enter_and_wait(uring *u, uint64_t timeout_ns)
{
    struct io_uring *r = &u->ring;
    if (timeout_ns != IOU__NEVER && !(r->features & IORING_FEAT_EXT_ARG)) {
        struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000u),
                                       .tv_nsec = (long long)(timeout_ns % 1000000000u)};
        struct io_uring_cqe *cqe;
        return io_uring_submit_and_wait_timeout(r, &cqe, 1, &ts, NULL);
    }
    unsigned flags = IORING_ENTER_GETEVENTS;
    if (u->registered_fd)
        flags |= IORING_ENTER_REGISTERED_RING;
    unsigned submit = flush_sq(&r->sq);
    if (timeout_ns == IOU__NEVER)
        return io_uring_enter2((unsigned)r->enter_ring_fd, submit, 1, flags, NULL, _NSIG / 8);
    struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000u),
                                   .tv_nsec = (long long)(timeout_ns % 1000000000u)};
    struct io_uring_getevents_arg arg = {.ts = (uint64_t)(uintptr_t)&ts};
    /* With EXT_ARG the "sigset" argument is the getevents arg (liburing's own cast). */
    return io_uring_enter2((unsigned)r->enter_ring_fd, submit, 1, flags | IORING_ENTER_EXT_ARG,
                           (sigset_t *)(void *)&arg, sizeof(arg));
}

enum { MAX_SEND_MISSES = 6 }; /* skip at most 2^6 - 1 = 63 lone sends after misses */

/* A send the kernel would find the socket full for: count the miss and skip
 * the next 2^misses - 1 tries, so a sender outpacing its peer pays about
 * one failed send(2) per 64 of its sends. */
static void lone_send_missed(uring *u)
{
    if (u->send_misses < MAX_SEND_MISSES)
        u->send_misses++;
    u->send_skip = (uint8_t)((1u << u->send_misses) - 1);
}

/*
 * The loop is about to sleep. If the only SQE not yet handed to the kernel
 * is a plain send (iou_send, no fixed file, link or MSG_WAITALL), makes it
 * with send(2) and MSG_DONTWAIT, takes the SQE back and completes the
 * operation with that result; true if so. The kernel would run the same
 * send inline at the enter, non-blocking first too, so the result is the
 * one it would report: bytes sent (maybe short) or -errno. A full socket
 * (-EAGAIN) leaves the SQE to the kernel, which waits for room. The send
 * is over when send(2) returns: nothing of the buffer stays with the kernel.
 */
static bool lone_send_directly(iou_loop *l, uring *u)
{
    struct io_uring_sq *sq = &u->ring.sq;
    if (sq->sqe_tail - sq->sqe_head != 1 || !u->direct_send)
        return false;
    struct io_uring_sqe *sqe = &sq->sqes[sq->sqe_head & sq->ring_mask];
    iou__op *op = (iou__op *)(uintptr_t)sqe->user_data;
    if (sqe->opcode != IORING_OP_SEND || sqe->flags != 0 || sqe->ioprio != 0 ||
        (sqe->msg_flags & MSG_WAITALL) || op->kind != IOU__OP_SEND)
        return false;
    if (u->send_skip) {
        u->send_skip--;
        return false;
    }
    ssize_t n = send(sqe->fd, (const void *)(uintptr_t)sqe->addr, sqe->len,
                     (int)sqe->msg_flags | MSG_DONTWAIT);
    int res = n < 0 ? -errno : (int)n;
    if (res == -EAGAIN) { /* == -EWOULDBLOCK on Linux */
        lone_send_missed(u);
        return false;
    }
    u->send_misses = 0;
    sq->sqe_tail--; /* unpublished: the kernel never saw it */
    l->counters.direct_sends++;
    iou__op_complete(l, op, res, 0);
    return true;
}

/* Submits what is queued and reaps; sleeps (at most timeout_ns) unless
 * completions are already there or timeout_ns is 0. Returning with nothing
 * reaped is fine: the loop polls again. */
static int uring_poll(iou_loop *l, uint64_t timeout_ns)
{
    uring *u = uring_of(l);
    int ret = 0;
    if (timeout_ns == 0 || io_uring_cq_ready(&u->ring)) {
        if (enter_needed(l, u)) {
            l->counters.enters++;
            ret = io_uring_submit_and_get_events(&u->ring);
        }
    } else if (lone_send_directly(l, u)) {
        return 0; /* its task is ready: the loop runs it before sleeping */
    } else {
        l->counters.enters++;
        ret = enter_and_wait(u, timeout_ns);
    }
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
        return ret;
    reap(l, u);
    return 0;
}

const iou__backend iou__backend_uring = {
    .name = "io_uring",
    .init = uring_init,
    .fini = uring_fini,
    .submit = uring_submit,
    .cancel = uring_cancel,
    .poll = uring_poll,
};
