/*
 * The per-loop provided-buffer ring and the borrowed-buffer receive:
 * round trips (every buffer comes home), -ENOBUFS forced with a tiny ring
 * while many connections send (every byte arrives once, in order, and no
 * connection stalls; for iou_recv_buf and for streams), a chatty neighbour
 * that cannot starve a quiet connection (per-stream cap), cancellation and
 * deadlines of a waiting iou_recv_buf (the ring stays whole), configuration
 * errors, and the blocking fallback outside tasks.
 */
#include "check.h"
#include "feature_mask.h"
#include "loop.h"
#include "stream.h" /* internal: which way a stream receives */
#include "testutil.h"

#include <arpa/inet.h>
#include <iou.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------- */

/* A connected TCP pair over 127.0.0.1 (from a task: connect completes through
 * the backlog before the accept). */
static void tcp_pair(int *client, int *server)
{
    int lfd = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(lfd, 16) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
    *client = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(*client >= 0);
    CHECK_EQ(iou_connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
    *server = iou_accept(lfd, NULL, NULL);
    CHECK(*server >= 0);
    CHECK_EQ(iou_close(lfd), 0);
    int one = 1;
    CHECK(setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0);
}

static iou_bufring_stats stats(void)
{
    iou_bufring_stats st;
    CHECK_EQ(iou_bufring_get_stats(&st), 0);
    return st;
}

/* The kernel refused the ring (too old, or restricted): nothing to test. */
static void need_ring(void)
{
    if (stats().count == 0 && strcmp(iou_backend_name(), "epoll") == 0)
        SKIP("provided-buffer rings are io_uring's (epoll receives into heap buffers)");
    if (stats().count == 0)
        SKIP("no provided-buffer ring on this kernel");
}

/* Yields until every buffer is home (a closing stream's last completion may
 * take a loop iteration or two). Bounded. */
static void expect_all_home(void)
{
    for (int i = 0; i < 1000 && stats().available != stats().count; i++)
        iou_yield();
    CHECK_EQ(stats().available, stats().count);
}

/* ---- round trips ----------------------------------------------------------------- */

enum { BULK = 1 << 20 };

typedef struct sender {
    int fd, seed;
    size_t total, max_chunk;
    bool yield_each; /* a separate packet per chunk, others run in between */
} sender;

/* Sends total bytes of pattern `seed` in random chunks, then shuts down. */
static int send_pattern(void *arg)
{
    sender *s = arg;
    unsigned char *buf = malloc(s->max_chunk);
    CHECK(buf != NULL);
    uint64_t rng = (uint64_t)s->seed * 7919 + 1;
    for (size_t sent = 0; sent < s->total;) {
        size_t n = 1 + rng_next(&rng) % s->max_chunk;
        n = n > s->total - sent ? s->total - sent : n;
        pattern_fill(buf, n, (uint32_t)s->seed, sent);
        check_send_all(s->fd, buf, n);
        sent += n;
        if (s->yield_each)
            iou_yield();
    }
    free(buf);
    CHECK(shutdown(s->fd, SHUT_WR) == 0);
    return 0;
}

/* Receives a pattern stream with iou_recv_buf until the end; checks every
 * byte. hold: keep each buffer across a yield before releasing it (so that
 * the ring runs dry when many do it). */
static size_t recv_pattern(int fd, int seed, bool hold)
{
    size_t got = 0;
    for (;;) {
        iou_buf b;
        ssize_t n = iou_recv_buf(fd, &b, 0);
        CHECK(n >= 0);
        if (n == 0) {
            CHECK(b.data == NULL);
            return got;
        }
        CHECK_EQ(b.len, n);
        CHECK_EQ(pattern_mismatch(b.data, b.len, (uint32_t)seed, got), b.len);
        got += b.len;
        if (hold)
            iou_yield();
        iou_buf_release(&b);
        CHECK(b.data == NULL);
    }
}

static int round_trip_main(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    check_send_all(c, "hello", 5);
    iou_buf b;
    CHECK_EQ(iou_recv_buf(s, &b, 0), 5);
    need_ring();
    CHECK(memcmp(b.data, "hello", 5) == 0);
    CHECK(b.owner_ != NULL); /* from the ring, not the heap */
    CHECK_EQ(stats().available, stats().count - 1);
    iou_buf_release(&b);
    iou_buf_release(&b); /* harmless on an empty iou_buf */
    CHECK_EQ(stats().available, stats().count);

    sender tx = {.fd = c, .seed = 1, .total = BULK, .max_chunk = 40000};
    iou_task *t = iou_spawn(send_pattern, &tx);
    CHECK_EQ(recv_pattern(s, 1, false), BULK);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(iou_recv_buf(s, &b, 0), 0); /* the end stays the end */
    CHECK_EQ(stats().available, stats().count);
    CHECK_EQ(stats().enobufs, 0);
    CHECK_EQ(iou_close(c), 0);
    CHECK_EQ(iou_close(s), 0);
    return 0;
}

/* ---- -ENOBUFS: a tiny ring, many senders ------------------------------------------- */

enum { CONNS = 16, PER_CONN = 48 * 1024 };

typedef struct conn {
    int c, s, seed;
    sender tx;
    bool use_stream;
    size_t got;
} conn;

/* Reads one connection through a stream in random-sized reads (1..300 bytes),
 * yielding between them so buffers pile up. */
static size_t stream_pattern(int fd, int seed)
{
    iou_stream *st = iou_stream_open(fd);
    CHECK(st != NULL);
    unsigned char buf[300];
    uint64_t rng = (uint64_t)seed + 17;
    size_t got = 0;
    ssize_t n;
    while ((n = iou_stream_read(st, buf, 1 + rng_next(&rng) % sizeof(buf))) > 0) {
        CHECK_EQ(pattern_mismatch(buf, (size_t)n, (uint32_t)seed, got), n);
        got += (size_t)n;
        iou_yield();
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(iou_stream_close(st), 0);
    return got;
}

static int conn_reader(void *arg)
{
    conn *k = arg;
    k->got = k->use_stream ? stream_pattern(k->s, k->seed) : recv_pattern(k->s, k->seed, true);
    if (!k->use_stream)
        CHECK_EQ(iou_close(k->s), 0);
    return 0;
}

/* Every connection delivers every byte exactly once, in order, while the
 * two-buffer ring is empty most of the time. The watchdog bounds the time:
 * a stalled connection fails the test. */
static int enobufs_main(void *arg)
{
    bool use_stream = arg != NULL;
    CHECK_EQ(iou_bufring_config(&(iou_bufring_opts){.count = 2, .size = 64, .stream_cap = 2}), 0);
    conn k[CONNS];
    iou_task *t[2 * CONNS];
    for (int i = 0; i < CONNS; i++) {
        k[i] = (conn){.seed = 100 + i, .use_stream = use_stream};
        tcp_pair(&k[i].c, &k[i].s);
        k[i].tx = (sender){.fd = k[i].c, .seed = k[i].seed, .total = PER_CONN,
                           .max_chunk = 700, .yield_each = true};
    }
    for (int i = 0; i < CONNS; i++) {
        CHECK((t[2 * i] = iou_spawn(conn_reader, &k[i])) != NULL);
        CHECK((t[2 * i + 1] = iou_spawn(send_pattern, &k[i].tx)) != NULL);
    }
    CHECK_EQ(iou_gather(t, 2 * CONNS, NULL), 0);
    for (int i = 0; i < CONNS; i++) {
        CHECK_EQ(k[i].got, PER_CONN);
        CHECK_EQ(iou_close(k[i].c), 0);
    }
    need_ring();
    iou_bufring_stats st = stats();
    fprintf(stderr, "enobufs (%s): %llu empty-ring receives, %llu fallbacks\n",
            use_stream ? "streams" : "recv_buf", (unsigned long long)st.enobufs,
            (unsigned long long)st.fallbacks);
    /* Streams use the ring only through their multishot receive. */
    if (!use_stream || (iou__features_active(iou__loop()) & IOU__FEAT_MULTISHOT)) {
        CHECK(st.enobufs > 0);
        CHECK(st.fallbacks > 0);
    }
    expect_all_home();
    return 0;
}

/* ---- a chatty neighbour does not starve a quiet connection ------------------------ */

enum { FLOOD_CHUNK = 64 * 1024 };

typedef struct flood {
    int fd;
    bool stop;
    size_t sent;
} flood;

static int flood_sender(void *arg)
{
    flood *f = arg;
    static unsigned char chunk[FLOOD_CHUNK];
    while (!f->stop) {
        ssize_t n = iou_send(f->fd, chunk, sizeof(chunk), 0);
        if (n < 0)
            break;
        f->sent += (size_t)n;
    }
    return 0;
}

typedef struct quiet {
    iou_stream *s;
    bool got;
} quiet;

static int quiet_reader(void *arg)
{
    quiet *q = arg;
    char line[32];
    CHECK_EQ(iou_stream_read_until(q->s, line, sizeof(line), "\n", 1), 5);
    CHECK(memcmp(line, "ping\n", 5) == 0);
    q->got = true;
    return 0;
}

/* The chatty stream's reader lags: one read per 10 yields. Returns the
 * fewest free buffers seen meanwhile. */
static unsigned lagging_reads(iou_stream *chatty, int rounds)
{
    unsigned char buf[512];
    unsigned least = stats().count;
    for (int round = 0; round < rounds; round++) {
        CHECK(iou_stream_read(chatty, buf, sizeof(buf)) > 0);
        for (int i = 0; i < 10; i++) {
            iou_yield();
            least = stats().available < least ? stats().available : least;
        }
    }
    return least;
}

/* Reads until nothing arrives for 50 ms. */
static int drain(iou_stream *s)
{
    unsigned char buf[4096];
    ssize_t n;
    do {
        uint64_t prev = iou_deadline_push(iou_now() + MS(50));
        n = iou_stream_read(s, buf, sizeof(buf));
        iou_deadline_pop(prev);
    } while (n > 0);
    return n == -ETIMEDOUT ? 0 : (int)n;
}

/*
 * Ring of 16 buffers, cap 4 per stream. A peer floods one stream whose
 * reader takes only a little now and then. The kernel's first burst may take
 * many buffers; once the stream reached its cap it receives into its
 * reader's buffer, holding none, so the ring stays free. A quiet connection's message then
 * arrives within a few loop iterations, from the ring (no empty-ring
 * receive happens meanwhile). Once the reader catches up, the stream goes
 * back to its multishot receive.
 */
static int chatty_main(void *arg)
{
    (void)arg;
    if (!iou__feature_allowed(iou__loop(), IOU__FEAT_MULTISHOT)) {
        fprintf(stderr, "chatty: not run (IOU_TEST_DISABLE=multishot: streams never pause)\n");
        return 0;
    }
    CHECK_EQ(iou_bufring_config(&(iou_bufring_opts){.count = 16, .size = 1024, .stream_cap = 4}),
             0);
    int cc, cs, qc, qs;
    tcp_pair(&cc, &cs);
    tcp_pair(&qc, &qs);
    iou_stream *chatty = iou_stream_open(cs), *qs_stream = iou_stream_open(qs);
    CHECK(chatty && qs_stream);
    flood f = {.fd = cc};
    iou_task *ft = iou_spawn(flood_sender, &f);
    quiet q = {.s = qs_stream};
    iou_task *qt = iou_spawn(quiet_reader, &q);
    lagging_reads(chatty, 1); /* arms the chatty multishot */
    need_ring();
    for (int i = 0; i < 200 && stats().paused == 0; i++)
        iou_yield();
    CHECK(stats().paused > 0);
    for (int i = 0; i < 200 && stats().available < stats().count - 1; i++)
        lagging_reads(chatty, 1); /* the first burst drains */
    uint64_t enobufs = stats().enobufs;
    unsigned least = lagging_reads(chatty, 50);
    fprintf(stderr, "chatty: fewest free buffers %u of %u while lagging (cap 4), %llu pauses\n",
            least, stats().count, (unsigned long long)stats().paused);
    CHECK(least >= stats().count - 2);
    check_send_all(qc, "ping\n", 5);
    int spins = 0;
    while (!q.got && spins < 1000) {
        lagging_reads(chatty, 1);
        spins++;
    }
    fprintf(stderr, "chatty: the quiet message arrived after %d lagging reads\n", spins);
    CHECK(q.got);
    CHECK(spins <= 3);
    CHECK_EQ(iou_join(qt), 0);
    CHECK_EQ(stats().enobufs, enobufs);
    CHECK(chatty->direct); /* no ring buffer while it lags */
    f.stop = true;
    CHECK_EQ(drain(chatty), 0);
    CHECK_EQ(iou_join(ft), 0);
    CHECK(!chatty->direct); /* caught up: multishot again */
    CHECK_EQ(iou_stream_close(chatty), 0);
    CHECK_EQ(iou_stream_close(qs_stream), 0);
    CHECK_EQ(iou_close(cc), 0);
    CHECK_EQ(iou_close(qc), 0);
    expect_all_home();
    return 0;
}

/* ---- cancellation and deadlines of a waiting iou_recv_buf --------------------------- */

typedef struct waiter {
    int fd;
    iou_buf b;
    ssize_t res;
    uint64_t deadline_ms; /* 0: none */
} waiter;

static int recv_waiter(void *arg)
{
    waiter *w = arg;
    uint64_t prev = w->deadline_ms ? iou_deadline_push(iou_now() + MS(w->deadline_ms)) : 0;
    w->res = iou_recv_buf(w->fd, &w->b, 0);
    if (w->deadline_ms)
        iou_deadline_pop(prev);
    return 0;
}

static void settle_tasks(void)
{
    for (int i = 0; i < 5; i++)
        iou_yield();
}

static int cancel_main(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    iou_buf b;
    check_send_all(c, "x", 1);
    CHECK_EQ(iou_recv_buf(s, &b, 0), 1); /* creates the ring */
    iou_buf_release(&b);
    need_ring();

    waiter w = {.fd = s};
    iou_task *t = iou_spawn(recv_waiter, &w);
    settle_tasks(); /* parked, its receive in the kernel */
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(w.res, -ECANCELED);
    CHECK(w.b.data == NULL);
    CHECK_EQ(stats().available, stats().count);

    w = (waiter){.fd = s, .deadline_ms = 20};
    t = iou_spawn(recv_waiter, &w);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(w.res, -ETIMEDOUT);
    CHECK_EQ(stats().available, stats().count);

    /* Data and cancellation in the same batch: either the data (kept) or the
     * cancellation (the data stays in the socket). Nothing is lost. */
    w = (waiter){.fd = s};
    t = iou_spawn(recv_waiter, &w);
    settle_tasks();
    check_send_all(c, "abc", 3);
    iou_cancel(t);
    CHECK_EQ(iou_join(t), 0);
    CHECK(w.res == 3 || w.res == -ECANCELED);
    if (w.res == -ECANCELED)
        CHECK_EQ(iou_recv_buf(s, &w.b, 0), 3);
    CHECK(memcmp(w.b.data, "abc", 3) == 0);
    iou_buf_release(&w.b);
    CHECK_EQ(stats().available, stats().count);
    CHECK_EQ(iou_bufring_config(NULL), -EBUSY); /* in use */
    CHECK_EQ(iou_close(c), 0);
    CHECK_EQ(iou_close(s), 0);
    return 0;
}

/* ---- configuration ---------------------------------------------------------------- */

static int config_main(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_bufring_get_stats(NULL), -EINVAL);
    CHECK_EQ(stats().count, 0); /* not created before first use */
    CHECK_EQ(iou_bufring_config(&(iou_bufring_opts){.count = 3}), -EINVAL);
    CHECK_EQ(iou_bufring_config(&(iou_bufring_opts){.count = 65536}), -EINVAL);
    CHECK_EQ(iou_bufring_config(&(iou_bufring_opts){.size = (size_t)1 << 30}), -EINVAL);
    CHECK_EQ(iou_bufring_config(&(iou_bufring_opts){.count = 8, .stream_cap = 9}), -EINVAL);
    CHECK_EQ(iou_bufring_config(&(iou_bufring_opts){.count = 8, .size = 100}), 0);
    int c, s;
    tcp_pair(&c, &s);
    check_send_all(c, "0123456789", 10);
    iou_buf b;
    CHECK_EQ(iou_recv_buf(s, &b, 0), 10);
    need_ring();
    CHECK_EQ(stats().count, 8);
    CHECK_EQ(stats().size, 100);
    iou_buf_release(&b);
    CHECK_EQ(iou_bufring_config(NULL), -EBUSY);
    CHECK_EQ(iou_recv_buf(s, NULL, 0), -EINVAL);
    CHECK_EQ(iou_close(c), 0);
    CHECK_EQ(iou_close(s), 0);
    return 0;
}

/* ---- outside tasks --------------------------------------------------------------- */

static void blocking_fallback(void)
{
    CHECK_EQ(iou_bufring_config(NULL), -EPERM);
    iou_bufring_stats st;
    CHECK_EQ(iou_bufring_get_stats(&st), -EPERM);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[1], "plain", 5) == 5);
    iou_buf b;
    CHECK_EQ(iou_recv_buf(sv[0], &b, 0), 5);
    CHECK(b.owner_ == NULL && memcmp(b.data, "plain", 5) == 0);
    iou_buf_release(&b);
    close(sv[1]);
    CHECK_EQ(iou_recv_buf(sv[0], &b, 0), 0);
    CHECK(b.data == NULL);
    close(sv[0]);
}

/* ---- one ring per loop: loops on two threads at once -------------------------------- */

static void *thread_round_trip(void *arg)
{
    (void)arg;
    CHECK_EQ(run_or_skip(round_trip_main, NULL), 0);
    return NULL;
}

static void two_loops(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, thread_round_trip, NULL) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
}

int main(void)
{
    watchdog(60);
    int fds = count_fds();
    blocking_fallback();
    CHECK_EQ(run_or_skip(config_main, NULL), 0);
    CHECK_EQ(run_or_skip(round_trip_main, NULL), 0);
    CHECK_EQ(run_or_skip(cancel_main, NULL), 0);
    CHECK_EQ(run_or_skip(enobufs_main, NULL), 0);
    CHECK_EQ(run_or_skip(enobufs_main, "streams"), 0);
    CHECK_EQ(run_or_skip(chatty_main, NULL), 0);
    two_loops();
    CHECK_EQ(count_fds(), fds);
    puts("test_bufring: ok");
    return 0;
}
