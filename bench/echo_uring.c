/*
 * echo_uring: the raw liburing baseline for bench/echo-compare. A hand-written
 * completion loop, the way one would write a fast io_uring echo server without
 * any framework:
 *
 *   - ring with SINGLE_ISSUER + DEFER_TASKRUN (else COOP_TASKRUN), registered
 *     ring fd, one io_uring_submit_and_wait per batch of completions;
 *   - one multishot accept for the listener;
 *   - one multishot recv per connection, drawing from a provided buffer ring
 *     (liburing 2.3: mmap + io_uring_register_buf_ring + buf_ring_add/advance);
 *   - the echo is sent straight from the provided buffer; the buffer returns
 *     to the ring when its send has completed (returns are batched: one ring
 *     advance per batch of completions).
 *
 * Sends on one connection are kept in order: at most one is in flight, later
 * data waits in a small per-connection queue (empty in the common case).
 *
 * Usage: echo_uring [--port PORT] [--duration SEC]
 * Listens on 127.0.0.1 (default port 7000). Stops on SIGINT / SIGTERM, or
 * after SEC seconds (an io_uring timeout: also works under valgrind, which
 * holds signals back while the process waits in io_uring_enter).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    RING_ENTRIES = 1024,
    NBUFS = 1024,   /* provided buffers (a power of two), as iou-echo's default */
    BUF_SIZE = 4096,
    BGID = 0,
};

enum { UD_ACCEPT = 1, UD_RECV = 2, UD_SEND = 3, UD_TIMEOUT = 4 };
#define UD(type, fd) ((uint64_t)(type) << 32 | (uint32_t)(fd))

typedef struct chunk {
    uint16_t bid;
    uint32_t off, len;
} chunk;

typedef struct conn {
    bool open;
    bool recv_armed;  /* a multishot recv is in flight */
    bool starved;     /* recv ended with ENOBUFS: re-arm once buffers return */
    bool eof;         /* peer closed or error: close when nothing is in flight */
    bool sending;     /* q[qhead] is the send in flight */
    chunk *q;         /* pending sends (ring of qcap) */
    uint32_t qhead, qlen, qcap;
} conn;

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static conn *conns;
static int max_fd;
static int lfd;
static unsigned returned; /* buffers added to the ring since the last advance */
static int *starved;      /* fds waiting for buffers */
static int nstarved;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe;
    while ((sqe = io_uring_get_sqe(&ring)) == NULL)
        io_uring_submit(&ring);
    return sqe;
}

static void arm_accept(void)
{
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, UD(UD_ACCEPT, lfd));
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, UD(UD_RECV, fd));
    conns[fd].recv_armed = true;
}

static void submit_send(int fd, const chunk *ch)
{
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_send(sqe, fd, bufs + (size_t)ch->bid * BUF_SIZE + ch->off, ch->len - ch->off,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, UD(UD_SEND, fd));
    conns[fd].sending = true;
}

static void return_buffer(uint16_t bid)
{
    io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, bid,
                          io_uring_buf_ring_mask(NBUFS), (int)returned);
    returned++;
}

static void maybe_close(int fd)
{
    conn *c = &conns[fd];
    if (!c->eof || c->recv_armed || c->sending)
        return;
    for (uint32_t i = 0; i < c->qlen; i++)
        return_buffer(c->q[(c->qhead + i) % c->qcap].bid);
    free(c->q);
    memset(c, 0, sizeof(*c));
    close(fd);
}

static int enqueue(conn *c, chunk ch)
{
    if (c->qlen == c->qcap) {
        uint32_t ncap = c->qcap ? c->qcap * 2 : 4;
        chunk *nq = malloc(sizeof(chunk) * ncap);
        if (nq == NULL)
            return -1;
        for (uint32_t i = 0; i < c->qlen; i++)
            nq[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = nq;
        c->qhead = 0;
        c->qcap = ncap;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = ch;
    c->qlen++;
    return 0;
}

static void on_accept(int res, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE) && !stop)
        arm_accept();
    if (res < 0)
        return;
    if (res >= max_fd) {
        close(res);
        return;
    }
    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    conns[res].open = true;
    arm_recv(res);
}

static void on_recv(int fd, int res, uint32_t flags)
{
    conn *c = &conns[fd];
    if (!(flags & IORING_CQE_F_MORE))
        c->recv_armed = false;
    if (res > 0) {
        chunk ch = {.bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT), .off = 0,
                    .len = (uint32_t)res};
        if (enqueue(c, ch) < 0) {
            return_buffer(ch.bid);
            c->eof = true;
        } else if (!c->sending) {
            submit_send(fd, &c->q[c->qhead]);
        }
        if (!c->recv_armed && !c->eof)
            arm_recv(fd); /* the multishot ended (e.g. the buffers ran short) */
    } else if (res == -ENOBUFS) {
        if (!c->recv_armed) {
            c->starved = true;
            starved[nstarved++] = fd;
        }
    } else {
        c->eof = true; /* 0: the peer closed; <0: an error */
    }
    maybe_close(fd);
}

static void on_send(int fd, int res)
{
    conn *c = &conns[fd];
    c->sending = false;
    chunk *ch = &c->q[c->qhead];
    if (res < 0) {
        c->eof = true;
    } else if ((ch->off += (uint32_t)res) < ch->len) {
        submit_send(fd, ch); /* short send: the rest, in order */
        return;
    } else {
        return_buffer(ch->bid);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
        if (c->qlen && !c->eof)
            submit_send(fd, &c->q[c->qhead]);
    }
    if (c->eof && c->recv_armed) {
        /* Stop receiving; the recv's final completion closes the socket. */
        shutdown(fd, SHUT_RD);
    }
    maybe_close(fd);
}

static void rearm_starved(void)
{
    for (int i = 0; i < nstarved; i++) {
        int fd = starved[i];
        conns[fd].starved = false;
        if (conns[fd].open && !conns[fd].eof && !conns[fd].recv_armed)
            arm_recv(fd);
    }
    nstarved = 0;
}

static int setup_ring(void)
{
    static const unsigned modes[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int ret = -EINVAL;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]) && ret == -EINVAL; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = modes[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = RING_ENTRIES * 8;
        ret = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
    }
    if (ret < 0)
        return ret;
    io_uring_register_ring_fd(&ring);

    size_t rsize = NBUFS * sizeof(struct io_uring_buf);
    br = mmap(NULL, rsize, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    bufs = malloc((size_t)NBUFS * BUF_SIZE);
    if (br == MAP_FAILED || bufs == NULL)
        return -ENOMEM;
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NBUFS,
                                   .bgid = BGID};
    ret = io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret < 0)
        return ret;
    for (unsigned i = 0; i < NBUFS; i++)
        return_buffer((uint16_t)i);
    io_uring_buf_ring_advance(br, (int)returned);
    returned = 0;
    return 0;
}

int main(int argc, char **argv)
{
    int port = 7000;
    double duration = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc) {
            duration = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--port PORT] [--duration SEC]\n", argv[0]);
            return 2;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    max_fd = (int)(rl.rlim_cur > 1 << 20 ? 1 << 20 : rl.rlim_cur);
    conns = calloc((size_t)max_fd, sizeof(conn));
    starved = calloc((size_t)max_fd, sizeof(int));
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: enter returns -EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
    if (conns == NULL || starved == NULL || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(lfd, 4096) < 0) {
        perror("echo_uring: listen");
        return 1;
    }
    int ret = setup_ring();
    if (ret < 0) {
        fprintf(stderr, "echo_uring: io_uring setup: %s\n", strerror(-ret));
        return 1;
    }
    arm_accept();
    struct __kernel_timespec stop_at = {.tv_sec = (long long)duration,
                                        .tv_nsec = (long long)((duration - (long long)duration) * 1e9)};
    if (duration > 0) {
        struct io_uring_sqe *sqe = get_sqe();
        io_uring_prep_timeout(sqe, &stop_at, 0, 0);
        io_uring_sqe_set_data64(sqe, UD(UD_TIMEOUT, 0));
    }
    printf("echo_uring: listening on 127.0.0.1:%d (pid %d)\n", port, (int)getpid());
    fflush(stdout);

    while (!stop) {
        ret = io_uring_submit_and_wait(&ring, 1);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
            fprintf(stderr, "echo_uring: io_uring_enter: %s\n", strerror(-ret));
            return 1;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            int fd = (int)(uint32_t)cqe->user_data;
            switch (cqe->user_data >> 32) {
            case UD_ACCEPT:
                on_accept(cqe->res, cqe->flags);
                break;
            case UD_RECV:
                on_recv(fd, cqe->res, cqe->flags);
                break;
            case UD_SEND:
                on_send(fd, cqe->res);
                break;
            case UD_TIMEOUT:
                stop = 1;
                break;
            }
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        if (returned) {
            io_uring_buf_ring_advance(br, (int)returned);
            returned = 0;
            if (nstarved)
                rearm_starved();
        }
    }
    return 0;
}
