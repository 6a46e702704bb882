/* libuv echo peer for bench/compare: one loop. Two shapes: "malloc" (the
 * libuv guide's: a fresh buffer per read, freed after the write) and
 * "static" (one 64 KiB buffer reused; the write copies nothing because
 * libuv tries the write at once and the echo fits the socket buffer).
 * Usage: libuv_echo PORT [malloc|static] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static int use_static;
static char static_buffer[65536];

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} write_req_t;

static void alloc_cb(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
    (void)h;
    if (use_static) {
        buf->base = static_buffer;
        buf->len = sizeof static_buffer;
    } else {
        buf->base = malloc(suggested);
        buf->len = suggested;
    }
}

static void close_cb(uv_handle_t* h) {
    free(h);
}

static void write_cb(uv_write_t* req, int status) {
    (void)status;
    write_req_t* w = (write_req_t*)req;
    if (w->buf.base != static_buffer) free(w->buf.base);
    free(w);
}

static void read_cb(uv_stream_t* client, ssize_t nread, const uv_buf_t* buf) {
    if (nread > 0) {
        write_req_t* w = malloc(sizeof *w);
        if (use_static) {
            /* Copy only what uv_try_write could not send at once. */
            int sent =
                uv_try_write(client, &(uv_buf_t){.base = buf->base, .len = (size_t)nread}, 1);
            if (sent == nread) {
                free(w);
                return;
            }
            if (sent < 0) sent = 0;
            w->buf = uv_buf_init(malloc((size_t)nread - (size_t)sent),
                                 (unsigned)((size_t)nread - (size_t)sent));
            memcpy(w->buf.base, buf->base + sent, w->buf.len);
            uv_write(&w->req, client, &w->buf, 1, write_cb);
            return;
        }
        w->buf = uv_buf_init(buf->base, (unsigned)nread);
        uv_write(&w->req, client, &w->buf, 1, write_cb);
        return;
    }
    if (nread < 0) uv_close((uv_handle_t*)client, close_cb);
    if (!use_static && buf->base) free(buf->base);
}

static void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    uv_tcp_t* client = malloc(sizeof *client);
    uv_tcp_init(server->loop, client);
    if (uv_accept(server, (uv_stream_t*)client) == 0) {
        uv_tcp_nodelay(client, 1);
        uv_read_start((uv_stream_t*)client, alloc_cb, read_cb);
    } else {
        uv_close((uv_handle_t*)client, close_cb);
    }
}

int main(int argc, char** argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    use_static = argc > 2 && strcmp(argv[2], "static") == 0;
    uv_loop_t* loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
    if (uv_listen((uv_stream_t*)&server, 4096, on_connection) != 0) {
        fprintf(stderr, "listen failed\n");
        return 1;
    }
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len);
    printf("Listening at 127.0.0.1:%d\n", ntohs(bound.sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
