/*
 * The worker pool (pool.h): one per process, bounded, started lazily.
 *
 * Jobs wait in one FIFO under one mutex (the pool's, taken by the posting
 * loop and the workers: never by a loop for anything else). A worker runs a
 * job and hands it back through its loop's inbox (remote.c), whose done runs
 * on the loop's thread. A worker that finished a job watches the queue for a
 * few microseconds (spin.h) before it sleeps on the condition variable, and
 * counts as available meanwhile: a loop posting job after job then pays no
 * futex wake-up (nor a new thread) per job. Workers are detached; one that
 * finds nothing to do for idle_ns exits, and at process exit the idle ones
 * are told to leave.
 *
 * fork(): the pool's lock is held across fork, and the child starts with an
 * empty pool (its workers were not copied). Jobs queued or running in the
 * parent at that moment are not run in the child; loops copied into the
 * child must not be used there (create new ones).
 */
#include "pool.h"
#include "loop.h"
#include "remote.h"
#include "spin.h"
#include "task.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum {
    MIN_THREADS = 4,
    MAX_THREADS = 1024,
    SPIN_NS = 20000, /* a worker that just finished watches for the next job this
                        long before it sleeps (most of it yielding the CPU) */
};
#define DEFAULT_IDLE_NS ((uint64_t)10 * 1000000000u)

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was queued, or the process exits */
    iou__job *head, **tail;
    size_t queued;
    atomic_size_t queued_hint; /* queued, readable without the lock (spinning) */
    unsigned threads, idle, max;
    atomic_uint spinning; /* workers about to look for a job (see spin_for_job) */
    uint64_t idle_ns;
    bool exiting;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* ---- configuration ------------------------------------------------------ */

static unsigned cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static unsigned default_max(void)
{
    const char *env = getenv("IOU_POOL_THREADS");
    if (env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (*env && *end == '\0' && v >= 1 && v <= MAX_THREADS)
            return (unsigned)v;
    }
    unsigned n = 2 * cpu_count();
    return n < MIN_THREADS ? MIN_THREADS : n > MAX_THREADS ? MAX_THREADS : n;
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&pool.lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&pool.lock);
}

/* The child has no workers: forget them and their queue (see the top). */
static void atfork_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pool.head = NULL;
    pool.tail = &pool.head;
    pool.queued = 0;
    atomic_store(&pool.queued_hint, 0);
    pool.threads = pool.idle = 0;
    atomic_store(&pool.spinning, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool.work, &ca);
    pthread_condattr_destroy(&ca);
}

/* Tells idle workers to leave now instead of after idle_ns. Busy ones leave
 * when their job is done; nothing waits for them. */
static void at_exit(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.exiting = true;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.lock);
}

static void pool_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* idle timeouts ignore clock changes */
    pthread_cond_init(&pool.work, &ca);
    pthread_condattr_destroy(&ca);
    pool.tail = &pool.head;
    if (pool.max == 0)
        pool.max = default_max();
    if (pool.idle_ns == 0)
        pool.idle_ns = DEFAULT_IDLE_NS;
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    atexit(at_exit);
}

int iou_pool_config(const iou_pool_opts *opts)
{
    pthread_once(&pool_once, pool_init);
    unsigned max = opts && opts->max_threads ? opts->max_threads : default_max();
    if (max > MAX_THREADS)
        return -EINVAL;
    pthread_mutex_lock(&pool.lock);
    pool.max = max;
    pool.idle_ns = opts && opts->idle_timeout_ns ? opts->idle_timeout_ns : DEFAULT_IDLE_NS;
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

int iou_pool_threads(void)
{
    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&pool.lock);
    int n = (int)pool.threads;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

/* ---- workers ---------------------------------------------------------------- */

static struct timespec deadline_after(uint64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + ns;
    ts.tv_sec = (time_t)(t / 1000000000u);
    ts.tv_nsec = (long)(t % 1000000000u);
    return ts;
}

static bool job_queued(const void *unused)
{
    (void)unused;
    return atomic_load_explicit(&pool.queued_hint, memory_order_relaxed) != 0;
}

/* A worker that finished a job watches for the next one without the lock,
 * for at most SPIN_NS. It counts as available from the moment its job is
 * done (before the job goes back, so the loop's next post sees it) until it
 * looks at the queue under the lock: a post meanwhile wakes no sleeping
 * worker and starts none for the job this one will take. The count goes up
 * anywhere but down only under the lock, right before that look. */
static void spin_for_job(void)
{
    iou__spin_until(job_queued, NULL, SPIN_NS);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_sub_explicit(&pool.spinning, 1, memory_order_relaxed);
}

/* The next job, or NULL when this worker should exit (idle too long, the
 * process exits, or the pool shrank). Called and returns with the lock held. */
static iou__job *next_job(void)
{
    struct timespec until = deadline_after(pool.idle_ns);
    while (pool.head == NULL) {
        if (pool.exiting || pool.threads > pool.max)
            return NULL;
        pool.idle++;
        int err = pthread_cond_timedwait(&pool.work, &pool.lock, &until);
        pool.idle--;
        if (err == ETIMEDOUT && pool.head == NULL)
            return NULL;
    }
    iou__job *j = pool.head;
    pool.head = j->next;
    if (pool.head == NULL)
        pool.tail = &pool.head;
    pool.queued--;
    atomic_fetch_sub_explicit(&pool.queued_hint, 1, memory_order_relaxed);
    return j;
}

static void *worker(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool.lock);
    iou__job *j;
    while ((j = next_job())) {
        pthread_mutex_unlock(&pool.lock);
        j->run(j);
        atomic_fetch_add_explicit(&pool.spinning, 1, memory_order_relaxed);
        iou__remote_post(j->loop, j, true); /* j belongs to its loop again */
        spin_for_job();
    }
    pool.threads--;
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Starts a detached worker with every signal blocked (signals are for the
 * application's threads). Called with the lock held. */
static int start_worker(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    int err = pthread_create(&tid, &attr, worker, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err)
        return -err;
    pool.threads++;
    return 0;
}

int iou__pool_post(iou_loop *l, iou__job *j)
{
    pthread_once(&pool_once, pool_init);
    j->loop = l;
    j->next = NULL;
    pthread_mutex_lock(&pool.lock);
    /* Every queued job needs an available worker: a spinning one, a
     * sleeping one (woken), or else a new one. */
    size_t queued = pool.queued + 1;
    unsigned spinning = atomic_load_explicit(&pool.spinning, memory_order_relaxed);
    if (pool.idle + spinning < queued && pool.threads < pool.max) {
        int err = start_worker();
        if (err && pool.threads == 0) {
            pthread_mutex_unlock(&pool.lock);
            return err == -ENOMEM ? -ENOMEM : -EAGAIN;
        }
    }
    *pool.tail = j;
    pool.tail = &j->next;
    pool.queued = queued;
    atomic_fetch_add_explicit(&pool.queued_hint, 1, memory_order_relaxed);
    if (queued > spinning && pool.idle)
        pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    iou__remote_job_out(l);
    return 0;
}

/* ---- iou_run_in_pool ---------------------------------------------------------- */

/* A call's record is on the heap, not the caller's stack: a caller that is
 * cancelled leaves at once, and the record outlives it until the worker is
 * done with it. */
typedef struct call {
    iou__job job;
    iou_fn fn;
    void *arg;
    void (*orphan)(void *arg);
    iou_task *waiter; /* NULL once the caller left */
    int result;
} call;

static void call_run(iou__job *j)
{
    call *c = iou__container_of(j, call, job);
    c->result = c->fn(c->arg);
}

static void call_done(iou_loop *l, iou__job *j)
{
    (void)l;
    call *c = iou__container_of(j, call, job);
    if (c->waiter) {
        iou__wake(c->waiter); /* the caller frees c */
        return;
    }
    if (c->orphan)
        c->orphan(c->arg);
    free(c);
}

/* Cancelled or past its deadline: the caller leaves now; call_done frees c. */
static void call_abandoned(iou_task *t, void *ctx)
{
    call *c = ctx;
    c->waiter = NULL;
    iou__wake(t);
}

/* iou_run_in_pool, and for internal callers that hand arg over: if the
 * caller is interrupted, orphan(arg) runs on the loop once fn returned. */
int iou__run_in_pool(iou_fn fn, void *arg, void (*orphan)(void *arg))
{
    if (fn == NULL)
        return -EINVAL;
    iou_task *t = iou__current();
    if (t == NULL)
        return fn(arg);
    int err = iou__interrupted(t);
    if (err)
        return err;
    call *c = malloc(sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    *c = (call){.job = {.run = call_run, .done = call_done}, .fn = fn, .arg = arg,
                .orphan = orphan, .waiter = t};
    err = iou__pool_post(t->loop, &c->job);
    if (err) {
        free(c);
        return err;
    }
    int why = iou__park(t, call_abandoned, c);
    if (why)
        return why;
    int result = c->result;
    free(c);
    return result;
}

int iou_run_in_pool(iou_fn fn, void *arg)
{
    return iou__run_in_pool(fn, arg, NULL);
}
