#define _GNU_SOURCE
#include "CEchoBench.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// MARK: shared helpers

#define READ_SIZE (64 * 1024)
#define READS_PER_EVENT 4
#define MAX_SIZE (1 << 20)

enum kind { K_LISTEN, K_ECHO, K_PING, K_SETUP_CLIENT, K_SINK, K_SOURCE, K_IDLE };

struct loop;
struct ceb_run;

typedef struct conn {
    enum kind kind;
    int fd;
    uint32_t events;
    struct loop *loop;
    // echo: bytes read but not yet written back
    char *pending;
    size_t pending_off, pending_len, pending_cap;
    // ping / setup / sink / source
    uint64_t sent_off;   // stream offset of the next byte to send
    uint64_t recv_off;   // stream offset of the next byte expected
    uint64_t round_end;  // stream offset where the current round ends
    int done;
    int owned_by_loop;   // accepted by a listener: freed by the loop once closed
    struct conn *next_dead;
} conn;

typedef struct loop {
    int epfd;
    pthread_t thread;
    struct ceb_run *run;
    char *buffer;
    conn *dead;  // closed connections the loop owns, freed after each batch of events
    _Atomic uint64_t rounds;
} loop;

struct ceb_run {
    loop loops[2];
    int nloops;
    int listen_fd;
    int port;
    int size;
    int period;
    int sndbuf;
    conn **conns;
    int nconns;
    _Atomic int stop;
    _Atomic int quit;
    _Atomic int clients_done;
    int nclients;
    _Atomic uint64_t mismatches;
    _Atomic int failed;
    char error[256];
    const char *src;  // pattern source: period + MAX_SIZE bytes
    uint64_t limit, mark_a, mark_b, value_a, value_b;
    uint64_t (*probe)(void);
    _Atomic uint64_t total_rounds;
    // bulk
    uint64_t total;
    int write_size;
    struct timespec t_start, t_end;
    _Atomic int sink_done;
};

static const char *pattern_source(int period) {
    static char *sources[2];
    int which = period == 1 ? 0 : 1;
    if (!sources[which]) {
        size_t n = (size_t)period + MAX_SIZE;
        char *p = malloc(n);
        for (size_t i = 0; i < n; i++) p[i] = period == 1 ? 'x' : (char)(i % (size_t)period);
        sources[which] = p;
    }
    return sources[which];
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(struct ceb_run *run, const char *what, int err) {
    if (atomic_exchange(&run->failed, 1) == 0) {
        snprintf(run->error, sizeof run->error, "%s: %s", what, strerror(err));
    }
}

static void set_nonblocking_opts(int fd, int sndbuf) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
}

static int make_listener(int backlog, int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_blocking(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void watch(conn *c, uint32_t events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(c->loop->epfd, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static conn *new_conn(enum kind kind, int fd, loop *l) {
    conn *c = calloc(1, sizeof *c);
    c->kind = kind;
    c->fd = fd;
    c->loop = l;
    return c;
}

static void close_conn(conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        if (c->owned_by_loop) {
            c->next_dead = c->loop->dead;
            c->loop->dead = c;
        }
    }
    c->events = 0;
}

static void free_dead(loop *l) {
    while (l->dead) {
        conn *c = l->dead;
        l->dead = c->next_dead;
        free(c->pending);
        free(c);
    }
}

/// Checks `n` received bytes at stream offset `off`.
static int bytes_match(struct ceb_run *run, const char *data, size_t n, uint64_t off) {
    return memcmp(data, run->src + (off % (uint64_t)run->period), n) == 0;
}

// MARK: echo server side

static void echo_flush(conn *c) {
    while (c->pending_len > 0) {
        ssize_t w = send(c->fd, c->pending + c->pending_off, c->pending_len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) break;
            close_conn(c);
            return;
        }
        c->pending_off += (size_t)w;
        c->pending_len -= (size_t)w;
    }
    if (c->pending_len == 0) c->pending_off = 0;
    watch(c, c->pending_len > 0 ? EPOLLOUT : EPOLLIN);
}

static void echo_readable(conn *c) {
    char *buf = c->loop->buffer;
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = read(c->fd, buf, READ_SIZE);
        if (n == 0) {
            close_conn(c);
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN) close_conn(c);
            return;
        }
        size_t off = 0;
        if (c->pending_len == 0) {
            while (off < (size_t)n) {
                ssize_t w = send(c->fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno == EAGAIN) break;
                    close_conn(c);
                    return;
                }
                off += (size_t)w;
            }
        }
        if (off < (size_t)n) {  // the kernel is full: keep the rest, stop reading until flushed
            size_t rest = (size_t)n - off;
            if (c->pending_off + c->pending_len + rest > c->pending_cap) {
                memmove(c->pending, c->pending + c->pending_off, c->pending_len);
                c->pending_off = 0;
                if (c->pending_len + rest > c->pending_cap) {
                    c->pending_cap = (c->pending_len + rest) * 2;
                    c->pending = realloc(c->pending, c->pending_cap);
                }
            }
            memcpy(c->pending + c->pending_off + c->pending_len, buf + off, rest);
            c->pending_len += rest;
            watch(c, EPOLLOUT);
            return;
        }
        if ((size_t)n < READ_SIZE) return;
    }
}

// MARK: ping-pong client side

static void round_done(conn *c) {
    struct ceb_run *run = c->loop->run;
    atomic_fetch_add_explicit(&c->loop->rounds, 1, memory_order_relaxed);
    uint64_t total = atomic_fetch_add_explicit(&run->total_rounds, 1, memory_order_relaxed) + 1;
    if (run->probe) {
        if (total == run->mark_a) run->value_a = run->probe();
        if (total == run->mark_b) run->value_b = run->probe();
    }
    if (atomic_load_explicit(&run->stop, memory_order_relaxed) || (run->limit && total >= run->limit)) {
        c->done = 1;
        watch(c, EPOLLIN);  // keep watching for an unexpected extra byte
        atomic_fetch_add(&run->clients_done, 1);
    }
}

static void ping_send(conn *c) {
    struct ceb_run *run = c->loop->run;
    while (c->sent_off < c->round_end) {
        size_t want = (size_t)(c->round_end - c->sent_off);
        ssize_t w = send(c->fd, run->src + (c->sent_off % (uint64_t)run->period), want, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) break;
            fail(run, "send", errno);
            return;
        }
        c->sent_off += (uint64_t)w;
    }
    watch(c, c->sent_off < c->round_end ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
}

static void ping_readable(conn *c) {
    struct ceb_run *run = c->loop->run;
    char *buf = c->loop->buffer;
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = read(c->fd, buf, READ_SIZE);
        if (n == 0) {
            fail(run, "unexpected EOF", EPIPE);
            close_conn(c);
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN) fail(run, "read", errno);
            return;
        }
        if (c->done || c->recv_off + (uint64_t)n > c->round_end) {
            atomic_fetch_add(&run->mismatches, 1);  // more than was sent
        } else if (!bytes_match(run, buf, (size_t)n, c->recv_off)) {
            atomic_fetch_add(&run->mismatches, 1);
        }
        c->recv_off += (uint64_t)n;
        if (!c->done && c->recv_off >= c->round_end) {
            round_done(c);
            if (c->done) return;
            c->round_end += (uint64_t)run->size;
            ping_send(c);
            return;
        }
        if ((size_t)n < READ_SIZE) return;
    }
}

// MARK: connect / one byte / close cycles

static void setup_start(conn *c) {
    struct ceb_run *run = c->loop->run;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(run, "socket", errno);
        return;
    }
    set_nonblocking_opts(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)run->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->fd = fd;
    c->events = 0;
    c->sent_off = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        fail(run, "connect", errno);
        return;
    }
    watch(c, EPOLLOUT);
}

static void setup_event(conn *c, uint32_t events) {
    struct ceb_run *run = c->loop->run;
    if (c->sent_off == 0) {  // connected (or failed)
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            fail(run, "connect", err);
            close_conn(c);
            return;
        }
        char byte = run->src[c->recv_off % (uint64_t)run->period];
        if (send(c->fd, &byte, 1, MSG_NOSIGNAL) != 1) {
            fail(run, "send", errno);
            close_conn(c);
            return;
        }
        c->sent_off = 1;
        watch(c, EPOLLIN);
        return;
    }
    char byte;
    ssize_t n = read(c->fd, &byte, 1);
    if (n < 0 && errno == EAGAIN) return;
    if (n != 1) {
        fail(run, "read", n == 0 ? EPIPE : errno);
        close_conn(c);
        return;
    }
    if (byte != run->src[c->recv_off % (uint64_t)run->period]) atomic_fetch_add(&run->mismatches, 1);
    c->recv_off += 1;
    close_conn(c);
    round_done(c);
    if (!c->done) setup_start(c);
    (void)events;
}

// MARK: bulk

static void source_send(conn *c) {
    struct ceb_run *run = c->loop->run;
    while (c->sent_off < run->total) {
        uint64_t left = run->total - c->sent_off;
        size_t want = left < (uint64_t)run->write_size ? (size_t)left : (size_t)run->write_size;
        ssize_t w = send(c->fd, run->src + (c->sent_off % (uint64_t)run->period), want, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) {
                watch(c, EPOLLOUT);
                return;
            }
            fail(run, "send", errno);
            close_conn(c);
            return;
        }
        c->sent_off += (uint64_t)w;
    }
    close_conn(c);  // everything is in the kernel; the sink reads on
}

static void sink_readable(conn *c) {
    struct ceb_run *run = c->loop->run;
    char *buf = c->loop->buffer;
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = read(c->fd, buf, READ_SIZE);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN) return;
            if (c->recv_off != run->total) fail(run, "sink: early EOF", EPIPE);
            close_conn(c);
            return;
        }
        if (c->recv_off + (uint64_t)n > run->total || !bytes_match(run, buf, (size_t)n, c->recv_off)) {
            atomic_fetch_add(&run->mismatches, 1);
        }
        c->recv_off += (uint64_t)n;
        if (c->recv_off >= run->total && !atomic_load(&run->sink_done)) {
            clock_gettime(CLOCK_MONOTONIC, &run->t_end);
            atomic_store(&run->sink_done, 1);
        }
        if ((size_t)n < READ_SIZE) return;
    }
}

// MARK: the loop

static void accept_all(conn *listener) {
    struct ceb_run *run = listener->loop->run;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        set_nonblocking_opts(fd, run->sndbuf);
        conn *c = new_conn(K_ECHO, fd, listener->loop);
        c->owned_by_loop = 1;
        watch(c, EPOLLIN);
    }
}

static void *loop_main(void *arg) {
    loop *l = arg;
    struct ceb_run *run = l->run;
    struct epoll_event events[256];
    while (!atomic_load_explicit(&run->quit, memory_order_relaxed)) {
        int n = epoll_wait(l->epfd, events, 256, 20);
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            uint32_t ev = events[i].events;
            if (c->fd < 0) continue;
            switch (c->kind) {
            case K_LISTEN: accept_all(c); break;
            case K_ECHO:
                if (c->events & EPOLLOUT) echo_flush(c); else echo_readable(c);
                break;
            case K_PING:
                if ((ev & EPOLLOUT) && c->sent_off < c->round_end) ping_send(c);
                if (c->fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) ping_readable(c);
                break;
            case K_SETUP_CLIENT: setup_event(c, ev); break;
            case K_SOURCE: source_send(c); break;
            case K_SINK: sink_readable(c); break;
            case K_IDLE: {
                char b;
                if (read(c->fd, &b, 1) <= 0 && errno != EAGAIN) close_conn(c);
                break;
            }
            }
        }
        free_dead(l);
    }
    return NULL;
}

static struct ceb_run *new_run(int nloops, int sndbuf, int period) {
    struct ceb_run *run = calloc(1, sizeof *run);
    run->nloops = nloops;
    run->sndbuf = sndbuf;
    run->period = period;
    run->src = pattern_source(period);
    run->listen_fd = -1;
    for (int i = 0; i < nloops; i++) {
        run->loops[i].epfd = epoll_create1(EPOLL_CLOEXEC);
        run->loops[i].run = run;
        run->loops[i].buffer = malloc(READ_SIZE);
    }
    return run;
}

static void start_loops(struct ceb_run *run) {
    for (int i = 0; i < run->nloops; i++) pthread_create(&run->loops[i].thread, NULL, loop_main, &run->loops[i]);
}

static void add_conn(struct ceb_run *run, conn *c) {
    run->conns = realloc(run->conns, sizeof(conn *) * (size_t)(run->nconns + 1));
    run->conns[run->nconns++] = c;
}

ceb_run *ceb_start_pingpong(int connections, int size, int loops, int sndbuf, int period) {
    if (loops < 1 || loops > 2 || size < 1 || size > MAX_SIZE) return NULL;
    struct ceb_run *run = new_run(loops, sndbuf, period);
    run->size = size;
    run->nclients = connections;
    run->listen_fd = make_listener(connections + 16, &run->port);
    if (run->listen_fd < 0) return NULL;
    for (int i = 0; i < connections; i++) {
        int fd = connect_blocking(run->port);
        if (fd < 0) return NULL;
        int server = accept4(run->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (server < 0) return NULL;
        set_nonblocking_opts(fd, sndbuf);
        set_nonblocking_opts(server, sndbuf);
        // the client socket was blocking for connect(); make it non-blocking now
        int one = 1;
        ioctl(fd, FIONBIO, &one);
        int client_loop = i % loops;
        int server_loop = (connections == 1 && loops == 2) ? 1 : i % loops;
        conn *s = new_conn(K_ECHO, server, &run->loops[server_loop]);
        conn *c = new_conn(K_PING, fd, &run->loops[client_loop]);
        c->round_end = (uint64_t)size;
        add_conn(run, s);
        add_conn(run, c);
        watch(s, EPOLLIN);
    }
    close(run->listen_fd);
    run->listen_fd = -1;
    // Start every client's first round before the loops run (no loop touches them yet).
    for (int i = 0; i < run->nconns; i++) {
        if (run->conns[i]->kind == K_PING) ping_send(run->conns[i]);
    }
    start_loops(run);
    return run;
}

ceb_run *ceb_start_setup(int period) {
    struct ceb_run *run = new_run(2, 0, period);
    run->nclients = 1;
    run->listen_fd = make_listener(1024, &run->port);
    if (run->listen_fd < 0) return NULL;
    int one = 1;
    ioctl(run->listen_fd, FIONBIO, &one);
    conn *l = new_conn(K_LISTEN, run->listen_fd, &run->loops[0]);
    watch(l, EPOLLIN);
    add_conn(run, l);
    conn *c = new_conn(K_SETUP_CLIENT, -1, &run->loops[1]);
    add_conn(run, c);
    setup_start(c);
    start_loops(run);
    return run;
}

void ceb_set_limit(ceb_run *run, uint64_t limit, uint64_t mark_a, uint64_t mark_b, uint64_t (*probe)(void)) {
    run->limit = limit;
    run->mark_a = mark_a;
    run->mark_b = mark_b;
    run->probe = probe;
}

uint64_t ceb_rounds(ceb_run *run) {
    uint64_t sum = 0;
    for (int i = 0; i < run->nloops; i++) sum += atomic_load_explicit(&run->loops[i].rounds, memory_order_relaxed);
    return sum;
}

int ceb_finished(ceb_run *run) { return atomic_load(&run->clients_done) >= run->nclients || atomic_load(&run->failed); }

void ceb_marks(ceb_run *run, uint64_t *a, uint64_t *b) {
    *a = run->value_a;
    *b = run->value_b;
}

int64_t ceb_stop(ceb_run *run) {
    atomic_store(&run->stop, 1);
    double deadline = now_seconds() + 10;
    while (atomic_load(&run->clients_done) < run->nclients && !atomic_load(&run->failed)) {
        if (now_seconds() > deadline) {
            fail(run, "clients did not stop", ETIMEDOUT);
            break;
        }
        usleep(1000);
    }
    usleep(2000);  // let a stray extra byte arrive and be counted
    atomic_store(&run->quit, 1);
    for (int i = 0; i < run->nloops; i++) pthread_join(run->loops[i].thread, NULL);
    return atomic_load(&run->failed) ? -1 : (int64_t)atomic_load(&run->mismatches);
}

const char *ceb_error(ceb_run *run) { return run->error; }

void ceb_free(ceb_run *run) {
    for (int i = 0; i < run->nconns; i++) {
        conn *c = run->conns[i];
        if (c->fd >= 0) close(c->fd);
        free(c->pending);
        free(c);
    }
    free(run->conns);
    if (run->listen_fd >= 0) close(run->listen_fd);
    for (int i = 0; i < run->nloops; i++) {
        close(run->loops[i].epfd);
        free(run->loops[i].buffer);
    }
    free(run);
}

double ceb_bulk(uint64_t total, int write_size, int sndbuf, int period, uint64_t *mismatches) {
    struct ceb_run *run = new_run(2, sndbuf, period);
    run->total = total;
    run->write_size = write_size;
    int lfd = make_listener(16, &run->port);
    if (lfd < 0) return -1;
    int fd = connect_blocking(run->port);
    int server = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    close(lfd);
    if (fd < 0 || server < 0) return -1;
    int one = 1;
    ioctl(fd, FIONBIO, &one);
    set_nonblocking_opts(fd, sndbuf);
    set_nonblocking_opts(server, sndbuf);
    conn *sink = new_conn(K_SINK, server, &run->loops[1]);
    conn *source = new_conn(K_SOURCE, fd, &run->loops[0]);
    add_conn(run, sink);
    add_conn(run, source);
    watch(sink, EPOLLIN);
    watch(source, EPOLLOUT);
    clock_gettime(CLOCK_MONOTONIC, &run->t_start);
    start_loops(run);
    double deadline = now_seconds() + 120;
    while (!atomic_load(&run->sink_done) && !atomic_load(&run->failed) && now_seconds() < deadline) usleep(200);
    atomic_store(&run->quit, 1);
    for (int i = 0; i < 2; i++) pthread_join(run->loops[i].thread, NULL);
    double seconds = -1;
    if (atomic_load(&run->sink_done) && !atomic_load(&run->failed)) {
        seconds = (double)(run->t_end.tv_sec - run->t_start.tv_sec) + (double)(run->t_end.tv_nsec - run->t_start.tv_nsec) / 1e9;
    } else if (run->error[0]) {
        fprintf(stderr, "C bulk: %s\n", run->error);
    }
    *mismatches = atomic_load(&run->mismatches);
    ceb_free(run);
    return seconds;
}

// MARK: idle connections

static struct ceb_run *idle_server_run, *idle_client_run;

int ceb_idle_server_start(int backlog) {
    struct ceb_run *run = new_run(1, 0, 1);
    run->listen_fd = make_listener(backlog, &run->port);
    if (run->listen_fd < 0) return 0;
    int one = 1;
    ioctl(run->listen_fd, FIONBIO, &one);
    conn *l = new_conn(K_LISTEN, run->listen_fd, &run->loops[0]);
    watch(l, EPOLLIN);
    start_loops(run);
    idle_server_run = run;
    return run->port;
}

int ceb_idle_client_open(int port, int count) {
    if (!idle_client_run) {
        idle_client_run = new_run(1, 0, 1);
        start_loops(idle_client_run);
    }
    int opened = 0;
    for (int i = 0; i < count; i++) {
        int fd = connect_blocking(port);
        if (fd < 0) break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char b = 'x';
        if (send(fd, &b, 1, MSG_NOSIGNAL) != 1 || read(fd, &b, 1) != 1 || b != 'x') {
            close(fd);
            break;
        }
        ioctl(fd, FIONBIO, &one);
        conn *c = new_conn(K_IDLE, fd, &idle_client_run->loops[0]);
        watch(c, EPOLLIN);  // epoll_ctl from this thread is safe; the loop only reads events
        opened++;
    }
    return opened;
}
