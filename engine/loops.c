/*
 * A loop per core: n threads, each with its own loop (own ring, own stacks,
 * own timers), each running main(arg) as its first task. Nothing is shared
 * between the loops except what the program shares itself; work moves
 * between them only by thread-safe posts (iou_call_soon_threadsafe).
 *
 * Lifetime rule that makes posting between the loops safe: every loop keeps
 * running (serving posts, and its other tasks) until the mains of all loops
 * have returned; only then is each loop's remaining work cancelled and the
 * loop freed. So while any main runs, every loop of the group is alive.
 */
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct member {
    struct iou_loops *group;
    unsigned index;
    pthread_t thread;
    bool started;
    iou_loop *loop;
    iou_task *main_task;
    int result;
    bool wound_down; /* every main returned: this loop may end */
    bool gone;       /* (under the group's lock) the loop is being freed */
} member;

struct iou_loops {
    unsigned n;
    iou_fn main;
    void *arg;
    iou_loops_opts opts;
    iou_loop_opts loop_opts;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned ready;    /* loops created (or failed) */
    int error;         /* the first loop's creation error */
    bool go;           /* every loop exists: run the mains (else give up) */
    atomic_uint mains; /* mains still running */
    member m[];
};

static __thread member *this_member;

int iou_loops_index(void)
{
    return this_member ? (int)this_member->index : -1;
}

iou_loops *iou_loops_self(void)
{
    return this_member ? this_member->group : NULL;
}

/* Runs on loop i once every main has returned: cancels what is left there
 * (servers waiting for connections) and lets the loop end. */
static void wind_down(void *arg)
{
    member *m = arg;
    m->wound_down = true;
    iou__cancel_all(m->loop);
    iou_loop_keepalive(m->loop, -1);
}

/* The last main to return lets every loop of the group wind down. */
static void main_returned(struct iou_loops *g)
{
    if (atomic_fetch_sub(&g->mains, 1) == 1)
        for (unsigned i = 0; i < g->n; i++)
            iou_call_soon_threadsafe(g->m[i].loop, wind_down, &g->m[i]);
}

static int main_wrapper(void *arg)
{
    member *m = arg;
    int result = m->group->main(m->group->arg);
    main_returned(m->group);
    return result;
}

static void pin(unsigned index)
{
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) == 0)
        return;
    unsigned want = index % (unsigned)CPU_COUNT(&allowed), seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed) || seen++ != want)
            continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
        return;
    }
}

/* Reports this loop's creation and waits for the verdict on the group. */
static bool rendezvous(member *m, int err)
{
    struct iou_loops *g = m->group;
    pthread_mutex_lock(&g->lock);
    if (err && g->error == 0)
        g->error = err;
    g->ready++;
    pthread_cond_broadcast(&g->changed);
    while (!g->go && g->error == 0)
        pthread_cond_wait(&g->changed, &g->lock);
    bool go = g->go;
    pthread_mutex_unlock(&g->lock);
    return go;
}

static void *member_thread(void *arg)
{
    member *m = arg;
    struct iou_loops *g = m->group;
    this_member = m;
    if (g->opts.pin)
        pin(m->index);
    int err = 0;
    m->loop = iou_loop_new_ex(&g->loop_opts, &err);
    if (!rendezvous(m, m->loop ? 0 : err)) {
        iou_loop_free(m->loop);
        return NULL;
    }
    iou_loop_keepalive(m->loop, 1); /* released by wind_down */
    m->main_task = iou__spawn(m->loop, main_wrapper, m, NULL);
    if (m->main_task == NULL) {
        m->result = -ENOMEM;
        main_returned(g);
    }
    /* Until every main returned and this loop's tasks ended (iou_loop_stop
     * only pauses it: other loops may still post here). */
    do
        iou_loop_run(m->loop);
    while (!m->wound_down || !iou__loop_idle(m->loop));
    if (m->main_task) {
        m->result = m->main_task->result;
        iou_detach(m->main_task); /* done: frees its record */
    }
    pthread_mutex_lock(&g->lock); /* iou_loops_stop no longer posts here */
    m->gone = true;
    pthread_mutex_unlock(&g->lock);
    iou_loop_free(m->loop);
    this_member = NULL;
    return NULL;
}

/* ---- the group ------------------------------------------------------------ */

static unsigned online_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    return 1;
}

static void join_all(struct iou_loops *g, unsigned started)
{
    for (unsigned i = 0; i < started; i++)
        pthread_join(g->m[i].thread, NULL);
}

static void group_free(struct iou_loops *g)
{
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->changed);
    free(g);
}

static struct iou_loops *group_new(unsigned n, iou_fn main, void *arg, const iou_loops_opts *opts)
{
    struct iou_loops *g = calloc(1, sizeof(*g) + n * sizeof(member));
    if (g == NULL)
        return NULL;
    g->n = n;
    g->main = main;
    g->arg = arg;
    if (opts)
        g->opts = *opts;
    if (opts && opts->loop)
        g->loop_opts = *opts->loop;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->changed, NULL);
    atomic_init(&g->mains, n);
    for (unsigned i = 0; i < n; i++)
        g->m[i] = (member){.group = g, .index = i};
    return g;
}

/* Gives the verdict: go if every loop was created, else every thread leaves. */
static int start_threads(struct iou_loops *g, unsigned *started)
{
    int err = 0;
    for (*started = 0; *started < g->n; (*started)++) {
        err = -pthread_create(&g->m[*started].thread, NULL, member_thread, &g->m[*started]);
        if (err)
            break;
    }
    pthread_mutex_lock(&g->lock);
    while (g->ready < *started)
        pthread_cond_wait(&g->changed, &g->lock);
    if (err && g->error == 0)
        g->error = err;
    g->go = g->error == 0;
    err = g->error;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
    return err;
}

iou_loops *iou_loops_start(unsigned n, iou_fn main, void *arg, const iou_loops_opts *opts,
                           int *err)
{
    int dummy;
    err = err ? err : &dummy;
    if (main == NULL || n > 4096) {
        *err = -EINVAL;
        return NULL;
    }
    struct iou_loops *g = group_new(n ? n : online_cpus(), main, arg, opts);
    if (g == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    unsigned started;
    *err = start_threads(g, &started);
    if (*err) {
        join_all(g, started);
        group_free(g);
        return NULL;
    }
    return g;
}

unsigned iou_loops_count(const iou_loops *ls)
{
    return ls ? ls->n : 0;
}

iou_loop *iou_loops_get(const iou_loops *ls, unsigned i)
{
    return ls && i < ls->n ? ls->m[i].loop : NULL;
}

static void cancel_main(void *arg)
{
    member *m = arg;
    if (m->main_task && !iou__task_done(m->main_task))
        iou_cancel(m->main_task);
}

int iou_loops_stop(iou_loops *ls)
{
    if (ls == NULL)
        return -EINVAL;
    pthread_mutex_lock(&ls->lock);
    for (unsigned i = 0; i < ls->n; i++)
        if (!ls->m[i].gone)
            iou_call_soon_threadsafe(ls->m[i].loop, cancel_main, &ls->m[i]);
    pthread_mutex_unlock(&ls->lock);
    return 0;
}

int iou_loops_join(iou_loops *ls, int *results)
{
    if (ls == NULL)
        return -EINVAL;
    join_all(ls, ls->n);
    for (unsigned i = 0; results && i < ls->n; i++)
        results[i] = ls->m[i].result;
    group_free(ls);
    return 0;
}
