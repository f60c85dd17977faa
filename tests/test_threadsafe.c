/*
 * Thread-safe entry: callbacks and tasks posted to a loop from other threads
 * run there, exactly once, in each poster's order; a keepalive holds the
 * loop; posts during iou_loop_free are refused. The stress part: 4 threads
 * post 1,000,000 callbacks in total to one loop, none lost, none twice.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>

enum { PRODUCERS = 4, TOTAL = 1000000, PER = TOTAL / PRODUCERS };

static iou_loop *loop;
static pthread_t loop_thread;

/* ---- the stress: ids are producer * PER + sequence ---------------------- */

static unsigned char *seen;     /* per id: how many times its callback ran */
static uint32_t last_seq[PRODUCERS];
static size_t ran, out_of_order, wrong_thread;

static void count_one(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    uint32_t p = id / PER, seq = id % PER;
    if (!pthread_equal(pthread_self(), loop_thread))
        wrong_thread++;
    if (seq != 0 && seq <= last_seq[p])
        out_of_order++;
    last_seq[p] = seq;
    seen[id]++;
    if (++ran == TOTAL)
        iou_loop_keepalive(loop, -1); /* the loop may end now */
}

static void *producer(void *arg)
{
    uint32_t p = (uint32_t)(uintptr_t)arg;
    for (uint32_t i = 0; i < PER; i++) {
        int err;
        while ((err = iou_call_soon_threadsafe(loop, count_one,
                                               (void *)(uintptr_t)(p * PER + i))) == -ENOMEM)
            sched_yield();
        CHECK_EQ(err, 0);
    }
    return NULL;
}

static void stress(void)
{
    seen = calloc(TOTAL, 1);
    CHECK(seen != NULL);
    loop = iou_loop_new();
    if (loop == NULL)
        SKIP("io_uring unavailable");
    loop_thread = pthread_self();
    CHECK_EQ(iou_loop_keepalive(loop, 1), 0);
    pthread_t th[PRODUCERS];
    for (uintptr_t p = 0; p < PRODUCERS; p++)
        CHECK(pthread_create(&th[p], NULL, producer, (void *)p) == 0);
    CHECK_EQ(iou_loop_run(loop), 0); /* returns once the last callback released it */
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(th[p], NULL);
    CHECK_EQ(ran, TOTAL);
    CHECK_EQ(out_of_order, 0);
    CHECK_EQ(wrong_thread, 0);
    for (size_t i = 0; i < TOTAL; i++)
        if (seen[i] != 1) {
            fprintf(stderr, "callback %zu ran %d times\n", i, seen[i]);
            exit(1);
        }
    iou_loop_free(loop);
    free(seen);
}

/* ---- tasks spawned from another thread, a keepalive released from there -- */

enum { SPAWNS = 100 };
static atomic_int spawned_done;
static int on_loop;

static int spawned(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_nop(), 0); /* a real task: it can block */
    if (pthread_equal(pthread_self(), loop_thread))
        on_loop++;
    atomic_fetch_add(&spawned_done, 1);
    return 0;
}

static void *spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < SPAWNS; i++)
        CHECK_EQ(iou_spawn_threadsafe(loop, spawned, NULL), 0);
    while (atomic_load(&spawned_done) < SPAWNS)
        sched_yield();
    /* Only the keepalive holds the loop now: releasing it from this thread
     * must wake the sleeping loop so that iou_loop_run returns. */
    CHECK_EQ(iou_loop_keepalive(loop, -1), 0);
    return NULL;
}

static void spawns(void)
{
    loop = iou_loop_new();
    CHECK(loop != NULL);
    loop_thread = pthread_self();
    CHECK_EQ(iou_loop_keepalive(loop, 1), 0);
    CHECK_EQ(iou_loop_keepalive(loop, -2), -EINVAL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, spawner, NULL) == 0);
    CHECK_EQ(iou_loop_run(loop), 0);
    pthread_join(th, NULL);
    CHECK_EQ(on_loop, SPAWNS);
    CHECK_EQ(iou_call_soon_threadsafe(NULL, count_one, NULL), -EINVAL);
    CHECK_EQ(iou_spawn_threadsafe(loop, NULL, NULL), -EINVAL);
    iou_loop_free(loop);
}

/* ---- refused once iou_loop_free has begun ---------------------------------- */

static int refused;
static void never(void *arg)
{
    (void)arg;
    CHECK(0);
}

static int post_when_cancelled(void *arg)
{
    (void)arg;
    while (iou_sleep(HOUR) != -ECANCELED)
        ;
    /* iou_loop_free is cancelling this task: posts are refused by now. */
    refused = iou_call_soon_threadsafe(loop, never, NULL);
    return 0;
}

static int accepted_ran;
static void accepted(void *arg)
{
    (void)arg;
    accepted_ran++;
}

static void shutdown_refuses(void)
{
    loop = iou_loop_new();
    CHECK(loop != NULL);
    iou_task *t = iou_loop_spawn(loop, post_when_cancelled, NULL);
    CHECK(t != NULL);
    iou_detach(t);
    /* Accepted before the free: it still runs (in the free's drain). */
    CHECK_EQ(iou_call_soon_threadsafe(loop, accepted, NULL), 0);
    iou_loop_free(loop);
    CHECK_EQ(refused, -ESHUTDOWN);
    CHECK_EQ(accepted_ran, 1);
}

int main(void)
{
    watchdog(100);
    stress();
    spawns();
    shutdown_refuses();
    return 0;
}
