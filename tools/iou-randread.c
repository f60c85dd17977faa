/*
 * iou-randread: random reads over a file at a given queue depth, on iou, so
 * the engine's storage path can stand next to fio.
 *
 * N tasks each keep one read in flight (queue depth N): pick a random
 * block-aligned offset, read one block, record the latency, repeat. Every
 * task reads the clock around each read and decides its phase from it
 * (warm-up, measured window, stop): a cached read may complete without ever
 * suspending, so no other task (a timer, a main task) could be relied on to
 * run and flip a switch. The measured window's reads give IOPS and latency
 * percentiles from a log-linear histogram (tools/hdr.c).
 */
#define _GNU_SOURCE
#include "args.h"
#include "hdr.h"

#include <iou.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { FMT_TEXT, FMT_JSON, FMT_CSV };

static const char usage[] =
    "Usage: iou-randread [options] FILE\n"
    "Random reads over FILE at a given queue depth (built on iou): IOPS and latency.\n"
    "\n"
    "  -b, --bs BYTES         block size of each read (default 4096; K, M suffixes)\n"
    "  -q, --qd N             queue depth: N tasks, one read in flight each (default 1)\n"
    "  -t, --duration SEC     measured window (default 5)\n"
    "  -n, --ios N            stop after N measured reads instead (the duration then\n"
    "                         only bounds the run)\n"
    "  -w, --warmup SEC       unmeasured warm-up before the window (default 1)\n"
    "  -s, --size BYTES       read only the first BYTES of the file (default: all of it)\n"
    "      --direct           O_DIRECT (no page cache; block size and buffers aligned)\n"
    "      --fixed            registered buffers (iou_read_fixed) and a registered file\n"
    "      --no-fastpath      reads go straight to the ring, without first trying the\n"
    "                         page cache with a non-blocking read (buffered reads only)\n"
    "      --seed N           random seed (default 1)\n"
    "      --json             print one JSON object\n"
    "      --csv              print a CSV header line and one row\n"
    "  -h, --help             this text\n"
    "\n"
    "Offsets are uniformly random multiples of the block size. Latency is measured\n"
    "around each read call (submission to completion, as seen by the task), in a\n"
    "log-linear histogram (0.8 % resolution). CPU is this process's user + system\n"
    "time (all its threads, io_uring workers included) over the window, per read.\n"
    "Buffered runs measure whatever the page cache holds: warm it first (e.g. cat\n"
    "FILE > /dev/null) for cached reads.\n"
    "\n"
    "Examples:\n"
    "  iou-randread -q 32 --direct --fixed -t 5 data.img\n"
    "  iou-randread -q 1 -t 5 --json data.img\n";

static struct {
    const char *path;
    size_t bs;
    long qd;
    double duration, warmup;
    uint64_t ios;
    uint64_t size;
    bool direct, fixed, no_fastpath;
    uint64_t seed;
    int format;
} opt = {.bs = 4096, .qd = 1, .duration = 5, .warmup = 1, .seed = 1, .format = FMT_TEXT};

/* Shared by all tasks (one thread: no locks). */
static struct {
    int fd;              /* the file, or its registered handle with --fixed */
    uint64_t blocks;     /* offsets are block * bs, block < blocks */
    uint64_t t_measure;  /* the window starts ... */
    uint64_t t_end;      /* ... and ends here (--ios: moved to the last read's end) */
    uint64_t done;       /* reads completed in the window */
    uint64_t total;      /* reads completed, warm-up included */
    bool stop;           /* --ios reached */
    hdr lat;             /* latencies in the window, ns */
    iou_fixed_buf fbuf;  /* --fixed: qd blocks, one per task */
    unsigned char *buf;  /* otherwise: qd blocks, aligned for O_DIRECT */
    int failure;
} g;

typedef struct reader {
    long index;
    uint64_t rng;
} reader;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t next_rand(uint64_t *s)
{
    /* splitmix64: fast, and good enough to spread offsets uniformly */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static ssize_t read_one(long index, uint64_t off)
{
    if (opt.fixed)
        return iou_read_fixed(g.fd, &g.fbuf, (size_t)index * opt.bs, opt.bs, (int64_t)off);
    return iou_read(g.fd, g.buf + (size_t)index * opt.bs, opt.bs, (int64_t)off);
}

static int reader_task(void *arg)
{
    reader *r = arg;
    for (uint64_t n = 1;; n++) {
        uint64_t off = next_rand(&r->rng) % g.blocks * opt.bs;
        uint64_t t0 = mono_ns();
        ssize_t got = read_one(r->index, off);
        uint64_t t1 = mono_ns();
        if (got != (ssize_t)opt.bs) {
            if (g.failure == 0)
                g.failure = got < 0 ? (int)got : -EIO; /* a short read: the file shrank */
            return g.failure;
        }
        g.total++;
        if (g.stop || t1 >= g.t_end)
            return 0;
        if (t0 >= g.t_measure) {
            hdr_record(&g.lat, t1 - t0);
            if (++g.done == opt.ios) {
                g.stop = true;
                g.t_end = t1;
            }
        }
        /* Cached reads may never suspend: let the other tasks run now and then. */
        if (n % 64 == 0 && iou_yield() != 0)
            return 0;
    }
}

typedef struct result {
    double window_s;
    int64_t cpu_ns;
} result;

static int main_task(void *arg)
{
    result *res = arg;
    int fd = iou_open(opt.path, O_RDONLY | O_CLOEXEC | (opt.direct ? O_DIRECT : 0), 0);
    if (fd < 0) {
        fprintf(stderr, "iou-randread: %s: open%s: %s\n", opt.path,
                opt.direct ? " with O_DIRECT" : "", iou_strerror(fd));
        return fd;
    }
    g.fd = fd;
    int err = 0;
    if (opt.fixed) {
        err = iou_fixed_buf_alloc((size_t)opt.qd * opt.bs, &g.fbuf);
        if (err) {
            fprintf(stderr, "iou-randread: registering %zu bytes of buffers: %s\n",
                    (size_t)opt.qd * opt.bs, iou_strerror(err));
            iou_close(fd);
            return err;
        }
        int h = iou_file_register(fd);
        if (h < 0) {
            fprintf(stderr, "iou-randread: registering the file: %s\n", iou_strerror(h));
            iou_fixed_buf_free(&g.fbuf);
            iou_close(fd);
            return h;
        }
        g.fd = h;
        iou_close(fd); /* the table holds its own reference */
    }
    reader *rs = calloc((size_t)opt.qd, sizeof(*rs));
    iou_group *grp = rs ? iou_group_new() : NULL;
    if (grp == NULL) {
        free(rs);
        err = -ENOMEM;
        goto out;
    }
    uint64_t now = mono_ns();
    g.t_measure = now + (uint64_t)(opt.warmup * 1e9);
    g.t_end = g.t_measure + (uint64_t)(opt.duration * 1e9);
    for (long i = 0; i < opt.qd; i++) {
        rs[i] = (reader){.index = i, .rng = opt.seed * 0x100000001b3ull + (uint64_t)i};
        if (iou_group_spawn(grp, reader_task, &rs[i]) == NULL)
            g.failure = -ENOMEM;
    }
    /* The window's CPU time: sampled when it starts (a timer) and after. */
    int64_t c0 = -1;
    err = iou_sleep(g.t_measure > mono_ns() ? g.t_measure - mono_ns() : 0);
    c0 = cpu_ns();
    int gerr = iou_group_wait(grp);
    res->cpu_ns = cpu_ns() - c0;
    res->window_s = (double)(g.t_end - g.t_measure) / 1e9;
    free(rs);
    if (err == 0)
        err = g.failure ? g.failure : gerr;
    if (err)
        fprintf(stderr, "iou-randread: %s: read: %s\n", opt.path, iou_strerror(err));
out:
    if (opt.fixed) {
        iou_file_unregister(g.fd);
        iou_fixed_buf_free(&g.fbuf);
    } else {
        iou_close(fd);
    }
    return err;
}

/* ---- report ---- */

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void print_result(const result *r)
{
    double iops = r->window_s > 0 ? (double)g.done / r->window_s : 0;
    double mbps = iops * (double)opt.bs / 1e6;
    double cpu = g.done ? (double)r->cpu_ns / 1e3 / (double)g.done : 0;
    uint64_t p50 = hdr_percentile(&g.lat, 50), p99 = hdr_percentile(&g.lat, 99),
             p999 = hdr_percentile(&g.lat, 99.9), max = g.lat.count ? g.lat.max : 0;
    const char *mode = opt.direct ? "direct" : "buffered";
    switch (opt.format) {
    case FMT_JSON:
        printf("{\"tool\":\"iou-randread\",\"mode\":\"%s\",\"fixed\":%s,\"fastpath\":%s,"
               "\"bs\":%zu,\"qd\":%ld,\"window_s\":%.3f,\"ios\":%" PRIu64 ",\"iops\":%.1f,"
               "\"mb_per_s\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,"
               "\"max_us\":%.2f,\"mean_us\":%.2f,\"cpu_us_per_io\":%.4f,"
               "\"ios_total\":%" PRIu64 "}\n",
               mode, opt.fixed ? "true" : "false",
               opt.direct || opt.no_fastpath ? "false" : "true", opt.bs, opt.qd, r->window_s,
               g.done, iops, mbps, us(p50), us(p99), us(p999), us(max), hdr_mean(&g.lat) / 1e3,
               cpu, g.total);
        break;
    case FMT_CSV:
        printf("mode,fixed,bs,qd,window_s,ios,iops,mb_per_s,p50_us,p99_us,p999_us,max_us,"
               "mean_us,cpu_us_per_io\n");
        printf("%s,%d,%zu,%ld,%.3f,%" PRIu64 ",%.1f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.4f\n", mode,
               opt.fixed, opt.bs, opt.qd, r->window_s, g.done, iops, mbps, us(p50), us(p99),
               us(p999), us(max), hdr_mean(&g.lat) / 1e3, cpu);
        break;
    default:
        printf("iou-randread: %s, %zu-byte random reads, %s%s%s, queue depth %ld, "
               "%.2f s measured (after %.2f s warm-up)\n",
               opt.path, opt.bs, mode, opt.fixed ? ", registered buffers and file" : "",
               !opt.direct && opt.no_fastpath ? ", no fast path" : "", opt.qd, r->window_s,
               opt.warmup);
        printf("  reads    %" PRIu64 "  (%.0f IOPS, %.1f MB/s)\n", g.done, iops, mbps);
        printf("  latency  p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us  mean %.1f us\n",
               us(p50), us(p99), us(p999), us(max), hdr_mean(&g.lat) / 1e3);
        printf("  CPU      %.3f us per read\n", cpu);
    }
}

/* ---- options ---- */

static int parse_args(int argc, char **argv)
{
    enum { O_DIRECT_ = 256, O_FIXED, O_NOFAST, O_SEED, O_JSON, O_CSV };
    static const struct option lo[] = {
        {"bs", required_argument, NULL, 'b'},
        {"qd", required_argument, NULL, 'q'},
        {"duration", required_argument, NULL, 't'},
        {"ios", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'},
        {"size", required_argument, NULL, 's'},
        {"direct", no_argument, NULL, O_DIRECT_},
        {"fixed", no_argument, NULL, O_FIXED},
        {"no-fastpath", no_argument, NULL, O_NOFAST},
        {"seed", required_argument, NULL, O_SEED},
        {"json", no_argument, NULL, O_JSON},
        {"csv", no_argument, NULL, O_CSV},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    uint64_t v;
    bool duration_set = false;
    while ((ch = getopt_long(argc, argv, "b:q:t:n:w:s:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'b':
            if (args_size(optarg, 1, 64u << 20, &v))
                return args_bad("iou-randread", "block size", optarg);
            opt.bs = (size_t)v;
            break;
        case 'q':
            if (args_size(optarg, 1, 4096, &v))
                return args_bad("iou-randread", "queue depth", optarg);
            opt.qd = (long)v;
            break;
        case 't':
            if (args_seconds(optarg, &opt.duration))
                return args_bad("iou-randread", "duration", optarg);
            duration_set = true;
            break;
        case 'n':
            if (args_size(optarg, 1, UINT64_MAX, &opt.ios))
                return args_bad("iou-randread", "read count", optarg);
            break;
        case 'w':
            if (args_seconds(optarg, &opt.warmup))
                return args_bad("iou-randread", "warm-up", optarg);
            break;
        case 's':
            if (args_size(optarg, 1, UINT64_MAX, &opt.size))
                return args_bad("iou-randread", "size", optarg);
            break;
        case O_DIRECT_:
            opt.direct = true;
            break;
        case O_FIXED:
            opt.fixed = true;
            break;
        case O_NOFAST:
            opt.no_fastpath = true;
            break;
        case O_SEED:
            if (args_size(optarg, 0, UINT64_MAX, &opt.seed))
                return args_bad("iou-randread", "seed", optarg);
            break;
        case O_JSON:
            opt.format = FMT_JSON;
            break;
        case O_CSV:
            opt.format = FMT_CSV;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fputs("iou-randread: need exactly one FILE (try --help)\n", stderr);
        return 2;
    }
    opt.path = argv[optind];
    if (opt.ios && !duration_set)
        opt.duration = 3600; /* --ios alone: run until that many */
    if (opt.direct && opt.bs % 512) {
        fputs("iou-randread: --direct needs a block size that is a multiple of 512\n", stderr);
        return 2;
    }
    return 0;
}

/* The file's size (for the offsets), checked against the block size. */
static int file_blocks(void)
{
    struct stat st;
    if (stat(opt.path, &st) != 0) {
        fprintf(stderr, "iou-randread: %s: %s\n", opt.path, iou_strerror(-errno));
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (opt.size && opt.size < size)
        size = opt.size;
    g.blocks = size / opt.bs;
    if (g.blocks == 0) {
        fprintf(stderr, "iou-randread: %s: smaller than one %zu-byte block\n", opt.path, opt.bs);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc)
        return rc;
    if (file_blocks())
        return 1;
    if (!opt.fixed) {
        g.buf = iou_aligned_alloc((size_t)opt.qd * opt.bs);
        if (g.buf == NULL) {
            fputs("iou-randread: out of memory\n", stderr);
            return 1;
        }
    }
    hdr_reset(&g.lat);
    result r = {0};
    iou_loop_opts lo = {.ring_entries = (unsigned)(opt.qd < 128 ? 256 : 2 * opt.qd),
                        .stack_size = 32 * 1024,
                        .no_read_fastpath = opt.no_fastpath};
    rc = iou_run_ex(main_task, &r, &lo);
    free(g.buf);
    if (rc)
        return 1;
    print_result(&r);
    return 0;
}
