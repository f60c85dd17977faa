#include <iou.h>

#include <string.h>

const char *iou_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "Success";
    const char *s = strerrordesc_np(err); /* static text: thread-safe, unlike strerror */
    return s ? s : "Unknown error";
}
