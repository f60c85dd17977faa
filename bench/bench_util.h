/*
 * Shared by the Google Benchmark programs: how a benchmark says how many
 * operations (switches, spawn+join pairs, NOPs) one iteration performed.
 *
 * bench/report.py reads `ops_per_iter` from the JSON output and divides the
 * per-iteration real time by it, so every figure in the table is "ns per
 * operation" whatever the loop structure. `per_op` is the same figure for the
 * console (shown in seconds with an SI prefix: "4.2n" is 4.2 ns).
 */
#ifndef IOU_BENCH_UTIL_H
#define IOU_BENCH_UTIL_H

#include <benchmark/benchmark.h>

#include <cstdint>

static inline void iou_bench_report_ops(benchmark::State &state, uint64_t ops)
{
    using benchmark::Counter;
    state.SetItemsProcessed(static_cast<int64_t>(ops));
    state.counters["ops_per_iter"] = Counter(static_cast<double>(ops), Counter::kAvgIterations);
    state.counters["per_op"] =
        Counter(static_cast<double>(ops), Counter::kIsRate | Counter::kInvert);
}

#endif
