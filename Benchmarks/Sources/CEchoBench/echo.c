#define _GNU_SOURCE
#include "CEchoBench.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

#define READ_SIZE (256 * 1024)  // as FastStreams: a 100,000-byte message in one read
#define READS_PER_EVENT 4
#define MAX_SIZE (1 << 20)

enum kind { K_LISTEN, K_ECHO, K_PING, K_SETUP_CLIENT, K_SINK, K_SOURCE, K_IDLE };

/// Where a connect/echo/close cycle is (TLS mode; the TCP mode only needs "connected or not").
enum setup_state { SETUP_CONNECTING, SETUP_HANDSHAKE, SETUP_WRITE, SETUP_READ };

struct ceb_tls {
    SSL_CTX *server;
    SSL_CTX *client;
};

struct loop;
struct ceb_run;

/// One connection end. Cache-line aligned, so that connections served by different loop threads
/// (the threaded cell's pairs) never share a line.
typedef struct conn {
    _Alignas(64) enum kind kind;
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
    // TLS only
    SSL *ssl;              // NULL in TCP mode
    int handshaking;       // server side: SSL_do_handshake has not finished yet
    int read_wants_out;    // the last SSL_read waits for a writable socket (rare)
    int write_wants_out;   // the last SSL_write waits for a writable socket (a full send buffer)
    enum setup_state state;
} conn;

/// One epoll loop and its thread. Cache-line aligned: each loop's round counter is written by its
/// own thread only, and must not share a line with another loop's.
typedef struct loop {
    _Alignas(64) int epfd;
    pthread_t thread;
    struct ceb_run *run;
    char *buffer;
    conn *dead;  // closed connections the loop owns, freed after each batch of events
    _Atomic uint64_t rounds;
} loop;

struct ceb_run {
    loop *loops;  // nloops of them
    int nloops;
    int listen_fd;
    int port;
    int size;
    int period;
    int sndbuf;
    const ceb_tls *tls;  // NULL: plain TCP
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
    // bulk
    uint64_t total;
    int write_size;
    struct timespec t_start, t_end;
    _Atomic int sink_done;
    // Every loop's clients add to it once per round: on a cache line of its own (the last one of
    // the struct), away from the fields they only read (stop, limit, probe).
    _Alignas(64) _Atomic uint64_t total_rounds;
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
    conn *c = aligned_alloc(_Alignof(conn), sizeof *c);
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->fd = fd;
    c->loop = l;
    return c;
}

static void close_conn(conn *c) {
    if (c->ssl) {  // no close_notify here: callers that owe one send it first
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
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

/// Keeps `n` bytes the kernel (or OpenSSL) would not take yet; the connection then stops reading
/// until they are flushed. Grows the buffer only when needed (never per round trip).
static void pending_append(conn *c, const char *data, size_t n) {
    if (c->pending_off + c->pending_len + n > c->pending_cap) {
        memmove(c->pending, c->pending + c->pending_off, c->pending_len);
        c->pending_off = 0;
        if (c->pending_len + n > c->pending_cap) {
            c->pending_cap = (c->pending_len + n) * 2;
            c->pending = realloc(c->pending, c->pending_cap);
        }
    }
    memcpy(c->pending + c->pending_off + c->pending_len, data, n);
    c->pending_len += n;
}

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
            pending_append(c, buf + off, (size_t)n - off);
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

/// What a ping client does after echoed bytes came in.
enum ping_next { PING_READ_ON, PING_SEND_NEXT_ROUND, PING_FINISHED };

/// Checks `n` echoed bytes at the client's stream offset and advances its round (TCP and TLS).
static enum ping_next ping_received(conn *c, const char *buf, size_t n) {
    struct ceb_run *run = c->loop->run;
    if (c->done || c->recv_off + (uint64_t)n > c->round_end || !bytes_match(run, buf, n, c->recv_off)) {
        atomic_fetch_add(&run->mismatches, 1);  // more than was sent, or other bytes
    }
    c->recv_off += (uint64_t)n;
    if (c->done || c->recv_off < c->round_end) return PING_READ_ON;
    round_done(c);
    if (c->done) return PING_FINISHED;
    c->round_end += (uint64_t)run->size;
    return PING_SEND_NEXT_ROUND;
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
        switch (ping_received(c, buf, (size_t)n)) {
        case PING_FINISHED: return;
        case PING_SEND_NEXT_ROUND: ping_send(c); return;
        case PING_READ_ON: break;
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
    set_nonblocking_opts(fd, run->sndbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)run->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->fd = fd;
    c->events = 0;
    c->sent_off = 0;
    c->state = SETUP_CONNECTING;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        fail(run, "connect", errno);
        return;
    }
    watch(c, EPOLLOUT);
}

/// After a non-blocking connect reported writable: true if it succeeded (else fails the run).
static int setup_connected(conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        fail(c->loop->run, "connect", err);
        close_conn(c);
        return 0;
    }
    return 1;
}

static void setup_event(conn *c, uint32_t events) {
    struct ceb_run *run = c->loop->run;
    if (c->sent_off == 0) {  // connected (or failed)
        if (!setup_connected(c)) return;
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

// MARK: TLS (OpenSSL 3, socket BIO, non-blocking)
//
// Every TLS connection is an SSL on its socket (SSL_set_fd: OpenSSL reads and writes the socket
// itself, no memory BIO copies), with read-ahead on (one recv takes whatever the socket holds, not
// a 5-byte header and then the record body) and partial writes (SSL_write returns after each
// record, so a full socket never makes OpenSSL hold more than one record). An SSL call that cannot
// go on says so with SSL_ERROR_WANT_READ/WANT_WRITE; the connection then waits for that epoll
// event and repeats the call with the same bytes (moving-buffer mode lets a retry come from
// another address, e.g. the echo's pending buffer). Decrypted or raw bytes OpenSSL has buffered
// are invisible to epoll, so reads go on while SSL_has_pending() says there are some, and stop as
// soon as there are none (no EAGAIN read just to learn that the socket is empty).
//
// OpenSSL's error queue is per thread and must be empty before each SSL call for SSL_get_error()
// to be right; it only fills on failures, so every failure path clears it.

/// The outcome of pushing bytes through SSL_write.
typedef struct {
    size_t written;  // plaintext bytes OpenSSL took
    uint32_t wait;   // EPOLLIN/EPOLLOUT: the rest waits for that event; 0: not blocked
    int error;       // an SSL_ERROR_* when the connection failed; 0: none
} tls_progress;

/// For an SSL call that returned `ret` <= 0: the epoll event it waits for (EPOLLIN or EPOLLOUT),
/// or 0 when the connection is over (close_notify, EOF, reset, TLS error; `*err` says which).
static uint32_t tls_blocked_on(SSL *ssl, int ret, int *err) {
    *err = SSL_get_error(ssl, ret);
    if (*err == SSL_ERROR_WANT_READ) return EPOLLIN;
    if (*err == SSL_ERROR_WANT_WRITE) return EPOLLOUT;
    return 0;
}

/// Records the first failure of the run with OpenSSL's reason, and empties the error queue.
static void tls_fail(struct ceb_run *run, const char *what, int err) {
    if (atomic_exchange(&run->failed, 1) == 0) {
        char detail[192];
        unsigned long e = ERR_peek_error();
        if (e != 0) {
            ERR_error_string_n(e, detail, sizeof detail);
        } else if (err == SSL_ERROR_ZERO_RETURN) {
            snprintf(detail, sizeof detail, "the peer closed the TLS session");
        } else if (err == SSL_ERROR_SYSCALL) {
            snprintf(detail, sizeof detail, "%s", errno ? strerror(errno) : "unexpected EOF");
        } else {
            snprintf(detail, sizeof detail, "SSL error %d", err);
        }
        snprintf(run->error, sizeof run->error, "%s: %s", what, detail);
    }
    ERR_clear_error();
}

/// A failed client connection: fails the run, frees the SSL, closes the socket.
static void tls_fail_conn(conn *c, const char *what, int err) {
    tls_fail(c->loop->run, what, err);
    close_conn(c);
}

/// A server-side connection that is over (the client left, reset, or spoke bad TLS): no error for
/// the run, just free everything.
static void tls_drop(conn *c) {
    ERR_clear_error();
    close_conn(c);
}

/// A new SSL on a connected socket. The client checks that the certificate is for the address it
/// connected to, as every client of a real server would (the chain is checked by SSL_VERIFY_PEER).
static SSL *tls_new_ssl(const ceb_tls *tls, int fd, int server) {
    SSL *ssl = SSL_new(server ? tls->server : tls->client);
    if (!ssl) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1") != 1) {
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

/// SSL_write until all `n` bytes are taken or the socket is full. After a wait, the caller repeats
/// with the bytes from `data + written` on (same content, same or greater length), as OpenSSL asks.
static tls_progress tls_write_all(SSL *ssl, const char *data, size_t n) {
    tls_progress p = {0, 0, 0};
    while (p.written < n) {
        int w = SSL_write(ssl, data + p.written, (int)(n - p.written));
        if (w <= 0) {
            int err;
            p.wait = tls_blocked_on(ssl, w, &err);
            if (!p.wait) p.error = err;
            return p;
        }
        p.written += (size_t)w;
    }
    return p;
}

// The echo server side.

static void tls_echo_readable(conn *c);

static void tls_echo_handshake(conn *c) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
        int err;
        uint32_t wait = tls_blocked_on(c->ssl, r, &err);
        if (wait) watch(c, wait); else tls_drop(c);  // a client that went away mid-handshake
        return;
    }
    c->handshaking = 0;
    watch(c, EPOLLIN);
    // The client's first bytes may have come with its Finished and sit in OpenSSL's buffer.
    if (SSL_has_pending(c->ssl)) tls_echo_readable(c);
}

/// Reads records and writes each one's bytes straight back; keeps what the socket would not take
/// and then waits for it to drain before reading on (as the TCP echo does).
static void tls_echo_readable(conn *c) {
    char *buf = c->loop->buffer;
    c->read_wants_out = 0;
    for (;;) {
        int n = SSL_read(c->ssl, buf, READ_SIZE);
        if (n <= 0) {
            int err;
            uint32_t wait = tls_blocked_on(c->ssl, n, &err);
            if (!wait) {  // close_notify, EOF, reset or a TLS error: this client is done
                tls_drop(c);
                return;
            }
            c->read_wants_out = wait == EPOLLOUT;
            break;
        }
        tls_progress p = tls_write_all(c->ssl, buf, (size_t)n);
        if (p.error) {
            tls_drop(c);
            return;
        }
        if (p.written < (size_t)n) {
            pending_append(c, buf + p.written, (size_t)n - p.written);
            watch(c, p.wait);
            return;
        }
        if (!SSL_has_pending(c->ssl)) break;
    }
    watch(c, c->read_wants_out ? EPOLLOUT : EPOLLIN);
}

static void tls_echo_flush(conn *c) {
    tls_progress p = tls_write_all(c->ssl, c->pending + c->pending_off, c->pending_len);
    if (p.error) {
        tls_drop(c);
        return;
    }
    c->pending_off += p.written;
    c->pending_len -= p.written;
    if (c->pending_len > 0) {
        watch(c, p.wait);
        return;
    }
    c->pending_off = 0;
    watch(c, EPOLLIN);
    // Records read before the socket filled up are still in OpenSSL's buffer: epoll cannot tell.
    if (SSL_has_pending(c->ssl)) tls_echo_readable(c);
}

static void tls_echo_event(conn *c) {
    if (c->handshaking) {
        tls_echo_handshake(c);
    } else if (c->pending_len > 0) {
        tls_echo_flush(c);
    } else {
        tls_echo_readable(c);
    }
}

// The ping-pong client side.

/// Readable always (the echo, or the peer closing); writable too while an SSL call waits for it.
static void tls_ping_watch(conn *c) {
    watch(c, EPOLLIN | (c->write_wants_out || c->read_wants_out ? EPOLLOUT : 0));
}

static void tls_ping_send(conn *c) {
    struct ceb_run *run = c->loop->run;
    tls_progress p = tls_write_all(c->ssl, run->src + (c->sent_off % (uint64_t)run->period),
                                   (size_t)(c->round_end - c->sent_off));
    c->sent_off += p.written;
    if (p.error) {
        tls_fail_conn(c, "SSL_write", p.error);
        return;
    }
    c->write_wants_out = p.wait == EPOLLOUT;
    tls_ping_watch(c);
}

static void tls_ping_readable(conn *c) {
    struct ceb_run *run = c->loop->run;
    char *buf = c->loop->buffer;
    c->read_wants_out = 0;
    for (;;) {
        int n = SSL_read(c->ssl, buf, READ_SIZE);
        if (n <= 0) {
            int err;
            uint32_t wait = tls_blocked_on(c->ssl, n, &err);
            if (!wait) {
                tls_fail_conn(c, "SSL_read", err);
                return;
            }
            c->read_wants_out = wait == EPOLLOUT;
            break;
        }
        switch (ping_received(c, buf, (size_t)n)) {
        case PING_FINISHED: return;
        case PING_SEND_NEXT_ROUND:
            tls_ping_send(c);
            if (c->fd < 0) return;
            break;
        case PING_READ_ON: break;
        }
        if (!SSL_has_pending(c->ssl)) break;
    }
    tls_ping_watch(c);
}

static void tls_ping_event(conn *c, uint32_t ev) {
    if (c->sent_off < c->round_end) tls_ping_send(c);  // a round still being written
    if (c->fd >= 0 && ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) || c->read_wants_out)) tls_ping_readable(c);
}

// Connect / full handshake / one byte / close cycles (client side; the server is the echo).

/// Waits for what `ret`'s SSL call needs, or fails the run.
static void tls_setup_wait(conn *c, int ret, const char *what) {
    int err;
    uint32_t wait = tls_blocked_on(c->ssl, ret, &err);
    if (wait) watch(c, wait); else tls_fail_conn(c, what, err);
}

static void tls_setup_event(conn *c) {
    struct ceb_run *run = c->loop->run;
    char byte = run->src[c->recv_off % (uint64_t)run->period];
    switch (c->state) {
    case SETUP_CONNECTING:
        if (!setup_connected(c)) return;
        c->ssl = tls_new_ssl(run->tls, c->fd, 0);
        if (!c->ssl) {
            tls_fail_conn(c, "SSL_new", 0);
            return;
        }
        c->state = SETUP_HANDSHAKE;
        // fall through: send the ClientHello now
    case SETUP_HANDSHAKE: {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            tls_setup_wait(c, r, "handshake");
            return;
        }
        c->state = SETUP_WRITE;
    }
        // fall through
    case SETUP_WRITE: {
        int w = SSL_write(c->ssl, &byte, 1);
        if (w != 1) {
            tls_setup_wait(c, w, "SSL_write");
            return;
        }
        c->state = SETUP_READ;
        watch(c, EPOLLIN);
        if (!SSL_has_pending(c->ssl)) return;  // the echo is a round trip away
    }
        // fall through
    case SETUP_READ: {
        int n = SSL_read(c->ssl, c->loop->buffer, READ_SIZE);
        if (n <= 0) {
            tls_setup_wait(c, n, "SSL_read");
            return;
        }
        if (n != 1 || c->loop->buffer[0] != byte) atomic_fetch_add(&run->mismatches, 1);
        c->recv_off += 1;
        // Say goodbye (close_notify) without waiting for the server's, then close.
        if (SSL_shutdown(c->ssl) < 0) ERR_clear_error();
        close_conn(c);
        round_done(c);
        if (!c->done) setup_start(c);
    }
    }
}

// Bulk.

static void tls_source_send(conn *c) {
    struct ceb_run *run = c->loop->run;
    while (c->sent_off < run->total) {
        uint64_t left = run->total - c->sent_off;
        size_t want = left < (uint64_t)run->write_size ? (size_t)left : (size_t)run->write_size;
        tls_progress p = tls_write_all(c->ssl, run->src + (c->sent_off % (uint64_t)run->period), want);
        c->sent_off += p.written;
        if (p.error) {
            tls_fail_conn(c, "SSL_write", p.error);
            return;
        }
        if (p.wait) {
            watch(c, p.wait);
            return;
        }
    }
    // Every record is in the kernel: close_notify, then close; the sink reads on.
    if (SSL_shutdown(c->ssl) < 0) ERR_clear_error();
    close_conn(c);
}

static void tls_sink_readable(conn *c) {
    struct ceb_run *run = c->loop->run;
    char *buf = c->loop->buffer;
    for (;;) {
        int n = SSL_read(c->ssl, buf, READ_SIZE);
        if (n <= 0) {
            int err;
            uint32_t wait = tls_blocked_on(c->ssl, n, &err);
            if (wait) {
                watch(c, wait);
                return;
            }
            if (c->recv_off != run->total) tls_fail(run, "sink: early end", err); else ERR_clear_error();
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
        if (!SSL_has_pending(c->ssl)) {
            watch(c, EPOLLIN);
            return;
        }
    }
}

/// Completes the handshakes of a connected pair (both sockets non-blocking, on no loop yet) by
/// stepping both ends in turn and waiting in poll() for whichever can move. Returns 1 on success.
static int tls_handshake_pair(struct ceb_run *run, SSL *client, int client_fd, SSL *server, int server_fd) {
    SSL *ssl[2] = {client, server};
    int fd[2] = {client_fd, server_fd};
    int done[2] = {0, 0};
    double deadline = now_seconds() + 10;
    while (!done[0] || !done[1]) {
        struct pollfd fds[2];
        int nfds = 0;
        for (int i = 0; i < 2; i++) {
            if (done[i]) continue;
            int r = SSL_do_handshake(ssl[i]);
            if (r == 1) {
                done[i] = 1;
                continue;
            }
            int err;
            uint32_t wait = tls_blocked_on(ssl[i], r, &err);
            if (!wait) {
                tls_fail(run, i == 0 ? "client handshake" : "server handshake", err);
                return 0;
            }
            fds[nfds++] = (struct pollfd){.fd = fd[i], .events = wait == EPOLLIN ? POLLIN : POLLOUT};
        }
        if (now_seconds() > deadline) {
            fail(run, "handshake", ETIMEDOUT);
            return 0;
        }
        if (nfds > 0) poll(fds, (nfds_t)nfds, 100);
    }
    return 1;
}

/// Makes the SSLs of an accepted pair and completes their handshakes.
static int tls_pair(struct ceb_run *run, conn *client, conn *server) {
    client->ssl = tls_new_ssl(run->tls, client->fd, 0);
    server->ssl = tls_new_ssl(run->tls, server->fd, 1);
    if (!client->ssl || !server->ssl) {
        tls_fail(run, "SSL_new", 0);
        return 0;
    }
    return tls_handshake_pair(run, client->ssl, client->fd, server->ssl, server->fd);
}

static int tls_configure(SSL_CTX *ctx, int version) {
    int v = version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, v) != 1 || SSL_CTX_set_max_proto_version(ctx, v) != 1) return 0;
    // aiofastnet's TLS 1.2 cipher, and its TLS 1.3 counterpart: nothing else can be negotiated.
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE-RSA-AES128-GCM-SHA256") != 1) return 0;
    if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) return 0;
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    // Nobody resumes: every connection pays a full handshake, as with the other contenders.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return 1;
}

ceb_tls *ceb_tls_new(int version, const char *cert_path, const char *key_path, char *error, int error_size) {
    // OpenSSL's socket BIO writes with write(2), not send(MSG_NOSIGNAL): a write to a peer that
    // is gone must fail with EPIPE instead of killing the process.
    signal(SIGPIPE, SIG_IGN);
    ceb_tls *tls = calloc(1, sizeof *tls);
    tls->server = SSL_CTX_new(TLS_server_method());
    tls->client = SSL_CTX_new(TLS_client_method());
    const char *step = "SSL_CTX_new";
    int ok = tls->server && tls->client;
    if (ok) {
        step = "versions and ciphers";
        ok = tls_configure(tls->server, version) && tls_configure(tls->client, version);
    }
    if (ok) {
        step = "server certificate and key";
        ok = SSL_CTX_use_certificate_chain_file(tls->server, cert_path) == 1
            && SSL_CTX_use_PrivateKey_file(tls->server, key_path, SSL_FILETYPE_PEM) == 1
            && SSL_CTX_check_private_key(tls->server) == 1;
        // No session tickets either (nor TLS 1.3's post-handshake NewSessionTicket messages): a
        // client that never resumes has no use for them. FastStreams' server is configured alike.
        SSL_CTX_set_options(tls->server, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(tls->server, 0);
    }
    if (ok) {
        step = "client trust root";
        ok = SSL_CTX_load_verify_locations(tls->client, cert_path, NULL) == 1;
        SSL_CTX_set_verify(tls->client, SSL_VERIFY_PEER, NULL);
    }
    if (!ok) {
        char detail[160] = "";
        unsigned long e = ERR_peek_error();
        if (e != 0) ERR_error_string_n(e, detail, sizeof detail);
        snprintf(error, (size_t)error_size, "%s: %s", step, detail);
        ERR_clear_error();
        ceb_tls_free(tls);
        return NULL;
    }
    return tls;
}

void ceb_tls_free(ceb_tls *tls) {
    if (!tls) return;
    SSL_CTX_free(tls->server);
    SSL_CTX_free(tls->client);
    free(tls);
}

// MARK: the loop

static void accept_all(conn *listener) {
    struct ceb_run *run = listener->loop->run;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        set_nonblocking_opts(fd, run->sndbuf);
        SSL *ssl = NULL;
        if (run->tls && !(ssl = tls_new_ssl(run->tls, fd, 1))) {
            ERR_clear_error();
            close(fd);
            continue;
        }
        conn *c = new_conn(K_ECHO, fd, listener->loop);
        c->owned_by_loop = 1;
        c->ssl = ssl;
        c->handshaking = ssl != NULL;  // its ClientHello is on its way: wait for it in epoll
        watch(c, EPOLLIN);
    }
}

/// An idle connection only wakes up when the peer closes it (or, unexpectedly, sends something).
static void idle_event(conn *c) {
    char b;
    if (c->ssl) {
        int n = SSL_read(c->ssl, &b, 1);
        int err;
        if (n <= 0 && !tls_blocked_on(c->ssl, n, &err)) tls_drop(c);
        return;
    }
    ssize_t n = read(c->fd, &b, 1);
    if (n == 0 || (n < 0 && errno != EAGAIN)) close_conn(c);
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
                if (c->ssl) tls_echo_event(c);
                else if (c->events & EPOLLOUT) echo_flush(c);
                else echo_readable(c);
                break;
            case K_PING:
                if (c->ssl) {
                    tls_ping_event(c, ev);
                    break;
                }
                if ((ev & EPOLLOUT) && c->sent_off < c->round_end) ping_send(c);
                if (c->fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) ping_readable(c);
                break;
            case K_SETUP_CLIENT:
                if (run->tls) tls_setup_event(c); else setup_event(c, ev);
                break;
            case K_SOURCE:
                if (c->ssl) tls_source_send(c); else source_send(c);
                break;
            case K_SINK:
                if (c->ssl) tls_sink_readable(c); else sink_readable(c);
                break;
            case K_IDLE: idle_event(c); break;
            }
        }
        free_dead(l);
    }
    return NULL;
}

static struct ceb_run *new_run(int nloops, int sndbuf, int period, const ceb_tls *tls) {
    struct ceb_run *run = aligned_alloc(_Alignof(struct ceb_run), sizeof *run);
    memset(run, 0, sizeof *run);
    run->tls = tls;
    run->nloops = nloops;
    run->sndbuf = sndbuf;
    run->period = period;
    run->src = pattern_source(period);
    run->listen_fd = -1;
    run->loops = aligned_alloc(_Alignof(loop), sizeof(loop) * (size_t)nloops);
    memset(run->loops, 0, sizeof(loop) * (size_t)nloops);
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

/// Connects `connections` client/echo pairs (handshakes done for TLS), starts every client's first
/// round and then the `loops` loop threads. Connection i's client runs on loop i % loops, its
/// server side on the same loop, or on loop 1 with `server_on_loop_1`.
static ceb_run *start_pingpong(int connections, int size, int loops, int server_on_loop_1, int sndbuf, int period,
                               const ceb_tls *tls) {
    struct ceb_run *run = new_run(loops, sndbuf, period, tls);
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
        int server_loop = server_on_loop_1 ? 1 : client_loop;
        conn *s = new_conn(K_ECHO, server, &run->loops[server_loop]);
        conn *c = new_conn(K_PING, fd, &run->loops[client_loop]);
        c->round_end = (uint64_t)size;
        add_conn(run, s);
        add_conn(run, c);
        if (tls && !tls_pair(run, c, s)) {  // handshakes are done before any loop runs
            fprintf(stderr, "C ping-pong: %s\n", run->error);
            return NULL;
        }
        watch(s, EPOLLIN);
    }
    close(run->listen_fd);
    run->listen_fd = -1;
    // Start every client's first round before the loops run (no loop touches them yet).
    for (int i = 0; i < run->nconns; i++) {
        conn *c = run->conns[i];
        if (c->kind != K_PING) continue;
        if (c->ssl) tls_ping_send(c); else ping_send(c);
    }
    start_loops(run);
    return run;
}

ceb_run *ceb_start_pingpong(int connections, int size, int loops, int sndbuf, int period, const ceb_tls *tls) {
    if (loops < 1 || loops > 2 || size < 1 || size > MAX_SIZE) return NULL;
    return start_pingpong(connections, size, loops, connections == 1 && loops == 2, sndbuf, period, tls);
}

ceb_run *ceb_start_threaded(int pairs, int size, int sndbuf, int period, const ceb_tls *tls) {
    if (pairs < 1 || size < 1 || size > MAX_SIZE) return NULL;
    return start_pingpong(pairs, size, pairs, 0, sndbuf, period, tls);
}

ceb_run *ceb_start_setup(int sndbuf, int period, const ceb_tls *tls) {
    struct ceb_run *run = new_run(2, sndbuf, period, tls);
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
        if (c->ssl) SSL_free(c->ssl);
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
    free(run->loops);
    free(run);
}

double ceb_bulk(uint64_t total, int write_size, int sndbuf, int period, const ceb_tls *tls, uint64_t *mismatches) {
    struct ceb_run *run = new_run(2, sndbuf, period, tls);
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
    if (tls && !tls_pair(run, source, sink)) {
        fprintf(stderr, "C bulk: %s\n", run->error);
        ceb_free(run);
        return -1;
    }
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

int ceb_idle_server_start(int backlog, const ceb_tls *tls) {
    struct ceb_run *run = new_run(1, 0, 1, tls);
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

/// One idle client's echo of 'x' on a blocking socket (through TLS when `ssl` is given).
static int idle_echo(int fd, SSL *ssl) {
    char b = 'x';
    if (!ssl) return send(fd, &b, 1, MSG_NOSIGNAL) == 1 && read(fd, &b, 1) == 1 && b == 'x';
    if (SSL_connect(ssl) != 1 || SSL_write(ssl, &b, 1) != 1 || SSL_read(ssl, &b, 1) != 1 || b != 'x') {
        ERR_clear_error();
        return 0;
    }
    return 1;
}

int ceb_idle_client_open(int port, int count, const ceb_tls *tls) {
    if (!idle_client_run) {
        idle_client_run = new_run(1, 0, 1, tls);
        start_loops(idle_client_run);
    }
    int opened = 0;
    for (int i = 0; i < count; i++) {
        int fd = connect_blocking(port);
        if (fd < 0) break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = tls ? tls_new_ssl(tls, fd, 0) : NULL;
        if ((tls && !ssl) || !idle_echo(fd, ssl)) {
            if (ssl) SSL_free(ssl);
            close(fd);
            break;
        }
        ioctl(fd, FIONBIO, &one);
        conn *c = new_conn(K_IDLE, fd, &idle_client_run->loops[0]);
        c->ssl = ssl;
        watch(c, EPOLLIN);  // epoll_ctl from this thread is safe; the loop only reads events
        opened++;
    }
    return opened;
}
