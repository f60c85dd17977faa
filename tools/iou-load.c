/*
 * iou-load: a load generator for echo servers, written on iou.
 *
 * Opens N TCP connections (one task each). Every connection keeps `depth`
 * messages of `size` bytes in flight: it sends them, and each time a whole
 * message has come back it records that message's round-trip latency and
 * sends a new one. The echoed bytes are checked against what was sent.
 * After a warm-up the counters are reset and a window of `duration` seconds
 * is measured: round trips per second, latency percentiles from a log-linear
 * histogram, and with --pid the server's CPU time per round trip (read from
 * the kernel's per-process CPU clock, the sum over all its threads).
 *
 * --idle instead opens the connections, echoes one message on each (so the
 * server has surely accepted and served it), and reports the server's
 * resident memory (VmRSS) before and after: the memory cost per idle
 * connection.
 */
#define _GNU_SOURCE
#include "args.h"
#include "hdr.h"

#include <iou.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { FMT_TEXT, FMT_JSON, FMT_CSV };

/* The byte stream each connection sends: byte i is pattern[i % PERIOD]. A
 * prime period keeps messages of any size from lining up with it. */
enum { PERIOD = 4093 };

static const char usage[] =
    "Usage: iou-load [options]\n"
    "Load generator for TCP echo servers (built on iou).\n"
    "\n"
    "  -H, --host ADDR        server address, numeric or localhost (default 127.0.0.1)\n"
    "  -p, --port PORT        server port (default 7000)\n"
    "  -c, --connections N    concurrent connections (default 1)\n"
    "  -m, --size BYTES       message size (default 64)\n"
    "  -d, --depth N          messages in flight per connection (default 1)\n"
    "  -t, --duration SEC     measured window in seconds (default 5)\n"
    "  -w, --warmup SEC       unmeasured warm-up before it (default 1)\n"
    "  -P, --pid PID          also report this process's (the server's) CPU time\n"
    "                         per round trip, and its memory\n"
    "      --idle             connect, echo one message per connection, then hold\n"
    "                         the connections idle and report the server's VmRSS\n"
    "                         before/after (needs --pid); --duration is the hold time\n"
    "      --connect-parallel N  connects in flight at once (default 256)\n"
    "      --no-verify        do not compare the echoed bytes with those sent\n"
    "      --json             print one JSON object\n"
    "      --csv              print a CSV header line and one row\n"
    "  -h, --help             this text\n"
    "\n"
    "Latency is measured per message, from the send of the message to the\n"
    "arrival of its last echoed byte, in a log-linear histogram (0.8 %\n"
    "resolution). Server CPU is the kernel's CPU clock of --pid (user + system,\n"
    "all threads) over the measured window, divided by the round trips in it.\n"
    "\n"
    "Examples:\n"
    "  iou-load -c 50 -m 64 -t 5 --pid $(pidof iou-echo)\n"
    "  iou-load -c 10000 --idle -t 2 --pid $(pidof iou-echo) --json\n";

static struct {
    const char *host;
    const char *port;
    long conns;
    size_t size;
    long depth;
    double duration, warmup;
    int pid;
    bool idle;
    bool verify;
    long connect_parallel;
    int format;
} opt = {
    .host = "127.0.0.1",
    .port = "7000",
    .conns = 1,
    .size = 64,
    .depth = 1,
    .duration = 5,
    .warmup = 1,
    .pid = 0,
    .verify = true,
    .connect_parallel = 256,
    .format = FMT_TEXT,
};

enum phase { WARMUP, MEASURE, STOP };

/* Shared by all tasks (one thread: no locks). */
static struct {
    uint16_t port;
    unsigned char *pattern; /* PERIOD + max(recv buffer, depth * size) bytes */
    size_t rcap;            /* each connection's receive buffer */
    enum phase phase;
    hdr lat;                /* latencies in the measured window, ns */
    uint64_t msgs;          /* round trips completed in the measured window */
    uint64_t msgs_total;    /* round trips completed since the start (warm-up too) */
    long connected;
    long pinged;            /* --idle: connections whose first echo came back */
    int failure;            /* first error (negative errno), 0 if none */
    const char *failure_what;
    iou_event all_ready;    /* every connection connected (and pinged), or failure */
    iou_event start;        /* go: start sending */
    iou_sem connecting;     /* bounds connects in flight */
} g;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(int err, const char *what)
{
    if (g.failure == 0) {
        g.failure = err ? err : -EIO;
        g.failure_what = what;
    }
    iou_event_set(&g.all_ready);
}

/* ---- the server's side, from /proc ---- */

/* The server's CPU time in ns (user + system, all threads, including those
 * that have exited), or -1 if it cannot be read. */
static int64_t server_cpu_ns(void)
{
    clockid_t clk;
    struct timespec ts;
    if (opt.pid <= 0 || clock_getcpuclockid(opt.pid, &clk) != 0 || clock_gettime(clk, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A "Key:   123 kB" field of /proc/PID/status in KiB, or -1. */
static long proc_status_kib(int pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long v = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* ---- one connection ---- */

typedef struct conn {
    int fd;
    unsigned char *rbuf;
    uint64_t *stamp; /* send time of each message in flight, a ring of depth */
} conn;

/* Receives until `want` more whole messages have come back, checking bytes.
 * Used by the idle mode's single ping. */
static int recv_exact(conn *c, size_t want, uint64_t *rx)
{
    size_t got = 0;
    while (got < want) {
        size_t room = want - got < g.rcap ? want - got : g.rcap;
        ssize_t n = iou_recv(c->fd, c->rbuf, room, 0);
        if (n <= 0)
            return n == 0 ? -ECONNRESET : (int)n;
        if (opt.verify && memcmp(c->rbuf, g.pattern + *rx % PERIOD, (size_t)n) != 0)
            return -EBADMSG;
        *rx += (uint64_t)n;
        got += (size_t)n;
    }
    return 0;
}

static int open_connection(conn *c)
{
    int err = iou_sem_acquire(&g.connecting);
    if (err)
        return err;
    int fd = iou_dial_tcp(opt.host, g.port); /* sets TCP_NODELAY */
    iou_sem_release(&g.connecting);
    if (fd < 0)
        return fd;
    c->fd = fd;
    return 0;
}

/*
 * Sends the queued bytes [*tx, end) as far as the socket takes them now. A
 * send that would block is left for later, after the next receive: waiting
 * in send while the server waits for us to read its echoes could deadlock
 * once depth x size exceeds the socket buffers. Only when nothing is in
 * flight (so no echo can come) does it wait in send.
 */
static int send_queued(conn *c, uint64_t *tx, uint64_t end, uint64_t rx)
{
    while (*tx < end) {
        int flags = *tx > rx ? MSG_DONTWAIT : 0;
        ssize_t n = iou_send(c->fd, g.pattern + *tx % PERIOD, (size_t)(end - *tx), flags);
        if (n == -EAGAIN && flags)
            return 0;
        if (n < 0)
            return (int)n;
        *tx += (uint64_t)n;
    }
    return 0;
}

/* The pipelined request loop: keep `depth` messages in flight until stopped.
 * A message's latency runs from when it was queued for sending to the
 * arrival of its last echoed byte. */
static int pump(conn *c)
{
    const size_t m = opt.size;
    const uint64_t d = (uint64_t)opt.depth;
    uint64_t tx = 0, rx = 0;     /* bytes sent / received */
    uint64_t sent = 0, back = 0; /* messages queued / fully echoed */
    uint64_t now = mono_ns();
    for (; sent < d; sent++)
        c->stamp[sent % d] = now;
    int err = send_queued(c, &tx, sent * m, rx);
    if (err)
        return err;
    for (;;) {
        ssize_t n = iou_recv(c->fd, c->rbuf, g.rcap, 0);
        if (n <= 0)
            return n == 0 ? -ECONNRESET : (int)n;
        if (opt.verify && memcmp(c->rbuf, g.pattern + rx % PERIOD, (size_t)n) != 0)
            return -EBADMSG;
        rx += (uint64_t)n;
        uint64_t done = rx / m - back;
        if (done) {
            now = mono_ns();
            g.msgs_total += done;
            for (uint64_t i = 0; i < done; i++, back++) {
                if (g.phase == MEASURE) {
                    hdr_record(&g.lat, now - c->stamp[back % d]);
                    g.msgs++;
                }
            }
            if (g.phase == STOP)
                return 0;
            for (uint64_t i = 0; i < done; i++, sent++)
                c->stamp[sent % d] = now;
        }
        err = send_queued(c, &tx, sent * m, rx);
        if (err)
            return err;
    }
}

static int conn_task(void *arg)
{
    conn *c = arg;
    int err = open_connection(c);
    if (err) {
        fail(err, "connect");
        return err;
    }
    if (++g.connected == opt.conns && !opt.idle)
        iou_event_set(&g.all_ready);
    if (opt.idle) {
        /* One echo proves the server accepted and served this connection. */
        uint64_t rx = 0;
        ssize_t n = iou_send_all(c->fd, g.pattern, opt.size);
        err = n < 0 ? (int)n : recv_exact(c, opt.size, &rx);
        if (err) {
            fail(err, "first echo");
            return err;
        }
        if (++g.pinged == opt.conns)
            iou_event_set(&g.all_ready);
        /* Hold the connection until the end (cancellation ends the wait). */
        iou_event_wait(&g.start);
        return 0;
    }
    err = iou_event_wait(&g.start);
    if (err == 0)
        err = pump(c);
    /* Cancelled or closed by the stop: that is the normal end. */
    if (g.phase == STOP || err == -ECANCELED)
        return 0;
    fail(err, err == -EBADMSG ? "echo verification" : "recv/send");
    return err;
}

/* ---- measurement and report ---- */

typedef struct result {
    double window_s;
    uint64_t msgs;
    int64_t server_cpu_ns;  /* -1: unknown */
    int64_t client_cpu_ns;
    long rss_before_kib, rss_after_kib; /* --idle */
} result;

static int64_t self_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps s seconds in slices, returning early (nonzero) on a failure. */
static int sleep_watching(double s)
{
    uint64_t end = mono_ns() + (uint64_t)(s * 1e9);
    for (;;) {
        if (g.failure)
            return g.failure;
        uint64_t now = mono_ns();
        if (now >= end)
            return 0;
        uint64_t slice = end - now < 100000000u ? end - now : 100000000u;
        int err = iou_sleep(slice);
        if (err)
            return err;
    }
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void print_result(const result *r)
{
    double rps = r->window_s > 0 ? (double)r->msgs / r->window_s : 0;
    double mbps = rps * (double)opt.size / 1e6;
    double scpu = r->server_cpu_ns >= 0 && r->msgs ? (double)r->server_cpu_ns / 1e3 / (double)r->msgs
                                                   : -1;
    double ccpu = r->msgs ? (double)r->client_cpu_ns / 1e3 / (double)r->msgs : -1;
    uint64_t p50 = hdr_percentile(&g.lat, 50), p99 = hdr_percentile(&g.lat, 99),
             p999 = hdr_percentile(&g.lat, 99.9);
    uint64_t max = g.lat.count ? g.lat.max : 0;
    switch (opt.format) {
    case FMT_JSON:
        printf("{\"mode\":\"echo\",\"connections\":%ld,\"size\":%zu,\"depth\":%ld,"
               "\"window_s\":%.3f,\"round_trips\":%" PRIu64 ",\"rps\":%.1f,\"mb_per_s\":%.3f,"
               "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,"
               "\"mean_us\":%.2f,\"server_pid\":%d,\"server_cpu_s\":%.6f,"
               "\"server_cpu_us_per_rt\":%.4f,\"client_cpu_us_per_rt\":%.4f,"
               "\"round_trips_total\":%" PRIu64 "}\n",
               opt.conns, opt.size, opt.depth, r->window_s, r->msgs, rps, mbps, us(p50), us(p99),
               us(p999), us(max), hdr_mean(&g.lat) / 1e3, opt.pid,
               r->server_cpu_ns >= 0 ? (double)r->server_cpu_ns / 1e9 : -1.0, scpu, ccpu,
               g.msgs_total);
        break;
    case FMT_CSV:
        printf("connections,size,depth,window_s,round_trips,rps,p50_us,p99_us,p999_us,max_us,"
               "mean_us,server_cpu_us_per_rt,client_cpu_us_per_rt\n");
        printf("%ld,%zu,%ld,%.3f,%" PRIu64 ",%.1f,%.2f,%.2f,%.2f,%.2f,%.2f,%.4f,%.4f\n", opt.conns,
               opt.size, opt.depth, r->window_s, r->msgs, rps, us(p50), us(p99), us(p999), us(max),
               hdr_mean(&g.lat) / 1e3, scpu, ccpu);
        break;
    default:
        printf("iou-load: %s:%s, %ld connection(s) x %zu bytes, depth %ld, %.2f s measured"
               " (after %.2f s warm-up)\n",
               opt.host, opt.port, opt.conns, opt.size, opt.depth, r->window_s, opt.warmup);
        printf("  round trips  %" PRIu64 "  (%.0f /s, %.2f MB/s each way)\n", r->msgs, rps, mbps);
        printf("  latency      p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us  mean %.1f us\n",
               us(p50), us(p99), us(p999), us(max), hdr_mean(&g.lat) / 1e3);
        if (scpu >= 0)
            printf("  server CPU   %.3f s (pid %d): %.3f us per round trip\n",
                   (double)r->server_cpu_ns / 1e9, opt.pid, scpu);
        printf("  client CPU   %.3f us per round trip\n", ccpu);
    }
}

static void print_idle(const result *r)
{
    double per = r->rss_before_kib >= 0 && r->rss_after_kib >= 0
                     ? (double)(r->rss_after_kib - r->rss_before_kib) / (double)opt.conns
                     : -1;
    switch (opt.format) {
    case FMT_JSON:
        printf("{\"mode\":\"idle\",\"connections\":%ld,\"server_pid\":%d,"
               "\"server_rss_before_kib\":%ld,\"server_rss_after_kib\":%ld,"
               "\"server_rss_per_conn_kib\":%.3f}\n",
               opt.conns, opt.pid, r->rss_before_kib, r->rss_after_kib, per);
        break;
    case FMT_CSV:
        printf("connections,server_rss_before_kib,server_rss_after_kib,server_rss_per_conn_kib\n");
        printf("%ld,%ld,%ld,%.3f\n", opt.conns, r->rss_before_kib, r->rss_after_kib, per);
        break;
    default:
        printf("iou-load: %ld idle connection(s) to %s:%s\n", opt.conns, opt.host, opt.port);
        if (per >= 0)
            printf("  server VmRSS %ld KiB before, %ld KiB with the connections: %.2f KiB per "
                   "connection\n",
                   r->rss_before_kib, r->rss_after_kib, per);
    }
}

static conn *conns;

static int main_task(void *arg)
{
    result *r = arg;
    iou_group *grp = iou_group_new();
    if (grp == NULL)
        return -ENOMEM;
    r->rss_before_kib = opt.pid > 0 ? proc_status_kib(opt.pid, "VmRSS") : -1;
    for (long i = 0; i < opt.conns; i++) {
        if (iou_group_spawn(grp, conn_task, &conns[i]) == NULL) {
            fail(-ENOMEM, "spawn");
            break;
        }
    }
    int err = iou_event_wait(&g.all_ready);
    if (err == 0 && g.failure == 0) {
        if (opt.idle) {
            err = sleep_watching(opt.duration);
            r->rss_after_kib = proc_status_kib(opt.pid, "VmRSS");
        } else {
            iou_event_set(&g.start);
            err = sleep_watching(opt.warmup);
            if (err == 0) {
                hdr_reset(&g.lat);
                g.msgs = 0;
                g.phase = MEASURE;
                int64_t s0 = server_cpu_ns(), c0 = self_cpu_ns();
                uint64_t t0 = mono_ns();
                err = sleep_watching(opt.duration);
                int64_t s1 = server_cpu_ns(), c1 = self_cpu_ns();
                uint64_t t1 = mono_ns();
                g.phase = STOP;
                r->msgs = g.msgs;
                r->window_s = (double)(t1 - t0) / 1e9;
                r->server_cpu_ns = s0 >= 0 && s1 >= 0 ? s1 - s0 : -1;
                r->client_cpu_ns = c1 - c0;
            }
        }
    }
    g.phase = STOP;
    iou_group_cancel(grp);
    iou_group_wait(grp);
    for (long i = 0; i < opt.conns; i++)
        if (conns[i].fd >= 0)
            iou_close(conns[i].fd);
    if (g.failure)
        return g.failure;
    return err;
}

/* ---- setup ---- */

static int parse_args(int argc, char **argv)
{
    enum { O_IDLE = 256, O_JSON, O_CSV, O_NOVERIFY, O_PAR };
    static const struct option lo[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 'm'},
        {"depth", required_argument, NULL, 'd'},
        {"duration", required_argument, NULL, 't'},
        {"warmup", required_argument, NULL, 'w'},
        {"pid", required_argument, NULL, 'P'},
        {"idle", no_argument, NULL, O_IDLE},
        {"connect-parallel", required_argument, NULL, O_PAR},
        {"no-verify", no_argument, NULL, O_NOVERIFY},
        {"json", no_argument, NULL, O_JSON},
        {"csv", no_argument, NULL, O_CSV},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, "H:p:c:m:d:t:w:P:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'H':
            opt.host = optarg;
            break;
        case 'p':
            if (args_long(optarg, 1, 65535, &v))
                return args_bad("iou-load", "port", optarg);
            opt.port = optarg;
            break;
        case 'c':
            if (args_long(optarg, 1, 1000000, &opt.conns))
                return args_bad("iou-load", "connection count", optarg);
            break;
        case 'm':
            if (args_long(optarg, 1, 16 << 20, &v))
                return args_bad("iou-load", "message size", optarg);
            opt.size = (size_t)v;
            break;
        case 'd':
            if (args_long(optarg, 1, 65536, &opt.depth))
                return args_bad("iou-load", "depth", optarg);
            break;
        case 't':
            if (args_seconds(optarg, &opt.duration))
                return args_bad("iou-load", "duration", optarg);
            break;
        case 'w':
            if (args_seconds(optarg, &opt.warmup))
                return args_bad("iou-load", "warm-up", optarg);
            break;
        case 'P':
            if (args_long(optarg, 1, 1L << 30, &v))
                return args_bad("iou-load", "pid", optarg);
            opt.pid = (int)v;
            break;
        case O_IDLE:
            opt.idle = true;
            break;
        case O_PAR:
            if (args_long(optarg, 1, 1000000, &opt.connect_parallel))
                return args_bad("iou-load", "connect parallelism", optarg);
            break;
        case O_NOVERIFY:
            opt.verify = false;
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
    if (optind < argc)
        return args_bad("iou-load", "argument", argv[optind]);
    if (opt.idle && opt.pid <= 0) {
        fputs("iou-load: --idle needs --pid (the server whose memory to read)\n", stderr);
        return 2;
    }
    if ((uint64_t)opt.depth * opt.size > (64u << 20)) { /* the pattern buffer holds it */
        fputs("iou-load: depth x size above 64 MiB per connection\n", stderr);
        return 2;
    }
    return 0;
}

static int check_address(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    long port;
    args_long(opt.port, 1, 65535, &port);
    g.port = (uint16_t)port;
    if (iou_addr_parse(opt.host, g.port, &ss, &len) < 0) {
        fprintf(stderr, "iou-load: bad host '%s' (a numeric IPv4/IPv6 address or localhost)\n",
                opt.host);
        return -1;
    }
    return 0;
}

/* Enough descriptors for every connection: raise the soft limit to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)opt.conns + 16 > rl.rlim_cur)
        fprintf(stderr, "iou-load: warning: %ld connections but only %llu descriptors allowed\n",
                opt.conns, (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc)
        return rc;
    if (check_address())
        return 1;
    raise_fd_limit();

    size_t inflight = (size_t)opt.depth * opt.size;
    g.rcap = inflight > 65536 ? inflight : 65536;
    size_t plen = PERIOD + (g.rcap > inflight ? g.rcap : inflight);
    g.pattern = malloc(plen);
    conns = calloc((size_t)opt.conns, sizeof(*conns));
    if (g.pattern == NULL || conns == NULL) {
        fputs("iou-load: out of memory\n", stderr);
        return 1;
    }
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < plen; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        g.pattern[i] = i < PERIOD ? (unsigned char)(x >> 24) : g.pattern[i - PERIOD];
    }
    /* Per-connection buffers; one receive buffer per connection (reads are
     * checked in place). In idle mode they are small. */
    if (opt.idle)
        g.rcap = opt.size;
    for (long i = 0; i < opt.conns; i++) {
        conns[i].fd = -1;
        conns[i].rbuf = malloc(g.rcap);
        conns[i].stamp = malloc(sizeof(uint64_t) * (size_t)opt.depth);
        if (conns[i].rbuf == NULL || conns[i].stamp == NULL) {
            fputs("iou-load: out of memory\n", stderr);
            return 1;
        }
    }
    hdr_reset(&g.lat);
    iou_event_init(&g.all_ready);
    iou_event_init(&g.start);
    iou_sem_init(&g.connecting, (size_t)opt.connect_parallel);

    result r = {.server_cpu_ns = -1, .rss_before_kib = -1, .rss_after_kib = -1};
    /* Connection tasks need little stack: 32 KiB each (only touched pages count). */
    iou_loop_opts lo = {.stack_size = 32 * 1024, .ring_entries = 1024};
    rc = iou_run_ex(main_task, &r, &lo);
    if (rc) {
        fprintf(stderr, "iou-load: %s%s%s\n", g.failure_what ? g.failure_what : "",
                g.failure_what ? ": " : "", iou_strerror(rc));
        return 1;
    }
    if (opt.idle)
        print_idle(&r);
    else
        print_result(&r);
    for (long i = 0; i < opt.conns; i++) {
        free(conns[i].rbuf);
        free(conns[i].stamp);
    }
    free(conns);
    free(g.pattern);
    return 0;
}
