import COpenSSL
import FastStreams
import Glibc
import SystemPackage

/// One OpenSSL session (`SSL*`) plus, on the userspace path, the pipe buffers its BIO reads
/// ciphertext from and writes ciphertext to. With kernel TLS the BIO is the socket itself and
/// there is no pipe. Loop-confined: owned by one ``TLSCodec`` or ``KernelTLSIO``; its state is
/// touched on that thread only, so it skips the runtime's exclusivity checks (every record
/// passes here).
///
/// Memory: the pipe's two buffers are blocks of the loop's pool, taken when ciphertext arrives or
/// is about to be produced and given back as soon as they are empty (`finishBurst`); OpenSSL's
/// own record buffers are freed by the loop's ``IdleBufferSweeper`` once the session is quiet.
/// So an idle session holds neither.
final class TLSEngine {
    /// The outcome of one OpenSSL call.
    enum Status {
        case done(Int)
        case wantRead
        case wantWrite
        /// The peer's close_notify arrived.
        case closed
        case failed(any Error)
    }

    /// Each pipe buffer: a 256 KiB socket read (as for plain TCP, a large message in one read), or
    /// 256 KiB of plaintext as ciphertext (records carry under 64 bytes of overhead per 16 KiB).
    static let pipeCapacity = 258 * 1024

    let ssl: OpaquePointer
    let configuration: TLSConfiguration
    let isServer: Bool
    /// Where the userspace path's ciphertext waits; nil with a socket BIO (kernel TLS).
    let pipe: UnsafeMutablePointer<fs_tls_pipe>?
    /// Where the pipe's buffers come from and return to (the loop's block pool).
    private let blocks: BlockPool
    @exclusivity(unchecked) private var inputBlock: ByteStorage?
    @exclusivity(unchecked) private var outputBlock: ByteStorage?
    /// The loop's sweeper (which the loop owns: unowned breaks the cycle through its list), and
    /// this engine's place on that list (-1: not on it).
    // Safety of `unowned(unsafe)` (no liveness check, which cost a `swift_unownedRetainStrong` per
    // burst): the sweeper is in the loop's per-loop storage, which keeps it until the loop is
    // gone, and it is used only in `finishBurst`, which runs on that loop's thread while the loop
    // runs.
    private unowned(unsafe) let sweeper: IdleBufferSweeper
    @exclusivity(unchecked) var sweepGeneration: UInt64 = 0
    @exclusivity(unchecked) var sweepIndex = -1
    /// The stream closed: the sweeper drops the engine at its next pass, whatever it holds.
    @exclusivity(unchecked) var isRetired = false
    /// The kernel encrypts what we send (set after the handshake): files go out with SSL_sendfile.
    @exclusivity(unchecked) var kernelSend = false
    private let sessionKey: String?
    /// Where this session logs.
    let log: TLSLog

    /// - Parameters:
    ///   - socket: give the descriptor to let OpenSSL do the socket I/O (needed for kernel TLS);
    ///     nil for the userspace pipe.
    ///   - loop: the stream's loop (its block pool holds the pipe's buffers; its sweeper frees
    ///     OpenSSL's). Call on that loop.
    ///   - log: where the session logs.
    init(configuration: TLSConfiguration, serverSide: Bool, serverName: String?, port: Int, socket: FileDescriptor?,
         loop: StreamLoop, log: TLSLog) throws {
        guard serverSide == configuration.isServer else {
            throw TLSError.invalidConfiguration(serverSide ? "a client configuration cannot serve" : "a server configuration cannot connect")
        }
        ERR_clear_error()
        guard let ssl = SSL_new(configuration.context) else { throw OpenSSLErrors.configuration("SSL_new") }
        self.ssl = ssl
        self.log = log
        self.configuration = configuration
        self.isServer = serverSide
        self.blocks = BlockPool.of(loop)
        self.sweeper = IdleBufferSweeper.of(loop)
        if let socket {
            pipe = nil
            SSL_set_fd(ssl, socket.rawValue)
        } else {
            let pipe = UnsafeMutablePointer<fs_tls_pipe>.allocate(capacity: 1)
            pipe.initialize(to: fs_tls_pipe(in: nil, in_cap: 0, in_start: 0, in_end: 0,
                                            out: nil, out_cap: 0, out_start: 0, out_end: 0, in_eof: 0))
            self.pipe = pipe
            let bio = fs_pipe_bio_new(pipe)
            SSL_set_bio(ssl, bio, bio)  // one BIO both ways: SSL takes its single reference
        }
        sessionKey = serverSide || !configuration.resumesSessions ? nil : "\(serverName ?? ""):\(port)"
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
        if serverSide {
            SSL_set_accept_state(ssl)
        } else {
            try configureClient(serverName: serverName)
            SSL_set_connect_state(ssl)
        }
    }

    private func configureClient(serverName: String?) throws {
        let isAddress = serverName.map { NetworkAddress(ipAddress: $0, port: 0) != nil } ?? false
        if let serverName, !isAddress, fs_ssl_set_host_name(ssl, serverName) != 1 {
            throw OpenSSLErrors.configuration("server name \(serverName)")
        }
        if case .full = configuration.verification {
            guard let serverName else {
                throw TLSError.invalidConfiguration("verifying the server needs a serverName (or verification: .noHostnameVerification)")
            }
            let ok = isAddress
                ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName)
                : SSL_set1_host(ssl, serverName)
            guard ok == 1 else { throw OpenSSLErrors.configuration("server name \(serverName)") }
        }
        if let sessionKey, let session = configuration.session(for: sessionKey) {
            SSL_set_session(ssl, session)
            SSL_SESSION_free(session)
        }
    }

    deinit {
        SSL_free(ssl)
        pipe?.deallocate()  // its buffers belong to `inputBlock` and `outputBlock`
    }

    /// Called by OpenSSL (client side) with a new session to remember; takes its reference.
    func store(_ session: OpaquePointer) -> Bool {
        guard let sessionKey else { return false }
        configuration.remember(session, for: sessionKey)
        return true
    }

    // MARK: Calls

    func handshake() -> Status {
        attachOutput()
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        return r == 1 ? .done(0) : status(r, handshaking: true)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Status {
        attachOutput()  // a read may answer: alerts, key updates, TLS 1.3 tickets
        clearErrorQueue()
        var n = 0
        let r = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n)
        return r == 1 ? .done(n) : status(r, handshaking: false)
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Status {
        attachOutput()
        clearErrorQueue()
        var n = 0
        let r = SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &n)
        return r == 1 ? .done(n) : status(r, handshaking: false)
    }

    /// Schedules a TLS 1.3 KeyUpdate and writes it into the output (`SSL_do_handshake` sends a
    /// pending one at once). `.wantWrite`: the output is full; OpenSSL sends it before the next record.
    func updateKeys(requestingPeerUpdate: Bool) -> Status {
        guard SSL_version(ssl) == TLS1_3_VERSION else {
            return .failed(TLSError.invalidConfiguration("a key update needs TLS 1.3 (this session runs \(String(cString: SSL_get_version(ssl))))"))
        }
        attachOutput()
        ERR_clear_error()
        guard SSL_key_update(ssl, requestingPeerUpdate ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) == 1 else {
            let error = OpenSSLErrors.take()
            return .failed(TLSError.protocolError(reason: error?.reason ?? "SSL_key_update failed", code: error?.code ?? 0))
        }
        let r = SSL_do_handshake(ssl)
        return r == 1 ? .done(0) : status(r, handshaking: false)
    }

    /// `SSL_sendfile`: kernel TLS send only. `.done(0)` means the file ended.
    func sendfile(_ file: FileDescriptor, offset: Int64, count: Int) -> Status {
        ERR_clear_error()
        let r = SSL_sendfile(ssl, file.rawValue, off_t(offset), count, 0)
        if r >= 0 { return .done(r) }
        if Glibc.errno == EAGAIN { return .wantWrite }
        return status(Int32(truncatingIfNeeded: r), handshaking: false)
    }

    /// Sends close_notify; `.closed` when the peer's has been received too.
    func shutdown() -> Status {
        attachOutput()
        ERR_clear_error()
        let r = SSL_shutdown(ssl)
        if r == 1 { return .closed }
        if r == 0 { return .done(0) }
        return status(r, handshaking: false)
    }

    /// SSL_get_error needs an empty error queue to be right. ERR_clear_error wipes all 16 slots of
    /// the thread's queue every time (measured at about 1% of a small-message round trip);
    /// peeking first costs a lookup, and the queue is nearly always empty already.
    @inline(__always)
    private func clearErrorQueue() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    private func status(_ result: Int32, handshaking: Bool) -> Status {
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            let e = Glibc.errno
            ERR_clear_error()
            if pipe == nil, e != 0 { return .failed(StreamError.io("TLS socket I/O", Errno(rawValue: e))) }
            return .failed(TLSError.unexpectedEOF)
        default:
            let verify = SSL_get_verify_result(ssl)
            let error = OpenSSLErrors.take()
            if let error, fs_err_get_reason(error.code) == SSL_R_UNEXPECTED_EOF_WHILE_READING {
                return .failed(TLSError.unexpectedEOF)
            }
            if handshaking, verify != X509_V_OK {
                let code = X509VerifyCode(rawValue: Int32(verify))
                return .failed(TLSError.certificateVerificationFailed(code: code, reason: code.description))
            }
            let reason = error?.reason ?? "SSL error \(code)"
            return .failed(handshaking ? TLSError.handshakeFailed(reason: reason, code: error?.code ?? 0)
                                       : TLSError.protocolError(reason: reason, code: error?.code ?? 0))
        }
    }

    // MARK: Pipe

    /// A free block of the loop's pool (a new one when it has none big enough).
    private func takeBlock() -> ByteStorage {
        blocks.takeOrAllocate(minimumSize: Self.pipeCapacity)
    }

    /// Gives the pipe an input buffer if it has none.
    private func attachInput() {
        guard let p = pipe, p.pointee.in == nil else { return }
        let block = takeBlock()
        p.pointee.in = block.base.assumingMemoryBound(to: UInt8.self)
        p.pointee.in_cap = block.size
        inputBlock = consume block  // the last use: moved, not retained
    }

    /// Gives the pipe an output buffer if it has none.
    private func attachOutput() {
        guard let p = pipe, p.pointee.out == nil else { return }
        let block = takeBlock()
        p.pointee.out = block.base.assumingMemoryBound(to: UInt8.self)
        p.pointee.out_cap = block.size
        outputBlock = consume block  // the last use: moved, not retained
    }

    /// Call once a burst of work is done: hands empty pipe buffers back to the pool, and tells the
    /// sweeper the session is active.
    func finishBurst() {
        sweeper.touch(self)
        guard let p = pipe else { return }
        if p.pointee.in_end == p.pointee.in_start, let block = inputBlock.take() {  // moved out: no retain
            (p.pointee.in, p.pointee.in_cap, p.pointee.in_start, p.pointee.in_end) = (nil, 0, 0, 0)
            blocks.put(block)
        }
        if p.pointee.out_end == p.pointee.out_start, let block = outputBlock.take() {  // moved out: no retain
            (p.pointee.out, p.pointee.out_cap, p.pointee.out_start, p.pointee.out_end) = (nil, 0, 0, 0)
            blocks.put(block)
        }
    }

    /// True while the pipe holds a buffer of the pool (an idle session holds none).
    var holdsPipeBuffers: Bool { inputBlock != nil || outputBlock != nil }

    /// Frees OpenSSL's read and write record buffers; false if they hold data (then they stay).
    func freeRecordBuffers() -> Bool { SSL_free_buffers(ssl) == 1 }

    /// Free space at the end of the input pipe (compacting it first); 0 when full.
    func inputSpace() -> UnsafeMutableRawBufferPointer {
        attachInput()
        let p = pipe!
        if p.pointee.in_start > 0 && p.pointee.in_end == p.pointee.in_cap {
            let pending = p.pointee.in_end - p.pointee.in_start
            memmove(p.pointee.in, p.pointee.in + p.pointee.in_start, pending)
            p.pointee.in_start = 0
            p.pointee.in_end = pending
        }
        return UnsafeMutableRawBufferPointer(start: p.pointee.in + p.pointee.in_end, count: p.pointee.in_cap - p.pointee.in_end)
    }

    /// Appends ciphertext to the input pipe (bytes that arrived before TLS started, or from a
    /// lower TLS layer). Returns how many fit.
    func feedInput(_ bytes: UnsafeRawBufferPointer) -> Int {
        let space = inputSpace()
        let n = min(space.count, bytes.count)
        if n > 0 { space.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: n) }
        pipe!.pointee.in_end += n
        return n
    }

    /// The socket (or lower layer) ended: OpenSSL sees EOF once the pipe is empty.
    func inputEnded() { pipe?.pointee.in_eof = 1 }

    /// The socket (or lower layer) ended and OpenSSL has not yet been told by a read.
    var inputEndPending: Bool { pipe.map { $0.pointee.in_eof != 0 } ?? false }

    var hasBufferedInput: Bool {
        (pipe.map { $0.pointee.in_end > $0.pointee.in_start } ?? false) || SSL_pending(ssl) > 0
    }

    /// Ciphertext waiting to be sent.
    var pendingOutput: UnsafeRawBufferPointer {
        guard let p = pipe, p.pointee.out != nil else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: p.pointee.out + p.pointee.out_start, count: p.pointee.out_end - p.pointee.out_start)
    }

    /// `count` bytes of pending ciphertext were sent.
    func outputSent(_ count: Int) {
        let p = pipe!
        p.pointee.out_start += count
        if p.pointee.out_start == p.pointee.out_end { p.pointee.out_start = 0; p.pointee.out_end = 0 }
    }

    /// The most plaintext that encrypts into the output pipe's free space (records carry at most
    /// 16 KiB each plus under 64 bytes of header, nonce, tag and padding).
    var plaintextBudget: Int {
        guard let p = pipe else { return .max }
        let capacity = p.pointee.out == nil ? Self.pipeCapacity : p.pointee.out_cap
        let free = capacity - (p.pointee.out_end - p.pointee.out_start)
        let budget = free - (free / 16384 + 1) * 64
        return max(0, budget)
    }
}
