/*
 * Cancellation torture: 10,000 tasks blocked in every kind of wait (recv
 * into a borrowed ring buffer on socketpairs, pipe reads, sleeps, channel
 * receives, mutex and event waits), half of them under short deadlines,
 * receiving random cancels while peers write data at random moments, so that
 * completions, cancels and deadline expiries land in the same loop
 * iteration. A cancelled task ends and is joined (its value checked) and
 * its slot gets a new task, until the cancels plus expiries reach the
 * target.
 *
 * Checked: every call returns once, with a result its kind allows (per-task
 * state machine: a task resumed twice finds its call already returned);
 * every byte and channel element sent is received exactly once (by a task,
 * or by the final drain); every borrowed buffer is released once and the
 * ring is whole at the end; every task is joined with its slot's token;
 * nothing leaks (ASan, check_nothing_leaked).
 *
 * IOU_TORTURE_SCALE multiplies the target (default 1: 1,000,000 cancels and
 * expiries) and caps the tasks at 10,000 x scale.
 */
#include "check.h"
#include "loop.h"
#include "loopcheck.h"
#include "testutil.h"

#include <fcntl.h>
#include <sys/socket.h>

enum kind { K_RECV, K_PIPE, K_SLEEP, K_CHAN, K_MUTEX, K_EVENT, K_COUNT };
enum phase { IDLE, IN_CALL };
enum { BATCH = 256, TOKEN = 0x7000000 };

typedef struct slot {
    int idx;
    enum kind kind;
    int fd, peer; /* K_RECV, K_PIPE: the task's end and the controller's */
    iou_task *task;
    enum phase phase;
    uint64_t calls, returns;
    bool done;
} slot;

static size_t nslots;
static slot *slots;
static iou_chan *chan;
static iou_mutex mutex = IOU_MUTEX_INIT;
static iou_event event;
static uint64_t rng;
static uint64_t cancels, expiries, raced, completions, spawned, joined;
static uint64_t bytes_sent, bytes_received, elems_sent, elems_received;
static uint64_t borrowed, released;
static int *done_list;
static size_t done_count;

/* ---- the slot tasks ------------------------------------------------------------- */

/* One blocking call of the slot's kind. Returns 0 / a count, or an errno. */
static long one_call(slot *s, uint64_t *r)
{
    char buf[64];
    switch (s->kind) {
    case K_RECV: {
        iou_buf b = {0};
        ssize_t n = iou_recv_buf(s->fd, &b, 0);
        CHECK(n != 0); /* the peer never closes while tasks run */
        if (n > 0) {
            CHECK(b.data != NULL && b.len == (size_t)n);
            bytes_received += (uint64_t)n;
            borrowed++;
            iou_buf_release(&b);
            CHECK(b.data == NULL);
            released++;
        } else {
            CHECK(b.data == NULL);
        }
        return n;
    }
    case K_PIPE: {
        ssize_t n = iou_read(s->fd, buf, sizeof(buf), -1);
        CHECK(n != 0);
        if (n > 0)
            bytes_received += (uint64_t)n;
        return n;
    }
    case K_SLEEP:
        return iou_sleep(rng_next(r) % 50000);
    case K_CHAN: {
        int e;
        int err = iou_chan_recv(chan, &e);
        if (err == 0) {
            CHECK_EQ(e, 42);
            elems_received++;
        }
        return err;
    }
    case K_MUTEX: {
        int err = iou_mutex_lock(&mutex);
        if (err == 0) {
            iou_yield(); /* hold it across an iteration: others queue up */
            CHECK_EQ(iou_mutex_unlock(&mutex), 0);
        }
        return err;
    }
    default: {
        int err = iou_event_wait(&event);
        if (err == 0)
            iou_yield(); /* a set event answers at once: let the others run */
        return err;
    }
    }
}

static int slot_main(void *arg)
{
    slot *s = arg;
    uint64_t r = rng ^ (uint64_t)s->idx * 0x9E3779B97F4A7C15ull ^ spawned;
    for (;;) {
        bool bounded = rng_next(&r) % 4 == 0;
        uint64_t prev = bounded ? iou_deadline_push(iou_now() + rng_next(&r) % 60000) : 0;
        CHECK_EQ(s->phase, IDLE);
        s->phase = IN_CALL;
        s->calls++;
        long res = one_call(s, &r);
        CHECK_EQ(s->phase, IN_CALL); /* resumed once per call */
        s->phase = IDLE;
        s->returns++;
        if (bounded)
            iou_deadline_pop(prev);
        if (res == -ETIMEDOUT) {
            CHECK(bounded);
            expiries++;
        } else if (res == -ECANCELED) {
            CHECK(iou_cancelled());
        } else {
            CHECK(res >= 0);
            completions++;
            raced += iou_cancelled(); /* the cancel came, the completion won */
        }
        if (iou_cancelled())
            break;
    }
    s->done = true;
    done_list[done_count++] = s->idx; /* the controller joins it */
    return TOKEN + s->idx;
}

static void spawn_slot(slot *s)
{
    iou_spawn_opts o = {.stack_size = 16 * 1024, .name = "torture"};
    s->task = iou_spawn_ex(slot_main, s, &o);
    CHECK(s->task != NULL);
    s->done = false;
    spawned++;
}

static void join_slot(slot *s)
{
    CHECK_EQ(iou_join(s->task), TOKEN + s->idx);
    CHECK_EQ(s->calls, s->returns);
    s->task = NULL;
    joined++;
}

/* ---- the controller -------------------------------------------------------------- */

static void open_slot(slot *s, size_t i)
{
    *s = (slot){.idx = (int)i, .kind = (enum kind)(i % K_COUNT), .fd = -1, .peer = -1};
    int p[2];
    if (s->kind == K_RECV)
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p) == 0);
    else if (s->kind == K_PIPE)
        CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    else
        return;
    s->fd = p[0];
    s->peer = p[1];
}

/* A peer action on slot s: data on its socket or pipe, an element, the event. */
static void poke(slot *s)
{
    static const char data[64] = "torture";
    size_t len = 1 + rng_next(&rng) % sizeof(data);
    ssize_t n;
    switch (s->kind) {
    case K_RECV:
    case K_PIPE:
        n = write(s->peer, data, len);
        if (n > 0)
            bytes_sent += (uint64_t)n;
        break;
    case K_CHAN: {
        int e = 42;
        if (iou_chan_try_send(chan, &e) == 0)
            elems_sent++;
        break;
    }
    case K_EVENT:
        if (iou_event_is_set(&event))
            iou_event_clear(&event);
        else
            iou_event_set(&event);
        break;
    default:
        break;
    }
}

static void reap_done(void)
{
    for (size_t i = 0; i < done_count; i++) {
        slot *s = &slots[done_list[i]];
        join_slot(s);
        spawn_slot(s);
    }
    done_count = 0;
}

/* Drains what no task received: a task that was cancelled may have left
 * bytes or elements behind; all of them must be there. */
static void drain_all(void)
{
    char buf[4096];
    for (size_t i = 0; i < nslots; i++) {
        slot *s = &slots[i];
        if (s->fd < 0)
            continue;
        ssize_t n;
        while ((n = read(s->fd, buf, sizeof(buf))) > 0)
            bytes_received += (uint64_t)n;
        CHECK(n < 0 && errno == EAGAIN);
        CHECK(close(s->fd) == 0 && close(s->peer) == 0);
    }
    int e;
    while (iou_chan_try_recv(chan, &e) == 0)
        elems_received++;
}

static int main_task(void *arg)
{
    uint64_t target = *(uint64_t *)arg;
    uint64_t start = mono_ns();
    iou_bufring_opts bo = {.count = 64, .size = 4096};
    CHECK_EQ(iou_bufring_config(&bo), 0);
    CHECK((chan = iou_chan_new(sizeof(int), 64)) != NULL);
    iou_event_init(&event);
    for (size_t i = 0; i < nslots; i++) {
        open_slot(&slots[i], i);
        spawn_slot(&slots[i]);
    }
    while (cancels + expiries < target) {
        for (int k = 0; k < BATCH; k++) {
            slot *s = &slots[rng_next(&rng) % nslots];
            if (rng_next(&rng) % 3 == 0)
                poke(s);
            else if (s->task && !s->done && iou_cancel(s->task) == 0)
                cancels++;
        }
        iou_yield(); /* this iteration: the cancels, the pokes and the completions */
        reap_done();
    }
    for (size_t i = 0; i < nslots; i++)
        iou_cancel(slots[i].task);
    iou_event_set(&event);
    for (size_t i = 0; i < nslots; i++)
        join_slot(&slots[i]);
    drain_all();
    iou_chan_free(chan);
    iou_bufring_stats st;
    CHECK_EQ(iou_bufring_get_stats(&st), 0);
    if (st.count) /* every buffer is back in the ring */
        CHECK_EQ(st.available, st.count);
    CHECK_EQ(borrowed, released);
    CHECK_EQ(bytes_sent, bytes_received);
    CHECK_EQ(elems_sent, elems_received);
    CHECK_EQ(spawned, joined);
    check_nothing_leaked();
    fprintf(stderr,
            "torture: %zu tasks at a time, %llu spawned and joined; %llu cancels, %llu deadline "
            "expiries, %llu completions (%llu raced a cancel and won); %llu bytes and %llu "
            "elements each received once; %llu buffers borrowed and released; %.1f s\n",
            nslots, (unsigned long long)spawned, (unsigned long long)cancels,
            (unsigned long long)expiries, (unsigned long long)completions,
            (unsigned long long)raced, (unsigned long long)bytes_sent,
            (unsigned long long)elems_sent, (unsigned long long)borrowed,
            (double)(mono_ns() - start) / 1e9);
    return 0;
}

int main(void)
{
    watchdog(115);
    const char *env = getenv("IOU_TORTURE_SCALE");
    double scale = env ? strtod(env, NULL) : 1.0;
    if (!(scale > 0))
        scale = 1.0;
    uint64_t target = (uint64_t)(1000000 * scale);
    nslots = scale < 1 ? (size_t)(10000 * scale) : 10000;
    nslots = nslots < K_COUNT ? K_COUNT : nslots;
    raise_fd_limit();
    rng = rng_seed();
    slots = calloc(nslots, sizeof(*slots));
    done_list = calloc(nslots, sizeof(*done_list));
    CHECK(slots && done_list);
    CHECK_EQ(run_or_skip(main_task, &target), 0);
    free(slots);
    free(done_list);
    return 0;
}
