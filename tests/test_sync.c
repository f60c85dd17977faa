/*
 * Synchronisation for tasks: mutex, semaphore, event, condition variable.
 *
 * The ready queue is FIFO by contract, so every ordering assertion is exact.
 * "settle()" lets every ready task run until it blocks: yields, never sleeps.
 * Time-based cases run on the virtual clock, so deadlines cost no real time.
 */
#include "check.h"
#include "testutil.h"

#include <errno.h>
#include <iou.h>
#include <string.h>

#define NTASKS 10

static void join_all(iou_task **t, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ(iou_join(t[i]), 0);
}

/* An acquisition-order trace shared by the FIFO tests. */
static int order[NTASKS];
static int norder;

static void record(int id)
{
    CHECK(norder < NTASKS);
    order[norder++] = id;
}

static void check_order_is_identity(void)
{
    CHECK_EQ(norder, NTASKS);
    for (int i = 0; i < NTASKS; i++)
        CHECK_EQ(order[i], i);
}

/* ---- mutex ------------------------------------------------------------------ */

static iou_mutex mx = IOU_MUTEX_INIT;
static int inside, max_inside;
static long counter;

static void enter(void)
{
    inside++;
    if (inside > max_inside)
        max_inside = inside;
}

static int exclusion_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(iou_mutex_lock(&mx), 0);
        enter();
        long c = counter;
        iou_yield(); /* others run here and must queue, not enter */
        counter = c + 1;
        inside--;
        CHECK_EQ(iou_mutex_unlock(&mx), 0);
    }
    return 0;
}

static int mutex_exclusion_main(void *arg)
{
    (void)arg;
    iou_mutex_init(&mx);
    inside = max_inside = 0;
    counter = 0;
    iou_task *t[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        t[i] = spawn_checked(exclusion_worker, NULL);
    join_all(t, NTASKS);
    CHECK_EQ(max_inside, 1);
    CHECK_EQ(counter, NTASKS * 100);
    CHECK(mx.owner == NULL);
    return 0;
}

static int fifo_locker(void *arg)
{
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    record((int)(intptr_t)arg);
    iou_yield(); /* hold it across a switch: later waiters stay queued */
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    return 0;
}

static int mutex_fifo_main(void *arg)
{
    (void)arg;
    iou_mutex_init(&mx);
    norder = 0;
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    iou_task *t[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        t[i] = spawn_checked(fifo_locker, (void *)(intptr_t)i);
    settle(); /* all ten queue in spawn order */
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    /* Hand-off: the first waiter owns it already, nobody can barge in. */
    CHECK(mx.owner == t[0]);
    CHECK_EQ(iou_mutex_trylock(&mx), -EBUSY);
    join_all(t, NTASKS);
    check_order_is_identity();
    CHECK(mx.owner == NULL);
    return 0;
}

static int try_other(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_mutex_trylock(&mx), -EBUSY);
    CHECK_EQ(iou_mutex_unlock(&mx), -EPERM); /* not the owner */
    return 0;
}

static int mutex_errors_main(void *arg)
{
    (void)arg;
    iou_mutex_init(&mx);
    CHECK_EQ(iou_mutex_unlock(&mx), -EPERM); /* free: nobody owns it */
    CHECK_EQ(iou_mutex_trylock(&mx), 0);
    CHECK_EQ(iou_mutex_trylock(&mx), -EBUSY);
    CHECK_EQ(iou_mutex_lock(&mx), -EDEADLK);
    CHECK_EQ(iou_join(spawn_checked(try_other, NULL)), 0);
    CHECK(mx.owner == iou_self());
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    CHECK_EQ(iou_mutex_unlock(&mx), -EPERM);
    return 0;
}

static int lock_once(void *arg)
{
    (void)arg;
    int r = iou_mutex_lock(&mx);
    if (r == 0)
        CHECK_EQ(iou_mutex_unlock(&mx), 0);
    return r;
}

/* A cancelled or timed-out waiter leaves the queue and owns nothing; one
 * already handed the mutex keeps it even if cancelled before it runs. */
static int mutex_interrupt_main(void *arg)
{
    (void)arg;
    iou_mutex_init(&mx);
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    iou_task *a = spawn_checked(lock_once, NULL), *b = spawn_checked(lock_once, NULL);
    settle();
    CHECK_EQ(iou_cancel(a), 0);
    CHECK_EQ(iou_join(a), -ECANCELED);
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    CHECK(mx.owner == b); /* a is gone from the queue: b is next */
    CHECK_EQ(iou_join(b), 0);
    CHECK(mx.owner == NULL);

    CHECK_EQ(iou_mutex_lock(&mx), 0);
    iou_task *c = spawn_checked(lock_once, NULL);
    settle();
    CHECK_EQ(iou_mutex_unlock(&mx), 0); /* hands it to c, not yet running */
    CHECK_EQ(iou_cancel(c), 0);
    CHECK_EQ(iou_join(c), 0); /* it owned the mutex, and unlocked it */
    CHECK(mx.owner == NULL);

    CHECK_EQ(iou_mutex_lock(&mx), 0);
    iou_task *d = spawn_checked(lock_once, NULL);
    CHECK_EQ(iou_cancel(d), 0);
    CHECK_EQ(iou_join(d), -ECANCELED); /* cancelled before it ever ran */
    CHECK(mx.owner == iou_self());
    CHECK(mx.waiters.head == NULL);
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    return 0;
}

static int lock_with_deadline(void *arg)
{
    (void)arg;
    uint64_t prev = iou_deadline_push(iou_now() + 5000000);
    int r = iou_mutex_lock(&mx);
    iou_deadline_pop(prev);
    return r;
}

static int mutex_deadline_main(void *arg)
{
    (void)arg;
    iou_mutex_init(&mx);
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    uint64_t t0 = iou_now();
    CHECK_EQ(iou_join(spawn_checked(lock_with_deadline, NULL)), -ETIMEDOUT);
    CHECK(iou_now() - t0 >= 5000000);
    CHECK(mx.owner == iou_self());
    CHECK(mx.waiters.head == NULL);
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    return 0;
}

/* ---- semaphore ---------------------------------------------------------------- */

static iou_sem sem;

static int bounded_worker(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_sem_acquire(&sem), 0);
    enter();
    for (int i = 0; i < 3; i++)
        iou_yield();
    inside--;
    iou_sem_release(&sem);
    return 0;
}

static int sem_bound_main(void *arg)
{
    (void)arg;
    iou_sem_init(&sem, 3);
    inside = max_inside = 0;
    iou_task *t[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        t[i] = spawn_checked(bounded_worker, NULL);
    join_all(t, NTASKS);
    CHECK_EQ(max_inside, 3);
    CHECK_EQ(sem.count, 3);
    return 0;
}

static int sem_fifo_worker(void *arg)
{
    CHECK_EQ(iou_sem_acquire(&sem), 0);
    record((int)(intptr_t)arg);
    return 0;
}

static int sem_fifo_main(void *arg)
{
    (void)arg;
    iou_sem_init(&sem, 0);
    norder = 0;
    iou_task *t[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        t[i] = spawn_checked(sem_fifo_worker, (void *)(intptr_t)i);
    settle();
    CHECK_EQ(iou_sem_tryacquire(&sem), -EAGAIN);
    for (int i = 0; i < NTASKS; i++) {
        iou_sem_release(&sem);
        CHECK_EQ(sem.count, 0); /* handed over, not counted */
        CHECK_EQ(iou_sem_tryacquire(&sem), -EAGAIN); /* no barging */
    }
    join_all(t, NTASKS);
    check_order_is_identity();
    iou_sem_release(&sem);
    CHECK_EQ(sem.count, 1);
    CHECK_EQ(iou_sem_tryacquire(&sem), 0);
    CHECK_EQ(iou_sem_tryacquire(&sem), -EAGAIN);
    return 0;
}

static int acquire_once(void *arg)
{
    (void)arg;
    return iou_sem_acquire(&sem);
}

static int acquire_with_deadline(void *arg)
{
    (void)arg;
    uint64_t prev = iou_deadline_push(iou_now() + 2000000);
    int r = iou_sem_acquire(&sem);
    iou_deadline_pop(prev);
    return r;
}

static int sem_interrupt_main(void *arg)
{
    (void)arg;
    iou_sem_init(&sem, 0);
    iou_task *a = spawn_checked(acquire_once, NULL), *b = spawn_checked(acquire_once, NULL);
    iou_task *c = spawn_checked(acquire_with_deadline, NULL);
    settle();
    CHECK_EQ(iou_cancel(a), 0);
    CHECK_EQ(iou_join(a), -ECANCELED);
    CHECK_EQ(iou_join(c), -ETIMEDOUT); /* the virtual clock jumps to c's deadline */
    iou_sem_release(&sem); /* a and c consumed nothing: b gets this unit */
    CHECK_EQ(iou_join(b), 0);
    CHECK_EQ(sem.count, 0);
    CHECK(sem.waiters.head == NULL);

    /* Woken, then cancelled before running: it keeps the unit it was handed. */
    iou_task *d = spawn_checked(acquire_once, NULL);
    settle();
    iou_sem_release(&sem);
    CHECK_EQ(iou_cancel(d), 0);
    CHECK_EQ(iou_join(d), 0);
    CHECK_EQ(sem.count, 0);
    iou_sem_release(&sem);
    CHECK_EQ(sem.count, 1);
    return 0;
}

/* ---- event ------------------------------------------------------------------ */

static iou_event ev;

static int event_waiter(void *arg)
{
    (void)arg;
    int r = iou_event_wait(&ev);
    if (r == 0)
        inside++;
    return r;
}

static int event_main(void *arg)
{
    (void)arg;
    iou_event_init(&ev);
    inside = 0;
    CHECK(!iou_event_is_set(&ev));
    iou_task *t[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        t[i] = spawn_checked(event_waiter, NULL);
    settle();
    CHECK_EQ(inside, 0);
    iou_event_set(&ev);
    iou_event_clear(&ev); /* too late to strand anyone: all were released */
    join_all(t, NTASKS);
    CHECK_EQ(inside, NTASKS);

    iou_event_set(&ev);
    CHECK(iou_event_is_set(&ev));
    CHECK_EQ(iou_event_wait(&ev), 0); /* set: returns at once */
    iou_event_clear(&ev);
    CHECK(!iou_event_is_set(&ev));

    iou_task *a = spawn_checked(event_waiter, NULL);
    settle();
    CHECK_EQ(iou_cancel(a), 0);
    CHECK_EQ(iou_join(a), -ECANCELED);
    CHECK(ev.waiters.head == NULL);
    uint64_t prev = iou_deadline_push(iou_now() + 1000);
    CHECK_EQ(iou_event_wait(&ev), -ETIMEDOUT);
    iou_deadline_pop(prev);
    return 0;
}

/* ---- condition variable ------------------------------------------------------- */

static iou_cond cv;
static int items, ready_flag;

static int consumer(void *arg)
{
    int want = (int)(intptr_t)arg;
    for (int got = 0; got < want; got++) {
        CHECK_EQ(iou_mutex_lock(&mx), 0);
        while (items == 0)
            CHECK_EQ(iou_cond_wait(&cv, &mx), 0);
        CHECK(mx.owner == iou_self());
        items--;
        counter++;
        CHECK_EQ(iou_mutex_unlock(&mx), 0);
    }
    return 0;
}

static int cond_signal_main(void *arg)
{
    (void)arg;
    iou_mutex_init(&mx);
    iou_cond_init(&cv);
    items = 0;
    counter = 0;
    iou_task *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn_checked(consumer, (void *)(intptr_t)50);
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(iou_mutex_lock(&mx), 0);
        items++;
        iou_cond_signal(&cv);
        CHECK_EQ(iou_mutex_unlock(&mx), 0);
        if (i % 3 == 0)
            iou_yield();
    }
    join_all(t, 4);
    CHECK_EQ(counter, 200);
    CHECK_EQ(items, 0);
    return 0;
}

static int flag_waiter(void *arg)
{
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    while (!ready_flag)
        CHECK_EQ(iou_cond_wait(&cv, &mx), 0);
    record((int)(intptr_t)arg);
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    return 0;
}

static int cond_broadcast_main(void *arg)
{
    (void)arg;
    iou_mutex_init(&mx);
    iou_cond_init(&cv);
    ready_flag = 0;
    norder = 0;
    iou_task *t[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        t[i] = spawn_checked(flag_waiter, (void *)(intptr_t)i);
    settle();
    iou_cond_signal(&cv); /* a spurious wake-up: the predicate loop absorbs it */
    settle();
    CHECK_EQ(norder, 0);
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    ready_flag = 1;
    iou_cond_broadcast(&cv);
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    join_all(t, NTASKS);
    CHECK_EQ(norder, NTASKS);
    /* Woken in FIFO order, they re-took the mutex in that order (task 0 was
     * re-queued by the spurious signal, so it comes last). */
    for (int i = 0; i < NTASKS - 1; i++)
        CHECK_EQ(order[i], i + 1);
    CHECK_EQ(order[NTASKS - 1], 0);
    return 0;
}

static int cond_wait_once(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    int r = iou_cond_wait(&cv, &mx);
    CHECK(mx.owner == iou_self()); /* owns it again, whatever happened */
    record(r == -ECANCELED ? 1 : r == -ETIMEDOUT ? 2 : 0);
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    return r;
}

static int cond_timed(void *arg)
{
    uint64_t prev = iou_deadline_push(iou_now() + 3000000);
    int r = cond_wait_once(arg);
    iou_deadline_pop(prev);
    return r;
}

static int cond_interrupt_main(void *arg)
{
    (void)arg;
    iou_mutex_init(&mx);
    iou_cond_init(&cv);
    norder = 0;
    iou_task *a = spawn_checked(cond_wait_once, NULL);
    settle();
    /* Cancelled while we hold the mutex: a must wait for it before returning. */
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    CHECK_EQ(iou_cancel(a), 0);
    settle();
    CHECK_EQ(norder, 0); /* still queued for the mutex */
    CHECK(cv.waiters.head == NULL);
    CHECK_EQ(iou_mutex_unlock(&mx), 0);
    CHECK(mx.owner == a);
    CHECK_EQ(iou_join(a), -ECANCELED);
    CHECK_EQ(norder, 1);
    CHECK_EQ(order[0], 1);

    iou_task *b = spawn_checked(cond_timed, NULL);
    CHECK_EQ(iou_join(b), -ETIMEDOUT);
    CHECK_EQ(order[1], 2);
    CHECK(mx.owner == NULL);

    CHECK_EQ(iou_cond_wait(&cv, &mx), -EPERM); /* not the owner */
    CHECK_EQ(iou_mutex_lock(&mx), 0);
    CHECK_EQ(iou_cancel(iou_self()), 0);
    CHECK_EQ(iou_cond_wait(&cv, &mx), -ECANCELED); /* never released it */
    CHECK(mx.owner == iou_self());
    CHECK_EQ(iou_mutex_unlock(&mx), 0); /* cleanup still works when cancelled */
    return 0;
}

/* ---- outside any task ----------------------------------------------------------- */

static void test_outside_task(void)
{
    iou_mutex m = IOU_MUTEX_INIT;
    CHECK_EQ(iou_mutex_lock(&m), -EPERM);
    CHECK_EQ(iou_mutex_trylock(&m), -EPERM);
    CHECK_EQ(iou_mutex_unlock(&m), -EPERM);
    iou_sem s;
    iou_sem_init(&s, 1);
    CHECK_EQ(iou_sem_acquire(&s), 0); /* a unit is free: no wait needed */
    CHECK_EQ(iou_sem_acquire(&s), -EPERM);
    CHECK_EQ(iou_sem_tryacquire(&s), -EAGAIN);
    iou_sem_release(&s);
    CHECK_EQ(iou_sem_tryacquire(&s), 0);
    iou_event e;
    iou_event_init(&e);
    CHECK_EQ(iou_event_wait(&e), -EPERM);
    iou_event_set(&e);
    CHECK_EQ(iou_event_wait(&e), 0);
    iou_cond c;
    iou_cond_init(&c);
    CHECK_EQ(iou_cond_wait(&c, &m), -EPERM);
    iou_cond_signal(&c);
    iou_cond_broadcast(&c);
}

int main(void)
{
    test_outside_task();
    CHECK_EQ(run_virtual(mutex_exclusion_main, NULL), 0);
    CHECK_EQ(run_virtual(mutex_fifo_main, NULL), 0);
    CHECK_EQ(run_virtual(mutex_errors_main, NULL), 0);
    CHECK_EQ(run_virtual(mutex_interrupt_main, NULL), 0);
    CHECK_EQ(run_virtual(mutex_deadline_main, NULL), 0);
    CHECK_EQ(run_virtual(sem_bound_main, NULL), 0);
    CHECK_EQ(run_virtual(sem_fifo_main, NULL), 0);
    CHECK_EQ(run_virtual(sem_interrupt_main, NULL), 0);
    CHECK_EQ(run_virtual(event_main, NULL), 0);
    CHECK_EQ(run_virtual(cond_signal_main, NULL), 0);
    CHECK_EQ(run_virtual(cond_broadcast_main, NULL), 0);
    CHECK_EQ(run_virtual(cond_interrupt_main, NULL), 0);
    puts("test_sync: ok");
    return 0;
}
