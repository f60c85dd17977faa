#include "overflow.h"
#include "loop.h"
#include "task.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { ALTSTACK_SIZE = 64 * 1024 };

static struct sigaction previous_segv, previous_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static void put(const char *s)
{
    ssize_t ignored = write(STDERR_FILENO, s, strlen(s));
    (void)ignored;
}

static void put_number(size_t n)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    *--p = '\0';
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    put(p);
}

/* The spawn site as "file:line in func" (the file without its directory). */
static void put_site(const iou_task *t)
{
    const char *slash = strrchr(t->site_file, '/');
    put(slash ? slash + 1 : t->site_file);
    put(":");
    put_number((size_t)t->site_line);
    put(" in ");
    put(t->site_func ? t->site_func : "?");
}

/* The task's name as iou_task_name() gives it, without formatting into the
 * record (this runs in a signal handler: no snprintf). */
static void put_name(const iou_task *t)
{
    if (t->name[0]) {
        put(t->name);
    } else if (t->site_file) {
        const char *slash = strrchr(t->site_file, '/');
        put(slash ? slash + 1 : t->site_file);
        put(":");
        put_number((size_t)t->site_line);
        put(" ");
        put(t->site_func ? t->site_func : "?");
    } else {
        put("task");
    }
}

_Noreturn void iou__overflow_report(const iou_task *t)
{
    put("iou: stack overflow in task '");
    put_name(t);
    put("'");
    if (t->site_file) {
        put(" (spawned at ");
        put_site(t);
        put(")");
    }
    put(" (stack of ");
    put_number(t->stack ? t->stack->size : 0);
    put(" bytes); spawn it with a larger iou_spawn_opts.stack_size\n");
    abort();
}

/* Not ours: hand the fault to whoever handled it before (ASan, the default
 * action). Returning with the default action restored re-raises the fault. */
static void chain(int sig, siginfo_t *si, void *uc)
{
    struct sigaction *prev = sig == SIGSEGV ? &previous_segv : &previous_bus;
    if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
        prev->sa_sigaction(sig, si, uc);
        return;
    }
    if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
        signal(sig, SIG_DFL);
        return;
    }
    prev->sa_handler(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    iou_loop *l = iou__loop();
    iou_task *t = l ? l->current : NULL;
    if (t && t->stack && iou__stack_guard_hit(t->stack, si->si_addr, l->stacks.page))
        iou__overflow_report(t);
    chain(sig, si, uc);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
}

void iou__overflow_thread_init(iou_loop *l)
{
    pthread_once(&handler_once, install_handler);
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE))
        return; /* the thread already has one (e.g. a sanitizer's) */
    void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (mem == MAP_FAILED)
        return;
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALTSTACK_SIZE);
        return;
    }
    l->altstack = mem;
}

void iou__overflow_thread_fini(iou_loop *l)
{
    if (l->altstack == NULL)
        return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(l->altstack, ALTSTACK_SIZE);
    l->altstack = NULL;
}
