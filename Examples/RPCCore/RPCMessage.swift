import FastStreams

/// One message of the RPC protocol, a request or a reply; both have the same shape on the wire:
///
///     id       UInt32, big-endian       matches a reply to its request
///     code     UInt8                    a request's method, a reply's status
///     payload  UInt32 length, bytes     the length big-endian, then that many bytes
///
/// The id and code are read as integers (`reader.read(UInt32.self, byteOrder: .big)`), the
/// payload as a length-prefixed message (`writer.writeMessage(_:lengthPrefix:)`,
/// `reader.readMessage(lengthPrefix:limit:)`), so a payload larger than the reader's limit is
/// refused from its length alone, before any of it is waited for.
public struct RPCMessage: Sendable {
    /// Chosen by the client; the reply carries the same one.
    public var id: UInt32
    /// The method (request) or the status (reply).
    public var code: UInt8
    /// The bytes after the header.
    public var payload: Chunk

    /// A message with these fields.
    public init(id: UInt32, code: UInt8, payload: Chunk) {
        self.id = id
        self.code = code
        self.payload = payload
    }

    /// Reads the next message; nil when the input ends cleanly between messages.
    ///
    /// - Throws: ``StreamError/limitExceeded(limit:)`` for a payload longer than `limit` (its
    ///   bytes are not read: the connection cannot be used any more),
    ///   ``StreamError/incompleteRead(partial:expected:)`` when the input ends inside a message,
    ///   or what the connection throws.
    nonisolated(nonsending) public static func read(from reader: Reader, limit: Int) async throws -> RPCMessage? {
        let id: UInt32
        do {
            id = try await reader.read(UInt32.self, byteOrder: .big)
        } catch StreamError.incompleteRead(let partial, _) where partial.isEmpty {
            return nil
        }
        let code = try await reader.read(UInt8.self)
        guard let payload = try await reader.readMessage(lengthPrefix: UInt32.self, byteOrder: .big, limit: limit) else {
            throw StreamError.incompleteRead(partial: .empty, expected: MemoryLayout<UInt32>.size)
        }
        return RPCMessage(id: id, code: code, payload: payload)
    }

    /// Queues the message on `writer`: the 5-byte header, then the payload behind its length
    /// (`writeMessage`: length and payload in one `sendmsg`; a `Chunk` payload is not copied).
    /// Nothing suspends: with nothing queued the bytes go out at once, else they join the queue.
    public static func write(id: UInt32, code: UInt8, payload: some WritableBytes, to writer: Writer) throws {
        var header = [UInt8](repeating: 0, count: 5)
        for index in 0..<4 { header[index] = UInt8(truncatingIfNeeded: id >> (24 - 8 * index)) }
        header[4] = code
        try writer.write(header)
        try writer.writeMessage(payload, lengthPrefix: UInt32.self, byteOrder: .big)
    }
}

/// What a request asks for: a byte on the wire. The server decides which methods exist.
public struct RPCMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The byte on the wire.
    public let rawValue: UInt8
    /// The method numbered `rawValue`.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Replies with the payload.
    public static let echo = RPCMethod(rawValue: 1)
    /// Replies with the payload after as many milliseconds as it says (decimal text, at most 60,000).
    public static let sleep = RPCMethod(rawValue: 2)

    /// The method's name (`echo`, `sleep`), or its number.
    public var description: String {
        switch self {
        case .echo: "echo"
        case .sleep: "sleep"
        default: "method \(rawValue)"
        }
    }

    /// The method called `name`, if there is one.
    public init?(name: String) {
        switch name {
        case "echo": self = .echo
        case "sleep": self = .sleep
        default: return nil
        }
    }
}

/// How a request went: a byte on the wire.
public struct RPCStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The byte on the wire.
    public let rawValue: UInt8
    /// The status numbered `rawValue`.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Done; the payload is the answer.
    public static let ok = RPCStatus(rawValue: 0)
    /// The server has no such method.
    public static let unknownMethod = RPCStatus(rawValue: 1)
    /// The method could not use the payload; the payload says why.
    public static let badRequest = RPCStatus(rawValue: 2)

    /// `ok`, `unknown method`, `bad request`, or the number.
    public var description: String {
        switch self {
        case .ok: "ok"
        case .unknownMethod: "unknown method"
        case .badRequest: "bad request"
        default: "status \(rawValue)"
        }
    }
}
