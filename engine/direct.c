/*
 * O_DIRECT helpers. Direct I/O moves data between the device and the
 * caller's buffer with no page cache in between, so the buffer address, the
 * length and the file offset must be multiples of what the device and the
 * filesystem accept; the kernel answers anything else with -EINVAL.
 */
#include <iou.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

enum {
    SAFE_ALIGN = 4096, /* at least every device's logical block and every page */
};

void *iou_aligned_alloc(size_t len)
{
    if (len == 0 || len > SIZE_MAX - SAFE_ALIGN)
        return NULL;
    size_t rounded = (len + SAFE_ALIGN - 1) / SAFE_ALIGN * SAFE_ALIGN;
    void *p = NULL;
    return posix_memalign(&p, SAFE_ALIGN, rounded) == 0 ? p : NULL;
}

/* statx's own answer: 0, -ENODATA if this kernel, filesystem or set of
 * headers (before Linux 6.1) gives none, -EOPNOTSUPP if the file cannot do
 * direct I/O, or a statx error. */
static int statx_dio(int fd, size_t *mem, size_t *off)
{
#ifdef STATX_DIOALIGN
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &st) < 0)
        return -errno;
    if (!(st.stx_mask & STATX_DIOALIGN))
        return -ENODATA;
    if (st.stx_dio_mem_align == 0 || st.stx_dio_offset_align == 0)
        return -EOPNOTSUPP;
    *mem = st.stx_dio_mem_align;
    *off = st.stx_dio_offset_align;
    return 0;
#else
    (void)fd, (void)mem, (void)off;
    return -ENODATA;
#endif
}

int iou_dio_alignment(int fd, size_t *mem_align, size_t *off_align)
{
    size_t mem = 0, off = 0;
    int err = statx_dio(fd, &mem, &off);
    if (err == -ENODATA) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            return -errno;
        mem = off = st.st_blksize > 0 ? (size_t)st.st_blksize : SAFE_ALIGN;
        err = 0;
    }
    if (err)
        return err;
    if (mem_align)
        *mem_align = mem;
    if (off_align)
        *off_align = off;
    return 0;
}
