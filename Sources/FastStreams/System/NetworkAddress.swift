import Glibc

/// An IPv4, IPv6 or Unix-domain socket address.
public struct NetworkAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address family of a ``NetworkAddress``.
    public enum Family: Sendable, Hashable {
        /// IPv4 (`AF_INET`).
        case ipv4
        /// IPv6 (`AF_INET6`).
        case ipv6
        /// A Unix-domain stream socket (`AF_UNIX`).
        case unix
    }

    private let storage: SockAddrBytes

    /// IPv4 or IPv6 address from a numeric host (`"127.0.0.1"`, `"::1"`) and a port; nil when
    /// `host` is not a numeric address.
    public init?(ipAddress host: String, port: Int) {
        guard (0...65535).contains(port) else { return nil }
        var v4 = sockaddr_in()
        if host.withCString({ inet_pton(AF_INET, $0, &v4.sin_addr) }) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            storage = withUnsafeBytes(of: &v4) { SockAddrBytes($0) }
            return
        }
        var v6 = sockaddr_in6()
        var name = host
        var scope: UInt32 = 0
        if let percent = host.firstIndex(of: "%") {  // fe80::1%eth0
            name = String(host[..<percent])
            scope = if_nametoindex(String(host[host.index(after: percent)...]))
        }
        guard name.withCString({ inet_pton(AF_INET6, $0, &v6.sin6_addr) }) == 1 else { return nil }
        v6.sin6_family = sa_family_t(AF_INET6)
        v6.sin6_port = in_port_t(UInt16(port).bigEndian)
        v6.sin6_scope_id = scope
        storage = withUnsafeBytes(of: &v6) { SockAddrBytes($0) }
    }

    /// A Unix-domain socket path; nil when the path does not fit `sun_path`.
    public init?(unixPath path: String) {
        var addr = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < capacity else { return nil }
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + 1
        storage = withUnsafeBytes(of: &addr) { SockAddrBytes(UnsafeRawBufferPointer(rebasing: $0.prefix(length))) }
    }

    /// Reads an address through a `getsockname`-style call.
    init?(_ fill: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { fill($0, &len) }
        }
        guard ok == 0 else { return nil }
        self.init(bytes: withUnsafeBytes(of: &ss) { UnsafeRawBufferPointer(rebasing: $0.prefix(Int(len))) })
    }

    /// From the bytes of a `sockaddr` (a `getaddrinfo` or `accept4` result), exactly `socklen` long.
    init(bytes: UnsafeRawBufferPointer) { storage = SockAddrBytes(bytes) }

    /// The address family.
    public var family: Family {
        switch storage.family {
        case sa_family_t(AF_INET): .ipv4
        case sa_family_t(AF_INET6): .ipv6
        default: .unix
        }
    }

    /// The numeric host (`"127.0.0.1"`, `"::1"`), or the path of a Unix-domain address.
    public var host: String {
        storage.withUnsafeBytes { raw -> String in
            switch family {
            case .ipv4:
                var a = raw.load(as: sockaddr_in.self).sin_addr
                return Self.ntop(AF_INET, &a)
            case .ipv6:
                var a = raw.load(fromByteOffset: 8, as: in6_addr.self)
                return Self.ntop(AF_INET6, &a)
            case .unix:
                let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
                let path = raw.dropFirst(offset).prefix { $0 != 0 }
                return String(decoding: path, as: UTF8.self)
            }
        }
    }

    /// True for 0.0.0.0 and ::, the addresses that listen on every interface.
    var isWildcard: Bool {
        switch family {
        case .ipv4: storage.withUnsafeBytes { $0.load(as: sockaddr_in.self).sin_addr.s_addr == 0 }
        case .ipv6: storage.withUnsafeBytes { raw in raw[8..<24].allSatisfy { $0 == 0 } }
        case .unix: false
        }
    }

    /// The port, or 0 for a Unix-domain address.
    public var port: Int {
        guard family != .unix else { return 0 }
        return Int(UInt16(bigEndian: storage.withUnsafeBytes { $0.load(fromByteOffset: 2, as: UInt16.self) }))
    }

    /// `"127.0.0.1:80"`, `"[::1]:80"` or the Unix path.
    public var description: String {
        switch family {
        case .ipv4: "\(host):\(port)"
        case .ipv6: "[\(host)]:\(port)"
        case .unix: host
        }
    }

    var posixFamily: Int32 {
        switch family {
        case .ipv4: AF_INET
        case .ipv6: AF_INET6
        case .unix: AF_UNIX
        }
    }

    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        storage.withUnsafeBytes { raw in
            var ss = sockaddr_storage()
            withUnsafeMutableBytes(of: &ss) { $0.copyMemory(from: raw) }
            return withUnsafePointer(to: &ss) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(raw.count)) }
            }
        }
    }

    private static func ntop(_ family: Int32, _ addr: UnsafeRawPointer) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, addr, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
