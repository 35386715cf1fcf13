/// Something registered with an ``StreamLoop`` for readiness events on one file descriptor.
/// Called only on the loop's thread.
protocol Selectable: AnyObject {
    /// `events` is the epoll mask (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`, `EPOLLRDHUP`).
    func handleEvents(_ events: UInt32)
    /// The loop is shutting down: release the descriptor and fail any waiter.
    func loopIsClosing()
}
