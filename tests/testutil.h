/*
 * Helpers shared by the test programs: running a loop (skipping when the
 * kernel refuses io_uring), a monotonic clock, counting open fds, byte
 * patterns and a seeded random generator whose seed is printed so that a
 * failure can be replayed (IOU_TEST_SEED=n).
 */
#ifndef IOU_TEST_UTIL_H
#define IOU_TEST_UTIL_H

#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <iou.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline void watchdog_fired(int sig)
{
    (void)sig;
    static const char msg[] = "watchdog: the test hung (a wait that should have ended did not)\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(1);
}

/* Fails the test after `seconds` instead of letting a lost wake-up hang it
 * until CTest's timeout. */
static inline void watchdog(unsigned seconds)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = watchdog_fired;
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

/* iou_run_ex(), but a kernel without (permitted) io_uring skips the test. */
static inline int run_ex_or_skip(iou_fn main_fn, void *arg, const iou_loop_opts *opts)
{
    int r = iou_run_ex(main_fn, arg, opts);
    if (r == -ENOSYS || r == -EPERM)
        SKIP("io_uring unavailable: %s", iou_strerror(r));
    return r;
}

/* The backend a new loop gets in this process ("io_uring" or "epoll": see
 * IOU_BACKEND), for the parts of a test that only apply to one of them. */
static inline const char *test_backend(void)
{
    iou_loop *l = iou_loop_new();
    const char *name = l ? iou_loop_backend_name(l) : "none";
    iou_loop_free(l);
    return name;
}

static inline bool on_epoll(void)
{
    iou_loop *running = iou_loop_current(); /* inside a task: this thread's loop */
    if (running)
        return strcmp(iou_loop_backend_name(running), "epoll") == 0;
    return strcmp(test_backend(), "epoll") == 0;
}

static inline int run_or_skip(iou_fn main_fn, void *arg)
{
    return run_ex_or_skip(main_fn, arg, NULL);
}

/* On a loop with a virtual clock: hours of timers pass in microseconds. */
static inline int run_virtual(iou_fn main_fn, void *arg)
{
    iou_loop_opts opts = {.virtual_clock = true};
    return run_ex_or_skip(main_fn, arg, &opts);
}

#define HOUR ((uint64_t)3600 * 1000000000u)

/* Lets every task ahead of the caller run until it blocks (or ends). */
static inline void settle(void)
{
    for (int i = 0; i < 4; i++)
        iou_yield();
}

static inline iou_task *spawn_checked(iou_fn fn, void *arg)
{
    iou_task *t = iou_spawn(fn, arg);
    CHECK(t != NULL);
    return t;
}

/* This thread's loop's counters. */
static inline iou_loop_stats loop_stats(void)
{
    iou_loop_stats st = {.size = sizeof(st)};
    CHECK_EQ(iou_loop_get_stats(NULL, &st), 0);
    return st;
}

/* The slot of the operation kind called name in iou_loop_stats' arrays. */
static inline int op_kind(const char *name)
{
    for (int i = 0; iou_op_kind_name(i); i++)
        if (strcmp(iou_op_kind_name(i), name) == 0)
            return i;
    CHECK(!"no such operation kind");
    return -1;
}

/* A counter's growth between two loop_stats() named before and after. */
#define DELTA(field) ((long long)(after.field - before.field))

/* iou_send_all, failing the test unless every byte went out. */
static inline void check_send_all(int fd, const void *buf, size_t len)
{
    CHECK_EQ(iou_send_all(fd, buf, len), (long long)len);
}

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define MS(n) ((uint64_t)(n) * 1000000u)

/* Entries in /proc/self/fd, not counting the directory stream's own fd. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* Raises the soft fd limit to the hard one; returns the resulting limit. */
static inline long raise_fd_limit(void)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    return (long)rl.rlim_cur;
}

/* The byte at position i of stream `seed`: distinct streams differ. */
static inline unsigned char pattern_byte(uint32_t seed, uint64_t i)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 32 | seed);
    x ^= x >> 29;
    return (unsigned char)(x ^ (x >> 8));
}

static inline void pattern_fill(void *buf, size_t len, uint32_t seed, uint64_t start)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = pattern_byte(seed, start + i);
}

/* Index of the first byte that differs from the pattern, or len if none. */
static inline size_t pattern_mismatch(const void *buf, size_t len, uint32_t seed, uint64_t start)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern_byte(seed, start + i))
            return i;
    return len;
}

/* xorshift64*: deterministic given the seed printed by rng_seed(). */
static inline uint64_t rng_seed(void)
{
    const char *env = getenv("IOU_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (mono_ns() ^ (uint64_t)clock());
    if (seed == 0)
        seed = 1;
    fprintf(stderr, "seed: IOU_TEST_SEED=%llu\n", (unsigned long long)seed);
    return seed;
}

static inline uint32_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545F4914F6CDD1Dull) >> 32);
}

#endif
