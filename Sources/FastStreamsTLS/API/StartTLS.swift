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
///   - connection: an open connection (plain, or TLS to nest a session inside).
///   - tls: the configuration of the new session.
///   - serverSide: act as the TLS server (`tls` must be a server configuration).
///   - serverName: for clients, the name sent as SNI and checked against the certificate (an IP
///     address is checked as one and not sent as SNI).
///   - logger: where the session logs, with `peer`, `local`, `tls_version` and `tls_cipher`
///     metadata: a failed handshake (`.debug`), kernel TLS not taking over (`.info`), a
///     close_notify that could not be sent (`.debug`).
/// - Returns: `connection`, now speaking TLS.
/// - Throws: ``TLSError`` (verification, handshake failure, timeout), `StreamError`, or
///   `CancellationError` (the connection is then failed too).
@discardableResult
nonisolated(nonsending) public func startTLS(_ connection: Connection, tls: TLSConfiguration, serverSide: Bool = false,
                     serverName: String? = nil,
                     logger: Logger = .fastStreamsTLS) async throws -> Connection {
    let stream = connection.stream
    let port = connection.remoteAddress?.port ?? 0
    let log = TLSLog(logger, connection)
    try await stream.onLoop {
        do {
            try installTLS(on: stream, tls: tls, serverSide: serverSide, serverName: serverName, port: port, log: log)
        } catch {
            stream.fail(error)  // no plaintext may go out on a connection whose upgrade failed
            throw error
        }
        do {
            try await stream.handshake(timeout: tls.handshakeTimeout, timeoutError: TLSError.handshakeTimedOut)
        } catch {
            handshakeFailed(error, log: log, level: .debug)
            throw error
        }
    }
    return connection
}

/// Counts a failed handshake (not a cancelled one) and logs it.
func handshakeFailed(_ error: any Error, log: TLSLog, level: Logger.Level) {
    guard !(error is CancellationError) else { return }
    ConnectionCounters.tlsHandshakeFailures.increment()
    log.logger.log(level: level, "TLS handshake failed", metadata: log.metadata(error: error))
}

/// Puts a new TLS session on top of the stream (call on its loop): kernel TLS on the raw socket
/// when asked for and possible, else the userspace codec, inside the running one if there is one.
/// Bytes already received become the session's first input.
func installTLS(on stream: SocketStream, tls: TLSConfiguration, serverSide: Bool, serverName: String?,
                port: Int, log: TLSLog) throws {
    try stream.installLayer { base in
        // Kernel TLS needs OpenSSL on the raw socket: not inside another session, and not when
        // bytes already read must be fed in first. Then the userspace path serves instead.
        let kernel = tls.kernelTLS && base.codec == nil && base.buffered.isEmpty
        if tls.kernelTLS && !kernel {
            let why = base.codec != nil ? "a nested session" : "bytes arrived before the handshake"
            log.logger.debug("kernel TLS not used: \(why)", metadata: log.metadata())
        }
        let engine = try TLSEngine(configuration: tls, serverSide: serverSide, serverName: serverName, port: port,
                                   socket: kernel ? base.socket.fd : nil, loop: stream.loop, log: log)
        if kernel { return KernelTLSIO(engine: engine, loop: stream.loop) }
        let total = base.buffered.reduce(0) { $0 + $1.count }
        guard total <= TLSEngine.pipeCapacity else {
            throw TLSError.handshakeFailed(reason: "\(total) bytes arrived before the TLS handshake", code: 0)
        }
        let codec = TLSCodec(engine: engine)
        for chunk in base.buffered {
            _ = chunk.withUnsafeBytes { codec.feedInput($0) }
        }
        let top: any StreamCodec = base.codec.map { StackedCodec(lower: $0, upper: codec) } ?? codec
        return CodecSocketIO(socket: base.socket, codec: top)
    }
}

extension Connection {
    /// The TLS session this connection runs (the innermost one when nested), or nil for plain TCP.
    public var tls: TLSSessionInfo? {
        stream.layerInfo.withLock { $0 as? TLSSessionInfo }
    }
}
