import Glibc
import SystemPackage

extension Connection {
    /// Wraps a connected, non-blocking socket into a connection registered on `loop` (loop only).
    /// Addresses not given are asked of the socket (`getsockname`, `getpeername`).
    /// `registeredFor`: the descriptor is registered on `loop` with these events already.
    package static func adopt(_ descriptor: FileDescriptor, loop: StreamLoop, options: StreamOptions,
                              localAddress: NetworkAddress? = nil, remoteAddress: NetworkAddress? = nil,
                              registeredFor events: UInt32? = nil) throws -> Connection {
        let fd = descriptor.rawValue
        let local = localAddress ?? Syscall.localAddress(fd)
        try SocketOptions.apply(options, to: descriptor, isTCP: local?.family != .unix)
        let stream = SocketStream(fd: descriptor, loop: loop, options: options)
        stream.start(registeredFor: events)
        return Connection(stream: stream, localAddress: local, remoteAddress: remoteAddress ?? Syscall.remoteAddress(fd))
    }
}
