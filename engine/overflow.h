/*
 * Stack overflow reporting: a fault in a task's guard page (or a smashed
 * canary) prints the task's name and "stack overflow", then aborts.
 */
#ifndef IOU_OVERFLOW_H
#define IOU_OVERFLOW_H

typedef struct iou_loop iou_loop;
typedef struct iou_task iou_task;

/* Installs the fault handler (once per process) and, if this thread has none,
 * an alternate signal stack (the faulting stack is unusable). */
void iou__overflow_thread_init(iou_loop *l);
void iou__overflow_thread_fini(iou_loop *l);

/* Prints the overflow message for t and aborts. Async-signal-safe. */
_Noreturn void iou__overflow_report(const iou_task *t);

#endif
