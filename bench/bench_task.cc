/*
 * Task costs, measured inside the loop: the benchmark's state loop runs in
 * iou_run()'s main task, so every spawn, join and yield below is the real
 * thing (ready queue, scheduler switch, pooled stack and task record). Loop
 * creation and teardown happen outside the timed region.
 *
 *   BM_spawn_join          spawn a trivial task and join it, one at a time
 *                          (the target: <= 100 ns per pair)
 *   BM_spawn_join_batch/N  spawn N, then join N: the same work with the
 *                          scheduler visited once per N pairs (information)
 *   BM_yield               one iou_yield() of a lone task: the cost of one
 *                          trip through the loop with nothing else to do
 *                          (information: shows what each scheduler pass costs)
 */
#include "bench_util.h"

#include <iou.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

int trivial(void *)
{
    return 0;
}

struct Run {
    benchmark::State *state;
    long arg;
    uint64_t ops;
};

/* Runs body as iou_run's main task and turns a failure into a skipped run
 * (Google Benchmark requires the state loop to have run unless skipped). */
void run_in_loop(benchmark::State &state, iou_fn body, long arg)
{
    Run r{&state, arg, 0};
    int rc = iou_run(body, &r);
    if (rc < 0 && !state.error_occurred()) {
        std::string msg = std::string("iou_run: ") + iou_strerror(rc);
        state.SkipWithError(msg.c_str());
        return;
    }
    iou_bench_report_ops(state, r.ops);
}

/* One spawn+join outside the timed region, so the stack and task-record
 * pools hold an entry and the measurement is the steady (pooled) state. */
bool warm_up(benchmark::State &st)
{
    iou_task *t = iou_spawn(trivial, nullptr);
    if (!t || iou_join(t) != 0) {
        st.SkipWithError("warm-up spawn+join failed");
        return false;
    }
    return true;
}

int spawn_join_main(void *p)
{
    Run &r = *static_cast<Run *>(p);
    benchmark::State &st = *r.state;
    if (!warm_up(st))
        return 0;
    for (auto _ : st) {
        iou_task *t = iou_spawn(trivial, nullptr);
        if (!t) {
            st.SkipWithError("iou_spawn returned NULL");
            break;
        }
        int rc = iou_join(t);
        benchmark::DoNotOptimize(rc);
    }
    r.ops = static_cast<uint64_t>(st.iterations());
    return 0;
}

void BM_spawn_join(benchmark::State &state)
{
    run_in_loop(state, spawn_join_main, 0);
}
BENCHMARK(BM_spawn_join)->UseRealTime();

int spawn_join_batch_main(void *p)
{
    Run &r = *static_cast<Run *>(p);
    benchmark::State &st = *r.state;
    std::vector<iou_task *> tasks(static_cast<size_t>(r.arg));
    if (!warm_up(st))
        return 0;
    for (auto _ : st) {
        for (auto &t : tasks) {
            t = iou_spawn(trivial, nullptr);
            if (!t) {
                st.SkipWithError("iou_spawn returned NULL");
                return 0; /* iou_run cancels and reaps whatever was spawned */
            }
        }
        for (auto t : tasks) {
            int rc = iou_join(t);
            benchmark::DoNotOptimize(rc);
        }
    }
    r.ops = static_cast<uint64_t>(st.iterations()) * tasks.size();
    return 0;
}

void BM_spawn_join_batch(benchmark::State &state)
{
    run_in_loop(state, spawn_join_batch_main, static_cast<long>(state.range(0)));
}
BENCHMARK(BM_spawn_join_batch)->Arg(8)->Arg(64)->UseRealTime();

int yield_main(void *p)
{
    Run &r = *static_cast<Run *>(p);
    benchmark::State &st = *r.state;
    for (auto _ : st) {
        int rc = iou_yield();
        benchmark::DoNotOptimize(rc);
    }
    r.ops = static_cast<uint64_t>(st.iterations());
    return 0;
}

void BM_yield(benchmark::State &state)
{
    run_in_loop(state, yield_main, 0);
}
BENCHMARK(BM_yield)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
