/*
 * iou_serve: an echo server for many clients; cancellation ends every
 * handler and leaks no fd; a deadline ends it too; a connection limit holds;
 * under a tiny RLIMIT_NOFILE the server keeps serving the connections it
 * has, does not spin while accept fails with EMFILE, and accepts the waiting
 * clients once connections close; errors and misuse.
 */
#include "check.h"
#include "testutil.h"

#include <fcntl.h>
#include <iou.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the server under test ---------------------------------------------------------- */

typedef struct stats {
    int started, ended, running, peak;
    int cancelled;     /* handlers whose recv returned -ECANCELED */
    int bytes;
    iou_event started_ev; /* set when started reaches want_started */
    int want_started;
} stats;

/* Echoes until end of stream (or an error: cancellation). */
static int echo_handler(int fd, void *arg)
{
    stats *st = arg;
    if (++st->running > st->peak)
        st->peak = st->running;
    if (++st->started == st->want_started)
        iou_event_set(&st->started_ev);
    char buf[4096];
    ssize_t n;
    while ((n = iou_recv(fd, buf, sizeof(buf), 0)) > 0) {
        if (iou_send_all(fd, buf, (size_t)n) < 0)
            break;
        st->bytes += (int)n;
    }
    if (n == -ECANCELED)
        st->cancelled++;
    st->running--;
    st->ended++;
    return 0;
}

typedef struct server {
    int lfd;
    stats st;
    iou_serve_opts opts;
} server;

static int serve_task(void *arg)
{
    server *s = arg;
    return iou_serve_ex(s->lfd, echo_handler, &s->st, &s->opts);
}

static void server_init(server *s, int want_started)
{
    memset(s, 0, sizeof(*s));
    s->lfd = iou_listen_tcp("127.0.0.1", 0, 0);
    CHECK(s->lfd >= 0);
    iou_event_init(&s->st.started_ev);
    s->st.want_started = want_started;
}

static uint16_t port_of(const server *s)
{
    int port = iou_local_port(s->lfd);
    CHECK(port > 0);
    return (uint16_t)port;
}

/* Cancels the serving task: it must return -ECANCELED only after every
 * handler ended. */
static void server_stop(server *s, iou_task *t)
{
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), -ECANCELED);
    CHECK_EQ(s->st.running, 0);
    CHECK_EQ(s->st.started, s->st.ended);
    CHECK_EQ(iou_close(s->lfd), 0);
}

/* ---- clients ------------------------------------------------------------------------ */

/* A step all clients pass: each arrives (counted; the test learns when `want`
 * have) and then waits until the test opens it. */
typedef struct gate {
    int arrived, want;
    iou_event reached, open;
} gate;

static void gate_init(gate *g, int want)
{
    *g = (gate){.want = want};
    iou_event_init(&g->reached);
    iou_event_init(&g->open);
}

static void gate_pass(gate *g)
{
    if (++g->arrived == g->want)
        iou_event_set(&g->reached);
    CHECK_EQ(iou_event_wait(&g->open), 0);
}

typedef struct client {
    uint16_t port;
    int id, fd;
    size_t len;         /* bytes to send and get back, per round */
    gate *echoed;       /* if set: after the first echo, pass this gate, ... */
    gate *echoed_again; /* ... echo once more and pass this one before closing */
} client;

static void recv_exact(int fd, unsigned char *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = iou_recv(fd, buf + got, len - got, 0);
        CHECK(n > 0);
        got += (size_t)n;
    }
}

static void client_connect(client *c)
{
    if (c->fd < 0) {
        c->fd = iou_dial_tcp("127.0.0.1", c->port);
        CHECK(c->fd >= 0);
        return;
    }
    /* a socket made before the fd limit was lowered */
    struct sockaddr_storage a;
    socklen_t len;
    CHECK_EQ(iou_addr_parse("127.0.0.1", c->port, &a, &len), 0);
    CHECK_EQ(iou_connect(c->fd, (struct sockaddr *)&a, len), 0);
}

/* One message of c->len bytes and its echo, checked. */
static void echo_round(client *c, uint64_t start)
{
    unsigned char *out = malloc(c->len), *in = malloc(c->len);
    CHECK(out && in);
    pattern_fill(out, c->len, (uint32_t)c->id, start);
    CHECK_EQ(iou_send_all(c->fd, out, c->len), c->len);
    recv_exact(c->fd, in, c->len);
    CHECK_EQ(pattern_mismatch(in, c->len, (uint32_t)c->id, start), c->len);
    free(out);
    free(in);
}

/* Echo rounds (holding the connection at the gates), then end of stream
 * both ways. */
static int echo_client(void *arg)
{
    client *c = arg;
    client_connect(c);
    echo_round(c, 0);
    if (c->echoed) {
        gate_pass(c->echoed);
        echo_round(c, c->len);
        gate_pass(c->echoed_again);
    }
    CHECK_EQ(iou_shutdown(c->fd, SHUT_WR), 0);
    char b;
    CHECK_EQ(iou_recv(c->fd, &b, 1, 0), 0);
    CHECK_EQ(iou_close(c->fd), 0);
    return 0;
}

static client *clients_new(int n, uint16_t port, size_t len)
{
    client *c = calloc((size_t)n, sizeof(*c));
    CHECK(c != NULL);
    for (int i = 0; i < n; i++)
        c[i] = (client){.port = port, .id = i, .fd = -1, .len = len};
    return c;
}

static void clients_join(iou_task **t, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ(iou_join(t[i]), 0);
}

/* ---- many clients ------------------------------------------------------------------- */

enum { MANY = 300 };

static int many_main(void *arg)
{
    (void)arg;
    server s;
    server_init(&s, 0);
    iou_task *st = iou_spawn(serve_task, &s);
    client *c = clients_new(MANY, port_of(&s), 0);
    iou_task *t[MANY];
    for (int i = 0; i < MANY; i++) {
        c[i].len = 1 + (size_t)i * 97 % 20000;
        t[i] = iou_spawn(echo_client, &c[i]);
    }
    clients_join(t, MANY);
    int total = 0;
    for (int i = 0; i < MANY; i++)
        total += (int)c[i].len;
    /* Every client saw its end of stream: every handler has returned. */
    CHECK_EQ(s.st.ended, MANY);
    CHECK_EQ(s.st.bytes, total);
    CHECK(s.st.peak > 1); /* they ran concurrently */
    server_stop(&s, st);
    CHECK_EQ(s.st.cancelled, 0);
    free(c);
    return 0;
}

/* ---- cancellation with live connections ------------------------------------------------ */

enum { LIVE = 50 };

static int hold_client(void *arg)
{
    client *c = arg;
    c->fd = iou_dial_tcp("127.0.0.1", c->port);
    CHECK(c->fd >= 0);
    char b;
    CHECK_EQ(iou_recv(c->fd, &b, 1, 0), 0); /* until the server closes */
    CHECK_EQ(iou_close(c->fd), 0);
    return 0;
}

static int cancel_main(void *arg)
{
    (void)arg;
    server s;
    server_init(&s, LIVE);
    iou_task *st = iou_spawn(serve_task, &s);
    client *c = clients_new(LIVE, port_of(&s), 0);
    iou_task *t[LIVE];
    for (int i = 0; i < LIVE; i++)
        t[i] = iou_spawn(hold_client, &c[i]);
    CHECK_EQ(iou_event_wait(&s.st.started_ev), 0); /* all handlers are in recv */
    server_stop(&s, st);
    CHECK_EQ(s.st.ended, LIVE);
    CHECK_EQ(s.st.cancelled, LIVE);
    clients_join(t, LIVE); /* each saw its connection closed */
    free(c);
    return 0;
}

/* Cancelled while connections keep arriving: whatever the kernel accepts
 * from then on is closed at once; every client sees its connection end and
 * no fd is left behind (main counts them). */
enum { STORM = 200 };

static int storm_client(void *arg)
{
    client *c = arg;
    c->fd = iou_dial_tcp("127.0.0.1", c->port);
    CHECK(c->fd >= 0); /* the listener stays open until the end */
    char b;
    ssize_t n = iou_recv(c->fd, &b, 1, 0);
    CHECK(n == 0 || n == -ECONNRESET);
    CHECK_EQ(iou_close(c->fd), 0);
    return 0;
}

static int storm_main(void *arg)
{
    (void)arg;
    server s;
    server_init(&s, STORM / 4);
    iou_task *st = iou_spawn(serve_task, &s);
    client *c = clients_new(STORM, port_of(&s), 0);
    iou_task *t[STORM];
    for (int i = 0; i < STORM; i++)
        t[i] = iou_spawn(storm_client, &c[i]);
    CHECK_EQ(iou_event_wait(&s.st.started_ev), 0);
    CHECK_EQ(iou_cancel(st), 0);
    CHECK_EQ(iou_join(st), -ECANCELED);
    CHECK_EQ(s.st.running, 0);
    CHECK_EQ(iou_close(s.lfd), 0); /* resets the connections still in the backlog */
    clients_join(t, STORM);
    free(c);
    return 0;
}

/* A deadline ends iou_serve like a cancellation does. */
static int serve_bounded(void *arg)
{
    return serve_task(arg);
}

static int deadline_main(void *arg)
{
    (void)arg;
    server s;
    server_init(&s, 1);
    iou_task *st = iou_spawn(serve_task, &s);
    client c = {.port = port_of(&s), .fd = -1};
    iou_task *t = iou_spawn(hold_client, &c);
    CHECK_EQ(iou_event_wait(&s.st.started_ev), 0);
    CHECK_EQ(iou_timeout(MS(20), serve_bounded, &s), -ETIMEDOUT);
    CHECK_EQ(s.st.running, 1); /* the other server's connection is untouched */
    server_stop(&s, st);
    CHECK_EQ(iou_join(t), 0);
    return 0;
}

/* ---- a connection limit ------------------------------------------------------------ */

enum { LIMITED = 10, LIMIT = 3 };

static int limit_main(void *arg)
{
    (void)arg;
    server s;
    server_init(&s, 0);
    s.opts.max_connections = LIMIT;
    iou_task *st = iou_spawn(serve_task, &s);
    client *c = clients_new(LIMITED, port_of(&s), 100);
    gate echoed, again;
    gate_init(&echoed, LIMIT);
    gate_init(&again, LIMIT);
    iou_task *t[LIMITED];
    for (int i = 0; i < LIMITED; i++) {
        c[i].echoed = &echoed;
        c[i].echoed_again = &again;
        t[i] = iou_spawn(echo_client, &c[i]);
    }
    CHECK_EQ(iou_event_wait(&echoed.reached), 0);
    CHECK_EQ(iou_sleep(MS(50)), 0); /* the limit holds while they stay open */
    CHECK_EQ(echoed.arrived, LIMIT);
    CHECK_EQ(s.st.started, LIMIT);
    iou_event_set(&echoed.open);
    iou_event_set(&again.open);
    clients_join(t, LIMITED);
    CHECK_EQ(echoed.arrived, LIMITED);
    CHECK_EQ(s.st.peak, LIMIT);
    server_stop(&s, st);
    free(c);
    return 0;
}

/* ---- accept under a tiny RLIMIT_NOFILE ------------------------------------------------- */

enum { CROWD = 12, SLOTS = 4 };

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    uint64_t us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                  (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    return us * 1000u;
}

/* Lowers the soft fd limit so that exactly `slots` more fds can be opened
 * (fd numbers below the limit that are free). Returns the old limit. */
static struct rlimit squeeze_fds(int slots)
{
    struct rlimit old, rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    int limit = 0;
    for (int free_below = 0; free_below < slots; limit++)
        if (fcntl(limit, F_GETFD) < 0)
            free_below++;
    rl = old;
    rl.rlim_cur = (rlim_t)limit;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    return old;
}

static int emfile_main(void *arg)
{
    (void)arg;
    server s;
    server_init(&s, 0);
    iou_task *st = iou_spawn(serve_task, &s);
    CHECK_EQ(iou_yield(), 0); /* its accept is armed */
    client *c = clients_new(CROWD, port_of(&s), 1000);
    gate echoed, again;
    gate_init(&echoed, SLOTS);
    gate_init(&again, SLOTS);
    for (int i = 0; i < CROWD; i++) { /* the clients' sockets exist before the squeeze */
        c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(c[i].fd >= 0);
        c[i].echoed = &echoed;
        c[i].echoed_again = &again;
    }
    struct rlimit saved = squeeze_fds(SLOTS);
    iou_task *t[CROWD];
    for (int i = 0; i < CROWD; i++)
        t[i] = iou_spawn(echo_client, &c[i]);
    /* SLOTS connections are served; the next accept fails with EMFILE. */
    CHECK_EQ(iou_event_wait(&echoed.reached), 0);
    uint64_t wall0 = mono_ns(), cpu0 = cpu_ns();
    CHECK_EQ(iou_sleep(MS(300)), 0);
    uint64_t wall = mono_ns() - wall0, cpu = cpu_ns() - cpu0;
    fprintf(stderr, "test_serve: at EMFILE for %llu ms: %llu ms of CPU\n",
            (unsigned long long)(wall / 1000000u), (unsigned long long)(cpu / 1000000u));
    CHECK(cpu * 5 < wall); /* backing off, not spinning (a spin is ~100%) */
    CHECK_EQ(echoed.arrived, SLOTS);
    CHECK_EQ(s.st.started, SLOTS);
    /* The server still serves the connections it has ... */
    iou_event_set(&echoed.open);
    CHECK_EQ(iou_event_wait(&again.reached), 0);
    CHECK_EQ(s.st.started, SLOTS);
    /* ... and once they close, the waiting clients are accepted in turn. */
    iou_event_set(&again.open);
    clients_join(t, CROWD);
    CHECK_EQ(echoed.arrived, CROWD);
    CHECK_EQ(s.st.ended, CROWD);
    CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
    server_stop(&s, st);
    free(c);
    return 0;
}

/* ---- errors and misuse ------------------------------------------------------------- */

static int nothing(int fd, void *arg)
{
    (void)fd;
    (void)arg;
    return 0;
}

static int errors_main(void *arg)
{
    (void)arg;
    int fd = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK_EQ(iou_serve(fd, nothing, NULL), -EINVAL); /* not listening */
    CHECK_EQ(iou_close(fd), 0);
    CHECK_EQ(iou_serve(-1, nothing, NULL), -EINVAL);
    int lfd = iou_listen_tcp("127.0.0.1", 0, 1);
    CHECK_EQ(iou_serve(lfd, NULL, NULL), -EINVAL);
    CHECK_EQ(iou_close(lfd), 0);
    return 0;
}

int main(void)
{
    watchdog(100);
    signal(SIGPIPE, SIG_DFL);
    raise_fd_limit();
    int fds = count_fds();
    CHECK_EQ(iou_serve(0, nothing, NULL), -EPERM); /* outside a task */
    CHECK_EQ(run_or_skip(errors_main, NULL), 0);
    CHECK_EQ(run_or_skip(many_main, NULL), 0);
    CHECK_EQ(run_or_skip(cancel_main, NULL), 0);
    CHECK_EQ(run_or_skip(storm_main, NULL), 0);
    CHECK_EQ(run_or_skip(deadline_main, NULL), 0);
    CHECK_EQ(run_or_skip(limit_main, NULL), 0);
    CHECK_EQ(run_or_skip(emfile_main, NULL), 0);
    CHECK_EQ(count_fds(), fds);
    puts("test_serve: ok");
    return 0;
}
