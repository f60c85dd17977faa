/*
 * iou-echo: a TCP echo server on iou. One task per connection, written as
 * plain sequential code: wait for bytes, send them back, repeat.
 *
 * Connections come from iou_serve (one multishot accept; a task per
 * connection, which it closes and reaps). By default each connection reads
 * through an iou_stream: a multishot receive into the loop's ring of
 * provided buffers, with the echo sent straight out of the ring buffer.
 *
 * Stops on SIGINT / SIGTERM (or after --duration seconds): the server task is
 * cancelled, which cancels every connection task; each closes its socket.
 *
 * --threads N: a loop per thread (iou_loops_start), each with its own
 * listening socket on the same port (SO_REUSEPORT: the kernel spreads the
 * connections) and its own ring and buffer ring; nothing is shared.
 */
#define _GNU_SOURCE
#include "args.h"

#include <iou.h>

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

static const char usage[] =
    "Usage: iou-echo [options]\n"
    "TCP echo server built on iou: every byte received is sent back.\n"
    "\n"
    "  -p, --port PORT        port to listen on (default 7000; 0 = any free port)\n"
    "  -H, --host ADDR        numeric address to listen on (default 127.0.0.1;\n"
    "                         \"\" = every address, IPv6 and IPv4)\n"
    "  -b, --backlog N        listen backlog (default: the system maximum)\n"
    "  -m, --mode MODE        how connections are read (default stream):\n"
    "                           stream  iou_stream: multishot receive into provided\n"
    "                                   buffers, echo sent from the buffer (no copy)\n"
    "                           buf     iou_recv_buf per message (provided buffers)\n"
    "                           copy    iou_recv into the task's buffer, iou_send_all\n"
    "      --buffers N        provided buffers in the loop's ring (power of two;\n"
    "                         default 1024)\n"
    "      --buffer-size B    bytes per provided buffer (default 4096)\n"
    "  -T, --threads N        N loops on N threads, each with its own listening\n"
    "                         socket on the port (SO_REUSEPORT) (default 1)\n"
    "      --pin              pin loop i to the i-th CPU (with --threads)\n"
    "  -t, --duration SEC     exit after SEC seconds (default: until SIGINT/SIGTERM)\n"
    "  -q, --quiet            do not print the listening line\n"
    "  -h, --help             this text\n"
    "\n"
    "Once ready it prints \"iou-echo: listening on ADDR:PORT (pid N, mode M)\".\n"
    "\n"
    "Examples:\n"
    "  iou-echo --port 7000 &\n"
    "  iou-load --port 7000 -c 50 -m 64 -t 5 --pid $!\n";

typedef int (*conn_handler)(int fd, void *arg);
static int echo_stream(int fd, void *arg);
static int echo_buf(int fd, void *arg);
static int echo_copy(int fd, void *arg);

static struct {
    const char *host;
    int port;
    int backlog;
    const char *mode;
    conn_handler handler;
    unsigned buffers;
    size_t buffer_size;
    double duration;
    bool quiet;
    unsigned threads;
    bool pin;
} opt = {.host = "127.0.0.1", .port = 7000, .backlog = 0, .mode = "stream",
         .handler = echo_stream, .buffers = 1024, .buffer_size = 4096,
         .threads = 1};

/* Stop requests from the signal handler reach the loop through an eventfd
 * that the main task reads (write(2) is async-signal-safe). */
static int stop_fd = -1;

static void on_signal(int sig)
{
    (void)sig;
    uint64_t one = 1;
    ssize_t n = write(stop_fd, &one, sizeof(one));
    (void)n;
}

/* ---- the three ways to echo a connection ----
 *
 * stream: iou_stream over the socket: one multishot receive drawing from the
 *         loop's provided-buffer ring, kept armed while data flows; the echo
 *         is sent straight out of the ring buffer (peek, send, consume): no
 *         copy, no receive submitted per message, no buffer held while idle.
 * buf:    iou_recv_buf: one receive per message, the kernel picks a ring
 *         buffer when data arrives; send from it, release it.
 * copy:   iou_recv into the task's own buffer, iou_send_all it back (the
 *         core API, as in the README's quick start).
 */
enum { COPY_BUF = 4096 };

static int echo_stream(int fd, void *arg)
{
    (void)arg;
    iou_stream *s = iou_stream_open(fd);
    if (s == NULL)
        return -ENOMEM;
    const void *p;
    ssize_t n;
    while ((n = iou_stream_peek(s, &p)) > 0) {
        if (iou_send_all(fd, p, (size_t)n) < 0)
            break;
        iou_stream_consume(s, (size_t)n);
    }
    iou_stream_free(s); /* leaves fd open: iou_serve closes it */
    return 0;
}

static int echo_buf(int fd, void *arg)
{
    (void)arg;
    iou_buf b;
    while (iou_recv_buf(fd, &b, 0) > 0) {
        ssize_t w = iou_send_all(fd, b.data, b.len);
        iou_buf_release(&b);
        if (w < 0)
            break;
    }
    return 0;
}

static int echo_copy(int fd, void *arg)
{
    (void)arg;
    char buf[COPY_BUF];
    ssize_t n;
    while ((n = iou_recv(fd, buf, sizeof(buf), 0)) > 0)
        if (iou_send_all(fd, buf, (size_t)n) < 0)
            break;
    return 0;
}

/* Every connection: TCP_NODELAY (an echo is a reply: send it now), then the
 * echo loop of the chosen mode. iou_serve closes fd when this returns. */
static int on_connection(int fd, void *arg)
{
    iou_setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    return opt.handler(fd, arg);
}

static int server_task(void *arg)
{
    int lfd = *(int *)arg;
    /* iou_serve: one multishot accept, a task per connection; it closes each
     * fd after its handler and, when cancelled, cancels and reaps them all.
     * Handlers need little stack: the smallest class (16 KiB; only touched
     * pages cost memory). */
    iou_serve_opts so = {.stack_size = 16 * 1024};
    return iou_serve_ex(lfd, on_connection, NULL, &so);
}

static int listen_on(int port, bool reuseport)
{
    iou_listen_opts lo = {.reuseport = reuseport};
    int fd = iou_listen_tcp_ex(opt.host, (uint16_t)port, opt.backlog, &lo);
    if (fd < 0)
        fprintf(stderr, "iou-echo: listen on %s:%d: %s\n", opt.host, port, iou_strerror(fd));
    return fd;
}

static void say_listening(int fd)
{
    if (opt.quiet)
        return;
    printf("iou-echo: listening on %s:%d (pid %d, mode %s, threads %u)\n", opt.host,
           iou_local_port(fd), (int)getpid(), opt.mode, opt.threads);
    fflush(stdout);
}

static int config_bufring(void)
{
    iou_bufring_opts bo = {.count = opt.buffers, .size = opt.buffer_size};
    int err = iou_bufring_config(&bo);
    if (err)
        fprintf(stderr, "iou-echo: buffer ring of %u x %zu bytes: %s\n", opt.buffers,
                opt.buffer_size, iou_strerror(err));
    return err;
}

static int main_task(void *arg)
{
    int err = config_bufring();
    if (err)
        return 1;
    iou_task *srv = iou_spawn_ex(server_task, arg, &(iou_spawn_opts){.name = "server"});
    if (srv == NULL)
        return 1;
    uint64_t prev = IOU_NEVER;
    if (opt.duration > 0)
        prev = iou_deadline_push(iou_now() + (uint64_t)(opt.duration * 1e9));
    /* Until a signal, the --duration deadline, or an error. */
    uint64_t v;
    ssize_t n = iou_read(stop_fd, &v, sizeof(v), -1);
    (void)n;
    iou_deadline_pop(prev); /* the shutdown below must not be cut short */
    /* iou_serve stops accepting, cancels every connection task and waits
     * until each has ended and its socket is closed. */
    iou_cancel(srv);
    err = iou_join(srv);
    return err == 0 || err == -ECANCELED ? 0 : 1;
}

/* ---- --threads N: a loop per thread -------------------------------------- */

/* Loop i's main: serve its own listening socket until iou_loops_stop. */
static int loop_main(void *arg)
{
    int *lfds = arg;
    if (config_bufring())
        return 1;
    iou_serve_opts so = {.stack_size = 16 * 1024};
    int err = iou_serve_ex(lfds[iou_loops_index()], on_connection, NULL, &so);
    return err == 0 || err == -ECANCELED ? 0 : 1;
}

/* Waits on this (plain) thread for a signal or the --duration. */
static void wait_for_stop(void)
{
    struct pollfd p = {.fd = stop_fd, .events = POLLIN};
    int ms = opt.duration > 0 ? (int)(opt.duration * 1000) : -1;
    while (poll(&p, 1, ms) < 0 && errno == EINTR)
        ;
}

static int run_threads(int *lfds)
{
    int err;
    iou_loops_opts lo = {.pin = opt.pin};
    iou_loops *ls = iou_loops_start(opt.threads, loop_main, lfds, &lo, &err);
    if (ls == NULL) {
        fprintf(stderr, "iou-echo: starting %u loops: %s\n", opt.threads, iou_strerror(err));
        return 1;
    }
    say_listening(lfds[0]);
    wait_for_stop();
    iou_loops_stop(ls);
    int results[opt.threads];
    iou_loops_join(ls, results);
    for (unsigned i = 0; i < opt.threads; i++)
        if (results[i])
            return 1;
    return 0;
}

/* One listening socket per loop, all on one port (the first picks it when
 * --port is 0). */
static int listen_all(int *lfds)
{
    int port = opt.port;
    for (unsigned i = 0; i < opt.threads; i++) {
        lfds[i] = listen_on(port, opt.threads > 1);
        if (lfds[i] < 0)
            return -1;
        port = iou_local_port(lfds[i]);
    }
    return 0;
}

static int parse_args(int argc, char **argv)
{
    enum { O_BUFFERS = 256, O_BUFSIZE, O_PIN };
    static const struct option lo[] = {
        {"port", required_argument, NULL, 'p'},
        {"host", required_argument, NULL, 'H'},
        {"backlog", required_argument, NULL, 'b'},
        {"mode", required_argument, NULL, 'm'},
        {"buffers", required_argument, NULL, O_BUFFERS},
        {"buffer-size", required_argument, NULL, O_BUFSIZE},
        {"duration", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'T'},
        {"pin", no_argument, NULL, O_PIN},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    long v;
    char *end;
    while ((ch = getopt_long(argc, argv, "p:H:b:m:t:T:qh", lo, NULL)) != -1) {
        switch (ch) {
        case 'p':
            if (args_long(optarg, 0, 65535, &v))
                return args_bad("iou-echo", "port", optarg);
            opt.port = (int)v;
            break;
        case 'H':
            opt.host = optarg;
            break;
        case 'b':
            if (args_long(optarg, 1, 1 << 20, &v))
                return args_bad("iou-echo", "backlog", optarg);
            opt.backlog = (int)v;
            break;
        case 'm':
            opt.mode = optarg;
            if (strcmp(optarg, "stream") == 0)
                opt.handler = echo_stream;
            else if (strcmp(optarg, "buf") == 0)
                opt.handler = echo_buf;
            else if (strcmp(optarg, "copy") == 0)
                opt.handler = echo_copy;
            else
                return args_bad("iou-echo", "mode", optarg);
            break;
        case O_BUFFERS:
            if (args_long(optarg, 1, 32768, &v) || (v & (v - 1)))
                return args_bad("iou-echo", "buffer count (a power of two up to 32768)", optarg);
            opt.buffers = (unsigned)v;
            break;
        case O_BUFSIZE:
            if (args_long(optarg, 1, 64L << 20, &v))
                return args_bad("iou-echo", "buffer size", optarg);
            opt.buffer_size = (size_t)v;
            break;
        case 't':
            opt.duration = strtod(optarg, &end);
            if (*optarg == 0 || *end || !(opt.duration >= 0))
                return args_bad("iou-echo", "duration", optarg);
            break;
        case 'q':
            opt.quiet = true;
            break;
        case 'T':
            if (args_long(optarg, 1, 1024, &v))
                return args_bad("iou-echo", "thread count", optarg);
            opt.threads = (unsigned)v;
            break;
        case O_PIN:
            opt.pin = true;
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
        return args_bad("iou-echo", "argument", argv[optind]);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc)
        return rc;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* one descriptor per connection */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0) {
        perror("iou-echo: eventfd");
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfds[opt.threads];
    if (listen_all(lfds) < 0)
        return 1;
    if (opt.threads > 1) {
        rc = run_threads(lfds);
    } else {
        say_listening(lfds[0]);
        rc = iou_run(main_task, &lfds[0]);
    }
    for (unsigned i = 0; i < opt.threads; i++)
        close(lfds[i]);
    close(stop_fd);
    if (rc < 0) {
        fprintf(stderr, "iou-echo: %s\n", iou_strerror(rc));
        return 1;
    }
    return rc;
}
