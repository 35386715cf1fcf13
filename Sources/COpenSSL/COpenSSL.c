#include "COpenSSL.h"
#include <pthread.h>
#include <string.h>

static BIO_METHOD *pipe_method;
static pthread_once_t pipe_method_once = PTHREAD_ONCE_INIT;

static int pipe_write(BIO *b, const char *data, int len) {
    fs_tls_pipe *p = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    size_t free_tail = p->out_cap - p->out_end;
    if (free_tail < (size_t)len && p->out_start > 0) {
        memmove(p->out, p->out + p->out_start, p->out_end - p->out_start);
        p->out_end -= p->out_start;
        p->out_start = 0;
        free_tail = p->out_cap - p->out_end;
    }
    if (free_tail == 0) {
        BIO_set_retry_write(b);
        return -1;
    }
    size_t n = (size_t)len < free_tail ? (size_t)len : free_tail;
    memcpy(p->out + p->out_end, data, n);
    p->out_end += n;
    return (int)n;
}

static int pipe_read(BIO *b, char *data, int len) {
    fs_tls_pipe *p = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t avail = p->in_end - p->in_start;
    if (avail == 0) {
        if (p->in_eof) return 0;
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = (size_t)len < avail ? (size_t)len : avail;
    memcpy(data, p->in + p->in_start, n);
    p->in_start += n;
    if (p->in_start == p->in_end) p->in_start = p->in_end = 0;
    return (int)n;
}

static long pipe_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num; (void)ptr;
    fs_tls_pipe *p = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return (long)(p->in_end - p->in_start);
    case BIO_CTRL_WPENDING: return (long)(p->out_end - p->out_start);
    case BIO_CTRL_EOF: return p->in_eof && p->in_end == p->in_start;
    default: return 0;
    }
}

static int pipe_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

static int pipe_destroy(BIO *b) {
    BIO_set_data(b, NULL);
    return 1;
}

static void pipe_method_init(void) {
    pipe_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "FastStreams pipe");
    BIO_meth_set_write(pipe_method, pipe_write);
    BIO_meth_set_read(pipe_method, pipe_read);
    BIO_meth_set_ctrl(pipe_method, pipe_ctrl);
    BIO_meth_set_create(pipe_method, pipe_create);
    BIO_meth_set_destroy(pipe_method, pipe_destroy);
}

BIO *fs_pipe_bio_new(fs_tls_pipe *pipe) {
    pthread_once(&pipe_method_once, pipe_method_init);
    BIO *b = BIO_new(pipe_method);
    if (b) BIO_set_data(b, pipe);
    return b;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    const unsigned char *protos = arg;
    unsigned int len = (unsigned int)protos[0] | ((unsigned int)protos[1] << 8);
    unsigned char *selected;
    if (SSL_select_next_proto(&selected, outlen, protos + 2, len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 7301: no_application_protocol
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

void fs_ssl_ctx_set_alpn_select(SSL_CTX *ctx, const unsigned char *protos) {
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, (void *)protos);
}
