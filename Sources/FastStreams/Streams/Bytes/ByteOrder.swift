/// The order of an integer's bytes on the wire, for ``Reader/read(_:byteOrder:)``,
/// ``Reader/readMessage(lengthPrefix:byteOrder:limit:)`` and
/// ``Writer/writeMessage(_:lengthPrefix:byteOrder:)``.
public enum ByteOrder: Sendable, Hashable {
    /// Most significant byte first ("network byte order").
    case big
    /// Least significant byte first.
    case little

    /// `value` as it is stored in memory for this byte order.
    package func encode<T: FixedWidthInteger>(_ value: T) -> T {
        self == .big ? value.bigEndian : value.littleEndian
    }

    /// The integer whose in-memory bytes `raw` are in this byte order.
    package func decode<T: FixedWidthInteger>(_ raw: T) -> T {
        self == .big ? T(bigEndian: raw) : T(littleEndian: raw)
    }
}
