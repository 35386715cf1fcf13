// The raw C contender: plain epoll (level-triggered) + read/write, one thread per loop, the same
// protocols and the same byte checks as the Swift contenders. It is the practical limit.
// With a `ceb_tls` (not NULL) every connection runs TLS over OpenSSL 3 (a socket BIO per
// connection, non-blocking SSL_read/SSL_write driven by the same epoll loops).
#pragma once
#include <stdint.h>

/// A running workload (ping-pong on one or many connections, or connect/echo/close cycles).
typedef struct ceb_run ceb_run;

/// A server and a client SSL_CTX for one TLS version, made once and shared by every run (and
/// loop thread) like an application's. TLS 1.2: ECDHE-RSA-AES128-GCM-SHA256 only; TLS 1.3:
/// TLS_AES_128_GCM_SHA256 only. The server uses the PEM certificate chain and key at the given
/// paths; the client trusts exactly that certificate and checks the address 127.0.0.1. Neither end
/// keeps sessions: every handshake is a full one.
typedef struct ceb_tls ceb_tls;

/// `version` is 12 or 13. Returns NULL on failure with a description in `error`.
ceb_tls *ceb_tls_new(int version, const char *cert_path, const char *key_path, char *error, int error_size);
void ceb_tls_free(ceb_tls *tls);

/// Byte `k` of every stream is `ceb_pattern_byte(k, period)`: 'x' when period is 1, else k % period.
/// `period` must be 1 or 251.

/// Starts `connections` client connections to an echo server, each sending `size` bytes and
/// waiting for all of them to come back, again and again. `loops` threads (1 or 2): with one,
/// clients and servers share it; with two, connection i's client runs on loop i % 2 and the server
/// side of the i-th accepted connection on loop (i + 1) % 2 when there is one connection, i % 2 when
/// there are more. `sndbuf` > 0 sets SO_SNDBUF on both ends. With `tls`, every pair completes its
/// handshake before the loops start. Returns NULL on setup failure.
ceb_run *ceb_start_pingpong(int connections, int size, int loops, int sndbuf, int period, const ceb_tls *tls);

/// The threaded cell (aiofastnet's benchmark_threaded): `pairs` copies of the one-loop ping-pong,
/// each on a loop thread of its own. Pair i's client and echo server both run on loop i (one
/// connection per pair, `size` bytes per round); otherwise as `ceb_start_pingpong`.
ceb_run *ceb_start_threaded(int pairs, int size, int sndbuf, int period, const ceb_tls *tls);

/// Starts sequential cycles on a client loop against a server loop (two threads): connect, send one
/// byte, read it back, close. With `tls`: connect, full handshake, one byte each way, close_notify
/// (not waiting for the server's), close. `sndbuf` > 0 sets SO_SNDBUF on both ends, as the other
/// contenders do in this cell.
ceb_run *ceb_start_setup(int sndbuf, int period, const ceb_tls *tls);

/// Stops sending new rounds once `limit` rounds are done (0: no limit), and calls `probe` (e.g. a
/// malloc counter) when the round counter reaches `mark_a` and `mark_b`, storing the results.
void ceb_set_limit(ceb_run *run, uint64_t limit, uint64_t mark_a, uint64_t mark_b, uint64_t (*probe)(void));

/// Completed round trips (or cycles) so far, summed over the loops.
uint64_t ceb_rounds(ceb_run *run);
/// True once every client stopped by itself (reached the limit).
int ceb_finished(ceb_run *run);
/// The probe's values at mark_a and mark_b.
void ceb_marks(ceb_run *run, uint64_t *a, uint64_t *b);
/// Asks the clients to stop after their current round, waits for them, tears everything down.
/// Returns the number of byte mismatches seen, or -1 if a client failed (errno-style error).
int64_t ceb_stop(ceb_run *run);
/// A description of the first error, or "".
const char *ceb_error(ceb_run *run);
void ceb_free(ceb_run *run);

/// Sends `total` bytes one way in `write_size`-byte writes from a client thread to a sink thread,
/// which checks every byte. Returns the seconds from the first write until the sink holds every
/// byte, or a negative number on failure; `*mismatches` gets the number of bad chunks.
double ceb_bulk(uint64_t total, int write_size, int sndbuf, int period, const ceb_tls *tls, uint64_t *mismatches);

/// Idle-connection memory: an echo server on its own thread (returns its port, 0 on failure).
int ceb_idle_server_start(int backlog, const ceb_tls *tls);
/// Opens `count` connections to 127.0.0.1:`port` (with `tls`: and completes each handshake),
/// echoes one byte on each, keeps them open and registered with an idle epoll loop. Returns the
/// number opened successfully.
int ceb_idle_client_open(int port, int count, const ceb_tls *tls);
