/*
 * Fault injection: see fault.h for what is injected and why it is always
 * the truth. Everything here runs only while injection is on: the hook in
 * iou__op_submit tests one bit of l->dbg (IOU__DBG_FAULT) otherwise.
 */
#include "fault.h"
#include "bufring.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

struct iou__fault {
    uint64_t threshold; /* a draw below it (out of 2^32) faults the operation */
    uint64_t rng;
    double rate;
    iou__fault_stats stats;
    iou__fault_observer observer;
    void *observer_ctx;
};

/* The stand-in for a failed operation: a NOP whose completion reports err
 * to the operation it replaced. */
typedef struct stand_in {
    iou__op nop;
    iou__op *target;
    int err;
} stand_in;

static const int file_errors[] = {-EINTR, -EAGAIN, -ENOMEM, -EIO};
static const int socket_errors[] = {-EINTR, -EAGAIN, -ENOMEM, -ECONNRESET};
static const int accept_errors[] = {-ECONNABORTED, -EINTR, -ENOMEM};

/* ---- set-up ------------------------------------------------------------------ */

static uint32_t draw(iou__fault *f)
{
    f->rng ^= f->rng >> 12; /* xorshift64* */
    f->rng ^= f->rng << 25;
    f->rng ^= f->rng >> 27;
    return (uint32_t)((f->rng * 0x2545F4914F6CDD1Dull) >> 32);
}

int iou__fault_enable(iou_loop *l, double rate, uint64_t seed)
{
    if (!(rate > 0)) {
        iou__fault_fini(l);
        return 0;
    }
    iou__fault *f = l->fault ? l->fault : calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->rate = rate > 1 ? 1 : rate;
    f->threshold = (uint64_t)(f->rate * 4294967296.0);
    f->rng = seed ? seed : 1;
    l->fault = f;
    l->dbg |= IOU__DBG_FAULT;
    return 0;
}

int iou__fault_init(iou_loop *l)
{
    const char *env = getenv("IOU_FAULT");
    if (env == NULL || *env == '\0')
        return 0;
    char *end;
    double rate = strtod(env, &end);
    uint64_t seed = *end == ':' ? strtoull(end + 1, NULL, 0) : 0;
    if (seed == 0)
        seed = iou__clock() ^ (uint64_t)(uintptr_t)l;
    if (rate > 0)
        fprintf(stderr, "iou: fault injection on: IOU_FAULT=%g:%llu\n", rate,
                (unsigned long long)seed);
    return iou__fault_enable(l, rate, seed);
}

void iou__fault_fini(iou_loop *l)
{
    free(l->fault);
    l->fault = NULL;
    l->dbg &= (uint8_t)~IOU__DBG_FAULT;
}

void iou__fault_observe(iou_loop *l, iou__fault_observer fn, void *ctx)
{
    if (l->fault) {
        l->fault->observer = fn;
        l->fault->observer_ctx = ctx;
    }
}

const iou__fault_stats *iou__fault_get_stats(const iou_loop *l)
{
    return l->fault ? &l->fault->stats : NULL;
}

/* ---- which operations, which errors ----------------------------------------------- */

/* The errors a kind may plausibly fail with (count in *n), or NULL: never
 * faulted. */
static const int *errors_of(const iou__op *op, size_t *n)
{
#define TABLE(t) (*n = sizeof(t) / sizeof(t[0]), t)
    switch (op->kind) {
    case IOU__OP_READ:
    case IOU__OP_WRITE:
        return TABLE(file_errors);
    case IOU__OP_RECV:
    case IOU__OP_SEND:
    case IOU__OP_RECV_BUF:
    case IOU__OP_RECV_MULTI:
    case IOU__OP_RECVMSG:
    case IOU__OP_SENDMSG:
    case IOU__OP_SEND_ZC:
        return TABLE(socket_errors);
    case IOU__OP_ACCEPT_MULTI:
        return TABLE(accept_errors);
    default:
        return NULL;
    }
#undef TABLE
}

/* A byte stream, where a shorter transfer is only a smaller step: a regular
 * file (not O_DIRECT: its alignment rules), a pipe, a stream socket. A
 * datagram would be truncated, an eventfd refuses short reads. */
static bool byte_stream(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return false;
    if (S_ISREG(st.st_mode))
        return !(fcntl(fd, F_GETFL) & O_DIRECT);
    if (S_ISFIFO(st.st_mode))
        return true;
    int type = 0;
    socklen_t len = sizeof(type);
    return S_ISSOCK(st.st_mode) && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
           type == SOCK_STREAM;
}

/* The length a shortened op would ask for, or 0 if it cannot be shortened. */
static size_t shortenable(iou_loop *l, const iou__op *op)
{
    size_t len;
    switch (op->kind) {
    case IOU__OP_READ:
    case IOU__OP_WRITE:
    case IOU__OP_RECV:
    case IOU__OP_SEND:
    case IOU__OP_SEND_ZC:
        len = op->len;
        break;
    case IOU__OP_RECV_BUF: /* 0: the ring's buffer size */
        len = op->len ? op->len : iou__bufring_buf_size(l);
        break;
    default: /* multishot receives must ask for 0; messages carry iovecs */
        return 0;
    }
    if (len < 2 || (op->kind != IOU__OP_READ && op->kind != IOU__OP_WRITE &&
                    (op->flags & MSG_WAITALL)))
        return 0;
    return byte_stream(op->fd) ? len : 0;
}

/* ---- injecting ------------------------------------------------------------------- */

static void stand_in_done(iou__op *nop)
{
    stand_in *s = iou__container_of(nop, stand_in, nop);
    iou__op *op = s->target;
    op->res = s->err;
    op->cqe_flags = 0; /* final, no buffer */
    free(s);
    op->done(op);
}

/* Submits a NOP that completes op with err. Its completion stands for op's
 * (op was counted in flight by the caller; the NOP's completion uncounts it). */
static bool fail(iou_loop *l, iou__op *op, int err)
{
    stand_in *s = malloc(sizeof(*s));
    if (s == NULL)
        return false; /* no memory for a fault: submit it for real */
    *s = (stand_in){.nop = {.kind = IOU__OP_NOP, .done = stand_in_done}, .target = op, .err = err};
    l->backend->submit(l, &s->nop);
    iou__fault *f = l->fault;
    f->stats.errors++;
    if (f->observer)
        f->observer(f->observer_ctx, l->current, err);
    return true;
}

bool iou__fault_submit(iou_loop *l, iou__op *op)
{
    iou__fault *f = l->fault;
    size_t n;
    const int *errors = errors_of(op, &n);
    if (errors == NULL)
        return false;
    f->stats.considered++;
    if (draw(f) >= f->threshold)
        return false;
    uint32_t r = draw(f);
    size_t len = (r & 1) ? shortenable(l, op) : 0;
    if (len) {
        op->len = 1 + (r >> 1) % (len - 1);
        f->stats.shorts++;
        return false;
    }
    return fail(l, op, errors[(r >> 1) % n]);
}
