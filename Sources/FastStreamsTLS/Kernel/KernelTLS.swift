import FastStreams
import Glibc
import Logging

/// Linux kernel TLS: whether this kernel can do it, and a log line saying why a connection that
/// asked for it did not get it (in part or at all). The connection's ``TLSSessionInfo/kernelTLS``
/// always tells what OpenSSL actually set up.
enum KernelTLS {
    /// True when the kernel offers the `tls` upper-layer protocol (the module is loaded).
    static let kernelSupportsTLS: Bool = {
        guard let file = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r") else { return false }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        guard fgets(&line, Int32(line.count), file) != nil else { return false }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("tls")
    }()

    /// Blocks SIGPIPE on the calling thread, `loop`'s, once. FastStreams sends with MSG_NOSIGNAL,
    /// but OpenSSL's own writes on a kernel-TLS socket cannot: with SIGPIPE blocked on the loop's
    /// thread they fail with EPIPE instead of killing the process. The application's own
    /// disposition is untouched. Done through the loop's per-loop hook, so once per loop.
    static func blockSIGPIPE(on loop: StreamLoop) {
        _ = loop.local(SIGPIPEBlocked.self) {
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            return SIGPIPEBlocked()
        }
    }

    /// The per-loop marker: this loop's thread has SIGPIPE blocked.
    private final class SIGPIPEBlocked {}

    /// Counts what the kernel took over and logs (at `.info`, through the connection's logger)
    /// why it did not take everything.
    static func report(_ info: TLSSessionInfo, log: TLSLog) {
        let status = info.kernelTLS
        if status.send { ConnectionCounters.kernelTLSSend.increment() }
        if status.receive { ConnectionCounters.kernelTLSReceive.increment() }
        if status.send && status.receive { return }
        let why: String
        if !kernelSupportsTLS {
            why = "the kernel has no tls ULP (modprobe tls)"
        } else if info.protocolVersion == "TLSv1.3" && status.send {
            why = "OpenSSL 3.0 offloads TLS 1.3 send only; receive stays in userspace"
        } else {
            why = "OpenSSL or the kernel cannot offload \(info.protocolVersion) \(info.cipher)"
        }
        var metadata = log.metadata(info)
        metadata["ktls_send"] = "\(status.send)"
        metadata["ktls_receive"] = "\(status.receive)"
        log.logger.info("kernel TLS not used for all of the connection: \(why)", metadata: metadata)
    }
}
