#include <iou.h>

#include <limits.h>
#include <string.h>

const char *iou_strerror(int err)
{
    /* As unsigned: -INT_MIN does not fit in an int. */
    unsigned code = err < 0 ? 0u - (unsigned)err : (unsigned)err;
    if (code == 0)
        return "Success";
    const char *s = code <= INT_MAX ? strerrordesc_np((int)code) : NULL; /* static text: thread-safe, unlike strerror */
    return s ? s : "Unknown error";
}
