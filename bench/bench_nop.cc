/*
 * NOP throughput: N tasks each looping iou_nop() against raw liburing
 * submitting NOP batches of N, in the same binary.
 *
 * iou side: the benchmark's state loop runs in iou_run()'s main task, which is
 * one of the N tasks; N - 1 workers loop iou_nop() until told to stop. With
 * every task in the FIFO ready queue, one scheduler pass lets all N submit, and
 * one enter carries the N SQEs and reaps the N completions, so a state-loop
 * iteration is about one batch. The count is exact, not assumed: the workers
 * count their NOPs, read just before the loop starts and just after it ends
 * (neither read is separated from the timer by a suspension).
 *
 * raw side: a ring set up like the engine's (256 SQ entries, CQ four times
 * larger, the same setup flags, registered ring fd), and per
 * iteration: N x (get SQE, prep NOP, set user_data), submit_and_wait(N), reap
 * N completions (reading each one's result and user_data), advance the CQ.
 *
 * Figures are ns per NOP (ops_per_iter: N on the raw side, the counted NOPs
 * per main-task iteration on the iou side).
 */
#include "bench_util.h"

#include <iou.h>
#include <liburing.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

namespace {

constexpr long kBatches[] = {1, 32, 128};

/* ---- iou ---- */

struct NopShared {
    bool stop;
    uint64_t worker_nops;
    int worker_err;
};

int nop_worker(void *p)
{
    NopShared &s = *static_cast<NopShared *>(p);
    while (!s.stop) {
        int rc = iou_nop();
        if (rc < 0) {
            s.worker_err = rc;
            return rc;
        }
        s.worker_nops++;
    }
    return 0;
}

struct NopRun {
    benchmark::State *state;
    long batch;
    uint64_t ops;
};

void skip(benchmark::State &st, const char *what, int err)
{
    std::string msg = std::string(what) + ": " + iou_strerror(err);
    st.SkipWithError(msg.c_str());
}

int nop_main(void *p)
{
    NopRun &r = *static_cast<NopRun *>(p);
    benchmark::State &st = *r.state;
    NopShared shared{false, 0, 0};
    std::vector<iou_task *> workers;
    workers.reserve(static_cast<size_t>(r.batch));
    for (long i = 1; i < r.batch; i++) {
        iou_task *t = iou_spawn(nop_worker, &shared);
        if (!t) {
            st.SkipWithError("iou_spawn returned NULL");
            return 0; /* iou_run cancels and reaps the workers */
        }
        workers.push_back(t);
    }
    /* Let every worker start and reach its steady NOP loop. */
    for (int i = 0; i < 4; i++) {
        int rc = iou_nop();
        if (rc < 0) {
            skip(st, "iou_nop", rc);
            return 0;
        }
    }

    uint64_t before = shared.worker_nops;
    for (auto _ : st) {
        int rc = iou_nop();
        if (rc < 0) {
            skip(st, "iou_nop", rc);
            break;
        }
    }
    uint64_t after = shared.worker_nops;
    r.ops = static_cast<uint64_t>(st.iterations()) + (after - before);

    shared.stop = true;
    for (iou_task *t : workers)
        (void)iou_join(t);
    if (shared.worker_err < 0 && !st.error_occurred())
        skip(st, "worker iou_nop", shared.worker_err);
    return 0;
}

void BM_nop_iou(benchmark::State &state)
{
    NopRun r{&state, static_cast<long>(state.range(0)), 0};
    int rc = iou_run(nop_main, &r);
    if (rc < 0 && !state.error_occurred()) {
        skip(state, "iou_run", rc);
        return;
    }
    iou_bench_report_ops(state, r.ops);
}

/* ---- raw liburing ---- */

/* Sets the ring up as the engine does (engine/backend_uring.c: SQ 256, CQ
 * 4x, CLAMP, SUBMIT_ALL, SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG when
 * accepted, ring fd registered), dropping flags the kernel rejects.
 * Returns the flags in use, or a negative errno. */
int raw_ring_init(struct io_uring *ring)
{
    const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    const unsigned wanted[] = {
        base | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
            IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        base | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        base | IORING_SETUP_SUBMIT_ALL,
        base,
    };
    int rc = -EINVAL;
    for (unsigned flags : wanted) {
        struct io_uring_params params;
        std::memset(&params, 0, sizeof(params));
        params.flags = flags;
        params.cq_entries = 4 * 256;
        rc = io_uring_queue_init_params(256, ring, &params);
        if (rc == 0) {
            io_uring_register_ring_fd(ring); /* as the engine: failure is fine */
            return static_cast<int>(flags);
        }
        if (rc != -EINVAL)
            return rc;
    }
    return rc;
}

std::string flag_names(unsigned flags)
{
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {
        {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
        {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
        {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
        {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
        {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
    };
    std::string s = "CQSIZE|CLAMP";
    for (const auto &n : names)
        if (flags & n.flag)
            s += std::string("|") + n.name;
    return s;
}

void BM_nop_raw(benchmark::State &state)
{
    const unsigned batch = static_cast<unsigned>(state.range(0));
    struct io_uring ring;
    int flags = raw_ring_init(&ring);
    if (flags < 0) {
        skip(state, "io_uring_queue_init_params", flags);
        return;
    }
    state.SetLabel(flag_names(static_cast<unsigned>(flags)));

    uint64_t sink = 0;
    for (auto _ : state) {
        for (unsigned i = 0; i < batch; i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_nop(sqe);
            sqe->user_data = i + 1;
        }
        int rc = io_uring_submit_and_wait(&ring, batch);
        if (rc < 0) {
            skip(state, "io_uring_submit_and_wait", rc);
            break;
        }
        unsigned reaped = 0;
        while (reaped < batch) {
            unsigned head, seen = 0;
            struct io_uring_cqe *cqe;
            io_uring_for_each_cqe(&ring, head, cqe)
            {
                sink += cqe->user_data + static_cast<uint64_t>(cqe->res);
                seen++;
            }
            io_uring_cq_advance(&ring, seen);
            reaped += seen;
            if (reaped < batch) {
                rc = io_uring_wait_cqe(&ring, &cqe);
                if (rc < 0) {
                    skip(state, "io_uring_wait_cqe", rc);
                    break;
                }
            }
        }
        if (state.error_occurred())
            break;
    }
    benchmark::DoNotOptimize(sink);
    io_uring_queue_exit(&ring);
    iou_bench_report_ops(state, static_cast<uint64_t>(state.iterations()) * batch);
}

void batches(benchmark::internal::Benchmark *b)
{
    for (long n : kBatches)
        b->Arg(n);
}

} // namespace

BENCHMARK(BM_nop_iou)->Apply(batches)->UseRealTime();
BENCHMARK(BM_nop_raw)->Apply(batches)->UseRealTime();

BENCHMARK_MAIN();
