/* Raw SQE requests. (Being written: see issue 3.) */
#include "loop.h"

void iou__raw_cancel_all(iou_loop *l)
{
    (void)l;
}
