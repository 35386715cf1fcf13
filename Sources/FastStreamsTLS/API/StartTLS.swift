import FastStreams
import Logging

/// Upgrades `connection` to TLS (STARTTLS) and returns it once the handshake is done.
///
/// Bytes the plain reader had already buffered (a peer that pipelined its ClientHello, or its
/// first records, right behind the plaintext) become the first TLS input, so nothing is lost or
/// misread. Calling it on a TLS connection nests a second session inside the first.
///
/// On failure the connection has failed (reads and writes throw the error); close or abort it.
///
/// - Parameters:
///   - serverSide: act as the TLS server (`tls` must be a server configuration).
///   - serverName: for clients, the name sent as SNI and checked against the certificate (an IP
///     address is checked as one and not sent as SNI).
/// - Throws: ``TLSError`` (verification, handshake failure, timeout), ``StreamError``, or
///   `CancellationError` (the connection is then failed too).
@discardableResult
public func startTLS(_ connection: Connection, tls: TLSConfiguration, serverSide: Bool = false,
                     serverName: String? = nil) async throws -> Connection {
    let stream = connection.stream
    try await withTaskExecutorPreference(stream.loop) {
        try await handshake(stream, tls: tls, serverSide: serverSide, serverName: serverName,
                            port: connection.remoteAddress?.port ?? 0)
    }
    return connection
}

/// Runs on the stream's loop (a nonisolated async function called under its executor preference).
private func handshake(_ stream: SocketStream, tls: TLSConfiguration, serverSide: Bool,
                       serverName: String?, port: Int) async throws {
    precondition(stream.loop.inEventLoop)
    guard stream.fd >= 0, stream.readFailure == nil, stream.writeFailure == nil else {
        throw stream.readFailure ?? stream.writeFailure ?? StreamError.closed
    }
    let transform: TLSTransform
    do {
        transform = try install(on: stream, tls: tls, serverSide: serverSide, serverName: serverName, port: port)
    } catch {
        stream.fail(error)  // no plaintext may go out on a connection whose upgrade failed
        throw error
    }
    transform.startHandshake(stream)
    try await waitForHandshake(transform, on: stream)
}

/// Waits (on the stream's loop) for the handshake `transform` runs; cancellation fails it.
func waitForHandshake(_ transform: TLSTransform, on stream: SocketStream) async throws {
    precondition(stream.loop.inEventLoop)
    // Lets the cancellation handler (any thread) reach the transform on the loop.
    final class Slot: @unchecked Sendable {
        // Safety: `transform` is set before the handler can run and only used on the loop.
        let transform: TLSTransform
        init(_ transform: TLSTransform) { self.transform = transform }
    }
    let slot = Slot(transform)
    try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
            transform.waitForHandshake(waiter)
        }
    } onCancel: {
        stream.loop.execute { slot.transform.failHandshake(stream, CancellationError()) }
    }
}

/// Puts a new TLS session on top of the stream, moving already-buffered bytes into it.
func install(on stream: SocketStream, tls: TLSConfiguration, serverSide: Bool,
                     serverName: String?, port: Int) throws -> TLSTransform {
    let lower = stream.transform as? TLSTransform
    let buffered = stream.inbound
    // Kernel TLS needs OpenSSL on the raw socket: not under another session, and not when bytes
    // already read must be fed in first. Then the userspace path serves instead.
    let kernel = tls.kernelTLS && lower == nil && buffered.isEmpty
    if tls.kernelTLS && !kernel {
        Logger(label: "FastStreams.TLS").debug("kernel TLS not used: \(lower != nil ? "nested session" : "bytes already buffered")")
    }
    let engine = try TLSEngine(configuration: tls, serverSide: serverSide, serverName: serverName, port: port,
                               socket: kernel ? stream.fd : nil, loop: stream.loop)
    let total = buffered.reduce(0) { $0 + $1.count }
    guard total <= TLSEngine.pipeCapacity else {
        throw TLSError.handshakeFailed(reason: "\(total) bytes arrived before the TLS handshake", code: 0)
    }
    for chunk in stream.takeAllInbound() {
        _ = chunk.withUnsafeBytes { engine.feedInput($0) }
    }
    if stream.readEOF { engine.inputEnded() }
    let transform = TLSTransform(engine: engine, lower: lower)
    stream.transform = transform
    return transform
}

extension Connection {
    /// The TLS session this connection runs (the innermost one when nested), or nil for plain TCP.
    public var tls: TLSSessionInfo? {
        stream.transformInfo.withLock { $0 as? TLSSessionInfo }
    }
}
