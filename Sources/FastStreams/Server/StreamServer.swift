import Logging
import ServiceLifecycle
import Synchronization

/// A running server: its listeners, its connections, and the tasks running their handlers.
///
/// Stop it with ``close(deadline:)`` (graceful) or ``abort()``; ``stopAccepting()`` only closes the
/// listeners. It is also a swift-service-lifecycle `Service`: ``run()`` serves until graceful
/// shutdown or cancellation, so a `ServiceGroup` can run it and stop it on SIGTERM.
///
/// A graceful close is graceful for idle connections too: a handler waiting in a read with nothing
/// buffered and nothing queued to send sees the end of input at once (the read returns nil, as if
/// the peer had closed, and `read(exactly:)` throws ``StreamError/incompleteRead(partial:expected:)``),
/// and its connection is closed with a FIN (TLS: close_notify first). A busy handler gets the same
/// the next time it waits for input with nothing to do; handlers still working when the grace
/// period ends are aborted (their connections reset, their tasks cancelled).
public final class StreamServer: Sendable {
    /// The addresses the server listens on (with the real port when 0 was asked for).
    public let addresses: [NetworkAddress]
    private let core: ServerCore
    private let gracePeriodValue = Mutex<Duration>(.seconds(30))

    init(addresses: [NetworkAddress], core: ServerCore) {
        self.addresses = addresses
        self.core = core
    }

    /// The port of the first address (handy after asking for port 0).
    public var port: Int { addresses.first?.port ?? 0 }

    /// The number of connections whose handler is running.
    public var connectionCount: Int { core.connectionCount }

    /// How long ``run()`` lets busy handlers finish once graceful shutdown is triggered, before it
    /// aborts them (30 s unless set; ``close(deadline:)`` takes its own).
    public var gracePeriod: Duration {
        get { gracePeriodValue.withLock { $0 } }
        set { gracePeriodValue.withLock { $0 = newValue } }
    }

    /// Closes the listeners; running handlers go on. New connections are refused by the kernel.
    public func stopAccepting() {
        core.stopAccepting()
    }

    /// Closes gracefully: stops accepting, closes idle connections at once and busy ones as soon
    /// as they are idle, and once `deadline` has passed aborts the connections still open (their
    /// reads and writes fail, their handler tasks are cancelled). Returns once every handler has
    /// returned and the listeners are closed (the port is free again).
    ///
    /// Cancelling the calling task ends the grace period at once: the remaining connections are
    /// aborted as at the deadline, and `close` still returns only once their handlers returned.
    public func close(deadline: Duration = .seconds(30)) async {
        await close(gracePeriod: deadline)
    }

    /// Stops accepting, aborts every connection (cancelling its handler task), and waits for the
    /// handlers to return.
    public func abort() async {
        await core.closeListeners()
        core.endAll(atDeadline: false)
        _ = await core.waitUntilDone(cancellable: false)
    }

    /// Waits until the server has stopped (after `close` or `abort` from elsewhere, or when its
    /// event loops shut down).
    ///
    /// - Throws: `CancellationError` when the waiting task is cancelled first (the server keeps
    ///   running).
    public func wait() async throws {
        guard await core.waitUntilDone(cancellable: true) else { throw CancellationError() }
    }

    private func close(gracePeriod: Duration) async {
        let core = core
        await core.closeListeners()
        core.beginClose(gracePeriod: gracePeriod)
        await withTaskCancellationHandler {
            _ = await core.waitUntilDone(cancellable: false)
        } onCancel: {
            core.endAll(atDeadline: true)
        }
    }
}

extension StreamServer: Service {
    /// Serves until graceful shutdown is triggered (a `ServiceGroup`'s signal, or its
    /// `triggerGracefulShutdown()`), then closes as ``close(deadline:)`` does with
    /// ``gracePeriod``, and returns once every handler has returned. Cancelling the task closes at
    /// once (busy connections are aborted, idle ones still end with a FIN). Returns as well when
    /// the server was stopped elsewhere (``close(deadline:)``, ``abort()``).
    public func run() async {
        let core = core
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                _ = await core.waitUntilDone(cancellable: false)
            } onCancel: {
                core.beginClose(gracePeriod: .zero)
            }
        } onGracefulShutdown: {
            core.beginClose(gracePeriod: self.gracePeriod)
        }
        await core.closeListeners()
    }
}
