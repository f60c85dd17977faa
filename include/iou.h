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
 * errors.
 */
#ifndef IOU_H
#define IOU_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
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
 */
IOU_API int iou_run(iou_fn main, void *arg);

/* Options for iou_spawn_ex(). Zero-initialise; every zero field means "default". */
typedef struct iou_spawn_opts {
    size_t stack_size; /* bytes; 0 = the loop default (64 KiB). Rounded up to a page multiple. */
    const char *name;  /* shown in diagnostics (stack overflow); not copied: keep it alive */
} iou_spawn_opts;

/*
 * Creates a task running fn(arg) on the current loop. It starts after the
 * caller next suspends (FIFO order with other ready tasks). Does not suspend.
 * Returns NULL only when out of memory or when not called on a loop (inside a
 * task or a loop callback).
 */
IOU_API iou_task *iou_spawn(iou_fn fn, void *arg);

/* iou_spawn() with options (stack size, name). opts may be NULL. */
IOU_API iou_task *iou_spawn_ex(iou_fn fn, void *arg, const iou_spawn_opts *opts);

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
 * cancelled (it still yielded). Outside a task: sched_yield(), returns 0.
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
 * advances). Returns bytes read (0 at end of file; may be short) or -errno. */
IOU_API ssize_t iou_read(int fd, void *buf, size_t len, int64_t off);

/* Writes up to len bytes at off (off < 0: at the file position). Returns bytes
 * written (may be short) or -errno. */
IOU_API ssize_t iou_write(int fd, const void *buf, size_t len, int64_t off);

/* fsync(fd). Returns 0 or -errno. */
IOU_API int iou_fsync(int fd);

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
 * always added: a closed peer gives -EPIPE, never SIGPIPE. */
IOU_API ssize_t iou_send(int fd, const void *buf, size_t len, int flags);

/* ------------------------------------------------------------------------ */
/* Loop and callbacks: the layer the tasks are built on                     */
/* ------------------------------------------------------------------------ */

/* Options for iou_loop_new_ex(). Zero-initialise; zero means default. */
typedef struct iou_loop_opts {
    unsigned ring_entries;     /* SQ size; 0 = 256. The CQ is four times larger. */
    size_t stack_size;         /* default task stack size; 0 = 64 KiB */
    bool virtual_clock;        /* time jumps to the next timer when nothing else can run */
} iou_loop_opts;

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

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Text for a negative (or positive) errno value. Never NULL; thread-safe. */
IOU_API const char *iou_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* IOU_H */
