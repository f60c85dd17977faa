/*
 * The cached-read fast path, measured: 4 KiB random reads at queue depth 1
 * from one task, over a file that is entirely in the page cache, as
 *   pread     plain pread(2) on the thread, no loop (the baseline)
 *   fast      iou_read in a task, fast path on (preadv2 RWF_NOWAIT first)
 *   ring      iou_read in a task, fast path off (every read an SQE)
 * and, for the price of a miss, the same reads each preceded by
 * POSIX_FADV_DONTNEED on the page, with readahead off (POSIX_FADV_RANDOM,
 * so pages are cached one by one and can be dropped one by one):
 *   miss_pread / miss_fast / miss_ring
 * miss_rate says which share of those reads really missed the cache
 * (checked with a RWF_NOWAIT probe before the runs).
 * Runs the modes interleaved, REPS times, and prints per mode the median
 * wall and CPU (this thread) nanoseconds per read and the ratio to pread.
 *
 * Usage: read_fastpath [file_mib=64] [reads=200000] [reps=7] [dir=/tmp]
 * Output: key=value lines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <iou.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

enum { BLOCK = 4096, MAX_REPS = 31 };

typedef struct run {
    int fd;
    long reads;
    uint64_t blocks;
    bool miss; /* drop each page from the cache before reading it */
    int status;
} run;

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The reads themselves; in_task picks iou_read over pread. */
static int do_reads(run *r, bool in_task)
{
    static _Alignas(4096) char buf[BLOCK];
    uint64_t s = 88172645463325252ull;
    for (long i = 0; i < r->reads; i++) {
        off_t off = (off_t)(next_rand(&s) % r->blocks) * BLOCK;
        if (r->miss)
            posix_fadvise(r->fd, off, BLOCK, POSIX_FADV_DONTNEED);
        ssize_t n = in_task ? iou_read(r->fd, buf, BLOCK, off) : pread(r->fd, buf, BLOCK, off);
        if (n != BLOCK) {
            r->status = 1;
            return 1;
        }
    }
    return 0;
}

static int task_reads(void *arg)
{
    return do_reads(arg, true);
}

typedef struct sample {
    double wall, cpu; /* ns per read */
} sample;

/* mode: 0 pread, 1 fast, 2 ring. */
static sample measure(run *r, int mode)
{
    uint64_t w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (mode == 0) {
        do_reads(r, false);
    } else {
        iou_loop_opts o = {.no_read_fastpath = mode == 2};
        if (iou_run_ex(task_reads, r, &o) != 0)
            r->status = 1;
    }
    uint64_t w1 = clock_ns(CLOCK_MONOTONIC), c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    return (sample){(double)(w1 - w0) / (double)r->reads, (double)(c1 - c0) / (double)r->reads};
}

/* The share of page reads that miss right after their page was dropped. */
static double miss_rate(run *r)
{
    static _Alignas(4096) char buf[BLOCK];
    uint64_t s = 12345;
    int misses = 0, n = 1000;
    for (int i = 0; i < n; i++) {
        off_t off = (off_t)(next_rand(&s) % r->blocks) * BLOCK;
        if (pread(r->fd, buf, BLOCK, off) != BLOCK)
            return -1;
        posix_fadvise(r->fd, off, BLOCK, POSIX_FADV_DONTNEED);
        struct iovec iov = {buf, BLOCK};
        misses += preadv2(r->fd, &iov, 1, off, RWF_NOWAIT) < 0;
    }
    return (double)misses / n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int make_file(const char *dir, long mib, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/iou_read_fastpath_XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    char *chunk = malloc(1 << 20);
    if (chunk == NULL)
        return -1;
    for (long i = 0; i < mib; i++) {
        memset(chunk, (int)i, 1 << 20);
        if (write(fd, chunk, 1 << 20) != 1 << 20)
            return -1;
    }
    free(chunk);
    fdatasync(fd);
    return fd;
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? atol(argv[1]) : 64;
    long reads = argc > 2 ? atol(argv[2]) : 200000;
    int reps = argc > 3 ? atoi(argv[3]) : 7;
    const char *dir = argc > 4 ? argv[4] : "/tmp";
    if (mib <= 0 || reads <= 0 || reps <= 0 || reps > MAX_REPS)
        return fprintf(stderr, "usage: read_fastpath [file_mib] [reads] [reps<=31] [dir]\n"), 2;
    char path[4096];
    int fd = make_file(dir, mib, path, sizeof(path));
    if (fd < 0)
        return perror("temp file"), 1;
    unlink(path);
    run r = {.fd = fd, .reads = reads, .blocks = (uint64_t)mib * (1 << 20) / BLOCK};
    static const char *names[] = {"pread", "fast", "ring", "miss_pread", "miss_fast", "miss_ring"};
    double wall[6][MAX_REPS], cpu[6][MAX_REPS];
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    double rate = miss_rate(&r);
    run warm = r;
    warm.reads = (long)r.blocks * 4;
    do_reads(&warm, false); /* everything cached before the first timed pass */
    for (int rep = 0; rep < reps; rep++) {
        for (int m = 0; m < 6; m++) {
            run x = r;
            x.miss = m >= 3;
            if (x.miss)
                x.reads = reads / 10 > 0 ? reads / 10 : 1; /* each miss goes to the disk */
            sample s = measure(&x, m % 3);
            if (x.status)
                return fprintf(stderr, "read failed in mode %s\n", names[m]), 1;
            wall[m][rep] = s.wall;
            cpu[m][rep] = s.cpu;
        }
    }
    printf("file_mib=%ld\nreads=%ld\nreps=%d\ndir=%s\nmiss_rate=%.3f\n", mib, reads, reps, dir,
           rate);
    double base_wall = 0, base_cpu = 0, miss_wall = 0, miss_cpu = 0;
    for (int m = 0; m < 6; m++) {
        double w = median(wall[m], reps), c = median(cpu[m], reps);
        if (m == 0)
            base_wall = w, base_cpu = c;
        if (m == 3)
            miss_wall = w, miss_cpu = c;
        double bw = m < 3 ? base_wall : miss_wall, bc = m < 3 ? base_cpu : miss_cpu;
        printf("%s_wall_ns=%.1f\n%s_cpu_ns=%.1f\n%s_vs_pread_wall=%.3f\n%s_vs_pread_cpu=%.3f\n",
               names[m], w, names[m], c, names[m], bw / w, names[m], bc / c);
    }
    close(fd);
    return 0;
}
