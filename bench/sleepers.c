/*
 * Memory cost of many idle tasks: spawns N tasks (default 100,000) with the
 * default settings (default stack size), each of which goes to sleep for an
 * hour; once every one of them is asleep it reads VmRSS / VmHWM from
 * /proc/self/status and counts the lines of /proc/self/maps (each a mapping,
 * which must stay far below vm.max_map_count), then cancels and joins them all.
 *
 * Output: one `key=value` per line, for bench/run and anyone's scripts:
 *   tasks, rss_before_kib, rss_kib, hwm_kib, rss_delta_per_task_bytes,
 *   rss_per_task_bytes, maps_before, maps_lines, max_map_count,
 *   spawn_ns_per_task, settle_ns_per_task (first run of all until asleep),
 *   teardown_ns_per_task (cancel + join), each also as *_cpu_ns_per_task
 *   (thread CPU time), cancelled, status (ok or the failure).
 * Exit status 0 on success.
 *
 * Usage: sleepers [N]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <iou.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { DEFAULT_TASKS = 100000 };
static const uint64_t SLEEP_NS = 3600ull * 1000000000ull;

struct sleepers {
    long n;
    long asleep; /* tasks that reached their sleep */
    long cancelled;
    iou_task **tasks;
    int status;
};

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wall-clock and this thread's CPU time (which leaves out time spent
 * preempted by other load on a shared machine). */
struct stamp {
    uint64_t wall, cpu;
};

static struct stamp now(void)
{
    return (struct stamp){clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_THREAD_CPUTIME_ID)};
}

static void print_per_task(const char *key, struct stamp a, struct stamp b, long n)
{
    printf("%s_ns_per_task=%.1f\n", key, (double)(b.wall - a.wall) / (double)n);
    printf("%s_cpu_ns_per_task=%.1f\n", key, (double)(b.cpu - a.cpu) / (double)n);
}

/* The value in kB of a "Key:   123 kB" line of /proc/self/status, or -1. */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t klen = strlen(key);
    long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long n = 0;
    int c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static long read_long(const char *path, long dflt)
{
    FILE *f = fopen(path, "r");
    long v = dflt;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = dflt;
        fclose(f);
    }
    return v;
}

static int sleeper(void *arg)
{
    struct sleepers *s = arg;
    s->asleep++;
    int rc = iou_sleep(SLEEP_NS);
    if (rc == -ECANCELED)
        s->cancelled++;
    return rc;
}

static int run(void *arg)
{
    struct sleepers *s = arg;
    long rss_before = status_kib("VmRSS");
    long maps_before = count_lines("/proc/self/maps");

    struct stamp t0 = now();
    long spawned = 0;
    for (; spawned < s->n; spawned++) {
        s->tasks[spawned] = iou_spawn(sleeper, s);
        if (!s->tasks[spawned]) {
            printf("status=iou_spawn failed after %ld tasks\n", spawned);
            s->status = 1;
            break;
        }
    }
    struct stamp t1 = now();
    /* Spawned tasks start when this one suspends, in FIFO order: one yield
     * normally lets all of them reach their sleep; loop in case it does not. */
    while (s->asleep < spawned)
        iou_yield();
    struct stamp t2 = now();

    long rss = status_kib("VmRSS");
    long hwm = status_kib("VmHWM");
    long maps = count_lines("/proc/self/maps");
    long n = spawned > 0 ? spawned : 1;

    printf("tasks=%ld\n", spawned);
    printf("rss_before_kib=%ld\n", rss_before);
    printf("rss_kib=%ld\n", rss);
    printf("hwm_kib=%ld\n", hwm);
    printf("rss_per_task_bytes=%.0f\n", rss * 1024.0 / (double)n);
    printf("rss_delta_per_task_bytes=%.0f\n", (rss - rss_before) * 1024.0 / (double)n);
    printf("maps_before=%ld\n", maps_before);
    printf("maps_lines=%ld\n", maps);
    printf("max_map_count=%ld\n", read_long("/proc/sys/vm/max_map_count", 65530));
    print_per_task("spawn", t0, t1, n);
    print_per_task("settle", t1, t2, n);
    fflush(stdout);

    struct stamp t3 = now();
    for (long i = 0; i < spawned; i++)
        iou_cancel(s->tasks[i]);
    for (long i = 0; i < spawned; i++)
        iou_join(s->tasks[i]);
    struct stamp t4 = now();
    print_per_task("teardown", t3, t4, n);
    printf("cancelled=%ld\n", s->cancelled);
    if (s->cancelled != spawned && s->status == 0) {
        printf("status=only %ld of %ld sleepers saw -ECANCELED\n", s->cancelled, spawned);
        s->status = 1;
    }
    return s->status;
}

int main(int argc, char **argv)
{
    struct sleepers s = {.n = DEFAULT_TASKS};
    if (argc > 1) {
        char *end;
        s.n = strtol(argv[1], &end, 10);
        if (*end || s.n <= 0) {
            fprintf(stderr, "usage: %s [number of tasks]\n", argv[0]);
            return 2;
        }
    }
    /* Allocated and touched before the baseline reading, so the delta is
     * the tasks' own cost. */
    s.tasks = calloc((size_t)s.n, sizeof *s.tasks);
    if (!s.tasks) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset(s.tasks, 0xff, (size_t)s.n * sizeof *s.tasks);

    int rc = iou_run(run, &s);
    if (rc < 0) {
        printf("status=iou_run: %s\n", iou_strerror(rc));
        return 1;
    }
    if (rc == 0)
        printf("status=ok\n");
    free(s.tasks);
    return rc == 0 ? 0 : 1;
}
