import Glibc
import SystemPackage

extension Connection {
    /// Wraps a connected, non-blocking socket into a connection registered on `loop` (loop only).
    package static func adopt(_ descriptor: FileDescriptor, loop: EventLoop, options: StreamOptions,
                              remoteAddress: SocketAddress? = nil) throws -> Connection {
        let fd = descriptor.rawValue
        let local = Syscall.localAddress(fd)
        if options.noDelay, local?.family != .unix {
            try? Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, Int32(1))
        }
        if let size = options.sendBufferSize {
            try? Syscall.setOption(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: size))
        }
        if let size = options.receiveBufferSize {
            try? Syscall.setOption(fd, SOL_SOCKET, SO_RCVBUF, Int32(clamping: size))
        }
        let stream = SocketStream(fd: descriptor, loop: loop, options: options)
        stream.start()
        return Connection(stream: stream, localAddress: local, remoteAddress: remoteAddress ?? Syscall.remoteAddress(fd))
    }
}
