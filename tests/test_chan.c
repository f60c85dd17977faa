/*
 * Channels and select: FIFO order, rendezvous pairing, many producers and
 * consumers (no element lost or duplicated), close semantics with blocked
 * senders and receivers, the try variants, select and its interruption.
 *
 * "settle()" lets every ready task run until it blocks: yields, never sleeps.
 * Deadlines run on the virtual clock.
 */
#include "check.h"
#include "testutil.h"

#include <errno.h>
#include <iou.h>
#include <stdint.h>
#include <string.h>

static iou_chan *chan(size_t elem_size, size_t cap)
{
    iou_chan *c = iou_chan_new(elem_size, cap);
    CHECK(c != NULL);
    return c;
}

static iou_chan *ch; /* the channel of the current test */

/* A task sending its argument once; returns send's result. */
static int send_arg(void *arg)
{
    int v = (int)(intptr_t)arg;
    return iou_chan_send(ch, &v);
}

/* A task receiving once; returns the value, or recv's error. */
static int recv_one(void *arg)
{
    (void)arg;
    int v = -1;
    int r = iou_chan_recv(ch, &v);
    return r ? r : v;
}

/* ---- buffered FIFO ------------------------------------------------------------ */

static int buffered_main(void *arg)
{
    (void)arg;
    ch = chan(sizeof(int), 4);
    for (int round = 0; round < 3; round++) { /* the ring wraps around */
        for (int i = 0; i < 3; i++)
            CHECK_EQ(iou_chan_send(ch, &(int){round * 10 + i}), 0);
        CHECK_EQ(iou_chan_len(ch), 3);
        for (int i = 0; i < 3; i++) {
            int v;
            CHECK_EQ(iou_chan_recv(ch, &v), 0);
            CHECK_EQ(v, round * 10 + i);
        }
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(iou_chan_try_send(ch, &i), 0);
    CHECK_EQ(iou_chan_try_send(ch, &(int){9}), -EAGAIN);
    CHECK_EQ(iou_chan_len(ch), 4);

    /* Blocked senders queue behind the buffer, in order. */
    iou_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_checked(send_arg, (void *)(intptr_t)(4 + i));
    settle();
    CHECK_EQ(iou_chan_len(ch), 4);
    for (int i = 0; i < 7; i++) {
        int v;
        CHECK_EQ(iou_chan_try_recv(ch, &v), 0);
        CHECK_EQ(v, i);
    }
    int v;
    CHECK_EQ(iou_chan_try_recv(ch, &v), -EAGAIN);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_join(t[i]), 0);
    iou_chan_free(ch);
    return 0;
}

/* Elements are copied by size: a struct round-trips intact. */
struct big {
    uint64_t a[5];
    char tag;
};

static int struct_main(void *arg)
{
    (void)arg;
    iou_chan *c = chan(sizeof(struct big), 2);
    struct big in, out;
    memset(&in, 0, sizeof(in)); /* padding too: compared with memcmp below */
    memset(&out, 0, sizeof(out));
    for (int i = 0; i < 5; i++)
        in.a[i] = (uint64_t)i + 1;
    in.tag = 'x';
    CHECK_EQ(iou_chan_send(c, &in), 0);
    CHECK_EQ(iou_chan_recv(c, &out), 0);
    CHECK(memcmp(&in, &out, sizeof(in)) == 0);
    iou_chan_free(c);
    CHECK(iou_chan_new(0, 4) == NULL);
    CHECK(iou_chan_new(SIZE_MAX / 2, 4) == NULL);
    return 0;
}

/* ---- rendezvous ------------------------------------------------------------------ */

static int rendezvous_main(void *arg)
{
    (void)arg;
    ch = chan(sizeof(int), 0);
    CHECK_EQ(iou_chan_try_send(ch, &(int){1}), -EAGAIN); /* nobody receives */
    int v;
    CHECK_EQ(iou_chan_try_recv(ch, &v), -EAGAIN);

    /* Sender first: it waits until a receiver has copied its element. */
    iou_task *s = spawn_checked(send_arg, (void *)(intptr_t)42);
    settle();
    CHECK_EQ(iou_chan_len(ch), 0);
    CHECK_EQ(iou_chan_recv(ch, &v), 0);
    CHECK_EQ(v, 42);
    CHECK_EQ(iou_join(s), 0);

    /* Receiver first: a try_send succeeds because it waits. */
    iou_task *r = spawn_checked(recv_one, NULL);
    settle();
    CHECK_EQ(iou_chan_try_send(ch, &(int){7}), 0);
    CHECK_EQ(iou_join(r), 7);

    /* Pairing is FIFO on both sides. */
    iou_task *rs[3];
    for (int i = 0; i < 3; i++)
        rs[i] = spawn_checked(recv_one, NULL);
    settle();
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_chan_send(ch, &(int){100 + i}), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_join(rs[i]), 100 + i);
    iou_chan_free(ch);
    return 0;
}

/* ---- many producers and consumers --------------------------------------------------- */

enum { PRODUCERS = 8, CONSUMERS = 8, PER_PRODUCER = 2000 };

static unsigned char seen[PRODUCERS * PER_PRODUCER];
static uint64_t sum_received;
static long received;

static int producer(void *arg)
{
    int base = (int)(intptr_t)arg * PER_PRODUCER;
    for (int i = 0; i < PER_PRODUCER; i++) {
        int v = base + i;
        CHECK_EQ(iou_chan_send(ch, &v), 0);
        if (i % 7 == 0)
            iou_yield(); /* vary the interleaving */
    }
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    int v, r, last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    while ((r = iou_chan_recv(ch, &v)) == 0) {
        CHECK(v >= 0 && v < PRODUCERS * PER_PRODUCER);
        CHECK_EQ(seen[v], 0);
        seen[v] = 1;
        sum_received += (uint64_t)v;
        received++;
        /* One producer's elements arrive in the order it sent them. */
        CHECK(v % PER_PRODUCER > last[v / PER_PRODUCER]);
        last[v / PER_PRODUCER] = v % PER_PRODUCER;
        if (v % 5 == 0)
            iou_yield();
    }
    CHECK_EQ(r, -EPIPE);
    return 0;
}

static size_t mpmc_cap;

static int mpmc_main(void *arg)
{
    (void)arg;
    ch = chan(sizeof(int), mpmc_cap);
    memset(seen, 0, sizeof(seen));
    sum_received = 0;
    received = 0;
    iou_task *p[PRODUCERS], *c[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        c[i] = spawn_checked(consumer, NULL);
    for (int i = 0; i < PRODUCERS; i++)
        p[i] = spawn_checked(producer, (void *)(intptr_t)i);
    for (int i = 0; i < PRODUCERS; i++)
        CHECK_EQ(iou_join(p[i]), 0);
    iou_chan_close(ch); /* consumers drain, then see -EPIPE */
    for (int i = 0; i < CONSUMERS; i++)
        CHECK_EQ(iou_join(c[i]), 0);
    const uint64_t n = PRODUCERS * PER_PRODUCER;
    CHECK_EQ(received, (long)n);
    CHECK_EQ(sum_received, n * (n - 1) / 2);
    iou_chan_free(ch);
    return 0;
}

/* ---- close ----------------------------------------------------------------------------- */

static int close_senders_main(void *arg)
{
    (void)arg;
    ch = chan(sizeof(int), 1);
    CHECK_EQ(iou_chan_send(ch, &(int){5}), 0);
    iou_task *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = spawn_checked(send_arg, (void *)(intptr_t)i);
    settle();
    iou_chan_close(ch);
    iou_chan_close(ch); /* idempotent */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_join(s[i]), -EPIPE);
    CHECK_EQ(iou_chan_send(ch, &(int){6}), -EPIPE);
    CHECK_EQ(iou_chan_try_send(ch, &(int){6}), -EPIPE);
    int v;
    CHECK_EQ(iou_chan_recv(ch, &v), 0); /* what was buffered is still delivered */
    CHECK_EQ(v, 5);
    CHECK_EQ(iou_chan_recv(ch, &v), -EPIPE);
    CHECK_EQ(iou_chan_try_recv(ch, &v), -EPIPE);
    iou_chan_free(ch);

    /* Rendezvous: a blocked sender's element is not delivered after close. */
    ch = chan(sizeof(int), 0);
    iou_task *r = spawn_checked(send_arg, (void *)(intptr_t)1);
    settle();
    iou_chan_close(ch);
    CHECK_EQ(iou_join(r), -EPIPE);
    CHECK_EQ(iou_chan_try_recv(ch, &v), -EPIPE);
    iou_chan_free(ch);
    return 0;
}

static int close_receivers_main(void *arg)
{
    (void)arg;
    ch = chan(sizeof(int), 4);
    iou_task *r[3];
    for (int i = 0; i < 3; i++)
        r[i] = spawn_checked(recv_one, NULL);
    settle();
    iou_chan_close(ch);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_join(r[i]), -EPIPE);
    iou_chan_free(ch);

    /* Drain, then -EPIPE: receivers started after close get what is left. */
    ch = chan(sizeof(int), 4);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_chan_send(ch, &i), 0);
    iou_chan_close(ch);
    iou_task *d[5];
    for (int i = 0; i < 5; i++)
        d[i] = spawn_checked(recv_one, NULL);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_join(d[i]), i);
    for (int i = 3; i < 5; i++)
        CHECK_EQ(iou_join(d[i]), -EPIPE);
    iou_chan_free(ch);
    return 0;
}

/* ---- interruption ------------------------------------------------------------------------ */

static int send_with_deadline(void *arg)
{
    int v = (int)(intptr_t)arg;
    uint64_t prev = iou_deadline_push(iou_now() + 1000000);
    int r = iou_chan_send(ch, &v);
    iou_deadline_pop(prev);
    return r;
}

static int interrupt_main(void *arg)
{
    (void)arg;
    ch = chan(sizeof(int), 1);
    CHECK_EQ(iou_chan_send(ch, &(int){0}), 0);
    iou_task *a = spawn_checked(send_arg, (void *)(intptr_t)1);
    iou_task *b = spawn_checked(send_with_deadline, (void *)(intptr_t)2);
    iou_task *c = spawn_checked(send_arg, (void *)(intptr_t)3);
    settle();
    CHECK_EQ(iou_cancel(a), 0);
    CHECK_EQ(iou_join(a), -ECANCELED);
    CHECK_EQ(iou_join(b), -ETIMEDOUT);
    /* Neither a's nor b's element was delivered; c's follows the buffer. */
    int v;
    CHECK_EQ(iou_chan_recv(ch, &v), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(iou_chan_recv(ch, &v), 0);
    CHECK_EQ(v, 3);
    CHECK_EQ(iou_join(c), 0);
    CHECK_EQ(iou_chan_len(ch), 0);

    /* Receivers: cancelled one gets nothing; a woken-then-cancelled one keeps
     * the element it was handed. */
    iou_task *r1 = spawn_checked(recv_one, NULL), *r2 = spawn_checked(recv_one, NULL);
    settle();
    CHECK_EQ(iou_cancel(r1), 0);
    CHECK_EQ(iou_chan_try_send(ch, &(int){8}), 0); /* goes to r2 directly */
    CHECK_EQ(iou_cancel(r2), 0);
    CHECK_EQ(iou_join(r1), -ECANCELED);
    CHECK_EQ(iou_join(r2), 8);
    CHECK_EQ(iou_chan_len(ch), 0);

    uint64_t prev = iou_deadline_push(iou_now() + 1000);
    CHECK_EQ(iou_chan_recv(ch, &v), -ETIMEDOUT);
    iou_deadline_pop(prev);
    iou_chan_free(ch);
    return 0;
}

/* ---- outside any task ----------------------------------------------------------------------- */

static void test_outside_task(void)
{
    iou_chan *c = chan(sizeof(int), 1);
    int v = 0;
    CHECK_EQ(iou_chan_recv(c, &v), -EPERM); /* would wait */
    CHECK_EQ(iou_chan_send(c, &(int){3}), 0); /* room: no wait needed */
    CHECK_EQ(iou_chan_send(c, &(int){4}), -EPERM);
    CHECK_EQ(iou_chan_try_send(c, &(int){4}), -EAGAIN);
    CHECK_EQ(iou_chan_try_recv(c, &v), 0);
    CHECK_EQ(v, 3);
    iou_select_case k = {c, IOU_SELECT_RECV, &v, 1};
    CHECK_EQ(iou_select(&k, 1), -EPERM);
    CHECK_EQ(iou_try_select(&k, 1), -EAGAIN);
    iou_chan_close(c);
    CHECK_EQ(iou_select(&k, 1), 0);
    CHECK_EQ(k.result, -EPIPE);
    iou_chan_free(c);
}

/* ---- select ----------------------------------------------------------------------------------- */

static iou_chan *cs[3];
static int sel_val[3];
static int sel_result;

/* A task selecting a receive on each of cs[0..2]; returns the index (and
 * stores that case's result) or select's error. */
static int select_recv3(void *arg)
{
    (void)arg;
    iou_select_case k[3];
    for (int i = 0; i < 3; i++)
        k[i] = (iou_select_case){cs[i], IOU_SELECT_RECV, &sel_val[i], 1};
    int i = iou_select(k, 3);
    sel_result = i >= 0 ? k[i].result : 1;
    return i;
}

static void make_cs(size_t cap)
{
    for (int i = 0; i < 3; i++) {
        cs[i] = chan(sizeof(int), cap);
        sel_val[i] = -1;
    }
    sel_result = 1;
}

static void free_cs(void)
{
    for (int i = 0; i < 3; i++)
        iou_chan_free(cs[i]);
}

/* No receiver waits on rendezvous channels cs[0..2] (a select withdrew). */
static void check_no_receivers(void)
{
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_chan_try_send(cs[i], &(int){0}), -EAGAIN);
}

static int select_ready_main(void *arg)
{
    (void)arg;
    make_cs(2);
    int v = 0;
    iou_select_case k[3];
    for (int i = 0; i < 3; i++)
        k[i] = (iou_select_case){cs[i], IOU_SELECT_RECV, &v, 1};
    CHECK_EQ(iou_try_select(k, 3), -EAGAIN);
    CHECK_EQ(iou_chan_send(cs[2], &(int){22}), 0);
    CHECK_EQ(iou_chan_send(cs[1], &(int){11}), 0);
    CHECK_EQ(iou_select(k, 3), 1); /* lowest ready index wins */
    CHECK_EQ(v, 11);
    CHECK_EQ(k[1].result, 0);
    CHECK_EQ(iou_select(k, 3), 2);
    CHECK_EQ(v, 22);

    /* A closed channel is ready at once, with -EPIPE. */
    iou_chan_close(cs[0]);
    CHECK_EQ(iou_select(k, 3), 0);
    CHECK_EQ(k[0].result, -EPIPE);

    /* Send cases: the first that can proceed wins; closed reports -EPIPE. */
    iou_select_case s[2] = {{cs[0], IOU_SELECT_SEND, &(int){1}, 1},
                            {cs[1], IOU_SELECT_SEND, &(int){2}, 1}};
    CHECK_EQ(iou_try_select(s, 2), 0);
    CHECK_EQ(s[0].result, -EPIPE);
    s[0].chan = cs[2];
    CHECK_EQ(iou_try_select(s, 2), 0);
    CHECK_EQ(s[0].result, 0);
    CHECK_EQ(iou_chan_len(cs[2]), 1);

    /* Bad cases. */
    CHECK_EQ(iou_select(k, 0), -EINVAL);
    CHECK_EQ(iou_select(NULL, 1), -EINVAL);
    iou_select_case bad = {cs[1], 3, &v, 0};
    CHECK_EQ(iou_select(&bad, 1), -EINVAL);
    bad = (iou_select_case){NULL, IOU_SELECT_RECV, &v, 0};
    CHECK_EQ(iou_try_select(&bad, 1), -EINVAL);
    bad = (iou_select_case){cs[1], IOU_SELECT_RECV, NULL, 0};
    CHECK_EQ(iou_try_select(&bad, 1), -EINVAL);
    free_cs();
    return 0;
}

static int select_block_main(void *arg)
{
    (void)arg;
    make_cs(0);
    /* Completed by the first sender; the other cases are withdrawn. */
    iou_task *t = spawn_checked(select_recv3, NULL);
    settle();
    CHECK_EQ(iou_chan_try_send(cs[1], &(int){5}), 0);
    check_no_receivers();
    CHECK_EQ(iou_join(t), 1);
    CHECK_EQ(sel_result, 0);
    CHECK_EQ(sel_val[1], 5);
    CHECK_EQ(sel_val[0], -1);
    CHECK_EQ(sel_val[2], -1);

    /* Completed by a close: that case's result is -EPIPE. */
    t = spawn_checked(select_recv3, NULL);
    settle();
    iou_chan_close(cs[2]);
    CHECK_EQ(iou_join(t), 2);
    CHECK_EQ(sel_result, -EPIPE);
    free_cs();

    /* A blocked select's send case taken by a receiver (from a full buffer). */
    make_cs(1);
    CHECK_EQ(iou_chan_send(cs[0], &(int){1}), 0);
    t = spawn_checked(select_recv3, NULL); /* cs[0] has data: returns at once */
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(sel_val[0], 1);
    CHECK_EQ(iou_chan_send(cs[1], &(int){10}), 0); /* cs[1] full */
    iou_select_case k[2] = {{cs[1], IOU_SELECT_SEND, &(int){11}, 1},
                            {cs[2], IOU_SELECT_RECV, &sel_val[2], 1}};
    iou_task *r = spawn_checked(recv_one, NULL); /* ch = cs[1] below */
    ch = cs[1];
    int i = iou_select(k, 2); /* parks: r frees a slot, our element fills it */
    CHECK_EQ(i, 0);
    CHECK_EQ(k[0].result, 0);
    CHECK_EQ(iou_join(r), 10);
    int v;
    CHECK_EQ(iou_chan_try_recv(cs[1], &v), 0);
    CHECK_EQ(v, 11);
    CHECK_EQ(iou_chan_send(cs[2], &(int){3}), 0); /* buffered: our recv case was withdrawn */
    CHECK_EQ(iou_chan_len(cs[2]), 1);
    CHECK_EQ(sel_val[2], -1);
    free_cs();
    return 0;
}

/* Many cases (past the on-stack waiter records), several on one channel. */
static int select_many_main(void *arg)
{
    (void)arg;
    enum { N = 20 };
    make_cs(0);
    int vals[N];
    iou_select_case k[N];
    for (int i = 0; i < N; i++)
        k[i] = (iou_select_case){cs[i % 2], IOU_SELECT_RECV, &vals[i], 1};
    ch = cs[1];
    iou_task *s = spawn_checked(send_arg, (void *)(intptr_t)77);
    CHECK_EQ(iou_select(k, N), 1); /* the sender arrives; case 1 is cs[1]'s first */
    CHECK_EQ(vals[1], 77);
    CHECK_EQ(iou_join(s), 0);
    check_no_receivers();

    /* Send and receive cases on the same rendezvous channel, in one select. */
    iou_select_case both[2] = {{cs[0], IOU_SELECT_SEND, &(int){9}, 1},
                               {cs[0], IOU_SELECT_RECV, &vals[0], 1}};
    ch = cs[0];
    iou_task *r = spawn_checked(recv_one, NULL);
    CHECK_EQ(iou_select(both, 2), 0);
    CHECK_EQ(iou_join(r), 9);
    check_no_receivers();
    free_cs();
    return 0;
}

static int select_timed(void *arg)
{
    (void)arg;
    uint64_t prev = iou_deadline_push(iou_now() + 1000000);
    int r = select_recv3(NULL);
    iou_deadline_pop(prev);
    return r;
}

static int select_interrupt_main(void *arg)
{
    (void)arg;
    make_cs(0);
    iou_task *t = spawn_checked(select_recv3, NULL);
    settle();
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), -ECANCELED);
    check_no_receivers(); /* every case withdrawn, none performed */
    CHECK_EQ(sel_val[0] & sel_val[1] & sel_val[2], -1);

    uint64_t t0 = iou_now();
    CHECK_EQ(iou_join(spawn_checked(select_timed, NULL)), -ETIMEDOUT);
    CHECK(iou_now() - t0 >= 1000000);
    check_no_receivers();

    /* Fired, then cancelled before it ran: the case stands. */
    t = spawn_checked(select_recv3, NULL);
    settle();
    CHECK_EQ(iou_chan_try_send(cs[2], &(int){4}), 0);
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), 2);
    CHECK_EQ(sel_val[2], 4);
    check_no_receivers();

    /* Already cancelled, nothing ready: returns at once, nothing queued. */
    CHECK_EQ(iou_cancel(iou_self()), 0);
    CHECK_EQ(select_recv3(NULL), -ECANCELED);
    check_no_receivers();
    free_cs();
    return 0;
}

/* Producers and consumers all going through select over two channels (one
 * rendezvous, one buffered), with some consumers cancelled midway: every
 * element still arrives exactly once. */
static iou_chan *sc[2];

static int select_producer(void *arg)
{
    int base = (int)(intptr_t)arg * PER_PRODUCER;
    for (int i = 0; i < PER_PRODUCER; i++) {
        int v = base + i;
        iou_select_case k[2] = {{sc[i & 1], IOU_SELECT_SEND, &v, 1},
                                {sc[!(i & 1)], IOU_SELECT_SEND, &v, 1}};
        int r = iou_select(k, 2);
        CHECK(r == 0 || r == 1);
        CHECK_EQ(k[r].result, 0);
    }
    return 0;
}

static int select_consumer(void *arg)
{
    (void)arg;
    int v, open = 2;
    iou_select_case k[2] = {{sc[0], IOU_SELECT_RECV, &v, 1}, {sc[1], IOU_SELECT_RECV, &v, 1}};
    while (open > 0) {
        int r = iou_select(k, (size_t)open);
        if (r < 0)
            return r; /* cancelled: received nothing in this call */
        if (k[r].result == -EPIPE) {
            k[r] = k[--open]; /* drop the closed channel's case */
            continue;
        }
        CHECK(v >= 0 && v < PRODUCERS * PER_PRODUCER);
        CHECK_EQ(seen[v], 0);
        seen[v] = 1;
        received++;
        if (v % 3 == 0)
            iou_yield();
    }
    return 0;
}

static int select_mpmc_main(void *arg)
{
    (void)arg;
    sc[0] = chan(sizeof(int), 0);
    sc[1] = chan(sizeof(int), 3);
    memset(seen, 0, sizeof(seen));
    received = 0;
    iou_task *p[PRODUCERS], *c[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        c[i] = spawn_checked(select_consumer, NULL);
    for (int i = 0; i < PRODUCERS; i++)
        p[i] = spawn_checked(select_producer, (void *)(intptr_t)i);
    for (int round = 0; round < 50; round++)
        iou_yield();
    for (int i = 0; i < CONSUMERS / 2; i++) /* half the consumers leave early */
        CHECK_EQ(iou_cancel(c[i]), 0);
    for (int i = 0; i < PRODUCERS; i++)
        CHECK_EQ(iou_join(p[i]), 0);
    iou_chan_close(sc[0]);
    iou_chan_close(sc[1]);
    for (int i = 0; i < CONSUMERS; i++) {
        int r = iou_join(c[i]);
        /* A cancelled consumer that never had to wait again may have finished
         * normally: a call that can proceed at once does. */
        CHECK(r == 0 || (i < CONSUMERS / 2 && r == -ECANCELED));
    }
    CHECK_EQ(received, PRODUCERS * PER_PRODUCER);
    iou_chan_free(sc[0]);
    iou_chan_free(sc[1]);
    return 0;
}

int main(void)
{
    test_outside_task();
    CHECK_EQ(run_virtual(buffered_main, NULL), 0);
    CHECK_EQ(run_virtual(struct_main, NULL), 0);
    CHECK_EQ(run_virtual(rendezvous_main, NULL), 0);
    size_t caps[] = {0, 1, 16};
    for (size_t i = 0; i < 3; i++) {
        mpmc_cap = caps[i];
        CHECK_EQ(run_virtual(mpmc_main, NULL), 0);
    }
    CHECK_EQ(run_virtual(close_senders_main, NULL), 0);
    CHECK_EQ(run_virtual(close_receivers_main, NULL), 0);
    CHECK_EQ(run_virtual(interrupt_main, NULL), 0);
    CHECK_EQ(run_virtual(select_ready_main, NULL), 0);
    CHECK_EQ(run_virtual(select_block_main, NULL), 0);
    CHECK_EQ(run_virtual(select_many_main, NULL), 0);
    CHECK_EQ(run_virtual(select_interrupt_main, NULL), 0);
    CHECK_EQ(run_virtual(select_mpmc_main, NULL), 0);
    puts("test_chan: ok");
    return 0;
}
