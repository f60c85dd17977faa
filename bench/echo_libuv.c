/*
 * echo_libuv: the libuv baseline for bench/echo-compare (Debian's libuv1-dev).
 * Written the way a careful libuv user would: one read buffer shared by all
 * connections (the read callback consumes it before the next read), the echo
 * sent at once with uv_try_write, and only a leftover that the socket did not
 * take goes through uv_write (with a copy), reading paused until it is out.
 *
 * Usage: echo_libuv [--port PORT]     (default 7000, listens on 127.0.0.1)
 * Stops on SIGINT / SIGTERM.
 */
#define _GNU_SOURCE /* uv.h needs the POSIX types that strict C11 hides */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

enum { BUF_SIZE = 16384 };

static char rbuf[BUF_SIZE];
static uv_loop_t *loop;

typedef struct leftover {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} leftover;

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
    leftover *lo = (leftover *)req;
    uv_stream_t *s = req->handle;
    free(lo);
    if (status < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_close);
        return;
    }
    uv_read_start(s, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread == 0)
        return; /* EAGAIN */
    if (nread < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    int w = uv_try_write(s, &b, 1);
    if (w == nread)
        return;
    if (w == UV_EAGAIN)
        w = 0;
    if (w < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    /* The socket took only part: send the rest asynchronously, pause reading. */
    size_t rest = (size_t)nread - (size_t)w;
    leftover *lo = malloc(sizeof(*lo) + rest);
    if (lo == NULL) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    memcpy(lo->data, buf->base + w, rest);
    lo->buf = uv_buf_init(lo->data, (unsigned)rest);
    uv_read_stop(s);
    if (uv_write(&lo->req, s, &lo->buf, 1, on_written) < 0) {
        free(lo);
        uv_close((uv_handle_t *)s, on_close);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof(*c));
    if (c == NULL)
        return;
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, on_close);
        return;
    }
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

static void on_signal(uv_signal_t *h, int sig)
{
    (void)sig;
    uv_stop(h->loop);
}

int main(int argc, char **argv)
{
    int port = 7000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--port PORT]\n", argv[0]);
            return 2;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_tcp_init(loop, &server);
    uv_ip4_addr("127.0.0.1", port, &addr);
    int err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&server, 4096, on_connection);
    if (err) {
        fprintf(stderr, "echo_libuv: listen: %s\n", uv_strerror(err));
        return 1;
    }
    uv_signal_t sigint, sigterm;
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    printf("echo_libuv: listening on 127.0.0.1:%d (pid %d)\n", port, (int)getpid());
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0; /* stopped by a signal: the kernel closes the connections */
}
