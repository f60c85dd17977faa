/*
 * Unix domain stream sockets. A path starting with '@' names Linux's
 * abstract namespace: no file is created, and the name disappears with the
 * last socket bound to it (nothing to unlink, no stale file).
 */
#include <iou.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_addr(const char *path, struct sockaddr_un *a, socklen_t *len)
{
    if (path == NULL || path[0] == '\0')
        return -EINVAL;
    bool abstract = path[0] == '@';
    size_t n = strlen(path);
    /* A file path needs its terminating NUL; an abstract name has none. */
    if (n + !abstract > sizeof(a->sun_path))
        return -ENAMETOOLONG;
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, path, n);
    if (abstract)
        a->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + !abstract);
    return 0;
}

int iou_listen_unix(const char *path, int backlog)
{
    struct sockaddr_un a;
    socklen_t len;
    int err = unix_addr(path, &a, &len);
    if (err)
        return err;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, backlog > 0 ? backlog : INT_MAX) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int iou_dial_unix(const char *path)
{
    struct sockaddr_un a;
    socklen_t len;
    int err = unix_addr(path, &a, &len);
    if (err)
        return err;
    int fd = iou_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    err = iou_connect(fd, (struct sockaddr *)&a, len);
    if (err < 0) {
        iou_close(fd);
        return err;
    }
    return fd;
}
