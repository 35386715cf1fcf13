// What Swift's Glibc module does not export: epoll and eventfd (not in its module map), accept4
// and pthread_setname_np (they need _GNU_SOURCE), plus a per-thread "current loop" slot that lets
// a loop ask "am I on my own thread?" with one TLS load, the running task's identity and its
// cancellation handlers.
// Nothing else lives here.
//
// _GNU_SOURCE is defined only in CFastStreams.c: defined here it would change `fd_set` and clash
// with Glibc's and Dispatch's modules in every client.
#ifndef CFASTSTREAMS_H
#define CFASTSTREAMS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdint.h>

/// The loop (an opaque pointer) whose thread is the calling thread, or NULL.
extern __thread void *cfs_current_loop_slot;

static inline void *cfs_current_loop(void) { return cfs_current_loop_slot; }
static inline void cfs_set_current_loop(void *loop) { cfs_current_loop_slot = loop; }

/// The Swift Concurrency runtime's accessor of the running task (exported, part of its stable ABI
/// since Swift 5.5; what `withUnsafeCurrentTask` wraps), declared with its own calling convention.
__attribute__((swiftcall)) extern void *swift_task_getCurrent(void);

/// The running task's address, for identity comparisons only (never to act on the task); NULL
/// outside a task. A stream asks on every wait of a server handler whether it is the task that
/// owns the stream: through `withUnsafeCurrentTask`, a generic function taking a closure, that cost
/// a type-metadata lookup, a copy and an exclusivity check each time (perf, one-loop ping-pong).
/// Swift itself refuses `@_silgen_name` on runtime symbols, hence this C line.
static inline const void *cfs_current_task(void) { return swift_task_getCurrent(); }

/// The runtime's check of a task's cancelled flag (exported, stable ABI since Swift 5.5).
__attribute__((swiftcall)) extern _Bool swift_task_isCancelled(void *task);

/// Whether the running task is cancelled (false outside a task). `Task.isCancelled` is the same
/// check, but takes a reference to the task for it: a retain and a release on every wait.
static inline _Bool cfs_current_task_is_cancelled(void) {
    void *task = swift_task_getCurrent();
    return task != 0 && swift_task_isCancelled(task);
}

/// A cancellation handler registered on the running task without `withTaskCancellationHandler`:
/// `callback(object, token)` runs (on the cancelling thread) if the task is cancelled while the
/// handler is registered, or at once if it already is. Register and remove from inside the task,
/// in stack order with the task's other frames (see `cfs_add_cancel_handler` in the .c file for
/// why this is not the standard library's function).
typedef void (*cfs_cancel_callback)(void *object, uint64_t token);

/// Registers `callback(object, token)` as the running task's cancellation handler; returns the
/// registration, which `cfs_remove_cancel_handler` must end before the calling frame returns.
void *cfs_add_cancel_handler(cfs_cancel_callback callback, void *object, uint64_t token);

/// Ends a registration: once this returns the callback is not running and never will.
void cfs_remove_cancel_handler(void *registration);

struct sockaddr;
/// accept4(fd, peer, length, SOCK_NONBLOCK | SOCK_CLOEXEC); `length` is a socklen_t (this header
/// leaves sys/socket.h out: included here, it hides Glibc's SOCK_* constants from Swift).
int cfs_accept4(int fd, struct sockaddr *peer, uint32_t *length);

/// pthread_setname_np(pthread_self(), name).
int cfs_set_thread_name(const char *name);

/// epoll_event imports packed; these keep field access in one place.
static inline uint32_t cfs_epoll_event_events(const struct epoll_event *e) { return e->events; }
static inline int cfs_epoll_event_fd(const struct epoll_event *e) { return e->data.fd; }
static inline int cfs_epoll_ctl(int epfd, int op, int fd, uint32_t events) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = 0;
    ev.data.fd = fd;
    return epoll_ctl(epfd, op, fd, &ev);
}

#endif
