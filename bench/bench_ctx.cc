/*
 * Context switch cost: iou__ctx_swap against boost.context's fcontext, in the
 * same binary, with the same loop shape.
 *
 * Each side keeps two contexts, the benchmark's own and a partner on a 64 KiB
 * mmap'd stack, and ping-pongs between them: one round trip is two switches
 * (there and back). An iteration does kRoundTrips round trips, so the
 * benchmark loop's own overhead is spread over many switches; the figure
 * reported is ns per single switch (ops_per_iter = 2 * kRoundTrips).
 *
 * The partner is left suspended when a run ends; it never runs again and its
 * stack is simply unmapped.
 */
#include "bench_util.h"

#include <sys/mman.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>

extern "C" {
#include "ctx.h"
}

#if defined(IOU_BENCH_HAVE_BOOST)
#include <boost/context/detail/fcontext.hpp>
#endif

namespace {

constexpr int kRoundTrips = 8;
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

/* ---- iou ---- */

iou__ctx g_bench_ctx;
iou__ctx g_partner_ctx;

[[noreturn]] void iou_partner(void *)
{
    for (;;)
        iou__ctx_swap(&g_partner_ctx, &g_bench_ctx);
}

void BM_ctx_swap_iou(benchmark::State &state)
{
    Stack stack;
    iou__ctx_make(&g_partner_ctx, stack.lo(), stack.size(), iou_partner, nullptr);
    /* First entry runs the trampoline; keep it out of the timed loop. */
    iou__ctx_swap(&g_bench_ctx, &g_partner_ctx);
    for (auto _ : state) {
        for (int i = 0; i < kRoundTrips; i++)
            iou__ctx_swap(&g_bench_ctx, &g_partner_ctx);
    }
    iou_bench_report_ops(state, static_cast<uint64_t>(state.iterations()) * 2 * kRoundTrips);
}
BENCHMARK(BM_ctx_swap_iou)->UseRealTime();

/* ---- boost.context fcontext ---- */

#if defined(IOU_BENCH_HAVE_BOOST)
namespace bcd = boost::context::detail;

void boost_partner(bcd::transfer_t t)
{
    for (;;)
        t = bcd::jump_fcontext(t.fctx, nullptr);
}

void BM_ctx_swap_boost_fcontext(benchmark::State &state)
{
    Stack stack;
    bcd::fcontext_t partner = bcd::make_fcontext(stack.hi(), stack.size(), boost_partner);
    partner = bcd::jump_fcontext(partner, nullptr).fctx;
    for (auto _ : state) {
        for (int i = 0; i < kRoundTrips; i++)
            partner = bcd::jump_fcontext(partner, nullptr).fctx;
    }
    iou_bench_report_ops(state, static_cast<uint64_t>(state.iterations()) * 2 * kRoundTrips);
}
BENCHMARK(BM_ctx_swap_boost_fcontext)->UseRealTime();
#endif

} // namespace

BENCHMARK_MAIN();
