/*
 * Kernel features iou uses when it can, and the test-only switch that masks
 * them: IOU_TEST_DISABLE=defer_taskrun,coop_taskrun,multishot,bufring,
 * ext_arg,registered_ring (any subset, comma-separated; "all" for every one)
 * is read once per loop when the loop is created. A masked feature is not
 * used even when the kernel has it, so the fallback paths (a plain ring,
 * single-shot accepts and plain receives, heap buffers, a timeout SQE to
 * bound a wait) run on a kernel that would never need them.
 */
#ifndef IOU_FEATURE_MASK_H
#define IOU_FEATURE_MASK_H

#include <stdbool.h>

typedef struct iou_loop iou_loop;

enum iou__feature {
    IOU__FEAT_DEFER_TASKRUN = 1u << 0,   /* IORING_SETUP_DEFER_TASKRUN (+ SINGLE_ISSUER) */
    IOU__FEAT_COOP_TASKRUN = 1u << 1,    /* IORING_SETUP_COOP_TASKRUN */
    IOU__FEAT_MULTISHOT = 1u << 2,       /* multishot accept (serve), multishot recv (streams) */
    IOU__FEAT_BUFRING = 1u << 3,         /* the provided-buffer ring */
    IOU__FEAT_EXT_ARG = 1u << 4,         /* timed waits without a timeout SQE */
    IOU__FEAT_REGISTERED_RING = 1u << 5, /* the ring fd registered */
    IOU__FEAT_DIRECT_SEND = 1u << 6,     /* a lone send made with send(2) before sleeping
                                            (backend_uring.c; not a kernel feature) */
};

/* The mask IOU_TEST_DISABLE asks for (0 when unset). Unknown names are
 * reported on stderr and ignored. */
unsigned iou__features_disabled_env(void);

/* True unless the loop's mask disables f. */
bool iou__feature_allowed(const iou_loop *l, unsigned f);

/* The features l actually uses now (the backend's and the modules'). Creates
 * l's buffer ring if it can (to know whether it can): call it after
 * iou_bufring_config. */
unsigned iou__features_active(iou_loop *l);

#endif
