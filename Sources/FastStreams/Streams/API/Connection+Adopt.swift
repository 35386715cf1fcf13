import Glibc
import SystemPackage

extension Connection {
    /// Wraps a connected, non-blocking socket into a connection registered on `loop` (loop only).
    package static func adopt(_ descriptor: FileDescriptor, loop: StreamLoop, options: StreamOptions,
                              remoteAddress: NetworkAddress? = nil) throws -> Connection {
        let fd = descriptor.rawValue
        let local = Syscall.localAddress(fd)
        try SocketOptions.apply(options, to: descriptor, isTCP: local?.family != .unix)
        let stream = SocketStream(fd: descriptor, loop: loop, options: options)
        stream.start()
        return Connection(stream: stream, localAddress: local, remoteAddress: remoteAddress ?? Syscall.remoteAddress(fd))
    }
}
