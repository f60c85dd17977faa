/*
 * Registered files (direct descriptors).
 *
 * Each loop keeps one sparse kernel file table, registered on first use with
 * a fixed size (a file table cannot grow without dropping what it holds):
 * 4096 slots, or RLIMIT_NOFILE if that is lower (the kernel's own bound).
 * A handle is IOU_FIXED_FD | slot; the backend turns it into
 * IOSQE_FIXED_FILE. The table holds its own reference to each file, so the
 * fd given to iou_file_register may be closed at once; an operation in flight
 * holds the file too, so unregistering never pulls it from under the kernel.
 */
#include "backend.h"
#include "loop.h"
#include "op.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/resource.h>

_Static_assert(IOU_FIXED_FD == IOU__FIXED_FD, "one encoding of handles");

enum {
    MAX_SLOTS = 4096,
};

struct iou__fixed_files {
    unsigned cap;   /* slots registered with the kernel */
    unsigned next;  /* where the search for a free slot starts */
    unsigned used;
    bool in_use[];  /* cap entries */
};

static unsigned table_size(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MAX_SLOTS)
        return rl.rlim_cur ? (unsigned)rl.rlim_cur : 1;
    return MAX_SLOTS;
}

static int create(iou_loop *l, struct io_uring *ring)
{
    unsigned cap = table_size();
    struct iou__fixed_files *t = calloc(1, sizeof(*t) + cap * sizeof(bool));
    if (t == NULL)
        return -ENOMEM;
    int ret = io_uring_register_files_sparse(ring, cap);
    if (ret < 0) {
        free(t);
        return ret;
    }
    t->cap = cap;
    l->fixed_files = t;
    return 0;
}

/* The ring of the calling thread's loop, or NULL (no loop, or not io_uring). */
static struct io_uring *ring_here(iou_loop **lp)
{
    *lp = iou__loop();
    return *lp ? iou__uring(*lp) : NULL;
}

static int find_slot(struct iou__fixed_files *t)
{
    for (unsigned n = 0; n < t->cap; n++) {
        unsigned i = (t->next + n) % t->cap;
        if (!t->in_use[i])
            return (int)i;
    }
    return -ENFILE;
}

int iou_file_register(int fd)
{
    iou_loop *l;
    struct io_uring *ring = ring_here(&l);
    if (ring == NULL)
        return -ENOTSUP;
    if (fd < 0)
        return -EBADF;
    if (l->fixed_files == NULL) {
        int err = create(l, ring);
        if (err)
            return err;
    }
    struct iou__fixed_files *t = l->fixed_files;
    int slot = find_slot(t);
    if (slot < 0)
        return slot;
    int ret = io_uring_register_files_update(ring, (unsigned)slot, &fd, 1);
    if (ret < 0)
        return ret;
    t->in_use[slot] = true;
    t->used++;
    t->next = (unsigned)slot + 1;
    return IOU_FIXED_FD | slot;
}

int iou_file_unregister(int handle)
{
    iou_loop *l;
    struct io_uring *ring = ring_here(&l);
    if (ring == NULL)
        return -ENOTSUP;
    struct iou__fixed_files *t = l->fixed_files;
    unsigned slot = (unsigned)handle & ~(unsigned)IOU_FIXED_FD;
    if (!iou__is_fixed_fd(handle) || t == NULL || slot >= t->cap || !t->in_use[slot])
        return -EBADF;
    int none = -1;
    int ret = io_uring_register_files_update(ring, slot, &none, 1);
    if (ret < 0)
        return ret;
    t->in_use[slot] = false;
    t->used--;
    return 0;
}

void iou__fixed_files_fini(iou_loop *l)
{
    struct io_uring *ring = iou__uring(l);
    if (l->fixed_files && ring)
        io_uring_unregister_files(ring); /* closes the files the table still held */
    free(l->fixed_files);
    l->fixed_files = NULL;
}
