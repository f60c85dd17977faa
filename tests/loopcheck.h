/* Leak checks that look inside the loop (internal engine/loop.h). */
#ifndef IOU_TEST_LOOPCHECK_H
#define IOU_TEST_LOOPCHECK_H

#include "check.h"
#include "loop.h"

/* At the end of a test's main task: only main is alive and holds a stack,
 * and the kernel holds no operation of ours. */
static inline void check_nothing_leaked(void)
{
    iou_loop *l = iou__loop();
    CHECK_EQ(l->tasks_alive, 1);
    CHECK_EQ(l->stacks.in_use, 1);
    CHECK_EQ(l->ops_inflight, 0);
}

#endif
