/*
 * iou_dump(): every task with its state and what it waits for (an operation
 * with its kind and fd, a sleep, a channel, a mutex, a join), its deadline
 * and, in debug mode, for how long; and in debug mode the same dump on
 * SIGUSR1, written by the loop's thread at its next iteration, also when
 * the signal arrives while the loop waits in the kernel.
 */
#include "capture.h"
#include "testutil.h"

#include <pthread.h>
#include <sys/socket.h>

typedef struct world {
    int sv[2];
    iou_chan *chan;
    iou_mutex mutex;
} world;

static int reader(void *arg)
{
    world *w = arg;
    char buf[16];
    return (int)iou_recv(w->sv[0], buf, sizeof(buf), 0);
}

static int bounded_reader(void *arg)
{
    world *w = arg;
    char buf[16];
    iou_deadline_push(iou_now() + HOUR);
    return (int)iou_recv(w->sv[1], buf, sizeof(buf), 0);
}

static int napper(void *arg)
{
    (void)arg;
    return iou_sleep(HOUR);
}

static int chan_waiter(void *arg)
{
    world *w = arg;
    int v;
    return iou_chan_recv(w->chan, &v);
}

static int locker(void *arg)
{
    world *w = arg;
    int r = iou_mutex_lock(&w->mutex);
    if (r == 0)
        iou_mutex_unlock(&w->mutex);
    return r;
}

static int finisher(void *arg)
{
    (void)arg;
    return 7;
}

static int joiner(void *arg)
{
    return iou_join(arg);
}

static iou_task *named(iou_fn fn, void *arg, const char *name)
{
    iou_task *t = iou_spawn_ex(fn, arg, &(iou_spawn_opts){.name = name});
    CHECK(t != NULL);
    return t;
}

static char *dump_to_string(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    iou_dump(f);
    fclose(f);
    return text;
}

static void check_dump(const char *text, const world *w, bool debug)
{
    char want[128];
    expect_in(text, "iou: dump of loop ");
    expect_in(text, ": 7 task(s) alive, 1 finished and not joined\n");
    expect_in(text, "iou:   task 'main': running\n");
    snprintf(want, sizeof(want), "task 'reader': parked%s", debug ? " for " : ": ");
    expect_in(text, want);
    snprintf(want, sizeof(want), ": operation recv on fd %d\n", w->sv[0]);
    expect_in(text, want);
    snprintf(want, sizeof(want), ": operation recv on fd %d, deadline in 3", w->sv[1]);
    expect_in(text, want);
    expect_in(text, ": sleep, 3");
    expect_in(text, ": channel 0x");
    expect_in(text, ": mutex 0x");
    expect_in(text, ": join of task 'napper'");
    expect_in(text, "task 'finisher': done: returned 7, not yet joined");
    expect_in(text, " operation(s) in flight");
    if (debug)
        expect_in(text, " ms: sleep, 3"); /* "parked for 0.1 ms: sleep, ..." */
    else
        expect_not_in(text, "parked for ");
}

static void *send_signal(void *arg)
{
    (void)arg;
    kill(getpid(), SIGUSR1);
    return NULL;
}

/* Waits (in loop iterations) until the capture holds `count` dumps. */
static void await_dumps(const capture *c, int count)
{
    for (int i = 0; i < 500; i++) {
        char *text = capture_text(c);
        int n = 0;
        for (const char *p = text; (p = strstr(p, "iou: dump of loop ")); p++)
            n++;
        free(text);
        if (n >= count)
            return;
        CHECK_EQ(iou_sleep(MS(10)), 0);
    }
    CHECK(!"the signal's dump never came");
}

static void check_signal(void)
{
    capture c;
    capture_begin(&c);
    /* Raised here: printed at the next iteration, not by the handler. */
    raise(SIGUSR1);
    char *text = capture_text(&c);
    CHECK(strstr(text, "iou: dump of loop") == NULL);
    free(text);
    CHECK_EQ(iou_yield(), 0);
    await_dumps(&c, 1);
    /* Sent by another thread (which blocks it) while the loop waits. */
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, send_signal, NULL), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    await_dumps(&c, 2);
    pthread_join(th, NULL);
    text = capture_end(&c);
    expect_in(text, "task 'napper': parked for ");
    fputs(text, stderr);
    free(text);
}

static int main_task(void *arg)
{
    bool debug = *(bool *)arg;
    world w;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, w.sv), 0);
    w.chan = iou_chan_new(sizeof(int), 0);
    CHECK(w.chan != NULL);
    iou_mutex_init(&w.mutex);
    CHECK_EQ(iou_mutex_lock(&w.mutex), 0);

    iou_task *t[8];
    t[0] = named(reader, &w, "reader");
    t[1] = named(bounded_reader, &w, "bounded");
    t[2] = named(napper, NULL, "napper");
    t[3] = named(chan_waiter, &w, "chanwait");
    t[4] = named(locker, &w, "locker");
    t[5] = named(joiner, t[2], "joiner");
    iou_task *fin = named(finisher, NULL, "finisher");
    CHECK_EQ(iou_yield(), 0); /* every task runs until it parks (or ends) */

    char *text = dump_to_string();
    check_dump(text, &w, debug);
    fputs(text, stderr);
    free(text);
    if (debug)
        check_signal();

    CHECK_EQ(iou_join(fin), 7);
    CHECK_EQ(iou_mutex_unlock(&w.mutex), 0);
    CHECK_EQ(iou_join(t[4]), 0);
    for (int i = 0; i < 4; i++)
        iou_cancel(t[i]);
    CHECK_EQ(iou_join(t[5]), -ECANCELED); /* napper's sleep, cancelled */
    for (int i = 0; i < 4; i++)
        if (i != 2)
            CHECK(iou_join(t[i]) < 0);
    iou_chan_free(w.chan);
    close(w.sv[0]);
    close(w.sv[1]);
    return 0;
}

int main(void)
{
    watchdog(60);
    unsetenv("IOU_DEBUG");
    bool debug = false;
    CHECK_EQ(run_ex_or_skip(main_task, &debug, NULL), 0);
    debug = true;
    iou_loop_opts opts = {.debug = true};
    CHECK_EQ(run_ex_or_skip(main_task, &debug, &opts), 0);
    puts("dump: states, operations, sleeps, channel, mutex, join, deadline; SIGUSR1");
    return 0;
}
