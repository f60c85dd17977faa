/* The test-only feature mask (feature_mask.h) and the query of what is in use. */
#include "feature_mask.h"
#include "bufring.h"
#include "loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bit;
} names[] = {
    {"defer_taskrun", IOU__FEAT_DEFER_TASKRUN}, {"coop_taskrun", IOU__FEAT_COOP_TASKRUN},
    {"multishot", IOU__FEAT_MULTISHOT},         {"bufring", IOU__FEAT_BUFRING},
    {"ext_arg", IOU__FEAT_EXT_ARG},             {"registered_ring", IOU__FEAT_REGISTERED_RING},
    {"direct_send", IOU__FEAT_DIRECT_SEND},
};

static unsigned bit_of(const char *name, size_t len)
{
    if (len == 3 && strncmp(name, "all", 3) == 0)
        return ~0u;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == len && strncmp(name, names[i].name, len) == 0)
            return names[i].bit;
    fprintf(stderr, "iou: IOU_TEST_DISABLE: unknown feature %.*s\n", (int)len, name);
    return 0;
}

unsigned iou__features_disabled_env(void)
{
    const char *env = getenv("IOU_TEST_DISABLE");
    unsigned mask = 0;
    while (env && *env) {
        size_t len = strcspn(env, ",");
        if (len)
            mask |= bit_of(env, len);
        env += len + (env[len] == ',');
    }
    return mask;
}

bool iou__feature_allowed(const iou_loop *l, unsigned f)
{
    return !(l->disabled & f);
}

unsigned iou__features_active(iou_loop *l)
{
    unsigned f = iou__uring_features(l);
    if (iou__feature_allowed(l, IOU__FEAT_MULTISHOT))
        f |= IOU__FEAT_MULTISHOT;
    if (iou__bufring_get(l))
        f |= IOU__FEAT_BUFRING;
    return f;
}
