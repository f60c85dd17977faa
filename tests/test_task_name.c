/*
 * Task names: the default is the spawn site ("file.c:123 fn"), iou_run's
 * first task is "main", names are copied and cut to IOU_TASK_NAME_MAX - 1
 * bytes, NULL / "" restore the default; the plain (ABI) iou_spawn function
 * gives "task".
 */
#include "testutil.h"

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static int says_own_name(void *arg)
{
    return strcmp(iou_task_name(NULL), arg) == 0 ? 0 : 1;
}

static int main_task(void *arg)
{
    (void)arg;
    CHECK_EQ(strcmp(iou_task_name(NULL), "main"), 0);
    CHECK_EQ(strcmp(iou_task_name(iou_self()), "main"), 0);

    int line = __LINE__ + 1;
    iou_task *t = iou_spawn(nothing, NULL);
    CHECK(t != NULL);
    char want[IOU_TASK_NAME_MAX];
    snprintf(want, sizeof(want), "test_task_name.c:%d main_task", line);
    CHECK_EQ(strcmp(iou_task_name(t), want), 0);

    CHECK_EQ(iou_task_set_name(t, "a name far longer than thirty-one bytes"), 0);
    CHECK_EQ(strlen(iou_task_name(t)), IOU_TASK_NAME_MAX - 1);
    CHECK_EQ(strncmp(iou_task_name(t), "a name far longer than thirty-one bytes",
                     IOU_TASK_NAME_MAX - 1), 0);
    CHECK_EQ(iou_task_set_name(t, NULL), 0);
    CHECK_EQ(strcmp(iou_task_name(t), want), 0);
    CHECK_EQ(iou_task_set_name(t, "x"), 0);
    CHECK_EQ(iou_task_set_name(t, ""), 0);
    CHECK_EQ(strcmp(iou_task_name(t), want), 0);
    CHECK_EQ(iou_task_set_name(NULL, "x"), -EINVAL);
    CHECK_EQ(iou_join(t), 0);

    /* opts.name is copied: the caller's buffer may change. */
    char buf[16] = "worker-1";
    t = iou_spawn_ex(says_own_name, "worker-1", &(iou_spawn_opts){.name = buf});
    CHECK(t != NULL);
    strcpy(buf, "changed");
    CHECK_EQ(iou_join(t), 0);

    /* The functions behind the macros, as older binaries call them. */
    t = (iou_spawn)(nothing, NULL);
    CHECK(t != NULL);
    CHECK_EQ(strcmp(iou_task_name(t), "task"), 0);
    CHECK_EQ(iou_join(t), 0);
    t = (iou_spawn_ex)(nothing, NULL, NULL);
    CHECK(t != NULL);
    CHECK_EQ(strcmp(iou_task_name(t), "task"), 0);
    CHECK_EQ(iou_join(t), 0);
    return 0;
}

int main(void)
{
    watchdog(30);
    CHECK_EQ(strcmp(iou_task_name(NULL), ""), 0); /* outside a task */
    CHECK_EQ(run_or_skip(main_task, NULL), 0);
    puts("task names: spawn-site default, main, copy, cut, reset, plain spawn");
    return 0;
}
