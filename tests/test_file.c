/*
 * File operations inside tasks, on a temp file: explicit offsets, the file
 * position (off < 0), end of file, O_APPEND, errors, and many tasks writing
 * one file at once. Everything written is read back and compared.
 */
#include "check.h"
#include "testutil.h"

#include <fcntl.h>
#include <iou.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[64];

static void remove_temp(void)
{
    unlink(path);
}

/* A fresh empty temp file, removed at exit (also when a CHECK fails). */
static void make_temp(void)
{
    strcpy(path, "/tmp/iou_test_file_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    atexit(remove_temp);
}

static int open_rw(void)
{
    int fd = iou_open(path, O_RDWR | O_TRUNC | O_CLOEXEC, 0);
    CHECK(fd >= 0);
    return fd;
}

static off_t size_of(int fd)
{
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    return st.st_size;
}

/* Writes and reads all of len, looping over short transfers. */
static void write_all(int fd, const unsigned char *buf, size_t len, int64_t off)
{
    while (len) {
        ssize_t n = iou_write(fd, buf, len, off);
        CHECK(n > 0);
        buf += n;
        len -= (size_t)n;
        off += n;
    }
}

static void read_all(int fd, unsigned char *buf, size_t len, int64_t off)
{
    while (len) {
        ssize_t n = iou_read(fd, buf, len, off);
        CHECK(n > 0);
        buf += n;
        len -= (size_t)n;
        off += n;
    }
}

static void check_closed(int fd)
{
    errno = 0;
    CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
}

/* ---- offsets and end of file ------------------------------------------------ */

static int offsets_main(void *arg)
{
    (void)arg;
    int fd = open_rw();
    char buf[32];
    CHECK_EQ(iou_write(fd, "hello", 5, 0), 5);
    CHECK_EQ(iou_write(fd, "world", 5, 100), 5);
    CHECK_EQ(size_of(fd), 105);
    CHECK_EQ(iou_read(fd, buf, 5, 100), 5);
    CHECK(memcmp(buf, "world", 5) == 0);
    CHECK_EQ(iou_read(fd, buf, 5, 0), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    /* The gap reads as zeros. */
    memset(buf, 'x', sizeof(buf));
    CHECK_EQ(iou_read(fd, buf, 10, 50), 10);
    CHECK(memcmp(buf, "\0\0\0\0\0\0\0\0\0\0", 10) == 0);
    /* Short read at the end, then 0 at and past the end. */
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), 102), 3);
    CHECK(memcmp(buf, "rld", 3) == 0);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), 105), 0);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), 1000000), 0);
    /* Explicit offsets leave the file position alone. */
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_EQ(iou_fsync(fd), 0);
    CHECK_EQ(iou_close(fd), 0);
    check_closed(fd);
    return 0;
}

/* off < 0 reads and writes at the file position and moves it. */
static int position_main(void *arg)
{
    (void)arg;
    int fd = open_rw();
    char buf[16];
    CHECK_EQ(iou_write(fd, "abc", 3, -1), 3);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3);
    CHECK_EQ(iou_write(fd, "defg", 4, -1), 4);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 7);
    CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
    CHECK_EQ(iou_read(fd, buf, 3, -1), 3);
    CHECK(memcmp(buf, "cde", 3) == 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), -1), 2); /* short: the rest of the file */
    CHECK(memcmp(buf, "fg", 2) == 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 7);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), -1), 0);
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

/* ---- sizes and offsets, compared byte for byte ----------------------------- */

static const size_t sizes[] = {1, 7, 511, 512, 4095, 4096, 4097, 65536, 131071, 1048579};
static const int64_t offsets[] = {0, 1, 511, 4096, 12345, 1 << 20, (int64_t)5 << 30};

static int sizes_main(void *arg)
{
    (void)arg;
    int fd = open_rw();
    size_t max = sizes[sizeof(sizes) / sizeof(sizes[0]) - 1];
    unsigned char *out = malloc(max), *in = malloc(max);
    CHECK(out && in);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (size_t o = 0; o < sizeof(offsets) / sizeof(offsets[0]); o++) {
            uint32_t seed = (uint32_t)(s * 100 + o);
            pattern_fill(out, sizes[s], seed, 0);
            write_all(fd, out, sizes[s], offsets[o]);
            memset(in, 0, sizes[s]);
            read_all(fd, in, sizes[s], offsets[o]);
            CHECK_EQ(pattern_mismatch(in, sizes[s], seed, 0), sizes[s]);
        }
    }
    free(out);
    free(in);
    CHECK_EQ(iou_fsync(fd), 0);
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

/* ---- O_APPEND, errors --------------------------------------------------------- */

static int append_main(void *arg)
{
    (void)arg;
    int fd = open_rw();
    CHECK_EQ(iou_write(fd, "12345", 5, 0), 5);
    CHECK_EQ(iou_close(fd), 0);
    fd = iou_open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK_EQ(iou_write(fd, "ab", 2, -1), 2);
    CHECK_EQ(iou_write(fd, "cd", 2, -1), 2);
    CHECK_EQ(size_of(fd), 9);
    CHECK_EQ(iou_close(fd), 0);
    fd = iou_open(path, O_RDONLY | O_CLOEXEC, 0);
    CHECK(fd >= 0);
    char buf[16];
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), 0), 9);
    CHECK(memcmp(buf, "12345abcd", 9) == 0);
    CHECK_EQ(iou_write(fd, "x", 1, 0), -EBADF); /* opened read-only */
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

static int errors_main(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_open("/tmp/iou-test-no-such-dir/missing", O_RDONLY, 0), -ENOENT);
    CHECK_EQ(iou_open(path, O_RDWR | O_CREAT | O_EXCL, 0600), -EEXIST);
    CHECK_EQ(iou_open("/tmp", O_WRONLY, 0), -EISDIR);
    CHECK_EQ(iou_open(path, O_RDONLY | O_DIRECTORY, 0), -ENOTDIR);
    return 0;
}

/* O_CREAT with a mode: the new file exists with that mode (under umask 0). */
static int create_main(void *arg)
{
    (void)arg;
    char created[80];
    snprintf(created, sizeof(created), "%s.new", path);
    unlink(created);
    mode_t old = umask(0);
    int fd = iou_open(created, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    umask(old);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0640);
    CHECK_EQ(iou_close(fd), 0);
    CHECK(unlink(created) == 0);
    return 0;
}

/* ---- many tasks, one file ------------------------------------------------------ */

enum { WRITERS = 100, REGION = 10000, CHUNK = 777 };

static int shared_fd;

/* Writes its region in chunks (others interleave), then reads it back. */
static int region_writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    int64_t base = (int64_t)id * REGION;
    unsigned char *buf = malloc(REGION);
    CHECK(buf != NULL);
    pattern_fill(buf, REGION, (uint32_t)id, 0);
    for (size_t done = 0; done < REGION; done += CHUNK) {
        size_t n = REGION - done < CHUNK ? REGION - done : CHUNK;
        write_all(shared_fd, buf + done, n, base + (int64_t)done);
    }
    memset(buf, 0, REGION);
    read_all(shared_fd, buf, REGION, base);
    int ok = pattern_mismatch(buf, REGION, (uint32_t)id, 0) == REGION;
    free(buf);
    return ok;
}

static int concurrent_main(void *arg)
{
    (void)arg;
    shared_fd = open_rw();
    iou_task *t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        CHECK((t[i] = iou_spawn(region_writer, (void *)(intptr_t)i)) != NULL);
    for (int i = 0; i < WRITERS; i++)
        CHECK_EQ(iou_join(t[i]), 1);
    CHECK_EQ(iou_fsync(shared_fd), 0);
    CHECK_EQ(size_of(shared_fd), (off_t)WRITERS * REGION);
    unsigned char *all = malloc((size_t)WRITERS * REGION);
    CHECK(all != NULL);
    read_all(shared_fd, all, (size_t)WRITERS * REGION, 0);
    for (int i = 0; i < WRITERS; i++)
        CHECK_EQ(pattern_mismatch(all + (size_t)i * REGION, REGION, (uint32_t)i, 0), REGION);
    free(all);
    CHECK_EQ(iou_close(shared_fd), 0);
    return 0;
}

int main(void)
{
    watchdog(30);
    make_temp();
    int fds = count_fds();
    CHECK_EQ(run_or_skip(offsets_main, NULL), 0);
    CHECK_EQ(run_or_skip(position_main, NULL), 0);
    CHECK_EQ(run_or_skip(sizes_main, NULL), 0);
    CHECK_EQ(run_or_skip(append_main, NULL), 0);
    CHECK_EQ(run_or_skip(errors_main, NULL), 0);
    CHECK_EQ(run_or_skip(create_main, NULL), 0);
    CHECK_EQ(run_or_skip(concurrent_main, NULL), 0);
    CHECK_EQ(count_fds(), fds);
    puts("test_file: ok");
    return 0;
}
