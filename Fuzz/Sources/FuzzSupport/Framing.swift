import FastStreams

/// What one framing operation returned, comparable between the real reader and the model.
public enum FramingOutcome: Equatable, Sendable {
    case bytes([UInt8])
    case line(String?)
    /// nil: the input ended before any byte.
    case endOfInput
    /// `StreamError.incompleteRead` with these bytes.
    case incomplete(partial: [UInt8])
    /// `StreamError.limitExceeded` (the bytes stay buffered).
    case limitExceeded
    /// A decoded value (integer, message...) in its printed form.
    case value(String)
    /// Any other error, or a model's statement of what it expected.
    case other(String)

    /// The outcome of a reader call that threw `error`.
    public init(_ error: any Error) {
        switch error {
        case StreamError.incompleteRead(let partial, _): self = .incomplete(partial: partial.array)
        case StreamError.limitExceeded: self = .limitExceeded
        default: self = .other("\(error)")
        }
    }
}

/// The reference model of a reader: what the peer sent that was not taken yet, and whether the
/// peer has finished sending. Plain arrays and linear searches: obviously right, not fast.
public struct ReferenceStream: Sendable {
    public var pending: [UInt8] = []
    public var finished = false
    public init() {}

    /// Removes and returns the first `n` pending bytes.
    public mutating func take(_ n: Int) -> [UInt8] {
        defer { pending.removeFirst(n) }
        return Array(pending.prefix(n))
    }

    /// The offset just past the first `delimiter` in `bytes`, or nil.
    public static func end(of delimiter: [UInt8], in bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= delimiter.count else { return nil }
        for start in 0...(bytes.count - delimiter.count)
        where bytes.dropFirst(start).starts(with: delimiter) {
            return start + delimiter.count
        }
        return nil
    }
}

/// One framing operation with its parameters: how the real reader runs it, and what the model
/// says it must return.
public struct FramingOperation: Sendable {
    public let name: String
    /// Whether it can finish with `pending` sent and `finished` (the harness sends more before
    /// running it until it can, so a correct reader never waits forever).
    public let canComplete: @Sendable (_ stream: ReferenceStream) -> Bool
    public let run: @Sendable (Reader) async -> FramingOutcome
    /// The model's answer, consuming from the stream. `actual` is given for operations whose
    /// result the model only bounds (`read(max:)` returns whatever has arrived).
    public let expect: @Sendable (_ stream: inout ReferenceStream, _ actual: FramingOutcome) -> FramingOutcome

    public init(_ name: String, canComplete: @escaping @Sendable (ReferenceStream) -> Bool,
                run: @escaping @Sendable (Reader) async throws -> FramingOutcome,
                expect: @escaping @Sendable (inout ReferenceStream, FramingOutcome) -> FramingOutcome) {
        self.name = name
        self.canComplete = canComplete
        self.run = { reader in
            do { return try await run(reader) } catch { return FramingOutcome(error) }
        }
        self.expect = expect
    }
}

/// Makes an operation, drawing its parameters from the input.
public typealias FramingOperationKind = @Sendable (inout FuzzInput) -> FramingOperation

public enum Framing {
    /// Every operation the reader harness draws from. A new framing helper is one more entry here:
    /// `fixedSize` + `integer` model integer reads, `lengthPrefixed` length-prefixed messages
    /// (their doc comments show the entry), `readLine` the lines the `lines` sequence yields.
    public static let kinds: [FramingOperationKind] = [readMax, readAll, readExactly, readUntil, readLine]

    /// `read(max:)`: 1...max bytes, a prefix of what is pending; nil at the end.
    public static let readMax: FramingOperationKind = { input in
        let max = input.int(in: 1...300)
        return chunkRead("read(max: \(max))", max: max) { try await $0.read(max: max) }
    }

    /// `read()`: whatever has arrived.
    public static let readAll: FramingOperationKind = { _ in
        chunkRead("read()", max: .max) { try await $0.read() }
    }

    /// `read(exactly:)`: that many bytes, or `incompleteRead` with all there is at the end.
    public static let readExactly: FramingOperationKind = { input in
        let count = input.int(in: 0...600)
        return fixedSize("read(exactly: \(count))", count: count, run: { .bytes(try await $0.read(exactly: count).array) },
                         decode: { .bytes($0) })
    }

    /// `read(until:limit:)` with a delimiter of 1...4 bytes from a small alphabet (so it occurs).
    public static let readUntil: FramingOperationKind = { input in
        let delimiter = (0..<input.int(in: 1...4)).map { _ in alphabet(input.byte()) }
        let limit = input.int(in: 1...700)
        return FramingOperation(
            "read(until: \(delimiter), limit: \(limit))",
            canComplete: { stream in
                ReferenceStream.end(of: delimiter, in: stream.pending[...]) != nil || stream.pending.count >= limit || stream.finished
            },
            run: { .bytes(try await $0.read(until: delimiter, limit: limit).array) },
            expect: { stream, _ in
                if let end = ReferenceStream.end(of: delimiter, in: stream.pending[...]) {
                    return end <= limit ? .bytes(stream.take(end)) : .limitExceeded
                }
                if stream.pending.count >= limit { return .limitExceeded }
                return .incomplete(partial: stream.take(stream.pending.count))
            })
    }

    /// `readLine(limit:)`: a line without `\n` / `\r\n`; the last may lack one; nil at the end.
    public static let readLine: FramingOperationKind = { input in
        let limit = input.int(in: 1...700)
        return FramingOperation(
            "readLine(limit: \(limit))",
            canComplete: { stream in stream.pending.contains(0x0A) || stream.pending.count >= limit || stream.finished },
            run: { .line(try await $0.readLine(limit: limit)) },
            expect: { stream, _ in
                var line: [UInt8]
                if let end = ReferenceStream.end(of: [0x0A], in: stream.pending[...]) {
                    guard end <= limit else { return .limitExceeded }
                    line = stream.take(end)
                    line.removeLast()
                    if line.last == 0x0D { line.removeLast() }
                } else if stream.pending.count >= limit {
                    return .limitExceeded
                } else if stream.pending.isEmpty {
                    return .line(nil)
                } else {
                    line = stream.take(stream.pending.count)
                }
                return .line(String(decoding: line, as: UTF8.self))
            })
    }

    /// An operation that takes exactly `count` bytes and decodes them (`read(exactly:)`, an
    /// integer read, a fixed header): the model decodes the same bytes with `decode`; at the end
    /// of the input it expects `incompleteRead` with what was left.
    public static func fixedSize(_ name: String, count: Int, run: @escaping @Sendable (Reader) async throws -> FramingOutcome,
                                 decode: @escaping @Sendable ([UInt8]) -> FramingOutcome) -> FramingOperation {
        FramingOperation(
            name,
            canComplete: { $0.pending.count >= count || $0.finished },
            run: run,
            expect: { stream, _ in
                stream.pending.count >= count ? decode(stream.take(count)) : .incomplete(partial: stream.take(stream.pending.count))
            })
    }

    /// The model of an integer read: `bytes` as a big-endian (network order) or little-endian `T`.
    /// With `fixedSize`, an integer read is one entry of `kinds`, e.g.
    /// `{ _ in fixedSize("read(UInt32)", count: 4, run: { .value("\(try await $0.read(UInt32.self))") }, decode: { integer(UInt32.self, $0) }) }`.
    public static func integer<T: FixedWidthInteger>(_ type: T.Type, _ bytes: [UInt8], bigEndian: Bool = true) -> FramingOutcome {
        .value("\((bigEndian ? bytes : bytes.reversed()).reduce(T.zero) { $0 << 8 | T($1) })")
    }

    /// A message behind a big-endian length prefix of `prefixSize` bytes, at most `limit` bytes:
    /// the message (without its prefix); nil (`.endOfInput`) when the input ends cleanly before
    /// a prefix; `limitExceeded` (nothing taken) when the prefix announces more than `limit`;
    /// `incompleteRead` with everything left, prefix included, when the input ends inside the
    /// prefix or the message. A length-prefixed read is one entry of `kinds`, e.g.
    /// `{ input in let limit = input.int(in: 0...300); return lengthPrefixed("readMessage(UInt16)", prefixSize: 2, limit: limit) { try await $0.readMessage(lengthPrefix: UInt16.self, limit: limit).map { .bytes($0.array) } ?? .endOfInput } }`.
    public static func lengthPrefixed(_ name: String, prefixSize: Int, limit: Int,
                                      run: @escaping @Sendable (Reader) async throws -> FramingOutcome) -> FramingOperation {
        @Sendable func announced(_ pending: [UInt8]) -> UInt64 {
            pending.prefix(prefixSize).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        return FramingOperation(
            name,
            canComplete: { stream in
                guard stream.pending.count >= prefixSize else { return stream.finished }
                let length = announced(stream.pending)
                return length > UInt64(limit) || stream.pending.count >= prefixSize + Int(length) || stream.finished
            },
            run: run,
            expect: { stream, _ in
                if stream.pending.isEmpty { return .endOfInput }
                guard stream.pending.count >= prefixSize else { return .incomplete(partial: stream.take(stream.pending.count)) }
                let length = announced(stream.pending)
                if length > UInt64(limit) { return .limitExceeded }
                guard stream.pending.count >= prefixSize + Int(length) else {
                    return .incomplete(partial: stream.take(stream.pending.count))
                }
                _ = stream.take(prefixSize)
                return .bytes(stream.take(Int(length)))
            })
    }

    /// `read()`/`read(max:)`: the model accepts any 1...max bytes that start what is pending.
    static func chunkRead(_ name: String, max: Int, _ read: @escaping @Sendable (Reader) async throws -> Chunk?) -> FramingOperation {
        FramingOperation(
            name,
            canComplete: { !$0.pending.isEmpty || $0.finished },
            run: { reader in try await read(reader).map { .bytes($0.array) } ?? .endOfInput },
            expect: { stream, actual in
                if stream.pending.isEmpty { return .endOfInput }
                if case .bytes(let bytes) = actual, (1...max).contains(bytes.count), stream.pending.starts(with: bytes) {
                    return .bytes(stream.take(bytes.count))
                }
                return .other("1...\(max) bytes starting \(stream.pending.prefix(16))")
            })
    }

    /// Bytes mostly from `ab\r\n` (so delimiters and line ends occur), sometimes any byte.
    public static func alphabet(_ byte: UInt8) -> UInt8 {
        byte >= 0xC0 ? byte : [UInt8(ascii: "a"), UInt8(ascii: "b"), 0x0D, 0x0A][Int(byte & 3)]
    }
}
