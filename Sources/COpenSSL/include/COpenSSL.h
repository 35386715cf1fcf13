// OpenSSL for Swift: the headers, shims for the macros Swift cannot import, and the memory BIO
// through which the userspace TLS path moves ciphertext without extra copies.
#ifndef FS_COPENSSL_H
#define FS_COPENSSL_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>

// MARK: Macro shims

static inline long fs_ssl_ctx_set_min_proto(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
static inline long fs_ssl_ctx_set_max_proto(SSL_CTX *ctx, int v) { return SSL_CTX_set_max_proto_version(ctx, v); }
static inline long fs_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long fs_ssl_ctx_add_chain_cert(SSL_CTX *ctx, X509 *x) { return SSL_CTX_add1_chain_cert(ctx, x); }
static inline long fs_ssl_ctx_set_groups_list(SSL_CTX *ctx, const char *list) { return SSL_CTX_set1_groups_list(ctx, list); }
static inline long fs_ssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_session_cache_mode(ctx, m); }
static inline long fs_ssl_set_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline long fs_bio_get_ktls_send(BIO *b) { return BIO_get_ktls_send(b); }
static inline long fs_bio_get_ktls_recv(BIO *b) { return BIO_get_ktls_recv(b); }

static inline uint64_t fs_op_enable_ktls(void) { return SSL_OP_ENABLE_KTLS; }
static inline uint64_t fs_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t fs_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t fs_op_no_ticket(void) { return SSL_OP_NO_TICKET; }
static inline long fs_mode_partial_write(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
/* Clients keep their sessions in TLSConfiguration's own store (one per server name and port,
   through the new-session callback); OpenSSL's internal store would also keep up to 20,480 of them
   per SSL_CTX, never looked up (the soak grew ~36 MiB over 50,000 TLS connections). */
static inline long fs_sess_cache_client(void) { return SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE; }
static inline long fs_sess_cache_server(void) { return SSL_SESS_CACHE_SERVER; }
static inline long fs_sess_cache_off(void) { return SSL_SESS_CACHE_OFF; }
static inline unsigned long fs_xn_flag_rfc2253(void) { return XN_FLAG_RFC2253; }
static inline int fs_err_get_reason(unsigned long e) { return ERR_GET_REASON(e); }
static inline int fs_err_get_lib(unsigned long e) { return ERR_GET_LIB(e); }

// MARK: The pipe BIO

/// Two byte buffers owned by Swift: ciphertext received from the socket and not yet consumed by
/// OpenSSL (`in`), and ciphertext OpenSSL produced and the socket has not yet taken (`out`).
/// The socket reads straight into `in + in_end` and sends straight from `out + out_start`.
typedef struct fs_tls_pipe {
    unsigned char *in;
    size_t in_cap, in_start, in_end;
    unsigned char *out;
    size_t out_cap, out_start, out_end;
    int in_eof;  // the socket reached EOF: a read of an empty `in` returns 0, not "retry"
} fs_tls_pipe;

/// A BIO reading from and writing to `pipe` (which must outlive it).
BIO *fs_pipe_bio_new(fs_tls_pipe *pipe);

/// Installs ALPN selection on a server context. `protos` is a 2-byte little-endian length followed
/// by the ALPN wire-format list in server preference order; it must live as long as the context.
/// No protocol in common fails the handshake with no_application_protocol (RFC 7301).
void fs_ssl_ctx_set_alpn_select(SSL_CTX *ctx, const unsigned char *protos);

/// Gives free heap pages back to the kernel (glibc's malloc_trim; malloc.h is not in Swift's
/// Glibc module). The TLS idle sweeper calls it after many sessions' buffers were freed.
static inline int fs_malloc_trim(void) { return malloc_trim(0); }

#endif
