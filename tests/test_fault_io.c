/*
 * Fault injection end to end: many MiB through files (positioned and at the
 * file position), pipes, Unix and TCP sockets, buffered streams and
 * borrowed-buffer receives while a tenth of the operations fail or come back
 * short. The application retries at its own level: a transient error
 * (EINTR, EAGAIN, ENOMEM) is retried, any other breaks the "session" (the
 * connection is closed and a new one resumes at the first byte the reader
 * has not verified). Every byte the reader sees is checked against its
 * position in the pattern, so a lost or duplicated byte fails the test.
 *
 * Every call is watched: when the injector failed the operation behind a
 * call (its error counter moved during the call), the call must have
 * returned an error, unless it is a library loop documented to retry it
 * (send_all, stream reads and writes: counted as absorbed). At the end the
 * injected errors must equal those surfaced plus those absorbed.
 *
 * IOU_FAULT=rate:seed replays a run (else the rate is 0.1 and the seed is
 * printed); IOU_FAULT_MIB sets the MiB per transport (default 16).
 */
#include "check.h"
#include "fault.h"
#include "loop.h"
#include "loopcheck.h"
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

enum { CHUNK = 64 * 1024 };

typedef enum { T_FILE_POS, T_FILE_CUR, T_PIPE, T_UNIX, T_TCP, T_STREAM, T_RECV_BUF, T_COUNT } kind;
static const char *const names[T_COUNT] = {"file (offset)", "file (position)", "pipe",
                                           "unix socket", "tcp (send_all)", "stream",
                                           "recv_buf"};

static uint64_t total_bytes;
static uint64_t surfaced, absorbed, real_errors, sessions, verified;
static int lfd = -1; /* a TCP listener on 127.0.0.1 */

/* ---- watching calls ------------------------------------------------------------- */

/* Injected errors by the task that submitted the operation: the reader is
 * the main task, the writer another one (their calls overlap in time). */
static iou_task *main_task_t;
static uint64_t injected_reader, injected_writer;

static void observe(void *ctx, iou_task *t, int err)
{
    (void)ctx;
    (void)err;
    CHECK(t != NULL); /* every faulted operation here belongs to a task */
    if (t == main_task_t)
        injected_reader++;
    else
        injected_writer++;
}

static uint64_t injected_now(void)
{
    return iou_self() == main_task_t ? injected_reader : injected_writer;
}

static uint64_t injected_total(void)
{
    return injected_reader + injected_writer;
}

static bool transient(long r)
{
    return r == -EINTR || r == -EAGAIN || r == -ENOMEM;
}

/* Checks a call's result against what the injector did during it (errors:
 * how many operations it failed meanwhile). A library loop may absorb
 * failures (may_absorb); a single operation must report its own. */
static void account(long r, uint64_t errors, bool may_absorb)
{
    if (errors == 0) {
        real_errors += r < 0;
        return;
    }
    bool injectable = r == -EINTR || r == -EAGAIN || r == -ENOMEM || r == -EIO || r == -ECONNRESET;
    if (r < 0 && !injectable && may_absorb) { /* retried them all, then a real error */
        absorbed += errors;
        real_errors++;
        return;
    }
    if (r < 0) {
        CHECK(injectable);
        surfaced++;
        absorbed += errors - 1;
        return;
    }
    CHECK(may_absorb); /* an injected failure must not read as a success */
    absorbed += errors;
}

#define WATCH(r, call, may_absorb)                      \
    do {                                                \
        uint64_t before_ = injected_now();              \
        r = (call);                                     \
        account((long)(r), injected_now() - before_, may_absorb); \
    } while (0)

/* ---- files ---------------------------------------------------------------------- */

static int temp_file(void)
{
    char path[] = "/tmp/iou-fault-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    return fd;
}

/* Writes the whole pattern with positioned (cur = false) or file-position
 * writes, then reads it back the same way. A failed call changed nothing:
 * retry it. */
static void file_run(bool cur)
{
    int fd = temp_file();
    static unsigned char buf[CHUNK];
    uint64_t seed = rng_seed() , pos = 0;
    while (pos < total_bytes) {
        size_t len = 1 + rng_next(&seed) % CHUNK;
        len = len > total_bytes - pos ? (size_t)(total_bytes - pos) : len;
        pattern_fill(buf, len, 7, pos);
        ssize_t n;
        WATCH(n, iou_write(fd, buf, len, cur ? -1 : (int64_t)pos), false);
        CHECK(n != 0);
        if (n > 0)
            pos += (uint64_t)n;
    }
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    pos = 0;
    while (pos < total_bytes) {
        size_t len = 1 + rng_next(&seed) % CHUNK;
        ssize_t n;
        /* iou_read of a regular file may absorb one: a partial page-cache hit
         * reads the rest through the ring and, if that fails, returns the
         * bytes it has (documented; the next call meets the failure). */
        WATCH(n, iou_read(fd, buf, len, cur ? -1 : (int64_t)pos), true);
        CHECK(n != 0); /* not at the end yet */
        if (n < 0)
            continue;
        CHECK_EQ(pattern_mismatch(buf, (size_t)n, 7, pos), n);
        pos += (uint64_t)n;
        verified += (uint64_t)n;
    }
    ssize_t n;
    do
        WATCH(n, iou_read(fd, buf, CHUNK, cur ? -1 : (int64_t)pos), false);
    while (n < 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(iou_close(fd), 0);
}

/* ---- connections ------------------------------------------------------------------ */

typedef struct session {
    kind k;
    int wfd, rfd;
    iou_stream *ws, *rs;
    uint64_t from; /* where the writer starts: the first byte not yet verified */
    uint64_t seed;
} session;

static void open_pair(session *s)
{
    int p[2];
    switch (s->k) {
    case T_PIPE:
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        s->rfd = p[0], s->wfd = p[1];
        return;
    case T_TCP: {
        s->wfd = iou_dial_tcp("127.0.0.1", (uint16_t)iou_local_port(lfd));
        CHECK(s->wfd >= 0);
        s->rfd = iou_accept(lfd, NULL, NULL);
        CHECK(s->rfd >= 0);
        return;
    }
    default:
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) == 0);
        s->rfd = p[0], s->wfd = p[1];
    }
    if (s->k == T_STREAM) {
        CHECK((s->ws = iou_stream_open(s->wfd)) != NULL);
        CHECK((s->rs = iou_stream_open(s->rfd)) != NULL);
    }
}

/* One write step of len bytes at buf: the bytes that surely went out (0 if
 * unknown) and whether the session goes on. */
static bool write_step(session *s, const unsigned char *buf, size_t len, size_t *out)
{
    ssize_t n;
    *out = 0;
    switch (s->k) {
    case T_PIPE:
        WATCH(n, iou_write(s->wfd, buf, len, -1), false);
        break;
    case T_TCP:
        WATCH(n, iou_send_all_ex(s->wfd, buf, len, 0, out), true);
        return n >= 0 || transient(n);
    case T_STREAM:
        WATCH(n, iou_stream_write(s->ws, buf, len), true);
        if (n == (ssize_t)len)
            *out = len;
        return n >= 0; /* after an error some prefix went out: start again */
    default:
        WATCH(n, iou_send(s->wfd, buf, len, 0), false);
    }
    if (n > 0)
        *out = (size_t)n;
    return n >= 0 || transient(n);
}

static int writer(void *arg)
{
    session *s = arg;
    static unsigned char buf[CHUNK];
    uint64_t pos = s->from;
    while (pos < total_bytes) {
        size_t len = 1 + rng_next(&s->seed) % CHUNK;
        len = len > total_bytes - pos ? (size_t)(total_bytes - pos) : len;
        pattern_fill(buf, len, 11, pos);
        size_t out;
        bool go_on = write_step(s, buf, len, &out);
        pos += out;
        if (!go_on)
            break;
    }
    if (s->ws)
        CHECK_EQ(iou_stream_close(s->ws), 0);
    else
        CHECK_EQ(iou_close(s->wfd), 0);
    return 0;
}

/* One read step into buf (or a borrowed buffer): the count (0: end) or an
 * error. */
static ssize_t read_step(session *s, unsigned char *buf, size_t cap, iou_buf *b)
{
    ssize_t n;
    switch (s->k) {
    case T_PIPE:
        WATCH(n, iou_read(s->rfd, buf, cap, -1), false);
        return n;
    case T_STREAM:
        WATCH(n, iou_stream_read(s->rs, buf, cap), true);
        return n;
    case T_RECV_BUF:
        WATCH(n, iou_recv_buf(s->rfd, b, 0), false);
        return n;
    default:
        WATCH(n, iou_recv(s->rfd, buf, cap, 0), false);
        return n;
    }
}

/* Reads and verifies until the end of the session; returns the position
 * reached. */
static uint64_t reader(session *s)
{
    static unsigned char buf[CHUNK];
    uint64_t pos = s->from;
    while (pos < total_bytes) {
        iou_buf b = {0};
        size_t cap = 1 + rng_next(&s->seed) % CHUNK;
        ssize_t n = read_step(s, buf, cap, &b);
        if (n < 0 && transient(n))
            continue;
        if (n <= 0)
            break;
        const unsigned char *data = b.data ? b.data : buf;
        CHECK_EQ(pattern_mismatch(data, (size_t)n, 11, pos), n);
        iou_buf_release(&b);
        pos += (uint64_t)n;
        verified += (uint64_t)n;
    }
    if (s->rs)
        CHECK_EQ(iou_stream_close(s->rs), 0);
    else
        CHECK_EQ(iou_close(s->rfd), 0);
    return pos;
}

static void connection_run(kind k)
{
    uint64_t pos = 0, seed = rng_seed();
    while (pos < total_bytes) {
        session s = {.k = k, .from = pos, .seed = seed + sessions};
        open_pair(&s);
        iou_task *w = spawn_checked(writer, &s);
        uint64_t reached = reader(&s);
        CHECK_EQ(iou_join(w), 0);
        CHECK(reached >= pos);
        pos = reached;
        sessions++;
    }
}

/* ---- main ---------------------------------------------------------------------- */

static int main_task(void *arg)
{
    (void)arg;
    iou_loop *l = iou__loop();
    if (iou__fault_get_stats(l) == NULL) /* no IOU_FAULT: inject anyway */
        CHECK_EQ(iou__fault_enable(l, 0.1, rng_seed()), 0);
    main_task_t = iou_self();
    iou__fault_observe(l, observe, NULL);
    lfd = iou_listen_tcp("127.0.0.1", 0, 16);
    CHECK(lfd >= 0);
    for (kind k = 0; k < T_COUNT; k++) {
        uint64_t e0 = injected_total(), v0 = verified;
        if (k == T_FILE_POS || k == T_FILE_CUR)
            file_run(k == T_FILE_CUR);
        else
            connection_run(k);
        CHECK_EQ(verified - v0, total_bytes);
        fprintf(stderr, "%-16s %llu bytes verified, %llu injected errors\n", names[k],
                (unsigned long long)(verified - v0), (unsigned long long)(injected_total() - e0));
    }
    CHECK_EQ(iou_close(lfd), 0);
    const iou__fault_stats *st = iou__fault_get_stats(l);
    fprintf(stderr,
            "fault_io: %llu bytes verified, %llu operations, %llu injected errors (%llu "
            "surfaced, %llu absorbed by library retries), %llu shortened, %llu real errors, "
            "%llu sessions, 0 lost or duplicated\n",
            (unsigned long long)verified, (unsigned long long)st->considered,
            (unsigned long long)st->errors, (unsigned long long)surfaced,
            (unsigned long long)absorbed, (unsigned long long)st->shorts,
            (unsigned long long)real_errors, (unsigned long long)sessions);
    CHECK_EQ(st->errors, injected_total());
    CHECK_EQ(st->errors, surfaced + absorbed);
    CHECK(st->errors > 0 && st->shorts > 0);
    check_nothing_leaked();
    return 0;
}

int main(void)
{
    watchdog(110);
    signal(SIGPIPE, SIG_IGN);
    const char *mib = getenv("IOU_FAULT_MIB");
    total_bytes = (uint64_t)(mib ? strtoull(mib, NULL, 0) : 16) << 20;
    CHECK_EQ(run_or_skip(main_task, NULL), 0);
    return 0;
}
