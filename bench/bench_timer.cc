/*
 * Timer costs (issue target: insert + cancel <= 50 ns; 1,000,000 pending
 * timers <= 100 MB). The loop is created but not run: call_later from setup
 * code is the same code path as from a callback.
 *
 *   BM_call_later_cancel/N  iou_call_later + iou_timer_cancel with N other
 *                           timers pending (deadlines spread over an hour, the
 *                           new one lands among them): ns per pair, including
 *                           the clock read call_later does
 *   BM_call_at_cancel/N     the same with iou_call_at: no clock read
 *   BM_heap_insert_remove/N the internal 4-ary heap alone (engine/timer_heap.h)
 *   BM_pending_1M           arms 1,000,000 timers and reports the memory they
 *                           added: rss_MB (VmRSS growth; registered first, so
 *                           no freed memory is there to be reused) and
 *                           heap_MB (malloc's in-use bytes, chunk overhead
 *                           included), and bytes_per_timer from the latter
 */
#include "bench_util.h"

extern "C" {
#include "timer_heap.h"
}
#include <iou.h>

#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kSecond = 1000000000ull;
constexpr uint64_t kHour = 3600 * kSecond;

void never(void *)
{
}

/* Deterministic spread of deadlines over [base, base + 1 h). */
std::vector<uint64_t> spread(size_t n, uint64_t base)
{
    std::vector<uint64_t> v(n);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (auto &d : v) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d = base + x % kHour;
    }
    return v;
}

/* The deadlines of the measured timers: 4096 of them, cycled. */
constexpr size_t kProbe = 4096;

struct Loop {
    iou_loop *l = nullptr;
    std::vector<iou_timer *> background;

    Loop(benchmark::State &st, size_t pending)
    {
        int err = 0;
        l = iou_loop_new_ex(nullptr, &err);
        if (!l) {
            st.SkipWithError((std::string("iou_loop_new: ") + iou_strerror(err)).c_str());
            return;
        }
        for (uint64_t when : spread(pending, iou_now() + kHour))
            background.push_back(iou_call_at(l, when, never, nullptr));
        /* One pair outside the timed region: the handle pool holds an entry. */
        iou_timer_cancel(iou_call_later(l, kHour, never, nullptr));
    }
    ~Loop()
    {
        if (l)
            iou_loop_free(l); /* drops the background timers */
    }
};

void BM_call_later_cancel(benchmark::State &st)
{
    Loop lp(st, static_cast<size_t>(st.range(0)));
    if (!lp.l)
        return;
    std::vector<uint64_t> delay = spread(kProbe, kHour);
    size_t i = 0;
    for (auto _ : st) {
        iou_timer *t = iou_call_later(lp.l, delay[i++ & (kProbe - 1)], never, nullptr);
        benchmark::DoNotOptimize(iou_timer_cancel(t));
    }
    iou_bench_report_ops(st, static_cast<uint64_t>(st.iterations()));
}

void BM_call_at_cancel(benchmark::State &st)
{
    Loop lp(st, static_cast<size_t>(st.range(0)));
    if (!lp.l)
        return;
    std::vector<uint64_t> when = spread(kProbe, iou_now() + kHour);
    size_t i = 0;
    for (auto _ : st) {
        iou_timer *t = iou_call_at(lp.l, when[i++ & (kProbe - 1)], never, nullptr);
        benchmark::DoNotOptimize(iou_timer_cancel(t));
    }
    iou_bench_report_ops(st, static_cast<uint64_t>(st.iterations()));
}

void fire_nothing(iou__timer *)
{
}

void BM_heap_insert_remove(benchmark::State &st)
{
    size_t pending = static_cast<size_t>(st.range(0));
    iou__timer_heap h;
    iou__heap_init(&h);
    std::vector<iou__timer> bg(pending);
    std::vector<uint64_t> bg_when = spread(pending, kHour);
    for (size_t k = 0; k < pending; k++) {
        bg[k].slot = IOU__TIMER_IDLE;
        bg[k].fire = fire_nothing;
        iou__heap_insert(&h, &bg[k], bg_when[k]);
    }
    std::vector<uint64_t> when = spread(kProbe, kHour);
    iou__timer t{};
    t.slot = IOU__TIMER_IDLE;
    t.fire = fire_nothing;
    size_t i = 0;
    for (auto _ : st) {
        iou__heap_insert(&h, &t, when[i++ & (kProbe - 1)]);
        iou__heap_remove(&h, &t);
    }
    iou__heap_fini(&h);
    iou_bench_report_ops(st, static_cast<uint64_t>(st.iterations()));
}

long long rss_bytes()
{
    FILE *f = std::fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long long kb = -1;
    while (std::fgets(line, sizeof(line), f))
        if (std::sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    std::fclose(f);
    return kb * 1024;
}

/* Bytes malloc has handed out and not taken back (small chunks + mmapped). */
size_t malloc_in_use()
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

void BM_pending_1M(benchmark::State &st)
{
    constexpr size_t kTimers = 1000000;
    std::vector<uint64_t> when = spread(kTimers, kHour);
    double rss = 0, heap = 0;
    for (auto _ : st) {
        iou_loop *l = iou_loop_new();
        if (!l) {
            st.SkipWithError("iou_loop_new failed");
            break;
        }
        long long rss0 = rss_bytes();
        size_t heap0 = malloc_in_use();
        for (uint64_t w : when)
            iou_call_at(l, w, never, nullptr);
        rss = static_cast<double>(rss_bytes() - rss0);
        heap = static_cast<double>(malloc_in_use() - heap0);
        st.PauseTiming();
        iou_loop_free(l);
        st.ResumeTiming();
    }
    st.counters["rss_MB"] = rss / 1e6;
    st.counters["heap_MB"] = heap / 1e6;
    st.counters["bytes_per_timer"] = heap / kTimers;
    iou_bench_report_ops(st, static_cast<uint64_t>(st.iterations()) * kTimers);
}

} // namespace

BENCHMARK(BM_pending_1M)->Iterations(1)->Unit(benchmark::kMillisecond); /* first: fresh memory */
BENCHMARK(BM_call_later_cancel)->Arg(0)->Arg(1000)->Arg(1000000);
BENCHMARK(BM_call_at_cancel)->Arg(0)->Arg(1000)->Arg(1000000);
BENCHMARK(BM_heap_insert_remove)->Arg(0)->Arg(1000)->Arg(1000000);

BENCHMARK_MAIN();
