/*
 * Choosing a loop's backend.
 *
 * The loop option (iou_loop_opts.backend) wins, then the environment
 * (IOU_BACKEND), then the default: io_uring, falling back to epoll when the
 * kernel (or a sandbox) will not set a ring up. Naming a backend requires it:
 * "io_uring" fails with the kernel's error instead of falling back.
 */
#include "backend.h"
#include "loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Errors that mean "no io_uring here" rather than "something is wrong":
 * not built in (ENOSYS), forbidden by seccomp, a container runtime or
 * kernel.io_uring_disabled (EPERM, EACCES), refused by an old or restricted
 * kernel (EINVAL, EOPNOTSUPP). */
static bool means_unavailable(int err)
{
    return err == -ENOSYS || err == -EPERM || err == -EACCES || err == -EINVAL ||
           err == -EOPNOTSUPP;
}

/* kernel.io_uring_disabled = 2: nobody may create a ring; skip the attempt. */
static bool disabled_by_sysctl(void)
{
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
    if (f == NULL)
        return false;
    int v = 0;
    bool off = fscanf(f, "%d", &v) == 1 && v == 2;
    fclose(f);
    return off;
}

static const iou__backend *by_name(const char *name)
{
    if (strcmp(name, "io_uring") == 0 || strcmp(name, "uring") == 0)
        return &iou__backend_uring;
    if (strcmp(name, "epoll") == 0)
        return &iou__backend_epoll;
    return NULL;
}

static int start(iou_loop *l, const iou__backend *b, unsigned entries)
{
    l->backend = b;
    return b->init(l, entries);
}

static int start_required(iou_loop *l, const char *name, const char *from, unsigned entries)
{
    const iou__backend *b = by_name(name);
    if (b == NULL) {
        fprintf(stderr, "iou: %s: unknown backend \"%s\" (io_uring or epoll)\n", from, name);
        return -EINVAL;
    }
    int err = start(l, b, entries);
    if (err < 0)
        fprintf(stderr, "iou: %s requires the %s backend, which cannot start: %s\n", from,
                b->name, strerror(-err));
    return err;
}

int iou__backend_open(iou_loop *l, const char *name, unsigned entries)
{
    if (name && name[0])
        return start_required(l, name, "iou_loop_opts.backend", entries);
    const char *env = getenv("IOU_BACKEND");
    if (env && env[0])
        return start_required(l, env, "IOU_BACKEND", entries);
    if (!disabled_by_sysctl()) {
        int err = start(l, &iou__backend_uring, entries);
        if (err == 0 || !means_unavailable(err))
            return err;
    }
    return start(l, &iou__backend_epoll, entries);
}

const char *iou_loop_backend_name(const iou_loop *l)
{
    return l ? l->backend->name : NULL;
}

const char *iou_backend_name(void)
{
    return iou_loop_backend_name(iou__loop());
}
