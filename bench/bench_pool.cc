/*
 * The thread code's costs, in wall-clock time (the work is spread over
 * several threads, so the benchmark thread's CPU time says little):
 *
 *   BM_pool_roundtrip           iou_run_in_pool of an empty function from a
 *                               task: post, a worker runs it, the loop is
 *                               woken and resumes the task (target <= 10 us)
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

int roundtrip_main(void *p)
{
    Run &r = *static_cast<Run *>(p);
    benchmark::State &st = *r.state;
    iou_run_in_pool(empty, nullptr); /* a worker exists: the steady state */
    for (auto _ : st) {
        int rc = iou_run_in_pool(empty, nullptr);
        benchmark::DoNotOptimize(rc);
    }
    r.ops = static_cast<uint64_t>(st.iterations());
    return 0;
}

void BM_pool_roundtrip(benchmark::State &state)
{
    Run r{&state, 0};
    int rc = iou_run(roundtrip_main, &r);
    if (rc < 0) {
        state.SkipWithError((std::string("iou_run: ") + iou_strerror(rc)).c_str());
        return;
    }
    iou_bench_report_ops(state, r.ops);
}
BENCHMARK(BM_pool_roundtrip)->UseRealTime();

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
