import Logging
import Synchronization

/// A running server: its listeners, its connections, and the task group running their handlers.
///
/// Stop it with ``close(deadline:)`` (graceful) or ``abort()``; ``stopAccepting()`` only closes the
/// listeners.
public final class Server: Sendable {
    /// The addresses the server listens on (with the real port when 0 was asked for).
    public let addresses: [SocketAddress]
    private let core: ServerCore

    init(addresses: [SocketAddress], core: ServerCore) {
        self.addresses = addresses
        self.core = core
    }

    /// The port of the first address (handy after asking for port 0).
    public var port: Int { addresses.first?.port ?? 0 }

    /// The number of connections whose handler is running.
    public var connectionCount: Int { core.connectionCount }

    /// Closes the listeners; running handlers go on. New connections are refused by the kernel.
    public func stopAccepting() {
        core.stopAccepting()
    }

    /// Stops accepting, waits for running handlers to finish, and after `deadline` aborts the
    /// connections still open (their reads and writes then fail) and waits for those handlers.
    public func close(deadline: Duration = .seconds(30)) async {
        await core.closeListeners()
        // The deadline runs on a loop, not on Swift's global pool (which the handlers may block).
        let core = core
        let timer = Task(executorPreference: core.timerLoop) {
            try await Task.sleep(for: deadline)
            core.abortAll()
        }
        await core.waitUntilDone()
        timer.cancel()
    }

    /// Stops accepting, aborts every connection, and waits for the handlers to return.
    public func abort() async {
        await core.closeListeners()
        core.abortAll()
        await core.waitUntilDone()
    }

    /// Waits until the server has stopped (after `close` or `abort` from elsewhere).
    public func wait() async {
        await core.waitUntilDone()
    }
}
