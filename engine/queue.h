/*
 * The ready queue: an intrusive FIFO of runnable work. A task embeds its node
 * (resuming it is "running" the node); call_soon callbacks use pooled nodes.
 * No allocation, O(1) push and pop.
 */
#ifndef IOU_QUEUE_H
#define IOU_QUEUE_H

#include <stddef.h>

typedef struct iou__work iou__work;
struct iou__work {
    iou__work *next;
    void (*run)(iou__work *w);
};

typedef struct iou__queue {
    iou__work *head;
    iou__work **tail; /* &head when empty */
} iou__queue;

static inline void iou__queue_init(iou__queue *q)
{
    q->head = NULL;
    q->tail = &q->head;
}

static inline int iou__queue_empty(const iou__queue *q)
{
    return q->head == NULL;
}

static inline void iou__queue_push(iou__queue *q, iou__work *w)
{
    w->next = NULL;
    *q->tail = w;
    q->tail = &w->next;
}

static inline iou__work *iou__queue_pop(iou__queue *q)
{
    iou__work *w = q->head;
    if (w == NULL)
        return NULL;
    q->head = w->next;
    if (q->head == NULL)
        q->tail = &q->head;
    return w;
}

/* Moves every node of src to dst (dst must be empty); src becomes empty. */
static inline void iou__queue_take(iou__queue *dst, iou__queue *src)
{
    *dst = *src;
    if (dst->head == NULL)
        dst->tail = &dst->head;
    iou__queue_init(src);
}

#define iou__container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
