import Glibc
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `NetworkAddress` without sockets: IP addresses are kept inline, Unix paths on the heap, and
    /// either way equal addresses compare and hash equal whichever way they were made.
    @Suite struct NetworkAddressTests {
        @Test func ipv4FromTextAndFromSockaddrBytesAreOneAddress() throws {
            let text = try #require(NetworkAddress(ipAddress: "10.1.2.3", port: 8080))
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = UInt16(8080).bigEndian
            raw.sin_addr.s_addr = inet_addr("10.1.2.3")
            let bytes = withUnsafeBytes(of: &raw) { NetworkAddress(bytes: $0) }
            #expect(text == bytes)
            #expect(Set([text, bytes]).count == 1)
            #expect(bytes.family == .ipv4)
            #expect(bytes.host == "10.1.2.3")
            #expect(bytes.port == 8080)
            #expect(bytes.description == "10.1.2.3:8080")
            bytes.withSockAddr { _, length in #expect(length == socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }

        @Test func addressesDifferInAnyByte() throws {
            let a = try #require(NetworkAddress(ipAddress: "127.0.0.1", port: 1))
            #expect(a != NetworkAddress(ipAddress: "127.0.0.1", port: 2))
            #expect(a != NetworkAddress(ipAddress: "127.0.0.2", port: 1))
            #expect(a != NetworkAddress(ipAddress: "::ffff:127.0.0.1", port: 1), "a v4-mapped IPv6 address is another address")
            #expect(NetworkAddress(ipAddress: "fe80::1%lo", port: 1) != NetworkAddress(ipAddress: "fe80::1", port: 1),
                    "the scope is part of an IPv6 address")
        }

        @Test func ipv6KeepsItsWhole28Bytes() throws {
            let address = try #require(NetworkAddress(ipAddress: "2001:db8::ff", port: 443))
            #expect(address.family == .ipv6)
            #expect(address.host == "2001:db8::ff")
            #expect(address.description == "[2001:db8::ff]:443")
            address.withSockAddr { pointer, length in
                #expect(length == socklen_t(MemoryLayout<sockaddr_in6>.size))
                let v6 = UnsafeRawPointer(pointer).load(as: sockaddr_in6.self)
                #expect(UInt16(bigEndian: v6.sin6_port) == 443)
            }
        }

        @Test func aUnixPathLongerThanAnInlineAddressSurvivesWhole() throws {
            let path = "/tmp/" + String(repeating: "p", count: 90)
            let address = try #require(NetworkAddress(unixPath: path))
            #expect(address.family == .unix)
            #expect(address.host == path)
            #expect(address.port == 0)
            #expect(address == NetworkAddress(unixPath: path))
            #expect(address != NetworkAddress(unixPath: path + "q"))
            #expect(NetworkAddress(unixPath: "/tmp/s")?.host == "/tmp/s", "a short path, kept inline")
        }

        @Test func wildcardsAreTheAnyAddressesOnly() throws {
            #expect(NetworkAddress(ipAddress: "0.0.0.0", port: 80)?.isWildcard == true)
            #expect(NetworkAddress(ipAddress: "::", port: 80)?.isWildcard == true)
            #expect(NetworkAddress(ipAddress: "127.0.0.1", port: 80)?.isWildcard == false)
            #expect(NetworkAddress(ipAddress: "::1", port: 80)?.isWildcard == false)
            #expect(NetworkAddress(unixPath: "/tmp/x")?.isWildcard == false)
        }
    }
}
