#define _GNU_SOURCE 1
#include "CFastStreams.h"
#include <pthread.h>
#include <sys/socket.h>

__thread void *cfs_current_loop_slot;

int cfs_accept4(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int cfs_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
