/*
 * iou: sequential-looking code on io_uring.
 *
 * Write `n = iou_recv(fd, buf, len, 0);` inside a task; thousands of tasks run on
 * one thread. Every file, socket and timer operation is an io_uring submission:
 * the task suspends, the completion resumes it.
 *
 * Conventions (apply to every function below):
 *   - Errors are negative errno values, returned (never stored in errno).
 *     iou_strerror() turns one into text.
 *   - -ECANCELED: the calling task was cancelled. -ETIMEDOUT: its deadline passed.
 *     Cancellation beats the deadline.
 *   - "Suspends" means: inside a task the call parks that task and lets others run.
 *     Outside any task, the I/O functions perform the ordinary blocking system
 *     call instead, so the same code runs in plain threads and setup code.
 *   - An operation that the kernel completed before a cancellation took effect
 *     returns its real result (bytes moved, the new fd), so nothing is lost;
 *     the next blocking call then returns -ECANCELED.
 *
 * Sections: tasks, time, file operations, socket operations, loop and callbacks,
 * ..., debugging and statistics, errors.
 */
#ifndef IOU_H
#define IOU_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define IOU_API __attribute__((visibility("default")))
#else
#define IOU_API
#endif

#define IOU_VERSION_MAJOR 0
#define IOU_VERSION_MINOR 1
#define IOU_VERSION_PATCH 0

typedef struct iou_task iou_task;
typedef struct iou_loop iou_loop;
typedef struct iou_timer iou_timer;

/* A task's body. Its return value is what iou_join() returns. */
typedef int (*iou_fn)(void *arg);

/* ------------------------------------------------------------------------ */
/* Tasks                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Creates a loop on the calling thread, runs main(arg) as its first task and
 * runs the loop until main returns. Then it cancels every task still alive,
 * waits until each has ended (their operations complete first), frees the loop
 * and returns main's value.
 * Returns a negative errno if the loop cannot start (e.g. -ENOMEM, or the
 * kernel's error from io_uring setup), -EBUSY if called inside a task or while
 * this thread already runs a loop.
 * If every task ends up waiting on something that can never happen (nothing
 * in flight, no timer: a deadlock), all tasks are cancelled so main returns;
 * if even that wakes none (uninterruptible waits, e.g. re-taking a mutex in
 * iou_cond_wait), iou_run prints a diagnostic and returns -EDEADLK.
 */
IOU_API int iou_run(iou_fn main, void *arg);

/* Options for iou_spawn_ex(). Zero-initialise; every zero field means "default". */
typedef struct iou_spawn_opts {
    size_t stack_size; /* bytes; 0 = the loop default (64 KiB). Rounded up to a power of
                          two from 16 KiB to 256 MiB (larger: iou_spawn_ex returns NULL). */
    const char *name;  /* the task's name (see iou_task_set_name); copied; NULL = the
                          spawn site */
} iou_spawn_opts;

/*
 * Creates a task running fn(arg) on the current loop. It starts after the
 * caller next suspends (FIFO order with other ready tasks), with the
 * floating-point environment (rounding mode, exception masks) the caller had
 * at spawn, as a new thread would. Does not suspend.
 * Returns NULL only when out of memory or when not called on a loop (inside a
 * task or a loop callback).
 */
IOU_API iou_task *iou_spawn(iou_fn fn, void *arg);

/* iou_spawn() with options (stack size, name). opts may be NULL. */
IOU_API iou_task *iou_spawn_ex(iou_fn fn, void *arg, const iou_spawn_opts *opts);

/*
 * iou_spawn() / iou_spawn_ex() recording where the task was spawned: file
 * and func must be string constants (they are kept, not copied). The macros
 * below route every iou_spawn / iou_spawn_ex call here with __FILE__,
 * __LINE__ and __func__, so debug messages and iou_dump() say where a task
 * came from; the plain functions stay exported (spawn site unknown).
 */
IOU_API iou_task *iou_spawn_at(iou_fn fn, void *arg, const char *file, int line,
                               const char *func);
IOU_API iou_task *iou_spawn_ex_at(iou_fn fn, void *arg, const iou_spawn_opts *opts,
                                  const char *file, int line, const char *func);
#define iou_spawn(fn, arg) iou_spawn_at((fn), (arg), __FILE__, __LINE__, __func__)
#define iou_spawn_ex(fn, arg, opts) \
    iou_spawn_ex_at((fn), (arg), (opts), __FILE__, __LINE__, __func__)

/* Bytes of a task name, terminating NUL included: longer names are cut. */
#define IOU_TASK_NAME_MAX 32

/*
 * Names t for every diagnostic (slow-task warnings, leak reports, misuse,
 * iou_dump(), stack overflow, IOU_TRACE). name is copied, cut to
 * IOU_TASK_NAME_MAX - 1 bytes; NULL or "" restores the default, the spawn
 * site ("file.c:123 fn", or "task" when unknown; iou_run's first task is
 * "main"). Returns 0, -EINVAL if t is NULL. Does not suspend.
 */
IOU_API int iou_task_set_name(iou_task *t, const char *name);

/* t's name (see iou_task_set_name), valid until t is freed or renamed.
 * NULL t: the running task's name ("" outside a task). Does not suspend. */
IOU_API const char *iou_task_name(iou_task *t);

/*
 * Suspends until t has ended, frees t and returns fn's value. If the caller is
 * cancelled while waiting, t is cancelled too and still awaited (t is never
 * left behind); the caller's next blocking call then returns -ECANCELED.
 * Returns -EINVAL if t is NULL, detached, already being joined or is the
 * caller; -EPERM outside a task.
 */
IOU_API int iou_join(iou_task *t);

/* Lets t run on its own: it is freed when it ends. Do not use t afterwards
 * except through iou_cancel() while it is known to be alive. Does not suspend. */
IOU_API void iou_detach(iou_task *t);

/*
 * Requests cancellation of t: its pending blocking call (if any) and every
 * later one return -ECANCELED (operations in the kernel are cancelled there
 * and their completion awaited first). Cleanup such as iou_close() still works.
 * Does not suspend. Returns 0, or -ESRCH if t has already ended (but was not
 * yet joined), -EINVAL if t is NULL.
 */
IOU_API int iou_cancel(iou_task *t);

/* Returns the running task, or NULL outside a task. */
IOU_API iou_task *iou_self(void);

/* Returns true if the running task has been cancelled. */
IOU_API bool iou_cancelled(void);

/*
 * Puts the running task at the back of the ready queue and lets every task
 * ahead of it run. Suspends. Returns 0, or -ECANCELED if the task is
 * cancelled or -ETIMEDOUT if its deadline passed (it still yielded), so a
 * long computation can notice both. Outside a task: sched_yield(), returns 0.
 */
IOU_API int iou_yield(void);

/* ------------------------------------------------------------------------ */
/* Time                                                                     */
/* ------------------------------------------------------------------------ */

/* Monotonic time in nanoseconds (the loop's virtual clock when it has one). */
IOU_API uint64_t iou_now(void);

/*
 * Suspends the running task for ns nanoseconds (a user-space timer: no SQE).
 * Returns 0, -ECANCELED, or -ETIMEDOUT if a deadline ends the sleep early.
 * Outside a task: nanosleep().
 */
IOU_API int iou_sleep(uint64_t ns);

/* ------------------------------------------------------------------------ */
/* File operations (each suspends the running task)                         */
/* ------------------------------------------------------------------------ */

/* One NOP round trip through the ring. Returns 0 or -ECANCELED. */
IOU_API int iou_nop(void);

/* openat(AT_FDCWD, path, flags, mode). Returns the new fd or a negative errno.
 * path must stay valid until the call returns (it does: the call suspends). */
IOU_API int iou_open(const char *path, int flags, mode_t mode);

/* Closes fd. Not interrupted by cancellation: it always runs to completion.
 * Returns 0 or a negative errno (-EBADF). */
IOU_API int iou_close(int fd);

/* Reads up to len bytes at offset off (off < 0: at the file position, which
 * advances). Returns bytes read (0 at end of file; may be short) or -errno.
 * On a regular file opened without O_DIRECT a task first tries the page
 * cache (preadv2 with RWF_NOWAIT): a hit returns without suspending, only
 * uncached data goes through the ring (see iou_loop_opts.no_read_fastpath). */
IOU_API ssize_t iou_read(int fd, void *buf, size_t len, int64_t off);

/* Writes up to len bytes at off (off < 0: at the file position). Returns bytes
 * written (may be short) or -errno. */
IOU_API ssize_t iou_write(int fd, const void *buf, size_t len, int64_t off);

/* fsync(fd). Returns 0 or -errno. */
IOU_API int iou_fsync(int fd);

/* ------------------------------------------------------------------------ */
/* Files: metadata, vectors, registered resources, O_DIRECT                 */
/* Each call suspends the running task for one io_uring operation; outside  */
/* any task it is the ordinary blocking system call. Offsets: off < 0 means */
/* the file position (which advances). Paths and iovecs need only stay      */
/* valid until the call returns (it does: the call suspends).               */
/* ------------------------------------------------------------------------ */

struct statx;
struct iovec;

/* openat(dirfd, path, flags, mode) (dirfd AT_FDCWD: relative to the current
 * directory). Returns the new fd or -errno (-ENOENT, -EEXIST with O_EXCL,
 * -ENOTDIR, -EINVAL for O_DIRECT where the filesystem refuses it, ...). */
IOU_API int iou_openat(int dirfd, const char *path, int flags, mode_t mode);

/* statx(dirfd, path, flags, mask, st): flags AT_* (AT_EMPTY_PATH with path ""
 * describes dirfd itself, AT_SYMLINK_NOFOLLOW), mask STATX_* (STATX_BASIC_STATS).
 * Fills *st; returns 0 or -errno (-ENOENT, -ENOTDIR, -EBADF). */
IOU_API int iou_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st);

/* fallocate(fd, mode, off, len): mode 0 reserves blocks (the size grows to
 * off + len), FALLOC_FL_KEEP_SIZE / FALLOC_FL_PUNCH_HOLE / ... as the system
 * call. Returns 0 or -errno (-EOPNOTSUPP where the filesystem cannot, -EBADF,
 * -EFBIG, -ENOSPC, -EINVAL for len <= 0). */
IOU_API int iou_fallocate(int fd, int mode, int64_t off, int64_t len);

/* ftruncate(fd, len): one io_uring operation on kernels that have it (6.9+),
 * else the system call (a metadata update: it does not wait for disk I/O).
 * Returns 0 or -errno (-EINVAL for len < 0 or a file not open for writing,
 * -EBADF, -EFBIG). */
IOU_API int iou_ftruncate(int fd, int64_t len);

/* unlinkat(dirfd, path, flags); flags AT_REMOVEDIR removes an empty
 * directory. Returns 0 or -errno (-ENOENT, -EISDIR, -ENOTEMPTY, -ENOTDIR).
 * iou_unlink(path) is unlinkat(AT_FDCWD, path, 0). */
IOU_API int iou_unlinkat(int dirfd, const char *path, int flags);
IOU_API int iou_unlink(const char *path);

/* renameat2(olddirfd, oldpath, newdirfd, newpath, flags): flags RENAME_NOREPLACE
 * (-EEXIST if newpath exists), RENAME_EXCHANGE, or 0 (replace atomically).
 * Returns 0 or -errno (-ENOENT, -EEXIST, -EXDEV across filesystems). */
IOU_API int iou_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                         unsigned flags);

/* linkat(olddirfd, oldpath, newdirfd, newpath, flags): a new name for a file
 * (flags AT_SYMLINK_FOLLOW, AT_EMPTY_PATH; "/proc/self/fd/N" with
 * AT_SYMLINK_FOLLOW names an O_TMPFILE file). Returns 0 or -errno (-EEXIST,
 * -ENOENT, -EXDEV, -EPERM). */
IOU_API int iou_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                       int flags);

/* symlinkat(target, newdirfd, linkpath): a symbolic link to target (not
 * checked to exist). Returns 0 or -errno (-EEXIST, -ENOENT). */
IOU_API int iou_symlinkat(const char *target, int newdirfd, const char *linkpath);

/* mkdirat(dirfd, path, mode). Returns 0 or -errno (-EEXIST, -ENOENT, -ENOTDIR). */
IOU_API int iou_mkdirat(int dirfd, const char *path, mode_t mode);

/* preadv / pwritev: scatter-gather over iovcnt buffers at off (off < 0: the
 * file position). Returns bytes moved (may be short; 0 at end of file) or
 * -errno (-EINVAL if iovcnt is negative or above IOV_MAX). Reads take the
 * cached-read fast path as iou_read does. */
IOU_API ssize_t iou_readv(int fd, const struct iovec *iov, int iovcnt, int64_t off);
IOU_API ssize_t iou_writev(int fd, const struct iovec *iov, int iovcnt, int64_t off);

/* fdatasync(fd): the data and the metadata needed to read it back (the size),
 * not timestamps. Returns 0 or -errno (-EBADF, -EIO). */
IOU_API int iou_fdatasync(int fd);

/* sync_file_range(fd, off, len, flags): SYNC_FILE_RANGE_WAIT_BEFORE / _WRITE /
 * _WAIT_AFTER; len 0 means to the end of the file. It does not make the data
 * durable (no metadata, no disk cache flush): use iou_fdatasync for that.
 * Returns 0 or -errno (-EINVAL, -ESPIPE on a pipe). */
IOU_API int iou_sync_file_range(int fd, int64_t off, int64_t len, unsigned flags);

/* posix_fadvise(fd, off, len, advice): POSIX_FADV_SEQUENTIAL, _RANDOM,
 * _WILLNEED (starts readahead), _DONTNEED (drops clean cached pages); len 0:
 * to the end of the file. Returns 0 or -errno (-EBADF, -EINVAL, -ESPIPE). */
IOU_API int iou_fadvise(int fd, int64_t off, int64_t len, int advice);

/* splice(2): moves up to len bytes from fd_in to fd_out without copying
 * through user space; one of them must be a pipe. off_in / off_out: the
 * offset in a file (< 0: its file position; must be < 0 for a pipe). flags
 * SPLICE_F_MOVE, SPLICE_F_MORE (SPLICE_F_NONBLOCK is ignored: a task simply
 * waits). Returns bytes moved (0: fd_in is at end of file or a pipe with no
 * writer) or -errno (-EINVAL if neither is a pipe, -ESPIPE for an offset on
 * a pipe, -EBADF). */
IOU_API ssize_t iou_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                           unsigned flags);

/* tee(2): duplicates up to len bytes from pipe fd_in to pipe fd_out without
 * consuming them. Returns bytes duplicated (0: nothing to duplicate and no
 * writer) or -errno (-EINVAL if either is not a pipe, or both are the same). */
IOU_API ssize_t iou_tee(int fd_in, int fd_out, size_t len, unsigned flags);

/* copy_file_range(2): copies up to len bytes from file fd_in at off_in to
 * file fd_out at off_out inside the kernel (page cache to page cache, or a
 * clone where the file system offers one), without passing through user
 * memory. An offset < 0 (only -1 is accepted) means the file position, which
 * then advances. flags must be 0. io_uring has no opcode for it: on both
 * backends it runs on the worker pool (iou_pool_config) and the calling task
 * suspends meanwhile; outside a task it is the plain blocking call.
 * Returns bytes copied (0 at end of file; fewer than len is normal: loop), or
 * -errno: -EXDEV (files on different file systems, on kernels that refuse
 * that), -EOPNOTSUPP / -EINVAL (a file system or file type that cannot do
 * it, e.g. a pipe, or flags != 0; also an offset below -1), -EBADF (also for
 * registered-file handles, which the pool cannot use), -EISDIR, -ENOSPC,
 * -EFBIG, -ENOMEM. On -EXDEV / -EOPNOTSUPP / -EINVAL, copy with
 * iou_read / iou_write instead.
 * Cancellation and deadlines: a copy that has not started yet is dropped and
 * the call returns -ECANCELED / -ETIMEDOUT at once; one already running
 * cannot be stopped (the kernel holds the descriptors), so the caller
 * returns when it ends, with its byte count (a completed copy is reported
 * as such). It touches no user memory. */
IOU_API ssize_t iou_copy_file_range(int fd_in, int64_t off_in, int fd_out, int64_t off_out,
                                    size_t len, unsigned flags);

/*
 * Reads all len bytes at off (off < 0: from the file position), looping over
 * short reads. Returns len, or fewer only at end of file, or -errno if an
 * error or interruption stops it (-ECANCELED, -ETIMEDOUT, -EIO, -EAGAIN on a
 * non-blocking fd outside a task): then some bytes may have been read and
 * this function does not say how many (iou_read_full_ex does). -EINVAL if
 * len exceeds SSIZE_MAX. Suspends.
 */
IOU_API ssize_t iou_read_full(int fd, void *buf, size_t len, int64_t off);

/* Writes all len bytes at off (off < 0: at the file position), looping over
 * short writes. Returns len, or -errno if an error stops it (-ENOSPC, -EFBIG,
 * -EPIPE, -ECANCELED, ...), after which a prefix may have been written (see
 * iou_write_full_ex). A write of 0 bytes for a nonzero request gives -EIO.
 * Suspends. */
IOU_API ssize_t iou_write_full(int fd, const void *buf, size_t len, int64_t off);

/* iou_read_full() / iou_write_full() storing in *done (may be NULL) how many
 * bytes were moved before returning, also when an error stopped them: a
 * caller can resume from there, or remove a partly written destination. */
IOU_API ssize_t iou_read_full_ex(int fd, void *buf, size_t len, int64_t off, size_t *done);
IOU_API ssize_t iou_write_full_ex(int fd, const void *buf, size_t len, int64_t off,
                                  size_t *done);

/*
 * Registered ("fixed") buffers: memory the kernel has pinned once, so a read
 * or write into it skips the per-operation page mapping (IORING_OP_READ_FIXED).
 * Each belongs to the loop of the thread that allocated it: use it only in
 * that loop's tasks. The loop frees buffers left over when it ends (do not use
 * them afterwards). Pinned memory counts against RLIMIT_MEMLOCK (-ENOMEM past
 * it, unless the process has CAP_IPC_LOCK).
 */
typedef struct iou_fixed_buf {
    void *data;  /* page-aligned (so also fit for O_DIRECT), len bytes */
    size_t len;  /* as asked, rounded up to whole pages */
    int index;   /* its slot in the loop's buffer table; -1 once freed */
} iou_fixed_buf;

/* Maps len bytes of page-aligned memory and registers them in the calling
 * thread's loop. Fills *out. Returns 0 or -errno: -ENOTSUP (no loop on this
 * thread, or it does not run on io_uring), -EINVAL (len 0 or above 1 GiB, the
 * kernel's limit), -ENOMEM (memory or RLIMIT_MEMLOCK), -ENOBUFS (16384
 * buffers registered), -EBUSY (the table must grow while fixed operations are
 * in flight; retry once they end). Does not suspend. */
IOU_API int iou_fixed_buf_alloc(size_t len, iou_fixed_buf *out);

/* Unregisters and unmaps b, and marks it freed (b->data NULL, index -1). If
 * fixed operations on it are still in flight (other tasks), the memory is
 * released only when the last of them has completed: it can never be freed
 * under the kernel. Freeing a buffer twice, or one of another loop, does
 * nothing. Does not suspend. */
IOU_API void iou_fixed_buf_free(iou_fixed_buf *b);

/* Reads / writes len bytes at file offset off (off < 0: the file position)
 * into / from b->data + boff, through the registered buffer. Returns bytes
 * moved (may be short, as iou_read / iou_write) or -errno: -EINVAL if
 * [boff, boff + len) is not inside b or b is not a live buffer of this loop.
 * Suspends. Outside a task: a plain pread / pwrite on the same memory. */
IOU_API ssize_t iou_read_fixed(int fd, const iou_fixed_buf *b, size_t boff, size_t len,
                               int64_t off);
IOU_API ssize_t iou_write_fixed(int fd, const iou_fixed_buf *b, size_t boff, size_t len,
                                int64_t off);

/* A registered-file handle is IOU_FIXED_FD | slot. */
#define IOU_FIXED_FD (1 << 30)

/*
 * Registered files (direct descriptors): iou_file_register(fd) puts fd's open
 * file into the loop's file table and returns a handle, usable as the fd
 * argument of the iou_ file and socket operations (read, write, readv,
 * writev, the _fixed calls, fsync, fdatasync, fallocate, ftruncate,
 * sync_file_range, fadvise, splice, tee, send, recv, accept, connect, ...) in
 * this loop's tasks; each then skips the kernel's fd lookup. The table holds
 * its own reference: fd may be closed right after registering, and the file
 * stays open until iou_file_unregister(). Not usable as a dirfd, nor with
 * iou_close() (-EBADF), nor outside a task (the system call gets -EBADF),
 * nor with helpers that also make plain system calls on the fd (streams,
 * iou_recv_buf, iou_serve, the sockopt and dial helpers).
 * Returns the handle or -errno: -ENOTSUP (no loop on this thread, or not
 * io_uring), -EBADF, -ENFILE (table full: 4096 entries, or RLIMIT_NOFILE if
 * lower). Does not suspend.
 */
IOU_API int iou_file_register(int fd);

/* Removes a handle from the table (the file closes when nothing else holds
 * it; operations already in flight on it finish normally). Returns 0, or
 * -EBADF if handle is not registered, -ENOTSUP as above. Does not suspend. */
IOU_API int iou_file_unregister(int handle);

/* len bytes (rounded up to 4096) of memory aligned to 4096 bytes, enough for
 * O_DIRECT on any device. Free it with free(). NULL when out of memory or len
 * is 0. Does not suspend. */
IOU_API void *iou_aligned_alloc(size_t len);

/* The alignment O_DIRECT needs on fd: *mem_align for buffer addresses (and
 * lengths), *off_align for file offsets (either pointer may be NULL). From
 * statx(STATX_DIOALIGN) where the kernel reports it, else the filesystem's
 * block size (st_blksize, a safe bound). Returns 0 or -errno: -EBADF,
 * -EOPNOTSUPP when the file does not support direct I/O. A request that
 * breaks these gets -EINVAL from the kernel. Does not suspend. */
IOU_API int iou_dio_alignment(int fd, size_t *mem_align, size_t *off_align);

/* ------------------------------------------------------------------------ */
/* Socket operations (each suspends the running task)                       */
/* ------------------------------------------------------------------------ */

/* socket(domain, type, protocol). Returns the fd or -errno. */
IOU_API int iou_socket(int domain, int type, int protocol);

/* Accepts one connection on listening fd. addr/addrlen may be NULL. Returns the
 * new fd (with SOCK_CLOEXEC) or -errno. */
IOU_API int iou_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);

/* Connects fd to addr. Returns 0 or -errno (-ECONNREFUSED, ...). */
IOU_API int iou_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/* recv(2). Returns bytes received (0: peer closed) or -errno. */
IOU_API ssize_t iou_recv(int fd, void *buf, size_t len, int flags);

/* send(2). Returns bytes sent (may be short) or -errno. MSG_NOSIGNAL is
 * always added: a closed peer gives -EPIPE, never SIGPIPE. On the io_uring
 * backend, a send that is the loop's only queued submission when the loop
 * has nothing else to run is made with send(2) and MSG_DONTWAIT instead of
 * an SQE (same result; a full socket still goes to the ring and waits):
 * one system call per request-response instead of two enters. Not for
 * MSG_WAITALL or registered files; iou_loop_stats.sends_direct counts them. */
IOU_API ssize_t iou_send(int fd, const void *buf, size_t len, int flags);

/* ------------------------------------------------------------------------ */
/* Loop and callbacks: the layer the tasks are built on                     */
/* ------------------------------------------------------------------------ */

/* Options for iou_loop_new_ex(). Zero-initialise; zero means default. */
typedef struct iou_loop_opts {
    unsigned ring_entries;     /* SQ size; 0 = 256. The CQ is four times larger. */
    size_t stack_size;         /* default task stack size; 0 = 64 KiB */
    bool virtual_clock;        /* time jumps to the next timer when nothing else can run */
    bool no_read_fastpath;     /* iou_read / iou_readv on regular files go straight to the
                                  ring instead of trying a non-blocking page-cache read
                                  first (also: environment IOU_NOWAIT_READ=0) */
    bool debug;                /* debug mode (also IOU_DEBUG=1): see "Debugging" below */
    uint64_t slow_task_ns;     /* debug mode: warn when a task runs this long without
                                  suspending; 0 = IOU_DEBUG_SLOW_MS, else 100 ms */
    bool trace;                /* log every operation (also IOU_TRACE=1): see below */
    const char *backend;       /* "io_uring" or "epoll" to require one (no fallback);
                                  NULL or "" = the IOU_BACKEND environment variable if
                                  set, else io_uring, or epoll where io_uring cannot
                                  be set up. See "Backends" below */
} iou_loop_opts;

/*
 * Backends. A loop runs on one of two:
 *   "io_uring"  the default: every operation is an io_uring submission.
 *   "epoll"     readiness plus non-blocking system calls; regular-file
 *               operations, open, close and fsync run as blocking calls on
 *               the worker pool. Chosen automatically when io_uring cannot be
 *               set up (ENOSYS, EPERM, EACCES, EINVAL, EOPNOTSUPP: old
 *               kernels, Docker's default seccomp profile,
 *               kernel.io_uring_disabled, gVisor), or forced with the
 *               environment variable IOU_BACKEND=epoll or
 *               iou_loop_opts.backend. IOU_BACKEND=io_uring (or the option)
 *               requires io_uring: loop creation then fails with the kernel's
 *               error (and a message on stderr) instead of falling back.
 * Every function behaves the same on both (results, errors, cancellation,
 * deadlines), except:
 *   - io_uring-only features return -ENOTSUP on epoll: raw SQEs
 *     (iou_submit_sqe, iou_loop_submit_sqe) and registered buffers / files;
 *   - provided buffer rings are not used: iou_recv_buf and streams receive
 *     into heap buffers (iou_bufring_get_stats reports count 0);
 *   - iou_send_zc copies (a plain send);
 *   - an operation on the pool (a regular-file read, fsync, open, close)
 *     cannot be cancelled once running: it completes with its real result,
 *     as one io_uring has already started does;
 *   - on a blocking-mode fd, accept and connect set O_NONBLOCK for the
 *     duration of one system call (there is no per-call flag), which another
 *     thread blocking on the same socket at that instant would notice;
 *   - the epoll backend keeps each fd's registration between operations, so
 *     close fds through iou_close(): an fd closed with close(2) and its
 *     number reused by a file iou did not create (socket(2), open(2)) can
 *     delay the first waits on the new file by up to about 100 ms (never
 *     longer: a wait without an event for a whole period re-registers).
 */

/* The backend of this thread's loop ("io_uring" or "epoll"), or NULL when
 * the thread has no loop. Does not suspend. */
IOU_API const char *iou_backend_name(void);

/* The backend of loop l, or NULL if l is NULL. Does not suspend. */
IOU_API const char *iou_loop_backend_name(const iou_loop *l);

/* Creates a loop bound to the calling thread (one loop per thread). Returns
 * NULL on failure (see iou_loop_new_ex for the reason). */
IOU_API iou_loop *iou_loop_new(void);

/* Creates a loop with options. On failure returns NULL and, if err is not
 * NULL, stores the negative errno there (-EBUSY: this thread has a loop). */
IOU_API iou_loop *iou_loop_new_ex(const iou_loop_opts *opts, int *err);

/*
 * Runs the loop on its thread until iou_loop_stop() or until nothing is left
 * to do (no task alive, no callback, timer or operation pending). Returns 0,
 * or -EBUSY if called from inside the loop, -EPERM from another thread.
 */
IOU_API int iou_loop_run(iou_loop *l);

/* Makes iou_loop_run() return after the current iteration. Does not suspend. */
IOU_API void iou_loop_stop(iou_loop *l);

/*
 * Frees the loop. Tasks still alive are cancelled and run to their end first
 * (their kernel operations are awaited: no buffer is abandoned to the kernel).
 * Pending callbacks and timers are dropped.
 */
IOU_API void iou_loop_free(iou_loop *l);

/* Spawns a task on l (from setup code or a callback). NULL when out of memory. */
IOU_API iou_task *iou_loop_spawn(iou_loop *l, iou_fn fn, void *arg);

/* The loop running on this thread, or NULL. */
IOU_API iou_loop *iou_loop_current(void);

/* Runs cb(arg) on the loop's next iteration, after the tasks already ready
 * (FIFO). Returns 0 or -ENOMEM. */
IOU_API int iou_call_soon(iou_loop *l, void (*cb)(void *), void *arg);

/* Runs cb(arg) once, ns nanoseconds from now. Returns a handle for
 * iou_timer_cancel(), valid until the callback has returned, or NULL on ENOMEM. */
IOU_API iou_timer *iou_call_later(iou_loop *l, uint64_t ns, void (*cb)(void *), void *arg);

/* Runs cb(arg) once at abs_ns on iou_now()'s clock. As iou_call_later(). */
IOU_API iou_timer *iou_call_at(iou_loop *l, uint64_t abs_ns, void (*cb)(void *), void *arg);

/* Cancels a timer whose callback has not run yet and frees it. Returns 0, or
 * -EALREADY when called from that timer's own callback (it is freed after). */
IOU_API int iou_timer_cancel(iou_timer *t);

/* Runs main like iou_run(), on a loop created with opts (NULL: defaults).
 * With opts->virtual_clock, time jumps to the next timer whenever every task
 * waits on time alone: a test of a 2-second sleep runs in microseconds and
 * still sees 2 s pass on iou_now(). */
IOU_API int iou_run_ex(iou_fn main, void *arg, const iou_loop_opts *opts);

/* ------------------------------------------------------------------------ */
/* Deadlines: bound any blocking call without a second variant of it        */
/* ------------------------------------------------------------------------ */

#define IOU_NEVER UINT64_MAX /* "no deadline" */

/*
 * Narrows the running task's deadline to min(current, abs_ns) (absolute, on
 * iou_now()'s clock) and returns the previous deadline for iou_deadline_pop().
 * Past the effective deadline every blocking call returns -ETIMEDOUT; an
 * operation in flight is cancelled in the kernel and its completion awaited.
 * Scopes nest: an inner scope can only tighten. Does not suspend. Outside a
 * task it does nothing and returns IOU_NEVER.
 */
IOU_API uint64_t iou_deadline_push(uint64_t abs_ns);

/* Restores the deadline iou_deadline_push() returned. */
IOU_API void iou_deadline_pop(uint64_t previous);

/* The running task's effective deadline, or IOU_NEVER. */
IOU_API uint64_t iou_deadline(void);

/* Runs fn(arg) in the calling task under a deadline of now + ns (asyncio's
 * wait_for / timeout()). Returns fn's value; -ETIMEDOUT comes from whatever
 * blocking call inside fn hit the deadline. A deadline that would overflow
 * means none. -EPERM outside a task, -EINVAL if fn is NULL. */
IOU_API int iou_timeout(uint64_t ns, iou_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Task groups (asyncio.TaskGroup, trio nurseries)                          */
/* ------------------------------------------------------------------------ */

typedef struct iou_group iou_group;

/* A new empty group owned by the calling task. NULL when out of memory or
 * outside a loop. */
IOU_API iou_group *iou_group_new(void);

/* Spawns fn(arg) as a child of g (on g's loop). The child belongs to the
 * group: do not join or detach it. NULL when out of memory. */
IOU_API iou_task *iou_group_spawn(iou_group *g, iou_fn fn, void *arg);

/*
 * Suspends until every child has ended. The first child that returns nonzero
 * cancels the others; the group returns that value (0 if all returned 0).
 * Cancelling the waiting task (or its deadline passing) cancels every child;
 * the wait still lasts until they have ended and then returns -ECANCELED /
 * -ETIMEDOUT unless a child had failed first. Frees g. -EPERM outside a task,
 * -EINVAL if g is NULL or already being waited on, -EDEADLK if called by one
 * of g's own children.
 */
IOU_API int iou_group_wait(iou_group *g);

/* Cancels every child of g that is still running. Does not suspend. */
IOU_API void iou_group_cancel(iou_group *g);

/* ------------------------------------------------------------------------ */
/* Combinators: gather, wait-any, completion order                          */
/* ------------------------------------------------------------------------ */

/* Joins all n tasks (each is freed) and stores their values in results[i]
 * (results may be NULL). Returns 0, or -ECANCELED / -ETIMEDOUT if the caller
 * was interrupted meanwhile (the tasks are then cancelled and still joined).
 * Suspends. -EPERM outside a task, -EINVAL if t is NULL with n > 0. */
IOU_API int iou_gather(iou_task **t, size_t n, int *results);

/* Suspends until at least one of the n tasks has ended and returns the index
 * of one that has (the lowest such index), without joining it. Returns
 * -ECANCELED / -ETIMEDOUT if interrupted first, -EINVAL if n == 0 or an entry
 * is NULL, detached or the caller, -ENOMEM (more than 16 tasks), -EPERM
 * outside a task. */
IOU_API int iou_wait_any(iou_task **t, size_t n);

typedef struct iou_as_completed iou_as_completed;

/* Takes ownership of n tasks to hand them back in the order they finish
 * (asyncio.as_completed). NULL when out of memory or an entry is NULL or
 * detached. */
IOU_API iou_as_completed *iou_as_completed_new(iou_task **t, size_t n);

/* Suspends until the next task ends, joins it, stores its value in *result
 * and returns its index in the array given to iou_as_completed_new().
 * Returns -ENOENT once every task has been returned, -ECANCELED / -ETIMEDOUT
 * if interrupted (the tasks keep running; call again or free), -EBUSY if
 * another task is already waiting in it, -EPERM outside a task. */
IOU_API int iou_as_completed_next(iou_as_completed *c, int *result);

/* Cancels and joins the tasks not yet returned, then frees c. Suspends if
 * any task is still running (outside a task: cancels and detaches them). */
IOU_API void iou_as_completed_free(iou_as_completed *c);

/* ------------------------------------------------------------------------ */
/* Synchronisation for tasks: caller storage, no allocation, FIFO fairness   */
/* Waits return 0, or -ECANCELED / -ETIMEDOUT (deadlines apply). A call that */
/* can complete at once does so even in a cancelled task: only a real wait   */
/* is interrupted (so cleanup code can still take a free lock). A call that  */
/* would have to wait returns -EPERM outside a task. Use them only among     */
/* tasks of one loop.                                                        */
/* ------------------------------------------------------------------------ */

/* The queue of tasks waiting on a primitive. Internal: do not touch. */
typedef struct iou_waitlist {
    void *head, *tail;
} iou_waitlist;

typedef struct iou_mutex {
    iou_task *owner;
    iou_waitlist waiters;
} iou_mutex;
#define IOU_MUTEX_INIT {NULL, {NULL, NULL}}

IOU_API void iou_mutex_init(iou_mutex *m);
/* Suspends until the caller owns m. Ownership passes directly to the longest
 * waiter on unlock (no barging). -EDEADLK if the caller already owns it. */
IOU_API int iou_mutex_lock(iou_mutex *m);
/* 0 if acquired, -EBUSY if owned, -EPERM outside a task (a mutex is owned
 * by a task). Does not suspend. */
IOU_API int iou_mutex_trylock(iou_mutex *m);
/* 0, or -EPERM if the caller does not own m. Does not suspend. */
IOU_API int iou_mutex_unlock(iou_mutex *m);

typedef struct iou_sem {
    size_t count;
    iou_waitlist waiters;
} iou_sem;

IOU_API void iou_sem_init(iou_sem *s, size_t count);
/* Suspends until a unit is available and takes it. */
IOU_API int iou_sem_acquire(iou_sem *s);
/* 0 if a unit was taken, -EAGAIN if none. Does not suspend. */
IOU_API int iou_sem_tryacquire(iou_sem *s);
/* Returns a unit: to the longest waiter if any. Does not suspend. */
IOU_API void iou_sem_release(iou_sem *s);

typedef struct iou_event {
    bool set;
    iou_waitlist waiters;
} iou_event;

IOU_API void iou_event_init(iou_event *e);
/* Suspends until e is set (returns at once if it is). */
IOU_API int iou_event_wait(iou_event *e);
/* Sets e and wakes every waiter. Does not suspend. */
IOU_API void iou_event_set(iou_event *e);
IOU_API void iou_event_clear(iou_event *e);
IOU_API bool iou_event_is_set(const iou_event *e);

typedef struct iou_cond {
    iou_waitlist waiters;
} iou_cond;

IOU_API void iou_cond_init(iou_cond *c);
/* Releases m (which the caller must own: else -EPERM), suspends until
 * signalled, and re-acquires m before returning, also when it returns
 * -ECANCELED or -ETIMEDOUT. In a task already cancelled (or past its
 * deadline) it returns at once, still holding m. */
IOU_API int iou_cond_wait(iou_cond *c, iou_mutex *m);
IOU_API void iou_cond_signal(iou_cond *c);
IOU_API void iou_cond_broadcast(iou_cond *c);

/* ------------------------------------------------------------------------ */
/* Channels (Go channels, asyncio.Queue)                                    */
/* ------------------------------------------------------------------------ */

typedef struct iou_chan iou_chan;

/* A channel of elements of elem_size bytes buffering up to capacity of them
 * (0: rendezvous, a send waits for a receiver). NULL when out of memory or
 * elem_size is 0. Usable from tasks of the loop it is used on. */
IOU_API iou_chan *iou_chan_new(size_t elem_size, size_t capacity);

/* Copies *elem into the channel, suspending while it is full. Returns 0,
 * -EPIPE if the channel is (or becomes, while waiting) closed, -ECANCELED,
 * -ETIMEDOUT. */
IOU_API int iou_chan_send(iou_chan *c, const void *elem);

/* Copies the oldest element into *elem, suspending while empty. Returns 0,
 * -EPIPE once the channel is closed and drained, -ECANCELED, -ETIMEDOUT. */
IOU_API int iou_chan_recv(iou_chan *c, void *elem);

/* Non-blocking variants: 0, -EAGAIN (would block) or -EPIPE. */
IOU_API int iou_chan_try_send(iou_chan *c, const void *elem);
IOU_API int iou_chan_try_recv(iou_chan *c, void *elem);

/* Closes c: blocked senders get -EPIPE; receivers drain what is buffered,
 * then get -EPIPE. Idempotent. Does not suspend. */
IOU_API void iou_chan_close(iou_chan *c);

/* Frees c. No task may be blocked on it. */
IOU_API void iou_chan_free(iou_chan *c);

/* Elements buffered now. */
IOU_API size_t iou_chan_len(const iou_chan *c);

enum { IOU_SELECT_SEND = 1, IOU_SELECT_RECV = 2 };

typedef struct iou_select_case {
    iou_chan *chan;
    int op;      /* IOU_SELECT_SEND or IOU_SELECT_RECV */
    void *elem;  /* the element to send, or where to receive */
    int result;  /* out: 0, or -EPIPE if the channel was closed */
} iou_select_case;

/* Waits until one of the n cases can proceed, performs exactly that one and
 * returns its index (its result field says 0 or -EPIPE). When several are
 * ready, the lowest index wins. Returns -ECANCELED / -ETIMEDOUT if
 * interrupted first (then no case was performed), -EINVAL for bad cases,
 * -ENOMEM if more than 8 cases must wait and their records cannot be
 * allocated. */
IOU_API int iou_select(iou_select_case *cases, size_t n);

/* As iou_select() but never suspends: -EAGAIN if no case is ready. */
IOU_API int iou_try_select(iou_select_case *cases, size_t n);

/* ------------------------------------------------------------------------ */
/* Futures: a result set by callbacks or tasks, awaited by tasks             */
/* ------------------------------------------------------------------------ */

typedef struct iou_future iou_future;

/* A pending future on loop l. NULL when out of memory or l is NULL. */
IOU_API iou_future *iou_future_new(iou_loop *l);

/* Completes f with a value / an error (negative errno; else -EINVAL). Done
 * callbacks are scheduled with iou_call_soon and waiters woken (each gets a
 * copy of the result). Returns 0, -EALREADY if f is already done, or -ENOMEM
 * (f stays pending) if its callbacks could not be scheduled. Does not
 * suspend; callable from callbacks. */
IOU_API int iou_future_set_result(iou_future *f, intptr_t value);
IOU_API int iou_future_set_error(iou_future *f, int err);

/* Completes f with -ECANCELED (if not done yet). Returns 0 or -EALREADY. */
IOU_API int iou_future_cancel(iou_future *f);

IOU_API bool iou_future_done(const iou_future *f);

/* Suspends until f is done. Returns f's error, or 0 and stores the value in
 * *value (may be NULL). A future already done answers at once, even in a
 * cancelled task. Also -ECANCELED / -ETIMEDOUT if the waiting task is
 * interrupted (f is left as it is), -EPERM outside a task. */
IOU_API int iou_future_wait(iou_future *f, intptr_t *value);

/* Calls cb(f, arg) once f is done (via iou_call_soon; at once-scheduled if
 * already done). Returns 0 or -ENOMEM. */
IOU_API int iou_future_on_done(iou_future *f, void (*cb)(iou_future *f, void *arg), void *arg);

/* Frees f. Its done callbacks that have not run yet are dropped (safely, also
 * when already scheduled); tasks still waiting on it are woken with
 * -ECANCELED. */
IOU_API void iou_future_free(iou_future *f);

/* ------------------------------------------------------------------------ */
/* Raw io_uring: any opcode, from a task or with a completion callback       */
/* ------------------------------------------------------------------------ */

struct io_uring_sqe;

/* Fills in an SQE (liburing's io_uring_prep_* helpers). Must not set
 * user_data: iou owns it. iou clears IOSQE_CQE_SKIP_SUCCESS, IOSQE_IO_LINK
 * and IOSQE_IO_HARDLINK afterwards (the waiter would never be woken, or the
 * SQE would chain to whatever iou submits next). */
typedef void (*iou_prep_fn)(struct io_uring_sqe *sqe, void *arg);

/*
 * Prepares one SQE with prep(sqe, arg), submits it and suspends until its
 * completion; returns the CQE's res. Cancellation and deadlines cancel it in
 * the kernel and still await the completion. A multishot request returns its
 * first result and is cancelled in the kernel (its final completion is
 * awaited). -ENOTSUP on a backend without io_uring, -EPERM outside a task.
 */
IOU_API int iou_submit_sqe(iou_prep_fn prep, void *arg);

/* A completion callback: res and flags of the CQE. For a multishot request it
 * is called once per CQE; the last one lacks IORING_CQE_F_MORE in flags. */
typedef void (*iou_cqe_fn)(void *arg, int res, uint32_t flags);

/*
 * The callback flavour: prepares and queues an SQE on l and calls
 * done(done_arg, res, flags) from the loop for each of its completions.
 * Whatever the SQE points to must stay valid until the final completion.
 * Returns 0, -ENOMEM, -EINVAL (NULL arguments), -ENOTSUP on a backend
 * without io_uring, or -ECANCELED once iou_loop_free() has begun: it cancels
 * such requests still in flight and waits for their final completions (each
 * done callback still runs).
 */
IOU_API int iou_loop_submit_sqe(iou_loop *l, iou_prep_fn prep, void *prep_arg, iou_cqe_fn done,
                                void *done_arg);

/* ------------------------------------------------------------------------ */
/* Network: listen, dial, whole-buffer sends, messages, UDP, server loop     */
/* ------------------------------------------------------------------------ */

/*
 * Hosts are numeric addresses ("127.0.0.1", "::1", "fe80::1%eth0") or
 * "localhost" (127.0.0.1). The dial functions also take host names: they are
 * resolved by getaddrinfo on the thread pool (iou_run_in_pool; a slow name
 * server blocks a worker, not the loop) and each address is tried in turn.
 * Resolution errors: -EHOSTUNREACH (no such name, or no address of a usable
 * family: EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY), -EAGAIN (the name server
 * did not answer: EAI_AGAIN), -EIO (EAI_FAIL), -ENOMEM. Listening and
 * binding take numeric hosts only (-EINVAL for a name). Every socket made here has
 * SOCK_CLOEXEC. socket(), setsockopt(), bind() and listen() never wait, so
 * the listen and bind helpers below do not suspend; dialling does.
 */

/* Fills *addr and *len with host:port (IPv4 or IPv6, see above). Returns 0 or
 * -EINVAL (a name, or malformed). Does not suspend. */
IOU_API int iou_addr_parse(const char *host, uint16_t port, struct sockaddr_storage *addr,
                           socklen_t *len);

/* The local port of a bound IPv4/IPv6 socket (to learn the port the kernel
 * picked for port 0). Returns the port, or -errno (-EBADF, -ENOTSOCK,
 * -EAFNOSUPPORT for other families). Does not suspend. */
IOU_API int iou_local_port(int fd);

/* Options for iou_listen_tcp_ex() and iou_bind_udp(). Zero-initialise. */
typedef struct iou_listen_opts {
    bool reuseport; /* SO_REUSEPORT: several sockets (e.g. one loop per thread) share
                       the port; the kernel spreads connections / datagrams over them */
    bool v6only;    /* IPV6_V6ONLY on an IPv6 socket: IPv6 peers only. Default: an
                       IPv6 socket also takes IPv4 (as ::ffff:a.b.c.d), whatever the
                       net.ipv6.bindv6only sysctl says */
} iou_listen_opts;

/*
 * A TCP socket listening on host:port with SO_REUSEADDR (a restarted server
 * can bind again while old connections linger in TIME_WAIT). host NULL or ""
 * means every address: "::" dual-stack (IPv4 too) where the kernel has IPv6,
 * else 0.0.0.0. port 0 picks a free port (see iou_local_port()). backlog <= 0
 * means the system maximum (net.core.somaxconn caps it anyway). Returns the
 * listening fd or -errno (-EINVAL for a host name, -EADDRINUSE, -EACCES for a
 * privileged port). Does not suspend.
 */
IOU_API int iou_listen_tcp(const char *host, uint16_t port, int backlog);

/* iou_listen_tcp() with options (opts may be NULL: defaults). */
IOU_API int iou_listen_tcp_ex(const char *host, uint16_t port, int backlog,
                              const iou_listen_opts *opts);

/*
 * Connects a new TCP socket to host:port, with TCP_NODELAY set (small writes
 * go out at once; a request/response protocol wants this). host may be a
 * name (see above). Returns the connected fd or -errno (-EHOSTUNREACH for an
 * unknown name, -ECONNREFUSED,
 * -ETIMEDOUT, -ENETUNREACH, -ECANCELED, ...); on failure nothing is left
 * open. Suspends (outside a task: blocking connect).
 */
IOU_API int iou_dial_tcp(const char *host, uint16_t port);

/* A UDP socket bound to host:port (host NULL or "": every address, dual-stack
 * as in iou_listen_tcp(); port 0: a free port). opts may be NULL. Without
 * SO_REUSEADDR. Returns the fd or -errno. Does not suspend. */
IOU_API int iou_bind_udp(const char *host, uint16_t port, const iou_listen_opts *opts);

/* A UDP socket connected to host:port (a name too, see above):
 * iou_send()/iou_recv() then talk to that peer only (nothing is sent yet).
 * Returns the fd or -errno. Suspends
 * (outside a task: plain calls). */
IOU_API int iou_dial_udp(const char *host, uint16_t port);

/*
 * A Unix stream socket listening on path. A path starting with '@' is a name
 * in Linux's abstract namespace (no file, gone with the socket). A file that
 * already exists at path gives -EADDRINUSE: remove a stale socket file with
 * unlink() first. backlog <= 0: the system maximum. Returns the fd or -errno
 * (-ENAMETOOLONG beyond 107 bytes). Does not suspend.
 */
IOU_API int iou_listen_unix(const char *path, int backlog);

/* Connects a new Unix stream socket to path ('@': abstract). Returns the fd or
 * -errno (-ENOENT, -ECONNREFUSED, ...); on failure nothing is left open.
 * Suspends (outside a task: blocking connect). */
IOU_API int iou_dial_unix(const char *path);

/*
 * Sends all len bytes, looping over short sends (MSG_NOSIGNAL, as iou_send)
 * and retrying -EINTR (nothing was sent). Returns len, or -errno if any
 * other error stops it (-EPIPE, -ECONNRESET,
 * -ECANCELED, -ETIMEDOUT, -EAGAIN on a non-blocking socket outside a task).
 * After an error, some bytes may have gone out and this function does not
 * say how many: use iou_send_all_ex() when that matters (e.g. to resume).
 * Suspends.
 */
IOU_API ssize_t iou_send_all(int fd, const void *buf, size_t len);

/* iou_send_all() with send flags, storing in *sent (may be NULL) the bytes
 * sent before it returned: len on success, the count that went out before
 * the error otherwise. Suspends. */
IOU_API ssize_t iou_send_all_ex(int fd, const void *buf, size_t len, int flags, size_t *sent);

/*
 * Zero-copy send (IORING_OP_SEND_ZC): the kernel sends from buf's pages
 * instead of copying them. Suspends until the kernel has let go of the
 * pages (its second, "notification" completion), also when the task is
 * cancelled meanwhile, so buf may be reused as soon as it returns. For TCP
 * that is when the peer has acknowledged the data: a delayed ACK adds tens
 * of milliseconds when the peer is not reading, and a peer that stops
 * reading keeps the task parked, cancelled or not, until it reads again or
 * the connection is reset. Returns bytes sent (may be short, as iou_send)
 * or -errno; -EOPNOTSUPP where the socket cannot do it (Unix sockets),
 * -EINVAL on kernels before 6.0. MSG_NOSIGNAL is added. Outside a task: a
 * plain (copying) send().
 * When it wins: large sends (tens of KiB and up) through a real NIC, where
 * skipping the copy saves CPU. It loses on loopback (the data is copied on
 * delivery anyway, plus page pinning and the second completion: measured
 * 25-45% less throughput than iou_send at 4 KiB to 4 MiB) and for small
 * buffers: measure before choosing it.
 */
IOU_API ssize_t iou_send_zc(int fd, const void *buf, size_t len, int flags);

/* sendmsg(2): scatter-gather, a destination (msg_name), ancillary data such
 * as SCM_RIGHTS. *msg, its iovecs and buffers are only read. MSG_NOSIGNAL is
 * added. Returns bytes sent or -errno. Suspends. */
IOU_API ssize_t iou_sendmsg(int fd, const struct msghdr *msg, int flags);

/* recvmsg(2): fills the iovecs, and msg_name / msg_control if given, and sets
 * msg_namelen, msg_controllen and msg_flags (MSG_TRUNC, MSG_CTRUNC) as the
 * system call does. Returns bytes received (0: peer closed a stream) or
 * -errno. Suspends. */
IOU_API ssize_t iou_recvmsg(int fd, struct msghdr *msg, int flags);

/* sendto(2) (a datagram to addr; addr NULL on a connected socket). Returns
 * bytes sent or -errno. MSG_NOSIGNAL is added. Suspends. */
IOU_API ssize_t iou_sendto(int fd, const void *buf, size_t len, int flags,
                           const struct sockaddr *addr, socklen_t addrlen);

/* recvfrom(2): one datagram into buf (a longer one is truncated: pass
 * MSG_TRUNC in flags to get its real length). If addr and addrlen are
 * given, the sender's address is stored there and *addrlen (in: the room at
 * addr) set to its length. Returns bytes received or -errno. Suspends. */
IOU_API ssize_t iou_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                             socklen_t *addrlen);

/* shutdown(2): how is SHUT_RD, SHUT_WR (the peer reads end of stream, and
 * can still send) or SHUT_RDWR. Like iou_close it is cleanup, so
 * cancellation does not stop it. Returns 0 or -errno (-ENOTCONN). Suspends
 * briefly (one SQE; it never waits for the peer). */
IOU_API int iou_shutdown(int fd, int how);

/* setsockopt(2) / getsockopt(2), returning 0 or -errno. Do not suspend. */
IOU_API int iou_setsockopt(int fd, int level, int name, const void *value, socklen_t len);
IOU_API int iou_getsockopt(int fd, int level, int name, void *value, socklen_t *len);

/* The same for the common int-valued options (SO_REUSEADDR, TCP_NODELAY,
 * SO_RCVBUF, SO_ERROR, ...). iou_getsockopt_int stores the value in *value.
 * Return 0 or -errno. Do not suspend. */
IOU_API int iou_setsockopt_int(int fd, int level, int name, int value);
IOU_API int iou_getsockopt_int(int fd, int level, int name, int *value);

/*
 * A server loop: accepts connections on the listening socket lfd (one
 * multishot accept) and runs handler(fd, arg) for each in a task of its own;
 * when the handler returns, iou_serve closes fd (the handler must not close
 * it, nor use it from other tasks after returning; to end a connection
 * early, return). The handler's value is ignored.
 * Serves until the calling task is cancelled or its deadline passes:
 * then it stops accepting (a connection accepted meanwhile is closed at
 * once), cancels every handler, waits until all have ended and their fds
 * are closed (no task outlives the call), and returns -ECANCELED
 * (-ETIMEDOUT). lfd stays open: it is the caller's.
 * Out of fds or memory (-EMFILE, -ENFILE, -ENOBUFS, -ENOMEM) it keeps serving
 * the connections it has and retries when one ends, or after a pause that
 * doubles from 1 ms to 1 s, never spinning; errors about one connection
 * (-ECONNABORTED, -EPROTO, -EPERM, network errors) never stop it. Any other
 * accept error (-EBADF, -EINVAL: lfd is not listening) stops it as a
 * cancellation does and is returned.
 * Suspends until then; -EPERM outside a task, -EINVAL if handler is NULL or
 * lfd < 0.
 */
IOU_API int iou_serve(int lfd, int (*handler)(int fd, void *arg), void *arg);

/* Options for iou_serve_ex(). Zero-initialise. */
typedef struct iou_serve_opts {
    size_t stack_size;      /* each handler task's stack; 0 = the loop default */
    size_t max_connections; /* 0 = no limit. Otherwise at most this many handlers
                               run at once: further connections wait in the
                               listen backlog until one ends. Costs one accept
                               submission per connection instead of a multishot
                               accept (which takes the whole backlog at once) */
} iou_serve_opts;

/* iou_serve() with options (opts may be NULL: defaults). */
IOU_API int iou_serve_ex(int lfd, int (*handler)(int fd, void *arg), void *arg,
                         const iou_serve_opts *opts);

/* (net section: end) */

/* ------------------------------------------------------------------------ */
/* Provided buffers and buffered streams                                    */
/* ------------------------------------------------------------------------ */

/*
 * Each loop owns one ring of receive buffers registered with the kernel
 * (io_uring provided buffers), created on first use. A receive that draws
 * from it is given a buffer only when data arrives, so an idle connection
 * holds none. When every buffer is lent out, the receive that finds the ring
 * empty falls back to a plain recv for that once: no data is lost and no
 * connection stalls. Without kernel support (or without io_uring) every
 * receive is a plain one.
 */

/* Sizes of a loop's buffer ring. Zero-initialise; zero means default. */
typedef struct iou_bufring_opts {
    unsigned count;      /* buffers: a power of two, at most 32768; 0 = 256 */
    size_t size;         /* bytes each, at most 64 MiB; 0 = 16 KiB */
    unsigned stream_cap; /* unread buffers one stream may hold; beyond, it receives
                            into its reader's buffer until it has caught up (so a
                            chatty peer cannot take the whole ring); 0 = count / 16,
                            at least 1; at most count */
} iou_bufring_opts;

/*
 * Sets the sizes of the buffer ring of the loop running on this thread; NULL
 * restores the defaults. Call it before the first receive that uses the ring
 * (e.g. first thing in main). Memory is mapped lazily: a page costs only once
 * data has passed through it. Returns 0, -EINVAL (a value out of range),
 * -EBUSY (the ring is already in use), -EPERM (no loop on this thread).
 * Does not suspend.
 */
IOU_API int iou_bufring_config(const iou_bufring_opts *opts);

/* Counters of a loop's buffer ring. */
typedef struct iou_bufring_stats {
    unsigned count;     /* buffers; 0 while the ring is not (or cannot be) created */
    size_t size;        /* bytes per buffer */
    unsigned available; /* buffers the kernel can fill now (count when all are home) */
    uint64_t enobufs;   /* receives that found the ring empty */
    uint64_t fallbacks; /* plain receives made instead, because of that */
    uint64_t paused;    /* times a stream reached stream_cap and left the ring */
} iou_bufring_stats;

/* Copies the counters of this thread's loop's ring into *st. Returns 0,
 * -EINVAL if st is NULL, -EPERM (no loop on this thread). Does not suspend. */
IOU_API int iou_bufring_get_stats(iou_bufring_stats *st);

/* A received buffer, borrowed from the loop's ring (or, when the ring was
 * empty, from the heap). Give it back with iou_buf_release(). */
typedef struct iou_buf {
    void *data;      /* the received bytes; NULL when the iou_buf holds nothing */
    size_t len;      /* how many */
    void *owner_;    /* internal: the ring it belongs to, NULL for a heap buffer */
    uint32_t id_;    /* internal: its id in the ring */
} iou_buf;

/*
 * Receives on fd into a buffer the kernel takes from the loop's ring when data
 * arrives (a waiting call holds no buffer). Returns the bytes received, which
 * *b then holds until iou_buf_release(b); or 0 at end of stream or a negative
 * errno (-ECANCELED, -ETIMEDOUT, -ECONNRESET, ...), and *b holds nothing.
 * flags are recv(2) flags. If the ring is empty the data is received into a
 * heap buffer of the ring's buffer size instead. A cancelled call whose data
 * had already arrived returns it (release it as usual). Suspends. Outside a
 * task: a blocking recv(2) into a heap buffer. -EINVAL if b is NULL,
 * -ENOMEM when a heap buffer is needed and cannot be had.
 */
IOU_API ssize_t iou_recv_buf(int fd, iou_buf *b, int flags);

/* Gives b's buffer back (to the ring, or frees it) and empties b; nothing
 * happens if b holds nothing. Call it on the loop's thread before the loop
 * ends. Does not suspend. */
IOU_API void iou_buf_release(iou_buf *b);

/*
 * Buffered streams over a connected socket (asyncio's StreamReader/Writer).
 * Receiving is one multishot receive from the loop's buffer ring, armed when
 * a read first has to wait and kept armed while data flows: received buffers
 * queue in the stream until read, and the stream copies out of them (or
 * lends them, see iou_stream_peek). A stream holds no buffer while idle. A
 * stream whose reader falls behind (stream_cap unread buffers) receives
 * straight into the reader's buffer until it has caught up.
 *
 * At most one task reads and one task writes a stream at a time (a second
 * one gets -EBUSY). Reads and writes obey cancellation and deadlines; an
 * interrupted read consumes nothing it did not return. Outside a task the
 * calls make blocking system calls (-EAGAIN on a non-blocking socket),
 * unless the stream has a receive in the kernel (it was read by a task):
 * then -EBUSY.
 */
typedef struct iou_stream iou_stream;

/* Wraps the connected socket fd in a stream, which then owns fd (closing the
 * stream closes it). Costs a few hundred bytes; no buffer, no kernel request
 * until the first read. NULL if fd < 0 or out of memory. Does not suspend. */
IOU_API iou_stream *iou_stream_open(int fd);

/* The stream's socket (for setsockopt, shutdown(SHUT_WR), ...). */
IOU_API int iou_stream_fd(const iou_stream *s);

/* Bytes a read can return now without suspending. */
IOU_API size_t iou_stream_buffered(const iou_stream *s);

/*
 * Reads up to len bytes: whatever is buffered, else waits until something
 * arrives. Returns the count (at least 1 when len > 0), 0 at end of stream
 * (or when len is 0), or a negative errno: -ECANCELED, -ETIMEDOUT (nothing
 * consumed), an error of the connection (after all data before it was read;
 * it stays), -ENOMEM (no memory to keep received bytes: the stream lost
 * some, and stays failed), -EBUSY. Suspends when nothing is buffered.
 */
IOU_API ssize_t iou_stream_read(iou_stream *s, void *buf, size_t len);

/*
 * Reads exactly n bytes into buf. Returns n; 0 if the stream ended before
 * any of them; -EPIPE if it ended after some but fewer than n (those stay
 * buffered: iou_stream_read returns them); or a negative errno as
 * iou_stream_read, and then nothing is consumed (bytes already received stay
 * buffered in order). Suspends.
 */
IOU_API ssize_t iou_stream_read_exact(iou_stream *s, void *buf, size_t n);

/*
 * Reads up to and including the first occurrence of the dlen-byte delimiter
 * delim (e.g. "\n", or "\r\n"), if it ends within the first max bytes, into
 * buf (room for max bytes). Returns the line's length including the
 * delimiter. Nothing is consumed when it fails:
 *   -EMSGSIZE  no delimiter within max bytes: buf was filled, but those
 *              bytes stay buffered (read them with iou_stream_read to skip
 *              or salvage the long line); never writes past buf + max;
 *   -EPIPE     the stream ended within a line (the partial line stays
 *              buffered); 0 if it ended before any byte;
 *   -ECANCELED, -ETIMEDOUT, a connection error, -EBUSY, as iou_stream_read;
 *   -EINVAL    max or dlen is 0.
 * Suspends while no delimiter is buffered.
 */
IOU_API ssize_t iou_stream_read_until(iou_stream *s, void *buf, size_t max, const void *delim,
                                      size_t dlen);

/*
 * Zero-copy reading: waits until bytes are buffered and points *data at the
 * first contiguous run of them (inside a ring buffer, usually), without
 * consuming. Returns the run's length (at least 1), 0 at end of stream, or a
 * negative errno as iou_stream_read. *data stays valid until the next read,
 * consume or close of s. Suspends when nothing is buffered.
 */
IOU_API ssize_t iou_stream_peek(iou_stream *s, const void **data);

/* Discards the next n buffered bytes (e.g. those iou_stream_peek showed).
 * Returns 0, -EINVAL if fewer than n are buffered (then nothing is
 * discarded), -EBUSY while another task is reading. Does not suspend. */
IOU_API int iou_stream_consume(iou_stream *s, size_t n);

/*
 * Writes all len bytes (nothing is buffered in user space: when it returns,
 * the kernel has them), retrying -EINTR. Returns len, or a negative errno if
 * an error or an interruption stopped it: -EPIPE / -ECONNRESET (never SIGPIPE),
 * -ECANCELED, -ETIMEDOUT, -EBUSY (another task is writing). After an error
 * a prefix of the bytes may have gone out, as with iou_send_all(). Suspends.
 */
IOU_API ssize_t iou_stream_write(iou_stream *s, const void *buf, size_t len);

struct iovec;

/* Writes all bytes of the iovcnt buffers of iov, in order, as
 * iou_stream_write (the total must fit in ssize_t: else -EINVAL). iov itself
 * is not modified. Suspends. */
IOU_API ssize_t iou_stream_writev(iou_stream *s, const struct iovec *iov, int iovcnt);

/*
 * Closes the socket and frees s. A receive still in the kernel is cancelled
 * there and s is freed only when its last completion has arrived; buffers s
 * held go back to the ring. Returns the result of closing the fd (0 or a
 * negative errno), or -EBUSY (nothing done) while a task is reading or
 * writing s. Suspends inside a task until the fd is closed (not interrupted
 * by cancellation); NULL is a no-op returning 0.
 */
IOU_API int iou_stream_close(iou_stream *s);

/* As iou_stream_close() but leaves the socket open (e.g. in an iou_serve()
 * handler, whose fd iou_serve closes). Returns 0, or -EBUSY (nothing done)
 * while a task is reading or writing s. Does not suspend. */
IOU_API int iou_stream_free(iou_stream *s);

/* (stream section: end) */

/* ------------------------------------------------------------------------ */
/* Debugging and statistics                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Debug mode (IOU_DEBUG=1 in the environment when the loop is created, or
 * iou_loop_opts.debug) adds checks and reports, all on stderr, prefixed
 * "iou: debug:" and naming tasks by their name (iou_task_set_name):
 *   - a task that runs longer than slow_task_ns (IOU_DEBUG_SLOW_MS, default
 *     100 ms) without suspending: its name, spawn site and run time;
 *   - when the loop ends (iou_loop_free, iou_run): tasks never joined or
 *     detached (still running, or finished), stacks still in use, and the
 *     stack high-water mark per spawn site (stacks are painted at spawn and
 *     scanned when a task ends: this touches every page of each stack);
 *   - misuse: iou_join of a task that is detached, already joined or being
 *     joined, or of itself, and iou_detach of a task being joined or freed
 *     (reported, then the usual -EINVAL / nothing); a blocking call
 *     (iou_sleep, iou_recv, ...) from a loop callback, which blocks the
 *     whole loop (reported, then the plain system call runs as always);
 *     iou_cancel, iou_detach, iou_task_set_name, iou_loop_spawn,
 *     iou_call_soon or iou_call_at/later on a loop from another thread (a
 *     data race: reported, then abort());
 *   - SIGUSR1 prints iou_dump() of every debug-mode loop on stderr, from the
 *     loop's thread at its next iteration (the handler only sets a flag; a
 *     waiting loop wakes at least every 100 ms in debug mode to look).
 * Without debug mode each of these costs one predictable branch or nothing.
 */

/*
 * Writes every task of the calling thread's loop to f, one line each: name,
 * state (ready, running, parked, done), what a parked task waits for (an
 * operation with its kind and fd, a sleep with the time left, a mutex,
 * semaphore, event, condition, channel, future or join) and its deadline;
 * in debug mode also for how long it has been waiting. Then the loop's
 * counts (see iou_loop_get_stats). Does nothing outside a loop. Does not
 * suspend.
 */
IOU_API void iou_dump(FILE *f);

/* Slots of the per-kind arrays of iou_loop_stats (kinds are 0 ..
 * IOU_OP_KIND_SLOTS - 1; unused slots stay 0). */
#define IOU_OP_KIND_SLOTS 48

/*
 * A loop's counters. Append-only: new fields only ever go at the end, and
 * the caller says how many bytes it has in size.
 */
typedef struct iou_loop_stats {
    size_t size;                          /* in: sizeof(iou_loop_stats) */
    uint64_t submitted[IOU_OP_KIND_SLOTS]; /* operations submitted, by kind */
    uint64_t completed[IOU_OP_KIND_SLOTS]; /* ... and completed (final completion) */
    uint64_t cqes;          /* completions reaped (multishot: several per operation) */
    uint64_t cancels;       /* cancel requests sent to the kernel */
    uint64_t enters;        /* io_uring_enter calls (submit and/or wait); on the epoll
                               backend, epoll_wait calls */
    uint64_t sqes;          /* SQEs made (operations and cancels): sqes / enters is
                               the batch size (epoll: operations and cancels) */
    uint64_t sq_full;       /* times the SQ was full and had to be flushed early */
    uint64_t cq_overflows;  /* times the kernel's CQ overflow list had to be flushed */
    uint64_t enobufs;       /* receives that found the buffer ring empty */
    size_t tasks_alive;     /* spawned and not yet ended */
    size_t timers_pending;  /* armed timers: sleeps, deadlines, call_later */
    size_t ops_in_flight;   /* operations the kernel holds */
    size_t stacks_in_use;   /* task stacks in use */
    size_t stacks_pooled;   /* mapped stacks waiting in the pool */
    uint64_t sends_direct;  /* iou_send()s made with send(2) as the loop was about to
                               sleep (io_uring backend; counted in submitted and
                               completed, not in sqes or cqes): see iou_send() */
} iou_loop_stats;

/*
 * Copies l's counters (l NULL: this thread's loop) into st, of which the
 * caller sets st->size (fields beyond it are not written). Returns 0,
 * -EINVAL if st is NULL or st->size is too small (0), -EPERM without a loop. Counting is
 * always on (plain increments). Does not suspend.
 */
IOU_API int iou_loop_get_stats(iou_loop *l, iou_loop_stats *st);

/* The name of operation kind i ("nop", "read", "recv", ...) for the arrays of
 * iou_loop_stats, or NULL if no kind has that number. */
IOU_API const char *iou_op_kind_name(int kind);

/*
 * Tracing (IOU_TRACE=1, or iou_loop_opts.trace): one stderr line per
 * operation submitted and per completion: task name (or "callback"), kind,
 * fd, result and, for operations a task awaits, the latency. Off: one
 * predictable branch per submission and completion.
 */

/* ------------------------------------------------------------------------ */
/* Threads: the pool, thread-safe calls, a loop per core                     */
/* ------------------------------------------------------------------------ */

/*
 * Runs fn(arg) on a worker thread of the process-wide pool and suspends the
 * calling task until it returns (asyncio's run_in_executor); returns fn's
 * value. For blocking work: getaddrinfo, CPU-heavy computations, a blocking
 * library. fn runs on another thread: it must not call iou functions that
 * need a loop (it has none; the I/O functions then make plain blocking
 * system calls).
 * If the caller is cancelled or its deadline passes first, it returns
 * -ECANCELED / -ETIMEDOUT at once; fn keeps running on its worker and its
 * value is discarded when it returns. So fn and everything arg points to
 * must stay valid until fn returns, not just until this call returns (do not
 * pass the caller's stack to a call that may be cancelled, or make fn own
 * arg). The loop does not end while fn runs.
 * -ENOMEM / -EAGAIN if no record or no worker could be had (nothing ran),
 * -EINVAL if fn is NULL. Outside a task: calls fn(arg) directly.
 */
IOU_API int iou_run_in_pool(iou_fn fn, void *arg);

/* Pool settings. Zero-initialise; zero means default. */
typedef struct iou_pool_opts {
    unsigned max_threads;     /* workers at most; 0 = IOU_POOL_THREADS from the
                                 environment, else max(4, 2 x CPUs); up to 1024.
                                 Jobs beyond it wait in FIFO order */
    uint64_t idle_timeout_ns; /* a worker idle this long exits; 0 = 10 s */
} iou_pool_opts;

/* Sets the pool's limits for the whole process (workers start lazily, so
 * call it first; a lower limit lets surplus workers exit when idle). opts
 * NULL restores the defaults. Returns 0 or -EINVAL (more than 1024). Any
 * thread; does not suspend. After fork() the child starts with no worker and
 * an empty queue. */
IOU_API int iou_pool_config(const iou_pool_opts *opts);

/* Workers alive now (busy or idle). Any thread. */
IOU_API int iou_pool_threads(void);

/*
 * Runs cb(arg) on loop l's thread, soon (asyncio's call_soon_threadsafe).
 * Any thread may call it, l's own included; callbacks posted by one thread
 * run in the order posted. Lock-free; the loop is woken only if it may be
 * sleeping (MSG_RING from an io_uring loop's thread where the kernel has it,
 * else an eventfd). Returns 0 (cb will run exactly once), -ENOMEM,
 * -EINVAL (l or cb NULL), or -ESHUTDOWN once iou_loop_free(l) has begun
 * (cb will not run). Does not suspend.
 * Lifetime: l must not be freed while other threads may still post to it:
 * posting during iou_loop_free is safe (-ESHUTDOWN), posting after it
 * returned is a use-after-free. Have the loop outlive its producers (join
 * them first), e.g. with iou_loops_start().
 * A loop whose only work is to wait for posts must hold a keepalive
 * (iou_loop_keepalive), else iou_loop_run() returns when it is idle.
 */
IOU_API int iou_call_soon_threadsafe(iou_loop *l, void (*cb)(void *), void *arg);

/* Spawns fn(arg) as a detached task on loop l, from any thread (posted as
 * iou_call_soon_threadsafe does). Returns 0, -ENOMEM, -EINVAL or
 * -ESHUTDOWN. The task's value is not returned: to get a result, have fn
 * post it back (iou_call_soon_threadsafe to the caller's loop) or set a
 * future of l's loop from fn. If the loop then cannot allocate the task, it
 * prints a diagnostic and the task does not run. Does not suspend. */
IOU_API int iou_spawn_threadsafe(iou_loop *l, iou_fn fn, void *arg);

/*
 * Adds delta (+1 / -1) to l's keepalive count. While it is above zero,
 * iou_loop_run(l) does not return for lack of work: the loop keeps waiting
 * for thread-safe posts (a loop that serves other threads). iou_loop_stop()
 * still stops it, and iou_loop_free() ignores the count. Any thread; when
 * the count drops to zero, a sleeping loop wakes up to notice it is idle.
 * Returns 0, or -EINVAL (l NULL, or the count would go negative).
 */
IOU_API int iou_loop_keepalive(iou_loop *l, int delta);

/*
 * A loop per core (the thread-per-core model): n threads, each with its own
 * loop and ring, each running main(arg) as its first task. The loops share
 * nothing unless the program does; they pass work with the thread-safe calls
 * above (loop-to-loop wake-ups go by MSG_RING where the kernel has it).
 * Servers give each loop its own listening socket on one port
 * (iou_listen_opts.reuseport) and let the kernel spread the connections.
 * Every loop keeps running (serving posts and its other tasks) until the
 * mains of all loops have returned; then what is left on each loop is
 * cancelled and the loops are freed. So while any main runs, every loop of
 * the group may be posted to.
 */
typedef struct iou_loops iou_loops;

/* Options for iou_loops_start(). Zero-initialise. */
typedef struct iou_loops_opts {
    bool pin;                   /* pin loop i's thread to the i-th CPU this process may
                                   use (modulo their count) */
    const iou_loop_opts *loop;  /* options of every loop (NULL: defaults) */
} iou_loops_opts;

/* Starts n loops on n new threads (n 0: one per CPU this process may use) and
 * returns once every loop exists (iou_loops_get works at once). If any loop
 * cannot be created, none runs: returns NULL and stores the error in *err
 * (may be NULL): the loop's (e.g. -ENOSYS, -EPERM without io_uring), or
 * -ENOMEM, -EAGAIN (threads), -EINVAL (main NULL, n > 4096). Any thread
 * (also one running a loop); does not suspend. */
IOU_API iou_loops *iou_loops_start(unsigned n, iou_fn main, void *arg,
                                   const iou_loops_opts *opts, int *err);

/* The number of loops in ls. */
IOU_API unsigned iou_loops_count(const iou_loops *ls);

/* Loop i of ls (for iou_call_soon_threadsafe / iou_spawn_threadsafe), or
 * NULL if i is out of range. Valid until the mains of all loops returned. */
IOU_API iou_loop *iou_loops_get(const iou_loops *ls, unsigned i);

/* Inside a group's thread: the index of the calling thread's loop (so main
 * can tell which one it is); -1 elsewhere. */
IOU_API int iou_loops_index(void);

/* Inside a group's thread: its group (main may run before iou_loops_start
 * has returned to its caller, so use this to reach the other loops); NULL
 * elsewhere. */
IOU_API iou_loops *iou_loops_self(void);

/* Cancels the main task of every loop (those still running), from any
 * thread; they end as a cancelled task does. Safe until iou_loops_join
 * returned. Returns 0, -EINVAL if ls is NULL. Does not suspend. */
IOU_API int iou_loops_stop(iou_loops *ls);

/* Waits for every thread of ls to end (blocks the calling thread: call it
 * outside the group's loops), stores main's value of loop i in results[i]
 * (results may be NULL) and frees ls. Returns 0, -EINVAL if ls is NULL. */
IOU_API int iou_loops_join(iou_loops *ls, int *results);

/* (threads section: end) */

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Text for a negative (or positive) errno value. Never NULL; thread-safe. */
IOU_API const char *iou_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* IOU_H */
