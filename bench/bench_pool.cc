/*
 * The thread code's costs, in wall-clock time (the work is spread over
 * several threads, so the benchmark thread's CPU time says little):
 *
 *   BM_pool_roundtrip           iou_run_in_pool of an empty function from a
 *                               task, call after call: post, a worker runs
 *                               it, the loop takes the return and resumes
 *                               the task (target <= 10 us). Back to back, a
 *                               worker and the loop each catch the other's
 *                               step in their short spins (engine/spin.h)
 *                               when they run on different CPUs
 *   BM_pool_roundtrip_idle      the same single call after 200 us of idleness
 *                               (untimed): the worker sleeps on its condition
 *                               variable and the loop in the kernel, so it
 *                               pays both wake-ups (information, no target)
 *   BM_threadsafe_callbacks/N   N plain threads post 100,000 callbacks in all
 *                               to one loop with iou_call_soon_threadsafe;
 *                               ns per callback until the loop ran them all
 *                               (target: >= 1,000,000 callbacks/s, <= 1000 ns)
 */
#include "bench_util.h"

#include <iou.h>

#include <string>
#include <thread>
#include <vector>

namespace {

int empty(void *)
{
    return 0;
}

struct Run {
    benchmark::State *state;
    uint64_t ops;
};

/* Keeps the first error: every call's result is checked, since a failing
 * call would be a much cheaper "round trip". */
inline void keep(int &err, int rc)
{
    if (err == 0)
        err = rc;
}

int roundtrip_main(void *p)
{
    Run &r = *static_cast<Run *>(p);
    benchmark::State &st = *r.state;
    int failed = iou_run_in_pool(empty, nullptr); /* a worker exists: the steady state */
    for (auto _ : st)
        keep(failed, iou_run_in_pool(empty, nullptr));
    r.ops = static_cast<uint64_t>(st.iterations());
    return failed;
}

int roundtrip_idle_main(void *p)
{
    Run &r = *static_cast<Run *>(p);
    benchmark::State &st = *r.state;
    int failed = iou_run_in_pool(empty, nullptr);
    for (auto _ : st) {
        st.PauseTiming();
        keep(failed, iou_sleep(200000)); /* far longer than either side spins */
        st.ResumeTiming();
        keep(failed, iou_run_in_pool(empty, nullptr));
    }
    r.ops = static_cast<uint64_t>(st.iterations());
    return failed;
}

void run_roundtrip(benchmark::State &state, iou_fn main_fn)
{
    Run r{&state, 0};
    int rc = iou_run(main_fn, &r);
    if (rc != 0) {
        state.SkipWithError((std::string("iou_run or a pool call: ") + iou_strerror(rc)).c_str());
        return;
    }
    iou_bench_report_ops(state, r.ops);
}

void BM_pool_roundtrip(benchmark::State &state)
{
    run_roundtrip(state, roundtrip_main);
}
BENCHMARK(BM_pool_roundtrip)->UseRealTime();

void BM_pool_roundtrip_idle(benchmark::State &state)
{
    run_roundtrip(state, roundtrip_idle_main);
}
/* A fixed count: min_time counts only the timed part, which would mean
 * tens of thousands of 200 us pauses. */
BENCHMARK(BM_pool_roundtrip_idle)->UseRealTime()->Iterations(1000);

constexpr size_t CALLBACKS = 100000;

struct Counter {
    iou_loop *loop;
    size_t count, target;
};

void count_one(void *p)
{
    auto *c = static_cast<Counter *>(p);
    if (++c->count == c->target)
        iou_loop_keepalive(c->loop, -1); /* all in: iou_loop_run may return */
}

void BM_threadsafe_callbacks(benchmark::State &state)
{
    int err;
    iou_loop *l = iou_loop_new_ex(nullptr, &err);
    if (l == nullptr) {
        state.SkipWithError((std::string("iou_loop_new: ") + iou_strerror(err)).c_str());
        return;
    }
    const size_t producers = static_cast<size_t>(state.range(0));
    const size_t each = CALLBACKS / producers;
    for (auto _ : state) {
        Counter c{l, 0, each * producers};
        iou_loop_keepalive(l, 1);
        std::vector<std::thread> th;
        for (size_t p = 0; p < producers; p++)
            th.emplace_back([&c, l, each] {
                for (size_t i = 0; i < each; i++)
                    while (iou_call_soon_threadsafe(l, count_one, &c) != 0)
                        ;
            });
        iou_loop_run(l);
        for (auto &t : th)
            t.join();
    }
    iou_loop_free(l);
    iou_bench_report_ops(state, static_cast<uint64_t>(state.iterations()) * each * producers);
}
BENCHMARK(BM_threadsafe_callbacks)->DenseRange(1, 4)->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
