/*
 * A loop per core: work sent between loops (callbacks and tasks, by MSG_RING
 * and by eventfd), pinning, and an echo server on one port shared by two
 * loops with SO_REUSEPORT.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static iou_loops *group;

/* ---- ping-pong between loop 0 and loop 1 ---------------------------------- */

enum { ROUNDS = 2000, SPAWNS = 50 };

static iou_event pong_seen; /* loop 0's */
static int pongs, wrong_loop;
static atomic_int spawned_ran;

static void pong_back(void *arg)
{
    (void)arg;
    if (iou_loop_current() != iou_loops_get(iou_loops_self(), 0))
        wrong_loop++;
    pongs++;
    iou_event_set(&pong_seen);
}

static void ping(void *arg)
{
    (void)arg;
    if (iou_loop_current() != iou_loops_get(iou_loops_self(), 1))
        wrong_loop++;
    CHECK_EQ(iou_call_soon_threadsafe(iou_loops_get(iou_loops_self(), 0), pong_back, NULL), 0);
}

static int spawned_on_1(void *arg)
{
    (void)arg;
    CHECK(iou_loop_current() == iou_loops_get(iou_loops_self(), 1));
    CHECK_EQ(iou_loops_index(), 1);
    CHECK_EQ(iou_nop(), 0);
    atomic_fetch_add(&spawned_ran, 1);
    return 0;
}

static int pingpong_main(void *arg)
{
    (void)arg;
    int me = iou_loops_index();
    if (me != 0)
        return 100 + me; /* loop 1 keeps serving posts until loop 0's main returns */
    iou_event_init(&pong_seen);
    for (int i = 0; i < ROUNDS; i++) {
        iou_event_clear(&pong_seen);
        CHECK_EQ(iou_call_soon_threadsafe(iou_loops_get(iou_loops_self(), 1), ping, NULL), 0);
        CHECK_EQ(iou_event_wait(&pong_seen), 0);
    }
    for (int i = 0; i < SPAWNS; i++)
        CHECK_EQ(iou_spawn_threadsafe(iou_loops_get(iou_loops_self(), 1), spawned_on_1, NULL), 0);
    while (atomic_load(&spawned_ran) < SPAWNS)
        CHECK_EQ(iou_sleep(MS(1)), 0);
    return 100;
}

static void pingpong(bool pinned)
{
    pongs = wrong_loop = 0;
    atomic_store(&spawned_ran, 0);
    int err;
    iou_loops_opts o = {.pin = pinned};
    group = iou_loops_start(2, pingpong_main, NULL, &o, &err);
    if (group == NULL && (err == -ENOSYS || err == -EPERM))
        SKIP("io_uring unavailable: %s", iou_strerror(err));
    CHECK(group != NULL);
    CHECK_EQ(iou_loops_count(group), 2);
    CHECK(iou_loops_get(group, 2) == NULL);
    CHECK(iou_loops_get(group, 1) != NULL);
    int results[2];
    CHECK_EQ(iou_loops_join(group, results), 0);
    CHECK_EQ(results[0], 100);
    CHECK_EQ(results[1], 101);
    CHECK_EQ(pongs, ROUNDS);
    CHECK_EQ(wrong_loop, 0);
    CHECK_EQ(atomic_load(&spawned_ran), SPAWNS);
}

/* ---- pinning ------------------------------------------------------------------ */

static int pinned_main(void *arg)
{
    (void)arg;
    cpu_set_t set;
    CHECK(pthread_getaffinity_np(pthread_self(), sizeof(set), &set) == 0);
    return CPU_COUNT(&set);
}

static void pinning(void)
{
    iou_loops_opts o = {.pin = true};
    group = iou_loops_start(2, pinned_main, NULL, &o, NULL);
    CHECK(group != NULL);
    int results[2];
    CHECK_EQ(iou_loops_join(group, results), 0);
    CHECK_EQ(results[0], 1);
    CHECK_EQ(results[1], 1);
}

/* ---- an echo server on one port, two loops ---------------------------------- */

enum { CONNS = 32, MSG = 64 };
static int lfd[2];
static atomic_int served[2];

static int echo(int fd, void *arg)
{
    (void)arg;
    atomic_fetch_add(&served[iou_loops_index()], 1);
    char buf[256];
    ssize_t n;
    while ((n = iou_recv(fd, buf, sizeof(buf), 0)) > 0)
        if (iou_send_all(fd, buf, (size_t)n) < 0)
            break;
    return 0;
}

static int server_main(void *arg)
{
    (void)arg;
    return iou_serve(lfd[iou_loops_index()], echo, NULL);
}

static void reuseport_echo(void)
{
    iou_listen_opts lo = {.reuseport = true};
    lfd[0] = iou_listen_tcp_ex("127.0.0.1", 0, 0, &lo);
    CHECK(lfd[0] >= 0);
    int port = iou_local_port(lfd[0]);
    lfd[1] = iou_listen_tcp_ex("127.0.0.1", (uint16_t)port, 0, &lo);
    CHECK(lfd[1] >= 0);
    group = iou_loops_start(2, server_main, NULL, NULL, NULL);
    CHECK(group != NULL);
    /* Clients on this plain thread: blocking calls (no loop here). */
    for (int i = 0; i < CONNS; i++) {
        int fd = iou_dial_tcp("127.0.0.1", (uint16_t)port);
        CHECK(fd >= 0);
        char out[MSG], in[MSG];
        pattern_fill(out, sizeof(out), (uint32_t)i, 0);
        check_send_all(fd, out, sizeof(out));
        size_t got = 0;
        while (got < sizeof(in)) {
            ssize_t n = iou_recv(fd, in + got, sizeof(in) - got, 0);
            CHECK(n > 0);
            got += (size_t)n;
        }
        CHECK_EQ(pattern_mismatch(in, sizeof(in), (uint32_t)i, 0), sizeof(in));
        close(fd);
    }
    CHECK_EQ(iou_loops_stop(group), 0);
    int results[2];
    CHECK_EQ(iou_loops_join(group, results), 0);
    CHECK_EQ(results[0], -ECANCELED);
    CHECK_EQ(results[1], -ECANCELED);
    CHECK_EQ(atomic_load(&served[0]) + atomic_load(&served[1]), CONNS);
    /* The kernel spread them (by a hash of the 4-tuple: all 32 on one socket
     * has a chance of 2^-31). */
    CHECK(atomic_load(&served[0]) > 0 && atomic_load(&served[1]) > 0);
    close(lfd[0]);
    close(lfd[1]);
}

int main(void)
{
    watchdog(100);
    CHECK(iou_loops_start(2, NULL, NULL, NULL, NULL) == NULL);
    CHECK_EQ(iou_loops_index(), -1);
    CHECK(iou_loops_self() == NULL);
    pingpong(false);
    pinning();
    reuseport_echo();
    /* The same loop-to-loop traffic with eventfd wake-ups instead of MSG_RING. */
    setenv("IOU_MSG_RING", "0", 1);
    pingpong(true);
    return 0;
}
