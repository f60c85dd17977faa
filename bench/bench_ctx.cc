/*
 * Context switch cost: iou__ctx_swap against boost.context's fcontext, in the
 * same binary, with the same loop shape.
 *
 * Each side keeps the benchmark's own context and a partner on a 64 KiB
 * mmap'd stack, and ping-pongs: one round trip is two switches (there and
 * back), kRoundTrips per iteration. The figure is ns per single switch
 * (ops_per_iter counts the switches).
 *
 * Code layout. A ping-pong's cost depends on where the two loops sit in the
 * code, for both libraries alike: on the machine of bench/RESULTS.md, 1 or 2
 * of 16 byte offsets of the partner's call site relative to the benchmark's
 * cost about 2 ns more per switch (the indirect jump that ends each switch
 * alternates between two targets, and some layouts defeat its predictor).
 * One fixed layout per side would make the comparison a lottery (it did:
 * 1.35x with iou in a slow layout and boost in a fast one, 0.93-1.01x in
 * other binaries). So each side has kLayouts partners whose loops differ only
 * in 0..kLayouts-1 bytes of no-op padding before the call, one benchmark
 * instance per layout (the argument), each a steady ping-pong with its one
 * partner; bench/report.py averages the layouts per pass, the same set for
 * both sides. (Rotating through the partners inside one loop instead adds a
 * cost of its own at each change of partner, larger for iou, whose switch
 * hands the stack pointer over through memory: 1.06-1.08x where the
 * per-layout mean is 1.0.)
 *
 * The partner is left suspended when a run ends; it never runs again and its
 * stack is simply unmapped.
 */
#include "bench_util.h"

#include <sys/mman.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <array>
#include <utility>

extern "C" {
#include "ctx.h"
}

#if defined(IOU_BENCH_HAVE_BOOST)
#include <boost/context/detail/fcontext.hpp>
#endif

namespace {

constexpr int kLayouts = 16;
constexpr int kRoundTrips = 8; /* per iteration */
constexpr uint64_t kSwitchesPerIter = 2ull * kRoundTrips;
constexpr double kMinTime = 0.05; /* per layout: 16 layouts x 2 sides */
constexpr size_t kStackBytes = 64 * 1024;

/* An mmap'd stack, like the engine's (no guard page: nothing here recurses). */
class Stack {
public:
    Stack()
    {
        void *p = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (p == MAP_FAILED) {
            std::perror("mmap");
            std::abort();
        }
        lo_ = static_cast<char *>(p);
    }
    ~Stack() { munmap(lo_, kStackBytes); }
    Stack(const Stack &) = delete;
    Stack &operator=(const Stack &) = delete;

    char *lo() const { return lo_; }
    char *hi() const { return lo_ + kStackBytes; }
    size_t size() const { return kStackBytes; }

private:
    char *lo_;
};

/* N bytes of no-op padding in the instruction stream (x86-64: one or two
 * long NOPs, so executing them costs next to nothing). */
template <int N> inline void layout_pad()
{
    if constexpr (N > 0) {
#if defined(__x86_64__)
        asm volatile(".nops %c0" ::"i"(N));
#else
        asm volatile(".rept %c0\n\tnop\n\t.endr" ::"i"((N + 3) / 4));
#endif
    }
}

/* ---- iou ---- */

iou__ctx g_bench_ctx;
iou__ctx g_partner_ctx[kLayouts];

template <int N> [[noreturn]] void iou_partner(void *self)
{
    iou__ctx *me = static_cast<iou__ctx *>(self);
    for (;;) {
        layout_pad<N>();
        iou__ctx_swap(me, &g_bench_ctx);
    }
}

template <size_t... N> constexpr auto iou_partners(std::index_sequence<N...>)
{
    return std::array<iou__ctx_entry, sizeof...(N)>{iou_partner<static_cast<int>(N)>...};
}

void BM_ctx_swap_iou(benchmark::State &state)
{
    static constexpr auto entries = iou_partners(std::make_index_sequence<kLayouts>());
    const auto p = static_cast<size_t>(state.range(0));
    Stack stack;
    iou__ctx_make(&g_partner_ctx[p], stack.lo(), stack.size(), entries[p], &g_partner_ctx[p]);
    /* First entry runs the trampoline; keep it out of the timed loop. */
    iou__ctx_swap(&g_bench_ctx, &g_partner_ctx[p]);
    for (auto _ : state) {
        for (int i = 0; i < kRoundTrips; i++)
            iou__ctx_swap(&g_bench_ctx, &g_partner_ctx[p]);
    }
    iou_bench_report_ops(state, static_cast<uint64_t>(state.iterations()) * kSwitchesPerIter);
}
BENCHMARK(BM_ctx_swap_iou)->DenseRange(0, kLayouts - 1)->MinTime(kMinTime)->UseRealTime();

/* ---- boost.context fcontext ---- */

#if defined(IOU_BENCH_HAVE_BOOST)
namespace bcd = boost::context::detail;

template <int N> void boost_partner(bcd::transfer_t t)
{
    for (;;) {
        layout_pad<N>();
        t = bcd::jump_fcontext(t.fctx, nullptr);
    }
}

template <size_t... N> constexpr auto boost_partners(std::index_sequence<N...>)
{
    return std::array<void (*)(bcd::transfer_t), sizeof...(N)>{
        boost_partner<static_cast<int>(N)>...};
}

void BM_ctx_swap_boost_fcontext(benchmark::State &state)
{
    static constexpr auto entries = boost_partners(std::make_index_sequence<kLayouts>());
    const auto p = static_cast<size_t>(state.range(0));
    Stack stack;
    bcd::fcontext_t partner = bcd::make_fcontext(stack.hi(), stack.size(), entries[p]);
    partner = bcd::jump_fcontext(partner, nullptr).fctx;
    for (auto _ : state) {
        for (int i = 0; i < kRoundTrips; i++)
            partner = bcd::jump_fcontext(partner, nullptr).fctx;
    }
    iou_bench_report_ops(state, static_cast<uint64_t>(state.iterations()) * kSwitchesPerIter);
}
BENCHMARK(BM_ctx_swap_boost_fcontext)
    ->DenseRange(0, kLayouts - 1)
    ->MinTime(kMinTime)
    ->UseRealTime();
#endif

} // namespace

BENCHMARK_MAIN();
