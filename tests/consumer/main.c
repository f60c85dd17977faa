/* Uses only the installed public header: one NOP through the ring. */
#include <iou.h>

static int body(void *arg)
{
    (void)arg;
    return iou_nop() == 0 ? 7 : 1;
}

int main(void)
{
    return iou_run(body, NULL) == 7 ? 0 : 1;
}
