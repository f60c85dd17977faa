/*
 * Task groups (asyncio.TaskGroup, trio nurseries): a group owns its children.
 *
 * Each child is an ordinary task plus a small record holding a watcher, so the
 * group learns when each child ends without polling. Records live in blocks
 * that never move (a watcher is linked into its task by address), doubling
 * in size, so a group of n children costs O(log n) allocations.
 *
 * Invariants:
 *   - g->running counts children whose watcher has not fired yet.
 *   - g->failure is the first nonzero value a child returned; once it is set
 *     (or the group is cancelled otherwise) g->cancelling is true and every
 *     child, including ones spawned later, is cancelled.
 *   - Children are freed only by iou_group_wait, after all have ended: their
 *     handles stay valid (for iou_cancel, iou_wait_any) for the group's life.
 *   - g->waiter is the task parked in iou_group_wait until the last child
 *     ends; the watcher that brings running to 0 wakes it exactly once.
 */
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <stdlib.h>

enum { FIRST_BLOCK = 8 }; /* child records in the first block */

typedef struct child {
    iou__watch watch;
    iou_group *group;
    iou_task *task;
} child;

typedef struct child_block {
    struct child_block *next; /* older, smaller block */
    size_t used, cap;
    child slots[];
} child_block;

struct iou_group {
    iou_loop *loop;
    iou_task *waiter;     /* parked in iou_group_wait, or NULL */
    child_block *blocks;  /* newest (largest) first */
    size_t running;
    int failure;          /* first nonzero child value, 0 so far */
    bool cancelling;
    bool interrupted_first; /* the waiter was cancelled / timed out before any failure */
};

iou_group *iou_group_new(void)
{
    iou_loop *l = iou__loop();
    if (l == NULL)
        return NULL;
    iou_group *g = calloc(1, sizeof(*g));
    if (g)
        g->loop = l;
    return g;
}

/* ---- child records ------------------------------------------------------- */

static child *child_alloc(iou_group *g)
{
    child_block *b = g->blocks;
    if (b == NULL || b->used == b->cap) {
        size_t cap = b ? b->cap * 2 : FIRST_BLOCK;
        child_block *nb = malloc(sizeof(*nb) + cap * sizeof(child));
        if (nb == NULL)
            return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        g->blocks = b = nb;
    }
    return &b->slots[b->used++];
}

/* Gives back the record child_alloc handed out last (spawn failed). */
static void child_unalloc(iou_group *g)
{
    g->blocks->used--;
}

/* Calls fn on every child task, ended or not. */
static void for_each_child(iou_group *g, void (*fn)(iou_task *t))
{
    for (child_block *b = g->blocks; b; b = b->next)
        for (size_t i = 0; i < b->used; i++)
            fn(b->slots[i].task);
}

static void free_blocks(iou_group *g)
{
    while (g->blocks) {
        child_block *b = g->blocks;
        g->blocks = b->next;
        free(b);
    }
}

/* ---- cancellation and failure -------------------------------------------- */

static void cancel_task(iou_task *t)
{
    iou_cancel(t); /* -ESRCH for children that have ended: nothing to do */
}

static void cancel_children(iou_group *g)
{
    if (g->cancelling)
        return; /* already done; later children are cancelled as they spawn */
    g->cancelling = true;
    for_each_child(g, cancel_task);
}

void iou_group_cancel(iou_group *g)
{
    if (g)
        cancel_children(g);
}

/* Runs on the loop right after a child's function returned. */
static void child_ended(iou__watch *w, iou_task *done)
{
    iou_group *g = iou__container_of(w, child, watch)->group;
    g->running--;
    if (done->result != 0 && g->failure == 0) {
        g->failure = done->result;
        cancel_children(g);
    }
    if (g->running == 0 && g->waiter) {
        iou_task *waiter = g->waiter;
        g->waiter = NULL;
        iou__wake(waiter);
    }
}

iou_task *iou_group_spawn(iou_group *g, iou_fn fn, void *arg)
{
    if (g == NULL || fn == NULL)
        return NULL;
    child *c = child_alloc(g);
    if (c == NULL)
        return NULL;
    iou_task *t = iou__spawn(g->loop, fn, arg, NULL);
    if (t == NULL) {
        child_unalloc(g);
        return NULL;
    }
    c->group = g;
    c->task = t;
    c->watch.fn = child_ended;
    iou__watch_add(t, &c->watch);
    g->running++;
    if (g->cancelling)
        iou_cancel(t); /* it starts, and its first blocking call says -ECANCELED */
    return t;
}

/* ---- waiting ------------------------------------------------------------- */

/* Records that the waiter's own interruption is why the children are being
 * cancelled, unless a child failure got there first. */
static void note_interruption(iou_group *g)
{
    if (g->failure == 0 && !g->interrupted_first) {
        g->interrupted_first = true;
        cancel_children(g);
    }
}

/* The waiter was cancelled or its deadline passed: the children go down with
 * it, but it stays parked until the last of them has ended (child_ended wakes
 * it), so no child is ever left running unowned. */
static void waiter_interrupted(iou_task *waiter, void *ctx)
{
    (void)waiter;
    note_interruption(ctx);
}

/* Parks until g->running is 0. A child of g (or anyone holding g) may spawn
 * more children meanwhile, so the count is re-checked after every wake. */
static void await_children(iou_group *g, iou_task *t)
{
    while (g->running) {
        g->waiter = t;
        if (iou__interrupted(t)) {
            note_interruption(g);
            iou__park(t, NULL, NULL);
        } else {
            iou__park(t, waiter_interrupted, g);
        }
    }
}

/* Whether t is a child of g: its watchers (rarely more than one) say so. */
static bool is_child(iou_group *g, const iou_task *t)
{
    for (const iou__watch *w = t->watchers; w; w = w->next)
        if (w->fn == child_ended && iou__container_of(w, child, watch)->group == g)
            return true;
    return false;
}

static void free_ended_task(iou_task *t)
{
    iou_detach(t); /* it has ended: detaching frees its record now */
}

int iou_group_wait(iou_group *g)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return -EPERM;
    if (g == NULL || g->waiter)
        return -EINVAL;
    if (is_child(g, t))
        return -EDEADLK; /* a child would wait for itself forever */
    await_children(g, t);
    /* The interruption's reason is read now, not when it happened: a
     * cancellation that arrived after a deadline still wins. */
    int result = g->interrupted_first ? iou__interrupted(t) : g->failure;
    for_each_child(g, free_ended_task);
    free_blocks(g);
    free(g);
    return result;
}
