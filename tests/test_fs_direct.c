/*
 * O_DIRECT: iou_dio_alignment reports what the file needs; aligned reads and
 * writes (heap buffers from iou_aligned_alloc, and registered buffers) round
 * trip byte for byte; a misaligned buffer, length or offset gets -EINVAL,
 * inside a task and outside. Skipped where no candidate directory's
 * filesystem accepts O_DIRECT.
 */
#include "check.h"
#include "fsutil.h"

#include <fcntl.h>
#include <iou.h>
#include <stdlib.h>
#include <unistd.h>

enum {
    LEN = 1 << 20,
    SEED = 5,
};

static size_t mem_align, off_align;

/* The first of /tmp and the build directory where O_DIRECT opens. */
static bool pick_dir(void)
{
    const char *bases[] = {"/tmp", "."};
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        fs_tempdir_in(bases[i]);
        int fd = open(fs_path(0, "probe"), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        fs_remove_dir();
    }
    return false;
}

static int open_direct(void)
{
    int fd = iou_open(fs_path(0, "d"), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    return fd;
}

static void check_alignment(int fd)
{
    size_t m = 0, o = 0;
    CHECK_EQ(iou_dio_alignment(fd, &m, &o), 0);
    CHECK(m >= 1 && m <= 65536 && (m & (m - 1)) == 0);
    CHECK(o >= 1 && o <= 65536 && (o & (o - 1)) == 0);
    CHECK_EQ(iou_dio_alignment(fd, NULL, NULL), 0);
    CHECK_EQ(iou_dio_alignment(1 << 20, &m, &o), -EBADF);
    mem_align = m;
    off_align = o;
}

static void round_trip(int fd)
{
    unsigned char *b = iou_aligned_alloc(LEN);
    CHECK(b != NULL);
    CHECK_EQ((uintptr_t)b % 4096, 0);
    pattern_fill(b, LEN, SEED, 0);
    CHECK_EQ(iou_write_full(fd, b, LEN, 0), LEN);
    memset(b, 0, LEN);
    CHECK_EQ(iou_read_full(fd, b, LEN, 0), LEN);
    CHECK_EQ(pattern_mismatch(b, LEN, SEED, 0), LEN);
    /* Aligned pieces at aligned offsets. */
    size_t step = off_align > mem_align ? off_align : mem_align;
    for (size_t off = 0; off + 8 * step <= LEN; off += 37 * step) {
        memset(b, 0, 8 * step);
        CHECK_EQ(iou_read(fd, b, 8 * step, (int64_t)off), (long long)(8 * step));
        CHECK_EQ(pattern_mismatch(b, 8 * step, SEED, off), 8 * step);
    }
    free(b);
}

static void misaligned(int fd)
{
    unsigned char *b = iou_aligned_alloc(3 * 4096);
    CHECK(b != NULL);
    /* The misalignments below are below every device's limit when the
     * filesystem reports 512 or more; a byte-granular file proves nothing. */
    if (mem_align > 1)
        CHECK_EQ(iou_read(fd, b + 1, 4096, 0), -EINVAL);
    if (off_align > 1) {
        CHECK_EQ(iou_read(fd, b, 4096, 1), -EINVAL);
        CHECK_EQ(iou_read(fd, b, 4096 - 1, 0), -EINVAL);
        CHECK_EQ(iou_write(fd, b, 4096, 7), -EINVAL);
        CHECK_EQ(iou_write(fd, b, 100, 0), -EINVAL);
        struct iovec iov[2] = {{b, 100}, {b + 4096, 4096}};
        CHECK_EQ(iou_readv(fd, iov, 2, 0), -EINVAL);
    }
    free(b);
}

static void fixed(int fd)
{
    iou_fixed_buf fb;
    CHECK_EQ(iou_fixed_buf_alloc(LEN, &fb), 0);
    pattern_fill(fb.data, LEN, SEED + 1, 0);
    CHECK_EQ(iou_write_fixed(fd, &fb, 0, LEN, 0), LEN);
    memset(fb.data, 0, LEN);
    CHECK_EQ(iou_read_fixed(fd, &fb, 4096, LEN - 4096, 4096), LEN - 4096);
    CHECK_EQ(pattern_mismatch((char *)fb.data + 4096, LEN - 4096, SEED + 1, 4096), LEN - 4096);
    if (off_align > 1)
        CHECK_EQ(iou_read_fixed(fd, &fb, 0, 4096, 3), -EINVAL);
    if (mem_align > 1)
        CHECK_EQ(iou_read_fixed(fd, &fb, 1, 4096, 0), -EINVAL);
    iou_fixed_buf_free(&fb);
}

static int body(void *arg)
{
    bool in_task = arg != NULL;
    int fd = open_direct();
    check_alignment(fd);
    round_trip(fd);
    misaligned(fd);
    if (in_task)
        fixed(fd);
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

int main(void)
{
    watchdog(60);
    if (!pick_dir())
        SKIP("no filesystem here accepts O_DIRECT");
    CHECK(iou_aligned_alloc(0) == NULL);
    CHECK_EQ(run_or_skip(body, (void *)1), 0);
    CHECK_EQ(body(NULL), 0);
    fprintf(stderr, "O_DIRECT in %s: memory alignment %zu, offset alignment %zu\n", fs_dir,
            mem_align, off_align);
    return 0;
}
