/*
 * Synchronisation and channel costs, measured inside the loop: the benchmark's
 * state loop runs in iou_run()'s main task, and the partner task is a real
 * task on the same loop. Every figure is ns per operation (see bench_util.h).
 *
 * The reference for the channel target is a "hand-over": one task suspends
 * and the other resumes, through the loop (two context switches plus one
 * scheduler pass). Target: one message (send + recv) between two tasks costs
 * at most one hand-over + 20 ns.
 *
 *   BM_park_pingpong      two tasks alternately waking each other and parking
 *                         (iou__wake + iou__park, the engine's primitives):
 *                         ns per hand-over. THE reference for the target: it
 *                         is exactly the scheduling a blocked send/recv does,
 *                         one hand-over per loop pass, with no primitive on top
 *   BM_yield_pingpong     two tasks alternating iou_yield(): ns per hand-over
 *                         (information: both tasks share each loop pass, so
 *                         the per-pass cost is split over two hand-overs)
 *   BM_chan_pingpong/C    two tasks bouncing an int over two channels of
 *                         capacity C: ns per message (one hand-over each)
 *   BM_mutex_handoff      two tasks passing a contended mutex back and forth
 *                         (unlock hands it to the waiter): ns per hand-off
 *   BM_mutex_uncontended  lock + unlock, nobody waiting: ns per pair
 *   BM_sem_uncontended    acquire + release, unit available: ns per pair
 *   BM_chan_buffered      send + recv on a buffered channel by one task
 *                         (no waiter, no switch): ns per pair
 */
#include "bench_util.h"

#include <iou.h>

extern "C" {
#include "loop.h" /* iou__current, for the raw park/wake reference */
#include "task.h"
}

#include <string>

namespace {

struct Run {
    benchmark::State *state;
    long arg;
    uint64_t ops;
};

/* Runs body as iou_run's main task; a failure becomes a skipped run. */
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

Run &run_of(void *p)
{
    return *static_cast<Run *>(p);
}

/* ---- the reference: yield ping-pong ------------------------------------------ */

bool yield_stop;

int yield_partner(void *)
{
    while (!yield_stop)
        iou_yield();
    return 0;
}

int yield_pingpong_main(void *p)
{
    Run &r = run_of(p);
    yield_stop = false;
    iou_task *t = iou_spawn(yield_partner, nullptr);
    iou_yield(); /* the partner is running its loop from now on */
    for (auto _ : *r.state)
        iou_yield(); /* main -> partner -> main: two hand-overs */
    yield_stop = true;
    iou_join(t);
    r.ops = 2 * static_cast<uint64_t>(r.state->iterations());
    return 0;
}

void BM_yield_pingpong(benchmark::State &state)
{
    run_in_loop(state, yield_pingpong_main, 0);
}
BENCHMARK(BM_yield_pingpong)->UseRealTime();

/* ---- the reference: park/wake ping-pong -------------------------------------- */

iou_task *parked_peer;
bool park_stop;

/* Wakes the peer, then parks until the peer wakes it back. */
void hand_over(iou_task *self)
{
    iou_task *peer = parked_peer;
    parked_peer = self;
    iou__wake(peer);
    iou__park(self, nullptr, nullptr);
}

int park_partner(void *)
{
    iou_task *self = iou__current();
    while (!park_stop)
        hand_over(self);
    iou__wake(parked_peer);
    return 0;
}

int park_pingpong_main(void *p)
{
    Run &r = run_of(p);
    iou_task *self = iou__current();
    park_stop = false;
    iou_task *t = iou_spawn(park_partner, nullptr);
    parked_peer = self;
    iou__park(self, nullptr, nullptr); /* the partner runs first and wakes us */
    for (auto _ : *r.state)
        hand_over(self); /* main -> partner -> main: two hand-overs */
    park_stop = true;
    hand_over(self);
    iou_join(t);
    r.ops = 2 * static_cast<uint64_t>(r.state->iterations());
    return 0;
}

void BM_park_pingpong(benchmark::State &state)
{
    run_in_loop(state, park_pingpong_main, 0);
}
BENCHMARK(BM_park_pingpong)->UseRealTime();

/* ---- channel ping-pong --------------------------------------------------------- */

iou_chan *ping, *pong;

int echo(void *)
{
    int v;
    while (iou_chan_recv(ping, &v) == 0)
        if (iou_chan_send(pong, &v) != 0)
            break;
    return 0;
}

int chan_pingpong_main(void *p)
{
    Run &r = run_of(p);
    benchmark::State &st = *r.state;
    ping = iou_chan_new(sizeof(int), static_cast<size_t>(r.arg));
    pong = iou_chan_new(sizeof(int), static_cast<size_t>(r.arg));
    iou_task *t = iou_spawn(echo, nullptr);
    int v = 0;
    for (auto _ : st) {
        if (iou_chan_send(ping, &v) != 0 || iou_chan_recv(pong, &v) != 0) {
            st.SkipWithError("channel operation failed");
            break;
        }
        v++;
    }
    iou_chan_close(ping); /* echo's recv returns -EPIPE */
    iou_join(t);
    iou_chan_free(ping);
    iou_chan_free(pong);
    r.ops = 2 * static_cast<uint64_t>(st.iterations()); /* messages */
    return 0;
}

void BM_chan_pingpong(benchmark::State &state)
{
    run_in_loop(state, chan_pingpong_main, static_cast<long>(state.range(0)));
}
BENCHMARK(BM_chan_pingpong)->Arg(0)->Arg(1)->Arg(64)->UseRealTime();

/* ---- mutex hand-off ------------------------------------------------------------- */

iou_mutex mx;
bool mx_stop;

/* Each lock parks (the other task owns it); each unlock hands it over. */
int mutex_partner(void *)
{
    while (iou_mutex_lock(&mx) == 0) {
        bool stop = mx_stop;
        iou_mutex_unlock(&mx);
        if (stop)
            break;
    }
    return 0;
}

int mutex_handoff_main(void *p)
{
    Run &r = run_of(p);
    iou_mutex_init(&mx);
    mx_stop = false;
    iou_mutex_lock(&mx);
    iou_task *t = iou_spawn(mutex_partner, nullptr);
    iou_yield(); /* the partner queues on the mutex */
    for (auto _ : *r.state) {
        iou_mutex_unlock(&mx); /* to the partner */
        iou_mutex_lock(&mx);   /* parks until the partner hands it back */
    }
    mx_stop = true;
    iou_mutex_unlock(&mx);
    iou_join(t);
    r.ops = 2 * static_cast<uint64_t>(r.state->iterations()); /* hand-offs */
    return 0;
}

void BM_mutex_handoff(benchmark::State &state)
{
    run_in_loop(state, mutex_handoff_main, 0);
}
BENCHMARK(BM_mutex_handoff)->UseRealTime();

/* ---- uncontended fast paths ------------------------------------------------------- */

int mutex_uncontended_main(void *p)
{
    Run &r = run_of(p);
    iou_mutex m;
    iou_mutex_init(&m); /* IOU_MUTEX_INIT ({0}) warns in C++ under -Wextra */
    for (auto _ : *r.state) {
        int a = iou_mutex_lock(&m);
        int b = iou_mutex_unlock(&m);
        benchmark::DoNotOptimize(a + b);
    }
    r.ops = static_cast<uint64_t>(r.state->iterations());
    return 0;
}

void BM_mutex_uncontended(benchmark::State &state)
{
    run_in_loop(state, mutex_uncontended_main, 0);
}
BENCHMARK(BM_mutex_uncontended)->UseRealTime();

int sem_uncontended_main(void *p)
{
    Run &r = run_of(p);
    iou_sem s;
    iou_sem_init(&s, 3);
    for (auto _ : *r.state) {
        int a = iou_sem_acquire(&s);
        iou_sem_release(&s);
        benchmark::DoNotOptimize(a);
    }
    r.ops = static_cast<uint64_t>(r.state->iterations());
    return 0;
}

void BM_sem_uncontended(benchmark::State &state)
{
    run_in_loop(state, sem_uncontended_main, 0);
}
BENCHMARK(BM_sem_uncontended)->UseRealTime();

int chan_buffered_main(void *p)
{
    Run &r = run_of(p);
    iou_chan *c = iou_chan_new(sizeof(int), 16);
    int v = 1, out = 0;
    for (auto _ : *r.state) {
        int a = iou_chan_send(c, &v);
        int b = iou_chan_recv(c, &out);
        benchmark::DoNotOptimize(a + b + out);
    }
    iou_chan_free(c);
    r.ops = static_cast<uint64_t>(r.state->iterations());
    return 0;
}

void BM_chan_buffered(benchmark::State &state)
{
    run_in_loop(state, chan_buffered_main, 0);
}
BENCHMARK(BM_chan_buffered)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
