#define _GNU_SOURCE 1
#include "CFastStreams.h"
#include <pthread.h>
#include <sys/socket.h>

__thread void *cfs_current_loop_slot;

int cfs_accept4(int fd, struct sockaddr *peer, uint32_t *length) {
    return accept4(fd, peer, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int cfs_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

// Cancellation handlers, straight on the runtime. `withTaskCancellationHandler` in Swift 6.3 has
// an `isolated` parameter and takes the operation as a closure: under a task-executor preference
// that is two executor switches around the closure and two more inside it, each looking the
// preference up under the task's status-record lock, on every wait of a client task. It does
// nothing else than what follows (the add and remove entry points it calls are part of the
// runtime's stable ABI, called from back-deployed client code; Swift 6.4's standard library has
// a `nonisolated(nonsending)` form doing the same). The registration lives in the task's stack
// allocator, as the runtime's own record does, so add and remove nest with the caller's frames.
typedef __attribute__((swiftcall)) void (*cfs_runtime_cancel_fn)(void *__attribute__((swift_context)));
__attribute__((swiftcall)) extern void *swift_task_addCancellationHandler(cfs_runtime_cancel_fn handler, void *context);
__attribute__((swiftcall)) extern void swift_task_removeCancellationHandler(void *record);
__attribute__((swiftcall)) extern void *swift_task_alloc(size_t size);
__attribute__((swiftcall)) extern void swift_task_dealloc(void *pointer);

struct cfs_cancel_registration {
    cfs_cancel_callback callback;
    void *object;
    uint64_t token;
    void *record;
};

__attribute__((swiftcall)) static void cfs_run_cancel(void *context __attribute__((swift_context))) {
    struct cfs_cancel_registration *registration = context;
    registration->callback(registration->object, registration->token);
}

void *cfs_add_cancel_handler(cfs_cancel_callback callback, void *object, uint64_t token) {
    struct cfs_cancel_registration *registration = swift_task_alloc(sizeof *registration);
    registration->callback = callback;
    registration->object = object;
    registration->token = token;
    registration->record = swift_task_addCancellationHandler(cfs_run_cancel, registration);
    return registration;
}

void cfs_remove_cancel_handler(void *registration) {
    struct cfs_cancel_registration *r = registration;
    swift_task_removeCancellationHandler(r->record);
    swift_task_dealloc(r);
}
