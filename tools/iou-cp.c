/*
 * iou-cp: copies files and directory trees with many operations in flight.
 *
 * One task walks the source tree (creating directories as it goes) and
 * hands every file and symlink to a task of its own; a semaphore bounds the
 * files in flight (--jobs). Buffered copies move the data inside the kernel
 * (iou_copy_file_range, on the worker pool: one copy from page cache to page
 * cache instead of two through a buffer), one call per 8 MiB, one after the
 * other; where the kernel refuses (another file system, no support), and
 * with --direct, a file larger than one chunk is copied by up to --depth
 * worker tasks that take chunks in turn, so several reads and writes of the
 * same file are in the kernel at once.
 *
 * Nothing is published half-done: each file is written as an unnamed file
 * (O_TMPFILE) in its destination directory and linked under its name only
 * when its data (and, with --verify, the comparison) and its metadata are
 * complete; on failure it is simply dropped. Replacing an existing file, or
 * on a file system without O_TMPFILE, a temporary name is renamed over the
 * final one instead (and unlinked on failure). Errors name the file and
 * the reason. Unnamed files also save a rename per file: creating, renaming
 * and linking are the dearest steps of copying small files. Directory modes and times are set last,
 * children before parents, because creating entries changes a directory's
 * times and a read-only mode would stop the copy.
 */
#define _GNU_SOURCE
#include "args.h"

#include <iou.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "Usage: iou-cp [options] SRC DST\n"
    "       iou-cp [options] SRC... DIR\n"
    "Copies files and directory trees (built on iou: many reads and writes in flight).\n"
    "\n"
    "  -j, --jobs N         files copied at once (default 128)\n"
    "  -d, --depth N        chunks of one file in flight at once (default 16; 4 with --direct)\n"
    "  -c, --chunk BYTES    bytes per read and write, a multiple of 4096 (K, M suffixes;\n"
    "                       default 64K, or 1M with --direct)\n"
    "      --direct         O_DIRECT on source and destination (bypasses the page cache;\n"
    "                       the unaligned tail is written padded, then truncated)\n"
    "      --no-copy-range  copy through buffers (read, write) even where the kernel\n"
    "                       could copy by itself (copy_file_range; the default for\n"
    "                       buffered copies, with read / write where it is refused)\n"
    "      --verify         after copying each file, re-read source and destination and\n"
    "                       compare their checksums (per chunk) before publishing it\n"
    "      --no-progress    no progress bar (it is shown only when stderr is a terminal)\n"
    "      --stats          print a summary line (files, bytes, seconds, MB/s) at the end\n"
    "  -h, --help           this text\n"
    "\n"
    "A directory SRC is copied recursively: regular files, directories and symbolic\n"
    "links (copied as links, never followed; a symlink named on the command line is\n"
    "followed). Other file types are reported and skipped; hard links are copied as\n"
    "separate files. If DST is an existing directory, SRC is copied into it as\n"
    "DST/NAME (as cp does); existing directories are merged, existing files replaced.\n"
    "Mode, access and modification times are preserved, and ownership where\n"
    "permitted (a refusal to change ownership is not an error).\n"
    "\n"
    "Safety: every file is written as an unnamed file (O_TMPFILE) in its destination\n"
    "directory and linked under its name only when complete (data, --verify,\n"
    "metadata); an existing DST is replaced atomically (linked under a temporary\n"
    "name, .iou-cp.PID.N, and renamed over DST). Where the file system has no\n"
    "O_TMPFILE, the file is written under such a temporary name and renamed. When\n"
    "a copy fails, the unnamed file is dropped (or the temporary name unlinked), an\n"
    "existing DST is left as it was, and the error names the file and the reason:\n"
    "a truncated destination never appears.\n"
    "Exit status: 0 if everything was copied, 1 if anything failed or was skipped,\n"
    "2 on a usage error.\n"
    "\n"
    "Examples:\n"
    "  iou-cp big.img /backup/             copy one file into a directory\n"
    "  iou-cp -j 64 --verify src/ dst      copy a tree, verify every file\n"
    "  iou-cp --direct --stats disk.img copy.img\n";

enum { ALIGN = 4096 }; /* O_DIRECT offsets, lengths and buffers: a multiple of this */

static struct {
    long jobs;
    long depth;
    size_t chunk;
    bool direct;
    bool verify;
    bool progress;
    bool stats;
    bool no_range;
} opt = {.jobs = 128, .progress = true}; /* depth, chunk: 0 = the mode's default */

/*
 * copy_file_range calls of one file run one at a time: ext4 serialises
 * buffered writes to one file on its inode lock, so parallel calls only
 * spin on it (measured: 2 or 4 at once took 0.31-0.41 s of CPU per GiB
 * against 0.18-0.19 s for one, for no gain in time, warm or cold).
 *
 * Read / write copies write 64 KiB at a time (16 in flight per file): the page
 * cache sizes the folios it allocates by the write, and on the project's
 * machine (a VM that hands free memory back to its host) the large folios
 * of 128 KiB and 1 MiB writes cost 2-4x the CPU to fill, first touches of
 * memory the host must supply again; 64 KiB is also what cp's splice
 * writes. O_DIRECT, which bypasses the cache, does best with large requests.
 */
enum {
    BUFFERED_CHUNK = 64 * 1024,
    BUFFERED_DEPTH = 16,
    DIRECT_CHUNK = 1024 * 1024,
    DIRECT_DEPTH = 4,
    PREALLOC_MIN = 1024 * 1024, /* files from this size are fallocated first */
    RANGE_CHUNK = 8 * 1024 * 1024, /* bytes per copy_file_range */
    RANGE_DEPTH = 1,               /* ... one at a time: see above */
};

/* A directory whose mode and times are applied once its contents are done. */
typedef struct dirmeta {
    char *path;
    struct stat st;
} dirmeta;

/* Shared by all tasks (one thread: no locks). */
static struct {
    iou_sem slots;         /* files in flight (--jobs) */
    iou_group *files;      /* the file tasks */
    uid_t euid;
    gid_t egid;
    pid_t pid;
    unsigned long seq;     /* temporary-name counter */
    uint64_t bytes_done, bytes_found;
    unsigned long files_done, files_found;
    int errors;
    bool bar_shown;        /* the progress line is on the terminal */
    dirmeta *dirs;
    size_t ndirs, capdirs;
    struct stat *roots;    /* top-level destination directories (not to copy into themselves) */
    size_t nroots;
    void **pool;           /* free chunk buffers */
    size_t npool, cappool;
} g;

/* ---- errors ---- */

static void clear_bar(void)
{
    if (g.bar_shown) {
        fputs("\r\033[K", stderr);
        g.bar_shown = false;
    }
}

/* Prints "iou-cp: PATH: WHAT: REASON" and counts the failure. */
static int report(const char *path, const char *what, int err)
{
    clear_bar();
    fprintf(stderr, "iou-cp: %s: %s%s%s\n", path, what, err ? ": " : "",
            err ? iou_strerror(err) : "");
    g.errors++;
    return err ? err : -EIO;
}

/* ---- buffers: a pool of chunk-sized, ALIGN-aligned buffers ---- */

static void *buf_get(void)
{
    if (g.npool)
        return g.pool[--g.npool];
    void *p;
    return posix_memalign(&p, ALIGN, opt.chunk) == 0 ? p : NULL;
}

static void buf_put(void *p)
{
    if (p == NULL)
        return;
    if (g.npool == g.cappool) {
        size_t cap = g.cappool ? 2 * g.cappool : 64;
        void **np = realloc(g.pool, cap * sizeof(*np));
        if (np == NULL) {
            free(p);
            return;
        }
        g.pool = np;
        g.cappool = cap;
    }
    g.pool[g.npool++] = p;
}

static void pool_free(void)
{
    while (g.npool)
        free(g.pool[--g.npool]);
    free(g.pool);
}

/* ---- checksums (--verify): 64-bit, 8 bytes per step ---- */

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint64_t checksum(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ (w * 0x87c37b91114253d5ull)) * 0x4cf5ad432745937full;
        h = (h << 31) | (h >> 33);
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, len - i);
    return mix64(h ^ tail);
}

/* ---- file system calls: each one io_uring operation in a task ---- */

static int fs_rename(const char *from, const char *to)
{
    return iou_renameat(AT_FDCWD, from, AT_FDCWD, to, 0);
}

static int fs_unlink(const char *path)
{
    return iou_unlink(path);
}

static int fs_mkdir(const char *path, mode_t mode)
{
    return iou_mkdirat(AT_FDCWD, path, mode);
}

static int fs_fallocate(int fd, uint64_t len)
{
    return iou_fallocate(fd, 0, 0, (int64_t)len);
}

static int fs_ftruncate(int fd, uint64_t len)
{
    return iou_ftruncate(fd, (int64_t)len);
}

/* ---- reading and writing ranges ---- */

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/* Reads up to len bytes at off, looping over short reads, stopping at end of
 * file. With O_DIRECT an unaligned short read is the end of the file (the
 * next read would start unaligned). Returns the bytes read or -errno. */
static ssize_t read_range(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = iou_read(fd, (char *)buf + got, len - got, (int64_t)(off + got));
        if (n == -EINTR || n == -EAGAIN)
            continue;
        if (n <= 0)
            return n < 0 ? n : (ssize_t)got;
        got += (size_t)n;
        if (opt.direct && got % ALIGN)
            break;
    }
    return (ssize_t)got;
}

/* Writes all len bytes at off. Returns 0 or -errno. */
static int write_range(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = iou_write(fd, (const char *)buf + put, len - put, (int64_t)(off + put));
        if (n == -EINTR || n == -EAGAIN)
            continue;
        if (n <= 0)
            return n < 0 ? (int)n : -EIO;
        put += (size_t)n;
    }
    return 0;
}

/* ---- one file ---- */

typedef struct job job;
typedef int (*chunk_fn)(job *j, void *buf, void *buf2, uint64_t index);

struct job {
    char *src, *dst, *tmp;  /* dst: the final name; tmp: a temporary name, if one is used */
    bool unnamed;           /* the data is written to an O_TMPFILE (no name until linked) */
    struct stat st;         /* the source, from the walk */
    int sfd, dfd;
    uint64_t size;          /* bytes to copy: the source's size when the walk saw it (0:
                               unknown, as in /proc: read until end of file) */
    uint64_t end;           /* the end of the data actually read (the source may shrink) */
    uint64_t nchunks, next; /* chunks of the current pass, the next one to take */
    chunk_fn fn;            /* the current pass: copy or verify */
    int err;                /* the first failure ... */
    const char *what;       /* ... what failed ... */
    const char *where;      /* ... and the file it concerns */
    bool range_refused;     /* copy_file_range cannot copy these files: read and write */
};

static int job_fail(job *j, const char *where, const char *what, int err)
{
    if (j->err == 0) {
        j->err = err ? err : -EIO;
        j->what = what;
        j->where = where;
    }
    return j->err;
}

/* Copies chunk i of [0, size). A short read means the source shrank: the
 * copy ends there. With O_DIRECT the unaligned tail is written padded with
 * zeros (the file is truncated to its real length afterwards). */
static int copy_chunk(job *j, void *buf, void *unused, uint64_t i)
{
    (void)unused;
    uint64_t off = i * opt.chunk;
    size_t len = (size_t)(j->size - off < opt.chunk ? j->size - off : opt.chunk);
    ssize_t n = read_range(j->sfd, buf, opt.direct ? round_up(len) : len, off);
    if (n < 0)
        return job_fail(j, j->src, "read", (int)n);
    size_t got = (size_t)n < len ? (size_t)n : len;
    if (got < len && off + got < j->end)
        j->end = off + got;
    size_t wlen = got;
    if (opt.direct && got % ALIGN) {
        wlen = round_up(got);
        memset((char *)buf + got, 0, wlen - got);
    }
    int err = write_range(j->dfd, buf, wlen, off);
    if (err)
        return job_fail(j, j->dst, "write", err);
    g.bytes_done += got;
    return 0;
}

/* copy_file_range cannot copy between these two files (another file system,
 * a file system or kernel without it): they are copied by read and write. */
static bool range_refusal(ssize_t err)
{
    return err == -EXDEV || err == -EOPNOTSUPP || err == -EINVAL || err == -ENOSYS;
}

/* Copies range chunk i inside the kernel (iou_copy_file_range: one copy,
 * from page cache to page cache, on the worker pool). A 0 before the
 * chunk's end means the source shrank. A refusal (which comes with the first
 * call) marks the job for the read / write path, which then copies the whole
 * file again. */
static int range_chunk(job *j, void *unused, void *unused2, uint64_t i)
{
    (void)unused, (void)unused2;
    uint64_t off = i * RANGE_CHUNK;
    uint64_t len = j->size - off < RANGE_CHUNK ? j->size - off : RANGE_CHUNK;
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = iou_copy_file_range(j->sfd, (int64_t)(off + done), j->dfd,
                                        (int64_t)(off + done), (size_t)(len - done), 0);
        if (n == -EINTR || n == -EAGAIN)
            continue;
        if (n < 0 && range_refusal(n)) {
            j->range_refused = true; /* the workers stop; not a failure (0: no sibling
                                        is cancelled) */
            return 0;
        }
        if (n < 0) {
            bool dst_side = n == -ENOSPC || n == -EFBIG || n == -EDQUOT;
            return job_fail(j, dst_side ? j->dst : j->src, "copy", (int)n);
        }
        if (n == 0) {
            if (off + done < j->end)
                j->end = off + done;
            break;
        }
        done += (uint64_t)n;
        g.bytes_done += (uint64_t)n;
    }
    return 0;
}

/* Compares chunk i of source and destination by checksum. */
static int verify_chunk(job *j, void *sbuf, void *dbuf, uint64_t i)
{
    uint64_t off = i * opt.chunk;
    ssize_t a = read_range(j->sfd, sbuf, opt.chunk, off);
    if (a < 0)
        return job_fail(j, j->src, "verify: read", (int)a);
    ssize_t b = read_range(j->dfd, dbuf, opt.chunk, off);
    if (b < 0)
        return job_fail(j, j->dst, "verify: read", (int)b);
    if (a != b || checksum(sbuf, (size_t)a) != checksum(dbuf, (size_t)b)) {
        clear_bar();
        fprintf(stderr, "iou-cp: %s: checksums differ from %s in bytes %" PRIu64 "-%" PRIu64 "\n",
                j->dst, j->src, off, off + (uint64_t)(a > b ? a : b));
        return job_fail(j, j->dst, "verify", -EIO);
    }
    return 0;
}

/* The kernel refused copy_file_range: this pass stops (the read / write one
 * then copies the file). */
static bool range_stopped(const job *j)
{
    return j->fn == range_chunk && j->range_refused;
}

/* A worker of one file: takes the next chunk until none is left or a sibling
 * failed. */
static int chunk_worker(void *arg)
{
    job *j = arg;
    bool bufs = j->fn != range_chunk;
    void *buf = bufs ? buf_get() : NULL, *buf2 = j->fn == verify_chunk ? buf_get() : NULL;
    int err = 0;
    if ((bufs && buf == NULL) || (j->fn == verify_chunk && buf2 == NULL))
        err = job_fail(j, j->dst, "buffer", -ENOMEM);
    while (err == 0 && j->err == 0 && !range_stopped(j) && j->next < j->nchunks)
        err = j->fn(j, buf, buf2, j->next++);
    buf_put(buf);
    buf_put(buf2);
    return err;
}

/* Runs j->fn over chunks [0, n) with up to depth chunks in flight. */
static int for_each_chunk(job *j, chunk_fn fn, uint64_t n, long depth)
{
    j->fn = fn;
    j->nchunks = n;
    j->next = 0;
    uint64_t workers = n < (uint64_t)depth ? n : (uint64_t)depth;
    if (workers <= 1)
        return chunk_worker(j);
    iou_group *grp = iou_group_new();
    if (grp == NULL)
        return job_fail(j, j->dst, "spawn", -ENOMEM);
    for (uint64_t w = 0; w < workers; w++)
        if (iou_group_spawn(grp, chunk_worker, j) == NULL)
            job_fail(j, j->dst, "spawn", -ENOMEM);
    int err = iou_group_wait(grp);
    return j->err ? j->err : err;
}

/* Copies a file of at most one chunk (or of unknown size: st_size 0, as in
 * /proc) by reading until end of file. Sets j->end to the bytes copied. */
static int copy_stream(job *j)
{
    void *buf = buf_get();
    if (buf == NULL)
        return job_fail(j, j->dst, "buffer", -ENOMEM);
    uint64_t off = 0;
    int err = 0;
    for (;;) {
        ssize_t n = read_range(j->sfd, buf, opt.chunk, off);
        if (n < 0) {
            err = job_fail(j, j->src, "read", (int)n);
            break;
        }
        size_t wlen = (size_t)n;
        if (opt.direct && wlen % ALIGN) {
            wlen = round_up(wlen);
            memset((char *)buf + n, 0, wlen - (size_t)n);
        }
        if (n > 0 && (err = write_range(j->dfd, buf, wlen, off)) != 0) {
            err = job_fail(j, j->dst, "write", err);
            break;
        }
        off += (uint64_t)n;
        g.bytes_done += (uint64_t)n;
        /* A short read is the end of the file; so is reaching the size the
         * walk saw, unless that was 0 (as in /proc): saves a read per file. */
        if ((size_t)n < opt.chunk || (j->size && off >= j->size))
            break;
    }
    j->end = off;
    buf_put(buf);
    return err;
}

static bool use_range(void)
{
    return !opt.direct && !opt.no_range;
}

/* Buffered copies go inside the kernel where it can (one call per file up
 * to RANGE_CHUNK), else through buffers, --depth chunks in flight. */
static int copy_chunks(job *j)
{
    if (use_range()) {
        int err = for_each_chunk(j, range_chunk, (j->size + RANGE_CHUNK - 1) / RANGE_CHUNK,
                                 RANGE_DEPTH);
        if (!j->range_refused)
            return err;
        j->end = j->size; /* start again, from the first byte */
    }
    return for_each_chunk(j, copy_chunk, (j->size + opt.chunk - 1) / opt.chunk, opt.depth);
}

static int copy_data(job *j)
{
    int err;
    j->size = j->st.st_size > 0 ? (uint64_t)j->st.st_size : 0;
    j->end = j->size;
    if (j->size == 0 || (j->size <= opt.chunk && !use_range())) {
        err = copy_stream(j);
    } else {
        /* Reserve the space of a large file at once: fewer extents, and
         * ENOSPC / EFBIG before any data moves. A file system without
         * fallocate just skips it. */
        err = j->size >= PREALLOC_MIN ? fs_fallocate(j->dfd, j->size) : 0;
        if (err && err != -EOPNOTSUPP)
            return job_fail(j, j->dst, "allocate", err);
        err = copy_chunks(j);
    }
    if (err)
        return err;
    /* Cut the padding of an O_DIRECT tail, and the reserved space past a
     * source that shrank. */
    bool padded = opt.direct && j->end % ALIGN;
    if (padded || (j->size > opt.chunk && j->end < j->size)) {
        err = fs_ftruncate(j->dfd, j->end);
        if (err)
            return job_fail(j, j->dst, "truncate", err);
    }
    return 0;
}

static int verify_data(job *j)
{
    uint64_t n = (j->end + opt.chunk - 1) / opt.chunk;
    return for_each_chunk(j, verify_chunk, n ? n : 1, opt.depth);
}

static bool need_chown(const struct stat *st)
{
    return st->st_uid != g.euid || st->st_gid != g.egid;
}

/* Ownership where permitted: a refusal (EPERM) is not an error; without the
 * right to give a file away, at least its group may be kept. */
static int chown_result(int r)
{
    return r == 0 || errno == EPERM ? 0 : -errno;
}

static int set_file_meta(job *j)
{
    const struct stat *st = &j->st;
    if (need_chown(st) && fchown(j->dfd, st->st_uid, st->st_gid) != 0) {
        int err = chown_result(fchown(j->dfd, (uid_t)-1, st->st_gid));
        if (err)
            return job_fail(j, j->dst, "chown", err);
    }
    /* The file was created with the mode's permission bits (umask 0); the
     * set-id and sticky bits are cleared by writes and chown, so set them now. */
    if ((st->st_mode & 07000) && fchmod(j->dfd, st->st_mode & 07777) != 0)
        return job_fail(j, j->dst, "chmod", -errno);
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    if (futimens(j->dfd, ts) != 0)
        return job_fail(j, j->dst, "set times", -errno);
    return 0;
}

/* j->tmp: a fresh name in dst's directory. */
static int make_tmp_name(job *j)
{
    const char *slash = strrchr(j->dst, '/');
    int dirlen = slash ? (int)(slash - j->dst + 1) : 0;
    free(j->tmp);
    if (asprintf(&j->tmp, "%.*s.iou-cp.%d.%lu", dirlen, j->dst, (int)g.pid, ++g.seq) < 0) {
        j->tmp = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* Opens a new temporary file next to the destination. */
static int create_tmp(job *j, int flags)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int err = make_tmp_name(j);
        if (err)
            return err;
        int fd = iou_open(j->tmp, O_RDWR | O_CREAT | O_EXCL | flags, j->st.st_mode & 0777);
        if (fd != -EEXIST)
            return fd;
    }
    return -EEXIST;
}

/* Opens the file the data goes to: an unnamed file (O_TMPFILE) in dst's
 * directory, which appears only when linked under its name, complete; where
 * the file system has no O_TMPFILE, a new file under a temporary name. */
static int create_dest(job *j, int flags)
{
    const char *slash = strrchr(j->dst, '/');
    char *dir = slash ? strndup(j->dst, (size_t)(slash - j->dst) + 1) : strdup(".");
    if (dir == NULL)
        return -ENOMEM;
    int fd = iou_open(dir, O_TMPFILE | O_RDWR | flags, j->st.st_mode & 0777);
    free(dir);
    if (fd >= 0) {
        j->unnamed = true;
        return fd;
    }
    if (fd != -EOPNOTSUPP && fd != -EISDIR && fd != -EINVAL)
        return fd;
    return create_tmp(j, flags); /* EINVAL: perhaps O_DIRECT; the named create says */
}

/* Gives the unnamed file j->dfd the name `to`. Linking the descriptor itself
 * (AT_EMPTY_PATH) saves resolving /proc/self/fd/N, but needs privilege
 * (CAP_DAC_READ_SEARCH) or, since Linux 6.10, a file opened with the
 * caller's own credentials; elsewhere the kernel says ENOENT (or EPERM),
 * and /proc/self/fd/N linked with AT_SYMLINK_FOLLOW, which needs neither,
 * is used from then on. */
static int link_as(job *j, const char *to)
{
    static bool no_empty_path;
    if (!no_empty_path) {
        int err = iou_linkat(j->dfd, "", AT_FDCWD, to, AT_EMPTY_PATH);
        if (err != -ENOENT && err != -EPERM && err != -EINVAL)
            return err;
        no_empty_path = true;
    }
    char fdpath[32];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", j->dfd);
    return iou_linkat(AT_FDCWD, fdpath, AT_FDCWD, to, AT_SYMLINK_FOLLOW);
}

/* Makes the complete file visible as j->dst. An unnamed file is linked
 * there; if dst exists, it is linked under a temporary name and renamed
 * over dst, which replaces dst atomically (as for a named temporary file). */
static int publish(job *j)
{
    if (!j->unnamed)
        return fs_rename(j->tmp, j->dst);
    int err = link_as(j, j->dst);
    if (err != -EEXIST)
        return err;
    for (int attempt = 0; attempt < 100 && err == -EEXIST; attempt++) {
        err = make_tmp_name(j);
        if (err == 0)
            err = link_as(j, j->tmp);
    }
    if (err)
        return err;
    j->unnamed = false; /* from here on, a failure must unlink j->tmp */
    return fs_rename(j->tmp, j->dst);
}

static void copy_regular(job *j)
{
    int flags = O_CLOEXEC | (opt.direct ? O_DIRECT : 0);
    j->dfd = -1;
    j->sfd = iou_open(j->src, O_RDONLY | O_NOFOLLOW | flags, 0);
    if (j->sfd < 0) {
        report(j->src, opt.direct && j->sfd == -EINVAL ? "open with O_DIRECT" : "open", j->sfd);
        return;
    }
    int fd = create_dest(j, flags);
    if (fd < 0) {
        iou_close(j->sfd);
        report(j->dst, opt.direct && fd == -EINVAL ? "create with O_DIRECT" : "create", fd);
        return;
    }
    j->dfd = fd;
    int err = copy_data(j);
    if (err == 0 && opt.verify)
        err = verify_data(j);
    if (err == 0)
        err = set_file_meta(j);
    /* A named temporary file is closed before it is renamed (a failed close
     * must not publish it); an unnamed one must be linked while open. */
    if (!j->unnamed) {
        int cerr = iou_close(j->dfd);
        j->dfd = -1;
        if (err == 0 && cerr)
            err = job_fail(j, j->dst, "close", cerr);
    }
    if (err == 0 && (err = publish(j)) != 0)
        job_fail(j, j->dst, j->unnamed ? "link" : "rename", err);
    if (j->dfd >= 0) {
        int cerr = iou_close(j->dfd);
        if (err == 0 && cerr)
            report(j->dst, "close", cerr); /* already published: say so, nothing to undo */
    }
    iou_close(j->sfd);
    if (j->err) {
        if (!j->unnamed && j->tmp)
            fs_unlink(j->tmp);
        char what[96];
        snprintf(what, sizeof(what), "%s (incomplete copy removed)", j->what);
        report(j->where, what, j->err);
    }
}

static void copy_symlink(job *j)
{
    char target[PATH_MAX + 1];
    ssize_t n = readlink(j->src, target, PATH_MAX);
    if (n < 0) {
        report(j->src, "read link", -errno);
        return;
    }
    target[n] = '\0';
    int err = -EEXIST;
    for (int attempt = 0; attempt < 100 && err == -EEXIST; attempt++) {
        err = make_tmp_name(j);
        if (err == 0)
            err = iou_symlinkat(target, AT_FDCWD, j->tmp);
    }
    if (err) {
        report(j->dst, "create link", err);
        return;
    }
    const struct stat *st = &j->st;
    const char *what = NULL;
    if (need_chown(st) &&
        (err = chown_result(lchown(j->tmp, st->st_uid, st->st_gid))) != 0)
        what = "chown";
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    if (what == NULL && utimensat(AT_FDCWD, j->tmp, ts, AT_SYMLINK_NOFOLLOW) != 0)
        err = -errno, what = "set times";
    if (what == NULL && (err = fs_rename(j->tmp, j->dst)) != 0)
        what = "rename";
    if (what) {
        fs_unlink(j->tmp);
        report(j->dst, what, err);
    }
}

static int file_task(void *arg)
{
    job *j = arg;
    if (S_ISLNK(j->st.st_mode))
        copy_symlink(j);
    else
        copy_regular(j);
    g.files_done++;
    free(j->src);
    free(j->dst);
    free(j->tmp);
    free(j);
    iou_sem_release(&g.slots);
    return 0; /* failures are reported and counted; they never stop other files */
}

/* ---- the walk ---- */

static char *join(const char *dir, const char *name)
{
    char *s;
    size_t dl = strlen(dir);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    return asprintf(&s, "%s%s%s", dir, slash ? "" : "/", name) < 0 ? NULL : s;
}

/* Hands src (a file or symlink) to a task of its own, waiting while --jobs
 * are in flight. Takes ownership of src and dst. */
static void submit(char *src, char *dst, const struct stat *st)
{
    job *j = NULL;
    if (!S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode)) {
        report(src, "skipped: not a regular file, directory or symbolic link", 0);
    } else if ((j = calloc(1, sizeof(*j))) == NULL) {
        report(src, "copy", -ENOMEM);
    } else {
        j->src = src;
        j->dst = dst;
        j->st = *st;
        g.files_found++;
        g.bytes_found += S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
        int err = iou_sem_acquire(&g.slots);
        if (err == 0 && iou_group_spawn(g.files, file_task, j) != NULL)
            return;
        if (err == 0)
            iou_sem_release(&g.slots);
        report(src, "copy", err ? err : -ENOMEM);
        free(j);
    }
    free(src);
    free(dst);
}

static int remember_dir(const char *path, const struct stat *st)
{
    if (g.ndirs == g.capdirs) {
        size_t cap = g.capdirs ? 2 * g.capdirs : 64;
        dirmeta *nd = realloc(g.dirs, cap * sizeof(*nd));
        if (nd == NULL)
            return -ENOMEM;
        g.dirs = nd;
        g.capdirs = cap;
    }
    char *p = strdup(path);
    if (p == NULL)
        return -ENOMEM;
    g.dirs[g.ndirs++] = (dirmeta){.path = p, .st = *st};
    return 0;
}

/* Creates dst (owner-only until its contents are done) or accepts an
 * existing directory there, and remembers src's metadata for the end. */
static int make_dir(const char *dst, const struct stat *st)
{
    int err = fs_mkdir(dst, 0700);
    struct stat dst_st;
    if (err == -EEXIST && stat(dst, &dst_st) == 0 && S_ISDIR(dst_st.st_mode))
        err = 0;
    if (err)
        return report(dst, "create directory", err);
    err = remember_dir(dst, st);
    return err ? report(dst, "create directory", err) : 0;
}

static bool is_root(const struct stat *st)
{
    for (size_t i = 0; i < g.nroots; i++)
        if (g.roots[i].st_dev == st->st_dev && g.roots[i].st_ino == st->st_ino)
            return true;
    return false;
}

static void walk(const char *src, const char *dst, const struct stat *st)
{
    if (make_dir(dst, st))
        return;
    DIR *d = opendir(src);
    if (d == NULL) {
        report(src, "open directory", -errno);
        return;
    }
    for (;;) {
        errno = 0; /* other tasks ran since the last readdir: reset before each */
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno)
                report(src, "read directory", -errno);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *s = join(src, e->d_name), *t = join(dst, e->d_name);
        struct stat cst;
        if (s == NULL || t == NULL) {
            report(src, "copy", -ENOMEM);
        } else if (fstatat(dirfd(d), e->d_name, &cst, AT_SYMLINK_NOFOLLOW) != 0) {
            report(s, "stat", -errno);
        } else if (S_ISDIR(cst.st_mode)) {
            if (is_root(&cst))
                report(s, "skipped: it is the destination (a directory cannot be copied into "
                          "itself)", 0);
            else
                walk(s, t, &cst);
        } else {
            submit(s, t, &cst);
            continue;
        }
        free(s);
        free(t);
    }
    closedir(d);
}

/* Modes, times and owners of the directories, deepest first. */
static void finish_dirs(void)
{
    for (size_t i = g.ndirs; i-- > 0;) {
        const char *p = g.dirs[i].path;
        const struct stat *st = &g.dirs[i].st;
        int err = 0;
        if (need_chown(st) && chown(p, st->st_uid, st->st_gid) != 0 &&
            (err = chown_result(chown(p, (uid_t)-1, st->st_gid))) != 0)
            report(p, "chown", err);
        if (chmod(p, st->st_mode & 07777) != 0)
            report(p, "chmod", -errno);
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        if (utimensat(AT_FDCWD, p, ts, 0) != 0)
            report(p, "set times", -errno);
        free(g.dirs[i].path);
    }
    free(g.dirs);
}

/* ---- progress bar (only on a terminal) ---- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t t_start;

static void draw_bar(void)
{
    double s = (double)(mono_ns() - t_start) / 1e9;
    double mib = (double)g.bytes_done / 1048576.0, total = (double)g.bytes_found / 1048576.0;
    int width = 30, fill = g.bytes_found ? (int)(width * mib / total) : 0;
    if (fill > width)
        fill = width;
    fprintf(stderr, "\r\033[K[%.*s%*s] %.1f / %.1f MiB, %lu / %lu files, %.1f MiB/s",
            fill, "##############################", width - fill, "", mib, total, g.files_done,
            g.files_found, s > 0 ? mib / s : 0);
    g.bar_shown = true;
}

static int progress_task(void *arg)
{
    (void)arg;
    while (iou_sleep(200000000) == 0)
        draw_bar();
    return 0;
}

/* ---- the command line's sources ---- */

static char *base_name(const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/')
        start--;
    return strndup(path + start, len - start);
}

static void copy_one(const char *src, const char *dest, bool into)
{
    struct stat st, dst_st;
    if (stat(src, &st) != 0) {
        report(src, "stat", -errno);
        return;
    }
    char *name = into ? base_name(src) : NULL;
    char *dst = into ? (name ? join(dest, name) : NULL) : strdup(dest);
    free(name);
    char *s = strdup(src);
    if (dst == NULL || s == NULL) {
        report(src, "copy", -ENOMEM);
        free(dst);
        free(s);
        return;
    }
    if (stat(dst, &dst_st) == 0 && dst_st.st_dev == st.st_dev && dst_st.st_ino == st.st_ino) {
        report(dst, "is the same file as the source", 0);
        free(dst);
        free(s);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        submit(s, dst, &st);
        return;
    }
    if (make_dir(dst, &st) == 0 && stat(dst, &dst_st) == 0) {
        struct stat *nr = realloc(g.roots, (g.nroots + 1) * sizeof(*nr));
        if (nr) {
            g.roots = nr;
            g.roots[g.nroots++] = dst_st;
        }
        walk(s, dst, &st);
    }
    free(dst);
    free(s);
}

typedef struct cmdline {
    char **srcs;
    int nsrcs;
    const char *dest;
} cmdline;

static int walker_task(void *arg)
{
    cmdline *c = arg;
    struct stat st;
    bool into = stat(c->dest, &st) == 0 && S_ISDIR(st.st_mode);
    if (c->nsrcs > 1 && !into) {
        report(c->dest, "the target of several sources must be an existing directory", 0);
        return 0;
    }
    for (int i = 0; i < c->nsrcs; i++)
        copy_one(c->srcs[i], c->dest, into);
    return 0;
}

static int main_task(void *arg)
{
    g.files = iou_group_new();
    if (g.files == NULL)
        return -ENOMEM;
    iou_task *bar = opt.progress ? iou_spawn(progress_task, NULL) : NULL;
    /* The walk recurses once per directory level: give it a deep stack
     * (only the pages it touches cost memory). */
    iou_spawn_opts so = {.stack_size = 8u << 20, .name = "walk"};
    iou_task *w = iou_spawn_ex(walker_task, arg, &so);
    int err = w ? iou_join(w) : -ENOMEM;
    int gerr = iou_group_wait(g.files);
    finish_dirs();
    if (bar) {
        iou_cancel(bar);
        iou_join(bar);
        if (g.files_found)
            draw_bar();
        clear_bar();
    }
    return err ? err : gerr;
}

/* ---- options ---- */

static int parse_args(int argc, char **argv, cmdline *c)
{
    enum { O_DIRECT_ = 256, O_VERIFY, O_NOPROGRESS, O_STATS, O_NORANGE };
    static const struct option lo[] = {
        {"jobs", required_argument, NULL, 'j'},
        {"depth", required_argument, NULL, 'd'},
        {"chunk", required_argument, NULL, 'c'},
        {"direct", no_argument, NULL, O_DIRECT_},
        {"verify", no_argument, NULL, O_VERIFY},
        {"no-progress", no_argument, NULL, O_NOPROGRESS},
        {"stats", no_argument, NULL, O_STATS},
        {"no-copy-range", no_argument, NULL, O_NORANGE},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    uint64_t v;
    while ((ch = getopt_long(argc, argv, "j:d:c:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'j':
            if (args_long(optarg, 1, 100000, &opt.jobs))
                return args_bad("iou-cp", "job count", optarg);
            break;
        case 'd':
            if (args_long(optarg, 1, 1024, &opt.depth))
                return args_bad("iou-cp", "depth", optarg);
            break;
        case 'c':
            if (args_size(optarg, ALIGN, 1u << 30, &v) || v % ALIGN)
                return args_bad("iou-cp", "chunk size (a multiple of 4096, up to 1G)", optarg);
            opt.chunk = (size_t)v;
            break;
        case O_DIRECT_:
            opt.direct = true;
            break;
        case O_VERIFY:
            opt.verify = true;
            break;
        case O_NOPROGRESS:
            opt.progress = false;
            break;
        case O_STATS:
            opt.stats = true;
            break;
        case O_NORANGE:
            opt.no_range = true;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (argc - optind < 2) {
        fputs("iou-cp: need a source and a destination (try --help)\n", stderr);
        return 2;
    }
    c->srcs = argv + optind;
    c->nsrcs = argc - optind - 1;
    c->dest = argv[argc - 1];
    return 0;
}

int main(int argc, char **argv)
{
    cmdline c;
    int rc = parse_args(argc, argv, &c);
    if (rc)
        return rc;
    opt.progress = opt.progress && isatty(STDERR_FILENO);
    if (opt.chunk == 0)
        opt.chunk = opt.direct ? DIRECT_CHUNK : BUFFERED_CHUNK;
    if (opt.depth == 0)
        opt.depth = opt.direct ? DIRECT_DEPTH : BUFFERED_DEPTH;
    /* Past a file size limit a write fails with EFBIG, reported as any
     * error, instead of the signal killing the process mid-copy. */
    signal(SIGXFSZ, SIG_IGN);
    umask(0); /* files are created with exactly the source's permission bits */
    g.euid = geteuid();
    g.egid = getegid();
    g.pid = getpid();
    iou_sem_init(&g.slots, (size_t)opt.jobs);
    t_start = mono_ns();
    /* Reads go through the ring, where they batch with the other files'
     * operations, instead of a non-blocking pread first (which costs each
     * new fd a check and each read a system call of its own). */
    iou_loop_opts lo = {.ring_entries = 1024, .no_read_fastpath = true};
    rc = iou_run_ex(main_task, &c, &lo);
    if (rc) {
        clear_bar();
        fprintf(stderr, "iou-cp: %s\n", iou_strerror(rc));
        g.errors++;
    }
    if (opt.stats) {
        double s = (double)(mono_ns() - t_start) / 1e9;
        printf("iou-cp: %lu files, %" PRIu64 " bytes in %.3f s (%.1f MB/s), %d error(s)\n",
               g.files_done, g.bytes_done, s, s > 0 ? (double)g.bytes_done / 1e6 / s : 0,
               g.errors);
    }
    pool_free();
    free(g.roots);
    return g.errors ? 1 : 0;
}
