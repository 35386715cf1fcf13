/// What a `Range` header asks of a file of a known size (RFC 9110 §14), for the one form this
/// server honours: a single byte range.
///
/// - `bytes=a-b`, `bytes=a-`, `bytes=-n` → ``part(_:)`` (206), clamped to the file;
/// - a single range that starts at or past the end (or `bytes=-0`, or any range of an empty
///   file) → ``unsatisfiable`` (416, `Content-Range: bytes */size`);
/// - anything else (several ranges, another unit, a malformed header) → ``whole`` (200): a
///   server may always ignore `Range`.
package enum ByteRange: Equatable, Sendable {
    /// Send the whole file with 200.
    case whole
    /// Send these bytes (never empty, inside the file) with 206.
    case part(ClosedRange<Int64>)
    /// Answer 416.
    case unsatisfiable

    /// Evaluates the `Range` header `value` (nil when there is none) against `size`.
    package init(header value: String?, size: Int64) {
        guard let value else {
            self = .whole
            return
        }
        let trimmed = value.utf8.drop { $0 == 0x20 || $0 == 0x09 }
        let unit = Array("bytes=".utf8)
        guard trimmed.count > unit.count,
              zip(trimmed.prefix(unit.count), unit).allSatisfy({ Self.lowercased($0) == $1 }) else {
            self = .whole
            return
        }
        let spec = Array(trimmed.dropFirst(unit.count)).trimmingSpaces()
        guard !spec.contains(UInt8(ascii: ",")), let dash = spec.firstIndex(of: UInt8(ascii: "-")) else {
            self = .whole  // several ranges (or none): the whole file is an acceptable answer
            return
        }
        let first = Array(spec[..<dash]).trimmingSpaces()
        let last = Array(spec[(dash + 1)...]).trimmingSpaces()
        switch (Self.number(first), Self.number(last)) {
        case (nil, let suffix?) where first.isEmpty:  // bytes=-n: the last n bytes
            self = suffix == 0 || size == 0 ? .unsatisfiable : .part(max(0, size - suffix)...(size - 1))
        case (let start?, nil) where last.isEmpty:    // bytes=a-: from a to the end
            self = start >= size ? .unsatisfiable : .part(start...(size - 1))
        case (let start?, let end?) where start <= end:  // bytes=a-b
            self = start >= size ? .unsatisfiable : .part(start...min(end, size - 1))
        default:
            self = .whole  // malformed (a > b, no digits, junk): ignored
        }
    }

    /// A run of ASCII digits as a number (saturating at `Int64.max`), or nil if it is not one.
    private static func number(_ digits: [UInt8]) -> Int64? {
        guard !digits.isEmpty, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return nil
        }
        var value: Int64 = 0
        for digit in digits {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return .max }
            value = sum
        }
        return value
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 0x20 : byte
    }
}

extension Array where Element == UInt8 {
    /// Without leading and trailing spaces and tabs.
    package func trimmingSpaces() -> [UInt8] {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return [] }
        return Array(self[start...end])
    }
}
