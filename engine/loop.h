/*
 * The loop: one per thread. It owns the ready queue, the timers, the stack
 * pool and the backend, and runs everything:
 *
 *   run the ready batch -> fire due timers -> submit all new SQEs and reap
 *   completions in one enter (waiting only when nothing is ready)
 *
 * Completions never switch into a task directly: they put it on the ready
 * queue (invariant 3), so one enter carries the SQEs of a whole batch.
 */
#ifndef IOU_LOOP_H
#define IOU_LOOP_H

#include "backend.h"
#include "ctx.h"
#include "op.h"
#include "queue.h"
#include "stack.h"
#include "timer_heap.h"

#include <iou.h>
#include <pthread.h>

typedef struct iou__callback iou__callback;
struct iou__debug;

/* Debug mode bits (l->dbg). Zero in a normal run: every debugging path
 * starts with one test of this byte. */
enum {
    IOU__DBG_ON = 1,    /* IOU_DEBUG: checks, slow-task warnings, reports (debug.c) */
    IOU__DBG_TRACE = 2, /* IOU_TRACE: a line per submission and completion (trace.c) */
    IOU__DBG_FAULT = 4, /* IOU_FAULT: submissions may fail on purpose (fault.c) */
    IOU__DBG_SUBMIT_HOOKS = IOU__DBG_TRACE | IOU__DBG_FAULT, /* see iou__op_submit */
};

/* Plain counters (no atomics: only the loop's thread writes them), read by
 * iou_loop_get_stats. */
typedef struct iou__counters {
    uint64_t submitted[IOU__OP_KINDS];
    uint64_t completed[IOU__OP_KINDS];
    uint64_t cqes, cancels, enters, sq_full, cq_overflows;
    uint64_t direct_sends; /* operations counted in submitted that never became an SQE */
} iou__counters;

/* Freed stream spill blocks kept for reuse (stream_queue.c): a stream
 * without a buffer ring receives each message into one. All of one size. */
enum { IOU__SPILL_CACHE = 16 };
typedef struct iou__spill_cache {
    size_t size;
    unsigned n;
    void *blk[IOU__SPILL_CACHE];
} iou__spill_cache;

struct iou_loop {
    iou_task *current; /* running task; NULL while the loop itself runs */
    iou__ctx sched_ctx;
    const void *sched_stack_lo; /* the thread stack, for ASan's fiber switches */
    size_t sched_stack_size;
    void *sched_fake_stack;
    void *sched_tsan_fiber;
    iou__queue ready;
    iou__queue batch; /* the part of ready being run now (task.c hands off within it) */
    iou__timer_heap timers;
    const iou__backend *backend;
    void *backend_data;
    size_t ops_inflight;
    iou__stack_pool stacks;
    size_t default_stack;
    iou_task *live;     /* tasks not yet done (for shutdown) */
    iou_task *finished; /* done, neither joined nor detached yet: freed with the loop */
    size_t tasks_alive; /* spawned and not yet done */
    iou_task *free_tasks;
    size_t free_task_count;
    iou__callback *free_callbacks;
    iou_timer *free_timers;
    size_t free_timer_count;
    pthread_t owner;
    bool running;
    bool stop_requested;
    bool virtual_clock;
    uint64_t virtual_now;
    void *altstack; /* this thread's signal stack, if the loop installed it */
    void *raw_ops;  /* callback-owned raw SQE requests in flight (raw.c) */
    struct iou__bufring *bufring; /* provided-buffer ring, created on first use (bufring.c) */
    struct iou__fixed_bufs *fixed_bufs;   /* registered buffers, on first use (fixed_buf.c) */
    struct iou__fixed_files *fixed_files; /* registered files, on first use (fixed_file.c) */
    struct iou__fd_kinds *fd_kinds; /* per-fd answer: may reads try the page cache first?
                                       (read_fastpath.c) */
    bool read_fastpath;             /* that fast path is on (iou_loop_opts, IOU_NOWAIT_READ) */
    uint8_t dbg;                  /* IOU__DBG_* bits, fixed at creation */
    struct iou__debug *debug;     /* debug-mode state (debug.c); NULL when off */
    iou__counters counters;
    struct iou__remote *remote;   /* the inbox other threads post to (remote.c) */
    struct iou__fault *fault;     /* fault injection, NULL when off (fault.c) */
    unsigned disabled;            /* features masked by IOU_TEST_DISABLE (feature_mask.h) */
    iou__spill_cache spills;      /* stream_queue.c */
};

/* iou__op_complete after its trace check: counts the completion, stores the
 * result and calls op->done. */
static inline void iou__op_deliver(iou_loop *l, iou__op *op, int res, uint32_t flags)
{
    l->counters.cqes++;
    if (!(flags & IOU__CQE_MORE)) {
        l->ops_inflight--;
        l->counters.completed[op->kind]++;
    }
    op->res = res;
    op->cqe_flags = flags;
    op->done(op);
}

/* The out-of-line part of iou__op_complete (op.c): a traced completion. */
void iou__op_complete_traced(iou_loop *l, iou__op *op, int res, uint32_t flags);

/* Called by the backend for each completion. flags are io_uring CQE flags
 * (the epoll backend synthesises the same bits); IOU__CQE_MORE means the
 * operation stays in flight (multishot). Inline: it runs once per CQE in
 * the backend's reap loop. */
static inline void iou__op_complete(iou_loop *l, iou__op *op, int res, uint32_t flags)
{
    if (__builtin_expect(l->dbg & IOU__DBG_TRACE, 0)) {
        iou__op_complete_traced(l, op, res, flags);
        return;
    }
    iou__op_deliver(l, op, res, flags);
}

/* The loop of the calling thread, or NULL. initial-exec TLS: a plain
 * %fs-relative load, inlinable and safe to read in the fault handler. */
extern __thread iou_loop *iou__this_thread_loop __attribute__((tls_model("initial-exec")));

static inline iou_loop *iou__loop(void)
{
    return iou__this_thread_loop;
}

/* The running task on this thread, or NULL (outside tasks and in callbacks). */
static inline iou_task *iou__current(void)
{
    iou_loop *l = iou__loop();
    return l ? l->current : NULL;
}

/* Queues a runnable node on l. */
static inline void iou__ready(iou_loop *l, iou__work *w)
{
    iou__queue_push(&l->ready, w);
}

/* The loop's clock (virtual when enabled). */
uint64_t iou__loop_now(const iou_loop *l);

/* now + ns, saturating at IOU__NEVER ("no deadline"). */
static inline uint64_t iou__time_after(uint64_t now, uint64_t ns)
{
    return ns >= IOU__NEVER - now ? IOU__NEVER : now + ns;
}

/* Arms a timer; aborts with a message if memory runs out (timers back
 * blocking calls that have no error path for it). */
void iou__timer_arm(iou_loop *l, iou__timer *t, uint64_t when);

/* Nothing is ready, in flight or timed: no event can ever arrive. */
bool iou__loop_idle(const iou_loop *l);

/* Runs until stopped, idle, or (if until is given) until that task is done. */
int iou__loop_run_until(iou_loop *l, iou_task *until);

/* Cancels every task and runs until they ended and the kernel returned every
 * operation (loop shutdown). */
void iou__loop_drain(iou_loop *l);

/* Shutdown hooks of the modules that keep their own work on the loop
 * (callback.c, raw.c, bufring.c), called by the drain and iou_loop_free. */
void iou__callbacks_drop(iou_loop *l);
void iou__callbacks_fini(iou_loop *l);
void iou__raw_cancel_all(iou_loop *l);
void iou__bufring_cancel_all(iou_loop *l);
void iou__bufring_fini(iou_loop *l);
void iou__fixed_bufs_fini(iou_loop *l);
void iou__fixed_files_fini(iou_loop *l);
void iou__read_fastpath_init(iou_loop *l, bool enabled);
void iou__read_fastpath_fini(iou_loop *l);
void iou__spill_cache_fini(iou_loop *l);

/* Monotonic clock, nanoseconds. */
uint64_t iou__clock(void);

#endif
