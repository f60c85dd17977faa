/*
 * 10,000 concurrent loopback connections served by iou_serve: every client
 * connects and is echoed once (the server accepted it), waits until all are
 * connected, exchanges a second message while all 10,000 connections are open
 * (the server runs 10,000 handler tasks at once), waits until all have, and
 * only then closes.
 *
 * Both ends in one process need 20,000 fds. Where RLIMIT_NOFILE cannot be
 * raised that far, the clients run in a forked child with a loop of its own
 * (10,000 fds each side); with fewer than that available, the test skips.
 */
#include "check.h"
#include "testutil.h"

#include <iou.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    CONNS = 10000,
    SPARE_FDS = 100,     /* ring, stdio, listener, ... */
    CONNECTING = 512,    /* connects in progress at once: below the listen backlog */
    STACK = 32 << 10,    /* per task: the handlers and clients are shallow */
};

/* ---- server side ---------------------------------------------------------------- */

typedef struct server {
    int lfd;
    int running, peak, ended;
    iou_event all_ended;
} server;

static int echo_handler(int fd, void *arg)
{
    server *s = arg;
    if (++s->running > s->peak)
        s->peak = s->running;
    char buf[256];
    ssize_t n;
    while ((n = iou_recv(fd, buf, sizeof(buf), 0)) > 0)
        if (iou_send_all(fd, buf, (size_t)n) < 0)
            break;
    s->running--;
    if (++s->ended == CONNS)
        iou_event_set(&s->all_ended);
    return 0;
}

static int serve_task(void *arg)
{
    server *s = arg;
    iou_serve_opts o = {.stack_size = STACK};
    return iou_serve_ex(s->lfd, echo_handler, s, &o);
}

static iou_task *server_start(server *s)
{
    iou_event_init(&s->all_ended);
    iou_spawn_opts o = {.name = "serve"};
    iou_task *t = iou_spawn_ex(serve_task, s, &o);
    CHECK(t != NULL);
    return t;
}

/* Waits until every connection has ended, then stops the server. */
static void server_finish(server *s, iou_task *t)
{
    CHECK_EQ(iou_event_wait(&s->all_ended), 0);
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), -ECANCELED);
    CHECK_EQ(s->peak, CONNS); /* all handlers were alive at once */
    CHECK_EQ(s->running, 0);
    fprintf(stderr, "test_conn10k: server: %d connections, %d at once\n", s->ended, s->peak);
}

/* ---- client side ---------------------------------------------------------------- */

typedef struct barrier {
    int count;
    iou_event ev;
} barrier;

static int barrier_wait(barrier *b)
{
    if (++b->count == CONNS)
        iou_event_set(&b->ev);
    return iou_event_wait(&b->ev);
}

typedef struct clients {
    uint16_t port;
    iou_sem connecting;
    barrier connected, exchanged;
    int done;
} clients;

typedef struct client {
    clients *all;
    int id;
} client;

static void exchange(int fd, int id, int round)
{
    char out[32], in[32];
    int len = snprintf(out, sizeof(out), "client %d round %d", id, round);
    CHECK_EQ(iou_send_all(fd, out, (size_t)len), len);
    for (int got = 0; got < len;) {
        ssize_t n = iou_recv(fd, in + got, (size_t)(len - got), 0);
        CHECK(n > 0);
        got += (int)n;
    }
    CHECK(memcmp(in, out, (size_t)len) == 0);
}

static int client_main(void *arg)
{
    client *c = arg;
    clients *all = c->all;
    CHECK_EQ(iou_sem_acquire(&all->connecting), 0);
    int fd = iou_dial_tcp("127.0.0.1", all->port);
    CHECK(fd >= 0);
    exchange(fd, c->id, 1); /* accepted: a handler runs for it */
    iou_sem_release(&all->connecting);
    CHECK_EQ(barrier_wait(&all->connected), 0);
    exchange(fd, c->id, 2); /* while all CONNS connections are open */
    CHECK_EQ(barrier_wait(&all->exchanged), 0);
    CHECK_EQ(iou_close(fd), 0);
    all->done++;
    return 0;
}

/* Spawns every client and waits for all of them. */
static void run_clients(uint16_t port)
{
    clients all = {.port = port};
    iou_sem_init(&all.connecting, CONNECTING);
    iou_event_init(&all.connected.ev);
    iou_event_init(&all.exchanged.ev);
    client *c = calloc(CONNS, sizeof(*c));
    iou_task **t = calloc(CONNS, sizeof(*t));
    CHECK(c && t);
    iou_spawn_opts o = {.stack_size = STACK, .name = "client"};
    for (int i = 0; i < CONNS; i++) {
        c[i] = (client){.all = &all, .id = i};
        CHECK((t[i] = iou_spawn_ex(client_main, &c[i], &o)) != NULL);
    }
    for (int i = 0; i < CONNS; i++)
        CHECK_EQ(iou_join(t[i]), 0);
    CHECK_EQ(all.done, CONNS);
    free(c);
    free(t);
}

/* ---- one process ---------------------------------------------------------------- */

static int together_main(void *arg)
{
    server *s = arg;
    iou_task *st = server_start(s);
    run_clients((uint16_t)iou_local_port(s->lfd));
    server_finish(s, st);
    return 0;
}

/* ---- two processes ------------------------------------------------------------- */

static int clients_only_main(void *arg)
{
    run_clients(*(uint16_t *)arg);
    return 0;
}

static int server_only_main(void *arg)
{
    server *s = arg;
    server_finish(s, server_start(s));
    return 0;
}

static void run_split(server *s)
{
    uint16_t port = (uint16_t)iou_local_port(s->lfd);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        watchdog(100);
        close(s->lfd);
        _exit(run_or_skip(clients_only_main, &port) == 0 ? 0 : 1);
    }
    CHECK_EQ(run_or_skip(server_only_main, s), 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Raises the fd limit as far as allowed (the hard limit too, if permitted). */
static long fd_limit(long want)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)want) {
        struct rlimit more = {(rlim_t)want, (rlim_t)want};
        if (setrlimit(RLIMIT_NOFILE, &more) == 0)
            return want;
    }
    return raise_fd_limit();
}

int main(void)
{
    watchdog(110);
    signal(SIGPIPE, SIG_DFL);
    long limit = fd_limit(2 * CONNS + SPARE_FDS);
    if (limit < CONNS + SPARE_FDS)
        SKIP("RLIMIT_NOFILE is %ld; %d connections need %d fds per side", limit, CONNS,
             CONNS + SPARE_FDS);
    int fds = count_fds();
    server s = {.lfd = iou_listen_tcp("127.0.0.1", 0, 0)};
    CHECK(s.lfd >= 0);
    if (limit >= 2 * CONNS + SPARE_FDS) {
        fprintf(stderr, "test_conn10k: clients and server in one process\n");
        CHECK_EQ(run_or_skip(together_main, &s), 0);
    } else {
        fprintf(stderr, "test_conn10k: RLIMIT_NOFILE %ld < %d: clients in a child process\n",
                limit, 2 * CONNS + SPARE_FDS);
        run_split(&s);
    }
    CHECK_EQ(close(s.lfd), 0);
    CHECK_EQ(count_fds(), fds);
    puts("test_conn10k: ok");
    return 0;
}
