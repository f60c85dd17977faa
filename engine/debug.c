/*
 * Debug mode (IOU_DEBUG=1 or iou_loop_opts.debug): slow-task warnings, the
 * stack high-water mark per spawn site, reports of unjoined tasks and leaked
 * stacks at loop end, misuse messages, and the dump on SIGUSR1.
 *
 * A normal loop never gets here: its l->dbg is 0 and l->debug NULL. Every
 * message goes to stderr, starts with "iou: debug: " and names the task by
 * its name and spawn site.
 */
#include "debug.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    DEFAULT_SLOW_MS = 100,
    PAINT = 0xa5,     /* the byte a debug-mode stack is filled with at spawn */
    PAINT_SKIP = 64,  /* the lowest bytes keep the canary of unguarded stacks */
};

typedef struct iou__debug iou__debug;

/* The deepest stack use seen among the tasks spawned at one site. */
typedef struct site_mark {
    const char *file, *func; /* NULL file: tasks whose spawn site is unknown */
    int line;
    size_t tasks;
    size_t max_used, stack_size;
} site_mark;

struct iou__debug {
    uint64_t slow_ns;
    site_mark *sites;
    size_t nsites, cap;
    unsigned dumps_seen; /* dump requests (signals) already answered */
};

/* ---- mode ------------------------------------------------------------------ */

static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static uint64_t slow_threshold(const iou_loop_opts *opts)
{
    if (opts && opts->slow_task_ns)
        return opts->slow_task_ns;
    const char *v = getenv("IOU_DEBUG_SLOW_MS");
    char *end;
    unsigned long ms = v ? strtoul(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *end != '\0' || ms == 0)
        ms = DEFAULT_SLOW_MS;
    return (uint64_t)ms * 1000000u;
}

/* ---- SIGUSR1: a dump at the next iteration of every debug-mode loop ------- */

static volatile sig_atomic_t dump_requests;
static pthread_once_t signal_once = PTHREAD_ONCE_INIT;

static void on_dump_signal(int sig)
{
    (void)sig;
    dump_requests++; /* only this handler writes it */
}

/* Installed only where nobody else handles SIGUSR1. No SA_RESTART: a loop
 * waiting in the kernel returns to look at the flag. */
static void install_dump_signal(void)
{
    struct sigaction old;
    if (sigaction(SIGUSR1, NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
        (old.sa_flags & SA_SIGINFO))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_dump_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

void iou__debug_tick(iou_loop *l)
{
    unsigned requests = (unsigned)dump_requests;
    if (requests == l->debug->dumps_seen)
        return;
    l->debug->dumps_seen = requests;
    iou_dump(stderr);
}

int iou__debug_init(iou_loop *l, const iou_loop_opts *opts)
{
    if ((opts && opts->trace) || env_on("IOU_TRACE"))
        l->dbg |= IOU__DBG_TRACE;
    if (!(opts && opts->debug) && !env_on("IOU_DEBUG"))
        return 0;
    l->debug = calloc(1, sizeof(*l->debug));
    if (l->debug == NULL)
        return -ENOMEM;
    l->debug->slow_ns = slow_threshold(opts);
    l->debug->dumps_seen = (unsigned)dump_requests;
    l->dbg |= IOU__DBG_ON;
    pthread_once(&signal_once, install_dump_signal);
    return 0;
}

/* ---- naming ------------------------------------------------------------------ */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void describe_site(const char *file, int line, const char *func, char *buf, size_t len)
{
    if (file)
        snprintf(buf, len, "spawned at %s:%d in %s", base_name(file), line, func ? func : "?");
    else if (func)
        snprintf(buf, len, "started by %s", func);
    else
        snprintf(buf, len, "spawn site unknown");
}

void iou__debug_describe(iou_task *t, char *buf, size_t len)
{
    char site[160];
    describe_site(t->site_file, t->site_line, t->site_func, site, sizeof(site));
    snprintf(buf, len, "'%s' (%s)", iou__task_name(t), site);
}

/* ---- slow tasks --------------------------------------------------------------- */

void iou__debug_ran(iou_loop *l, iou_task *t, uint64_t start, uint64_t now)
{
    t->dbg_since = now;
    t->dbg_hook = t->on_interrupt;
    uint64_t ran = now - start;
    if (ran < l->debug->slow_ns)
        return;
    char who[224];
    iou__debug_describe(t, who, sizeof(who));
    fprintf(stderr,
            "iou: debug: task %s ran %.1f ms without suspending (threshold %.1f ms): "
            "it held up every other task\n",
            who, (double)ran / 1e6, (double)l->debug->slow_ns / 1e6);
}

/* ---- stack high-water marks ------------------------------------------------------ */

void iou__debug_spawned(iou_loop *l, iou_task *t)
{
    (void)l;
    t->dbg_since = iou__clock();
    t->dbg_hook = NULL;
    memset(t->stack->lo + PAINT_SKIP, PAINT, t->stack->size - PAINT_SKIP);
}

/* Bytes of s a task has written: from the top down to the lowest byte that
 * lost its paint. Reads frames the sanitizer has poisoned: not instrumented. */
__attribute__((no_sanitize_address)) static size_t stack_used(const iou__stack *s)
{
    const unsigned char *p = (const unsigned char *)s->lo + PAINT_SKIP;
    const unsigned char *end = (const unsigned char *)s->lo + s->size;
    while (p < end && *p == PAINT)
        p++;
    return (size_t)(end - p);
}

static site_mark *site_of(iou__debug *d, const iou_task *t)
{
    for (size_t i = 0; i < d->nsites; i++) {
        site_mark *m = &d->sites[i];
        if (m->file == t->site_file && m->line == t->site_line && m->func == t->site_func)
            return m;
    }
    if (d->nsites == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        site_mark *sites = realloc(d->sites, cap * sizeof(*sites));
        if (sites == NULL)
            return NULL; /* a lost mark is not worth failing the program */
        d->sites = sites;
        d->cap = cap;
    }
    site_mark *m = &d->sites[d->nsites++];
    *m = (site_mark){.file = t->site_file, .func = t->site_func, .line = t->site_line};
    return m;
}

void iou__debug_task_end(iou_loop *l, iou_task *t)
{
    site_mark *m = site_of(l->debug, t);
    if (m == NULL)
        return;
    size_t used = stack_used(t->stack);
    m->tasks++;
    if (used >= m->max_used) {
        m->max_used = used;
        m->stack_size = t->stack->size;
    }
}

static void report_stack_marks(const iou__debug *d)
{
    if (d->nsites == 0)
        return;
    fprintf(stderr, "iou: debug: stack high-water marks by spawn site (deepest task):\n");
    for (size_t i = 0; i < d->nsites; i++) {
        const site_mark *m = &d->sites[i];
        char site[160];
        describe_site(m->file, m->line, m->func, site, sizeof(site));
        fprintf(stderr, "iou: debug:   %s: %zu task(s), %zu of %zu bytes used (%.0f%%)\n", site,
                m->tasks, m->max_used, m->stack_size,
                m->stack_size ? 100.0 * (double)m->max_used / (double)m->stack_size : 0.0);
    }
}

void iou__debug_fini(iou_loop *l)
{
    iou__debug *d = l->debug;
    if (d == NULL)
        return;
    report_stack_marks(d);
    free(d->sites);
    free(d);
    l->debug = NULL;
}

/* ---- loop end ------------------------------------------------------------------------ */

static const char *state_name(const iou_task *t)
{
    switch (t->state) {
    case IOU__TASK_READY:
        return "ready";
    case IOU__TASK_RUNNING:
        return "running";
    case IOU__TASK_PARKED:
        return "parked";
    default:
        return "done";
    }
}

void iou__debug_report_unjoined(iou_loop *l)
{
    char who[224];
    for (iou_task *t = l->live; t; t = t->live_next) {
        if (t->detached || t->joiner)
            continue;
        iou__debug_describe(t, who, sizeof(who));
        fprintf(stderr,
                "iou: debug: task %s was never joined or detached: still %s at loop end "
                "(it is cancelled now)\n",
                who, state_name(t));
    }
    for (iou_task *t = l->finished; t; t = t->live_next) {
        iou__debug_describe(t, who, sizeof(who));
        fprintf(stderr,
                "iou: debug: task %s finished (returned %d) but was never joined or "
                "detached\n",
                who, t->result);
    }
}

void iou__debug_report_abandoned(iou_loop *l)
{
    char who[224];
    for (iou_task *t = l->live; t; t = t->live_next) {
        iou__debug_describe(t, who, sizeof(who));
        fprintf(stderr, "iou: debug: task %s ignored cancellation: abandoned, %s\n", who,
                state_name(t));
    }
    if (l->stacks.in_use)
        fprintf(stderr, "iou: debug: %zu task stack(s) still in use at loop end (leaked)\n",
                l->stacks.in_use);
}

/* ---- misuse ------------------------------------------------------------------------------ */

void iou__debug_misuse(iou_task *t, const char *what)
{
    char who[224];
    iou__debug_describe(t, who, sizeof(who));
    iou_task *self = iou__current();
    fprintf(stderr, "iou: debug: misuse: %s task %s (called from %s%s%s)\n", what, who,
            self ? "task '" : "outside any task", self ? iou__task_name(self) : "",
            self ? "'" : "");
}

_Noreturn void iou__debug_wrong_thread(iou_loop *l, const char *fn)
{
    fprintf(stderr,
            "iou: debug: %s() called on loop %p from a thread that does not own it: a data "
            "race (only functions documented as thread-safe may be); aborting\n",
            fn, (void *)l);
    abort();
}

void iou__debug_blocking_in_callback(iou_loop *l, const char *fn)
{
    (void)l;
    fprintf(stderr,
            "iou: debug: %s() called from a loop callback, not a task: the plain system "
            "call runs and blocks the whole loop; call it from a task (iou_loop_spawn)\n",
            fn);
}
